//! The bridge's inbound path, as a pure classifier: given a publication the broker delivered,
//! the clock and the limits, what to do with it. Nothing here sends or counts; the bridge
//! carries the [`Verdict`] out.
//!
//! In order, a publication is:
//! 1. a raw observer's (Home Assistant's topics, retained or not), unless over the payload
//!    limit;
//! 2. ignored when retained (Janitoo never retains: a retained message is a stranger's,
//!    replayed at every subscription) or outside the protocol's topics;
//! 3. refused when over the payload limit (a request that says where, early enough, is
//!    answered 400 without being read whole);
//! 4. ignored when not believed on a keyed network (a control message unsigned, badly signed,
//!    stale or replayed);
//! 5. a request: for a bus of this process, read (400 when it cannot be, to whoever it names)
//!    and admitted (503 when too many are in flight; dropped when the outbound queue is
//!    congested), then served: a get of a stored value at once from the value cache, the rest
//!    by its bus; a broadcast, by every bus;
//! 6. anything else: decoded, for the observers (the network supervisor).

use std::collections::BTreeSet;

use janitoo_protocol::control_plane::{ControlPlane, Refusal as ControlRefusal};
use janitoo_protocol::request::{refusal_of_oversize, refusal_of_unreadable};
use janitoo_protocol::topic::{filter_matches, filters};
use janitoo_protocol::{
    Codec, Data, Hadd, Message, Operation, ProtocolError, Request, Status, Topic, ValueDescriptor,
    ValueReply,
};
use tokio::time::Instant;

use super::repeats::RecentSets;
use crate::admission::{Admission, Refusal, Ticket};
use crate::messages::Via;
use crate::metrics::Counter;
use crate::value_cache::ValueCache;

/// A publication as the broker delivered it.
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// Its topic, as received.
    pub topic: &'a str,
    /// Its payload.
    pub payload: &'a [u8],
    /// Whether the broker held it (retained).
    pub retain: bool,
    /// A request signed with the network's key (checked on the way in): admitted within the
    /// in-flight slots kept for operators.
    pub signed: bool,
}

/// When and how a request is admitted: now, whether it is signed, whether the outbound queue
/// is congested.
type Moment = (Instant, bool, bool);

/// Why a publication (or the rest of it) is not acted on: each has its counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// Retained: a stranger's, replayed at every subscription.
    Retained,
    /// On a topic outside the protocol.
    OffProtocol,
    /// Over `[limits] max_payload`.
    Oversize,
    /// A control message not believed on a keyed network.
    NotBelieved(ControlRefusal),
    /// A request for a bus this process does not serve.
    Unrouted,
    /// A payload that cannot be read.
    Unreadable,
    /// A request turned away: too many in flight, or the outbound queue congested.
    Shed,
    /// Nobody here listens to it.
    Unobserved,
}

/// A request admitted for one of this process's buses.
#[derive(Debug)]
pub struct ToBus {
    /// The bus, by the controller part of its addresses.
    pub ctrl: u16,
    /// How the request arrived.
    pub via: Via,
    /// The request.
    pub request: Request,
    /// Its admission, held until it is answered.
    pub ticket: Ticket,
}

/// What to do with a publication.
#[derive(Debug)]
pub enum Verdict {
    /// Nothing: counted under its reason.
    Ignore(Ignored),
    /// Answer `reply` on `topic` (400 or 503), counted under `why`.
    Answer {
        /// Why it is refused.
        why: Ignored,
        /// Where the answer goes.
        topic: Topic,
        /// The answer.
        reply: ValueReply,
    },
    /// Hand the requests to their buses; then, for a broadcast turned away part way, `then`.
    Serve {
        /// The requests admitted.
        requests: Vec<ToBus>,
        /// What became of the rest.
        then: Option<Box<Verdict>>,
    },
    /// A get of a stored value, answered at once from the value cache: reply with `value`.
    Answered {
        /// The node.
        target: Hadd,
        /// The get.
        request: Request,
        /// The value, as its actor would answer.
        value: ValueDescriptor,
    },
    /// Tell the observers.
    Observe {
        /// The topic.
        topic: Topic,
        /// The message, decoded (and believed).
        message: Message,
    },
    /// Hand the payload as it is to these raw observers (by the order they registered).
    Raw(Vec<usize>),
}

