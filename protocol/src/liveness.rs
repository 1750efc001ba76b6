//! Liveness: which nodes are alive, from their own heartbeats, counted in missed periods.
//!
//! Sans-IO: the caller feeds heartbeats and ticks with an explicit `now` (time since any fixed
//! origin) and publishes the returned [`Transition`]s on behalf of the nodes. The original's
//! bugs (§3.4, §9 item 6) are fixed: missed *periods* of each node's own heartbeat are counted
//! (not 1-second ticks), each transition is reported once (no re-dispatch storm), DEAD is
//! reachable, and heartbeats sent on behalf of a node must not be fed back here (the caller
//! drops them: they carry an `observer`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::hadd::Hadd;
use crate::model::NodeState;

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
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            heartbeat_count: 3,
            dead_after: Duration::from_secs(604_800),
            default_period: Duration::from_secs(30),
            tolerance: 1.1,
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
    last_seen: Duration,
    since: Duration,
}

/// The liveness of every node seen.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    config: LivenessConfig,
    nodes: BTreeMap<Hadd, Tracked>,
    periods: BTreeMap<Hadd, Duration>,
}

impl Liveness {
    /// No node known yet.
    pub fn new(config: LivenessConfig) -> Self {
        Liveness {
            config,
            ..Liveness::default()
        }
    }

    /// The heartbeat period of `hadd` (from its node info or its `heartbeat` value).
    pub fn set_period(&mut self, hadd: Hadd, period: Duration) {
        if !period.is_zero() {
            self.periods.insert(hadd, period);
        }
    }

    fn period(&self, hadd: Hadd) -> Duration {
        self.periods
            .get(&hadd)
            .copied()
            .unwrap_or(self.config.default_period)
    }

