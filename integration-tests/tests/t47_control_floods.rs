//! Floods of what any client may send, on the failover example and the tutorial: discovery
//! and resolv requests, each with a new `reply_hadd`. Whatever the rate, the primary keeps
//! beating, nobody else claims, and no node is told a state but the truth (issue 21: a flood
//! of resolv requests moved the primary and made false states, keyed or not).

use std::path::Path;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::{self, FailoverNetwork};
use janitoo_integration_tests::process::{brokers_under_test, BrokerProcess};
use janitoo_integration_tests::watch::Watcher;
use janitoo_protocol::{Hadd, NodeState};
use tokio::time::Instant;

const FILTERS: [&str; 3] = [
    "/dhcp/heartbeat/#",
    "/dhcp/resolv/heartbeat",
    "/values/system/+/+/network_controller",
];
/// How long each flood lasts.
const FLOOD: Duration = Duration::from_secs(10);
/// Flooding clients.
const FLOODERS: usize = 4;

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

/// `FLOODERS` clients publish `payload(n)` on `topic` as fast as they can for `FLOOD`: how
/// many they sent.
async fn flood(port: u16, topic: &'static str, payload: fn(u64) -> String) -> u64 {
    let until = Instant::now() + FLOOD;
    let mut flooders = Vec::new();
    for flooder in 0..FLOODERS as u64 {
        let client = Client::connect(port).await;
        flooders.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < until {
                for _ in 0..100 {
                    let n = flooder << 32 | sent;
                    client.publish(topic, payload(n)).await;
                    sent += 1;
                }
                tokio::task::yield_now().await;
            }
            sent
        }));
    }
    let mut sent = 0;
    for flooder in flooders {
        sent += flooder.await.unwrap();
    }
    sent
}

/// A made-up address for request `n`: a new `reply_hadd` every time.
fn made_up(n: u64) -> Hadd {
    Hadd::new(
        1_000 + (n % 8_000) as u16,
        (n >> 32) as u16 * 100 + (n % 97) as u16,
    )
}

/// Runs the failover example, floods it with `payload` on `topic`, and checks the primary
/// held: it beat throughout (gaps within the silence limit), nobody else claimed, and no
/// node was told anything but ONLINE. The largest beat gap, for the benchmark.
async fn the_primary_holds_under(topic: &'static str, payload: fn(u64) -> String) {
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let _net = FailoverNetwork::start(janitoo(), &broker.address());
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let (primary, _) = network::network_up(&watcher, Instant::now(), Duration::from_secs(20))
        .await
        .expect("the network did not come up");
    let start = Instant::now();
    let sent = flood(broker.port, topic, payload).await;
    // Three more beats, for anything the flood set off to show.
    let flood_end = Instant::now();
    watcher
        .wait_for(Duration::from_secs(15), || {
            let beats = watcher.primaries(flood_end);
            (beats.iter().filter(|(_, hadd, _)| *hadd == primary).count() >= 3).then_some(())
        })
        .await
        .expect("the primary stopped beating after the flood");
    let beats = watcher.primaries(start);
    let claimants: Vec<Hadd> = beats
        .iter()
        .map(|(_, hadd, _)| *hadd)
        .filter(|hadd| *hadd != primary)
        .collect();
    let own: Vec<Instant> = beats
        .iter()
        .filter(|(_, hadd, _)| *hadd == primary)
        .map(|(at, _, _)| *at)
        .collect();
    let longest_gap = own
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    let false_states: Vec<_> = watcher
        .dispatches(start)
        .into_iter()
        .filter(|dispatch| dispatch.state != NodeState::Online)
        .collect();
    eprintln!(
        "{topic}: {sent} in {FLOOD:?} ({:.0}/s); the primary's longest beat gap {longest_gap:?}; \
         claims by {claimants:?}; {} false states",
        sent as f64 / FLOOD.as_secs_f64(),
        false_states.len()
    );
    assert!(claimants.is_empty(), "controllers claimed: {claimants:?}");
    assert!(
        false_states.is_empty(),
        "false states told: {false_states:?}"
    );
    assert!(
        longest_gap < Duration::from_secs(3),
        "the primary's beats were {longest_gap:?} apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_resolv_requests_moves_nothing() {
    the_primary_holds_under("/dhcp/resolv/request/", |n| {
        format!(
            r#"{{"cmd_class":20480,"genre":4,"op":"info","reply_hadd":"{}","uuid":"request_info_nodes"}}"#,
            made_up(n)
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_broadcast_requests_moves_nothing() {
    the_primary_holds_under("/broadcast/request", |n| {
        format!(
            r#"{{"cmd_class":20480,"genre":4,"op":"info","reply_hadd":"{}","uuid":"request_info_nodes"}}"#,
            made_up(n)
        )
    })
    .await;
}
