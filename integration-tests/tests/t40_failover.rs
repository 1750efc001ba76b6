//! Failover between real processes: a broker, three network controllers
//! (`deploy/examples/failover/`) and the tutorial server. The primary is killed (SIGKILL) and,
//! later, a primary is frozen (SIGSTOP) then resumed (SIGCONT).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::client::{Client, CLIENT_HADD};
use janitoo_integration_tests::network::{self, FailoverNetwork};
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess};
use janitoo_integration_tests::watch::Watcher;
use janitoo_protocol::reply::DiscoveryData;
use janitoo_protocol::{Codec, Data, Hadd, InfoKind, Message, NodeState, Request};
use tokio::time::Instant;

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

const TUTORIAL_NODES: [Hadd; 4] = [
    Hadd::new(220, 0),
    Hadd::new(220, 1),
    Hadd::new(221, 1),
    Hadd::new(222, 1),
];

/// The first primary heartbeat since `since` that satisfies `wanted`.
async fn primary_where(
    watcher: &Watcher,
    since: Instant,
    limit: Duration,
    wanted: impl Fn(Hadd, u64) -> bool,
) -> Option<(Hadd, u64)> {
    watcher
        .wait_for(limit, || {
            watcher
                .primaries(since)
                .into_iter()
                .find(|(_, hadd, epoch)| wanted(*hadd, *epoch))
                .map(|(_, hadd, epoch)| (hadd, epoch))
        })
        .await
}

/// The nodes told in discovery answers of nodes heard since `since`.
fn nodes_told(watcher: &Watcher, since: Instant) -> BTreeSet<Hadd> {
    watcher
        .since(since)
        .into_iter()
        .filter_map(|heard| match heard.message {
            Message::DiscoveryReply(reply) => match reply.data {
                DiscoveryData::Nodes(nodes) => Some(nodes.into_keys()),
                DiscoveryData::Values(_) => None,
            },
            _ => None,
        })
        .flatten()
        .collect()
}

