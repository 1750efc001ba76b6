//! [`Message`]: every payload Janitoo sends, decoded according to the topic it came on.

use crate::codec::Codec;
use crate::error::{ProtocolError, Result};
use crate::fields::{as_i64, as_object, Data};
use crate::heartbeat::{Heartbeat, ResolvHeartbeat};
use crate::lease::{LeaseRecord, LeaseReply, LeaseRequest};
use crate::model::InfoKind;
use crate::reply::{DiscoveryReply, ValueReply};
use crate::request::Request;
use crate::topic::Topic;
use crate::value::ValuePublication;

/// A decoded payload. Which variant a payload decodes to is decided by its topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// On `/dhcp/heartbeat/<hadd>`: a node's heartbeat (bare word, or JSON).
    Heartbeat(Heartbeat),
    /// On `/dhcp/heartbeat/`: a heartbeat sent on behalf of a node (always JSON).
    HeartbeatOnBehalf(Heartbeat),
    /// On a request topic (node, broadcast, resolv): discovery, get or set.
    Request(Request),
    /// On a reply topic: the answer to a get or set.
    ValueReply(ValueReply),
    /// On a reply topic: the answer to a discovery.
    DiscoveryReply(DiscoveryReply),
    /// On `/values/<genre>/<hadd>/<uuid>`.
    Value(ValuePublication),
    /// On `/dhcp/resolv/heartbeat`.
    ResolvHeartbeat(ResolvHeartbeat),
    /// On `/dhcp/lease/<op>` or `/dhcp/resolv/<lookup>`.
    Lease(LeaseRequest),
    /// On `/reply/<rep_uuid>`.
    LeaseReply(LeaseReply),
    /// On `/dhcp/leases/<hadd>`: a lease as the primary published it.
    LeaseRecord(LeaseRecord),
}

impl Message {
    /// Decodes `payload`, received on `topic`, with `codec`.
    pub fn decode(topic: &Topic, payload: &[u8], codec: Codec) -> Result<Message> {
        if let Topic::Heartbeat(hadd) = topic {
            if let Some(word) = bare_word(payload) {
                return Heartbeat::from_word(*hadd, word).map(Message::Heartbeat);
            }
        }
        let tree = codec.decode_tree(payload)?;
        Message::from_tree(topic, &tree)
    }

    /// Decodes a payload tree received on `topic`.
    pub fn from_tree(topic: &Topic, tree: &Data) -> Result<Message> {
        Ok(match topic {
            Topic::Heartbeat(hadd) => match tree {
                Data::String(word) => Message::Heartbeat(Heartbeat::from_word(*hadd, word)?),
                _ => Message::Heartbeat(Heartbeat::from_tree(tree)?),
            },
            Topic::HeartbeatOnBehalf => Message::HeartbeatOnBehalf(Heartbeat::from_tree(tree)?),
            Topic::BroadcastRequest | Topic::NodeRequest(_) | Topic::ResolvRequest => {
                Message::Request(Request::from_tree(tree)?)
            }
            Topic::BroadcastReply(_)
            | Topic::NodeReply(_)
            | Topic::ResolvReply(_)
            | Topic::ResolvBroadcast => reply_from_tree(tree)?,
            Topic::Value { .. } => Message::Value(ValuePublication::from_tree(tree)?),
            Topic::ResolvHeartbeat => Message::ResolvHeartbeat(ResolvHeartbeat::from_tree(tree)?),
            Topic::Lease(_) | Topic::ResolvLookup(_) => {
                Message::Lease(LeaseRequest::from_tree(tree)?)
            }
            Topic::ReplyByUuid(_) => Message::LeaseReply(LeaseReply::from_tree(tree)?),
            Topic::LeaseRecord(_) => Message::LeaseRecord(LeaseRecord::from_tree(tree)?),
        })
    }

    /// Parses `topic`, then decodes `payload`.
    pub fn decode_on(topic: &str, payload: &[u8], codec: Codec) -> Result<(Topic, Message)> {
        let topic = Topic::parse(topic)?;
        let message = Message::decode(&topic, payload, codec)?;
        Ok((topic, message))
    }

    /// The payload tree.
    pub fn to_tree(&self) -> Data {
        match self {
            Message::Heartbeat(heartbeat) if heartbeat.is_plain() => {
                Data::from(heartbeat.state.as_str())
            }
            Message::Heartbeat(heartbeat) | Message::HeartbeatOnBehalf(heartbeat) => {
                heartbeat.to_tree()
            }
            Message::Request(request) => request.to_tree(),
            Message::ValueReply(reply) => reply.to_tree(),
            Message::DiscoveryReply(reply) => reply.to_tree(),
            Message::Value(publication) => publication.to_tree(),
            Message::ResolvHeartbeat(heartbeat) => heartbeat.to_tree(),
            Message::Lease(request) => request.to_tree(),
            Message::LeaseReply(reply) => reply.to_tree(),
            Message::LeaseRecord(record) => record.to_tree(),
        }
    }

    /// The payload. A node's own plain heartbeat is the bare state word (`ONLINE`) whatever the
    /// codec, as the original sends it.
    pub fn encode(&self, codec: Codec) -> Vec<u8> {
        match self {
            Message::Heartbeat(heartbeat) if heartbeat.is_plain() => {
                heartbeat.state.as_str().as_bytes().to_vec()
            }
            _ => codec.encode_tree(&self.to_tree()),
        }
    }
}

/// A discovery answer (class 0x5000 and a `request_info_*` uuid) or a value answer.
fn reply_from_tree(tree: &Data) -> Result<Message> {
    let fields = as_object(tree, "")?;
    let is_discovery = fields
        .get("uuid")
        .and_then(Data::as_str)
        .is_some_and(|uuid| InfoKind::from_uuid(uuid).is_some())
        && fields
            .get("cmd_class")
            .is_none_or(|class| as_i64(class, "cmd_class").ok() == Some(0x5000));
    if is_discovery {
        DiscoveryReply::from_tree(tree).map(Message::DiscoveryReply)
    } else {
        ValueReply::from_tree(tree).map(Message::ValueReply)
    }
}

/// The payload as a bare state word (letters only, as the original's heartbeats), if it is one.
fn bare_word(payload: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    let is_word =
        !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_alphabetic());
    is_word.then_some(text)
}

/// Splits a line as `mosquitto_sub -v` prints it: the topic, a space, the payload.
pub fn split_trace_line(line: &str) -> Result<(&str, &str)> {
    line.split_once(' ')
        .ok_or_else(|| ProtocolError::Malformed {
            codec: "trace",
            reason: "a trace line is `<topic> <payload>`".into(),
        })
}
