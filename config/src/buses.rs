//! The `[buses.*]` sections: each bus (the controller node `cccc/0000`), its components (its
//! other nodes) and the values they start with.
//!
//! ```toml
//! [buses.rpibasic]                      # a bus: the controller node 0220/0000
//! kind = "rpibasic"                     # default: the oid
//! hadd = "0220/0000"
//! name = "Hello world"
//! location = "DHT"
//! heartbeat = 30                        # seconds, more than 0, at most 3000
//! config_timeout = 3                    # seconds, 0 to 3000
//! aggregates = { temperature = "average" }   # <oid>_temperature: average, min or max
//!
//! [buses.rpibasic.components.ambiance]  # a component: node uuid rpibasic__ambiance
//! kind = "rpibasic.dht"
//! hadd = "0220/0001"
//! values = { pin = 6, sensor = 11, temperature_poll = 300, load = { 0 = 1.5, 2 = 2.5 } }
//! ```

use std::collections::BTreeMap;

use janitoo_protocol::lease_table::MAX_UNCONFIRMED_PER_CONTROLLER;
use janitoo_protocol::{Data, Hadd};
use serde::Deserialize;

use crate::check::Checker;
use crate::convert::toml_to_data;
use crate::error::ConfigError;

/// `hadd = "auto"`: the node's address is leased from the network's primary at start.
pub const AUTO: &str = "auto";
/// The key written beside a leased address (`leased = true`): the address came from the
/// network, and is locked at each start and released at a clean stop.
pub const LEASED_KEY: &str = "leased";

/// The `hadd` of a node with [`Address::Auto`], never an address of a node (0000/0000).
const AUTO_PLACEHOLDER: Hadd = Hadd::new(0, 0);

/// Where a node's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// Given by hand.
    Fixed,
    /// `hadd = "auto"`, not leased yet: the node's `hadd` means nothing until it is, and the
    /// controller does not start before.
    Auto,
    /// Leased from the network at an earlier start (`leased = true`).
    Leased,
}

/// What every node (bus controller or component) has.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Its address (meaningless while [`NodeConfig::address`] is [`Address::Auto`]).
    pub hadd: Hadd,
    /// Where the address comes from.
    pub address: Address,
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

/// What a bus and a component both say of their node.
struct RawNode {
    hadd: String,
    leased: Option<bool>,
    name: Option<String>,
    location: Option<String>,
    heartbeat: Option<f64>,
    config_timeout: Option<f64>,
    values: toml::Table,
}

