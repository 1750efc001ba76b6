//! Answers: to a get or set ([`ValueReply`]) and to a discovery ([`DiscoveryReply`]), on
//! `/nodes/<hadd>/reply`, `/broadcast/reply/<hadd>` and the resolv reply topics.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::command_class::CommandClass;
use crate::error::{ProtocolError, Result};
use crate::fields::{as_object, as_ranged, child_path, invalid, opt_display, Data, Reader, Writer};
use crate::hadd::Hadd;
use crate::model::{Genre, InfoKind};
use crate::node::NodeInfo;
use crate::value::{
    instances_from_tree, instances_to_tree, is_single_value, ValueDescriptor, ValueInstances,
};

/// An HTTP-like status, our addition to answers (absent in the original's, which means 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u16);

impl Status {
    /// Done.
    pub const OK: Status = Status(200);
    /// The data is not acceptable for the value (type, range, list items).
    pub const BAD_REQUEST: Status = Status(400);
    /// The value cannot be written (read-only).
    pub const FORBIDDEN: Status = Status(403);
    /// No such node or value.
    pub const NOT_FOUND: Status = Status(404);
    /// The node failed to carry the request out.
    pub const INTERNAL_ERROR: Status = Status(500);
    /// Too busy: too many requests in flight; try again later.
    pub const SERVICE_UNAVAILABLE: Status = Status(503);

    /// Whether this is a 2xx status.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn as_status(value: &Value, path: &str) -> Result<Status> {
    let code: u16 = as_ranged(value, path, "a status code 100 to 599")?;
    if (100..600).contains(&code) {
        Ok(Status(code))
    } else {
        Err(invalid(path, "a status code 100 to 599", value))
    }
}

/// The answer to a get or a set: the value dict, with the requester's `reply_hadd`, plus our
/// `status`, `error` and echoed `request_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueReply {
    /// The value as it is after the request (for an error, the request echoed).
    pub value: ValueDescriptor,
    /// The outcome; `None` in the original's answers, which means success.
    pub status: Option<Status>,
    /// What went wrong, for people.
    pub error: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
}

const REPLY_FIELDS: &[&str] = &["status", "error", "request_id"];

impl ValueReply {
    /// The outcome, the original's silence meaning success.
    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::OK)
    }

    pub(crate) fn from_tree(tree: &Value) -> Result<ValueReply> {
        let fields = Reader::new(tree, "")?;
        Ok(ValueReply {
            status: fields.optional("status", as_status)?,
            error: fields.opt_string("error")?,
            request_id: fields.opt_id("request_id")?,
            value: ValueDescriptor::from_tree(tree, "", REPLY_FIELDS)?,
        })
    }

    pub(crate) fn to_tree(&self) -> Value {
        let mut out = Writer::new();
        self.value.write_into(&mut out);
        out.put_some("status", self.status.map(|status| status.0))
            .put_some("error", self.error.as_deref())
            .put_some("request_id", self.request_id.as_deref())
            .finish()
    }
}

/// The normalised content of a discovery reply.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscoveryData {
    /// Node info, by HADD.
    Nodes(BTreeMap<Hadd, NodeInfo>),
    /// Values: by HADD, then value uuid, then instance index.
    Values(BTreeMap<Hadd, BTreeMap<String, ValueInstances>>),
}

/// The answer to a `request_info_*` discovery: the request echoed plus `data`.
///
/// The original answers in several shapes (§5.2): node info keyed by node uuid, by HADD, or a
/// single node dict; values in three levels (`{hadd: {uuid: {index: value}}}`) or two (systems
/// and commands: `{hadd: {uuid: value}}`). Decoding accepts them all and normalises to
/// [`DiscoveryData`]; encoding writes node info keyed by HADD, values in three levels, and
/// systems and commands in two levels when every value has a single instance 0, as the
/// original's own receivers expect.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryReply {
    /// Which discovery this answers.
    pub kind: InfoKind,
    /// The requester.
    pub reply_hadd: Option<Hadd>,
    /// The request's id, echoed.
    pub request_id: Option<String>,
    /// Our status, absent in the original's answers.
    pub status: Option<Status>,
    /// What went wrong, for people.
    pub error: Option<String>,
    /// The answer.
    pub data: DiscoveryData,
    /// Fields this crate does not know, kept as received.
    pub extra: BTreeMap<String, Data>,
}

const DISCOVERY_FIELDS: &[&str] = &[
    "uuid",
    "cmd_class",
    "genre",
    "reply_hadd",
    "request_id",
    "status",
    "error",
    "data",
];

impl DiscoveryReply {
    /// An answer of `kind` with `data`, for `reply_hadd`.
    pub fn new(kind: InfoKind, reply_hadd: Option<Hadd>, data: DiscoveryData) -> Self {
        DiscoveryReply {
            kind,
            reply_hadd,
            request_id: None,
            status: None,
            error: None,
            data,
            extra: BTreeMap::new(),
        }
    }

    pub(crate) fn from_tree(tree: &Value) -> Result<DiscoveryReply> {
        let fields = Reader::new(tree, "")?;
        let uuid = fields.string("uuid")?;
        let kind = InfoKind::from_uuid(&uuid).ok_or_else(|| {
            invalid(
                "uuid",
                "a discovery name like request_info_nodes",
                &Value::from(uuid),
            )
        })?;
        let data = fields.get("data").unwrap_or(&Value::Null);
        let data = match kind {
            InfoKind::Nodes => DiscoveryData::Nodes(nodes_from_tree(data)?),
            _ => DiscoveryData::Values(values_from_tree(data)?),
        };
        Ok(DiscoveryReply {
            kind,
            reply_hadd: fields.opt_hadd("reply_hadd")?,
            request_id: fields.opt_id("request_id")?,
            status: fields.optional("status", as_status)?,
            error: fields.opt_string("error")?,
            data,
            extra: fields.extra(DISCOVERY_FIELDS),
        })
    }

