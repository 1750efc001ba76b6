//! No single point of failure: the NATS cluster of `deploy/nats/` (three servers, JetStream,
//! MQTT), the failover example and the tutorial server, every process given the three servers
//! in its own order (`--broker a,b,c`). "A Pi" dies: a server killed together with the processes
//! that use it. The house goes on: a new primary, every live node heard again, nothing false
//! told, Home Assistant's retained topics held by the survivors. Needs nats-server (mandatory
//! with `JANITOO_TEST_NATS`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::nats::{nats_server, password, NatsCluster, Security};
use janitoo_integration_tests::network::{self, FailoverNetwork};
use janitoo_integration_tests::pair::{Backbone, MosquittoPair};
use janitoo_integration_tests::process::mosquitto_path;
use janitoo_integration_tests::require;
use janitoo_integration_tests::retained::{availability, RetainedView};
use janitoo_integration_tests::watch::{Dispatch, Watcher};
use janitoo_protocol::{Hadd, Message, NodeState, Topic};
use tokio::time::Instant;

const FILTERS: [&str; 3] = [
    "/dhcp/heartbeat/#",
    "/dhcp/resolv/heartbeat",
    "/values/system/+/+/network_controller",
];

const PRIMARY: Hadd = Hadd::new(1, 0);

/// The tutorial's bus's heartbeat period, seconds: its silence is told PENDING after 6.6 s. After
/// a server dies, NATS takes no new connection until JetStream has elected new leaders (4 to 9 s
/// when the dead server led): the tutorial, moving off it, is heard meanwhile through its
/// standby connection (with `[broker] standby = false` this test tells it PENDING when the dead
/// server led).
const TUTORIAL_PERIOD_S: u32 = 2;
const AMBIANCE: Hadd = Hadd::new(220, 1);

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

/// The house: the brokers, the failover controllers and the tutorial, each process given the
/// brokers in its own order, a watcher on one broker.
struct House<B: Backbone> {
    brokers: B,
    net: FailoverNetwork,
    watcher: Watcher,
    primary: Hadd,
}

/// Each controller's order of three servers: its own Pi's first (0001 on pi1, 0002 on pi2,
/// 0003 on pi3).
fn order_of_three(hadd: Hadd) -> Vec<usize> {
    match hadd.ctrl {
        1 => vec![0, 1, 2],
        2 => vec![1, 2, 0],
        _ => vec![2, 0, 1],
    }
}

/// Each controller's order of a pair: 0001 on pi1, 0002 and 0003 on pi2.
fn order_of_two(hadd: Hadd) -> Vec<usize> {
    match hadd.ctrl {
        1 => vec![0, 1],
        _ => vec![1, 0],
    }
}

impl<B: Backbone> House<B> {
    async fn start(
        brokers: B,
        order_of: fn(Hadd) -> Vec<usize>,
        tutorial_order: &[usize],
        watch_on: usize,
    ) -> House<B> {
        let started = Instant::now();
        let net = FailoverNetwork::launch(
            janitoo(),
            &brokers.addresses(tutorial_order),
            |hadd| Some((Command::new(janitoo()), brokers.addresses(&order_of(hadd)))),
            // Home Assistant's discovery, from whichever controller is primary.
            |text| text + "\n[homeassistant]\n",
            // The rpibasic bus beats every few seconds: its silence is noticed in seconds.
            |text| {
                text.replacen(
                    "heartbeat = 30",
                    &format!("heartbeat = {TUTORIAL_PERIOD_S}"),
                    1,
                )
            },
        );
        let watcher = Watcher::start("127.0.0.1", brokers.port(watch_on), &FILTERS).await;
        let (primary, _) = network::network_up(&watcher, started, Duration::from_secs(40))
            .await
            .expect("no primary, or not every controller heard");
        let house = House {
            brokers,
            net,
            watcher,
            primary,
        };
        house
            .heard_from(AMBIANCE, started, Duration::from_secs(30))
            .await
            .expect("the tutorial's ambiance node never beat");
        house
    }
    /// Waits until node `hadd` beats ONLINE itself since `since`.
    async fn heard_from(&self, hadd: Hadd, since: Instant, limit: Duration) -> Option<Instant> {
        self.watcher
            .wait_for(limit, || {
                self.watcher.since(since).into_iter().find_map(|heard| {
                    match (heard.topic, heard.message) {
                        (Topic::Heartbeat(from), Message::Heartbeat(beat))
                            if from == hadd && beat.state == NodeState::Online =>
                        {
                            Some(heard.at)
                        }
                        _ => None,
                    }
                })
            })
            .await
    }