/// The classifier and what it knows: the limits, the network's key, the admission of requests,
/// and who listens to what.
pub struct Inbound {
    codec: Codec,
    max_payload: usize,
    control: Option<ControlPlane>,
    admission: Admission,
    buses: BTreeSet<u16>,
    raw: Vec<Vec<String>>,
    observed: bool,
    values: ValueCache,
    recent_sets: RecentSets,
    repeats: Option<Counter>,
}

impl Inbound {
    /// A classifier: payloads in `codec` (or the original's JSON) up to `max_payload` bytes,
    /// control messages checked against `control` on a keyed network, requests admitted by
    /// `admission`, gets of the stored values of `values` answered from there.
    pub fn new(
        codec: Codec,
        max_payload: usize,
        control: Option<ControlPlane>,
        admission: Admission,
        values: ValueCache,
    ) -> Self {
        Inbound {
            codec,
            max_payload,
            control,
            admission,
            buses: BTreeSet::new(),
            raw: Vec::new(),
            observed: false,
            values,
            recent_sets: RecentSets::default(),
            repeats: None,
        }
    }

    /// Counts in `counter` the sets delivered again and served as gets.
    pub fn count_repeats_in(&mut self, counter: Counter) {
        self.repeats = Some(counter);
    }

    /// The requests of the bus whose addresses are `ctrl/nnnn` are served here.
    pub fn serve(&mut self, ctrl: u16) {
        self.buses.insert(ctrl);
    }

    /// Somebody observes the protocol's messages that are not requests for a bus.
    pub fn observe(&mut self) {
        self.observed = true;
    }

    /// A raw observer of `filters`: its index in [`Verdict::Raw`].
    pub fn observe_raw(&mut self, filters: Vec<String>) -> usize {
        self.raw.push(filters);
        self.raw.len() - 1
    }

    /// What to do with `publication` at `now` (`wall_ms`: the wall clock, for signatures);
    /// `congested`: whether the outbound queue is past its high-water mark.
    pub fn classify(
        &mut self,
        publication: Publication<'_>,
        now: Instant,
        wall_ms: u64,
        congested: bool,
    ) -> Verdict {
        let Publication {
            topic,
            payload,
            retain,
            signed,
        } = publication;
        let raw: Vec<usize> = (0..self.raw.len())
            .filter(|at| {
                self.raw[*at]
                    .iter()
                    .any(|filter| filter_matches(filter, topic))
            })
            .collect();
        if !raw.is_empty() {
            return if payload.len() > self.max_payload {
                Verdict::Ignore(Ignored::Oversize)
            } else {
                Verdict::Raw(raw)
            };
        }
        if retain && !filter_matches(filters::LEASE_RECORDS, topic) {
            // Retained state of the protocol is the lease table's only.
            return Verdict::Ignore(Ignored::Retained);
        }
        let Ok(topic) = Topic::parse(topic) else {
            return Verdict::Ignore(Ignored::OffProtocol);
        };
        if payload.len() > self.max_payload {
            return self.refuse_oversize(topic, payload);
        }
        let checked = match self.believe(&topic, payload, wall_ms) {
            Ok(tree) => tree,
            Err(why) => return Verdict::Ignore(Ignored::NotBelieved(why)),
        };
        match topic {
            Topic::NodeRequest(hadd) if !self.buses.contains(&hadd.ctrl) => {
                Verdict::Ignore(Ignored::Unrouted)
            }
            Topic::NodeRequest(hadd) => match self.read_request(&topic, payload) {
                Ok(mut request) => {
                    if self.recent_sets.repeats(&request, now) {
                        // Delivered again (a QoS 1 redelivery across a switch of broker):
                        // answered as a get, never applied twice.
                        request.op = Operation::Get;
                        if let Some(repeats) = &self.repeats {
                            repeats.increment();
                        }
                    }
                    match self.cached(hadd, &request) {
                        Some((target, value)) => {
                            self.answer(&topic, target, request, value, (now, signed, congested))
                        }
                        None => {
                            let bus = vec![(hadd.ctrl, Via::Node(hadd))];
                            self.admit(&topic, bus, request, (now, signed, congested))
                        }
                    }
                }
                Err(refusal) => *refusal,
            },
            Topic::BroadcastRequest => match self.read_request(&topic, payload) {
                Ok(request) => {
                    let buses = self
                        .buses
                        .iter()
                        .map(|ctrl| (*ctrl, Via::Broadcast))
                        .collect();
                    self.admit(&topic, buses, request, (now, signed, congested))
                }
                Err(refusal) => *refusal,
            },
            _ if !self.observed => Verdict::Ignore(Ignored::Unobserved),
            topic => {
                let message = match checked {
                    Some(tree) => Message::from_tree(&topic, &tree),
                    None => self.decode(&topic, payload),
                };
                match message {
                    Ok(message) => Verdict::Observe { topic, message },
                    Err(_) => Verdict::Ignore(Ignored::Unreadable),
                }
            }
        }
    }

