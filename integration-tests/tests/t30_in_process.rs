//! In-process actors against the embedded broker: garbage on every subscribed topic is counted
//! and changes nothing, and a panicking component only restarts its value actor.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use janitoo_actors::{
    Component, ComponentError, ComponentInfo, ComponentRegistry, Controller, StartOptions,
    ValueSpec,
};
use janitoo_broker::EmbeddedBroker;
use janitoo_config::Config;
use janitoo_hardware::{register_components, Readings};
use janitoo_integration_tests::client::Client;
use janitoo_protocol::{Codec, CommandClass, Data, Genre, Hadd, Request, Status, ValueType};
use rand::{Rng, SeedableRng};

const CONFIG: &str = r#"
[buses.rpibasic]
hadd = "0220/0000"

[buses.rpibasic.components.ambiance]
kind = "rpibasic.dht"
hadd = "0220/0001"
name = "Ambiance"

[buses.rpibasic.components.fragile]
kind = "test.fragile"
hadd = "0220/0002"

[buses.rpibasic.components.slow]
kind = "test.slow"
hadd = "0220/0003"
"#;

/// A sensor that hangs for 3 s on every read; its value allows 200 ms.
struct Hanging;

impl Component for Hanging {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Hanging sensor")
    }
    fn values(&self) -> Vec<ValueSpec> {
        vec![ValueSpec::sensor("reading", ValueType::Decimal).timeout(Duration::from_millis(200))]
    }
    fn read(&self, _uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        std::thread::sleep(Duration::from_secs(3));
        Ok(Data::from(0.0))
    }
}

/// A sensor whose next read panics when told to.
struct Fragile {
    panic_next: Arc<AtomicBool>,
}

impl Component for Fragile {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Fragile sensor")
    }
    fn values(&self) -> Vec<ValueSpec> {
        vec![ValueSpec::sensor("reading", ValueType::Decimal)]
    }
    fn read(&self, _uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        if self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("the sensor driver crashed");
        }
        Ok(Data::from(1.5))
    }
}

fn start(broker: SocketAddr, panic_next: Arc<AtomicBool>) -> Controller {
    let config = Config::parse(CONFIG, Path::new("in-process.toml")).unwrap();
    let mut registry = ComponentRegistry::new();
    register_components(&mut registry, Readings::Simulated);
    registry.register("test.slow", |_| Ok(Arc::new(Hanging)));
    registry.register("test.fragile", move |_| {
        Ok(Arc::new(Fragile {
            panic_next: panic_next.clone(),
        }))
    });
    Controller::start(
        &config,
        StartOptions {
            broker: &broker.into(),
            registry: &registry,
            codec: Codec::Json,
            write_back: false,
        },
    )
    .unwrap()
}

fn get(hadd: Hadd, uuid: &str, genre: Genre, class: CommandClass) -> Request {
    Request::get(hadd, uuid, genre, class)
}

/// 10,000 random messages on the controller's topics: counted as errors, nothing panics, and
/// the controller still answers.
#[test]
fn garbage_on_subscribed_topics_is_counted_and_service_continues() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    actix::System::new().block_on(async move {
        let controller = start(broker.addr(), Arc::new(AtomicBool::new(false)));
        let metrics = controller.metrics();
        let mut client = Client::connect(broker.addr().port()).await;
        client.subscribe("/nodes/9999/9990/reply").await;
        client.subscribe("/dhcp/heartbeat/#").await;
        let name = || get(Hadd::new(220, 1), "name", Genre::Config, CommandClass::CONFIGURATION);
        client.ask_until_answered(name, Duration::from_secs(10)).await;

        let topics = ["/nodes/0220/0001/request", "/broadcast/request", "/nodes/0220/00x1/request", "/nodes/0220/0000/reply"];
        let mut random = rand::rngs::StdRng::seed_from_u64(7);
        let valid = br#"{"cmd_class": 112, "uuid": "name", "genre": 3, "hadd": "0220/0001", "reply_hadd": "9999/9990", "is_writeonly": false}"#;
        for round in 0..10_000 {
            let topic = topics[round % topics.len()];
            let payload: Vec<u8> = match round % 3 {
                0 => (0..random.random_range(0..64)).map(|_| random.random()).collect(),
                1 => valid[..random.random_range(0..valid.len())].to_vec(),
                _ => format!(r#"{{"uuid": {}, "genre": "{}"}}"#, random.random::<u32>(), random.random::<u8>()).into_bytes(),
            };
            client.publish(topic, payload).await;
            if round % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Still serving, once the flood's requests past the request budget are behind.
        let reply = client
            .ask_until_answered(
                || get(Hadd::new(220, 1), "name", Genre::Config, CommandClass::CONFIGURATION),
                Duration::from_secs(10),
            )
            .await;
        assert_eq!((reply.status(), reply.value.data), (Status::OK, Data::from("Ambiance")));
        let errors = metrics.decode_errors.get();
        eprintln!("received {}, decode errors {errors}, requests {}", metrics.received.get(), metrics.requests.get());
        // Past the request budget, requests are dropped unread (counted as over budget).
        let over_budget = metrics.requests_over_budget.get();
        assert!(
            errors + over_budget >= 5_000,
            "only {errors} decode errors and {over_budget} requests over budget counted"
        );
        assert_eq!(metrics.restarts(), 0);
        controller.stop().await;
    });
}

/// A component that panics in a read: that request gets a 500, its value actor is restarted
/// and counted, and the next read works.
#[test]
fn a_panicking_component_restarts_only_its_value_actor() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    actix::System::new().block_on(async move {
        let panic_next = Arc::new(AtomicBool::new(false));
        let controller = start(broker.addr(), panic_next.clone());
        let mut client = Client::connect(broker.addr().port()).await;
        client.subscribe("/nodes/9999/9990/reply").await;
        let fragile = Hadd::new(220, 2);
        let reading = || {
            get(
                fragile,
                "reading",
                Genre::User,
                CommandClass::SENSOR_MULTILEVEL,
            )
        };
        let first = client
            .ask_until_answered(reading, Duration::from_secs(10))
            .await;
        assert_eq!(first.status(), Status::OK);
        // A get asked again while the first was slow (under load) may still be on its way: one
        // more answer, and every earlier get of the value is behind it (one actor, in order).
        // Else the armed panic is spent on that one, and the get below reads fine (CI once).
        let settled = client.ask(reading()).await;
        assert_eq!(settled.status(), Status::OK);

        panic_next.store(true, Ordering::SeqCst);
        let crashed = client.ask(reading()).await;
        assert_eq!(
            crashed.status(),
            Status::INTERNAL_ERROR,
            "{:?}",
            crashed.error
        );
        // The value actor is restarted by its supervisor: wait for it to be counted.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while controller.metrics().restarts() == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(controller.metrics().restarts(), 1);

        let again = client.ask(reading()).await;
        assert_eq!(
            (again.status(), again.value.data),
            (Status::OK, Data::from(1.5))
        );
        let other = client
            .ask(get(
                Hadd::new(220, 1),
                "name",
                Genre::Config,
                CommandClass::CONFIGURATION,
            ))
            .await;
        assert_eq!(
            other.status(),
            Status::OK,
            "the rest of the process is unaffected"
        );
        controller.stop().await;
    });
}

