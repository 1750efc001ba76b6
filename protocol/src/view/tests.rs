use super::*;
use crate::codec::Codec;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn feed(view: &mut NetworkView, topic: &str, payload: &str, at: u64) -> Vec<Change> {
    let (topic, message) = Message::decode_on(topic, payload.as_bytes(), Codec::Json).unwrap();
    view.apply(&topic, &message, ms(at))
}

/// A view that heard three healthy nodes of 0220 and the primary 0001/0000 of epoch 0x10001.
fn healthy() -> NetworkView {
    let mut view = NetworkView::new(ms(500));
    for node in ["0220/0000", "0220/0001", "0220/0002"] {
        feed(&mut view, &format!("/dhcp/heartbeat/{node}"), "ONLINE", 0);
    }
    feed(
        &mut view,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":"0001","add_node":"0000","state":"ONLINE","epoch":65537}"#,
        10,
    );
    view
}

fn states(view: &NetworkView) -> Vec<NodeState> {
    view.nodes()
        .values()
        .filter_map(|status| status.state)
        .collect()
}

#[test]
fn a_strangers_dispatch_changes_no_node_state() {
    let mut view = healthy();
    let changes = feed(
        &mut view,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":220,"add_node":-1,"state":"FAILED","epoch":1,"observer":"0666/0000"}"#,
        20,
    );
    assert!(matches!(changes[..], [Change::Refused(Refusal::Forged(_))]));
    assert_eq!(states(&view), [NodeState::Online; 3]);
    // The same from a real-looking but not primary controller, or with a stale epoch.
    for payload in [
        r#"{"add_ctrl":220,"add_node":-1,"state":"FAILED","epoch":131074,"observer":"0002/0000"}"#,
        r#"{"add_ctrl":220,"add_node":-1,"state":"FAILED","epoch":65538,"observer":"0002/0000"}"#,
        r#"{"add_ctrl":220,"add_node":-1,"state":"FAILED"}"#,
    ] {
        assert_eq!(
            feed(&mut view, "/dhcp/heartbeat/", payload, 30),
            [Change::Refused(Refusal::Fenced)],
            "{payload}"
        );
    }
    assert_eq!(states(&view), [NodeState::Online; 3]);
}

#[test]
fn the_primarys_dispatch_is_believed_until_it_is_replaced() {
    let mut view = healthy();
    let changes = feed(
        &mut view,
        "/dhcp/heartbeat/",
        r#"{"add_ctrl":220,"add_node":1,"state":"PENDING","epoch":65537,"observer":"0001/0000"}"#,
        20,
    );
    assert_eq!(changes, [Change::Node(Hadd::new(220, 1))]);
    let status = view.nodes()[&Hadd::new(220, 1)];
    assert_eq!(
        (status.state, status.told_by),
        (Some(NodeState::Pending), Some(Hadd::new(1, 0)))
    );
    // 0002, a secondary that announced itself, takes over; the old primary's late dispatch
    // is fenced.
    feed(
        &mut view,
        "/values/system/0002/0000/network_controller",
        r#"{"uuid":"network_controller","genre":4,"cmd_class":4177,"data":"secondary",
            "hadd":"0002/0000","role":"secondary","priority":5,"epoch":65537}"#,
        25,
    );
    let changes = feed(
        &mut view,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":"0002","add_node":"0000","state":"ONLINE","epoch":131074}"#,
        30,
    );
    assert_eq!(
        changes,
        [Change::Primary {
            hadd: Hadd::new(2, 0),
            epoch: 131_074
        }]
    );
    assert_eq!(
        feed(
            &mut view,
            "/dhcp/heartbeat/",
            r#"{"add_ctrl":220,"add_node":2,"state":"FAILED","epoch":65537,"observer":"0001/0000"}"#,
            40,
        ),
        [Change::Refused(Refusal::Fenced)]
    );
    assert_eq!(view.state(Hadd::new(220, 2)), NodeState::Online);
}

#[test]
fn a_primary_heartbeat_with_an_impossible_epoch_is_refused() {
    let mut view = healthy();
    let changes = feed(
        &mut view,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":"0003","add_node":"0000","state":"ONLINE","epoch":18446744073709551615}"#,
        20,
    );
    assert_eq!(
        changes,
        [Change::Refused(Refusal::Forged(Forgery::BeyondRange))]
    );
    assert_eq!(view.primary(), Some((Hadd::new(1, 0), 65_537)));
}

#[test]
fn the_originals_primary_speaks_for_nodes_without_an_epoch() {
    let mut view = NetworkView::new(ms(500));
    feed(&mut view, "/dhcp/heartbeat/0220/0001", "ONLINE", 0);
    feed(
        &mut view,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":"0001","add_node":"0000","state":"ONLINE"}"#,
        10,
    );
    assert_eq!(
        feed(
            &mut view,
            "/dhcp/heartbeat/",
            r#"{"add_ctrl":220,"add_node":1,"state":"PENDING"}"#,
            20,
        ),
        [Change::Node(Hadd::new(220, 1))]
    );
    assert_eq!(
        view.nodes()[&Hadd::new(220, 1)].told_by,
        Some(Hadd::new(1, 0))
    );
}

