//! The network core, input by input. More in the submodules: what it asks for, the periods it
//! learns, and its timing.

mod asking;
mod home_assistant;
mod leases;
mod periods;
mod timing;

use super::*;
use crate::codec::Codec;
use crate::election::{ElectionAction, Role};
use crate::hadd::HaddTarget;
use crate::heartbeat::Heartbeat;

const ME: Hadd = Hadd::new(1, 0);
const OTHER: Hadd = Hadd::new(2, 0);
const NODE: Hadd = Hadd::new(222, 1);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn core(hadd: Hadd, role: Role) -> NetworkCore {
    let setup = CoreSetup {
        hadd,
        rank: Rank { role, priority: 0 },
        election: ElectionConfig::default(),
        liveness: LivenessConfig::default(),
    };
    let mut core = NetworkCore::new(setup, ms(0));
    core.on_connection(Connection::Up, ms(0));
    core
}

fn hear(core: &mut NetworkCore, topic: &str, payload: &str, at: u64) -> Vec<Command> {
    let (topic, message) = Message::decode_on(topic, payload.as_bytes(), Codec::Json).unwrap();
    core.on_message(&topic, &message, ms(at))
}

fn beat(core: &mut NetworkCore, hadd: Hadd, state: &str, at: u64) -> Vec<Command> {
    hear(core, &format!("/dhcp/heartbeat/{hadd}"), state, at)
}

/// Ticks every 100 ms from `from` to `to` (inclusive), collecting the commands.
fn run(core: &mut NetworkCore, from: u64, to: u64) -> Vec<Command> {
    (from..=to)
        .step_by(100)
        .flat_map(|at| core.on_tick(ms(at)))
        .collect()
}

fn dispatches(commands: &[Command]) -> Vec<(Hadd, NodeState, u64)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Publish {
                message: Message::HeartbeatOnBehalf(beat),
                ..
            } => match beat.target {
                HaddTarget::Node(hadd) => Some((hadd, beat.state, beat.epoch.unwrap_or(0))),
                HaddTarget::AllNodes { .. } => None,
            },
            _ => None,
        })
        .collect()
}

/// The epochs of what was published with one (heartbeats, on behalf or primary, map answers).
fn epochs(commands: &[Command]) -> Vec<u64> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Publish { message, .. } => match message {
                Message::HeartbeatOnBehalf(beat) => beat.epoch,
                Message::ResolvHeartbeat(beat) => beat.epoch,
                Message::DiscoveryReply(reply) => crate::view::epoch_of(reply),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn epoch_bearing(commands: &[Command]) -> usize {
    epochs(commands).len()
}

fn counted(commands: &[Command], counter: Counter) -> usize {
    commands
        .iter()
        .filter(|command| **command == Command::Count(counter))
        .count()
}

/// Ticks every 100 ms from `from` to `to` (inclusive), `hadd` beating every whole second.
fn run_beating(core: &mut NetworkCore, hadd: Hadd, from: u64, to: u64) -> Vec<Command> {
    let mut commands = Vec::new();
    for at in (from..=to).step_by(100) {
        if at % 1_000 == 0 {
            commands.extend(beat(core, hadd, "ONLINE", at));
        }
        commands.extend(core.on_tick(ms(at)));
    }
    commands
}

/// A lone primary (claimed at 3 s) hearing `NODE` beat every second until `until`.
fn primary_with_node(until: u64) -> (NetworkCore, u64) {
    let mut core = core(ME, Role::Primary);
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        r#"{"uuid":"heartbeat","genre":4,"cmd_class":112,"data":1,"hadd":"0222/0001"}"#,
        0,
    );
    run_beating(&mut core, NODE, 0, until);
    let epoch = core
        .acting_epoch(ms(until))
        .expect("a lone controller claims");
    (core, epoch)
}

