//! What TLS to the broker costs: get latency through a controller process, and value updates
//! per second through `MqttBridge`, plain versus TLS, same Mosquitto, same run.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench tls_cost` (needs Mosquitto).
//!
//! Mosquitto listens plain and with TLS (a test CA, client certificates required). 1. A
//! `janitoo run` of `deploy/examples/minimal.toml` connects plain, then another over TLS; a
//! client on the plain listener sends 1,000 gets of `name` one at a time to each, twice,
//! alternating; p50 and p99 of all 2,000 of each. 2. An in-process `MqttBridge` publishes 20,000
//! value updates, plain or over TLS, alternating, 3 rounds each, timed until a subscriber on
//! the plain listener has them all; the median rates.

use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;
use janitoo_actors::messages::Publish;
use janitoo_actors::{BridgeConfig, Metrics, MqttBridge};
use janitoo_config::BrokerAddress;
use janitoo_config::TlsConfig;
use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::ControllerProcess;
use janitoo_integration_tests::tls::{TestPki, TlsMosquitto};
use janitoo_protocol::{Codec, CommandClass, Genre, Hadd, Request, Status};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const GETS: usize = 1_000;
const MESSAGES: usize = 20_000;
const TOPIC: &str = "/values/user/0220/0001/temperature";
const PAYLOAD: &str = r#"{"cmd_class":49,"data":21.4,"genre":2,"hadd":"0220/0001","index":0,"label":"Temperature","type":3,"units":"°C","uuid":"temperature"}"#;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

async fn gets(client: &mut Client) -> Vec<Duration> {
    let node = Hadd::new(300, 1);
    client
        .ask_until_answered(
            || Request::get(node, "name", Genre::Config, CommandClass::CONFIGURATION),
            Duration::from_secs(15),
        )
        .await;
    let mut times = Vec::with_capacity(GETS);
    for _ in 0..GETS {
        let start = Instant::now();
        let reply = client
            .ask(Request::get(
                node,
                "name",
                Genre::Config,
                CommandClass::CONFIGURATION,
            ))
            .await;
        times.push(start.elapsed());
        assert_eq!(reply.status(), Status::OK);
    }
    times
}

async fn bridge_round(
    host: &str,
    port: u16,
    tls: Option<&TlsConfig>,
    subscriber: &mut Client,
) -> f64 {
    let metrics = std::sync::Arc::new(Metrics::default());
    let mut config = BridgeConfig::plain(BrokerAddress::new(host, port), 16_384);
    config.mqtt.tls = tls.map(|tls| janitoo_config::tls::client_config(tls).unwrap());
    let bridge = MqttBridge::new(config, metrics.clone()).start();
    while metrics.connections.get() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (topic, message) =
        janitoo_protocol::Message::decode_on(TOPIC, PAYLOAD.as_bytes(), Codec::Json).unwrap();
    let start = Instant::now();
    for sent in 0..MESSAGES {
        let publish = Publish {
            topic: topic.clone(),
            message: message.clone(),
        };
        if sent % 1_024 == 1_023 {
            let _ = bridge.send(publish).await;
            while metrics.queue_depth.get() > 8_192 {
                tokio::task::yield_now().await;
            }
        } else {
            bridge.do_send(publish);
        }
    }
    for seen in 0..MESSAGES {
        assert!(
            subscriber
                .next_on(TOPIC, Duration::from_secs(10))
                .await
                .is_some(),
            "received {seen} of {MESSAGES}"
        );
    }
    let elapsed = start.elapsed();
    assert_eq!(
        metrics.dropped.get(),
        0,
        "the bench outran the bridge's queue"
    );
    let _ = bridge.send(janitoo_actors::messages::Shutdown).await;
    MESSAGES as f64 / elapsed.as_secs_f64()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let pki = TestPki::generate();
    let broker = TlsMosquitto::start(&pki).expect("Mosquitto is not installed");
    let tls = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        client: Some(pki.client.clone()),
        server_name: None,
    };
    let (plain_port, tls_port) = (broker.plain_port, broker.tls_port);
    actix::System::new().block_on(async move {
        let mut client = Client::connect(plain_port).await;
        client.subscribe("/nodes/9999/9990/reply").await;
        let dir = tempfile::tempdir().unwrap();
        let (mut plain, mut secured) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            for over_tls in [false, true] {
                let section = if over_tls {
                    format!(
                        "\n[broker]\naddress = \"localhost:{tls_port}\"\ntls = true\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
                        pki.ca.display().to_string(),
                        pki.client.0.display().to_string(),
                        pki.client.1.display().to_string()
                    )
                } else {
                    format!("\n[broker]\naddress = \"127.0.0.1:{plain_port}\"\n")
                };
                let config = copy_example("minimal.toml", dir.path(), |text| text + &section);
                let controller =
                    ControllerProcess::start_with(Path::new(JANITOO), &config, &[]);
                let times = gets(&mut client).await;
                drop(controller);
                if over_tls {
                    secured.extend(times);
                } else {
                    plain.extend(times);
                }
            }
        }
        plain.sort();
        secured.sort();
        let (p50, t50) = (percentile(&plain, 0.5), percentile(&secured, 0.5));
        println!(
            "get latency, {} each: plain p50 {:.3} ms p99 {:.3} ms; TLS p50 {:.3} ms p99 {:.3} ms; TLS costs {:+.1} % at p50",
            plain.len(),
            p50.as_secs_f64() * 1e3,
            percentile(&plain, 0.99).as_secs_f64() * 1e3,
            t50.as_secs_f64() * 1e3,
            percentile(&secured, 0.99).as_secs_f64() * 1e3,
            (t50.as_secs_f64() / p50.as_secs_f64() - 1.0) * 100.0
        );

        let mut subscriber = Client::connect(plain_port).await;
        subscriber.subscribe(TOPIC).await;
        let (mut plain, mut secured) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            plain.push(bridge_round("127.0.0.1", plain_port, None, &mut subscriber).await);
            secured.push(bridge_round("localhost", tls_port, Some(&tls), &mut subscriber).await);
        }
        let (plain, secured) = (median(plain), median(secured));
        println!(
            "bridge throughput, {MESSAGES} value updates, median of 3: plain {plain:.0}/s, TLS {secured:.0}/s ({:+.1} %)",
            (secured / plain - 1.0) * 100.0
        );
    });
}
