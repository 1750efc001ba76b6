//! Value updates per second through `MqttBridge` versus a raw rumqttc client publishing the same
//! messages to the same broker, in the same run.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench bridge_throughput`
//!
//! Each round publishes N value publications (the DHT temperature payload of the codec bench)
//! and times until a separate subscriber has received them all. Rounds alternate raw and bridge;
//! the medians and their ratio are printed, for the embedded broker and, when installed,
//! Mosquitto (started with `max_queued_messages 0` so it drops nothing).

use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;
use janitoo_actors::messages::Publish;
use janitoo_actors::{BridgeConfig, Metrics, MqttBridge};
use janitoo_config::BrokerAddress;
use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{brokers_under_test, BrokerProcess};
use janitoo_protocol::Codec;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const MESSAGES: usize = 50_000;
const ROUNDS: usize = 5;
const TOPIC: &str = "/values/user/0220/0001/temperature";
const PAYLOAD: &str = r#"{"cmd_class":49,"data":21.4,"default":null,"genre":2,"hadd":"0220/0001","help":"The temperature","index":0,"is_polled":true,"is_readonly":true,"is_writeonly":false,"label":"Temperature","list_items":null,"max":null,"min":null,"node_uuid":"rpibasic__ambiance","poll_delay":300,"reply_hadd":null,"type":3,"units":"°C","uuid":"temperature","voice_uuid":null}"#;

async fn receive_all(subscriber: &mut Client, count: usize) -> bool {
    for seen in 0..count {
        if subscriber
            .next_on(TOPIC, Duration::from_secs(10))
            .await
            .is_none()
        {
            eprintln!("received {seen} of {count}");
            return false;
        }
    }
    true
}

async fn raw_round(port: u16, subscriber: &mut Client) -> Option<Duration> {
    let mut options = MqttOptions::new(format!("raw-{}", rand::random::<u32>()), "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut event_loop) = AsyncClient::new(options, 1024);
    event_loop.network_options.set_tcp_nodelay(true);
    let driver = tokio::spawn(async move {
        while let Ok(event) = event_loop.poll().await {
            if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
            let _ = matches!(event, Event::Incoming(Packet::ConnAck(_)));
        }
    });
    let start = Instant::now();
    for _ in 0..MESSAGES {
        client
            .publish(TOPIC, QoS::AtMostOnce, false, PAYLOAD.as_bytes().to_vec())
            .await
            .ok()?;
    }
    let complete = receive_all(subscriber, MESSAGES).await;
    let elapsed = start.elapsed();
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), driver).await;
    complete.then_some(elapsed)
}

async fn bridge_round(port: u16, subscriber: &mut Client) -> Option<Duration> {
    let metrics = std::sync::Arc::new(Metrics::default());
    let config = BridgeConfig::plain(BrokerAddress::new("127.0.0.1", port), 16_384);
    let bridge = MqttBridge::new(config, metrics.clone()).start();
    while metrics.connections.get() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The bridge alone encodes: it is handed the message, as the value actors hand it.
    let (topic, message) =
        janitoo_protocol::Message::decode_on(TOPIC, PAYLOAD.as_bytes(), Codec::Json).unwrap();
    let start = Instant::now();
    for sent in 0..MESSAGES {
        let publish = Publish {
            topic: topic.clone(),
            message: message.clone(),
        };
        // The bridge drops what its queue cannot hold: producers keep to the pace it drains,
        // as the value actors do at their poll rates.
        if sent % 1_024 == 1_023 {
            let _ = bridge.send(publish).await;
            while metrics.queue_depth.get() > 8_192 {
                tokio::task::yield_now().await;
            }
        } else {
            bridge.do_send(publish);
        }
    }
    let complete = receive_all(subscriber, MESSAGES).await;
    let elapsed = start.elapsed();
    let dropped = metrics.dropped.get();
    let _ = bridge.send(janitoo_actors::messages::Shutdown).await;
    assert_eq!(dropped, 0, "the bench outran the bridge's queue");
    complete.then_some(elapsed)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    for kind in brokers_under_test() {
        let broker = BrokerProcess::start(kind, Path::new(JANITOO), None);
        let port = broker.port;
        let (raw, bridged) = actix::System::new().block_on(async move {
            let mut subscriber = Client::connect(port).await;
            subscriber.subscribe(TOPIC).await;
            let (mut raw, mut bridged) = (Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                let raw_time = raw_round(port, &mut subscriber)
                    .await
                    .expect("raw round lost messages");
                let bridge_time = bridge_round(port, &mut subscriber)
                    .await
                    .expect("bridge round lost messages");
                raw.push(MESSAGES as f64 / raw_time.as_secs_f64());
                bridged.push(MESSAGES as f64 / bridge_time.as_secs_f64());
                eprintln!(
                    "{kind:?} round {round}: raw {:.0} msg/s, bridge {:.0} msg/s",
                    raw[round], bridged[round]
                );
            }
            (raw, bridged)
        });
        let (raw, bridged) = (median(raw), median(bridged));
        println!(
            "{kind:?}: {MESSAGES} value publications x {ROUNDS} rounds, medians: raw rumqttc {raw:.0} msg/s, MqttBridge {bridged:.0} msg/s, ratio {:.2}",
            bridged / raw
        );
    }
}