    /// A payload over the limit: a request that says where, in its head, is answered 400.
    fn refuse_oversize(&self, topic: Topic, payload: &[u8]) -> Verdict {
        let is_request = matches!(topic, Topic::NodeRequest(_) | Topic::BroadcastRequest);
        match refusal_of_oversize(payload, self.max_payload).filter(|_| is_request) {
            Some((reply_hadd, reply)) => Verdict::Answer {
                why: Ignored::Oversize,
                topic: reply_topic(&topic, reply_hadd),
                reply,
            },
            None => Verdict::Ignore(Ignored::Oversize),
        }
    }

    /// On a keyed network, whether a message on `topic` is believed: what only controllers
    /// may say must be signed with the network's key, fresh and new. The tree it checked, if
    /// any, so that the message is not decoded twice.
    fn believe(
        &mut self,
        topic: &Topic,
        payload: &[u8],
        wall_ms: u64,
    ) -> Result<Option<Data>, ControlRefusal> {
        let Some(control) = &mut self.control else {
            return Ok(None);
        };
        if !control.checks(topic) {
            return Ok(None);
        }
        let tree = decode_tree(self.codec, payload).ok();
        control.admit(topic, tree.as_ref(), wall_ms).map(|()| tree)
    }

    /// The request on `topic`; one that cannot be read is refused with a 400 naming what was
    /// wrong, when it says where to answer.
    fn read_request(&self, topic: &Topic, payload: &[u8]) -> Result<Request, Box<Verdict>> {
        let why = match self.decode(topic, payload) {
            Ok(Message::Request(request)) => return Ok(request),
            Ok(_) => return Err(Box::new(Verdict::Ignore(Ignored::Unreadable))),
            Err(why) => why,
        };
        // Read as far as it goes, to find where to answer (MessagePack's bin, say, does not
        // fit our data model, and is named in the answer).
        let refusal = self
            .codec
            .decode_tree_leniently(payload)
            .or_else(|_| Codec::Json.decode_tree(payload))
            .ok()
            .and_then(|tree| refusal_of_unreadable(&tree, &why));
        Err(Box::new(match refusal {
            Some((reply_hadd, reply)) => Verdict::Answer {
                why: Ignored::Unreadable,
                topic: reply_topic(topic, reply_hadd),
                reply,
            },
            None => Verdict::Ignore(Ignored::Unreadable),
        }))
    }

    /// The answer to `request` on `/nodes/<hadd>/request` from the value cache, if it is a
    /// get of a value kept there for a node of that bus: the node and the value.
    fn cached(&self, hadd: Hadd, request: &Request) -> Option<(Hadd, ValueDescriptor)> {
        let target = request.hadd.unwrap_or(hadd);
        if request.op != Operation::Get || target.ctrl != hadd.ctrl {
            return None;
        }
        let value = self.values.get(target, &request.uuid, request.instance())?;
        Some((target, value))
    }

