//! [`Announcer`]: what the primary publishes for Home Assistant, and when, sans-IO.
//!
//! It keeps, per node, what the broker holds on the topics of this network's discovery (a
//! hash of each retained payload, as published or heard), and publishes the difference with
//! what the network view says now:
//!
//! - a node or value that appears is announced, one whose description changed is announced
//!   again, and a value that disappears (or stops having a platform) is cleared;
//! - a node DEAD, or not on the map, has its configs and availability cleared (empty retained
//!   payloads), and is announced again if it comes back;
//! - availability follows the state the network was told (the node's own heartbeat or the
//!   primary's dispatch), so that what Home Assistant shows is what the network knows;
//! - what anyone else writes on those topics (a stranger's forged `offline`, a config of a
//!   node that does not exist, a primary of before a partition) is heard and put right, and
//!   said again [`REASSERT_AFTER`] later (two brokers bridged may each keep a different last
//!   word of two writers);
//! - only while acting as primary: a controller that becomes primary publishes everything (the
//!   same topics and `unique_id`s as its predecessor; only the `reply_hadd` of commands
//!   differs), since what it heard before may have missed a publication; one that steps down
//!   stops;
//! - after a reconnection (the broker may have lost its retained messages) or a pause of the
//!   process, and on Home Assistant's birth (`online` on `<prefix>/status`), everything is
//!   published again; the birth at most once per [`REPUBLISH_SPACING`], since anyone may
//!   publish it.
//!
//! Work is bounded per call: at most [`Announcer::announce`]'s `budget` publications (a node's
//! go together), the rest waiting for the next call, so that announcing a thousand nodes does
//! not flood the outbound queue at once. What is remembered of topics heard is bounded by
//! [`MAX_TOPICS`].

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use super::{
    availability_payload, availability_topic, node_configs, node_states, sanitize,
    DiscoverySettings,
};
use crate::hadd::Hadd;
use crate::model::NodeState;
use crate::view::NetworkView;

/// The least time between two complete republications asked by Home Assistant's birth.
pub const REPUBLISH_SPACING: Duration = Duration::from_secs(10);

/// The least time between two rounds of putting right what others wrote: two primaries at
/// once (for the moment a partition takes to heal) would otherwise answer each other's
/// availability as fast as the broker carries it.
pub const CORRECTION_SPACING: Duration = Duration::from_millis(250);

/// How long after someone else wrote on a topic it is published again, whatever it holds then:
/// two primaries at once (a partition healing) write on brokers bridged together, whose halves
/// may end up holding different last words; the one primary left says its own again once the
/// other has stopped.
pub const REASSERT_AFTER: Duration = Duration::from_secs(3);

/// Retained topics remembered at most (those heard beyond are not, and are not put right).
pub const MAX_TOPICS: usize = 100_000;

/// One retained publication: its topic and payload (empty: the topic is cleared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retain {
    /// The topic.
    pub topic: String,
    /// The payload; empty clears the topic.
    pub payload: Vec<u8>,
}

/// What the broker holds for one node, as far as this controller knows.
#[derive(Debug, Default, Clone)]
struct Held {
    /// Retained topics (configs and availability) and a hash of their payloads.
    topics: BTreeMap<String, u64>,
    /// Whether its configs were compared with its description since it last changed.
    described: bool,
}

/// What must be looked at again for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stale {
    /// Its state only.
    Availability,
    /// Its info or values (and its state).
    Description,
}

/// The primary's Home Assistant discovery.
#[derive(Debug, Clone)]
pub struct Announcer {
    settings: DiscoverySettings,
    /// `janitoo_<network>_`: the start of this network's node ids.
    id_prefix: String,
    /// `janitoo/<network>/availability/`.
    availability_prefix: String,
    /// `janitoo/<network>/state/`.
    state_prefix: String,
    held: BTreeMap<Hadd, Held>,
    held_topics: usize,
    stale: BTreeMap<Hadd, Stale>,
    /// Nodes whose topics someone else wrote, put right at most every [`CORRECTION_SPACING`].
    written: BTreeMap<Hadd, Stale>,
    /// When they were last put right.
    corrected_at: Option<Duration>,
    /// Topics someone else wrote on, said again at `reassert_at`.
    contested: BTreeMap<String, Hadd>,
    reassert_at: Option<Duration>,
    /// Every node must be looked at again (a new primary, a reconnection, a birth).
    everything_stale: bool,
    /// Whom it published as (its `reply_hadd` in commands), while acting as primary.
    acting_as: Option<Hadd>,
    /// A complete republication asked by Home Assistant, due then.
    republish_at: Option<Duration>,
    /// The last complete republication asked by Home Assistant.
    republished_at: Option<Duration>,
    /// What the broker holds must be asked again (resubscribing makes it send its retained
    /// messages again).
    reread: bool,
}

/// The hash of a topic whose payload is not known (published again at the next chance; a
/// payload hashing to it costs one publication more, nothing else).
const UNKNOWN: u64 = 0;

fn hash_of(payload: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    payload.hash(&mut hasher);
    hasher.finish()
}

