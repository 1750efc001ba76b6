//! A deterministic simulation of a Janitoo network: network controllers running the real
//! [`NetworkCore`], node processes, a broker in two bridged halves, and the faults of a
//! [`Schedule`]. Time is an event queue, jittered to the microsecond; nothing sleeps.

mod auto;
pub mod broker;
mod delivery;
mod faults;
mod nodes;
pub mod oracle;
pub mod random;
pub mod schedule;
mod verdict;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use janitoo_protocol::election::{ElectionAction, ElectionConfig, Standing};
use janitoo_protocol::liveness::LivenessConfig;
use janitoo_protocol::network_core::{Command, CoreSetup, NetworkCore, Note};
use janitoo_protocol::{
    CommandClass, Data, Genre, Hadd, HaddTarget, Heartbeat, Message, NodeState, Topic,
    ValueDescriptor, ValuePublication,
};

use broker::{Arrival, Broker, Delivery, RawDelivery};
use janitoo_protocol::homeassistant::DiscoverySettings;
use oracle::{Dispatch, Oracle};
use random::Random;
use schedule::{Action, Schedule, INTERVAL};

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
    DeliverRaw(RawDelivery),
    Arrive(Arrival),
    Connect(usize),
    Act(Action),
    CalmHang,
    OriginalBeat {
        life: u32,
    },
    AutoStart {
        auto: usize,
    },
    AutoTick {
        auto: usize,
    },
    AutoBeat {
        auto: usize,
        beats: u32,
    },
    AutoCheck {
        auto: usize,
        beats: u32,
    },
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
    /// The half of its own Pi: it starts there.
    home: usize,
    /// When its node last beat (its node actor beats every interval).
    last_beat: Duration,
    /// When it last started, reconnected or resumed: its windows restart there.
    disrupted: Duration,
    process: Process,
    setup: CoreSetup,
    core: Option<NetworkCore>,
    buffer: Vec<Delivery>,
    /// Retained messages (Home Assistant's topics) that waited in the socket of a frozen
    /// process.
    raw_buffer: Vec<RawDelivery>,
    /// The lease table in its state folder, as of its last step.
    stored_leases: janitoo_protocol::lease_table::LeaseTable,
}

/// What every controller publishes for Home Assistant while primary: the system genre too,
/// since the simulated nodes have only their `heartbeat` value.
pub fn discovery_settings() -> DiscoverySettings {
    DiscoverySettings {
        genres: vec![Genre::User, Genre::Basic, Genre::System],
        ..DiscoverySettings::default()
    }
}

fn core_of(setup: CoreSetup, now: Duration) -> NetworkCore {
    NetworkCore::new(setup, now).with_home_assistant(discovery_settings())
}

struct NodeSim {
    hadds: [Hadd; 2],
    periods: [Duration; 2],
    process: Process,
    hung: bool,
    hung_at: Duration,
    /// When its process crashed, while it is down.
    crashed_at: Option<Duration>,
    /// The half of its own Pi: it starts there.
    home: usize,
    /// It died with its Pi while connected to its Pi's broker: no Will was published.
    died_silently: bool,
}

/// The original's primary: it beats on a timer, which fires late after a freeze.
struct OriginalSim {
    cadence: Duration,
    process: Process,
    /// A beat fell due while it was frozen: it goes out at the thaw.
    due: bool,
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
    /// A stranger's floods, each of 300 messages at one instant.
    pub floods: u64,
    /// A stranger's plausible claims from a controller never announced.
    pub pretended: u64,
    /// A stranger's OFFLINEs of the live primary.
    pub offlines_forged: u64,
    pub faults: usize,
    pub checked_hang: bool,
    /// Nodes (two per process) of processes crashed for good whose state at the end was checked.
    pub crashes_checked: usize,
    /// Mixed schedules: the original's primary was alive at the end.
    pub beside_live_original: bool,
    /// Home Assistant's retained topics compared with the primary's view at the end.
    pub home_assistant_topics: usize,
    /// Pis that died (a broker and its processes at once).
    pub pi_deaths: usize,
    /// Nodes of processes that died with their broker (no Will) whose state was checked.
    pub silent_deaths_checked: usize,
    /// Moves of a process to another broker.
    pub switches: u64,
    /// Publications carried by standby connections.
    pub standby_carried: u64,
    /// Auto nodes holding a lease at the end.
    pub autos_leased: usize,
    /// Auto nodes that moved, their address being another node's.
    pub lease_moves: u64,
    /// Of those, the moves because another process beat on the address.
    pub shared_moves: u64,
    /// The end came late enough after a single primary stood for the address check.
    pub duplicates_checked: bool,
}