#[test]
fn a_silent_node_is_dispatched_pending_then_failed_once_with_the_epoch() {
    let (mut core, epoch) = primary_with_node(5_000);
    let told = dispatches(&run(&mut core, 5_100, 20_000));
    assert_eq!(
        told,
        [
            (NODE, NodeState::Pending, epoch),
            (NODE, NodeState::Failed, epoch)
        ]
    );
}

#[test]
fn a_heartbeat_period_set_over_the_network_is_learned() {
    let (mut core, _) = primary_with_node(5_000);
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        r#"{"uuid":"heartbeat","genre":4,"cmd_class":112,"data":3000,"hadd":"0222/0001"}"#,
        5_500,
    );
    assert!(dispatches(&run(&mut core, 5_600, 250_000)).is_empty());
}

#[test]
fn a_period_told_in_node_info_is_learned() {
    let mut core = core(ME, Role::Primary);
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,
            "data":{"0222/0001":{"hadd":"0222/0001","heartbeat":120}}}"#,
        0,
    );
    beat(&mut core, NODE, "ONLINE", 100);
    assert!(dispatches(&run(&mut core, 200, 300_000)).is_empty());
    assert_eq!(
        dispatches(&run(&mut core, 300_100, 400_000))
            .iter()
            .map(|(_, state, _)| *state)
            .collect::<Vec<_>>(),
        [NodeState::Pending]
    );
}

#[test]
fn a_broker_blip_dispatches_nothing_for_nodes_that_come_back() {
    let (mut core, _) = primary_with_node(5_000);
    let mut commands = core.on_connection(Connection::Down, ms(5_050));
    commands.extend(run(&mut core, 5_100, 65_000));
    commands.extend(core.on_connection(Connection::Up, ms(65_000)));
    // The node's own bridge takes up to 5 s to come back.
    commands.extend(run(&mut core, 65_100, 69_900));
    commands.extend(run_beating(&mut core, NODE, 70_000, 90_000));
    assert!(
        dispatches(&commands).is_empty(),
        "{:?}",
        dispatches(&commands)
    );
}

#[test]
fn nothing_epoch_bearing_is_published_while_disconnected_or_holding() {
    let (mut core, epoch) = primary_with_node(5_000);
    core.on_connection(Connection::Down, ms(5_050));
    assert_eq!(epoch_bearing(&run(&mut core, 5_100, 30_000)), 0);
    let mut commands = core.on_connection(Connection::Up, ms(30_000));
    assert!(
        commands.contains(&Command::Note(Note::Election(ElectionAction::Hold {
            epoch
        })))
    );
    commands.extend(run(&mut core, 30_100, 31_900));
    assert_eq!(epoch_bearing(&commands), 0, "holding for two intervals");
    let commands = run(&mut core, 32_000, 32_000);
    assert!(
        commands.contains(&Command::Note(Note::Election(ElectionAction::Resume {
            epoch
        })))
    );
    assert_eq!(core.acting_epoch(ms(32_000)), Some(epoch));
}

