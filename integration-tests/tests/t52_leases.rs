//! Dynamic addresses between real processes (issue 23): `deploy/examples/auto.toml`, a bus and
//! two components with `hadd = "auto"`, leases three addresses from the failover example's
//! primary, writes them into its file, keeps them across a restart, and releases them at a
//! clean stop; a primary that takes over after leases were granted never grants them again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use janitoo_config::{Address, Config};
use janitoo_integration_tests::network::{copy_example, example};
use janitoo_integration_tests::process::{
    brokers_under_test, BrokerKind, BrokerProcess, ControllerProcess,
};
use janitoo_integration_tests::watch::Watcher;
use janitoo_protocol::{Hadd, LeaseOp, Message, NodeState, Topic};
use tokio::time::Instant;

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

const FILTERS: [&str; 5] = [
    "/dhcp/heartbeat/#",
    "/dhcp/resolv/heartbeat",
    "/values/system/+/+/network_controller",
    "/dhcp/lease/#",
    "/dhcp/leases/#",
];

/// The addresses `config` holds, and whether each is leased.
fn addresses(config: &Path) -> Vec<(Hadd, Address)> {
    let config = Config::load(config).expect("the file written back reads");
    config
        .buses
        .iter()
        .flat_map(|bus| std::iter::once(&bus.node).chain(bus.components.iter().map(|c| &c.node)))
        .map(|node| (node.hadd, node.address))
        .collect()
}

/// Waits until every one of `hadds` has beaten ONLINE since `since`.
async fn beating(watcher: &Watcher, hadds: &[Hadd], since: Instant) -> bool {
    watcher
        .wait_for(Duration::from_secs(30), || {
            let heard: BTreeSet<Hadd> = watcher
                .since(since)
                .into_iter()
                .filter_map(|heard| match (heard.topic, heard.message) {
                    (Topic::Heartbeat(hadd), Message::Heartbeat(beat))
                        if beat.state == NodeState::Online =>
                    {
                        Some(hadd)
                    }
                    _ => None,
                })
                .collect();
            hadds.iter().all(|hadd| heard.contains(hadd)).then_some(())
        })
        .await
        .is_some()
}

/// A primary of the failover example (unkeyed: the auto controller has no key), up.
async fn primary(dir: &Path, broker: &BrokerProcess, watcher: &Watcher) -> ControllerProcess {
    let config = copy_example("failover/primary.toml", dir, |text| {
        text.replace("key_file = \"network.key\"", "")
    });
    let since = Instant::now();
    let process = ControllerProcess::start(janitoo(), &config, &broker.address());
    let up = watcher
        .wait_for(Duration::from_secs(20), || {
            (!watcher.primaries(since).is_empty()).then_some(())
        })
        .await;
    assert!(up.is_some(), "the primary did not come up");
    process
}

fn auto_config(dir: &Path, name: &str) -> PathBuf {
    let config = copy_example("auto.toml", dir, |text| text);
    let renamed = dir.join(name);
    std::fs::rename(&config, &renamed).unwrap();
    renamed
}