/// `cccc_nnnn` as a HADD.
fn hadd_of_id(id: &str) -> Option<Hadd> {
    let (ctrl, node) = id.split_once('_')?;
    if ctrl.len() != 4 || node.len() != 4 {
        return None;
    }
    Some(Hadd::new(ctrl.parse().ok()?, node.parse().ok()?))
}

impl Announcer {
    /// An announcer that has published nothing yet.
    pub fn new(settings: DiscoverySettings) -> Self {
        let network = sanitize(&settings.network);
        Announcer {
            id_prefix: format!("janitoo_{network}_"),
            availability_prefix: format!("janitoo/{network}/availability/"),
            state_prefix: format!("janitoo/{network}/state/"),
            settings,
            held: BTreeMap::new(),
            held_topics: 0,
            stale: BTreeMap::new(),
            written: BTreeMap::new(),
            corrected_at: None,
            contested: BTreeMap::new(),
            reassert_at: None,
            everything_stale: false,
            acting_as: None,
            republish_at: None,
            republished_at: None,
            reread: false,
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &DiscoverySettings {
        &self.settings
    }

    /// The topic of Home Assistant's birth and last will.
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.settings.prefix)
    }

    /// The filters to subscribe to: Home Assistant's status, every discovery config (this
    /// network's are told apart by their node id), and this network's availability and state
    /// topics.
    pub fn filters(&self) -> Vec<String> {
        vec![
            self.status_topic(),
            format!("{}/+/+/+/config", self.settings.prefix),
            format!("{}+", self.availability_prefix),
            format!("{}#", self.state_prefix),
        ]
    }

    /// A node's info or values changed in the view.
    pub fn description_changed(&mut self, hadd: Hadd) {
        self.stale.insert(hadd, Stale::Description);
        if let Some(held) = self.held.get_mut(&hadd) {
            held.described = false;
        }
    }

    /// A node's state (as the network was told) may have changed.
    pub fn state_changed(&mut self, hadd: Hadd) {
        self.stale.entry(hadd).or_insert(Stale::Availability);
    }

    /// The broker connection is back: it may be a broker that lost its retained messages
    /// (what it holds comes again with the subscriptions).
    pub fn reconnected(&mut self) {
        self.forget();
    }

    /// This process did not run for a while: what it heard meanwhile may be lost, so what the
    /// broker holds is asked again ([`Announcer::take_reread`]).
    pub fn paused(&mut self) {
        self.forget();
        self.reread = true;
    }

    /// Whether the retained topics of [`Announcer::filters`] must be asked of the broker
    /// again (by subscribing to them again); asked once.
    pub fn take_reread(&mut self) -> bool {
        std::mem::take(&mut self.reread)
    }

    /// A message heard at `now` on one of [`Announcer::filters`]: Home Assistant's birth, or a
    /// retained discovery topic of this network (its own publication heard back, or anyone
    /// else's, which is put right when it differs). Anything else is ignored.
    pub fn heard(&mut self, topic: &str, payload: &[u8], now: Duration) {
        if topic == self.status_topic() {
            if payload == b"online" && self.republish_at.is_none() {
                let earliest = self
                    .republished_at
                    .map_or(now, |at| (at + REPUBLISH_SPACING).max(now));
                self.republish_at = Some(earliest);
            }
            return;
        }
        let (hadd, stale) = if let Some(id) = topic.strip_prefix(&self.availability_prefix) {
            match hadd_of_id(id) {
                Some(hadd) => (hadd, Stale::Availability),
                None => return,
            }
        } else if let Some(path) = topic.strip_prefix(&self.state_prefix) {
            match path.split('/').next().and_then(hadd_of_id) {
                Some(hadd) => (hadd, Stale::Description),
                None => return,
            }
        } else {
            let mut levels = topic.split('/').skip(2);
            let node = levels
                .next()
                .and_then(|id| id.strip_prefix(&self.id_prefix));
            match node.and_then(hadd_of_id) {
                Some(hadd) => (hadd, Stale::Description),
                None => return,
            }
        };
        let hash = (!payload.is_empty()).then(|| hash_of(payload));
        let known = self
            .held
            .get(&hadd)
            .and_then(|held| held.topics.get(topic).copied());
        if known == hash || (known.is_none() && self.held_topics >= MAX_TOPICS) {
            return;
        }
        let held = self.held.entry(hadd).or_default();
        match hash {
            Some(hash) => {
                if held.topics.insert(topic.to_owned(), hash).is_none() {
                    self.held_topics += 1;
                }
            }
            None => {
                held.topics.remove(topic);
                self.held_topics -= 1;
            }
        }
        if stale == Stale::Description {
            held.described = false;
        }
        // Put right on the next call, if this controller is the primary (one that becomes
        // primary looks at every node anyway).
        if self.acting_as.is_some() {
            let entry = self.written.entry(hadd).or_insert(stale);
            *entry = (*entry).max(stale);
            self.contested.insert(topic.to_owned(), hadd);
            self.reassert_at.get_or_insert(now + REASSERT_AFTER);
        }
    }

