//! Liveness: which nodes are alive, from their own heartbeats, counted in missed periods.
//!
//! Sans-IO: the caller feeds heartbeats and ticks with an explicit `now` (time since any fixed
//! origin) and publishes the returned [`Transition`]s on behalf of the nodes. The original's
//! bugs (§3.4, §9 item 6) are fixed: missed *periods* of each node's own heartbeat are counted
//! (not 1-second ticks), each transition is reported once (no re-dispatch storm), DEAD is
//! reachable, and heartbeats sent on behalf of a node must not be fed back here (the caller
//! drops them: they carry an `observer`).
//!
//! Silence is counted only while the caller could have heard the node: after its own
//! reconnection or a pause of its process, the caller restarts every node's window
//! ([`Liveness::restart_windows`]), and a node's window restarts when its period changes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::hadd::Hadd;
use crate::model::NodeState;

/// The longest heartbeat period a node may have (the original's `heartbeat` value range).
pub const MAX_PERIOD: Duration = Duration::from_secs(3000);

/// Timing rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LivenessConfig {
    /// Missed periods before PENDING, and as many again before FAILED (the original's 3).
    pub heartbeat_count: u32,
    /// Time in FAILED before DEAD (the original's 604,800 s, a week).
    pub dead_after: Duration,
    /// The period of a node whose own period is not known yet (the original's 30 s).
    pub default_period: Duration,
    /// Tolerance on a period, as the original's 1.1 factor: a period counts as missed after
    /// `period * tolerance`.
    pub tolerance: f64,
    /// Nodes watched at most: a node heard beyond it is refused (and counted), so that
    /// heartbeats of made-up addresses cannot grow the map without end.
    pub max_nodes: usize,
    /// Values (instances) kept of each node: what it described, up to this number
    /// ([`crate::network_map::NetworkMap::with_max_values_per_node`]).
    pub max_values_per_node: usize,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            heartbeat_count: 3,
            dead_after: Duration::from_secs(604_800),
            default_period: Duration::from_secs(30),
            tolerance: 1.1,
            max_nodes: crate::limits::DEFAULT_MAX_NODES,
            max_values_per_node: crate::limits::DEFAULT_MAX_VALUES_PER_NODE,
        }
    }
}

/// A node's state changed; the primary publishes it on the node's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The node.
    pub hadd: Hadd,
    /// Its state before.
    pub from: NodeState,
    /// Its state now.
    pub to: NodeState,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    state: NodeState,
    /// Silence is counted from here: the last heartbeat, or a restart of the window (which may
    /// lie ahead, to give nodes time to come back after a reconnection).
    window_start: Duration,
    since: Duration,
    /// When its own heartbeat was last handled (or, never heard, when it was first watched).
    heard: Duration,
    /// The period its PENDING or FAILED was judged with, when that state is this controller's
    /// judgement of its silence (not its own word, nor another controller's): judged again if
    /// the node says its period is longer (see [`Liveness::set_period`]).
    judged_with: Option<Duration>,
}

/// The liveness of every node seen.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    config: LivenessConfig,
    nodes: BTreeMap<Hadd, Tracked>,
    periods: BTreeMap<Hadd, Duration>,
    /// Nodes whose period was told before this controller was away (disconnected, paused): a
    /// change told meanwhile was missed, so a longer period from another controller's map is
    /// believed until the node tells its own again.
    doubtful: BTreeSet<Hadd>,
}

impl Liveness {
    /// Stops watching `hadd` (and forgets its period).
    pub fn forget(&mut self, hadd: Hadd) {
        self.nodes.remove(&hadd);
        self.periods.remove(&hadd);
        self.doubtful.remove(&hadd);
    }

    /// Every period told so far may have changed unheard (this controller was away).
    fn doubt_periods(&mut self) {
        self.doubtful.extend(self.periods.keys().copied());
    }

    /// How many nodes it watches.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it watches no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// No node known yet.
    pub fn new(config: LivenessConfig) -> Self {
        Liveness {
            config,
            ..Liveness::default()
        }
    }

    /// The heartbeat period of `hadd`, told at `now` by the node itself (its node info, its
    /// `heartbeat` value, its candidacy). A period outside 0 to [`MAX_PERIOD`] is ignored. A
    /// new period restarts the node's window, since the node applies it at once.
    ///
    /// A PENDING or FAILED judged here with a shorter period (one this controller missed the
    /// change of, while it was away) is judged again with the longer one, from the node's last
    /// heartbeat: back to ONLINE when it has missed fewer than `heartbeat_count` of the new
    /// periods, FAILED back to PENDING when fewer than twice that. Only ever backwards, and
    /// told to no one: a state already told stays told until the node's next heartbeat (only
    /// its own word says it is alive). True when the period changed.
    pub fn set_period(&mut self, hadd: Hadd, period: Duration, now: Duration) -> bool {
        self.doubtful.remove(&hadd);
        self.change_period(hadd, period, now)
    }

