//! The faults of a schedule, the stranger's forgeries, and the hang once settled.

use std::time::Duration;

use janitoo_protocol::network_core::{Connection, NetworkCore};
use janitoo_protocol::{
    CommandClass, Data, Genre, Hadd, HaddTarget, Heartbeat, InfoKind, Message, NodeState, Request,
    ResolvHeartbeat, Topic, ValueDescriptor, ValuePublication,
};

use super::schedule::{Action, Forgery, Target, PRETENDER};
use super::*;

impl World {
    pub(super) fn client_of(&self, target: Target) -> usize {
        match target {
            Target::Controller(at) => self.controllers[at].process.client,
            Target::Node(at) => self.nodes[at].process.client,
            Target::Original => self
                .original
                .as_ref()
                .map_or(usize::MAX, |o| o.process.client),
        }
    }

    /// The broker of `half` stops: its clients are cut off (with their Wills if `wills`), and
    /// those that know another broker go there.
    fn broker_down(&mut self, half: usize, wills: bool) {
        self.broker.set_half(half, false);
        for client in 0..self.broker.clients.len() {
            if self.broker.clients[client].half == half && self.broker.is_up(client) {
                self.disconnect(client, wills);
                if self.moves(client) {
                    self.reconnect_later(client);
                }
            }
        }
    }

