//! The bridge carrying out what the inbound classifier says of each publication received.

use actix::prelude::*;
use janitoo_config::clock::wall_clock_ms;
use janitoo_protocol::{Message as Wire, Status};
use tokio::time::Instant;
use tracing::debug;

use super::connection::{Received, ReceivedInOrder};
use super::inbound::{Ignored, Publication, Verdict};
use super::outbound::Lanes;
use super::MqttBridge;
use crate::messages::{HandleRequest, Observed, RawObserved, Via};
use crate::metrics::ActorKind;

impl MqttBridge {
    /// Counts a publication not acted on, under `why`.
    fn count(&self, why: Ignored, topic: &str) {
        let counter = match why {
            Ignored::Retained => &self.metrics.retained,
            Ignored::OffProtocol | Ignored::Unreadable => &self.metrics.decode_errors,
            Ignored::Oversize => &self.metrics.oversize,
            Ignored::NotBelieved(_) => &self.metrics.control_refused,
            Ignored::Unrouted => &self.metrics.unrouted,
            Ignored::Shed => &self.metrics.shed,
            Ignored::Unobserved => return,
        };
        counter.increment();
        debug!(topic, ?why, "received message not acted on");
    }

    /// Classifies a received publication and carries the verdict out; with `wait`, the
    /// deliveries to the observers, to await.
    pub(super) fn route(&mut self, received: Received, wait: bool) -> Vec<RequestToObserver> {
        self.metrics.received.increment();
        self.heard_own(&received.topic, received.retain);
        let congested = self.lanes.as_ref().is_some_and(Lanes::congested);
        let publication = Publication {
            topic: &received.topic,
            payload: &received.payload,
            retain: received.retain,
            signed: received.signed,
        };
        let verdict =
            self.inbound
                .classify(publication, Instant::now(), wall_clock_ms(), congested);
        let mut deliveries = Vec::new();
        self.carry_out(verdict, &received, wait, &mut deliveries);
        deliveries
    }

    fn carry_out(
        &self,
        verdict: Verdict,
        received: &Received,
        wait: bool,
        deliveries: &mut Vec<RequestToObserver>,
    ) {
        match verdict {
            Verdict::Ignore(why) => self.count(why, &received.topic),
            Verdict::Answer { why, topic, reply } => {
                self.count(why, &received.topic);
                self.send(&topic, &Wire::ValueReply(reply));
            }
            Verdict::Serve { requests, then } => {
                for to_bus in requests {
                    let Some(bus) = self.buses.get(&to_bus.ctrl) else {
                        continue;
                    };
                    let span = request_span(to_bus.via, &to_bus.request);
                    debug!(parent: &span, "admitted");
                    self.metrics.sent(ActorKind::Bus);
                    bus.do_send(HandleRequest {
                        via: to_bus.via,
                        request: to_bus.request,
                        ticket: to_bus.ticket,
                        span,
                    });
                }
                if let Some(then) = then {
                    self.carry_out(*then, received, wait, deliveries);
                }
            }
            Verdict::Answered {
                target,
                request,
                value,
            } => {
                self.metrics.requests.increment();
                let span = request_span(Via::Node(target), &request);
                debug!(parent: &span, status = Status::OK.0, "answered from the value cache");
                for (topic, message) in crate::answer::publications(target, &request, Ok(value)) {
                    self.send(&topic, &message);
                }
            }
            Verdict::Observe { topic, message } => {
                for observer in &self.observers {
                    self.metrics.sent(observer.kind);
                    let observed = Observed {
                        topic: topic.clone(),
                        message: message.clone(),
                    };
                    if wait {
                        deliveries.push(observer.messages.send(observed));
                    } else {
                        observer.messages.do_send(observed);
                    }
                }
            }
            Verdict::Raw(observers) => {
                for at in observers {
                    self.metrics.sent(ActorKind::Supervisor);
                    self.raw_observers[at].do_send(RawObserved {
                        topic: received.topic.clone(),
                        payload: received.payload.clone(),
                        unsent: false,
                    });
                }
            }
        }
    }
}

/// The span that follows a request from its admission to its answer.
fn request_span(via: Via, request: &janitoo_protocol::Request) -> tracing::Span {
    let hadd = match via {
        Via::Node(hadd) => request.hadd.unwrap_or(hadd).to_string(),
        Via::Broadcast => "broadcast".to_owned(),
    };
    tracing::info_span!(
        "request",
        %hadd,
        uuid = %request.uuid,
        request_id = request.request_id.as_deref().unwrap_or_default(),
        op = %request.op,
    )
}

/// A delivery to an observer, awaited by an in-order publication.
type RequestToObserver = actix::dev::RecipientRequest<Observed>;

impl Handler<ReceivedInOrder> for MqttBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: ReceivedInOrder, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let deliveries = self.route(msg.0, true);
        Box::pin(async move {
            for delivery in deliveries {
                let _ = delivery.await;
            }
        })
    }
}