    /// A new primary, other than `gone`, beating since `since`.
    async fn new_primary(
        &self,
        gone: Hadd,
        since: Instant,
        limit: Duration,
    ) -> Option<(Instant, Hadd)> {
        self.watcher
            .wait_for(limit, || {
                self.watcher
                    .primaries(since)
                    .into_iter()
                    .find(|(_, hadd, _)| *hadd != gone)
                    .map(|(at, hadd, _)| (at, hadd))
            })
            .await
    }

    /// The failures dispatched since `since` about nodes other than `dead`.
    fn false_failures(&self, since: Instant, dead: &[Hadd]) -> Vec<Dispatch> {
        self.watcher
            .dispatches(since)
            .into_iter()
            .filter(|d| {
                matches!(
                    d.state,
                    NodeState::Pending | NodeState::Failed | NodeState::Dead | NodeState::Offline
                ) && !dead.iter().any(|dead| dead.ctrl == d.node.ctrl)
            })
            .collect()
    }
}

/// The Pi of the primary and of the tutorial dies: its broker and the primary's process killed
/// together (the tutorial's broker gone under it). A secondary on another Pi takes over; the
/// tutorial moves to the next broker and is heard again, never told anything false; the dead
/// primary is told by its silence (its Will died with its broker); Home Assistant's discovery
/// configs and the tutorial's availability are still retained on the survivor `read_on`.
async fn the_primarys_pi_dies<B: Backbone>(mut house: House<B>, read_on: usize) {
    assert_eq!(house.primary, PRIMARY, "0001 is the example's primary");
    let mut retained = RetainedView::connect(house.brokers.port(read_on)).await;
    retained
        .wait_for(Duration::from_secs(20), |held| {
            (held.get(&availability("0220_0001")).map(Vec::as_slice) == Some(b"online".as_slice()))
                .then_some(())
        })
        .await
        .expect("the tutorial's availability was never retained");

    // The Pi dies: its broker and its controller at once.
    house.brokers.kill(0);
    house.net.controller(PRIMARY).signal("KILL");
    let died = Instant::now();

    let (took_over, primary) = house
        .new_primary(PRIMARY, died, Duration::from_secs(15))
        .await
        .expect("no secondary took over after the primary's Pi died");
    eprintln!("{primary} primary {:?} after the Pi died", took_over - died);
    let back = house
        .heard_from(AMBIANCE, died, Duration::from_secs(15))
        .await
        .expect("the tutorial was not heard again on a surviving broker");
    eprintln!(
        "the tutorial heard again {:?} after the Pi died",
        back - died
    );
    // The dead primary is told by its silence.
    let told = house
        .watcher
        .wait_for(Duration::from_secs(20), || {
            house.watcher.dispatches(died).into_iter().find(|d| {
                d.node == PRIMARY && matches!(d.state, NodeState::Pending | NodeState::Failed)
            })
        })
        .await;
    assert!(
        told.is_some(),
        "the dead primary was never told by its silence"
    );
    // Nobody alive was told anything false, through the takeover and past the tutorial's
    // three missed periods (an absence: its whole window is waited out).
    let judged = Duration::from_secs_f64(3.3 * f64::from(TUTORIAL_PERIOD_S) + 1.0);
    tokio::time::sleep_until(died + judged).await;
    let failures = house.false_failures(died, &[PRIMARY]);
    assert_eq!(failures, [], "a false state after the death of a Pi");
    // Home Assistant, pointed at a surviving broker, still reads the configs and the
    // tutorial's availability.
    let mut late = RetainedView::connect(house.brokers.port(read_on)).await;
    let configs = late
        .wait_for(Duration::from_secs(15), |held| {
            let configs = janitoo_integration_tests::retained::configs_in(held);
            let online = held.get(&availability("0220_0001")).map(Vec::as_slice)
                == Some(b"online".as_slice());
            (configs.len() >= 3 && online).then_some(configs.len())
        })
        .await
        .unwrap_or_else(|| {
            let held: Vec<_> = late
                .held
                .iter()
                .map(|(topic, payload)| format!("{topic} {}", String::from_utf8_lossy(payload)))
                .collect();
            panic!(
                "the discovery configs or the availability are not retained on the survivors; held: {held:#?}"
            )
        });
    eprintln!("{configs} discovery configs retained on a survivor after the Pi died");
    let _ = retained.received_count();
}

