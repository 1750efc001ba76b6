//! A real Home Assistant (2024.3.3) beside the failover example with `[homeassistant]` and the
//! tutorial server, on Mosquitto: Home Assistant is onboarded and given the MQTT integration
//! through its REST API, then the tutorial's entities appear with their units and device
//! classes, a sensor follows its value, `switch.turn_on` turns the LED on, a failover of the
//! primary changes no entity, and the tutorial server killed makes its entities unavailable.
//!
//! Needs `target/ha-venv` (`python3 integration-tests/ha/harness.py make-venv`) and Mosquitto;
//! skipped without them unless `JANITOO_TEST_HOMEASSISTANT` is set. With Chromium, a screenshot
//! of Home Assistant's devices goes to `target/home-assistant.png` (or
//! `$JANITOO_HA_SCREENSHOT`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::home_assistant::{self, state_of, HomeAssistant};
use janitoo_integration_tests::network::FailoverNetwork;
use janitoo_integration_tests::process::{mosquitto_path, BrokerKind, BrokerProcess};
use janitoo_integration_tests::require::runs;
use janitoo_integration_tests::web::{chromium, Browser};
use serde_json::{json, Value};
use tokio::time::Instant;

fn janitoo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_janitoo-it"))
}

/// The tutorial's entities this test looks at: unique id, unit, device class.
const SENSORS: [(&str, &str, &str); 4] = [
    (
        "janitoo_janitoo_0220_0001_user_temperature_0",
        "°C",
        "temperature",
    ),
    ("janitoo_janitoo_0220_0001_user_humidity_0", "%", "humidity"),
    (
        "janitoo_janitoo_0222_0001_user_frequency_0",
        "MHz",
        "frequency",
    ),
    ("janitoo_janitoo_0222_0001_user_voltage_0", "V", "voltage"),
];
const LED_SWITCH: &str = "janitoo_janitoo_0220_0002_user_switch_0";

