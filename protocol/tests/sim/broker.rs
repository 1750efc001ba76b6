//! A simulated MQTT broker in two halves joined by a bridge (as two Mosquittos bridged). Per
//! sender and receiver, deliveries keep their order; each has its own delay, jittered to the
//! microsecond. A message in flight is lost when its receiver's connection, or the bridge it
//! crosses, goes down before it arrives.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use janitoo_protocol::{Message, Topic};

use super::random::Random;

/// A published message.
#[derive(Debug)]
pub struct Packet {
    pub topic: Topic,
    pub text: String,
    pub message: Message,
    pub from: usize,
    pub sent: Duration,
}

/// A packet on its way to one client.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub to: usize,
    pub connection: u64,
    pub bridge: Option<u64>,
    pub packet: Rc<Packet>,
}

/// A retained publication (Home Assistant's topics) on its way to one client, from the
/// broker of its half.
#[derive(Debug, Clone)]
pub struct RawDelivery {
    pub to: usize,
    pub connection: u64,
    pub topic: Rc<str>,
    pub payload: Rc<[u8]>,
}

/// A retained publication on its way to one half's broker (across the bridge, or not).
#[derive(Debug, Clone)]
pub struct Arrival {
    pub half: usize,
    pub bridge: Option<u64>,
    pub topic: Rc<str>,
    pub held: Held,
}

/// What a half's broker holds on a retained topic, and who wrote it when.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub payload: Rc<[u8]>,
    pub by: usize,
    pub at: Duration,
}

/// A client's connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub half: usize,
    pub up: bool,
    pub id: u64,
    pub since: Duration,
    pub filters: Vec<String>,
    /// The half of its standby connection, set at each connection: the other half.
    pub standby: Option<usize>,
}

pub struct Broker {
    pub clients: Vec<Connection>,
    half_up: [bool; 2],
    bridge_cut: bool,
    /// Changes whenever the bridge goes down, so that what was crossing it is lost.
    bridge_id: u64,
    last: HashMap<(usize, usize), Duration>,
    next_id: u64,
    /// Publications carried by standby connections.
    pub standby_carried: u64,
    /// Retained messages, per half (a broker that stops loses them: no persistence).
    pub retained: [BTreeMap<Rc<str>, Held>; 2],
    /// When the last retained message crossing the bridge towards each half arrives: the
    /// bridge is one connection, in order.
    crossing_last: [Duration; 2],
}

/// MQTT topic filter matching (`+` one level, `#` the rest): the protocol crate's.
pub use janitoo_protocol::topic::filter_matches as matches;

impl Broker {
    pub fn new() -> Broker {
        Broker {
            clients: Vec::new(),
            half_up: [true; 2],
            bridge_cut: false,
            bridge_id: 1,
            last: HashMap::new(),
            next_id: 1,
            standby_carried: 0,
            retained: [BTreeMap::new(), BTreeMap::new()],
            crossing_last: [Duration::ZERO; 2],
        }
    }

    pub fn add_client(&mut self, half: usize, filters: Vec<String>) -> usize {
        self.clients.push(Connection {
            half,
            up: false,
            id: 0,
            since: Duration::ZERO,
            filters,
            standby: None,
        });
        self.clients.len() - 1
    }

    pub fn is_up(&self, client: usize) -> bool {
        self.clients[client].up
    }

    /// Connects `client` if its half is up; false if it cannot.
    pub fn connect(&mut self, client: usize, now: Duration) -> bool {
        let connection = &mut self.clients[client];
        if !self.half_up[connection.half] {
            return false;
        }
        connection.up = true;
        connection.standby = Some(1 - connection.half);
        connection.id = self.next_id;
        connection.since = now;
        self.next_id += 1;
        true
    }

    pub fn disconnect(&mut self, client: usize) {
        self.clients[client].up = false;
    }

    fn bridged(&self) -> bool {
        !self.bridge_cut && self.half_up[0] && self.half_up[1]
    }

