//! When the core notices a pause, and when a new primary catches up.

use super::*;

fn paused(commands: &[Command]) -> Option<Duration> {
    commands.iter().find_map(|c| match c {
        Command::Note(Note::Paused { gap }) => Some(*gap),
        _ => None,
    })
}

#[test]
fn a_tick_late_by_more_than_half_an_interval_is_a_pause() {
    let mut core = super::core(OTHER, Role::Secondary);
    core.on_tick(ms(1_000));
    assert_eq!(paused(&core.on_tick(ms(1_500))), None, "half an interval");
    assert_eq!(paused(&core.on_tick(ms(2_100))), Some(ms(600)));
}

#[test]
fn after_a_long_pause_a_primary_several_rounds_ahead_is_believed_at_once() {
    let primary_beat =
        |epoch: u64| format!(r#"{{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":{epoch}}}"#);
    let mut short = super::core(OTHER, Role::Secondary);
    let mut long = super::core(OTHER, Role::Secondary);
    for core in [&mut short, &mut long] {
        hear(core, "/dhcp/resolv/heartbeat", &primary_beat(0x1_0001), 10);
        core.on_tick(ms(100));
    }
    short.on_tick(ms(3_100)); // a pause of the silence limit, not longer
    long.on_tick(ms(30_100)); // a long one: the network may have moved on
    let far = 0x9_0001;
    hear(
        &mut short,
        "/dhcp/resolv/heartbeat",
        &primary_beat(far),
        2_510,
    );
    hear(
        &mut long,
        "/dhcp/resolv/heartbeat",
        &primary_beat(far),
        30_110,
    );
    assert_eq!(short.epoch(), 0x1_0001, "a jump needs a repeat");
    assert_eq!(short.view().primary(), Some((ME, 0x1_0001)));
    assert_eq!(long.epoch(), far);
    assert_eq!(long.view().primary(), Some((ME, far)));
}

#[test]
fn a_new_primary_catches_up_one_interval_after_it_claims() {
    // A secondary whose liveness has NODE failed, then the primary's Will.
    let mut core = super::core(OTHER, Role::Secondary);
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        r#"{"uuid":"heartbeat","genre":4,"cmd_class":112,"data":1,"hadd":"0222/0001"}"#,
        0,
    );
    beat(&mut core, NODE, "ONLINE", 0);
    let primary_beat = r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#;
    for at in (100..=9_900).step_by(100) {
        if at % 1_000 == 0 {
            hear(&mut core, "/dhcp/resolv/heartbeat", primary_beat, at);
        }
        core.on_tick(ms(at));
    }
    beat(&mut core, ME, "OFFLINE", 9_950);
    let mut claimed_at = None;
    let mut first_dispatch = None;
    for at in (10_000..=12_000).step_by(100) {
        let commands = core.on_tick(ms(at));
        if commands.iter().any(|c| {
            matches!(
                c,
                Command::Note(Note::Election(ElectionAction::BecomePrimary { .. }))
            )
        }) {
            claimed_at = Some(at);
        }
        if first_dispatch.is_none() && !dispatches(&commands).is_empty() {
            first_dispatch = Some((at, dispatches(&commands)));
        }
    }
    let claimed_at = claimed_at.expect("takes over");
    let (at, told) = first_dispatch.expect("catches up");
    assert_eq!(
        at,
        claimed_at + 1_000,
        "once the nodes have answered its discovery"
    );
    let epoch = core.epoch();
    assert_eq!(
        told,
        [
            (NODE, NodeState::Pending, epoch),
            (NODE, NodeState::Failed, epoch)
        ]
    );
}

#[test]
fn a_node_the_primary_spoke_of_is_watched_by_a_secondary_that_never_heard_it() {
    let mut core = super::core(OTHER, Role::Secondary);
    let ghost = Hadd::new(230, 1);
    let primary_beat = r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#;
    hear(&mut core, "/dhcp/resolv/heartbeat", primary_beat, 10);
    hear(
        &mut core,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":230,"add_node":1,"state":"PENDING","epoch":65537,"observer":"0001/0000"}"#,
        20,
    );
    assert_eq!(core.liveness().state(ghost), NodeState::Pending);
    // What the primary says of this controller itself is not a node to watch.
    hear(
        &mut core,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":2,"add_node":0,"state":"PENDING","epoch":65537,"observer":"0001/0000"}"#,
        25,
    );
    assert_eq!(core.liveness().state(OTHER), NodeState::Unknown);
    // A stale one counts as fenced, and is not watched.
    let commands = hear(
        &mut core,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":231,"add_node":1,"state":"PENDING","epoch":65536,"observer":"0000/0000"}"#,
        30,
    );
    assert_eq!(counted(&commands, Counter::Fenced), 1);
    assert_eq!(core.liveness().state(Hadd::new(231, 1)), NodeState::Unknown);
    // It takes over, and tells FAILED when the ghost's time is up (30 s default period).
    beat(&mut core, ME, "OFFLINE", 40);
    let told = dispatches(&run(&mut core, 100, 200_000));
    let epoch = core.epoch();
    assert_eq!(told, [(ghost, NodeState::Failed, epoch)]);
}

