//! Node info: what a node says about itself in discovery replies (the original's
//! `JNTNode.to_dict()`, §3.1).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::command_class::CommandClass;
use crate::error::Result;
use crate::fields::{as_ranged, child_path, invalid, number, opt_text, Data, Reader, Writer};
use crate::hadd::Hadd;
use crate::model::{Capability, NodeState};

/// The original's defaults for node fields the sender left out.
pub mod defaults {
    /// `oid` of a node that does not say.
    pub const OID: &str = "generic";
    /// `name` of a node that does not say.
    pub const NAME: &str = "Default name";
    /// `location` of a node that does not say.
    pub const LOCATION: &str = "Default location";
    /// `product_name` of a node that does not say.
    pub const PRODUCT_NAME: &str = "Default product name";
    /// `product_type` of a node that does not say.
    pub const PRODUCT_TYPE: &str = "Default product type";
    /// `product_manufacturer` of a node that does not say.
    pub const PRODUCT_MANUFACTURER: &str = "Default product manufacturer";
    /// Heartbeat period, seconds.
    pub const HEARTBEAT: f64 = 30.0;
    /// Config timeout, seconds.
    pub const CONFIG_TIMEOUT: f64 = 3.0;
}

/// The uuids of the values every node has (§4.5 of the protocol notes): system values
/// `heartbeat`, `config_timeout` and `hadd`, config values `name` and `location`.
pub mod builtin {
    /// The heartbeat period, seconds (a system value).
    pub const HEARTBEAT: &str = "heartbeat";
    /// The config timeout, seconds (a system value).
    pub const CONFIG_TIMEOUT: &str = "config_timeout";
    /// The node's address (a system value, applied at restart).
    pub const HADD: &str = "hadd";
    /// The node's name (a config value).
    pub const NAME: &str = "name";
    /// The node's location (a config value).
    pub const LOCATION: &str = "location";
}

/// One node as described in a `request_info_nodes` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// The node uuid (`rpibasic__ambiance`); the bus oid for a controller.
    pub uuid: Option<String>,
    /// The node's address.
    pub hadd: Hadd,
    /// The component or bus type (`rpibasic.dht`).
    pub oid: String,
    /// Name, persisted in the node's configuration.
    pub name: String,
    /// Location, persisted likewise.
    pub location: String,
    /// Product name.
    pub product_name: String,
    /// Product type.
    pub product_type: String,
    /// Manufacturer.
    pub product_manufacturer: String,
    /// Capabilities (a bus controller has 0x04).
    pub capabilities: Vec<Capability>,
    /// The command classes of its values (0x1050 for a bus controller, 0x1051 for a network
    /// controller).
    pub cmd_classes: Vec<CommandClass>,
    /// Heartbeat period, seconds.
    pub heartbeat: f64,
    /// Config timeout, seconds.
    pub config_timeout: f64,
    /// The node's state, present only in discovery replies.
    pub state: Option<NodeState>,
    /// Fields this crate does not know, kept as received.
    pub extra: BTreeMap<String, Data>,
}

const NODE_FIELDS: &[&str] = &[
    "uuid",
    "hadd",
    "oid",
    "name",
    "location",
    "product_name",
    "product_type",
    "product_manufacturer",
    "capabilities",
    "cmd_classes",
    "heartbeat",
    "config_timeout",
    "state",
];

impl NodeInfo {
    /// The controller whose Last Will covers this node's process (our addition `will`: the
    /// other controllers of a process name the one that carries its Will).
    pub fn will(&self) -> Option<Hadd> {
        self.extra
            .get("will")
            .and_then(Data::as_str)
            .and_then(|text| Hadd::parse(text).ok())
    }

    /// A node with the original's defaults.
    pub fn new(hadd: Hadd, uuid: impl Into<String>) -> Self {
        NodeInfo {
            uuid: Some(uuid.into()),
            hadd,
            oid: defaults::OID.into(),
            name: defaults::NAME.into(),
            location: defaults::LOCATION.into(),
            product_name: defaults::PRODUCT_NAME.into(),
            product_type: defaults::PRODUCT_TYPE.into(),
            product_manufacturer: defaults::PRODUCT_MANUFACTURER.into(),
            capabilities: Vec::new(),
            cmd_classes: Vec::new(),
            heartbeat: defaults::HEARTBEAT,
            config_timeout: defaults::CONFIG_TIMEOUT,
            state: None,
            extra: BTreeMap::new(),
        }
    }

