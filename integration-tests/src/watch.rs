//! A watcher: an MQTT client that records every message it hears, with when it heard it, and
//! subscribes again after each reconnection (a broker restart loses every subscription). Tests
//! wait on what it has recorded, never on a sleep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use janitoo_protocol::candidacy::Candidacy;
use janitoo_protocol::{Codec, Hadd, HaddTarget, Message, NodeState, Topic};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::time::Instant;

/// One message heard.
#[derive(Debug, Clone)]
pub struct Heard {
    /// When.
    pub at: Instant,
    /// Its topic.
    pub topic: Topic,
    /// What it said.
    pub message: Message,
}

/// A heartbeat sent on behalf of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatch {
    /// When it was heard.
    pub at: Instant,
    /// The node.
    pub node: Hadd,
    /// The state it was told.
    pub state: NodeState,
    /// The epoch it carried.
    pub epoch: Option<u64>,
    /// Who sent it.
    pub observer: Option<Hadd>,
}

/// The recording client.
pub struct Watcher {
    heard: Arc<Mutex<Vec<Heard>>>,
    connections: Arc<Mutex<u32>>,
    _client: AsyncClient,
}

impl Watcher {
    /// Connects to `host:port`, subscribes to `filters` (again after every reconnection), and
    /// waits for the first subscription.
    pub async fn start(host: &str, port: u16, filters: &[&str]) -> Watcher {
        let id = format!(
            "janitoo-watch-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let mut options = MqttOptions::new(id, host, port);
        options
            .set_max_packet_size(8 << 20, 8 << 20)
            .set_keep_alive(Duration::from_secs(5));
        let (client, mut event_loop) = AsyncClient::new(options, 1_000);
        event_loop.network_options.set_tcp_nodelay(true);
        event_loop.network_options.set_connection_timeout(2);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
        let (recorded, subscriber, counted) = (heard.clone(), client.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            let _ = subscriber.try_subscribe(filter, QoS::AtMostOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => *counted.lock().unwrap() += 1,
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let at = Instant::now();
                        let Ok(topic) = Topic::parse(&publish.topic) else {
                            continue;
                        };
                        if let Ok(message) = Message::decode(&topic, &publish.payload, Codec::Json)
                        {
                            recorded.lock().unwrap().push(Heard { at, topic, message });
                        }
                    }
                    Ok(_) => {}
                    // Back as soon as the broker is: a restarted broker is not missed.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        let watcher = Watcher {
            heard,
            connections,
            _client: client,
        };
        let subscribed = watcher
            .wait_for(Duration::from_secs(10), || {
                (watcher.subscriptions() > 0).then_some(())
            })
            .await;
        assert!(
            subscribed.is_some(),
            "the watcher could not subscribe on {host}:{port}"
        );
        watcher
    }

    /// Subscriptions made so far (one per filter and connection).
    pub fn subscriptions(&self) -> u32 {
        *self.connections.lock().unwrap()
    }

    /// Everything heard since `since`.
    pub fn since(&self, since: Instant) -> Vec<Heard> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|heard| heard.at >= since)
            .cloned()
            .collect()
    }

    /// Waits up to `limit` until `found` (which looks at what was heard through this watcher's
    /// methods) finds something.
    pub async fn wait_for<T>(&self, limit: Duration, found: impl Fn() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            let result = found();
            if result.is_some() || Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The heartbeats on behalf heard since `since`, one per node.
    pub fn dispatches(&self, since: Instant) -> Vec<Dispatch> {
        self.since(since)
            .into_iter()
            .filter_map(|heard| match heard.message {
                Message::HeartbeatOnBehalf(beat) => match beat.target {
                    HaddTarget::Node(node) => Some(Dispatch {
                        at: heard.at,
                        node,
                        state: beat.state,
                        epoch: beat.epoch,
                        observer: beat.observer,
                    }),
                    HaddTarget::AllNodes { .. } => None,
                },
                _ => None,
            })
            .collect()
    }

    /// The primary heartbeats heard since `since`: when, from whom, with which epoch.
    pub fn primaries(&self, since: Instant) -> Vec<(Instant, Hadd, u64)> {
        self.since(since)
            .into_iter()
            .filter_map(|heard| match heard.message {
                Message::ResolvHeartbeat(beat) => {
                    Some((heard.at, beat.hadd, beat.epoch.unwrap_or(0)))
                }
                _ => None,
            })
            .collect()
    }

    /// Waits up to `limit` for a candidacy of `hadd` heard since `since`: whether one came.
    pub async fn announced(&self, hadd: Hadd, since: Instant, limit: Duration) -> bool {
        self.wait_for(limit, || {
            self.candidacies(since)
                .into_iter()
                .any(|(_, candidacy)| candidacy.hadd == hadd)
                .then_some(())
        })
        .await
        .is_some()
    }

    /// The candidacies heard since `since`.
    pub fn candidacies(&self, since: Instant) -> Vec<(Instant, Candidacy)> {
        self.since(since)
            .into_iter()
            .filter_map(|heard| {
                Candidacy::from_message(&heard.topic, &heard.message).map(|c| (heard.at, c))
            })
            .collect()
    }
}

/// The primary heartbeats in `heard`, as (when, who, epoch).
pub fn primaries_in(heard: &[Heard]) -> Vec<(Instant, Hadd, u64)> {
    heard
        .iter()
        .filter_map(|h| match &h.message {
            Message::ResolvHeartbeat(beat) => Some((h.at, beat.hadd, beat.epoch.unwrap_or(0))),
            _ => None,
        })
        .collect()
}
