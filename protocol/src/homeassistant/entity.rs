//! The discovery config of one entity: what every entity says ([`Entity`]: name, ids, device,
//! availability, category), where its state is read, and one struct per platform for the rest.

use serde::Serialize;
use serde_json::json;

use super::{
    availability_topic, is_number, node_id, platform_of, sanitize, state_topic, DiscoverySettings,
    Platform, Retained,
};
use crate::command_class::CommandClass;
use crate::hadd::Hadd;
use crate::model::{Genre, ValueType};
use crate::network_map::NetworkMap;
use crate::node::NodeInfo;
use crate::value::ValueDescriptor;

/// A node, as Home Assistant's device registry wants it.
#[derive(Serialize)]
struct Device {
    identifiers: [String; 1],
    name: String,
    manufacturer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggested_area: Option<String>,
    /// The bus controller a component node is reached through.
    #[serde(skip_serializing_if = "Option::is_none")]
    via_device: Option<String>,
}

impl Device {
    fn of(settings: &DiscoverySettings, hadd: Hadd, node: Option<&NodeInfo>) -> Device {
        let trimmed = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        let model = node.and_then(|node| {
            trimmed(&format!(
                "{} {}",
                node.product_name.trim(),
                node.product_type.trim()
            ))
        });
        Device {
            identifiers: [node_id(settings, hadd)],
            name: node
                .and_then(|node| trimmed(&node.name))
                .unwrap_or_else(|| format!("Janitoo {hadd}")),
            manufacturer: node
                .and_then(|node| trimmed(&node.product_manufacturer))
                .unwrap_or_else(|| "Janitoo".to_owned()),
            model,
            suggested_area: node.and_then(|node| trimmed(&node.location)),
            via_device: (hadd.node != 0).then(|| node_id(settings, Hadd::new(hadd.ctrl, 0))),
        }
    }
}

/// What every entity's config says.
#[derive(Serialize)]
struct Base {
    name: String,
    unique_id: String,
    device: Device,
    availability_topic: String,
    payload_available: &'static str,
    payload_not_available: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_category: Option<&'static str>,
}

/// An entity's whole config: what every one says, where its state is read (buttons have
/// none), and what its platform adds.
#[derive(Serialize)]
struct Entity<P: Serialize> {
    #[serde(flatten)]
    base: Base,
    #[serde(flatten)]
    state: Option<State>,
    #[serde(flatten)]
    platform: P,
}

/// Where an entity's state is read: the primary's copy of the value, through a template.
#[derive(Serialize)]
struct State {
    state_topic: String,
    value_template: String,
}

/// A read-only number or text.
#[derive(Serialize)]
struct Sensor {
    #[serde(skip_serializing_if = "Option::is_none")]
    device_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_of_measurement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_class: Option<&'static str>,
}

/// A read-only true/false: nothing more than its state.
#[derive(Serialize)]
struct BinarySensor {}

/// On and off. Home Assistant 2024.3's switch sends its payloads as they are (it has no
/// command template): they are the Janitoo sets themselves.
#[derive(Serialize)]
struct Switch {
    state_on: String,
    state_off: String,
    payload_on: String,
    payload_off: String,
    command_topic: String,
}

/// A choice among the value's items, or a text.
#[derive(Serialize)]
struct Choice {
    /// The items (a select's; none for a text).
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Option<Vec<String>>>,
    command_topic: String,
    command_template: String,
}

/// A number typed in.
#[derive(Serialize)]
struct Number {
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    step: f64,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_of_measurement: Option<String>,
    command_topic: String,
    command_template: String,
}

/// A command: pressed, it sets the value to true.
#[derive(Serialize)]
struct Button {
    command_topic: String,
    payload_press: String,
}

/// A sensor's device class and unit, from its units (and uuid, for `%`).
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

/// How an entity of one value instance commands it: the Janitoo set requests it renders.
struct Commands<'a> {
    hadd: Hadd,
    genre: Genre,
    value: &'a ValueDescriptor,
    primary: Hadd,
}

