//! `BusActor`: one bus, on its own arbiter (thread). It owns the resource its components share,
//! starts the controller node `cccc/0000` and the component nodes on its arbiter, and serves
//! the requests addressed to them: discovery for the whole bus, get and set for one node.

use std::collections::BTreeMap;

use actix::prelude::*;
use janitoo_protocol::{
    DiscoveryData, DiscoveryReply, Hadd, InfoKind, Message as Wire, Operation, Request, Status,
    Topic, ValueDescriptor,
};
use tracing::{debug, Instrument as _};

use crate::messages::{
    Announce, ApplyRequest, DescribeNode, Failure, HandleRequest, NodeDescription, Publish,
    RegisterBus, Via,
};
use crate::metrics::ActorKind;
use crate::node_actor::{NodeActor, NodeLinks, NodeSetup};

/// A bus: its controller node and its components.
#[derive(Clone)]
pub struct BusSetup {
    /// The bus oid.
    pub oid: String,
    /// The controller node.
    pub controller: NodeSetup,
    /// The component nodes.
    pub components: Vec<NodeSetup>,
}

/// One bus.
pub struct BusActor {
    setup: BusSetup,
    links: NodeLinks,
    register: Recipient<RegisterBus>,
    nodes: BTreeMap<Hadd, Addr<NodeActor>>,
}

impl BusActor {
    /// A bus whose requests the bridge behind `register` will route to it.
    pub fn new(setup: BusSetup, links: NodeLinks, register: Recipient<RegisterBus>) -> Self {
        BusActor {
            setup,
            links,
            register,
            nodes: BTreeMap::new(),
        }
    }

    fn publish(&self, topic: Topic, message: Wire) {
        self.links.metrics.sent(ActorKind::Bridge);
        self.links.publisher.do_send(Publish { topic, message });
    }

    fn reply_topic(via: Via, reply_hadd: Hadd) -> Topic {
        match via {
            Via::Node(_) => Topic::NodeReply(reply_hadd),
            Via::Broadcast => Topic::BroadcastReply(reply_hadd),
        }
    }

    fn discover(&self, msg: HandleRequest, kind: InfoKind, ctx: &mut Context<Self>) {
        let HandleRequest {
            via,
            request,
            ticket,
            span,
        } = msg;
        let Some(reply_hadd) = request.reply_hadd else {
            debug!(uuid = %request.uuid, "discovery without reply_hadd: nobody to answer");
            return;
        };
        let nodes: Vec<Addr<NodeActor>> = self.nodes.values().cloned().collect();
        let metrics = self.links.metrics.clone();
        let describe = async move {
            let mut described = Vec::new();
            for node in nodes {
                metrics.sent(ActorKind::Node);
                if let Ok(description) = node.send(DescribeNode).await {
                    described.push(description);
                }
            }
            described
        };
        ctx.spawn(describe.into_actor(self).map(move |described, act, _ctx| {
            let _request = span.enter();
            let mut reply =
                DiscoveryReply::new(kind, Some(reply_hadd), discovery_data(kind, described));
            reply.request_id = request.request_id;
            reply.status = Some(Status::OK);
            act.publish(
                BusActor::reply_topic(via, reply_hadd),
                Wire::DiscoveryReply(reply),
            );
            debug!(status = Status::OK.0, "answered");
            drop(ticket);
        }));
    }

    fn get_or_set(&self, msg: HandleRequest, ctx: &mut Context<Self>) {
        let HandleRequest {
            via,
            request,
            ticket,
            span,
        } = msg;
        let Via::Node(topic_hadd) = via else {
            self.links.metrics.unrouted.increment();
            debug!(uuid = %request.uuid, "get or set on broadcast: ignored, as the original does");
            return;
        };
        let target = request.hadd.unwrap_or(topic_hadd);
        let node = self.nodes.get(&target).cloned();
        let ask = request.clone();
        let metrics = self.links.metrics.clone();
        let answer = async move {
            match node {
                Some(node) => {
                    metrics.sent(ActorKind::Node);
                    node.send(ApplyRequest::new(ask)).await.unwrap_or_else(|_| {
                        Err(Failure::new(
                            Status::INTERNAL_ERROR,
                            "the node is restarting, try again",
                        ))
                    })
                }
                None => Err(Failure::new(
                    Status::NOT_FOUND,
                    format!("no node {target} on this controller"),
                )),
            }
        };
        let answer = answer.instrument(span.clone());
        ctx.spawn(answer.into_actor(self).map(move |answer, act, _ctx| {
            let _request = span.enter();
            act.answer(target, request, answer);
            drop(ticket);
        }));
    }

    fn answer(&self, target: Hadd, request: Request, answer: Result<ValueDescriptor, Failure>) {
        match &answer {
            Ok(_) => debug!(status = Status::OK.0, "answered"),
            Err(failure) => {
                self.links.metrics.refused.increment();
                debug!(status = failure.status.0, error = failure.error, "answered");
            }
        }
        for (topic, message) in crate::answer::publications(target, &request, answer) {
            self.publish(topic, message);
        }
    }
}

/// The discovery answer of `kind` from the descriptions of the bus's nodes.
fn discovery_data(kind: InfoKind, described: Vec<NodeDescription>) -> DiscoveryData {
    match kind.genre() {
        None => DiscoveryData::Nodes(
            described
                .into_iter()
                .map(|d| (d.info.hadd, d.info))
                .collect(),
        ),
        Some(genre) => DiscoveryData::Values(
            described
                .into_iter()
                .map(|d| {
                    let values = d
                        .values
                        .into_iter()
                        .filter(|(_, instances)| {
                            instances.values().next().is_some_and(|v| v.genre == genre)
                        })
                        .collect::<BTreeMap<_, _>>();
                    (d.info.hadd, values)
                })
                .filter(|(_, values)| !values.is_empty())
                .collect(),
        ),
    }
}

impl Actor for BusActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let setups =
            std::iter::once(self.setup.controller.clone()).chain(self.setup.components.clone());
        for setup in setups {
            let hadd = setup.hadd;
            let node = NodeActor::new(setup, self.links.clone());
            self.nodes.insert(hadd, Supervisor::start(move |_| node));
        }
        self.links.metrics.sent(ActorKind::Bridge);
        self.register.do_send(RegisterBus {
            ctrl: self.setup.controller.hadd.ctrl,
            hadds: self.nodes.keys().copied().collect(),
            requests: ctx.address().recipient(),
            announce: ctx.address().recipient(),
        });
    }
}

impl Handler<HandleRequest> for BusActor {
    type Result = ();

    fn handle(&mut self, msg: HandleRequest, ctx: &mut Context<Self>) {
        let _handling = self.links.metrics.handling(ActorKind::Bus);
        let _request = msg.span.clone().entered();
        self.links.metrics.requests.increment();
        match (msg.request.op, msg.request.info_kind()) {
            (Operation::Info, Some(kind)) => self.discover(msg, kind, ctx),
            _ => self.get_or_set(msg, ctx),
        }
    }
}

impl Handler<Announce> for BusActor {
    type Result = ();

    fn handle(&mut self, _msg: Announce, _ctx: &mut Context<Self>) {
        let _handling = self.links.metrics.handling(ActorKind::Bus);
        for node in self.nodes.values() {
            self.links.metrics.sent(ActorKind::Node);
            node.do_send(Announce);
        }
    }
}
