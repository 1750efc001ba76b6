//! Requests on `/nodes/<hadd>/request`, `/broadcast/request` and `/dhcp/resolv/request/`:
//! discovery, get and set, with the original's operation flags and our explicit `op`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::command_class::CommandClass;
use crate::error::Result;
use crate::fields::{invalid, opt_display, Data, Reader, Writer};
use crate::hadd::Hadd;
use crate::model::{Genre, InfoKind};
use crate::value::{as_cmd_class, as_genre, as_index};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read a value.
    Get,
    /// Write a value.
    Set,
    /// Discovery (`request_info_*`).
    Info,
}

impl Operation {
    /// The `op` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Info => "info",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request: the original's fields plus `op`, `request_id` and an honoured `index`.
///
/// Decoding follows the original where `op` is absent: `is_writeonly` true means set, a
/// `request_info_*` uuid with class 0x5000 means discovery, anything else is a get.
/// Encoding writes `op` and the original's flags, so old nodes understand our requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The operation.
    pub op: Operation,
    /// The value uuid, or the `request_info_*` name of a discovery.
    pub uuid: String,
    /// The command class (0x70 for config/system values, 0x5000 for discovery).
    pub cmd_class: CommandClass,
    /// The genre of the value asked for.
    pub genre: Genre,
    /// Where to answer (`/nodes/<reply_hadd>/reply`).
    pub reply_hadd: Option<Hadd>,
    /// The node the request is for (the original routes on this field, not on the topic).
    pub hadd: Option<Hadd>,
    /// The instance index; absent means 0.
    pub index: Option<u32>,
    /// The data to write (set), null otherwise.
    pub data: Data,
    /// An id the answer echoes, to match answers with requests.
    pub request_id: Option<String>,
    /// Fields this crate does not know, kept as received.
    pub extra: BTreeMap<String, Data>,
}

const REQUEST_FIELDS: &[&str] = &[
    "op",
    "uuid",
    "cmd_class",
    "genre",
    "reply_hadd",
    "hadd",
    "index",
    "data",
    "request_id",
    "is_writeonly",
    "is_readonly",
];

impl Request {
    /// A discovery request.
    pub fn info(kind: InfoKind, reply_hadd: Hadd) -> Request {
        Request {
            op: Operation::Info,
            uuid: kind.uuid().to_owned(),
            cmd_class: CommandClass::DISCOVERY,
            genre: Genre::System,
            reply_hadd: Some(reply_hadd),
            hadd: None,
            index: None,
            data: Data::Null,
            request_id: None,
            extra: BTreeMap::new(),
        }
    }

    /// A get of `uuid` on node `hadd`.
    pub fn get(
        hadd: Hadd,
        uuid: impl Into<String>,
        genre: Genre,
        cmd_class: CommandClass,
    ) -> Request {
        Request {
            op: Operation::Get,
            uuid: uuid.into(),
            cmd_class,
            genre,
            reply_hadd: None,
            hadd: Some(hadd),
            index: None,
            data: Data::Null,
            request_id: None,
            extra: BTreeMap::new(),
        }
    }

    /// A set of `uuid` on node `hadd` to `data`.
    pub fn set(
        hadd: Hadd,
        uuid: impl Into<String>,
        genre: Genre,
        cmd_class: CommandClass,
        data: Data,
    ) -> Request {
        Request {
            op: Operation::Set,
            data,
            ..Request::get(hadd, uuid, genre, cmd_class)
        }
    }

    /// The discovery this request asks for, if it is one.
    pub fn info_kind(&self) -> Option<InfoKind> {
        match self.op {
            Operation::Info => InfoKind::from_uuid(&self.uuid),
            _ => None,
        }
    }

    /// The instance index the request addresses (0 when absent).
    pub fn instance(&self) -> u32 {
        self.index.unwrap_or(0)
    }