/// SIGKILL of the primary: a secondary takes over with a higher epoch, serves the whole map,
/// and goes on dispatching heartbeats on behalf; SIGSTOP of that one: the third takes over,
/// and after SIGCONT the frozen one steps down. Never two controllers on one epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_frozen_primary_is_replaced_by_a_secondary() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, janitoo(), None);
    let address = broker.address();
    let watcher = Watcher::start(
        "127.0.0.1",
        broker.port,
        &[
            "/dhcp/resolv/heartbeat",
            "/dhcp/heartbeat/",
            "/values/system/+/+/network_controller",
            "/broadcast/reply/#",
            "/dhcp/resolv/broadcast/",
        ],
    )
    .await;
    let start = Instant::now();
    let mut net = FailoverNetwork::start(janitoo(), &address);

    let (first, first_epoch) = primary_where(&watcher, start, Duration::from_secs(10), |_, _| true)
        .await
        .expect("no primary elected");
    assert_eq!(
        first,
        Hadd::new(1, 0),
        "the controller configured primary wins the first election"
    );
    // The secondaries' replicas hold the tutorial's nodes: they announced themselves (so they
    // listen), and then the nodes were told in a discovery answer every controller hears.
    let secondaries_listening = watcher
        .wait_for(Duration::from_secs(10), || {
            let candidacies = watcher.candidacies(start);
            [Hadd::new(2, 0), Hadd::new(3, 0)]
                .iter()
                .map(|hadd| {
                    candidacies
                        .iter()
                        .find(|(_, c)| c.hadd == *hadd)
                        .map(|(at, _)| *at)
                })
                .collect::<Option<Vec<Instant>>>()
                .and_then(|ats| ats.into_iter().max())
        })
        .await
        .expect("the secondaries did not announce themselves");
    let filled = watcher
        .wait_for(Duration::from_secs(10), || {
            let told = nodes_told(&watcher, secondaries_listening);
            TUTORIAL_NODES
                .iter()
                .all(|n| told.contains(n))
                .then_some(())
        })
        .await;
    assert!(filled.is_some(), "the tutorial's nodes were never told");

    // Crash: the Last Will tells the secondaries at once.
    let killed = Instant::now();
    net.controllers[0].1.kill();
    let (second, second_epoch) =
        primary_where(&watcher, killed, Duration::from_secs(5), |hadd, epoch| {
            hadd != first && epoch > first_epoch
        })
        .await
        .expect("no secondary took over after SIGKILL");
    eprintln!(
        "SIGKILL: {second} primary of {second_epoch:#x} after {:?}",
        killed.elapsed()
    );
    assert_eq!(
        second,
        Hadd::new(2, 0),
        "the best-ranked secondary takes over"
    );

    // The promoted secondary serves the whole map at once: its chunks say when it is all.
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/dhcp/resolv/reply/9999/9990").await;
    let request = Message::Request(Request::info(InfoKind::Nodes, CLIENT_HADD));
    client
        .publish("/dhcp/resolv/request/", request.encode(Codec::Json))
        .await;
    let mut nodes = BTreeSet::new();
    loop {
        let reply = client
            .next_on("/dhcp/resolv/reply/9999/9990", Duration::from_secs(3))
            .await
            .expect("the new primary's map stopped short");
        let Message::DiscoveryReply(reply) = reply.message() else {
            panic!("not a map answer");
        };
        assert_eq!(reply.extra.get("epoch"), Some(&Data::from(second_epoch)));
        if let DiscoveryData::Nodes(found) = reply.data {
            nodes.extend(found.into_keys());
        }
        if reply.extra.get("chunk") == reply.extra.get("chunks") {
            break;
        }
    }
    for node in TUTORIAL_NODES {
        assert!(
            nodes.contains(&node),
            "{node} missing from the new primary's map: {nodes:?}"
        );
    }

    // Heartbeats on behalf continue: the tutorial server is killed; its Will says its
    // controller is OFFLINE, and the new primary dispatches OFFLINE for the other nodes.
    let tutorial_killed = Instant::now();
    net.tutorial.kill();
    let offline = watcher
        .wait_for(Duration::from_secs(3), || {
            watcher
                .dispatches(tutorial_killed)
                .into_iter()
                .find(|d| d.node == Hadd::new(220, 1) && d.state == NodeState::Offline)
        })
        .await
        .expect("no OFFLINE on behalf of 0220/0001");
    assert_eq!(
        (offline.observer, offline.epoch),
        (Some(second), Some(second_epoch))
    );

    // Freeze the new primary: the silent bound (3 missed intervals) and the third takes over.
    let frozen = net.controller(second);
    let frozen_at = Instant::now();
    frozen.signal("STOP");
    let (third, third_epoch) = primary_where(
        &watcher,
        frozen_at,
        Duration::from_secs(8),
        |hadd, epoch| hadd != second && epoch > second_epoch,
    )
    .await
    .expect("no takeover of a frozen primary");
    eprintln!(
        "SIGSTOP: {third} primary of {third_epoch:#x} after {:?}",
        frozen_at.elapsed()
    );
    assert_eq!(third, Hadd::new(3, 0));
    // Resume: the old primary hears the higher epoch and says it is a secondary of it.
    frozen.signal("CONT");
    let resumed = Instant::now();
    let stepped_down = network::stepped_down(
        &watcher,
        second,
        third_epoch,
        resumed,
        Duration::from_secs(6),
    )
    .await
    .expect("the resumed primary did not step down");
    // From then on, only the third beats as primary (watched over three intervals).
    let quiet = watcher
        .wait_for(Duration::from_secs(3), || {
            watcher
                .primaries(stepped_down)
                .into_iter()
                .find(|(_, hadd, _)| *hadd != third)
        })
        .await;
    assert_eq!(quiet, None, "after SIGCONT only {third} is primary");

    let mut by_epoch: BTreeMap<u64, BTreeSet<Hadd>> = BTreeMap::new();
    for (_, hadd, epoch) in watcher.primaries(start) {
        by_epoch.entry(epoch).or_default().insert(hadd);
    }
    for (epoch, senders) in &by_epoch {
        assert_eq!(
            senders.len(),
            1,
            "epoch {epoch:#x} was claimed by {senders:?}"
        );
    }

    // `janitoo status` shows the same network once: the primary, its epoch, the controllers.
    let (claimed_at, _, _) = watcher
        .primaries(frozen_at)
        .into_iter()
        .find(|(_, hadd, epoch)| *hadd == third && *epoch == third_epoch)
        .unwrap();
    let asked_at = Instant::now();
    let status = Command::new(janitoo())
        .args(["status", "--broker", &address, "--wait", "2"])
        .output()
        .unwrap();
    let view = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{view}");
    assert!(
        view.contains(&format!("primary: {third}  epoch {third_epoch:#x}")),
        "{view}"
    );
    for controller in ["0002/0000  secondary", "0003/0000  secondary"] {
        assert!(
            view.contains(controller),
            "{controller:?} missing from:\n{view}"
        );
    }
    assert!(
        view.lines()
            .any(|line| line.contains("0003/0000") && line.contains(" primary ")),
        "0003/0000 not shown as the primary:\n{view}"
    );
    // The primary's map: the killed tutorial's nodes, which nobody hears any more, with the
    // state the primary told; and since when it is primary, not since status first heard it.
    for node in TUTORIAL_NODES.iter().skip(1) {
        assert!(
            view.lines()
                .any(|line| line.contains(&format!("{node}  OFFLINE"))
                    && line.contains(&third.to_string())),
            "{node} OFFLINE, told by {third}, missing from:\n{view}"
        );
    }
    let held = primary_for(&view).unwrap_or_else(|| panic!("no 'primary for' in:\n{view}"));
    let expected = asked_at - claimed_at;
    assert!(
        held + Duration::from_secs(1) >= expected && held <= expected + Duration::from_secs(4),
        "primary for {held:?}, claimed {expected:?} before status was asked:\n{view}"
    );
}

/// `primary for 12.3s` or `primary for 1m 05s` in a status view.
fn primary_for(view: &str) -> Option<Duration> {
    let text = view.split("primary for ").nth(1)?.split(')').next()?;
    let seconds = match text.split_once("m ") {
        Some((minutes, seconds)) => {
            minutes.parse::<f64>().ok()? * 60.0
                + seconds.trim_end_matches('s').parse::<f64>().ok()?
        }
        None => text.trim_end_matches('s').parse().ok()?,
    };
    Some(Duration::from_secs_f64(seconds))
}