    /// Nodes waiting to be looked at (for tests and metrics).
    pub fn backlog(&self) -> usize {
        if self.everything_stale {
            self.held.len().max(self.stale.len()).max(1)
        } else {
            self.stale.len() + self.written.len()
        }
    }

    /// Publishes what differs from what the broker holds, at most `budget` publications (a
    /// node's go together); `primary` is this controller's address while it acts as primary,
    /// `None` otherwise.
    pub fn announce(
        &mut self,
        now: Duration,
        primary: Option<Hadd>,
        view: &NetworkView,
        budget: usize,
    ) -> Vec<Retain> {
        let Some(me) = primary else {
            self.acting_as = None;
            self.written.clear();
            self.contested.clear();
            self.reassert_at = None;
            return Vec::new();
        };
        if self.acting_as != Some(me) {
            // What was heard while not acting may have missed a publication (a pause, a
            // message lost): a new primary publishes everything, and reads again what the
            // broker holds, to clear what is not of its map.
            self.acting_as = Some(me);
            self.forget();
            self.reread = true;
        }
        if self.republish_at.is_some_and(|at| now >= at) {
            self.republish_at = None;
            self.republished_at = Some(now);
            self.forget();
        }
        if self.reassert_at.is_some_and(|at| now >= at) {
            self.reassert_at = None;
            for (topic, hadd) in std::mem::take(&mut self.contested) {
                if let Some(hash) = self
                    .held
                    .get_mut(&hadd)
                    .and_then(|held| held.topics.get_mut(&topic))
                {
                    *hash = UNKNOWN;
                }
                self.description_changed(hadd);
            }
        }
        let correct = self
            .corrected_at
            .is_none_or(|at| now.saturating_sub(at) >= CORRECTION_SPACING);
        if correct && !self.written.is_empty() {
            self.corrected_at = Some(now);
            for (hadd, stale) in std::mem::take(&mut self.written) {
                let entry = self.stale.entry(hadd).or_insert(stale);
                *entry = (*entry).max(stale);
            }
        }
        if self.everything_stale {
            self.everything_stale = false;
            let known = view.map().nodes().map(|node| node.hadd);
            let held: Vec<Hadd> = self.held.keys().copied().collect();
            for hadd in known.chain(held) {
                self.description_changed(hadd);
            }
        }
        let mut out = Vec::new();
        while out.len() < budget {
            let Some((hadd, stale)) = self.stale.pop_first() else {
                break;
            };
            self.sync_node(hadd, stale, me, view, &mut out);
        }
        out
    }

    /// Forgets what the broker holds on each topic (not which topics it holds, so that the
    /// unwanted ones are still cleared): everything is published again on the next call.
    fn forget(&mut self) {
        for held in self.held.values_mut() {
            held.described = false;
            for hash in held.topics.values_mut() {
                *hash = UNKNOWN;
            }
        }
        self.everything_stale = true;
    }

    /// Publishes `payload` on `topic` unless the broker holds it already.
    fn put(&mut self, hadd: Hadd, topic: String, payload: Vec<u8>, out: &mut Vec<Retain>) {
        let hash = hash_of(&payload);
        let held = self.held.entry(hadd).or_default();
        match held.topics.get(&topic) {
            Some(known) if *known == hash => return,
            Some(_) => {}
            None => self.held_topics += 1,
        }
        held.topics.insert(topic.clone(), hash);
        out.push(Retain { topic, payload });
    }

    fn sync_node(
        &mut self,
        hadd: Hadd,
        stale: Stale,
        me: Hadd,
        view: &NetworkView,
        out: &mut Vec<Retain>,
    ) {
        let state = view.state(hadd);
        let present = view.map().node(hadd).is_some() && state != NodeState::Dead;
        if !present {
            if let Some(held) = self.held.remove(&hadd) {
                self.held_topics -= held.topics.len();
                out.extend(held.topics.into_keys().map(|topic| Retain {
                    topic,
                    payload: Vec::new(),
                }));
            }
            return;
        }
        let availability = availability_topic(&self.settings, hadd);
        let payload = availability_payload(state).as_bytes().to_vec();
        self.put(hadd, availability.clone(), payload, out);
        let held = self.held.entry(hadd).or_default();
        if stale == Stale::Availability && held.described {
            return;
        }
        held.described = true;
        let mut configs = node_configs(&self.settings, view.map(), hadd, me);
        configs.extend(node_states(&self.settings, view.map(), hadd));
        let wanted: Vec<String> = configs.iter().map(|c| c.topic.clone()).collect();
        for config in configs {
            let payload = config
                .payload
                .map(|payload| payload.to_string().into_bytes())
                .unwrap_or_default();
            self.put(hadd, config.topic, payload, out);
        }
        let held = self.held.entry(hadd).or_default();
        let unwanted: Vec<String> = held
            .topics
            .keys()
            .filter(|topic| **topic != availability && !wanted.contains(topic))
            .cloned()
            .collect();
        for topic in unwanted {
            held.topics.remove(&topic);
            self.held_topics -= 1;
            out.push(Retain {
                topic,
                payload: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
