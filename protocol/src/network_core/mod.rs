//! [`NetworkCore`]: everything a network controller decides, sans-IO.
//!
//! It composes the [`Election`], the [`Liveness`] of every node and a [`NetworkView`] of the
//! network (the map, the candidacies, and the state each node was last told to have), and owns
//! every decision around them. Three inputs, each with an explicit `now`, each returning the
//! [`Command`]s to carry out:
//!
//! - [`NetworkCore::on_message`]: a message heard on the broker;
//! - [`NetworkCore::on_tick`]: time passes (call it every tenth of an interval or so);
//! - [`NetworkCore::on_connection`]: the broker connection went up or down.
//!
//! The actor that drives it reads the clock, feeds it, and publishes, counts and logs what it
//! returns; the deterministic simulation (`protocol/tests/election_simulation.rs`) drives the
//! same core. What it guarantees:
//!
//! - **Nothing stale**: whatever carries an epoch (the primary heartbeat, heartbeats on behalf,
//!   map answers) is published only while [`Election::acting_epoch`] allows it: primary,
//!   connected, and not holding its epoch after an absence.
//! - **No false failures**: silence is counted only while this controller could hear the
//!   network (windows restart after its reconnection or a pause of its process), with each
//!   node's own period, learned from its node info, its candidacy and its `heartbeat` value.
//! - **Each transition told once**: the primary dispatches the difference between what its
//!   liveness says and what the network was last told ([`NetworkView::state`]), so a new
//!   primary catches up on what its predecessor did not say, and never repeats what it did.

mod decide;
mod leases;
mod resolv;
mod rules;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::election::{Election, ElectionAction, ElectionConfig, Rank, Standing};
use crate::hadd::Hadd;
use crate::homeassistant::{Announcer, DiscoverySettings, Retain};
use crate::lease_table::LeaseTable;
use crate::liveness::{Liveness, LivenessConfig};
use crate::message::Message;
use crate::model::NodeState;
use crate::rate::TokenBucket;
use crate::topic::{filters, Topic};
use crate::view::NetworkView;
use resolv::ResolvWindows;
pub use resolv::RESOLV_WINDOW;

/// What a network controller is.
#[derive(Debug, Clone, Copy)]
pub struct CoreSetup {
    /// Its address (`cccc/0000`).
    pub hadd: Hadd,
    /// Its rank in the election.
    pub rank: Rank,
    /// Election timing.
    pub election: ElectionConfig,
    /// Liveness timing.
    pub liveness: LivenessConfig,
}

/// The broker connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Connected (a ConnAck, subscriptions made).
    Up,
    /// Lost.
    Down,
}

/// A gauge of the controller, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// Whether it acts as primary.
    Primary(bool),
    /// The highest epoch seen or claimed.
    Epoch(u64),
    /// Nodes by liveness state: ONLINE, PENDING, FAILED, DEAD, OFFLINE, any other.
    NodesByState([u64; 6]),
}

/// A counter of the controller, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A heartbeat on behalf of a node was published.
    Dispatched,
    /// A message of a replaced primary, or not from the primary, was ignored.
    Fenced,
    /// A message with an epoch its sender could not have claimed was refused.
    Forged,
    /// A node heard beyond the cap on watched nodes was refused.
    Crowded,
    /// An answer addressed to this controller (Home Assistant's sets are answered to the
    /// primary) said the request was done.
    Answered,
    /// An answer addressed to this controller refused the request (a 4xx or 5xx status).
    AnswerRefused,
    /// A value was not kept: never described by its node, or beyond its number of values.
    ValueDropped,
    /// A resolv request was answered with others of the same question, on the broadcast.
    ResolvCoalesced,
    /// An OFFLINE of the primary followed was refuted by the primary's heartbeat.
    OfflineRefuted,
    /// A lease request was served (granted, kept, locked, released, removed).
    LeaseAnswered,
    /// A lease request was refused (400, naming the field).
    LeaseRefused,
    /// Leases never confirmed by a heartbeat were withdrawn.
    LeaseWithdrawn,
    /// Two primaries leased one address (apart, in a partition): the higher epoch's stands.
    LeaseConflict,
}

