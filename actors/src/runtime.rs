//! Starting a controller process from its configuration: one bridge, one arbiter (thread) per
//! bus with its nodes and values, and the configuration writer.

use std::sync::Arc;

use actix::prelude::*;
use janitoo_config::clock::wall_clock_ms;
use janitoo_config::{Address, BrokerList, BusConfig, Config, ConfigFile, NodeConfig, NodeKey};
use janitoo_protocol::control_plane::{ControlKey, ControlPlane, DEFAULT_WINDOW_MS};
use janitoo_protocol::node::defaults;
use janitoo_protocol::Codec;
use janitoo_protocol::Hadd;
use tracing::info;

use crate::aggregate::{Aggregate, BusAggregates, BusReadings};
use crate::bridge::connection::MqttSettings;
use crate::bridge::{BridgeConfig, MqttBridge};
use crate::bus_actor::{BusActor, BusSetup};
use crate::component::{Component, ComponentInfo, ComponentRegistry, Source, ValueSpec};
use crate::config_writer::SettingsWriter;
use crate::error::ActorError;
use crate::messages::{Publish, Shutdown};
use crate::metrics::{ActorKind, Metrics};
use crate::node_actor::{NodeLinks, NodeSetup};
use crate::process_metrics::{Composite, ProcessMetrics};
use crate::supervisor::{NetworkSupervisor, SupervisorLinks, SupervisorSetup};
use crate::value_cache::ValueCache;

/// Waits for Ctrl-C or SIGTERM. The wait is a task of its own: the future a runtime blocks
/// on is polled again whenever any of its tasks wakes, and polling the signals every time cost
/// a few percent of a busy controller's CPU.
pub async fn stop_signal() -> std::io::Result<()> {
    let (stopped, stop) = tokio::sync::oneshot::channel();
    tokio::task::spawn_local(async move {
        let _ = stopped.send(signals().await);
    });
    stop.await
        .unwrap_or_else(|_| Err(std::io::Error::other("the signal handler stopped")))
}

async fn signals() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

/// How to start a controller.
#[derive(Clone, Copy)]
pub struct StartOptions<'a> {
    /// The brokers, in order: the process starts on the first.
    pub broker: &'a BrokerList,
    /// The component kinds.
    pub registry: &'a ComponentRegistry,
    /// Payload codec of what we send.
    pub codec: Codec,
    /// Write settings changed over the network back into the configuration file.
    pub write_back: bool,
}

/// A running controller process.
pub struct Controller {
    bridge: Addr<MqttBridge>,
    /// What the bridge found last: another process on one of this process's addresses.
    duplicates: crate::bridge::duplicates::Duplicates,
    arbiters: Vec<Arbiter>,
    metrics: Arc<Metrics>,
    /// What a clean stop publishes to release the leased addresses.
    releases: Vec<(janitoo_protocol::Topic, janitoo_protocol::Message)>,
}

fn node_setup(
    node: &NodeConfig,
    uuid: String,
    key: NodeKey,
    oid: String,
    product: ComponentInfo,
) -> NodeSetup {
    NodeSetup {
        hadd: node.hadd,
        uuid,
        key,
        oid,
        product,
        name: node
            .name
            .clone()
            .unwrap_or_else(|| defaults::NAME.to_owned()),
        location: node
            .location
            .clone()
            .unwrap_or_else(|| defaults::LOCATION.to_owned()),
        heartbeat: node.heartbeat.unwrap_or(defaults::HEARTBEAT),
        config_timeout: node.config_timeout.unwrap_or(defaults::CONFIG_TIMEOUT),
        component: None,
        settings: node.values.clone(),
        will: None,
        readings: BusReadings::default(),
    }
}

fn bus_setup(
    config: &Config,
    bus: &BusConfig,
    registry: &ComponentRegistry,
) -> Result<BusSetup, ActorError> {
    let readings = BusReadings::watching(bus.aggregates.keys().cloned());
    let mut controller = node_setup(
        &bus.node,
        bus.oid.clone(),
        NodeKey::Bus(bus.oid.clone()),
        bus.kind.clone(),
        ComponentInfo {
            product_name: format!("{} bus", bus.kind),
            product_type: "Bus controller".to_owned(),
            product_manufacturer: "janitoo-rs".to_owned(),
        },
    );
    let mut components = Vec::new();
    for component in &bus.components {
        let built = registry
            .create(component)
            .map_err(|reason| ActorError::Component {
                file: config.file.display().to_string(),
                bus: bus.oid.clone(),
                component: component.key.clone(),
                reason,
            })?;
        let mut setup = node_setup(
            &component.node,
            component.uuid(bus),
            NodeKey::Component {
                bus: bus.oid.clone(),
                key: component.key.clone(),
            },
            component.kind.clone(),
            built.info(),
        );
        setup.component = Some(built);
        setup.readings = readings.clone();
        components.push(setup);
    }
    if !bus.aggregates.is_empty() {
        let specs = component_specs(&components);
        let mut aggregates = Vec::new();
        for (source, function) in &bus.aggregates {
            let Some(spec) = specs.iter().find(|spec| &spec.uuid == source) else {
                let mut known: Vec<&str> = specs.iter().map(|spec| spec.uuid.as_str()).collect();
                known.dedup();
                return Err(ActorError::Aggregate {
                    file: config.file.display().to_string(),
                    bus: bus.oid.clone(),
                    value: source.clone(),
                    known: known.join(", "),
                });
            };
            aggregates.push(Aggregate {
                source: source.clone(),
                function: *function,
                units: spec.units.clone(),
            });
        }
        controller.component = Some(Arc::new(BusAggregates::new(&bus.oid, aggregates, readings)));
    }
    Ok(BusSetup {
        oid: bus.oid.clone(),
        controller,
        components,
    })
}

