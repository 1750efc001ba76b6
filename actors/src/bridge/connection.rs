//! The bridge's connection: how to reach the broker ([`MqttSettings`], which the operator
//! tools share), and the task that drives rumqttc's event loop, reconnects with jittered
//! backoff and forwards what it hears to the bridge.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use janitoo_config::clock::wall_clock_ms;
use janitoo_config::{BrokerAddress, BrokerConfig, BrokerList, ConfigError};
use janitoo_protocol::control_plane::requests::SignedRequests;
use janitoo_protocol::control_plane::ControlPlane;
use janitoo_protocol::topic::filters::RESOLV_HEARTBEAT;
use janitoo_protocol::{Codec, Hadd, NodeState, Topic};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::{oneshot, Notify};
use tracing::{info, warn};

use super::backoff::Backoff;
use super::broker_choice::BrokerChoice;
use super::budget::{InboundBudget, Kind, Reading};
use super::standby::StandbyHandle;
use crate::metrics::{ActorKind, Metrics};

/// The largest packet MQTT allows (a 256 MiB body and its header). Clients accept any packet
/// up to it, so that no message a broker delivers can cost the connection (a packet over
/// rumqttc's limit fails the whole connection, and a retained one would fail every
/// reconnection); payloads over the payload limit are refused after they are read.
pub const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// The number of the bridge's current connection to the broker, 1 for the first: counted by
/// the event loop's task, carried by a keyed controller's candidacies and Last Will (so that
/// its Will is believed once per connection).
#[derive(Debug, Clone)]
pub struct ConnectionNumber(Arc<AtomicU64>);

impl Default for ConnectionNumber {
    fn default() -> Self {
        ConnectionNumber(Arc::new(AtomicU64::new(1)))
    }
}

impl ConnectionNumber {
    /// The current connection's number.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts a new connection (attempt), and returns its number.
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// The Last Will of the process's network controller: its OFFLINE, signed on a keyed network,
/// with the number of the connection it is registered with.
#[derive(Debug, Clone)]
pub struct ControllerWill {
    /// The controller.
    pub hadd: Hadd,
    /// The codec of the process.
    pub codec: Codec,
    /// Signs it on a keyed network.
    pub control: Option<ControlPlane>,
}

impl ControllerWill {
    /// The Will to register with connection number `connection`.
    pub fn for_connection(&self, connection: u64) -> LastWill {
        let topic = Topic::Heartbeat(self.hadd).to_string();
        let payload = match &self.control {
            Some(control) => control.will(self.codec, connection),
            None => NodeState::Offline.as_str().as_bytes().to_vec(),
        };
        LastWill::new(topic, payload, QoS::AtMostOnce, false)
    }
}

/// How to reach a broker: the addresses it may be reached at, in order, the keep-alive, the
/// account and TLS (for every address). One setup for the bridge and for the operator tools.
#[derive(Clone)]
pub struct MqttSettings {
    /// Where: the first, then the next when one fails.
    pub brokers: BrokerList,
    /// The MQTT keep-alive.
    pub keepalive: Duration,
    /// The account, when the broker wants one.
    pub credentials: Option<(String, String)>,
    /// TLS to the broker.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// With several brokers, a standby connection to the next (`[broker] standby`).
    pub standby: bool,
}

impl MqttSettings {
    /// A plain connection to `brokers`: no account, no TLS, a 30 s keep-alive.
    pub fn plain(brokers: impl Into<BrokerList>) -> Self {
        MqttSettings {
            brokers: brokers.into(),
            keepalive: Duration::from_secs(30),
            credentials: None,
            tls: None,
            standby: true,
        }
    }

    /// The settings of `[broker]` (its password and TLS files read now), to `brokers`.
    pub fn of(config: &BrokerConfig, brokers: BrokerList) -> Result<Self, ConfigError> {
        let password = janitoo_config::secrets::password(config)?;
        Ok(MqttSettings {
            brokers,
            keepalive: Duration::from_secs(config.keepalive.into()),
            credentials: config.username.clone().zip(password),
            tls: config
                .tls
                .as_ref()
                .map(janitoo_config::tls::client_config)
                .transpose()?,
            standby: config.standby,
        })
    }

