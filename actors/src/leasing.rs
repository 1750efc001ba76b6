//! `hadd = "auto"`: before a controller starts, each bus and component with no address yet
//! leases one from the network's primary (`/dhcp/lease/new`, the original's message), and the
//! address is written into the configuration file with `leased = true`, through the same
//! checked, durable write-back as a setting. A node is never started on a made-up address: with
//! no lease server answering, it waits, asks again (2 s, doubling to 30 s), and says so.
//!
//! At later starts a leased address is locked (`/dhcp/lease/lock`); a lease the server lost is
//! asked back with `repair`, which keeps the address when it is free. With no server
//! answering, the node starts on the address it was leased, as before. A clean stop releases
//! it ([`release_requests`]).

use std::time::Duration;

use janitoo_config::{Address, Config, ConfigFile, NodeConfig, NodeKey, SettingKey};
use janitoo_protocol::lease_client::{LeaseAction, LeaseClient, Wanted};
use janitoo_protocol::topic::filters;
use janitoo_protocol::{
    Codec, Data, Hadd, LeaseOp, LeasePart, LeaseReply, LeaseRequest, Message, Topic,
};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::bridge::connection::MqttSettings;
use crate::error::ActorError;

/// How long a start waits for the answers to its locks before starting on its leased
/// addresses anyway.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// What one node of the file leases.
struct Wanting {
    key: NodeKey,
    /// Its place in the file, for the log (`buses.garden.components.pond`).
    place: String,
    name: String,
    location: String,
}

fn wanting(key: NodeKey, place: String, uuid: &str, node: &NodeConfig) -> Wanting {
    Wanting {
        key,
        place,
        name: node.name.clone().unwrap_or_else(|| uuid.to_owned()),
        location: node
            .location
            .clone()
            .filter(|location| !location.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_owned()),
    }
}

/// The MQTT client of the lease step: requests out, answers on `/reply/+` in.
struct Asker {
    client: AsyncClient,
    answers: mpsc::Receiver<LeaseReply>,
    /// Whether the answers' subscription is acknowledged (asking before would lose them).
    subscribed: watch::Receiver<bool>,
    codec: Codec,
    task: tokio::task::JoinHandle<()>,
}

