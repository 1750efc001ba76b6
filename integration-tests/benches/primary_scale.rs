//! CPU and memory of a primary network controller whose map holds 1,000 or 10,000 nodes that
//! beat every 30 s, measured on the running process.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench primary_scale`
//!
//! An embedded broker and `deploy/examples/failover/primary.toml`. A client announces the
//! simulated nodes (discovery replies of 10 nodes each, as the original chunks them), then sends
//! each node's heartbeat every 30 s, spread evenly; a tenth of the nodes fall silent half-way, so
//! the primary also dispatches PENDING and FAILED for them. CPU is the process's user + system
//! time over 60 s of that traffic (from /proc), RSS at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::procfs::{cpu_seconds, rss_mib};
use janitoo_protocol::{Codec, DiscoveryData, DiscoveryReply, Hadd, InfoKind, Message, NodeInfo};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const PERIOD: Duration = Duration::from_secs(30);
const MEASURE: Duration = Duration::from_secs(60);

fn hadd_of(index: usize) -> Hadd {
    Hadd::new(1000 + (index / 100) as u16, 1 + (index % 100) as u16)
}

async fn measure(nodes: usize) {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = janitoo_integration_tests::network::copy_example(
        "failover/primary.toml",
        dir.path(),
        |text| text,
    );
    let primary = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/dhcp/resolv/heartbeat").await;
    client
        .next_on("/dhcp/resolv/heartbeat", Duration::from_secs(10))
        .await
        .expect("no primary");

    for chunk in (0..nodes).collect::<Vec<_>>().chunks(10) {
        let infos: BTreeMap<Hadd, NodeInfo> = chunk
            .iter()
            .map(|index| {
                let mut info = NodeInfo::new(hadd_of(*index), format!("sim__{index}"));
                info.heartbeat = PERIOD.as_secs_f64();
                (info.hadd, info)
            })
            .collect();
        let reply = DiscoveryReply::new(
            InfoKind::Nodes,
            Some(Hadd::new(1, 0)),
            DiscoveryData::Nodes(infos),
        );
        client
            .publish(
                "/broadcast/reply/0001/0000",
                Message::DiscoveryReply(reply).encode(Codec::Json),
            )
            .await;
    }
    let (cpu_before, started) = (cpu_seconds(&primary.pid().to_string()), Instant::now());
    let silent_from = nodes - nodes / 10;
    let mut sent = 0usize;
    while started.elapsed() < MEASURE {
        // Node i beats at i * PERIOD / nodes within each period.
        let due = (started.elapsed().as_secs_f64() / PERIOD.as_secs_f64() * nodes as f64) as usize;
        while sent < due {
            let index = sent % nodes;
            let half_way = started.elapsed() > MEASURE / 2;
            if !(half_way && index >= silent_from) {
                client
                    .publish(&format!("/dhcp/heartbeat/{}", hadd_of(index)), "ONLINE")
                    .await;
            }
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu_seconds(&primary.pid().to_string()) - cpu_before;
    println!(
        "{nodes} nodes beating every 30 s ({sent} heartbeats in {:.0} s, {} falling silent): primary CPU {:.2} % of a core, RSS {:.1} MiB",
        MEASURE.as_secs_f64(),
        nodes / 10,
        cpu / started.elapsed().as_secs_f64() * 100.0,
        rss_mib(&primary.pid().to_string()),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    for nodes in [1_000, 10_000] {
        measure(nodes).await;
    }
}