    /// Reads a node dict at `path`; `fallback_hadd` is used when the dict has no `hadd` (a map
    /// keyed by HADD).
    pub(crate) fn from_tree(tree: &Value, path: &str, fallback_hadd: Option<Hadd>) -> Result<Self> {
        let fields = Reader::new(tree, path)?;
        let hadd = match fields.opt_hadd("hadd")? {
            Some(hadd) => hadd,
            None => fallback_hadd.ok_or_else(|| crate::ProtocolError::MissingField {
                field: fields.path("hadd"),
            })?,
        };
        let text = |key: &str, default: &str| -> Result<String> {
            Ok(fields
                .opt_string(key)?
                .unwrap_or_else(|| default.to_owned()))
        };
        Ok(NodeInfo {
            uuid: fields.opt_string("uuid")?,
            hadd,
            oid: text("oid", defaults::OID)?,
            name: text("name", defaults::NAME)?,
            location: text("location", defaults::LOCATION)?,
            product_name: text("product_name", defaults::PRODUCT_NAME)?,
            product_type: text("product_type", defaults::PRODUCT_TYPE)?,
            product_manufacturer: text("product_manufacturer", defaults::PRODUCT_MANUFACTURER)?,
            capabilities: fields
                .optional("capabilities", |value, path| {
                    list_of(value, path, "a capability code 0 to 255", Capability)
                })?
                .unwrap_or_default(),
            cmd_classes: fields
                .optional("cmd_classes", |value, path| {
                    list_of(value, path, "a command class code 0 to 65535", CommandClass)
                })?
                .unwrap_or_default(),
            heartbeat: fields.opt_f64("heartbeat")?.unwrap_or(defaults::HEARTBEAT),
            config_timeout: fields
                .opt_f64("config_timeout")?
                .unwrap_or(defaults::CONFIG_TIMEOUT),
            state: fields.optional("state", as_state)?,
            extra: fields.extra(NODE_FIELDS),
        })
    }

    /// The payload tree (JSON shape) of this, as sent on the wire.
    pub fn to_tree(&self) -> Value {
        Writer::new()
            .put("uuid", opt_text(&self.uuid))
            .put("hadd", self.hadd.to_string())
            .put("oid", self.oid.as_str())
            .put("name", self.name.as_str())
            .put("location", self.location.as_str())
            .put("product_name", self.product_name.as_str())
            .put("product_type", self.product_type.as_str())
            .put("product_manufacturer", self.product_manufacturer.as_str())
            .put(
                "capabilities",
                self.capabilities
                    .iter()
                    .map(|cap| cap.0)
                    .collect::<Vec<_>>(),
            )
            .put(
                "cmd_classes",
                self.cmd_classes
                    .iter()
                    .map(|class| class.0)
                    .collect::<Vec<_>>(),
            )
            .put("heartbeat", number(self.heartbeat))
            .put("config_timeout", number(self.config_timeout))
            .put_some("state", self.state.map(NodeState::as_str))
            .put_extra(&self.extra)
            .finish()
    }
}

pub(crate) fn as_state(value: &Value, path: &str) -> Result<NodeState> {
    match value {
        Value::String(text) => {
            NodeState::parse(text).ok_or_else(|| invalid(path, "a node state like ONLINE", value))
        }
        other => Err(invalid(path, "a node state like ONLINE", other)),
    }
}

fn list_of<N: TryFrom<i64>, T>(
    value: &Value,
    path: &str,
    expected: &'static str,
    wrap: fn(N) -> T,
) -> Result<Vec<T>> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(at, item)| {
                as_ranged(item, &child_path(path, &at.to_string()), expected).map(wrap)
            })
            .collect(),
        other => Err(invalid(path, "a list of codes", other)),
    }
}