impl Asker {
    fn connect(mqtt: &MqttSettings, codec: Codec) -> Asker {
        let client_id = format!("janitoo-lease-{}", uuid::Uuid::new_v4().simple());
        let brokers = mqtt.brokers.len();
        let (client, mut event_loop) =
            MqttSettings::client(mqtt.options_at(0, client_id.clone()), 64);
        let (sender, answers) = mpsc::channel(64);
        let (acknowledged, subscribed) = watch::channel(false);
        let subscriber = client.clone();
        let mqtt = mqtt.clone();
        let task = tokio::spawn(async move {
            let mut position = 0;
            let mut warned = false;
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = acknowledged.send(true);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        warned = false;
                        let _ = subscriber
                            .subscribe(filters::lease_reply("+"), QoS::AtLeastOnce)
                            .await;
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let decoded = Topic::parse(&publish.topic)
                            .and_then(|topic| Message::decode(&topic, &publish.payload, codec));
                        if let Ok(Message::LeaseReply(reply)) = decoded {
                            // A full channel drops: the asker asks again.
                            let _ = sender.try_send(reply);
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
            subscribed,
            codec,
            task,
        }
    }

    /// Waits until the answers can be heard.
    async fn ready(&mut self) {
        let _ = self.subscribed.wait_for(|subscribed| *subscribed).await;
    }

    async fn send(&self, op: LeaseOp, request: LeaseRequest) {
        let payload = Message::Lease(request).encode(self.codec);
        let topic = Topic::Lease(op).to_string();
        let _ = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await;
    }

    /// The next answer before `deadline`.
    async fn answer(&mut self, deadline: Instant) -> Option<LeaseReply> {
        tokio::time::timeout_at(deadline, self.answers.recv())
            .await
            .ok()
            .flatten()
    }

    /// The answer to `rep_uuid` before `deadline` (anyone may publish on `/reply/+`).
    async fn answer_to(&mut self, rep_uuid: &str, deadline: Instant) -> Option<LeaseReply> {
        loop {
            let reply = self.answer(deadline).await?;
            if reply.rep_uuid == rep_uuid {
                return Some(reply);
            }
        }
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
        self.task.abort();
    }
}

/// Leases what `config` leaves to the network and locks what it leased before; the config to
/// start with (read again from its file when the addresses were written into it).
pub async fn lease_addresses(
    config: &Config,
    mqtt: &MqttSettings,
    codec: Codec,
    write_back: bool,
) -> Result<Config, ActorError> {
    let any = config.buses.iter().any(|bus| {
        std::iter::once(&bus.node)
            .chain(bus.components.iter().map(|c| &c.node))
            .any(|node| node.address != Address::Fixed)
    });
    if !any {
        return Ok(config.clone());
    }
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let mut asker = Asker::connect(mqtt, codec);
    asker.ready().await;
    let mut changes = Vec::new();
    let mut config = config.clone();
    lock_kept(&mut asker, &config, &prefix, &mut changes).await;
    for (key, hadd) in &changes {
        if let Some(node) = node_mut(&mut config, key) {
            node.hadd = *hadd;
        }
    }
    for bus_at in 0..config.buses.len() {
        let bus = &config.buses[bus_at];
        if bus.node.address == Address::Auto {
            let want = wanting(
                NodeKey::Bus(bus.oid.clone()),
                format!("buses.{}", bus.oid),
                &bus.oid,
                &bus.node,
            );
            let hadd = lease(&mut asker, Wanted::Controller, &want, &prefix).await;
            changes.push((want.key, hadd));
            let bus = &mut config.buses[bus_at];
            bus.node.hadd = hadd;
            bus.node.address = Address::Leased;
        }
        let ctrl = config.buses[bus_at].node.hadd.ctrl;
        for component_at in 0..config.buses[bus_at].components.len() {
            let bus = &config.buses[bus_at];
            let component = &bus.components[component_at];
            if component.node.address != Address::Auto {
                continue;
            }
            let want = wanting(
                NodeKey::Component {
                    bus: bus.oid.clone(),
                    key: component.key.clone(),
                },
                format!("buses.{}.components.{}", bus.oid, component.key),
                &component.uuid(bus),
                &component.node,
            );
            let hadd = lease(&mut asker, Wanted::NodeOf(ctrl), &want, &prefix).await;
            changes.push((want.key, hadd));
            let node = &mut config.buses[bus_at].components[component_at].node;
            node.hadd = hadd;
            node.address = Address::Leased;
        }
    }
    asker.close().await;
    if changes.is_empty() {
        return Ok(config);
    }
    if !write_back {
        warn!(
            leased = changes.len(),
            "addresses leased, not written into the file (--no-write-back): the next start \
             leases again"
        );
        return Ok(config);
    }
    let edits: Vec<_> = changes
        .iter()
        .flat_map(|(key, hadd)| {
            [
                (key.clone(), SettingKey::Hadd, Data::from(hadd.to_string())),
                (key.clone(), SettingKey::Leased, Data::from(true)),
            ]
        })
        .collect();
    let mut file = ConfigFile::open(&config.file)?;
    for outcome in file.persist_checked(&edits)? {
        outcome?;
    }
    info!(file = %config.file.display(), leased = changes.len(), "leased addresses written into the file");
    Ok(Config::load(&config.file)?)
}

/// Leases `wanted` for `want`, asking until a lease server answers.
async fn lease(asker: &mut Asker, wanted: Wanted, want: &Wanting, prefix: &str) -> Hadd {
    let origin = Instant::now();
    let mut client = LeaseClient::new(
        wanted,
        &want.name,
        &want.location,
        Data::from("0x0000"),
        &format!("{prefix}-{}", want.key),
    );
    let mut actions = client.start(Duration::ZERO);
    loop {
        for action in actions.drain(..) {
            match action {
                LeaseAction::Send { op, request } => asker.send(op, request).await,
                LeaseAction::Leased(hadd) => {
                    info!(node = %want.place, %hadd, "address leased");
                    return hadd;
                }
                LeaseAction::Refused(why) => {
                    warn!(node = %want.place, %why, "the lease server refused; asking again")
                }
                LeaseAction::Unanswered { attempt } => warn!(
                    node = %want.place,
                    attempt,
                    "no lease server answered (is a network controller primary?); asking again"
                ),
            }
        }
        let tick = Instant::now() + Duration::from_millis(250);
        actions = match asker.answer(tick).await {
            Some(reply) => client.on_reply(&reply, origin.elapsed()),
            None => client.on_tick(origin.elapsed()),
        };
    }
}

/// Locks every address leased at an earlier start; a lease the server lost is asked back with
/// `repair`. With no answer within [`LOCK_WAIT`], the nodes start on their addresses.
async fn lock_kept(
    asker: &mut Asker,
    config: &Config,
    prefix: &str,
    changes: &mut Vec<(NodeKey, Hadd)>,
) {
    let kept: Vec<(Wanting, Hadd)> = config
        .buses
        .iter()
        .flat_map(|bus| {
            let controller = (
                wanting(
                    NodeKey::Bus(bus.oid.clone()),
                    format!("buses.{}", bus.oid),
                    &bus.oid,
                    &bus.node,
                ),
                &bus.node,
            );
            std::iter::once(controller).chain(bus.components.iter().map(|c| {
                let key = NodeKey::Component {
                    bus: bus.oid.clone(),
                    key: c.key.clone(),
                };
                let place = format!("buses.{}.components.{}", bus.oid, c.key);
                (wanting(key, place, &c.uuid(bus), &c.node), &c.node)
            }))
        })
        .filter(|(_, node)| node.address == Address::Leased)
        .map(|(want, node)| (want, node.hadd))
        .collect();
    let deadline = Instant::now() + LOCK_WAIT;
    for (at, (want, hadd)) in kept.into_iter().enumerate() {
        let node = want.place.as_str();
        let rep_uuid = format!("{prefix}-lock-{at}");
        let options = [
            ("name".to_owned(), Data::from(want.name.as_str())),
            ("location".to_owned(), Data::from(want.location.as_str())),
        ];
        let named = Some(options.clone().into_iter().collect());
        asker
            .send(LeaseOp::Lock, address_request(&rep_uuid, hadd, named))
            .await;
        let Some(reply) = asker.answer_to(&rep_uuid, deadline).await else {
            warn!(node, %hadd, "no lease server answered the lock: starting on the address leased before");
            continue;
        };
        if reply.msg_status == 200 {
            info!(node, %hadd, "lease locked");
            continue;
        }
        // The server lost it (a new table), or it is another node's now: asked back, the
        // address kept when it is free, another one otherwise.
        let rep_uuid = format!("{prefix}-repair-{at}");
        asker
            .send(
                LeaseOp::Repair,
                address_request(&rep_uuid, hadd, Some(options.into_iter().collect())),
            )
            .await;
        match asker
            .answer_to(&rep_uuid, deadline)
            .await
            .map(|r| granted(&r))
        {
            Some(Some(repaired)) if repaired == hadd => info!(node, %hadd, "lease repaired"),
            Some(Some(moved)) => {
                warn!(node, from = %hadd, to = %moved, "the leased address is another node's now: moving to a new lease");
                changes.push((want.key, moved));
            }
            _ => {
                warn!(node, %hadd, why = ?reply.msg_error, "the lease could not be locked or repaired: starting on the address leased before")
            }
        }
    }
}

fn node_mut<'a>(config: &'a mut Config, key: &NodeKey) -> Option<&'a mut NodeConfig> {
    match key {
        NodeKey::Bus(oid) => config
            .buses
            .iter_mut()
            .find(|bus| bus.oid == *oid)
            .map(|bus| &mut bus.node),
        NodeKey::Component { bus, key } => config
            .buses
            .iter_mut()
            .find(|it| it.oid == *bus)?
            .components
            .iter_mut()
            .find(|component| component.key == *key)
            .map(|component| &mut component.node),
    }
}