/// Something worth a line in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// What the election did or refused: a claim, a step-down, a primary followed or lost, a
    /// hold and its end, a forged epoch. (Routine heartbeats and announcements are not noted.)
    Election(ElectionAction),
    /// This process did not run for `gap` (stopped, starved).
    Paused {
        /// How long.
        gap: Duration,
    },
    /// The broker connection is lost.
    Disconnected,
    /// The broker connection is back.
    Reconnected,
    /// Two primaries leased `hadd` to two nodes; the lease of the higher epoch stands.
    LeaseConflict {
        /// The address.
        hadd: Hadd,
        /// The epoch of the lease that stands.
        kept_epoch: u64,
        /// The epoch of the lease that lost the address.
        displaced_epoch: u64,
    },
}

/// What the driver must do.
// Publications are most commands: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Publish this message.
    Publish {
        /// The topic.
        topic: Topic,
        /// The message.
        message: Message,
    },
    /// Set a gauge.
    Set(Gauge),
    /// Increment a counter.
    Count(Counter),
    /// Log this.
    Note(Note),
    /// Publish this retained (Home Assistant's discovery and availability; an empty payload
    /// clears the topic).
    Retain(Retain),
    /// Publish this message retained (lease records: the table every controller keeps).
    PublishRetained {
        /// The topic.
        topic: Topic,
        /// The message.
        message: Message,
    },
    /// Subscribe to these filters again, for the broker to send their retained messages again
    /// (what this controller heard of them may have missed some).
    Resubscribe(Vec<String>),
}

/// The commands of one input.
#[derive(Debug, Default)]
struct Out(Vec<Command>);

impl Out {
    fn publish(&mut self, topic: Topic, message: Message) {
        self.0.push(Command::Publish { topic, message });
    }

    fn push(&mut self, command: Command) {
        self.0.push(command);
    }
}

/// One network controller's decisions.
#[derive(Debug, Clone)]
pub struct NetworkCore {
    setup: CoreSetup,
    election: Election,
    liveness: Liveness,
    view: NetworkView,
    asked: BTreeSet<Hadd>,
    map_asked_of: Option<Hadd>,
    connected: bool,
    last_tick: Option<Duration>,
    last_liveness_pass: Option<Duration>,
    last_census: Option<Duration>,
    reported: Option<(bool, u64)>,
    catch_up_at: Option<Duration>,
    /// When this controller claimed the epoch it holds.
    claimed_at: Option<Duration>,
    /// Discoveries of newcomers that may be sent now, and when that was counted.
    discovery_budget: TokenBucket,
    /// Home Assistant's discovery, when the primary publishes it.
    announcer: Option<Announcer>,
    /// Publications for Home Assistant that may be sent now, and when that was counted.
    announce_budget: TokenBucket,
    /// The resolv questions answered lately, and those waiting for the broadcast.
    resolv: ResolvWindows,
    /// The leases, served from while primary, kept from the records otherwise.
    leases: LeaseTable,
    /// The wall clock at `now` zero, in milliseconds (the leases' last sightings).
    wall_origin_ms: i64,
    /// The lowest epoch of the lease records refused as ahead of any primary known: they are
    /// read again once that epoch is.
    records_ahead: Option<u64>,
    /// Addresses of nodes forgotten once FAILED: never leased.
    forgotten: leases::Forgotten,
}

/// Retained publications for Home Assistant at once, at most: a thousand nodes are announced
/// over a few seconds ([`ANNOUNCE_RATE`]) rather than filling the outbound queue, where the
/// protocol's own messages (the primary's heartbeat above all) wait too.
const ANNOUNCE_BURST: f64 = 256.0;
/// Retained publications for Home Assistant per second, past the burst.
const ANNOUNCE_RATE: f64 = 2_000.0;

/// Newcomer controllers asked for their nodes at once, at most.
const DISCOVERY_BURST: f64 = 20.0;
/// Newcomer controllers asked per second, past the burst.
const DISCOVERY_RATE: f64 = 5.0;

impl NetworkCore {
    /// A controller started at `now`, not connected yet: feed [`Connection::Up`] once it is.
    pub fn new(setup: CoreSetup, now: Duration) -> Self {
        NetworkCore {
            election: Election::new(setup.hadd, setup.rank, setup.election, now),
            liveness: Liveness::new(setup.liveness),
            view: NetworkView::new(setup.election.interval / 2)
                .beside_original(setup.election.original_primary)
                .keeping_values(setup.liveness.max_values_per_node)
                .kept_by(setup.hadd),
            setup,
            asked: BTreeSet::new(),
            map_asked_of: None,
            connected: false,
            last_tick: None,
            last_liveness_pass: None,
            last_census: None,
            reported: None,
            catch_up_at: None,
            claimed_at: None,
            discovery_budget: TokenBucket::full(DISCOVERY_BURST, DISCOVERY_RATE, now),
            announcer: None,
            announce_budget: TokenBucket::full(ANNOUNCE_BURST, ANNOUNCE_RATE, now),
            resolv: ResolvWindows::default(),
            leases: LeaseTable::new(),
            wall_origin_ms: 0,
            records_ahead: None,
            forgotten: leases::Forgotten::default(),
        }
    }

