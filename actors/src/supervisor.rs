//! `NetworkSupervisor`: a network controller (primary or secondary). It keeps a live replica of
//! the network map, takes part in the election, and while primary publishes the primary
//! heartbeat, answers resolv requests and publishes heartbeats on behalf of silent nodes. The
//! decisions are the sans-IO state machines of `janitoo-protocol` (`election`, `liveness`,
//! `network_map`); this actor feeds them and publishes what they return.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use janitoo_protocol::election::{Election, ElectionAction, ElectionConfig, Rank, Role, Standing};
use janitoo_protocol::liveness::{Liveness, LivenessConfig, Transition};
use janitoo_protocol::network_map::NetworkMap;
use janitoo_protocol::topic::filters;
use janitoo_protocol::{
    Codec, CommandClass, Data, DiscoveryData, Genre, Hadd, HaddTarget, Heartbeat, InfoKind,
    Message as Wire, NodeState, Request, ResolvHeartbeat, Topic, ValueDescriptor, ValuePublication,
    ValueType,
};
use tracing::{info, warn};

use crate::messages::{ConnectionChanged, Observe, Observed, Publish};
use crate::metrics::{ActorKind, Metrics};

/// The value every network controller publishes to announce its candidacy.
pub const CANDIDACY_UUID: &str = "network_controller";

/// What a network controller is.
#[derive(Debug, Clone, Copy)]
pub struct SupervisorSetup {
    /// Its address (`cccc/0000`).
    pub hadd: Hadd,
    /// Its rank in the election.
    pub rank: Rank,
    /// Election timing.
    pub election: ElectionConfig,
    /// Liveness timing.
    pub liveness: LivenessConfig,
    /// Payload codec.
    pub codec: Codec,
}

/// A network controller.
pub struct NetworkSupervisor {
    setup: SupervisorSetup,
    publisher: Recipient<Publish>,
    observe: Recipient<Observe>,
    metrics: Arc<Metrics>,
    origin: Instant,
    election: Election,
    liveness: Liveness,
    map: NetworkMap,
    followed: Option<Hadd>,
    last_own_beat: Option<Duration>,
    last_liveness_tick: Option<Duration>,
    last_census: Option<Duration>,
    asked: std::collections::BTreeSet<Hadd>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Primary => "primary",
        Role::Secondary => "secondary",
        Role::Auto => "auto",
    }
}

fn rank_of(value: &ValueDescriptor) -> Option<Rank> {
    let role = match value.extra.get("role").and_then(Data::as_str)? {
        "primary" => Role::Primary,
        "secondary" => Role::Secondary,
        _ => Role::Auto,
    };
    let priority = value
        .extra
        .get("priority")
        .and_then(Data::as_u64)
        .unwrap_or(0);
    Some(Rank {
        role,
        priority: u8::try_from(priority).unwrap_or(u8::MAX),
    })
}

