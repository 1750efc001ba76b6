//! Deterministic simulation of network controllers electing a primary over a simulated broker,
//! with message delays, crashes, restarts, frozen processes and controllers cut off from the
//! broker. 1,000 seeded schedules; each checks the invariants:
//!
//! 1. at most one primary per epoch;
//! 2. once the network is stable, exactly one primary, followed by every controller, within
//!    the bound;
//! 3. a node that stops beating is dispatched PENDING then FAILED by a primary.
//!
//! A failing schedule prints its seed; `JANITOO_SIM_SEED=<seed> cargo test -p janitoo-protocol
//! --test election_simulation` replays that one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use janitoo_protocol::election::{Election, ElectionAction, ElectionConfig, Rank, Role, Standing};
use janitoo_protocol::liveness::{Liveness, LivenessConfig};
use janitoo_protocol::{Hadd, NodeState};

const STEP: Duration = Duration::from_millis(50);
const END: Duration = Duration::from_secs(40);
/// Disruptions happen before this; the rest of the run is stable.
const CALM_FROM: Duration = Duration::from_secs(22);
const NODES: [Hadd; 2] = [Hadd::new(500, 1), Hadd::new(500, 2)];

/// xorshift64*: deterministic, seedable.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, limit: u64) -> u64 {
        self.next() % limit.max(1)
    }
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low))
    }
}

#[derive(Debug, Clone)]
enum Payload {
    PrimaryHeartbeat {
        epoch: u64,
    },
    Announce {
        rank: Rank,
    },
    Will,
    NodeBeat,
    ResolvRequest,
    ResolvReply {
        to: Hadd,
        map: Vec<(Hadd, NodeState, Duration)>,
    },
}

#[derive(Debug, Clone)]
struct Delivery {
    at: Duration,
    from: Hadd,
    payload: Payload,
}

/// How a controller is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Condition {
    Up,
    Crashed { until: Option<Duration> },
    Frozen { until: Duration },
    CutOff { until: Duration },
}

struct Controller {
    hadd: Hadd,
    rank: Rank,
    election: Election,
    liveness: Liveness,
    condition: Condition,
    inbox: VecDeque<Delivery>,
}

struct Simulation {
    random: Random,
    now: Duration,
    controllers: Vec<Controller>,
    /// Per-topic delivery order: the last delivery time per (sender, topic kind).
    last_delivery: BTreeMap<(Hadd, u8), Duration>,
    claims: BTreeMap<u64, BTreeSet<Hadd>>,
    dispatched: BTreeMap<Hadd, Vec<NodeState>>,
    node_stops: BTreeMap<Hadd, Duration>,
    log: Vec<String>,
}

fn topic_kind(payload: &Payload) -> u8 {
    match payload {
        Payload::PrimaryHeartbeat { .. } => 0,
        Payload::Announce { .. } => 1,
        Payload::Will => 2,
        Payload::NodeBeat => 3,
        Payload::ResolvRequest => 5,
        Payload::ResolvReply { .. } => 6,
    }
}

impl Simulation {
    fn new(seed: u64) -> Simulation {
        let mut random = Random(seed.max(1));
        let roles = [Role::Primary, Role::Secondary, Role::Auto];
        let controllers = (1..=3)
            .map(|ctrl| {
                let hadd = Hadd::new(ctrl, 0);
                let rank = Rank {
                    role: roles[random.below(3) as usize],
                    priority: random.below(4) as u8,
                };
                let start = random.millis(0, 2_000);
                Controller {
                    hadd,
                    rank,
                    election: Election::new(hadd, rank, ElectionConfig::default(), start),
                    liveness: liveness(),
                    condition: Condition::Up,
                    inbox: VecDeque::new(),
                }
            })
            .collect();
        let node_stops = BTreeMap::from([(NODES[0], random.millis(3_000, 16_000))]);
        Simulation {
            random,
            now: Duration::ZERO,
            controllers,
            last_delivery: BTreeMap::new(),
            claims: BTreeMap::new(),
            dispatched: BTreeMap::new(),
            node_stops,
            log: Vec::new(),
        }
    }

    /// Publishes to every other controller that is reachable, each with its own delay, keeping
    /// the broker's order per sender and topic.
    fn publish(&mut self, from: Hadd, payload: Payload) {
        let kind = topic_kind(&payload);
        let sender_cut = self
            .controllers
            .iter()
            .any(|c| c.hadd == from && matches!(c.condition, Condition::CutOff { .. }));
        if sender_cut {
            return;
        }
        let delay = self.random.millis(1, 120);
        let at = (self.now + delay).max(
            self.last_delivery
                .get(&(from, kind))
                .copied()
                .unwrap_or_default(),
        );
        self.last_delivery.insert((from, kind), at);
        for controller in &mut self.controllers {
            if controller.hadd != from && !matches!(controller.condition, Condition::CutOff { .. })
            {
                controller.inbox.push_back(Delivery {
                    at,
                    from,
                    payload: payload.clone(),
                });
            }
        }
    }

