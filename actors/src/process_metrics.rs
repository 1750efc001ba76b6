//! The process's metrics as system values of its controller node, so that any controller can
//! be inspected from anywhere on the network: published every 10 s on
//! `/values/system/<hadd>/<uuid>`, and readable with a plain get.
//!
//! The values are the metrics declared with a system value in [`crate::metrics`], plus these:
//!
//! | uuid | instances | what |
//! |---|---|---|
//! | `actor_handled`, `actor_backlog`, `actor_restarts` | one per actor kind | messages handled, waiting, restarts |
//! | `actor_latency_p50`, `actor_latency_p99` | one per actor kind | handler latency, µs (bucket bound) |
//! | `bridge_publishes_per_s` | 0 | publications per second since the previous read |
//! | `supervisor_nodes` | one per state | nodes of the map by state |
//! | `bridge_broker` | 0 | the broker in use, `host:port` (a string) |
//!
//! The actor kinds are, by instance: 0 bus, 1 node, 2 value, 3 bridge, 4 supervisor,
//! 5 config_writer, 6 web; the states: 0 ONLINE, 1 PENDING, 2 FAILED, 3 DEAD, 4 OFFLINE, 5 OTHER.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use janitoo_protocol::{CommandClass, Data, Genre, ValueType};
use tokio::time::Instant;

use crate::component::{Component, ComponentError, ComponentInfo, ValueSpec};
use crate::metrics::{ActorKind, ActorMeter, Metrics, NODE_STATES, SYSTEM_VALUES};

/// How often the metrics values are published, seconds.
pub const METRICS_PERIOD: f64 = 10.0;

/// A per-actor value: its uuid, its label, what it reads of each kind's meter.
type PerActor = (&'static str, &'static str, fn(&ActorMeter) -> u64);

/// The per-actor values.
const PER_ACTOR: [PerActor; 5] = [
    ("actor_handled", "messages handled", |meter| {
        meter.handled.get()
    }),
    ("actor_backlog", "backlog", ActorMeter::backlog),
    ("actor_latency_p50", "handler latency p50", |meter| {
        meter.latency.quantile(0.5).unwrap_or(0)
    }),
    ("actor_latency_p99", "handler latency p99", |meter| {
        meter.latency.quantile(0.99).unwrap_or(0)
    }),
    ("actor_restarts", "restarts", |meter| meter.restarts.get()),
];

/// The publication rate's value.
const PUBLISHES_PER_S: &str = "bridge_publishes_per_s";

/// The nodes by state's value.
const NODES_BY_STATE: &str = "supervisor_nodes";

/// The broker in use's value.
const BROKER_IN_USE: &str = "bridge_broker";

/// The metrics values of a controller node.
pub struct ProcessMetrics {
    metrics: Arc<Metrics>,
    last_published: Mutex<Option<(Instant, u64)>>,
}

impl ProcessMetrics {
    /// The values of `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        ProcessMetrics {
            metrics,
            last_published: Mutex::new(None),
        }
    }

    fn publishes_per_second(&self) -> f64 {
        let now = Instant::now();
        let published = self.metrics.published.get();
        let Ok(mut last) = self.last_published.lock() else {
            return 0.0;
        };
        let rate = match *last {
            Some((at, count)) if now > at => {
                published.saturating_sub(count) as f64 / (now - at).as_secs_f64()
            }
            _ => 0.0,
        };
        *last = Some((now, published));
        (rate * 10.0).round() / 10.0
    }
}

fn spec(uuid: &str, label: &str, help: &str, instances: usize) -> ValueSpec {
    let indexes: Vec<u32> = (0..instances as u32).collect();
    // System values, with the command class every system value of the original has.
    ValueSpec::sensor(uuid, ValueType::Int)
        .genre(Genre::System)
        .cmd_class(CommandClass::CONFIGURATION)
        .label(label)
        .help(help)
        .instances(&indexes)
        .poll_fixed(METRICS_PERIOD)
        .cheap_read()
}

fn no_instance(uuid: &str, index: u32) -> ComponentError {
    ComponentError::NoSuchValue(format!("{uuid} instance {index}"))
}

