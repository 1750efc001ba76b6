//! The `[network]` section: the process's part in keeping the network map.
//!
//! ```toml
//! [network]
//! role = "auto"              # none (default), primary, secondary or auto
//! priority = 5               # the higher wins the election
//! hadd = "0002/0000"         # the network controller's own address (required with a role)
//! interval = 1.0             # the primary's heartbeat, seconds, 0.05 to 60
//! key_file = "network.key"   # signs the control plane
//! max_nodes = 10000          # nodes watched at most
//! max_values_per_node = 256  # values kept of each node (what it described)
//! original_primary = false   # the original's janitoo_dhcp may run here
//! original_interval = 15     # its resolv_timeout, seconds, until learned
//! state_dir = "janitoo-state" # where a network controller keeps the lease table
//! ```

use std::path::PathBuf;
use std::time::Duration;

use janitoo_protocol::election::{ElectionConfig, Rank, Role, ORIGINAL_RESOLV_INTERVAL};
use janitoo_protocol::limits::{DEFAULT_MAX_NODES, DEFAULT_MAX_VALUES_PER_NODE};
use janitoo_protocol::liveness::LivenessConfig;
use janitoo_protocol::Hadd;
use serde::Deserialize;

use crate::check::Checker;
use crate::error::ConfigError;

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

impl NetworkRole {
    /// Its role in the election, when it has one.
    pub fn election_role(self) -> Option<Role> {
        match self {
            NetworkRole::None => None,
            NetworkRole::Primary => Some(Role::Primary),
            NetworkRole::Secondary => Some(Role::Secondary),
            NetworkRole::Auto => Some(Role::Auto),
        }
    }
}

/// The `[network]` section.
#[derive(Debug, Clone, PartialEq)]
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
    /// Values (instances) kept of each node (default 256): what the node described; a value
    /// only published, or beyond the number, is dropped and counted.
    pub max_values_per_node: usize,
    /// Whether the original's primary (`janitoo_dhcp`) may run on this network: a starting
    /// controller listens for one of its heartbeat periods before it may claim.
    pub original_primary: bool,
    /// The original primary's heartbeat period (its `resolv_timeout`), seconds, assumed until
    /// learned (default 15).
    pub original_interval: f64,
    /// Where a network controller keeps what must outlive it, the lease table (relative
    /// paths from the configuration file's folder; default [`DEFAULT_STATE_DIR`]).
    pub state_dir: PathBuf,
}

/// The state folder of a network controller, beside its configuration file unless
/// `[network] state_dir` says otherwise (the Debian package's file: `/var/lib/janitoo`).
pub const DEFAULT_STATE_DIR: &str = "janitoo-state";

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            role: NetworkRole::None,
            priority: 0,
            hadd: None,
            interval: ElectionConfig::default().interval.as_secs_f64(),
            key_file: None,
            max_nodes: DEFAULT_MAX_NODES,
            max_values_per_node: DEFAULT_MAX_VALUES_PER_NODE,
            original_primary: false,
            original_interval: ORIGINAL_RESOLV_INTERVAL.as_secs_f64(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        }
    }
}

impl NetworkConfig {
    /// The network controller's address and rank, when this process is one.
    pub fn controller(&self) -> Option<(Hadd, Rank)> {
        let role = self.role.election_role()?;
        let rank = Rank {
            role,
            priority: self.priority,
        };
        self.hadd.map(|hadd| (hadd, rank))
    }

    /// The election's timing.
    pub fn election(&self) -> ElectionConfig {
        ElectionConfig {
            interval: Duration::from_secs_f64(self.interval),
            original_primary: self.original_primary,
            original_interval: Duration::from_secs_f64(self.original_interval),
            // Keyed, the control plane believes only a controller's signed OFFLINE.
            offline_signed: self.key_file.is_some(),
            ..ElectionConfig::default()
        }
    }

    /// The liveness of the nodes watched.
    pub fn liveness(&self) -> LivenessConfig {
        LivenessConfig {
            max_nodes: self.max_nodes,
            max_values_per_node: self.max_values_per_node,
            ..LivenessConfig::default()
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    #[serde(default)]
    pub(crate) role: NetworkRole,
    #[serde(default)]
    priority: u8,
    hadd: Option<String>,
    interval: Option<f64>,
    key_file: Option<PathBuf>,
    max_nodes: Option<i64>,
    max_values_per_node: Option<i64>,
    #[serde(default)]
    original_primary: bool,
    original_interval: Option<f64>,
    state_dir: Option<PathBuf>,
}

impl Checker<'_> {
    pub(crate) fn network(&self, raw: RawNetwork) -> Result<NetworkConfig, ConfigError> {
        let defaults = NetworkConfig::default();
        let hadd = raw
            .hadd
            .as_deref()
            .map(|text| self.hadd("network.hadd", text))
            .transpose()?;
        if raw.role != NetworkRole::None && hadd.is_none_or(|hadd| !hadd.is_controller()) {
            return Err(self.invalid(
                "network.hadd",
                "the network controller's HADD (cccc/0000), required with a role",
                format!("{:?}", raw.hadd),
            ));
        }
        Ok(NetworkConfig {
            role: raw.role,
            priority: raw.priority,
            hadd,
            interval: self.seconds_within(
                "network.interval",
                raw.interval,
                defaults.interval,
                0.05..=60.0,
                "seconds, 0.05 to 60",
            )?,
            key_file: raw.key_file.map(|key| self.beside(key)),
            max_nodes: self.count(
                "network.max_nodes",
                raw.max_nodes,
                defaults.max_nodes,
                1..=1_000_000,
                "a number of nodes, 1 to 1000000",
            )?,
            max_values_per_node: self.count(
                "network.max_values_per_node",
                raw.max_values_per_node,
                defaults.max_values_per_node,
                1..=100_000,
                "a number of values, 1 to 100000",
            )?,
            original_primary: raw.original_primary,
            original_interval: self.seconds_within(
                "network.original_interval",
                raw.original_interval,
                defaults.original_interval,
                1.0..=3600.0,
                "seconds, 1 to 3600 (the original's resolv_timeout)",
            )?,
            state_dir: self.beside(raw.state_dir.unwrap_or(defaults.state_dir)),
        })
    }
}
