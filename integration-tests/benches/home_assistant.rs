//! Home Assistant's discovery as the primary publishes it: how soon a node's entities are
//! there, how many retained publications and bytes a network costs, and the primary's CPU
//! while it announces 1,000 nodes.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench home_assistant`
//!
//! An embedded broker, `deploy/examples/failover/primary.toml` with `[homeassistant]`, and a
//! client subscribed to `homeassistant/#` and `janitoo/#` that holds what is retained (as Home
//! Assistant reads it).
//!
//! - The tutorial: `deploy/examples/tutorial.toml --simulate` starts; the time from the first
//!   heartbeat of its DHT node (0220/0001) to its entities (availability `online` and the
//!   temperature and humidity configs) held; then the publications and bytes of the whole
//!   tutorial network, once nothing more comes for 2 s.
//! - The tutorial in a real Home Assistant (when `target/ha-venv` is made: see
//!   `integration-tests/ha/`), on Mosquitto: Home Assistant started, onboarded and given the
//!   MQTT integration first; then the time from the DHT node's first heartbeat to its
//!   temperature entity having a state in Home Assistant (asked every 200 ms through the
//!   harness, each ask ~0.1 s: the figure is within ~0.3 s).
//! - 1,000 nodes: a client announces them as a controller answers discovery (node info and
//!   two user values each, temperature and humidity, in chunks of 10 nodes), then a heartbeat
//!   for each; the primary's CPU (user + system, from /proc) from the first announcement to the
//!   last config held, and the publications and bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::procfs::cpu_seconds;
use janitoo_integration_tests::retained::{availability, configs_in, RetainedView};
use janitoo_protocol::{
    Codec, CommandClass, DiscoveryData, DiscoveryReply, Genre, Hadd, InfoKind, Message, NodeInfo,
    ValueDescriptor, ValueType,
};
use tokio::time::Instant;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const PRIMARY: Hadd = Hadd::new(1, 0);

fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples")).join(name)
}

fn primary_with_discovery(dir: &Path, broker: &str) -> ControllerProcess {
    let config =
        janitoo_integration_tests::network::copy_example("failover/primary.toml", dir, |text| {
            format!("{text}\n[homeassistant]\n")
        });
    ControllerProcess::start(Path::new(JANITOO), &config, broker)
}

/// Publications and bytes received since `since`.
fn traffic(view: &mut RetainedView, since: Instant) -> (usize, usize) {
    let received = view.since(since);
    let bytes = received
        .iter()
        .map(|(topic, payload)| topic.len() + payload.len())
        .sum();
    (received.len(), bytes)
}

/// Waits until nothing more arrives for `quiet`, at most `limit`.
async fn settle(view: &mut RetainedView, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut count = view.received_count();
    while Instant::now() < deadline {
        view.wait_since(Instant::now(), quiet, |_| None::<()>).await;
        let now = view.received_count();
        if now == count {
            return;
        }
        count = now;
    }
}

async fn tutorial() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let _primary = primary_with_discovery(dir.path(), &broker.address());
    let mut view = RetainedView::connect(broker.port).await;
    let mut beats = Client::connect(broker.port).await;
    beats.subscribe("/dhcp/heartbeat/0220/0001").await;
    let mut watch = Client::connect(broker.port).await;
    watch.subscribe("/dhcp/resolv/heartbeat").await;
    watch
        .next_on("/dhcp/resolv/heartbeat", Duration::from_secs(10))
        .await
        .expect("no primary");
    let started = Instant::now();
    let (_tutorial, first_beat) = start_tutorial(&broker, &mut beats).await;
    let dht = availability("0220_0001");
    view.wait_for(Duration::from_secs(10), |held| {
        let configs = configs_in(held);
        let has = |object: &str| {
            configs
                .keys()
                .any(|topic| topic.contains(&format!("janitoo_janitoo_0220_0001/{object}/")))
        };
        (held.get(&dht).map(Vec::as_slice) == Some(b"online")
            && has("user_temperature_0")
            && has("user_humidity_0"))
        .then_some(())
    })
    .await
    .expect("the DHT's entities were not announced");
    let to_entities = first_beat.elapsed();
    settle(&mut view, Duration::from_secs(2), Duration::from_secs(20)).await;
    let (publications, bytes) = traffic(&mut view, started);
    println!(
        "tutorial: entities held {:.0} ms after the DHT node's first heartbeat; the network: {} configs, {publications} retained publications, {:.1} KiB",
        to_entities.as_secs_f64() * 1e3,
        configs_in(&view.held).len(),
        bytes as f64 / 1024.0
    );
}

/// Starts the tutorial server (simulated sensors) on `broker`; when the DHT node's first
/// heartbeat reached `beats` (subscribed to `/dhcp/heartbeat/0220/0001` before).
async fn start_tutorial(
    broker: &BrokerProcess,
    beats: &mut Client,
) -> (ControllerProcess, Instant) {
    let tutorial = ControllerProcess::start_with(
        Path::new(JANITOO),
        &example("tutorial.toml"),
        &["--broker", &broker.address(), "--simulate"],
    );
    beats
        .next_on("/dhcp/heartbeat/0220/0001", Duration::from_secs(10))
        .await
        .expect("the tutorial did not beat");
    (tutorial, Instant::now())
}

