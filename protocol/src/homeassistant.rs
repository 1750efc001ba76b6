//! Home Assistant's MQTT discovery for a Janitoo network, sans-IO: what the primary publishes
//! (retained) so that Home Assistant shows every node of the map as a device and every value
//! instance as an entity.
//!
//! - **Devices**: one per node, identified by its HADD and the network's name, with its name,
//!   location (as suggested area), product, and its bus controller as `via_device`.
//! - **Entities**: one per value instance of the genres exposed; the platform follows the
//!   value's type, access and command class ([`platform_of`]). States are read from the
//!   primary's retained copy of each value's data ([`state_topic`]), so that a Home Assistant
//!   that starts, or restarts, has every state at once rather than at the next reading (Janitoo
//!   never retains its own `/values/...` publications); commands render a Janitoo set request
//!   on `/nodes/<hadd>/request`, its `reply_hadd` the primary's.
//! - **Availability**: per node, on a topic of the primary's ([`availability_topic`]): `online`
//!   when the node is ONLINE, `offline` otherwise, states the primary dispatched included.
//! - **Stable ids**: a `unique_id` depends on the network's name, the HADD, the value's uuid and
//!   index only, so that a restart or a failover (a new primary publishing the same configs)
//!   makes no new entity.

mod announcer;

pub use announcer::{Announcer, Retain, REPUBLISH_SPACING};

use serde_json::{json, Map, Value};

use crate::command_class::CommandClass;
use crate::hadd::Hadd;
use crate::model::{Genre, NodeState, ValueType};
use crate::network_map::NetworkMap;
use crate::node::NodeInfo;
use crate::value::ValueDescriptor;

/// What the primary exposes, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// Home Assistant's discovery prefix (default `homeassistant`).
    pub prefix: String,
    /// The network's name, in ids (default `janitoo`): two networks on one broker differ here.
    pub network: String,
    /// The genres whose values become entities (default user and basic; config values become
    /// configuration entities when listed).
    pub genres: Vec<Genre>,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings {
            prefix: "homeassistant".into(),
            network: "janitoo".into(),
            genres: vec![Genre::User, Genre::Basic],
        }
    }
}

/// A Home Assistant entity platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Platform {
    /// A read-only number or text.
    Sensor,
    /// A read-only true/false.
    BinarySensor,
    /// A two-item list of a switch command class (on/off).
    Switch,
    /// Any other writable list.
    Select,
    /// A writable number.
    Number,
    /// A writable text.
    Text,
    /// A command (a press).
    Button,
}

impl Platform {
    /// Its name in discovery topics.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Sensor => "sensor",
            Platform::BinarySensor => "binary_sensor",
            Platform::Switch => "switch",
            Platform::Select => "select",
            Platform::Number => "number",
            Platform::Text => "text",
            Platform::Button => "button",
        }
    }
}

/// One retained publication: a discovery config (or its clearing, an empty payload).
#[derive(Debug, Clone, PartialEq)]
pub struct Retained {
    /// The topic.
    pub topic: String,
    /// The JSON config; `None` clears it.
    pub payload: Option<Value>,
}

fn is_switch_class(class: CommandClass) -> bool {
    matches!(
        class,
        CommandClass::SWITCH_BINARY
            | CommandClass::SWITCH_MULTILEVEL
            | CommandClass::SWITCH_ALL
            | CommandClass::SWITCH_TOGGLE_BINARY
            | CommandClass::BASIC
    )
}

fn is_number(value_type: Option<ValueType>) -> bool {
    matches!(
        value_type,
        Some(ValueType::Byte | ValueType::Decimal | ValueType::Int | ValueType::Short)
    )
}

/// The platform of a value, or `None` when Home Assistant has nothing that fits (schedules,
/// raw bytes, secrets, write-only values that are not commands).
pub fn platform_of(genre: Genre, value: &ValueDescriptor) -> Option<Platform> {
    let value_type = value.value_type;
    if genre == Genre::Command || value_type == Some(ValueType::Button) {
        return Some(Platform::Button);
    }
    let writable = value.is_readonly != Some(true);
    if value.is_writeonly == Some(true) {
        return None;
    }
    let items = value.list_items.as_deref().unwrap_or_default();
    Some(match value_type {
        Some(ValueType::List)
            if writable && items.len() == 2 && is_switch_class(value.cmd_class) =>
        {
            Platform::Switch
        }
        Some(ValueType::List) if writable && !items.is_empty() => Platform::Select,
        Some(ValueType::Bool) if writable => Platform::Switch,
        Some(ValueType::Bool) => Platform::BinarySensor,
        _ if is_number(value_type) && writable => Platform::Number,
        Some(ValueType::String) if writable => Platform::Text,
        Some(ValueType::Schedule | ValueType::Raw | ValueType::Password) => return None,
        _ => Platform::Sensor,
    })
}

