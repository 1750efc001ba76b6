use std::time::Duration;

use super::*;
use crate::heartbeat::Heartbeat;
use crate::homeassistant::tests::{tutorial_map, DHT, LED, PRIMARY};
use crate::message::Message;
use crate::model::{Genre, InfoKind};
use crate::network_map::NetworkMap;
use crate::topic::Topic;

const SECONDARY: Hadd = Hadd::new(2, 0);
const BUDGET: usize = 10_000;

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A view holding `map`, every node ONLINE.
fn view_of(map: &NetworkMap) -> NetworkView {
    let mut view = NetworkView::new(at(500));
    for kind in InfoKind::ALL {
        for reply in map.discovery_replies(kind, Some(PRIMARY)) {
            view.apply(
                &Topic::NodeReply(PRIMARY),
                &Message::DiscoveryReply(reply),
                at(0),
            );
        }
    }
    for node in map.nodes() {
        tell(&mut view, node.hadd, NodeState::Online);
    }
    view
}

fn tell(view: &mut NetworkView, hadd: Hadd, state: NodeState) {
    let beat = Message::Heartbeat(Heartbeat::own(hadd, state));
    view.apply(&Topic::Heartbeat(hadd), &beat, at(0));
}

fn announcer() -> Announcer {
    Announcer::new(DiscoverySettings::default())
}

fn topics(out: &[Retain]) -> Vec<&str> {
    out.iter().map(|retain| retain.topic.as_str()).collect()
}

fn payload_on<'a>(out: &'a [Retain], topic: &str) -> Option<&'a [u8]> {
    out.iter()
        .find(|retain| retain.topic == topic)
        .map(|retain| retain.payload.as_slice())
}

fn availability(hadd: Hadd) -> String {
    availability_topic(&DiscoverySettings::default(), hadd)
}

#[test]
fn only_the_primary_publishes_and_only_what_changed() {
    let view = view_of(&tutorial_map());
    let mut announcer = announcer();
    assert!(announcer.announce(at(0), None, &view, BUDGET).is_empty());
    let out = announcer.announce(at(100), Some(PRIMARY), &view, BUDGET);
    let configs = node_configs(&DiscoverySettings::default(), view.map(), DHT, PRIMARY).len()
        + node_configs(&DiscoverySettings::default(), view.map(), LED, PRIMARY).len();
    // Each node's availability, then its configs.
    assert_eq!(out.len(), configs + 2, "{:?}", topics(&out));
    assert_eq!(payload_on(&out, &availability(DHT)), Some(&b"online"[..]));
    assert!(out.iter().all(|retain| !retain.payload.is_empty()));
    let first_config = out
        .iter()
        .position(|r| r.topic.ends_with("/config"))
        .unwrap();
    assert!(topics(&out)[..first_config].contains(&availability(DHT).as_str()));
    assert!(announcer
        .announce(at(200), Some(PRIMARY), &view, BUDGET)
        .is_empty());
    // Its own publications heard back change nothing.
    for retain in &out {
        announcer.heard(&retain.topic, &retain.payload, at(300));
    }
    assert!(announcer
        .announce(at(900), Some(PRIMARY), &view, BUDGET)
        .is_empty());
}

#[test]
fn a_state_change_publishes_the_availability_alone() {
    let mut view = view_of(&tutorial_map());
    let mut announcer = announcer();
    announcer.announce(at(0), Some(PRIMARY), &view, BUDGET);
    tell(&mut view, LED, NodeState::Pending);
    announcer.state_changed(LED);
    let out = announcer.announce(at(100), Some(PRIMARY), &view, BUDGET);
    assert_eq!(topics(&out), [availability(LED).as_str()]);
    assert_eq!(out[0].payload, b"offline");
    // Unavailable already: FAILED and OFFLINE publish nothing more.
    for state in [NodeState::Failed, NodeState::Offline] {
        tell(&mut view, LED, state);
        announcer.state_changed(LED);
        assert!(
            announcer
                .announce(at(150), Some(PRIMARY), &view, BUDGET)
                .is_empty(),
            "{state}"
        );
    }
    tell(&mut view, LED, NodeState::Online);
    announcer.state_changed(LED);
    let out = announcer.announce(at(200), Some(PRIMARY), &view, BUDGET);
    assert_eq!(out[0].payload, b"online");
}