    /// The options of a client called `client_id`, to the first broker: a clean session, any
    /// packet size.
    pub fn options(&self, client_id: impl Into<String>) -> MqttOptions {
        self.options_at(0, client_id)
    }

    /// The options of a client called `client_id`, to the broker at `position` of the list.
    pub fn options_at(&self, position: usize, client_id: impl Into<String>) -> MqttOptions {
        let broker = self.brokers.at(position);
        let mut options = MqttOptions::new(client_id, broker.host(), broker.port());
        options
            .set_keep_alive(self.keepalive)
            .set_clean_session(true)
            .set_max_packet_size(MQTT_MAX_PACKET, MQTT_MAX_PACKET);
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user.clone(), password.clone());
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        options
    }

    /// The requests a bridge's MQTT client queues at most (each of its connections).
    pub const CLIENT_QUEUE: usize = 1024;

    /// A client with `options` and its event loop: `capacity` requests queued at most, 5 s to
    /// connect, and no Nagle delay (small messages answered at once would wait for the peer's
    /// delayed ACK, 40 ms on Linux).
    pub fn client(options: MqttOptions, capacity: usize) -> (AsyncClient, EventLoop) {
        let (client, mut event_loop) = AsyncClient::new(options, capacity);
        event_loop.network_options.set_connection_timeout(5);
        event_loop.network_options.set_tcp_nodelay(true);
        (client, event_loop)
    }
}

/// What the event loop told the bridge.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum ConnectionEvent {
    /// Connected (a ConnAck) to this broker.
    Up(BrokerAddress),
    /// A subscription was acknowledged.
    Subscribed,
    /// The connection failed or was lost, and why.
    Down(String),
    /// A publication arrived.
    Received(Received),
}

/// A publication as it arrived.
#[derive(Debug)]
pub struct Received {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Whether the broker held it.
    pub retain: bool,
    /// A request signed with the network's key, fresh and new, read from the signed share.
    pub signed: bool,
}

/// A received message the event loop waits on: when it is handled, by the bridge and by every
/// observer, so is everything received before it. Every [`IN_ORDER_EVERY`]th message is one,
/// which bounds the mailboxes of the bridge and of the observers under a flood.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ReceivedInOrder(pub Received);

/// How many received messages may be in the mailboxes before the event loop waits.
pub const IN_ORDER_EVERY: u64 = 128;

/// The longest the event loop waits for them.
pub const IN_ORDER_WAIT: Duration = Duration::from_secs(2);

/// How long a clean stop waits for the broker to close the connection after the DISCONNECT.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Where the event loop's task tells what it hears.
pub struct Listener {
    /// Connection changes and most publications.
    pub events: Recipient<ConnectionEvent>,
    /// Every [`IN_ORDER_EVERY`]th publication, awaited.
    pub in_order: Recipient<ReceivedInOrder>,
    /// Set before a clean stop: the loop ends instead of reconnecting.
    pub stopping: Arc<AtomicBool>,
    /// Told when the loop has ended.
    pub ended: oneshot::Sender<()>,
    /// Counts the messages it sends to the bridge.
    pub metrics: Arc<Metrics>,
    /// Counted at each reconnection.
    pub connection: ConnectionNumber,
    /// Registered anew, with the new number, at each reconnection.
    pub will: Option<ControllerWill>,
    /// Requests to nodes read a second (`[limits] max_requests_per_second`).
    pub requests_per_second: usize,
    /// The check of requests signed with the network's key, on a keyed network.
    pub signatures: Option<SignedRequests>,
    /// The brokers, and how to reach them: the next one's options are made from these.
    pub brokers: Brokers,
}

