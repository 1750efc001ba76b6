//! # janitoo-config
//!
//! The controller's configuration file (TOML): what broker to use, the network role, and the
//! buses with their components. Loading checks everything and names the file, the key and what
//! was expected; nothing starts on a bad file. Values set over the network are written back
//! ([`ConfigFile::persist`]) atomically: a temporary file, fsync, rename, so a kill at any moment
//! leaves the old file or the new one, never a broken one. Comments and layout are kept.
//!
//! ```toml
//! [broker]                      # omit for an embedded broker in-process
//! address = "127.0.0.1:1883"
//!
//! [buses.rpibasic]              # a bus: the controller node <cccc>/0000
//! hadd = "0220/0000"
//! name = "Hello world"
//! location = "DHT"
//! heartbeat = 30                # seconds
//!
//! [buses.rpibasic.components.ambiance]   # a component: node uuid rpibasic__ambiance
//! kind = "rpibasic.dht"
//! hadd = "0220/0001"
//! values = { pin = 6, sensor = 11, temperature_poll = 300 }
//! ```
//!
//! A value setting is data for instance 0 (`pin = 6`) or a table of instances
//! (`load = { 0 = 1.5, 1 = 2.5 }`).

//! ## Layout
//!
//! One module per section, each with its type, its raw form, its defaults and its checks:
//! [`broker`], [`network`], [`buses`], [`hardware`], [`web`], [`limits`], [`homeassistant`];
//! `file` reads a whole file through them. Below the actors and the tools alike, the crate also
//! reads what a configuration names by file ([`tls`], [`secrets`], [`lines`]: the broker's
//! accounts, the web manager's users) and the wall clock the signed control plane stamps with
//! ([`clock`]).

mod address;
pub mod broker;
pub mod buses;
mod check;
pub mod clock;
mod convert;
mod error;
mod file;
pub mod hardware;
pub mod homeassistant;
pub mod limits;
pub mod lines;
pub mod network;
pub mod persist;
pub mod secrets;
pub mod tls;
pub mod web;

pub use address::{BadAddress, BadList, BrokerAddress, BrokerList};
pub use broker::{BrokerConfig, TlsConfig};
pub use buses::{
    Address, AggregateFunction, BusConfig, ComponentConfig, NodeConfig, ValueSettings,
};
pub use convert::{data_to_toml, toml_to_data};
pub use error::ConfigError;
pub use file::Config;
pub use hardware::HardwareConfig;
pub use homeassistant::HomeAssistantConfig;
pub use limits::LimitsConfig;
pub use lines::{read_lines, LineFileError};
pub use network::{NetworkConfig, NetworkRole};
pub use persist::{Change, ConfigFile, NodeKey, SettingKey};
pub use web::WebConfig;