#[test]
fn a_frozen_primary_resumed_publishes_nothing_with_its_old_epoch_and_steps_down() {
    let (mut core, epoch) = primary_with_node(5_000);
    // SIGSTOP for 30 s: no tick; then a tick first, then what waited in the socket.
    let mut commands = core.on_tick(ms(35_000));
    assert!(commands.contains(&Command::Note(Note::Paused { gap: ms(30_000) })));
    let newer = ((crate::fence::round_of(epoch) + 1) << 16) | 2;
    commands.extend(hear(
        &mut core,
        "/dhcp/resolv/heartbeat",
        &format!(r#"{{"add_ctrl":2,"add_node":0,"state":"ONLINE","epoch":{newer}}}"#),
        35_010,
    ));
    assert_eq!(epoch_bearing(&commands), 0, "nothing before stepping down");
    assert!(
        commands.contains(&Command::Note(Note::Election(ElectionAction::StepDown {
            primary: OTHER,
            epoch: newer
        })))
    );
    // The new primary falls silent in turn: this one may take over, with a newer epoch.
    let later = run(&mut core, 35_100, 60_000);
    assert!(core.acting_epoch(ms(60_000)).is_some());
    assert!(epochs(&later).iter().all(|published| *published > newer));
}

#[test]
fn a_forged_epoch_at_the_ceiling_is_refused_and_epochs_never_wrap() {
    let mut core = core(OTHER, Role::Secondary);
    let commands = hear(
        &mut core,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":3,"add_node":0,"state":"ONLINE","epoch":18446744073709551615}"#,
        100,
    );
    assert_eq!(counted(&commands, Counter::Forged), 1);
    assert_eq!(core.epoch(), 0);
    run(&mut core, 200, 3_100);
    let epoch = core.acting_epoch(ms(3_100)).unwrap();
    assert_eq!(epoch, 0x1_0002);
}

#[test]
fn a_strangers_dispatch_is_fenced_and_counted() {
    let (mut core, _) = primary_with_node(5_000);
    let commands = hear(
        &mut core,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":222,"add_node":-1,"state":"FAILED","epoch":1,"observer":"0666/0000"}"#,
        5_100,
    );
    assert_eq!(counted(&commands, Counter::Forged), 1);
    assert_eq!(core.view().state(NODE), NodeState::Online);
}

/// Issue 21's finding 6: unkeyed, the primary believed a dispatch forged in its own name (its
/// hadd as `observer`, its epoch): FAILED showed on the page and in Home Assistant, DEAD cleared
/// the node's entities. What it sends, it records first; anything else in its name is refused.
#[test]
fn a_dispatch_in_the_primarys_own_name_that_it_did_not_send_is_refused() {
    let (mut core, epoch) = primary_with_node(5_000);
    for state in ["FAILED", "DEAD", "PENDING"] {
        let forged = format!(
            r#"{{"add_ctrl":222,"add_node":1,"state":"{state}","epoch":{epoch},"observer":"{ME}"}}"#
        );
        let commands = hear(&mut core, "/dhcp/heartbeat/", &forged, 5_100);
        assert_eq!(counted(&commands, Counter::Fenced), 1, "{state}");
        assert_eq!(core.view().state(NODE), NodeState::Online, "{state}");
    }
    // Its own dispatch, heard back, changes nothing and is not counted.
    let told = dispatches(&run(&mut core, 5_200, 9_000));
    assert_eq!(told, [(NODE, NodeState::Pending, epoch)]);
    let echo = format!(
        r#"{{"add_ctrl":222,"add_node":1,"state":"PENDING","epoch":{epoch},"observer":"{ME}"}}"#
    );
    let commands = hear(&mut core, "/dhcp/heartbeat/", &echo, 9_010);
    assert_eq!(counted(&commands, Counter::Fenced), 0);
    assert_eq!(core.view().state(NODE), NodeState::Pending);
}

/// A secondary that heard the old primary dispatch PENDING for `NODE`, then its Last Will.
fn secondary_after_the_primarys_will() -> (NetworkCore, Vec<Command>) {
    let mut core = core(OTHER, Role::Secondary);
    let old = 0x1_0001;
    let primary_beat = format!(r#"{{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":{old}}}"#);
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        r#"{"uuid":"heartbeat","genre":4,"cmd_class":112,"data":1,"hadd":"0222/0001"}"#,
        0,
    );
    beat(&mut core, NODE, "ONLINE", 0);
    for at in (0..=4_400).step_by(100) {
        if at % 1_000 == 0 {
            hear(&mut core, "/dhcp/resolv/heartbeat", &primary_beat, at);
        }
        core.on_tick(ms(at));
    }
    hear(
        &mut core,
        "/dhcp/heartbeat/",
        &format!(
            r#"{{"add_ctrl":222,"add_node":1,"state":"PENDING","epoch":{old},"observer":"0001/0000"}}"#
        ),
        4_500,
    );
    let commands = beat(&mut core, ME, "OFFLINE", 4_600);
    (core, commands)
}

#[test]
fn losing_the_primary_is_told_and_the_new_primary_repeats_nothing_it_said() {
    let (mut core, commands) = secondary_after_the_primarys_will();
    assert!(commands.contains(&Command::Note(Note::Election(
        ElectionAction::OfflineDoubted { primary: ME }
    ))));
    let commands = run(&mut core, 4_700, 40_000);
    assert!(commands.contains(&Command::Note(Note::Election(
        ElectionAction::PrimaryLost { primary: Some(ME) }
    ))));
    let epoch = core.acting_epoch(ms(40_000)).expect("takes over");
    assert_eq!(
        dispatches(&commands),
        [(NODE, NodeState::Failed, epoch)],
        "PENDING was told already"
    );
}

/// Issue 21's finding 2: a flood of resolv requests, a new `reply_hadd` each, moved the
/// primary. A question is answered twice at once, and once more on the broadcast at the end of
/// its window when more than a few waited, however many; the rest is counted.
#[test]
fn resolv_requests_of_one_question_are_answered_once_per_window() {
    let (mut core, _) = primary_with_node(5_000);
    let maps = |commands: &[Command]| -> Vec<Topic> {
        commands
            .iter()
            .filter_map(|command| match command {
                Command::Publish {
                    topic,
                    message: Message::DiscoveryReply(_),
                } => Some(topic.clone()),
                _ => None,
            })
            .collect()
    };
    let mut answered = Vec::new();
    let mut coalesced = 0;
    for n in 0..1_000u16 {
        let request = format!(
            r#"{{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"reply_hadd":"{}"}}"#,
            Hadd::new(1_000 + n, 0)
        );
        let commands = hear(
            &mut core,
            "/dhcp/resolv/request/",
            &request,
            5_000 + u64::from(n / 10),
        );
        answered.extend(maps(&commands));
        coalesced += counted(&commands, Counter::ResolvCoalesced);
    }
    assert_eq!(
        answered,
        [
            Topic::ResolvReply(Hadd::new(1_000, 0)),
            Topic::ResolvReply(Hadd::new(1_001, 0))
        ]
    );
    assert_eq!(coalesced, 998);
    let later = maps(&run(&mut core, 5_100, 7_000));
    assert_eq!(
        later,
        [Topic::ResolvBroadcast],
        "one broadcast for the 998 others"
    );
}

/// A client that asks just after a follower (which asks its new primary for the map) hears its
/// answer at once on its own reply topic, not on a broadcast it may not read (t40 failed on
/// that); a third asker of the window hears its own at the window's end.
#[test]
fn a_client_asking_just_after_a_follower_still_hears_its_own_answer() {
    let (mut core, _) = primary_with_node(5_000);
    let answers = |commands: &[Command]| -> Vec<(Topic, Option<Hadd>)> {
        commands
            .iter()
            .filter_map(|command| match command {
                Command::Publish {
                    topic,
                    message: Message::DiscoveryReply(reply),
                } => Some((topic.clone(), reply.reply_hadd)),
                _ => None,
            })
            .collect()
    };
    let ask = |reply_hadd: &str| {
        format!(
            r#"{{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"reply_hadd":"{reply_hadd}"}}"#
        )
    };
    let follower = Hadd::new(3, 0);
    let client = Hadd::new(9_999, 9_990);
    let now = hear(&mut core, "/dhcp/resolv/request/", &ask("0003/0000"), 5_000);
    assert_eq!(
        answers(&now),
        [(Topic::ResolvReply(follower), Some(follower))]
    );
    let also_now = hear(&mut core, "/dhcp/resolv/request/", &ask("9999/9990"), 5_050);
    assert_eq!(
        answers(&also_now),
        [(Topic::ResolvReply(client), Some(client))]
    );
    let third = Hadd::new(4, 0);
    let waiting = hear(&mut core, "/dhcp/resolv/request/", &ask("0004/0000"), 5_060);
    assert_eq!(
        answers(&waiting),
        [],
        "a third asker within the window waits"
    );
    assert_eq!(counted(&waiting, Counter::ResolvCoalesced), 1);
    let later = run(&mut core, 5_100, 7_000);
    assert_eq!(
        answers(&later),
        [(Topic::ResolvReply(third), Some(third))],
        "answered on its own topic, once, at the window's end"
    );
}

#[test]
fn the_resolv_answer_carries_each_nodes_state_and_the_epoch() {
    let (mut core, epoch) = primary_with_node(5_000);
    hear(
        &mut core,
        "/nodes/0001/0000/reply",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,
            "data":{"0222/0001":{"hadd":"0222/0001","heartbeat":1}}}"#,
        5_000,
    );
    run(&mut core, 5_100, 8_900);
    let commands: Vec<Command> = hear(
        &mut core,
        "/dhcp/resolv/request/",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"reply_hadd":"0002/0000"}"#,
        9_000,
    )
    .into_iter()
    .filter(|command| matches!(command, Command::Publish { .. }))
    .collect();
    let [Command::Publish {
        topic,
        message: Message::DiscoveryReply(reply),
    }] = &commands[..]
    else {
        panic!("{commands:?}")
    };
    assert_eq!(*topic, Topic::ResolvReply(OTHER));
    assert_eq!(reply.extra["epoch"], crate::Data::from(epoch));
    // Claimed after 3 s of listening: primary for 6 s at 9 s.
    let held = crate::view::primary_for(reply).unwrap();
    assert!(
        (ms(5_900)..=ms(6_000)).contains(&held),
        "primary for {held:?}"
    );
    let crate::DiscoveryData::Nodes(nodes) = &reply.data else {
        panic!("{reply:?}")
    };
    assert_eq!(nodes[&NODE].state, Some(NodeState::Pending));
}

