//! Another process beating on one of this process's addresses ([`OwnBeats`]): the bridge
//! hears its own nodes' heartbeat topics, counts what it sent, and tells what it finds (a
//! log line per address and [`DUPLICATE_WINDOW`], the `bridge_duplicate_addresses` counter,
//! and the controller's [`Duplicates`] watch, which moves an auto node).
//!
//! The per-address subscriptions are made only while no observer wants every heartbeat
//! (`/dhcp/heartbeat/#`), and dropped when one does: two overlapping subscriptions may hand
//! one beat twice.

use std::collections::HashMap;
use std::time::Duration;

use janitoo_protocol::duplicate::{shared_address_value, Duplicate, OwnBeats, DUPLICATE_WINDOW};
use janitoo_protocol::topic::filters::HEARTBEATS;
use janitoo_protocol::{Hadd, Topic};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::error;

use super::MqttBridge;

/// What the bridge found last: another process on one of this process's addresses.
pub type Duplicates = watch::Receiver<Option<Duplicate>>;

/// The beats of this process's addresses, and what was found.
pub(super) struct OwnAddresses {
    beats: OwnBeats,
    /// The per-address heartbeat filters subscribed (none once every heartbeat is wanted).
    filters: Vec<String>,
    every_heartbeat: bool,
    logged: HashMap<Hadd, Instant>,
    found: watch::Sender<Option<Duplicate>>,
    /// When the bridge was made: `now` for [`OwnBeats`].
    origin: Instant,
    /// When the last periodic report found an address shared (none: the next finding is
    /// reported at once).
    reported_at: Option<Instant>,
}

impl OwnAddresses {
    pub(super) fn new() -> OwnAddresses {
        OwnAddresses {
            beats: OwnBeats::default(),
            filters: Vec::new(),
            every_heartbeat: false,
            logged: HashMap::new(),
            found: watch::channel(None).0,
            origin: Instant::now(),
            reported_at: None,
        }
    }

    pub(super) fn subscribe(&self) -> Duplicates {
        self.found.subscribe()
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }
}

impl MqttBridge {
    /// Watches `hadds` (a bus's nodes): the filters to subscribe to for them.
    pub(super) fn watch_own(&mut self, hadds: &[Hadd]) -> Vec<String> {
        let own = &mut self.own;
        own.beats.watch(hadds.iter().copied());
        if own.every_heartbeat {
            return Vec::new();
        }
        let filters: Vec<String> = hadds
            .iter()
            .map(|hadd| Topic::Heartbeat(*hadd).to_string())
            .collect();
        own.filters.extend(filters.iter().cloned());
        filters
    }

    /// An observer's `filters`: the per-address filters to drop, when it wants every
    /// heartbeat.
    pub(super) fn own_filters_covered_by(&mut self, filters: &[String]) -> Vec<String> {
        if !filters.iter().any(|filter| filter == HEARTBEATS) {
            return Vec::new();
        }
        self.own.every_heartbeat = true;
        let dropped = std::mem::take(&mut self.own.filters);
        self.filters.retain(|filter| !dropped.contains(filter));
        dropped
    }

    /// Says again, on each address another process may beat on, that it is shared (every
    /// [`SHARED_REPORT_EVERY`](janitoo_protocol::duplicate::SHARED_REPORT_EVERY)).
    pub(super) fn report_shared(&mut self) {
        let sharing = self.own.beats.sharing(self.own.now());
        self.own.reported_at = (!sharing.is_empty()).then(Instant::now);
        for duplicate in sharing {
            let (topic, message) = shared_address_value(&duplicate);
            self.send(&topic, &message);
        }
    }

    /// Whether another process beats on `hadd` now: its OFFLINE at a stop is not ours to
    /// publish.
    pub(super) fn shares(&self, hadd: Hadd) -> bool {
        self.own.beats.shared(hadd, self.own.now())
    }

    /// A beat of ours on `topic` is being sent.
    pub(super) fn sent_own(&mut self, topic: &Topic) {
        if let Topic::Heartbeat(hadd) = topic {
            let now = self.own.now();
            self.own.beats.sent(*hadd, now);
        }
    }

    /// A live publication on `topic` was heard: counted when it is a beat on one of ours.
    pub(super) fn heard_own(&mut self, topic: &str, retain: bool) {
        let Some(hadd) = topic
            .strip_prefix("/dhcp/heartbeat/")
            .and_then(|rest| rest.parse::<Hadd>().ok())
        else {
            return;
        };
        if retain || !self.own.beats.watches(hadd) {
            return;
        }
        let now = self.own.now();
        let Some(duplicate) = self.own.beats.heard(hadd, now) else {
            return;
        };
        self.metrics.duplicate_addresses.increment();
        let at = Instant::now();
        let log = self
            .own
            .logged
            .get(&hadd)
            .is_none_or(|last| at.duration_since(*last) >= DUPLICATE_WINDOW);
        if log {
            self.own.logged.insert(hadd, at);
            error!(
                %hadd,
                foreign_beats = duplicate.foreign_beats,
                within_s = DUPLICATE_WINDOW.as_secs(),
                "another process beats on this node's address: two nodes share it (a fixed \
                 `hadd` given twice, or an auto node on the address of a fixed one the \
                 primary never heard); an auto node moves, a fixed one must be given another \
                 address"
            );
        }
        // For the tools (`janitoo status`): the address is shared (again every
        // SHARED_REPORT_EVERY while it lasts).
        if self.own.reported_at.is_none() {
            let (topic, message) = shared_address_value(&duplicate);
            self.send(&topic, &message);
        }
        self.own.found.send_replace(Some(duplicate));
    }
}
