//! The broker goes away under a running controller and comes back: the controller reconnects,
//! subscribes again and serves requests, without being restarted.

use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_protocol::{CommandClass, Data, Genre, Hadd, Request, Status};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

/// Kill the broker, start a new one on the same port: requests are answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_gets_the_controller_back() {
    let mut broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let port = broker.port;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("minimal.toml");
    std::fs::write(
        &config,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/examples/minimal.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let _controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    let node = Hadd::new(300, 1);

    let mut client = Client::connect(port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let first = client
        .ask_until_answered(|| get(node), Duration::from_secs(10))
        .await;
    assert_eq!(first.value.data, Data::from("Thermometer"));

    broker.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = Instant::now();
    let _broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), Some(port));
    let mut client = Client::connect(port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let reply = client
        .ask_until_answered(|| get(node), Duration::from_secs(15))
        .await;
    eprintln!(
        "controller answering {:?} after the broker restart",
        restarted.elapsed()
    );
    assert_eq!(
        (reply.status(), reply.value.data),
        (Status::OK, Data::from("Thermometer"))
    );
}

fn get(node: Hadd) -> Request {
    Request::get(node, "name", Genre::Config, CommandClass::CONFIGURATION)
}
