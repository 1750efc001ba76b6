//! The topic grammar: every MQTT topic Janitoo uses, parsed into [`Topic`] and formatted back.

use std::fmt;
use std::str::FromStr;

use crate::error::{ProtocolError, Result};
use crate::hadd::Hadd;
use crate::model::Genre;

/// One Janitoo topic. `Topic::parse(t).to_string()` gives `t` back in its canonical form
/// (HADDs zero-padded, the resolv topics with their trailing slash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `/dhcp/heartbeat/<hadd>`: a node's own heartbeat (plain state or JSON).
    Heartbeat(Hadd),
    /// `/dhcp/heartbeat/`: a heartbeat published by the primary on behalf of a node (JSON).
    HeartbeatOnBehalf,
    /// `/broadcast/request`: discovery asked of every controller.
    BroadcastRequest,
    /// `/broadcast/reply/<reply hadd>`: answers to a broadcast discovery.
    BroadcastReply(Hadd),
    /// `/nodes/<hadd>/request`: a request (discovery, get, set) for one node.
    NodeRequest(Hadd),
    /// `/nodes/<reply hadd>/reply`: answers to node requests.
    NodeReply(Hadd),
    /// `/values/<genre>/<hadd>/<uuid>`: a value publication (poll, or after a get or set).
    Value {
        /// The genre segment.
        genre: Genre,
        /// The node holding the value.
        hadd: Hadd,
        /// The value uuid.
        uuid: String,
    },
    /// `/dhcp/resolv/request/`: a secondary asks the primary for its map.
    ResolvRequest,
    /// `/dhcp/resolv/reply/<reply hadd>`: the primary's (chunked) map for one secondary.
    ResolvReply(Hadd),
    /// `/dhcp/resolv/broadcast/`: map updates for every secondary.
    ResolvBroadcast,
    /// `/dhcp/resolv/heartbeat`: the primary's heartbeat, watched by secondaries.
    ResolvHeartbeat,
    /// `/dhcp/resolv/hadd`, `/dhcp/resolv/name`, `/dhcp/resolv/cmd_classes`: lease look-ups.
    ResolvLookup(LookupKind),
    /// `/dhcp/lease/<op>`: the DHCP lease protocol.
    Lease(LeaseOp),
    /// `/reply/<rep_uuid>`: the DHCP server's answer to a lease message or look-up.
    ReplyByUuid(String),
    /// `/dhcp/leases/<hadd>`: the lease of one address, as the primary that granted or changed
    /// it published it (retained, ours: the original has no replicated table).
    LeaseRecord(Hadd),
}

/// The DHCP lease operations, each on `/dhcp/lease/<op>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseOp {
    /// Allocate an address.
    New,
    /// Recreate a lease after the server lost it.
    Repair,
    /// Mark a lease in use (state BOOT).
    Lock,
    /// Mark a lease unused (state OFFLINE).
    Release,
    /// Delete a lease.
    Remove,
}

impl LeaseOp {
    /// Every operation, in wire order.
    pub const ALL: [LeaseOp; 5] = [
        LeaseOp::New,
        LeaseOp::Repair,
        LeaseOp::Lock,
        LeaseOp::Release,
        LeaseOp::Remove,
    ];

    /// The last topic segment.
    pub fn segment(self) -> &'static str {
        match self {
            LeaseOp::New => "new",
            LeaseOp::Repair => "repair",
            LeaseOp::Lock => "lock",
            LeaseOp::Release => "release",
            LeaseOp::Remove => "remove",
        }
    }
}

/// The DHCP look-ups on `/dhcp/resolv/<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupKind {
    /// `/dhcp/resolv/hadd`: the lease of one address.
    Hadd,
    /// `/dhcp/resolv/name` (a no-op in the original server).
    Name,
    /// `/dhcp/resolv/cmd_classes` (a no-op in the original server).
    CmdClasses,
}

impl LookupKind {
    /// The last topic segment.
    pub fn segment(self) -> &'static str {
        match self {
            LookupKind::Hadd => "hadd",
            LookupKind::Name => "name",
            LookupKind::CmdClasses => "cmd_classes",
        }
    }
}

