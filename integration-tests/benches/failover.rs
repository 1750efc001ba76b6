//! Failover time: from the kill (SIGKILL) or freeze (SIGSTOP) of the primary to the first
//! primary heartbeat of its successor, and the time for the successor to serve the full map.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench failover`
//!
//! An embedded broker, the three controllers of `deploy/examples/failover/` and the tutorial
//! server (7 nodes). 20 rounds of SIGKILL (the killed controller is restarted and listens again
//! before the next round), then 10 of SIGSTOP (resumed with SIGCONT after the takeover). Default
//! timing: 1 s primary heartbeat interval, 3 missed = lost.
//!
//! The example is unkeyed (a Will is doubted for 3/10 of an interval, for a live primary to
//! refute); `JANITOO_FAILOVER_KEYED=1` gives every controller a key (a signed Will is believed
//! at once).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::{Client, CLIENT_HADD};
use janitoo_integration_tests::network::{unkeyed, with_key_file};
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_protocol::{Codec, DiscoveryData, Hadd, InfoKind, Message, Request};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const NAMES: [&str; 3] = ["primary.toml", "secondary-a.toml", "secondary-b.toml"];

fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples")).join(name)
}

/// The next primary heartbeat (hadd, epoch) satisfying `wanted`.
async fn primary(
    client: &mut Client,
    limit: Duration,
    wanted: impl Fn(Hadd, u64) -> bool,
) -> Option<(Hadd, u64)> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let beat = client.next_on("/dhcp/resolv/heartbeat", left).await?;
        if let Message::ResolvHeartbeat(beat) = beat.message() {
            let epoch = beat.epoch.unwrap_or(0);
            if wanted(beat.hadd, epoch) {
                return Some((beat.hadd, epoch));
            }
        }
    }
}

/// Time until a resolv request is answered with all `expected` nodes.
async fn full_map(client: &mut Client, expected: usize) -> Option<Duration> {
    let start = Instant::now();
    let request = Message::Request(Request::info(InfoKind::Nodes, CLIENT_HADD));
    client
        .publish("/dhcp/resolv/request/", request.encode(Codec::Json))
        .await;
    let mut nodes = BTreeSet::new();
    while nodes.len() < expected {
        let reply = client
            .next_on("/dhcp/resolv/reply/9999/9990", Duration::from_secs(3))
            .await?;
        if let Message::DiscoveryReply(reply) = reply.message() {
            if let DiscoveryData::Nodes(found) = reply.data {
                nodes.extend(found.into_keys().filter(|hadd| hadd.ctrl >= 220));
            }
        }
    }
    Some(start.elapsed())
}

fn summary(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e3
    };
    println!(
        "{what}: {} rounds, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let address = broker.address();
    let dir = tempfile::tempdir().unwrap();
    let keyed = std::env::var("JANITOO_FAILOVER_KEYED").is_ok_and(|value| value == "1");
    let key_file = dir.path().join("network.key");
    std::fs::write(&key_file, "a secret the bench's controllers share\n").unwrap();
    eprintln!("{}", if keyed { "keyed" } else { "unkeyed" });
    let start = |name: &str| {
        let config = dir.path().join(name);
        let text = std::fs::read_to_string(example(&format!("failover/{name}"))).unwrap();
        let text = if keyed {
            with_key_file(text, &key_file)
        } else {
            unkeyed(text)
        };
        std::fs::write(&config, text).unwrap();
        ControllerProcess::start(Path::new(JANITOO), &config, &address)
    };
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/dhcp/resolv/heartbeat").await;
    client.subscribe("/dhcp/resolv/reply/9999/9990").await;
    let mut controllers: Vec<ControllerProcess> = NAMES.iter().map(|name| start(name)).collect();
    let tutorial = dir.path().join("tutorial.toml");
    std::fs::copy(example("tutorial.toml"), &tutorial).unwrap();
    let _tutorial = ControllerProcess::start_with(
        Path::new(JANITOO),
        &tutorial,
        &["--broker", &address, "--simulate"],
    );
    let (mut current, mut epoch) = primary(&mut client, Duration::from_secs(10), |_, _| true)
        .await
        .expect("no primary");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (mut crashes, mut freezes, mut maps) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..30 {
        let index = usize::from(current.ctrl) - 1;
        let pid = controllers[index].pid();
        let frozen = round >= 20;
        let began = Instant::now();
        if frozen {
            Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .unwrap();
        } else {
            controllers[index].kill();
        }
        let (next, next_epoch) = primary(&mut client, Duration::from_secs(10), |hadd, e| {
            hadd != current && e > epoch
        })
        .await
        .expect("no takeover");
        let took = began.elapsed();
        if frozen {
            freezes.push(took)
        } else {
            crashes.push(took)
        }
        maps.extend(full_map(&mut client, 7).await);
        eprintln!(
            "round {round}: {} {current} -> {next} in {took:?}",
            if frozen { "SIGSTOP" } else { "SIGKILL" }
        );
        if frozen {
            Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status()
                .unwrap();
        } else {
            controllers[index] = start(NAMES[index]);
        }
        (current, epoch) = (next, next_epoch);
        tokio::time::sleep(Duration::from_secs(4)).await; // the comeback listens before it may claim
        client.clear();
    }
    summary(
        "SIGKILL of the primary -> successor's first primary heartbeat",
        crashes,
    );
    summary(
        "SIGSTOP of the primary -> successor's first primary heartbeat",
        freezes,
    );
    summary(
        "resolv request to the new primary -> all 7 tutorial nodes received",
        maps,
    );
}