#[test]
fn a_dead_node_is_cleared_and_announced_again_when_it_is_back() {
    let mut view = view_of(&tutorial_map());
    let mut announcer = announcer();
    let first = announcer.announce(at(0), Some(PRIMARY), &view, BUDGET);
    let led_topics: Vec<&str> = topics(&first)
        .into_iter()
        .filter(|topic| topic.contains("0220_0002"))
        .collect();
    assert!(led_topics.len() > 3, "{led_topics:?}");
    tell(&mut view, LED, NodeState::Dead);
    announcer.state_changed(LED);
    let out = announcer.announce(at(100), Some(PRIMARY), &view, BUDGET);
    let mut cleared = topics(&out);
    cleared.sort_unstable();
    let mut expected = led_topics.clone();
    expected.sort_unstable();
    assert_eq!(cleared, expected);
    assert!(out.iter().all(|retain| retain.payload.is_empty()));
    tell(&mut view, LED, NodeState::Online);
    announcer.state_changed(LED);
    let back = announcer.announce(at(200), Some(PRIMARY), &view, BUDGET);
    assert_eq!(back.len(), led_topics.len());
    assert!(back.iter().all(|retain| !retain.payload.is_empty()));
}

#[test]
fn a_value_that_appears_later_is_added_and_one_that_changes_is_announced_again() {
    let mut map = tutorial_map();
    let mut announcer = announcer();
    let view = view_of(&map);
    announcer.announce(at(0), Some(PRIMARY), &view, BUDGET);
    let mut pressure = map
        .value(DHT, Genre::User, "temperature", 0)
        .unwrap()
        .clone();
    pressure.uuid = "pressure".into();
    pressure.units = Some("hPa".into());
    map.merge_value(DHT, Genre::User, pressure);
    let view = view_of(&map);
    announcer.description_changed(DHT);
    let out = announcer.announce(at(100), Some(PRIMARY), &view, BUDGET);
    assert_eq!(
        topics(&out),
        ["homeassistant/sensor/janitoo_janitoo_0220_0001/user_pressure_0/config"]
    );
    let config: serde_json::Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(config["device_class"], "pressure");
}

#[test]
fn what_others_write_is_put_right_at_most_every_correction_spacing() {
    let view = view_of(&tutorial_map());
    let mut announcer = announcer();
    let first = announcer.announce(at(0), Some(PRIMARY), &view, BUDGET);
    // A stranger's retained `offline` for a node ONLINE.
    announcer.heard(&availability(DHT), b"offline", at(10));
    let out = announcer.announce(at(20), Some(PRIMARY), &view, BUDGET);
    assert_eq!(topics(&out), [availability(DHT).as_str()]);
    assert_eq!(out[0].payload, b"online");
    // Again at once: put right only once the spacing is over.
    announcer.heard(&availability(DHT), b"offline", at(30));
    assert!(announcer
        .announce(at(40), Some(PRIMARY), &view, BUDGET)
        .is_empty());
    let later = at(20) + CORRECTION_SPACING;
    assert_eq!(
        topics(&announcer.announce(later, Some(PRIMARY), &view, BUDGET)),
        [availability(DHT).as_str()]
    );
    // A config cleared by someone is published again; a config of a node that does not exist
    // is cleared.
    let config = first
        .iter()
        .find(|retain| retain.topic.contains("user_temperature"))
        .unwrap();
    announcer.heard(&config.topic, b"", at(1_000));
    let fake = "homeassistant/sensor/janitoo_janitoo_0777_0001/user_x_0/config";
    announcer.heard(fake, b"{\"name\":\"fake\"}", at(1_000));
    let out = announcer.announce(at(1_100), Some(PRIMARY), &view, BUDGET);
    assert_eq!(
        payload_on(&out, &config.topic),
        Some(config.payload.as_slice())
    );
    assert_eq!(payload_on(&out, fake), Some(&b""[..]));
    assert_eq!(out.len(), 2, "{:?}", topics(&out));
    // Other networks' and other integrations' topics are none of its business.
    announcer.heard(
        "homeassistant/sensor/zigbee_1/temp/config",
        b"{}",
        at(2_000),
    );
    announcer.heard(
        "homeassistant/sensor/janitoo_other_0220_0001/x/config",
        b"{}",
        at(2_000),
    );
    assert!(announcer
        .announce(at(3_000), Some(PRIMARY), &view, BUDGET)
        .is_empty());
}