    fn change_period(&mut self, hadd: Hadd, period: Duration, now: Duration) -> bool {
        if period.is_zero() || period > MAX_PERIOD || self.periods.get(&hadd) == Some(&period) {
            return false;
        }
        self.periods.insert(hadd, period);
        let patience = self.patience(hadd);
        if let Some(tracked) = self.nodes.get_mut(&hadd) {
            if tracked
                .judged_with
                .is_some_and(|judged_with| period > judged_with)
            {
                let silent = now.saturating_sub(tracked.heard);
                let judged = if silent < patience {
                    NodeState::Online
                } else if silent < patience * 2 {
                    NodeState::Pending
                } else {
                    tracked.state
                };
                if judged != tracked.state {
                    tracked.state = judged;
                    tracked.since = now;
                    tracked.judged_with = (judged == NodeState::Pending).then_some(period);
                }
            }
            let restarted = restarted(tracked.state, now, now, patience);
            tracked.window_start = tracked.window_start.max(restarted);
        }
        true
    }

    /// The heartbeat period of `hadd` as another controller's map tells it (second hand, maybe
    /// older than what the node said since): taken when the node has not told its own, or when
    /// what it told may be out of date (this controller was away since) and this one is longer:
    /// of two periods that may be stale, the longer never makes a node PENDING too early.
    pub fn suggest_period(&mut self, hadd: Hadd, period: Duration, now: Duration) -> bool {
        let believed = match self.periods.get(&hadd) {
            None => true,
            Some(known) => self.doubtful.contains(&hadd) && period > *known,
        };
        believed && self.change_period(hadd, period, now)
    }

    /// The heartbeat period of `hadd` (the default until it is told).
    pub fn period(&self, hadd: Hadd) -> Duration {
        self.periods
            .get(&hadd)
            .copied()
            .unwrap_or(self.config.default_period)
    }

    /// The silence after which a node is PENDING: `heartbeat_count` tolerant periods.
    fn patience(&self, hadd: Hadd) -> Duration {
        self.period(hadd)
            .mul_f64(self.config.tolerance)
            .saturating_mul(self.config.heartbeat_count.max(1))
    }

    fn set(&mut self, hadd: Hadd, to: NodeState, now: Duration, transitions: &mut Vec<Transition>) {
        let tracked = self.nodes.entry(hadd).or_insert(Tracked {
            state: NodeState::Unknown,
            window_start: now,
            since: now,
            heard: now,
            judged_with: None,
        });
        tracked.judged_with = None;
        if tracked.state != to {
            transitions.push(Transition {
                hadd,
                from: tracked.state,
                to,
            });
            tracked.state = to;
            tracked.since = now;
        }
    }

    /// Sets what its silence says of `hadd`.
    fn judge(
        &mut self,
        hadd: Hadd,
        to: NodeState,
        now: Duration,
        transitions: &mut Vec<Transition>,
    ) {
        let period = self.period(hadd);
        self.set(hadd, to, now, transitions);
        if let Some(tracked) = self.nodes.get_mut(&hadd) {
            tracked.judged_with = Some(period);
        }
    }

    /// A node's own heartbeat. An alive state (ONLINE, BOOT...) or a reported failure refreshes
    /// it; OFFLINE takes effect at once, and OFFLINE from a controller (its clean stop, or its
    /// Last Will) covers every node of that controller.
    pub fn on_heartbeat(&mut self, hadd: Hadd, state: NodeState, now: Duration) -> Vec<Transition> {
        let mut transitions = Vec::new();
        if state == NodeState::Offline && hadd.is_controller() {
            let covered: Vec<Hadd> = self
                .nodes
                .keys()
                .copied()
                .filter(|node| node.ctrl == hadd.ctrl)
                .collect();
            for node in covered.into_iter().chain([hadd]) {
                self.set(node, NodeState::Offline, now, &mut transitions);
            }
        } else {
            self.set(hadd, state, now, &mut transitions);
        }
        if state != NodeState::Offline {
            if let Some(tracked) = self.nodes.get_mut(&hadd) {
                tracked.window_start = tracked.window_start.max(now);
                tracked.heard = now;
            }
        }
        transitions
    }

