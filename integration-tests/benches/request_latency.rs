//! Request-to-answer latency of get and set on loopback, through each broker.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench request_latency`
//!
//! A `janitoo run` process (release build) serves `deploy/examples/minimal.toml`; a client sends
//! 2,000 gets of the config value `name`, then 2,000 sets, one at a time, each timed from the
//! publish of the request to the arrival of its answer on `/nodes/9999/9990/reply`.

use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{brokers_under_test, BrokerProcess, ControllerProcess};
use janitoo_protocol::{CommandClass, Data, Genre, Hadd, Request, Status};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const REQUESTS: usize = 2_000;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

async fn measure(client: &mut Client, make: impl Fn(usize) -> Request) -> Vec<Duration> {
    let mut times = Vec::with_capacity(REQUESTS);
    for round in 0..REQUESTS {
        let start = Instant::now();
        let reply = client.ask(make(round)).await;
        times.push(start.elapsed());
        assert_eq!(reply.status(), Status::OK);
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/minimal.toml"
    );
    for kind in brokers_under_test() {
        let broker = BrokerProcess::start(kind, Path::new(JANITOO), None);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("minimal.toml");
        std::fs::copy(example, &config).unwrap();
        let _controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
        let mut client = Client::connect(broker.port).await;
        client.subscribe("/nodes/9999/9990/reply").await;
        client.subscribe("/dhcp/heartbeat/0300/0001").await;
        assert!(client
            .next_on("/dhcp/heartbeat/0300/0001", Duration::from_secs(10))
            .await
            .is_some());
        let node = Hadd::new(300, 1);
        let gets = measure(&mut client, |_| {
            Request::get(node, "name", Genre::Config, CommandClass::CONFIGURATION)
        })
        .await;
        let sets = measure(&mut client, |round| {
            Request::set(
                node,
                "location",
                Genre::Config,
                CommandClass::CONFIGURATION,
                Data::from(format!("spot {}", round % 7)),
            )
        })
        .await;
        for (what, times) in [("get", gets), ("set", sets)] {
            println!(
                "{kind:?}: {REQUESTS} {what}s of a config value, request to answer: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.99).as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
            );
        }
    }
}