    fn set(&mut self, hadd: Hadd, to: NodeState, now: Duration, transitions: &mut Vec<Transition>) {
        let tracked = self.nodes.entry(hadd).or_insert(Tracked {
            state: NodeState::Unknown,
            last_seen: now,
            since: now,
        });
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
                tracked.last_seen = now;
            }
        }
        transitions
    }

    /// Missed periods of `hadd` at `now`.
    fn missed(&self, hadd: Hadd, tracked: &Tracked, now: Duration) -> u32 {
        let period = self.period(hadd).mul_f64(self.config.tolerance);
        let silent = now.saturating_sub(tracked.last_seen);
        (silent.as_secs_f64() / period.as_secs_f64())
            .floor()
            .min(f64::from(u32::MAX)) as u32
    }

    /// Applies the timeouts at `now`: alive to PENDING after `heartbeat_count` missed periods,
    /// PENDING to FAILED after as many again, FAILED to DEAD after `dead_after`. A node silent
    /// long enough goes through PENDING and FAILED in one tick, both reported, in order.
    pub fn on_tick(&mut self, now: Duration) -> Vec<Transition> {
        let count = self.config.heartbeat_count.max(1);
        let mut transitions = Vec::new();
        let hadds: Vec<Hadd> = self.nodes.keys().copied().collect();
        for hadd in hadds {
            let tracked = self.nodes[&hadd];
            let missed = self.missed(hadd, &tracked, now);
            if tracked.state.is_alive() && missed >= count {
                self.set(hadd, NodeState::Pending, now, &mut transitions);
            }
            if self.nodes[&hadd].state == NodeState::Pending && missed >= 2 * count {
                self.set(hadd, NodeState::Failed, now, &mut transitions);
            }
            let tracked = self.nodes[&hadd];
            if tracked.state == NodeState::Failed
                && now.saturating_sub(tracked.since) >= self.config.dead_after
            {
                self.set(hadd, NodeState::Dead, now, &mut transitions);
            }
        }
        transitions
    }

    /// What another controller's map says of `hadd` (a resolv answer from the primary): taken
    /// when this replica has not seen the node itself.
    pub fn adopt(&mut self, hadd: Hadd, state: NodeState, last_seen: Duration) {
        self.nodes.entry(hadd).or_insert(Tracked {
            state,
            last_seen,
            since: last_seen,
        });
    }

    /// When `hadd` last beat, if it was ever seen.
    pub fn last_seen(&self, hadd: Hadd) -> Option<Duration> {
        self.nodes.get(&hadd).map(|tracked| tracked.last_seen)
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

    /// Forgets a node (a DEAD one an operator removed).
    pub fn forget(&mut self, hadd: Hadd) {
        self.nodes.remove(&hadd);
        self.periods.remove(&hadd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: Hadd = Hadd::new(220, 1);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn states(transitions: &[Transition]) -> Vec<(Hadd, NodeState)> {
        transitions.iter().map(|t| (t.hadd, t.to)).collect()
    }

    fn watched(period: f64) -> Liveness {
        let mut liveness = Liveness::new(LivenessConfig::default());
        liveness.set_period(NODE, secs(period));
        liveness.on_heartbeat(NODE, NodeState::Online, secs(0.0));
        liveness
    }

    #[test]
    fn a_silent_node_is_pending_after_three_missed_periods_then_failed_after_six() {
        let mut liveness = watched(10.0);
        assert!(
            liveness.on_tick(secs(32.0)).is_empty(),
            "2.9 tolerant periods"
        );
        assert_eq!(
            states(&liveness.on_tick(secs(33.5))),
            [(NODE, NodeState::Pending)]
        );
        assert!(liveness.on_tick(secs(40.0)).is_empty(), "reported once");
        assert_eq!(
            states(&liveness.on_tick(secs(66.5))),
            [(NODE, NodeState::Failed)]
        );
        assert!(liveness.on_tick(secs(600.0)).is_empty(), "no re-dispatch");
    }

    #[test]
    fn a_long_silence_reports_pending_then_failed_in_one_tick() {
        let mut liveness = watched(1.0);
        assert_eq!(
            states(&liveness.on_tick(secs(100.0))),
            [(NODE, NodeState::Pending), (NODE, NodeState::Failed)]
        );
    }

    #[test]
    fn failed_becomes_dead_after_the_dead_delay() {
        let mut liveness = Liveness::new(LivenessConfig {
            dead_after: secs(60.0),
            ..LivenessConfig::default()
        });
        liveness.set_period(NODE, secs(1.0));
        liveness.on_heartbeat(NODE, NodeState::Online, secs(0.0));
        liveness.on_tick(secs(10.0));
        assert_eq!(liveness.state(NODE), NodeState::Failed);
        assert!(liveness.on_tick(secs(69.0)).is_empty());
        assert_eq!(
            states(&liveness.on_tick(secs(70.0))),
            [(NODE, NodeState::Dead)]
        );
    }

    #[test]
    fn a_node_that_beats_again_is_online_again() {
        let mut liveness = watched(1.0);
        liveness.on_tick(secs(100.0));
        assert_eq!(
            states(&liveness.on_heartbeat(NODE, NodeState::Online, secs(101.0))),
            [(NODE, NodeState::Online)]
        );
        assert!(liveness.on_tick(secs(102.0)).is_empty());
    }

    #[test]
    fn offline_is_at_once_and_a_controllers_offline_covers_its_nodes() {
        let mut liveness = watched(10.0);
        let other = Hadd::new(221, 1);
        liveness.on_heartbeat(Hadd::new(220, 0), NodeState::Online, secs(0.0));
        liveness.on_heartbeat(other, NodeState::Online, secs(0.0));
        let offline = liveness.on_heartbeat(Hadd::new(220, 0), NodeState::Offline, secs(1.0));
        assert_eq!(
            states(&offline),
            [
                (Hadd::new(220, 0), NodeState::Offline),
                (NODE, NodeState::Offline)
            ]
        );
        assert_eq!(liveness.state(other), NodeState::Online);
        assert!(
            liveness
                .on_tick(secs(1000.0))
                .iter()
                .all(|t| t.hadd == other),
            "offline nodes are not timed out"
        );
    }

    #[test]
    fn the_default_period_applies_until_the_node_tells_its_own() {
        let mut liveness = Liveness::new(LivenessConfig::default());
        liveness.on_heartbeat(NODE, NodeState::Online, secs(0.0));
        assert!(
            liveness.on_tick(secs(98.0)).is_empty(),
            "30 s default, 3 periods of 33 s"
        );
        assert_eq!(
            states(&liveness.on_tick(secs(99.5))),
            [(NODE, NodeState::Pending)]
        );
    }
}
