//! The bridge's outbound path: two bounded lanes, drained in order by a task that hands each
//! message to the MQTT client.
//!
//! - The protocol's lane (heartbeats, replies, values) and the retained publications' lane
//!   (Home Assistant's discovery): the protocol's go first, and a waiting retained one passes
//!   after [`PROTOCOL_STREAK`] of theirs in a row, so neither starves; a burst of retained ones
//!   fills only its own lane.
//! - A full lane drops (counted), never waits: the actors that send are never blocked by the
//!   broker.
//! - Messages are encoded here with the process's codec, signed on a keyed network, and not
//!   sent when over the payload limit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use janitoo_protocol::control_plane::requests::sign_request;
use janitoo_protocol::control_plane::{ControlKey, ControlPlane};
use janitoo_protocol::{Codec, Message, Topic};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;

use super::connection::ConnectionNumber;
use crate::metrics::Metrics;

/// How many of the protocol's messages in a row pass a waiting retained publication: under
/// a sustained load of the protocol's, the retained ones still go out (one in this many + 1).
pub const PROTOCOL_STREAK: u32 = 32;

/// A message for an outbound lane.
#[derive(Debug)]
pub struct Outbound {
    /// Its topic.
    pub topic: String,
    /// Its payload, encoded.
    pub payload: Vec<u8>,
    /// Retained (QoS 1, the retained lane) or the protocol's (QoS 0).
    pub retain: bool,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// Its payload is over the limit.
    Oversize {
        /// Its size, bytes.
        bytes: usize,
    },
    /// Its lane is full.
    Full,
}

/// The sending side of both lanes, with what encodes for them.
pub struct Lanes<P> {
    protocol: mpsc::Sender<Outbound>,
    retained: mpsc::Sender<Outbound>,
    /// When both lanes are empty and the drain holds nothing, a message goes to it at once.
    publisher: P,
    /// Whether the drain holds a message it has taken and not handed on yet.
    holding: Arc<AtomicBool>,
    capacity: usize,
    codec: Codec,
    max_payload: usize,
    /// Signs control messages on a keyed network (a copy of the control plane: signing needs
    /// only the key).
    control: Option<ControlPlane>,
    /// Signs requests to nodes on a keyed network (the web manager's sets, say).
    request_key: Option<ControlKey>,
    connection: ConnectionNumber,
    metrics: Arc<Metrics>,
}

/// What encodes the protocol's messages for the lanes.
pub struct Encoding {
    /// The process's codec.
    pub codec: Codec,
    /// The largest payload sent, bytes.
    pub max_payload: usize,
    /// Signs control messages on a keyed network (a copy of the control plane: signing needs
    /// only the key).
    pub control: Option<ControlPlane>,
    /// Signs requests to nodes on a keyed network: a keyed controller reads them from the
    /// operators' share.
    pub request_key: Option<ControlKey>,
    /// The number of the current connection (signed candidacies carry it).
    pub connection: ConnectionNumber,
}

impl<P: Publisher> Lanes<P> {
    /// Two lanes of `capacity` messages each in front of `publisher`, and their receiving side
    /// for the drain (which hands them to the same publisher).
    pub fn new(
        capacity: usize,
        encoding: Encoding,
        publisher: P,
        metrics: Arc<Metrics>,
    ) -> (Lanes<P>, OutboundQueues) {
        let (protocol, protocol_queue) = mpsc::channel(capacity);
        let (retained, retained_queue) = mpsc::channel(capacity);
        let holding = Arc::new(AtomicBool::new(false));
        let lanes = Lanes {
            protocol,
            retained,
            publisher,
            holding: holding.clone(),
            capacity,
            codec: encoding.codec,
            max_payload: encoding.max_payload,
            control: encoding.control,
            request_key: encoding.request_key,
            connection: encoding.connection,
            metrics,
        };
        let queues = OutboundQueues::new(protocol_queue, retained_queue, holding);
        (lanes, queues)
    }

