//! The meters of the actor kinds: messages sent and handled (their difference is the backlog),
//! restarts, handler latency; and their families in the registry, one sample per kind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::Counter;

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

    /// The kind of instance index `index`.
    pub fn at(index: u32) -> Option<ActorKind> {
        ActorKind::ALL.get(index as usize).copied()
    }
}

/// Upper bounds of the latency buckets, µs (a last bucket holds the rest).
pub const LATENCY_BUCKETS_MICROS: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 50_000, 250_000,
];

/// A latency histogram with fixed buckets, a few relaxed atomic adds per record.
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

    /// Encodes it in seconds, as Prometheus wants durations.
    fn encode(&self, encoder: &mut MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.counts();
        let buckets: Vec<(f64, u64)> = counts
            .iter()
            .enumerate()
            .map(|(at, count)| {
                let bound = LATENCY_BUCKETS_MICROS
                    .get(at)
                    .map_or(f64::MAX, |micros| *micros as f64 / 1e6);
                (bound, *count)
            })
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            self.sum_micros() as f64 / 1e6,
            counts.iter().sum(),
            &buckets,
            None,
        )
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

/// Every kind's meter.
pub type ActorMeters = [ActorMeter; ActorKind::ALL.len()];

/// What a per-actor family shows of each kind.
#[derive(Debug, Clone, Copy)]
pub(super) enum ActorFigure {
    Sent,
    Handled,
    Backlog,
    Restarts,
    Latency,
}

impl ActorFigure {
    /// Its count for `meter` (the latency's: the latencies recorded).
    pub(super) fn of(self, meter: &ActorMeter) -> u64 {
        match self {
            ActorFigure::Sent => meter.sent.get(),
            ActorFigure::Handled => meter.handled.get(),
            ActorFigure::Backlog => meter.backlog(),
            ActorFigure::Restarts => meter.restarts.get(),
            ActorFigure::Latency => meter.latency.counts().iter().sum(),
        }
    }
}

/// A family of the registry with one sample per actor kind (`{actor="value"}`).
#[derive(Debug, Clone)]
pub(super) struct ActorFamily {
    pub(super) meters: Arc<ActorMeters>,
    pub(super) figure: ActorFigure,
}

impl EncodeMetric for ActorFamily {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for kind in ActorKind::ALL {
            let labels = [("actor", kind.name())];
            let mut sample = encoder.encode_family(&labels)?;
            let meter = &self.meters[kind.index()];
            match self.metric_type() {
                MetricType::Counter => {
                    sample.encode_counter::<NoLabelSet, _, u64>(&self.figure.of(meter), None)?
                }
                MetricType::Histogram => meter.latency.encode(&mut sample)?,
                _ => sample.encode_gauge(&self.figure.of(meter))?,
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        match self.figure {
            ActorFigure::Backlog => MetricType::Gauge,
            ActorFigure::Latency => MetricType::Histogram,
            ActorFigure::Sent | ActorFigure::Handled | ActorFigure::Restarts => MetricType::Counter,
        }
    }
}
