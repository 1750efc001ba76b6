//! The typed messages actors exchange. Commands are imperative (`SetValue`), events past tense
//! (`ValueChanged`), queries start with `Get` or `Describe`.

use std::collections::BTreeMap;

use actix::prelude::*;
use janitoo_protocol::{Data, Hadd, NodeInfo, Request, Status, ValueDescriptor, ValueInstances};
use tracing::Span;

/// A refused request: its status and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 400, 403, 404 or 500.
    pub status: Status,
    /// For people.
    pub error: String,
}

impl Failure {
    /// A refusal with `status`.
    pub fn new(status: Status, error: impl Into<String>) -> Self {
        Failure {
            status,
            error: error.into(),
        }
    }
}

/// Publish a message (bridge), which the bridge alone encodes, with the process's codec, and
/// checks against the size limit. QoS 0, not retained, as the original.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Publish {
    /// The topic.
    pub topic: janitoo_protocol::Topic,
    /// The message.
    pub message: janitoo_protocol::Message,
}

/// Publish a protocol message retained, signed on a keyed network (bridge): the lease
/// records every network controller keeps.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PublishRecord {
    /// The topic.
    pub topic: janitoo_protocol::Topic,
    /// The message.
    pub message: janitoo_protocol::Message,
}

/// A bus tells the bridge which requests are its own (bridge).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterBus {
    /// The controller part of the bus's addresses.
    pub ctrl: u16,
    /// Every node of the bus, for the OFFLINE heartbeats of a clean stop.
    pub hadds: Vec<Hadd>,
    /// Where its requests go.
    pub requests: Recipient<HandleRequest>,
    /// Where to ask it to announce itself after a (re)connection.
    pub announce: Recipient<Announce>,
}

/// Stop cleanly (bridge): OFFLINE for every node (but one another process beats on), then
/// disconnect. Answers when done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// How a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// On `/nodes/<hadd>/request`.
    Node(Hadd),
    /// On `/broadcast/request`.
    Broadcast,
}

/// Serve a request (bus).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct HandleRequest {
    /// How it arrived.
    pub via: Via,
    /// The request.
    pub request: Request,
    /// Its admission: it counts as in flight until this is dropped, once it is answered.
    pub ticket: crate::admission::Ticket,
    /// Its `request` span, from its arrival to its answer.
    pub span: Span,
}

/// Publish heartbeats and values now, after a (re)connection (bus, node, value).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Announce;

/// Get or set one value of the node (node).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ValueDescriptor, Failure>")]
pub struct ApplyRequest {
    /// The request.
    pub request: Request,
    /// Its `request` span.
    pub span: Span,
}

impl ApplyRequest {
    /// `request`, in the current span.
    pub fn new(request: Request) -> Self {
        ApplyRequest {
            request,
            span: Span::current(),
        }
    }
}

/// Everything a node is, for discovery (node).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "NodeDescription")]
pub struct DescribeNode;

/// A node's info and its values.
#[derive(Debug, Clone)]
pub struct NodeDescription {
    /// Node info, with its state.
    pub info: NodeInfo,
    /// Its values, by uuid.
    pub values: BTreeMap<String, ValueInstances>,
}

/// Read one instance (value).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ValueDescriptor, Failure>")]
pub struct GetValue {
    /// The instance.
    pub index: u32,
    /// The `request` span it serves.
    pub span: Span,
}

/// Write one instance (value).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ValueDescriptor, Failure>")]
pub struct SetValue {
    /// The instance.
    pub index: u32,
    /// The data, not yet checked.
    pub data: Data,
    /// The `request` span it serves.
    pub span: Span,
}

/// Every instance as last known, without reading the hardware (value).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "ValueInstances")]
pub struct DescribeValue;

/// Change the publication period (value).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct SetPollDelay(pub f64);

/// A value's data changed through a set (node).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ValueChanged {
    /// The value.
    pub uuid: String,
    /// The instance.
    pub index: u32,
    /// The new data.
    pub data: Data,
}

/// A read of the component succeeded or failed (node), for the node's health.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ReadOutcome {
    /// The value.
    pub uuid: String,
    /// `None` on success, else why it failed.
    pub failure: Option<String>,
}

/// Be told of every decoded message on `filters` that is not a request for a bus (bridge).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Observe {
    /// Subscription filters to add.
    pub filters: Vec<String>,
    /// Where the messages go.
    pub observer: Recipient<Observed>,
    /// Where connection changes go.
    pub connection: Recipient<ConnectionChanged>,
    /// The observer's kind, for the metrics.
    pub kind: crate::metrics::ActorKind,
}

/// A decoded message the bridge received (observers).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Observed {
    /// Its topic.
    pub topic: janitoo_protocol::Topic,
    /// Its payload.
    pub message: janitoo_protocol::Message,
}

/// The broker connection came up or went down (observers).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct ConnectionChanged {
    /// Whether connected now.
    pub connected: bool,
}

/// Publish a payload as is, retained, at QoS 1 (bridge): Home Assistant's discovery configs
/// and availability. An empty payload clears the topic. When the outbound queue is full, it is
/// not sent and the raw observers are told ([`RawObserved::unsent`]).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PublishRetained {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Be told of every message on `filters`, undecoded, retained ones included (bridge): topics
/// outside the protocol (Home Assistant's).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ObserveRaw {
    /// Subscription filters to add.
    pub filters: Vec<String>,
    /// Where the messages go.
    pub observer: Recipient<RawObserved>,
}

/// A message on a raw observer's filters, or a retained publication of its that was not sent.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RawObserved {
    /// Its topic.
    pub topic: String,
    /// Its payload (at most the payload limit; empty when `unsent`).
    pub payload: Vec<u8>,
    /// A [`PublishRetained`] on this topic was dropped: the broker does not hold it.
    pub unsent: bool,
}

/// Subscribe to these filters again (bridge), for the broker to send their retained messages
/// again; nothing else follows (the buses do not announce themselves).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Resubscribe {
    /// The filters, already subscribed to.
    pub filters: Vec<String>,
}
