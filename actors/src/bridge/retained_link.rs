//! The retained publications' own connection to the broker.
//!
//! A broker may stop reading a connection while it stores a retained publication: NATS does,
//! for seconds, while JetStream elects a new leader after a server died, and every packet behind
//! it on that connection waits, heartbeats included (measured: a 4 to 8 s gap in a controller's
//! beats, long enough for the others to tell it FAILED). Retained publications (Home
//! Assistant's discovery and availability, which a new primary re-asserts at once) therefore go
//! through a second connection, `<client id>-retained`: no Will, no subscription, opened at the
//! first retained publication (most processes never make one), and to the broker the bridge's
//! connection uses (after a failure it follows the bridge's current broker).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, Request};
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::backoff::Backoff;
use super::connection::MqttSettings;
use super::outbound::{Outbound, Publisher};

/// The suffix of the retained connection's client id.
pub const CLIENT_ID_SUFFIX: &str = "-retained";

/// The retained lane's publisher: the second connection's client, which asks for the
/// connection at its first publication.
#[derive(Clone)]
pub struct RetainedPublisher {
    client: AsyncClient,
    wanted: Arc<Notify>,
}

impl RetainedPublisher {
    /// The client, to disconnect at a clean stop.
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }
}

impl Publisher for RetainedPublisher {
    async fn publish(&self, outbound: Outbound) -> Result<(), ()> {
        self.wanted.notify_one();
        Publisher::publish(&self.client, outbound).await
    }

    fn try_publish(&self, outbound: Outbound) -> Result<(), Outbound> {
        self.wanted.notify_one();
        Publisher::try_publish(&self.client, outbound)
    }
}

/// The second connection's event loop, and where it connects.
pub struct RetainedLink {
    event_loop: EventLoop,
    settings: MqttSettings,
    client_id: String,
    /// The position in the broker list of the bridge's connection.
    position: Arc<AtomicUsize>,
    wanted: Arc<Notify>,
}

/// The retained connection of the bridge whose client id is `client_id`, to the broker at
/// `position` (which the bridge's connection updates when it moves), `capacity` requests
/// queued at most.
pub fn retained_link(
    settings: &MqttSettings,
    client_id: &str,
    position: Arc<AtomicUsize>,
    capacity: usize,
) -> (RetainedPublisher, RetainedLink) {
    let client_id = format!("{client_id}{CLIENT_ID_SUFFIX}");
    let options = settings.options_at(position.load(Ordering::Acquire), client_id.clone());
    let (client, event_loop) = MqttSettings::client(options, capacity);
    let wanted = Arc::new(Notify::new());
    let publisher = RetainedPublisher {
        client,
        wanted: wanted.clone(),
    };
    let link = RetainedLink {
        event_loop,
        settings: settings.clone(),
        client_id,
        position,
        wanted,
    };
    (publisher, link)
}

/// Drives the retained connection: from the first retained publication until a clean stop
/// (`stopping`), reconnecting with backoff to the bridge's current broker. What was not
/// acknowledged when a connection failed, or still queued, is sent again on the next: nothing
/// handed to it is lost.
pub async fn drive(link: RetainedLink, stopping: Arc<AtomicBool>) {
    let RetainedLink {
        mut event_loop,
        settings,
        client_id,
        position,
        wanted,
    } = link;
    wanted.notified().await;
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    let mut reported = false;
    // What a failed connection left unsent or unacknowledged: rumqttc forgets it when the next
    // connection starts a new session (ours are clean), so it is kept aside and given back.
    let mut unsent: VecDeque<Request> = VecDeque::new();
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                reported = false;
                debug!(client = %client_id, again = unsent.len(), "the retained publications' connection is up");
                event_loop.pending.extend(unsent.drain(..));
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) if stopping.load(Ordering::SeqCst) => break,
            Ok(_) => {}
            Err(err) => {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if reported {
                    debug!(%err, "the retained publications' connection failed");
                } else {
                    warn!(%err, "the retained publications' connection failed: reconnecting");
                    reported = true;
                }
                // What was not acknowledged (rumqttc moved it aside, with what was queued)
                // goes again on the next connection.
                unsent.extend(event_loop.pending.drain(..));
                // Where the bridge is now: the broker that failed may be the one it left.
                let at = position.load(Ordering::Acquire);
                event_loop.mqtt_options = settings.options_at(at, client_id.clone());
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::super::scripted_broker::Peer;
    use super::*;

    fn retained(topic: &str) -> Outbound {
        Outbound {
            topic: topic.into(),
            payload: b"online".to_vec(),
            retain: true,
        }
    }

    /// A broker that reads retained publications and drops the connection before it
    /// acknowledges them (NATS, when JetStream cannot store them in time): they are published
    /// again on the next connection, with what was queued meanwhile.
    #[tokio::test]
    async fn what_a_failed_connection_left_unacknowledged_is_published_again() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let settings = MqttSettings::plain(listener.local_addr().unwrap());
        let (publisher, link) =
            retained_link(&settings, "janitoo-test", Arc::new(AtomicUsize::new(0)), 16);
        let stopping = Arc::new(AtomicBool::new(false));
        let driving = tokio::spawn(drive(link, stopping.clone()));
        for topic in ["a", "b", "c"] {
            publisher.publish(retained(topic)).await.unwrap();
        }
        let mut first = Peer::accept(&listener).await;
        assert_eq!(first.retained_publications(3, false).await, ["a", "b", "c"]);
        drop(first);
        publisher.publish(retained("d")).await.unwrap();
        let mut second = Peer::accept(&listener).await;
        let again = tokio::time::timeout(
            Duration::from_secs(10),
            second.retained_publications(4, true),
        );
        let again = again
            .await
            .expect("what the first connection left was never sent again");
        assert_eq!(again, ["a", "b", "c", "d"]);
        stopping.store(true, Ordering::SeqCst);
        driving.abort();
    }

    /// Nothing connects before the first retained publication: most processes never make one.
    #[tokio::test]
    async fn the_connection_opens_at_the_first_retained_publication() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let settings = MqttSettings::plain(listener.local_addr().unwrap());
        let (publisher, link) =
            retained_link(&settings, "janitoo-test", Arc::new(AtomicUsize::new(0)), 16);
        let driving = tokio::spawn(drive(link, Arc::new(AtomicBool::new(false))));
        let early = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(early.is_err(), "connected before any retained publication");
        // The lanes' fast path hands a publication over at once: it asks for the connection
        // as well.
        assert!(publisher.try_publish(retained("a")).is_ok());
        let mut peer = Peer::accept(&listener).await;
        assert_eq!(peer.retained_publications(1, true).await, ["a"]);
        driving.abort();
    }
}
