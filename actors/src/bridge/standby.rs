//! The standby connection: a second connection to another broker of the list, opened
//! beforehand, that carries the protocol's publications while the bridge's own connection is
//! down.
//!
//! Moving to the next broker takes a new connection, and a broker may take a while to accept
//! one: NATS accepts none for 4 to 9 s after a server that led JetStream died (MQTT sessions
//! live in JetStream). A controller silent that long is told PENDING, then FAILED, by the
//! others, though it is alive and only moving. A connection already up needs nothing from
//! JetStream to carry QoS 0 publications, so the standby, `<client id>-standby` (no Will, no
//! subscription), carries the process's heartbeats, answers and values from the moment the
//! bridge's connection fails until it is up again. The network core hears nothing meanwhile
//! (it is told the connection is down, and judges nobody); only the others keep hearing this
//! process.
//!
//! The standby stays on the broker after the bridge's in the list, and moves when the bridge's
//! connection comes up on the standby's broker (one broker dying would take both).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet};
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::connection::MqttSettings;
use super::outbound::{Outbound, Publisher};
use crate::metrics::Metrics;

/// The suffix of the standby connection's client id.
pub const CLIENT_ID_SUFFIX: &str = "-standby";

/// The position of the standby's broker when the bridge's is at `main` among `count`: the next
/// one, or none with a single broker.
pub fn standby_position(main: usize, count: usize) -> Option<usize> {
    (count > 1).then(|| (main + 1) % count)
}

/// Whether each connection can carry a publication now: set by the tasks that drive them.
#[derive(Debug, Clone, Default)]
pub struct Carriers {
    /// The bridge's connection is up (its ConnAck received, no failure since).
    pub main_up: Arc<AtomicBool>,
    /// The standby connection is up.
    pub standby_up: Arc<AtomicBool>,
    /// The standby carries the protocol's publications now (logged once per outage).
    carrying: Arc<AtomicBool>,
}

/// The protocol lane's publisher: the bridge's connection, or the standby while the bridge's
/// connection is down and the standby is up.
#[derive(Clone)]
pub struct ProtocolPublisher<P = AsyncClient> {
    main: P,
    standby: Option<P>,
    carriers: Carriers,
    metrics: Arc<Metrics>,
}

impl<P: Publisher> ProtocolPublisher<P> {
    /// Publishes through `main`, or through `standby` (when there is one) while `main` is down.
    pub fn new(main: P, standby: Option<P>, carriers: Carriers, metrics: Arc<Metrics>) -> Self {
        ProtocolPublisher {
            main,
            standby,
            carriers,
            metrics,
        }
    }

    /// The standby, when it must carry the next publication.
    fn standby_now(&self) -> Option<&P> {
        let main_up = self.carriers.main_up.load(Ordering::Acquire);
        let standby_up = self.carriers.standby_up.load(Ordering::Acquire);
        let standby = self.standby.as_ref().filter(|_| !main_up && standby_up);
        // Read on every publication, written only when it changes: no write on the hot path.
        let carrying = &self.carriers.carrying;
        let was_carrying = carrying.load(Ordering::Acquire);
        if was_carrying != standby.is_some() {
            carrying.store(standby.is_some(), Ordering::Release);
        }
        match (was_carrying, standby.is_some()) {
            (false, true) => {
                info!("the broker connection is down: publishing through the standby connection")
            }
            (true, false) if main_up => {
                info!("the broker connection is up again: the standby connection rests")
            }
            _ => {}
        }
        standby
    }
}

impl<P: Publisher> Publisher for ProtocolPublisher<P> {
    async fn publish(&self, outbound: Outbound) -> Result<(), ()> {
        match self.standby_now() {
            // A standby that fails is not the end of the lane: the message is lost, as it
            // would be on a connection that failed after taking it.
            Some(standby) => {
                if standby.publish(outbound).await.is_ok() {
                    self.metrics.standby_publications.increment();
                }
                Ok(())
            }
            None => self.main.publish(outbound).await,
        }
    }

    fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
        match self.standby_now() {
            Some(standby) => {
                let handed = standby.try_publish(outbound);
                if handed.is_ok() {
                    self.metrics.standby_publications.increment();
                }
                handed
            }
            None => self.main.try_publish(outbound),
        }
    }
}

/// The standby's side, which the bridge's connection task tells where it connected.
#[derive(Clone)]
pub struct StandbyHandle {
    client: AsyncClient,
    /// The position of the standby's broker.
    at: Arc<AtomicUsize>,
}

impl StandbyHandle {
    /// The bridge's connection is up on the broker at `main`: the standby leaves it if it is
    /// there too, for the next one.
    pub fn main_connected(&self, main: usize) {
        if self.at.load(Ordering::Acquire) == main {
            debug!(
                position = main + 1,
                "the standby connection leaves the broker the bridge's connection is on"
            );
            let _ = self.client.try_disconnect();
        }
    }