#[test]
fn the_census_counts_nodes_by_state() {
    let mut core = super::core(ME, Role::Primary);
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"data":{
            "0240/0001":{"hadd":"0240/0001","heartbeat":1},
            "0241/0001":{"hadd":"0241/0001","heartbeat":1},
            "0242/0001":{"hadd":"0242/0001","heartbeat":1}}}"#,
        0,
    );
    for (ctrl, at) in [(240, 0), (241, 0), (242, 10_000)] {
        beat(&mut core, Hadd::new(ctrl, 1), "ONLINE", at);
    }
    core.on_tick(ms(0));
    let mut census = None;
    for at in (100..=14_000).step_by(100) {
        for command in core.on_tick(ms(at)) {
            if let Command::Set(Gauge::NodesByState(counts)) = command {
                census = Some(counts);
            }
        }
    }
    // 0240 and 0241 failed long ago; 0242 went silent at 10 s: PENDING at 13.3 s.
    assert_eq!(census, Some([0, 1, 2, 0, 0, 0]));
}

#[test]
fn the_census_counts_dead_nodes() {
    let setup = CoreSetup {
        hadd: ME,
        rank: Rank {
            role: Role::Primary,
            priority: 0,
        },
        election: ElectionConfig::default(),
        liveness: LivenessConfig {
            dead_after: Duration::from_secs(5),
            ..LivenessConfig::default()
        },
    };
    let mut core = NetworkCore::new(setup, ms(0));
    core.on_connection(Connection::Up, ms(0));
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        r#"{"uuid":"heartbeat","genre":4,"cmd_class":112,"data":1,"hadd":"0222/0001"}"#,
        0,
    );
    // Described by its controller: kept until DEAD (a node never described is forgotten once
    // FAILED, see `a_node_no_controller_described_is_forgotten_once_failed`).
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,
            "data":{"0222/0001":{"hadd":"0222/0001","heartbeat":1}}}"#,
        0,
    );
    beat(&mut core, NODE, "ONLINE", 0);
    let mut census = None;
    for at in (100..=20_000).step_by(100) {
        for command in core.on_tick(ms(at)) {
            if let Command::Set(Gauge::NodesByState(counts)) = command {
                census = Some(counts);
            }
        }
    }
    assert_eq!(census, Some([0, 0, 0, 1, 0, 0]));
    let told = core.view().state(NODE);
    assert_eq!(told, NodeState::Dead, "and it was told so");
}

/// The issue's phantoms again: a node heard by its heartbeat alone, that no controller ever
/// described, is told PENDING and FAILED like any other (a real one whose controller did not
/// answer is not missed), then forgotten instead of kept for good; heard again, it is watched
/// again.
#[test]
fn a_node_no_controller_described_is_forgotten_once_failed() {
    let (mut core, epoch) = primary_with_node(5_000);
    let told = dispatches(&run(&mut core, 5_100, 30_000));
    assert_eq!(
        told,
        [
            (NODE, NodeState::Pending, epoch),
            (NODE, NodeState::Failed, epoch)
        ]
    );
    assert_eq!(core.liveness().state(NODE), NodeState::Unknown, "forgotten");
    assert_eq!(core.view().state(NODE), NodeState::Unknown);
    assert!(dispatches(&run(&mut core, 30_100, 60_000)).is_empty());
    beat(&mut core, NODE, "ONLINE", 60_100);
    assert_eq!(
        core.liveness().state(NODE),
        NodeState::Online,
        "watched again"
    );
}

/// Issue 23, item 6: the original's primary reports itself PENDING in its own map (its cache
/// never sees its own beats, `conformance/s10`). A follower adopts the states of the map's
/// other nodes, never what the primary says of itself: its heartbeat tells that.
#[test]
fn what_the_originals_primary_says_of_itself_is_not_adopted() {
    let setup = CoreSetup {
        hadd: Hadd::new(2, 0),
        rank: Rank {
            role: Role::Secondary,
            priority: 0,
        },
        election: ElectionConfig {
            original_primary: true,
            ..ElectionConfig::default()
        },
        liveness: LivenessConfig::default(),
    };
    let mut core = NetworkCore::new(setup, ms(0));
    core.on_connection(Connection::Up, ms(0));
    hear(
        &mut core,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE"}"#,
        100,
    );
    hear(
        &mut core,
        "/dhcp/resolv/reply/0002/0000",
        r#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_nodes", "reply_hadd": "0002/0000", "data": {
            "0001/0000": {"uuid": "dhcp", "hadd": "0001/0000", "name": "DHCP Server", "cmd_classes": [4096, 4176, 112], "heartbeat": 30, "state": "PENDING"},
            "1048/0000": {"uuid": "hostsensor", "hadd": "1048/0000", "name": "testsensor", "cmd_classes": [4176, 112], "heartbeat": 30, "state": "ONLINE"}}}"#,
        200,
    );
    assert_eq!(core.liveness().state(Hadd::new(1048, 0)), NodeState::Online);
    assert_ne!(
        core.liveness().state(Hadd::new(1, 0)),
        NodeState::Pending,
        "the primary's word on itself"
    );
    assert_ne!(core.view().state(Hadd::new(1, 0)), NodeState::Pending);
}