    pub(crate) fn to_tree(&self) -> Value {
        let data = match &self.data {
            DiscoveryData::Nodes(nodes) => Value::Object(
                nodes
                    .iter()
                    .map(|(hadd, node)| (hadd.to_string(), node.to_tree()))
                    .collect(),
            ),
            DiscoveryData::Values(values) => {
                values_to_tree(values, self.kind.answers_without_index())
            }
        };
        Writer::new()
            .put("uuid", self.kind.uuid())
            .put("cmd_class", CommandClass::DISCOVERY.0)
            .put("genre", Genre::System.code())
            .put("reply_hadd", opt_display(self.reply_hadd))
            .put_some("request_id", self.request_id.as_deref())
            .put_some("status", self.status.map(|status| status.0))
            .put_some("error", self.error.as_deref())
            .put("data", data)
            .put_extra(&self.extra)
            .finish()
    }
}

/// `data` of a nodes reply: `{key: nodedict}` (key a node uuid or a HADD), a single nodedict,
/// or null/empty.
fn nodes_from_tree(data: &Value) -> Result<BTreeMap<Hadd, NodeInfo>> {
    let mut nodes = BTreeMap::new();
    if data.is_null() {
        return Ok(nodes);
    }
    let map = as_object(data, "data")?;
    if matches!(map.get("uuid"), Some(Value::String(_))) {
        let node = NodeInfo::from_tree(data, "data", None)?;
        nodes.insert(node.hadd, node);
        return Ok(nodes);
    }
    for (key, item) in map {
        let node = NodeInfo::from_tree(item, &child_path("data", key), Hadd::parse(key).ok())?;
        nodes.insert(node.hadd, node);
    }
    Ok(nodes)
}

/// `data` of a values reply, three or two levels.
fn values_from_tree(data: &Value) -> Result<BTreeMap<Hadd, BTreeMap<String, ValueInstances>>> {
    let mut values = BTreeMap::new();
    if data.is_null() {
        return Ok(values);
    }
    for (hadd_key, per_node) in as_object(data, "data")? {
        let node_path = child_path("data", hadd_key);
        let hadd = Hadd::parse(hadd_key).map_err(|_| ProtocolError::InvalidField {
            field: node_path.clone(),
            expected: "a HADD as key",
            found: format!("key {hadd_key:?}"),
        })?;
        let mut by_uuid = BTreeMap::new();
        for (uuid, item) in as_object(per_node, &node_path)? {
            let item_path = child_path(&node_path, uuid);
            let mut instances = if is_single_value(item) {
                match item.get(INSTANCES_FIELD) {
                    Some(all @ Value::Object(_)) => {
                        instances_from_tree(all, &child_path(&item_path, INSTANCES_FIELD))?
                    }
                    _ => {
                        let value = ValueDescriptor::from_tree(item, &item_path, &[])?;
                        ValueInstances::from([(value.index, value)])
                    }
                }
            } else {
                instances_from_tree(item, &item_path)?
            };
            for value in instances.values_mut() {
                value.hadd.get_or_insert(hadd);
            }
            by_uuid.insert(uuid.clone(), instances);
        }
        values.insert(hadd, by_uuid);
    }
    Ok(values)
}

/// Where a multi-instance value of a two-level answer keeps its instances, beside the flat
/// dict of its first one.
const INSTANCES_FIELD: &str = "instances";

/// `data` of a values reply. Users, basics and configs take the original's three levels
/// (`{hadd: {uuid: {index: valuedict}}}`). Systems and commands take its two
/// (`{hadd: {uuid: valuedict}}`, each dict with its `hadd`, which the original's `add_systems`
/// reads): a value with several instances is the flat dict of its first, with every instance
/// under `instances`, so that an original receiver stores what it can and chokes on nothing.
fn values_to_tree(
    values: &BTreeMap<Hadd, BTreeMap<String, ValueInstances>>,
    without_index: bool,
) -> Value {
    let flat = |hadd: Hadd, instances: &ValueInstances| -> Option<Value> {
        let (_, first) = instances.first_key_value()?;
        let mut tree = first.to_tree();
        if let Value::Object(map) = &mut tree {
            map.entry("hadd")
                .or_insert_with(|| Value::from(hadd.to_string()));
            if instances.len() > 1 {
                map.insert(INSTANCES_FIELD.into(), instances_to_tree(instances));
            }
        }
        Some(tree)
    };
    let per_node = |hadd: Hadd, by_uuid: &BTreeMap<String, ValueInstances>| -> Value {
        let map: Map<String, Value> = by_uuid
            .iter()
            .filter_map(|(uuid, instances)| {
                let tree = if without_index {
                    flat(hadd, instances)?
                } else {
                    instances_to_tree(instances)
                };
                Some((uuid.clone(), tree))
            })
            .collect();
        Value::Object(map)
    };
    Value::Object(
        values
            .iter()
            .map(|(hadd, by_uuid)| (hadd.to_string(), per_node(*hadd, by_uuid)))
            .collect(),
    )
}