impl Component for ProcessMetrics {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Controller metrics")
    }

    fn values(&self) -> Vec<ValueSpec> {
        let per_actor =
            "instances: 0 bus, 1 node, 2 value, 3 bridge, 4 supervisor, 5 config_writer, 6 web";
        let mut specs: Vec<ValueSpec> = PER_ACTOR
            .iter()
            .map(|(uuid, label, _)| {
                let spec = spec(uuid, label, per_actor, ActorKind::ALL.len());
                if uuid.starts_with("actor_latency") {
                    spec.units("µs")
                } else {
                    spec
                }
            })
            .collect();
        specs.push(ValueSpec {
            value_type: ValueType::Decimal,
            ..spec(PUBLISHES_PER_S, "publications per second", "", 1)
        });
        specs.push(spec(
            NODES_BY_STATE,
            "nodes by state",
            "instances: 0 ONLINE, 1 PENDING, 2 FAILED, 3 DEAD, 4 OFFLINE, 5 OTHER",
            NODE_STATES.len(),
        ));
        specs.push(ValueSpec {
            value_type: ValueType::String,
            ..spec(
                BROKER_IN_USE,
                "broker in use",
                "host:port of the broker this process is connected to ([broker] addresses)",
                1,
            )
        });
        specs.extend(
            SYSTEM_VALUES
                .iter()
                .map(|value| spec(value.uuid, value.label, value.help, 1)),
        );
        specs
    }

    fn read(&self, uuid: &str, index: u32) -> Result<Data, ComponentError> {
        let metrics = &self.metrics;
        if let Some((_, _, read)) = PER_ACTOR.iter().find(|(name, _, _)| *name == uuid) {
            let kind = ActorKind::at(index).ok_or_else(|| no_instance(uuid, index))?;
            return Ok(Data::from(read(metrics.actor(kind))));
        }
        let number = match uuid {
            PUBLISHES_PER_S => return Ok(Data::from(self.publishes_per_second())),
            BROKER_IN_USE => return Ok(Data::from(metrics.broker_in_use.get())),
            NODES_BY_STATE => metrics
                .nodes_by_state
                .get(index as usize)
                .map(|gauge| gauge.get())
                .ok_or_else(|| no_instance(uuid, index))?,
            _ => {
                let value = SYSTEM_VALUES
                    .iter()
                    .find(|value| value.uuid == uuid)
                    .ok_or_else(|| ComponentError::NoSuchValue(uuid.to_owned()))?;
                (value.read)(metrics)
            }
        };
        Ok(Data::from(number))
    }
}

/// Several components on one node (a bus controller's aggregates and its metrics): each value
/// is read and applied by the component that declares it.
pub struct Composite {
    parts: Vec<Arc<dyn Component>>,
    /// Which part declares each value (specs are fixed once a component is built).
    owners: BTreeMap<String, usize>,
}

impl Composite {
    /// The components, the first one naming the node's product.
    pub fn new(parts: Vec<Arc<dyn Component>>) -> Self {
        let mut owners = BTreeMap::new();
        for (at, part) in parts.iter().enumerate() {
            for spec in part.values() {
                owners.entry(spec.uuid).or_insert(at);
            }
        }
        Composite { parts, owners }
    }

    fn owner(&self, uuid: &str) -> Result<&Arc<dyn Component>, ComponentError> {
        self.owners
            .get(uuid)
            .map(|at| &self.parts[*at])
            .ok_or_else(|| ComponentError::NoSuchValue(uuid.to_owned()))
    }
}

impl Component for Composite {
    fn info(&self) -> ComponentInfo {
        self.parts
            .first()
            .map(|part| part.info())
            .unwrap_or_else(|| ComponentInfo::software("Controller"))
    }

    fn values(&self) -> Vec<ValueSpec> {
        self.parts.iter().flat_map(|part| part.values()).collect()
    }

    fn read(&self, uuid: &str, index: u32) -> Result<Data, ComponentError> {
        self.owner(uuid)?.read(uuid, index)
    }

