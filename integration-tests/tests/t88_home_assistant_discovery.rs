//! Home Assistant's MQTT discovery as the failover example publishes it with `[homeassistant]`,
//! read as Home Assistant reads it (retained topics), on the embedded broker and on Mosquitto:
//! the tutorial's devices and entities, availability that follows the nodes, a stranger's
//! forgery put right, Home Assistant's birth answered, and a failover that changes no topic and
//! no `unique_id` while the tutorial server dies with the old primary (one Pi ran both): its
//! nodes made unavailable by the new primary, which hears their Last Will before it has caught
//! up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use janitoo_integration_tests::network::FailoverNetwork;
use janitoo_integration_tests::process::{brokers_under_test, BrokerKind, BrokerProcess};
use janitoo_integration_tests::retained::{availability, configs_in, RetainedView};
use serde_json::Value;
use tokio::time::Instant;

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

const DHT: &str = "janitoo_janitoo_0220_0001";
const LED: &str = "janitoo_janitoo_0220_0002";
const CPU: &str = "janitoo_janitoo_0222_0001";

fn with_discovery(text: String) -> String {
    format!("{text}\n[homeassistant]\n")
}

/// The config whose topic holds `node` and `object`, if held.
fn config_of<'a>(
    configs: &'a BTreeMap<String, Value>,
    node: &str,
    object: &str,
) -> Option<(&'a String, &'a Value)> {
    configs
        .iter()
        .find(|(topic, _)| topic.contains(&format!("/{node}/{object}/")))
}

