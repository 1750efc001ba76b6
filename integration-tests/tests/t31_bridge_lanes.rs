//! The bridge's two outbound queues: retained publications (Home Assistant's discovery) wait
//! in a queue of their own, and go out on a connection of their own, so that a burst of them
//! that fills it drops none of the protocol's messages (the primary's heartbeat above all), and
//! everything queued goes out once the broker is reachable. (That a stalled retained connection
//! holds no heartbeat is unit-tested in `actors/src/bridge/outbound.rs`.)

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use janitoo_actors::messages::{Publish, PublishRetained};
use janitoo_actors::{BridgeConfig, Metrics, MqttBridge};
use janitoo_broker::{free_local_port, EmbeddedBroker};
use janitoo_config::BrokerAddress;
use janitoo_integration_tests::client::Client;
use janitoo_protocol::{Hadd, Message, NodeState, ResolvHeartbeat, Topic};

const QUEUE: usize = 64;

/// Forwards every connection made to `listener` to `to`.
async fn forward(listener: tokio::net::TcpListener, to: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        actix::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// A bridge to `127.0.0.1:<port>`, with queues of [`QUEUE`] messages.
fn bridge_to(port: u16) -> (Addr<MqttBridge>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let config = BridgeConfig::plain(BrokerAddress::new("127.0.0.1", port), QUEUE);
    (MqttBridge::new(config, metrics.clone()).start(), metrics)
}

/// From now on, connections to `port` reach the broker at `to`.
async fn open_the_way(port: u16, to: SocketAddr) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    actix::spawn(forward(listener, to));
}

fn heartbeat() -> Publish {
    let beat = ResolvHeartbeat {
        hadd: Hadd::new(1, 0),
        state: NodeState::Online,
        epoch: Some(0x1_0001),
    };
    Publish {
        topic: Topic::ResolvHeartbeat,
        message: Message::ResolvHeartbeat(beat),
    }
}

#[test]
fn a_flood_of_retained_publications_drops_none_of_the_protocols_messages() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    // The bridge reaches the broker through a port nobody listens on yet.
    let port = free_local_port(Ipv4Addr::LOCALHOST.into()).unwrap();
    actix::System::new().block_on(async move {
        let mut client = Client::connect(broker.addr().port()).await;
        client.subscribe("homeassistant/#").await;
        client.subscribe("/dhcp/resolv/heartbeat").await;
        let (bridge, metrics) = bridge_to(port);
        // Nothing leaves, so the retained connection's own channel (1,024) fills, then the
        // retained publications' queue, and the next one is dropped. (Each is awaited, so that the
        // drain task runs in between, as it does beside the announcer.)
        let mut flood: u64 = 0;
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
        // The primary's heartbeats.
        for _ in 0..10 {
            bridge.send(heartbeat()).await.unwrap();
        }
        assert_eq!(
            metrics.dropped.get(),
            dropped,
            "a heartbeat was dropped behind the retained publications"
        );

        // The way to the broker opens: everything queued goes out.
        open_the_way(port, broker.addr()).await;
        let retained = flood - dropped;
        let (mut retained_heard, mut beats_heard) = (0, 0);
        while beats_heard < 10 || retained_heard < retained {
            let received = client
                .next_matching(Duration::from_secs(10), |_| true)
                .await
                .unwrap_or_else(|| {
                    panic!(
                        "received {retained_heard} retained of {retained} and {beats_heard} \
                         heartbeats of 10"
                    )
                });
            if received.topic.starts_with("homeassistant/") {
                retained_heard += 1;
            } else {
                beats_heard += 1;
            }
        }
        assert_eq!(metrics.dropped.get(), dropped, "dropped once connected");
        let _ = bridge.send(janitoo_actors::messages::Shutdown).await;
    });
}