#[test]
fn the_primarys_last_will_leaves_nobody_to_speak_for_nodes() {
    let mut view = healthy();
    assert_eq!(
        feed(&mut view, "/dhcp/heartbeat/0001/0000", "OFFLINE", 20),
        [
            Change::PrimaryGone {
                hadd: Hadd::new(1, 0)
            },
            Change::Node(Hadd::new(1, 0))
        ]
    );
    assert_eq!(
        feed(
            &mut view,
            "/dhcp/heartbeat/",
            r#"{"add_ctrl":220,"add_node":1,"state":"OFFLINE","epoch":65537,"observer":"0001/0000"}"#,
            30,
        ),
        [Change::Refused(Refusal::Fenced)]
    );
}

#[test]
fn a_map_answer_of_a_replaced_primary_is_not_merged() {
    let mut view = healthy();
    let stale = r#"{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"epoch":1,
        "data":{"0300/0001":{"hadd":"0300/0001","name":"ghost"}}}"#;
    assert_eq!(
        feed(&mut view, "/dhcp/resolv/broadcast/", stale, 20),
        [Change::Refused(Refusal::Fenced)]
    );
    assert!(view.map().node(Hadd::new(300, 1)).is_none());
    let current = stale.replace(r#""epoch":1"#, r#""epoch":65537"#);
    let changes = feed(&mut view, "/dhcp/resolv/broadcast/", &current, 30);
    assert_eq!(changes, [Change::Node(Hadd::new(300, 1))]);
}

#[test]
fn candidacies_are_controllers_and_values_land_in_the_map() {
    let mut view = NetworkView::new(ms(500));
    let changes = feed(
        &mut view,
        "/values/system/0002/0000/network_controller",
        r#"{"uuid":"network_controller","genre":4,"cmd_class":4177,"data":"secondary",
            "hadd":"0002/0000","role":"secondary","priority":5,"epoch":65537}"#,
        0,
    );
    assert_eq!(changes[0], Change::Controller(Hadd::new(2, 0)));
    assert_eq!(view.controllers()[&Hadd::new(2, 0)].candidacy.epoch, 65_537);
    // A value the node never described is not kept; described (here in its answer to a
    // get), its publications land in the map.
    let publication =
        r#"{"uuid":"temperature","index":0,"genre":2,"data":21.5,"hadd":"0220/0001"}"#;
    let changes = feed(
        &mut view,
        "/values/user/0220/0001/temperature",
        publication,
        10,
    );
    assert_eq!(
        changes,
        [Change::Value(MapChange::Dropped(Hadd::new(220, 1)))]
    );
    feed(
        &mut view,
        "/nodes/0220/0001/reply",
        r#"{"uuid":"temperature","index":0,"genre":2,"data":20.0,"hadd":"0220/0001",
            "label":"Temperature","status":200}"#,
        15,
    );
    let changes = feed(
        &mut view,
        "/values/user/0220/0001/temperature",
        publication,
        20,
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(
        view.map().data(
            Hadd::new(220, 1),
            crate::model::Genre::User,
            "temperature",
            0
        ),
        Some(&Data::from(21.5))
    );
}

/// The original's map answer (as recorded in `conformance/s11`: no epoch, its own node with
/// the DHCP server's command class, a state per node): it names the original's primary, and
/// the states it tells are its, not the nodes' own. Once an epoch is seen, it names nobody.
#[test]
fn the_originals_map_names_its_primary_and_tells_the_states() {
    let answer = r#"{"cmd_class": 20480, "genre": 4, "uuid": "request_info_nodes", "reply_hadd": "0002/0000", "data": {
        "1048/0000": {"uuid": "hostsensor", "oid": "hostsensor", "capabilities": [4], "cmd_classes": [4176, 112], "name": "testsensor", "hadd": "1048/0000", "heartbeat": 30.0, "state": "FAILED"},
        "0001/0000": {"uuid": "dhcp", "oid": "controller", "capabilities": [], "cmd_classes": [4096, 4176, 112], "name": "DHCP Server", "hadd": "0001/0000", "heartbeat": 30, "state": "ONLINE"}}}"#;
    let mut view = NetworkView::new(ms(500));
    feed(&mut view, "/dhcp/resolv/reply/0002/0000", answer, 0);
    assert_eq!(view.original_primary(), Some(Hadd::new(1, 0)));
    let sensor = view.nodes()[&Hadd::new(1048, 0)];
    assert_eq!(sensor.state, Some(NodeState::Failed));
    assert_eq!(
        sensor.told_by,
        Some(Hadd::new(1, 0)),
        "told by the original's primary"
    );
    // An epoch seen: ours run this network, the original names nobody.
    feed(
        &mut view,
        "/dhcp/resolv/heartbeat",
        r#"{"add_ctrl":"0003","add_node":"0000","state":"ONLINE","epoch":65539}"#,
        10,
    );
    assert_eq!(view.original_primary(), None);
}