/// Subscription filters, as the controllers of the original use them.
pub mod filters {
    use crate::hadd::Hadd;

    /// Every node heartbeat and every heartbeat on behalf.
    pub const HEARTBEATS: &str = "/dhcp/heartbeat/#";
    /// Broadcast discovery requests.
    pub const BROADCAST_REQUESTS: &str = "/broadcast/request";
    /// Every value publication of the network.
    pub const VALUES: &str = "/values/#";
    /// Every resolv topic (requests, replies, broadcast, heartbeat, look-ups).
    pub const RESOLV: &str = "/dhcp/resolv/#";
    /// Resolv requests sent by secondaries.
    pub const RESOLV_REQUESTS: &str = "/dhcp/resolv/request/#";
    /// The primary's heartbeat.
    pub const RESOLV_HEARTBEAT: &str = "/dhcp/resolv/heartbeat";
    /// Every lease operation.
    pub const LEASES: &str = "/dhcp/lease/#";
    /// Every lease record the primaries published (retained).
    pub const LEASE_RECORDS: &str = "/dhcp/leases/#";
    /// Every broadcast discovery answer, whoever asked.
    pub const BROADCAST_REPLIES: &str = "/broadcast/reply/#";
    /// The primary's map updates.
    pub const RESOLV_BROADCAST: &str = "/dhcp/resolv/broadcast/";
    /// Every system value (the controllers' metrics among them).
    pub const SYSTEM_VALUES: &str = "/values/system/#";

    /// Every request and reply topic of the nodes of controller `ctrl` (`/nodes/<cccc>/#`).
    pub fn nodes_of(ctrl: u16) -> String {
        format!("/nodes/{ctrl:04}/#")
    }

    /// The answer to lease request `rep_uuid` (`/reply/<rep_uuid>`).
    pub fn lease_reply(rep_uuid: &str) -> String {
        format!("/reply/{rep_uuid}")
    }

    /// The replies addressed to `hadd` (`/nodes/<hadd>/reply`).
    pub fn replies_to(hadd: Hadd) -> String {
        format!("/nodes/{hadd}/reply")
    }

    /// The broadcast replies addressed to `hadd`.
    pub fn broadcast_replies_to(hadd: Hadd) -> String {
        format!("/broadcast/reply/{hadd}")
    }

    /// The resolv replies addressed to `hadd`.
    pub fn resolv_replies_to(hadd: Hadd) -> String {
        format!("/dhcp/resolv/reply/{hadd}")
    }
}

/// Whether MQTT topic filter `filter` (with `+` and `#` wildcards) matches `topic`.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (level, Some(actual)) if level == actual => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

