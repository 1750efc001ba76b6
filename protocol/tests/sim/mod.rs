//! A deterministic simulation of a Janitoo network: network controllers running the real
//! [`NetworkCore`], node processes, a broker in two bridged halves, and the faults of a
//! [`Schedule`]. Time is an event queue, jittered to the microsecond; nothing sleeps.

pub mod broker;
pub mod oracle;
pub mod random;
pub mod schedule;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use janitoo_protocol::election::{ElectionConfig, Standing};
use janitoo_protocol::liveness::LivenessConfig;
use janitoo_protocol::network_core::{Command, Connection, CoreSetup, NetworkCore, Note};
use janitoo_protocol::{
    CommandClass, Data, DiscoveryData, DiscoveryReply, Genre, Hadd, HaddTarget, Heartbeat,
    InfoKind, Message, NodeInfo, NodeState, Operation, Request, ResolvHeartbeat, Topic,
    ValueDescriptor, ValuePublication,
};

use broker::{Broker, Delivery, Packet};
use oracle::{Dispatch, Oracle};
use random::Random;
use schedule::{Action, Forgery, Schedule, Target, INTERVAL};

/// The operator and the stranger: a client that only publishes.
const OUTSIDER: Hadd = Hadd::new(9999, 9990);

#[derive(Debug)]
enum Event {
    Tick {
        controller: usize,
        life: u32,
    },
    Beat {
        node: usize,
        which: usize,
        life: u32,
    },
    Deliver(Delivery),
    Connect(usize),
    Act(Action),
    CalmHang,
}

struct Queued {
    at: Duration,
    seq: u64,
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A process: running or not, its own link, frozen or not.
#[derive(Debug, Clone, Copy)]
struct Process {
    client: usize,
    running: bool,
    link_ok: bool,
    frozen: bool,
    /// Incremented at each restart and freeze, so that stale timers are ignored.
    life: u32,
}

struct ControllerSim {
    hadd: Hadd,
    /// When its node last beat (its node actor beats every interval).
    last_beat: Duration,
    /// When it last started, reconnected or resumed: its windows restart there.
    disrupted: Duration,
    process: Process,
    setup: CoreSetup,
    core: Option<NetworkCore>,
    buffer: Vec<Delivery>,
}

struct NodeSim {
    hadds: [Hadd; 2],
    periods: [Duration; 2],
    process: Process,
    hung: bool,
    hung_at: Duration,
}

/// What a stranger's message must leave as it was at a controller.
type Snapshot = (Standing, u64, Vec<(Hadd, Option<NodeState>)>);

/// The outcome of one schedule.
pub struct Outcome {
    pub takeovers: usize,
    pub settled_after: Duration,
    pub overlap: Duration,
    pub dispatches: usize,
    pub forged_refused: u64,
    pub faults: usize,
    pub checked_hang: bool,
}

pub struct World {
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    random: Random,
    broker: Broker,
    controllers: Vec<ControllerSim>,
    nodes: Vec<NodeSim>,
    outsider: usize,
    oracle: Oracle,
    calm_from: Duration,
    calm_hang: Option<(usize, Duration)>,
    end: Duration,
    replayable: Vec<(Topic, Message, u64)>,
    log: Vec<String>,
    faults: usize,
}

/// How long after the faults end a single primary must act (see the test's doc).
pub const BOUND: Duration = Duration::from_secs(15);

impl World {
    pub fn new(schedule: &Schedule, random: Random) -> World {
        let mut broker = Broker::new();
        let mut controllers = Vec::new();
        for spec in &schedule.controllers {
            let setup = CoreSetup {
                hadd: spec.hadd,
                rank: spec.rank,
                election: ElectionConfig {
                    interval: INTERVAL,
                    ..ElectionConfig::default()
                },
                liveness: LivenessConfig::default(),
            };
            let filters = NetworkCore::new(setup, Duration::ZERO).filters();
            let client = broker.add_client(spec.half, filters);
            controllers.push(ControllerSim {
                hadd: spec.hadd,
                last_beat: Duration::ZERO,
                disrupted: Duration::ZERO,
                process: Process::new(client),
                setup,
                core: None,
                buffer: Vec::new(),
            });
        }
        let nodes = schedule
            .nodes
            .iter()
            .map(|spec| {
                let filters = vec![
                    "/broadcast/request".to_owned(),
                    format!("/nodes/{:04}/#", spec.ctrl),
                ];
                NodeSim {
                    hadds: [Hadd::new(spec.ctrl, 0), Hadd::new(spec.ctrl, 1)],
                    periods: spec.periods,
                    process: Process::new(broker.add_client(spec.half, filters)),
                    hung: false,
                    hung_at: Duration::ZERO,
                }
            })
            .collect();
        let outsider = broker.add_client(0, Vec::new());
        let mut world = World {
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            random,
            broker,
            controllers,
            nodes,
            outsider,
            oracle: Oracle::default(),
            calm_from: schedule.calm_from,
            calm_hang: None,
            end: schedule.calm_from + BOUND,
            replayable: Vec::new(),
            log: Vec::new(),
            faults: schedule.actions.len(),
        };
        world.start(schedule);
        world
    }

