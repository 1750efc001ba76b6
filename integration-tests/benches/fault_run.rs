//! False dispatches under injected faults, with real processes: how many times the network
//! said PENDING, FAILED or OFFLINE of a node that was not silent.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench fault_run` (`JANITOO_FAULTS=<n>`
//! faults, default 60; Mosquitto when installed, else the embedded broker).
//!
//! The three controllers of `deploy/examples/failover/` and the tutorial server (0220/0001
//! beating every 2 s, the rest every 30 s). One fault at a time, drawn at random: the broker
//! restarted after 1 to 8 s; the primary frozen (SIGSTOP) 1 to 10 s; a secondary frozen 0.2 to
//! 6 s; a secondary killed and restarted; the tutorial server killed and restarted; the period
//! of 0220/0001 changed between 2 s and 20 s over the network. After each, the network must
//! be back (a primary, every controller announcing) before the next, 5 s later.
//!
//! A dispatch against a node is *false* unless the node's own process was stopped or killed in
//! the 70 s before it: broker restarts, freezes of others, takeovers and period changes are
//! never a reason to say a node failed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::network::{self, FailoverNetwork, CONTROLLERS};
use janitoo_integration_tests::process::{brokers_under_test, ControllerProcess};
use janitoo_integration_tests::watch::Watcher;
use janitoo_integration_tests::BrokerProcess;
use janitoo_protocol::{Hadd, NodeState};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

const FILTERS: [&str; 3] = [
    "/dhcp/heartbeat/#",
    "/dhcp/resolv/heartbeat",
    "/values/system/+/+/network_controller",
];
const EXCUSE: Duration = Duration::from_secs(70);

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

async fn network_up(watcher: &Watcher, since: Instant) -> Option<Hadd> {
    let up = network::network_up(watcher, since, Duration::from_secs(30)).await;
    up.map(|(primary, _)| primary)
}

/// Which process a node belongs to: a controller's own, or the tutorial server's.
fn process_of(node: Hadd) -> Option<Hadd> {
    if CONTROLLERS.iter().any(|(hadd, _)| *hadd == node) {
        Some(node)
    } else if (220..=222).contains(&node.ctrl) {
        Some(Hadd::new(220, 0))
    } else {
        None
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let faults: usize = std::env::var("JANITOO_FAULTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let kind = *brokers_under_test().last().unwrap();
    let mut broker = Some(BrokerProcess::start(kind, janitoo(), None));
    let port = broker.as_ref().unwrap().port;
    let address = broker.as_ref().unwrap().address();
    let node = Hadd::new(220, 1);
    let edit = |text: String| {
        text.replacen(
            "hadd = \"0220/0001\"",
            "hadd = \"0220/0001\"\nheartbeat = 2",
            1,
        )
    };
    let mut net = FailoverNetwork::start_with(janitoo(), &address, |_| None, edit);
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::start("127.0.0.1", port, &FILTERS).await;
    let started = Instant::now();
    network_up(&watcher, started).await.expect("no primary");
    let mut random = rand::rngs::StdRng::seed_from_u64(7);
    // When each process was last stopped or killed.
    let mut silenced: Vec<(Hadd, Instant)> = Vec::new();
    let mut period = 2;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut deck: Vec<u32> = Vec::new();
    for round in 0..faults {
        let primary = watcher
            .primaries(started)
            .last()
            .map(|(_, h, _)| *h)
            .unwrap();
        let secondary = CONTROLLERS
            .iter()
            .map(|(hadd, _)| *hadd)
            .filter(|hadd| *hadd != primary)
            .nth(random.random_range(0..2))
            .unwrap();
        let began = Instant::now();
        // Every kind of fault as often: each block of six is a shuffled deck.
        if deck.is_empty() {
            deck = (0..6).collect();
            deck.shuffle(&mut random);
        }
        let kind_of_fault = match deck.pop().unwrap() {
            0 => {
                broker.take().unwrap().kill();
                let down = Duration::from_millis(random.random_range(1_000..8_000));
                tokio::time::sleep(down).await;
                broker = Some(BrokerProcess::start(kind, janitoo(), Some(port)));
                "broker restarted"
            }
            1 => {
                let process = net.controller(primary);
                process.signal("STOP");
                silenced.push((primary, Instant::now()));
                tokio::time::sleep(Duration::from_millis(random.random_range(1_000..10_000))).await;
                process.signal("CONT");
                silenced.push((primary, Instant::now()));
                "primary frozen"
            }
            2 => {
                let process = net.controller(secondary);
                process.signal("STOP");
                silenced.push((secondary, Instant::now()));
                tokio::time::sleep(Duration::from_millis(random.random_range(200..6_000))).await;
                process.signal("CONT");
                silenced.push((secondary, Instant::now()));
                "secondary frozen"
            }
            3 => {
                let at = net
                    .controllers
                    .iter()
                    .position(|(h, _)| *h == secondary)
                    .unwrap();
                net.controllers[at].1.kill();
                silenced.push((secondary, Instant::now()));
                let file = CONTROLLERS[at].1;
                let config = janitoo_integration_tests::network::copy_example(
                    &format!("failover/{file}"),
                    dir.path(),
                    |t| t,
                );
                net.controllers[at].1 = ControllerProcess::start(janitoo(), &config, &address);
                "secondary killed and restarted"
            }
            4 => {
                net.tutorial.kill();
                silenced.push((Hadd::new(220, 0), Instant::now()));
                let config = janitoo_integration_tests::network::copy_example(
                    "tutorial.toml",
                    dir.path(),
                    edit,
                );
                net.tutorial = ControllerProcess::start_with(
                    janitoo(),
                    &config,
                    &["--broker", &address, "--simulate"],
                );
                period = 2;
                "tutorial killed and restarted"
            }
            _ => {
                period = if period == 2 { 20 } else { 2 };
                let set = Command::new(janitoo())
                    .args(["set", &node.to_string(), "heartbeat", &period.to_string()])
                    .args(["--genre", "system", "--broker", &address])
                    .output()
                    .unwrap();
                assert!(
                    set.status.success(),
                    "{}",
                    String::from_utf8_lossy(&set.stderr)
                );
                "period changed"
            }
        };
        *counts.entry(kind_of_fault).or_default() += 1;
        let back = network_up(&watcher, Instant::now()).await;
        eprintln!(
            "fault {round}: {kind_of_fault} ({:.1} s); network back: {}",
            began.elapsed().as_secs_f64(),
            back.is_some()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // Five more seconds of quiet, then the verdict.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let dispatches = watcher.dispatches(started);
    let against: Vec<_> = dispatches
        .iter()
        .filter(|d| {
            matches!(
                d.state,
                NodeState::Pending | NodeState::Failed | NodeState::Dead | NodeState::Offline
            )
        })
        .collect();
    let false_ones: Vec<_> = against
        .iter()
        .filter(|d| {
            let process = process_of(d.node);
            !silenced.iter().any(|(who, at)| {
                Some(*who) == process && *at <= d.at && d.at.duration_since(*at) <= EXCUSE
            })
        })
        .collect();
    for dispatch in &false_ones {
        eprintln!("false: {dispatch:?}");
    }
    println!(
        "{faults} faults in {:.0} s ({counts:?}): {} dispatches against nodes, {} false; {:.1} false per 1,000 faults",
        started.elapsed().as_secs_f64(),
        against.len(),
        false_ones.len(),
        false_ones.len() as f64 * 1000.0 / faults as f64
    );
}
