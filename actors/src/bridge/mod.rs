//! `MqttBridge`: the only owner of the MQTT connection of the process.
//!
//! Three rooms, and this actor between them:
//! - [`connection`]: how to reach the broker (shared with the operator tools) and the task that
//!   drives rumqttc's event loop, reconnects with jittered backoff and forwards what it hears;
//!   every 128th received message it waits (at most 2 s) until the bridge and the observers
//!   have handled it, which bounds their mailboxes under a flood.
//! - [`inbound`]: a pure classifier that says what to do with each publication (ignore and
//!   count, answer 400 or 503, serve by a bus, tell the observers).
//! - [`outbound`]: two bounded lanes (the protocol's, then the retained publications'), with
//!   encoding, signing and the size limit; a full lane drops and counts, never waits.
//!
//! On every ConnAck the bridge subscribes again and, once subscribed, asks every bus to
//! announce itself (heartbeats, values). The Last Will is `OFFLINE` on
//! `/dhcp/heartbeat/<controller>`; a clean stop publishes `OFFLINE` for every node first, since
//! a Will is not sent on a clean disconnect.

mod backoff;
pub mod connection;
pub mod inbound;
pub mod outbound;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use janitoo_config::clock::wall_clock_ms;
use janitoo_config::BrokerAddress;
use janitoo_protocol::control_plane::ControlPlane;
use janitoo_protocol::limits::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD};
use janitoo_protocol::{Codec, Hadd, Heartbeat, Message as Wire, NodeState, Status, Topic};
use rumqttc::{AsyncClient, EventLoop, LastWill, QoS, SubscribeFilter};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::admission::Admission;
use crate::messages::{
    Announce, ConnectionChanged, HandleRequest, Observe, ObserveRaw, Observed, Publish,
    PublishRetained, RawObserved, RegisterBus, Resubscribe, Shutdown, Via,
};
use crate::metrics::{ActorKind, Metrics};
use crate::value_cache::ValueCache;
use connection::{ConnectionEvent, Listener, MqttSettings, Received, ReceivedInOrder};
use inbound::{Ignored, Inbound, Publication, Verdict};
use outbound::{Encoding, Lanes, NotSent, Outbound, OutboundQueues};

/// How to reach the broker, and what the bridge lets through.
#[derive(Clone)]
pub struct BridgeConfig {
    /// The broker and how to connect.
    pub mqtt: MqttSettings,
    /// The controller whose heartbeat topic carries the Last Will.
    pub will: Option<Hadd>,
    /// Payload codec of what we send.
    pub codec: Codec,
    /// Outbound queue capacity, in messages, of each lane.
    pub queue_capacity: usize,
    /// The largest payload accepted or sent, in bytes.
    pub max_payload: usize,
    /// Requests in flight at most; more are refused at once (503).
    pub max_in_flight: usize,
    /// The signed control plane, on a network with a key.
    pub control: Option<ControlPlane>,
    /// The process's stored values, which gets of them are answered from.
    pub values: ValueCache,
}

impl BridgeConfig {
    /// A plain connection to `broker`: no credentials, Will, key or TLS; JSON, a 30 s
    /// keep-alive, lanes of `queue_capacity` messages, the default payload and in-flight
    /// limits. Benches and tests change what they need with `..`.
    pub fn plain(broker: BrokerAddress, queue_capacity: usize) -> Self {
        BridgeConfig {
            mqtt: MqttSettings::plain(broker),
            will: None,
            codec: Codec::Json,
            queue_capacity,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            control: None,
            values: ValueCache::default(),
        }
    }
}

/// An observer of the protocol's messages, and of the connection's changes.
struct Observer {
    messages: Recipient<Observed>,
    connection: Recipient<ConnectionChanged>,
    kind: ActorKind,
}

/// The state of the connection, as the bridge tells it.
#[derive(Default)]
struct Link {
    connected: bool,
    /// The buses announce themselves when the pending subscription is acknowledged.
    announce_on_suback: bool,
    /// "Not reachable" was logged once (the rest at debug level).
    unreachable_reported: bool,
}

