//! Publishing, delivering, connecting and disconnecting through the simulated broker.

use std::time::Duration;

use janitoo_protocol::network_core::Connection;
use janitoo_protocol::{Codec, Hadd, Heartbeat, Message, NodeState, Topic};

use super::broker::{Arrival, Delivery, Packet, RawDelivery};
use super::*;

impl World {
    pub(super) fn publish(&mut self, from: usize, topic: Topic, message: Message, force: bool) {
        let packet = Packet {
            text: topic.to_string(),
            topic,
            message,
            from,
            sent: self.now,
        };
        let via_standby = self.standby
            && self.moves(from)
            && self
                .process_mut(from)
                .is_some_and(|p| p.running && p.link_ok && !p.frozen);
        let deliveries =
            self.broker
                .publish(packet, force, via_standby, self.now, &mut self.random);
        for (at, delivery) in deliveries {
            self.at(at, Event::Deliver(delivery));
        }
    }

    pub(super) fn publish_retained(&mut self, from: usize, topic: &str, payload: Vec<u8>) {
        let arrivals =
            self.broker
                .publish_retained(from, topic, payload, self.now, &mut self.random);
        self.schedule_arrivals(arrivals);
    }

    /// Retained messages reaching a half's broker: at once for the publisher's own half.
    pub(super) fn schedule_arrivals(&mut self, arrivals: Vec<(Duration, Arrival)>) {
        for (at, arrival) in arrivals {
            if at == self.now {
                let deliveries = self.broker.arrive(arrival, self.now, &mut self.random);
                self.schedule_raw(deliveries);
            } else {
                self.at(at, Event::Arrive(arrival));
            }
        }
    }

    pub(super) fn schedule_raw(&mut self, deliveries: Vec<(Duration, RawDelivery)>) {
        for (at, delivery) in deliveries {
            self.at(at, Event::DeliverRaw(delivery));
        }
    }

    /// A retained message reaches a controller (Home Assistant's topics, lease records) or an
    /// auto node (lease records).
    pub(super) fn deliver_raw(&mut self, delivery: RawDelivery) {
        if !self.broker.arrives_raw(&delivery) {
            return;
        }
        if let Some(auto) = self
            .autos
            .iter()
            .position(|a| a.process.client == delivery.to)
        {
            let topic = Topic::parse(&delivery.topic);
            if let Ok(Topic::LeaseRecord(hadd)) = topic {
                let decoded =
                    Message::decode(&Topic::LeaseRecord(hadd), &delivery.payload, Codec::Json);
                if let Ok(Message::LeaseRecord(record)) = decoded {
                    self.auto_heard_record(auto, hadd, &record);
                }
            }
            return;
        }
        let Some(at) = self
            .controllers
            .iter()
            .position(|c| c.process.client == delivery.to)
        else {
            return;
        };
        let controller = &mut self.controllers[at];
        if controller.core.is_none() {
            return;
        }
        if controller.process.frozen {
            controller.raw_buffer.push(delivery);
            return;
        }
        let now = self.now;
        if let Ok(topic @ Topic::LeaseRecord(_)) = Topic::parse(&delivery.topic) {
            // Decoded as the bridge does, and given to the core as any message.
            if let Ok(message) = Message::decode(&topic, &delivery.payload, Codec::Json) {
                self.step(at, |core| core.on_message(&topic, &message, now));
            }
            return;
        }
        self.step(at, |core| {
            core.on_home_assistant(&delivery.topic, &delivery.payload, now)
        });
    }

    pub(super) fn deliver(&mut self, delivery: Delivery) {
        if !self.broker.arrives(&delivery) {
            return;
        }
        let to = delivery.to;
        if let Some(at) = self.controllers.iter().position(|c| c.process.client == to) {
            self.controller_receives(at, delivery);
        } else if let Some(node) = self.nodes.iter().position(|n| n.process.client == to) {
            self.node_receives(node, delivery);
        } else if let Some(auto) = self.autos.iter().position(|a| a.process.client == to) {
            self.auto_receives(auto, delivery);
        }
    }

    pub(super) fn process_mut(&mut self, client: usize) -> Option<&mut Process> {
        self.controllers
            .iter_mut()
            .map(|c| &mut c.process)
            .chain(self.nodes.iter_mut().map(|n| &mut n.process))
            .chain(self.autos.iter_mut().map(|a| &mut a.process))
            .chain(self.original.iter_mut().map(|o| &mut o.process))
            .find(|p| p.client == client)
    }

    pub(super) fn connect(&mut self, client: usize) {
        let Some(process) = self.process_mut(client).copied() else {
            return;
        };
        if !process.running || !process.link_ok || process.frozen || self.broker.is_up(client) {
            return;
        }
        if !self.broker.connect(client, self.now) {
            // Its broker is down: the next of its list, after its backoff.
            if self.moves(client) {
                self.move_to_other_half(client);
                self.reconnect_later(client);
            }
            return;
        }
        if let Some(at) = self
            .controllers
            .iter()
            .position(|c| c.process.client == client)
        {
            let now = self.now;
            self.step(at, |core| core.on_connection(Connection::Up, now));
            // Subscribed: the retained messages of its filters follow.
            let retained = self.broker.retained_for(client, now, &mut self.random);
            self.schedule_raw(retained);
        } else if let Some(node) = self.nodes.iter().position(|n| n.process.client == client) {
            if !self.nodes[node].hung {
                self.node_announces(node);
            }
        } else if self.autos.iter().any(|a| a.process.client == client) {
            let retained = self.broker.retained_for(client, self.now, &mut self.random);
            self.schedule_raw(retained);
        }
    }

    /// The connection of `client` is gone; the broker publishes its Will if `will`.
    pub(super) fn disconnect(&mut self, client: usize, will: bool) {
        if !self.broker.is_up(client) {
            return;
        }
        self.broker.disconnect(client);
        // A lost connection moves a process that knows several brokers to the next.
        if self.moves(client) {
            self.move_to_other_half(client);
        }
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

    pub(super) fn publish_will(&mut self, client: usize, hadd: Hadd) {
        let will = Heartbeat::own(hadd, NodeState::Offline);
        self.publish(
            client,
            Topic::Heartbeat(hadd),
            Message::Heartbeat(will),
            true,
        );
    }

    /// Whether `client` knows both halves (the outsider and the original know one).
    pub(super) fn moves(&self, client: usize) -> bool {
        let original = self.original.as_ref().map(|o| o.process.client);
        self.switching && client != self.outsider && Some(client) != original
    }

    pub(super) fn move_to_other_half(&mut self, client: usize) {
        let half = &mut self.broker.clients[client].half;
        *half = 1 - *half;
        self.switches += 1;
        self.log.push(format!(
            "{:?} client {client} moves to half {}",
            self.now, *half
        ));
    }

    pub(super) fn reconnect_later(&mut self, client: usize) {
        let delay = self.jitter(50, 5_000);
        self.after(delay, Event::Connect(client));
    }
}
