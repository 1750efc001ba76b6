//! `WebHub`: the web manager's actor. It observes the network through the controller's bridge,
//! keeps the [`WebModel`], pushes its events to open pages, and sends the sets they make.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use janitoo_actors::messages::{ConnectionChanged, Observe, Observed, Publish};
use janitoo_actors::{ActorKind, Metrics};
use janitoo_protocol::topic::filters;
use janitoo_protocol::{Data, Genre, Hadd, InfoKind, Message as Wire, Request, Topic};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::debug;

use crate::model::WebModel;

/// The whole model, as the `snapshot` event's JSON text.
#[derive(Message)]
#[rtype(result = "String")]
pub struct GetSnapshot;

/// A set made from a page.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SetFromPage {
    /// The node.
    pub hadd: Hadd,
    /// The value.
    pub uuid: String,
    /// Its genre.
    pub genre: Genre,
    /// The instance.
    pub index: u32,
    /// The new data.
    pub data: Data,
    /// The page's id for the reply.
    pub request_id: String,
}

/// The web manager's view of the network.
pub struct WebHub {
    model: WebModel,
    hadd: Hadd,
    publisher: Recipient<Publish>,
    observe: Recipient<Observe>,
    updates: broadcast::Sender<Arc<str>>,
    asked_at: Option<Instant>,
    metrics: Arc<Metrics>,
}

impl WebHub {
    /// A hub answering to `hadd`, observing through `observe`, publishing through `publisher`,
    /// pushing events to `updates`; `keyed`: whether the process has the network's key.
    pub fn new(
        hadd: Hadd,
        keyed: bool,
        publisher: Recipient<Publish>,
        observe: Recipient<Observe>,
        updates: broadcast::Sender<Arc<str>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        WebHub {
            model: WebModel::new(keyed),
            hadd,
            publisher,
            observe,
            updates,
            asked_at: None,
            metrics,
        }
    }

    fn publish(&self, topic: Topic, message: Wire) {
        self.metrics.sent(ActorKind::Bridge);
        self.publisher.do_send(Publish { topic, message });
    }

    /// Asks every controller for its nodes and values, at most every 5 s.
    fn discover(&mut self) {
        if self
            .asked_at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        self.asked_at = Some(Instant::now());
        for kind in [
            InfoKind::Nodes,
            InfoKind::Users,
            InfoKind::Basics,
            InfoKind::Configs,
            InfoKind::Systems,
            InfoKind::Commands,
        ] {
            self.publish(
                Topic::BroadcastRequest,
                Wire::Request(Request::info(kind, self.hadd)),
            );
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl Actor for WebHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.metrics.sent(ActorKind::Bridge);
        self.observe.do_send(Observe {
            filters: vec![
                filters::HEARTBEATS.into(),
                filters::RESOLV_HEARTBEAT.into(),
                filters::VALUES.into(),
                filters::BROADCAST_REPLIES.into(),
                filters::LEASE_RECORDS.into(),
                filters::replies_to(self.hadd),
            ],
            observer: ctx.address().recipient(),
            connection: ctx.address().recipient(),
            kind: ActorKind::Web,
        });
        // Discovery again now and then: nodes that came while nobody asked.
        ctx.run_interval(Duration::from_secs(60), |act, _ctx| act.discover());
    }
}

impl Handler<Observed> for WebHub {
    type Result = ();

    fn handle(&mut self, observed: Observed, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Web);
        if let Topic::Heartbeat(hadd) = observed.topic {
            if hadd.is_controller() && !self.model.knows_controller(hadd.ctrl) {
                self.discover();
            }
        }
        for event in self
            .model
            .apply(&observed.topic, &observed.message, unix_ms())
        {
            // No page open is not an error.
            let _ = self.updates.send(Arc::from(event.to_string()));
        }
    }
}

impl Handler<ConnectionChanged> for WebHub {
    type Result = ();

    fn handle(&mut self, change: ConnectionChanged, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Web);
        if change.connected {
            self.asked_at = None;
            self.discover();
        }
    }
}

impl Handler<GetSnapshot> for WebHub {
    type Result = String;

    fn handle(&mut self, _msg: GetSnapshot, _ctx: &mut Context<Self>) -> String {
        let _handling = self.metrics.handling(ActorKind::Web);
        self.model.snapshot().to_string()
    }
}

impl Handler<SetFromPage> for WebHub {
    type Result = ();

    fn handle(&mut self, set: SetFromPage, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Web);
        debug!(hadd = %set.hadd, uuid = %set.uuid, "set from a page");
        let class = self
            .model
            .request_class(set.hadd, set.genre, &set.uuid, set.index);
        self.model.set_sent(
            set.hadd,
            &set.uuid,
            set.index,
            &set.request_id,
            set.data.clone(),
        );
        let mut request = Request::set(set.hadd, set.uuid, set.genre, class, set.data);
        request.index = Some(set.index);
        request.reply_hadd = Some(self.hadd);
        request.request_id = Some(set.request_id);
        self.publish(Topic::NodeRequest(set.hadd), Wire::Request(request));
    }
}