/// The brokers the event loop may move among.
pub struct Brokers {
    /// How to reach them.
    pub settings: MqttSettings,
    /// The client's id, the same on every broker.
    pub client_id: String,
    /// The client, to disconnect cleanly before a move for silence.
    pub client: AsyncClient,
    /// A node server's silence limit: no primary heard for it, it moves on (None: a network
    /// controller, which claims instead).
    pub move_on_silence: Option<Duration>,
    /// The position in the list of the broker in use, which the retained publications'
    /// connection follows.
    pub position: Arc<AtomicUsize>,
    /// Set while the connection is up: the protocol's publications go through it, else
    /// through the standby.
    pub up: Arc<AtomicBool>,
    /// The standby connection (with more than one broker), which leaves the broker this
    /// connection comes up on.
    pub standby: Option<StandbyHandle>,
}

/// Drives the rumqttc event loop: forwards events, reconnects with backoff, to the next broker
/// of the list when there is one. It waits only for the in-order deliveries (at most
/// [`IN_ORDER_WAIT`] each), which bound the mailboxes.
pub async fn drive(mut event_loop: EventLoop, listener: Listener) {
    let Listener {
        events,
        in_order,
        stopping,
        ended,
        metrics,
        connection,
        will,
        requests_per_second,
        signatures,
        brokers,
    } = listener;
    let tell = |event: ConnectionEvent| {
        metrics.sent(ActorKind::Bridge);
        events.do_send(event);
    };
    let choice = Arc::new(Mutex::new(BrokerChoice::new(
        brokers.settings.brokers.len(),
        brokers.move_on_silence,
    )));
    let choice_changed = Arc::new(Notify::new());
    let watch =
        (brokers.move_on_silence.is_some() && brokers.settings.brokers.len() > 1).then(|| {
            tokio::spawn(watch_silence(
                choice.clone(),
                choice_changed.clone(),
                brokers.client.clone(),
            ))
        });
    let update = |change: &dyn Fn(&mut BrokerChoice)| {
        if let Ok(mut choice) = choice.lock() {
            change(&mut choice);
        }
        choice_changed.notify_one();
    };
    let position = || choice.lock().map_or(0, |choice| choice.position());
    metrics.broker_in_use.set(brokers.settings.brokers.first());
    let mut received: u64 = 0;
    let mut budget =
        InboundBudget::new(tokio::time::Instant::now(), requests_per_second, signatures);
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                brokers.up.store(true, Ordering::Release);
                update(&|choice| choice.connected(tokio::time::Instant::now()));
                if let Some(standby) = &brokers.standby {
                    standby.main_connected(position());
                }
                tell(ConnectionEvent::Up(
                    brokers.settings.brokers.at(position()).clone(),
                ));
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => tell(ConnectionEvent::Subscribed),
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                // Beyond its kind's budget, dropped before anything is queued for the actors:
                // the control plane is never behind a flood.
                let now = tokio::time::Instant::now();
                let signed =
                    match budget.reads(&publish.topic, &publish.payload, now, wall_clock_ms()) {
                        Reading::Read { signed } => signed,
                        Reading::OverBudget(kind) => {
                            match kind {
                                Kind::Request => metrics.requests_over_budget.increment(),
                                Kind::Lease => metrics.leases_over_budget.increment(),
                                Kind::Discovery | Kind::Unbudgeted => {
                                    metrics.discovery_over_budget.increment()
                                }
                            }
                            continue;
                        }
                    };
                if watch.is_some() && publish.topic == RESOLV_HEARTBEAT {
                    update(&|choice| choice.primary_heard(now));
                }
                if signed {
                    metrics.signed_requests.increment();
                }
                received += 1;
                let publication = Received {
                    topic: publish.topic,
                    payload: publish.payload.to_vec(),
                    retain: publish.retain,
                    signed,
                };
                if received % IN_ORDER_EVERY == 0 {
                    metrics.sent(ActorKind::Bridge);
                    // Bounded: a stuck observer must not stop the keep-alive and the outbound
                    // traffic for long.
                    let delivered = in_order.send(ReceivedInOrder(publication));
                    let _ = tokio::time::timeout(IN_ORDER_WAIT, delivered).await;
                } else {
                    tell(ConnectionEvent::Received(publication));
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) if stopping.load(Ordering::SeqCst) => {
                // The broker closes the connection once it has read the DISCONNECT. Closing it
                // first, while the broker still writes to it (our own OFFLINEs coming back),
                // makes the broker take the stop for a crash and publish the Will: an OFFLINE
                // of a controller another process may share.
                let closed = async { while event_loop.poll().await.is_ok() {} };
                let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
                break;
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // A node server leaving a broker where no primary is heard: disconnected
                // cleanly (no Will there), it connects to the next broker at once.
                let moved = choice
                    .lock()
                    .ok()
                    .and_then(|mut choice| choice.moving().then(|| choice.moved()).flatten());
                choice_changed.notify_one();
                if let Some(next) = moved {
                    brokers.up.store(false, Ordering::Release);
                    event_loop.clean();
                    let limit = brokers.move_on_silence.unwrap_or_default();
                    tell(ConnectionEvent::Down(format!(
                        "no primary heard there for {} s",
                        limit.as_secs_f64()
                    )));
                    switch_to(
                        &mut event_loop,
                        &brokers,
                        next,
                        &connection,
                        &will,
                        &metrics,
                    );
                }
            }
            Ok(_) => {}
            Err(err) => {
                brokers.up.store(false, Ordering::Release);
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                tell(ConnectionEvent::Down(err.to_string()));
                let next = choice.lock().ok().and_then(|mut choice| choice.failed());
                choice_changed.notify_one();
                match next {
                    Some(next) => switch_to(
                        &mut event_loop,
                        &brokers,
                        next,
                        &connection,
                        &will,
                        &metrics,
                    ),
                    None => {
                        let number = connection.next();
                        if let Some(will) = &will {
                            event_loop
                                .mqtt_options
                                .set_last_will(will.for_connection(number));
                        }
                    }
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    if let Some(watch) = watch {
        watch.abort();
    }
    let _ = ended.send(());
}

/// Points the event loop at the broker at `position`: the same client id, the Will registered
/// anew with the next connection's number.
fn switch_to(
    event_loop: &mut EventLoop,
    brokers: &Brokers,
    position: usize,
    connection: &ConnectionNumber,
    will: &Option<ControllerWill>,
    metrics: &Metrics,
) {
    let address = brokers.settings.brokers.at(position);
    let mut options = brokers
        .settings
        .options_at(position, brokers.client_id.clone());
    let number = connection.next();
    if let Some(will) = will {
        options.set_last_will(will.for_connection(number));
    }
    event_loop.mqtt_options = options;
    brokers.position.store(position, Ordering::Release);
    metrics.broker_switches.increment();
    metrics.broker_position.set(position as u64);
    metrics.broker_in_use.set(address);
    info!(broker = %address, position = position + 1, of = brokers.settings.brokers.len(), "moving to the next broker");
}

/// A node server's watch of its broker: when no primary has been heard there for the silence
/// limit, it disconnects cleanly, and the event loop moves on.
async fn watch_silence(
    choice: Arc<Mutex<BrokerChoice>>,
    changed: Arc<Notify>,
    client: AsyncClient,
) {
    loop {
        let deadline = choice
            .lock()
            .ok()
            .and_then(|choice| choice.silence_deadline());
        let Some(deadline) = deadline else {
            changed.notified().await;
            continue;
        };
        tokio::select! {
            () = changed.notified() => continue,
            () = tokio::time::sleep_until(deadline) => {}
        }
        let silent = choice
            .lock()
            .is_ok_and(|mut choice| choice.silent_at(tokio::time::Instant::now()));
        if silent {
            warn!("no primary heard on this broker: moving to the next");
            let _ = client.disconnect().await;
        }
    }
}
