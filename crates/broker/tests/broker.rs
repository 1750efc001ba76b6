//! The embedded broker against real MQTT clients (rumqttc).

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use janitoo_broker::{BrokerError, EmbeddedBroker};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(5);

/// A connected client: its handle, its event-loop task and what it received.
struct Client {
    client: AsyncClient,
    driver: JoinHandle<()>,
    incoming: mpsc::UnboundedReceiver<Packet>,
}

impl Client {
    /// Connects `id` to `addr` (with a Last Will if given) and waits for the CONNACK.
    async fn connect(addr: SocketAddr, id: &str, will: Option<LastWill>) -> Client {
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        if let Some(will) = will {
            options.set_last_will(will);
        }
        let (client, event_loop) = AsyncClient::new(options, 16);
        let (sender, incoming) = mpsc::unbounded_channel();
        let driver = tokio::spawn(drive(event_loop, sender));
        let mut client = Client {
            client,
            driver,
            incoming,
        };
        client
            .expect(|packet| matches!(packet, Packet::ConnAck(_)))
            .await;
        client
    }

    /// Subscribes to `filter` at QoS 0 and waits for the SUBACK.
    async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtMostOnce)
            .await
            .unwrap();
        self.expect(|packet| matches!(packet, Packet::SubAck(_)))
            .await;
    }

    /// The next received PUBLISH, within [`STEP`].
    async fn next_publish(&mut self) -> Publish {
        match self
            .expect(|packet| matches!(packet, Packet::Publish(_)))
            .await
        {
            Packet::Publish(publish) => publish,
            _ => unreachable!(),
        }
    }

    /// The next received packet that `wanted` accepts, within [`STEP`] (others are skipped).
    async fn expect(&mut self, wanted: impl Fn(&Packet) -> bool) -> Packet {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(packet)) if wanted(&packet) => return packet,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the client's connection ended"),
                Err(_) => panic!("no expected packet within {STEP:?}"),
            }
        }
    }
}

/// Drives `event_loop`, forwarding incoming packets, until the connection fails.
async fn drive(mut event_loop: EventLoop, sender: mpsc::UnboundedSender<Packet>) {
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(packet)) => {
                if sender.send(packet).is_err() {
                    return;
                }
            }
            Ok(Event::Outgoing(_)) => {}
            Err(_) => return,
        }
    }
}

/// Starts a broker on a free loopback port.
fn start_broker() -> EmbeddedBroker {
    let started = Instant::now();
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    eprintln!(
        "broker on {} ready in {:?}",
        broker.addr(),
        started.elapsed()
    );
    broker
}

/// A QoS 0 heartbeat published by one client reaches another subscribed to `/dhcp/heartbeat/#`.
#[tokio::test]
async fn publish_reaches_subscriber() {
    let broker = start_broker();
    assert_ne!(broker.addr().port(), 0);
    let mut subscriber = Client::connect(broker.addr(), "subscriber", None).await;
    subscriber.subscribe("/dhcp/heartbeat/#").await;
    let publisher = Client::connect(broker.addr(), "publisher", None).await;

    let sent = Instant::now();
    publisher
        .client
        .publish(
            "/dhcp/heartbeat/0220/0001",
            QoS::AtMostOnce,
            false,
            "ONLINE",
        )
        .await
        .unwrap();
    let publish = subscriber.next_publish().await;
    eprintln!("delivered in {:?}", sent.elapsed());

    assert_eq!(publish.topic, "/dhcp/heartbeat/0220/0001");
    assert_eq!(&publish.payload[..], b"ONLINE");
    assert_eq!(publish.qos, QoS::AtMostOnce);
    publisher.driver.abort();
    subscriber.driver.abort();
}

/// A broker cannot start on an address something already listens on: the error names it.
#[test]
fn address_in_use_is_refused() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();

    let err = EmbeddedBroker::start(addr).unwrap_err();

    assert!(
        matches!(err, BrokerError::AddressInUse { addr: a } if a == addr),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("in use"), "{message}");
    assert!(message.contains(&addr.to_string()), "{message}");
}

/// A second broker on the address of a running one is refused, and the first keeps serving.
#[tokio::test]
async fn second_broker_on_same_address_is_refused() {
    let broker = start_broker();

    let err = EmbeddedBroker::start(broker.addr()).unwrap_err();

    assert!(
        matches!(err, BrokerError::AddressInUse { addr } if addr == broker.addr()),
        "{err:?}"
    );
    let client = Client::connect(broker.addr(), "still-serving", None).await;
    client.driver.abort();
}

/// A client's Last Will reaches a subscriber when its socket is dropped without DISCONNECT.
#[tokio::test]
async fn last_will_is_published_when_a_client_vanishes() {
    let broker = start_broker();
    let mut subscriber = Client::connect(broker.addr(), "watcher", None).await;
    subscriber.subscribe("/dhcp/heartbeat/#").await;
    let will = LastWill::new(
        "/dhcp/heartbeat/0220/0000",
        "OFFLINE",
        QoS::AtMostOnce,
        false,
    );
    let doomed = Client::connect(broker.addr(), "controller-0220", Some(will)).await;

    let vanished = Instant::now();
    doomed.driver.abort();
    // Dropping the aborted task's event loop closes the socket, without a DISCONNECT.
    assert!(timeout(STEP, doomed.driver)
        .await
        .unwrap()
        .unwrap_err()
        .is_cancelled());
    drop(doomed.client);
    let publish = subscriber.next_publish().await;
    eprintln!(
        "Last Will delivered {:?} after the socket closed",
        vanished.elapsed()
    );

    assert_eq!(publish.topic, "/dhcp/heartbeat/0220/0000");
    assert_eq!(&publish.payload[..], b"OFFLINE");
    subscriber.driver.abort();
}