/// A bus and a component share their node's keys (serde's `flatten` would lose
/// `deny_unknown_fields`).
macro_rules! raw_with_node {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$field_meta:meta])* $field:ident: $type:ty,)* }) => {
        $(#[$meta])*
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $($(#[$field_meta])* $field: $type,)*
            hadd: String,
            leased: Option<bool>,
            name: Option<String>,
            location: Option<String>,
            heartbeat: Option<f64>,
            config_timeout: Option<f64>,
            #[serde(default)]
            values: toml::Table,
        }

        impl $name {
            fn node(&mut self) -> RawNode {
                RawNode {
                    hadd: std::mem::take(&mut self.hadd),
                    leased: self.leased,
                    name: self.name.take(),
                    location: self.location.take(),
                    heartbeat: self.heartbeat,
                    config_timeout: self.config_timeout,
                    values: std::mem::take(&mut self.values),
                }
            }
        }
    };
}

raw_with_node! {
    /// A `[buses.<oid>]` table.
    pub(crate) struct RawBus {
        kind: Option<String>,
        #[serde(default)]
        components: BTreeMap<String, RawComponent>,
        #[serde(default)]
        aggregates: BTreeMap<String, toml::Value>,
    }
}

raw_with_node! {
    /// A `[buses.<oid>.components.<key>]` table.
    struct RawComponent {
        kind: String,
    }
}

impl Checker<'_> {
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

    fn node(&self, key: &str, raw: RawNode) -> Result<NodeConfig, ConfigError> {
        let (hadd, address) =
            match (raw.hadd.trim(), raw.leased) {
                (AUTO, Some(true)) => return Err(self.invalid(
                    &format!("{key}.{LEASED_KEY}"),
                    "no `leased` beside hadd = \"auto\" (it is written with the leased address)",
                    "true",
                )),
                (AUTO, _) => (AUTO_PLACEHOLDER, Address::Auto),
                (text, leased) => {
                    let hadd = self.hadd(&format!("{key}.hadd"), text)?;
                    let address = if leased == Some(true) {
                        Address::Leased
                    } else {
                        Address::Fixed
                    };
                    (hadd, address)
                }
            };
        Ok(NodeConfig {
            hadd,
            address,
            name: raw.name,
            location: raw.location,
            heartbeat: self.period(&format!("{key}.heartbeat"), raw.heartbeat, true)?,
            config_timeout: self.period(
                &format!("{key}.config_timeout"),
                raw.config_timeout,
                false,
            )?,
            values: self.values(&format!("{key}.values"), &raw.values)?,
        })
    }

    fn component(
        &self,
        bus: &str,
        controller: &NodeConfig,
        component_key: String,
        mut raw: RawComponent,
    ) -> Result<ComponentConfig, ConfigError> {
        let key = format!("{bus}.components.{component_key}");
        self.name(&key, &component_key)?;
        let node = self.node(&key, raw.node())?;
        match (controller.address, node.address) {
            (_, Address::Auto) => {}
            (Address::Auto, _) => {
                return Err(self.invalid(
                    &format!("{key}.hadd"),
                    "\"auto\", as its bus's (a fixed node address needs a fixed controller)",
                    node.hadd,
                ))
            }
            _ => self.under(&key, controller.hadd, node.hadd)?,
        }
        if raw.kind.trim().is_empty() {
            return Err(self.invalid(
                &format!("{key}.kind"),
                "a component kind like \"rpibasic.dht\"",
                "\"\"",
            ));
        }
        Ok(ComponentConfig {
            key: component_key,
            kind: raw.kind,
            node,
        })
    }

    /// `hadd` (at `key`) is a node address under `controller`.
    fn under(&self, key: &str, controller: Hadd, hadd: Hadd) -> Result<(), ConfigError> {
        if hadd.ctrl != controller.ctrl || hadd.is_controller() {
            let expected = format!(
                "a HADD {:04}/nnnn of the bus's controller, with nnnn not 0000",
                controller.ctrl
            );
            return Err(self.invalid(&format!("{key}.hadd"), &expected, hadd));
        }
        Ok(())
    }

    pub(crate) fn bus(&self, oid: String, mut raw: RawBus) -> Result<BusConfig, ConfigError> {
        let key = format!("buses.{oid}");
        self.name(&key, &oid)?;
        let node = self.node(&key, raw.node())?;
        if node.address != Address::Auto && !node.hadd.is_controller() {
            return Err(self.invalid(
                &format!("{key}.hadd"),
                "a controller HADD (cccc/0000)",
                node.hadd,
            ));
        }
        let components = raw
            .components
            .into_iter()
            .map(|(component_key, raw)| self.component(&key, &node, component_key, raw))
            .collect::<Result<Vec<_>, _>>()?;
        let auto = components
            .iter()
            .filter(|component| component.node.address == Address::Auto)
            .count();
        if auto > MAX_UNCONFIRMED_PER_CONTROLLER {
            return Err(self.invalid(
                &format!("{key}.components"),
                &format!(
                    "at most {MAX_UNCONFIRMED_PER_CONTROLLER} components with hadd = \"auto\" \
                     (the primary leases no more under one controller before their first \
                     heartbeat): give the others fixed addresses, or add them at a later start"
                ),
                auto,
            ));
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

    /// Every node's address is its own (those still to lease have none yet).
    pub(crate) fn unique_addresses(&self, buses: &[BusConfig]) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<Hadd, String> = BTreeMap::new();
        for bus in buses {
            let nodes = std::iter::once((format!("buses.{}.hadd", bus.oid), &bus.node)).chain(
                bus.components.iter().map(|c| {
                    (
                        format!("buses.{}.components.{}.hadd", bus.oid, c.key),
                        &c.node,
                    )
                }),
            );
            let addressed = nodes.filter(|(_, node)| node.address != Address::Auto);
            for (key, node) in addressed {
                if let Some(first) = seen.insert(node.hadd, key.clone()) {
                    return Err(self.invalid(
                        &key,
                        &format!("an address not already used by `{first}`"),
                        node.hadd,
                    ));
                }
            }
        }
        Ok(())
    }
}