fn address_request(
    rep_uuid: &str,
    hadd: Hadd,
    options: Option<std::collections::BTreeMap<String, Data>>,
) -> LeaseRequest {
    LeaseRequest {
        rep_uuid: rep_uuid.to_owned(),
        add_ctrl: LeasePart::Number(hadd.ctrl.into()),
        add_node: LeasePart::Number(hadd.node.into()),
        options,
    }
}

fn granted(reply: &LeaseReply) -> Option<Hadd> {
    match (reply.msg_status, &reply.add_ctrl, &reply.add_node) {
        (200, Some(LeasePart::Number(ctrl)), Some(LeasePart::Number(node))) => Some(Hadd::new(
            u16::try_from(*ctrl).ok()?,
            u16::try_from(*node).ok()?,
        )),
        _ => None,
    }
}

/// The releases a clean stop publishes: one for each leased address of `config`.
pub fn release_requests(config: &Config) -> Vec<(Topic, Message)> {
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    config
        .buses
        .iter()
        .flat_map(|bus| std::iter::once(&bus.node).chain(bus.components.iter().map(|c| &c.node)))
        .filter(|node| node.address == Address::Leased)
        .enumerate()
        .map(|(at, node)| {
            let request = address_request(&format!("{prefix}-release-{at}"), node.hadd, None);
            (Topic::Lease(LeaseOp::Release), Message::Lease(request))
        })
        .collect()
}
