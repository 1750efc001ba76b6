//! Counters the actors keep, shared with whoever inspects the process: the Prometheus page,
//! the controller node's metrics values, `janitoo top`.
//!
//! Every actor kind has an [`ActorMeter`]: messages sent to it and handled by it (their
//! difference is its backlog), a histogram of its handlers' latency, its restarts. Counting is
//! a few relaxed atomic adds per message; [`Metrics::set_instrumented`] turns the per-message
//! part off, to measure what it costs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A monotonic counter or a gauge.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Adds one to a gauge if it is below `limit`; whether it was.
    pub fn increment_below(&self, limit: u64) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < limit).then_some(now + 1)
            })
            .is_ok()
    }

    /// Takes one from a gauge (never below zero).
    pub fn decrement(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_sub(1)
            });
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The actor kinds of a controller process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActorKind {
    /// `BusActor`.
    Bus,
    /// `NodeActor`.
    Node,
    /// `ValueActor`.
    Value,
    /// `MqttBridge`.
    Bridge,
    /// `NetworkSupervisor` (the network actor: map, election, liveness).
    Supervisor,
    /// The settings writer (a thread, `SettingsWriter`).
    ConfigWriter,
    /// `WebHub`, the web manager.
    Web,
}

impl ActorKind {
    /// Every kind, in the order of their instance index in the metrics values.
    pub const ALL: [ActorKind; 7] = [
        ActorKind::Bus,
        ActorKind::Node,
        ActorKind::Value,
        ActorKind::Bridge,
        ActorKind::Supervisor,
        ActorKind::ConfigWriter,
        ActorKind::Web,
    ];

    /// Its name in metrics (`value`).
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Bus => "bus",
            ActorKind::Node => "node",
            ActorKind::Value => "value",
            ActorKind::Bridge => "bridge",
            ActorKind::Supervisor => "supervisor",
            ActorKind::ConfigWriter => "config_writer",
            ActorKind::Web => "web",
        }
    }

    /// Its instance index in the metrics values.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds of the latency buckets, µs (a last bucket holds the rest).
pub const LATENCY_BUCKETS_MICROS: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 50_000, 250_000,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one latency.
    pub fn record(&self, micros: u64) {
        let bucket = LATENCY_BUCKETS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MICROS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The count of each bucket (not cumulative), the last one unbounded.
    pub fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect()
    }

    /// The sum of every latency recorded, µs.
    pub fn sum_micros(&self) -> u64 {
        self.sum_micros.load(Ordering::Relaxed)
    }

    /// The upper bound (µs) of the bucket holding quantile `q` (0 to 1) of the latencies, or
    /// `None` with nothing recorded; the last bucket reports twice the last bound.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (at, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(
                    LATENCY_BUCKETS_MICROS
                        .get(at)
                        .copied()
                        .unwrap_or(LATENCY_BUCKETS_MICROS[LATENCY_BUCKETS_MICROS.len() - 1] * 2),
                );
            }
        }
        None
    }
}

/// The meter of one actor kind.
#[derive(Debug, Default)]
pub struct ActorMeter {
    /// Messages sent to actors of this kind.
    pub sent: Counter,
    /// Messages they handled.
    pub handled: Counter,
    /// Restarts after a panic.
    pub restarts: Counter,
    /// Handler latency (the handler itself: component calls run on the blocking pool and are
    /// not counted here).
    pub latency: Histogram,
}

impl ActorMeter {
    /// Messages sent and not handled yet.
    pub fn backlog(&self) -> u64 {
        self.sent.get().saturating_sub(self.handled.get())
    }
}