    /// Encodes `message` (signed when it must be, at `wall_ms`) and queues it in the
    /// protocol's lane; a payload over the limit is not sent.
    pub fn send(&self, topic: &Topic, message: &Message, wall_ms: u64) -> Result<(), NotSent> {
        let payload = match (&self.control, &self.request_key, message, topic) {
            (_, Some(key), Message::Request(request), Topic::NodeRequest(_)) => {
                sign_request(key, topic, request.clone(), self.codec, wall_ms)
            }
            (Some(control), _, _, _) => {
                let connection = self.connection.current();
                control.seal(topic, message, self.codec, wall_ms, connection)
            }
            (None, _, _, _) => message.encode(self.codec),
        };
        if payload.len() > self.max_payload {
            self.metrics.oversize.increment();
            return Err(NotSent::Oversize {
                bytes: payload.len(),
            });
        }
        self.enqueue(Outbound {
            topic: topic.to_string(),
            payload,
            retain: false,
        })
    }

    /// Queues `outbound` in its lane (retained publications in theirs); a full lane drops it
    /// (counted). With nothing waiting ahead of it, it goes to the publisher at once: the
    /// order is kept, and an answer does not wait for the drain's turn.
    pub fn enqueue(&self, outbound: Outbound) -> Result<(), NotSent> {
        let outbound = if self.depth() == 0 && !self.holding.load(Ordering::Acquire) {
            match self.publisher.try_publish(outbound) {
                Ok(()) => {
                    self.metrics.published.increment();
                    return Ok(());
                }
                Err(back) => back,
            }
        } else {
            outbound
        };
        let lane = if outbound.retain {
            &self.retained
        } else {
            &self.protocol
        };
        let queued = lane.try_send(outbound).is_ok();
        if !queued {
            self.metrics.dropped.increment();
        }
        self.metrics.queue_depth.set(self.depth() as u64);
        queued.then_some(()).ok_or(NotSent::Full)
    }

    /// Messages waiting in both lanes.
    pub fn depth(&self) -> usize {
        2 * self.capacity - self.protocol.capacity() - self.retained.capacity()
    }

    /// Whether the protocol's lane is past its high-water mark (half full): its answers would
    /// wait, or be dropped.
    pub fn congested(&self) -> bool {
        self.capacity - self.protocol.capacity() > self.capacity / 2
    }
}

/// The two lanes, as the drain task takes from them.
pub struct OutboundQueues {
    protocol: mpsc::Receiver<Outbound>,
    retained: mpsc::Receiver<Outbound>,
    /// The protocol's messages taken in a row.
    streak: u32,
    /// Set while a message taken is not handed on yet (see [`Lanes::enqueue`]).
    holding: Arc<AtomicBool>,
}

impl OutboundQueues {
    fn new(
        protocol: mpsc::Receiver<Outbound>,
        retained: mpsc::Receiver<Outbound>,
        holding: Arc<AtomicBool>,
    ) -> Self {
        OutboundQueues {
            protocol,
            retained,
            streak: 0,
            holding,
        }
    }

    /// The next message to send, when one comes: the protocol's first, a waiting retained
    /// publication after [`PROTOCOL_STREAK`] of them in a row or when none waits. `None` once
    /// both lanes are closed and empty.
    pub async fn next(&mut self) -> Option<Outbound> {
        let turn = if self.streak >= PROTOCOL_STREAK {
            self.retained.try_recv().ok()
        } else {
            None
        };
        let outbound = match turn {
            Some(outbound) => outbound,
            None => tokio::select! {
                biased;
                Some(outbound) = self.protocol.recv() => outbound,
                Some(outbound) = self.retained.recv() => outbound,
                else => return None,
            },
        };
        self.streak = if outbound.retain { 0 } else { self.streak + 1 };
        Some(outbound)
    }