#[test]
fn a_controllers_last_will_covers_its_nodes_and_the_controllers_of_its_process() {
    let (mut core, epoch) = primary_with_node(5_000);
    let bus = Hadd::new(222, 0);
    let sibling = Hadd::new(223, 0);
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"data":{
            "0222/0000":{"hadd":"0222/0000","heartbeat":1,"will":"0222/0000"},
            "0223/0000":{"hadd":"0223/0000","heartbeat":1,"will":"0222/0000"}}}"#,
        5_000,
    );
    for hadd in [bus, sibling] {
        beat(&mut core, hadd, "ONLINE", 5_000);
    }
    beat(&mut core, NODE, "ONLINE", 5_000);
    let told = dispatches(&beat(&mut core, bus, "OFFLINE", 5_100));
    assert_eq!(
        told,
        [
            (NODE, NodeState::Offline, epoch),
            (sibling, NodeState::Offline, epoch)
        ]
    );
}

#[test]
fn a_heartbeat_on_behalf_on_a_nodes_own_topic_is_not_its_own() {
    let (mut core, _) = primary_with_node(5_000);
    let beat = Heartbeat::on_behalf(HaddTarget::Node(NODE), NodeState::Offline, 1, OTHER);
    let commands = core.on_message(
        &Topic::Heartbeat(NODE),
        &Message::Heartbeat(beat),
        ms(5_100),
    );
    assert_eq!(counted(&commands, Counter::Fenced), 1);
    assert_eq!(core.view().state(NODE), NodeState::Online);
}

