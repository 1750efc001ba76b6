//! The configuration model, read from TOML and checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use janitoo_protocol::{Data, Hadd};
use serde::Deserialize;

use crate::convert::toml_to_data;
use crate::error::ConfigError;
use crate::homeassistant::{HomeAssistantConfig, RawHomeAssistant};

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

/// The `[limits]` section: what a client may send, whoever it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitsConfig {
    /// The largest payload accepted (or sent), bytes (default 256 KiB).
    pub max_payload: usize,
    /// The longest string a value may be set to, bytes (default 4 KiB), unless the value's
    /// own spec says otherwise.
    pub max_string: usize,
    /// Requests a controller works on at once; more are refused at once with 503 (default 256).
    pub max_in_flight: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload: 256 << 10,
            max_string: 4 << 10,
            max_in_flight: 256,
        }
    }
}

/// The `[web]` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebConfig {
    /// Where the web manager listens (`127.0.0.1:8080`); none when absent.
    pub listen: Option<std::net::SocketAddr>,
    /// Host names it is reached by (`pi.local`), besides IP addresses and `localhost`: a
    /// request naming any other host is refused (DNS rebinding).
    pub hosts: Vec<String>,
    /// The users who may log in (`name:role:hash` lines); required to listen elsewhere than
    /// on loopback.
    pub users_file: Option<PathBuf>,
}

/// The `[hardware]` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HardwareConfig {
    /// The root under which sysfs paths are resolved (`/` when absent).
    pub sysfs_root: Option<PathBuf>,
    /// Simulated sensors instead of the hardware (for machines that are not Pis).
    pub simulate: bool,
}

/// Where the broker is. `address: None` means: start an embedded broker in-process.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrokerConfig {
    /// `host:port`.
    pub address: Option<crate::BrokerAddress>,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password, if the broker wants one.
    pub password: Option<String>,
    /// A file holding the password (so that it needs not sit in a file that is written
    /// back); relative paths from the configuration file's folder. The environment variable
    /// `JANITOO_BROKER_PASSWORD` is the third way.
    pub password_file: Option<PathBuf>,
    /// MQTT keep-alive, seconds.
    pub keepalive: u16,
    /// TLS to the broker, when `tls = true`.
    pub tls: Option<TlsConfig>,
    /// With no address: the accounts (`user:password` lines) the embedded broker requires.
    pub accounts_file: Option<PathBuf>,
}

/// TLS to the broker (`[broker] tls = true`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    /// The CA certificates (PEM) the broker's certificate must chain to; the system's when
    /// absent.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) and its private key, for brokers that ask for one.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The name the broker's certificate must carry, when it is not the address's host (a
    /// broker reached by IP address, say).
    pub server_name: Option<String>,
}

/// The role a process plays in keeping the network map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkRole {
    /// A node server only: no map.
    #[default]
    None,
    /// The primary network controller.
    Primary,
    /// A secondary, ready to take over.
    Secondary,
    /// Primary or secondary, as the election decides.
    Auto,
}

/// The `[network]` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkConfig {
    /// The role.
    pub role: NetworkRole,
    /// Election priority: the higher wins.
    pub priority: u8,
    /// The network controller's own address (required with a role).
    pub hadd: Option<Hadd>,
    /// The primary's heartbeat interval, seconds (default 1).
    pub interval: f64,
    /// The file holding the network's shared secret (relative paths from the configuration
    /// file's folder): with it, the control plane is signed and only signed control messages
    /// are believed.
    pub key_file: Option<PathBuf>,
    /// Nodes a network controller watches at most (default 10,000): beyond it, a node heard
    /// is refused and counted.
    pub max_nodes: usize,
    /// Whether the original's primary (`janitoo_dhcp`) may run on this network: a starting
    /// controller listens for one of its heartbeat periods before it may claim.
    pub original_primary: bool,
    /// The original primary's heartbeat period (its `resolv_timeout`), seconds, assumed until
    /// learned (default 15).
    pub original_interval: f64,
}