/// A sensor's device class, unit and state class, from its units (and uuid, for `%`).
fn measurement(value: &ValueDescriptor) -> (Option<&'static str>, Option<String>) {
    let units = value.units.as_deref().map(str::trim).unwrap_or_default();
    let class = match units {
        "°C" | "C" | "celsius" | "°F" | "F" => Some("temperature"),
        "%" if value.uuid.contains("humid") => Some("humidity"),
        "V" | "mV" => Some("voltage"),
        "A" | "mA" => Some("current"),
        "W" | "kW" => Some("power"),
        "Wh" | "kWh" => Some("energy"),
        "Hz" | "kHz" | "MHz" | "GHz" => Some("frequency"),
        "hPa" | "Pa" | "bar" | "mbar" => Some("pressure"),
        "lx" => Some("illuminance"),
        "s" | "seconds" | "min" | "h" => Some("duration"),
        _ => None,
    };
    let unit = match units {
        "" => None,
        "C" | "celsius" => Some("°C".to_owned()),
        "F" => Some("°F".to_owned()),
        "seconds" => Some("s".to_owned()),
        other => Some(other.to_owned()),
    };
    (class, unit)
}

/// The id of a node in discovery topics and device identifiers: `janitoo_<network>_<ctrl>_<node>`.
pub fn node_id(settings: &DiscoverySettings, hadd: Hadd) -> String {
    format!(
        "janitoo_{}_{:04}_{:04}",
        sanitize(&settings.network),
        hadd.ctrl,
        hadd.node
    )
}

/// Letters, digits, `_` and `-` only, as Home Assistant's topic ids want.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The primary's retained availability topic of a node.
pub fn availability_topic(settings: &DiscoverySettings, hadd: Hadd) -> String {
    format!(
        "janitoo/{}/availability/{:04}_{:04}",
        sanitize(&settings.network),
        hadd.ctrl,
        hadd.node
    )
}

/// The primary's retained copy of the data of a value of node `hadd`:
/// `janitoo/<network>/state/<cccc>_<nnnn>/<genre>/<uuid>`.
pub fn state_topic(settings: &DiscoverySettings, hadd: Hadd, genre: Genre, uuid: &str) -> String {
    format!(
        "janitoo/{}/state/{:04}_{:04}/{}/{}",
        sanitize(&settings.network),
        hadd.ctrl,
        hadd.node,
        genre.segment(),
        sanitize(uuid)
    )
}

/// The copy's payload: the data of every instance that has some, by index
/// (`{"0": {"data": 21.5}}`); `None` while none has.
pub fn state_payload(instances: &crate::value::ValueInstances) -> Option<Value> {
    let by_index: Map<String, Value> = instances
        .iter()
        .filter(|(_, value)| !value.data.is_null())
        .map(|(index, value)| (index.to_string(), json!({ "data": value.data })))
        .collect();
    (!by_index.is_empty()).then_some(Value::Object(by_index))
}

/// The retained state copies of node `hadd`'s values that have a platform (buttons have no
/// state), as the map knows them.
pub fn node_states(settings: &DiscoverySettings, map: &NetworkMap, hadd: Hadd) -> Vec<Retained> {
    let mut states = Vec::new();
    for genre in &settings.genres {
        let Some(values) = map.values(hadd, *genre) else {
            continue;
        };
        for (uuid, instances) in values {
            let stateful = instances.values().any(|value| {
                platform_of(*genre, value).is_some_and(|platform| platform != Platform::Button)
            });
            if let (true, Some(payload)) = (stateful, state_payload(instances)) {
                states.push(Retained {
                    topic: state_topic(settings, hadd, *genre, uuid),
                    payload: Some(payload),
                });
            }
        }
    }
    states
}