impl Topic {
    /// Parses a topic; an unknown topic or a bad variable part is a typed error.
    ///
    /// ```
    /// use janitoo_protocol::{Genre, Hadd, Topic};
    /// let topic = Topic::parse("/values/user/0220/0001/temperature").unwrap();
    /// assert_eq!(topic, Topic::Value {
    ///     genre: Genre::User,
    ///     hadd: Hadd::new(220, 1),
    ///     uuid: "temperature".into(),
    /// });
    /// ```
    pub fn parse(topic: &str) -> Result<Topic> {
        let unknown = || ProtocolError::UnknownTopic {
            topic: topic.to_owned(),
        };
        let segments: Vec<&str> = topic
            .strip_prefix('/')
            .ok_or_else(unknown)?
            .split('/')
            .collect();
        let hadd = |ctrl: &str, node: &str| parse_hadd_segments(topic, ctrl, node);
        let parsed = match segments.as_slice() {
            ["dhcp", "heartbeat", ""] => Topic::HeartbeatOnBehalf,
            ["dhcp", "heartbeat", ctrl, node] => Topic::Heartbeat(hadd(ctrl, node)?),
            ["broadcast", "request"] => Topic::BroadcastRequest,
            ["broadcast", "reply", ctrl, node] => Topic::BroadcastReply(hadd(ctrl, node)?),
            ["nodes", ctrl, node, "request"] => Topic::NodeRequest(hadd(ctrl, node)?),
            ["nodes", ctrl, node, "reply"] => Topic::NodeReply(hadd(ctrl, node)?),
            ["values", genre, ctrl, node, uuid] => Topic::Value {
                genre: Genre::from_segment(genre).ok_or_else(|| ProtocolError::InvalidTopic {
                    topic: topic.to_owned(),
                    reason: format!("unknown genre {genre:?}"),
                })?,
                hadd: hadd(ctrl, node)?,
                uuid: check_name(topic, "value uuid", uuid)?,
            },
            ["dhcp", "resolv", "request"] | ["dhcp", "resolv", "request", ""] => {
                Topic::ResolvRequest
            }
            ["dhcp", "resolv", "reply", ctrl, node] => Topic::ResolvReply(hadd(ctrl, node)?),
            ["dhcp", "resolv", "broadcast"] | ["dhcp", "resolv", "broadcast", ""] => {
                Topic::ResolvBroadcast
            }
            ["dhcp", "resolv", "heartbeat"] => Topic::ResolvHeartbeat,
            ["dhcp", "resolv", "hadd"] => Topic::ResolvLookup(LookupKind::Hadd),
            ["dhcp", "resolv", "name"] => Topic::ResolvLookup(LookupKind::Name),
            ["dhcp", "resolv", "cmd_classes"] => Topic::ResolvLookup(LookupKind::CmdClasses),
            ["dhcp", "lease", op] => Topic::Lease(
                LeaseOp::ALL
                    .into_iter()
                    .find(|known| known.segment() == *op)
                    .ok_or_else(unknown)?,
            ),
            ["dhcp", "leases", ctrl, node] => Topic::LeaseRecord(hadd(ctrl, node)?),
            ["reply", rep_uuid] => Topic::ReplyByUuid(check_name(topic, "reply uuid", rep_uuid)?),
            _ => return Err(unknown()),
        };
        Ok(parsed)
    }

    /// The HADD named in the topic, if any.
    pub fn hadd(&self) -> Option<Hadd> {
        match self {
            Topic::Heartbeat(hadd)
            | Topic::BroadcastReply(hadd)
            | Topic::NodeRequest(hadd)
            | Topic::NodeReply(hadd)
            | Topic::ResolvReply(hadd)
            | Topic::LeaseRecord(hadd)
            | Topic::Value { hadd, .. } => Some(*hadd),
            _ => None,
        }
    }
}

fn parse_hadd_segments(topic: &str, ctrl: &str, node: &str) -> Result<Hadd> {
    Hadd::parse(&format!("{ctrl}/{node}")).map_err(|err| ProtocolError::InvalidTopic {
        topic: topic.to_owned(),
        reason: err.to_string(),
    })
}

fn check_name(topic: &str, what: &str, name: &str) -> Result<String> {
    if name.is_empty() || name.contains(['+', '#']) {
        return Err(ProtocolError::InvalidTopic {
            topic: topic.to_owned(),
            reason: format!("the {what} is empty or holds a wildcard"),
        });
    }
    Ok(name.to_owned())
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Heartbeat(hadd) => write!(f, "/dhcp/heartbeat/{hadd}"),
            Topic::HeartbeatOnBehalf => f.write_str("/dhcp/heartbeat/"),
            Topic::BroadcastRequest => f.write_str("/broadcast/request"),
            Topic::BroadcastReply(hadd) => write!(f, "/broadcast/reply/{hadd}"),
            Topic::NodeRequest(hadd) => write!(f, "/nodes/{hadd}/request"),
            Topic::NodeReply(hadd) => write!(f, "/nodes/{hadd}/reply"),
            Topic::Value { genre, hadd, uuid } => {
                write!(f, "/values/{}/{hadd}/{uuid}", genre.segment())
            }
            Topic::ResolvRequest => f.write_str("/dhcp/resolv/request/"),
            Topic::ResolvReply(hadd) => write!(f, "/dhcp/resolv/reply/{hadd}"),
            Topic::ResolvBroadcast => f.write_str("/dhcp/resolv/broadcast/"),
            Topic::ResolvHeartbeat => f.write_str("/dhcp/resolv/heartbeat"),
            Topic::ResolvLookup(kind) => write!(f, "/dhcp/resolv/{}", kind.segment()),
            Topic::Lease(op) => write!(f, "/dhcp/lease/{}", op.segment()),
            Topic::ReplyByUuid(rep_uuid) => write!(f, "/reply/{rep_uuid}"),
            Topic::LeaseRecord(hadd) => write!(f, "/dhcp/leases/{hadd}"),
        }
    }
}

