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
    let get = || Request::get(node, "name", Genre::Config, CommandClass::CONFIGURATION);

    let mut client = Client::connect(port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client.subscribe("/dhcp/heartbeat/#").await;
    assert!(client
        .next_on("/dhcp/heartbeat/0300/0001", Duration::from_secs(10))
        .await
        .is_some());
    assert_eq!(
        client.ask(get()).await.value.data,
        Data::from("Thermometer")
    );

    broker.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = Instant::now();
    let _broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), Some(port));
    let mut client = Client::connect(port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client.subscribe("/dhcp/heartbeat/#").await;
    // Back when it announces itself again (heartbeats on the new connection).
    let back = client
        .next_on("/dhcp/heartbeat/0300/0001", Duration::from_secs(15))
        .await;
    assert!(back.is_some(), "the controller did not come back");
    eprintln!(
        "controller back {:?} after the broker restart",
        restarted.elapsed()
    );
    let reply = client.ask(get()).await;
    assert_eq!(
        (reply.status(), reply.value.data),
        (Status::OK, Data::from("Thermometer"))
    );
}