/// The answer of NODE's controller: its node, beating every `period` seconds.
fn node_info(period: u32) -> String {
    format!(
        r#"{{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,
        "data":{{"0222/0001":{{"hadd":"0222/0001","heartbeat":{period}}}}}}}"#
    )
}

/// A secondary following the old primary (beating every second until 4.4 s) that heard NODE
/// once, at 0 s, believing it beats every second: NODE is judged PENDING at 3.3 s, and the
/// old primary has told nothing of it.
fn secondary_judging_node_silent() -> NetworkCore {
    let mut core = core(OTHER, Role::Secondary);
    let primary_beat = r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#;
    hear(&mut core, "/nodes/0002/0000/reply", &node_info(1), 0);
    beat(&mut core, NODE, "ONLINE", 0);
    for at in (0..=4_400).step_by(100) {
        if at % 1_000 == 0 {
            hear(&mut core, "/dhcp/resolv/heartbeat", primary_beat, at);
        }
        core.on_tick(ms(at));
    }
    assert_eq!(core.liveness().state(NODE), NodeState::Pending);
    assert_eq!(core.view().state(NODE), NodeState::Online);
    core
}

#[test]
fn a_new_primary_answers_the_map_with_what_was_told_not_what_it_has_yet_to_tell() {
    let mut core = secondary_judging_node_silent();
    beat(&mut core, ME, "OFFLINE", 4_500);
    let claimed = (4_500..6_000)
        .step_by(10)
        .find(|at| {
            core.on_tick(ms(*at));
            core.acting_epoch(ms(*at)).is_some()
        })
        .expect("takes over on the Will");
    // In its catch-up window, asked for the map: NODE as the network knows it.
    let commands = hear(
        &mut core,
        "/dhcp/resolv/request/",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"reply_hadd":"0003/0000"}"#,
        claimed + 10,
    );
    let states: Vec<Option<NodeState>> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Publish {
                message: Message::DiscoveryReply(reply),
                ..
            } => match &reply.data {
                crate::DiscoveryData::Nodes(nodes) => Some(nodes[&NODE].state),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(states, [Some(NodeState::Online)]);
    // Caught up, it tells its judgement; the map says so from then on.
    let epoch = core.acting_epoch(ms(claimed)).unwrap();
    let told = dispatches(&run(&mut core, claimed + 100, claimed + 1_500));
    assert_eq!(told[0], (NODE, NodeState::Pending, epoch));
    assert_ne!(core.view().state(NODE), NodeState::Online);
}

