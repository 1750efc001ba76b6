//! `MqttBridge`: the only owner of the MQTT connection of the process.
//!
//! - The rumqttc event loop runs in its own task and forwards events to the bridge's mailbox;
//!   every 128th received message it waits (at most 2 s) until the bridge and the observers
//!   have handled it, which bounds their mailboxes under a flood.
//! - Outbound messages go through two bounded queues drained by a second task (their depth is a
//!   metric): the protocol's (heartbeats, replies, values) and the retained publications
//!   (Home Assistant's discovery). The protocol's go first (a waiting retained one passes
//!   after 32 of theirs in a row), and a burst of retained ones fills only its own queue. When
//!   a queue is full, messages are dropped and counted, never awaited. The admission of
//!   requests looks at the protocol's queue only.
//! - Reconnection uses jittered exponential backoff; on every ConnAck the bridge subscribes
//!   again and asks every bus to announce itself (heartbeats, values).
//! - The Last Will is `OFFLINE` on `/dhcp/heartbeat/<controller>`; a clean stop publishes
//!   `OFFLINE` for every node first, since a Will is not sent on a clean disconnect.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use janitoo_config::clock::wall_clock_ms;
use janitoo_config::BrokerAddress;
use janitoo_protocol::control_plane::{ControlPlane, Refusal as ControlRefusal};
use janitoo_protocol::limits::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD};
use janitoo_protocol::request::refusal_of_unreadable;
use janitoo_protocol::topic::filter_matches;
use janitoo_protocol::{
    Codec, Data, Hadd, Heartbeat, Message as Wire, NodeState, ProtocolError, Request, Status,
    Topic, ValueDescriptor, ValueReply,
};
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, SubscribeFilter,
    TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::admission::{Admission, Refusal, Ticket};
use crate::backoff::Backoff;
use crate::messages::{
    Announce, ConnectionChanged, HandleRequest, Observe, ObserveRaw, Observed, Publish,
    PublishRetained, RawObserved, RegisterBus, Resubscribe, Shutdown, Via,
};
use crate::metrics::{ActorKind, Metrics};

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The broker.
    pub broker: BrokerAddress,
    /// MQTT keep-alive.
    pub keepalive: Duration,
    /// Credentials.
    pub credentials: Option<(String, String)>,
    /// The controller whose heartbeat topic carries the Last Will.
    pub will: Option<Hadd>,
    /// Payload codec of what we send.
    pub codec: Codec,
    /// Outbound queue capacity, in messages.
    pub queue_capacity: usize,
    /// The largest payload accepted or sent, in bytes.
    pub max_payload: usize,
    /// Requests in flight at most; more are refused at once (503).
    pub max_in_flight: usize,
    /// The signed control plane, on a network with a key.
    pub control: Option<ControlPlane>,
    /// TLS to the broker.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl BridgeConfig {
    /// A plain connection to `broker`: no credentials, Will, key or TLS; JSON, a 30 s
    /// keep-alive, queues of `queue_capacity` messages, payloads up to 256 KiB, 256 requests
    /// in flight. Benches and tests change what they need with `..`.
    pub fn plain(broker: BrokerAddress, queue_capacity: usize) -> Self {
        BridgeConfig {
            broker,
            keepalive: Duration::from_secs(30),
            credentials: None,
            will: None,
            codec: Codec::Json,
            queue_capacity,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            control: None,
            tls: None,
        }
    }
}

