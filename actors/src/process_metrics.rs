//! The process's metrics as system values of its controller node, so that any controller can
//! be inspected from anywhere on the network: published every 10 s on
//! `/values/system/<hadd>/<uuid>`, and readable with a plain get.
//!
//! | uuid | instances | what |
//! |---|---|---|
//! | `actor_handled` | one per actor kind | messages handled |
//! | `actor_backlog` | one per actor kind | messages sent and not handled yet |
//! | `actor_latency_p50`, `actor_latency_p99` | one per actor kind | handler latency, µs (bucket bound) |
//! | `actor_restarts` | one per actor kind | restarts after a panic |
//! | `bridge_queue_depth` | 0 | messages waiting in the outbound queues |
//! | `bridge_publishes_per_s` | 0 | publications per second since the previous read |
//! | `bridge_reconnects` | 0 | connection losses |
//! | `bridge_dropped` | 0 | publications dropped: the outbound queue was full |
//! | `requests_in_flight` | 0 | requests admitted and not answered yet, the real queued work (a get of it counts itself) |
//! | `requests_shed` | 0 | requests refused 503, or dropped, because too many were in flight |
//! | `mqtt_received` | 0 | messages received from the broker |
//! | `mqtt_retained_ignored` | 0 | retained messages ignored |
//! | `mqtt_oversize` | 0 | messages over `[limits] max_payload` |
//! | `settings_rewrites` | 0 | rewrites of the configuration file (each covers a batch of sets) |
//! | `settings_write_failures` | 0 | write-backs that failed (answered 500) |
//! | `supervisor_epoch` | 0 | the election epoch held or followed (0: none) |
//! | `supervisor_primary` | 0 | 1 on the primary |
//! | `supervisor_nodes` | one per state | nodes of the map by state |
//! | `supervisor_fenced` | 0 | messages of an older epoch, or not from the primary, ignored |
//! | `supervisor_forged` | 0 | messages with an epoch their sender could not have claimed |
//! | `control_refused` | 0 | control messages not believed on a keyed network |
//! | `supervisor_nodes_refused` | 0 | nodes heard beyond `[network] max_nodes`, refused |
//!
//! The actor kinds are, by instance: 0 bus, 1 node, 2 value, 3 bridge, 4 supervisor,
//! 5 config_writer, 6 web; the states: 0 ONLINE, 1 PENDING, 2 FAILED, 3 DEAD, 4 OFFLINE, 5 OTHER.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use janitoo_protocol::{CommandClass, Data, Genre, ValueType};

use crate::component::{Component, ComponentError, ComponentInfo, ValueSpec};
use crate::metrics::{ActorKind, Metrics, NODE_STATES};

/// How often the metrics values are published, seconds.
pub const METRICS_PERIOD: f64 = 10.0;

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

fn actor_kind(index: u32) -> Result<ActorKind, ComponentError> {
    ActorKind::ALL
        .get(index as usize)
        .copied()
        .ok_or_else(|| ComponentError::NoSuchValue(format!("actor instance {index}")))
}