/// Every `unique_id` of the held configs, by topic.
fn unique_ids(held: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    configs_in(held)
        .into_iter()
        .map(|(topic, config)| (topic, config["unique_id"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// Every entity of `before` is still there with its unique id (entities announced since, as
/// a reading that came late, may be added).
fn assert_kept(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>, what: &str) {
    for (topic, id) in before {
        assert_eq!(
            after.get(topic),
            Some(id),
            "{what} changed or removed {topic}"
        );
    }
    let ids: BTreeSet<&String> = after.values().collect();
    assert_eq!(
        ids.len(),
        after.len(),
        "{what} duplicated an entity: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_publishes_home_assistants_discovery_and_keeps_it_true() {
    for kind in brokers_under_test() {
        discovery_on(kind).await;
    }
}

async fn discovery_on(kind: BrokerKind) {
    let broker = BrokerProcess::start(kind, janitoo(), None);
    let mut view = RetainedView::connect(broker.port).await;
    let started = Instant::now();
    let mut net =
        FailoverNetwork::start_editing(janitoo(), &broker.address(), with_discovery, |text| text);

    // The tutorial's devices and entities.
    let configs = view
        .wait_for(Duration::from_secs(15), |held| {
            let configs = configs_in(held);
            let complete = [
                (DHT, "user_temperature_0"),
                (DHT, "user_humidity_0"),
                (LED, "user_switch_0"),
                (CPU, "user_frequency_0"),
                (CPU, "user_voltage_0"),
            ]
            .iter()
            .all(|(node, object)| config_of(&configs, node, object).is_some());
            let has_state = held.contains_key("janitoo/janitoo/state/0220_0001/user/temperature");
            let online = [DHT, LED, CPU].iter().all(|node| {
                let topic = availability(&node["janitoo_janitoo_".len()..]);
                held.get(&topic).map(Vec::as_slice) == Some(b"online")
            });
            (complete && online && has_state).then_some(configs)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{kind:?}: the tutorial's entities were not all announced: {:?}",
                view.held.keys().collect::<Vec<_>>()
            )
        });
    eprintln!(
        "{kind:?}: the tutorial's entities in {:?}",
        started.elapsed()
    );
    let (topic, temperature) = config_of(&configs, DHT, "user_temperature_0").unwrap();
    assert!(topic.starts_with("homeassistant/sensor/"), "{topic}");
    assert_eq!(temperature["device_class"], "temperature");
    assert_eq!(temperature["unit_of_measurement"], "°C");
    assert_eq!(temperature["state_class"], "measurement");
    // Its state: the primary's retained copy of the value's data.
    let state_topic = "janitoo/janitoo/state/0220_0001/user/temperature";
    assert_eq!(temperature["state_topic"], state_topic);
    let state: Value = serde_json::from_slice(&view.held[state_topic]).unwrap();
    assert!(state["0"]["data"].is_number(), "{state}");
    assert_eq!(temperature["availability_topic"], availability("0220_0001"));
    assert_eq!(temperature["device"]["identifiers"][0], DHT);
    assert_eq!(temperature["device"]["name"], "Ambiance");
    assert_eq!(temperature["device"]["suggested_area"], "Living room");
    assert_eq!(
        temperature["device"]["via_device"],
        "janitoo_janitoo_0220_0000"
    );
    let (_, humidity) = config_of(&configs, DHT, "user_humidity_0").unwrap();
    assert_eq!(humidity["device_class"], "humidity");
    assert_eq!(humidity["unit_of_measurement"], "%");
    let (_, frequency) = config_of(&configs, CPU, "user_frequency_0").unwrap();
    assert_eq!(frequency["device_class"], "frequency");
    let (_, voltage) = config_of(&configs, CPU, "user_voltage_0").unwrap();
    assert_eq!(voltage["device_class"], "voltage");
    let (topic, switch) = config_of(&configs, LED, "user_switch_0").unwrap();
    assert!(topic.starts_with("homeassistant/switch/"), "{topic}");
    assert_eq!(switch["command_topic"], "/nodes/0220/0002/request");
    let command = switch["payload_on"].as_str().unwrap();
    assert!(command.contains(r#""reply_hadd":"0001/0000""#), "{command}");
    let before: BTreeMap<String, String> = unique_ids(&view.held);

    // A stranger's retained `offline` for a node ONLINE is put right.
    let dht_availability = availability("0220_0001");
    let forged = Instant::now();
    view.client()
        .publish_retained(&dht_availability, "offline")
        .await;
    view.wait_since(forged, Duration::from_secs(3), |received| {
        let on_topic: Vec<&[u8]> = received
            .iter()
            .filter(|(topic, _)| *topic == dht_availability)
            .map(|(_, payload)| payload.as_slice())
            .collect();
        let offline = on_topic.iter().position(|p| *p == b"offline")?;
        on_topic[offline..].contains(&&b"online"[..]).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{kind:?}: the forged `offline` was not put right"));
    eprintln!(
        "{kind:?}: a forged availability put right in {:?}",
        forged.elapsed()
    );
    // A config of a node that does not exist is cleared.
    let fake = "homeassistant/sensor/janitoo_janitoo_0777_0001/user_fake_0/config";
    let faked = Instant::now();
    view.client()
        .publish_retained(fake, r#"{"name":"fake"}"#)
        .await;
    view.wait_since(faked, Duration::from_secs(3), |received| {
        let on_topic: Vec<&[u8]> = received
            .iter()
            .filter(|(topic, _)| topic == fake)
            .map(|(_, payload)| payload.as_slice())
            .collect();
        (on_topic.len() >= 2 && on_topic.last()?.is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{kind:?}: the made-up node's config was not cleared"));

    // Home Assistant's birth: every config again.
    let birth = Instant::now();
    view.client()
        .publish("homeassistant/status", "online")
        .await;
    let expected: BTreeSet<String> = before.keys().cloned().collect();
    let again = view
        .wait_since(birth, Duration::from_secs(5), |received| {
            let again: BTreeSet<String> = received
                .iter()
                .filter(|(topic, payload)| topic.ends_with("/config") && !payload.is_empty())
                .map(|(topic, _)| topic.clone())
                .collect();
            again.is_superset(&expected).then_some(again)
        })
        .await;
    assert!(
        again.is_some(),
        "{kind:?}: the birth did not republish every config of {expected:?}"
    );

    // A failover: the same topics and unique ids, commands now answered to the new primary.
    // The tutorial server dies at the same moment (one Pi ran both): its Last Will reaches the
    // new primary before it has caught up, and must still make its nodes unavailable.
    net.controllers[0].1.kill();
    net.tutorial.kill();
    let killed = Instant::now();
    let after = view
        .wait_for(Duration::from_secs(10), |held| {
            let configs = configs_in(held);
            let (_, switch) = config_of(&configs, LED, "user_switch_0")?;
            let command = switch["payload_on"].as_str()?;
            command
                .contains(r#""reply_hadd":"0002/0000""#)
                .then(|| unique_ids(held))
        })
        .await
        .unwrap_or_else(|| panic!("{kind:?}: the new primary did not take the configs over"));
    eprintln!(
        "{kind:?}: configs taken over {:?} after the kill",
        killed.elapsed()
    );
    assert_kept(&before, &after, &format!("{kind:?}: a failover"));

    // The tutorial's nodes become unavailable, on the new primary's word.
    view.wait_for(Duration::from_secs(10), |held| {
        ["0220_0001", "0220_0002", "0221_0001", "0222_0001"]
            .iter()
            .all(|node| held.get(&availability(node)).map(Vec::as_slice) == Some(b"offline"))
            .then_some(())
    })
    .await
    .unwrap_or_else(|| {
        let said: Vec<String> = ["0220_0001", "0220_0002", "0221_0001", "0222_0001"]
            .iter()
            .map(|node| {
                let held = view
                    .held
                    .get(&availability(node))
                    .cloned()
                    .unwrap_or_default();
                format!("{node}: {}", String::from_utf8_lossy(&held))
            })
            .collect();
        panic!("{kind:?}: the tutorial's nodes are still available: {said:?}")
    });
    eprintln!(
        "{kind:?}: unavailable {:?} after the kill",
        killed.elapsed()
    );
    // Nothing was duplicated or lost meanwhile.
    assert_kept(
        &before,
        &unique_ids(&view.held),
        &format!("{kind:?}: the tutorial's death"),
    );
    drop(net);
    drop(broker);
}
