//! `MqttBridge`: the only owner of the MQTT connection of the process.
//!
//! Three rooms, and this actor between them:
//! - [`connection`]: how to reach the broker (shared with the operator tools) and the task that
//!   drives rumqttc's event loop, reconnects with jittered backoff and forwards what it hears;
//!   every 128th received message it waits (at most 2 s) until the bridge and the observers
//!   have handled it, which bounds their mailboxes under a flood.
//! - [`inbound`]: a pure classifier that says what to do with each publication (ignore and
//!   count, answer 400 or 503, serve by a bus, tell the observers).
//! - [`outbound`]: two bounded lanes (the protocol's, and the retained publications'), with
//!   encoding, signing and the size limit; a full lane drops and counts, never waits. Each is
//!   drained into its own connection: the retained publications have theirs
//!   (`retained_link`), opened at the first of them, so that a broker slow to store one never
//!   holds a heartbeat.
//!
//! The actor itself: its state and the handlers of the connection's events, publications and
//! the clean stop here; what it does with a publication received in `routing`, who registers
//! with it (buses, observers) in `registrations`.
//!
//! On every ConnAck the bridge subscribes again and, once subscribed, asks every bus to
//! announce itself (heartbeats, values). The Last Will is `OFFLINE` on
//! `/dhcp/heartbeat/<controller>`; a clean stop publishes `OFFLINE` for every node first, since
//! a Will is not sent on a clean disconnect.

mod backoff;
mod broker_choice;
mod budget;
pub mod connection;
pub mod duplicates;
pub mod inbound;
pub mod outbound;
mod registrations;
mod repeats;
mod retained_link;
mod routing;
#[cfg(test)]
mod scripted_broker;
mod standby;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use janitoo_config::clock::wall_clock_ms;
use janitoo_config::BrokerList;
use janitoo_protocol::control_plane::requests::SignedRequests;
use janitoo_protocol::control_plane::{ControlKey, ControlPlane, DEFAULT_WINDOW_MS};
use janitoo_protocol::limits::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_REQUESTS_PER_SECOND,
};
use janitoo_protocol::{Codec, Hadd, Heartbeat, Message as Wire, NodeState, Topic};
use rumqttc::{AsyncClient, EventLoop};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::admission::Admission;
use crate::messages::{
    Announce, ConnectionChanged, HandleRequest, Observed, Publish, PublishRecord, PublishRetained,
    RawObserved, Shutdown,
};
use crate::metrics::{ActorKind, Metrics};
use crate::value_cache::ValueCache;
use connection::{
    Brokers, ConnectionEvent, ConnectionNumber, ControllerWill, Listener, MqttSettings,
};
use inbound::Inbound;
use outbound::{Encoding, Lanes, NotSent, Outbound, OutboundQueues, Publishers};
use retained_link::{RetainedLink, RetainedPublisher};
use standby::{Carriers, ProtocolPublisher, StandbyHandle, StandbyLink};

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
    /// Requests to nodes read a second (beyond, dropped unread).
    pub max_requests_per_second: usize,
    /// The signed control plane, on a network with a key, when this process is a network
    /// controller.
    pub control: Option<ControlPlane>,
    /// The network's key, on a network with one: requests signed with it are read from a
    /// share of their own.
    pub request_key: Option<ControlKey>,
    /// The process's stored values, which gets of them are answered from.
    pub values: ValueCache,
    /// A node server's silence limit: with other brokers in its list, it leaves a broker where
    /// no primary is heard for this long (None: a network controller, which claims instead).
    pub move_on_silence: Option<std::time::Duration>,
}