impl Component for ProcessMetrics {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Controller metrics")
    }

    fn values(&self) -> Vec<ValueSpec> {
        let kinds = ActorKind::ALL.len();
        let per_actor =
            "instances: 0 bus, 1 node, 2 value, 3 bridge, 4 supervisor, 5 config_writer, 6 web";
        vec![
            spec("actor_handled", "messages handled", per_actor, kinds),
            spec("actor_backlog", "backlog", per_actor, kinds),
            spec("actor_latency_p50", "handler latency p50", per_actor, kinds).units("µs"),
            spec("actor_latency_p99", "handler latency p99", per_actor, kinds).units("µs"),
            spec("actor_restarts", "restarts", per_actor, kinds),
            spec(
                "bridge_queue_depth",
                "messages waiting in the outbound queues",
                "",
                1,
            ),
            ValueSpec {
                value_type: ValueType::Decimal,
                ..spec("bridge_publishes_per_s", "publications per second", "", 1)
            },
            spec("bridge_reconnects", "reconnections", "", 1),
            spec(
                "bridge_dropped",
                "publications dropped",
                "the outbound queue was full",
                1,
            ),
            spec(
                "requests_in_flight",
                "requests in flight",
                "admitted, not answered yet",
                1,
            ),
            spec(
                "requests_shed",
                "requests shed",
                "503 or dropped: too many in flight",
                1,
            ),
            spec("mqtt_received", "messages received", "", 1),
            spec("mqtt_retained_ignored", "retained messages ignored", "", 1),
            spec(
                "mqtt_oversize",
                "oversize messages",
                "over [limits] max_payload",
                1,
            ),
            spec(
                "settings_rewrites",
                "file rewrites",
                "one per batch of sets",
                1,
            ),
            spec(
                "settings_write_failures",
                "write-back failures",
                "answered 500",
                1,
            ),
            spec(
                "supervisor_epoch",
                "election epoch",
                "0: not a network controller",
                1,
            ),
            spec("supervisor_primary", "primary", "1 on the primary", 1),
            spec(
                "supervisor_nodes",
                "nodes by state",
                "instances: 0 ONLINE, 1 PENDING, 2 FAILED, 3 DEAD, 4 OFFLINE, 5 OTHER",
                NODE_STATES.len(),
            ),
            spec("supervisor_fenced", "fenced messages", "", 1),
            spec("supervisor_forged", "forged epochs refused", "", 1),
            spec(
                "supervisor_nodes_refused",
                "nodes refused",
                "beyond [network] max_nodes",
                1,
            ),
            spec(
                "control_refused",
                "control messages refused",
                "unsigned, bad signature, stale or replayed",
                1,
            ),
        ]
    }

    fn read(&self, uuid: &str, index: u32) -> Result<Data, ComponentError> {
        let metrics = &self.metrics;
        let number = match uuid {
            "actor_handled" => metrics.actor(actor_kind(index)?).handled.get(),
            "actor_backlog" => metrics.actor(actor_kind(index)?).backlog(),
            "actor_latency_p50" => metrics
                .actor(actor_kind(index)?)
                .latency
                .quantile(0.5)
                .unwrap_or(0),
            "actor_latency_p99" => metrics
                .actor(actor_kind(index)?)
                .latency
                .quantile(0.99)
                .unwrap_or(0),
            "actor_restarts" => metrics.actor(actor_kind(index)?).restarts.get(),
            "bridge_queue_depth" => metrics.queue_depth.get(),
            "bridge_publishes_per_s" => return Ok(Data::from(self.publishes_per_second())),
            "bridge_reconnects" => metrics.disconnections.get(),
            "bridge_dropped" => metrics.dropped.get(),
            "requests_in_flight" => metrics.in_flight.get(),
            "requests_shed" => metrics.shed.get(),
            "mqtt_received" => metrics.received.get(),
            "mqtt_retained_ignored" => metrics.retained.get(),
            "mqtt_oversize" => metrics.oversize.get(),
            "settings_rewrites" => metrics.settings_rewrites.get(),
            "settings_write_failures" => metrics.write_failures.get(),
            "supervisor_epoch" => metrics.epoch.get(),
            "supervisor_primary" => metrics.primary.get(),
            "supervisor_nodes" => metrics
                .nodes_by_state
                .get(index as usize)
                .map(|gauge| gauge.get())
                .ok_or_else(|| ComponentError::NoSuchValue(format!("{uuid} instance {index}")))?,
            "supervisor_fenced" => metrics.fenced.get(),
            "supervisor_forged" => metrics.forged.get(),
            "control_refused" => metrics.control_refused.get(),
            "supervisor_nodes_refused" => metrics.nodes_refused.get(),
            other => return Err(ComponentError::NoSuchValue(other.to_owned())),
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
        metrics.nodes_by_state[2].set(3);
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
}