    /// Whether `a`'s messages reach `b` now.
    pub fn reaches(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.clients[a], &self.clients[b]);
        a.up && b.up && (a.half == b.half || self.bridged())
    }

    pub fn cut_bridge(&mut self) {
        self.bridge_cut = true;
        self.bridge_id += 1;
    }

    pub fn heal_bridge(&mut self) {
        self.bridge_cut = false;
    }

    /// A half's broker stops (its clients must be disconnected by the caller) or starts.
    pub fn set_half(&mut self, half: usize, up: bool) {
        self.half_up[half] = up;
        if !up {
            self.bridge_id += 1;
            self.retained[half].clear();
        }
    }

    /// When `from`'s next message reaches `to`, in order after its previous ones.
    fn delay(
        &mut self,
        from: usize,
        to: usize,
        crossing: bool,
        now: Duration,
        random: &mut Random,
    ) -> Duration {
        let mut delay = random.between(Duration::from_micros(150), Duration::from_millis(25));
        if crossing {
            delay += random.between(Duration::from_micros(300), Duration::from_millis(15));
        }
        let last = self.last.entry((from, to)).or_default();
        let at = (now + delay).max(*last + Duration::from_micros(1));
        *last = at;
        at
    }

    /// Whether the bridge joins the halves (for the verdict).
    pub fn joined(&self) -> bool {
        self.bridged()
    }

    /// The order of what a half's broker sends a client: what it holds, in the order it got it.
    fn sent_by_half(
        &mut self,
        half: usize,
        to: usize,
        now: Duration,
        random: &mut Random,
    ) -> Duration {
        self.delay(usize::MAX - half, to, false, now, random)
    }

    /// When a retained message sent across the bridge now reaches half `to`, after those sent
    /// before it.
    fn across(&mut self, to: usize, now: Duration, random: &mut Random) -> Duration {
        let delay = random.between(Duration::from_micros(300), Duration::from_millis(15));
        let at = (now + delay).max(self.crossing_last[to] + Duration::from_micros(1));
        self.crossing_last[to] = at;
        at
    }

    /// A retained publication (empty: clears the topic) by `from`: it reaches `from`'s half
    /// now ([`Broker::arrive`]), and the other half later across the bridge, if it is up.
    pub fn publish_retained(
        &mut self,
        from: usize,
        topic: &str,
        payload: Vec<u8>,
        now: Duration,
        random: &mut Random,
    ) -> Vec<(Duration, Arrival)> {
        if !self.clients[from].up {
            return Vec::new();
        }
        let held = Held {
            payload: payload.into(),
            by: from,
            at: now,
        };
        self.send_to_halves(self.clients[from].half, topic.into(), held, now, random)
    }

    fn send_to_halves(
        &mut self,
        half: usize,
        topic: Rc<str>,
        held: Held,
        now: Duration,
        random: &mut Random,
    ) -> Vec<(Duration, Arrival)> {
        let mut arrivals = vec![(
            now,
            Arrival {
                half,
                bridge: None,
                topic: topic.clone(),
                held: held.clone(),
            },
        )];
        if self.bridged() {
            let at = self.across(1 - half, now, random);
            arrivals.push((
                at,
                Arrival {
                    half: 1 - half,
                    bridge: Some(self.bridge_id),
                    topic,
                    held,
                },
            ));
        }
        arrivals
    }

    /// A retained message reaches a half's broker: held there, and sent to that half's
    /// subscribers (a half sends what it holds in the order it got it). Lost if it crossed a
    /// bridge that went down meanwhile.
    pub fn arrive(
        &mut self,
        arrival: Arrival,
        now: Duration,
        random: &mut Random,
    ) -> Vec<(Duration, RawDelivery)> {
        let crossed = arrival
            .bridge
            .is_none_or(|id| id == self.bridge_id && self.bridged());
        if !crossed || !self.half_up[arrival.half] {
            return Vec::new();
        }
        let Arrival {
            half, topic, held, ..
        } = arrival;
        let payload = held.payload.clone();
        self.retained[half].insert(topic.clone(), held);
        let mut deliveries = Vec::new();
        for to in 0..self.clients.len() {
            let receiver = &self.clients[to];
            if !receiver.up
                || receiver.half != half
                || !receiver.filters.iter().any(|f| matches(f, &topic))
            {
                continue;
            }
            let connection = receiver.id;
            let at = self.sent_by_half(half, to, now, random);
            deliveries.push((
                at,
                RawDelivery {
                    to,
                    connection,
                    topic: topic.clone(),
                    payload: payload.clone(),
                },
            ));
        }
        deliveries
    }

    /// What a client that just subscribed is sent: the retained messages of its half.
    pub fn retained_for(
        &mut self,
        client: usize,
        now: Duration,
        random: &mut Random,
    ) -> Vec<(Duration, RawDelivery)> {
        let half = self.clients[client].half;
        let filters = self.clients[client].filters.clone();
        let held: Vec<(Rc<str>, Rc<[u8]>)> = self.retained[half]
            .iter()
            .filter(|(topic, held)| {
                !held.payload.is_empty() && filters.iter().any(|f| matches(f, topic))
            })
            .map(|(topic, held)| (topic.clone(), held.payload.clone()))
            .collect();
        let connection = self.clients[client].id;
        held.into_iter()
            .map(|(topic, payload)| {
                let at = self.sent_by_half(half, client, now, random);
                let delivery = RawDelivery {
                    to: client,
                    connection,
                    topic,
                    payload,
                };
                (at, delivery)
            })
            .collect()
    }

    /// The bridge is back: each half sends the other its retained messages, and where the
    /// two differ either may win (as two Mosquittos resubscribing to each other).
    pub fn merge_retained(
        &mut self,
        now: Duration,
        random: &mut Random,
    ) -> Vec<(Duration, Arrival)> {
        if !self.bridged() {
            return Vec::new();
        }
        let topics: std::collections::BTreeSet<Rc<str>> = self.retained[0]
            .keys()
            .chain(self.retained[1].keys())
            .cloned()
            .collect();
        let mut arrivals = Vec::new();
        for topic in topics {
            let held = |half: usize| {
                self.retained[half]
                    .get(&topic)
                    .filter(|held| !held.payload.is_empty())
                    .cloned()
            };
            let (a, b) = (held(0), held(1));
            let winner = match (&a, &b) {
                (Some(a), Some(b)) if a.payload == b.payload => continue,
                (Some(_), Some(_)) => usize::from(random.chance(500)),
                (Some(_), None) => 0,
                (None, _) => 1,
            };
            let Some(held) = (if winner == 0 { a } else { b }) else {
                continue;
            };
            let at = self.across(1 - winner, now, random);
            arrivals.push((
                at,
                Arrival {
                    half: 1 - winner,
                    bridge: Some(self.bridge_id),
                    topic,
                    held,
                },
            ));
        }
        arrivals
    }

    /// Whether a retained delivery still arrives (a half sends only to its own clients).
    pub fn arrives_raw(&self, delivery: &RawDelivery) -> bool {
        let receiver = &self.clients[delivery.to];
        receiver.up && receiver.id == delivery.connection
    }

    /// Publishes `packet` to every subscriber it reaches; `force` for a Last Will, which the
    /// broker publishes for a client that is gone. The deliveries, each with its time.
    pub fn publish(
        &mut self,
        packet: Packet,
        force: bool,
        via_standby: bool,
        now: Duration,
        random: &mut Random,
    ) -> Vec<(Duration, Delivery)> {
        let from = packet.from;
        let sender = &self.clients[from];
        let half = if force || sender.up {
            sender.half
        } else {
            // Its connection is down: its standby carries it, when it is up (optimistic by
            // its backoff, at most 5 s, after the standby's broker comes back).
            match sender
                .standby
                .filter(|half| via_standby && self.half_up[*half])
            {
                Some(half) => {
                    self.standby_carried += 1;
                    half
                }
                None => return Vec::new(),
            }
        };
        let packet = Rc::new(packet);
        let mut deliveries = Vec::new();
        for to in 0..self.clients.len() {
            let receiver = &self.clients[to];
            let crossing = receiver.half != half;
            if !receiver.up
                || (crossing && !self.bridged())
                || !receiver.filters.iter().any(|f| matches(f, &packet.text))
            {
                continue;
            }
            let connection = receiver.id;
            let at = self.delay(from, to, crossing, now, random);
            deliveries.push((
                at,
                Delivery {
                    to,
                    connection,
                    bridge: crossing.then_some(self.bridge_id),
                    packet: packet.clone(),
                },
            ));
        }
        deliveries
    }

    /// Whether a delivery still arrives: its receiver kept the connection, and the bridge it
    /// crosses stayed up.
    pub fn arrives(&self, delivery: &Delivery) -> bool {
        let receiver = &self.clients[delivery.to];
        receiver.up
            && receiver.id == delivery.connection
            && delivery
                .bridge
                .is_none_or(|id| id == self.bridge_id && self.bridged())
    }
}

#[test]
fn filters_match_as_mqtt_does() {
    assert!(matches("/dhcp/heartbeat/#", "/dhcp/heartbeat/0220/0001"));
    assert!(matches("/dhcp/heartbeat/#", "/dhcp/heartbeat/"));
    assert!(matches("/nodes/0500/#", "/nodes/0500/0001/request"));
    assert!(!matches("/nodes/0500/#", "/nodes/0501/0001/request"));
    assert!(matches("/broadcast/request", "/broadcast/request"));
    assert!(!matches("/broadcast/request", "/broadcast/reply/0001/0000"));
    assert!(matches("/nodes/0001/0000/reply", "/nodes/0001/0000/reply"));
}