    /// Missed periods of `hadd` at `now`.
    fn missed(&self, hadd: Hadd, tracked: &Tracked, now: Duration) -> u32 {
        let period = self
            .period(hadd)
            .mul_f64(self.config.tolerance)
            .as_nanos()
            .max(1);
        let silent = now.saturating_sub(tracked.window_start).as_nanos();
        u32::try_from(silent / period).unwrap_or(u32::MAX)
    }

    /// Applies the timeouts at `now`: alive to PENDING after `heartbeat_count` missed periods,
    /// PENDING to FAILED after as many again, FAILED to DEAD after `dead_after` of silence. A
    /// node silent long enough goes through PENDING and FAILED in one tick, both reported, in
    /// order.
    pub fn on_tick(&mut self, now: Duration) -> Vec<Transition> {
        let count = self.config.heartbeat_count.max(1);
        let mut transitions = Vec::new();
        let hadds: Vec<Hadd> = self.nodes.keys().copied().collect();
        for hadd in hadds {
            let tracked = self.nodes[&hadd];
            let missed = self.missed(hadd, &tracked, now);
            if tracked.state.is_alive() && missed >= count {
                self.judge(hadd, NodeState::Pending, now, &mut transitions);
            }
            if self.nodes[&hadd].state == NodeState::Pending && missed >= 2 * count {
                self.judge(hadd, NodeState::Failed, now, &mut transitions);
            }
            let tracked = self.nodes[&hadd];
            if tracked.state == NodeState::Failed
                && missed >= 2 * count
                && now.saturating_sub(tracked.since) >= self.config.dead_after
            {
                self.set(hadd, NodeState::Dead, now, &mut transitions);
            }
        }
        transitions
    }

    /// The caller could not hear the network until `now` (it was disconnected, or its process
    /// was paused): silence so far is not the nodes' fault. Every alive node gets a full window
    /// from `now`, and at least until `allowance_end` (time for every client to come back
    /// after a broker restart); a PENDING node keeps the missed periods it had, so it fails
    /// no sooner than that either.
    pub fn restart_windows(&mut self, now: Duration, allowance_end: Duration) {
        self.doubt_periods();
        let hadds: Vec<Hadd> = self.nodes.keys().copied().collect();
        for hadd in hadds {
            let patience = self.patience(hadd);
            if let Some(tracked) = self.nodes.get_mut(&hadd) {
                tracked.window_start = restarted(tracked.state, now, allowance_end, patience);
            }
        }
    }

    /// The caller heard nothing for `gap` until `now` because its own process was paused: that
    /// time is not counted as anyone's silence. (A window already restarted since, by a
    /// reconnection noticed first, is left as it is.)
    pub fn discount(&mut self, gap: Duration, now: Duration) {
        self.doubt_periods();
        for tracked in self.nodes.values_mut() {
            if tracked.window_start < now {
                tracked.window_start = (tracked.window_start + gap).min(now);
            }
        }
    }

    /// What the primary's map says of `hadd` (a resolv answer), learned at `now`: taken when
    /// this replica has not heard the node itself, with a window from `now`.
    pub fn adopt(&mut self, hadd: Hadd, state: NodeState, now: Duration) {
        if state == NodeState::Unknown {
            return;
        }
        let patience = self.patience(hadd);
        self.nodes.entry(hadd).or_insert(Tracked {
            state,
            window_start: restarted(state, now, now, patience),
            since: now,
            heard: now,
            judged_with: None,
        });
    }

    /// The state of `hadd` (UNKNOWN when never seen).
    pub fn state(&self, hadd: Hadd) -> NodeState {
        self.nodes
            .get(&hadd)
            .map_or(NodeState::Unknown, |tracked| tracked.state)
    }

    /// Every node seen, with its state.
    pub fn states(&self) -> impl Iterator<Item = (Hadd, NodeState)> + '_ {
        self.nodes
            .iter()
            .map(|(hadd, tracked)| (*hadd, tracked.state))
    }
}

/// Where a window restarted at `now` begins: an alive node becomes PENDING no sooner than
/// `patience` after `now` nor before `allowance_end`; a PENDING node keeps its missed periods
/// and becomes FAILED no sooner than those either.
fn restarted(
    state: NodeState,
    now: Duration,
    allowance_end: Duration,
    patience: Duration,
) -> Duration {
    let start = now.max(allowance_end.saturating_sub(patience));
    if state == NodeState::Pending {
        start.saturating_sub(patience)
    } else {
        start
    }
}

#[cfg(test)]
mod tests;