    /// The same controller, reading the wall clock as `origin_ms` at `now` zero.
    pub fn with_wall_clock(mut self, origin_ms: i64) -> Self {
        self.wall_origin_ms = origin_ms;
        self
    }

    /// The same controller, starting with `leases` (from its state folder).
    pub fn with_leases(mut self, leases: LeaseTable) -> Self {
        self.leases = leases;
        self
    }

    /// The leases it knows.
    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// The same controller, publishing Home Assistant's discovery while it acts as primary.
    pub fn with_home_assistant(mut self, settings: DiscoverySettings) -> Self {
        self.announcer = Some(Announcer::new(settings));
        self
    }

    /// The filters of Home Assistant's discovery ([`Announcer::filters`]), when it publishes
    /// it: messages on them go to [`NetworkCore::on_home_assistant`], undecoded.
    pub fn home_assistant_filters(&self) -> Vec<String> {
        self.announcer
            .as_ref()
            .map(Announcer::filters)
            .unwrap_or_default()
    }

    /// A message heard at `now` on one of [`NetworkCore::home_assistant_filters`]: Home
    /// Assistant's birth, or what someone (this controller included) holds on a discovery
    /// topic of this network.
    pub fn on_home_assistant(
        &mut self,
        topic: &str,
        payload: &[u8],
        now: Duration,
    ) -> Vec<Command> {
        let mut out = Out::default();
        if let Some(announcer) = &mut self.announcer {
            announcer.heard(topic, payload, now);
        }
        self.announce(now, &mut out);
        out.0
    }

    /// Publishes what Home Assistant must be told of the view (nothing unless primary).
    fn announce(&mut self, now: Duration, out: &mut Out) {
        let primary = self.acting_epoch(now).map(|_| self.setup.hadd);
        if let Some(announcer) = &mut self.announcer {
            // A node's publications go together: the budget may be overdrawn by one node's.
            let budget = self.announce_budget.available(now).max(0.0) as usize;
            let published = announcer.announce(now, primary, &self.view, budget);
            self.announce_budget.spend(published.len(), now);
            for retain in published {
                out.push(Command::Retain(retain));
            }
            if self.connected && announcer.take_reread() {
                out.push(Command::Resubscribe(announcer.filters()));
            }
        }
    }

    /// The topic filters a network controller subscribes to.
    pub fn filters(&self) -> Vec<String> {
        vec![
            filters::HEARTBEATS.into(),
            filters::RESOLV.into(),
            filters::VALUES.into(),
            // Every discovery answer, whoever asked: the map follows the traffic.
            filters::BROADCAST_REPLIES.into(),
            filters::replies_to(self.setup.hadd),
            filters::LEASES.into(),
            filters::LEASE_RECORDS.into(),
        ]
    }

    /// Its setup.
    pub fn setup(&self) -> &CoreSetup {
        &self.setup
    }

    /// Where it stands in the election.
    pub fn standing(&self) -> Standing {
        self.election.standing()
    }

    /// The epoch it may publish with at `now`, if it acts as primary.
    pub fn acting_epoch(&self, now: Duration) -> Option<u64> {
        self.election.acting_epoch(now)
    }

    /// The highest epoch seen or claimed.
    pub fn epoch(&self) -> u64 {
        self.election.epoch()
    }

    /// Whether the primary it follows is alive at `now` (itself, or heard lately): a claim
    /// from a controller never announced is refused meanwhile.
    pub fn primary_alive(&self, now: Duration) -> bool {
        self.election.fence().primary_alive(now)
    }

    /// The network as it knows it.
    pub fn view(&self) -> &NetworkView {
        &self.view
    }

    /// The liveness of every node heard, as it judges it.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// A message heard at `now`.
    pub fn on_message(&mut self, topic: &Topic, message: &Message, now: Duration) -> Vec<Command> {
        let mut out = Out::default();
        self.decide(topic, message, now, &mut out);
        self.announce(now, &mut out);
        self.report(now, &mut out);
        out.0
    }

