//! [`Config`]: a whole configuration file, read from TOML and checked section by section (each
//! section is a module of its own: its type, its raw form, its defaults and its checks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::broker::{BrokerConfig, RawBroker};
use crate::buses::{BusConfig, RawBus};
use crate::check::Checker;
use crate::error::ConfigError;
use crate::hardware::HardwareConfig;
use crate::homeassistant::{HomeAssistantConfig, RawHomeAssistant};
use crate::limits::{LimitsConfig, RawLimits};
use crate::network::{NetworkConfig, NetworkRole, RawNetwork};
use crate::web::{RawWeb, WebConfig};

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// The MQTT broker.
    pub broker: BrokerConfig,
    /// This process's role in the network map.
    pub network: NetworkConfig,
    /// The buses, by oid order.
    pub buses: Vec<BusConfig>,
    /// Where and how hardware is read.
    pub hardware: HardwareConfig,
    /// The web manager.
    pub web: WebConfig,
    /// What a client may send.
    pub limits: LimitsConfig,
    /// Home Assistant's discovery, when the section is there and enabled.
    pub home_assistant: Option<HomeAssistantConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    broker: RawBroker,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    buses: BTreeMap<String, RawBus>,
    #[serde(default)]
    hardware: HardwareConfig,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    limits: RawLimits,
    homeassistant: Option<RawHomeAssistant>,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Config::parse(&text, file)
    }

    /// Checks configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Syntax {
            file: file.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        let check = Checker { file };
        let buses = raw
            .buses
            .into_iter()
            .map(|(oid, bus)| check.bus(oid, bus))
            .collect::<Result<Vec<_>, _>>()?;
        check.unique_addresses(&buses)?;
        let has_role = raw.network.role != NetworkRole::None;
        Ok(Config {
            file: file.to_owned(),
            broker: check.broker(raw.broker)?,
            network: check.network(raw.network)?,
            buses,
            hardware: raw.hardware,
            web: check.web(raw.web)?,
            limits: check.limits(raw.limits)?,
            home_assistant: check.home_assistant(raw.homeassistant, has_role)?,
        })
    }
}
