//! The lease table in the state folder (`[network] state_dir`, `leases.json`), so that it
//! survives a restart of every controller even on a broker that keeps nothing. Written on a
//! thread of its own after each change (the latest table wins when several wait), each time
//! to a new file renamed over the old one; the answers to the requests that changed it are
//! published only once it is on disk: a 200 means stored.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use actix::Recipient;
use janitoo_config::persist::write_atomically;
use janitoo_protocol::lease_table::{Lease, LeaseTable};
use janitoo_protocol::{Data, Hadd, LeaseReply, Message, Topic};
use tracing::{error, warn};

use crate::messages::Publish;

/// The file of the table in the state folder.
pub const LEASES_FILE: &str = "leases.json";

/// A table to store, and the answers waiting for it.
struct Job {
    snapshot: Vec<(Hadd, Data)>,
    answers: Vec<Publish>,
}

/// The writer's handle.
pub struct LeaseStore {
    jobs: mpsc::Sender<Job>,
}

/// The table of `dir`'s file: empty when there is none; a file that cannot be read is set
/// aside (`leases.json.unreadable`), said in the log, and the table starts empty.
pub fn load(dir: &Path) -> LeaseTable {
    let path = dir.join(LEASES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return LeaseTable::new(),
        Err(err) => {
            warn!(file = %path.display(), %err, "the lease table cannot be read: starting without it");
            return LeaseTable::new();
        }
    };
    match parse(&text) {
        Ok(table) => table,
        Err(why) => {
            let aside = path.with_extension("json.unreadable");
            let _ = std::fs::rename(&path, &aside);
            warn!(file = %path.display(), %why, aside = %aside.display(), "the lease table is not readable: set aside, starting without it (the primary's records on the broker fill it again)");
            LeaseTable::new()
        }
    }
}

fn parse(text: &str) -> Result<LeaseTable, String> {
    let tree: Data = serde_json::from_str(text).map_err(|err| err.to_string())?;
    let Data::Object(leases) = tree else {
        return Err("expected an object of leases by address".to_owned());
    };
    let mut table = LeaseTable::new();
    for (address, record) in &leases {
        let hadd = Hadd::parse(address).map_err(|err| format!("{address:?}: {err}"))?;
        let topic = Topic::LeaseRecord(hadd);
        let Ok(Message::LeaseRecord(record)) = Message::from_tree(&topic, record) else {
            return Err(format!("{address}: not a lease record"));
        };
        if let Some(lease) = Lease::from_record(hadd, &record, std::time::Duration::ZERO) {
            table.apply(lease);
        }
    }
    Ok(table)
}

/// What `table` is stored as.
pub fn snapshot(table: &LeaseTable) -> Vec<(Hadd, Data)> {
    table
        .leases()
        .map(|lease| (lease.hadd, Message::LeaseRecord(lease.record()).to_tree()))
        .collect()
}

impl LeaseStore {
    /// The writer of `dir`'s file; the answers go out through `publisher` once written.
    pub fn start(dir: PathBuf, publisher: Recipient<Publish>) -> LeaseStore {
        let (jobs, waiting) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lease-store".into())
            .spawn(move || write_jobs(&dir, &waiting, &publisher))
            .expect("a thread for the lease table's writer");
        LeaseStore { jobs }
    }

    /// Stores `snapshot`, then publishes `answers`.
    pub fn store(&self, snapshot: Vec<(Hadd, Data)>, answers: Vec<Publish>) {
        let _ = self.jobs.send(Job { snapshot, answers });
    }
}

fn write_jobs(dir: &Path, waiting: &mpsc::Receiver<Job>, publisher: &Recipient<Publish>) {
    while let Ok(first) = waiting.recv() {
        let mut latest = first.snapshot;
        let mut answers = first.answers;
        for later in waiting.try_iter() {
            latest = later.snapshot;
            answers.extend(later.answers);
        }
        let written = write(dir, &latest);
        if let Err(err) = &written {
            error!(folder = %dir.display(), %err, "the lease table could not be stored ([network] state_dir): its requests are answered 500");
        }
        for mut answer in answers {
            if let (Err(err), Message::LeaseReply(reply)) = (&written, &mut answer.message) {
                *reply = LeaseReply {
                    msg_error: Some(format!("the lease could not be stored: {err}")),
                    ..LeaseReply::status(500, &reply.rep_uuid)
                };
            }
            publisher.do_send(answer);
        }
    }
}

fn write(dir: &Path, snapshot: &[(Hadd, Data)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tree: serde_json::Map<String, Data> = snapshot
        .iter()
        .map(|(hadd, record)| (hadd.to_string(), record.clone()))
        .collect();
    let text = serde_json::to_vec_pretty(&Data::Object(tree))?;
    write_atomically(&dir.join(LEASES_FILE), &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use janitoo_protocol::lease::{HeldLease, LeaseRecord};
    use janitoo_protocol::NodeState;

    #[test]
    fn a_stored_table_loads_back_and_a_bad_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = LeaseTable::new();
        let record = LeaseRecord {
            epoch: 65_537,
            held: Some(HeldLease {
                name: "pond".into(),
                location: "garden".into(),
                cmd_classes: Data::from("0x0000"),
                state: NodeState::Online,
                confirmed: true,
                last_seen_ms: Some(1_765_000_000_000),
            }),
        };
        let hadd = Hadd::new(10, 1);
        table.apply(Lease::from_record(hadd, &record, std::time::Duration::ZERO).unwrap());
        write(dir.path(), &snapshot(&table)).unwrap();
        let loaded = load(dir.path());
        assert_eq!(loaded.get(hadd), table.get(hadd));
        assert_eq!(loaded.len(), 1);
        std::fs::write(dir.path().join(LEASES_FILE), "{\"0010/0001\": 3}").unwrap();
        assert!(load(dir.path()).is_empty());
        assert!(dir.path().join("leases.json.unreadable").exists());
        assert!(!dir.path().join(LEASES_FILE).exists());
    }
}
