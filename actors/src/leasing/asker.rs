//! The lease step's own MQTT connection: requests out; answers (`/reply/+`) and, for the
//! watch of displaced leases, the records of this process's leased addresses in.

use std::time::Duration;

use janitoo_protocol::topic::filters;
use janitoo_protocol::{
    Codec, Hadd, LeaseOp, LeaseRecord, LeaseReply, LeaseRequest, Message, Topic,
};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::warn;

use crate::bridge::connection::MqttSettings;

/// The MQTT client of the lease step: requests out, answers on `/reply/+` in.
/// What the watch of displaced leases hears.
#[derive(Debug)]
pub(super) enum Heard {
    /// The record of a watched address.
    Record(Hadd, LeaseRecord),
    /// The primary's heartbeat, with its epoch (none from the original's).
    Primary(Option<u64>),
}

pub(super) struct Asker {
    client: AsyncClient,
    answers: mpsc::Receiver<LeaseReply>,
    /// The records of the addresses watched, and the primary's heartbeats, as they come.
    pub(super) heard: mpsc::Receiver<Heard>,
    /// Whether the subscriptions are acknowledged (asking before would lose the answers).
    subscribed: watch::Receiver<bool>,
    codec: Codec,
    task: tokio::task::JoinHandle<()>,
}

impl Asker {
    /// Connects, and subscribes to the answers and, when `watched` is not empty, to their
    /// records and the primary's heartbeat.
    pub(super) fn connect(mqtt: &MqttSettings, codec: Codec, watched: &[Hadd]) -> Asker {
        let client_id = format!("janitoo-lease-{}", uuid::Uuid::new_v4().simple());
        let brokers = mqtt.brokers.len();
        let (client, mut event_loop) =
            MqttSettings::client(mqtt.options_at(0, client_id.clone()), 64);
        let (sender, answers) = mpsc::channel(64);
        let (heard_sender, heard) = mpsc::channel(64);
        let mut wanted: Vec<String> = vec![filters::lease_reply("+")];
        wanted.extend(
            watched
                .iter()
                .map(|hadd| Topic::LeaseRecord(*hadd).to_string()),
        );
        if !watched.is_empty() {
            wanted.push(filters::RESOLV_HEARTBEAT.into());
        }
        let subscriptions = wanted.len();
        let (acknowledged, subscribed) = watch::channel(false);
        let subscriber = client.clone();
        let mqtt = mqtt.clone();
        let task = tokio::spawn(async move {
            let mut position = 0;
            let mut warned = false;
            let mut acknowledged_count = 0;
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acknowledged_count += 1;
                        if acknowledged_count >= subscriptions {
                            let _ = acknowledged.send(true);
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        warned = false;
                        acknowledged_count = 0;
                        for filter in &wanted {
                            let _ = subscriber.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let decoded = Topic::parse(&publish.topic)
                            .and_then(|topic| Message::decode(&topic, &publish.payload, codec));
                        // A full channel drops: the asker asks again; a record comes again.
                        match decoded {
                            Ok(Message::LeaseReply(reply)) => {
                                let _ = sender.try_send(reply);
                            }
                            Ok(Message::LeaseRecord(record)) => {
                                if let Ok(Topic::LeaseRecord(hadd)) = Topic::parse(&publish.topic) {
                                    let _ = heard_sender.try_send(Heard::Record(hadd, record));
                                }
                            }
                            Ok(Message::ResolvHeartbeat(beat)) => {
                                let _ = heard_sender.try_send(Heard::Primary(beat.epoch));
                            }
                            _ => {}
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        if !warned {
                            warn!(%err, "leasing addresses: the broker is not reachable; retrying");
                            warned = true;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        position = (position + 1) % brokers.max(1);
                        let options = mqtt.options_at(position, client_id.clone());
                        event_loop.mqtt_options = options;
                    }
                }
            }
        });
        Asker {
            client,
            answers,
            heard,
            subscribed,
            codec,
            task,
        }
    }

    /// Waits until the answers can be heard.
    pub(super) async fn ready(&mut self) {
        let _ = self.subscribed.wait_for(|subscribed| *subscribed).await;
    }

    pub(super) async fn send(&self, op: LeaseOp, request: LeaseRequest) {
        let payload = Message::Lease(request).encode(self.codec);
        let topic = Topic::Lease(op).to_string();
        let _ = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await;
    }

    /// The next answer before `deadline`.
    pub(super) async fn answer(&mut self, deadline: Instant) -> Option<LeaseReply> {
        tokio::time::timeout_at(deadline, self.answers.recv())
            .await
            .ok()
            .flatten()
    }

    /// The answer to `rep_uuid` before `deadline` (anyone may publish on `/reply/+`).
    pub(super) async fn answer_to(
        &mut self,
        rep_uuid: &str,
        deadline: Instant,
    ) -> Option<LeaseReply> {
        loop {
            let reply = self.answer(deadline).await?;
            if reply.rep_uuid == rep_uuid {
                return Some(reply);
            }
        }
    }

    pub(super) async fn close(self) {
        let _ = self.client.disconnect().await;
        self.task.abort();
    }
}
