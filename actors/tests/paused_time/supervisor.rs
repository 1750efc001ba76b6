//! A network controller driving its core on paused time: it claims after listening for the
//! silence limit and beats every interval; a node gone silent is told PENDING after three of
//! its periods and FAILED after six; a node that says its period is longer is not.

use std::sync::Arc;

use crate::common::{run_for, Observers, Published, Wire};
use actix::prelude::*;
use janitoo_actors::{Metrics, NetworkSupervisor, SupervisorLinks, SupervisorSetup};
use janitoo_protocol::election::{ElectionConfig, Rank, Role};
use janitoo_protocol::liveness::LivenessConfig;
use janitoo_protocol::{
    Data, Genre, Hadd, HaddTarget, Heartbeat, Message, NodeState, ResolvHeartbeat, Topic,
    ValueDescriptor, ValuePublication,
};

const ME: Hadd = Hadd::new(2, 0);
const NODE: Hadd = Hadd::new(220, 1);

/// A primary-to-be on `wire`, connected, and its counters.
async fn controller() -> (Published, Observers, Arc<Metrics>) {
    controller_with(Role::Auto, ElectionConfig::default()).await
}

/// A network controller of `role` and `election` on `wire`, connected, and its counters.
async fn controller_with(
    role: Role,
    election: ElectionConfig,
) -> (Published, Observers, Arc<Metrics>) {
    let (wire, published, observers) = Wire::start_observed();
    let setup = SupervisorSetup {
        hadd: ME,
        rank: Rank { role, priority: 1 },
        election,
        liveness: LivenessConfig::default(),
        home_assistant: None,
        state_dir: None,
    };
    let links = SupervisorLinks {
        publisher: wire.clone().recipient(),
        observe: wire.clone().recipient(),
        retained: wire.clone().recipient(),
        observe_raw: wire.clone().recipient(),
        resubscribe: wire.clone().recipient(),
        records: wire.recipient(),
    };
    let metrics = Arc::new(Metrics::default());
    NetworkSupervisor::new(setup, links, metrics.clone()).start();
    // The supervisor registers as it starts; the bridge then says the connection is up.
    while observers.count() == 0 {
        tokio::task::yield_now().await;
    }
    observers.connected(true);
    (published, observers, metrics)
}

/// The node beats once.
fn beat(observers: &Observers) {
    observers.hear(
        Topic::Heartbeat(NODE),
        Message::Heartbeat(Heartbeat::own(NODE, NodeState::Online)),
    );
}

/// The node publishes its heartbeat period, as after a set of its `heartbeat` value.
fn tell_period(observers: &Observers, seconds: u32) {
    let value = ValueDescriptor {
        uuid: "heartbeat".into(),
        hadd: Some(NODE),
        genre: Genre::System,
        data: Data::from(seconds),
        ..ValueDescriptor::default()
    };
    observers.hear(
        Topic::Value {
            genre: Genre::System,
            hadd: NODE,
            uuid: "heartbeat".into(),
        },
        Message::Value(ValuePublication::Single(Box::new(value))),
    );
}

/// What the primary told of the node, with the time in tenths of a second.
fn told(published: &Published) -> Vec<(u64, NodeState)> {
    published
        .on(&Topic::HeartbeatOnBehalf)
        .into_iter()
        .filter_map(|(at, message)| match message {
            Message::HeartbeatOnBehalf(beat) if beat.target == HaddTarget::Node(NODE) => {
                Some((at.as_millis() as u64 / 100, beat.state))
            }
            _ => None,
        })
        .collect()
}