/// The bridge.
pub struct MqttBridge {
    client: AsyncClient,
    event_loop: Option<EventLoop>,
    /// The outbound lanes; gone once stopping, so that the drain ends when they are empty.
    lanes: Option<Lanes<AsyncClient>>,
    /// Their receiving side, until the drain task takes it.
    queues: Option<OutboundQueues>,
    inbound: Inbound,
    buses: HashMap<u16, Recipient<HandleRequest>>,
    announcers: Vec<Recipient<Announce>>,
    observers: Vec<Observer>,
    raw_observers: Vec<Recipient<RawObserved>>,
    /// Every node of the process, and the controller carrying the Will: OFFLINE at a clean stop.
    hadds: Vec<Hadd>,
    will: Option<Hadd>,
    filters: Vec<String>,
    link: Link,
    stopping: Arc<AtomicBool>,
    loop_ended: Option<oneshot::Receiver<()>>,
    drained: Option<oneshot::Receiver<()>>,
    metrics: Arc<Metrics>,
}

impl MqttBridge {
    /// A bridge to the broker of `config`; it connects when started.
    pub fn new(config: BridgeConfig, metrics: Arc<Metrics>) -> Self {
        let client_id = format!("janitoo-{}", uuid::Uuid::new_v4().simple());
        let mut options = config.mqtt.options(client_id);
        if let Some(will) = config.will {
            let topic = Topic::Heartbeat(will).to_string();
            let payload = match &config.control {
                Some(control) => control.will(config.codec),
                None => NodeState::Offline.as_str().as_bytes().to_vec(),
            };
            options.set_last_will(LastWill::new(topic, payload, QoS::AtMostOnce, false));
        }
        let (client, event_loop) = MqttSettings::client(options, 1024);
        let encoding = Encoding {
            codec: config.codec,
            max_payload: config.max_payload,
            control: config.control.clone(),
        };
        let (lanes, queues) = Lanes::new(
            config.queue_capacity,
            encoding,
            client.clone(),
            metrics.clone(),
        );
        let admission = Admission::new(metrics.clone(), config.max_in_flight);
        MqttBridge {
            client,
            event_loop: Some(event_loop),
            lanes: Some(lanes),
            queues: Some(queues),
            inbound: Inbound::new(
                config.codec,
                config.max_payload,
                config.control,
                admission,
                config.values,
            ),
            buses: HashMap::new(),
            announcers: Vec::new(),
            observers: Vec::new(),
            raw_observers: Vec::new(),
            hadds: Vec::new(),
            will: config.will,
            filters: vec![janitoo_protocol::topic::filters::BROADCAST_REQUESTS.to_owned()],
            link: Link::default(),
            stopping: Arc::new(AtomicBool::new(false)),
            loop_ended: None,
            drained: None,
            metrics,
        }
    }

