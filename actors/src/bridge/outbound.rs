//! The bridge's outbound path: two bounded lanes, each drained by its own task into its own
//! MQTT connection.
//!
//! - The protocol's lane (heartbeats, replies, values) goes to the bridge's connection; the
//!   retained publications' lane (Home Assistant's discovery and availability) to a connection
//!   of its own (the bridge's `retained_link`). A broker may hold a connection's every packet while
//!   it stores a retained one (NATS does while JetStream elects a leader, seconds after a server
//!   dies): with a connection each, a heartbeat never waits behind a retained publication, and a
//!   burst of retained ones fills only its own lane.
//! - A full lane drops (counted), never waits: the actors that send are never blocked by the
//!   broker.
//! - Messages are encoded here with the process's codec, signed on a keyed network, and not
//!   sent when over the payload limit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use janitoo_protocol::control_plane::requests::sign_request;
use janitoo_protocol::control_plane::{ControlKey, ControlPlane};
use janitoo_protocol::{Codec, Message, Topic};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::mpsc;

use super::connection::ConnectionNumber;
use crate::metrics::Metrics;

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

/// The sending side of one lane, in front of its publisher.
struct Lane<P> {
    sender: mpsc::Sender<Outbound>,
    /// When the lane is empty and its drain holds nothing, a message goes to it at once.
    publisher: P,
    /// Whether the drain holds a message it has taken and not handed on yet.
    holding: Arc<AtomicBool>,
}

impl<P: Publisher> Lane<P> {
    /// Hands `outbound` on at once when nothing waits ahead of it, else queues it; gives it
    /// back when the lane is full.
    fn enqueue(&self, outbound: Outbound, capacity: usize) -> Result<Queued, Outbound> {
        let idle = self.sender.capacity() == capacity && !self.holding.load(Ordering::Acquire);
        let outbound = if idle {
            match self.publisher.try_publish(outbound) {
                Ok(()) => return Ok(Queued::HandedOn),
                Err(back) => back,
            }
        } else {
            outbound
        };
        self.sender
            .try_send(outbound)
            .map(|()| Queued::Waiting)
            .map_err(|refused| refused.into_inner())
    }
}

/// A lane of `capacity` in front of `publisher`, and its receiving side.
fn lane<P>(capacity: usize, publisher: P, waiting: &Arc<AtomicUsize>) -> (Lane<P>, LaneQueue) {
    let (sender, receiver) = mpsc::channel(capacity);
    let holding = Arc::new(AtomicBool::new(false));
    let queue = LaneQueue {
        receiver,
        holding: holding.clone(),
        waiting: waiting.clone(),
    };
    let lane = Lane {
        sender,
        publisher,
        holding,
    };
    (lane, queue)
}

/// Where a message went.
enum Queued {
    HandedOn,
    Waiting,
}

/// The sending side of both lanes, with what encodes for them.
pub struct Lanes<P, R = P> {
    protocol: Lane<P>,
    retained: Lane<R>,
    capacity: usize,
    /// Messages waiting in both lanes (or taken and not handed on yet).
    waiting: Arc<AtomicUsize>,
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

/// Who publishes each lane's messages.
pub struct Publishers<P, R = P> {
    /// The protocol's: the bridge's connection.
    pub protocol: P,
    /// The retained publications': their own connection.
    pub retained: R,
}

impl<P: Publisher, R: Publisher> Lanes<P, R> {
    /// Two lanes of `capacity` messages each in front of their publishers, and their
    /// receiving sides for the drains (which hand them to the same publishers).
    pub fn new(
        capacity: usize,
        encoding: Encoding,
        publishers: Publishers<P, R>,
        metrics: Arc<Metrics>,
    ) -> (Lanes<P, R>, OutboundQueues) {
        let waiting = Arc::new(AtomicUsize::new(0));
        let (protocol, protocol_queue) = lane(capacity, publishers.protocol, &waiting);
        let (retained, retained_queue) = lane(capacity, publishers.retained, &waiting);
        let lanes = Lanes {
            protocol,
            retained,
            capacity,
            waiting,
            codec: encoding.codec,
            max_payload: encoding.max_payload,
            control: encoding.control,
            request_key: encoding.request_key,
            connection: encoding.connection,
            metrics,
        };
        let queues = OutboundQueues {
            protocol: protocol_queue,
            retained: retained_queue,
        };
        (lanes, queues)
    }

    /// Encodes `message` (signed when it must be, at `wall_ms`) and queues it in the
    /// protocol's lane; a payload over the limit is not sent.
    pub fn send(&self, topic: &Topic, message: &Message, wall_ms: u64) -> Result<(), NotSent> {
        self.send_with(topic, message, wall_ms, false)
    }

