//! `NodeActor`: one node (a bus controller or a component): its info, its values, its
//! heartbeat timer and health, and the write-back of settings changed over the network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use janitoo_config::{NodeKey, ValueSettings};
use janitoo_protocol::node::builtin;
use janitoo_protocol::{
    data_as_f64, Capability, CommandClass, Data, Hadd, Heartbeat, Message as Wire, NodeInfo,
    NodeState, Operation, Status, Topic, ValueDescriptor, ValueType,
};
use tracing::{info, warn};

use crate::aggregate::BusReadings;
use crate::component::{Component, ComponentInfo, ValueSpec};
use crate::config_writer::SettingsWriter;
use crate::messages::{
    Announce, ApplyRequest, DescribeNode, DescribeValue, Failure, GetValue, NodeDescription,
    Publish, ReadOutcome, SetPollDelay, SetValue, ValueChanged,
};
use crate::metrics::{ActorKind, Metrics};
use crate::value_actor::{ValueActor, ValueLinks};
use crate::value_cache::ValueCache;

/// Everything a node is made of, from the configuration.
#[derive(Clone)]
pub struct NodeSetup {
    /// Its address.
    pub hadd: Hadd,
    /// Its uuid (`rpibasic` or `rpibasic__ambiance`).
    pub uuid: String,
    /// Where its settings live in the configuration file.
    pub key: NodeKey,
    /// The bus or component kind (`oid` in node info).
    pub oid: String,
    /// Product description.
    pub product: ComponentInfo,
    /// Name.
    pub name: String,
    /// Location.
    pub location: String,
    /// Heartbeat period, seconds.
    pub heartbeat: f64,
    /// Config timeout, seconds.
    pub config_timeout: f64,
    /// The component (`None` for a bus controller node).
    pub component: Option<Arc<dyn Component>>,
    /// Configured value data.
    pub settings: BTreeMap<String, ValueSettings>,
    /// The controller whose Last Will covers this process (told in a bus controller's node
    /// info as `will`, so that a primary marks every controller of a crashed process OFFLINE).
    pub will: Option<Hadd>,
    /// The latest readings of the node's bus, shared by its nodes.
    pub readings: BusReadings,
}

/// Where a node sends what it produces.
#[derive(Clone)]
pub struct NodeLinks {
    /// The bridge.
    pub publisher: Recipient<Publish>,
    /// The settings writer, when there is a file to write.
    pub persist: Option<SettingsWriter>,
    /// The longest string a value may be set to, unless its spec says otherwise.
    pub max_string: usize,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
    /// The process's stored values, which the bridge answers gets from.
    pub values: ValueCache,
}

/// One node.
pub struct NodeActor {
    setup: NodeSetup,
    links: NodeLinks,
    values: BTreeMap<String, Addr<ValueActor>>,
    polled: BTreeMap<String, String>,
    heartbeat_timer: Option<SpawnHandle>,
    failing_reads: BTreeMap<String, String>,
}

/// Who a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Every node's own (name, heartbeat...): set from the node's setup.
    Builtin,
    /// The node's, for its component (`<uuid>_poll`).
    Node,
    /// The component's.
    Component,
}

/// The values every node has (§4.5).
fn builtin_values() -> Vec<ValueSpec> {
    vec![
        ValueSpec::system(builtin::HEARTBEAT, ValueType::Int)
            .help("The heartbeat delay in seconds")
            .units("seconds")
            .range(1.0, 3000.0),
        ValueSpec::system(builtin::CONFIG_TIMEOUT, ValueType::Int)
            .help("The config timeout before applying configuration and rebooting")
            .units("seconds")
            .range(0.0, 3000.0),
        ValueSpec::system(builtin::HADD, ValueType::Hadd)
            .help("The Janitoo Home address (applied at restart)"),
        ValueSpec::config(builtin::NAME, ValueType::String).help("The name of the node"),
        ValueSpec::config(builtin::LOCATION, ValueType::String).help("The location of the node"),
    ]
}

impl NodeActor {
    /// A node; its value actors start with it, on the same arbiter.
    pub fn new(setup: NodeSetup, links: NodeLinks) -> Self {
        NodeActor {
            setup,
            links,
            values: BTreeMap::new(),
            polled: BTreeMap::new(),
            heartbeat_timer: None,
            failing_reads: BTreeMap::new(),
        }
    }

    fn builtin_data(&self, uuid: &str) -> Data {
        let setup = &self.setup;
        match uuid {
            builtin::HEARTBEAT => Data::from(setup.heartbeat),
            builtin::CONFIG_TIMEOUT => Data::from(setup.config_timeout),
            builtin::HADD => Data::from(setup.hadd.to_string()),
            builtin::NAME => Data::from(setup.name.as_str()),
            _ => Data::from(setup.location.as_str()),
        }
    }

