//! The node processes: their beats, announcements, and answers to discovery and sets.

use std::collections::BTreeMap;
use std::time::Duration;

use janitoo_protocol::{
    Data, DiscoveryData, DiscoveryReply, Heartbeat, InfoKind, Message, NodeInfo, NodeState,
    Operation, Topic,
};

use super::broker::Delivery;
use super::*;

impl World {
    pub(super) fn beat(&mut self, node: usize, which: usize, life: u32) {
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
    pub(super) fn node_announces(&mut self, node: usize) {
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

    pub(super) fn node_receives(&mut self, node: usize, delivery: Delivery) {
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
                        if hadds[which].is_controller() && which > 0 {
                            // A second bus controller of the process: its Will is the first's.
                            info.extra
                                .insert("will".into(), Data::from(hadds[0].to_string()));
                        }
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
    pub(super) fn set_period(&mut self, node: usize, which: usize, period: Duration) {
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
}
