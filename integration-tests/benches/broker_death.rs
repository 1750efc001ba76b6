//! A broker's death: from the kill (SIGKILL) of the broker the primary uses to
//! - every process heard again (each controller's node and the tutorial's rpibasic bus beat again
//!   after the kill: the processes of the dead broker once reconnected elsewhere, the others at
//!   their next beat, 1 s for the controllers, 2 s for the tutorial here);
//! - a correct network: every process heard again, and one primary beating (the first beat of
//!   the primary that stays, two beats in a row at least);
//! - retained writes accepted again: a QoS 1 retained publication acknowledged by a survivor
//!   (sent again every 500 ms until one is).
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench broker_death`
//!
//! On the NATS cluster of `deploy/nats/` (three servers; `nats-server` needed) and on two
//! Mosquittos bridged by `deploy/mosquitto/bridge.conf`: the failover example (keyed) and the
//! tutorial, each process with its own order of the brokers (its own Pi's first).
//! `JANITOO_BROKER_DEATH_ROUNDS` kills per backbone (default 10), each on a house started
//! afresh (the primary's Pi's broker is killed, its processes live on; on NATS also, in rounds
//! of their own, the server that leads JetStream's MQTT sessions), judged 20 s after the
//! kill, then the processes stopped and the broker started again. Counted over all kills:
//! false states (PENDING, FAILED, DEAD or OFFLINE told of a live process);
//! `JANITOO_BROKER_DEATH_STANDBY=off` runs it without the standby connections, to compare;
//! `JANITOO_BROKER_DEATH_ONLY=leader` (a part of a name) runs only the kills so named. Then the round trip of a get (200, median) to the tutorial through one NATS
//! server of the cluster and through one Mosquitto, in the same run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::nats::{nats_server_path, NatsCluster, Security};
use janitoo_integration_tests::network::{FailoverNetwork, CONTROLLERS};
use janitoo_integration_tests::pair::{Backbone, MosquittoPair};
use janitoo_integration_tests::process::{
    mosquitto_path, BrokerKind, BrokerProcess, ControllerProcess,
};
use janitoo_integration_tests::watch::Watcher;
use janitoo_protocol::{CommandClass, Genre, Hadd, Message, NodeState, Request, Topic};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::time::Instant;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

/// The tutorial's bus's heartbeat period, seconds.
const TUTORIAL_PERIOD_S: u32 = 2;

const FILTERS: [&str; 3] = [
    "/dhcp/heartbeat/#",
    "/dhcp/resolv/heartbeat",
    "/values/system/+/+/network_controller",
];

/// The nodes whose beats say their process is connected: the controllers' and the tutorial's
/// rpibasic bus.
fn beacons() -> Vec<Hadd> {
    CONTROLLERS
        .iter()
        .map(|(hadd, _)| *hadd)
        .chain([Hadd::new(220, 0)])
        .collect()
}

/// The broker the primary uses.
fn primarys<B>(_: &B, primarys: usize) -> usize {
    primarys
}

/// `JANITOO_BROKER_DEATH_STANDBY=off`: every process without its standby connection
/// (`[broker] standby = false`), to compare.
fn standby_off() -> bool {
    std::env::var("JANITOO_BROKER_DEATH_STANDBY").is_ok_and(|value| value == "off")
}

fn rounds() -> usize {
    std::env::var("JANITOO_BROKER_DEATH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
}

/// The first beat of `hadd` (ONLINE, its own) heard by `watcher` since `since`.
fn beat_since(watcher: &Watcher, hadd: Hadd, since: Instant) -> Option<Instant> {
    watcher
        .since(since)
        .into_iter()
        .find_map(|heard| match (heard.topic, heard.message) {
            (Topic::Heartbeat(from), Message::Heartbeat(beat))
                if from == hadd && beat.state == NodeState::Online =>
            {
                Some(heard.at)
            }
            _ => None,
        })
}

/// A retained QoS 1 publication to `port`, sent again every 500 ms until acknowledged: when.
async fn retained_accepted(port: u16, limit: Duration) -> Option<Instant> {
    let id = format!("janitoo-bench-retained-{}", rand::random::<u32>());
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 100);
    let deadline = Instant::now() + limit;
    let mut next_send = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            let _ = client.try_publish("janitoo/bench/retained", QoS::AtLeastOnce, true, "probe");
            next_send = Instant::now() + Duration::from_millis(500);
        }
        match tokio::time::timeout_at(next_send.min(deadline), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => return Some(Instant::now()),
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Ok(_)) | Err(_) => {}
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    None
}

fn summary(what: &str, mut samples: Vec<Duration>) {
    if samples.is_empty() {
        println!("{what}: no sample");
        return;
    }
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1e3
    };
    println!(
        "{what}: {} kills, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}

/// Kills, round after round, a broker of `brokers` (`count` of them): the one `victim` picks
/// given the one the primary uses.
async fn deaths<B: Backbone>(
    name: &str,
    mut brokers: B,
    count: usize,
    order_of: fn(Hadd) -> Vec<usize>,
    victim: fn(&B, usize) -> usize,
) {
    if std::env::var("JANITOO_BROKER_DEATH_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let janitoo = Path::new(JANITOO);
    let all: Vec<usize> = (0..count).collect();
    let mut watchers = Vec::new();
    for at in 0..count {
        watchers.push(Watcher::start("127.0.0.1", brokers.port(at), &FILTERS).await);
    }
    let (mut heard_again, mut correct, mut retained) = (Vec::new(), Vec::new(), Vec::new());
    let mut false_states = 0;
    for round in 0..rounds() {
        // Each round starts the house afresh, every process on its own Pi's broker (processes
        // stay where they are once moved: rounds on a house already moved would kill the
        // broker of everyone at once, which is easier).
        let start = Instant::now();
        let net = FailoverNetwork::launch(
            janitoo,
            &brokers.addresses(&all),
            |hadd| Some((Command::new(janitoo), brokers.addresses(&order_of(hadd)))),
            |text| match standby_off() {
                true => text.replacen("[broker]\n", "[broker]\nstandby = false\n", 1),
                false => text,
            },
            // As in t42: the tutorial's bus beats every 2 s, so that its silence would be told
            // within 7 s (a NATS server takes no new connection for 4 to 9 s after a leader
            // died: the standby connection carries its beats meanwhile).
            |text| {
                let text = text.replacen(
                    "heartbeat = 30",
                    &format!("heartbeat = {TUTORIAL_PERIOD_S}"),
                    1,
                );
                match standby_off() {
                    true => text + "\n[broker]\nstandby = false\n",
                    false => text,
                }
            },
        );
        let (primary, _) = janitoo_integration_tests::network::network_up(
            &watchers[0],
            start,
            Duration::from_secs(60),
        )
        .await
        .expect("the network did not come up");
        watchers[0]
            .wait_for(Duration::from_secs(30), || {
                beat_since(&watchers[0], Hadd::new(220, 0), start)
            })
            .await
            .expect("the tutorial never beat");
        let survivor_watch = |dead: usize| (dead + 1) % count;
        // The broker the primary uses: its position in its own list.
        let mut operator = Client::connect(brokers.port(0)).await;
        operator.subscribe("/nodes/9999/9990/reply").await;
        let position = operator.metric(primary, "bridge_broker_position").await as usize;
        drop(operator);
        let dead = victim(&brokers, order_of(primary)[position]);
        let watcher = &watchers[survivor_watch(dead)];
        let killed = Instant::now();
        brokers.kill(dead);
        // Both waited on at once: a retained write that stalls must not delay the watch.
        let retained_wait =
            retained_accepted(brokers.port(survivor_watch(dead)), Duration::from_secs(60));
        let watch = watcher.wait_for(Duration::from_secs(60), || {
            let beats: Vec<Instant> = beacons()
                .into_iter()
                .map(|hadd| beat_since(watcher, hadd, killed))
                .collect::<Option<_>>()?;
            let all_heard = beats.into_iter().max()?;
            // The primary that stays: the last run of beats from one controller, two at least
            // (one beat is no settled primary); correct from its first, once all are heard.
            let primaries = watcher.primaries(all_heard);
            let last = primaries.last()?.1;
            let run = primaries
                .iter()
                .rev()
                .take_while(|(_, hadd, _)| *hadd == last)
                .count();
            let first = primaries[primaries.len() - run].0;
            (run >= 2).then_some((all_heard, first.max(all_heard)))
        });
        let (retained_at, found) = tokio::join!(retained_wait, watch);
        let Some((all_heard, correct_at)) = found else {
            panic!("{name} round {round}: the network was not whole again within 60 s");
        };
        heard_again.push(all_heard - killed);
        correct.push(correct_at - killed);
        if let Some(at) = retained_at {
            retained.push(at - killed);
        }
        eprintln!(
            "{name} round {round}: broker {dead} killed (the primary {primary} used {}): heard again {:?}, correct {:?}, retained {:?}",
            order_of(primary)[position],
            all_heard - killed,
            correct_at - killed,
            retained_at.map(|at| at - killed)
        );
        // Who beat as primary, in runs: a late correct network says why.
        let mut runs: Vec<(Hadd, u64, Duration, Duration, usize)> = Vec::new();
        for (at, hadd, epoch) in watcher.primaries(killed) {
            let at = at - killed;
            match runs.last_mut() {
                Some(run) if (run.0, run.1) == (hadd, epoch) => (run.3, run.4) = (at, run.4 + 1),
                _ => runs.push((hadd, epoch, at, at, 1)),
            }
        }
        let runs: Vec<String> = runs
            .iter()
            .map(|(hadd, epoch, from, to, beats)| {
                format!("{hadd} epoch {epoch} {from:.1?}..{to:.1?} ({beats})")
            })
            .collect();
        eprintln!("{name} round {round}: primaries heard: {}", runs.join(", "));
        // The judgement of the silent ones comes within three of their periods: waited out.
        tokio::time::sleep_until(killed + Duration::from_secs(20)).await;
        let told: Vec<_> = watcher
            .dispatches(killed)
            .into_iter()
            .filter(|d| {
                matches!(
                    d.state,
                    NodeState::Pending | NodeState::Failed | NodeState::Dead | NodeState::Offline
                )
            })
            .collect();
        for d in &told {
            eprintln!(
                "{name} round {round}: FALSE {} told {:?} by {:?}, {:?} after the kill",
                d.node,
                d.state,
                d.observer,
                d.at - killed
            );
        }
        false_states += told.len();
        drop(net);
        brokers.restart(dead);
    }
    summary(
        &format!("{name}: broker killed -> every process heard again"),
        heard_again,
    );
    summary(
        &format!("{name}: broker killed -> a correct network"),
        correct,
    );
    summary(
        &format!("{name}: broker killed -> retained writes accepted again"),
        retained,
    );
    println!("{name}: {false_states} false states told over all kills");
}

/// Median round trip of 200 gets of the tutorial's ambiance name, through `port`.
async fn get_round_trip(port: u16) -> Duration {
    let mut client = Client::connect(port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let hadd = Hadd::new(220, 1);
    let get = || Request::get(hadd, "name", Genre::Config, CommandClass::CONFIGURATION);
    client
        .ask_until_answered(get, Duration::from_secs(30))
        .await;
    let mut samples = Vec::new();
    for _ in 0..200 {
        let began = std::time::Instant::now();
        client.ask(get()).await;
        samples.push(began.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let nats = nats_server_path().expect("nats-server is needed (apt-get install nats-server)");
    let mosquitto = mosquitto_path().expect("Mosquitto is needed");
    let three = |hadd: Hadd| match hadd.ctrl {
        1 => vec![0, 1, 2],
        2 => vec![1, 2, 0],
        _ => vec![2, 0, 1],
    };
    let two = |hadd: Hadd| match hadd.ctrl {
        1 => vec![0, 1],
        _ => vec![1, 0],
    };
    deaths(
        "NATS, the primary's server",
        NatsCluster::start(&nats, Security::Plain),
        3,
        three,
        primarys,
    )
    .await;
    // The server that leads MQTT's sessions: its processes, whichever they are, must move while
    // JetStream elects a new leader, and no new connection is taken meanwhile.
    let sessions_leader = |cluster: &NatsCluster, primarys: usize| {
        cluster.stream_leader("$MQTT_sess").unwrap_or(primarys)
    };
    deaths(
        "NATS, the sessions' leader",
        NatsCluster::start(&nats, Security::Plain),
        3,
        three,
        sessions_leader,
    )
    .await;
    deaths(
        "Mosquitto pair",
        MosquittoPair::start(&mosquitto),
        2,
        two,
        primarys,
    )
    .await;

    // A get through each broker, in the same run.
    let cluster = NatsCluster::start(&nats, Security::Plain);
    let dir = tempfile::tempdir().unwrap();
    let config =
        janitoo_integration_tests::network::copy_example("tutorial.toml", dir.path(), |t| t);
    let through_nats = {
        let _tutorial = ControllerProcess::start_with(
            Path::new(JANITOO),
            &config,
            &["--broker", &cluster.address(0), "--simulate"],
        );
        get_round_trip(cluster.servers[1].mqtt_port).await
    };
    let mosquitto = BrokerProcess::start(BrokerKind::Mosquitto, Path::new(JANITOO), None);
    let through_mosquitto = {
        let _tutorial = ControllerProcess::start_with(
            Path::new(JANITOO),
            &config,
            &["--broker", &mosquitto.address(), "--simulate"],
        );
        get_round_trip(mosquitto.port).await
    };
    println!(
        "a get's round trip, median of 200: through NATS (tutorial on pi1, client on pi2) {:.2} ms, through one Mosquitto {:.2} ms ({:.1}x)",
        through_nats.as_secs_f64() * 1e3,
        through_mosquitto.as_secs_f64() * 1e3,
        through_nats.as_secs_f64() / through_mosquitto.as_secs_f64()
    );
}