/// The largest packet MQTT allows (a 256 MiB body and its header). The client accepts any
/// packet up to it, so that no message a broker delivers can cost the connection (a packet
/// over rumqttc's limit fails the whole connection, and a retained one would fail every
/// reconnection); payloads over `max_payload` are refused after they are read.
const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// A message for an outbound queue.
struct Outbound {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// The rumqttc event loop told the bridge something.
#[derive(Message)]
#[rtype(result = "()")]
enum Connection {
    Up,
    Subscribed,
    Down(String),
    Received {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
}

/// A received message the event loop waits on: when it is handled, by the bridge and by every
/// observer, so is everything received before it. Every [`IN_ORDER_EVERY`]th message is one,
/// which bounds the mailboxes of the bridge and of the observers under a flood.
#[derive(Message)]
#[rtype(result = "()")]
struct ReceivedInOrder {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// How many received messages may be in the mailboxes before the event loop waits.
const IN_ORDER_EVERY: u64 = 128;

/// The longest the event loop waits for them.
const IN_ORDER_WAIT: Duration = Duration::from_secs(2);

/// The bridge.
pub struct MqttBridge {
    client: AsyncClient,
    event_loop: Option<EventLoop>,
    /// The protocol's messages.
    outbound: mpsc::Sender<Outbound>,
    /// Retained publications, a queue of their own.
    retained: mpsc::Sender<Outbound>,
    /// Both queues' receiving ends, for the drain task.
    outbound_queues: Option<OutboundQueues>,
    queue_capacity: usize,
    buses: HashMap<u16, Recipient<HandleRequest>>,
    announcers: Vec<Recipient<Announce>>,
    observers: Vec<(Recipient<Observed>, Recipient<ConnectionChanged>, ActorKind)>,
    raw_observers: Vec<(Vec<String>, Recipient<RawObserved>)>,
    hadds: Vec<Hadd>,
    will: Option<Hadd>,
    filters: Vec<String>,
    connected: bool,
    announce_on_suback: bool,
    unreachable_reported: bool,
    stopping: Arc<AtomicBool>,
    loop_ended: Option<oneshot::Receiver<()>>,
    codec: Codec,
    max_payload: usize,
    admission: Admission,
    control: Option<RefCell<ControlPlane>>,
    metrics: Arc<Metrics>,
}

impl MqttBridge {
    /// A bridge to the broker of `config`; it connects when started.
    pub fn new(config: BridgeConfig, metrics: Arc<Metrics>) -> Self {
        let client_id = format!("janitoo-{}", uuid::Uuid::new_v4().simple());
        let mut options = MqttOptions::new(client_id, config.broker.host(), config.broker.port());
        options
            .set_keep_alive(config.keepalive)
            .set_clean_session(true)
            .set_max_packet_size(MQTT_MAX_PACKET, MQTT_MAX_PACKET);
        if let Some((user, password)) = config.credentials {
            options.set_credentials(user, password);
        }
        if let Some(tls) = config.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        }
        if let Some(will) = config.will {
            let topic = Topic::Heartbeat(will).to_string();
            let payload = match &config.control {
                Some(control) => control.will(config.codec),
                None => NodeState::Offline.as_str().as_bytes().to_vec(),
            };
            options.set_last_will(LastWill::new(topic, payload, QoS::AtMostOnce, false));
        }
        let (client, mut event_loop) = AsyncClient::new(options, 1024);
        event_loop.network_options.set_connection_timeout(5);
        // Small messages, answered at once: Nagle's algorithm would hold them for the peer's
        // delayed ACK (40 ms on Linux).
        event_loop.network_options.set_tcp_nodelay(true);
        let (outbound, outbound_queue) = mpsc::channel(config.queue_capacity);
        let (retained, retained_queue) = mpsc::channel(config.queue_capacity);
        MqttBridge {
            client,
            event_loop: Some(event_loop),
            outbound,
            retained,
            outbound_queues: Some(OutboundQueues::new(outbound_queue, retained_queue)),
            queue_capacity: config.queue_capacity,
            buses: HashMap::new(),
            announcers: Vec::new(),
            observers: Vec::new(),
            raw_observers: Vec::new(),
            hadds: Vec::new(),
            will: config.will,
            filters: vec![janitoo_protocol::topic::filters::BROADCAST_REQUESTS.to_owned()],
            connected: false,
            announce_on_suback: false,
            unreachable_reported: false,
            stopping: Arc::new(AtomicBool::new(false)),
            loop_ended: None,
            codec: config.codec,
            max_payload: config.max_payload,
            admission: Admission::new(metrics.clone(), config.max_in_flight),
            control: config.control.map(RefCell::new),
            metrics,
        }
    }

