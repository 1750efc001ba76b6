use janitoo_protocol::Codec;

use super::*;

fn feed(model: &mut WebModel, topic: &str, payload: &str) -> Vec<Data> {
    let (topic, message) = Message::decode_on(topic, payload.as_bytes(), Codec::Json).unwrap();
    model.apply(&topic, &message, 1_000)
}

#[test]
fn values_replace_their_entry_and_keep_what_discovery_said() {
    let mut model = WebModel::default();
    feed(
        &mut model,
        "/broadcast/reply/9997/0001",
        r#"{"uuid":"request_info_users","cmd_class":20480,"genre":4,"reply_hadd":"9997/0001",
            "data":{"0220/0001":{"temperature":{"0":{"uuid":"temperature","index":0,"genre":2,
            "label":"Temperature","units":"°C","data":20.5,"cmd_class":49,"hadd":"0220/0001"}}}}}"#,
    );
    assert_eq!(model.value_count(), 1, "{}", model.snapshot());
    for data in [21.0, 21.5, 22.0] {
        let events = feed(
            &mut model,
            "/values/user/0220/0001/temperature",
            &format!(
                r#"{{"uuid":"temperature","index":0,"genre":2,"data":{data},"hadd":"0220/0001"}}"#
            ),
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["value"]["data"], data);
        assert_eq!(events[0]["value"]["units"], "°C", "kept from discovery");
        assert_eq!(events[0]["value"]["genre"], "user");
    }
    assert_eq!(model.value_count(), 1);
    let snapshot = model.snapshot();
    assert_eq!(snapshot["values"][0]["data"], 22.0);
    assert_eq!(snapshot["values"][0]["hadd"], "0220/0001");
}

#[test]
fn sets_from_the_page_carry_the_command_class_the_originals_nodes_expect() {
    let mut model = WebModel::default();
    feed(
        &mut model,
        "/broadcast/reply/9997/0001",
        r#"{"uuid":"request_info_users","cmd_class":20480,"genre":4,"reply_hadd":"9997/0001",
            "data":{"0220/0002":{"switch":{"0":{"uuid":"switch","index":0,"genre":2,
            "data":"off","cmd_class":37,"hadd":"0220/0002"}}}}}"#,
    );
    let node = Hadd::new(220, 2);
    assert_eq!(
        model.request_class(node, Genre::User, "switch", 0),
        CommandClass::SWITCH_BINARY,
        "the value's own"
    );
    assert_eq!(
        model.request_class(node, Genre::Config, "name", 0),
        CommandClass::CONFIGURATION
    );
    assert_eq!(
        model.request_class(node, Genre::User, "unknown", 0),
        CommandClass::default()
    );
}

#[test]
fn heartbeats_set_node_states_and_the_resolv_heartbeat_the_primary() {
    let mut model = WebModel::default();
    let events = feed(&mut model, "/dhcp/heartbeat/0220/0001", "ONLINE");
    assert_eq!(events[0]["node"]["state"], "ONLINE");
    feed(&mut model, "/dhcp/heartbeat/0220/0000", "ONLINE");
    let events = feed(
        &mut model,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
    );
    assert_eq!(events[0]["type"], "primary");
    assert_eq!(model.primary(), Some((Hadd::new(1, 0), 65537)));
    // The primary's OFFLINE for all the nodes of a controller.
    let events = feed(
        &mut model,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":220,"add_node":-1,"state":"OFFLINE","epoch":65537,"observer":"0001/0000"}"#,
    );
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["node"]["by"], "0001/0000");
    // An older epoch does not take it back.
    feed(
        &mut model,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":2,"add_node":0,"state":"ONLINE","epoch":2}"#,
    );
    assert_eq!(model.primary(), Some((Hadd::new(1, 0), 65537)));
}

/// The issue's forged message: one dispatch from an observer nobody knows, an epoch nobody
/// holds, for a whole controller. The page must go on showing three healthy nodes.
#[test]
fn a_strangers_dispatch_shows_no_node_failed() {
    let mut model = WebModel::default();
    for node in ["0220/0000", "0220/0001", "0220/0002"] {
        feed(&mut model, &format!("/dhcp/heartbeat/{node}"), "ONLINE");
    }
    feed(
        &mut model,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
    );
    let events = feed(
        &mut model,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":220,"add_node":-1,"state":"FAILED","epoch":1,"observer":"0666/0000"}"#,
    );
    assert!(events.is_empty(), "{events:?}");
    let snapshot = model.snapshot();
    let states: Vec<&str> = snapshot["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ONLINE"; 3]);
}

#[test]
fn the_primarys_last_will_leaves_no_primary_on_the_page() {
    let mut model = WebModel::default();
    feed(
        &mut model,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE","epoch":65537}"#,
    );
    let events = feed(&mut model, "/dhcp/heartbeat/0001/0000", "OFFLINE");
    assert_eq!(events[0], json!({"type": "primary", "hadd": null}));
    assert_eq!(model.snapshot()["primary"], Data::Null);
}