impl NetworkSupervisor {
    /// A network controller talking through the bridge behind `publisher` and `observe`.
    pub fn new(
        setup: SupervisorSetup,
        publisher: Recipient<Publish>,
        observe: Recipient<Observe>,
        metrics: Arc<Metrics>,
    ) -> Self {
        NetworkSupervisor {
            election: Election::new(setup.hadd, setup.rank, setup.election, Duration::ZERO),
            liveness: Liveness::new(setup.liveness),
            setup,
            publisher,
            observe,
            metrics,
            origin: Instant::now(),
            map: NetworkMap::new(),
            followed: None,
            last_own_beat: None,
            last_liveness_tick: None,
            last_census: None,
            asked: std::collections::BTreeSet::new(),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn publish(&self, topic: Topic, message: Wire) {
        self.metrics.sent(ActorKind::Bridge);
        self.publisher.do_send(Publish {
            topic: topic.to_string(),
            payload: message.encode(self.setup.codec),
        });
    }

    fn dispatch(&self, node: Hadd, state: NodeState) {
        let Some(epoch) = self.primary_epoch() else {
            return;
        };
        self.metrics.dispatched.increment();
        let heartbeat = Heartbeat::on_behalf(HaddTarget::Node(node), state, epoch, self.setup.hadd);
        self.publish(Topic::HeartbeatOnBehalf, Wire::HeartbeatOnBehalf(heartbeat));
    }

    fn primary_epoch(&self) -> Option<u64> {
        match self.election.standing() {
            Standing::Primary { epoch } => Some(epoch),
            Standing::Follower { .. } => None,
        }
    }

    fn dispatch_transitions(&self, transitions: Vec<Transition>, except: Option<Hadd>) {
        for transition in transitions.into_iter().filter(|t| Some(t.hadd) != except) {
            self.dispatch(transition.hadd, transition.to);
        }
    }

    fn announce(&self) {
        let standing = if self.election.is_primary() {
            "primary"
        } else {
            "secondary"
        };
        let mut value = ValueDescriptor::new(
            CANDIDACY_UUID,
            Genre::System,
            CommandClass::NETWORK_CONTROLLER,
        );
        value.hadd = Some(self.setup.hadd);
        value.value_type = Some(ValueType::List);
        value.list_items = Some(vec!["primary".into(), "secondary".into()]);
        value.label = Some("Network controller".into());
        value.is_readonly = Some(true);
        value.data = Data::from(standing);
        value
            .extra
            .insert("role".into(), Data::from(role_name(self.setup.rank.role)));
        value
            .extra
            .insert("priority".into(), Data::from(self.setup.rank.priority));
        value
            .extra
            .insert("epoch".into(), Data::from(self.election.epoch()));
        let topic = Topic::Value {
            genre: Genre::System,
            hadd: self.setup.hadd,
            uuid: CANDIDACY_UUID.into(),
        };
        self.publish(
            topic,
            Wire::Value(ValuePublication::Single(Box::new(value))),
        );
    }

    fn ask(&self, topic: Topic, kinds: &[InfoKind]) {
        for kind in kinds {
            self.publish(
                topic.clone(),
                Wire::Request(Request::info(*kind, self.setup.hadd)),
            );
        }
    }

    fn carry_out(&mut self, actions: Vec<ElectionAction>) {
        for action in actions {
            match action {
                ElectionAction::BecomePrimary { epoch } => {
                    info!(hadd = %self.setup.hadd, epoch, nodes = self.map.nodes().count(), "became primary");
                    self.metrics.primary.set(1);
                    self.metrics.epoch.set(epoch);
                    self.catch_up();
                    // Cold start, or a map to refresh: ask everyone for everything.
                    self.ask(Topic::BroadcastRequest, &InfoKind::ALL);
                }
                ElectionAction::StepDown { primary, epoch } => {
                    warn!(hadd = %self.setup.hadd, %primary, epoch, "stepped down: a higher epoch is primary");
                    self.metrics.primary.set(0);
                    self.metrics.epoch.set(epoch);
                }
                ElectionAction::SendPrimaryHeartbeat { epoch } => {
                    let heartbeat = ResolvHeartbeat {
                        hadd: self.setup.hadd,
                        state: NodeState::Online,
                        epoch: Some(epoch),
                    };
                    self.publish(Topic::ResolvHeartbeat, Wire::ResolvHeartbeat(heartbeat));
                }
                ElectionAction::Announce => self.announce(),
                ElectionAction::Fenced { .. } => self.metrics.fenced.increment(),
            }
        }
    }

    /// A new primary tells what its replica knows of silent nodes, on the way it went.
    fn catch_up(&self) {
        let silent: Vec<(Hadd, NodeState)> = self
            .liveness
            .states()
            .filter(|(_, state)| !state.is_alive())
            .collect();
        for (node, state) in silent {
            let path: &[NodeState] = match state {
                NodeState::Pending => &[NodeState::Pending],
                NodeState::Failed => &[NodeState::Pending, NodeState::Failed],
                NodeState::Dead => &[NodeState::Pending, NodeState::Failed, NodeState::Dead],
                NodeState::Offline => &[NodeState::Offline],
                _ => &[],
            };
            for step in path {
                self.dispatch(node, *step);
            }
        }
    }

    /// Counts the map's nodes by state into the metrics gauges.
    fn census(&mut self, now: Duration) {
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
        for (gauge, count) in self.metrics.nodes_by_state.iter().zip(counts) {
            gauge.set(count);
        }
    }

    fn tick(&mut self) {
        let now = self.now();
        self.census(now);
        let actions = self.election.on_tick(now);
        self.carry_out(actions);
        // Timeouts need no finer grain than a quarter of the interval: at 10,000 nodes a pass
        // costs about 2 ms.
        if self
            .last_liveness_tick
            .is_none_or(|at| now.saturating_sub(at) >= self.setup.election.interval / 4)
        {
            self.last_liveness_tick = Some(now);
            let transitions = self.liveness.on_tick(now);
            if self.election.is_primary() {
                self.dispatch_transitions(transitions, None);
            }
        }
        if self
            .last_own_beat
            .is_none_or(|beat| now.saturating_sub(beat) >= self.setup.election.interval)
        {
            self.last_own_beat = Some(now);
            let heartbeat = Wire::Heartbeat(Heartbeat::own(self.setup.hadd, NodeState::Online));
            self.publish(Topic::Heartbeat(self.setup.hadd), heartbeat);
        }
        self.metrics.epoch.set(self.election.epoch());
    }

    fn on_heartbeat(&mut self, heartbeat: Heartbeat, now: Duration) {
        if heartbeat.is_on_behalf() {
            if heartbeat
                .epoch
                .is_some_and(|epoch| epoch < self.election.epoch())
            {
                self.metrics.fenced.increment();
            }
            return;
        }
        let HaddTarget::Node(hadd) = heartbeat.target else {
            return;
        };
        let transitions = self.liveness.on_heartbeat(hadd, heartbeat.state, now);
        if heartbeat.state != NodeState::Offline {
            self.discover_newcomer(hadd);
            return;
        }
        self.election.on_candidate_lost(hadd, now);
        if !self.election.is_primary() {
            return;
        }
        self.dispatch_transitions(transitions, Some(hadd));
        // The other controllers of the same process, which its Last Will covers too.
        let will = Data::from(hadd.to_string());
        let covered: Vec<Hadd> = self
            .map
            .nodes()
            .filter(|node| node.hadd != hadd && node.extra.get("will") == Some(&will))
            .map(|node| node.hadd)
            .collect();
        for controller in covered {
            let transitions = self
                .liveness
                .on_heartbeat(controller, NodeState::Offline, now);
            self.dispatch_transitions(transitions, None);
        }
    }

    /// The primary asks a controller it has never heard of for its nodes (the original's
    /// heartbeat discovery), once.
    fn discover_newcomer(&mut self, hadd: Hadd) {
        if !self.election.is_primary()
            || !hadd.is_controller()
            || self.map.node(hadd).is_some()
            || !self.asked.insert(hadd)
        {
            return;
        }
        self.ask(
            Topic::NodeRequest(hadd),
            &[InfoKind::Nodes, InfoKind::Systems],
        );
    }

    /// The primary tells the secondaries what it learned from answers addressed to it alone
    /// (the original sent them back to itself, §9 item 7).
    fn forward_to_secondaries(&self, topic: &Topic, message: &Wire) {
        if let (Topic::NodeReply(to), Wire::DiscoveryReply(reply)) = (topic, message) {
            if *to == self.setup.hadd && self.election.is_primary() {
                let mut forwarded = reply.clone();
                forwarded.reply_hadd = None;
                forwarded
                    .extra
                    .insert("epoch".into(), Data::from(self.election.epoch()));
                self.publish(Topic::ResolvBroadcast, Wire::DiscoveryReply(forwarded));
            }
        }
    }

    fn on_resolv_request(&self, request: &Request) {
        let (Some(kind), true) = (request.info_kind(), self.election.is_primary()) else {
            return;
        };
        let topic = request
            .reply_hadd
            .map_or(Topic::ResolvBroadcast, Topic::ResolvReply);
        for mut reply in self.map.discovery_replies(kind, request.reply_hadd) {
            reply
                .extra
                .insert("epoch".into(), Data::from(self.election.epoch()));
            self.publish(topic.clone(), Wire::DiscoveryReply(reply));
        }
    }

    /// The heartbeat periods told by node info in a discovery answer, for the liveness.
    fn learn_periods(&mut self, message: &Wire) {
        let Wire::DiscoveryReply(reply) = message else {
            return;
        };
        let DiscoveryData::Nodes(nodes) = &reply.data else {
            return;
        };
        for node in nodes
            .values()
            .filter(|node| node.heartbeat.is_finite() && node.heartbeat > 0.0)
        {
            self.liveness
                .set_period(node.hadd, Duration::from_secs_f64(node.heartbeat));
        }
    }
}

impl Actor for NetworkSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let me = self.setup.hadd;
        self.metrics.sent(ActorKind::Bridge);
        self.observe.do_send(Observe {
            filters: vec![
                filters::HEARTBEATS.into(),
                filters::RESOLV.into(),
                filters::VALUES.into(),
                // Every discovery answer, whoever asked: the replica follows the traffic.
                "/broadcast/reply/#".into(),
                filters::replies_to(me),
            ],
            observer: ctx.address().recipient(),
            connection: ctx.address().recipient(),
            kind: ActorKind::Supervisor,
        });
        let step = (self.setup.election.interval / 10).max(Duration::from_millis(20));
        ctx.run_interval(step, |act, _ctx| act.tick());
        info!(hadd = %me, role = role_name(self.setup.rank.role), priority = self.setup.rank.priority, "network controller started");
    }
}