    fn apply(&self, uuid: &str, index: u32, data: &Data) -> Result<(), ComponentError> {
        self.owner(uuid)?.apply(uuid, index, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original's receivers expect every system value with CONFIGURATION (112).
    #[test]
    fn the_metrics_are_system_values_of_the_configuration_class() {
        let metrics = ProcessMetrics::new(Arc::new(Metrics::default()));
        for spec in metrics.values() {
            assert_eq!(
                (spec.genre, spec.cmd_class),
                (Genre::System, CommandClass::CONFIGURATION),
                "{}",
                spec.uuid
            );
        }
    }

    #[test]
    fn the_values_read_the_counters_by_instance() {
        let metrics = Arc::new(Metrics::default());
        metrics.sent(ActorKind::Value);
        metrics.sent(ActorKind::Value);
        drop(metrics.handling(ActorKind::Value));
        metrics.epoch.set(0x10002);
        metrics.nodes_by_state.set([0, 0, 3, 0, 0, 0]);
        let values = ProcessMetrics::new(metrics.clone());
        let value = ActorKind::Value.index() as u32;
        assert_eq!(values.read("actor_handled", value), Ok(Data::from(1)));
        assert_eq!(values.read("actor_backlog", value), Ok(Data::from(1)));
        assert_eq!(values.read("actor_backlog", 0), Ok(Data::from(0)));
        assert_eq!(values.read("supervisor_epoch", 0), Ok(Data::from(0x10002)));
        assert_eq!(values.read("supervisor_nodes", 2), Ok(Data::from(3)));
        assert!(matches!(
            values.read("actor_handled", 7),
            Err(ComponentError::NoSuchValue(_))
        ));
        let specs = values.values();
        assert!(specs.iter().all(|spec| spec.genre == Genre::System
            && spec.poll_fixed
            && spec.cheap_read
            && !spec.writable));
        assert_eq!(specs[0].instances.len(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn the_publication_rate_is_since_the_previous_read() {
        let metrics = Arc::new(Metrics::default());
        let values = ProcessMetrics::new(metrics.clone());
        let rate = |values: &ProcessMetrics| values.read(PUBLISHES_PER_S, 0).unwrap();
        assert_eq!(
            rate(&values),
            Data::from(0.0),
            "nothing to measure from yet"
        );
        for _ in 0..55 {
            metrics.published.increment();
        }
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        assert_eq!(rate(&values), Data::from(5.5));
        assert_eq!(rate(&values), Data::from(0.0), "no time since: no rate");
        metrics.published.increment();
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        assert_eq!(rate(&values), Data::from(0.3), "rounded to a tenth");
        let spec = values
            .values()
            .into_iter()
            .find(|spec| spec.uuid == PUBLISHES_PER_S)
            .unwrap();
        assert_eq!(spec.value_type, ValueType::Decimal);
    }

    /// Two parts of a node, each answering for its own values.
    struct Part(&'static str, f64);

    impl Component for Part {
        fn info(&self) -> ComponentInfo {
            ComponentInfo::software(self.0)
        }
        fn values(&self) -> Vec<ValueSpec> {
            vec![ValueSpec::config(self.0, ValueType::Decimal)]
        }
        fn read(&self, _uuid: &str, _index: u32) -> Result<Data, ComponentError> {
            Ok(Data::from(self.1))
        }
        fn apply(&self, _uuid: &str, _index: u32, data: &Data) -> Result<(), ComponentError> {
            (data == &Data::from(self.1))
                .then_some(())
                .ok_or_else(|| ComponentError::BadValue(self.0.to_owned()))
        }
    }

    #[test]
    fn a_composite_answers_each_value_by_the_part_that_declares_it() {
        let node = Composite::new(vec![
            Arc::new(Part("first", 1.0)),
            Arc::new(Part("second", 2.0)),
        ]);
        assert_eq!(node.info().product_name, "first");
        let uuids: Vec<String> = node.values().into_iter().map(|spec| spec.uuid).collect();
        assert_eq!(uuids, ["first", "second"]);
        assert_eq!(node.read("second", 0), Ok(Data::from(2.0)));
        assert_eq!(node.apply("second", 0, &Data::from(2.0)), Ok(()));
        assert!(
            node.apply("first", 0, &Data::from(2.0)).is_err(),
            "the first part's"
        );
        assert!(matches!(
            node.read("third", 0),
            Err(ComponentError::NoSuchValue(_))
        ));
        assert!(matches!(
            node.apply("third", 0, &Data::from(1.0)),
            Err(ComponentError::NoSuchValue(_))
        ));
    }

    #[test]
    fn every_value_declared_is_readable_on_each_instance_and_none_twice() {
        let values = ProcessMetrics::new(Arc::new(Metrics::default()));
        let specs = values.values();
        let mut uuids: Vec<&str> = specs.iter().map(|spec| spec.uuid.as_str()).collect();
        uuids.sort();
        uuids.dedup();
        assert_eq!(uuids.len(), specs.len(), "a value declared twice");
        for declared in SYSTEM_VALUES {
            assert!(
                uuids.contains(&declared.uuid),
                "{} has no value",
                declared.uuid
            );
        }
        for spec in &specs {
            for index in &spec.instances {
                assert!(
                    values.read(&spec.uuid, *index).is_ok(),
                    "{}[{index}]",
                    spec.uuid
                );
            }
            let past = spec.instances.len() as u32;
            assert!(values.read(&spec.uuid, past).is_err() || spec.instances.len() == 1);
        }
        assert!(matches!(
            values.read("no_such_metric", 0),
            Err(ComponentError::NoSuchValue(_))
        ));
    }
}
