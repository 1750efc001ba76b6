//! A simulated MQTT broker in two halves joined by a bridge (as two Mosquittos bridged). Per
//! sender and receiver, deliveries keep their order; each has its own delay, jittered to the
//! microsecond. A message in flight is lost when its receiver's connection, or the bridge it
//! crosses, goes down before it arrives.

use std::collections::HashMap;
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

/// A client's connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub half: usize,
    pub up: bool,
    pub id: u64,
    pub since: Duration,
    pub filters: Vec<String>,
}

pub struct Broker {
    pub clients: Vec<Connection>,
    half_up: [bool; 2],
    bridge_cut: bool,
    /// Changes whenever the bridge goes down, so that what was crossing it is lost.
    bridge_id: u64,
    last: HashMap<(usize, usize), Duration>,
    next_id: u64,
}

/// MQTT topic filter matching (`+` one level, `#` the rest).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match (part, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (part, Some(level)) if part == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

impl Broker {
    pub fn new() -> Broker {
        Broker {
            clients: Vec::new(),
            half_up: [true; 2],
            bridge_cut: false,
            bridge_id: 1,
            last: HashMap::new(),
            next_id: 1,
        }
    }

    pub fn add_client(&mut self, half: usize, filters: Vec<String>) -> usize {
        self.clients.push(Connection {
            half,
            up: false,
            id: 0,
            since: Duration::ZERO,
            filters,
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
        }
    }

    /// Publishes `packet` to every subscriber it reaches; `force` for a Last Will, which the
    /// broker publishes for a client that is gone. The deliveries, each with its time.
    pub fn publish(
        &mut self,
        packet: Packet,
        force: bool,
        now: Duration,
        random: &mut Random,
    ) -> Vec<(Duration, Delivery)> {
        let from = packet.from;
        if !force && !self.clients[from].up {
            return Vec::new();
        }
        let packet = Rc::new(packet);
        let half = self.clients[from].half;
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
            let mut delay = random.between(Duration::from_micros(150), Duration::from_millis(25));
            if crossing {
                delay += random.between(Duration::from_micros(300), Duration::from_millis(15));
            }
            let last = self.last.entry((from, to)).or_default();
            let at = (now + delay).max(*last + Duration::from_micros(1));
            *last = at;
            deliveries.push((
                at,
                Delivery {
                    to,
                    connection: receiver.id,
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
