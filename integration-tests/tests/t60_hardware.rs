//! The tutorial server on a fake sysfs tree (`--sysfs-root`): a plain MQTT client reads exactly
//! the numbers in the tree on `/values/user/...`; a bad sensor file makes its node report
//! FAILED instead of publishing a made-up value.

use std::path::Path;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{
    without_led, BrokerKind, BrokerProcess, ControllerProcess,
};
use janitoo_integration_tests::sysfs::{tutorial_tree, write, W1_SLAVE};
use janitoo_protocol::{CommandClass, Data, Genre, Hadd, Message, NodeState, Request, Status};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

fn reading(hadd: Hadd, uuid: &str) -> Request {
    Request::get(hadd, uuid, Genre::User, CommandClass::SENSOR_MULTILEVEL)
}

/// Every reading comes from the tree; a DS18B20 reporting its power-on value is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_server_publishes_the_numbers_of_the_tree() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    tutorial_tree(root);
    let w1 = W1_SLAVE;

    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tutorial.toml");
    let tutorial = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    );
    let text = std::fs::read_to_string(tutorial).unwrap();
    std::fs::write(&config, without_led(&text)).unwrap();
    let sysfs = root.display().to_string();
    let _server = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--sysfs-root", &sysfs],
    );
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client.subscribe("/values/user/#").await;
    client.subscribe("/dhcp/heartbeat/0221/0001").await;
    client.subscribe("/dhcp/heartbeat/0222/0001").await;

    let (dht, ds18b20, cpu) = (Hadd::new(220, 1), Hadd::new(221, 1), Hadd::new(222, 1));
    let first = client
        .ask_until_answered(|| reading(cpu, "temperature"), Duration::from_secs(10))
        .await;
    assert_eq!(first.value.data, Data::from(47.25));
    for (hadd, uuid, expected) in [
        (dht, "temperature", 21.4),
        (dht, "humidity", 45.1),
        (ds18b20, "temperature", 18.625),
        (cpu, "frequency", 1500.0),
    ] {
        let reply = client.ask(reading(hadd, uuid)).await;
        assert_eq!(
            (reply.status(), reply.value.data),
            (Status::OK, Data::from(expected)),
            "{hadd} {uuid}"
        );
        let topic = format!("/values/user/{hadd}/{uuid}");
        let published = client
            .next_on(&topic, Duration::from_secs(2))
            .await
            .expect("published");
        let Message::Value(publication) = published.message() else {
            panic!()
        };
        assert_eq!(publication.instances()[0].data, Data::from(expected));
    }
    // No voltage in the tree: unavailable, not made up.
    let voltage = client.ask(reading(cpu, "voltage")).await;
    assert_eq!(voltage.status(), Status::INTERNAL_ERROR);
    assert!(voltage.error.unwrap().contains("not available"));
    let cpu_failed = client
        .next_matching(Duration::from_millis(500), |r| {
            r.topic == "/dhcp/heartbeat/0222/0001" && r.payload == b"FAILED"
        })
        .await;
    assert!(
        cpu_failed.is_none(),
        "a value this machine lacks does not make the node FAILED"
    );

    // The DS18B20 reports 85.000 (power-on): refused, and its node says FAILED.
    write(
        root,
        w1,
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=85000\n",
    );
    let bad = client.ask(reading(ds18b20, "temperature")).await;
    assert_eq!(bad.status(), Status::INTERNAL_ERROR);
    assert!(bad.error.unwrap().contains("power-on"));
    let beat = client
        .next_matching(Duration::from_secs(3), |r| {
            r.topic == "/dhcp/heartbeat/0221/0001"
                && r.payload == NodeState::Failed.as_str().as_bytes()
        })
        .await;
    assert!(beat.is_some(), "the node's heartbeat does not say FAILED");
}

/// The tutorial v2's bus value is the average of the temperatures its components read; a
/// sensor whose read fails leaves the average instead of holding a stale number in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_value_is_the_average_of_the_temperatures_read() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    tutorial_tree(root);

    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tutorial2.toml");
    let tutorial2 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial2.toml"
    );
    std::fs::copy(tutorial2, &config).unwrap();
    let sysfs = root.display().to_string();
    let _server = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--sysfs-root", &sysfs],
    );
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client
        .subscribe("/values/user/0225/0000/tutorial2_temperature")
        .await;

    // Published by itself soon after start (its first read, before the components had read
    // anything, is tried again), not only at its 300 s poll.
    let published = client
        .next_matching(Duration::from_secs(15), |r| {
            r.topic == "/values/user/0225/0000/tutorial2_temperature"
        })
        .await
        .expect("the bus value is published after start");
    let Message::Value(publication) = published.message() else {
        panic!()
    };
    assert_eq!(publication.instances()[0].data, Data::from(29.092));

    let bus = Hadd::new(225, 0);
    let average = || reading(bus, "tutorial2_temperature");
    let first = client
        .ask_until_answered(average, Duration::from_secs(10))
        .await;
    // The components read at start; until all three have, the bus says what it lacks.
    let mut reply = first;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while reply.value.data != 29.092 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        reply = client.ask(average()).await;
    }
    assert_eq!(
        (
            reply.status(),
            &reply.value.data,
            reply.value.units.as_deref()
        ),
        (Status::OK, &Data::from(29.092), Some("°C")),
        "(21.4 + 18.625 + 47.25) / 3"
    );

    write(
        root,
        W1_SLAVE,
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=85000\n",
    );
    let bad = client.ask(reading(Hadd::new(225, 2), "temperature")).await;
    assert_eq!(bad.status(), Status::INTERNAL_ERROR);
    let without = client.ask(average()).await;
    assert_eq!(
        (without.status(), without.value.data),
        (Status::OK, Data::from(34.325)),
        "(21.4 + 47.25) / 2: the failed DS18B20 is left out"
    );
}