impl BridgeConfig {
    /// A plain connection to `broker`: no credentials, Will, key or TLS; JSON, a 30 s
    /// keep-alive, lanes of `queue_capacity` messages, the default payload and in-flight
    /// limits. Benches and tests change what they need with `..`.
    pub fn plain(broker: impl Into<BrokerList>, queue_capacity: usize) -> Self {
        BridgeConfig {
            mqtt: MqttSettings::plain(broker),
            will: None,
            codec: Codec::Json,
            queue_capacity,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_requests_per_second: DEFAULT_MAX_REQUESTS_PER_SECOND,
            control: None,
            request_key: None,
            values: ValueCache::default(),
            move_on_silence: None,
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
    /// The brokers, until the event loop's task takes them.
    brokers: Option<Brokers>,
    /// The outbound lanes; gone once stopping, so that the drains end when they are empty.
    lanes: Option<Lanes<ProtocolPublisher, RetainedPublisher>>,
    /// The protocol's publisher: the bridge's connection, or the standby while it is down.
    protocol: ProtocolPublisher,
    /// Their receiving sides, until the drain tasks take them.
    queues: Option<OutboundQueues>,
    /// The retained publications' connection: its client, and its event loop until its task
    /// takes it.
    retained: RetainedPublisher,
    retained_link: Option<RetainedLink>,
    /// The standby connection (with more than one broker): its handle, and its event loop
    /// until its task takes it.
    standby: Option<StandbyHandle>,
    standby_link: Option<StandbyLink>,
    inbound: Inbound,
    buses: HashMap<u16, Recipient<HandleRequest>>,
    announcers: Vec<Recipient<Announce>>,
    observers: Vec<Observer>,
    raw_observers: Vec<Recipient<RawObserved>>,
    /// Every node of the process, and the controller carrying the Will: OFFLINE at a clean stop.
    hadds: Vec<Hadd>,
    /// Their beats, sent and heard: another process on one of them.
    own: duplicates::OwnAddresses,
    will: Option<Hadd>,
    /// The number of the current connection, and the Will registered with each.
    connection: ConnectionNumber,
    controller_will: Option<ControllerWill>,
    request_key: Option<ControlKey>,
    requests_per_second: usize,
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
        let mut options = config.mqtt.options(client_id.clone());
        let connection = ConnectionNumber::default();
        let controller_will = config.will.map(|hadd| ControllerWill {
            hadd,
            codec: config.codec,
            control: config.control.clone(),
        });
        if let Some(will) = &controller_will {
            options.set_last_will(will.for_connection(connection.current()));
        }
        let (client, event_loop) = MqttSettings::client(options, MqttSettings::CLIENT_QUEUE);
        let encoding = Encoding {
            codec: config.codec,
            max_payload: config.max_payload,
            control: config.control.clone(),
            request_key: config.request_key.clone(),
            connection: connection.clone(),
        };
        let position = Arc::new(AtomicUsize::new(0));
        let (retained, retained_link) = retained_link::retained_link(
            &config.mqtt,
            &client_id,
            position.clone(),
            MqttSettings::CLIENT_QUEUE,
        );
        let carriers = Carriers::default();
        let (standby_client, standby, standby_link) =
            match standby::standby_link(&config.mqtt, &client_id, position.clone(), &carriers) {
                Some((client, handle, link)) => (Some(client), Some(handle), Some(link)),
                None => (None, None, None),
            };
        let protocol = ProtocolPublisher::new(
            client.clone(),
            standby_client,
            carriers.clone(),
            metrics.clone(),
        );
        let publishers = Publishers {
            protocol: protocol.clone(),
            retained: retained.clone(),
        };
        let (lanes, queues) =
            Lanes::new(config.queue_capacity, encoding, publishers, metrics.clone());
        let admission = Admission::new(metrics.clone(), config.max_in_flight);
        let mut inbound = Inbound::new(
            config.codec,
            config.max_payload,
            config.control,
            admission,
            config.values,
        );
        inbound.count_repeats_in(metrics.requests_repeated.clone());
        let mut filters = vec![janitoo_protocol::topic::filters::BROADCAST_REQUESTS.to_owned()];
        if config.move_on_silence.is_some() && config.mqtt.brokers.len() > 1 {
            // A node server that may move for silence listens for the primary.
            filters.push(janitoo_protocol::topic::filters::RESOLV_HEARTBEAT.to_owned());
        }
        let brokers = Brokers {
            settings: config.mqtt,
            client_id,
            client: client.clone(),
            move_on_silence: config.move_on_silence,
            position,
            up: carriers.main_up,
            standby: standby.clone(),
        };
        MqttBridge {
            client,
            event_loop: Some(event_loop),
            brokers: Some(brokers),
            lanes: Some(lanes),
            queues: Some(queues),
            protocol,
            retained,
            retained_link: Some(retained_link),
            standby,
            standby_link,
            inbound,
            buses: HashMap::new(),
            announcers: Vec::new(),
            observers: Vec::new(),
            raw_observers: Vec::new(),
            hadds: Vec::new(),
            own: duplicates::OwnAddresses::new(),
            will: config.will,
            connection,
            controller_will,
            request_key: config.request_key,
            requests_per_second: config.max_requests_per_second,
            filters,
            link: Link::default(),
            stopping: Arc::new(AtomicBool::new(false)),
            loop_ended: None,
            drained: None,
            metrics,
        }
    }

    /// What the bridge will find: another process on one of this process's addresses.
    pub fn duplicates(&self) -> duplicates::Duplicates {
        self.own.subscribe()
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

    /// Tells every observer that the connection is up or down.
    fn tell_connection(&self, connected: bool) {
        for observer in &self.observers {
            self.metrics.sent(observer.kind);
            observer.connection.do_send(ConnectionChanged { connected });
        }
    }
}

impl Actor for MqttBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (ended, loop_ended) = oneshot::channel();
        self.loop_ended = Some(loop_ended);
        if let Some((event_loop, brokers)) = self.event_loop.take().zip(self.brokers.take()) {
            let listener = Listener {
                events: ctx.address().recipient(),
                in_order: ctx.address().recipient(),
                stopping: self.stopping.clone(),
                ended,
                metrics: self.metrics.clone(),
                connection: self.connection.clone(),
                will: self.controller_will.clone(),
                requests_per_second: self.requests_per_second,
                signatures: self
                    .request_key
                    .clone()
                    .map(|key| SignedRequests::new(key, DEFAULT_WINDOW_MS)),
                brokers,
            };
            actix::spawn(connection::drive(event_loop, listener));
        }
        if let Some(link) = self.retained_link.take() {
            actix::spawn(retained_link::drive(link, self.stopping.clone()));
        }
        ctx.run_interval(
            janitoo_protocol::duplicate::SHARED_REPORT_EVERY,
            |bridge, _| bridge.report_shared(),
        );
        if let Some(link) = self.standby_link.take() {
            actix::spawn(standby::drive(link, self.stopping.clone()));
        }
        if let Some(queues) = self.queues.take() {
            let (drained, drain_ended) = oneshot::channel();
            self.drained = Some(drain_ended);
            let (protocol, retained) = (self.protocol.clone(), self.retained.clone());
            let metrics = self.metrics.clone();
            actix::spawn(async move {
                tokio::join!(
                    outbound::drain(protocol, queues.protocol, metrics.clone()),
                    outbound::drain(retained, queues.retained, metrics),
                );
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
            ConnectionEvent::Up(broker) => {
                self.tell_connection(true);
                self.link.connected = true;
                self.link.unreachable_reported = false;
                self.metrics.connections.increment();
                self.metrics.broker_in_use.set(&broker);
                info!(
                    %broker,
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

impl Handler<Publish> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: Publish, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        self.sent_own(&msg.topic);
        self.send(&msg.topic, &msg.message);
    }
}

impl Handler<PublishRecord> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: PublishRecord, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let Some(lanes) = &self.lanes else {
            return debug!(topic = %msg.topic, "not published: stopping");
        };
        match lanes.send_retained(&msg.topic, &msg.message, wall_clock_ms()) {
            Ok(()) => {}
            Err(NotSent::Oversize { bytes }) => {
                warn!(topic = %msg.topic, bytes, "lease record not published: over the payload limit ([limits] max_payload)")
            }
            Err(NotSent::Full) => {
                warn!(topic = %msg.topic, "lease record not published: the retained publications' queue is full")
            }
        }
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

impl Handler<Shutdown> for MqttBridge {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let mut hadds = self.hadds.clone();
        hadds.extend(self.will.filter(|will| !self.hadds.contains(will)));
        for hadd in hadds {
            if self.shares(hadd) || self.shares(Hadd::new(hadd.ctrl, 0)) {
                // Another process's live node is there (or its bus, with components under
                // it): our OFFLINE would be its too.
                info!(%hadd, "no OFFLINE: another process beats on this address");
                continue;
            }
            let offline = Wire::Heartbeat(Heartbeat::own(hadd, NodeState::Offline));
            self.send(&Topic::Heartbeat(hadd), &offline);
        }
        // Closing the lanes ends the drain once it has handed every message to the client,
        // whose own queue sends them before the DISCONNECT that follows.
        self.lanes = None;
        self.stopping.store(true, Ordering::SeqCst);
        let client = self.client.clone();
        let retained = self.retained.client().clone();
        let standby = self.standby.clone();
        let (drained, loop_ended) = (self.drained.take(), self.loop_ended.take());
        let connected = self.link.connected;
        Box::pin(
            async move {
                if let Some(drained) = drained {
                    let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
                }
                // Ends the retained connection (if it was ever opened) after what it was given.
                let _ = retained.try_disconnect();
                if let Some(standby) = standby {
                    standby.stop();
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
