//! What the core asks for, and of whom.

use super::*;
use crate::model::InfoKind;

/// The requests published: topic and uuid.
fn asked(commands: &[Command]) -> Vec<(Topic, String)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Publish {
                topic,
                message: Message::Request(request),
            } => Some((topic.clone(), request.uuid.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_primary_asks_a_controller_it_never_heard_of_once() {
    let (mut core, _) = primary_with_node(4_000);
    let newcomer = Hadd::new(300, 0);
    let asked_now = asked(&beat(&mut core, newcomer, "ONLINE", 4_050));
    // Every kind, as the original's primary asks: its secondaries take the map as it is.
    let every_kind: Vec<(Topic, String)> = InfoKind::ALL
        .iter()
        .map(|kind| (Topic::NodeRequest(newcomer), kind.uuid().to_owned()))
        .collect();
    assert_eq!(asked_now, every_kind);
    assert!(
        asked(&beat(&mut core, newcomer, "ONLINE", 4_060)).is_empty(),
        "once"
    );
    assert!(
        asked(&beat(&mut core, Hadd::new(301, 1), "ONLINE", 4_070)).is_empty(),
        "not a controller"
    );
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,
            "data":{"0302/0000":{"hadd":"0302/0000","heartbeat":30}}}"#,
        4_080,
    );
    assert!(
        asked(&beat(&mut core, Hadd::new(302, 0), "ONLINE", 4_090)).is_empty(),
        "already in the map"
    );
    let mut follower = super::core(OTHER, Role::Secondary);
    assert!(
        asked(&beat(&mut follower, newcomer, "ONLINE", 100)).is_empty(),
        "only the primary asks"
    );
}

#[test]
fn a_node_back_from_silence_is_asked_for_its_period_again() {
    let (mut core, _) = primary_with_node(5_000);
    let silent = run(&mut core, 5_100, 9_000);
    assert_eq!(dispatches(&silent)[0].1, NodeState::Pending);
    let back = beat(&mut core, NODE, "ONLINE", 9_050);
    assert_eq!(
        asked(&back),
        [
            (
                Topic::NodeRequest(NODE.controller()),
                "request_info_nodes".to_owned()
            ),
            (
                Topic::NodeRequest(NODE.controller()),
                "request_info_systems".to_owned()
            ),
        ]
    );
    assert!(
        asked(&beat(&mut core, NODE, "ONLINE", 10_000)).is_empty(),
        "only when back"
    );
}

#[test]
fn answers_addressed_to_the_primary_alone_are_forwarded_to_the_secondaries() {
    let (mut core, epoch) = primary_with_node(4_000);
    let reply = r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"reply_hadd":"0001/0000",
        "data":{"0310/0000":{"hadd":"0310/0000","heartbeat":30}}}"#;
    let forwarded: Vec<Command> = hear(&mut core, "/nodes/0001/0000/reply", reply, 4_050);
    let [Command::Publish {
        topic: Topic::ResolvBroadcast,
        message: Message::DiscoveryReply(copy),
    }] = &forwarded
        .iter()
        .filter(|c| matches!(c, Command::Publish { .. }))
        .cloned()
        .collect::<Vec<_>>()[..]
    else {
        panic!("not forwarded: {forwarded:?}")
    };
    assert_eq!(copy.extra["epoch"], crate::Data::from(epoch));
    assert_eq!(copy.reply_hadd, None);
    let elsewhere = reply.replace("0310/0000", "0311/0000");
    let commands = hear(&mut core, "/nodes/0002/0000/reply", &elsewhere, 4_060);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Publish { .. })),
        "an answer to another is not the primary's to forward"
    );
}

#[test]
fn a_follower_asks_its_primary_for_the_map_once_and_again_after_a_reconnection() {
    let mut core = super::core(OTHER, Role::Secondary);
    let primary_beat = r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#;
    let first = hear(&mut core, "/dhcp/resolv/heartbeat", primary_beat, 100);
    let resolv: Vec<String> = asked(&first)
        .into_iter()
        .filter(|(topic, _)| *topic == Topic::ResolvRequest)
        .map(|(_, uuid)| uuid)
        .collect();
    assert_eq!(resolv.len(), InfoKind::ALL.len(), "{resolv:?}");
    assert!(asked(&hear(
        &mut core,
        "/dhcp/resolv/heartbeat",
        primary_beat,
        1_100
    ))
    .is_empty());
    core.on_connection(Connection::Down, ms(1_200));
    core.on_connection(Connection::Up, ms(3_000));
    let again = hear(&mut core, "/dhcp/resolv/heartbeat", primary_beat, 3_100);
    assert_eq!(
        asked(&again).len(),
        InfoKind::ALL.len(),
        "it may have missed updates"
    );
}