    /// Subscribes to `filters` in one SUBSCRIBE; the buses announce themselves once it is
    /// acknowledged, so that nobody sees a heartbeat before requests can be served.
    fn subscribe(&mut self, filters: Vec<String>) {
        self.announce_on_suback = true;
        self.send_subscribe(filters);
    }

    /// One SUBSCRIBE for `filters`.
    fn send_subscribe(&self, filters: Vec<String>) {
        let client = self.client.clone();
        let filters: Vec<SubscribeFilter> = filters
            .into_iter()
            .map(|filter| SubscribeFilter::new(filter, QoS::AtMostOnce))
            .collect();
        actix::spawn(async move {
            if let Err(err) = client.subscribe_many(filters).await {
                warn!(%err, "subscriptions not sent");
            }
        });
    }

    fn enqueue(&self, topic: String, payload: Vec<u8>) {
        self.enqueue_outbound(Outbound {
            topic,
            payload,
            retain: false,
        });
    }

    /// Queues `outbound` in its queue (retained publications in theirs); false when that queue
    /// is full (it is dropped and counted).
    fn enqueue_outbound(&self, outbound: Outbound) -> bool {
        let queue = if outbound.retain {
            &self.retained
        } else {
            &self.outbound
        };
        let queued = queue.try_send(outbound).is_ok();
        if !queued {
            self.metrics.dropped.increment();
        }
        let depth = 2 * self.queue_capacity - self.outbound.capacity() - self.retained.capacity();
        self.metrics.queue_depth.set(depth as u64);
        queued
    }

    /// Encodes `message` with the process's codec and queues it; a payload over the limit is
    /// not sent (counted and logged: a value that long is refused before it is stored).
    fn send(&self, topic: &Topic, message: &Wire) {
        let payload = match &self.control {
            Some(control) => control
                .borrow()
                .seal(topic, message, self.codec, wall_clock_ms()),
            None => message.encode(self.codec),
        };
        if payload.len() > self.max_payload {
            self.metrics.oversize.increment();
            warn!(%topic, bytes = payload.len(), limit = self.max_payload, "not published: over the payload limit");
            return;
        }
        self.enqueue(topic.to_string(), payload);
    }

    /// Decodes with our codec, falling back to JSON (the original's clients).
    fn decode(&self, topic: &Topic, payload: &[u8]) -> Result<Wire, ProtocolError> {
        Wire::decode(topic, payload, self.codec).or_else(|err| match self.codec {
            Codec::Json => Err(err),
            _ => Wire::decode(topic, payload, Codec::Json),
        })
    }

    /// The request on `topic`, if it is one; a request that cannot be read is counted and,
    /// when it says where to answer, answered 400 naming what was wrong.
    fn decode_request(&self, topic: &Topic, payload: &[u8]) -> Option<Request> {
        match self.decode(topic, payload) {
            Ok(Wire::Request(request)) => Some(request),
            Ok(_) => None,
            Err(err) => {
                self.metrics.decode_errors.increment();
                debug!(%topic, %err, "unreadable request");
                if let Some((reply_hadd, reply)) = self
                    .decode_tree(payload)
                    .ok()
                    .and_then(|tree| refusal_of_unreadable(&tree, &err))
                {
                    self.send(&reply_topic(topic, reply_hadd), &Wire::ValueReply(reply));
                }
                None
            }
        }
    }

    /// The payload's tree, with our codec, falling back to JSON.
    fn decode_tree(&self, payload: &[u8]) -> Result<Data, ProtocolError> {
        self.codec
            .decode_tree(payload)
            .or_else(|_| Codec::Json.decode_tree(payload))
    }