/// The values the components read (not the stored ones), sorted by uuid.
fn component_specs(components: &[NodeSetup]) -> Vec<ValueSpec> {
    let mut specs: Vec<ValueSpec> = components
        .iter()
        .filter_map(|setup| setup.component.as_ref())
        .flat_map(|component| component.values())
        .filter(|spec| spec.source == Source::Component)
        .collect();
    specs.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    specs
}

/// The node of a network controller that serves no bus: it beats every election interval (so
/// that the others time it out as fast as they elect), and carries the process's metrics.
fn network_node(hadd: Hadd, interval: f64, metrics: Arc<dyn Component>) -> BusSetup {
    let oid = "network".to_owned();
    let mut controller = node_setup(
        &NodeConfig {
            hadd,
            address: Address::Fixed,
            name: Some("Network controller".to_owned()),
            location: None,
            heartbeat: Some(interval),
            config_timeout: None,
            values: Default::default(),
        },
        oid.clone(),
        NodeKey::Bus(oid.clone()),
        oid.clone(),
        ComponentInfo {
            product_name: "Network controller".to_owned(),
            product_type: "Network controller".to_owned(),
            product_manufacturer: "janitoo-rs".to_owned(),
        },
    );
    controller.component = Some(metrics);
    BusSetup {
        oid,
        controller,
        components: Vec::new(),
    }
}

/// Publications waiting for the MQTT client, at most: past half of it, requests are shed (their
/// answers would wait); a full queue drops (see the flood figures in BENCHMARKS.md).
const OUTBOUND_QUEUE: usize = 4_096;

fn config_writer(config: &Config, metrics: Arc<Metrics>) -> Result<SettingsWriter, ActorError> {
    let file = ConfigFile::open(&config.file)?;
    Ok(SettingsWriter::start(file, metrics))
}

/// The network's key, when the configuration names a key file.
fn network_key(config: &Config) -> Result<Option<ControlKey>, ActorError> {
    let Some(file) = &config.network.key_file else {
        return Ok(None);
    };
    Ok(Some(janitoo_config::secrets::control_key(file)?))
}

/// The signed control plane of a network controller with the network's key.
fn control_plane(config: &Config, key: Option<ControlKey>) -> Option<ControlPlane> {
    let (me, _) = config.network.controller()?;
    let Some(key) = key else {
        tracing::warn!(
            "this network controller has no key ([network] key_file): anyone who can publish on \
             the broker can take the primary and tell false node states. `janitoo network-key \
             FILE` makes one; give every controller the same (README, \"A signed control plane\")"
        );
        return None;
    };
    Some(ControlPlane::new(
        key,
        me,
        wall_clock_ms(),
        DEFAULT_WINDOW_MS,
    ))
}

/// Refuses a configuration with an address still to lease.
fn unleased(config: &Config) -> Result<(), ActorError> {
    for bus in &config.buses {
        let nodes = std::iter::once((format!("buses.{}", bus.oid), &bus.node)).chain(
            bus.components
                .iter()
                .map(|c| (format!("buses.{}.components.{}", bus.oid, c.key), &c.node)),
        );
        for (place, node) in nodes {
            if node.address == Address::Auto {
                return Err(ActorError::Unleased {
                    file: config.file.display().to_string(),
                    place,
                });
            }
        }
    }
    Ok(())
}