/// A network controller follows the primary with the highest epoch, and ignores (and counts)
/// what an older primary still sends: its heartbeats on behalf and its resolv answers.
#[test]
fn messages_of_an_older_epoch_are_fenced_and_counted() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    actix::System::new().block_on(async move {
        let config = Config::parse(
            "[network]\nrole = \"secondary\"\nhadd = \"0002/0000\"\n",
            Path::new("secondary.toml"),
        )
        .unwrap();
        let registry = ComponentRegistry::new();
        let options = StartOptions { broker: &broker.addr().into(), registry: &registry, codec: Codec::Json, write_back: false };
        let controller = Controller::start(&config, options).unwrap();
        let metrics = controller.metrics();
        let mut client = Client::connect(broker.addr().port()).await;
        client.subscribe("/dhcp/resolv/request/").await;
        let newer = (5u64 << 16) | 7;
        // A primary of epoch 5/7 beats until the secondary follows it (it then asks for its map).
        let mut asked = None;
        for _ in 0..50 {
            let beat = format!(r#"{{"add_ctrl": "0007", "add_node": "0000", "state": "ONLINE", "epoch": {newer}}}"#);
            client.publish("/dhcp/resolv/heartbeat", beat).await;
            asked = client.next_on("/dhcp/resolv/request/", Duration::from_millis(100)).await;
            if asked.is_some() {
                break;
            }
        }
        assert!(asked.is_some(), "the secondary never followed the primary");
        assert_eq!(metrics.epoch.get(), newer);
        // An older primary's heartbeat on behalf, resolv answer and resolv heartbeat.
        let older = (3u64 << 16) | 1;
        client
            .publish("/dhcp/heartbeat/", format!(r#"{{"add_ctrl": 220, "add_node": 1, "state": "FAILED", "epoch": {older}, "observer": "0001/0000"}}"#))
            .await;
        client
            .publish("/dhcp/resolv/reply/0002/0000", format!(r#"{{"cmd_class": 20480, "genre": 4, "uuid": "request_info_nodes", "data": {{}}, "epoch": {older}}}"#))
            .await;
        client
            .publish("/dhcp/resolv/heartbeat", format!(r#"{{"add_ctrl": "0001", "add_node": "0000", "state": "ONLINE", "epoch": {older}}}"#))
            .await;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while metrics.fenced.get() < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(metrics.fenced.get(), 3);
        assert_eq!(metrics.epoch.get(), newer, "still following the newer primary");
        controller.stop().await;
    });
}

/// A read that hangs is answered 500 when its value's timeout passes, and the node goes on
/// serving its other values.
#[test]
fn a_hanging_read_is_answered_when_its_timeout_passes() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    actix::System::new().block_on(async move {
        let controller = start(broker.addr(), Arc::new(AtomicBool::new(false)));
        let mut client = Client::connect(broker.addr().port()).await;
        client.subscribe("/nodes/9999/9990/reply").await;
        let slow = Hadd::new(220, 3);
        let name = || get(slow, "name", Genre::Config, CommandClass::CONFIGURATION);
        client
            .ask_until_answered(name, Duration::from_secs(10))
            .await;
        let asked = std::time::Instant::now();
        let reply = client
            .ask(get(
                slow,
                "reading",
                Genre::User,
                CommandClass::SENSOR_MULTILEVEL,
            ))
            .await;
        assert_eq!(reply.status(), Status::INTERNAL_ERROR);
        assert!(reply.error.unwrap().contains("did not answer within 200ms"));
        assert!(
            asked.elapsed() < Duration::from_millis(1_500),
            "answered after {:?}",
            asked.elapsed()
        );
        assert_eq!(client.ask(name()).await.status(), Status::OK);
        controller.stop().await;
    });
}
