//! Failover between real processes: a broker, three network controllers
//! (`deploy/examples/failover/`) and the tutorial server. The primary is killed (SIGKILL) and,
//! later, a primary is frozen (SIGSTOP) then resumed (SIGCONT).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::{Client, Received, CLIENT_HADD};
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_protocol::{
    Codec, DiscoveryData, Hadd, HaddTarget, InfoKind, Message, NodeState, Request,
};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples")).join(name)
}

/// The resolv heartbeats seen: epoch -> the controllers that sent it.
#[derive(Default)]
struct PrimaryLog {
    by_epoch: BTreeMap<u64, BTreeSet<Hadd>>,
}

impl PrimaryLog {
    fn record(&mut self, received: &Received) -> Option<(Hadd, u64)> {
        let Message::ResolvHeartbeat(beat) = received.message() else {
            return None;
        };
        let epoch = beat.epoch.unwrap_or(0);
        self.by_epoch.entry(epoch).or_default().insert(beat.hadd);
        Some((beat.hadd, epoch))
    }

    fn assert_one_primary_per_epoch(&self) {
        for (epoch, senders) in &self.by_epoch {
            assert_eq!(
                senders.len(),
                1,
                "epoch {epoch:#x} was claimed by {senders:?}"
            );
        }
    }
}

/// Waits for a primary heartbeat that satisfies `wanted`, logging every one seen.
async fn primary_where(
    client: &mut Client,
    log: &mut PrimaryLog,
    limit: Duration,
    wanted: impl Fn(Hadd, u64) -> bool,
) -> Option<(Hadd, u64)> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let beat = client.next_on("/dhcp/resolv/heartbeat", left).await?;
        if let Some((hadd, epoch)) = log.record(&beat) {
            if wanted(hadd, epoch) {
                return Some((hadd, epoch));
            }
        }
    }
    None
}

fn signal(pid: u32, name: &str) {
    assert!(Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

fn start_controller(name: &str, dir: &Path, broker: &str) -> ControllerProcess {
    let config = dir.join(name);
    std::fs::copy(example(&format!("failover/{name}")), &config).unwrap();
    ControllerProcess::start(Path::new(JANITOO), &config, broker)
}

/// SIGKILL of the primary: a secondary takes over with a higher epoch, serves the whole map,
/// and goes on dispatching heartbeats on behalf; SIGSTOP of that one: the third takes over,
/// and after SIGCONT the frozen one steps down. Never two controllers on one epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_frozen_primary_is_replaced_by_a_secondary() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let address = broker.address();
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::connect(broker.port).await;
    for filter in [
        "/dhcp/resolv/heartbeat",
        "/dhcp/heartbeat/",
        "/dhcp/resolv/reply/9999/9990",
    ] {
        client.subscribe(filter).await;
    }
    let mut primary = start_controller("primary.toml", dir.path(), &address);
    let secondary_a = start_controller("secondary-a.toml", dir.path(), &address);
    let mut secondary_b = start_controller("secondary-b.toml", dir.path(), &address);
    let tutorial_config = dir.path().join("tutorial.toml");
    std::fs::copy(example("tutorial.toml"), &tutorial_config).unwrap();
    let mut tutorial = ControllerProcess::start_with(
        Path::new(JANITOO),
        &tutorial_config,
        &["--broker", &address, "--simulate"],
    );

    let mut log = PrimaryLog::default();
    let (first, first_epoch) =
        primary_where(&mut client, &mut log, Duration::from_secs(10), |_, _| true)
            .await
            .expect("no primary elected");
    assert_eq!(
        first,
        Hadd::new(1, 0),
        "the controller configured primary wins the first election"
    );
    // Let the map fill (the primary's broadcast discovery, the secondaries' replicas).
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Crash: the Last Will tells the secondaries at once.
    let killed = Instant::now();
    primary.kill();
    let (second, second_epoch) = primary_where(
        &mut client,
        &mut log,
        Duration::from_secs(5),
        |hadd, epoch| hadd != first && epoch > first_epoch,
    )
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

    // The promoted secondary serves the whole map at once.
    let request = Message::Request(Request::info(InfoKind::Nodes, CLIENT_HADD));
    client
        .publish("/dhcp/resolv/request/", request.encode(Codec::Json))
        .await;
    let mut nodes = BTreeSet::new();
    while let Some(reply) = client
        .next_on("/dhcp/resolv/reply/9999/9990", Duration::from_secs(2))
        .await
    {
        if let Message::DiscoveryReply(reply) = reply.message() {
            if let DiscoveryData::Nodes(found) = reply.data {
                nodes.extend(found.into_keys());
            }
        }
    }
    for node in [
        Hadd::new(220, 0),
        Hadd::new(220, 1),
        Hadd::new(221, 1),
        Hadd::new(222, 1),
    ] {
        assert!(
            nodes.contains(&node),
            "{node} missing from the new primary's map: {nodes:?}"
        );
    }

    // Heartbeats on behalf continue: the tutorial server is killed; its Will says its
    // controller is OFFLINE, and the new primary dispatches OFFLINE for the other nodes.
    tutorial.kill();
    let on_behalf = client
        .next_matching(Duration::from_secs(3), |r| {
            r.topic == "/dhcp/heartbeat/"
                && matches!(r.message(), Message::HeartbeatOnBehalf(ref b)
                    if b.target == HaddTarget::Node(Hadd::new(220, 1)) && b.state == NodeState::Offline)
        })
        .await
        .expect("no OFFLINE on behalf of 0220/0001");
    let Message::HeartbeatOnBehalf(beat) = on_behalf.message() else {
        unreachable!()
    };
    assert_eq!(
        (beat.observer, beat.epoch),
        (Some(second), Some(second_epoch))
    );

    // Freeze the new primary: the silent bound (3 missed intervals) and the third takes over.
    let frozen_at = Instant::now();
    let frozen_pid = secondary_a.pid(); // the primary since the kill
    signal(frozen_pid, "STOP");
    let (third, third_epoch) = primary_where(
        &mut client,
        &mut log,
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
    // Resume: the old primary sees the higher epoch and steps down; the third stays primary.
    signal(frozen_pid, "CONT");
    primary_where(&mut client, &mut log, Duration::from_secs(3), |_, _| false).await;
    let mut settled = PrimaryLog::default();
    primary_where(&mut client, &mut settled, Duration::from_secs(2), |_, _| {
        false
    })
    .await;
    log.by_epoch.extend(settled.by_epoch.clone());
    log.assert_one_primary_per_epoch();
    let senders: BTreeSet<(u64, Hadd)> = settled
        .by_epoch
        .iter()
        .flat_map(|(epoch, s)| s.iter().map(move |hadd| (*epoch, *hadd)))
        .collect();
    assert_eq!(
        senders,
        BTreeSet::from([(third_epoch, third)]),
        "after SIGCONT only {third} is primary"
    );
    // `janitoo status` shows the same network once: the primary, its epoch, the controllers.
    let status = Command::new(JANITOO)
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
    secondary_b.kill();
}
