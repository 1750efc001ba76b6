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
//!
//! While it runs, a controller watches the records of its leased addresses ([`displaced`]):
//! when the primary says one is another node's now (two primaries leased it apart, in a
//! partition, and the other lease stood), it stops and leases anew.

mod asker;

use std::collections::BTreeSet;
use std::time::Duration;

use janitoo_config::{
    Address, BusConfig, ComponentConfig, Config, ConfigFile, NodeConfig, NodeKey, SettingKey,
};
use janitoo_protocol::lease_client::{LeaseAction, LeaseClient, Wanted};
use janitoo_protocol::lease_table::LEASED_TO_ANOTHER;
use janitoo_protocol::{
    Codec, Data, Hadd, LeaseOp, LeasePart, LeaseReply, LeaseRequest, Message, Topic,
};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use asker::{Asker, Heard};

use crate::bridge::connection::MqttSettings;
use crate::bridge::duplicates::Duplicates;
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

/// What bus `bus` asks as.
fn bus_wanting(bus: &BusConfig) -> Wanting {
    let key = NodeKey::Bus(bus.oid.clone());
    wanting(key, format!("buses.{}", bus.oid), &bus.oid, &bus.node)
}

/// What component `component` of `bus` asks as.
fn component_wanting(bus: &BusConfig, component: &ComponentConfig) -> Wanting {
    let key = NodeKey::Component {
        bus: bus.oid.clone(),
        key: component.key.clone(),
    };
    let place = format!("buses.{}.components.{}", bus.oid, component.key);
    wanting(key, place, &component.uuid(bus), &component.node)
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
    let mut asker = Asker::connect(mqtt, codec, &[]);
    asker.ready().await;
    let mut changes = Vec::new();
    let mut config = config.clone();
    let moved = lock_kept(&mut asker, &config, &prefix, &mut changes).await;
    for (key, hadd) in &changes {
        if let Some(node) = node_mut(&mut config, key) {
            node.hadd = *hadd;
        }
    }
    // The leased components of a bus that moved move with it: new leases under it.
    for bus in config
        .buses
        .iter_mut()
        .filter(|bus| moved.contains(&bus.oid))
    {
        for component in &mut bus.components {
            if component.node.address == Address::Leased {
                component.node.address = Address::Auto;
            }
        }
    }
    for bus_at in 0..config.buses.len() {
        let bus = &config.buses[bus_at];
        if bus.node.address == Address::Auto {
            let want = bus_wanting(bus);
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
            let want = component_wanting(bus, component);
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

/// Every node of `config` on an address leased at an earlier start, with what it asks as.
fn leased_nodes(config: &Config) -> Vec<(Wanting, Hadd)> {
    config
        .buses
        .iter()
        .flat_map(|bus| {
            std::iter::once((bus_wanting(bus), &bus.node)).chain(
                bus.components
                    .iter()
                    .map(|c| (component_wanting(bus, c), &c.node)),
            )
        })
        .filter(|(_, node)| node.address == Address::Leased)
        .map(|(want, node)| (want, node.hadd))
        .collect()
}

/// What a node asks as, in a lock or a repair.
fn named(want: &Wanting) -> Option<std::collections::BTreeMap<String, Data>> {
    Some(
        [
            ("name".to_owned(), Data::from(want.name.as_str())),
            ("location".to_owned(), Data::from(want.location.as_str())),
        ]
        .into_iter()
        .collect(),
    )
}

/// Locks every address leased at an earlier start; a lease the server lost, or that is
/// another node's now, is asked back with `repair` (a new address when it is not free). With
/// no answer within [`LOCK_WAIT`], the nodes start on their addresses. The buses that moved:
/// their leased components are leased anew under them.
async fn lock_kept(
    asker: &mut Asker,
    config: &Config,
    prefix: &str,
    changes: &mut Vec<(NodeKey, Hadd)>,
) -> BTreeSet<String> {
    let mut moved = BTreeSet::new();
    let deadline = Instant::now() + LOCK_WAIT;
    for (at, (want, hadd)) in leased_nodes(config).into_iter().enumerate() {
        if let NodeKey::Component { bus, .. } = &want.key {
            if moved.contains(bus) {
                continue;
            }
        }
        let node = want.place.as_str();
        let rep_uuid = format!("{prefix}-lock-{at}");
        asker
            .send(
                LeaseOp::Lock,
                address_request(&rep_uuid, hadd, named(&want)),
            )
            .await;
        let Some(reply) = asker.answer_to(&rep_uuid, deadline).await else {
            warn!(node, %hadd, "no lease server answered the lock: starting on the address leased before");
            continue;
        };
        if reply.msg_status == 200 {
            info!(node, %hadd, "lease locked");
            continue;
        }
        let rep_uuid = format!("{prefix}-repair-{at}");
        asker
            .send(
                LeaseOp::Repair,
                address_request(&rep_uuid, hadd, named(&want)),
            )
            .await;
        match asker
            .answer_to(&rep_uuid, deadline)
            .await
            .map(|r| granted(&r))
        {
            Some(Some(repaired)) if repaired == hadd => info!(node, %hadd, "lease repaired"),
            Some(Some(new)) => {
                warn!(node, from = %hadd, to = %new, why = ?reply.msg_error, "the leased address is another node's now: moving to a new lease");
                if let NodeKey::Bus(oid) = &want.key {
                    moved.insert(oid.clone());
                }
                changes.push((want.key, new));
            }
            _ => {
                warn!(node, %hadd, why = ?reply.msg_error, "the lease could not be locked or repaired: starting on the address leased before")
            }
        }
    }
    moved
}

/// A leased address of this process that is another node's now.
#[derive(Debug, Clone)]
pub struct Displaced {
    /// The node's table in the file.
    pub place: String,
    /// The address.
    pub hadd: Hadd,
    /// Why it moves.
    pub why: String,
    /// The node, when another process beats on its address: it leases a new one (the lease
    /// is its own in the primary's table, so a lock would keep it there).
    pub shared: Option<NodeKey>,
}

/// Resolves when the bridge finds another process beating on one of `config`'s leased
/// addresses ([`Controller::duplicates`](crate::Controller::duplicates)). A fixed address
/// found shared moves nothing: the bridge logs and counts it, and the operator must give one
/// of the two another `hadd`.
pub async fn shared_address(config: &Config, mut duplicates: Duplicates) -> Displaced {
    let leased = leased_nodes(config);
    loop {
        if duplicates.changed().await.is_err() {
            return std::future::pending().await;
        }
        let Some(found) = *duplicates.borrow_and_update() else {
            continue;
        };
        if let Some((want, hadd)) = leased.iter().find(|(_, hadd)| *hadd == found.hadd) {
            error!(node = want.place, %hadd, "another process beats on this node's leased address: leasing a new one");
            return Displaced {
                place: want.place.clone(),
                hadd: *hadd,
                why: format!("another process beats on {hadd}"),
                shared: Some(want.key.clone()),
            };
        }
    }
}

/// The config to lease again with after `moved`: a node whose address another process shares
/// gives it up (a bus with its leased components, which live under its address).
pub fn to_lease_again(config: &Config, moved: &Displaced) -> Config {
    let mut config = config.clone();
    let Some(key) = &moved.shared else {
        return config;
    };
    if let Some(node) = node_mut(&mut config, key) {
        node.address = Address::Auto;
    }
    if let NodeKey::Bus(oid) = key {
        for bus in config.buses.iter_mut().filter(|bus| bus.oid == *oid) {
            for component in &mut bus.components {
                if component.node.address == Address::Leased {
                    component.node.address = Address::Auto;
                }
            }
        }
    }
    config
}

/// How long after a new primary's first heartbeat a controller locks its leases again, at
/// most (each picks a moment in it, so that a house does not ask all at once).
pub const RELOCK_SPREAD: Duration = Duration::from_secs(3);

/// Watches `config`'s leased addresses while the controller runs, and resolves when one is
/// another node's now (two primaries leased it apart, and the other lease stood):
/// - a record naming another node at one of them is checked with the primary, by a lock naming
///   this one (anyone may publish a record on an unkeyed network);
/// - a new primary (a partition healed, a takeover) is asked again for every lease, by the same
///   lock: it may hold the other side's.
///
/// Never resolves for a controller with no leased address.
pub async fn displaced(config: &Config, mqtt: &MqttSettings, codec: Codec) -> Displaced {
    let leased = leased_nodes(config);
    if leased.is_empty() {
        return std::future::pending().await;
    }
    let watched: Vec<Hadd> = leased.iter().map(|(_, hadd)| *hadd).collect();
    let mut asker = Asker::connect(mqtt, codec, &watched);
    debug!(leases = watched.len(), "watching this process's leases");
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let mut asked = 0u64;
    let mut primary_epoch: Option<u64> = None;
    loop {
        let Some(heard) = asker.heard.recv().await else {
            return std::future::pending().await;
        };
        let to_check: Vec<&(Wanting, Hadd)> = match heard {
            Heard::Record(hadd, record) => {
                let holder = record.held.as_ref().map(|held| held.name.clone());
                leased
                    .iter()
                    .filter(|(want, held)| {
                        // Ours, or removed by an operator (locked again at the next start).
                        *held == hadd && holder.as_ref().is_some_and(|name| *name != want.name)
                    })
                    .collect()
            }
            Heard::Primary(epoch) => {
                // (The original's primary beats without an epoch: it moves nothing here.)
                let new =
                    epoch.is_some() && primary_epoch.is_some_and(|known| Some(known) != epoch);
                primary_epoch = epoch.or(primary_epoch);
                if !new {
                    continue;
                }
                debug!(epoch = ?epoch, "a new primary: locking every lease again");
                let spread = RELOCK_SPREAD.as_millis() as u64;
                let wait = (uuid::Uuid::new_v4().as_u128() % u128::from(spread.max(1))) as u64;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                leased.iter().collect()
            }
        };
        for (want, hadd) in to_check {
            asked += 1;
            if let Some(displaced) =
                check(&mut asker, want, *hadd, &format!("{prefix}-{asked}")).await
            {
                asker.close().await;
                return displaced;
            }
        }
    }
}

/// Locks `hadd` in `want`'s name (three tries): `Some` when the primary says it is another
/// node's. A lease the primary does not hold stays as it is: the node's heartbeats keep its
/// address from being leased, and the next start asks for it back.
async fn check(asker: &mut Asker, want: &Wanting, hadd: Hadd, rep_uuid: &str) -> Option<Displaced> {
    let node = want.place.as_str();
    for attempt in 1..=CHECK_TRIES {
        let rep_uuid = format!("{rep_uuid}-{attempt}");
        asker
            .send(LeaseOp::Lock, address_request(&rep_uuid, hadd, named(want)))
            .await;
        let deadline = Instant::now() + LOCK_WAIT;
        let Some(reply) = asker.answer_to(&rep_uuid, deadline).await else {
            continue;
        };
        if reply.msg_status == 200 {
            return None;
        }
        let why = reply.msg_error.unwrap_or_default();
        if why.contains(LEASED_TO_ANOTHER) {
            error!(node, %hadd, %why, "this node's address is another node's now: leasing a new one");
            return Some(Displaced {
                place: want.place.clone(),
                hadd,
                why,
                shared: None,
            });
        }
        warn!(node, %hadd, %why, "the primary does not hold this node's lease: kept as it is, asked back at the next start");
        return None;
    }
    warn!(node, %hadd, "the primary did not answer a lock: asked again at the next record or primary");
    None
}

/// Locks tried, each waiting [`LOCK_WAIT`], when a lease is checked.
pub const CHECK_TRIES: u32 = 3;

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
