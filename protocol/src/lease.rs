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

/// A date as the original writes it: MongoDB extended JSON, `{"$date": <ms since the epoch>}`,
/// or ISO text from some code paths. Other versions of its library write
/// `{"$date": {"$numberLong": "<ms>"}}` or `{"$date": "<ISO-8601>"}`: both are read, as
/// milliseconds, and written back in the first form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timestamp {
    /// Milliseconds since the Unix epoch.
    Millis(i64),
    /// Text, as received (`2026-11-24T22:06:33.866153`).
    Text(String),
}

impl Timestamp {
    fn from_tree(value: &Value, path: &str) -> Result<Timestamp> {
        let expected = "{\"$date\": milliseconds}, {\"$date\": {\"$numberLong\": \"ms\"}}, \
                        {\"$date\": \"ISO-8601\"} or a date text";
        match value {
            Value::String(text) => Ok(Timestamp::Text(text.clone())),
            Value::Object(fields) => {
                let date = fields
                    .get("$date")
                    .ok_or_else(|| invalid(path, expected, value))?;
                let millis = match date {
                    Value::Object(long) => long
                        .get("$numberLong")
                        .and_then(Value::as_str)
                        .and_then(|text| text.parse::<i64>().ok()),
                    Value::String(text) => iso_millis(text),
                    number => number.as_i64(),
                };
                millis
                    .map(Timestamp::Millis)
                    .ok_or_else(|| invalid(&format!("{path}.$date"), expected, date))
            }
            other => Err(invalid(path, expected, other)),
        }
    }

    fn to_tree(&self) -> Value {
        match self {
            Timestamp::Millis(millis) => Writer::new().put("$date", *millis).finish(),
            Timestamp::Text(text) => Value::from(text.as_str()),
        }
    }
}

/// Milliseconds since the Unix epoch of an ISO-8601 date and time
/// (`2026-11-24T22:06:33.866Z`, `...+01:00`, or no zone: UTC); `None` when it is not one.
pub fn iso_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', ' '])?;
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: i64 = ymd.next()?.parse().ok()?;
    let day: i64 = ymd.next()?.parse().ok()?;
    // The zone: Z, +hh:mm, -hh:mm, or none.
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']).filter(|at| *at >= 8) {
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
        let minutes = hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?;
        (clock, sign * minutes)
    } else {
        (time, 0)
    };
    let mut hms = clock.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let seconds = hms.next().unwrap_or("0");
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let second: i64 = whole.parse().ok()?;
    let millis: i64 = if fraction.is_empty() {
        0
    } else if fraction.bytes().all(|b| b.is_ascii_digit()) {
        format!("{fraction:0<3}")[..3].parse().ok()?
    } else {
        return None;
    };
    let valid = (0..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..=60).contains(&second);
    if !valid {
        return None;
    }
    // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
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
    /// An answer of `msg_status` to `rep_uuid`, with no lease column yet.
    pub fn status(msg_status: u16, rep_uuid: &str) -> LeaseReply {
        LeaseReply {
            msg_status,
            msg_error: None,
            rep_uuid: rep_uuid.to_owned(),
            add_ctrl: None,
            add_node: None,
            name: None,
            location: None,
            cmd_classes: None,
            state: None,
            last_seen: None,
            params: None,
            extra: BTreeMap::new(),
        }
    }

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

/// A lease as the primary that granted or changed it publishes it, retained, on
/// `/dhcp/leases/<hadd>`: every network controller keeps the table, so a failover loses none.
/// A removal is a record too (`"removed": true`), so that it can be signed like the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRecord {
    /// The epoch of the primary that granted the lease (for a removal: that removed it).
    pub epoch: u64,
    /// The lease; `None` when it is removed.
    pub held: Option<HeldLease>,
}

/// The columns of a lease that is held.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldLease {
    /// The node's name, as it asked.
    pub name: String,
    /// Its location.
    pub location: String,
    /// Its command classes, as it gave them.
    pub cmd_classes: Data,
    /// BOOT when leased or locked, ONLINE once heard, OFFLINE when released.
    pub state: NodeState,
    /// Whether a heartbeat came from its address.
    pub confirmed: bool,
    /// When its address was last heard, wall-clock milliseconds.
    pub last_seen_ms: Option<i64>,
}

impl HeldLease {
    /// One row of a listing of leases (`janitoo lease list --json`, the web manager): the
    /// address, the lease's columns, and the `epoch` of the primary that granted it.
    pub fn listing(&self, hadd: crate::Hadd, epoch: u64) -> Value {
        serde_json::json!({
            "hadd": hadd.to_string(),
            "name": self.name,
            "location": self.location,
            "state": self.state.as_str(),
            "confirmed": self.confirmed,
            "last_seen_ms": self.last_seen_ms,
            "epoch": epoch,
        })
    }
}

impl LeaseRecord {
    pub(crate) fn from_tree(tree: &Value) -> Result<LeaseRecord> {
        let fields = Reader::new(tree, "")?;
        let epoch = fields.required("epoch", |value, path| {
            crate::fields::as_ranged(value, path, "an epoch (a positive integer)")
        })?;
        if fields.opt_bool("removed")? == Some(true) {
            return Ok(LeaseRecord { epoch, held: None });
        }
        Ok(LeaseRecord {
            epoch,
            held: Some(HeldLease {
                name: fields.string("name")?,
                location: fields.string("location")?,
                cmd_classes: fields.data("cmd_classes"),
                state: fields.required("state", as_state)?,
                confirmed: fields.opt_bool("confirmed")?.unwrap_or(false),
                last_seen_ms: fields.optional("last_seen", as_i64)?,
            }),
        })
    }

    pub(crate) fn to_tree(&self) -> Value {
        let mut writer = Writer::new();
        writer.put("epoch", self.epoch);
        match &self.held {
            None => writer.put("removed", true),
            Some(held) => writer
                .put("name", held.name.as_str())
                .put("location", held.location.as_str())
                .put("cmd_classes", held.cmd_classes.clone())
                .put("state", held.state.as_str())
                .put("confirmed", held.confirmed)
                .put_some("last_seen", held.last_seen_ms),
        };
        writer.finish()
    }
}