    /// Subscribes to `filters` in one SUBSCRIBE; the buses announce themselves once it is
    /// acknowledged, so that nobody sees a heartbeat before requests can be served.
    fn subscribe(&mut self, filters: Vec<String>) {
        self.link.announce_on_suback = true;
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

    /// Encodes `message` and queues it in the protocol's lane.
    fn send(&self, topic: &Topic, message: &Wire) {
        let Some(lanes) = &self.lanes else {
            return debug!(%topic, "not published: stopping");
        };
        match lanes.send(topic, message, wall_clock_ms()) {
            Ok(()) => {}
            Err(NotSent::Oversize { bytes }) => {
                warn!(%topic, bytes, "not published: over the payload limit ([limits] max_payload)")
            }
            Err(NotSent::Full) => debug!(%topic, "not published: the outbound queue is full"),
        }
    }

    /// Counts a publication not acted on, under `why`.
    fn count(&self, why: Ignored, topic: &str) {
        let counter = match why {
            Ignored::Retained => &self.metrics.retained,
            Ignored::OffProtocol | Ignored::Unreadable => &self.metrics.decode_errors,
            Ignored::Oversize => &self.metrics.oversize,
            Ignored::NotBelieved(_) => &self.metrics.control_refused,
            Ignored::Unrouted => &self.metrics.unrouted,
            Ignored::Shed => &self.metrics.shed,
            Ignored::Unobserved => return,
        };
        counter.increment();
        debug!(topic, ?why, "received message not acted on");
    }

    /// Classifies a received publication and carries the verdict out; with `wait`, the
    /// deliveries to the observers, to await.
    fn route(&mut self, received: Received, wait: bool) -> Vec<RequestToObserver> {
        self.metrics.received.increment();
        let congested = self.lanes.as_ref().is_some_and(Lanes::congested);
        let publication = Publication {
            topic: &received.topic,
            payload: &received.payload,
            retain: received.retain,
        };
        let verdict =
            self.inbound
                .classify(publication, Instant::now(), wall_clock_ms(), congested);
        let mut deliveries = Vec::new();
        self.carry_out(verdict, &received, wait, &mut deliveries);
        deliveries
    }

    fn carry_out(
        &self,
        verdict: Verdict,
        received: &Received,
        wait: bool,
        deliveries: &mut Vec<RequestToObserver>,
    ) {
        match verdict {
            Verdict::Ignore(why) => self.count(why, &received.topic),
            Verdict::Answer { why, topic, reply } => {
                self.count(why, &received.topic);
                self.send(&topic, &Wire::ValueReply(reply));
            }
            Verdict::Serve { requests, then } => {
                for to_bus in requests {
                    let Some(bus) = self.buses.get(&to_bus.ctrl) else {
                        continue;
                    };
                    let span = request_span(to_bus.via, &to_bus.request);
                    debug!(parent: &span, "admitted");
                    self.metrics.sent(ActorKind::Bus);
                    bus.do_send(HandleRequest {
                        via: to_bus.via,
                        request: to_bus.request,
                        ticket: to_bus.ticket,
                        span,
                    });
                }
                if let Some(then) = then {
                    self.carry_out(*then, received, wait, deliveries);
                }
            }
            Verdict::Answered {
                target,
                request,
                value,
            } => {
                self.metrics.requests.increment();
                let span = request_span(Via::Node(target), &request);
                debug!(parent: &span, status = Status::OK.0, "answered from the value cache");
                for (topic, message) in crate::answer::publications(target, &request, Ok(value)) {
                    self.send(&topic, &message);
                }
            }
            Verdict::Observe { topic, message } => {
                for observer in &self.observers {
                    self.metrics.sent(observer.kind);
                    let observed = Observed {
                        topic: topic.clone(),
                        message: message.clone(),
                    };
                    if wait {
                        deliveries.push(observer.messages.send(observed));
                    } else {
                        observer.messages.do_send(observed);
                    }
                }
            }
            Verdict::Raw(observers) => {
                for at in observers {
                    self.metrics.sent(ActorKind::Supervisor);
                    self.raw_observers[at].do_send(RawObserved {
                        topic: received.topic.clone(),
                        payload: received.payload.clone(),
                        unsent: false,
                    });
                }
            }
        }
    }

    /// Tells every observer that the connection is up or down.
    fn tell_connection(&self, connected: bool) {
        for observer in &self.observers {
            self.metrics.sent(observer.kind);
            observer.connection.do_send(ConnectionChanged { connected });
        }
    }
}

/// The span that follows a request from its admission to its answer.
fn request_span(via: Via, request: &janitoo_protocol::Request) -> tracing::Span {
    let hadd = match via {
        Via::Node(hadd) => request.hadd.unwrap_or(hadd).to_string(),
        Via::Broadcast => "broadcast".to_owned(),
    };
    tracing::info_span!(
        "request",
        %hadd,
        uuid = %request.uuid,
        request_id = request.request_id.as_deref().unwrap_or_default(),
        op = %request.op,
    )
}

/// A delivery to an observer, awaited by an in-order publication.
type RequestToObserver = actix::dev::RecipientRequest<Observed>;

impl Actor for MqttBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (ended, loop_ended) = oneshot::channel();
        self.loop_ended = Some(loop_ended);
        if let Some(event_loop) = self.event_loop.take() {
            let listener = Listener {
                events: ctx.address().recipient(),
                in_order: ctx.address().recipient(),
                stopping: self.stopping.clone(),
                ended,
                metrics: self.metrics.clone(),
            };
            actix::spawn(connection::drive(event_loop, listener));
        }
        if let Some(queues) = self.queues.take() {
            let (drained, drain_ended) = oneshot::channel();
            self.drained = Some(drain_ended);
            let (client, metrics) = (self.client.clone(), self.metrics.clone());
            actix::spawn(async move {
                outbound::drain(client, queues, metrics).await;
                let _ = drained.send(());
            });
        }
    }
}

