//! The value model on the wire: one value dict ([`ValueDescriptor`]) and the multi-instance form
//! (`{"<index>": valuedict, ...}`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::command_class::CommandClass;
use crate::error::{ProtocolError, Result};
use crate::fields::{
    as_object, as_ranged, child_path, invalid, opt_display, opt_number, opt_text, Data, Reader,
    Writer,
};
use crate::hadd::Hadd;
use crate::model::{Genre, ValueType};

/// One instance of a value, with every field of the original's value dict (§4.1).
///
/// Unknown fields (the original leaks some internal attributes, e.g. `delays`) are kept in
/// `extra` and written back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValueDescriptor {
    /// The value id, unique within its node (`temperature`, `heartbeat`).
    pub uuid: String,
    /// The owning node's uuid.
    pub node_uuid: Option<String>,
    /// The owning node's address.
    pub hadd: Option<Hadd>,
    /// The instance index (0 for single-instance values).
    pub index: u32,
    /// The genre (the original's default is basic).
    pub genre: Genre,
    /// The data type, when the sender gave it.
    pub value_type: Option<ValueType>,
    /// The command class (the original's default is 0).
    pub cmd_class: CommandClass,
    /// A short label.
    pub label: Option<String>,
    /// A description.
    pub help: Option<String>,
    /// Units (`°C`, `%`, `seconds`).
    pub units: Option<String>,
    /// What a read returns when there is no data.
    pub default: Data,
    /// Lower bound.
    pub min: Option<f64>,
    /// Upper bound.
    pub max: Option<f64>,
    /// The allowed choices of a List value.
    pub list_items: Option<Vec<String>>,
    /// Read-only: a capability in definitions, but the original also used it as an operation
    /// flag in requests and forced it in answers, so it is kept exactly as received.
    pub is_readonly: Option<bool>,
    /// Write-only, with the same caveat.
    pub is_writeonly: Option<bool>,
    /// Whether the node publishes the value periodically.
    pub is_polled: Option<bool>,
    /// The publication period, in seconds.
    pub poll_delay: Option<f64>,
    /// Reserved by the original, unused.
    pub voice_uuid: Option<String>,
    /// The requester, echoed from a request.
    pub reply_hadd: Option<Hadd>,
    /// The current data.
    pub data: Data,
    /// The factory entry that built the value (`sensor_temperature`).
    pub entry_name: Option<String>,
    /// Fields this crate does not know, kept as received.
    pub extra: BTreeMap<String, Data>,
}

/// The fields a value dict may hold, in the original's order.
pub(crate) const VALUE_FIELDS: &[&str] = &[
    "entry_name",
    "uuid",
    "node_uuid",
    "voice_uuid",
    "hadd",
    "cmd_class",
    "is_readonly",
    "is_writeonly",
    "default",
    "label",
    "help",
    "units",
    "list_items",
    "max",
    "min",
    "genre",
    "type",
    "index",
    "is_polled",
    "poll_delay",
    "reply_hadd",
    "data",
];

pub(crate) fn as_genre(value: &Value, path: &str) -> Result<Genre> {
    let code: i64 = as_ranged(value, path, "a genre code 1 to 5")?;
    Genre::from_code(code).ok_or_else(|| invalid(path, "a genre code 1 to 5", value))
}

pub(crate) fn as_value_type(value: &Value, path: &str) -> Result<ValueType> {
    let code: i64 = as_ranged(value, path, "a value type code")?;
    ValueType::from_code(code).ok_or_else(|| invalid(path, "a value type code", value))
}

pub(crate) fn as_cmd_class(value: &Value, path: &str) -> Result<CommandClass> {
    as_ranged(value, path, "a command class code 0 to 65535").map(CommandClass)
}

pub(crate) fn as_index(value: &Value, path: &str) -> Result<u32> {
    as_ranged(value, path, "an instance index 0 to 4294967295")
}

fn as_list_items(value: &Value, path: &str) -> Result<Vec<String>> {
    match value {
        Value::String(joined) if joined.is_empty() => Ok(Vec::new()),
        Value::String(joined) => Ok(joined.split('|').map(str::to_owned).collect()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(at, item)| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Number(number) => Ok(number.to_string()),
                other => Err(invalid(
                    &child_path(path, &at.to_string()),
                    "a string",
                    other,
                )),
            })
            .collect(),
        other => Err(invalid(path, "a list of strings or \"a|b\"", other)),
    }
}

impl ValueDescriptor {
    /// A descriptor with the given uuid, genre and command class, everything else unset.
    pub fn new(uuid: impl Into<String>, genre: Genre, cmd_class: CommandClass) -> Self {
        ValueDescriptor {
            uuid: uuid.into(),
            genre,
            cmd_class,
            ..ValueDescriptor::default()
        }
    }