    /// Ends the standby connection (a clean stop).
    pub fn stop(&self) {
        let _ = self.client.try_disconnect();
    }
}

/// The standby connection's event loop, and where it connects.
pub struct StandbyLink {
    event_loop: EventLoop,
    settings: MqttSettings,
    client_id: String,
    /// The position of the bridge's broker.
    main_position: Arc<AtomicUsize>,
    /// The position of the standby's.
    at: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
    client: AsyncClient,
}

/// The standby connection of the bridge whose client id is `client_id`, when its list has more
/// than one broker and `[broker] standby` is on: its client (for the protocol's publisher), its handle (for the bridge's
/// connection task) and its link (for its own task). `main_position` is where the bridge's
/// connection is.
pub fn standby_link(
    settings: &MqttSettings,
    client_id: &str,
    main_position: Arc<AtomicUsize>,
    carriers: &Carriers,
) -> Option<(AsyncClient, StandbyHandle, StandbyLink)> {
    if !settings.standby {
        return None;
    }
    let position = standby_position(
        main_position.load(Ordering::Acquire),
        settings.brokers.len(),
    )?;
    let client_id = format!("{client_id}{CLIENT_ID_SUFFIX}");
    let options = settings.options_at(position, client_id.clone());
    let (client, event_loop) = MqttSettings::client(options, MqttSettings::CLIENT_QUEUE);
    let at = Arc::new(AtomicUsize::new(position));
    let handle = StandbyHandle {
        client: client.clone(),
        at: at.clone(),
    };
    let link = StandbyLink {
        event_loop,
        settings: settings.clone(),
        client_id,
        main_position,
        at,
        up: carriers.standby_up.clone(),
        client: client.clone(),
    };
    Some((client, handle, link))
}