    /// Every value spec of the node: built-ins, the component's, and a `<uuid>_poll` for each
    /// polled value (the node's own: the component is not asked about it).
    fn specs(&self) -> Vec<(ValueSpec, Owner)> {
        let mut specs: Vec<(ValueSpec, Owner)> = builtin_values()
            .into_iter()
            .map(|spec| (spec, Owner::Builtin))
            .collect();
        if let Some(component) = &self.setup.component {
            for spec in component.values() {
                if spec.poll_delay > 0.0 && !spec.poll_fixed {
                    specs.push((spec.poll_value(), Owner::Node));
                }
                specs.push((spec, Owner::Component));
            }
        }
        specs
    }

    /// Initial data by instance: the configured one, else the default.
    fn initial_instances(&self, spec: &ValueSpec, owner: Owner) -> BTreeMap<u32, Data> {
        let builtin = owner == Owner::Builtin;
        let configured = self.setup.settings.get(&spec.uuid);
        let mut instances: BTreeMap<u32, Data> = spec
            .instances
            .iter()
            .map(|index| {
                let data = match (builtin, configured.and_then(|c| c.get(index))) {
                    (true, _) => self.builtin_data(&spec.uuid),
                    (false, Some(data)) => data.clone(),
                    (false, None) => spec.default.clone(),
                };
                (*index, data)
            })
            .collect();
        if !builtin {
            for (index, data) in configured.into_iter().flatten() {
                instances.entry(*index).or_insert_with(|| data.clone());
            }
        }
        instances
    }

    fn start_values(&mut self, ctx: &mut Context<Self>) {
        let links = ValueLinks {
            publisher: self.links.publisher.clone(),
            changes: ctx.address().recipient(),
            reads: ctx.address().recipient(),
            metrics: self.links.metrics.clone(),
            readings: self.setup.readings.clone(),
            persist: self
                .links
                .persist
                .clone()
                .map(|writer| (writer, self.setup.key.clone())),
            max_string: self.links.max_string,
            cache: self.links.values.clone(),
        };
        let specs = self.specs();
        for (spec, owner) in specs {
            let instances = self.initial_instances(&spec, owner);
            let poll_delay = self.poll_delay_of(&spec);
            if spec.poll_delay > 0.0 {
                self.polled
                    .insert(format!("{}_poll", spec.uuid), spec.uuid.clone());
            }
            let component = match owner {
                Owner::Component => self.setup.component.clone(),
                Owner::Builtin | Owner::Node => None,
            };
            let actor = ValueActor::new(
                spec.clone(),
                self.setup.hadd,
                self.setup.uuid.clone(),
                component,
                instances,
                poll_delay,
                links.clone(),
            );
            let addr = Supervisor::start(move |_| actor);
            self.values.insert(spec.uuid, addr);
        }
    }

    /// The configured `<uuid>_poll`, else the spec's period.
    fn poll_delay_of(&self, spec: &ValueSpec) -> f64 {
        if spec.poll_delay <= 0.0 {
            return 0.0;
        }
        self.setup
            .settings
            .get(&format!("{}_poll", spec.uuid))
            .and_then(|instances| instances.get(&0))
            .and_then(data_as_f64)
            .unwrap_or(spec.poll_delay)
    }

    fn health(&self) -> NodeState {
        if self.failing_reads.is_empty() {
            NodeState::Online
        } else {
            NodeState::Failed
        }
    }

    fn beat(&self) {
        let heartbeat = Wire::Heartbeat(Heartbeat::own(self.setup.hadd, self.health()));
        self.links.metrics.sent(ActorKind::Bridge);
        self.links.publisher.do_send(Publish {
            topic: Topic::Heartbeat(self.setup.hadd),
            message: heartbeat,
        });
    }

    fn schedule_heartbeats(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.heartbeat_timer.take() {
            ctx.cancel_future(timer);
        }
        let period = Duration::from_secs_f64(self.setup.heartbeat.max(0.05));
        self.heartbeat_timer = Some(ctx.run_interval(period, |act, _ctx| act.beat()));
    }

    fn info(&self) -> NodeInfo {
        let setup = &self.setup;
        let mut info = NodeInfo::new(setup.hadd, setup.uuid.as_str());
        info.oid = setup.oid.clone();
        info.name = setup.name.clone();
        info.location = setup.location.clone();
        info.product_name = setup.product.product_name.clone();
        info.product_type = setup.product.product_type.clone();
        info.product_manufacturer = setup.product.product_manufacturer.clone();
        info.heartbeat = setup.heartbeat;
        info.config_timeout = setup.config_timeout;
        info.state = Some(self.health());
        let mut classes = Vec::new();
        if setup.component.is_none() {
            info.capabilities = vec![Capability::DYNAMIC_CONTROLLER];
            classes.push(CommandClass::CONTROLLER);
            if let Some(will) = setup.will {
                info.extra
                    .insert("will".into(), Data::from(will.to_string()));
            }
        }
        classes.push(CommandClass::CONFIGURATION);
        for (spec, _) in self.specs() {
            if !classes.contains(&spec.cmd_class) {
                classes.push(spec.cmd_class);
            }
        }
        info.cmd_classes = classes;
        info
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.values.is_empty() {
            self.start_values(ctx);
        }
        // The first heartbeat goes out when the bridge is subscribed (`Announce`), so that a
        // node is never seen before its requests can be served.
        self.schedule_heartbeats(ctx);
    }
}