/// How long after a single primary stands two live nodes may still hold one address: a new
/// primary's heartbeat, a relock within 3 s, its answer, a new lease.
pub const LEASES_SETTLE: Duration = Duration::from_secs(10);

pub struct World {
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    random: Random,
    broker: Broker,
    controllers: Vec<ControllerSim>,
    nodes: Vec<NodeSim>,
    autos: Vec<auto::AutoSim>,
    outsider: usize,
    oracle: Oracle,
    calm_from: Duration,
    /// When the last scheduled action (not a forgery) was carried out.
    last_act: Duration,
    /// A stranger's OFFLINE of the acting primary, published when everything was calm: when,
    /// and of whom.
    offline_forged: Option<(Duration, Hadd)>,
    calm_hang: Option<(usize, Duration)>,
    end: Duration,
    replayable: Vec<(Topic, Message, u64)>,
    log: Vec<String>,
    faults: usize,
    original: Option<OriginalSim>,
    /// Whether the original is down for good at the end (mixed schedules).
    original_gone: bool,
    /// How long after the faults a single primary of ours must act: [`BOUND`], plus 3 periods
    /// of an original gone for good.
    bound: Duration,
    /// Processes know both halves and move to the other when theirs fails.
    switching: bool,
    /// Processes that move have a standby connection.
    standby: bool,
    switches: u64,
    pi_deaths: usize,
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
                    original_primary: schedule.original.is_some(),
                    original_interval: schedule::ORIGINAL_ASSUMED,
                    ..ElectionConfig::default()
                },
                liveness: LivenessConfig::default(),
            };
            let core = core_of(setup, Duration::ZERO);
            let mut filters = core.filters();
            filters.extend(core.home_assistant_filters());
            let client = broker.add_client(spec.half, filters);
            controllers.push(ControllerSim {
                hadd: spec.hadd,
                home: spec.half,
                last_beat: Duration::ZERO,
                disrupted: Duration::ZERO,
                process: Process::new(client),
                setup,
                core: None,
                buffer: Vec::new(),
                raw_buffer: Vec::new(),
                stored_leases: Default::default(),
            });
        }
        let nodes = schedule
            .nodes
            .iter()
            .map(|spec| {
                let second = if spec.sibling {
                    Hadd::new(spec.ctrl + 50, 0)
                } else {
                    Hadd::new(spec.ctrl, 1)
                };
                let mut filters = vec![
                    "/broadcast/request".to_owned(),
                    format!("/nodes/{:04}/#", spec.ctrl),
                ];
                if spec.sibling {
                    filters.push(format!("/nodes/{:04}/#", second.ctrl));
                }
                NodeSim {
                    hadds: [Hadd::new(spec.ctrl, 0), second],
                    periods: spec.periods,
                    process: Process::new(broker.add_client(spec.half, filters)),
                    hung: false,
                    hung_at: Duration::ZERO,
                    crashed_at: None,
                    home: spec.half,
                    died_silently: false,
                }
            })
            .collect();
        let autos = schedule
            .autos
            .iter()
            .enumerate()
            .map(|(at, spec)| {
                let client = broker.add_client(spec.half, auto::auto_filters());
                auto::AutoSim::new(format!("auto{at}"), client, spec.period)
            })
            .collect();
        let outsider = broker.add_client(0, Vec::new());
        let original = schedule.original.map(|spec| OriginalSim {
            cadence: spec.cadence,
            process: Process::new(broker.add_client(spec.half, Vec::new())),
            due: false,
        });
        // Beside an original gone for good, ours take over 3 of its periods after its last beat.
        // (A late heartbeat, after a freeze or an outage, may lengthen the period learned.)
        let original_gone = original.is_some() && schedule.original_gone();
        let takeover = match &schedule.original {
            Some(spec) if original_gone => {
                let lateness = schedule
                    .actions
                    .iter()
                    .filter_map(|(_, action)| match action {
                        Action::FreezeOriginal { for_ }
                        | Action::DropLink {
                            target: schedule::Target::Original,
                            for_,
                        } => Some(*for_),
                        _ => None,
                    })
                    .max()
                    .unwrap_or_default();
                (spec.cadence + lateness).max(schedule::ORIGINAL_ASSUMED) * 3
                    + Duration::from_secs(2)
            }
            _ => Duration::ZERO,
        };
        let mut world = World {
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            random,
            broker,
            controllers,
            nodes,
            autos,
            outsider,
            oracle: Oracle::default(),
            calm_from: schedule.calm_from,
            last_act: Duration::ZERO,
            offline_forged: None,
            calm_hang: None,
            end: schedule.calm_from + BOUND,
            replayable: Vec::new(),
            log: Vec::new(),
            faults: schedule.actions.len(),
            original,
            original_gone,
            bound: BOUND + takeover,
            switching: schedule.brokers != schedule::Brokers::One,
            standby: schedule.standby,
            switches: 0,
            pi_deaths: 0,
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
        if let Some(original) = &mut self.original {
            original.process.running = true;
            let client = original.process.client;
            self.after(Duration::ZERO, Event::Connect(client));
            let first = self.jitter(1, 15_000);
            self.after(first, Event::OriginalBeat { life: 0 });
        }
        for (at, action) in &schedule.actions {
            self.at(*at, Event::Act(*action));
        }
        for (auto, spec) in schedule.autos.iter().enumerate() {
            self.at(spec.start, Event::AutoStart { auto });
        }
        if let Some(deadline) = self.step_down_deadline() {
            // Beside a live original, watched a while after ours must have stepped down.
            self.end = deadline + Duration::from_secs(10);
            return;
        }
        // Once settled, one node process hangs: its nodes must be told PENDING, then FAILED,
        // once each.
        let hang_at = self.calm_from + self.bound + self.jitter(0, 3_000);
        self.at(hang_at, Event::CalmHang);
        self.end = hang_at;
    }

    fn start_controller(&mut self, at: usize) {
        let hadd = self.controllers[at].hadd;
        self.oracle.original_heard.remove(&hadd);
        let controller = &mut self.controllers[at];
        controller.process.running = true;
        controller.process.life += 1;
        // Its state folder: the lease table as it last stored it.
        let stored = controller.stored_leases.clone();
        controller.core = Some(core_of(controller.setup, self.now).with_leases(stored));
        controller.disrupted = self.now;
        controller.buffer.clear();
        controller.raw_buffer.clear();
        let (client, life) = (controller.process.client, controller.process.life);
        // A process starts on its own Pi's broker.
        self.broker.clients[client].half = controller.home;
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

    /// Beside an original primary alive at the end: when every controller of ours must have
    /// stepped down (it is heard twice, a third time if another jump was pending).
    pub(super) fn step_down_deadline(&self) -> Option<Duration> {
        let original = self.original.as_ref().filter(|_| !self.original_gone)?;
        let period = original.cadence + Duration::from_millis(200);
        Some(self.calm_from + period * 3 + Duration::from_secs(3))
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
            Event::DeliverRaw(delivery) => self.deliver_raw(delivery),
            Event::Arrive(arrival) => {
                let deliveries = self.broker.arrive(arrival, self.now, &mut self.random);
                self.schedule_raw(deliveries);
            }
            Event::Connect(client) => self.connect(client),
            Event::Act(action) => self.act(action),
            Event::CalmHang => self.calm_hang(),
            Event::OriginalBeat { life } => self.original_beat(life),
            Event::AutoStart { auto } => self.auto_start(auto),
            Event::AutoTick { auto } => self.auto_tick(auto),
            Event::AutoBeat { auto, beats } => self.auto_beat(auto, beats),
            Event::AutoCheck { auto, beats } => self.auto_check(auto, beats),
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
        let controller = &mut self.controllers[at];
        let Some(core) = controller.core.as_mut() else {
            return;
        };
        let seen_before = core.epoch();
        let commands = input(core);
        let seen_after = core.epoch();
        if *core.leases() != controller.stored_leases {
            controller.stored_leases = core.leases().clone();
        }
        self.oracle
            .epoch_moved(hadd, seen_before, seen_after, self.now);
        for command in commands {
            match command {
                Command::Publish { topic, message } => {
                    if let Message::LeaseReply(reply) = &message {
                        self.log.push(format!(
                            "{:?} {hadd}: answers lease {} with {} {:?}/{:?}",
                            self.now,
                            reply.rep_uuid,
                            reply.msg_status,
                            reply.add_ctrl,
                            reply.add_node
                        ));
                    }
                    if let Message::HeartbeatOnBehalf(beat) = &message {
                        if let HaddTarget::Node(node) = beat.target {
                            let dispatch = Dispatch {
                                at: self.now,
                                by: hadd,
                                node,
                                state: beat.state,
                                epoch: beat.epoch.unwrap_or(0),
                            };
                            let sent = self.broker.is_up(self.controllers[at].process.client);
                            self.log.push(format!(
                                "{:?} {hadd}: tells {node} {}{}",
                                self.now,
                                beat.state,
                                if sent { "" } else { " (link down: lost)" }
                            ));
                            if sent {
                                self.oracle.dispatched(dispatch, seen_before);
                            }
                        }
                    }
                    self.remember_for_replay(&topic, &message);
                    let client = self.controllers[at].process.client;
                    self.publish(client, topic, message, false);
                }
                Command::Note(Note::Election(ElectionAction::BecomePrimary { epoch })) => {
                    self.log
                        .push(format!("{:?} {hadd}: primary of {epoch:#x}", self.now));
                    self.oracle.claimed(hadd, epoch);
                    if let Some(original) = &self.original {
                        self.oracle
                            .claimed_beside_original(hadd, original.cadence, self.now);
                    }
                }
                Command::Note(note) => {
                    if let Note::Election(ElectionAction::PrimaryLost {
                        primary: Some(lost),
                    }) = note
                    {
                        self.check_forged_offline(hadd, lost);
                    }
                    if matches!(note, Note::Reconnected | Note::Paused { .. }) {
                        self.controllers[at].disrupted = self.now;
                    }
                    self.log.push(format!("{:?} {hadd}: {note:?}", self.now));
                }
                Command::Count(janitoo_protocol::network_core::Counter::Forged) => {
                    self.oracle.forged_refused += 1;
                }
                Command::Count(_) | Command::Set(_) => {}
                Command::Resubscribe(_) => {
                    let client = self.controllers[at].process.client;
                    if self.broker.is_up(client) {
                        let retained = self.broker.retained_for(client, self.now, &mut self.random);
                        self.schedule_raw(retained);
                    }
                }
                Command::PublishRetained { topic, message } => {
                    // A lease record: retained on the broker of its half (and across the
                    // bridge), and stored in the controller's state folder.
                    let client = self.controllers[at].process.client;
                    let payload = message.encode(janitoo_protocol::Codec::Json);
                    self.publish_retained(client, &topic.to_string(), payload);
                }
                Command::Retain(retain) => {
                    if retain.topic.contains("/availability/") {
                        self.log.push(format!(
                            "{:?} {hadd}: retain {} {:?}",
                            self.now,
                            retain.topic,
                            String::from_utf8_lossy(&retain.payload)
                        ));
                    }
                    let client = self.controllers[at].process.client;
                    self.publish_retained(client, &retain.topic, retain.payload);
                }
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
        if let Message::ResolvHeartbeat(beat) = &packet.message {
            if beat.epoch.is_none() && beat.hadd == schedule::ORIGINAL {
                self.oracle.original_heard.insert(hadd, self.now);
            }
        }
        let from_outsider = packet.from == self.outsider;
        // The pretender's claim is believed, by design, by a controller whose primary is
        // silent (a candidacy may have been lost).
        let by_design = matches!(&packet.message, Message::ResolvHeartbeat(beat) if beat.hadd == schedule::PRETENDER)
            && !self.controllers[at]
                .core
                .as_ref()
                .is_some_and(|core| core.primary_alive(self.now));
        // A node's own heartbeat is unsigned: a stranger's OFFLINE of a controller is told of
        // it (until it beats again), but must move no primary.
        let own_offline = matches!(&packet.message, Message::Heartbeat(beat) if beat.state == NodeState::Offline && !beat.is_on_behalf());
        let before = (from_outsider && !by_design).then(|| self.snapshot(at));
        let now = self.now;
        self.step(at, |core| {
            core.on_message(&packet.topic, &packet.message, now)
        });
        if let Some(before) = before {
            let after = self.snapshot(at);
            let changed = if own_offline {
                before
                    .as_ref()
                    .map(|(standing, epoch, _)| (*standing, *epoch))
                    != after
                        .as_ref()
                        .map(|(standing, epoch, _)| (*standing, *epoch))
            } else {
                after != before
            };
            if changed {
                self.oracle.violations.push(format!(
                    "{now:?} a stranger's {} {:?} changed what {hadd} knows",
                    packet.text, packet.message
                ));
            }
            if let Topic::Value {
                genre,
                hadd: node,
                uuid,
            } = &packet.topic
            {
                let kept = self.controllers[at].core.as_ref().is_some_and(|core| {
                    core.view()
                        .map()
                        .values(*node, *genre)
                        .is_some_and(|values| values.contains_key(uuid))
                });
                if uuid.starts_with("flood") && kept {
                    self.oracle.violations.push(format!(
                        "{now:?} {hadd} kept a value {node} never described: {uuid}"
                    ));
                }
            }
        }
    }

    /// What a stranger must not change: standing, epoch, and every node's told state.
    /// A controller lost `lost`, the primary: not because of a stranger's OFFLINE while the
    /// primary lived and nothing else happened.
    fn check_forged_offline(&mut self, hadd: Hadd, lost: Hadd) {
        let Some((at, forged)) = self.offline_forged else {
            return;
        };
        if lost == forged && self.last_act < at && self.now.saturating_sub(at) <= INTERVAL * 2 {
            self.oracle.violations.push(format!(
                "{:?} {hadd} lost the live primary {lost} on a stranger's OFFLINE at {at:?}",
                self.now
            ));
        }
    }

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