    /// As [`Lanes::send`], retained: in the retained publications' lane (the lease records).
    pub fn send_retained(
        &self,
        topic: &Topic,
        message: &Message,
        wall_ms: u64,
    ) -> Result<(), NotSent> {
        self.send_with(topic, message, wall_ms, true)
    }

    fn send_with(
        &self,
        topic: &Topic,
        message: &Message,
        wall_ms: u64,
        retain: bool,
    ) -> Result<(), NotSent> {
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
            retain,
        })
    }

    /// Queues `outbound` in its lane (retained publications in theirs); a full lane drops it
    /// (counted). With nothing waiting ahead of it in its lane, it goes to the publisher at
    /// once: the order is kept, and an answer does not wait for the drain's turn.
    pub fn enqueue(&self, outbound: Outbound) -> Result<(), NotSent> {
        let lane = if outbound.retain {
            self.retained.enqueue(outbound, self.capacity)
        } else {
            self.protocol.enqueue(outbound, self.capacity)
        };
        let queued = match lane {
            Ok(Queued::HandedOn) => {
                self.metrics.published.increment();
                Ok(())
            }
            Ok(Queued::Waiting) => {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(_) => {
                self.metrics.dropped.increment();
                Err(NotSent::Full)
            }
        };
        self.metrics.queue_depth.set(self.depth() as u64);
        queued
    }

    /// Messages waiting in both lanes.
    pub fn depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Whether the protocol's lane is past its high-water mark (half full): its answers would
    /// wait, or be dropped.
    pub fn congested(&self) -> bool {
        self.capacity - self.protocol.sender.capacity() > self.capacity / 2
    }
}

/// The receiving side of one lane, as its drain takes from it.
pub struct LaneQueue {
    receiver: mpsc::Receiver<Outbound>,
    /// Set while a message taken is not handed on yet (see [`Lanes::enqueue`]).
    holding: Arc<AtomicBool>,
    /// Messages waiting in both lanes.
    waiting: Arc<AtomicUsize>,
}

/// The two lanes' receiving sides, one for each drain.
pub struct OutboundQueues {
    /// The protocol's.
    pub protocol: LaneQueue,
    /// The retained publications'.
    pub retained: LaneQueue,
}