/// The example auto controller, started.
fn start_auto(config: &Path, broker: &BrokerProcess) -> ControllerProcess {
    ControllerProcess::start_with(
        janitoo(),
        config,
        &["--broker", &broker.address(), "--simulate"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_bus_leases_three_addresses_writes_them_and_keeps_them() {
    assert!(example("auto.toml").exists());
    for kind in brokers_under_test() {
        let dir = tempfile::tempdir().unwrap();
        let broker = BrokerProcess::start(kind, janitoo(), None);
        let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
        let _primary = primary(dir.path(), &broker, &watcher).await;
        let config = auto_config(dir.path(), "orchard.toml");
        let since = Instant::now();
        let mut auto = start_auto(&config, &broker);
        // Three addresses: the bus gets the first controller address above those in use,
        // its components the first nodes under it.
        let expected = [Hadd::new(10, 0), Hadd::new(10, 1), Hadd::new(10, 2)];
        assert!(
            beating(&watcher, &expected, since).await,
            "{kind:?}: no heartbeats from {expected:?}"
        );
        let started = since.elapsed();
        let written = addresses(&config);
        assert_eq!(
            written,
            expected.map(|hadd| (hadd, Address::Leased)),
            "{kind:?}: the file holds what was leased"
        );
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(
            text.contains("name = \"Apple tree\""),
            "the rest of the file is kept: {text}"
        );
        eprintln!("{kind:?}: auto start to the heartbeats of three leased addresses: {started:?}");
        // A clean stop releases them; a restart locks them and starts on them.
        let stopping = Instant::now();
        assert!(
            auto.terminate(Duration::from_secs(10)),
            "{kind:?}: no clean stop"
        );
        let released = watcher
            .wait_for(Duration::from_secs(5), || {
                let releases = watcher
                    .since(stopping)
                    .into_iter()
                    .filter(|heard| heard.topic == Topic::Lease(LeaseOp::Release))
                    .count();
                (releases == 3).then_some(())
            })
            .await;
        assert!(
            released.is_some(),
            "{kind:?}: three releases at a clean stop"
        );
        let again = Instant::now();
        let _auto = start_auto(&config, &broker);
        assert!(
            beating(&watcher, &expected, again).await,
            "{kind:?}: a restart keeps the addresses"
        );
        let locks = watcher
            .since(again)
            .into_iter()
            .filter(|heard| heard.topic == Topic::Lease(LeaseOp::Lock))
            .count();
        assert_eq!(locks, 3, "{kind:?}: each kept lease is locked");
        let fresh = watcher
            .since(again)
            .into_iter()
            .filter(|heard| heard.topic == Topic::Lease(LeaseOp::New))
            .count();
        assert_eq!(fresh, 0, "{kind:?}: nothing leased anew");
        assert_eq!(addresses(&config), written);
    }
}

/// The table is every network controller's: a controller that started after a lease was
/// granted (and after its node stopped, so it never heard it) takes over, and leases the
/// next node another address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_primary_never_leases_an_address_twice() {
    let kind = *brokers_under_test().last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let mut first_primary = primary(dir.path(), &broker, &watcher).await;
    let first = auto_config(dir.path(), "first.toml");
    let since = Instant::now();
    let mut auto = start_auto(&first, &broker);
    let leased = [Hadd::new(10, 0), Hadd::new(10, 1), Hadd::new(10, 2)];
    assert!(beating(&watcher, &leased, since).await);
    assert!(auto.terminate(Duration::from_secs(10)));
    // A secondary that never heard those nodes; the primary killed.
    let secondary = copy_example("failover/secondary-a.toml", dir.path(), |text| {
        text.replace("key_file = \"network.key\"", "")
    });
    let _secondary = ControllerProcess::start(janitoo(), &secondary, &broker.address());
    // It has the table once it holds the records of the three leases.
    let records = watcher
        .wait_for(Duration::from_secs(10), || {
            let heard = watcher
                .since(Instant::now() - Duration::from_secs(300))
                .into_iter()
                .filter(|heard| matches!(heard.topic, Topic::LeaseRecord(_)))
                .count();
            (heard >= 3).then_some(())
        })
        .await;
    assert!(records.is_some(), "the lease records were published");
    // (The secondary reads them retained as it subscribes; give its candidacy time to show.)
    let announced = watcher
        .announced(Hadd::new(2, 0), since, Duration::from_secs(10))
        .await;
    assert!(announced, "the secondary did not announce itself");
    first_primary.kill();
    let killed = Instant::now();
    let took_over = watcher
        .wait_for(Duration::from_secs(20), || {
            watcher
                .primaries(killed)
                .into_iter()
                .any(|(_, hadd, _)| hadd == Hadd::new(2, 0))
                .then_some(())
        })
        .await;
    assert!(took_over.is_some(), "the secondary did not take over");
    let second = auto_config(dir.path(), "second.toml");
    let since = Instant::now();
    let _other = start_auto(&second, &broker);
    let next = [Hadd::new(11, 0), Hadd::new(11, 1), Hadd::new(11, 2)];
    assert!(
        beating(&watcher, &next, since).await,
        "the second auto bus got other addresses than {leased:?}: {:?}",
        addresses(&second)
    );
    assert_eq!(addresses(&second), next.map(|hadd| (hadd, Address::Leased)));
    // The operators' view: six leases; one removed by the primary, five left.
    let listed = leases_listed(&broker);
    assert_eq!(
        listed,
        leased
            .iter()
            .chain(&next)
            .map(|hadd| hadd.to_string())
            .collect::<Vec<_>>()
    );
    let removed = std::process::Command::new(janitoo())
        .args(["lease", "remove", "-b", &broker.address(), "0010/0002"])
        .output()
        .unwrap();
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let refused = std::process::Command::new(janitoo())
        .args(["lease", "remove", "-b", &broker.address(), "0010/0002"])
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(3),
        "a lease that is gone: refused"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no lease"));
    let after = leases_listed(&broker);
    assert!(!after.contains(&"0010/0002".to_owned()), "{after:?}");
    assert_eq!(after.len(), 5);
}

/// The addresses `janitoo lease list --json` prints.
fn leases_listed(broker: &BrokerProcess) -> Vec<String> {
    let output = std::process::Command::new(janitoo())
        .args(["lease", "list", "-b", &broker.address(), "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    rows.iter()
        .map(|row| row["hadd"].as_str().unwrap().to_owned())
        .collect()
}

/// The table survives a restart of everything, on a broker that keeps nothing (the embedded
/// one): the primary reads it back from its state folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_survives_a_restart_of_everything() {
    let dir = tempfile::tempdir().unwrap();
    let leased = [Hadd::new(10, 0), Hadd::new(10, 1), Hadd::new(10, 2)];
    {
        let broker = BrokerProcess::start(BrokerKind::Embedded, janitoo(), None);
        let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
        let mut primary = primary(dir.path(), &broker, &watcher).await;
        let first = auto_config(dir.path(), "first.toml");
        let since = Instant::now();
        let mut auto = start_auto(&first, &broker);
        assert!(beating(&watcher, &leased, since).await);
        assert!(auto.terminate(Duration::from_secs(10)));
        assert!(primary.terminate(Duration::from_secs(10)));
    }
    let stored = dir.path().join("janitoo-state").join("leases.json");
    let text = std::fs::read_to_string(&stored).expect("the primary's state folder");
    assert!(text.contains("\"0010/0002\""), "{text}");
    let broker = BrokerProcess::start(BrokerKind::Embedded, janitoo(), None);
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let _primary = primary(dir.path(), &broker, &watcher).await;
    let second = auto_config(dir.path(), "second.toml");
    let since = Instant::now();
    let _auto = start_auto(&second, &broker);
    let next = [Hadd::new(11, 0), Hadd::new(11, 1), Hadd::new(11, 2)];
    assert!(
        beating(&watcher, &next, since).await,
        "{:?}",
        addresses(&second)
    );
}

/// A stranger asks for 10,000 leases, each under a new name, as fast as it can: the lease
/// requests' budget drops most unread, the table grants at most 64 unconfirmed leases, and the
/// primary beats on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_lease_requests_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let primary_process = primary(dir.path(), &broker, &watcher).await;
    let pid = primary_process.pid().to_string();
    let before = janitoo_integration_tests::procfs::rss_kib(&pid);
    let stranger = janitoo_integration_tests::client::Client::connect(broker.port).await;
    let flood = Instant::now();
    for at in 0..10_000 {
        let request = format!(
            r#"{{"rep_uuid":"s-{at}","add_ctrl":-1,"add_node":-1,"options":{{"name":"s{at}","location":"x"}}}}"#
        );
        stranger.publish("/dhcp/lease/new", request).await;
    }
    // The primary beats on through it and after it.
    let after_flood = Instant::now();
    let beats = watcher
        .wait_for(Duration::from_secs(10), || {
            (watcher
                .primaries(after_flood)
                .iter()
                .filter(|(_, hadd, _)| *hadd == Hadd::new(1, 0))
                .count()
                >= 3)
                .then_some(())
        })
        .await;
    assert!(beats.is_some(), "the primary stopped beating");
    let gaps: Vec<Duration> = watcher
        .primaries(flood)
        .windows(2)
        .map(|pair| pair[1].0 - pair[0].0)
        .collect();
    let worst = gaps.iter().max().copied().unwrap_or_default();
    assert!(worst < Duration::from_secs(2), "a beat waited {worst:?}");
    let listed = leases_listed(&broker);
    assert!(
        !listed.is_empty() && listed.len() <= 64,
        "{} leases granted to a stranger",
        listed.len()
    );
    let mut operator = janitoo_integration_tests::client::Client::connect(broker.port).await;
    operator
        .subscribe(&Topic::NodeReply(janitoo_integration_tests::client::CLIENT_HADD).to_string())
        .await;
    let dropped = operator
        .metric(Hadd::new(1, 0), "mqtt_leases_over_budget")
        .await;
    assert!(dropped > 0.0, "the flood was not bounded by the budget");
    let after = janitoo_integration_tests::procfs::rss_kib(&pid);
    eprintln!(
        "10,000 lease/new in {:?}: {} granted, {dropped} dropped unread, worst beat gap {worst:?}, RSS {} -> {} MiB",
        after_flood - flood,
        listed.len(),
        before / 1024,
        after / 1024
    );
    assert!(
        after < before + 10 * 1024,
        "the primary grew by {} MiB",
        (after - before) / 1024
    );
}

/// Two primaries leased one address apart (a partition): the lease that stands is the other
/// node's. The auto controller that lost it hears the record, the primary confirms (its lock is
/// refused), and it leases anew, its components with it, while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_displaced_auto_bus_moves_to_a_new_lease() {
    let dir = tempfile::tempdir().unwrap();
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let since = Instant::now();
    let _primary = primary(dir.path(), &broker, &watcher).await;
    let (_, _, epoch) = watcher.primaries(since)[0];
    let config = auto_config(dir.path(), "orchard.toml");
    let started = Instant::now();
    let _auto = start_auto(&config, &broker);
    let leased = [Hadd::new(10, 0), Hadd::new(10, 1), Hadd::new(10, 2)];
    assert!(beating(&watcher, &leased, started).await);
    // The other side's lease of 0010/0000, as its primary published it: same epoch, a name
    // that stands on a tie.
    let other = janitoo_integration_tests::client::Client::connect(broker.port).await;
    let record = format!(
        r#"{{"epoch":{epoch},"name":"Aardvark","location":"barn","cmd_classes":"0x0000","state":"ONLINE","confirmed":true}}"#
    );
    let healed = Instant::now();
    other
        .publish_retained("/dhcp/leases/0010/0000", record)
        .await;
    let moved = [Hadd::new(11, 0), Hadd::new(11, 1), Hadd::new(11, 2)];
    assert!(
        beating(&watcher, &moved, healed).await,
        "the displaced bus did not move: {:?}",
        addresses(&config)
    );
    assert_eq!(
        addresses(&config),
        moved.map(|hadd| (hadd, Address::Leased))
    );
}

/// A new primary may hold another side's leases (a healed partition): a running auto
/// controller locks each of its leases again with it, and stays where it is when they are its.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_auto_bus_locks_its_leases_again_with_a_new_primary() {
    let dir = tempfile::tempdir().unwrap();
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let mut first_primary = primary(dir.path(), &broker, &watcher).await;
    let secondary = copy_example("failover/secondary-a.toml", dir.path(), |text| {
        text.replace("key_file = \"network.key\"", "")
    });
    let mut second = ControllerProcess::start(janitoo(), &secondary, &broker.address());
    let config = auto_config(dir.path(), "orchard.toml");
    let started = Instant::now();
    let _auto = start_auto(&config, &broker);
    let leased = [Hadd::new(10, 0), Hadd::new(10, 1), Hadd::new(10, 2)];
    assert!(beating(&watcher, &leased, started).await);
    let announced = watcher
        .announced(Hadd::new(2, 0), started, Duration::from_secs(10))
        .await;
    assert!(announced, "the secondary did not announce itself");
    // Whichever acts as primary now is killed; the other takes over with a new epoch.
    // The controller's watch hears the primary before it goes (two beats since its start).
    let beats = watcher
        .wait_for(Duration::from_secs(10), || {
            let beats = watcher.primaries(started);
            (beats.len() >= 2).then_some(beats)
        })
        .await
        .expect("the primary's beats");
    let (_, acting, epoch) = *beats.last().expect("a primary beat");
    if acting == Hadd::new(1, 0) {
        first_primary.kill();
    } else {
        second.kill();
    }
    let killed = Instant::now();
    let took_over = watcher
        .wait_for(Duration::from_secs(20), || {
            watcher
                .primaries(killed)
                .into_iter()
                .find(|(_, hadd, new)| *hadd != acting && *new != epoch)
                .map(|(at, _, _)| at)
        })
        .await
        .expect("the other controller took over");
    let locks = watcher
        .wait_for(Duration::from_secs(10), || {
            let locks = watcher
                .since(took_over)
                .into_iter()
                .filter(|heard| heard.topic == Topic::Lease(LeaseOp::Lock))
                .count();
            (locks >= 3).then_some(locks)
        })
        .await;
    assert_eq!(
        locks,
        Some(3),
        "each lease locked again with the new primary"
    );
    // Its own: it stays.
    let after = Instant::now();
    assert!(beating(&watcher, &leased, after).await);
    assert_eq!(
        addresses(&config),
        leased.map(|hadd| (hadd, Address::Leased))
    );
}