/// Issue 21: unkeyed, one forged OFFLINE of the primary moved the primary for good. The
/// primary refutes one in its name at once; its followers, doubting, hear the refutation.
#[test]
fn a_primary_refutes_an_offline_in_its_name_and_a_follower_stays_with_it() {
    let (mut primary, epoch) = primary_with_node(5_000);
    let commands = beat(&mut primary, ME, "OFFLINE", 5_050);
    let refutation = commands.iter().find_map(|command| match command {
        Command::Publish {
            topic: Topic::ResolvHeartbeat,
            message: Message::ResolvHeartbeat(beat),
        } => Some(beat.clone()),
        _ => None,
    });
    assert_eq!(
        refutation.map(|beat| (beat.hadd, beat.epoch)),
        Some((ME, Some(epoch)))
    );
    assert_eq!(primary.acting_epoch(ms(5_050)), Some(epoch));

    let mut follower = core(OTHER, Role::Secondary);
    let primary_beat =
        format!(r#"{{"add_ctrl":"0001","add_node":"0000","state":"ONLINE","epoch":{epoch}}}"#);
    for at in (0..=5_000).step_by(100) {
        if at % 1_000 == 0 {
            hear(&mut follower, "/dhcp/resolv/heartbeat", &primary_beat, at);
        }
        follower.on_tick(ms(at));
    }
    beat(&mut follower, ME, "OFFLINE", 5_050);
    let commands = hear(
        &mut follower,
        "/dhcp/resolv/heartbeat",
        &primary_beat,
        5_060,
    );
    assert!(commands.contains(&Command::Count(Counter::OfflineRefuted)));
    let commands = run(&mut follower, 5_100, 8_000);
    assert!(
        !commands.iter().any(|command| matches!(
            command,
            Command::Note(Note::Election(
                ElectionAction::PrimaryLost { .. } | ElectionAction::BecomePrimary { .. }
            ))
        )),
        "{commands:?}"
    );
}