/// On the NATS cluster: pi1 (the primary's and the tutorial's) dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_death_of_the_primarys_pi_leaves_the_house_running_on_nats() {
    let Some(nats) = nats_server() else { return };
    let cluster = NatsCluster::start(&nats, Security::Plain);
    let house = House::start(cluster, order_of_three, &[0, 1, 2], 2).await;
    the_primarys_pi_dies(house, 1).await;
}

/// On two Mosquittos bridged (`deploy/mosquitto/bridge.conf`): pi1, which holds the bridge,
/// the primary and the tutorial, dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_death_of_the_primarys_pi_leaves_the_house_running_on_a_bridged_pair() {
    let available = mosquitto_path();
    let Some(()) = require::runs(
        "JANITOO_TEST_MOSQUITTO",
        available.is_some(),
        "Mosquitto is not installed",
    ) else {
        return;
    };
    let pair = MosquittoPair::start(&available.unwrap());
    let house = House::start(pair, order_of_two, &[0, 1], 1).await;
    the_primarys_pi_dies(house, 1).await;
}

/// The server that leads JetStream's MQTT sessions dies, every process alive: those on it must
/// move while NATS takes no new connection (4 to 9 s, JetStream electing a new leader). Their
/// standby connections carry their beats meanwhile: each is heard again within a couple of
/// seconds, and nobody is told PENDING or FAILED (with `[broker] standby = false`, whoever was
/// on the dead server was told PENDING at 3.3 s and FAILED at 6.6 s: the broker_death bench).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_moving_off_the_sessions_leader_are_heard_throughout() {
    let Some(nats) = nats_server() else { return };
    let cluster = NatsCluster::start(&nats, Security::Plain);
    let mut house = House::start(cluster, order_of_three, &[0, 1, 2], 0).await;
    let leader = house
        .brokers
        .stream_leader("$MQTT_sess")
        .expect("no server logged that it leads $MQTT_sess");
    house.watcher =
        Watcher::start("127.0.0.1", house.brokers.port((leader + 1) % 3), &FILTERS).await;
    let subscribed = Instant::now();
    house
        .heard_from(PRIMARY, subscribed, Duration::from_secs(10))
        .await
        .expect("the watcher on a survivor hears nothing");
    let moving: Vec<Hadd> = [PRIMARY, Hadd::new(2, 0), Hadd::new(3, 0), Hadd::new(220, 0)]
        .into_iter()
        .filter(|hadd| match hadd.ctrl {
            220 => leader == 0,
            _ => order_of_three(*hadd)[0] == leader,
        })
        .collect();
    assert!(!moving.is_empty(), "every server has a process first");

    house.brokers.kill(leader);
    let killed = Instant::now();
    for hadd in &moving {
        let heard = house
            .heard_from(*hadd, killed, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("{hadd} was never heard again"));
        eprintln!(
            "{hadd}, on the dead server, heard again {:?} after",
            heard - killed
        );
        // Its next beat or the one after: 1 s apart for a controller, 2 s for the tutorial.
        let period = if hadd.ctrl == 220 {
            TUTORIAL_PERIOD_S
        } else {
            1
        };
        assert!(
            heard - killed < Duration::from_secs((2 * period + 1).into()),
            "{hadd} was silent {:?} while it moved: its standby connection carried nothing",
            heard - killed
        );
    }
    // Past the stall and the tutorial's three missed periods.
    let judged = Duration::from_secs_f64(9.0 + 3.3 * f64::from(TUTORIAL_PERIOD_S));
    tokio::time::sleep_until(killed + judged).await;
    let failures = house.false_failures(killed, &[]);
    assert_eq!(
        failures,
        [],
        "a process moving off a dead server was told something false"
    );
}

