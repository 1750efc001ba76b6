//! Dynamic addresses (issue 23), between real processes (release build), on each broker:
//!
//! 1. From an auto controller's start (`deploy/examples/auto.toml`: a bus and two components,
//!    `hadd = "auto"`) to the first heartbeat on its leased bus address, with a live primary;
//!    `RUNS` starts, each on a new copy of the file (new leases), then a clean stop.
//! 2. A primary and a secondary holding 10,000 leases: a client publishes 10,000 lease records
//!    (retained, the primary's epoch, as a primary would); their memory before and after, and
//!    their CPU over 10 s of holding them; the time until the primary leases above them.
//! 3. A third controller started after those records, then both others killed: the time from
//!    the kill until it, as primary, leases a controller address above the 10,000 (it read
//!    the whole table from the broker's retained records).
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench leases`

use std::path::Path;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::{brokers_under_test, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::procfs::{cpu_seconds, rss_kib};
use janitoo_integration_tests::watch::Watcher;
use janitoo_protocol::{Hadd, Message, NodeState, Topic};
use tokio::time::Instant;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
/// Auto starts measured per broker.
const RUNS: usize = 7;
/// Leases held in part 2.
const LEASES: u16 = 10_000;

fn janitoo() -> &'static Path {
    Path::new(JANITOO)
}

fn unkeyed(text: String) -> String {
    text.replace("key_file = \"network.key\"", "")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The first ONLINE heartbeat since `since` of a controller address at or above 0010/0000 not
/// in `known`.
async fn first_new_bus(
    watcher: &Watcher,
    since: Instant,
    known: &[Hadd],
) -> Option<(Hadd, Instant)> {
    watcher
        .wait_for(Duration::from_secs(30), || {
            watcher
                .since(since)
                .into_iter()
                .find_map(|heard| match (heard.topic, heard.message) {
                    (Topic::Heartbeat(hadd), Message::Heartbeat(beat))
                        if beat.state == NodeState::Online
                            && hadd.is_controller()
                            && hadd.ctrl >= 10
                            && !known.contains(&hadd) =>
                    {
                        Some((hadd, heard.at))
                    }
                    _ => None,
                })
        })
        .await
}

/// A controller lease asked of whoever is primary: the address granted, if any within `wait`.
async fn lease_new(client: &mut Client, n: u32, wait: Duration) -> Option<Hadd> {
    let rep_uuid = format!("bench-{n}");
    client.subscribe(&format!("/reply/{rep_uuid}")).await;
    let request = format!(
        r#"{{"rep_uuid":"{rep_uuid}","add_ctrl":-1,"add_node":-1,"options":{{"name":"bench-{n}","location":"bench"}}}}"#
    );
    client.publish("/dhcp/lease/new", request).await;
    let reply = client.next_on(&format!("/reply/{rep_uuid}"), wait).await?;
    let tree: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
    Some(Hadd::new(
        tree["add_ctrl"].as_u64()? as u16,
        tree["add_node"].as_u64()? as u16,
    ))
}

async fn up(watcher: &Watcher, since: Instant, hadd: Hadd) -> u64 {
    watcher
        .wait_for(Duration::from_secs(20), || {
            watcher
                .primaries(since)
                .into_iter()
                .find(|(_, primary, _)| *primary == hadd)
                .map(|(_, _, epoch)| epoch)
        })
        .await
        .expect("the primary came up")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for kind in brokers_under_test() {
        let dir = tempfile::tempdir().unwrap();
        let broker = BrokerProcess::start(kind, janitoo(), None);
        let watcher = Watcher::start(
            "127.0.0.1",
            broker.port,
            &[
                "/dhcp/heartbeat/#",
                "/dhcp/resolv/heartbeat",
                "/values/system/+/+/network_controller",
            ],
        )
        .await;
        let since = Instant::now();
        let config = copy_example("failover/primary.toml", dir.path(), unkeyed);
        let mut primary = ControllerProcess::start(janitoo(), &config, &broker.address());
        let epoch = up(&watcher, since, Hadd::new(1, 0)).await;

        // 1. Auto starts.
        let mut starts = Vec::new();
        let mut known = Vec::new();
        for run in 0..RUNS {
            let config = copy_example("auto.toml", dir.path(), |text| text);
            let renamed = dir.path().join(format!("auto-{run}.toml"));
            std::fs::rename(&config, &renamed).unwrap();
            let started = Instant::now();
            let mut auto = ControllerProcess::start_with(
                janitoo(),
                &renamed,
                &["--broker", &broker.address(), "--simulate"],
            );
            let (bus, at) = first_new_bus(&watcher, started, &known)
                .await
                .expect("the auto bus beat on a leased address");
            known.push(bus);
            starts.push(at - started);
            auto.terminate(Duration::from_secs(10));
        }
        println!(
            "{kind:?}: auto start to the first heartbeat on a leased address: median {:?} of {RUNS} (each: {starts:?})",
            median(starts.clone())
        );

        // 2. 10,000 leases held.
        let secondary = copy_example("failover/secondary-a.toml", dir.path(), unkeyed);
        let mut secondary = ControllerProcess::start(janitoo(), &secondary, &broker.address());
        let announced = watcher
            .announced(Hadd::new(2, 0), since, Duration::from_secs(20))
            .await;
        assert!(announced, "the secondary announced itself");
        let pids = [primary.pid().to_string(), secondary.pid().to_string()];
        let rss_before = pids.clone().map(|pid| rss_kib(&pid));
        let mut client = Client::connect(broker.port).await;
        let filled = Instant::now();
        for at in 0..LEASES {
            let hadd = Hadd::new(1_000 + at / 100, at % 100 + 1);
            let record = format!(
                r#"{{"epoch":{epoch},"name":"bench-{at}","location":"bench","cmd_classes":"0x0000","state":"ONLINE","confirmed":true}}"#
            );
            client
                .publish_retained(&format!("/dhcp/leases/{hadd}"), record)
                .await;
        }
        let mut asked = 0;
        let above = loop {
            asked += 1;
            if let Some(hadd) = lease_new(&mut client, asked, Duration::from_secs(2)).await {
                if hadd.ctrl >= 1_000 + LEASES / 100 {
                    break filled.elapsed();
                }
            }
            assert!(
                filled.elapsed() < Duration::from_secs(120),
                "the primary never leased above the records"
            );
        };
        let cpu_before = pids.clone().map(|pid| cpu_seconds(&pid));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let cpu = [0, 1].map(|at| (cpu_seconds(&pids[at]) - cpu_before[at]) / 10.0 * 100.0);
        let rss_after = pids.clone().map(|pid| rss_kib(&pid));
        println!(
            "{kind:?}: {LEASES} lease records published; the primary leased above them {above:?} after the first; \
             RSS primary {} -> {} MiB, secondary {} -> {} MiB; CPU holding them: primary {:.1} %, secondary {:.1} % of a core",
            rss_before[0] / 1024,
            rss_after[0] / 1024,
            rss_before[1] / 1024,
            rss_after[1] / 1024,
            cpu[0],
            cpu[1],
        );

        // 3. A controller that came after the records takes over.
        let late = copy_example("failover/secondary-b.toml", dir.path(), unkeyed);
        let late_since = Instant::now();
        let late_process = ControllerProcess::start(janitoo(), &late, &broker.address());
        let announced = watcher
            .announced(Hadd::new(3, 0), late_since, Duration::from_secs(20))
            .await;
        assert!(announced, "the late controller announced itself");
        primary.kill();
        secondary.kill();
        let killed = Instant::now();
        let mut holds = None;
        while killed.elapsed() < Duration::from_secs(60) {
            asked += 1;
            if let Some(hadd) = lease_new(&mut client, asked, Duration::from_millis(500)).await {
                assert!(
                    hadd.ctrl >= 1_000 + LEASES / 100,
                    "the new primary leased {hadd}, one of the table's"
                );
                holds = Some(killed.elapsed());
                break;
            }
        }
        let holds = holds.expect("the late controller took over and leased");
        println!(
            "{kind:?}: a controller started after the {LEASES} records took over and leased above them {holds:?} after the kill (RSS {} MiB)",
            rss_kib(&late_process.pid().to_string()) / 1024
        );
    }
}