    fn disrupt(&mut self) {
        if self.now >= CALM_FROM || self.random.below(1000) >= 6 {
            return;
        }
        let who = self.random.below(3) as usize;
        if self.controllers[who].condition != Condition::Up {
            return;
        }
        let hadd = self.controllers[who].hadd;
        let condition = match self.random.below(4) {
            0 => Condition::Crashed { until: None },
            1 => Condition::Crashed {
                until: Some(self.now + self.random.millis(500, 6_000)),
            },
            2 => Condition::Frozen {
                until: self.now + self.random.millis(500, 8_000),
            },
            _ => Condition::CutOff {
                until: self.now + self.random.millis(500, 8_000),
            },
        };
        self.log
            .push(format!("{:?} {hadd}: {condition:?}", self.now));
        self.controllers[who].condition = condition;
        match condition {
            // A dropped socket: the broker publishes the Last Will at once.
            Condition::Crashed { .. } => {
                self.controllers[who].inbox.clear();
                self.publish(hadd, Payload::Will);
            }
            Condition::CutOff { .. } => {
                self.controllers[who].election.on_disconnected();
                self.controllers[who].inbox.clear();
            }
            _ => {}
        }
    }

    fn recover(&mut self) {
        for at in 0..self.controllers.len() {
            let controller = &mut self.controllers[at];
            let back = match controller.condition {
                Condition::Crashed { until: Some(until) }
                | Condition::Frozen { until }
                | Condition::CutOff { until } => self.now >= until,
                _ => false,
            };
            if !back {
                continue;
            }
            let restarted = matches!(controller.condition, Condition::Crashed { .. });
            match controller.condition {
                Condition::Crashed { .. } => {
                    controller.election = Election::new(
                        controller.hadd,
                        controller.rank,
                        ElectionConfig::default(),
                        self.now,
                    );
                    controller.liveness = liveness();
                }
                Condition::CutOff { .. } => controller.election.on_connected(self.now),
                _ => {}
            }
            self.log
                .push(format!("{:?} {}: back", self.now, controller.hadd));
            controller.condition = Condition::Up;
            if restarted {
                // A restarted controller asks the primary for its map.
                let hadd = controller.hadd;
                self.publish(hadd, Payload::ResolvRequest);
            }
        }
    }

    fn deliver(&mut self, at: usize) -> Vec<(Hadd, ElectionAction)> {
        let now = self.now;
        let mut actions = Vec::new();
        let mut replies = Vec::new();
        let controller = &mut self.controllers[at];
        while controller
            .inbox
            .front()
            .is_some_and(|delivery| delivery.at <= now)
        {
            let Some(delivery) = controller.inbox.pop_front() else {
                break;
            };
            match delivery.payload {
                Payload::PrimaryHeartbeat { epoch } => {
                    for action in
                        controller
                            .election
                            .on_primary_heartbeat(delivery.from, Some(epoch), now)
                    {
                        actions.push((controller.hadd, action));
                    }
                }
                Payload::Announce { rank } => {
                    controller.election.on_candidate(delivery.from, rank, now)
                }
                Payload::Will => controller.election.on_candidate_lost(delivery.from, now),
                Payload::NodeBeat => {
                    controller
                        .liveness
                        .on_heartbeat(delivery.from, NodeState::Online, now);
                }
                Payload::ResolvRequest if controller.election.is_primary() => {
                    let map = controller
                        .liveness
                        .states()
                        .map(|(node, state)| {
                            (
                                node,
                                state,
                                controller.liveness.last_seen(node).unwrap_or_default(),
                            )
                        })
                        .collect();
                    replies.push(Payload::ResolvReply {
                        to: delivery.from,
                        map,
                    });
                }
                Payload::ResolvRequest => {}
                Payload::ResolvReply { to, map } if to == controller.hadd => {
                    for (node, state, last_seen) in map {
                        controller.liveness.adopt(node, state, last_seen);
                    }
                }
                Payload::ResolvReply { .. } => {}
            }
        }
        let hadd = controller.hadd;
        for reply in replies {
            self.publish(hadd, reply);
        }
        actions
    }

    fn dispatch(&mut self, from: Hadd, node: Hadd, state: NodeState) {
        self.log
            .push(format!("{:?} {from}: dispatches {node} {state}", self.now));
        self.dispatched.entry(node).or_default().push(state);
    }

    fn carry_out(&mut self, at: usize, actions: Vec<ElectionAction>) {
        let hadd = self.controllers[at].hadd;
        for action in actions {
            match action {
                ElectionAction::BecomePrimary { epoch } => {
                    self.log
                        .push(format!("{:?} {hadd}: primary of {epoch:#x}", self.now));
                    self.claims.entry(epoch).or_default().insert(hadd);
                    // Catch up: what the replica knows of silent nodes, on the way it went.
                    let silent: Vec<(Hadd, NodeState)> = self.controllers[at]
                        .liveness
                        .states()
                        .filter(|(_, s)| !s.is_alive())
                        .collect();
                    for (node, state) in silent {
                        let path: &[NodeState] = match state {
                            NodeState::Pending => &[NodeState::Pending],
                            NodeState::Failed => &[NodeState::Pending, NodeState::Failed],
                            _ => &[],
                        };
                        for step in path {
                            self.dispatch(hadd, node, *step);
                        }
                    }
                }
                ElectionAction::SendPrimaryHeartbeat { epoch } => {
                    self.publish(hadd, Payload::PrimaryHeartbeat { epoch })
                }
                ElectionAction::Announce => {
                    let rank = self.controllers[at].rank;
                    self.publish(hadd, Payload::Announce { rank });
                }
                ElectionAction::StepDown { .. } | ElectionAction::Fenced { .. } => {}
            }
        }
    }