    pub(super) fn act(&mut self, action: Action) {
        self.log.push(format!("{:?} fault: {action:?}", self.now));
        if !matches!(action, Action::Forge(_)) {
            self.last_act = self.now;
        }
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
                    Target::Node(at) => {
                        let node = &mut self.nodes[at];
                        if node.process.running {
                            node.process.running = false;
                            node.crashed_at = Some(self.now);
                        }
                    }
                    Target::Original => {
                        if let Some(original) = &mut self.original {
                            original.process.running = false;
                            original.process.frozen = false;
                            original.process.life += 1;
                        }
                    }
                }
            }
            Action::Restart(target) => match target {
                Target::Controller(at) if !self.controllers[at].process.running => {
                    self.start_controller(at)
                }
                Target::Node(at) if !self.nodes[at].process.running => {
                    let sim = &mut self.nodes[at];
                    sim.process.running = true;
                    sim.crashed_at = None;
                    sim.died_silently = false;
                    // A process starts on its own Pi's broker.
                    self.broker.clients[sim.process.client].half = sim.home;
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
                Target::Original => {
                    let Some(original) = &mut self.original else {
                        return;
                    };
                    if original.process.running {
                        return;
                    }
                    original.process.running = true;
                    original.due = false;
                    let (client, life) = (original.process.client, original.process.life);
                    self.reconnect_later(client);
                    // It starts beating a moment after its start, then on its timer.
                    let first = self.jitter(100, 2_000);
                    self.after(first, Event::OriginalBeat { life });
                }
                _ => {}
            },
            Action::FreezeOriginal { .. } => {
                if let Some(original) = &mut self.original {
                    original.process.frozen = original.process.running;
                }
            }
            Action::ThawOriginal => {
                let Some(original) = &mut self.original else {
                    return;
                };
                if !original.process.frozen {
                    return;
                }
                original.process.frozen = false;
                let (client, life, due) =
                    (original.process.client, original.process.life, original.due);
                original.due = false;
                if due {
                    // Its timer fired meanwhile: the beat goes out now, the next a period on.
                    self.after(Duration::from_micros(10), Event::OriginalBeat { life });
                }
                if !self.broker.is_up(client) {
                    self.after(Duration::from_micros(1), Event::Connect(client));
                }
            }
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
            Action::BrokerDown { half, wills, .. } => self.broker_down(half, wills),
            Action::PiDeath { half } => {
                self.pi_deaths += 1;
                // Connected to the dying broker: their Wills die with it.
                let connected: Vec<bool> = (0..self.broker.clients.len())
                    .map(|client| {
                        self.broker.is_up(client) && self.broker.clients[client].half == half
                    })
                    .collect();
                self.broker_down(half, false);
                for at in 0..self.controllers.len() {
                    if self.controllers[at].home == half && self.controllers[at].process.running {
                        // Connected to the other half, it is a crash there: its Will comes.
                        self.disconnect(self.controllers[at].process.client, true);
                        let controller = &mut self.controllers[at];
                        controller.process.running = false;
                        controller.process.frozen = false;
                        controller.core = None;
                    }
                }
                for at in 0..self.nodes.len() {
                    let client = self.nodes[at].process.client;
                    if self.nodes[at].home == half && self.nodes[at].process.running {
                        self.disconnect(client, true);
                    }
                    let node = &mut self.nodes[at];
                    if node.home == half && node.process.running {
                        node.process.running = false;
                        node.crashed_at = Some(self.now);
                        node.died_silently = connected[client];
                    }
                }
            }
            Action::PiBack { half } => {
                self.act(Action::BrokerUp(half));
                for at in 0..self.controllers.len() {
                    if self.controllers[at].home == half && !self.controllers[at].process.running {
                        self.start_controller(at);
                    }
                }
                for at in 0..self.nodes.len() {
                    if self.nodes[at].home == half && !self.nodes[at].process.running {
                        self.act(Action::Restart(Target::Node(at)));
                    }
                }
            }
            Action::BrokerUp(half) => {
                self.broker.set_half(half, true);
                let merged = self.broker.merge_retained(self.now, &mut self.random);
                self.schedule_arrivals(merged);
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
            Action::HealBridge => {
                self.broker.heal_bridge();
                let merged = self.broker.merge_retained(self.now, &mut self.random);
                self.schedule_arrivals(merged);
            }
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

    pub(super) fn thaw(&mut self, at: usize) {
        let controller = &mut self.controllers[at];
        if !controller.process.frozen {
            return;
        }
        controller.process.frozen = false;
        let (client, life) = (controller.process.client, controller.process.life);
        let buffered = std::mem::take(&mut controller.buffer);
        let raw_buffered = std::mem::take(&mut controller.raw_buffer);
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
        for delivery in raw_buffered {
            self.after(after, Event::DeliverRaw(delivery));
            after += Duration::from_micros(20);
        }
        if !self.broker.is_up(client) {
            // It notices only now that its connection is gone.
            let now = self.now;
            self.step(at, |core| core.on_connection(Connection::Down, now));
            self.after(Duration::from_micros(1), Event::Connect(client));
        }
    }

    /// The original's timer fires: it beats, unless stopped; frozen, the beat waits for the
    /// thaw.
    pub(super) fn original_beat(&mut self, life: u32) {
        let Some(original) = &mut self.original else {
            return;
        };
        if !original.process.running || original.process.life != life {
            return;
        }
        if original.process.frozen {
            original.due = true;
            return;
        }
        let (client, cadence) = (original.process.client, original.cadence);
        let next = cadence + self.jitter(0, 200);
        self.after(next, Event::OriginalBeat { life });
        let beat = ResolvHeartbeat {
            hadd: super::schedule::ORIGINAL,
            state: NodeState::Online,
            epoch: None,
        };
        self.publish(
            client,
            Topic::ResolvHeartbeat,
            Message::ResolvHeartbeat(beat),
            false,
        );
    }

    pub(super) fn forge(&mut self, forgery: Forgery) {
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
            // Believed at once by a controller that has seen no epoch yet (a network of the
            // original's), by design: forged only once every controller has seen one.
            // Beside a real original, one repeated is believed, by design (README: a mixed
            // network cannot tell it from a stranger posing as one).
            Forgery::OriginalPrimary if lowest == 0 || self.original.is_some() => return,
            Forgery::OriginalPrimary => (
                Topic::ResolvHeartbeat,
                Message::ResolvHeartbeat(ResolvHeartbeat {
                    hadd: Hadd::new(9, 0),
                    state: NodeState::Online,
                    epoch: None,
                }),
            ),
            Forgery::Discovery => {
                let settings = super::discovery_settings();
                let node = self.nodes.first().map_or(Hadd::new(500, 1), |n| n.hadds[1]);
                let availability =
                    janitoo_protocol::homeassistant::availability_topic(&settings, node);
                self.publish_retained(self.outsider, &availability, b"offline".to_vec());
                let made_up = format!(
                    "{}/sensor/janitoo_janitoo_0777_0001/user_temperature_0/config",
                    settings.prefix
                );
                self.publish_retained(self.outsider, &made_up, br#"{"name":"fake"}"#.to_vec());
                return;
            }
            Forgery::Flood => {
                self.flood();
                return;
            }
            // Believed, by design, by a controller whose primary is silent (a candidacy may
            // have been lost): forged only while every running controller follows a live one.
            Forgery::PlausibleClaim if !self.every_primary_alive() => return,
            Forgery::PlausibleClaim => {
                let Some(epoch) = janitoo_protocol::fence::next_epoch(highest, PRETENDER.ctrl)
                else {
                    return;
                };
                self.oracle.pretended += 1;
                (
                    Topic::ResolvHeartbeat,
                    Message::ResolvHeartbeat(ResolvHeartbeat {
                        hadd: PRETENDER,
                        state: NodeState::Online,
                        epoch: Some(epoch),
                    }),
                )
            }
            Forgery::OfflineOfPrimary => {
                let Some(primary) = self.calm_primary() else {
                    return;
                };
                self.offline_forged = Some((self.now, primary));
                self.oracle.offlines_forged += 1;
                (
                    Topic::Heartbeat(primary),
                    Message::Heartbeat(Heartbeat::own(primary, NodeState::Offline)),
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

    /// The primary, when everything is calm: no action for three intervals, every controller
    /// running, connected and reachable (the stranger too), one acting primary that every
    /// other follows, alive, and no original.
    fn calm_primary(&self) -> Option<Hadd> {
        let now = self.now;
        if self.original.is_some() || now.saturating_sub(self.last_act) < INTERVAL * 3 {
            return None;
        }
        let clients: Vec<usize> = self.controllers.iter().map(|c| c.process.client).collect();
        let reachable = clients.iter().all(|&a| {
            self.broker.is_up(a)
                && self.broker.reaches(self.outsider, a)
                && clients.iter().all(|&b| self.broker.reaches(a, b))
        });
        let calm = self.controllers.iter().all(|c| {
            c.process.running && c.process.link_ok && !c.process.frozen && c.core.is_some()
        });
        if !reachable || !calm {
            return None;
        }
        let cores = || self.controllers.iter().filter_map(|c| c.core.as_ref());
        let acting: Vec<Hadd> = self
            .controllers
            .iter()
            .filter(|c| {
                c.core
                    .as_ref()
                    .is_some_and(|core| core.acting_epoch(now).is_some())
            })
            .map(|c| c.hadd)
            .collect();
        let [primary] = acting[..] else {
            return None;
        };
        let follow = cores().all(|core| {
            core.primary_alive(now)
                && match core.standing() {
                    Standing::Primary { .. } => true,
                    Standing::Follower { primary: followed } => {
                        followed.map(|(hadd, _)| hadd) == Some(primary)
                    }
                }
        });
        follow.then_some(primary)
    }

    /// Whether every running controller follows a primary it heard lately (or is it).
    fn every_primary_alive(&self) -> bool {
        let now = self.now;
        self.controllers
            .iter()
            .filter_map(|c| c.core.as_ref())
            .all(|core| core.primary_alive(now))
    }

    /// A stranger's flood, all at once: `FLOOD` resolv requests and as many discovery
    /// broadcasts, each with a new `reply_hadd`, and as many values of a real node that it never
    /// described (uuids starting with `flood`).
    fn flood(&mut self) {
        const FLOOD: u16 = 100;
        self.oracle.floods += 1;
        let node = self.nodes.first().map_or(Hadd::new(500, 1), |n| n.hadds[1]);
        for n in 0..FLOOD {
            let asker = Hadd::new(2_000 + n, 1);
            let ask = Message::Request(Request::info(InfoKind::Nodes, asker));
            self.publish(self.outsider, Topic::ResolvRequest, ask.clone(), false);
            self.publish(self.outsider, Topic::BroadcastRequest, ask, false);
            let uuid = format!("flood{n}");
            let mut value = ValueDescriptor::new(&uuid, Genre::User, CommandClass(0x31));
            value.hadd = Some(node);
            value.data = Data::from(u64::from(n));
            let topic = Topic::Value {
                genre: Genre::User,
                hadd: node,
                uuid,
            };
            let value = Message::Value(ValuePublication::Single(Box::new(value)));
            self.publish(self.outsider, topic, value, false);
        }
    }

    pub(super) fn calm_hang(&mut self) {
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
}
