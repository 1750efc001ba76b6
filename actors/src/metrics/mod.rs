//! Counters the actors keep, shared with whoever inspects the process: the Prometheus page,
//! the controller node's metrics values, `janitoo top`.
//!
//! Each metric is declared once, in the table of [`Metrics`] below: its field, its name and
//! help in the registry (`GET /metrics` is the registry encoded, nothing written by hand), and,
//! when it is also one of the controller node's system values, that value's uuid and label.
//! Counters are shown with `_total` added to their name. Every actor kind has an
//! [`ActorMeter`]: messages sent to it and handled by it (their difference is its backlog), a
//! histogram of its handlers' latency, its restarts. Counting is a few relaxed atomic adds per
//! message; [`Metrics::set_instrumented`] turns the per-message part off, to measure what it
//! costs.

mod actors;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use actors::{ActorFamily, ActorFigure};
pub use actors::{ActorKind, ActorMeter, ActorMeters, Histogram, LATENCY_BUCKETS_MICROS};

/// A monotonic counter of the registry.
#[derive(Debug, Clone, Default)]
pub struct Counter(prometheus_client::metrics::counter::Counter<u64, AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn increment(&self) {
        self.0.inc();
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A gauge of the registry.
#[derive(Debug, Clone, Default)]
pub struct Gauge(prometheus_client::metrics::gauge::Gauge<u64, AtomicU64>);

impl Gauge {
    /// Sets it.
    pub fn set(&self, value: u64) {
        self.0.set(value);
    }

    /// Adds one if it is below `limit`; whether it was.
    pub fn increment_below(&self, limit: u64) -> bool {
        self.0
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < limit).then_some(now + 1)
            })
            .is_ok()
    }

    /// Takes one (never below zero).
    pub fn decrement(&self) {
        let _ = self
            .0
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_sub(1)
            });
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl EncodeMetric for Counter {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

impl EncodeMetric for Gauge {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// The liveness states of [`Metrics::nodes_by_state`], in order; OTHER counts the start-up
/// states (BOOT, CONFIG, SYSTEM, INIT) and UNKNOWN.
pub const NODE_STATES: [&str; 6] = ["ONLINE", "PENDING", "FAILED", "DEAD", "OFFLINE", "OTHER"];

/// Nodes of the network map by state, one gauge per state (`{state="ONLINE"}`).
#[derive(Debug, Clone, Default)]
pub struct NodesByState(Arc<[Gauge; NODE_STATES.len()]>);

impl NodesByState {
    /// The gauge of the state at `index` of [`NODE_STATES`].
    pub fn get(&self, index: usize) -> Option<&Gauge> {
        self.0.get(index)
    }

    /// Sets every state's count, in the order of [`NODE_STATES`].
    pub fn set(&self, counts: [u64; NODE_STATES.len()]) {
        for (gauge, count) in self.0.iter().zip(counts) {
            gauge.set(count);
        }
    }
}

impl EncodeMetric for NodesByState {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (state, gauge) in NODE_STATES.iter().zip(self.0.iter()) {
            let labels = [("state", *state)];
            gauge.encode(encoder.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// A metric that is also a system value of the controller node: its uuid, its label, its help
/// (the registry's, which adds the final period) and how to read it.
pub struct SystemValue {
    /// The value's uuid (`bridge_dropped`).
    pub uuid: &'static str,
    /// Its label.
    pub label: &'static str,
    /// Its help: the metric's.
    pub help: &'static str,
    /// Its reading now.
    pub read: fn(&Metrics) -> u64,
}

/// Declares the process's single-sample metrics: each line is a field of [`Metrics`], its
/// kind, its name and help in the registry, and optionally (`system`) the system value that
/// shows it on the network.
macro_rules! declare_metrics {
    ($(
        $field:ident: $kind:ident = $name:literal, $help:literal $(, system($uuid:literal, $label:literal))?;
    )*) => {
        /// The process's metrics, each declared once (see the module's doc).
        // The helps name configuration keys (`[limits] max_payload`), not links.
        #[allow(rustdoc::broken_intra_doc_links)]
        #[derive(Debug)]
        pub struct Metrics {
            $(
                #[doc = concat!($help, ".")]
                #[doc = concat!("\n\n`", $name, "` in the registry", $(", system value `", $uuid, "`",)? ".")]
                pub $field: $kind,
            )*
            /// Nodes of the supervisor's map by liveness state, as [`NODE_STATES`] orders them
            /// (gauges, refreshed every 2 s; a network controller only).
            pub nodes_by_state: NodesByState,
            /// The address of the broker in use (system value `bridge_broker`).
            pub broker_in_use: BrokerInUse,
            actors: Arc<ActorMeters>,
            uninstrumented: AtomicBool,
            registry: Registry,
        }

        impl Metrics {
            /// Every metric at zero, registered.
            pub fn new() -> Self {
                let actors = Arc::new(ActorMeters::default());
                let mut registry = Registry::default();
                register_actor_families(&mut registry, &actors);
                $(
                    let $field = $kind::default();
                    registry.register($name, $help, $field.clone());
                )*
                let nodes_by_state = NodesByState::default();
                registry.register(
                    "janitoo_supervisor_nodes",
                    "Nodes of the network map by liveness state",
                    nodes_by_state.clone(),
                );
                Metrics {
                    $($field,)*
                    nodes_by_state,
                    broker_in_use: BrokerInUse::default(),
                    actors,
                    uninstrumented: AtomicBool::new(false),
                    registry,
                }
            }
        }

        /// The single-sample metrics that are system values too, in declaration order.
        pub const SYSTEM_VALUES: &[SystemValue] = &[
            $($(
                SystemValue {
                    uuid: $uuid,
                    label: $label,
                    help: $help,
                    read: |metrics| metrics.$field.get(),
                },
            )?)*
        ];
    };
}

declare_metrics! {
    received: Counter = "janitoo_mqtt_received", "Messages received from the broker",
        system("mqtt_received", "messages received");
    decode_errors: Counter = "janitoo_mqtt_decode_errors",
        "Received messages that could not be decoded";
    retained: Counter = "janitoo_mqtt_retained_ignored",
        "Retained messages ignored (Janitoo never retains)",
        system("mqtt_retained_ignored", "retained messages ignored");
    oversize: Counter = "janitoo_mqtt_oversize",
        "Messages over [limits] max_payload, received (ignored or answered 400) or not sent",
        system("mqtt_oversize", "oversize messages");
    discovery_over_budget: Counter = "janitoo_mqtt_discovery_over_budget",
        "Discovery and resolv requests dropped unread beyond their budget (50, then 20 a second)",
        system("mqtt_discovery_over_budget", "discovery requests over budget");
    leases_over_budget: Counter = "janitoo_mqtt_leases_over_budget",
        "Lease requests and look-ups dropped unread beyond their budget (40, then 10 a second)",
        system("mqtt_leases_over_budget", "lease requests over budget");
    duplicate_addresses: Counter = "janitoo_duplicate_addresses",
        "Beats heard on an address of this process from another process (three not ours within 120 s, and each one after): two nodes share an address",
        system("duplicate_addresses", "beats of another process on our addresses");
    requests_over_budget: Counter = "janitoo_mqtt_requests_over_budget",
        "Requests to nodes dropped unread beyond [limits] max_requests_per_second",
        system("mqtt_requests_over_budget", "requests over budget");
    signed_requests: Counter = "janitoo_mqtt_signed_requests",
        "Requests signed with the network's key, read from their own share",
        system("mqtt_signed_requests", "signed requests read");
    unrouted: Counter = "janitoo_mqtt_unrouted",
        "Requests for a node this process does not serve";
    published: Counter = "janitoo_bridge_published", "Messages handed to the MQTT client";
    dropped: Counter = "janitoo_bridge_dropped",
        "Messages dropped because their outbound queue was full",
        system("bridge_dropped", "publications dropped");
    queue_depth: Gauge = "janitoo_bridge_queue_depth",
        "Messages waiting in the outbound queues (the protocol's and the retained publications')",
        system("bridge_queue_depth", "messages waiting in the outbound queues");
    connections: Counter = "janitoo_bridge_connections",
        "Connections to the broker, the first included";
    disconnections: Counter = "janitoo_bridge_reconnects",
        "Connection losses (each followed by a reconnection)",
        system("bridge_reconnects", "reconnections");
    broker_switches: Counter = "janitoo_bridge_broker_switches",
        "Moves to the next broker of [broker] addresses (its broker failed, or a node server heard no primary there)",
        system("bridge_broker_switches", "broker switches");
    standby_publications: Counter = "janitoo_bridge_standby_publications",
        "Protocol messages published through the standby connection while the broker connection was down",
        system("bridge_standby_publications", "published through the standby connection");
    broker_position: Gauge = "janitoo_bridge_broker_position",
        "The position in [broker] addresses of the broker in use (0: the first)",
        system("bridge_broker_position", "broker in use (position in the list)");
    requests: Counter = "janitoo_requests", "Requests handled by the buses";
    requests_repeated: Counter = "janitoo_requests_repeated",
        "Sets delivered again with a request_id already served (a redelivery across a switch of broker): answered as gets, not applied twice",
        system("requests_repeated", "sets delivered twice");
    refused: Counter = "janitoo_requests_refused",
        "Requests answered with a 4xx or 5xx status";
    in_flight: Gauge = "janitoo_requests_in_flight",
        "Requests admitted and not answered yet: the work queued in the actors",
        system("requests_in_flight", "requests in flight");
    shed: Counter = "janitoo_requests_shed",
        "Requests refused at once (503) or dropped because too many were in flight",
        system("requests_shed", "requests shed");
    settings_rewrites: Counter = "janitoo_settings_rewrites",
        "Rewrites of the configuration file (each covers a batch of sets)",
        system("settings_rewrites", "file rewrites");
    write_failures: Counter = "janitoo_settings_write_failures",
        "Write-backs of settings that failed (those sets were answered 500)",
        system("settings_write_failures", "write-back failures");
    control_refused: Counter = "janitoo_control_refused",
        "Control messages not believed on a keyed network (unsigned, bad signature, stale, replayed)",
        system("control_refused", "control messages refused");
    nodes_refused: Counter = "janitoo_supervisor_nodes_refused",
        "Nodes heard beyond the cap on watched nodes ([network] max_nodes), refused",
        system("supervisor_nodes_refused", "nodes refused");
    values_dropped: Counter = "janitoo_supervisor_values_dropped",
        "Values published that their node never described, or beyond [network] max_values_per_node, not kept",
        system("supervisor_values_dropped", "values dropped");
    resolv_coalesced: Counter = "janitoo_supervisor_resolv_coalesced",
        "Resolv requests answered together with others of the same question, on the broadcast topic";
    epoch: Gauge = "janitoo_supervisor_epoch",
        "The election epoch this process holds or follows (0: not a network controller)",
        system("supervisor_epoch", "election epoch");
    primary: Gauge = "janitoo_supervisor_primary",
        "1 while this process is the primary network controller",
        system("supervisor_primary", "primary");
    fenced: Counter = "janitoo_supervisor_fenced",
        "Messages of an older epoch, or not from the primary, ignored",
        system("supervisor_fenced", "fenced messages");
    forged: Counter = "janitoo_supervisor_forged",
        "Messages with an epoch their sender could not have claimed, and claims from controllers never announced while the primary lives, refused",
        system("supervisor_forged", "forged epochs and unannounced claims refused");
    offlines_refuted: Counter = "janitoo_supervisor_offlines_refuted",
        "OFFLINEs of the primary followed that the primary refuted with a heartbeat (unkeyed: forged, or a connection lost and back at once)",
        system("supervisor_offlines_refuted", "OFFLINEs of the primary refuted");
    dispatched: Counter = "janitoo_supervisor_dispatched",
        "Heartbeats published on behalf of silent nodes";
    announced: Counter = "janitoo_supervisor_home_assistant_publications",
        "Retained publications for Home Assistant: discovery configs, availability, clearings";
    answered: Counter = "janitoo_supervisor_answers",
        "Answers to the network controller (Home Assistant's sets) that said the request was done";
    answers_refused: Counter = "janitoo_supervisor_answers_refused",
        "Answers to the network controller (Home Assistant's sets) that refused the request";
    leases_answered: Counter = "janitoo_supervisor_leases_answered",
        "Lease requests this primary served (new, repair, lock, release, remove)",
        system("supervisor_leases_answered", "lease requests served");
    leases_refused: Counter = "janitoo_supervisor_leases_refused",
        "Lease requests this primary refused with a 400 naming the field",
        system("supervisor_leases_refused", "lease requests refused");
    leases_withdrawn: Counter = "janitoo_supervisor_leases_withdrawn",
        "Times this primary withdrew leases no heartbeat confirmed in time";
    lease_conflicts: Counter = "janitoo_supervisor_lease_conflicts",
        "Addresses two primaries leased to two nodes (apart, in a partition); the higher epoch's lease stands",
        system("supervisor_lease_conflicts", "lease conflicts");
    lease_records: Counter = "janitoo_supervisor_lease_records",
        "Lease records published retained on /dhcp/leases/cccc/nnnn";
}

/// The address of the broker in use, as `host:port` (empty before the first connection).
#[derive(Debug, Default)]
pub struct BrokerInUse(std::sync::Mutex<String>);

impl BrokerInUse {
    /// Now `address`.
    pub fn set(&self, address: &impl std::fmt::Display) {
        if let Ok(mut current) = self.0.lock() {
            *current = address.to_string();
        }
    }

    /// The address.
    pub fn get(&self) -> String {
        self.0
            .lock()
            .map(|current| current.clone())
            .unwrap_or_default()
    }
}

/// The per-actor families, in the registry's order.
fn register_actor_families(registry: &mut Registry, meters: &Arc<ActorMeters>) {
    let families = [
        (
            "janitoo_actor_messages_sent",
            "Messages sent to the actors of each kind",
            ActorFigure::Sent,
        ),
        (
            "janitoo_actor_messages_handled",
            "Messages handled by the actors of each kind",
            ActorFigure::Handled,
        ),
        (
            "janitoo_actor_backlog",
            "Messages sent to the actors of each kind and not handled yet",
            ActorFigure::Backlog,
        ),
        (
            "janitoo_actor_restarts",
            "Restarts of actors of each kind after a panic",
            ActorFigure::Restarts,
        ),
        (
            "janitoo_actor_handler_seconds",
            "Handler latency of the actors of each kind",
            ActorFigure::Latency,
        ),
    ];
    for (name, help, figure) in families {
        let family = ActorFamily {
            meters: meters.clone(),
            figure,
        };
        registry.register(name, help, family);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The meter of actor kind `kind`.
    pub fn actor(&self, kind: ActorKind) -> &ActorMeter {
        &self.actors[kind.index()]
    }

    /// Restarts of value and node actors after a panic.
    pub fn restarts(&self) -> u64 {
        self.actor(ActorKind::Value).restarts.get() + self.actor(ActorKind::Node).restarts.get()
    }

    /// Counts a message sent to an actor of kind `kind`.
    pub fn sent(&self, kind: ActorKind) {
        if !self.uninstrumented.load(Ordering::Relaxed) {
            self.actor(kind).sent.increment();
        }
    }

    /// Starts timing a handler of `kind`: the guard counts the message handled and records
    /// the latency when it is dropped.
    pub fn handling(self: &Arc<Self>, kind: ActorKind) -> Handling {
        let on = !self.uninstrumented.load(Ordering::Relaxed);
        Handling {
            metrics: on.then(|| (self.clone(), kind, Instant::now())),
        }
    }

    /// Turns the per-message counting on (the default) or off.
    pub fn set_instrumented(&self, on: bool) {
        self.uninstrumented.store(!on, Ordering::Relaxed);
    }

    /// The registry in the OpenMetrics text format, without its end: callers may add their
    /// own registries, then [`Metrics::EXPOSITION_END`].
    pub fn encode(&self, out: &mut String) {
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }

    /// The end of an exposition.
    pub const EXPOSITION_END: &'static str = "# EOF\n";

    /// The content type of the exposition.
    pub const EXPOSITION_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// The whole exposition of the registry (`GET /metrics` of a process with nothing else).
    pub fn exposition(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.encode(&mut out);
        out.push_str(Metrics::EXPOSITION_END);
        out
    }
}

/// A handler being timed; see [`Metrics::handling`].
pub struct Handling {
    metrics: Option<(Arc<Metrics>, ActorKind, Instant)>,
}

impl Drop for Handling {
    fn drop(&mut self) {
        if let Some((metrics, kind, start)) = self.metrics.take() {
            let meter = metrics.actor(kind);
            meter.handled.increment();
            meter
                .latency
                .record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    }
}

#[cfg(test)]
mod tests;
