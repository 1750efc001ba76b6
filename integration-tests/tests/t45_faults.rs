//! The network tells the truth under ordinary faults, with real processes: the failover example
//! (three network controllers) and the tutorial server, on a real broker. Each test checks that
//! no node that keeps beating is dispatched PENDING, FAILED or OFFLINE, and that nothing stale
//! is said with an old epoch.
//!
//! The broker restart needs Mosquitto (mandatory with `JANITOO_TEST_MOSQUITTO`), the partition
//! network namespaces, root and Mosquitto (mandatory with `JANITOO_TEST_NETNS`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::netns::Partition;
use janitoo_integration_tests::network::{self, FailoverNetwork};
use janitoo_integration_tests::process::{brokers_under_test, mosquitto_path};
use janitoo_integration_tests::require;
use janitoo_integration_tests::watch::{Dispatch, Watcher};
use janitoo_integration_tests::{BrokerKind, BrokerProcess};
use janitoo_protocol::{Hadd, Message, NodeState, Topic};
use tokio::time::Instant;

const FILTERS: [&str; 3] = [
    "/dhcp/heartbeat/#",
    "/dhcp/resolv/heartbeat",
    "/values/system/+/+/network_controller",
];

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

/// Waits until a primary beats and every controller announces itself, since `since`.
async fn network_up(watcher: &Watcher, since: Instant, limit: Duration) -> (Hadd, u64) {
    network::network_up(watcher, since, limit)
        .await
        .expect("no primary, or not every controller heard")
}

/// What a node that keeps beating must never be told.
fn is_failure(dispatch: &Dispatch) -> bool {
    matches!(
        dispatch.state,
        NodeState::Pending | NodeState::Failed | NodeState::Dead | NodeState::Offline
    )
}

/// The first failure dispatched since `since` (about any node but `except`), waiting up to
/// `limit` for one: a bounded watch for what must not happen.
async fn failure_within(
    watcher: &Watcher,
    since: Instant,
    limit: Duration,
    except: Option<Hadd>,
) -> Option<Dispatch> {
    watcher
        .wait_for(limit, || {
            watcher
                .dispatches(since)
                .into_iter()
                .find(|d| is_failure(d) && Some(d.node) != except)
        })
        .await
}

/// Mosquitto killed (as a crash, or a reboot of its host) and started again 5 s later on the
/// same port: every client comes back within its backoff, and nobody is dispatched PENDING or
/// FAILED for the outage, not even the controllers, whose period is one second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_dispatches_nothing_for_anyone() {
    let available = mosquitto_path().is_some();
    let Some(()) = require::runs(
        "JANITOO_TEST_MOSQUITTO",
        available,
        "Mosquitto is not installed",
    ) else {
        return;
    };
    let mut broker = BrokerProcess::start(BrokerKind::Mosquitto, janitoo(), None);
    let port = broker.port;
    let _net = FailoverNetwork::start(janitoo(), &broker.address());
    let watcher = Watcher::start("127.0.0.1", port, &FILTERS).await;
    network_up(&watcher, Instant::now(), Duration::from_secs(15)).await;

    broker.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await; // the outage itself
    let _broker = BrokerProcess::start(BrokerKind::Mosquitto, janitoo(), Some(port));
    let back = Instant::now();
    let (primary, _) = network_up(&watcher, back, Duration::from_secs(20)).await;
    eprintln!("back after the restart: {primary} primary");
    // Past the rejoin allowance (10 s) and three missed periods of everyone.
    let failure = failure_within(&watcher, killed, Duration::from_secs(15), None).await;
    assert_eq!(failure, None, "a false dispatch after a broker restart");
}

/// The primary frozen (SIGSTOP) long enough for a takeover and for every node to look silent
/// to it, then resumed (SIGCONT): it says nothing with its old epoch, steps down, and nobody
/// is dispatched anything stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_primary_resumed_publishes_nothing_with_its_old_epoch() {
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let net = FailoverNetwork::start(janitoo(), &broker.address());
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let (first, first_epoch) = network_up(&watcher, Instant::now(), Duration::from_secs(15)).await;

    let frozen = net.controller(first);
    frozen.signal("STOP");
    let stopped = Instant::now();
    let (second, second_epoch) = watcher
        .wait_for(Duration::from_secs(8), || {
            watcher
                .primaries(stopped)
                .into_iter()
                .find(|(_, hadd, epoch)| *hadd != first && *epoch > first_epoch)
                .map(|(_, hadd, epoch)| (hadd, epoch))
        })
        .await
        .expect("no takeover of the frozen primary");
    // Frozen for 8 s in all: to it, every node has then missed more than six periods.
    tokio::time::sleep(
        (stopped + Duration::from_secs(8)).saturating_duration_since(Instant::now()),
    )
    .await;
    frozen.signal("CONT");
    let resumed = Instant::now();
    // It has heard the network: it announces itself as a secondary of the new epoch.
    let stepped_down = network::stepped_down(
        &watcher,
        first,
        second_epoch,
        resumed,
        Duration::from_secs(6),
    )
    .await;
    assert!(
        stepped_down.is_some(),
        "{first} did not step down after SIGCONT"
    );
    // Watch a while longer: nothing with the old epoch (what it had queued before the stop
    // aside, flushed in the first moments), and no failure for anyone alive.
    let flushed = resumed + Duration::from_millis(300);
    let failure = failure_within(
        &watcher,
        resumed + Duration::from_secs(1),
        Duration::from_secs(4),
        None,
    )
    .await;
    assert_eq!(failure, None, "a failure dispatched after the resume");
    let stale: Vec<String> = watcher
        .since(flushed)
        .iter()
        .filter_map(|heard| {
            let epoch = match &heard.message {
                Message::ResolvHeartbeat(beat) => beat.epoch,
                Message::HeartbeatOnBehalf(beat) => beat.epoch,
                _ => None,
            }?;
            (epoch <= first_epoch).then(|| format!("{} {:?}", heard.topic, heard.message))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "said with the old epoch after SIGCONT: {stale:?}"
    );
    for dispatch in watcher.dispatches(flushed) {
        assert_eq!(
            (dispatch.observer, dispatch.epoch),
            (Some(second), Some(second_epoch)),
            "{dispatch:?}"
        );
    }
}

