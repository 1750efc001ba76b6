//! A node's timers on paused time: its heartbeat every period, a new period applied at once,
//! its health told at once when a reading fails or comes back; a value polled every period,
//! a new poll period applied at once, a failed first read tried again soon.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use crate::common::{links, node_setup, run_for, Wire};
use actix::prelude::*;
use janitoo_actors::messages::ApplyRequest;
use janitoo_actors::{Component, ComponentError, ComponentInfo, NodeActor, ValueSpec};
use janitoo_protocol::{
    CommandClass, Data, Genre, Hadd, Message, NodeState, Request, Topic, ValueType,
};

const NODE: Hadd = Hadd::new(220, 1);

/// A sensor whose `reading` is polled every 60 s, and fails while `failing`, or for its first
/// `false_starts` reads.
struct Sensor {
    failing: AtomicBool,
    false_starts: AtomicU32,
    reads: AtomicU32,
}

impl Sensor {
    fn new(false_starts: u32) -> Arc<Sensor> {
        Arc::new(Sensor {
            failing: AtomicBool::new(false),
            false_starts: AtomicU32::new(false_starts),
            reads: AtomicU32::new(0),
        })
    }
}

impl Component for Sensor {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Test sensor")
    }

    fn values(&self) -> Vec<ValueSpec> {
        vec![ValueSpec::sensor("reading", ValueType::Decimal)
            .poll(60.0)
            .cheap_read()]
    }

    fn read(&self, _uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let starting = self
            .false_starts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if starting || self.failing.load(Ordering::SeqCst) {
            return Err(ComponentError::Unavailable("unplugged".into()));
        }
        Ok(Data::from(21.5))
    }
}

fn heartbeats(published: &crate::common::Published) -> Vec<(u64, NodeState)> {
    published
        .on(&Topic::Heartbeat(NODE))
        .into_iter()
        .map(|(at, message)| match message {
            Message::Heartbeat(beat) => (at.as_secs(), beat.state),
            other => panic!("not a heartbeat: {other:?}"),
        })
        .collect()
}

fn readings() -> Topic {
    Topic::Value {
        genre: Genre::User,
        hadd: NODE,
        uuid: "reading".into(),
    }
}

fn set(uuid: &str, genre: Genre, data: impl Into<Data>) -> ApplyRequest {
    ApplyRequest::new(Request::set(
        NODE,
        uuid,
        genre,
        CommandClass::CONFIGURATION,
        data.into(),
    ))
}

#[actix::test]
async fn a_node_beats_every_period_and_a_new_period_applies_at_once() {
    tokio::time::pause();
    let (wire, published) = Wire::start();
    let node = NodeActor::new(node_setup(NODE, 30.0, None), links(&wire)).start();
    run_for(95.0).await;
    assert_eq!(
        heartbeats(&published),
        [
            (30, NodeState::Online),
            (60, NodeState::Online),
            (90, NodeState::Online)
        ]
    );
    let answer = node.send(set("heartbeat", Genre::System, 5)).await.unwrap();
    assert_eq!(answer.map(|value| value.data), Ok(Data::from(5)));
    run_for(16.0).await;
    let beats: Vec<u64> = heartbeats(&published).iter().map(|(at, _)| *at).collect();
    assert_eq!(
        beats,
        [30, 60, 90, 95, 100, 105, 110],
        "a beat at once, then every 5 s"
    );
}

#[actix::test]
async fn a_failed_reading_is_told_at_once_and_so_is_its_return() {
    tokio::time::pause();
    let (wire, published) = Wire::start();
    let sensor = Sensor::new(0);
    let setup = node_setup(NODE, 30.0, Some(sensor.clone()));
    let node = NodeActor::new(setup, links(&wire)).start();
    run_for(1.0).await;
    node.send(set("reading_poll", Genre::Config, 10))
        .await
        .unwrap()
        .unwrap();
    sensor.failing.store(true, Ordering::SeqCst);
    // Half a second past the polls: the test looks once the poll has been handled.
    run_for(10.5).await;
    assert_eq!(heartbeats(&published), [(11, NodeState::Failed)]);
    sensor.failing.store(false, Ordering::SeqCst);
    run_for(20.0).await;
    assert_eq!(
        heartbeats(&published),
        [
            (11, NodeState::Failed),
            (21, NodeState::Online),
            (30, NodeState::Online)
        ],
        "told at the failed poll and at the next good one; the period is kept"
    );
}

#[actix::test]
async fn a_value_is_published_every_poll_period_and_a_new_period_applies_at_once() {
    tokio::time::pause();
    let (wire, published) = Wire::start();
    let sensor = Sensor::new(0);
    let node = NodeActor::new(node_setup(NODE, 300.0, Some(sensor.clone())), links(&wire)).start();
    run_for(185.0).await;
    assert_eq!(published.seconds_on(&readings()), [60, 120, 180]);
    let reading = &published.on(&readings())[0].1;
    assert!(
        matches!(reading, Message::Value(value) if value.instances()[0].data == 21.5),
        "{reading:?}"
    );
    node.send(set("reading_poll", Genre::Config, 10))
        .await
        .unwrap()
        .unwrap();
    run_for(31.0).await;
    assert_eq!(
        published.seconds_on(&readings()),
        [60, 120, 180, 195, 205, 215]
    );
    // Every publication is a read, besides the first read at start.
    assert_eq!(sensor.reads.load(Ordering::SeqCst), 7);
}

#[actix::test]
async fn a_failed_first_read_is_tried_again_every_few_seconds_not_a_period_later() {
    tokio::time::pause();
    let (wire, published) = Wire::start();
    let sensor = Sensor::new(3);
    let _node = NodeActor::new(node_setup(NODE, 300.0, Some(sensor.clone())), links(&wire)).start();
    run_for(10.0).await;
    assert_eq!(
        published.seconds_on(&readings()),
        [9],
        "read at start, failed, tried again at 3, 6 and 9 s"
    );
    assert_eq!(sensor.reads.load(Ordering::SeqCst), 4);
}

#[actix::test]
async fn a_nodes_stored_values_are_kept_as_a_get_answers_them() {
    tokio::time::pause();
    let (wire, _) = Wire::start();
    let links = links(&wire);
    let cache = links.values.clone();
    let node = NodeActor::new(node_setup(NODE, 300.0, Some(Sensor::new(0))), links).start();
    run_for(1.0).await;
    let name = cache.get(NODE, "name", 0).expect("a stored value is kept");
    assert_eq!(name.data, Data::from("Test node"));
    assert_eq!(
        cache.get(NODE, "reading", 0),
        None,
        "a sensor's get reads it"
    );
    let answered = node
        .send(ApplyRequest::new(Request::get(
            NODE,
            "location",
            Genre::Config,
            CommandClass::CONFIGURATION,
        )))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cache.get(NODE, "location", 0),
        Some(answered),
        "what the actor answers"
    );
    node.send(set("location", Genre::Config, "Cellar"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cache.get(NODE, "location", 0).unwrap().data,
        Data::from("Cellar")
    );
    node.send(set("reading_poll", Genre::Config, 10))
        .await
        .unwrap()
        .unwrap();
    run_for(1.0).await;
    assert_eq!(
        cache.get(NODE, "reading_poll", 0).unwrap().data,
        Data::from(10),
        "the poll period's value follows its set"
    );
}