#[test]
fn a_reply_is_an_event_for_the_page_that_asked() {
    let mut model = WebModel::default();
    let events = feed(
        &mut model,
        "/nodes/9997/0001/reply",
        r#"{"uuid":"switch","index":0,"genre":2,"data":"on","hadd":"0220/0002",
            "status":200,"request_id":"web-1","cmd_class":37}"#,
    );
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["type"], "reply");
    assert_eq!(events[1]["request_id"], "web-1");
    assert_eq!(events[1]["status"], 200);
    assert_eq!(events[0]["value"]["data"], "on");
}

#[test]
fn controllers_show_their_candidacy_and_who_is_primary() {
    let mut model = WebModel::default();
    let events = feed(
        &mut model,
        "/values/system/0002/0000/network_controller",
        r#"{"uuid":"network_controller","genre":4,"cmd_class":4177,"data":"secondary",
            "hadd":"0002/0000","role":"secondary","priority":5,"epoch":0}"#,
    );
    assert_eq!(events[0]["controller"]["role"], "secondary");
    assert_eq!(events[0]["controller"]["priority"], 5);
    let events = feed(
        &mut model,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":2,"add_node":0,"state":"ONLINE","epoch":65538}"#,
    );
    assert_eq!(events[1]["controller"]["standing"], "primary");
    assert_eq!(events[1]["controller"]["epoch"], 65538);
    assert_eq!(model.value_count(), 0, "a candidacy is not a value to show");
}

/// The original answers a config set only on the value's topic, without the request id: the
/// page is told 200 when the value shows the data it set, once.
#[test]
fn a_set_answered_only_on_the_values_topic_is_replied_to_the_page() {
    let mut model = WebModel::default();
    let node = Hadd::new(400, 1);
    model.set_sent(node, "name", 0, "web-7", Data::from("Shed"));
    let publication = |name: &str| {
        format!(
            r#"{{"uuid":"name","hadd":"0400/0001","genre":3,"cmd_class":112,"index":0,"data":"{name}"}}"#
        )
    };
    let replies = |events: Vec<Data>| -> Vec<Data> {
        events
            .into_iter()
            .filter(|e| e["type"] == "reply")
            .collect()
    };
    let stale = feed(
        &mut model,
        "/values/config/0400/0001/name",
        &publication("Garden"),
    );
    assert!(
        replies(stale).is_empty(),
        "a poll of the old data is no answer"
    );
    let answered = replies(feed(
        &mut model,
        "/values/config/0400/0001/name",
        &publication("Shed"),
    ));
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["request_id"], "web-7");
    assert_eq!(answered[0]["status"], 200);
    let again = feed(
        &mut model,
        "/values/config/0400/0001/name",
        &publication("Shed"),
    );
    assert!(replies(again).is_empty(), "answered once");
}

#[test]
fn the_snapshot_says_whether_this_process_has_the_networks_key() {
    assert_eq!(WebModel::new(true).snapshot()["keyed"], Data::Bool(true));
    assert_eq!(WebModel::new(false).snapshot()["keyed"], Data::Bool(false));
    assert_eq!(WebModel::default().snapshot()["keyed"], Data::Bool(false));
}

/// Issue 23: the page shows the leases, as the primaries published them.
#[test]
fn lease_records_are_listed_and_removed() {
    let mut model = WebModel::default();
    let events = feed(
        &mut model,
        "/dhcp/leases/0010/0001",
        r#"{"epoch":65537,"name":"pond","location":"garden","cmd_classes":"0x0000","state":"ONLINE","confirmed":true,"last_seen":1765000000000}"#,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["lease"]["name"], "pond");
    assert_eq!(events[0]["lease"]["hadd"], "0010/0001");
    let snapshot = model.snapshot();
    assert_eq!(snapshot["leases"][0]["state"], "ONLINE");
    assert_eq!(snapshot["leases"][0]["confirmed"], true);
    let events = feed(
        &mut model,
        "/dhcp/leases/0010/0001",
        r#"{"epoch":65537,"removed":true}"#,
    );
    assert_eq!(events[0]["removed"], "0010/0001");
    assert_eq!(model.snapshot()["leases"], serde_json::json!([]));
}

/// A process that hears another on its address says so: the node carries when it was last
/// said (the page marks it for 10 s), and only a node the page knows.
#[test]
fn a_node_two_processes_beat_on_carries_when_it_was_said() {
    let mut model = WebModel::default();
    feed(&mut model, "/dhcp/heartbeat/0010/0000", "ONLINE");
    let said = r#"{"uuid":"shared_address","genre":4,"cmd_class":112,"data":3,"hadd":"0010/0000"}"#;
    let events = feed(&mut model, "/values/system/0010/0000/shared_address", said);
    let node = events
        .iter()
        .find(|event| event["type"] == "node")
        .expect("a node event");
    assert_eq!(node["node"]["hadd"], "0010/0000");
    assert_eq!(node["node"]["shared_ms"], 1_000);
    let stranger =
        r#"{"uuid":"shared_address","genre":4,"cmd_class":112,"data":3,"hadd":"0077/0000"}"#;
    let events = feed(
        &mut model,
        "/values/system/0077/0000/shared_address",
        stranger,
    );
    assert!(
        events.iter().all(|event| event["type"] != "node"),
        "{events:?}"
    );
    let snapshot = model.snapshot();
    assert_eq!(snapshot["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(
        snapshot["shared_shown_for_ms"], 10_000,
        "how long the page marks it"
    );
}