impl Handler<ConnectionEvent> for MqttBridge {
    type Result = ();

    fn handle(&mut self, event: ConnectionEvent, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        match event {
            ConnectionEvent::Received(received) => {
                self.route(received, false);
            }
            ConnectionEvent::Up => {
                self.tell_connection(true);
                self.link.connected = true;
                self.link.unreachable_reported = false;
                self.metrics.connections.increment();
                info!(
                    subscriptions = self.filters.len(),
                    "connected to the broker"
                );
                self.subscribe(self.filters.clone());
            }
            ConnectionEvent::Subscribed if self.link.announce_on_suback => {
                self.link.announce_on_suback = false;
                for announcer in &self.announcers {
                    self.metrics.sent(ActorKind::Bus);
                    announcer.do_send(Announce);
                }
            }
            ConnectionEvent::Subscribed => {}
            ConnectionEvent::Down(why) => {
                self.tell_connection(false);
                let link = &mut self.link;
                if link.connected {
                    self.metrics.disconnections.increment();
                    warn!(%why, "connection to the broker lost; reconnecting");
                } else if !link.unreachable_reported {
                    warn!(%why, "broker not reachable; retrying with backoff (up to 5 s apart)");
                } else {
                    debug!(%why, "broker still not reachable");
                }
                link.unreachable_reported = !link.connected || link.unreachable_reported;
                link.connected = false;
            }
        }
    }
}

impl Handler<ReceivedInOrder> for MqttBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: ReceivedInOrder, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let deliveries = self.route(msg.0, true);
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
        let outbound = Outbound {
            topic: msg.topic.clone(),
            payload: msg.payload,
            retain: true,
        };
        let queued = self
            .lanes
            .as_ref()
            .is_some_and(|lanes| lanes.enqueue(outbound).is_ok());
        if !queued {
            debug!(topic = %msg.topic, "retained publication dropped: their outbound queue is full");
            for observer in &self.raw_observers {
                self.metrics.sent(ActorKind::Supervisor);
                observer.do_send(RawObserved {
                    topic: msg.topic.clone(),
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
        if self.link.connected {
            self.send_subscribe(msg.filters);
        }
    }
}

impl Handler<ObserveRaw> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: ObserveRaw, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        self.filters.extend(msg.filters.iter().cloned());
        if self.link.connected {
            self.subscribe(msg.filters.clone());
        }
        self.inbound.observe_raw(msg.filters);
        self.raw_observers.push(msg.observer);
    }
}

impl Handler<RegisterBus> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: RegisterBus, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let filter = janitoo_protocol::topic::filters::nodes_of(msg.ctrl);
        self.buses.insert(msg.ctrl, msg.requests);
        self.inbound.serve(msg.ctrl);
        self.announcers.push(msg.announce);
        self.hadds.extend(msg.hadds);
        self.filters.push(filter.clone());
        if self.link.connected {
            self.subscribe(vec![filter]);
        }
    }
}

impl Handler<Observe> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: Observe, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        self.filters.extend(msg.filters.iter().cloned());
        if self.link.connected {
            // A late observer: its filters now, and the news that the connection is up (so
            // that it asks what it missed).
            self.subscribe(msg.filters);
            self.metrics.sent(msg.kind);
            msg.connection
                .do_send(ConnectionChanged { connected: true });
        }
        self.inbound.observe();
        self.observers.push(Observer {
            messages: msg.observer,
            connection: msg.connection,
            kind: msg.kind,
        });
    }
}

impl Handler<Shutdown> for MqttBridge {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let mut hadds = self.hadds.clone();
        hadds.extend(self.will.filter(|will| !self.hadds.contains(will)));
        for hadd in hadds {
            let offline = Wire::Heartbeat(Heartbeat::own(hadd, NodeState::Offline));
            self.send(&Topic::Heartbeat(hadd), &offline);
        }
        // Closing the lanes ends the drain once it has handed every message to the client,
        // whose own queue sends them before the DISCONNECT that follows.
        self.lanes = None;
        self.stopping.store(true, Ordering::SeqCst);
        let client = self.client.clone();
        let (drained, loop_ended) = (self.drained.take(), self.loop_ended.take());
        let connected = self.link.connected;
        Box::pin(
            async move {
                if let Some(drained) = drained {
                    let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
                }
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