/// Drives the standby connection until a clean stop (`stopping`): connects to the broker after
/// the bridge's, reconnects with backoff, and moves when told. What it was given and did not
/// send when it failed is dropped: heartbeats and answers are news, and stale ones would mislead.
pub async fn drive(link: StandbyLink, stopping: Arc<AtomicBool>) {
    let StandbyLink {
        mut event_loop,
        settings,
        client_id,
        main_position,
        at,
        up,
        client,
    } = link;
    let count = settings.brokers.len();
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    let mut reported = false;
    let aim = |event_loop: &mut EventLoop| {
        let main = main_position.load(Ordering::Acquire);
        let position = standby_position(main, count).unwrap_or(main);
        at.store(position, Ordering::Release);
        event_loop.mqtt_options = settings.options_at(position, client_id.clone());
    };
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                reported = false;
                let main = main_position.load(Ordering::Acquire);
                if at.load(Ordering::Acquire) == main {
                    // The bridge's connection moved here while this one was connecting.
                    let _ = client.try_disconnect();
                } else {
                    up.store(true, Ordering::Release);
                    debug!(broker = %settings.brokers.at(at.load(Ordering::Acquire)), "the standby connection is up");
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) if stopping.load(Ordering::SeqCst) => break,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Told to leave the broker the bridge's connection came up on.
                up.store(false, Ordering::Release);
                event_loop.clean();
                event_loop.pending.clear();
                aim(&mut event_loop);
            }
            Ok(_) => {}
            Err(err) => {
                up.store(false, Ordering::Release);
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if reported {
                    debug!(%err, "the standby connection failed");
                } else {
                    warn!(%err, "the standby connection failed: reconnecting");
                    reported = true;
                }
                event_loop.pending.clear();
                aim(&mut event_loop);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    up.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::net::TcpListener;

    use super::super::scripted_broker::Peer;
    use super::*;

    /// A publisher that keeps the topics it is handed.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<String>>>);

    impl Publisher for Kept {
        async fn publish(&self, outbound: Outbound) -> Result<(), ()> {
            self.0.lock().unwrap().push(outbound.topic);
            Ok(())
        }

        fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
            self.0.lock().unwrap().push(outbound.topic);
            Ok(())
        }
    }

    impl Kept {
        fn topics(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    fn heartbeat(at: usize) -> Outbound {
        Outbound {
            topic: format!("/dhcp/heartbeat/0001/{at:04}"),
            payload: b"ONLINE".to_vec(),
            retain: false,
        }
    }

    #[test]
    fn the_standby_is_the_next_broker_of_the_list() {
        assert_eq!(standby_position(0, 1), None, "one broker: no standby");
        assert_eq!(standby_position(0, 2), Some(1));
        assert_eq!(standby_position(1, 2), Some(0));
        assert_eq!(standby_position(1, 3), Some(2));
        assert_eq!(standby_position(2, 3), Some(0), "wraps around");
    }

    /// The bridge's connection carries everything while it is up; the standby only while it is
    /// down and the standby is up; with both down, the bridge's connection queues it.
    #[tokio::test]
    async fn the_standby_carries_the_protocol_only_while_the_connection_is_down() {
        let (main, standby) = (Kept::default(), Kept::default());
        let carriers = Carriers::default();
        let metrics = Arc::new(Metrics::default());
        let publisher = ProtocolPublisher::new(
            main.clone(),
            Some(standby.clone()),
            carriers.clone(),
            metrics.clone(),
        );
        let set = |main_up: bool, standby_up: bool| {
            carriers.main_up.store(main_up, Ordering::Release);
            carriers.standby_up.store(standby_up, Ordering::Release);
        };
        set(true, true);
        publisher.publish(heartbeat(1)).await.unwrap();
        set(false, true);
        publisher.publish(heartbeat(2)).await.unwrap();
        assert!(publisher.try_publish(heartbeat(3)).is_ok());
        set(false, false);
        publisher.publish(heartbeat(4)).await.unwrap();
        set(true, false);
        assert!(publisher.try_publish(heartbeat(5)).is_ok());
        let topics = |list: &[usize]| -> Vec<String> {
            list.iter().map(|at| heartbeat(*at).topic).collect()
        };
        assert_eq!(main.topics(), topics(&[1, 4, 5]));
        assert_eq!(standby.topics(), topics(&[2, 3]));
        assert_eq!(metrics.standby_publications.get(), 2);
    }

    /// A process with one broker has no standby: everything goes to its connection.
    #[tokio::test]
    async fn without_a_standby_the_connection_carries_everything() {
        let main = Kept::default();
        let carriers = Carriers::default();
        carriers.standby_up.store(true, Ordering::Release);
        let publisher =
            ProtocolPublisher::new(main.clone(), None, carriers, Arc::new(Metrics::default()));
        publisher.publish(heartbeat(1)).await.unwrap();
        assert!(publisher.try_publish(heartbeat(2)).is_ok());
        assert_eq!(main.topics().len(), 2);
    }

    /// The standby connects beforehand to the broker after the bridge's, carries heartbeats
    /// there at once while the bridge's connection is down, and leaves that broker for the
    /// next when the bridge's connection comes up on it.
    #[tokio::test]
    async fn the_standby_connects_beforehand_and_moves_off_the_bridges_broker() {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let list = janitoo_config::BrokerList::new(vec![
            first.local_addr().unwrap().into(),
            second.local_addr().unwrap().into(),
        ])
        .unwrap();
        let settings = MqttSettings::plain(list);
        let main_position = Arc::new(AtomicUsize::new(0));
        let carriers = Carriers::default();
        let (client, handle, link) =
            standby_link(&settings, "janitoo-test", main_position.clone(), &carriers)
                .expect("two brokers have a standby");
        let stopping = Arc::new(AtomicBool::new(false));
        let driving = tokio::spawn(drive(link, stopping.clone()));

        let mut on_second = Peer::accept(&second).await;
        assert_eq!(on_second.client_id, "janitoo-test-standby");
        let up = async {
            while !carriers.standby_up.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), up)
            .await
            .expect("the standby never said it was up");
        let (main, _main_loop) = MqttSettings::client(settings.options("janitoo-test"), 16);
        let publisher = ProtocolPublisher::new(
            main,
            Some(client),
            carriers.clone(),
            Arc::new(Metrics::default()),
        );
        publisher.publish(heartbeat(1)).await.unwrap();
        assert_eq!(
            on_second.publication_topics(1).await,
            [heartbeat(1).topic],
            "the heartbeat did not go through the standby"
        );

        // The bridge's connection comes up on the second broker: the standby goes to the first.
        main_position.store(1, Ordering::Release);
        handle.main_connected(1);
        tokio::time::timeout(Duration::from_secs(10), on_second.ended())
            .await
            .expect("the standby stayed on the bridge's broker");
        let on_first = Peer::accept(&first).await;
        assert_eq!(on_first.client_id, "janitoo-test-standby");

        // A clean stop ends it, at once and without connecting again.
        stopping.store(true, Ordering::SeqCst);
        handle.stop();
        tokio::time::timeout(Duration::from_secs(2), driving)
            .await
            .expect("the standby's task did not end at a clean stop")
            .unwrap();
        assert!(!carriers.standby_up.load(Ordering::Acquire));
        let again = tokio::time::timeout(Duration::from_millis(500), first.accept()).await;
        assert!(
            again.is_err(),
            "the standby connected again after a clean stop"
        );
    }
}