    pub(crate) fn from_tree(tree: &Value) -> Result<Request> {
        let fields = Reader::new(tree, "")?;
        let uuid = fields.string("uuid")?;
        let cmd_class = fields
            .optional("cmd_class", as_cmd_class)?
            .unwrap_or_default();
        let op = match fields.get("op") {
            Some(op) => parse_op(op)?,
            None if cmd_class == CommandClass::DISCOVERY
                && InfoKind::from_uuid(&uuid).is_some() =>
            {
                Operation::Info
            }
            None if fields.opt_bool("is_writeonly")? == Some(true) => Operation::Set,
            None => Operation::Get,
        };
        if op == Operation::Info && InfoKind::from_uuid(&uuid).is_none() {
            return Err(invalid(
                "uuid",
                "a discovery name like request_info_nodes",
                &Value::from(uuid),
            ));
        }
        Ok(Request {
            op,
            uuid,
            cmd_class,
            genre: fields.optional("genre", as_genre)?.unwrap_or_default(),
            reply_hadd: fields.opt_hadd("reply_hadd")?,
            hadd: fields.opt_hadd("hadd")?,
            index: fields.optional("index", as_index)?,
            data: fields.data("data"),
            request_id: fields.opt_id("request_id")?,
            extra: fields.extra(REQUEST_FIELDS),
        })
    }

    pub(crate) fn to_tree(&self) -> Value {
        let mut out = Writer::new();
        out.put("op", self.op.as_str())
            .put("uuid", self.uuid.as_str())
            .put("cmd_class", self.cmd_class.0)
            .put("genre", self.genre.code())
            .put("reply_hadd", opt_display(self.reply_hadd))
            .put_some("hadd", self.hadd.map(|hadd| hadd.to_string()))
            .put_some("index", self.index)
            .put_some("request_id", self.request_id.as_deref());
        if self.op != Operation::Info {
            out.put("data", self.data.clone())
                .put("is_writeonly", self.op == Operation::Set)
                .put("is_readonly", self.op == Operation::Get);
        }
        out.put_extra(&self.extra).finish()
    }
}

/// The answer owed to a request that could not be read: 400, naming what was wrong, sent
/// where the request asked (`reply_hadd`), echoing what could still be read of it.
///
/// `None` when not even a usable `reply_hadd` can be read: nobody to answer.
pub fn refusal_of_unreadable(
    tree: &Value,
    why: &crate::error::ProtocolError,
) -> Option<(Hadd, crate::reply::ValueReply)> {
    let Value::Object(fields) = tree else {
        return None;
    };
    let text = |key: &str| fields.get(key).and_then(Value::as_str);
    let reply_hadd = text("reply_hadd").and_then(|hadd| Hadd::parse(hadd).ok())?;
    let value = crate::value::ValueDescriptor {
        uuid: text("uuid").map(str::to_owned).unwrap_or_default(),
        hadd: text("hadd").and_then(|hadd| Hadd::parse(hadd).ok()),
        reply_hadd: Some(reply_hadd),
        ..crate::value::ValueDescriptor::default()
    };
    let reply = crate::reply::ValueReply {
        value,
        status: Some(crate::reply::Status::BAD_REQUEST),
        error: Some(why.to_string()),
        request_id: text("request_id").map(str::to_owned),
    };
    Some((reply_hadd, reply))
}

/// How much of an oversize request is read to find where to answer it.
pub const OVERSIZE_SCAN: usize = 64 << 10;

/// The answer to a JSON request of `payload.len()` bytes, over the payload limit `limit`: a
/// 400 that says so, to its `reply_hadd` and with its `request_id`, when the first
/// [`OVERSIZE_SCAN`] bytes hold them as top-level fields (the payload is not read whole).
/// `None` when they do not: nobody to answer.
pub fn refusal_of_oversize(
    payload: &[u8],
    limit: usize,
) -> Option<(Hadd, crate::reply::ValueReply)> {
    let head = &payload[..payload.len().min(OVERSIZE_SCAN)];
    let mut found = HeadFields::default();
    let mut reader = serde_json::Deserializer::from_slice(head);
    // The head is cut short: reading it ends in an error, after the fields before the cut.
    let _ = serde::Deserializer::deserialize_map(&mut reader, HeadVisitor(&mut found));
    let reply_hadd = found.reply_hadd.and_then(|text| Hadd::parse(&text).ok())?;
    let reply = crate::reply::ValueReply {
        value: crate::value::ValueDescriptor {
            reply_hadd: Some(reply_hadd),
            ..crate::value::ValueDescriptor::default()
        },
        status: Some(crate::reply::Status::BAD_REQUEST),
        error: Some(format!(
            "a payload of {} bytes is over the limit of {limit} bytes ([limits] max_payload)",
            payload.len()
        )),
        request_id: found.request_id,
    };
    Some((reply_hadd, reply))
}

