//! The original's payload shapes decode to what they mean: the normalisation of discovery
//! replies (§5.2), the operation flags of requests, and the tolerant field forms.

use janitoo_protocol::{
    Codec, CommandClass, DiscoveryData, Genre, Hadd, HaddTarget, InfoKind, LeasePart, Message,
    NodeState, Operation, Request, Status, Timestamp, Topic, ValuePublication,
};

fn decode(topic: &str, payload: &str) -> Message {
    Message::decode_on(topic, payload.as_bytes(), Codec::Json)
        .unwrap()
        .1
}

#[test]
fn nodes_keyed_by_node_uuid_are_keyed_by_hadd() {
    let message = decode(
        "/broadcast/reply/9999/9990",
        r#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_nodes", "reply_hadd": "9999/9990", "data": {"hostsensor": {"uuid": "hostsensor", "oid": "hostsensor", "capabilities": [4], "cmd_classes": [4176, 112], "name": "testsensor", "heartbeat": 30, "hadd": "1048/0000", "state": "ONLINE"}, "hostsensor__load": {"uuid": "hostsensor__load", "hadd": "1048/0002", "heartbeat": 20.0}}}"#,
    );
    let Message::DiscoveryReply(reply) = message else {
        panic!("{message:?}")
    };
    assert_eq!(reply.kind, InfoKind::Nodes);
    let DiscoveryData::Nodes(nodes) = reply.data else {
        panic!()
    };
    let controller = &nodes[&Hadd::new(1048, 0)];
    assert_eq!(
        controller.cmd_classes,
        [CommandClass::CONTROLLER, CommandClass::CONFIGURATION]
    );
    assert_eq!(controller.state, Some(NodeState::Online));
    let load = &nodes[&Hadd::new(1048, 2)];
    assert_eq!((load.heartbeat, load.name.as_str()), (20.0, "Default name"));
}

#[test]
fn a_single_node_dict_is_one_node() {
    let message = decode(
        "/nodes/0001/0000/reply",
        r#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_nodes", "reply_hadd": "0001/0000", "data": {"uuid": "dhcp", "oid": "controller", "cmd_classes": [4096, 4176, 112], "name": "DHCP Server", "hadd": "0001/0000"}}"#,
    );
    let Message::DiscoveryReply(reply) = message else {
        panic!()
    };
    let DiscoveryData::Nodes(nodes) = reply.data else {
        panic!()
    };
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[&Hadd::new(1, 0)].name, "DHCP Server");
}

#[test]
fn two_level_system_values_become_instance_zero() {
    let message = decode(
        "/dhcp/resolv/reply/0002/0000",
        r#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_systems", "reply_hadd": "0002/0000", "data": {"1048/0000": {"heartbeat": {"uuid": "heartbeat", "cmd_class": 112, "genre": 4, "type": 4, "index": 0, "data": 30.0}}}}"#,
    );
    let Message::DiscoveryReply(reply) = message else {
        panic!()
    };
    let DiscoveryData::Values(values) = &reply.data else {
        panic!()
    };
    let heartbeat = &values[&Hadd::new(1048, 0)]["heartbeat"][&0];
    assert_eq!(heartbeat.genre, Genre::System);
    assert_eq!(
        heartbeat.hadd,
        Some(Hadd::new(1048, 0)),
        "filled in from the key"
    );
    // Written back in the original's two-level shape.
    let tree = Message::DiscoveryReply(reply.clone()).to_tree();
    assert!(tree["data"]["1048/0000"]["heartbeat"]["uuid"].is_string());
}

