//! The DHCP lease protocol: requests on `/dhcp/lease/<op>` and `/dhcp/resolv/<lookup>`, answers
//! on `/reply/<rep_uuid>`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Result;
use crate::fields::{as_i64, invalid, Data, Reader, Writer};
use crate::model::NodeState;
use crate::node::as_state;

/// One address part of a lease (`add_ctrl` or `add_node`).
///
/// Numbers, `-1` ("allocate one", or "every node") included. The original server answers a
/// non-numeric part with a 400 naming it, so such a part is kept as text for that answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeasePart {
    /// A number (`-1` has a meaning that depends on the operation).
    Number(i64),
    /// Text that is not a number, as received.
    Text(String),
}

impl LeasePart {
    fn from_tree(value: &Value, path: &str) -> Result<LeasePart> {
        match value {
            Value::String(text) => Ok(as_i64(value, path)
                .map(LeasePart::Number)
                .unwrap_or_else(|_| LeasePart::Text(text.clone()))),
            other => as_i64(other, path)
                .map(LeasePart::Number)
                .map_err(|_| invalid(path, "an address part (an integer)", other)),
        }
    }

    fn to_tree(&self) -> Value {
        match self {
            LeasePart::Number(number) => Value::from(*number),
            LeasePart::Text(text) => Value::from(text.as_str()),
        }
    }
}

/// A lease request or a DHCP look-up: `{"rep_uuid", "add_ctrl", "add_node", "options"?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRequest {
    /// Where the answer goes: `/reply/<rep_uuid>`.
    pub rep_uuid: String,
    /// The controller part.
    pub add_ctrl: LeasePart,
    /// The node part.
    pub add_node: LeasePart,
    /// For new and repair: `name` and `location` (required by the server), `cmd_classes`, and
    /// any other parameter.
    pub options: Option<BTreeMap<String, Data>>,
}

impl LeaseRequest {
    pub(crate) fn from_tree(tree: &Value) -> Result<LeaseRequest> {
        let fields = Reader::new(tree, "")?;
        Ok(LeaseRequest {
            rep_uuid: fields.string("rep_uuid")?,
            add_ctrl: fields.required("add_ctrl", LeasePart::from_tree)?,
            add_node: fields.required("add_node", LeasePart::from_tree)?,
            options: fields.optional("options", |value, path| {
                Ok(Reader::new(value, path)?.extra(&[]))
            })?,
        })
    }

    pub(crate) fn to_tree(&self) -> Value {
        Writer::new()
            .put("rep_uuid", self.rep_uuid.as_str())
            .put("add_ctrl", self.add_ctrl.to_tree())
            .put("add_node", self.add_node.to_tree())
            .put_some(
                "options",
                self.options
                    .as_ref()
                    .map(|options| Value::Object(options.clone().into_iter().collect())),
            )
            .finish()
    }
}

/// A date as the original writes it: `{"$date": <ms since the epoch>}` (MongoDB extended JSON),
/// or ISO text from some code paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timestamp {
    /// Milliseconds since the Unix epoch.
    Millis(i64),
    /// Text, as received (`2026-11-24T22:06:33.866153`).
    Text(String),
}

impl Timestamp {
    fn from_tree(value: &Value, path: &str) -> Result<Timestamp> {
        match value {
            Value::String(text) => Ok(Timestamp::Text(text.clone())),
            Value::Object(_) => Reader::new(value, path)?
                .required("$date", as_i64)
                .map(Timestamp::Millis),
            other => Err(invalid(
                path,
                "{\"$date\": milliseconds} or a date text",
                other,
            )),
        }
    }

    fn to_tree(&self) -> Value {
        match self {
            Timestamp::Millis(millis) => Writer::new().put("$date", *millis).finish(),
            Timestamp::Text(text) => Value::from(text.as_str()),
        }
    }
}

/// The DHCP server's answer on `/reply/<rep_uuid>`: a status, and the lease when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseReply {
    /// 200 or 400.
    pub msg_status: u16,
    /// What went wrong.
    pub msg_error: Option<String>,
    /// The request's `rep_uuid`.
    pub rep_uuid: String,
    /// The lease's controller part.
    pub add_ctrl: Option<LeasePart>,
    /// The lease's node part.
    pub add_node: Option<LeasePart>,
    /// The leased node's name.
    pub name: Option<String>,
    /// Its location.
    pub location: Option<String>,
    /// Its command classes, as the server stores them (text such as `"0x0000"`).
    pub cmd_classes: Option<Data>,
    /// The lease state.
    pub state: Option<NodeState>,
    /// When the node was last seen.
    pub last_seen: Option<Timestamp>,
    /// Extra lease parameters.
    pub params: Option<Data>,
    /// Fields this crate does not know, kept as received.
    pub extra: BTreeMap<String, Data>,
}

const LEASE_REPLY_FIELDS: &[&str] = &[
    "msg_status",
    "msg_error",
    "rep_uuid",
    "add_ctrl",
    "add_node",
    "name",
    "location",
    "cmd_classes",
    "state",
    "last_seen",
    "params",
];

impl LeaseReply {
    pub(crate) fn from_tree(tree: &Value) -> Result<LeaseReply> {
        let fields = Reader::new(tree, "")?;
        Ok(LeaseReply {
            msg_status: fields.required("msg_status", |value, path| {
                crate::fields::as_ranged(value, path, "a status code")
            })?,
            msg_error: fields.opt_string("msg_error")?,
            rep_uuid: fields.string("rep_uuid")?,
            add_ctrl: fields.optional("add_ctrl", LeasePart::from_tree)?,
            add_node: fields.optional("add_node", LeasePart::from_tree)?,
            name: fields.opt_string("name")?,
            location: fields.opt_string("location")?,
            cmd_classes: fields.get("cmd_classes").cloned(),
            state: fields.optional("state", as_state)?,
            last_seen: fields.optional("last_seen", Timestamp::from_tree)?,
            params: fields.get("params").cloned(),
            extra: fields.extra(LEASE_REPLY_FIELDS),
        })
    }

    pub(crate) fn to_tree(&self) -> Value {
        Writer::new()
            .put("msg_status", self.msg_status)
            .put_some("msg_error", self.msg_error.as_deref())
            .put("rep_uuid", self.rep_uuid.as_str())
            .put_some("add_ctrl", self.add_ctrl.as_ref().map(LeasePart::to_tree))
            .put_some("add_node", self.add_node.as_ref().map(LeasePart::to_tree))
            .put_some("name", self.name.as_deref())
            .put_some("location", self.location.as_deref())
            .put_some("cmd_classes", self.cmd_classes.clone())
            .put_some("state", self.state.map(NodeState::as_str))
            .put_some("last_seen", self.last_seen.as_ref().map(Timestamp::to_tree))
            .put_some("params", self.params.clone())
            .put_extra(&self.extra)
            .finish()
    }
}