    /// Time passes: a pause of the process is noticed, the election and the liveness move on,
    /// the primary dispatches. (Its own node heartbeat is its node's, as any node's.)
    pub fn on_tick(&mut self, now: Duration) -> Vec<Command> {
        let mut out = Out::default();
        let gap = self.last_tick.map(|last| now.saturating_sub(last));
        self.last_tick = Some(now);
        if let Some(gap) = gap.filter(|gap| *gap > self.setup.election.interval / 2) {
            self.on_paused(gap, now, &mut out);
        }
        let actions = self.election.on_tick(now);
        self.carry_out(actions, now, &mut out);
        if self.catch_up_at.is_some_and(|at| now >= at) {
            self.catch_up_at = None;
            self.catch_up(now, &mut out);
        }
        if self.acting_epoch(now).is_none() {
            self.catch_up_at = None;
        }
        if self.connected && self.due(self.last_liveness_pass, now, 4) {
            self.last_liveness_pass = Some(now);
            let transitions = self.liveness.on_tick(now);
            for transition in transitions {
                self.reconcile(transition.hadd, now, &mut out);
            }
        }
        self.answer_waiting_resolv(now, &mut out);
        self.leases_on_tick(now, &mut out);
        self.announce(now, &mut out);
        self.report(now, &mut out);
        out.0
    }

    /// The broker connection went up or down at `now`.
    pub fn on_connection(&mut self, connection: Connection, now: Duration) -> Vec<Command> {
        let mut out = Out::default();
        match connection {
            Connection::Down => {
                self.connected = false;
                self.election.on_disconnected();
                out.push(Command::Note(Note::Disconnected));
            }
            Connection::Up => {
                self.connected = true;
                out.push(Command::Note(Note::Reconnected));
                let actions = self.election.on_connected(now);
                self.view.rejoined();
                let allowance_end = now + self.setup.election.rejoin;
                self.liveness.restart_windows(now, allowance_end);
                // What the primary's map gained meanwhile is asked for again.
                self.map_asked_of = None;
                if let Some(announcer) = &mut self.announcer {
                    announcer.reconnected();
                }
                self.carry_out(actions, now, &mut out);
            }
        }
        self.announce(now, &mut out);
        self.report(now, &mut out);
        out.0
    }

    /// Whether a periodic job run at `last` is due again: `per_interval` times an interval.
    fn due(&self, last: Option<Duration>, now: Duration, per_interval: u32) -> bool {
        let period = self.setup.election.interval / per_interval.max(1);
        last.is_none_or(|last| now.saturating_sub(last) >= period)
    }

    /// This process did not run for `gap`: what it heard meanwhile arrives late, so silence
    /// so far is not the nodes' fault, and after a long pause the election listens again.
    fn on_paused(&mut self, gap: Duration, now: Duration, out: &mut Out) {
        out.push(Command::Note(Note::Paused { gap }));
        if let Some(announcer) = &mut self.announcer {
            announcer.paused();
        }
        self.liveness.discount(gap, now);
        let actions = self.election.on_resumed(now, gap);
        if gap > self.setup.election.silence_limit() {
            self.view.rejoined();
        }
        self.carry_out(actions, now, out);
    }

    /// Sets the gauges that changed, and the census every 2 s.
    fn report(&mut self, now: Duration, out: &mut Out) {
        let state = (self.acting_epoch(now).is_some(), self.epoch());
        if self.reported != Some(state) {
            self.reported = Some(state);
            out.push(Command::Set(Gauge::Primary(state.0)));
            out.push(Command::Set(Gauge::Epoch(state.1)));
        }
        if self
            .last_census
            .is_some_and(|at| now.saturating_sub(at) < Duration::from_secs(2))
        {
            return;
        }
        self.last_census = Some(now);
        let mut counts = [0u64; 6];
        for (_, state) in self.liveness.states() {
            let bucket = match state {
                NodeState::Online => 0,
                NodeState::Pending => 1,
                NodeState::Failed => 2,
                NodeState::Dead => 3,
                NodeState::Offline => 4,
                _ => 5,
            };
            counts[bucket] += 1;
        }
        out.push(Command::Set(Gauge::NodesByState(counts)));
    }
}

#[cfg(test)]
mod tests;
