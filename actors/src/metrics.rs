//! Counters the actors keep, shared with whoever inspects the process.

use std::sync::atomic::{AtomicU64, Ordering};

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

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The process's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages received from the broker.
    pub received: Counter,
    /// Received messages that could not be decoded (bad topic or payload).
    pub decode_errors: Counter,
    /// Received requests for a node this process does not serve.
    pub unrouted: Counter,
    /// Messages handed to the MQTT client.
    pub published: Counter,
    /// Messages dropped because the outbound queue was full.
    pub dropped: Counter,
    /// Outbound queue depth (a gauge).
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
    /// The election epoch this process holds or follows (a gauge).
    pub epoch: Counter,
    /// 1 while this process is the primary network controller (a gauge).
    pub primary: Counter,
    /// Messages of an older epoch ignored.
    pub fenced: Counter,
    /// Heartbeats published on behalf of silent nodes.
    pub dispatched: Counter,
}
