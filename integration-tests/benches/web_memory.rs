//! Memory of the web manager under a stream of value updates to an open page.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench web_memory`
//!
//! A controller (one simulated sensor, the web manager on) against an embedded broker; one page
//! socket open. A plain MQTT client publishes 300,000 value updates (1,000 values of one node,
//! 300 rounds, each update a new number) on `/values/user/...`. The controller's RSS (VmRSS from
//! /proc) is read after a warm-up round, after 100,000 updates and after the last, twice: with
//! a page that reads every event, and with a page that reads nothing (a stalled tab: the server
//! must not buffer for it without bound). Progress is read from `/metrics` (not the snapshot,
//! whose size would perturb what is measured). Target: growth under 2 MB.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::procfs::rss_kib;
use janitoo_integration_tests::web::{http_get, wait_for_listener, PageSocket};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const VALUES: usize = 1_000;
const ROUNDS: usize = 300;

async fn publish_round(client: &Client, round: usize) {
    for value in 0..VALUES {
        let payload = format!(
            r#"{{"uuid":"v{value}","index":0,"genre":2,"hadd":"0300/0001","data":{round}.{value},"units":"°C","label":"value {value}"}}"#
        );
        client
            .publish(&format!("/values/user/0300/0001/v{value}"), payload)
            .await;
    }
}

fn metric(web: SocketAddr, name: &str) -> f64 {
    let (_, text) = http_get(web, "/metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the controller has received `count` more messages than `base` and its web
/// actor has nothing waiting (read from `/metrics`, a few kB: the snapshot would perturb what
/// is measured).
async fn settle(web: SocketAddr, base: f64, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let received = metric(web, "janitoo_mqtt_received_total");
        let waiting = metric(web, "janitoo_actor_backlog{actor=\"web\"}");
        if received >= base + count as f64 && waiting == 0.0 {
            return;
        }
        assert!(Instant::now() < deadline, "the manager fell behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(reading: bool) -> (u64, u64, u64, f64) {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let web: SocketAddr = (
        [127, 0, 0, 1],
        janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap(),
    )
        .into();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("web.toml");
    std::fs::write(
        &config,
        format!(
            "[hardware]\nsimulate = true\n[web]\nlisten = \"{web}\"\n\
             [buses.garden]\nhadd = \"0300/0000\"\n\
             [buses.garden.components.thermometer]\nkind = \"rpi1wire.ds18b20\"\nhadd = \"0300/0001\"\n"
        ),
    )
    .unwrap();
    let controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    wait_for_listener(web, Duration::from_secs(10));
    let client = Client::connect(broker.port).await;
    let mut page = PageSocket::open(web).await;
    let reader = reading.then(|| {
        tokio::spawn(async move {
            let mut events = 0;
            loop {
                let read = page.drain(Duration::from_secs(2)).await;
                if read == 0 {
                    return events;
                }
                events += read;
            }
        })
    });

    let base = metric(web, "janitoo_mqtt_received_total");
    publish_round(&client, 0).await;
    settle(web, base, VALUES).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(&controller.pid().to_string());
    let started = Instant::now();
    let mut at_100k = 0;
    for round in 1..ROUNDS {
        publish_round(&client, round).await;
        if round + 1 == 100 {
            settle(web, base, 100 * VALUES).await;
            at_100k = rss_kib(&controller.pid().to_string());
        }
    }
    settle(web, base, ROUNDS * VALUES).await;
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(&controller.pid().to_string());
    if let Some(reader) = reader {
        let events = reader.await.unwrap();
        println!("  the page read {events} events");
    }
    let updates = ((ROUNDS - 1) * VALUES) as f64;
    (before, at_100k, after, updates / elapsed)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    println!("web manager RSS under value updates ({VALUES} values of one node, each round updates them all), one page open");
    for (reading, name) in [(true, "page reading"), (false, "page stalled")] {
        let (before, at_100k, after, rate) = run(reading).await;
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "{name}: RSS {:.1} MiB after warm-up; after 100k updates {:.1} MiB (growth {:+.2} MiB); after {}k {:.1} MiB (growth {:+.2} MiB); {rate:.0} updates/s taken in",
            mib(before),
            mib(at_100k),
            mib(at_100k) - mib(before),
            ROUNDS,
            mib(after),
            mib(after) - mib(before),
        );
    }
}
