//! # janitoo-protocol
//!
//! The Janitoo wire protocol ("Z-Wave over MQTT"), without any I/O: home addresses, the topic
//! grammar, the value and node model, every message, and two codecs (the original's JSON and
//! MessagePack). Everything here is a pure function of its input, so the actors, the tools and
//! the tests share one definition of what is on the wire.
//!
//! Compatibility comes first: a payload of the original Python implementation decodes (the
//! traces in `shared/conformance/` are tested line by line), and what we encode is understood
//! by the original's clients. Our fixes are additions they ignore: `op`, `request_id`,
//! `status`, `error` (answers), `epoch` and `observer` (heartbeats sent on behalf of a node).
//!
//! ## Topics
//!
//! Every publication is QoS 0, not retained, in the original. `<hadd>` is `cccc/nnnn`.
//!
//! | Topic | [`Topic`] variant | Payload ([`Message`] variant) | From → to |
//! |---|---|---|---|
//! | `/dhcp/heartbeat/<hadd>` | `Heartbeat` | bare state word (`ONLINE`) or JSON (`Heartbeat`) | every node → network controllers |
//! | `/dhcp/heartbeat/` | `HeartbeatOnBehalf` | JSON `{add_ctrl, add_node, state, epoch?, observer?}` (`HeartbeatOnBehalf`) | primary → all, for silent nodes |
//! | `/broadcast/request` | `BroadcastRequest` | discovery request (`Request`) | anyone → every controller |
//! | `/broadcast/reply/<hadd>` | `BroadcastReply` | discovery answer (`DiscoveryReply`) | controllers → requester |
//! | `/nodes/<hadd>/request` | `NodeRequest` | discovery, get or set (`Request`) | anyone → the node's controller |
//! | `/nodes/<hadd>/reply` | `NodeReply` | `ValueReply` or `DiscoveryReply` | controller → requester |
//! | `/values/<genre>/<hadd>/<uuid>` | `Value` | value dict or `{"<index>": value dict}` (`Value`) | node → all (polls, after get/set) |
//! | `/dhcp/resolv/request/` | `ResolvRequest` | discovery request (`Request`) | secondary → primary |
//! | `/dhcp/resolv/reply/<hadd>` | `ResolvReply` | the primary's map, chunked (`DiscoveryReply`) | primary → secondary |
//! | `/dhcp/resolv/broadcast/` | `ResolvBroadcast` | map updates (`DiscoveryReply`) | primary → secondaries |
//! | `/dhcp/resolv/heartbeat` | `ResolvHeartbeat` | `{add_ctrl, add_node, state, epoch?}` (`ResolvHeartbeat`) | primary → secondaries |
//! | `/dhcp/resolv/hadd`, `name`, `cmd_classes` | `ResolvLookup` | `{rep_uuid, add_ctrl, add_node}` (`Lease`) | client → DHCP server |
//! | `/dhcp/lease/new`, `repair`, `lock`, `release`, `remove` | `Lease` | `{rep_uuid, add_ctrl, add_node, options?}` (`Lease`) | client → DHCP server |
//! | `/reply/<rep_uuid>` | `ReplyByUuid` | `{msg_status, msg_error?, rep_uuid, lease...}` (`LeaseReply`) | DHCP server → client |
//! | `/dhcp/leases/<hadd>` (ours, retained) | `LeaseRecord` | `{epoch, name, location, cmd_classes, state, confirmed, last_seen?}` or `{epoch, removed: true}` (`LeaseRecord`) | primary → every network controller |
//!
//! Subscription filters the controllers use are in [`topic::filters`].
//!
//! ## Example
//!
//! ```
//! use janitoo_protocol::{Codec, Hadd, Message, NodeState, Topic};
//!
//! let (topic, message) =
//!     Message::decode_on("/dhcp/heartbeat/0220/0001", b"ONLINE", Codec::Json).unwrap();
//! assert_eq!(topic, Topic::Heartbeat(Hadd::new(220, 1)));
//! let Message::Heartbeat(heartbeat) = &message else { panic!("not a heartbeat") };
//! assert_eq!(heartbeat.state, NodeState::Online);
//! assert_eq!(message.encode(Codec::Json), b"ONLINE");
//! ```
//!
//! ## Layout
//!
//! - [`hadd`]: addresses. [`topic`]: the grammar. [`model`], [`command_class`]: the constants.
//! - [`value`], [`node`]: value dicts and node dicts.
//! - [`request`], [`reply`], [`heartbeat`], [`lease`]: the messages; [`message`] picks one by
//!   topic. [`codec`]: JSON and MessagePack.
//! - [`validate`]: checking data written to a value. [`limits`]: what a client may send, by
//!   default. [`rate`]: work bounded to a burst, then a rate.
//! - The pure state machines of a network controller, each fed with an explicit `now`:
//!   [`liveness`] (missed heartbeat periods), [`election`] (primary, epochs) and
//!   [`network_map`] (the map and its resolv answers); [`fence`], the one definition of which
//!   primary heartbeats and heartbeats on behalf are believed; [`candidacy`], what a network
//!   controller announces; [`view`], the network as any listener knows it (the core, the web
//!   manager and `janitoo status` share it).
//! - [`network_core`]: every decision of a network controller, composed from the above; the
//!   actor that drives it only reads the clock and carries out its commands, and the
//!   deterministic simulation (`tests/election_simulation.rs`) drives the same core.
//!
//! The protocol itself is described in `shared/janitoo-protocol.md` beside the repository.

pub mod candidacy;
pub mod codec;
pub mod command_class;
pub mod control_plane;
pub mod duplicate;
pub mod election;
pub mod error;
pub mod fence;
mod fields;
pub mod hadd;
pub mod heartbeat;
pub mod homeassistant;
pub mod lease;
pub mod lease_client;
pub mod lease_table;
pub mod limits;
pub mod liveness;
pub mod message;
pub mod model;
pub mod network_core;
pub mod network_map;
pub mod node;
pub mod rate;
pub mod reply;
pub mod request;
pub mod topic;
pub mod validate;
pub mod value;
pub mod view;

pub use codec::Codec;
pub use command_class::{CommandClass, COMMAND_CLASSES};
pub use error::ProtocolError;
pub use fields::{string_to_bool, Data};
pub use hadd::{Hadd, HaddTarget};
pub use heartbeat::{Heartbeat, ResolvHeartbeat};
pub use lease::{HeldLease, LeasePart, LeaseRecord, LeaseReply, LeaseRequest, Timestamp};
pub use message::{split_trace_line, Message};
pub use model::{Capability, Genre, InfoKind, NetworkState, NodeState, ValueType};
pub use node::NodeInfo;
pub use reply::{DiscoveryData, DiscoveryReply, Status, ValueReply};
pub use request::{Operation, Request};
pub use topic::{LeaseOp, LookupKind, Topic};
pub use value::{data_as_f64, ValueDescriptor, ValueInstances, ValuePublication};