    /// A get answered from the value cache, as far as it is admitted (it counts against the
    /// limits as any request; its ticket ends with the verdict).
    fn answer(
        &self,
        topic: &Topic,
        target: Hadd,
        request: Request,
        value: ValueDescriptor,
        (now, signed, congested): Moment,
    ) -> Verdict {
        match self
            .admission
            .admit(request.reply_hadd, signed, congested, now)
        {
            Ok(_ticket) => Verdict::Answered {
                target,
                request,
                value,
            },
            Err(refusal) => self.turned_away(topic, &request, refusal),
        }
    }

    /// Admits `request` for each of `buses` in turn; the first refusal ends it: 503 when it
    /// says where to answer and the outbound queue has room, dropped otherwise.
    fn admit(
        &self,
        topic: &Topic,
        buses: Vec<(u16, Via)>,
        request: Request,
        (now, signed, congested): Moment,
    ) -> Verdict {
        let mut requests = Vec::with_capacity(buses.len());
        for (ctrl, via) in buses {
            match self
                .admission
                .admit(request.reply_hadd, signed, congested, now)
            {
                Ok(ticket) => requests.push(ToBus {
                    ctrl,
                    via,
                    request: request.clone(),
                    ticket,
                }),
                Err(refusal) => {
                    let then = self.turned_away(topic, &request, refusal);
                    return Verdict::Serve {
                        requests,
                        then: Some(Box::new(then)),
                    };
                }
            }
        }
        Verdict::Serve {
            requests,
            then: None,
        }
    }

    /// A request turned away by the admission: 503 when busy and it says where to answer.
    fn turned_away(&self, topic: &Topic, request: &Request, refusal: Refusal) -> Verdict {
        let (Refusal::Busy, Some(reply_hadd)) = (refusal, request.reply_hadd) else {
            return Verdict::Ignore(Ignored::Shed);
        };
        let reply = ValueReply {
            value: ValueDescriptor {
                uuid: request.uuid.clone(),
                hadd: request.hadd,
                reply_hadd: Some(reply_hadd),
                ..ValueDescriptor::default()
            },
            status: Some(Status::SERVICE_UNAVAILABLE),
            error: Some(format!(
                "busy: {} requests in flight ([limits] max_in_flight); try again",
                self.admission.in_flight()
            )),
            request_id: request.request_id.clone(),
        };
        Verdict::Answer {
            why: Ignored::Shed,
            topic: reply_topic(topic, reply_hadd),
            reply,
        }
    }

    /// Decodes with our codec, falling back to JSON (the original's clients); when both fail,
    /// the error is our codec's unless the payload looks like JSON.
    fn decode(&self, topic: &Topic, payload: &[u8]) -> Result<Message, ProtocolError> {
        Message::decode(topic, payload, self.codec).or_else(|err| match self.codec {
            Codec::Json => Err(err),
            _ => Message::decode(topic, payload, Codec::Json).map_err(|json_err| {
                if looks_like_json(payload) {
                    json_err
                } else {
                    err
                }
            }),
        })
    }
}

/// The payload's tree, with `codec`, falling back to JSON.
fn decode_tree(codec: Codec, payload: &[u8]) -> Result<Data, ProtocolError> {
    codec
        .decode_tree(payload)
        .or_else(|_| Codec::Json.decode_tree(payload))
}

/// Whether `payload` starts as a JSON object does.
fn looks_like_json(payload: &[u8]) -> bool {
    payload.trim_ascii_start().first() == Some(&b'{')
}

/// Where a request on `topic` is answered.
pub fn reply_topic(topic: &Topic, reply_hadd: Hadd) -> Topic {
    match topic {
        Topic::BroadcastRequest => Topic::BroadcastReply(reply_hadd),
        _ => Topic::NodeReply(reply_hadd),
    }
}

#[cfg(test)]
mod tests;
