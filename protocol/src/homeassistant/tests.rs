use super::*;
use crate::model::ValueType;
use crate::node::NodeInfo;

pub(super) const PRIMARY: Hadd = Hadd::new(1, 0);
const OTHER_PRIMARY: Hadd = Hadd::new(2, 0);
pub(super) const DHT: Hadd = Hadd::new(220, 1);
pub(super) const LED: Hadd = Hadd::new(220, 2);

fn value(
    uuid: &str,
    genre: Genre,
    value_type: ValueType,
    class: CommandClass,
    readonly: bool,
) -> ValueDescriptor {
    let mut value = ValueDescriptor::new(uuid, genre, class);
    value.value_type = Some(value_type);
    value.is_readonly = Some(readonly);
    value.is_writeonly = Some(false);
    value
}

/// The tutorial's ambiance sensor and LED, as a primary's map holds them.
pub(super) fn tutorial_map() -> NetworkMap {
    let mut map = NetworkMap::new();
    let mut dht = NodeInfo::new(DHT, "ambiance");
    dht.name = "Ambiance".into();
    dht.location = "Living room".into();
    dht.product_name = "DHT22".into();
    dht.product_type = "sensor".into();
    map.merge_node(dht);
    map.merge_node(NodeInfo::new(LED, "led"));
    let sensor = CommandClass::SENSOR_MULTILEVEL;
    let mut temperature = value("temperature", Genre::User, ValueType::Decimal, sensor, true);
    temperature.units = Some("°C".into());
    temperature.label = Some("Temperature".into());
    let mut humidity = value("humidity", Genre::User, ValueType::Decimal, sensor, true);
    humidity.units = Some("%".into());
    let mut name = value(
        "name",
        Genre::Config,
        ValueType::String,
        CommandClass::CONFIGURATION,
        false,
    );
    name.data = Data::from("Ambiance");
    for (genre, value) in [
        (Genre::User, temperature),
        (Genre::User, humidity),
        (Genre::Config, name),
    ] {
        map.merge_value(DHT, genre, value);
    }
    let mut switch = value(
        "switch",
        Genre::User,
        ValueType::List,
        CommandClass::SWITCH_BINARY,
        false,
    );
    switch.list_items = Some(vec!["on".into(), "off".into()]);
    let mut blink = value(
        "blink",
        Genre::User,
        ValueType::List,
        CommandClass::SWITCH_BINARY,
        false,
    );
    blink.list_items = Some(vec!["off".into(), "blink".into(), "heartbeat".into()]);
    let mut load = value("load", Genre::Basic, ValueType::Decimal, sensor, true);
    for index in 0..3 {
        load.index = index;
        map.merge_value(LED, Genre::Basic, load.clone());
    }
    map.merge_value(LED, Genre::User, switch);
    map.merge_value(LED, Genre::User, blink);
    map
}

use crate::fields::Data;

fn configs(map: &NetworkMap, settings: &DiscoverySettings, hadd: Hadd) -> BTreeMap<String, Value> {
    node_configs(settings, map, hadd, PRIMARY)
        .into_iter()
        .map(|retained| (retained.topic, retained.payload.unwrap()))
        .collect()
}

use std::collections::BTreeMap;

#[test]
fn sensors_carry_their_device_class_unit_and_device() {
    let map = tutorial_map();
    let configs = configs(&map, &DiscoverySettings::default(), DHT);
    let temperature =
        &configs["homeassistant/sensor/janitoo_janitoo_0220_0001/user_temperature_0/config"];
    assert_eq!(temperature["device_class"], "temperature");
    assert_eq!(temperature["unit_of_measurement"], "°C");
    assert_eq!(temperature["state_class"], "measurement");
    assert_eq!(temperature["name"], "Temperature");
    assert_eq!(
        temperature["state_topic"],
        "janitoo/janitoo/state/0220_0001/user/temperature"
    );
    assert_eq!(
        temperature["availability_topic"],
        "janitoo/janitoo/availability/0220_0001"
    );
    let device = &temperature["device"];
    assert_eq!(device["identifiers"][0], "janitoo_janitoo_0220_0001");
    assert_eq!(device["name"], "Ambiance");
    assert_eq!(device["suggested_area"], "Living room");
    assert_eq!(device["model"], "DHT22 sensor");
    assert_eq!(device["via_device"], "janitoo_janitoo_0220_0000");
    let humidity =
        &configs["homeassistant/sensor/janitoo_janitoo_0220_0001/user_humidity_0/config"];
    assert_eq!(humidity["device_class"], "humidity");
    assert_eq!(
        configs.len(),
        2,
        "config values only when their genre is exposed: {configs:?}"
    );
}