    /// On a keyed network, whether a message on `topic` is believed: what only controllers
    /// may say must be signed with the network's key, fresh and new. The tree it checked, if
    /// any, so that the message is not decoded twice.
    fn believe(&self, topic: &Topic, payload: &[u8]) -> Result<Option<Data>, ControlRefusal> {
        let Some(control) = &self.control else {
            return Ok(None);
        };
        let mut control = control.borrow_mut();
        if !control.checks(topic) {
            return Ok(None);
        }
        let tree = self.decode_tree(payload).ok();
        control
            .admit(topic, tree.as_ref(), wall_clock_ms())
            .map(|()| tree)
    }

    /// Admits a request, or turns it away at once (counted as shed): 503 when it says where
    /// to answer and the outbound queue has room; dropped otherwise.
    fn admit(&self, topic: &Topic, request: &Request) -> Option<Ticket> {
        let depth = self.queue_capacity - self.outbound.capacity();
        let congested = depth > self.queue_capacity / 2;
        match self
            .admission
            .admit(request.reply_hadd, congested, std::time::Instant::now())
        {
            Ok(ticket) => return Some(ticket),
            Err(Refusal::Congested) => {}
            Err(Refusal::Busy) => {
                if let Some(reply_hadd) = request.reply_hadd {
                    let refused = ValueDescriptor {
                        uuid: request.uuid.clone(),
                        hadd: request.hadd,
                        reply_hadd: Some(reply_hadd),
                        ..ValueDescriptor::default()
                    };
                    let reply = ValueReply {
                        value: refused,
                        status: Some(Status::SERVICE_UNAVAILABLE),
                        error: Some(format!(
                            "busy: {} requests in flight ([limits] max_in_flight); try again",
                            self.metrics.in_flight.get()
                        )),
                        request_id: request.request_id.clone(),
                    };
                    self.send(&reply_topic(topic, reply_hadd), &Wire::ValueReply(reply));
                }
            }
        }
        None
    }

    /// A request over the payload limit: answered 400 when its `reply_hadd` is found near
    /// the start of the payload (it is not parsed whole).
    fn refuse_oversize(&self, topic: &Topic, payload: &[u8]) {
        let is_request = matches!(topic, Topic::NodeRequest(_) | Topic::BroadcastRequest);
        let reply_hadd = text_field_near_start(payload, "reply_hadd")
            .and_then(|text| Hadd::parse(&text).ok())
            .filter(|_| is_request);
        let Some(reply_hadd) = reply_hadd else {
            return;
        };
        let refused = ValueDescriptor {
            reply_hadd: Some(reply_hadd),
            ..ValueDescriptor::default()
        };
        let reply = ValueReply {
            value: refused,
            status: Some(Status::BAD_REQUEST),
            error: Some(format!(
                "a payload of {} bytes is over the limit of {} bytes ([limits] max_payload)",
                payload.len(),
                self.max_payload
            )),
            request_id: text_field_near_start(payload, "request_id"),
        };
        self.send(&reply_topic(topic, reply_hadd), &Wire::ValueReply(reply));
    }