/// unique id → entity id, of the MQTT entities in the registry.
fn registry(ha: &HomeAssistant) -> BTreeMap<String, String> {
    ha.entities()
        .iter()
        .filter(|entity| entity["platform"] == "mqtt")
        .filter_map(|entity| {
            Some((
                entity["unique_id"].as_str()?.to_owned(),
                entity["entity_id"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// The last data published on `topic` (a `/values/...` topic) as a number, if any.
fn last_number(client: &mut Client, topic: &str) -> Vec<f64> {
    client
        .drain()
        .into_iter()
        .filter(|received| received.topic == topic)
        .filter_map(|received| {
            let tree: Value = serde_json::from_slice(&received.payload).ok()?;
            tree["data"].as_f64()
        })
        .collect()
}

/// Text of the page, shadow roots included (Home Assistant's frontend is web components).
const PAGE_TEXT: &str = "(function text(node) { let all = ''; if (node.shadowRoot) all += text(node.shadowRoot); for (const child of node.childNodes) { all += child.nodeType === 3 ? child.textContent : text(child); } return all; })(document.documentElement)";

/// Logs Chromium in with the long-lived token and photographs the devices page.
async fn screenshot(ha: &HomeAssistant) {
    let Some(chromium) = chromium() else {
        return;
    };
    let mut browser = Browser::open(&chromium, &format!("{}/auth/authorize", ha.url)).await;
    let tokens = json!({
        "access_token": ha.token,
        "token_type": "Bearer",
        "hassUrl": ha.url,
        "clientId": format!("{}/", ha.url),
        "expires": 4_102_444_800_000u64,
        "refresh_token": "",
        "expires_in": 1800,
    });
    // The tokens go in the storage of Home Assistant's origin: once its page is there.
    let origin = browser
        .wait_for(
            &format!("location.origin === {:?}", ha.url),
            Duration::from_secs(30),
        )
        .await;
    assert!(origin, "Chromium did not open Home Assistant's page");
    browser
        .eval(&format!(
            "localStorage.setItem('hassTokens', {}); true",
            serde_json::to_string(&tokens.to_string()).unwrap()
        ))
        .await;
    browser
        .call(
            "Page.navigate",
            json!({"url": format!("{}/config/devices/dashboard", ha.url)}),
        )
        .await;
    let shown = browser
        .wait_for(
            &format!("{PAGE_TEXT}.includes('Ambiance') && {PAGE_TEXT}.includes('LED')"),
            Duration::from_secs(60),
        )
        .await;
    let shot = browser.screenshot().await;
    let path = std::env::var_os("JANITOO_HA_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/home-assistant.png")
        });
    std::fs::write(&path, shot).unwrap();
    eprintln!("screenshot: {}", path.display());
    assert!(
        shown,
        "Home Assistant's devices page does not show the tutorial's devices (see {})",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_shows_the_tutorial_and_follows_it() {
    let available = home_assistant::available() && mosquitto_path().is_some();
    if runs(
        "JANITOO_TEST_HOMEASSISTANT",
        available,
        "Home Assistant's venv (python3 integration-tests/ha/harness.py make-venv) or Mosquitto is missing",
    )
    .is_none()
    {
        return;
    }
    let broker = BrokerProcess::start(BrokerKind::Mosquitto, janitoo(), None);
    let mut values = Client::connect(broker.port).await;
    values.subscribe("/values/user/#").await;
    values.subscribe("/nodes/0220/0002/#").await;
    let mut net = FailoverNetwork::start_editing(
        janitoo(),
        &broker.address(),
        |text| format!("{text}\n[homeassistant]\n"),
        |text| {
            text.replace(
                "temperature_poll = 300, humidity_poll",
                "temperature_poll = 2, humidity_poll",
            )
        },
    );
    let ha = HomeAssistant::start(broker.port);
    let up = Instant::now();

    // The tutorial's entities, with their units and device classes.
    let wanted: Vec<&str> = SENSORS
        .iter()
        .map(|(id, _, _)| *id)
        .chain([LED_SWITCH])
        .collect();
    let ids = ha
        .wait_states(Duration::from_secs(60), |_| {
            let ids = registry(&ha);
            wanted.iter().all(|id| ids.contains_key(*id)).then_some(ids)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the tutorial's entities are not in Home Assistant: {:?}\n{}",
                registry(&ha),
                ha.log_problems()
            )
        });
    eprintln!(
        "entities in Home Assistant {:?} after it was up",
        up.elapsed()
    );
    let states = ha
        .wait_states(Duration::from_secs(30), |states| {
            SENSORS
                .iter()
                .all(|(id, _, _)| {
                    state_of(states, &ids[*id]).is_some_and(|state| {
                        state["state"]
                            .as_str()
                            .and_then(|s| s.parse::<f64>().ok())
                            .is_some()
                    })
                })
                .then(|| states.to_vec())
        })
        .await
        .unwrap_or_else(|| panic!("the sensors have no readings: {}", ha.log_problems()));
    for (id, unit, class) in SENSORS {
        let state = state_of(&states, &ids[id]).unwrap();
        assert_eq!(state["attributes"]["unit_of_measurement"], unit, "{state}");
        assert_eq!(state["attributes"]["device_class"], class, "{state}");
        assert_eq!(state["attributes"]["state_class"], "measurement", "{state}");
    }
    let devices = ha.devices();
    let ambiance = devices
        .iter()
        .find(|device| device["name"] == "Ambiance")
        .unwrap_or_else(|| panic!("no Ambiance device: {devices:?}"));
    // Its location became its area.
    assert_eq!(ambiance["area_id"], "living_room", "{ambiance}");
    assert!(
        ambiance["model"]
            .as_str()
            .is_some_and(|model| !model.is_empty()),
        "{ambiance}"
    );

    // The temperature follows its value (read every 2 s).
    let temperature = &ids[SENSORS[0].0];
    let topic = "/values/user/0220/0001/temperature";
    let mut published = last_number(&mut values, topic);
    let followed = ha
        .wait_states(Duration::from_secs(20), |states| {
            let shown: f64 = state_of(states, temperature)?["state"]
                .as_str()?
                .parse()
                .ok()?;
            Some(shown)
        })
        .await;
    let first_shown = followed.unwrap();
    let changed = ha
        .wait_states(Duration::from_secs(20), |states| {
            let shown: f64 = state_of(states, temperature)?["state"]
                .as_str()?
                .parse()
                .ok()?;
            (shown != first_shown).then_some(shown)
        })
        .await
        .expect("the temperature shown never changed");
    published.extend(last_number(&mut values, topic));
    assert!(
        published.iter().any(|data| (data - changed).abs() < 1e-6),
        "Home Assistant shows {changed}, never published: {published:?}"
    );

    // switch.turn_on turns the LED on.
    let switch = ids[LED_SWITCH].clone();
    ha.call("switch.turn_on", json!({ "entity_id": switch }));
    let on = values
        .next_matching(Duration::from_secs(10), |received| {
            received.topic == "/values/user/0220/0002/switch"
                && serde_json::from_slice::<Value>(&received.payload)
                    .is_ok_and(|tree| tree["data"] == "on")
        })
        .await;
    assert!(
        on.is_some(),
        "switch.turn_on did not turn the LED on: {}\n{:?}",
        ha.log_problems(),
        values
            .drain()
            .into_iter()
            .filter(|r| r.topic.starts_with("/nodes/"))
            .map(|r| format!("{} {}", r.topic, String::from_utf8_lossy(&r.payload)))
            .collect::<Vec<_>>()
    );
    ha.wait_states(Duration::from_secs(10), |states| {
        (state_of(states, &switch)?["state"] == "on").then_some(())
    })
    .await
    .expect("Home Assistant does not show the LED on");

    screenshot(&ha).await;

    // A failover: no entity changes, and the LED still obeys (through the new primary's
    // configs).
    let before = registry(&ha);
    net.controllers[0].1.kill();
    let killed = Instant::now();
    ha.call("switch.turn_off", json!({ "entity_id": switch }));
    let off = values
        .next_matching(Duration::from_secs(10), |received| {
            received.topic == "/values/user/0220/0002/switch"
                && serde_json::from_slice::<Value>(&received.payload)
                    .is_ok_and(|tree| tree["data"] == "off")
        })
        .await;
    assert!(
        off.is_some(),
        "switch.turn_off after the failover did nothing"
    );
    let all_available = ha
        .wait_states(Duration::from_secs(10), |states| {
            wanted
                .iter()
                .all(|id| state_of(states, &ids[*id]).is_some_and(|s| s["state"] != "unavailable"))
                .then_some(())
        })
        .await;
    assert!(
        all_available.is_some(),
        "entities unavailable after the failover"
    );
    assert_eq!(
        registry(&ha),
        before,
        "a failover changed Home Assistant's entities"
    );
    eprintln!("failover checked {:?} after the kill", killed.elapsed());

    // The tutorial server killed: its entities become unavailable (once the new primary has
    // caught up: two of its heartbeats).
    values.subscribe("/dhcp/resolv/heartbeat").await;
    for _ in 0..2 {
        values
            .next_on("/dhcp/resolv/heartbeat", Duration::from_secs(5))
            .await
            .expect("the new primary does not beat");
    }
    net.tutorial.kill();
    let stopped = Instant::now();
    let unavailable = ha
        .wait_states(Duration::from_secs(15), |states| {
            wanted
                .iter()
                .all(|id| state_of(states, &ids[*id]).is_some_and(|s| s["state"] == "unavailable"))
                .then_some(())
        })
        .await;
    assert!(
        unavailable.is_some(),
        "the tutorial's entities are still available after it was killed"
    );
    eprintln!(
        "entities unavailable {:?} after the tutorial was killed",
        stopped.elapsed()
    );
    assert_eq!(registry(&ha), before);
}