impl Commands<'_> {
    /// Where the sets go.
    fn topic(&self) -> String {
        crate::topic::Topic::NodeRequest(self.hadd).to_string()
    }

    /// The set of `data` (a Jinja expression, or JSON), answered to the primary.
    fn set(&self, data: &str) -> String {
        let request = json!({
            "uuid": self.value.uuid,
            "hadd": self.hadd.to_string(),
            "genre": self.genre.code(),
            "cmd_class": CommandClass::for_request(self.genre, Some(self.value.cmd_class)).0,
            "index": self.value.index,
            "reply_hadd": self.primary.to_string(),
            "op": "set",
            "is_writeonly": true,
            "is_readonly": false,
            "data": "@DATA@",
        });
        request.to_string().replace("\"@DATA@\"", data)
    }
}

/// The switch of `value`: its two items (else true and false) as on and off; and the template
/// its state is read through.
fn switch(value: &ValueDescriptor, commands: &Commands<'_>, data: &str) -> (String, Switch) {
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
    let template = format!(
        "{data}{{{{ {on} if (d | string | lower) in [{on_lower}, 'true', '1', 'on'] else {off} }}}}",
        on = json!(on),
        off = json!(off),
        on_lower = json!(on.to_lowercase()),
    );
    let switch = Switch {
        payload_on: commands.set(&on_json),
        payload_off: commands.set(&off_json),
        state_on: on,
        state_off: off,
        command_topic: commands.topic(),
    };
    (template, switch)
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
    let base = Base {
        name,
        unique_id: format!("{node}_{object}"),
        device: Device::of(settings, hadd, map.node(hadd)),
        availability_topic: availability_topic(settings, hadd),
        payload_available: "online",
        payload_not_available: "offline",
        entity_category: match genre {
            Genre::Config => Some("config"),
            Genre::System => Some("diagnostic"),
            _ => None,
        },
    };
    let state_topic = state_topic(settings, hadd, genre, &value.uuid);
    let read = |value_template: String| {
        Some(State {
            state_topic: state_topic.clone(),
            value_template,
        })
    };
    let commands = Commands {
        hadd,
        genre,
        value,
        primary,
    };
    let data = data_of(value.index);
    let plain = || read(format!("{data}{{{{ d }}}}"));
    let config = match platform {
        Platform::Sensor => {
            let (class, unit) = measurement(value);
            let numeric = is_number(value.value_type) || class.is_some();
            let state_class = match class {
                Some("energy") => "total_increasing",
                _ => "measurement",
            };
            entity(
                base,
                plain(),
                Sensor {
                    device_class: class,
                    unit_of_measurement: unit,
                    state_class: numeric.then_some(state_class),
                },
            )
        }
        Platform::BinarySensor => {
            let template = format!(
                "{data}{{{{ 'ON' if d in [true, 1, '1', 'true', 'True', 'on', 'ON'] else 'OFF' }}}}"
            );
            entity(base, read(template), BinarySensor {})
        }
        Platform::Switch => {
            let (template, switch) = switch(value, &commands, &data);
            entity(base, read(template), switch)
        }
        Platform::Select | Platform::Text => entity(
            base,
            plain(),
            Choice {
                options: (platform == Platform::Select).then(|| value.list_items.clone()),
                command_topic: commands.topic(),
                command_template: commands.set("{{ value | tojson }}"),
            },
        ),
        Platform::Number => entity(
            base,
            plain(),
            Number {
                min: value.min,
                max: value.max,
                step: if value.value_type == Some(ValueType::Decimal) {
                    0.1
                } else {
                    1.0
                },
                mode: "box",
                unit_of_measurement: measurement(value).1,
                command_topic: commands.topic(),
                command_template: commands.set("{{ value }}"),
            },
        ),
        Platform::Button => entity(
            base,
            None,
            Button {
                command_topic: commands.topic(),
                payload_press: commands.set("true"),
            },
        ),
    };
    Some(Retained {
        topic: format!(
            "{}/{}/{node}/{object}/config",
            settings.prefix,
            platform.as_str()
        ),
        payload: Some(config),
    })
}

/// The config of an entity, as JSON.
fn entity<P: Serialize>(base: Base, state: Option<State>, platform: P) -> serde_json::Value {
    let entity = Entity {
        base,
        state,
        platform,
    };
    serde_json::to_value(entity).unwrap_or_default()
}