impl Handler<Observed> for NetworkSupervisor {
    type Result = ();

    fn handle(&mut self, observed: Observed, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Supervisor);
        let now = self.now();
        match (&observed.topic, observed.message) {
            (
                Topic::Heartbeat(_) | Topic::HeartbeatOnBehalf,
                Wire::Heartbeat(beat) | Wire::HeartbeatOnBehalf(beat),
            ) => self.on_heartbeat(beat, now),
            (Topic::ResolvHeartbeat, Wire::ResolvHeartbeat(primary)) => {
                let actions = self
                    .election
                    .on_primary_heartbeat(primary.hadd, primary.epoch, now);
                self.carry_out(actions);
                self.metrics.epoch.set(self.election.epoch());
                let followed = match self.election.standing() {
                    Standing::Follower { primary } => primary.map(|(hadd, _)| hadd),
                    Standing::Primary { .. } => None,
                };
                if followed.is_some() && followed != self.followed {
                    info!(hadd = %self.setup.hadd, primary = ?followed, "following a primary: asking for its map");
                    self.ask(Topic::ResolvRequest, &InfoKind::ALL);
                }
                self.followed = followed;
            }
            (Topic::ResolvRequest, Wire::Request(request)) => self.on_resolv_request(&request),
            (Topic::ResolvReply(_) | Topic::ResolvBroadcast, Wire::DiscoveryReply(reply))
                if reply
                    .extra
                    .get("epoch")
                    .and_then(Data::as_u64)
                    .is_some_and(|epoch| epoch < self.election.epoch()) =>
            {
                // The map of a primary that has been replaced: fenced.
                self.metrics.fenced.increment();
            }
            (topic, message) => {
                if let (
                    Topic::Value { hadd, uuid, .. },
                    Wire::Value(ValuePublication::Single(value)),
                ) = (topic, &message)
                {
                    if uuid == CANDIDACY_UUID {
                        if let Some(rank) = rank_of(value) {
                            self.election.on_candidate(*hadd, rank, now);
                            self.liveness
                                .set_period(*hadd, self.setup.election.interval);
                        }
                    }
                }
                if self.map.apply(topic, &message) {
                    self.learn_periods(&message);
                    self.forward_to_secondaries(topic, &message);
                }
            }
        }
    }
}

impl Handler<ConnectionChanged> for NetworkSupervisor {
    type Result = ();

    fn handle(&mut self, change: ConnectionChanged, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Supervisor);
        let now = self.now();
        if change.connected {
            self.election.on_connected(now);
        } else {
            self.election.on_disconnected();
        }
    }
}

/// What a network controller knows, for views and tests.
#[derive(Message)]
#[rtype(result = "SupervisorView")]
pub struct GetSupervisorView;

/// A snapshot of a network controller.
#[derive(Debug, Clone)]
pub struct SupervisorView {
    /// Where it stands.
    pub standing: Standing,
    /// Nodes in its map.
    pub nodes: Vec<Hadd>,
    /// Liveness of every node seen.
    pub states: Vec<(Hadd, NodeState)>,
}

impl Handler<GetSupervisorView> for NetworkSupervisor {
    type Result = MessageResult<GetSupervisorView>;

    fn handle(&mut self, _msg: GetSupervisorView, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Supervisor);
        MessageResult(SupervisorView {
            standing: self.election.standing(),
            nodes: self.map.nodes().map(|node| node.hadd).collect(),
            states: self.liveness.states().collect(),
        })
    }
}