impl Controller {
    /// Starts the controller of `config`; call it inside an actix `System`. Every component is
    /// built first, so a bad configuration starts nothing.
    pub fn start(config: &Config, options: StartOptions<'_>) -> Result<Controller, ActorError> {
        unleased(config)?;
        let mut buses = config
            .buses
            .iter()
            .map(|bus| bus_setup(config, bus, options.registry))
            .collect::<Result<Vec<_>, _>>()?;
        let controller = config.network.controller();
        let will = controller
            .map(|(hadd, _)| hadd)
            .or_else(|| buses.first().map(|bus| bus.controller.hadd));
        let metrics = Arc::new(Metrics::default());
        if let Some(will) = will {
            let process_metrics: Arc<dyn Component> =
                Arc::new(ProcessMetrics::new(metrics.clone()));
            match buses.iter_mut().find(|bus| bus.controller.hadd == will) {
                Some(bus) => {
                    let controller = &mut bus.controller;
                    controller.component = Some(match controller.component.take() {
                        Some(own) => Arc::new(Composite::new(vec![own, process_metrics])),
                        None => process_metrics,
                    });
                }
                None => buses.push(network_node(will, config.network.interval, process_metrics)),
            }
        }
        for bus in &mut buses {
            bus.controller.will = will;
        }
        let persist = if options.write_back {
            Some(config_writer(config, metrics.clone())?)
        } else {
            None
        };
        let values = ValueCache::default();
        let network_key = network_key(config)?;
        let bridge = MqttBridge::new(
            BridgeConfig {
                mqtt: MqttSettings::of(&config.broker, options.broker.clone())?,
                will,
                codec: options.codec,
                queue_capacity: OUTBOUND_QUEUE,
                max_payload: config.limits.max_payload,
                max_in_flight: config.limits.max_in_flight,
                max_requests_per_second: config.limits.max_requests_per_second,
                control: control_plane(config, network_key.clone()),
                request_key: network_key,
                values: values.clone(),
                // A node server moves for silence; a network controller claims instead.
                move_on_silence: controller
                    .is_none()
                    .then(|| config.network.election().silence_limit()),
            },
            metrics.clone(),
        );
        let duplicates = bridge.duplicates();
        let bridge = bridge.start();
        let links = NodeLinks {
            publisher: bridge.clone().recipient(),
            persist,
            max_string: config.limits.max_string,
            metrics: metrics.clone(),
            values,
        };
        if let Some((hadd, rank)) = controller {
            let setup = SupervisorSetup {
                hadd,
                rank,
                election: config.network.election(),
                liveness: config.network.liveness(),
                home_assistant: config.home_assistant.as_ref().map(|ha| ha.discovery()),
                state_dir: Some(config.network.state_dir.clone()),
            };
            let links = SupervisorLinks {
                publisher: bridge.clone().recipient(),
                observe: bridge.clone().recipient(),
                retained: bridge.clone().recipient(),
                observe_raw: bridge.clone().recipient(),
                resubscribe: bridge.clone().recipient(),
                records: bridge.clone().recipient(),
            };
            NetworkSupervisor::new(setup, links, metrics.clone()).start();
        }
        let mut arbiters = Vec::new();
        for setup in buses {
            let arbiter = Arbiter::new();
            let (links, register) = (links.clone(), bridge.clone().recipient());
            info!(bus = %setup.oid, hadd = %setup.controller.hadd, nodes = setup.components.len() + 1, "starting bus");
            BusActor::start_in_arbiter(&arbiter.handle(), move |_| {
                BusActor::new(setup, links, register)
            });
            arbiters.push(arbiter);
        }
        Ok(Controller {
            bridge,
            duplicates,
            arbiters,
            metrics,
            releases: crate::leasing::release_requests(config),
        })
    }

    /// The whole `main` of a small server: starts the controller of `config` in a new actix
    /// `System`, serves until Ctrl-C or SIGTERM, then stops cleanly.
    pub fn run_until_stopped(config: &Config, options: StartOptions<'_>) -> Result<(), ActorError> {
        actix::System::new().block_on(async move {
            let mqtt = MqttSettings::of(&config.broker, options.broker.clone())?;
            let mut config = config.clone();
            loop {
                config = crate::leasing::lease_addresses(
                    &config,
                    &mqtt,
                    options.codec,
                    options.write_back,
                )
                .await?;
                let controller = Controller::start(&config, options)?;
                let waited = tokio::select! {
                    waited = stop_signal() => Ok(waited),
                    moved = crate::leasing::displaced(&config, &mqtt, options.codec) => Err(moved),
                    moved = crate::leasing::shared_address(&config, controller.duplicates()) => Err(moved),
                };
                controller.stop().await;
                match waited {
                    Ok(waited) => return waited.map_err(ActorError::Signal),
                    Err(moved) => config = crate::leasing::to_lease_again(&config, &moved),
                }
            }
        })
    }

    /// The process's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Another process found beating on one of this process's addresses (the last one).
    pub fn duplicates(&self) -> crate::bridge::duplicates::Duplicates {
        self.duplicates.clone()
    }

    /// The bridge, to publish through it.
    pub fn bridge(&self) -> Addr<MqttBridge> {
        self.bridge.clone()
    }

    /// Stops cleanly: OFFLINE heartbeats for every node, a clean disconnect, the bus threads.
    pub async fn stop(self) {
        for (topic, message) in self.releases {
            self.metrics.sent(ActorKind::Bridge);
            self.bridge.do_send(Publish { topic, message });
        }
        self.metrics.sent(ActorKind::Bridge);
        let _ = self.bridge.send(Shutdown).await;
        for arbiter in self.arbiters {
            arbiter.stop();
        }
    }
}