    /// Hands a received message to the bus or the observers it is for; with `wait`, the
    /// deliveries to the observers, to await.
    fn route(
        &self,
        topic: String,
        payload: Vec<u8>,
        retain: bool,
        wait: bool,
    ) -> Vec<actix::dev::RecipientRequest<Observed>> {
        let mut deliveries = Vec::new();
        self.metrics.received.increment();
        if self.route_raw(&topic, &payload) {
            return deliveries;
        }
        if retain {
            // Janitoo never retains: a retained message is a stranger's, replayed at every
            // subscription. Requests above all must not be.
            self.metrics.retained.increment();
            debug!(%topic, "retained message ignored");
            return deliveries;
        }
        let topic = match Topic::parse(&topic) {
            Ok(topic) => topic,
            Err(err) => {
                self.metrics.decode_errors.increment();
                debug!(%err, "message on a topic outside the protocol ignored");
                return deliveries;
            }
        };
        if payload.len() > self.max_payload {
            self.metrics.oversize.increment();
            debug!(%topic, bytes = payload.len(), "message over the payload limit ignored");
            self.refuse_oversize(&topic, &payload);
            return deliveries;
        }
        let checked = match self.believe(&topic, &payload) {
            Ok(tree) => tree,
            Err(why) => {
                self.metrics.control_refused.increment();
                debug!(%topic, %why, "control message not believed");
                return deliveries;
            }
        };
        match &topic {
            Topic::NodeRequest(hadd) => {
                let Some(bus) = self.buses.get(&hadd.ctrl) else {
                    self.metrics.unrouted.increment();
                    return deliveries;
                };
                if let Some(request) = self.decode_request(&topic, &payload) {
                    let Some(ticket) = self.admit(&topic, &request) else {
                        return deliveries;
                    };
                    self.metrics.sent(ActorKind::Bus);
                    bus.do_send(HandleRequest {
                        via: Via::Node(*hadd),
                        request,
                        ticket,
                    });
                }
            }
            Topic::BroadcastRequest => {
                if let Some(request) = self.decode_request(&topic, &payload) {
                    for bus in self.buses.values() {
                        let Some(ticket) = self.admit(&topic, &request) else {
                            return deliveries;
                        };
                        self.metrics.sent(ActorKind::Bus);
                        bus.do_send(HandleRequest {
                            via: Via::Broadcast,
                            request: request.clone(),
                            ticket,
                        });
                    }
                }
            }
            // Everything else goes to the observers (the network supervisor), decoded.
            _ if !self.observers.is_empty() => match checked.as_ref().map_or_else(
                || self.decode(&topic, &payload),
                |tree| Wire::from_tree(&topic, tree),
            ) {
                Ok(message) => {
                    for (observer, _, kind) in &self.observers {
                        self.metrics.sent(*kind);
                        let observed = Observed {
                            topic: topic.clone(),
                            message: message.clone(),
                        };
                        if wait {
                            deliveries.push(observer.send(observed));
                        } else {
                            observer.do_send(observed);
                        }
                    }
                }
                Err(err) => {
                    self.metrics.decode_errors.increment();
                    debug!(%topic, %err, "undecodable message ignored");
                }
            },
            _ => {}
        }
        deliveries
    }
}

impl MqttBridge {
    /// Hands a message on a raw observer's filters to it (retained or not: Home Assistant's
    /// topics are retained); true when it was one.
    fn route_raw(&self, topic: &str, payload: &[u8]) -> bool {
        let mut routed = false;
        for (filters, observer) in &self.raw_observers {
            if !filters.iter().any(|filter| filter_matches(filter, topic)) {
                continue;
            }
            routed = true;
            if payload.len() > self.max_payload {
                self.metrics.oversize.increment();
                debug!(%topic, bytes = payload.len(), "message over the payload limit ignored");
                continue;
            }
            self.metrics.sent(ActorKind::Supervisor);
            observer.do_send(RawObserved {
                topic: topic.to_owned(),
                payload: payload.to_vec(),
                unsent: false,
            });
        }
        routed
    }
}

/// Where a request on `topic` is answered.
fn reply_topic(topic: &Topic, reply_hadd: Hadd) -> Topic {
    match topic {
        Topic::BroadcastRequest => Topic::BroadcastReply(reply_hadd),
        _ => Topic::NodeReply(reply_hadd),
    }
}

/// The text of field `key` of a JSON request, looked for in its first 64 KiB only (an
/// oversize payload is not parsed whole).
fn text_field_near_start(payload: &[u8], key: &str) -> Option<String> {
    let start = &payload[..payload.len().min(64 << 10)];
    let text = String::from_utf8_lossy(start);
    let after = text.split(&format!("\"{key}\"")).nth(1)?;
    let value = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = value.find('"').filter(|end| *end <= 256)?;
    value.get(..end).map(str::to_owned)
}

/// Drives the rumqttc event loop: forwards events, reconnects with backoff. It waits only for
/// the in-order deliveries (at most [`IN_ORDER_WAIT`] each), which bound the mailboxes.
async fn drive(
    mut event_loop: EventLoop,
    bridge: Addr<MqttBridge>,
    stopping: Arc<AtomicBool>,
    ended: oneshot::Sender<()>,
    metrics: Arc<Metrics>,
) {
    let tell = |event: Connection| {
        metrics.sent(ActorKind::Bridge);
        bridge.do_send(event);
    };
    let mut received: u64 = 0;
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                tell(Connection::Up);
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => tell(Connection::Subscribed),
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                received += 1;
                let (topic, payload) = (publish.topic, publish.payload.to_vec());
                let retain = publish.retain;
                if received % IN_ORDER_EVERY == 0 {
                    metrics.sent(ActorKind::Bridge);
                    // Bounded: a stuck observer must not stop the keep-alive and the outbound
                    // traffic for long.
                    let delivered = bridge.send(ReceivedInOrder {
                        topic,
                        payload,
                        retain,
                    });
                    let _ = tokio::time::timeout(IN_ORDER_WAIT, delivered).await;
                } else {
                    tell(Connection::Received {
                        topic,
                        payload,
                        retain,
                    });
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) if stopping.load(Ordering::SeqCst) => break,
            Ok(_) => {}
            Err(err) => {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                tell(Connection::Down(err.to_string()));
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    let _ = ended.send(());
}

/// How many of the protocol's messages in a row pass a waiting retained publication: under
/// a sustained load of the protocol's, the retained ones still go out (one in this many + 1).
const PROTOCOL_STREAK: u32 = 32;

/// The two outbound queues, as the drain task takes from them.
struct OutboundQueues {
    protocol: mpsc::Receiver<Outbound>,
    retained: mpsc::Receiver<Outbound>,
    /// The protocol's messages taken in a row.
    streak: u32,
}

impl OutboundQueues {
    fn new(protocol: mpsc::Receiver<Outbound>, retained: mpsc::Receiver<Outbound>) -> Self {
        OutboundQueues {
            protocol,
            retained,
            streak: 0,
        }
    }

    /// The next message to send, when one comes: the protocol's first, a waiting retained
    /// publication after [`PROTOCOL_STREAK`] of them in a row or when none waits. `None` once
    /// both queues are closed and empty.
    async fn next(&mut self) -> Option<Outbound> {
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
    fn len(&self) -> usize {
        self.protocol.len() + self.retained.len()
    }
}

/// Hands queued messages to the MQTT client, one at a time, in the order [`OutboundQueues`]
/// gives them.
async fn drain(client: AsyncClient, mut queues: OutboundQueues, metrics: Arc<Metrics>) {
    while let Some(outbound) = queues.next().await {
        // Retained publications (Home Assistant's) are QoS 1: they are states kept, not news.
        let qos = if outbound.retain {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        if client
            .publish(outbound.topic, qos, outbound.retain, outbound.payload)
            .await
            .is_err()
        {
            break;
        }
        metrics.published.increment();
        metrics.queue_depth.set(queues.len() as u64);
    }
}

impl Actor for MqttBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (ended, loop_ended) = oneshot::channel();
        self.loop_ended = Some(loop_ended);
        if let Some(event_loop) = self.event_loop.take() {
            actix::spawn(drive(
                event_loop,
                ctx.address(),
                self.stopping.clone(),
                ended,
                self.metrics.clone(),
            ));
        }
        if let Some(queues) = self.outbound_queues.take() {
            actix::spawn(drain(self.client.clone(), queues, self.metrics.clone()));
        }
    }
}

impl Handler<Connection> for MqttBridge {
    type Result = ();

    fn handle(&mut self, event: Connection, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        match event {
            Connection::Received {
                topic,
                payload,
                retain,
            } => {
                self.route(topic, payload, retain, false);
            }
            Connection::Up => {
                for (_, connection, kind) in &self.observers {
                    self.metrics.sent(*kind);
                    connection.do_send(ConnectionChanged { connected: true });
                }
                self.connected = true;
                self.unreachable_reported = false;
                self.metrics.connections.increment();
                info!(
                    subscriptions = self.filters.len(),
                    "connected to the broker"
                );
                self.subscribe(self.filters.clone());
            }
            Connection::Subscribed if self.announce_on_suback => {
                self.announce_on_suback = false;
                for announcer in &self.announcers {
                    self.metrics.sent(ActorKind::Bus);
                    announcer.do_send(Announce);
                }
            }
            Connection::Subscribed => {}
            Connection::Down(why) => {
                for (_, connection, kind) in &self.observers {
                    self.metrics.sent(*kind);
                    connection.do_send(ConnectionChanged { connected: false });
                }
                if self.connected {
                    self.metrics.disconnections.increment();
                    warn!(%why, "connection to the broker lost; reconnecting");
                } else if !self.unreachable_reported {
                    warn!(%why, "broker not reachable; retrying with backoff (up to 5 s apart)");
                } else {
                    debug!(%why, "broker still not reachable");
                }
                self.unreachable_reported = !self.connected || self.unreachable_reported;
                self.connected = false;
            }
        }
    }
}

impl Handler<ReceivedInOrder> for MqttBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: ReceivedInOrder, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let deliveries = self.route(msg.topic, msg.payload, msg.retain, true);
        Box::pin(async move {
            for delivery in deliveries {
                let _ = delivery.await;
            }
        })
    }
}

impl Handler<Publish> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: Publish, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        self.send(&msg.topic, &msg.message);
    }
}

