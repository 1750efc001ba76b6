//! `NetworkSupervisor`: a network controller (primary or secondary), as an actor.
//!
//! Every decision is the sans-IO [`NetworkCore`] of `janitoo-protocol` (election, liveness,
//! fencing, the map): this actor only reads the clock, feeds the core what the bridge hears,
//! its connection changes and a tick every tenth of an interval, and carries out the commands
//! it returns: publish, count, set a gauge, log. The deterministic simulation of
//! `protocol/tests/election_simulation.rs` drives the same core.
//!
//! Time is `tokio::time::Instant`, so that a test can run the actor on paused time.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use janitoo_protocol::election::{ElectionAction, ElectionConfig, Rank, Standing};
use janitoo_protocol::homeassistant::DiscoverySettings;
use janitoo_protocol::liveness::LivenessConfig;
use janitoo_protocol::network_core::{
    Command, Connection, CoreSetup, Counter, Gauge, NetworkCore, Note,
};
use janitoo_protocol::{Hadd, NodeState, Topic};
use tokio::time::Instant;
use tracing::{debug, debug_span, info, info_span, warn};

use crate::lease_store::{self, LeaseStore};
use crate::messages::{
    ConnectionChanged, Observe, ObserveRaw, Observed, Publish, PublishRecord, PublishRetained,
    RawObserved, Resubscribe,
};
use crate::metrics::{ActorKind, Metrics};
use crate::refusal_log::{RefusalKind, RefusalLog};

/// What a network controller is.
#[derive(Debug, Clone)]
pub struct SupervisorSetup {
    /// Its address (`cccc/0000`).
    pub hadd: Hadd,
    /// Its rank in the election.
    pub rank: Rank,
    /// Election timing.
    pub election: ElectionConfig,
    /// Liveness timing.
    pub liveness: LivenessConfig,
    /// Home Assistant's discovery, published while primary (`[homeassistant]`).
    pub home_assistant: Option<DiscoverySettings>,
    /// Where the lease table is kept (`[network] state_dir`); `None`: in memory only.
    pub state_dir: Option<std::path::PathBuf>,
}

/// Where a network controller's messages go: the bridge, as recipients.
pub struct SupervisorLinks {
    /// Protocol messages.
    pub publisher: Recipient<Publish>,
    /// Subscriptions to protocol topics.
    pub observe: Recipient<Observe>,
    /// Retained publications (Home Assistant's discovery).
    pub retained: Recipient<PublishRetained>,
    /// Subscriptions to topics outside the protocol (Home Assistant's).
    pub observe_raw: Recipient<ObserveRaw>,
    /// Subscriptions made again, for their retained messages.
    pub resubscribe: Recipient<Resubscribe>,
    /// Retained protocol messages (the lease records).
    pub records: Recipient<PublishRecord>,
}

/// A network controller.
pub struct NetworkSupervisor {
    core: NetworkCore,
    publisher: Recipient<Publish>,
    observe: Recipient<Observe>,
    retained: Recipient<PublishRetained>,
    observe_raw: Recipient<ObserveRaw>,
    resubscribe: Recipient<Resubscribe>,
    records: Recipient<PublishRecord>,
    /// The lease table's writer, when it is kept in a state folder.
    store: Option<LeaseStore>,
    /// Records were applied since the table was last stored.
    leases_dirty: bool,
    metrics: Arc<Metrics>,
    origin: Instant,
    refusals: RefusalLog,
}