#[test]
fn three_level_instances_keep_their_index() {
    let message = decode(
        "/values/basic/1048/0002/load",
        r#"{"0": {"uuid": "load", "index": 0, "data": 0.36}, "1": {"uuid": "load", "index": 1, "data": 0.7}, "2": {"uuid": "load", "index": 2, "data": 0.6}}"#,
    );
    let Message::Value(ValuePublication::Instances(instances)) = message else {
        panic!()
    };
    assert_eq!(instances.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(instances[&1].data, serde_json::json!(0.7));
}

#[test]
fn operation_flags_of_the_original_mean_get_and_set() {
    let get = r#"{"cmd_class": 112, "uuid": "name", "data": null, "reply_hadd": "9999/9990", "genre": 3, "is_writeonly": false, "is_readonly": true, "hadd": "1048/0002"}"#;
    let set = r#"{"cmd_class": 112, "uuid": "name", "data": "x", "reply_hadd": "9999/9990", "genre": 3, "is_writeonly": "true", "is_readonly": true, "hadd": "1048/0002"}"#;
    let info = r#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_nodes", "reply_hadd": "9999/9990"}"#;
    let op = |payload| match decode("/nodes/1048/0002/request", payload) {
        Message::Request(request) => request.op,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (op(get), op(set), op(info)),
        (Operation::Get, Operation::Set, Operation::Info)
    );
}

#[test]
fn explicit_op_wins_and_is_written_with_the_original_flags() {
    let mut request = Request::set(
        Hadd::new(220, 1),
        "name",
        Genre::Config,
        CommandClass::CONFIGURATION,
        "x".into(),
    );
    request.index = Some(1);
    request.request_id = Some("42".into());
    let tree = Message::Request(request).to_tree();
    assert_eq!(tree["op"], "set");
    assert_eq!(tree["is_writeonly"], true);
    assert_eq!(tree["index"], 1);
    let payload = r#"{"op": "get", "uuid": "name", "is_writeonly": true, "request_id": 42}"#;
    let Message::Request(request) = decode("/nodes/0220/0001/request", payload) else {
        panic!()
    };
    assert_eq!(
        (request.op, request.request_id.as_deref()),
        (Operation::Get, Some("42"))
    );
}

#[test]
fn answers_carry_status_and_default_to_success() {
    let old =
        r#"{"uuid": "load", "cmd_class": 49, "genre": 1, "data": 0.5, "reply_hadd": "9999/9990"}"#;
    let Message::ValueReply(reply) = decode("/nodes/9999/9990/reply", old) else {
        panic!()
    };
    assert_eq!((reply.status, reply.status()), (None, Status::OK));
    let new = r#"{"uuid": "load", "status": 403, "error": "load is read-only", "request_id": "7"}"#;
    let Message::ValueReply(reply) = decode("/nodes/9999/9990/reply", new) else {
        panic!()
    };
    assert_eq!(reply.status(), Status::FORBIDDEN);
    assert_eq!(reply.error.as_deref(), Some("load is read-only"));
}

#[test]
fn heartbeats_in_every_form() {
    let Message::Heartbeat(beat) = decode("/dhcp/heartbeat/1048/0002", "OFFLINE") else {
        panic!()
    };
    assert_eq!(
        (beat.target, beat.state),
        (HaddTarget::Node(Hadd::new(1048, 2)), NodeState::Offline)
    );
    let Message::HeartbeatOnBehalf(beat) = decode(
        "/dhcp/heartbeat/",
        r#"{"add_ctrl": 10, "add_node": -1, "state": "failed", "epoch": 3, "observer": "0001/0000"}"#,
    ) else {
        panic!()
    };
    assert_eq!(beat.target, HaddTarget::AllNodes { ctrl: 10 });
    assert_eq!(
        (beat.state, beat.epoch, beat.is_on_behalf()),
        (NodeState::Failed, Some(3), true)
    );
    let Message::ResolvHeartbeat(primary) = decode(
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl": "0001", "add_node": "0000", "state": "ONLINE"}"#,
    ) else {
        panic!()
    };
    assert_eq!((primary.hadd, primary.epoch), (Hadd::new(1, 0), None));
    assert_eq!(
        Message::ResolvHeartbeat(primary).encode(Codec::Json),
        br#"{"add_ctrl":"0001","add_node":"0000","state":"ONLINE"}"#
    );
}

#[test]
fn an_unknown_state_word_is_refused() {
    let err = Message::decode_on("/dhcp/heartbeat/1048/0002", b"SLEEPY", Codec::Json).unwrap_err();
    assert_eq!(err.field(), Some("state"), "{err}");
}

#[test]
fn leases_keep_bad_parts_and_both_date_forms() {
    let Message::Lease(lock) = decode(
        "/dhcp/lease/lock",
        r#"{"rep_uuid": "u7", "add_ctrl": "a", "add_node": -1}"#,
    ) else {
        panic!()
    };
    assert_eq!(
        (lock.add_ctrl, lock.add_node),
        (LeasePart::Text("a".into()), LeasePart::Number(-1))
    );
    let reply = r#"{"msg_status": 200, "rep_uuid": "u1", "add_ctrl": 10, "add_node": 0, "state": "BOOT", "last_seen": {"$date": 1795557987846}, "params": []}"#;
    let Message::LeaseReply(reply) = decode("/reply/u1", reply) else {
        panic!()
    };
    assert_eq!(reply.last_seen, Some(Timestamp::Millis(1_795_557_987_846)));
    let iso = r#"{"msg_status": 200, "rep_uuid": "u4", "last_seen": "2026-11-24T22:06:33.866153"}"#;
    let Message::LeaseReply(reply) = decode("/reply/u4", iso) else {
        panic!()
    };
    assert!(matches!(reply.last_seen, Some(Timestamp::Text(_))));
}

#[test]
fn topics_choose_the_message() {
    let topic = Topic::parse("/dhcp/resolv/request/").unwrap();
    let payload = br#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_users", "reply_hadd": "0002/0000"}"#;
    let Message::Request(request) = Message::decode(&topic, payload, Codec::Json).unwrap() else {
        panic!()
    };
    assert_eq!(request.info_kind(), Some(InfoKind::Users));
}

/// Every form of MongoDB extended JSON date the original's library versions write is read as
/// the same instant, and written back as `{"$date": <ms>}`, the form its own library writes.
#[test]
fn extended_json_dates_in_every_form() {
    let instant = 1_795_557_987_846i64; // 2026-11-24T22:06:27.846Z
    for last_seen in [
        format!(r#"{{"$date": {instant}}}"#),
        format!(r#"{{"$date": {{"$numberLong": "{instant}"}}}}"#),
        r#"{"$date": "2026-11-24T22:06:27.846Z"}"#.to_owned(),
        r#"{"$date": "2026-11-24T23:06:27.846+01:00"}"#.to_owned(),
        r#"{"$date": "2026-11-24T22:06:27.846"}"#.to_owned(),
        r#"{"$date": "2026-11-24T22:06:27.846123Z"}"#.to_owned(),
    ] {
        let reply = format!(r#"{{"msg_status": 200, "rep_uuid": "u1", "last_seen": {last_seen}}}"#);
        let Message::LeaseReply(reply) = decode("/reply/u1", &reply) else {
            panic!("{last_seen}")
        };
        assert_eq!(
            reply.last_seen,
            Some(Timestamp::Millis(instant)),
            "{last_seen}"
        );
        let written = Message::LeaseReply(reply).encode(Codec::Json);
        let text = String::from_utf8(written).unwrap();
        assert!(
            text.contains(&format!(r#""last_seen":{{"$date":{instant}}}"#)),
            "{text}"
        );
    }
    assert_eq!(
        janitoo_protocol::lease::iso_millis("1970-01-01T00:00:00Z"),
        Some(0)
    );
    assert_eq!(
        janitoo_protocol::lease::iso_millis("2000-03-01T00:00:00-00:30"),
        Some(951_870_600_000)
    );
    for bad in [
        r#"{"$date": "yesterday"}"#,
        r#"{"$date": {"$numberLong": "x"}}"#,
        r#"{"$date": "2026-13-01T00:00:00Z"}"#,
        r#"{"$date": "99999999999999999-01-01T00:00:00Z"}"#,
        r#"{"$date": "2026-01-01T00:00:00.1x"}"#,
        r#"{"$date": "2026-01-01T00:00:00+é"}"#,
        r#"{"date": 1}"#,
    ] {
        let reply = format!(r#"{{"msg_status": 200, "rep_uuid": "u1", "last_seen": {bad}}}"#);
        let err = Message::decode_on("/reply/u1", reply.as_bytes(), Codec::Json).unwrap_err();
        assert!(err.to_string().contains("last_seen"), "{bad}: {err}");
    }
}