impl Handler<PublishRetained> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: PublishRetained, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let topic = msg.topic.clone();
        let queued = self.enqueue_outbound(Outbound {
            topic: msg.topic,
            payload: msg.payload,
            retain: true,
        });
        if !queued {
            debug!(%topic, "retained publication dropped: their outbound queue is full");
            for (_, observer) in &self.raw_observers {
                self.metrics.sent(ActorKind::Supervisor);
                observer.do_send(RawObserved {
                    topic: topic.clone(),
                    payload: Vec::new(),
                    unsent: true,
                });
            }
        }
    }
}

impl Handler<Resubscribe> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: Resubscribe, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        if self.connected {
            self.send_subscribe(msg.filters);
        }
    }
}

impl Handler<ObserveRaw> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: ObserveRaw, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        self.filters.extend(msg.filters.iter().cloned());
        if self.connected {
            self.subscribe(msg.filters.clone());
        }
        self.raw_observers.push((msg.filters, msg.observer));
    }
}

impl Handler<RegisterBus> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: RegisterBus, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let filter = janitoo_protocol::topic::filters::nodes_of(msg.ctrl);
        self.buses.insert(msg.ctrl, msg.requests);
        self.announcers.push(msg.announce.clone());
        self.hadds.extend(msg.hadds);
        self.filters.push(filter.clone());
        if self.connected {
            self.subscribe(vec![filter]);
        }
    }
}