impl NetworkSupervisor {
    /// A network controller talking through the bridge behind `links`.
    pub fn new(setup: SupervisorSetup, links: SupervisorLinks, metrics: Arc<Metrics>) -> Self {
        let core_setup = CoreSetup {
            hadd: setup.hadd,
            rank: setup.rank,
            election: setup.election,
            liveness: setup.liveness,
        };
        let origin_ms = i64::try_from(janitoo_config::clock::wall_clock_ms()).unwrap_or(0);
        let mut core = NetworkCore::new(core_setup, Duration::ZERO).with_wall_clock(origin_ms);
        if let Some(settings) = setup.home_assistant {
            core = core.with_home_assistant(settings);
        }
        if let Some(dir) = &setup.state_dir {
            core = core.with_leases(lease_store::load(dir));
        }
        let store = setup
            .state_dir
            .map(|dir| LeaseStore::start(dir, links.publisher.clone()));
        NetworkSupervisor {
            core,
            publisher: links.publisher,
            observe: links.observe,
            retained: links.retained,
            observe_raw: links.observe_raw,
            resubscribe: links.resubscribe,
            records: links.records,
            store,
            leases_dirty: false,
            metrics,
            origin: Instant::now(),
            refusals: RefusalLog::default(),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn carry_out(&mut self, commands: Vec<Command>) {
        // The answers to requests that changed the lease table wait until it is stored.
        let stored = self.store.is_some()
            && commands
                .iter()
                .any(|command| matches!(command, Command::PublishRetained { .. }));
        let mut after_store = Vec::new();
        for command in commands {
            match command {
                Command::Publish {
                    topic: topic @ Topic::ReplyByUuid(_),
                    message,
                } if stored => after_store.push(Publish { topic, message }),
                Command::Publish { topic, message } => {
                    self.metrics.sent(ActorKind::Bridge);
                    self.publisher.do_send(Publish { topic, message });
                }
                Command::Set(Gauge::Primary(primary)) => self.metrics.primary.set(primary.into()),
                Command::Set(Gauge::Epoch(epoch)) => self.metrics.epoch.set(epoch),
                Command::Set(Gauge::NodesByState(counts)) => {
                    self.metrics.nodes_by_state.set(counts)
                }
                Command::Count(Counter::Dispatched) => self.metrics.dispatched.increment(),
                Command::Count(Counter::Fenced) => self.metrics.fenced.increment(),
                Command::Count(Counter::Forged) => self.metrics.forged.increment(),
                Command::Count(Counter::Crowded) => self.metrics.nodes_refused.increment(),
                Command::Count(Counter::ValueDropped) => self.metrics.values_dropped.increment(),
                Command::Count(Counter::ResolvCoalesced) => {
                    self.metrics.resolv_coalesced.increment()
                }
                Command::Count(Counter::OfflineRefuted) => {
                    self.metrics.offlines_refuted.increment()
                }
                Command::Count(Counter::Answered) => self.metrics.answered.increment(),
                Command::Count(Counter::AnswerRefused) => self.metrics.answers_refused.increment(),
                Command::Count(Counter::LeaseAnswered) => self.metrics.leases_answered.increment(),
                Command::Count(Counter::LeaseRefused) => self.metrics.leases_refused.increment(),
                Command::Count(Counter::LeaseWithdrawn) => {
                    self.metrics.leases_withdrawn.increment()
                }
                Command::Count(Counter::LeaseConflict) => self.metrics.lease_conflicts.increment(),
                Command::PublishRetained { topic, message } => {
                    self.metrics.lease_records.increment();
                    self.metrics.sent(ActorKind::Bridge);
                    self.records.do_send(PublishRecord { topic, message });
                }
                Command::Note(note) => self.log(note),
                Command::Resubscribe(filters) => {
                    self.metrics.sent(ActorKind::Bridge);
                    self.resubscribe.do_send(Resubscribe { filters });
                }
                Command::Retain(retain) => {
                    self.metrics.announced.increment();
                    self.metrics.sent(ActorKind::Bridge);
                    self.retained.do_send(PublishRetained {
                        topic: retain.topic,
                        payload: retain.payload,
                    });
                }
            }
        }
        if let (true, Some(store)) = (stored, &self.store) {
            store.store(lease_store::snapshot(self.core.leases()), after_store);
            self.leases_dirty = false;
        }
    }

    fn log(&mut self, note: Note) {
        let hadd = self.core.setup().hadd;
        let now = self.now();
        let action = match note {
            Note::Election(action) => action,
            Note::Paused { gap } => {
                let paused_ms = u64::try_from(gap.as_millis()).unwrap_or(u64::MAX);
                return warn!(%hadd, paused_ms, "this process did not run for a while");
            }
            Note::Disconnected => return debug!(%hadd, "network controller disconnected"),
            Note::Reconnected => return debug!(%hadd, "network controller connected"),
            Note::LeaseConflict {
                hadd: address,
                kept_epoch,
                displaced_epoch,
            } => {
                return warn!(
                    %hadd,
                    %address,
                    kept_epoch,
                    displaced_epoch,
                    "two primaries leased one address (apart, in a partition): the higher \
                     epoch's lease stands, the other node must ask again (repair)"
                )
            }
        };
        match action {
            ElectionAction::BecomePrimary { epoch } => {
                let nodes = self.core.view().map().nodes().count();
                info!(%hadd, epoch, nodes, "became primary")
            }
            ElectionAction::StepDown { primary, epoch } => {
                warn!(%hadd, %primary, epoch, "stepped down: a higher epoch is primary")
            }
            ElectionAction::Following { primary, epoch } => {
                info!(%hadd, %primary, epoch, "following a primary: asking for its map")
            }
            ElectionAction::PrimaryLost { primary } => {
                warn!(%hadd, primary = ?primary, "the primary is lost")
            }
            ElectionAction::Hold { epoch } => {
                info!(%hadd, epoch, "back: holding the primary's epoch until the network is heard")
            }
            ElectionAction::Resume { epoch } => {
                info!(%hadd, epoch, "nobody replaced this primary: acting again")
            }
            ElectionAction::OfflineDoubted { primary } => info!(
                %hadd,
                %primary,
                "the primary was said OFFLINE: believed unless it beats within 3/10 of an interval"
            ),
            ElectionAction::OfflineRefuted { primary } => {
                if let Some(unlogged) = self.refusals.admit(RefusalKind::OfflineRefuted, now) {
                    warn!(
                        %hadd,
                        %primary,
                        unlogged,
                        "the primary beat after an OFFLINE in its name: not believed (forged, or \
                         its connection was lost and back at once)"
                    )
                }
            }
            ElectionAction::Forged { from, epoch, why } => {
                if let Some(unlogged) = self.refusals.admit(RefusalKind::Forged, now) {
                    warn!(
                        %hadd,
                        %from,
                        epoch,
                        %why,
                        unlogged,
                        "refused a primary heartbeat with a forged epoch"
                    )
                }
            }
            ElectionAction::Unannounced { from, epoch } => {
                if let Some(unlogged) = self.refusals.admit(RefusalKind::Unannounced, now) {
                    warn!(
                        %hadd,
                        %from,
                        epoch,
                        unlogged,
                        "refused a claim from a controller that never announced its candidacy, \
                         while the primary is alive"
                    )
                }
            }
            other => debug!(%hadd, ?other, "election"),
        }
    }

    fn tick(&mut self) {
        let _core = debug_span!("core", event = "tick").entered();
        let commands = self.core.on_tick(self.now());
        self.carry_out(commands);
        if std::mem::take(&mut self.leases_dirty) {
            if let Some(store) = &self.store {
                store.store(lease_store::snapshot(self.core.leases()), Vec::new());
            }
        }
    }
}

impl Actor for NetworkSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let setup = *self.core.setup();
        self.metrics.sent(ActorKind::Bridge);
        self.observe.do_send(Observe {
            filters: self.core.filters(),
            observer: ctx.address().recipient(),
            connection: ctx.address().recipient(),
            kind: ActorKind::Supervisor,
        });
        let raw = self.core.home_assistant_filters();
        if !raw.is_empty() {
            self.metrics.sent(ActorKind::Bridge);
            self.observe_raw.do_send(ObserveRaw {
                filters: raw,
                observer: ctx.address().recipient(),
            });
        }
        let step = (setup.election.interval / 10).max(Duration::from_millis(20));
        ctx.run_interval(step, |act, _ctx| act.tick());
        info!(hadd = %setup.hadd, role = setup.rank.role.as_str(), priority = setup.rank.priority, "network controller started");
    }
}