/// A node server dies together with its server (the tutorial on pi2, both killed): its Will
/// was held by the dead server and never comes, so the primary tells it by its silence
/// (PENDING, then FAILED), never leaving it ONLINE. The controllers on the survivors stay
/// quiet about each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_server_dying_with_its_server_is_told_by_its_silence() {
    let Some(nats) = nats_server() else { return };
    let cluster = NatsCluster::start(&nats, Security::Plain);
    let mut house = House::start(cluster, order_of_three, &[1, 2, 0], 0).await;
    // Where the tutorial is (a failed first connect moves a process on): its system value.
    let mut operator = Client::connect(house.brokers.port(0)).await;
    operator.subscribe("/values/system/+/+/bridge_broker").await;
    let address = operator
        .next_matching(Duration::from_secs(25), |heard| {
            heard.topic.starts_with("/values/system/022")
        })
        .await
        .and_then(|heard| match heard.message() {
            Message::Value(publication) => publication
                .instances()
                .first()
                .and_then(|value| value.data.as_str().map(str::to_owned)),
            _ => None,
        })
        .expect("the tutorial's bridge_broker never published");
    let server = (0..3)
        .find(|at| address == format!("127.0.0.1:{}", house.brokers.port(*at)))
        .expect("the tutorial's broker is one of the cluster's");
    let watcher = Watcher::start("127.0.0.1", house.brokers.port((server + 1) % 3), &FILTERS).await;
    house.brokers.kill(server);
    house.net.tutorial.kill();
    let died = Instant::now();
    let told = watcher
        .wait_for(Duration::from_secs(40), || {
            watcher.dispatches(died).into_iter().find(|d| {
                d.node.ctrl == AMBIANCE.ctrl
                    && matches!(d.state, NodeState::Pending | NodeState::Failed)
            })
        })
        .await;
    let told = told.unwrap_or_else(|| {
        panic!(
            "the tutorial, dead with its server, was never told by its silence; dispatches since: {:?}",
            watcher.dispatches(died)
        )
    });
    eprintln!(
        "the tutorial (on pi{}) told {:?} {:?} after its Pi died",
        server + 1,
        told.state,
        told.at - died
    );
    let offline = watcher
        .dispatches(died)
        .into_iter()
        .find(|d| d.node.ctrl == AMBIANCE.ctrl && d.state == NodeState::Offline);
    assert_eq!(
        offline, None,
        "a Will held by the dead server was published"
    );
}

/// Two servers of three killed: the survivor has no JetStream quorum, and takes no new
/// connection. What the network does then is printed (BENCHMARKS.md has it). One server comes
/// back: the network recovers (one primary, every controller and the tutorial heard), and the
/// metrics of the controller whose server died count its moves between brokers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_down_then_one_back_and_the_network_recovers() {
    let Some(nats) = nats_server() else { return };
    let cluster = NatsCluster::start(&nats, Security::Plain);
    let mut house = House::start(cluster, order_of_three, &[0, 1, 2], 2).await;
    house.brokers.kill(0);
    house.brokers.kill(1);
    let down = Instant::now();
    // 0003, connected to the survivor, takes over from 0001, cut off with its server.
    let alone = house
        .new_primary(PRIMARY, down, Duration::from_secs(15))
        .await;
    eprintln!(
        "one server of three: {}",
        match alone {
            Some((at, hadd)) => format!("{hadd} primary after {:?}", at - down),
            None => "no primary heard".into(),
        }
    );
    house.brokers.restart(1);
    let back = Instant::now();
    let (primary, _) = network::network_up(&house.watcher, back, Duration::from_secs(60))
        .await
        .expect("the network did not recover after a second server came back");
    eprintln!(
        "{primary} primary, every controller heard, {:?} after the second server came back",
        back.elapsed()
    );
    house
        .heard_from(AMBIANCE, back, Duration::from_secs(30))
        .await
        .expect("the tutorial was not heard again");
    // The controller's system value, published every 10 s, counts its moves.
    let mut operator = Client::connect(house.brokers.port(2)).await;
    let topic = "/values/system/0001/0000/bridge_broker_switches";
    operator.subscribe(topic).await;
    let switches = operator
        .next_on(topic, Duration::from_secs(25))
        .await
        .and_then(|heard| match heard.message() {
            Message::Value(publication) => publication
                .instances()
                .first()
                .and_then(|value| janitoo_protocol::value::data_as_f64(&value.data)),
            _ => None,
        })
        .expect("0001's bridge_broker_switches never published");
    assert!(
        switches >= 1.0,
        "0001 started on pi1, now dead, and counted no move: {switches}"
    );
}