async fn tutorial_in_home_assistant() {
    use janitoo_integration_tests::home_assistant::{self, HomeAssistant};
    if !home_assistant::available() {
        println!("tutorial in Home Assistant: not measured (no target/ha-venv)");
        return;
    }
    let broker = BrokerProcess::start(BrokerKind::Mosquitto, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let _primary = primary_with_discovery(dir.path(), &broker.address());
    let ha = HomeAssistant::start(broker.port);
    // Past MQTT's first subscription and discovery cool-downs (1 s and 2 s after the
    // connection), as a Home Assistant that has been running is.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut beats = Client::connect(broker.port).await;
    beats.subscribe("/dhcp/heartbeat/0220/0001").await;
    let (_tutorial, first_beat) = start_tutorial(&broker, &mut beats).await;
    let shown = ha
        .wait_states(Duration::from_secs(30), |states| {
            states
                .iter()
                .find(|state| {
                    state["attributes"]["device_class"] == "temperature"
                        && state["entity_id"]
                            .as_str()
                            .is_some_and(|id| id.starts_with("sensor.ambiance"))
                })
                .filter(|state| state["state"] != "unknown")
                .map(|_| ())
        })
        .await;
    match shown {
        Some(()) => println!(
            "tutorial in Home Assistant: the DHT's temperature shown {:.2} s after its first heartbeat",
            first_beat.elapsed().as_secs_f64()
        ),
        None => println!(
            "tutorial in Home Assistant: not shown within 30 s; its states: {:?}",
            ha.states()
                .iter()
                .map(|state| format!("{} {} {}", state["entity_id"], state["state"], state["attributes"]["device_class"]))
                .collect::<Vec<_>>()
        ),
    }
}

fn hadd_of(index: usize) -> Hadd {
    Hadd::new(1000 + (index / 100) as u16, 1 + (index % 100) as u16)
}

fn reading(uuid: &str, units: &str, index: usize) -> ValueDescriptor {
    let mut value = ValueDescriptor::new(uuid, Genre::User, CommandClass::SENSOR_MULTILEVEL);
    value.hadd = Some(hadd_of(index));
    value.value_type = Some(ValueType::Decimal);
    value.label = Some(uuid.into());
    value.units = Some(units.into());
    value.is_readonly = Some(true);
    value.is_writeonly = Some(false);
    value.data = 21.5.into();
    value
}

async fn thousand_nodes(nodes: usize) {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let primary = primary_with_discovery(dir.path(), &broker.address());
    let mut view = RetainedView::connect(broker.port).await;
    let client = {
        let mut client = Client::connect(broker.port).await;
        client.subscribe("/dhcp/resolv/heartbeat").await;
        client
            .next_on("/dhcp/resolv/heartbeat", Duration::from_secs(10))
            .await
            .expect("no primary");
        client
    };
    let pid = primary.pid().to_string();
    let (cpu_before, started) = (cpu_seconds(&pid), Instant::now());
    let indexes: Vec<usize> = (0..nodes).collect();
    for chunk in indexes.chunks(10) {
        let infos: BTreeMap<Hadd, NodeInfo> = chunk
            .iter()
            .map(|index| {
                let mut info = NodeInfo::new(hadd_of(*index), format!("sim__{index}"));
                info.name = format!("Sensor {index}");
                info.heartbeat = 30.0;
                (info.hadd, info)
            })
            .collect();
        let values = chunk
            .iter()
            .map(|index| {
                let by_uuid = [("temperature", "°C"), ("humidity", "%")]
                    .iter()
                    .map(|(uuid, units)| {
                        let value = reading(uuid, units, *index);
                        (uuid.to_string(), BTreeMap::from([(0, value)]))
                    })
                    .collect();
                (hadd_of(*index), by_uuid)
            })
            .collect();
        for reply in [
            DiscoveryReply::new(InfoKind::Nodes, Some(PRIMARY), DiscoveryData::Nodes(infos)),
            DiscoveryReply::new(
                InfoKind::Users,
                Some(PRIMARY),
                DiscoveryData::Values(values),
            ),
        ] {
            client
                .publish(
                    "/broadcast/reply/0001/0000",
                    Message::DiscoveryReply(reply).encode(Codec::Json),
                )
                .await;
        }
    }
    for index in 0..nodes {
        client
            .publish(&format!("/dhcp/heartbeat/{}", hadd_of(index)), "ONLINE")
            .await;
    }
    let expected = nodes * 2;
    view.wait_for(Duration::from_secs(120), |held| {
        let online = held
            .iter()
            .filter(|(topic, payload)| {
                topic.starts_with("janitoo/janitoo/availability/1")
                    && payload.as_slice() == b"online"
            })
            .count();
        (configs_in(held).len() >= expected && online >= nodes).then_some(())
    })
    .await
    .expect("the nodes' entities were not all announced");
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(&pid) - cpu_before;
    let (publications, bytes) = traffic(&mut view, started);
    println!(
        "{nodes} nodes ({expected} sensors): all held {:.2} s after the first announcement; primary CPU {cpu:.2} s meanwhile (target < 1 s); {publications} retained publications, {:.0} KiB",
        elapsed.as_secs_f64(),
        bytes as f64 / 1024.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runs: u32 = std::env::var("RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    for run in 1..=runs {
        println!("run {run}:");
        tutorial().await;
        tutorial_in_home_assistant().await;
        thousand_nodes(1_000).await;
    }
}