    fn at(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn after(&mut self, delay: Duration, event: Event) {
        self.at(self.now + delay, event);
    }

    fn jitter(&mut self, low_ms: u64, high_ms: u64) -> Duration {
        self.random.between(
            Duration::from_millis(low_ms),
            Duration::from_millis(high_ms),
        )
    }

    fn start(&mut self, schedule: &Schedule) {
        for at in 0..self.controllers.len() {
            self.start_controller(at);
        }
        for node in 0..self.nodes.len() {
            self.nodes[node].process.running = true;
            let delay = self.jitter(0, 1_000);
            let client = self.nodes[node].process.client;
            self.after(delay, Event::Connect(client));
            for which in 0..2 {
                let first = self.jitter(0, 1_000);
                self.after(
                    first,
                    Event::Beat {
                        node,
                        which,
                        life: 0,
                    },
                );
            }
        }
        assert!(self.broker.connect(self.outsider, Duration::ZERO));
        for (at, action) in &schedule.actions {
            self.at(*at, Event::Act(*action));
        }
        // Once settled, one node process hangs: its nodes must be told PENDING, then FAILED,
        // once each.
        let hang_at = self.calm_from + BOUND + self.jitter(0, 3_000);
        self.at(hang_at, Event::CalmHang);
        self.end = hang_at;
    }

    fn start_controller(&mut self, at: usize) {
        let controller = &mut self.controllers[at];
        controller.process.running = true;
        controller.process.life += 1;
        controller.core = Some(NetworkCore::new(controller.setup, self.now));
        controller.disrupted = self.now;
        controller.buffer.clear();
        let (client, life) = (controller.process.client, controller.process.life);
        let delay = self.jitter(0, 1_000);
        self.after(delay, Event::Connect(client));
        let first = self.jitter(0, 100);
        self.after(
            first,
            Event::Tick {
                controller: at,
                life,
            },
        );
    }

    /// Runs the schedule to its end; the oracle holds what happened.
    pub fn run(&mut self) {
        while let Some(Reverse(queued)) = self.queue.pop() {
            if queued.at > self.end {
                break;
            }
            self.now = queued.at;
            self.handle(queued.event);
            self.observe();
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick { controller, life } => self.tick(controller, life),
            Event::Beat { node, which, life } => self.beat(node, which, life),
            Event::Deliver(delivery) => self.deliver(delivery),
            Event::Connect(client) => self.connect(client),
            Event::Act(action) => self.act(action),
            Event::CalmHang => self.calm_hang(),
        }
    }

    // ---- controllers ----

    fn tick(&mut self, at: usize, life: u32) {
        let process = self.controllers[at].process;
        if !process.running || process.frozen || process.life != life {
            return;
        }
        let next = self.jitter(90, 110);
        self.after(
            next,
            Event::Tick {
                controller: at,
                life,
            },
        );
        let now = self.now;
        self.step(at, |core| core.on_tick(now));
        if now.saturating_sub(self.controllers[at].last_beat) >= INTERVAL {
            // Its node beats, as any node does.
            let (hadd, client) = (
                self.controllers[at].hadd,
                self.controllers[at].process.client,
            );
            self.controllers[at].last_beat = now;
            let beat = Heartbeat::own(hadd, NodeState::Online);
            self.publish(
                client,
                Topic::Heartbeat(hadd),
                Message::Heartbeat(beat),
                false,
            );
        }
    }

    /// Runs one input through a controller's core and carries out its commands, checking them.
    fn step(&mut self, at: usize, input: impl FnOnce(&mut NetworkCore) -> Vec<Command>) {
        let hadd = self.controllers[at].hadd;
        let Some(core) = self.controllers[at].core.as_mut() else {
            return;
        };
        let seen_before = core.epoch();
        let commands = input(core);
        let seen_after = core.epoch();
        self.oracle
            .epoch_moved(hadd, seen_before, seen_after, self.now);
        for command in commands {
            match command {
                Command::Publish { topic, message } => {
                    if let Message::HeartbeatOnBehalf(beat) = &message {
                        if let HaddTarget::Node(node) = beat.target {
                            let dispatch = Dispatch {
                                at: self.now,
                                by: hadd,
                                node,
                                state: beat.state,
                                epoch: beat.epoch.unwrap_or(0),
                            };
                            if self.broker.is_up(self.controllers[at].process.client) {
                                self.oracle.dispatched(dispatch, seen_before);
                            }
                        }
                    }
                    self.remember_for_replay(&topic, &message);
                    let client = self.controllers[at].process.client;
                    self.publish(client, topic, message, false);
                }
                Command::Note(Note::BecamePrimary { epoch, .. }) => {
                    self.log
                        .push(format!("{:?} {hadd}: primary of {epoch:#x}", self.now));
                    self.oracle.claimed(hadd, epoch);
                }
                Command::Note(note) => {
                    if matches!(note, Note::Reconnected | Note::Paused { .. }) {
                        self.controllers[at].disrupted = self.now;
                    }
                    self.log.push(format!("{:?} {hadd}: {note:?}", self.now));
                }
                Command::Count(janitoo_protocol::network_core::Counter::Forged) => {
                    self.oracle.forged_refused += 1;
                }
                Command::Count(_) | Command::Set(_) => {}
            }
        }
    }

    fn remember_for_replay(&mut self, topic: &Topic, message: &Message) {
        let epoch = match message {
            Message::HeartbeatOnBehalf(beat) => beat.epoch,
            Message::ResolvHeartbeat(beat) => beat.epoch,
            _ => None,
        };
        if let Some(epoch) = epoch {
            if self.replayable.len() < 64 {
                self.replayable
                    .push((topic.clone(), message.clone(), epoch));
            }
        }
    }

    fn controller_receives(&mut self, at: usize, delivery: Delivery) {
        let controller = &mut self.controllers[at];
        if controller.core.is_none() {
            return;
        }
        if controller.process.frozen {
            controller.buffer.push(delivery);
            return;
        }
        let hadd = controller.hadd;
        let packet = delivery.packet.clone();
        if let (Topic::Heartbeat(beater), Message::Heartbeat(_)) = (&packet.topic, &packet.message)
        {
            self.oracle.heard_beat(*beater, hadd, packet.sent);
        }
        let from_outsider = packet.from == self.outsider;
        let before = from_outsider.then(|| self.snapshot(at));
        let now = self.now;
        self.step(at, |core| {
            core.on_message(&packet.topic, &packet.message, now)
        });
        if let Some(before) = before {
            if self.snapshot(at) != before {
                self.oracle.violations.push(format!(
                    "{now:?} a stranger's {} {:?} changed what {hadd} knows",
                    packet.text, packet.message
                ));
            }
        }
    }

    /// What a stranger must not change: standing, epoch, and every node's told state.
    fn snapshot(&self, at: usize) -> Option<Snapshot> {
        let core = self.controllers[at].core.as_ref()?;
        let told = core
            .view()
            .nodes()
            .iter()
            .map(|(hadd, status)| (*hadd, status.state))
            .collect();
        Some((core.standing(), core.epoch(), told))
    }

    // ---- nodes ----

    fn beat(&mut self, node: usize, which: usize, life: u32) {
        let sim = &self.nodes[node];
        if !sim.process.running || sim.hung || sim.process.life != life {
            return;
        }
        let (hadd, period, client) = (sim.hadds[which], sim.periods[which], sim.process.client);
        let next = period + self.jitter(0, 2);
        self.after(next, Event::Beat { node, which, life });
        let beat = Heartbeat::own(hadd, NodeState::Online);
        self.publish(
            client,
            Topic::Heartbeat(hadd),
            Message::Heartbeat(beat),
            false,
        );
    }

    /// A node process (re)connected: it announces its nodes, as a bus does.
    fn node_announces(&mut self, node: usize) {
        let sim = &self.nodes[node];
        let client = sim.process.client;
        let (hadds, periods) = (sim.hadds, sim.periods);
        for which in 0..2 {
            let beat = Heartbeat::own(hadds[which], NodeState::Online);
            self.publish(
                client,
                Topic::Heartbeat(hadds[which]),
                Message::Heartbeat(beat),
                false,
            );
            let (topic, message) = heartbeat_value(hadds[which], periods[which]);
            self.publish(client, topic, message, false);
        }
    }

    fn node_receives(&mut self, node: usize, delivery: Delivery) {
        let sim = &self.nodes[node];
        if !sim.process.running || sim.hung {
            return;
        }
        let Message::Request(request) = &delivery.packet.message else {
            return;
        };
        let (client, hadds, periods) = (sim.process.client, sim.hadds, sim.periods);
        let Some(reply_hadd) = request.reply_hadd else {
            return;
        };
        let reply_topic = match delivery.packet.topic {
            Topic::BroadcastRequest => Topic::BroadcastReply(reply_hadd),
            _ => Topic::NodeReply(reply_hadd),
        };
        match (request.op, request.info_kind()) {
            (Operation::Info, Some(InfoKind::Nodes)) => {
                let infos = (0..2)
                    .map(|which| {
                        let mut info = NodeInfo::new(hadds[which], format!("node{which}"));
                        info.heartbeat = periods[which].as_secs_f64();
                        (hadds[which], info)
                    })
                    .collect();
                let reply = DiscoveryReply::new(
                    InfoKind::Nodes,
                    Some(reply_hadd),
                    DiscoveryData::Nodes(infos),
                );
                self.publish(client, reply_topic, Message::DiscoveryReply(reply), false);
            }
            (Operation::Info, Some(InfoKind::Systems)) => {
                let values = (0..2)
                    .map(|which| {
                        let value = heartbeat_descriptor(hadds[which], periods[which]);
                        let by_uuid = BTreeMap::from([(
                            "heartbeat".to_owned(),
                            BTreeMap::from([(0, value)]),
                        )]);
                        (hadds[which], by_uuid)
                    })
                    .collect();
                let reply = DiscoveryReply::new(
                    InfoKind::Systems,
                    Some(reply_hadd),
                    DiscoveryData::Values(values),
                );
                self.publish(client, reply_topic, Message::DiscoveryReply(reply), false);
            }
            (Operation::Set, _) if request.uuid == "heartbeat" => {
                let Some(which) = hadds.iter().position(|h| Some(*h) == request.hadd) else {
                    return;
                };
                let Some(seconds) = request.data.as_f64() else {
                    return;
                };
                self.set_period(node, which, Duration::from_secs_f64(seconds));
            }
            _ => {}
        }
    }

    /// The node applies a new period at once and publishes its value, as ours does.
    fn set_period(&mut self, node: usize, which: usize, period: Duration) {
        let sim = &mut self.nodes[node];
        sim.periods[which] = period;
        sim.process.life += 1;
        let (client, life, hadds) = (sim.process.client, sim.process.life, sim.hadds);
        self.log.push(format!(
            "{:?} {}: period {period:?}",
            self.now, hadds[which]
        ));
        // Timers restart: the changed one from now, the other keeps about its phase.
        for each in 0..2 {
            let next = if each == which {
                self.nodes[node].periods[each]
            } else {
                self.jitter(0, 1_000).min(self.nodes[node].periods[each])
            };
            self.after(
                next,
                Event::Beat {
                    node,
                    which: each,
                    life,
                },
            );
        }
        let (topic, message) = heartbeat_value(hadds[which], period);
        self.publish(client, topic, message, false);
    }

    // ---- the broker ----

    fn publish(&mut self, from: usize, topic: Topic, message: Message, force: bool) {
        let packet = Packet {
            text: topic.to_string(),
            topic,
            message,
            from,
            sent: self.now,
        };
        let deliveries = self
            .broker
            .publish(packet, force, self.now, &mut self.random);
        for (at, delivery) in deliveries {
            self.at(at, Event::Deliver(delivery));
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        if !self.broker.arrives(&delivery) {
            return;
        }
        let to = delivery.to;
        if let Some(at) = self.controllers.iter().position(|c| c.process.client == to) {
            self.controller_receives(at, delivery);
        } else if let Some(node) = self.nodes.iter().position(|n| n.process.client == to) {
            self.node_receives(node, delivery);
        }
    }

    fn process_mut(&mut self, client: usize) -> Option<&mut Process> {
        self.controllers
            .iter_mut()
            .map(|c| &mut c.process)
            .chain(self.nodes.iter_mut().map(|n| &mut n.process))
            .find(|p| p.client == client)
    }

    fn connect(&mut self, client: usize) {
        let Some(process) = self.process_mut(client).copied() else {
            return;
        };
        if !process.running || !process.link_ok || process.frozen || self.broker.is_up(client) {
            return;
        }
        if !self.broker.connect(client, self.now) {
            return;
        }
        if let Some(at) = self
            .controllers
            .iter()
            .position(|c| c.process.client == client)
        {
            let now = self.now;
            self.step(at, |core| core.on_connection(Connection::Up, now));
        } else if let Some(node) = self.nodes.iter().position(|n| n.process.client == client) {
            if !self.nodes[node].hung {
                self.node_announces(node);
            }
        }
    }

    /// The connection of `client` is gone; the broker publishes its Will if `will`.
    fn disconnect(&mut self, client: usize, will: bool) {
        if !self.broker.is_up(client) {
            return;
        }
        self.broker.disconnect(client);
        if let Some(at) = self
            .controllers
            .iter()
            .position(|c| c.process.client == client)
        {
            let hadd = self.controllers[at].hadd;
            if self.controllers[at].process.running && !self.controllers[at].process.frozen {
                let now = self.now;
                self.step(at, |core| core.on_connection(Connection::Down, now));
            }
            if will {
                self.publish_will(client, hadd);
            }
        } else if let Some(node) = self.nodes.iter().position(|n| n.process.client == client) {
            if will {
                let hadd = self.nodes[node].hadds[0];
                self.publish_will(client, hadd);
            }
        }
    }

    fn publish_will(&mut self, client: usize, hadd: Hadd) {
        let will = Heartbeat::own(hadd, NodeState::Offline);
        self.publish(
            client,
            Topic::Heartbeat(hadd),
            Message::Heartbeat(will),
            true,
        );
    }

    fn reconnect_later(&mut self, client: usize) {
        let delay = self.jitter(50, 5_000);
        self.after(delay, Event::Connect(client));
    }

    // ---- faults ----

    fn client_of(&self, target: Target) -> usize {
        match target {
            Target::Controller(at) => self.controllers[at].process.client,
            Target::Node(at) => self.nodes[at].process.client,
        }
    }

    fn act(&mut self, action: Action) {
        self.log.push(format!("{:?} fault: {action:?}", self.now));
        match action {
            Action::Crash { target, .. } => {
                let client = self.client_of(target);
                self.disconnect(client, true);
                match target {
                    Target::Controller(at) => {
                        let controller = &mut self.controllers[at];
                        controller.process.running = false;
                        controller.process.frozen = false;
                        controller.core = None;
                    }
                    Target::Node(at) => self.nodes[at].process.running = false,
                }
            }
            Action::Restart(target) => match target {
                Target::Controller(at) if !self.controllers[at].process.running => {
                    self.start_controller(at)
                }
                Target::Node(at) if !self.nodes[at].process.running => {
                    let sim = &mut self.nodes[at];
                    sim.process.running = true;
                    sim.hung = false;
                    sim.process.life += 1;
                    let (client, life) = (sim.process.client, sim.process.life);
                    self.reconnect_later(client);
                    for which in 0..2 {
                        let first = self.jitter(0, 1_000);
                        self.after(
                            first,
                            Event::Beat {
                                node: at,
                                which,
                                life,
                            },
                        );
                    }
                }
                _ => {}
            },
            Action::Freeze { controller, .. } => {
                let process = &mut self.controllers[controller].process;
                if process.running && !process.frozen {
                    process.frozen = true;
                    process.life += 1;
                }
            }
            Action::Thaw(at) => self.thaw(at),
            Action::DropLink { target, .. } => {
                let client = self.client_of(target);
                if let Some(process) = self.process_mut(client) {
                    process.link_ok = false;
                }
                self.disconnect(client, true);
            }
            Action::Reconnect(target) => {
                let client = self.client_of(target);
                if let Some(process) = self.process_mut(client) {
                    process.link_ok = true;
                }
                self.after(Duration::from_micros(1), Event::Connect(client));
            }
            Action::Hang(node) => {
                if !self.nodes[node].hung {
                    self.nodes[node].hung = true;
                    self.nodes[node].hung_at = self.now;
                }
            }
            Action::BrokerDown { half, wills, .. } => {
                self.broker.set_half(half, false);
                for client in 0..self.broker.clients.len() {
                    if self.broker.clients[client].half == half {
                        self.disconnect(client, wills);
                    }
                }
            }
            Action::BrokerUp(half) => {
                self.broker.set_half(half, true);
                for client in 0..self.broker.clients.len() {
                    if self.broker.clients[client].half != half {
                        continue;
                    }
                    if client == self.outsider {
                        self.broker.connect(client, self.now);
                    } else {
                        self.reconnect_later(client);
                    }
                }
            }
            Action::CutBridge { .. } => self.broker.cut_bridge(),
            Action::HealBridge => self.broker.heal_bridge(),
            Action::ChangePeriod { node, period } => {
                // The operator's set, from the first half, like any client's.
                let hadd = self.nodes[node].hadds[1];
                let mut set = Request::set(
                    hadd,
                    "heartbeat",
                    Genre::System,
                    CommandClass::CONFIGURATION,
                    Data::from(period.as_secs()),
                );
                set.reply_hadd = Some(OUTSIDER);
                self.publish(
                    self.outsider,
                    Topic::NodeRequest(hadd),
                    Message::Request(set),
                    false,
                );
            }
            Action::Forge(forgery) => self.forge(forgery),
        }
    }

    fn thaw(&mut self, at: usize) {
        let controller = &mut self.controllers[at];
        if !controller.process.frozen {
            return;
        }
        controller.process.frozen = false;
        let (client, life) = (controller.process.client, controller.process.life);
        let buffered = std::mem::take(&mut controller.buffer);
        // What waited in the socket comes in order; the first tick before, among or after it.
        let tick_after = self.jitter(0, 5);
        self.after(
            tick_after,
            Event::Tick {
                controller: at,
                life,
            },
        );
        let mut after = self.jitter(0, 5);
        for delivery in buffered {
            self.after(after, Event::Deliver(delivery));
            after += Duration::from_micros(20);
        }
        if !self.broker.is_up(client) {
            // It notices only now that its connection is gone.
            let now = self.now;
            self.step(at, |core| core.on_connection(Connection::Down, now));
            self.after(Duration::from_micros(1), Event::Connect(client));
        }
    }

    fn forge(&mut self, forgery: Forgery) {
        let epochs: Vec<u64> = self
            .controllers
            .iter()
            .filter_map(|c| c.core.as_ref().map(NetworkCore::epoch))
            .collect();
        let lowest = epochs.iter().copied().min().unwrap_or(0);
        let highest = epochs.iter().copied().max().unwrap_or(0);
        let (topic, message) = match forgery {
            Forgery::CeilingEpoch => (
                Topic::ResolvHeartbeat,
                Message::ResolvHeartbeat(ResolvHeartbeat {
                    hadd: Hadd::new(3, 0),
                    state: NodeState::Online,
                    epoch: Some(u64::MAX),
                }),
            ),
            Forgery::UnknownObserver => (
                Topic::HeartbeatOnBehalf,
                Message::HeartbeatOnBehalf(Heartbeat::on_behalf(
                    HaddTarget::AllNodes { ctrl: 500 },
                    NodeState::Failed,
                    1,
                    Hadd::new(666, 0),
                )),
            ),
            Forgery::NotThePrimary => {
                // A plausible epoch for a controller that is never primary (there is no 0004).
                let pretender = Hadd::new(4, 0);
                let round = janitoo_protocol::fence::round_of(highest).max(1);
                let epoch = (round << 16) | u64::from(pretender.ctrl);
                (
                    Topic::HeartbeatOnBehalf,
                    Message::HeartbeatOnBehalf(Heartbeat::on_behalf(
                        HaddTarget::Node(Hadd::new(500, 1)),
                        NodeState::Failed,
                        epoch,
                        pretender,
                    )),
                )
            }
            Forgery::Replay => {
                let stale = self
                    .replayable
                    .iter()
                    .rev()
                    .find(|(_, _, epoch)| *epoch < lowest)
                    .cloned();
                let Some((topic, message, _)) = stale else {
                    return;
                };
                (topic, message)
            }
        };
        self.publish(self.outsider, topic, message, false);
    }

    fn calm_hang(&mut self) {
        // The node process with the shortest period that is still healthy.
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|at| {
                let n = &self.nodes[*at];
                n.process.running && !n.hung && self.broker.is_up(n.process.client)
            })
            .collect();
        let Some(node) = candidates
            .into_iter()
            .min_by_key(|at| self.nodes[*at].periods.iter().max().copied())
        else {
            return;
        };
        self.nodes[node].hung = true;
        // The longest period anyone believes (a change may have gone unheard by a controller
        // disconnected at the time, whose refresh a cut bridge then kept from the node).
        let believed = self.nodes[node].hadds.iter().flat_map(|hadd| {
            self.controllers
                .iter()
                .filter_map(|c| c.core.as_ref().map(|core| core.liveness().period(*hadd)))
        });
        let longest = self.nodes[node]
            .periods
            .iter()
            .copied()
            .chain(believed)
            .max()
            .unwrap_or_default();
        self.calm_hang = Some((node, self.now));
        self.log.push(format!(
            "{:?} calm: {} hangs",
            self.now, self.nodes[node].hadds[0]
        ));
        // Until FAILED is due for both of its nodes, and a little more.
        self.end = self.now + longest.mul_f64(6.6) + Duration::from_secs(2);
    }

    // ---- the oracle's view ----

    /// After each event: who can hear whom, and who acts as primary.
    fn observe(&mut self) {
        let mut clear = BTreeSet::new();
        let listeners: Vec<(Hadd, usize)> = self
            .controllers
            .iter()
            .filter(|c| c.process.running && !c.process.frozen)
            .map(|c| (c.hadd, c.process.client))
            .collect();
        let beaters = self
            .nodes
            .iter()
            .filter(|n| n.process.running && !n.hung)
            .flat_map(|n| n.hadds.iter().map(move |h| (*h, n.process.client)))
            .chain(listeners.iter().copied());
        for (beater, from) in beaters {
            for (listener, to) in &listeners {
                if beater != *listener && self.broker.reaches(from, *to) {
                    clear.insert((beater, *listener));
                }
            }
        }
        self.oracle.update_reach(&clear, self.now);
        let now = self.now;
        let acting: Vec<Hadd> = self
            .controllers
            .iter()
            .filter(|c| {
                !c.process.frozen
                    && c.core
                        .as_ref()
                        .is_some_and(|core| core.acting_epoch(now).is_some())
            })
            .map(|c| c.hadd)
            .collect();
        self.oracle.record_acting(acting, now);
    }

    /// Checks what must hold at the end; the outcome on success.
    pub fn verdict(&self) -> Result<Outcome, String> {
        if let Some(first) = self.oracle.violations.first() {
            return Err(format!(
                "{} violations; first: {first}",
                self.oracle.violations.len()
            ));
        }
        let (settled_after, overlap) = self.oracle.settling(self.calm_from, self.now)?;
        if overlap > Duration::from_millis(2_500) {
            return Err(format!(
                "two primaries acted at once for {overlap:?} after the faults ended"
            ));
        }
        if settled_after > BOUND {
            return Err(format!(
                "a single primary only {settled_after:?} after the faults ended (bound {BOUND:?})"
            ));
        }
        let primary = self.oracle.acting.last().map(|(_, set)| set[0]);
        let mut checked_hang = false;
        if let Some((node, hung_at)) = self.calm_hang {
            for hadd in self.nodes[node].hadds {
                let told = self.oracle.told(hadd, hung_at);
                let states: Vec<NodeState> = told.iter().map(|(_, _, s)| *s).collect();
                if states != [NodeState::Pending, NodeState::Failed] {
                    let believed: Vec<String> = self
                        .controllers
                        .iter()
                        .filter_map(|c| {
                            c.core.as_ref().map(|core| {
                                format!(
                                    "{}: {:?} {}",
                                    c.hadd,
                                    core.liveness().period(hadd),
                                    core.liveness().state(hadd)
                                )
                            })
                        })
                        .collect();
                    return Err(format!(
                        "{hadd} (periods {:?}) hung at {hung_at:?} but was told {told:?} by the end at {:?}; periods believed {believed:?}",
                        self.nodes[node].periods, self.now
                    ));
                }
                if told.iter().any(|(_, by, _)| Some(*by) != primary) {
                    return Err(format!("{hadd} told by another than the primary: {told:?}"));
                }
            }
            checked_hang = true;
        }
        // Nodes that stopped during the faults: the primary ends up having told FAILED (or
        // OFFLINE, when their process's Will came too), after PENDING.
        let primary_sim = self.controllers.iter().find(|c| Some(c.hadd) == primary);
        let primary_core = primary_sim.and_then(|c| c.core.as_ref());
        let disrupted = primary_sim.map_or(Duration::ZERO, |c| c.disrupted);
        for node in &self.nodes {
            let calm = self
                .calm_hang
                .is_some_and(|(at, _)| self.nodes[at].hadds == node.hadds);
            if !node.hung || calm {
                continue;
            }
            for hadd in node.hadds {
                let Some(core) = primary_core else { continue };
                let period = core.liveness().period(hadd);
                // FAILED is due 6 tolerant periods after the last beat, or after the
                // primary's last reconnection (plus the rejoin allowance) or pause.
                let due =
                    node.hung_at.max(disrupted) + period.mul_f64(6.6) + Duration::from_secs(11);
                let told = core.view().state(hadd);
                let said: Vec<NodeState> = self
                    .oracle
                    .told(hadd, Duration::ZERO)
                    .iter()
                    .map(|(_, _, s)| *s)
                    .collect();
                let failed_after_pending = said
                    .iter()
                    .rposition(|s| *s == NodeState::Failed)
                    .is_some_and(|last| said[..last].contains(&NodeState::Pending));
                let ok = match told {
                    _ if self.now < due => true,
                    NodeState::Unknown => core.liveness().state(hadd) == NodeState::Unknown,
                    NodeState::Failed | NodeState::Dead => failed_after_pending,
                    NodeState::Offline => true,
                    _ => false,
                };
                if !ok {
                    let judged = core.liveness().state(hadd);
                    return Err(format!(
                        "{hadd} hung at {:?} during the faults; the primary's view says {told}, its liveness {judged:?}, dispatches {said:?}",
                        node.hung_at
                    ));
                }
            }
        }
        Ok(Outcome {
            takeovers: self.oracle.claims.len().saturating_sub(1),
            settled_after,
            overlap,
            dispatches: self.oracle.dispatches.len(),
            forged_refused: self.oracle.forged_refused,
            faults: self.faults,
            checked_hang,
        })
    }

    pub fn log(&self) -> String {
        self.log.join("\n")
    }
}

impl Process {
    fn new(client: usize) -> Process {
        Process {
            client,
            running: false,
            link_ok: true,
            frozen: false,
            life: 0,
        }
    }
}

fn heartbeat_descriptor(hadd: Hadd, period: Duration) -> ValueDescriptor {
    let mut value = ValueDescriptor::new("heartbeat", Genre::System, CommandClass::CONFIGURATION);
    value.hadd = Some(hadd);
    value.label = Some("Heartbeat".into());
    value.data = Data::from(period.as_secs());
    value
}

fn heartbeat_value(hadd: Hadd, period: Duration) -> (Topic, Message) {
    let topic = Topic::Value {
        genre: Genre::System,
        hadd,
        uuid: "heartbeat".into(),
    };
    let value = heartbeat_descriptor(hadd, period);
    (
        topic,
        Message::Value(ValuePublication::Single(Box::new(value))),
    )
}