/// The availability of a node in `state`: only ONLINE is available.
pub fn availability_payload(state: NodeState) -> &'static str {
    if state == NodeState::Online {
        "online"
    } else {
        "offline"
    }
}

/// A Jinja expression setting `d` to the data of instance `index`, whatever the publication's
/// shape: one value dict (of this instance, or of another: then the state stays), or an index
/// map.
fn data_of(index: u32) -> String {
    format!(
        "{{% set j = value_json %}}{{% if j.data is defined %}}\
         {{% set d = j.data if (j.index | default(0) | int) == {index} else this.state %}}\
         {{% elif j['{index}'] is defined %}}{{% set d = j['{index}'].data %}}\
         {{% else %}}{{% set d = this.state %}}{{% endif %}}"
    )
}

/// The Janitoo set request a command renders, `data` a Jinja expression.
fn set_request(
    hadd: Hadd,
    genre: Genre,
    value: &ValueDescriptor,
    primary: Hadd,
    data: &str,
) -> String {
    let request = json!({
        "uuid": value.uuid,
        "hadd": hadd.to_string(),
        "genre": genre.code(),
        "cmd_class": CommandClass::for_request(genre, Some(value.cmd_class)).0,
        "index": value.index,
        "reply_hadd": primary.to_string(),
        "op": "set",
        "is_writeonly": true,
        "is_readonly": false,
        "data": "@DATA@",
    });
    request.to_string().replace("\"@DATA@\"", data)
}

fn device(settings: &DiscoverySettings, hadd: Hadd, node: Option<&NodeInfo>) -> Value {
    let mut device = Map::new();
    device.insert("identifiers".into(), json!([node_id(settings, hadd)]));
    let name = node
        .map(|node| node.name.trim())
        .filter(|name| !name.is_empty())
        .map_or_else(|| format!("Janitoo {hadd}"), str::to_owned);
    device.insert("name".into(), json!(name));
    device.insert(
        "manufacturer".into(),
        json!(node
            .map(|node| node.product_manufacturer.trim())
            .filter(|m| !m.is_empty())
            .unwrap_or("Janitoo")),
    );
    if let Some(node) = node {
        let model = format!("{} {}", node.product_name.trim(), node.product_type.trim());
        if !model.trim().is_empty() {
            device.insert("model".into(), json!(model.trim()));
        }
        if !node.location.trim().is_empty() {
            device.insert("suggested_area".into(), json!(node.location.trim()));
        }
    }
    if hadd.node != 0 {
        device.insert(
            "via_device".into(),
            json!(node_id(settings, Hadd::new(hadd.ctrl, 0))),
        );
    }
    Value::Object(device)
}