    /// Reads a value dict; `reserved` fields belong to an enclosing message and are not kept in
    /// `extra`.
    pub(crate) fn from_tree(tree: &Value, path: &str, reserved: &[&str]) -> Result<Self> {
        let fields = Reader::new(tree, path)?;
        let mut known: Vec<&str> = VALUE_FIELDS.to_vec();
        known.extend_from_slice(reserved);
        Ok(ValueDescriptor {
            uuid: fields.string("uuid")?,
            node_uuid: fields.opt_string("node_uuid")?,
            hadd: fields.opt_hadd("hadd")?,
            index: fields.optional("index", as_index)?.unwrap_or(0),
            genre: fields.optional("genre", as_genre)?.unwrap_or_default(),
            value_type: fields.optional("type", as_value_type)?,
            cmd_class: fields
                .optional("cmd_class", as_cmd_class)?
                .unwrap_or_default(),
            label: fields.opt_string("label")?,
            help: fields.opt_string("help")?,
            units: fields.opt_string("units")?,
            default: fields.data("default"),
            min: fields.opt_f64("min")?,
            max: fields.opt_f64("max")?,
            list_items: fields.optional("list_items", as_list_items)?,
            is_readonly: fields.opt_bool("is_readonly")?,
            is_writeonly: fields.opt_bool("is_writeonly")?,
            is_polled: fields.opt_bool("is_polled")?,
            poll_delay: fields.opt_f64("poll_delay")?,
            voice_uuid: fields.opt_string("voice_uuid")?,
            reply_hadd: fields.opt_hadd("reply_hadd")?,
            data: fields.data("data"),
            entry_name: fields.opt_string("entry_name")?,
            extra: fields.extra(&known),
        })
    }

    /// Writes the value dict into `out`, every field of §4.1 present (null when unset).
    pub(crate) fn write_into(&self, out: &mut Writer) {
        out.put("uuid", self.uuid.as_str())
            .put("node_uuid", opt_text(&self.node_uuid))
            .put("voice_uuid", opt_text(&self.voice_uuid))
            .put("hadd", opt_display(self.hadd))
            .put("cmd_class", self.cmd_class.0)
            .put("is_readonly", self.is_readonly)
            .put("is_writeonly", self.is_writeonly)
            .put("default", self.default.clone())
            .put("label", opt_text(&self.label))
            .put("help", opt_text(&self.help))
            .put("units", opt_text(&self.units))
            .put("list_items", self.list_items.clone())
            .put("max", opt_number(self.max))
            .put("min", opt_number(self.min))
            .put("genre", self.genre.code())
            .put("type", self.value_type.map(ValueType::code))
            .put("index", self.index)
            .put("is_polled", self.is_polled)
            .put("poll_delay", opt_number(self.poll_delay))
            .put("reply_hadd", opt_display(self.reply_hadd))
            .put("data", self.data.clone())
            .put_some("entry_name", self.entry_name.as_deref())
            .put_extra(&self.extra);
    }

    /// The payload tree (JSON shape) of this, as sent on the wire.
    pub fn to_tree(&self) -> Value {
        let mut out = Writer::new();
        self.write_into(&mut out);
        out.finish()
    }
}

/// The instances of one value, by index.
pub type ValueInstances = BTreeMap<u32, ValueDescriptor>;

/// Whether `tree` is one value dict (it has a `uuid`) rather than a map of instances.
pub(crate) fn is_single_value(tree: &Value) -> bool {
    matches!(tree, Value::Object(map) if map.contains_key("uuid"))
}

/// Reads `{"<index>": valuedict, ...}`; the key is the index (string keys, as the original
/// writes them, or integer keys).
pub(crate) fn instances_from_tree(tree: &Value, path: &str) -> Result<ValueInstances> {
    let map = as_object(tree, path)?;
    let mut instances = ValueInstances::new();
    for (key, item) in map {
        let item_path = child_path(path, key);
        let index = key
            .trim()
            .parse::<u32>()
            .map_err(|_| ProtocolError::InvalidField {
                field: item_path.clone(),
                expected: "an instance index as key",
                found: format!("key {key:?}"),
            })?;
        let mut value = ValueDescriptor::from_tree(item, &item_path, &[])?;
        value.index = index;
        instances.insert(index, value);
    }
    Ok(instances)
}

pub(crate) fn instances_to_tree(instances: &ValueInstances) -> Value {
    Value::Object(
        instances
            .iter()
            .map(|(index, value)| (index.to_string(), value.to_tree()))
            .collect(),
    )
}

/// A publication on `/values/<genre>/<hadd>/<uuid>`: one value dict, or its instances.
#[derive(Debug, Clone, PartialEq)]
pub enum ValuePublication {
    /// A single-instance value (or one instance of it).
    Single(Box<ValueDescriptor>),
    /// Every instance, by index.
    Instances(ValueInstances),
}

impl ValuePublication {
    pub(crate) fn from_tree(tree: &Value) -> Result<Self> {
        if is_single_value(tree) {
            return ValueDescriptor::from_tree(tree, "", &[])
                .map(|value| ValuePublication::Single(Box::new(value)));
        }
        let instances = instances_from_tree(tree, "")?;
        if instances.is_empty() {
            return Err(ProtocolError::MissingField {
                field: "uuid".into(),
            });
        }
        Ok(ValuePublication::Instances(instances))
    }

    pub(crate) fn to_tree(&self) -> Value {
        match self {
            ValuePublication::Single(value) => value.to_tree(),
            ValuePublication::Instances(instances) => instances_to_tree(instances),
        }
    }

    /// The instances published, by index (one for a single value).
    pub fn instances(&self) -> Vec<&ValueDescriptor> {
        match self {
            ValuePublication::Single(value) => vec![value],
            ValuePublication::Instances(instances) => instances.values().collect(),
        }
    }
}

/// A datum as a number, when it is one (or numeric text, as the original sometimes sends).
pub fn data_as_f64(data: &Data) -> Option<f64> {
    match data {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}
