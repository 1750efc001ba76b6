//! Which messages tell a node's heartbeat period, and which do not.

use super::*;

/// A lone primary that has heard `NODE` once, with the default period.
fn listening() -> NetworkCore {
    let mut core = super::core(ME, Role::Primary);
    beat(&mut core, NODE, "ONLINE", 0);
    core
}

fn period(core: &NetworkCore) -> Duration {
    core.liveness().period(NODE)
}

#[test]
fn a_successful_answer_about_the_heartbeat_value_tells_the_period() {
    let mut core = listening();
    let answer = r#"{"uuid":"heartbeat","genre":4,"cmd_class":112,"index":0,"data":45,
        "hadd":"0222/0001","status":200}"#;
    hear(
        &mut core,
        "/nodes/9999/9990/reply",
        &answer.replace("200", "404"),
        10,
    );
    assert_eq!(
        period(&core),
        Duration::from_secs(30),
        "a refusal tells nothing"
    );
    hear(&mut core, "/nodes/9999/9990/reply", answer, 20);
    assert_eq!(period(&core), Duration::from_secs(45));
}

#[test]
fn only_the_system_heartbeat_value_tells_the_period() {
    let mut core = listening();
    let value = |uuid: &str, genre: u8, index: u32| {
        format!(
            r#"{{"uuid":"{uuid}","genre":{genre},"cmd_class":112,"index":{index},"data":7,"hadd":"0222/0001"}}"#
        )
    };
    hear(
        &mut core,
        "/values/user/0222/0001/heartbeat",
        &value("heartbeat", 2, 0),
        10,
    );
    hear(
        &mut core,
        "/values/system/0222/0001/other",
        &value("other", 4, 0),
        20,
    );
    hear(
        &mut core,
        "/nodes/9999/9990/reply",
        r#"{"uuid":"other","genre":4,"cmd_class":112,"data":7,"hadd":"0222/0001","status":200}"#,
        25,
    );
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        r#"{"1":{"uuid":"heartbeat","genre":4,"index":1,"data":7,"hadd":"0222/0001"}}"#,
        30,
    );
    assert_eq!(period(&core), Duration::from_secs(30), "none of those");
    // Negative, or not a number: ignored, and nothing panics.
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        &value("heartbeat", 4, 0).replace("\"data\":7", "\"data\":-5"),
        33,
    );
    assert_eq!(period(&core), Duration::from_secs(30));
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        &value("heartbeat", 4, 0).replace("\"data\":7", "\"data\":\"NaN\""),
        35,
    );
    assert_eq!(period(&core), Duration::from_secs(30));
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        &value("heartbeat", 4, 0),
        40,
    );
    assert_eq!(period(&core), Duration::from_secs(7));
}

#[test]
fn a_discovery_of_system_values_tells_the_period_and_of_user_values_does_not() {
    let mut core = listening();
    let discovery = |kind: &str| {
        format!(
            r#"{{"uuid":"request_info_{kind}","cmd_class":20480,"genre":4,
            "data":{{"0222/0001":{{"heartbeat":{{"uuid":"heartbeat","genre":4,"cmd_class":112,"data":12,"hadd":"0222/0001"}}}}}}}}"#
        )
    };
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        &discovery("users"),
        10,
    );
    assert_eq!(period(&core), Duration::from_secs(30));
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        &discovery("systems"),
        20,
    );
    assert_eq!(period(&core), Duration::from_secs(12));
}

#[test]
fn the_primary_does_not_merge_its_own_map_answer_heard_back() {
    let (mut core, epoch) = primary_with_node(4_000);
    hear(
        &mut core,
        "/broadcast/reply/0001/0000",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,
            "data":{"0222/0001":{"hadd":"0222/0001","heartbeat":1}}}"#,
        4_010,
    );
    // Its answer, heard back after the node has told a new period.
    let stale = format!(
        r#"{{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"epoch":{epoch},
            "data":{{"0222/0001":{{"hadd":"0222/0001","heartbeat":1,"name":"old"}}}}}}"#
    );
    hear(
        &mut core,
        "/values/system/0222/0001/heartbeat",
        r#"{"uuid":"heartbeat","genre":4,"cmd_class":112,"data":20,"hadd":"0222/0001"}"#,
        4_020,
    );
    hear(&mut core, "/dhcp/resolv/broadcast/", &stale, 4_030);
    let info = core.view().map().node(NODE).unwrap();
    assert_eq!(
        (info.heartbeat, info.name.as_str()),
        (20.0, "Default name"),
        "{info:?}"
    );
    assert_eq!(period(&core), Duration::from_secs(20));
}

#[test]
fn a_secondary_does_not_watch_itself_from_the_primarys_map() {
    let mut core = super::core(OTHER, Role::Secondary);
    hear(
        &mut core,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
        10,
    );
    hear(
        &mut core,
        "/dhcp/resolv/reply/0002/0000",
        r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"epoch":65537,"data":{
            "0002/0000":{"hadd":"0002/0000","heartbeat":1,"state":"ONLINE"},
            "0222/0001":{"hadd":"0222/0001","heartbeat":1,"state":"PENDING"}}}"#,
        20,
    );
    assert_eq!(core.liveness().state(OTHER), NodeState::Unknown);
    assert_eq!(core.liveness().state(NODE), NodeState::Pending);
}

#[test]
fn a_new_primary_tells_no_silence_the_nodes_own_answer_explains() {
    // A secondary believes NODE beats every second (a change to 20 s missed while it was
    // away): NODE is silent, judged PENDING at 3.3 s, and the old primary said nothing.
    let mut core = secondary_judging_node_silent();
    // The old primary's Will (believed 3/10 of an interval later, unrefuted): it takes over and
    // asks every node for its period.
    beat(&mut core, ME, "OFFLINE", 4_500);
    let commands = run(&mut core, 4_600, 5_100);
    assert!(core.acting_epoch(ms(5_100)).is_some());
    assert!(dispatches(&commands).is_empty(), "not caught up yet");
    // NODE's controller answers: 20 s. Caught up, nothing is told of NODE.
    hear(
        &mut core,
        "/broadcast/reply/0002/0000",
        &node_info(20),
        5_200,
    );
    assert_eq!(core.liveness().state(NODE), NodeState::Online);
    assert!(dispatches(&run(&mut core, 5_200, 71_100)).is_empty());
    // Silent 3 tolerant periods of 20 s from the answer (71.2 s): PENDING.
    let epoch = core.acting_epoch(ms(71_100)).unwrap();
    assert_eq!(
        dispatches(&run(&mut core, 71_200, 71_300)),
        [(NODE, NodeState::Pending, epoch)]
    );
}