    /// Messages waiting in both.
    pub fn waiting(&self) -> usize {
        self.protocol.len() + self.retained.len()
    }
}

/// What the lanes hand messages to: the MQTT client (or, in tests, a stand-in).
pub trait Publisher {
    /// Hands `outbound` on, waiting for room; an error means it never will again (the drain
    /// ends).
    fn publish(&self, outbound: Outbound) -> impl Future<Output = Result<(), ()>>;

    /// Hands `outbound` on if there is room now; else gives it back.
    fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound>;
}

/// The QoS of a message: retained publications (Home Assistant's) are QoS 1, states kept, not
/// news; the protocol's are QoS 0, as the original's.
fn qos_of(outbound: &Outbound) -> QoS {
    if outbound.retain {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    }
}

impl Publisher for AsyncClient {
    async fn publish(&self, outbound: Outbound) -> Result<(), ()> {
        let qos = qos_of(&outbound);
        AsyncClient::publish(self, outbound.topic, qos, outbound.retain, outbound.payload)
            .await
            .map_err(|_| ())
    }

    fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
        let qos = qos_of(&outbound);
        let Outbound {
            topic,
            payload,
            retain,
        } = outbound;
        // The payload is kept to be given back: only a full client queue refuses it.
        AsyncClient::try_publish(self, topic.clone(), qos, retain, payload.clone()).map_err(|_| {
            Outbound {
                topic,
                payload,
                retain,
            }
        })
    }
}

/// Hands queued messages to `publisher`, one at a time, in the order [`OutboundQueues`]
/// gives them; ends when the lanes close (and are empty) or the publisher fails.
pub async fn drain(publisher: impl Publisher, mut queues: OutboundQueues, metrics: Arc<Metrics>) {
    while let Some(outbound) = queues.next().await {
        queues.holding.store(true, Ordering::Release);
        let handed = publisher.publish(outbound).await;
        queues.holding.store(false, Ordering::Release);
        if handed.is_err() {
            break;
        }
        metrics.published.increment();
        metrics.queue_depth.set(queues.waiting() as u64);
    }
}

#[cfg(test)]
mod tests {
    use janitoo_protocol::control_plane::requests::SignedRequests;

    use super::*;

    fn outbound(retain: bool, at: usize) -> Outbound {
        Outbound {
            topic: format!("{}/{at}", if retain { "retained" } else { "protocol" }),
            payload: Vec::new(),
            retain,
        }
    }

    /// A publisher that never has room at once: everything goes through the lanes.
    struct Busy;

    impl Publisher for Busy {
        async fn publish(&self, _outbound: Outbound) -> Result<(), ()> {
            Ok(())
        }

        fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
            Err(outbound)
        }
    }

    fn encoding(max_payload: usize) -> Encoding {
        Encoding {
            codec: Codec::Json,
            max_payload,
            control: None,
            request_key: None,
            connection: ConnectionNumber::default(),
        }
    }

    fn lanes(capacity: usize) -> (Lanes<Busy>, OutboundQueues, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let (lanes, queues) = Lanes::new(capacity, encoding(64), Busy, metrics.clone());
        (lanes, queues, metrics)
    }

    /// Queues `retained` then `protocol` messages, closes both, and takes everything.
    async fn order_of(retained: usize, protocol: usize) -> Vec<String> {
        let (lanes, mut queues, _) = lanes(64);
        for at in 0..retained {
            lanes.enqueue(outbound(true, at)).unwrap();
        }
        for at in 0..protocol {
            lanes.enqueue(outbound(false, at)).unwrap();
        }
        drop(lanes);
        assert_eq!(queues.waiting(), retained + protocol);
        let mut order = Vec::new();
        while let Some(next) = queues.next().await {
            order.push(next.topic);
        }
        order
    }

    #[test]
    fn each_lane_has_its_own_room_and_the_depth_counts_both() {
        let (lanes, _queues, metrics) = lanes(3);
        for (at, depth) in [(0, 1), (1, 2), (2, 3)] {
            assert_eq!(lanes.enqueue(outbound(true, at)), Ok(()));
            assert_eq!(metrics.queue_depth.get(), depth);
        }
        assert_eq!(
            lanes.enqueue(outbound(true, 3)),
            Err(NotSent::Full),
            "the retained lane is full"
        );
        assert_eq!(metrics.dropped.get(), 1);
        assert!(!lanes.congested(), "the protocol's lane is empty");
        for (at, depth) in [(0, 4), (1, 5), (2, 6)] {
            assert_eq!(lanes.enqueue(outbound(false, at)), Ok(()));
            assert_eq!(metrics.queue_depth.get(), depth);
        }
        assert_eq!(
            lanes.enqueue(outbound(false, 3)),
            Err(NotSent::Full),
            "the protocol's is full"
        );
        assert_eq!(metrics.dropped.get(), 2);
    }

    #[test]
    fn the_protocols_lane_is_congested_past_half_full() {
        let (lanes, _queues, _) = lanes(8);
        for at in 0..4 {
            lanes.enqueue(outbound(true, at)).unwrap();
            lanes.enqueue(outbound(false, at)).unwrap();
            assert!(!lanes.congested(), "{} of 8", at + 1);
        }
        lanes.enqueue(outbound(false, 4)).unwrap();
        assert!(
            lanes.congested(),
            "5 of 8; the retained lane does not count"
        );
    }

    #[test]
    fn a_request_to_a_node_is_signed_with_the_networks_key() {
        let key = ControlKey::from_secret(b"the network's secret").unwrap();
        let keyed = Encoding {
            request_key: Some(key.clone()),
            ..encoding(4 << 10)
        };
        let (lanes, mut queues) = Lanes::new(4, keyed, Busy, Arc::new(Metrics::default()));
        let node = janitoo_protocol::Hadd::new(220, 1);
        let set = janitoo_protocol::Request::set(
            node,
            "name",
            janitoo_protocol::Genre::Config,
            janitoo_protocol::CommandClass::CONFIGURATION,
            "Pond".into(),
        );
        let topic = Topic::NodeRequest(node);
        const WALL_MS: u64 = 1_764_900_000_000;
        lanes
            .send(&topic, &Message::Request(set.clone()), WALL_MS)
            .unwrap();
        let sent = queues.protocol.try_recv().unwrap();
        let checker = SignedRequests::new(key, 30_000);
        let verified = checker.check(&sent.topic, &sent.payload, WALL_MS);
        assert_eq!(verified.map(|verified| verified.stamp_ms), Ok(WALL_MS));
        // Unkeyed, the same request goes as it is.
        let (plain, mut queues) =
            Lanes::new(4, encoding(4 << 10), Busy, Arc::new(Metrics::default()));
        plain.send(&topic, &Message::Request(set), WALL_MS).unwrap();
        let sent = queues.protocol.try_recv().unwrap();
        assert!(!String::from_utf8(sent.payload).unwrap().contains("signed"));
    }

    #[test]
    fn a_message_over_the_limit_is_not_sent_and_counted() {
        let (lanes, mut queues, metrics) = lanes(4);
        let small = Message::Heartbeat(janitoo_protocol::Heartbeat::own(
            janitoo_protocol::Hadd::new(1, 0),
            janitoo_protocol::NodeState::Online,
        ));
        let topic = Topic::Heartbeat(janitoo_protocol::Hadd::new(1, 0));
        assert_eq!(lanes.send(&topic, &small, 0), Ok(()));
        let value = Topic::Value {
            genre: janitoo_protocol::Genre::User,
            hadd: janitoo_protocol::Hadd::new(1, 1),
            uuid: "text".into(),
        };
        let long = Message::Value(janitoo_protocol::ValuePublication::Single(Box::new(
            janitoo_protocol::ValueDescriptor {
                uuid: "text".into(),
                data: "x".repeat(100).into(),
                ..Default::default()
            },
        )));
        assert!(matches!(
            lanes.send(&value, &long, 0),
            Err(NotSent::Oversize { bytes }) if bytes > 64
        ));
        assert_eq!(metrics.oversize.get(), 1);
        assert_eq!(queues.waiting(), 1);
        assert_eq!(queues.protocol.try_recv().unwrap().payload, b"ONLINE");
        // A payload of exactly the limit is sent.
        let exactly = Message::Value(janitoo_protocol::ValuePublication::Single(Box::new(
            janitoo_protocol::ValueDescriptor {
                uuid: "text".into(),
                ..Default::default()
            },
        )));
        let size = exactly.encode(Codec::Json).len();
        let (lanes, mut queues) = Lanes::new(4, encoding(size), Busy, Arc::new(Metrics::default()));
        assert_eq!(lanes.send(&value, &exactly, 0), Ok(()));
        assert_eq!(queues.protocol.try_recv().unwrap().payload.len(), size);
    }

    /// A publisher with room at once, keeping what it is handed.
    #[derive(Clone, Default)]
    struct Ready(Arc<std::sync::Mutex<Vec<String>>>);

    impl Publisher for Ready {
        async fn publish(&self, outbound: Outbound) -> Result<(), ()> {
            self.0.lock().unwrap().push(outbound.topic);
            Ok(())
        }

        fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
            self.0
                .lock()
                .unwrap()
                .push(format!("at once {}", outbound.topic));
            Ok(())
        }
    }

    #[tokio::test]
    async fn with_nothing_ahead_a_message_goes_at_once_else_behind_the_rest() {
        let metrics = Arc::new(Metrics::default());
        let ready = Ready::default();
        let (lanes, queues) = Lanes::new(8, encoding(64), ready.clone(), metrics.clone());
        lanes.enqueue(outbound(false, 0)).unwrap();
        assert_eq!(queues.waiting(), 0, "handed on at once");
        assert_eq!(metrics.published.get(), 1);
        // The drain holds one: what comes meanwhile waits behind it, in order.
        lanes
            .enqueue(Outbound {
                ..outbound(true, 0)
            })
            .unwrap_or(());
        assert_eq!(queues.waiting(), 0);
        queues.holding.store(true, Ordering::Release);
        lanes.enqueue(outbound(false, 1)).unwrap();
        lanes.enqueue(outbound(false, 2)).unwrap();
        assert_eq!(queues.waiting(), 2);
        queues.holding.store(false, Ordering::Release);
        lanes.enqueue(outbound(false, 3)).unwrap();
        assert_eq!(
            queues.waiting(),
            3,
            "a lane is not empty: it waits its turn"
        );
        drop(lanes);
        drain(ready.clone(), queues, metrics.clone()).await;
        assert_eq!(
            *ready.0.lock().unwrap(),
            [
                "at once protocol/0",
                "at once retained/0",
                "protocol/1",
                "protocol/2",
                "protocol/3"
            ]
        );
        assert_eq!(metrics.published.get(), 5);
    }

    #[tokio::test]
    async fn the_protocols_messages_pass_waiting_retained_publications() {
        assert_eq!(
            order_of(3, 3).await,
            [
                "protocol/0",
                "protocol/1",
                "protocol/2",
                "retained/0",
                "retained/1",
                "retained/2"
            ]
        );
    }

    #[tokio::test]
    async fn a_retained_publication_goes_after_a_streak_of_the_protocols() {
        let order = order_of(2, 40).await;
        assert_eq!(order.len(), 42);
        let positions: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, topic)| topic.starts_with("retained/"))
            .map(|(at, _)| at)
            .collect();
        assert_eq!(positions, [32, 41], "{order:?}");
        assert_eq!(order[33], "protocol/32");
    }
}