impl Handler<Observed> for NetworkSupervisor {
    type Result = ();

    fn handle(&mut self, observed: Observed, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Supervisor);
        let _core = debug_span!("core", event = "message", topic = %observed.topic).entered();
        let commands = self
            .core
            .on_message(&observed.topic, &observed.message, self.now());
        // A record kept from another primary is stored at the next tick (many come at once).
        self.leases_dirty |= matches!(observed.topic, Topic::LeaseRecord(_));
        self.carry_out(commands);
    }
}

impl Handler<RawObserved> for NetworkSupervisor {
    type Result = ();

    fn handle(&mut self, observed: RawObserved, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Supervisor);
        if observed.unsent {
            debug!(topic = %observed.topic, "a Home Assistant config was not sent: it will be again");
        }
        // Unsent: the broker does not hold it, as if it had been cleared.
        let _core = info_span!("core", event = "home_assistant", topic = %observed.topic).entered();
        let commands = self
            .core
            .on_home_assistant(&observed.topic, &observed.payload, self.now());
        self.carry_out(commands);
    }
}

impl Handler<ConnectionChanged> for NetworkSupervisor {
    type Result = ();

    fn handle(&mut self, change: ConnectionChanged, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Supervisor);
        let connection = if change.connected {
            Connection::Up
        } else {
            Connection::Down
        };
        let _core =
            info_span!("core", event = "connection", connected = change.connected).entered();
        let commands = self.core.on_connection(connection, self.now());
        self.carry_out(commands);
    }
}

/// What a network controller knows, for views and tests.
#[derive(Message)]
#[rtype(result = "SupervisorView")]
pub struct GetSupervisorView;

/// A snapshot of a network controller.
#[derive(Debug, Clone)]
pub struct SupervisorView {
    /// Where it stands.
    pub standing: Standing,
    /// Nodes in its map.
    pub nodes: Vec<Hadd>,
    /// Liveness of every node heard, as it judges it.
    pub states: Vec<(Hadd, NodeState)>,
}

impl Handler<GetSupervisorView> for NetworkSupervisor {
    type Result = MessageResult<GetSupervisorView>;

    fn handle(&mut self, _msg: GetSupervisorView, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.metrics.handling(ActorKind::Supervisor);
        MessageResult(SupervisorView {
            standing: self.core.standing(),
            nodes: self
                .core
                .view()
                .map()
                .nodes()
                .map(|node| node.hadd)
                .collect(),
            states: self.core.liveness().states().collect(),
        })
    }
}