impl Handler<Observe> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: Observe, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        self.filters.extend(msg.filters.iter().cloned());
        if self.connected {
            // A late observer: its filters now, and the news that the connection is up (so
            // that it asks what it missed).
            self.subscribe(msg.filters);
            self.metrics.sent(msg.kind);
            msg.connection
                .do_send(ConnectionChanged { connected: true });
        }
        self.observers
            .push((msg.observer, msg.connection, msg.kind));
    }
}

impl Handler<Shutdown> for MqttBridge {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let mut hadds = self.hadds.clone();
        hadds.extend(self.will.filter(|will| !self.hadds.contains(will)));
        for hadd in &hadds {
            let offline = Wire::Heartbeat(Heartbeat::own(*hadd, NodeState::Offline));
            self.enqueue(
                Topic::Heartbeat(*hadd).to_string(),
                offline.encode(self.codec),
            );
        }
        self.stopping.store(true, Ordering::SeqCst);
        let client = self.client.clone();
        let (outbound, retained) = (self.outbound.clone(), self.retained.clone());
        let capacity = self.queue_capacity;
        let loop_ended = self.loop_ended.take();
        let connected = self.connected;
        Box::pin(
            async move {
                let drained = async {
                    while outbound.capacity() < capacity || retained.capacity() < capacity {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
                // The drain task took the last message; let it hand it to the client first.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if connected {
                    let _ = client.disconnect().await;
                    if let Some(ended) = loop_ended {
                        let _ = tokio::time::timeout(Duration::from_secs(2), ended).await;
                    }
                }
            }
            .into_actor(self),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(retain: bool, at: usize) -> Outbound {
        Outbound {
            topic: format!("{}/{at}", if retain { "retained" } else { "protocol" }),
            payload: Vec::new(),
            retain,
        }
    }

    /// Queues `retained` then `protocol` messages, closes both, and takes everything.
    async fn order_of(retained: usize, protocol: usize) -> Vec<String> {
        let (protocol_in, protocol_out) = mpsc::channel(64);
        let (retained_in, retained_out) = mpsc::channel(64);
        for at in 0..retained {
            retained_in.try_send(outbound(true, at)).unwrap();
        }
        for at in 0..protocol {
            protocol_in.try_send(outbound(false, at)).unwrap();
        }
        drop((protocol_in, retained_in));
        let mut queues = OutboundQueues::new(protocol_out, retained_out);
        assert_eq!(queues.len(), retained + protocol);
        let mut order = Vec::new();
        while let Some(next) = queues.next().await {
            order.push(next.topic);
        }
        order
    }

    #[test]
    fn each_queue_has_its_own_room_and_the_depth_counts_both() {
        let metrics = Arc::new(Metrics::default());
        let bridge = MqttBridge::new(
            BridgeConfig::plain(BrokerAddress::new("127.0.0.1", 1), 3),
            metrics.clone(),
        );
        for (at, depth) in [(0, 1), (1, 2), (2, 3)] {
            assert!(bridge.enqueue_outbound(outbound(true, at)));
            assert_eq!(metrics.queue_depth.get(), depth);
        }
        assert!(
            !bridge.enqueue_outbound(outbound(true, 3)),
            "the retained queue is full"
        );
        assert_eq!(metrics.dropped.get(), 1);
        for (at, depth) in [(0, 4), (1, 5), (2, 6)] {
            assert!(bridge.enqueue_outbound(outbound(false, at)));
            assert_eq!(metrics.queue_depth.get(), depth);
        }
        assert!(
            !bridge.enqueue_outbound(outbound(false, 3)),
            "the protocol's is full"
        );
        assert_eq!(metrics.dropped.get(), 2);
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

    #[test]
    fn fields_are_found_near_the_start_of_an_oversize_request_only() {
        let mut payload = br#"{"reply_hadd" : "0999/0001","request_id":"r-1","data":""#.to_vec();
        payload.extend(std::iter::repeat_n(b'x', 1 << 20));
        assert_eq!(
            text_field_near_start(&payload, "reply_hadd").as_deref(),
            Some("0999/0001")
        );
        assert_eq!(
            text_field_near_start(&payload, "request_id").as_deref(),
            Some("r-1")
        );
        assert_eq!(text_field_near_start(&payload, "uuid"), None);
        let mut late = vec![b' '; 70 << 10];
        late.extend(br#""reply_hadd":"0999/0001""#);
        assert_eq!(text_field_near_start(&late, "reply_hadd"), None);
        let long = format!(r#"{{"request_id":"{}"}}"#, "é".repeat(200));
        assert_eq!(text_field_near_start(long.as_bytes(), "request_id"), None);
        assert_eq!(
            text_field_near_start(b"\xff\xfe\"reply_hadd\":\"\xc3", "reply_hadd"),
            None
        );
    }
}