    fn step(&mut self) {
        self.disrupt();
        self.recover();
        if self.now.as_millis() % 1_000 == 0 {
            for node in NODES {
                if self
                    .node_stops
                    .get(&node)
                    .is_none_or(|stop| self.now < *stop)
                {
                    self.publish(node, Payload::NodeBeat);
                }
            }
        }
        for at in 0..self.controllers.len() {
            if self.controllers[at].condition == Condition::Up
                || matches!(self.controllers[at].condition, Condition::CutOff { .. })
            {
                let mut actions: Vec<ElectionAction> =
                    self.deliver(at).into_iter().map(|(_, a)| a).collect();
                actions.extend(self.controllers[at].election.on_tick(self.now));
                let transitions = self.controllers[at].liveness.on_tick(self.now);
                if self.controllers[at].election.is_primary() {
                    let hadd = self.controllers[at].hadd;
                    for transition in transitions {
                        self.dispatch(hadd, transition.hadd, transition.to);
                    }
                }
                self.carry_out(at, actions);
            }
        }
        self.now += STEP;
    }

    /// Runs the schedule; on success, says whether it saw a takeover and checked a dispatch.
    fn run(mut self) -> Result<(bool, bool), String> {
        while self.now < END {
            self.step();
        }
        let checked_dispatch = self
            .check()
            .map_err(|why| format!("{why}\n{}", self.log.join("\n")))?;
        Ok((self.claims.len() > 1, checked_dispatch))
    }

    fn check(&self) -> Result<bool, String> {
        for (epoch, claimants) in &self.claims {
            if claimants.len() > 1 {
                return Err(format!("epoch {epoch:#x} claimed by {claimants:?}"));
            }
        }
        let up: Vec<&Controller> = self
            .controllers
            .iter()
            .filter(|c| c.condition == Condition::Up)
            .collect();
        let primaries: Vec<Hadd> = up
            .iter()
            .filter(|c| c.election.is_primary())
            .map(|c| c.hadd)
            .collect();
        if !up.is_empty() {
            let [primary] = primaries.as_slice() else {
                return Err(format!(
                    "{} primaries among the controllers up at the end: {primaries:?}",
                    primaries.len()
                ));
            };
            for controller in &up {
                if let Standing::Follower { primary: followed } = controller.election.standing() {
                    if followed.map(|(hadd, _)| hadd) != Some(*primary) {
                        return Err(format!(
                            "{} follows {followed:?}, not {primary}",
                            controller.hadd
                        ));
                    }
                }
            }
        }
        let final_primary = up.iter().find(|c| c.election.is_primary());
        let mut checked = false;
        for node in self.node_stops.keys() {
            // The final primary must have dispatched, or caught up on, every silent node it knows.
            if final_primary
                .is_none_or(|primary| primary.liveness.state(*node) == NodeState::Unknown)
            {
                continue;
            }
            let states = self.dispatched.get(node).cloned().unwrap_or_default();
            let pending = states.iter().position(|s| *s == NodeState::Pending);
            let failed = states.iter().position(|s| *s == NodeState::Failed);
            match (pending, failed) {
                (Some(p), Some(f)) if p < f => checked = true,
                _ => return Err(format!("node {node} stopped but was dispatched {states:?}")),
            }
        }
        Ok(checked)
    }
}

fn liveness() -> Liveness {
    let mut liveness = Liveness::new(LivenessConfig::default());
    for node in NODES {
        liveness.set_period(node, Duration::from_secs(1));
    }
    liveness
}

fn run_seed(seed: u64) -> Result<(bool, bool), String> {
    Simulation::new(seed)
        .run()
        .map_err(|why| format!("seed {seed}: {why}"))
}

#[test]
fn a_thousand_random_schedules_keep_the_election_invariants() {
    if let Some(seed) = std::env::var("JANITOO_SIM_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
    {
        run_seed(seed).unwrap();
        return;
    }
    let (mut failures, mut takeovers, mut dispatches) = (Vec::new(), 0, 0);
    for seed in 1..=1_000u64 {
        match run_seed(seed) {
            Ok((takeover, dispatch)) => {
                takeovers += usize::from(takeover);
                dispatches += usize::from(dispatch);
            }
            Err(why) => failures.push(why),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 1,000 schedules failed; first:\n{}",
        failures.len(),
        failures[0]
    );
    eprintln!(
        "1,000 schedules: {takeovers} with a takeover, {dispatches} with a stopped node checked"
    );
    assert!(
        takeovers >= 300 && dispatches >= 500,
        "the schedules exercise too little"
    );
}