#[test]
fn an_on_off_list_is_a_switch_whose_commands_are_janitoo_sets() {
    let map = tutorial_map();
    let configs = configs(&map, &DiscoverySettings::default(), LED);
    let switch = &configs["homeassistant/switch/janitoo_janitoo_0220_0002/user_switch_0/config"];
    assert_eq!(
        (switch["state_on"].as_str(), switch["state_off"].as_str()),
        (Some("on"), Some("off"))
    );
    assert_eq!(switch["command_topic"], "/nodes/0220/0002/request");
    assert!(switch.get("command_template").is_none());
    // What Home Assistant sends for "on": the Janitoo set of the switch, answered to the
    // primary, with the value's command class.
    let on = switch["payload_on"].as_str().unwrap();
    let off: Value = serde_json::from_str(switch["payload_off"].as_str().unwrap()).unwrap();
    assert_eq!(off["data"], "off");
    let request: Value = serde_json::from_str(on).unwrap();
    assert_eq!(request["data"], "on");
    assert_eq!(request["cmd_class"], 0x25);
    assert_eq!(request["reply_hadd"], "0001/0000");
    assert_eq!(
        (request["genre"].as_u64(), request["is_writeonly"].as_bool()),
        (Some(2), Some(true))
    );
    let message = crate::Message::decode(
        &crate::Topic::NodeRequest(LED),
        on.as_bytes(),
        crate::Codec::Json,
    )
    .unwrap();
    assert!(matches!(message, crate::Message::Request(r) if r.op == crate::Operation::Set));
    let blink = &configs["homeassistant/select/janitoo_janitoo_0220_0002/user_blink_0/config"];
    assert_eq!(blink["options"], json!(["off", "blink", "heartbeat"]));
}

#[test]
fn each_instance_is_an_entity_with_an_id_that_survives_a_failover() {
    let map = tutorial_map();
    let settings = DiscoverySettings::default();
    let ours = configs(&map, &settings, LED);
    let loads: Vec<&Value> = (0..3)
        .map(|index| {
            &ours[&format!(
                "homeassistant/sensor/janitoo_janitoo_0220_0002/basic_load_{index}/config"
            )]
        })
        .collect();
    assert_eq!(loads[2]["name"], "load 2");
    assert!(loads[1]["value_template"]
        .as_str()
        .unwrap()
        .contains("j['1'].data"));
    let after_failover: BTreeMap<String, Value> = node_configs(&settings, &map, LED, OTHER_PRIMARY)
        .into_iter()
        .map(|retained| (retained.topic, retained.payload.unwrap()))
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        after_failover.keys().collect::<Vec<_>>()
    );
    for (topic, config) in &ours {
        assert_eq!(
            config["unique_id"], after_failover[topic]["unique_id"],
            "{topic}"
        );
    }
}

#[test]
fn config_values_are_configuration_entities_when_exposed() {
    let map = tutorial_map();
    let settings = DiscoverySettings {
        genres: vec![Genre::User, Genre::Basic, Genre::Config],
        ..DiscoverySettings::default()
    };
    let configs = configs(&map, &settings, DHT);
    let name = &configs["homeassistant/text/janitoo_janitoo_0220_0001/config_name_0/config"];
    assert_eq!(name["entity_category"], "config");
    let template = name["command_template"].as_str().unwrap();
    assert!(
        template.contains("\"cmd_class\":112") && template.contains("{{ value | tojson }}"),
        "{template}"
    );
}

