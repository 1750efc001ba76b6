//! What a Home Assistant would read on the broker: the retained discovery configs and
//! availability topics, as a client subscribed to them holds them.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Client;

/// A client holding the last payload of every topic under Home Assistant's prefix and the
/// network's availability topics (an empty payload removes the topic).
pub struct RetainedView {
    client: Client,
    /// Topic → payload.
    pub held: BTreeMap<String, Vec<u8>>,
    /// Every publication received, with when.
    pub log: Vec<(Instant, String, Vec<u8>)>,
}

impl RetainedView {
    /// Connects to `127.0.0.1:<port>` and subscribes to `homeassistant/#` and `janitoo/#`.
    pub async fn connect(port: u16) -> RetainedView {
        let mut client = Client::connect(port).await;
        client.subscribe("homeassistant/#").await;
        client.subscribe("janitoo/#").await;
        RetainedView {
            client,
            held: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    /// The client, to publish as a stranger (or as Home Assistant).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn take(&mut self) {
        for received in self.client.drain() {
            self.keep(received);
        }
    }

    /// Waits until `wanted` finds what it looks for in what is held, at most `limit`; it is
    /// asked again whenever a publication arrives.
    pub async fn wait_for<T>(
        &mut self,
        limit: Duration,
        wanted: impl Fn(&BTreeMap<String, Vec<u8>>) -> Option<T>,
    ) -> Option<T> {
        self.wait(limit, |view| {
            view.take();
            wanted(&view.held)
        })
        .await
    }

    /// Waits until `wanted` finds what it looks for in the publications received since
    /// `since` (in order), at most `limit`.
    pub async fn wait_since<T>(
        &mut self,
        since: Instant,
        limit: Duration,
        wanted: impl Fn(&[(String, Vec<u8>)]) -> Option<T>,
    ) -> Option<T> {
        self.wait(limit, |view| wanted(&view.since(since))).await
    }

    /// Asks `check` now and whenever a publication arrives, until it finds something or
    /// `limit` is over.
    async fn wait<T>(
        &mut self,
        limit: Duration,
        check: impl Fn(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = check(self) {
                return Some(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if let Some(received) = self.client.next_matching(left, |_| true).await {
                self.keep(received);
            }
        }
    }

    fn keep(&mut self, received: crate::client::Received) {
        self.log.push((
            Instant::now(),
            received.topic.clone(),
            received.payload.clone(),
        ));
        if received.payload.is_empty() {
            self.held.remove(&received.topic);
        } else {
            self.held.insert(received.topic, received.payload);
        }
    }

    /// The discovery configs held, parsed: topic → JSON.
    pub fn configs(&self) -> BTreeMap<String, serde_json::Value> {
        configs_in(&self.held)
    }

    /// Publications received so far.
    pub fn received_count(&mut self) -> usize {
        self.take();
        self.log.len()
    }

    /// Publications received since `since`.
    pub fn since(&mut self, since: Instant) -> Vec<(String, Vec<u8>)> {
        self.take();
        self.log
            .iter()
            .filter(|(at, _, _)| *at >= since)
            .map(|(_, topic, payload)| (topic.clone(), payload.clone()))
            .collect()
    }
}

/// The discovery configs among `held`, parsed.
pub fn configs_in(held: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, serde_json::Value> {
    held.iter()
        .filter(|(topic, _)| topic.starts_with("homeassistant/") && topic.ends_with("/config"))
        .filter_map(|(topic, payload)| {
            serde_json::from_slice(payload)
                .ok()
                .map(|json| (topic.clone(), json))
        })
        .collect()
}

/// The availability topic of node `cccc_nnnn` on the default network.
pub fn availability(node: &str) -> String {
    format!("janitoo/janitoo/availability/{node}")
}