/// mosquitto_pub to server `at` of `cluster` over TLS, as `account` (None: no account), at
/// QoS `qos` (1: acknowledged); whether it was taken (at most 10 s).
fn publish_as(
    cluster: &NatsCluster,
    at: usize,
    account: Option<&str>,
    qos: u8,
    (topic, payload): (&str, &str),
) -> bool {
    let mut command = Command::new("timeout");
    command
        .args(["10", "mosquitto_pub", "-h", "127.0.0.1", "-p"])
        .arg(cluster.servers[at].mqtt_port.to_string())
        .arg("--cafile")
        .arg(&cluster.pki.ca)
        .args(["-q", &qos.to_string(), "-t", topic, "-m", payload]);
    if let Some(account) = account {
        command.args(["-u", account, "-P", &password(account)]);
    }
    command.output().is_ok_and(|out| out.status.success())
}

/// The accounts of `deploy/nats/accounts.conf`, as deployed (TLS, passwords): a stranger
/// cannot connect; a node server's account cannot claim the primary, dispatch on behalf of
/// nodes or say a controller is OFFLINE (the servers drop it, across the cluster), while its
/// own heartbeats pass; an operator may ask but not dispatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_accounts_keep_node_servers_and_operators_off_the_control_plane() {
    let Some(nats) = nats_server() else { return };
    let cluster = NatsCluster::start(&nats, Security::AsDeployed);
    assert!(
        !publish_as(
            &cluster,
            0,
            None,
            1,
            ("/dhcp/heartbeat/0220/0001", "ONLINE")
        ),
        "a client without an account was taken"
    );
    // An operator listens on pi3 for everything of the control plane.
    let listener = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(cluster.servers[2].mqtt_port.to_string())
        .arg("--cafile")
        .arg(&cluster.pki.ca)
        .args(["-u", "operator", "-P", &password("operator")])
        .args(["-t", "/dhcp/#", "-v", "-C", "1", "-W", "30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let forgeries = [
        (
            "server-tutorial",
            "/dhcp/resolv/heartbeat",
            r#"{"add_ctrl":220,"add_node":0,"state":"ONLINE","epoch":14417920}"#,
        ),
        ("server-tutorial", "/dhcp/heartbeat/0001/0000", "OFFLINE"),
        (
            "server-tutorial",
            "/dhcp/heartbeat/",
            r#"{"add_ctrl":1,"add_node":0,"state":"FAILED"}"#,
        ),
        (
            "operator",
            "/dhcp/heartbeat/",
            r#"{"add_ctrl":1,"add_node":0,"state":"FAILED"}"#,
        ),
    ];
    // Forgeries first, then the tutorial's own heartbeat, until the listener has heard one
    // message: it must be the heartbeat.
    let mut listener = listener;
    let deadline = Instant::now() + Duration::from_secs(25);
    while listener.try_wait().unwrap().is_none() && Instant::now() < deadline {
        for (account, topic, payload) in forgeries {
            publish_as(&cluster, 0, Some(account), 0, (topic, payload));
        }
        assert!(
            publish_as(
                &cluster,
                0,
                Some("server-tutorial"),
                1,
                ("/dhcp/heartbeat/0220/0001", "ONLINE")
            ),
            "the tutorial's own heartbeat was refused"
        );
    }
    let heard = listener.wait_with_output().unwrap();
    let heard = String::from_utf8_lossy(&heard.stdout);
    assert_eq!(
        heard.trim(),
        "/dhcp/heartbeat/0220/0001 ONLINE",
        "the first control message heard"
    );
    // The operator asks: a request passes.
    assert!(publish_as(
        &cluster,
        1,
        Some("operator"),
        1,
        ("/nodes/0220/0001/request", "{}")
    ));
}