#[actix::test]
async fn a_lone_controller_claims_after_the_silence_limit_and_beats_every_interval() {
    tokio::time::pause();
    let (published, _observers, metrics) = controller().await;
    run_for(2.9).await;
    assert!(
        published.on(&Topic::ResolvHeartbeat).is_empty(),
        "listening"
    );
    assert_eq!(metrics.primary.get(), 0);
    run_for(5.0).await;
    assert_eq!(metrics.primary.get(), 1);
    let beats: Vec<u128> = published
        .on(&Topic::ResolvHeartbeat)
        .iter()
        .map(|(at, _)| at.as_millis() / 100)
        .collect();
    assert!(beats.len() >= 5, "{beats:?}");
    assert!((30..=31).contains(&beats[0]), "claimed at {beats:?}");
    for pair in beats.windows(2) {
        assert!((9..=11).contains(&(pair[1] - pair[0])), "{beats:?}");
    }
    assert!(metrics.epoch.get() > 0);
}

#[actix::test]
async fn a_silent_node_is_told_pending_after_three_periods_and_failed_after_six() {
    tokio::time::pause();
    let (published, observers, _) = controller().await;
    run_for(4.0).await;
    tell_period(&observers, 2);
    for _ in 0..5 {
        beat(&observers);
        run_for(2.0).await;
    }
    // Last beat at 12 s: PENDING past 3 tolerant periods (6.6 s), FAILED past 6 (13.2 s).
    assert!(told(&published).is_empty());
    run_for(20.0).await;
    let told = told(&published);
    let states: Vec<NodeState> = told.iter().map(|(_, state)| *state).collect();
    assert_eq!(states, [NodeState::Pending, NodeState::Failed], "{told:?}");
    let (pending, failed) = (told[0].0, told[1].0);
    assert!(
        (186..=190).contains(&pending),
        "PENDING at {pending} tenths"
    );
    assert!((252..=256).contains(&failed), "FAILED at {failed} tenths");
}

/// A node beating every 2 s is set to beat every 20 s over the network: the primary learns
/// the new period from the node's publication and tells nothing of it.
#[actix::test]
async fn a_period_made_longer_over_the_network_is_learned() {
    tokio::time::pause();
    let (published, observers, _) = controller().await;
    run_for(4.0).await;
    tell_period(&observers, 2);
    for _ in 0..3 {
        beat(&observers);
        run_for(2.0).await;
    }
    tell_period(&observers, 20);
    for _ in 0..4 {
        beat(&observers);
        run_for(20.0).await;
    }
    assert_eq!(
        told(&published),
        [],
        "with 2 s still assumed: PENDING after 6.6 s"
    );
    run_for(70.0).await;
    let states: Vec<NodeState> = told(&published).iter().map(|(_, state)| *state).collect();
    assert_eq!(
        states,
        [NodeState::Pending],
        "silent for 66 s of a 20 s period"
    );
}

/// Beside the original's primary (resolv heartbeats without epoch, every 15 s, its
/// `resolv_timeout`), a secondary follows it while it beats and takes over three of its
/// periods after its last heartbeat; `t72` checks the same with real processes, faster.
#[actix::test]
async fn beside_an_original_primary_a_secondary_takes_over_three_of_its_periods_after_its_last() {
    tokio::time::pause();
    let election = ElectionConfig {
        original_primary: true,
        original_interval: std::time::Duration::from_secs(15),
        ..ElectionConfig::default()
    };
    let (published, observers, metrics) = controller_with(Role::Secondary, election).await;
    let original = Message::ResolvHeartbeat(ResolvHeartbeat {
        hadd: Hadd::new(1, 0),
        state: NodeState::Online,
        epoch: None,
    });
    for _ in 0..3 {
        observers.hear(Topic::ResolvHeartbeat, original.clone());
        run_for(15.0).await;
    }
    // Its last heartbeat was at 30 s.
    run_for(29.0).await;
    assert_eq!(
        metrics.primary.get(),
        0,
        "followed while it may still be beating"
    );
    assert!(published.on(&Topic::ResolvHeartbeat).is_empty());
    run_for(10.0).await;
    assert_eq!(metrics.primary.get(), 1, "taken over");
    let (claimed, _) = published.on(&Topic::ResolvHeartbeat)[0].clone();
    let after_last = claimed.as_secs_f64() - 30.0;
    assert!(
        (45.0..47.0).contains(&after_last),
        "claimed {after_last} s after the original's last heartbeat"
    );
}