#[test]
fn a_controller_that_takes_over_publishes_everything_on_the_same_topics() {
    let view = view_of(&tutorial_map());
    let mut primary = announcer();
    let published = primary.announce(at(0), Some(PRIMARY), &view, BUDGET);
    let mut secondary = announcer();
    for retain in &published {
        secondary.heard(&retain.topic, &retain.payload, at(10));
    }
    assert!(secondary.announce(at(20), None, &view, BUDGET).is_empty());
    // What it heard may have missed something (a pause, a message lost): everything again,
    // on the same topics; the commands now answered to it.
    let out = secondary.announce(at(30), Some(SECONDARY), &view, BUDGET);
    assert_eq!(topics(&out), topics(&published));
    let switch = out
        .iter()
        .find(|retain| retain.topic.contains("user_switch"))
        .unwrap();
    let text = String::from_utf8_lossy(&switch.payload);
    assert!(text.contains(r#"\"reply_hadd\":\"0002/0000\""#), "{text}");
    // It steps down: nothing more, whatever changes.
    secondary.description_changed(DHT);
    secondary.heard(&availability(DHT), b"offline", at(35));
    assert!(secondary.announce(at(40), None, &view, BUDGET).is_empty());
}

#[test]
fn home_assistants_birth_republishes_everything_at_most_every_ten_seconds() {
    let view = view_of(&tutorial_map());
    let mut announcer = announcer();
    let all = announcer
        .announce(at(0), Some(PRIMARY), &view, BUDGET)
        .len();
    announcer.heard("homeassistant/status", b"offline", at(50));
    assert!(announcer
        .announce(at(60), Some(PRIMARY), &view, BUDGET)
        .is_empty());
    announcer.heard("homeassistant/status", b"online", at(100));
    assert_eq!(
        announcer
            .announce(at(100), Some(PRIMARY), &view, BUDGET)
            .len(),
        all
    );
    announcer.heard("homeassistant/status", b"online", at(200));
    announcer.heard("homeassistant/status", b"online", at(300));
    assert!(announcer
        .announce(at(5_000), Some(PRIMARY), &view, BUDGET)
        .is_empty());
    let due = at(100) + REPUBLISH_SPACING;
    assert_eq!(
        announcer.announce(due, Some(PRIMARY), &view, BUDGET).len(),
        all
    );
    assert!(announcer
        .announce(due + at(100), Some(PRIMARY), &view, BUDGET)
        .is_empty());
    // A reconnection republishes at once (the broker may have lost everything).
    announcer.reconnected();
    assert_eq!(
        announcer
            .announce(due + at(200), Some(PRIMARY), &view, BUDGET)
            .len(),
        all
    );
}

#[test]
fn a_thousand_nodes_are_announced_over_several_calls_within_the_budget() {
    let tutorial = tutorial_map();
    let mut map = NetworkMap::new();
    for ctrl in 1..=100u16 {
        for node in 1..=10u16 {
            let hadd = Hadd::new(ctrl + 1000, node);
            let mut info = tutorial.node(DHT).unwrap().clone();
            info.hadd = hadd;
            map.merge_node(info);
            for (uuid, instances) in tutorial.values(DHT, Genre::User).unwrap() {
                for value in instances.values() {
                    let mut value = value.clone();
                    value.uuid = uuid.clone();
                    map.merge_value(hadd, Genre::User, value);
                }
            }
        }
    }
    let view = view_of(&map);
    let mut announcer = announcer();
    let mut calls = 0;
    let mut published = 0;
    loop {
        let out = announcer.announce(at(calls), Some(PRIMARY), &view, 256);
        if out.is_empty() {
            break;
        }
        assert!(out.len() < 256 + 4, "{}", out.len());
        published += out.len();
        calls += 1;
    }
    // Per node: availability, temperature, humidity.
    assert_eq!(published, 3_000);
    assert_eq!(announcer.backlog(), 0);
    assert!(calls >= 12, "{calls}");
}

#[test]
fn topics_heard_beyond_the_cap_are_not_remembered() {
    let mut announcer = announcer();
    for n in 0..MAX_TOPICS + 10 {
        let ctrl = 1 + n / 9_999;
        let node = 1 + n % 9_999;
        let topic = format!("janitoo/janitoo/availability/{ctrl:04}_{node:04}");
        announcer.heard(&topic, b"online", at(0));
    }
    assert_eq!(announcer.held_topics, MAX_TOPICS);
    assert_eq!(
        announcer
            .held
            .values()
            .map(|held| held.topics.len())
            .sum::<usize>(),
        MAX_TOPICS
    );
    // Malformed ids are ignored.
    announcer.heard("janitoo/janitoo/availability/12_3", b"online", at(0));
    announcer.heard("janitoo/janitoo/availability/abcd_0001", b"online", at(0));
    assert_eq!(announcer.held_topics, MAX_TOPICS);
}

#[test]
fn the_data_of_each_value_is_kept_retained_for_home_assistant_and_only_it_changes_with_a_reading() {
    let mut map = tutorial_map();
    let mut temperature = map
        .value(DHT, Genre::User, "temperature", 0)
        .unwrap()
        .clone();
    temperature.data = 21.5.into();
    map.merge_value(DHT, Genre::User, temperature.clone());
    let mut load = map.value(LED, Genre::Basic, "load", 1).unwrap().clone();
    load.data = 0.25.into();
    map.merge_value(LED, Genre::Basic, load);
    let mut announcer = announcer();
    let out = announcer.announce(at(0), Some(PRIMARY), &view_of(&map), BUDGET);
    let state = "janitoo/janitoo/state/0220_0001/user/temperature";
    let payload: serde_json::Value =
        serde_json::from_slice(payload_on(&out, state).unwrap()).unwrap();
    assert_eq!(payload, serde_json::json!({"0": {"data": 21.5}}));
    // Of a multi-instance value, the instances that have data, by index.
    let load_state = "janitoo/janitoo/state/0220_0002/basic/load";
    let payload: serde_json::Value =
        serde_json::from_slice(payload_on(&out, load_state).unwrap()).unwrap();
    assert_eq!(payload, serde_json::json!({"1": {"data": 0.25}}));
    // No data yet: no copy (a sensor would read `None`).
    assert!(!topics(&out).contains(&"janitoo/janitoo/state/0220_0001/user/humidity"));
    // A new reading: the copy alone.
    temperature.data = 22.0.into();
    map.merge_value(DHT, Genre::User, temperature);
    announcer.description_changed(DHT);
    let out = announcer.announce(at(100), Some(PRIMARY), &view_of(&map), BUDGET);
    assert_eq!(topics(&out), [state]);
    assert_eq!(out[0].payload, br#"{"0":{"data":22.0}}"#);
}

#[test]
fn a_topic_someone_else_wrote_on_is_said_again_once_the_dust_settles() {
    let view = view_of(&tutorial_map());
    let mut announcer = announcer();
    announcer.announce(at(0), Some(PRIMARY), &view, BUDGET);
    // Another primary (a partition healing) writes `offline`, then `online` again: what this
    // controller hears last is what it wants, but a bridged broker may hold the other word.
    announcer.heard(&availability(DHT), b"offline", at(100));
    announcer.heard(&availability(DHT), b"online", at(110));
    assert!(announcer
        .announce(at(500), Some(PRIMARY), &view, BUDGET)
        .is_empty());
    let again = announcer.announce(at(100) + REASSERT_AFTER, Some(PRIMARY), &view, BUDGET);
    assert_eq!(topics(&again), [availability(DHT).as_str()]);
    assert_eq!(again[0].payload, b"online");
    assert!(announcer
        .announce(at(200) + REASSERT_AFTER, Some(PRIMARY), &view, BUDGET)
        .is_empty());
    // Not while it is not the primary.
    announcer.heard(&availability(DHT), b"offline", at(5_000));
    announcer.announce(at(5_001), None, &view, BUDGET);
    announcer.heard(&availability(DHT), b"online", at(5_002));
    assert!(announcer
        .announce(at(9_000), None, &view, BUDGET)
        .is_empty());
}

/// What `held_topics` counts is what is held.
fn assert_counted(announcer: &Announcer) {
    let held: usize = announcer.held.values().map(|held| held.topics.len()).sum();
    assert_eq!(announcer.held_topics, held);
}

#[test]
fn the_count_of_topics_held_follows_every_addition_and_clearing() {
    let mut view = view_of(&tutorial_map());
    let mut announcer = announcer();
    let first = announcer.announce(at(0), Some(PRIMARY), &view, BUDGET);
    assert_counted(&announcer);
    assert_eq!(announcer.held_topics, first.len());
    // Cleared by someone: one fewer.
    let config = &first
        .iter()
        .find(|r| r.topic.ends_with("/config"))
        .unwrap()
        .topic;
    announcer.heard(config, b"", at(10));
    assert_counted(&announcer);
    assert_eq!(announcer.held_topics, first.len() - 1);
    announcer.announce(at(20), Some(PRIMARY), &view, BUDGET);
    assert_eq!(announcer.held_topics, first.len());
    // A config of the node that it no longer has: cleared.
    let stray = "homeassistant/sensor/janitoo_janitoo_0220_0001/user_gone_0/config";
    announcer.heard(stray, b"{}", at(300));
    assert_eq!(announcer.held_topics, first.len() + 1);
    announcer.announce(at(600), Some(PRIMARY), &view, BUDGET);
    assert_counted(&announcer);
    assert_eq!(announcer.held_topics, first.len());
    // A node DEAD: all of its topics go.
    tell(&mut view, LED, NodeState::Dead);
    announcer.state_changed(LED);
    let cleared = announcer.announce(at(900), Some(PRIMARY), &view, BUDGET);
    assert_counted(&announcer);
    assert_eq!(announcer.held_topics, first.len() - cleared.len());
}

#[test]
fn a_pause_or_a_takeover_asks_the_broker_again_once_and_a_reconnection_does_not() {
    let view = view_of(&tutorial_map());
    let mut announcer = announcer();
    assert!(!announcer.take_reread());
    let all = announcer
        .announce(at(0), Some(PRIMARY), &view, BUDGET)
        .len();
    assert!(
        announcer.take_reread(),
        "a new primary reads what the broker holds"
    );
    assert!(!announcer.take_reread(), "once");
    announcer.paused();
    assert!(announcer.take_reread());
    assert!(!announcer.take_reread());
    assert_eq!(
        announcer
            .announce(at(100), Some(PRIMARY), &view, BUDGET)
            .len(),
        all
    );
    announcer.reconnected();
    assert!(!announcer.take_reread(), "the subscriptions bring it");
    assert_eq!(
        announcer
            .announce(at(200), Some(PRIMARY), &view, BUDGET)
            .len(),
        all
    );
}

#[test]
fn a_budget_of_one_nodes_publications_publishes_one_node_a_call() {
    let view = view_of(&tutorial_map());
    let mut announcer = announcer();
    // The DHT's: its availability, two configs (no state copies: no data yet).
    let first = announcer.announce(at(0), Some(PRIMARY), &view, 3);
    assert_eq!(first.len(), 3, "{:?}", topics(&first));
    assert!(first
        .iter()
        .all(|retain| retain.topic.contains("0220_0001")));
    let second = announcer.announce(at(1), Some(PRIMARY), &view, 3);
    assert!(second
        .iter()
        .all(|retain| retain.topic.contains("0220_0002")));
}