/// The discovery config of one value instance of node `hadd`, if it has a platform.
pub fn entity_config(
    settings: &DiscoverySettings,
    map: &NetworkMap,
    hadd: Hadd,
    genre: Genre,
    value: &ValueDescriptor,
    instances: usize,
    primary: Hadd,
) -> Option<Retained> {
    let platform = platform_of(genre, value)?;
    let node = node_id(settings, hadd);
    let object = format!(
        "{}_{}_{}",
        genre.segment(),
        sanitize(&value.uuid),
        value.index
    );
    let label = value
        .label
        .as_deref()
        .map(str::trim)
        .filter(|label| !label.is_empty())
        .unwrap_or(&value.uuid);
    let name = if instances > 1 {
        format!("{label} {}", value.index)
    } else {
        label.to_owned()
    };
    let mut config = Map::new();
    config.insert("name".into(), json!(name));
    config.insert("unique_id".into(), json!(format!("{node}_{object}")));
    config.insert("device".into(), device(settings, hadd, map.node(hadd)));
    config.insert(
        "availability_topic".into(),
        json!(availability_topic(settings, hadd)),
    );
    config.insert("payload_available".into(), json!("online"));
    config.insert("payload_not_available".into(), json!("offline"));
    if genre == Genre::Config {
        config.insert("entity_category".into(), json!("config"));
    } else if genre == Genre::System {
        config.insert("entity_category".into(), json!("diagnostic"));
    }
    let state_topic = state_topic(settings, hadd, genre, &value.uuid);
    let command_topic = format!("/nodes/{hadd}/request");
    let data = data_of(value.index);
    let mut state = |template: String| {
        config.insert("state_topic".into(), json!(state_topic));
        config.insert("value_template".into(), json!(template));
    };
    match platform {
        Platform::Sensor => {
            state(format!("{data}{{{{ d }}}}"));
            let (class, unit) = measurement(value);
            let numeric = is_number(value.value_type) || class.is_some();
            if let Some(class) = class {
                config.insert("device_class".into(), json!(class));
            }
            if let Some(unit) = unit {
                config.insert("unit_of_measurement".into(), json!(unit));
            }
            if numeric {
                let state_class = if class == Some("energy") {
                    "total_increasing"
                } else {
                    "measurement"
                };
                config.insert("state_class".into(), json!(state_class));
            }
        }
        Platform::BinarySensor => {
            state(format!(
                "{data}{{{{ 'ON' if d in [true, 1, '1', 'true', 'True', 'on', 'ON'] else 'OFF' }}}}"
            ));
        }
        Platform::Switch => {
            let items = value.list_items.clone().unwrap_or_default();
            let (on, off) = match items.as_slice() {
                [on, off] => (on.clone(), off.clone()),
                _ => ("true".to_owned(), "false".to_owned()),
            };
            let (on_json, off_json) = if value.value_type == Some(ValueType::Bool) {
                ("true".to_owned(), "false".to_owned())
            } else {
                (json!(on).to_string(), json!(off).to_string())
            };
            state(format!(
                "{data}{{{{ {on} if (d | string | lower) in [{on_lower}, 'true', '1', 'on'] else {off} }}}}",
                on = json!(on),
                off = json!(off),
                on_lower = json!(on.to_lowercase()),
            ));
            config.insert("state_on".into(), json!(on));
            config.insert("state_off".into(), json!(off));
            // Home Assistant's switch sends its payloads as they are (it has no command
            // template in 2024.3): they are the Janitoo sets themselves.
            config.insert(
                "payload_on".into(),
                json!(set_request(hadd, genre, value, primary, &on_json)),
            );
            config.insert(
                "payload_off".into(),
                json!(set_request(hadd, genre, value, primary, &off_json)),
            );
            config.insert("command_topic".into(), json!(command_topic));
        }
        Platform::Select | Platform::Text => {
            state(format!("{data}{{{{ d }}}}"));
            if platform == Platform::Select {
                config.insert("options".into(), json!(value.list_items));
            }
            config.insert("command_topic".into(), json!(command_topic));
            let template = set_request(hadd, genre, value, primary, "{{ value | tojson }}");
            config.insert("command_template".into(), json!(template));
        }
        Platform::Number => {
            state(format!("{data}{{{{ d }}}}"));
            if let Some(min) = value.min {
                config.insert("min".into(), json!(min));
            }
            if let Some(max) = value.max {
                config.insert("max".into(), json!(max));
            }
            let step = if value.value_type == Some(ValueType::Decimal) {
                0.1
            } else {
                1.0
            };
            config.insert("step".into(), json!(step));
            config.insert("mode".into(), json!("box"));
            if let (_, Some(unit)) = measurement(value) {
                config.insert("unit_of_measurement".into(), json!(unit));
            }
            config.insert("command_topic".into(), json!(command_topic));
            config.insert(
                "command_template".into(),
                json!(set_request(hadd, genre, value, primary, "{{ value }}")),
            );
        }
        Platform::Button => {
            config.insert("command_topic".into(), json!(command_topic));
            config.insert(
                "payload_press".into(),
                json!(set_request(hadd, genre, value, primary, "true")),
            );
        }
    }
    Some(Retained {
        topic: format!(
            "{}/{}/{node}/{object}/config",
            settings.prefix,
            platform.as_str()
        ),
        payload: Some(Value::Object(config)),
    })
}

/// Every discovery config of node `hadd` as the map knows it.
pub fn node_configs(
    settings: &DiscoverySettings,
    map: &NetworkMap,
    hadd: Hadd,
    primary: Hadd,
) -> Vec<Retained> {
    let mut configs = Vec::new();
    for genre in &settings.genres {
        let Some(values) = map.values(hadd, *genre) else {
            continue;
        };
        for instances in values.values() {
            for value in instances.values() {
                configs.extend(entity_config(
                    settings,
                    map,
                    hadd,
                    *genre,
                    value,
                    instances.len(),
                    primary,
                ));
            }
        }
    }
    configs
}

#[cfg(test)]
mod tests;