impl Supervised for NodeActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.links
            .metrics
            .actor(ActorKind::Node)
            .restarts
            .increment();
        self.heartbeat_timer = None;
    }
}

impl Handler<ApplyRequest> for NodeActor {
    type Result = ResponseFuture<Result<ValueDescriptor, Failure>>;

    fn handle(
        &mut self,
        ApplyRequest { request, span }: ApplyRequest,
        _ctx: &mut Context<Self>,
    ) -> Self::Result {
        let _handling = self.links.metrics.handling(ActorKind::Node);
        let Some(value) = self.values.get(&request.uuid).cloned() else {
            let failure = Failure::new(
                Status::NOT_FOUND,
                format!("node {} has no value {:?}", self.setup.hadd, request.uuid),
            );
            return Box::pin(async move { Err(failure) });
        };
        let index = request.instance();
        self.links.metrics.sent(ActorKind::Value);
        Box::pin(async move {
            let answer = match request.op {
                Operation::Set => {
                    value
                        .send(SetValue {
                            index,
                            data: request.data,
                            span,
                        })
                        .await
                }
                _ => value.send(GetValue { index, span }).await,
            };
            answer.unwrap_or_else(|_| {
                Err(Failure::new(
                    Status::INTERNAL_ERROR,
                    "the value is restarting, try again",
                ))
            })
        })
    }
}

impl Handler<DescribeNode> for NodeActor {
    type Result = ResponseFuture<NodeDescription>;

    fn handle(&mut self, _msg: DescribeNode, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.links.metrics.handling(ActorKind::Node);
        let info = self.info();
        let values: Vec<(String, Addr<ValueActor>)> = self
            .values
            .iter()
            .map(|(uuid, addr)| (uuid.clone(), addr.clone()))
            .collect();
        let metrics = self.links.metrics.clone();
        Box::pin(async move {
            let mut described = BTreeMap::new();
            for (uuid, addr) in values {
                metrics.sent(ActorKind::Value);
                if let Ok(instances) = addr.send(DescribeValue).await {
                    described.insert(uuid, instances);
                }
            }
            NodeDescription {
                info,
                values: described,
            }
        })
    }
}

impl Handler<ValueChanged> for NodeActor {
    type Result = ();

    fn handle(&mut self, change: ValueChanged, ctx: &mut Context<Self>) {
        let _handling = self.links.metrics.handling(ActorKind::Node);
        match change.uuid.as_str() {
            builtin::HEARTBEAT => {
                if let Some(period) = data_as_f64(&change.data) {
                    info!(hadd = %self.setup.hadd, period, "heartbeat period changed");
                    self.setup.heartbeat = period;
                    self.schedule_heartbeats(ctx);
                    self.beat();
                }
            }
            builtin::CONFIG_TIMEOUT => {
                self.setup.config_timeout =
                    data_as_f64(&change.data).unwrap_or(self.setup.config_timeout)
            }
            builtin::NAME => self.setup.name = change.data.as_str().unwrap_or_default().to_owned(),
            builtin::LOCATION => {
                self.setup.location = change.data.as_str().unwrap_or_default().to_owned()
            }
            poll => {
                if let (Some(target), Some(delay)) =
                    (self.polled.get(poll), data_as_f64(&change.data))
                {
                    if let Some(value) = self.values.get(target) {
                        self.links.metrics.sent(ActorKind::Value);
                        value.do_send(SetPollDelay(delay));
                    }
                }
            }
        }
    }
}

impl Handler<ReadOutcome> for NodeActor {
    type Result = ();

    fn handle(&mut self, outcome: ReadOutcome, _ctx: &mut Context<Self>) {
        let _handling = self.links.metrics.handling(ActorKind::Node);
        let was = self.health();
        match outcome.failure {
            Some(why) => {
                self.failing_reads.insert(outcome.uuid, why);
            }
            None => {
                self.failing_reads.remove(&outcome.uuid);
            }
        }
        if self.health() != was {
            warn!(hadd = %self.setup.hadd, health = %self.health(), failing = ?self.failing_reads, "node health changed");
            self.beat();
        }
    }
}

impl Handler<Announce> for NodeActor {
    type Result = ();

    fn handle(&mut self, _msg: Announce, _ctx: &mut Context<Self>) {
        let _handling = self.links.metrics.handling(ActorKind::Node);
        self.beat();
        for value in self.values.values() {
            self.links.metrics.sent(ActorKind::Value);
            value.do_send(Announce);
        }
    }
}
