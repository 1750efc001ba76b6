//! The bridge's two outbound queues: retained publications (Home Assistant's discovery) wait
//! in a queue of their own, so that a burst of them that fills it drops none of the protocol's
//! messages (the primary's heartbeat above all), and the protocol's go out first.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use janitoo_actors::messages::{Publish, PublishRetained};
use janitoo_actors::{BridgeConfig, Metrics, MqttBridge};
use janitoo_broker::{free_local_port, EmbeddedBroker};
use janitoo_integration_tests::client::Client;
use janitoo_protocol::{Codec, Hadd, Message, NodeState, ResolvHeartbeat, Topic};

const QUEUE: usize = 64;

/// Polls `condition` every few milliseconds until it holds or `limit` passes.
async fn until(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

#[test]
fn a_flood_of_retained_publications_drops_none_of_the_protocols_messages() {
    let port = free_local_port(Ipv4Addr::LOCALHOST.into()).unwrap();
    actix::System::new().block_on(async move {
        let metrics = Arc::new(Metrics::default());
        let config = BridgeConfig {
            host: "127.0.0.1".into(),
            port,
            keepalive: Duration::from_secs(30),
            credentials: None,
            will: None,
            codec: Codec::Json,
            queue_capacity: QUEUE,
            max_payload: 256 << 10,
            max_in_flight: 256,
            control: None,
            tls: None,
        };
        let bridge = MqttBridge::new(config, metrics.clone()).start();
        // No broker yet: nothing leaves, so the MQTT client's own channel (1,024) fills, then
        // the retained publications' queue, and the next ones are dropped. (Each is awaited,
        // so that the drain task runs in between, as it does beside the announcer.)
        let mut flood = 0;
        while metrics.dropped.get() == 0 {
            assert!(flood < 5_000, "the flood never filled the queue");
            bridge
                .send(PublishRetained {
                    topic: format!("homeassistant/sensor/flood_{flood}/config"),
                    payload: br#"{"name":"flood"}"#.to_vec(),
                })
                .await
                .unwrap();
            flood += 1;
        }
        assert!(flood > 1_024, "dropped after only {flood}");
        let dropped = metrics.dropped.get();
        let beat = ResolvHeartbeat {
            hadd: Hadd::new(1, 0),
            state: NodeState::Online,
            epoch: Some(0x1_0001),
        };
        for _ in 0..10 {
            bridge
                .send(Publish {
                    topic: Topic::ResolvHeartbeat,
                    message: Message::ResolvHeartbeat(beat.clone()),
                })
                .await
                .unwrap();
        }
        assert_eq!(
            metrics.dropped.get(),
            dropped,
            "a heartbeat was dropped behind the retained publications"
        );

        // The broker starts: everything queued goes out, nothing more is dropped.
        let broker = EmbeddedBroker::start(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).unwrap();
        let accepted = flood + 10 - dropped;
        assert!(
            until(Duration::from_secs(30), || metrics.published.get()
                >= accepted)
            .await,
            "{} of {accepted} published",
            metrics.published.get()
        );
        assert_eq!(metrics.dropped.get(), dropped);
        // And the protocol's messages still flow.
        let mut client = Client::connect(broker.addr().port()).await;
        client.subscribe("/dhcp/resolv/heartbeat").await;
        bridge.do_send(Publish {
            topic: Topic::ResolvHeartbeat,
            message: Message::ResolvHeartbeat(beat),
        });
        let heard = client
            .next_on("/dhcp/resolv/heartbeat", Duration::from_secs(10))
            .await;
        assert!(heard.is_some(), "no heartbeat after the flood");
        let _ = bridge.send(janitoo_actors::messages::Shutdown).await;
    });
}