/// A node beating every 2 s is set to beat every 20 s over the network (as
/// `janitoo set 0220/0001 heartbeat 20 --genre system` does): the primary learns the new
/// period from the node's publication, so no PENDING in the next 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_period_changed_over_the_network_is_learned() {
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let node = Hadd::new(220, 1);
    let _net = FailoverNetwork::start_with(
        janitoo(),
        &broker.address(),
        |_| None,
        |text| {
            text.replacen(
                "hadd = \"0220/0001\"",
                "hadd = \"0220/0001\"\nheartbeat = 2",
                1,
            )
        },
    );
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let up = Instant::now();
    network_up(&watcher, up, Duration::from_secs(15)).await;
    let own_beats = |since: Instant| -> Vec<Instant> {
        watcher
            .since(since)
            .iter()
            .filter(|h| {
                h.topic == Topic::Heartbeat(node) && matches!(h.message, Message::Heartbeat(_))
            })
            .map(|h| h.at)
            .collect()
    };
    let beating = watcher
        .wait_for(Duration::from_secs(10), || {
            (own_beats(up).len() >= 3).then_some(())
        })
        .await;
    assert!(beating.is_some(), "{node} does not beat every 2 s");

    let set = Command::new(janitoo())
        .args([
            "set",
            &node.to_string(),
            "heartbeat",
            "20",
            "--genre",
            "system",
        ])
        .args(["--broker", &broker.address()])
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let changed = Instant::now();
    let failure = failure_within(&watcher, changed, Duration::from_secs(30), None).await;
    assert_eq!(failure, None, "the new period was not learned");
    // The node did slow down: with 2 s still assumed, PENDING would have come after 6.6 s.
    let after: Vec<Instant> = own_beats(changed + Duration::from_millis(500));
    assert!(
        after.len() <= 2,
        "{node} still beats often: {} beats in 30 s",
        after.len()
    );
}

/// Two Mosquittos bridged; secondary 0002 sits alone on the far one, in its own network
/// namespace. The link is cut for 20 s: each side may have its primary (0002 takes over its
/// half), and the near side may rightly say 0002 is silent, but nobody it can hear. After the
/// heal (from the first message to cross the healed bridge, which Mosquitto reconnects in its
/// own time): one primary within 5 s, and no dispatch against anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healed_partition_leaves_one_primary_and_no_false_dispatch() {
    let Some(()) = require::runs(
        "JANITOO_TEST_NETNS",
        Partition::available(),
        "network namespaces (ip netns, as root) or Mosquitto are not available",
    ) else {
        return;
    };
    let partition = Partition::create();
    let far = Hadd::new(2, 0);
    let _net = FailoverNetwork::start_with(
        janitoo(),
        &partition.address_a(),
        |hadd| (hadd == far).then(|| (partition.command_in_b(janitoo()), partition.address_b())),
        |text| text,
    );
    let watcher = Watcher::start("127.0.0.1", partition.port_a, &FILTERS).await;
    let (primary, _) = network_up(&watcher, Instant::now(), Duration::from_secs(20)).await;
    assert_ne!(primary, far);

    partition.cut();
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await; // the partition itself
    let during = watcher.dispatches(cut);
    partition.heal();
    let healed = Instant::now();
    let wrong: Vec<&Dispatch> = during
        .iter()
        .filter(|d| is_failure(d) && d.node != far)
        .collect();
    assert!(
        wrong.is_empty(),
        "during the cut, dispatches against reachable nodes: {wrong:?}"
    );

    // Mosquitto's bridge takes its own time to reconnect (seconds, more on a loaded machine):
    // the network is judged from the first word of the far side to cross the healed link.
    let rejoined = watcher
        .wait_for(Duration::from_secs(40), || {
            let candidacy = watcher
                .candidacies(healed)
                .into_iter()
                .find(|(_, c)| c.hadd == far)
                .map(|(at, _)| at);
            let beat = watcher
                .primaries(healed)
                .into_iter()
                .find(|(_, hadd, _)| *hadd == far)
                .map(|(at, _, _)| at);
            candidacy.into_iter().chain(beat).min()
        })
        .await
        .expect("the bridge never reconnected after the heal");
    eprintln!(
        "the bridge carried the far side again {:?} after the heal",
        rejoined - healed
    );
    network_up(&watcher, rejoined, Duration::from_secs(10)).await;
    let failure = failure_within(
        &watcher,
        rejoined + Duration::from_secs(1),
        Duration::from_secs(12),
        None,
    )
    .await;
    assert_eq!(failure, None, "a false dispatch after the heal");
    let beats = watcher.primaries(rejoined);
    let (_, last, _) = *beats.last().expect("no primary after the heal");
    let settled = beats
        .iter()
        .filter(|(_, hadd, _)| *hadd != last)
        .map(|(at, _, _)| *at)
        .max()
        .unwrap_or(rejoined);
    eprintln!(
        "one primary ({last}) {:?} after the halves heard each other",
        settled.saturating_duration_since(rejoined)
    );
    assert!(
        settled <= rejoined + Duration::from_secs(5),
        "two primaries for {:?} after the halves heard each other",
        settled.saturating_duration_since(rejoined)
    );
}
