//! What the actor tests share: a stand-in for the bridge that keeps what it is given, stamped
//! with tokio's (paused) clock, and a node set up with a component of the test's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use janitoo_actors::messages::{
    ConnectionChanged, Observe, ObserveRaw, Observed, Publish, PublishRecord, PublishRetained,
    Resubscribe,
};
use janitoo_actors::{Component, ComponentInfo, Metrics, NodeLinks, NodeSetup};
use janitoo_config::NodeKey;
use janitoo_protocol::{Hadd, Message, Topic};
use tokio::time::Instant;

/// What the stand-in bridge was given, and when (since the test started).
#[derive(Clone, Default)]
pub struct Published(Arc<Mutex<Vec<(Duration, Topic, Message)>>>);

impl Published {
    /// Every publication on `topic`, with its time.
    pub fn on(&self, topic: &Topic) -> Vec<(Duration, Message)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, on, _)| on == topic)
            .map(|(at, _, message)| (*at, message.clone()))
            .collect()
    }

    /// The times of the publications on `topic`, in whole seconds since the start.
    pub fn seconds_on(&self, topic: &Topic) -> Vec<u64> {
        self.on(topic).iter().map(|(at, _)| at.as_secs()).collect()
    }
}

/// Stands in for the bridge: keeps every publication, and the observers that registered.
pub struct Wire {
    published: Published,
    origin: Instant,
    observers: Observers,
}

/// An observer: where its messages go, where the connection's changes go.
type Observer = (Recipient<Observed>, Recipient<ConnectionChanged>);

/// The observers of the protocol's messages that registered with the wire.
#[derive(Clone, Default)]
pub struct Observers(Arc<Mutex<Vec<Observer>>>);

impl Observers {
    /// Tells every observer of `message` on `topic`, as the bridge would.
    pub fn hear(&self, topic: Topic, message: Message) {
        for (observer, _) in self.0.lock().unwrap().iter() {
            observer.do_send(Observed {
                topic: topic.clone(),
                message: message.clone(),
            });
        }
    }

    /// Tells every observer the connection is up or down.
    pub fn connected(&self, connected: bool) {
        for (_, connection) in self.0.lock().unwrap().iter() {
            connection.do_send(ConnectionChanged { connected });
        }
    }

    /// How many registered.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Wire {
    /// A wire whose clock starts now.
    pub fn start() -> (Addr<Wire>, Published) {
        let (wire, published, _) = Wire::start_observed();
        (wire, published)
    }

    /// A wire whose clock starts now, and its observers.
    pub fn start_observed() -> (Addr<Wire>, Published, Observers) {
        let published = Published::default();
        let observers = Observers::default();
        let wire = Wire {
            published: published.clone(),
            origin: Instant::now(),
            observers: observers.clone(),
        };
        (wire.start(), published, observers)
    }
}

impl Actor for Wire {
    type Context = Context<Self>;
}

impl Handler<Publish> for Wire {
    type Result = ();

    fn handle(&mut self, msg: Publish, _ctx: &mut Context<Self>) {
        let at = self.origin.elapsed();
        self.published
            .0
            .lock()
            .unwrap()
            .push((at, msg.topic, msg.message));
    }
}

impl Handler<PublishRetained> for Wire {
    type Result = ();

    fn handle(&mut self, _msg: PublishRetained, _ctx: &mut Context<Self>) {}
}

impl Handler<PublishRecord> for Wire {
    type Result = ();

    fn handle(&mut self, msg: PublishRecord, _ctx: &mut Context<Self>) {
        let at = self.origin.elapsed();
        self.published
            .0
            .lock()
            .unwrap()
            .push((at, msg.topic, msg.message));
    }
}

impl Handler<Observe> for Wire {
    type Result = ();

    fn handle(&mut self, msg: Observe, _ctx: &mut Context<Self>) {
        self.observers
            .0
            .lock()
            .unwrap()
            .push((msg.observer, msg.connection));
    }
}

impl Handler<ObserveRaw> for Wire {
    type Result = ();

    fn handle(&mut self, _msg: ObserveRaw, _ctx: &mut Context<Self>) {}
}

impl Handler<Resubscribe> for Wire {
    type Result = ();

    fn handle(&mut self, _msg: Resubscribe, _ctx: &mut Context<Self>) {}
}

/// A node of `hadd` beating every `heartbeat` seconds, with `component`.
pub fn node_setup(hadd: Hadd, heartbeat: f64, component: Option<Arc<dyn Component>>) -> NodeSetup {
    NodeSetup {
        hadd,
        uuid: "test__node".into(),
        key: NodeKey::Component {
            bus: "test".into(),
            key: "node".into(),
        },
        oid: "test.node".into(),
        product: ComponentInfo::software("Test node"),
        name: "Test node".into(),
        location: "Bench".into(),
        heartbeat,
        config_timeout: 3.0,
        component,
        settings: BTreeMap::new(),
        will: None,
        readings: Default::default(),
    }
}

/// A node's links to `wire`, without write-back.
pub fn links(wire: &Addr<Wire>) -> NodeLinks {
    NodeLinks {
        publisher: wire.clone().recipient(),
        persist: None,
        max_string: 4096,
        metrics: Arc::new(Metrics::default()),
        values: Default::default(),
    }
}

/// Lets the paused clock run `seconds` (timers fire on the way).
pub async fn run_for(seconds: f64) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
}