/// `deploy/examples/minimal.toml` on `hadd` 0010 (fixed, beating every second), as `name`.
fn fixed_on_0010(dir: &Path, name: &str) -> PathBuf {
    let config = copy_example("minimal.toml", dir, |text| {
        text.replace("\"0300/", "\"0010/")
            .replace("location = \"Shed\"", "location = \"Shed\"\nheartbeat = 1")
    });
    let renamed = dir.join(name);
    std::fs::rename(&config, &renamed).unwrap();
    renamed
}

/// Two processes on one address (item 4): a fixed bus started on the address of a running
/// auto bus (given by hand, or leased while the fixed one was down and never heard) is found
/// by the auto one, which moves to a new lease with its components; the fixed one stays.
/// Two fixed processes on one address both stay, and count what they hear
/// (`duplicate_addresses`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_bus_sharing_its_address_with_a_fixed_one_moves() {
    let dir = tempfile::tempdir().unwrap();
    let kind = *brokers_under_test().last().unwrap();
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let _primary = primary(dir.path(), &broker, &watcher).await;
    let config = auto_config(dir.path(), "orchard.toml");
    let started = Instant::now();
    let _auto = start_auto(&config, &broker);
    let leased = [Hadd::new(10, 0), Hadd::new(10, 1), Hadd::new(10, 2)];
    assert!(beating(&watcher, &leased, started).await);
    let fixed_config = fixed_on_0010(dir.path(), "garden.toml");
    let arrived = Instant::now();
    let _fixed = ControllerProcess::start(janitoo(), &fixed_config, &broker.address());
    let moved = [Hadd::new(11, 0), Hadd::new(11, 1), Hadd::new(11, 2)];
    assert!(
        beating(&watcher, &moved, arrived).await,
        "the auto bus did not move off the shared address: {:?}",
        addresses(&config)
    );
    assert_eq!(
        addresses(&config),
        moved.map(|hadd| (hadd, Address::Leased)),
        "the new lease is written into the file"
    );
    let after_move = Instant::now();
    let fixed = [Hadd::new(10, 0), Hadd::new(10, 1)];
    assert!(
        beating(&watcher, &fixed[..1], after_move).await,
        "the fixed bus stays on its address"
    );
    // The auto bus's stop before its move said nothing of the fixed node: no OFFLINE, from
    // it or on its behalf.
    let offline: Vec<_> = watcher
        .since(arrived)
        .into_iter()
        .filter_map(|heard| match heard.message {
            Message::Heartbeat(beat) if beat.state != NodeState::Online => Some(beat),
            _ => None,
        })
        .filter(|beat| fixed.iter().any(|hadd| beat.target.covers(*hadd)))
        .collect();
    assert_eq!(offline, Vec::new(), "the fixed node was told down");
    // A second fixed process on the same addresses: nobody can move, both count.
    let twin_config = fixed_on_0010(dir.path(), "garden-twin.toml");
    let twin_started = Instant::now();
    let _twin = ControllerProcess::start(janitoo(), &twin_config, &broker.address());
    let mut client = janitoo_integration_tests::client::Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = 0.0;
    while Instant::now() < deadline && found < 1.0 {
        found = client.metric(Hadd::new(10, 0), "duplicate_addresses").await;
        if found < 1.0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(
        found >= 1.0,
        "a fixed process did not count the other on its address within 30 s of {:?}",
        twin_started.elapsed()
    );
    assert_eq!(
        addresses(&twin_config),
        fixed.map(|hadd| (hadd, Address::Fixed)),
        "a fixed address never moves"
    );
    // `janitoo status` shows it: the processes say so every 2 s while it lasts.
    let status = std::process::Command::new(janitoo())
        .args(["status", "--broker", &broker.address(), "--wait", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("0010/0000  ! two processes beat on this address"),
        "{text}"
    );
    assert!(
        !text.contains("0011/0000  !"),
        "the moved auto bus is alone: {text}"
    );
}
