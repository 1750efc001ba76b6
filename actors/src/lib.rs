//! # janitoo-actors
//!
//! The actix actors of a Janitoo controller process, and the library API for writing one.
//!
//! | actor | role | runs on |
//! |---|---|---|
//! | [`BusActor`] | one bus: shares its resource among its components, is the controller node `cccc/0000`, serves discovery and routes get/set | its own arbiter (thread) |
//! | [`NodeActor`] | one node: info, values, heartbeat timer, health | its bus's arbiter |
//! | [`ValueActor`] | one value: instances, polling, get and set with validation, a set answered once written back | its node's arbiter |
//! | [`MqttBridge`] | the process's only MQTT connection: admission control, size limits, the only encoder | the main arbiter |
//! | [`SettingsWriter`] (not an actor) | writes settings back into the configuration file, a batch per rewrite | its own thread |
//! | [`NetworkSupervisor`] | a network controller: map replica, election, heartbeats on behalf | the main arbiter |
//!
//! Every actor kind is metered ([`metrics`]: messages sent and handled, backlog, handler
//! latency, restarts), each metric declared once in a registry that `/metrics` encodes and the
//! process's node shows as system values.
//!
//! Actors hold `Recipient`s of what they send to, not each other's types, and exchange the
//! typed messages of [`messages`]. Decisions about the wire (parsing, checking a set) are the
//! pure functions of `janitoo-protocol`.
//!
//! ## Writing a component
//!
//! A component is a [`Component`] impl: its values ([`ValueSpec`]), how to read them, how to
//! apply a set. Register it by kind in a [`ComponentRegistry`], name the kind in the
//! configuration file, and [`Controller::start`] does the rest: node info, heartbeats,
//! polling, discovery, get and set with status codes, persistence of settings.
//!
//! ```
//! use std::sync::Arc;
//! use janitoo_actors::{Component, ComponentError, ComponentInfo, ComponentRegistry, ValueSpec};
//! use janitoo_protocol::{Data, ValueType};
//!
//! struct Thermometer;
//!
//! impl Component for Thermometer {
//!     fn info(&self) -> ComponentInfo {
//!         ComponentInfo::software("Thermometer")
//!     }
//!     fn values(&self) -> Vec<ValueSpec> {
//!         vec![ValueSpec::sensor("temperature", ValueType::Decimal).units("°C").poll(60.0)]
//!     }
//!     fn read(&self, _uuid: &str, _index: u32) -> Result<Data, ComponentError> {
//!         Ok(Data::from(21.5))
//!     }
//! }
//!
//! let mut registry = ComponentRegistry::new();
//! registry.register("garden.thermometer", |_| Ok(Arc::new(Thermometer)));
//! ```

mod admission;
mod aggregate;
mod answer;
pub mod bridge;
mod bus_actor;
mod component;
mod config_writer;
mod error;
pub mod lease_store;
pub mod leasing;
pub mod messages;
pub mod metrics;
mod node_actor;
mod process_metrics;
mod refusal_log;
mod runtime;
mod supervisor;
mod value_actor;
mod value_cache;

pub use bridge::connection::MqttSettings;
pub use bridge::{BridgeConfig, MqttBridge};
pub use bus_actor::{BusActor, BusSetup};
pub use component::{
    Component, ComponentContext, ComponentError, ComponentInfo, ComponentRegistry, Source,
    ValueSpec,
};
pub use config_writer::SettingsWriter;
pub use error::ActorError;
pub use metrics::{ActorKind, Metrics};
pub use node_actor::{NodeActor, NodeLinks, NodeSetup};
pub use runtime::{stop_signal, Controller, StartOptions};
pub use supervisor::{
    GetSupervisorView, NetworkSupervisor, SupervisorLinks, SupervisorSetup, SupervisorView,
};
pub use value_actor::{ValueActor, ValueLinks};
pub use value_cache::ValueCache;
