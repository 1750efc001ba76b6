//! A controller process serves a plain MQTT client, against the embedded broker and Mosquitto:
//! discovery, get, set (persisted), refused sets with their status, multi-instance sets, and
//! its Last Will when it is killed.

use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::{Client, CLIENT_HADD};
use janitoo_integration_tests::process::{
    brokers_under_test, BrokerKind, BrokerProcess, ControllerProcess,
};
use janitoo_protocol::{
    Codec, CommandClass, Data, DiscoveryData, Genre, Hadd, InfoKind, Message, NodeState, Request,
    Status, Topic,
};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

const CONFIG: &str = r#"
# A test controller: a DHT node with two pins, the host load (three instances), an LED.
[hardware]
simulate = true

[buses.rpibasic]
hadd = "0220/0000"
name = "Hello world"
location = "DHT"
heartbeat = 30

[buses.rpibasic.components.ambiance]
kind = "rpibasic.dht"
hadd = "0220/0001"
name = "Ambiance"
values = { pin = { 0 = 6, 1 = 7 }, sensor = 11, temperature_poll = 300 }

[buses.rpibasic.components.load]
kind = "hostsensor.load"
hadd = "0220/0002"

[buses.rpibasic.components.led]
kind = "rpibasic.led"
hadd = "0220/0003"
"#;

const AMBIANCE: Hadd = Hadd::new(220, 1);
const CONTROLLER: Hadd = Hadd::new(220, 0);

fn config_request(op_set: Option<Data>, hadd: Hadd, uuid: &str, genre: Genre) -> Request {
    match op_set {
        Some(data) => Request::set(hadd, uuid, genre, CommandClass::CONFIGURATION, data),
        None => Request::get(hadd, uuid, genre, CommandClass::CONFIGURATION),
    }
}

async fn discovery(
    client: &mut Client,
    topic: Topic,
    reply_topic: &str,
    kind: InfoKind,
) -> DiscoveryData {
    let request = Message::Request(Request::info(kind, CLIENT_HADD));
    client
        .publish(&topic.to_string(), request.encode(Codec::Json))
        .await;
    let reply = client
        .next_matching(Duration::from_secs(5), |r| {
            r.topic == reply_topic
                && matches!(r.message(), Message::DiscoveryReply(ref d) if d.kind == kind)
        })
        .await
        .unwrap_or_else(|| panic!("no {kind:?} discovery reply on {reply_topic}"));
    match reply.message() {
        Message::DiscoveryReply(reply) => reply.data,
        other => panic!("{other:?}"),
    }
}

