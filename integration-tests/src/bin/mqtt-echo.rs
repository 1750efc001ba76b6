//! A raw MQTT echo, the yardstick of the request latency bench: a rumqttc client that
//! republishes every message it hears on `/echo/request` to `/echo/reply`, QoS 0, through the
//! same broker.
//!
//! Usage: `mqtt-echo HOST:PORT`; it prints `ready` once subscribed.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// Where the echo listens.
const REQUEST: &str = "/echo/request";
/// Where it answers.
const REPLY: &str = "/echo/reply";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let address = std::env::args().nth(1).expect("usage: mqtt-echo HOST:PORT");
    let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
    let mut options = MqttOptions::new(
        format!("janitoo-echo-{}", std::process::id()),
        host,
        port.parse().expect("a port"),
    );
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut event_loop) = AsyncClient::new(options, 1024);
    // As the controller's own client: no Nagle delay on small messages.
    event_loop.network_options.set_tcp_nodelay(true);
    client
        .subscribe(REQUEST, QoS::AtMostOnce)
        .await
        .expect("the request queue has room");
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::SubAck(_))) => println!("ready"),
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let _ = client.try_publish(REPLY, QoS::AtMostOnce, false, publish.payload);
            }
            Ok(_) => {}
            Err(err) => {
                eprintln!("mqtt-echo: {err}");
                return;
            }
        }
    }
}