/// The fields of an oversize request's head that say where to answer.
#[derive(Default)]
struct HeadFields {
    reply_hadd: Option<String>,
    request_id: Option<String>,
}

/// Reads the top-level fields of a JSON object in order, keeping `reply_hadd` and
/// `request_id` (short strings only) as they come and skipping the rest without keeping it.
struct HeadVisitor<'a>(&'a mut HeadFields);

impl<'de> serde::de::Visitor<'de> for HeadVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let slot = match key.as_ref() {
                "reply_hadd" => &mut self.0.reply_hadd,
                "request_id" => &mut self.0.request_id,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            let text: std::borrow::Cow<'de, str> = map.next_value()?;
            *slot = (text.len() <= 256).then(|| text.into_owned());
        }
        Ok(())
    }
}

fn parse_op(value: &Value) -> Result<Operation> {
    let text = match value {
        Value::String(text) => text.trim().to_ascii_lowercase(),
        other => return Err(invalid("op", "one of get, set, info", other)),
    };
    match text.as_str() {
        "get" => Ok(Operation::Get),
        "set" => Ok(Operation::Set),
        "info" => Ok(Operation::Info),
        _ => Err(invalid("op", "one of get, set, info", value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(payload: &[u8]) -> Option<(Hadd, Option<String>)> {
        refusal_of_oversize(payload, 1024).map(|(hadd, reply)| {
            assert_eq!(reply.status, Some(crate::reply::Status::BAD_REQUEST));
            (hadd, reply.request_id)
        })
    }

    #[test]
    fn an_oversize_request_is_answered_where_its_head_says() {
        let mut payload = br#"{"reply_hadd" : "0999/0001","request_id":"r-1","data":""#.to_vec();
        payload.extend(std::iter::repeat_n(b'x', 1 << 20));
        assert_eq!(
            answered(&payload),
            Some((Hadd::new(999, 1), Some("r-1".to_owned())))
        );
        let (_, reply) = refusal_of_oversize(&payload, 1024).unwrap();
        let error = reply.error.unwrap();
        assert!(
            error.contains(&format!("{} bytes", payload.len())) && error.contains("1024"),
            "{error}"
        );
        let without_id = br#"{"uuid":"name","reply_hadd":"0999/0002","data":"xxxx"#;
        assert_eq!(answered(without_id), Some((Hadd::new(999, 2), None)));
    }

    #[test]
    fn only_the_heads_top_level_short_fields_count() {
        let mut late = vec![b' '; OVERSIZE_SCAN + 10];
        late.extend(br#"{"reply_hadd":"0999/0001"}"#);
        assert_eq!(answered(&late), None, "past the scanned head");
        let planted = br#"{"data":"\"reply_hadd\":\"0001/0001\"","more":"xxxx"#;
        assert_eq!(answered(planted), None, "inside a string is not a field");
        let nested = br#"{"data":{"reply_hadd":"0001/0001"},"more":"xxxx"#;
        assert_eq!(
            answered(nested),
            None,
            "a nested field is not the request's"
        );
        let long = format!(
            r#"{{"reply_hadd":"0999/0001","request_id":"{}""#,
            "é".repeat(200)
        );
        assert_eq!(answered(long.as_bytes()), Some((Hadd::new(999, 1), None)));
        assert_eq!(answered(b"\xff\xfe\"reply_hadd\":\"\xc3"), None);
        assert_eq!(answered(br#"{"reply_hadd":"not an address","#), None);
        assert_eq!(answered(br#"["reply_hadd","0999/0001"]"#), None);
        assert_eq!(answered(b""), None);
    }
}
