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
mod entity;

pub use announcer::{Announcer, Retain, REPUBLISH_SPACING};
pub use entity::entity_config;

use serde_json::{json, Map, Value};

use crate::command_class::CommandClass;
use crate::hadd::Hadd;
use crate::model::{Genre, NodeState, ValueType};
use crate::network_map::NetworkMap;
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

pub(crate) fn is_number(value_type: Option<ValueType>) -> bool {
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
pub(crate) fn sanitize(text: &str) -> String {
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