#[test]
fn platforms_follow_type_access_and_command_class() {
    let sensor = CommandClass::SENSOR_MULTILEVEL;
    let cases = [
        (
            Genre::User,
            value("t", Genre::User, ValueType::Decimal, sensor, true),
            Some(Platform::Sensor),
        ),
        (
            Genre::User,
            value("t", Genre::User, ValueType::Int, sensor, false),
            Some(Platform::Number),
        ),
        (
            Genre::User,
            value("t", Genre::User, ValueType::Bool, sensor, true),
            Some(Platform::BinarySensor),
        ),
        (
            Genre::User,
            value("t", Genre::User, ValueType::Bool, sensor, false),
            Some(Platform::Switch),
        ),
        (
            Genre::User,
            value("t", Genre::User, ValueType::String, sensor, false),
            Some(Platform::Text),
        ),
        (
            Genre::User,
            value("t", Genre::User, ValueType::String, sensor, true),
            Some(Platform::Sensor),
        ),
        (
            Genre::User,
            value("t", Genre::User, ValueType::Password, sensor, true),
            None,
        ),
        (
            Genre::Command,
            value("t", Genre::Command, ValueType::Bool, sensor, false),
            Some(Platform::Button),
        ),
    ];
    for (genre, value, expected) in cases {
        assert_eq!(platform_of(genre, &value), expected, "{value:?}");
    }
    let mut hidden = value("t", Genre::User, ValueType::Int, sensor, false);
    hidden.is_writeonly = Some(true);
    assert_eq!(platform_of(Genre::User, &hidden), None);
    assert_eq!(availability_payload(NodeState::Online), "online");
    for state in [
        NodeState::Offline,
        NodeState::Pending,
        NodeState::Failed,
        NodeState::Dead,
    ] {
        assert_eq!(availability_payload(state), "offline");
    }
}

/// Every platform's config, exactly as Home Assistant is given it: the serde structs write
/// what the hand-built maps wrote before them (`entity_golden.json`).
#[test]
fn every_platforms_config_is_what_home_assistant_was_given() {
    let mut map = tutorial_map();
    let node = Hadd::new(220, 3);
    let mut info = NodeInfo::new(node, "garden");
    info.product_manufacturer = "Garden & Co".into();
    info.location = " Garden ".into();
    map.merge_node(info);
    let class = CommandClass::CONFIGURATION;
    let mut open = value(
        "open",
        Genre::User,
        ValueType::Bool,
        CommandClass::SWITCH_BINARY,
        false,
    );
    open.label = Some("Open".into());
    let rain = value(
        "rain",
        Genre::User,
        ValueType::Bool,
        CommandClass::SENSOR_BINARY,
        true,
    );
    let mut level = value(
        "level",
        Genre::User,
        ValueType::Decimal,
        CommandClass::SWITCH_MULTILEVEL,
        false,
    );
    level.min = Some(0.0);
    level.max = Some(100.0);
    level.units = Some("%".into());
    let mut steps = value("steps", Genre::Config, ValueType::Int, class, false);
    steps.units = Some("seconds".into());
    let mut mode = value("mode", Genre::User, ValueType::List, class, false);
    mode.list_items = Some(vec!["eco".into(), "comfort".into(), "off".into()]);
    let note = value("note", Genre::User, ValueType::String, class, false);
    let water = value("water", Genre::Command, ValueType::Button, class, false);
    let mut energy = value("energy", Genre::System, ValueType::Decimal, class, true);
    energy.units = Some("kWh".into());
    let mut status = value("status", Genre::User, ValueType::String, class, true);
    status.label = Some("  ".into());
    for (genre, value) in [
        (Genre::User, open),
        (Genre::User, rain),
        (Genre::User, level),
        (Genre::Config, steps),
        (Genre::User, mode),
        (Genre::User, note),
        (Genre::Command, water),
        (Genre::System, energy),
        (Genre::User, status),
    ] {
        map.merge_value(node, genre, value);
    }
    let settings = DiscoverySettings {
        genres: Genre::ALL.to_vec(),
        ..DiscoverySettings::default()
    };
    let mut all = BTreeMap::new();
    for hadd in [DHT, LED, node] {
        all.extend(configs(&map, &settings, hadd));
    }
    let written = serde_json::to_string_pretty(&all).unwrap();
    if std::env::var_os("JANITOO_PRINT_GOLDEN").is_some() {
        println!("{written}");
    }
    let golden: BTreeMap<String, Value> =
        serde_json::from_str(include_str!("entity_golden.json")).unwrap();
    assert_eq!(all.len(), golden.len());
    for (topic, config) in &golden {
        assert_eq!(all.get(topic), Some(config), "{topic}");
    }
}