impl FromStr for Topic {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self> {
        Topic::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_says() {
        assert!(filter_matches(
            "homeassistant/status",
            "homeassistant/status"
        ));
        assert!(!filter_matches(
            "homeassistant/status",
            "homeassistant/status/x"
        ));
        assert!(!filter_matches("homeassistant/status", "homeassistant"));
        assert!(filter_matches(
            "h/+/+/+/config",
            "h/sensor/node/object/config"
        ));
        assert!(!filter_matches("h/+/+/+/config", "h/sensor/object/config"));
        assert!(!filter_matches(
            "h/+/+/+/config",
            "h/sensor/node/object/config/x"
        ));
        assert!(filter_matches(
            "janitoo/n/availability/+",
            "janitoo/n/availability/"
        ));
        assert!(filter_matches("/dhcp/heartbeat/#", "/dhcp/heartbeat"));
        assert!(filter_matches(
            "/dhcp/heartbeat/#",
            "/dhcp/heartbeat/0001/0000"
        ));
        assert!(!filter_matches("/dhcp/heartbeat/#", "/dhcp/resolv"));
    }

    #[test]
    fn every_topic_family_round_trips() {
        for text in [
            "/dhcp/heartbeat/0220/0001",
            "/dhcp/heartbeat/",
            "/broadcast/request",
            "/broadcast/reply/9999/9990",
            "/nodes/0220/0000/request",
            "/nodes/9999/9990/reply",
            "/values/basic/1048/0002/load",
            "/values/command/1048/0002/reset",
            "/dhcp/resolv/request/",
            "/dhcp/resolv/reply/0002/0000",
            "/dhcp/resolv/broadcast/",
            "/dhcp/resolv/heartbeat",
            "/dhcp/resolv/hadd",
            "/dhcp/resolv/name",
            "/dhcp/resolv/cmd_classes",
            "/dhcp/lease/new",
            "/dhcp/lease/remove",
            "/reply/11111111-0000-0000-0000-000000000001",
            "/dhcp/leases/0010/0002",
        ] {
            assert_eq!(Topic::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn resolv_topics_without_trailing_slash_are_accepted() {
        assert_eq!(
            Topic::parse("/dhcp/resolv/request").unwrap(),
            Topic::ResolvRequest
        );
        assert_eq!(
            Topic::parse("/dhcp/resolv/broadcast").unwrap(),
            Topic::ResolvBroadcast
        );
    }

    #[test]
    fn unknown_topics_are_typed_errors() {
        for text in [
            "",
            "/",
            "values/user/0220/0001/t",
            "/dhcp/lease/ack",
            "/jmi/x",
            "/nodes/0220/0001",
        ] {
            assert!(
                matches!(Topic::parse(text), Err(ProtocolError::UnknownTopic { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_variable_parts_are_named() {
        let err = Topic::parse("/values/weird/0220/0001/t").unwrap_err();
        assert!(err.to_string().contains("unknown genre"), "{err}");
        let err = Topic::parse("/nodes/02x0/0001/request").unwrap_err();
        assert!(matches!(err, ProtocolError::InvalidTopic { .. }), "{err}");
        let err = Topic::parse("/values/user/0220/0001/").unwrap_err();
        assert!(err.to_string().contains("value uuid"), "{err}");
    }
}