async fn serve_a_plain_client(kind: BrokerKind) {
    let broker = BrokerProcess::start(kind, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("controller.toml");
    std::fs::write(&config, CONFIG).unwrap();

    let mut client = Client::connect(broker.port).await;
    for filter in [
        "/dhcp/heartbeat/#",
        "/nodes/9999/9990/reply",
        "/broadcast/reply/9999/9990",
        "/values/#",
    ] {
        client.subscribe(filter).await;
    }
    let mut controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    let first = client
        .next_on("/dhcp/heartbeat/0220/0000", Duration::from_secs(10))
        .await;
    assert!(
        first.is_some(),
        "{kind:?}: no heartbeat from the controller"
    );

    // Broadcast discovery: every node of the bus, in the normalised shape.
    let reply_topic = "/broadcast/reply/9999/9990";
    let DiscoveryData::Nodes(nodes) = discovery(
        &mut client,
        Topic::BroadcastRequest,
        reply_topic,
        InfoKind::Nodes,
    )
    .await
    else {
        panic!()
    };
    let hadds: Vec<Hadd> = nodes.keys().copied().collect();
    assert_eq!(
        hadds,
        [CONTROLLER, AMBIANCE, Hadd::new(220, 2), Hadd::new(220, 3)],
        "{kind:?}"
    );
    assert_eq!(nodes[&AMBIANCE].name, "Ambiance");
    assert_eq!(
        nodes[&AMBIANCE].state,
        Some(NodeState::Online),
        "components default to healthy"
    );

    // Node discovery of config values.
    let DiscoveryData::Values(configs) = discovery(
        &mut client,
        Topic::NodeRequest(AMBIANCE),
        "/nodes/9999/9990/reply",
        InfoKind::Configs,
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        configs[&AMBIANCE]["pin"]
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        configs[&AMBIANCE]["temperature_poll"][&0].data,
        Data::from(300)
    );

    // Get, then set `name`: answered, published, persisted.
    let get = client
        .ask(config_request(None, AMBIANCE, "name", Genre::Config))
        .await;
    assert_eq!(
        (get.status(), get.value.data.clone()),
        (Status::OK, Data::from("Ambiance"))
    );
    let set = client
        .ask(config_request(
            Some(Data::from("Kitchen")),
            AMBIANCE,
            "name",
            Genre::Config,
        ))
        .await;
    assert_eq!(
        (set.status(), set.value.data.clone()),
        (Status::OK, Data::from("Kitchen")),
        "{kind:?}"
    );
    assert!(client
        .next_on("/values/config/0220/0001/name", Duration::from_secs(5))
        .await
        .is_some());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&config)
        .unwrap()
        .contains("name = \"Kitchen\"")
    {
        assert!(
            Instant::now() < deadline,
            "the new name was not written back:\n{}",
            std::fs::read_to_string(&config).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("# A test controller"),
        "comments kept"
    );

    // An invalid set: 400, nothing changed.
    let bad = client
        .ask(config_request(
            Some(Data::from("often")),
            AMBIANCE,
            "heartbeat",
            Genre::System,
        ))
        .await;
    assert_eq!(bad.status(), Status::BAD_REQUEST, "{:?}", bad.error);
    assert!(bad.error.unwrap().contains("heartbeat"));
    let after = client
        .ask(config_request(None, AMBIANCE, "heartbeat", Genre::System))
        .await;
    assert_eq!(after.value.data, Data::from(30.0));

    // A set on a read-only value: 403. An unknown value: 404.
    let sensor = Request::set(
        AMBIANCE,
        "temperature",
        Genre::User,
        CommandClass::SENSOR_MULTILEVEL,
        Data::from(5),
    );
    assert_eq!(client.ask(sensor).await.status(), Status::FORBIDDEN);
    let unknown = client
        .ask(config_request(
            None,
            AMBIANCE,
            "doesnotexist",
            Genre::Config,
        ))
        .await;
    assert_eq!(unknown.status(), Status::NOT_FOUND);

    // A set of instance 1 of a multi-instance value changes that instance only.
    let mut set_pin = config_request(Some(Data::from(8)), AMBIANCE, "pin", Genre::Config);
    set_pin.index = Some(1);
    let reply = client.ask(set_pin).await;
    assert_eq!(
        (reply.status(), reply.value.index, reply.value.data.clone()),
        (Status::OK, 1, Data::from(8))
    );
    let mut get_pin = config_request(None, AMBIANCE, "pin", Genre::Config);
    get_pin.index = Some(0);
    assert_eq!(client.ask(get_pin).await.value.data, Data::from(6));

    // SIGKILL: the Last Will says OFFLINE within a second.
    client.clear();
    let killed = Instant::now();
    controller.kill();
    let will = client
        .next_matching(Duration::from_secs(1), |r| {
            r.topic == "/dhcp/heartbeat/0220/0000" && r.payload == b"OFFLINE"
        })
        .await;
    assert!(
        will.is_some(),
        "{kind:?}: no OFFLINE within 1 s of the kill"
    );
    eprintln!("{kind:?}: OFFLINE {:?} after SIGKILL", killed.elapsed());
}

/// Discovery, get, set, refusals, multi-instance and Last Will, against each broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_serves_a_plain_mqtt_client_and_its_will_reports_a_kill() {
    for kind in brokers_under_test() {
        serve_a_plain_client(kind).await;
    }
}

