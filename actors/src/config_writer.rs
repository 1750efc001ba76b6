//! `SettingsWriter`: writes settings changed over the network into the configuration file, on
//! its own thread, so that file I/O never holds up a bus.
//!
//! A set of a persisted value is answered only once its write-back is on disk (an fsync'd
//! rename): 200 then means durable. Sets that arrive while a write is under way are coalesced:
//! the next rewrite covers every one queued behind it, and all of them are answered after it.
//! Each change is checked as the start-up check would check the file, so nothing reaches the
//! file that the next start would refuse.

use std::sync::Arc;

use janitoo_config::{Change, ConfigError, ConfigFile, NodeKey, SettingKey};
use janitoo_protocol::{Data, Status};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

use crate::messages::Failure;
use crate::metrics::{ActorKind, Metrics};

/// Changes waiting for the writer, at most (a set beyond it waits for room).
const QUEUE: usize = 4_096;

/// A change and who waits for its outcome.
struct Job {
    change: Change,
    done: oneshot::Sender<Result<(), Failure>>,
}

/// A handle on the writer thread; cheap to clone. The thread ends when every handle is gone.
#[derive(Clone)]
pub struct SettingsWriter {
    queue: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

impl SettingsWriter {
    /// Starts the thread that owns `file`.
    pub fn start(file: ConfigFile, metrics: Arc<Metrics>) -> SettingsWriter {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let thread_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("janitoo-settings".into())
            .spawn(move || write_batches(file, jobs, thread_metrics))
            .expect("cannot start the settings writer thread");
        SettingsWriter { queue, metrics }
    }

    /// Writes one setting; returns once it is on disk. 400 when the file would no longer pass
    /// the start-up check with it, 500 when the file cannot be written (it is then unchanged).
    pub async fn persist(
        &self,
        node: NodeKey,
        setting: SettingKey,
        data: Data,
    ) -> Result<(), Failure> {
        let (done, outcome) = oneshot::channel();
        self.metrics.sent(ActorKind::ConfigWriter);
        let job = Job {
            change: (node, setting, data),
            done,
        };
        let stopped = || Failure::new(Status::INTERNAL_ERROR, "the settings writer has stopped");
        self.queue.send(job).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// The writer thread: takes every job queued, writes them in one rewrite, answers each.
fn write_batches(mut file: ConfigFile, mut jobs: mpsc::Receiver<Job>, metrics: Arc<Metrics>) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(job) = jobs.try_recv() {
            batch.push(job);
        }
        let _handling = metrics.handling(ActorKind::ConfigWriter);
        // The others of the batch are handled by the same rewrite.
        for _ in 1..batch.len() {
            drop(metrics.handling(ActorKind::ConfigWriter));
        }
        let changes: Vec<Change> = batch.iter().map(|job| job.change.clone()).collect();
        match file.persist_checked(&changes) {
            Ok(outcomes) => {
                let written = outcomes.iter().filter(|o| o.is_ok()).count();
                if written > 0 {
                    metrics.settings_rewrites.increment();
                }
                info!(
                    written,
                    refused = batch.len() - written,
                    "settings written back"
                );
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.done.send(outcome.map_err(refusal));
                }
            }
            Err(err) => {
                error!(%err, "settings not written back; the file is unchanged");
                metrics.write_failures.increment();
                for job in batch {
                    let _ = job.done.send(Err(Failure::new(
                        Status::INTERNAL_ERROR,
                        format!("not saved: {err}"),
                    )));
                }
            }
        }
    }
}

/// The answer to a change the start-up check would refuse.
fn refusal(err: ConfigError) -> Failure {
    let status = match err {
        ConfigError::Write { .. } | ConfigError::Read { .. } => Status::INTERNAL_ERROR,
        _ => Status::BAD_REQUEST,
    };
    Failure::new(status, format!("refused: {err}"))
}