/// What every node (bus controller or component) has.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Its address.
    pub hadd: Hadd,
    /// Its name.
    pub name: Option<String>,
    /// Its location.
    pub location: Option<String>,
    /// Heartbeat period, seconds.
    pub heartbeat: Option<f64>,
    /// Config timeout, seconds.
    pub config_timeout: Option<f64>,
    /// Value settings, by value uuid.
    pub values: BTreeMap<String, ValueSettings>,
}

/// The configured data of one value, by instance index.
pub type ValueSettings = BTreeMap<u32, Data>;

/// A bus: it shares a resource among its components and is the controller node `cccc/0000`.
#[derive(Debug, Clone, PartialEq)]
pub struct BusConfig {
    /// The bus oid, the controller node's uuid (`rpibasic`).
    pub oid: String,
    /// The bus kind (defaults to the oid).
    pub kind: String,
    /// The controller node.
    pub node: NodeConfig,
    /// The components, by key order.
    pub components: Vec<ComponentConfig>,
    /// Bus values computed from its components' readings: `temperature = "average"` makes the
    /// value `<oid>_temperature`, the average of every `temperature` read on the bus.
    pub aggregates: BTreeMap<String, AggregateFunction>,
}

/// How a bus aggregate combines its components' readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateFunction {
    /// The arithmetic mean.
    Average,
    /// The lowest reading.
    Min,
    /// The highest reading.
    Max,
}

/// A component: one node of a bus.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentConfig {
    /// Its key in the bus (`ambiance`); the node uuid is `<bus oid>__<key>`.
    pub key: String,
    /// The component kind (`rpibasic.dht`).
    pub kind: String,
    /// Its node.
    pub node: NodeConfig,
}

impl ComponentConfig {
    /// The node uuid, `<bus oid>__<key>`.
    pub fn uuid(&self, bus: &BusConfig) -> String {
        format!("{}__{}", bus.oid, self.key)
    }
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
    hardware: RawHardware,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    limits: RawLimits,
    homeassistant: Option<RawHomeAssistant>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_payload: Option<i64>,
    max_string: Option<i64>,
    max_in_flight: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    users_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHardware {
    sysfs_root: Option<PathBuf>,
    #[serde(default)]
    simulate: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    address: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    keepalive: Option<u16>,
    #[serde(default)]
    tls: bool,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    accounts_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    role: NetworkRole,
    #[serde(default)]
    priority: u8,
    hadd: Option<String>,
    interval: Option<f64>,
    key_file: Option<PathBuf>,
    max_nodes: Option<i64>,
    #[serde(default)]
    original_primary: bool,
    original_interval: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBus {
    kind: Option<String>,
    hadd: String,
    name: Option<String>,
    location: Option<String>,
    heartbeat: Option<f64>,
    config_timeout: Option<f64>,
    #[serde(default)]
    values: toml::Table,
    #[serde(default)]
    components: BTreeMap<String, RawComponent>,
    #[serde(default)]
    aggregates: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    kind: String,
    hadd: String,
    name: Option<String>,
    location: Option<String>,
    heartbeat: Option<f64>,
    config_timeout: Option<f64>,
    #[serde(default)]
    values: toml::Table,
}

/// Checks one file's values, naming the keys.
pub(crate) struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    /// A path the file names: relative ones are from the file's folder.
    fn beside(&self, path: PathBuf) -> PathBuf {
        match self.file.parent() {
            Some(folder) if path.is_relative() => folder.join(path),
            _ => path,
        }
    }

    pub(crate) fn invalid(
        &self,
        key: &str,
        expected: &str,
        found: impl std::fmt::Display,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            key: key.to_owned(),
            expected: expected.to_owned(),
            found: found.to_string(),
        }
    }