impl LaneQueue {
    /// Messages waiting in this lane.
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    /// Whether none waits in this lane.
    pub fn is_empty(&self) -> bool {
        self.receiver.is_empty()
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

/// Hands the messages of `queue` to `publisher`, one at a time, in order; ends when the lane
/// closes (and is empty) or the publisher fails.
pub async fn drain(publisher: impl Publisher, mut queue: LaneQueue, metrics: Arc<Metrics>) {
    while let Some(outbound) = queue.receiver.recv().await {
        queue.holding.store(true, Ordering::Release);
        let handed = publisher.publish(outbound).await;
        queue.holding.store(false, Ordering::Release);
        let left = queue
            .waiting
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1);
        metrics.queue_depth.set(left as u64);
        if handed.is_err() {
            break;
        }
        metrics.published.increment();
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

    fn busy() -> Publishers<Busy> {
        Publishers {
            protocol: Busy,
            retained: Busy,
        }
    }

    fn lanes(capacity: usize) -> (Lanes<Busy>, OutboundQueues, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let (lanes, queues) = Lanes::new(capacity, encoding(64), busy(), metrics.clone());
        (lanes, queues, metrics)
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
        let (lanes, mut queues) = Lanes::new(4, keyed, busy(), Arc::new(Metrics::default()));
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
        let sent = queues.protocol.receiver.try_recv().unwrap();
        let checker = SignedRequests::new(key, 30_000);
        let verified = checker.check(&sent.topic, &sent.payload, WALL_MS);
        assert_eq!(verified.map(|verified| verified.stamp_ms), Ok(WALL_MS));
        // Unkeyed, the same request goes as it is.
        let (plain, mut queues) =
            Lanes::new(4, encoding(4 << 10), busy(), Arc::new(Metrics::default()));
        plain.send(&topic, &Message::Request(set), WALL_MS).unwrap();
        let sent = queues.protocol.receiver.try_recv().unwrap();
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
        assert_eq!(lanes.depth(), 1);
        assert_eq!(
            queues.protocol.receiver.try_recv().unwrap().payload,
            b"ONLINE"
        );
        // A payload of exactly the limit is sent.
        let exactly = Message::Value(janitoo_protocol::ValuePublication::Single(Box::new(
            janitoo_protocol::ValueDescriptor {
                uuid: "text".into(),
                ..Default::default()
            },
        )));
        let size = exactly.encode(Codec::Json).len();
        let (lanes, mut queues) =
            Lanes::new(4, encoding(size), busy(), Arc::new(Metrics::default()));
        assert_eq!(lanes.send(&value, &exactly, 0), Ok(()));
        assert_eq!(
            queues.protocol.receiver.try_recv().unwrap().payload.len(),
            size
        );
    }

    /// A publisher with room at once, keeping what it is handed; or, stalled, one that takes
    /// nothing (a broker holding the connection).
    #[derive(Clone, Default)]
    struct Ready {
        handed: Arc<std::sync::Mutex<Vec<String>>>,
        stalled: bool,
    }

    impl Publisher for Ready {
        async fn publish(&self, outbound: Outbound) -> Result<(), ()> {
            if self.stalled {
                std::future::pending::<()>().await;
            }
            self.handed.lock().unwrap().push(outbound.topic);
            Ok(())
        }

        fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
            if self.stalled {
                return Err(outbound);
            }
            self.handed
                .lock()
                .unwrap()
                .push(format!("at once {}", outbound.topic));
            Ok(())
        }
    }

    impl Ready {
        fn handed(&self) -> Vec<String> {
            self.handed.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn with_nothing_ahead_in_its_lane_a_message_goes_at_once_else_behind_the_rest() {
        let metrics = Arc::new(Metrics::default());
        let (protocol, retained) = (Ready::default(), Ready::default());
        let publishers = Publishers {
            protocol: protocol.clone(),
            retained: retained.clone(),
        };
        let (lanes, queues) = Lanes::new(8, encoding(64), publishers, metrics.clone());
        lanes.enqueue(outbound(false, 0)).unwrap();
        lanes.enqueue(outbound(true, 0)).unwrap();
        assert_eq!(lanes.depth(), 0, "handed on at once");
        assert_eq!(metrics.published.get(), 2);
        // The protocol's drain holds one: what comes meanwhile in that lane waits behind it,
        // in order; the retained lane is not behind it.
        queues.protocol.holding.store(true, Ordering::Release);
        lanes.enqueue(outbound(false, 1)).unwrap();
        lanes.enqueue(outbound(false, 2)).unwrap();
        lanes.enqueue(outbound(true, 1)).unwrap();
        assert_eq!(lanes.depth(), 2);
        assert_eq!(metrics.queue_depth.get(), 2);
        queues.protocol.holding.store(false, Ordering::Release);
        lanes.enqueue(outbound(false, 3)).unwrap();
        assert_eq!(lanes.depth(), 3, "its lane is not empty: it waits its turn");
        drop(lanes);
        drain(protocol.clone(), queues.protocol, metrics.clone()).await;
        drain(retained.clone(), queues.retained, metrics.clone()).await;
        assert_eq!(
            protocol.handed(),
            [
                "at once protocol/0",
                "protocol/1",
                "protocol/2",
                "protocol/3"
            ]
        );
        assert_eq!(
            retained.handed(),
            ["at once retained/0", "at once retained/1"]
        );
        assert_eq!(metrics.published.get(), 6);
        assert_eq!(metrics.queue_depth.get(), 0);
    }

    /// NATS holds a connection's every packet while it stores a retained one and JetStream
    /// elects a leader: the protocol's messages (heartbeats) must not wait behind them.
    #[tokio::test]
    async fn a_stalled_retained_connection_holds_no_protocol_message() {
        let metrics = Arc::new(Metrics::default());
        let protocol = Ready::default();
        let stalled = Ready {
            stalled: true,
            ..Ready::default()
        };
        let publishers = Publishers {
            protocol: protocol.clone(),
            retained: stalled.clone(),
        };
        let (lanes, queues) = Lanes::new(8, encoding(64), publishers, metrics.clone());
        for at in 0..8 {
            lanes.enqueue(outbound(true, at)).unwrap();
        }
        assert_eq!(
            lanes.enqueue(outbound(true, 8)),
            Err(NotSent::Full),
            "the retained lane fills"
        );
        let retained_drain = tokio::spawn(drain(stalled, queues.retained, metrics.clone()));
        tokio::task::yield_now().await;
        for at in 0..20 {
            lanes.enqueue(outbound(false, at)).unwrap();
        }
        drop(lanes);
        drain(protocol.clone(), queues.protocol, metrics.clone()).await;
        assert_eq!(protocol.handed().len(), 20, "every heartbeat handed on");
        assert!(
            !retained_drain.is_finished(),
            "the retained one still waits"
        );
        retained_drain.abort();
    }
}
