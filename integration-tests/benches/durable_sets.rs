//! Sets answered only once on disk: how many per second, and how many file rewrites.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench durable_sets`
//!
//! A `janitoo run` process (release build) serves `deploy/examples/tutorial.toml` (simulated
//! sensors) on Mosquitto when installed, else the embedded broker. Every answer 200 comes after
//! the fsync'd rename of the configuration file; sets queued behind a rewrite share the next.
//!
//! 1. One at a time: 200 sets of `name`, each timed from publish to answer.
//! 2. The burst: 20,000 sets of `name` from one client that keeps 32 in flight (a new one as
//!    each is answered; one answered 503 is sent again), until all 20,000 are answered 200.
//!    The total time gives the sets/s; the controller's `settings_rewrites` counts the
//!    rewrites.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::{brokers_under_test, BrokerProcess, ControllerProcess};
use janitoo_protocol::{CommandClass, Data, Genre, Hadd, Request, Status};
use serde_json::Value as Json;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const NODE: Hadd = Hadd::new(220, 1);
const BURST: usize = 20_000;
/// Sets the burst's client keeps in flight (the controller admits 64 from one requester).
const WINDOW: usize = 32;

fn set_payload(at: usize) -> String {
    format!(
        r#"{{"op":"set","uuid":"name","genre":3,"cmd_class":112,"hadd":"0220/0001","reply_hadd":"9999/9990","request_id":"b{at}","data":"burst {at}"}}"#
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = copy_example("tutorial.toml", dir.path(), |text| text);
    let _controller = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--simulate"],
    );
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let name = |data: Data| {
        Request::set(
            NODE,
            "name",
            Genre::Config,
            CommandClass::CONFIGURATION,
            data,
        )
    };
    client
        .ask_until_answered(|| name(Data::from("warm-up")), Duration::from_secs(10))
        .await;
    println!("durable sets on {kind:?}; the file is {}", config.display());

    // 1. One at a time.
    let mut times = Vec::new();
    for at in 0..200 {
        let start = Instant::now();
        let reply = client.ask(name(Data::from(format!("one {at}")))).await;
        assert_eq!(reply.status(), Status::OK, "{:?}", reply.error);
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "one at a time: 200 sets, p50 {:.2?}, p99 {:.2?} (each answered after its fsync'd rename)",
        times[100], times[198]
    );

    // 2. The burst, pipelined: WINDOW sets in flight at any time.
    let rewrites_before = client.metric(Hadd::new(222, 0), "settings_rewrites").await as u64;
    let start = Instant::now();
    let mut next = 0;
    let mut in_flight: BTreeSet<usize> = BTreeSet::new();
    let mut acknowledged = 0;
    let mut refusals = 0u64;
    while acknowledged < BURST {
        while in_flight.len() < WINDOW && next < BURST {
            client
                .publish("/nodes/0220/0001/request", set_payload(next))
                .await;
            in_flight.insert(next);
            next += 1;
        }
        let reply = client
            .next_on("/nodes/9999/9990/reply", Duration::from_secs(10))
            .await
            .expect("a set went unanswered for 10 s");
        let tree: Json = serde_json::from_slice(&reply.payload).unwrap();
        let Some(at) = tree["request_id"]
            .as_str()
            .and_then(|id| id.strip_prefix('b'))
            .and_then(|at| at.parse::<usize>().ok())
        else {
            continue;
        };
        match tree["status"].as_u64() {
            Some(200) => {
                in_flight.remove(&at);
                acknowledged += 1;
            }
            Some(503) => {
                refusals += 1;
                client
                    .publish("/nodes/0220/0001/request", set_payload(at))
                    .await;
            }
            other => panic!("set {at} answered {other:?}: {tree}"),
        }
    }
    let elapsed = start.elapsed();
    let rewrites =
        client.metric(Hadd::new(222, 0), "settings_rewrites").await as u64 - rewrites_before;
    println!(
        "burst: {BURST} sets, {WINDOW} in flight, answered 200 in {elapsed:.2?} ({:.0} sets/s), {refusals} answers 503 (sent again), {rewrites} file rewrites ({:.1} sets per rewrite)",
        BURST as f64 / elapsed.as_secs_f64(),
        BURST as f64 / rewrites.max(1) as f64
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("name = \"burst "),
        "the file holds a burst name"
    );
}