#[test]
fn gauges_are_set_when_they_change_and_the_census_every_two_seconds() {
    let mut core = super::core(ME, Role::Primary);
    let gauges = |commands: &[Command]| -> Vec<Gauge> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::Set(gauge) => Some(*gauge),
                _ => None,
            })
            .collect()
    };
    beat(&mut core, NODE, "ONLINE", 10);
    let mut claimed = Vec::new();
    for at in (100..=3_000).step_by(100) {
        claimed = core.on_tick(ms(at));
    }
    let epoch = core.epoch();
    assert_eq!(epoch, 0x1_0001);
    let set = gauges(&claimed);
    assert!(set.contains(&Gauge::Primary(true)), "{set:?}");
    assert!(set.contains(&Gauge::Epoch(epoch)));
    assert!(
        gauges(&core.on_tick(ms(3_100))).is_empty(),
        "nothing changed"
    );
    // The census: at 2 s from the last one (taken at 2 s), with the node ONLINE.
    let census: Vec<Gauge> = (3_200..=4_100)
        .step_by(100)
        .flat_map(|at| gauges(&core.on_tick(ms(at))))
        .collect();
    assert_eq!(census, [Gauge::NodesByState([1, 0, 0, 0, 0, 0])]);
    beat(&mut core, Hadd::new(223, 1), "OFFLINE", 4_200);
    beat(&mut core, Hadd::new(224, 1), "BOOT", 4_200);
    let later: Vec<Gauge> = (4_300..=6_100)
        .step_by(100)
        .flat_map(|at| gauges(&core.on_tick(ms(at))))
        .collect();
    assert_eq!(later, [Gauge::NodesByState([1, 0, 0, 0, 1, 1])]);
}

/// The issue's phantoms: heartbeats of made-up controllers. The primary asks a burst of them,
/// then a few per second, not thousands at once; each only once.
#[test]
fn newcomers_are_asked_in_a_burst_then_at_a_steady_rate() {
    let (mut core, _) = primary_with_node(4_000);
    let mut requests = 0;
    for phantom in 0..100u16 {
        let hadd = Hadd::new(1_000 + phantom, 0);
        requests += asked(&beat(&mut core, hadd, "ONLINE", 4_100)).len();
    }
    // Six requests (every kind) per controller asked.
    let kinds = InfoKind::ALL.len();
    assert_eq!(requests, kinds * DISCOVERY_BURST as usize);
    // One second later, five more; the ones not asked yet are asked when heard again.
    let mut later = 0;
    for phantom in 0..100u16 {
        let hadd = Hadd::new(1_000 + phantom, 0);
        later += asked(&beat(&mut core, hadd, "ONLINE", 5_100)).len();
    }
    assert_eq!(later, kinds * DISCOVERY_RATE as usize);
}

/// Heartbeats of made-up nodes beyond `max_nodes` are refused and counted: the map and the
/// dispatches stay bounded.
#[test]
fn nodes_beyond_the_cap_are_refused_and_counted() {
    let setup = CoreSetup {
        hadd: ME,
        rank: Rank {
            role: Role::Primary,
            priority: 0,
        },
        election: ElectionConfig::default(),
        liveness: LivenessConfig {
            max_nodes: 10,
            ..LivenessConfig::default()
        },
    };
    let mut core = NetworkCore::new(setup, ms(0));
    core.on_connection(Connection::Up, ms(0));
    let mut crowded = 0;
    for phantom in 0..50u16 {
        let commands = beat(&mut core, Hadd::new(500, 1 + phantom), "ONLINE", 100);
        crowded += commands
            .iter()
            .filter(|c| **c == Command::Count(Counter::Crowded))
            .count();
    }
    assert_eq!(core.liveness().len(), 10);
    assert_eq!(crowded, 40);
    assert!(core.view().nodes().len() <= 10, "the view is bounded too");
    // A node already watched is still heard.
    let known = beat(&mut core, Hadd::new(500, 1), "ONLINE", 200);
    assert!(!known.contains(&Command::Count(Counter::Crowded)));
}