    fn hadd(&self, key: &str, text: &str) -> Result<Hadd, ConfigError> {
        Hadd::parse(text)
            .map_err(|_| self.invalid(key, "a HADD like \"0220/0001\"", format!("{text:?}")))
    }

    fn name(&self, key: &str, name: &str) -> Result<(), ConfigError> {
        let ok = !name.is_empty()
            && !name.contains("__")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                "a name of letters, digits, '_', '-', '.' (no \"__\")",
                format!("{name:?}"),
            ))
        }
    }

    fn seconds(
        &self,
        key: &str,
        value: Option<f64>,
        min_exclusive: bool,
    ) -> Result<Option<f64>, ConfigError> {
        match value {
            Some(secs)
                if !(secs.is_finite()
                    && secs <= 3000.0
                    && (secs > 0.0 || !min_exclusive && secs == 0.0)) =>
            {
                let expected = if min_exclusive {
                    "seconds, more than 0 and at most 3000"
                } else {
                    "seconds, 0 to 3000"
                };
                Err(self.invalid(key, expected, secs))
            }
            other => Ok(other),
        }
    }

    fn values(
        &self,
        key: &str,
        table: &toml::Table,
    ) -> Result<BTreeMap<String, ValueSettings>, ConfigError> {
        let mut values = BTreeMap::new();
        for (uuid, setting) in table {
            let setting_key = format!("{key}.{uuid}");
            self.name(&setting_key, uuid)?;
            let instances = match setting {
                toml::Value::Table(instances) => instances
                    .iter()
                    .map(|(index, data)| {
                        let index = index.parse::<u32>().map_err(|_| {
                            self.invalid(
                                &format!("{setting_key}.{index}"),
                                "an instance index (0, 1, ...)",
                                format!("key {index:?}"),
                            )
                        })?;
                        Ok((index, toml_to_data(data)))
                    })
                    .collect::<Result<ValueSettings, ConfigError>>()?,
                data => ValueSettings::from([(0, toml_to_data(data))]),
            };
            values.insert(uuid.clone(), instances);
        }
        Ok(values)
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &self,
        key: &str,
        hadd: &str,
        name: Option<String>,
        location: Option<String>,
        heartbeat: Option<f64>,
        config_timeout: Option<f64>,
        values: &toml::Table,
    ) -> Result<NodeConfig, ConfigError> {
        Ok(NodeConfig {
            hadd: self.hadd(&format!("{key}.hadd"), hadd)?,
            name,
            location,
            heartbeat: self.seconds(&format!("{key}.heartbeat"), heartbeat, true)?,
            config_timeout: self.seconds(
                &format!("{key}.config_timeout"),
                config_timeout,
                false,
            )?,
            values: self.values(&format!("{key}.values"), values)?,
        })
    }

    fn broker(&self, raw: RawBroker) -> Result<BrokerConfig, ConfigError> {
        let address = match &raw.address {
            Some(text) => Some(text.parse::<crate::BrokerAddress>().map_err(|_| {
                self.invalid(
                    "broker.address",
                    "host:port, with a port 1 to 65535",
                    format!("{text:?}"),
                )
            })?),
            None => None,
        };
        let keepalive = raw.keepalive.unwrap_or(60);
        if keepalive < 5 {
            return Err(self.invalid("broker.keepalive", "seconds, 5 or more", keepalive));
        }
        let beside = |path: PathBuf| self.beside(path);
        let tls_only = [
            ("broker.ca_file", raw.ca_file.is_some()),
            ("broker.cert_file", raw.cert_file.is_some()),
            ("broker.key_file", raw.key_file.is_some()),
            ("broker.server_name", raw.server_name.is_some()),
        ];
        if let Some((key, _)) = tls_only.iter().find(|(_, set)| *set && !raw.tls) {
            return Err(self.invalid(key, "`tls = true` beside it", "tls off"));
        }
        let client = match (raw.cert_file, raw.key_file) {
            (Some(cert), Some(key)) => Some((beside(cert), beside(key))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.invalid("broker.key_file", "the key of cert_file", "none"))
            }
            (None, Some(_)) => {
                return Err(self.invalid("broker.cert_file", "the certificate of key_file", "none"))
            }
        };
        if raw.accounts_file.is_some() && address.is_some() {
            return Err(self.invalid(
                "broker.accounts_file",
                "no broker address beside it (it is for the embedded broker)",
                "an address",
            ));
        }
        if raw.password.is_some() && raw.password_file.is_some() {
            return Err(self.invalid(
                "broker.password_file",
                "password or password_file, not both",
                "both",
            ));
        }
        Ok(BrokerConfig {
            address,
            username: raw.username,
            password: raw.password,
            password_file: raw.password_file.map(beside),
            accounts_file: raw.accounts_file.map(beside),
            keepalive,
            tls: raw.tls.then(|| TlsConfig {
                ca_file: raw.ca_file.map(beside),
                client,
                server_name: raw.server_name,
            }),
        })
    }

    fn bus(&self, oid: String, raw: RawBus) -> Result<BusConfig, ConfigError> {
        let key = format!("buses.{oid}");
        self.name(&key, &oid)?;
        let node = self.node(
            &key,
            &raw.hadd,
            raw.name,
            raw.location,
            raw.heartbeat,
            raw.config_timeout,
            &raw.values,
        )?;
        if !node.hadd.is_controller() {
            return Err(self.invalid(
                &format!("{key}.hadd"),
                "a controller HADD (cccc/0000)",
                node.hadd,
            ));
        }
        let mut components = Vec::new();
        for (component_key, raw) in raw.components {
            let key = format!("{key}.components.{component_key}");
            self.name(&key, &component_key)?;
            let component = self.node(
                &key,
                &raw.hadd,
                raw.name,
                raw.location,
                raw.heartbeat,
                raw.config_timeout,
                &raw.values,
            )?;
            if component.hadd.ctrl != node.hadd.ctrl || component.hadd.is_controller() {
                let expected = format!(
                    "a HADD {:04}/nnnn of the bus's controller, with nnnn not 0000",
                    node.hadd.ctrl
                );
                return Err(self.invalid(&format!("{key}.hadd"), &expected, component.hadd));
            }
            if raw.kind.trim().is_empty() {
                return Err(self.invalid(
                    &format!("{key}.kind"),
                    "a component kind like \"rpibasic.dht\"",
                    "\"\"",
                ));
            }
            components.push(ComponentConfig {
                key: component_key,
                kind: raw.kind,
                node: component,
            });
        }
        let mut aggregates = BTreeMap::new();
        for (source, function) in raw.aggregates {
            let agg_key = format!("{key}.aggregates.{source}");
            self.name(&agg_key, &source)?;
            let function = function
                .clone()
                .try_into::<AggregateFunction>()
                .map_err(|_| self.invalid(&agg_key, "\"average\", \"min\" or \"max\"", function))?;
            aggregates.insert(source, function);
        }
        Ok(BusConfig {
            kind: raw.kind.unwrap_or_else(|| oid.clone()),
            oid,
            node,
            components,
            aggregates,
        })
    }

    fn limits(&self, raw: RawLimits) -> Result<LimitsConfig, ConfigError> {
        let defaults = LimitsConfig::default();
        let within =
            |key: &str, value: Option<i64>, default: usize, low: i64, high: i64, expected: &str| {
                match value {
                    None => Ok(default),
                    Some(v) if (low..=high).contains(&v) => Ok(v as usize),
                    Some(v) => Err(self.invalid(key, expected, v)),
                }
            };
        let max_payload = within(
            "limits.max_payload",
            raw.max_payload,
            defaults.max_payload,
            1 << 10,
            256 << 20,
            "bytes, 1024 to 268435456",
        )?;
        let max_string = within(
            "limits.max_string",
            raw.max_string,
            defaults.max_string,
            16,
            i64::try_from(max_payload).unwrap_or(i64::MAX),
            "bytes, 16 up to limits.max_payload",
        )?;
        let max_in_flight = within(
            "limits.max_in_flight",
            raw.max_in_flight,
            defaults.max_in_flight,
            1,
            100_000,
            "a number of requests, 1 to 100000",
        )?;
        Ok(LimitsConfig {
            max_payload,
            max_string,
            max_in_flight,
        })
    }

    fn unique_addresses(&self, buses: &[BusConfig]) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<Hadd, String> = BTreeMap::new();
        for bus in buses {
            let nodes = std::iter::once((format!("buses.{}.hadd", bus.oid), bus.node.hadd)).chain(
                bus.components.iter().map(|c| {
                    (
                        format!("buses.{}.components.{}.hadd", bus.oid, c.key),
                        c.node.hadd,
                    )
                }),
            );
            for (key, hadd) in nodes {
                if let Some(first) = seen.insert(hadd, key.clone()) {
                    return Err(self.invalid(
                        &key,
                        &format!("an address not already used by `{first}`"),
                        hadd,
                    ));
                }
            }
        }
        Ok(())
    }
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
        let network_hadd = raw
            .network
            .hadd
            .as_deref()
            .map(|text| check.hadd("network.hadd", text))
            .transpose()?;
        let buses = raw
            .buses
            .into_iter()
            .map(|(oid, bus)| check.bus(oid, bus))
            .collect::<Result<Vec<_>, _>>()?;
        check.unique_addresses(&buses)?;
        if raw.network.role != NetworkRole::None
            && network_hadd.is_none_or(|hadd| !hadd.is_controller())
        {
            return Err(check.invalid(
                "network.hadd",
                "the network controller's HADD (cccc/0000), required with a role",
                format!("{:?}", raw.network.hadd),
            ));
        }
        let web_listen = raw
            .web
            .listen
            .as_deref()
            .map(|text| {
                text.parse::<std::net::SocketAddr>().map_err(|_| {
                    check.invalid(
                        "web.listen",
                        "an IP:PORT like \"127.0.0.1:8080\"",
                        format!("{text:?}"),
                    )
                })
            })
            .transpose()?;
        let interval = raw.network.interval.unwrap_or(1.0);
        if !(0.05..=60.0).contains(&interval) {
            return Err(check.invalid("network.interval", "seconds, 0.05 to 60", interval));
        }
        let original_interval = raw.network.original_interval.unwrap_or(15.0);
        if !(1.0..=3600.0).contains(&original_interval) {
            return Err(check.invalid(
                "network.original_interval",
                "seconds, 1 to 3600 (the original's resolv_timeout)",
                original_interval,
            ));
        }
        Ok(Config {
            file: file.to_owned(),
            broker: check.broker(raw.broker)?,
            network: NetworkConfig {
                role: raw.network.role,
                priority: raw.network.priority,
                hadd: network_hadd,
                interval,
                max_nodes: match raw.network.max_nodes {
                    None => 10_000,
                    Some(n) if (1..=1_000_000).contains(&n) => n as usize,
                    Some(n) => {
                        return Err(check.invalid(
                            "network.max_nodes",
                            "a number of nodes, 1 to 1000000",
                            n,
                        ))
                    }
                },
                key_file: raw.network.key_file.map(|key| check.beside(key)),
                original_primary: raw.network.original_primary,
                original_interval,
            },
            buses,
            hardware: HardwareConfig {
                sysfs_root: raw.hardware.sysfs_root,
                simulate: raw.hardware.simulate,
            },
            web: WebConfig {
                listen: web_listen,
                hosts: raw.web.hosts,
                users_file: raw.web.users_file.map(|users| check.beside(users)),
            },
            limits: check.limits(raw.limits)?,
            home_assistant: check
                .home_assistant(raw.homeassistant, raw.network.role != NetworkRole::None)?,
        })
    }
}