/// The process's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages received from the broker.
    pub received: Counter,
    /// Received messages that could not be decoded (bad topic or payload).
    pub decode_errors: Counter,
    /// Retained messages ignored (Janitoo never retains: they are strangers').
    pub retained: Counter,
    /// Messages over the payload limit, received (ignored, or answered 400) or not sent.
    pub oversize: Counter,
    /// Rewrites of the configuration file (one covers every set queued behind it).
    pub settings_rewrites: Counter,
    /// Write-backs of settings that failed (the sets were answered 500).
    pub write_failures: Counter,
    /// Received requests for a node this process does not serve.
    pub unrouted: Counter,
    /// Messages handed to the MQTT client.
    pub published: Counter,
    /// Messages dropped because the outbound queue was full.
    pub dropped: Counter,
    /// Messages waiting in the outbound queues, the protocol's and the retained publications' (a
    /// gauge).
    pub queue_depth: Counter,
    /// Connections to the broker (the first one included).
    pub connections: Counter,
    /// Connection losses.
    pub disconnections: Counter,
    /// Restarts of value and node actors after a panic.
    pub restarts: Counter,
    /// Requests answered.
    pub requests: Counter,
    /// Requests refused (4xx, 5xx).
    pub refused: Counter,
    /// Requests accepted and not answered yet: the work really queued (a gauge).
    pub in_flight: Counter,
    /// Requests turned away because too many were in flight: answered 503, or dropped when
    /// they said nowhere to answer.
    pub shed: Counter,
    /// The election epoch this process holds or follows (a gauge).
    pub epoch: Counter,
    /// 1 while this process is the primary network controller (a gauge).
    pub primary: Counter,
    /// Messages of an older epoch, or not from the primary, ignored.
    pub fenced: Counter,
    /// Control messages not believed on a keyed network: unsigned, badly signed, stale or
    /// replayed.
    pub control_refused: Counter,
    /// Messages with an epoch their sender could not have claimed, refused.
    pub forged: Counter,
    /// Nodes refused beyond the cap on watched nodes (`[network] max_nodes`).
    pub nodes_refused: Counter,
    /// Heartbeats published on behalf of silent nodes.
    pub dispatched: Counter,
    /// Retained publications for Home Assistant (discovery configs, availability, clearings).
    pub announced: Counter,
    /// Answers addressed to the network controller that said the request was done (Home
    /// Assistant's sets are answered to the primary).
    pub answered: Counter,
    /// Answers addressed to the network controller that refused the request.
    pub answers_refused: Counter,
    /// Nodes of the supervisor's map by liveness state, as [`NODE_STATES`] orders them
    /// (gauges, refreshed every 2 s; a network controller only).
    pub nodes_by_state: [Counter; 6],
    actors: [ActorMeter; 7],
    uninstrumented: AtomicBool,
}

/// The liveness states of [`Metrics::nodes_by_state`], in order; OTHER counts the start-up
/// states (BOOT, CONFIG, SYSTEM, INIT) and UNKNOWN.
pub const NODE_STATES: [&str; 6] = ["ONLINE", "PENDING", "FAILED", "DEAD", "OFFLINE", "OTHER"];

impl Metrics {
    /// The meter of actor kind `kind`.
    pub fn actor(&self, kind: ActorKind) -> &ActorMeter {
        &self.actors[kind.index()]
    }

    /// Counts a message sent to an actor of kind `kind`.
    pub fn sent(&self, kind: ActorKind) {
        if !self.uninstrumented.load(Ordering::Relaxed) {
            self.actor(kind).sent.increment();
        }
    }

    /// Starts timing a handler of `kind`: the guard counts the message handled and records
    /// the latency when it is dropped.
    pub fn handling(self: &Arc<Self>, kind: ActorKind) -> Handling {
        let on = !self.uninstrumented.load(Ordering::Relaxed);
        Handling {
            metrics: on.then(|| (self.clone(), kind, Instant::now())),
        }
    }

    /// Turns the per-message counting on (the default) or off.
    pub fn set_instrumented(&self, on: bool) {
        self.uninstrumented.store(!on, Ordering::Relaxed);
    }
}

/// A handler being timed; see [`Metrics::handling`].
pub struct Handling {
    metrics: Option<(Arc<Metrics>, ActorKind, Instant)>,
}

impl Drop for Handling {
    fn drop(&mut self) {
        if let Some((metrics, kind, start)) = self.metrics.take() {
            let meter = metrics.actor(kind);
            meter.handled.increment();
            meter
                .latency
                .record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_is_what_was_sent_and_not_handled() {
        let metrics = Arc::new(Metrics::default());
        for _ in 0..3 {
            metrics.sent(ActorKind::Value);
        }
        drop(metrics.handling(ActorKind::Value));
        let meter = metrics.actor(ActorKind::Value);
        assert_eq!((meter.handled.get(), meter.backlog()), (1, 2));
        assert_eq!(metrics.actor(ActorKind::Node).backlog(), 0);
        assert_eq!(meter.latency.counts().iter().sum::<u64>(), 1);
    }

    #[test]
    fn quantiles_are_bucket_bounds() {
        let histogram = Histogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        for micros in [3, 4, 7, 40, 900, 1_000_000] {
            histogram.record(micros);
        }
        assert_eq!(histogram.quantile(0.5), Some(10));
        assert_eq!(histogram.quantile(0.66), Some(50));
        assert_eq!(histogram.quantile(0.8), Some(1_000));
        assert_eq!(histogram.quantile(1.0), Some(500_000));
        assert_eq!(histogram.sum_micros(), 1_000_954);
    }

    #[test]
    fn uninstrumented_counts_nothing_per_message() {
        let metrics = Arc::new(Metrics::default());
        metrics.set_instrumented(false);
        metrics.sent(ActorKind::Bus);
        drop(metrics.handling(ActorKind::Bus));
        assert_eq!(metrics.actor(ActorKind::Bus).handled.get(), 0);
        assert_eq!(metrics.actor(ActorKind::Bus).sent.get(), 0);
    }
}