/// A clean stop (SIGTERM) publishes OFFLINE for every node, then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_announces_every_node_offline() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("controller.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/dhcp/heartbeat/#").await;
    let mut controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    assert!(client
        .next_on("/dhcp/heartbeat/0220/0003", Duration::from_secs(10))
        .await
        .is_some());
    assert!(
        controller.terminate(Duration::from_secs(5)),
        "no clean exit on SIGTERM"
    );
    let mut offline = std::collections::BTreeSet::new();
    while let Some(beat) = client
        .next_matching(Duration::from_secs(2), |r| r.payload == b"OFFLINE")
        .await
    {
        offline.insert(beat.topic);
    }
    let expected: std::collections::BTreeSet<String> = (0..4)
        .map(|node| format!("/dhcp/heartbeat/0220/{node:04}"))
        .collect();
    assert_eq!(offline, expected);
}

/// Writing `heartbeat` over the network writes it back into the file (the new period applying
/// at once is tested on paused time: `actors/tests/paused_time/node_timers.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_heartbeat_period_is_written_back() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("controller.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/dhcp/heartbeat/0220/0001").await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let _controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    assert!(client
        .next_on("/dhcp/heartbeat/0220/0001", Duration::from_secs(10))
        .await
        .is_some());
    let set = client
        .ask(config_request(
            Some(Data::from(1)),
            AMBIANCE,
            "heartbeat",
            Genre::System,
        ))
        .await;
    assert_eq!(set.status(), Status::OK);
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("heartbeat = 1"), "{written}");
}

/// A configuration without a broker address starts an embedded broker in the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_address_the_process_embeds_one() {
    let port = janitoo_broker::free_local_port("127.0.0.1".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("controller.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let _controller =
        ControllerProcess::start_with(Path::new(JANITOO), &config, &["--embedded-listen", &listen]);
    assert!(janitoo_integration_tests::process::wait_for_port(
        port,
        Duration::from_secs(10)
    ));
    let mut client = Client::connect(port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    // The controller connects to its own broker at about the same time as we do.
    let name = || config_request(None, AMBIANCE, "name", Genre::Config);
    let reply = client
        .ask_until_answered(name, Duration::from_secs(10))
        .await;
    assert_eq!(reply.value.data, Data::from("Ambiance"));
}

/// With `--log-format json` and the actors' debug logs, a request is followed in the logs by its
/// `request` span: a get of a sensor from its admission by the bridge to its answer by the bus,
/// a get of a stored value to its answer from the value cache; each event carries the node,
/// the value and the request's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_followed_in_the_logs_by_its_span() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("controller.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut controller = std::process::Command::new(JANITOO)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--broker", &broker.address(), "--log-format", "json"])
        .env("RUST_LOG", "warn,janitoo_actors=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = janitoo_integration_tests::process::Lines::read(controller.stderr.take().unwrap());
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let sensor = || {
        Request::get(
            AMBIANCE,
            "temperature",
            Genre::User,
            CommandClass::SENSOR_MULTILEVEL,
        )
    };
    let read = client
        .ask_until_answered(sensor, Duration::from_secs(10))
        .await;
    let stored = client
        .ask(config_request(None, AMBIANCE, "name", Genre::Config))
        .await;
    // Their events were written before the answers were published: they are all in the pipe.
    let _ = controller.kill();
    let _ = controller.wait();
    let events: Vec<serde_json::Value> = lines
        .finish()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    for (reply, uuid, said) in [
        (&read, "temperature", &["admitted", "answered"][..]),
        (&stored, "name", &["answered from the value cache"][..]),
    ] {
        let id = reply.request_id.clone().unwrap();
        let of_it: Vec<&serde_json::Value> = events
            .iter()
            .filter(|event| event["span"]["request_id"] == id.as_str())
            .collect();
        let messages: Vec<&str> = of_it
            .iter()
            .map(|event| event["fields"]["message"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(messages, said, "{of_it:?}");
        for event in &of_it {
            let span = &event["span"];
            assert_eq!(
                (&span["name"], &span["hadd"], &span["uuid"], &span["op"]),
                (
                    &serde_json::json!("request"),
                    &serde_json::json!("0220/0001"),
                    &serde_json::json!(uuid),
                    &serde_json::json!("get")
                ),
                "{event}"
            );
        }
        let answered = of_it.last().unwrap();
        assert_eq!(answered["fields"]["status"], 200, "{answered}");
    }
}
