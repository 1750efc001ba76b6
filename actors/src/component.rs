//! The library API for writing a server quickly: a component is a small [`Component`] impl (its
//! values, how to read them, how to apply a set), registered by kind in a
//! [`ComponentRegistry`]; the runtime gives it a node, its actors, polling, heartbeats and
//! everything on the wire.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use janitoo_config::{ComponentConfig, ValueSettings};
use janitoo_protocol::{CommandClass, Data, Genre, ValueType};

/// Why a component could not read or apply a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentError {
    /// The data is not acceptable (answered 400).
    BadValue(String),
    /// The hardware did not answer, or answered nonsense (answered 500; the node's heartbeat
    /// reports it).
    Unavailable(String),
    /// The component has no such value (answered 404).
    NoSuchValue(String),
    /// This machine does not provide the value (answered 500); unlike `Unavailable`, the
    /// node's health is not affected.
    NotSupported(String),
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentError::BadValue(why) => write!(f, "bad value: {why}"),
            ComponentError::Unavailable(why) => write!(f, "unavailable: {why}"),
            ComponentError::NoSuchValue(uuid) => write!(f, "no value {uuid}"),
            ComponentError::NotSupported(why) => write!(f, "not supported: {why}"),
        }
    }
}

impl std::error::Error for ComponentError {}

/// Where a value's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Kept by the node (configuration); config and system ones are written back to the file.
    Stored,
    /// Read from the component (a sensor) and, when writable, applied through it (a switch).
    Component,
}

/// The definition of one value of a component.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    /// The value uuid, unique within the node.
    pub uuid: String,
    /// Genre.
    pub genre: Genre,
    /// Data type.
    pub value_type: ValueType,
    /// Command class.
    pub cmd_class: CommandClass,
    /// Short label.
    pub label: String,
    /// Description.
    pub help: String,
    /// Units.
    pub units: Option<String>,
    /// Lower bound.
    pub min: Option<f64>,
    /// Upper bound.
    pub max: Option<f64>,
    /// Choices of a List value.
    pub list_items: Option<Vec<String>>,
    /// Whether it can be read.
    pub readable: bool,
    /// Whether it can be written over the network.
    pub writable: bool,
    /// Data when nothing was read or configured.
    pub default: Data,
    /// Where the data comes from.
    pub source: Source,
    /// Publication period in seconds, 0 for none; a polled value gets a `<uuid>_poll` config
    /// value that changes it, unless `poll_fixed`.
    pub poll_delay: f64,
    /// The period cannot be changed over the network (no `<uuid>_poll` value).
    pub poll_fixed: bool,
    /// Instance indexes (`[0]` for a single value).
    pub instances: Vec<u32>,
    /// How long a read or a write through the component may take before it is answered 500
    /// (default 10 s; a hung sensor then ties up one thread of the blocking pool, not the node).
    pub timeout: std::time::Duration,
    /// Reading it is cheap and never blocks (a counter, a computation over memory): it is read
    /// in the value actor instead of on the blocking pool.
    pub cheap_read: bool,
    /// The longest string it may be set to, bytes, when it needs more (or less) than the
    /// process's `[limits] max_string`.
    pub max_length: Option<usize>,
}

impl ValueSpec {
    fn base(
        uuid: &str,
        genre: Genre,
        value_type: ValueType,
        cmd_class: CommandClass,
        source: Source,
    ) -> Self {
        ValueSpec {
            uuid: uuid.to_owned(),
            genre,
            value_type,
            cmd_class,
            label: uuid.to_owned(),
            help: String::new(),
            units: None,
            min: None,
            max: None,
            list_items: None,
            readable: true,
            writable: false,
            default: Data::Null,
            source,
            poll_delay: 0.0,
            poll_fixed: false,
            instances: vec![0],
            timeout: std::time::Duration::from_secs(10),
            cheap_read: false,
            max_length: None,
        }
    }

    /// A read-only sensor reading (user genre, SENSOR_MULTILEVEL), read from the component.
    pub fn sensor(uuid: &str, value_type: ValueType) -> Self {
        ValueSpec::base(
            uuid,
            Genre::User,
            value_type,
            CommandClass::SENSOR_MULTILEVEL,
            Source::Component,
        )
    }

    /// A configuration value kept by the node and written back to the file (config genre,
    /// CONFIGURATION), writable.
    pub fn config(uuid: &str, value_type: ValueType) -> Self {
        ValueSpec {
            writable: true,
            ..ValueSpec::base(
                uuid,
                Genre::Config,
                value_type,
                CommandClass::CONFIGURATION,
                Source::Stored,
            )
        }
    }

    /// A system value kept by the node (system genre, CONFIGURATION), writable.
    pub fn system(uuid: &str, value_type: ValueType) -> Self {
        ValueSpec {
            writable: true,
            ..ValueSpec::base(
                uuid,
                Genre::System,
                value_type,
                CommandClass::CONFIGURATION,
                Source::Stored,
            )
        }
    }

    /// A command the user gives through the component (user genre), e.g. a switch.
    pub fn action(uuid: &str, value_type: ValueType, cmd_class: CommandClass) -> Self {
        ValueSpec {
            writable: true,
            ..ValueSpec::base(uuid, Genre::User, value_type, cmd_class, Source::Component)
        }
    }

    /// Sets the label.
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    /// Sets the description.
    pub fn help(mut self, help: &str) -> Self {
        self.help = help.to_owned();
        self
    }

    /// Sets the units.
    pub fn units(mut self, units: &str) -> Self {
        self.units = Some(units.to_owned());
        self
    }

    /// Sets the bounds.
    pub fn range(mut self, min: f64, max: f64) -> Self {
        (self.min, self.max) = (Some(min), Some(max));
        self
    }

    /// Makes it a List of these choices.
    pub fn items(mut self, items: &[&str]) -> Self {
        self.value_type = ValueType::List;
        self.list_items = Some(items.iter().map(|item| (*item).to_owned()).collect());
        self
    }

    /// Sets the default data.
    pub fn default_data(mut self, data: impl Into<Data>) -> Self {
        self.default = data.into();
        self
    }

    /// Publishes the value every `seconds` (0: never), changeable through `<uuid>_poll`.
    pub fn poll(mut self, seconds: f64) -> Self {
        self.poll_delay = seconds;
        self
    }

    /// Publishes the value every `seconds`, a period fixed by the component.
    pub fn poll_fixed(mut self, seconds: f64) -> Self {
        self.poll_delay = seconds;
        self.poll_fixed = true;
        self
    }

    /// Gives the value these instances.
    pub fn instances(mut self, indexes: &[u32]) -> Self {
        self.instances = indexes.to_vec();
        self
    }

    /// Sets how long a read or a write may take.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Marks its read as cheap and never blocking: it runs in the value actor, not on the
    /// blocking pool. Not for hardware.
    pub fn cheap_read(mut self) -> Self {
        self.cheap_read = true;
        self
    }

    /// Sets the longest string it may be set to, bytes (instead of `[limits] max_string`).
    pub fn max_length(mut self, bytes: usize) -> Self {
        self.max_length = Some(bytes);
        self
    }

    /// Makes it read-only.
    pub fn read_only(mut self) -> Self {
        self.writable = false;
        self
    }

    /// Sets the genre.
    pub fn genre(mut self, genre: Genre) -> Self {
        self.genre = genre;
        self
    }

    /// Sets the command class.
    pub fn cmd_class(mut self, cmd_class: CommandClass) -> Self {
        self.cmd_class = cmd_class;
        self
    }

    /// The `<uuid>_poll` config value of a polled value.
    pub(crate) fn poll_value(&self) -> ValueSpec {
        ValueSpec::config(&format!("{}_poll", self.uuid), ValueType::Int)
            .label(&format!("{} poll", self.label))
            .help("The poll delay of the value, in seconds (0: not polled)")
            .units("seconds")
            .range(0.0, 86_400.0)
            .default_data(self.poll_delay)
    }
}

/// What a component says about itself in node info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Product name.
    pub product_name: String,
    /// Product type.
    pub product_type: String,
    /// Manufacturer.
    pub product_manufacturer: String,
}

impl ComponentInfo {
    /// A software component of janitoo-rs.
    pub fn software(product_name: &str) -> Self {
        ComponentInfo {
            product_name: product_name.to_owned(),
            product_type: "Software component".to_owned(),
            product_manufacturer: "janitoo-rs".to_owned(),
        }
    }
}

/// A component: one node of a bus, with its own values.
///
/// Reads and writes run on a blocking pool, never in an actor's mailbox: a slow sensor delays
/// only its own value. A panic in them is caught: the value actor is restarted and the request
/// answered 500.
pub trait Component: Send + Sync + 'static {
    /// Product name and type for node info.
    fn info(&self) -> ComponentInfo;

    /// The values of the node, besides the built-in ones every node has.
    fn values(&self) -> Vec<ValueSpec>;

    /// Reads a [`Source::Component`] value.
    fn read(&self, uuid: &str, index: u32) -> Result<Data, ComponentError>;

    /// Applies a set, already converted and checked against the spec. For component values
    /// this is the action (switch the LED); for stored values the component may use or refuse
    /// the new configuration. The default accepts stored values and refuses the rest.
    fn apply(&self, uuid: &str, index: u32, data: &Data) -> Result<(), ComponentError> {
        let _ = (index, data);
        match self.values().iter().find(|spec| spec.uuid == uuid) {
            Some(spec) if spec.source == Source::Stored => Ok(()),
            _ => Err(ComponentError::NoSuchValue(uuid.to_owned())),
        }
    }
}

/// What a factory gets to build a component: its configuration section.
pub struct ComponentContext<'a> {
    /// The component's section of the configuration file.
    pub config: &'a ComponentConfig,
}

impl ComponentContext<'_> {
    /// The configured data of value `uuid`, instance 0.
    pub fn setting(&self, uuid: &str) -> Option<&Data> {
        self.settings(uuid).and_then(|instances| instances.get(&0))
    }

    /// Every configured instance of value `uuid`.
    pub fn settings(&self, uuid: &str) -> Option<&ValueSettings> {
        self.config.node.values.get(uuid)
    }
}

type Factory =
    Box<dyn Fn(&ComponentContext<'_>) -> Result<Arc<dyn Component>, String> + Send + Sync>;

/// Component kinds by name (`rpibasic.dht`), each with a factory.
#[derive(Default)]
pub struct ComponentRegistry {
    factories: BTreeMap<String, Factory>,
}

impl ComponentRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ComponentRegistry::default()
    }

    /// Registers `kind`.
    pub fn register(
        &mut self,
        kind: &str,
        factory: impl Fn(&ComponentContext<'_>) -> Result<Arc<dyn Component>, String>
            + Send
            + Sync
            + 'static,
    ) -> &mut Self {
        self.factories.insert(kind.to_owned(), Box::new(factory));
        self
    }

    /// The registered kinds.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds the component of a configuration section.
    pub fn create(&self, config: &ComponentConfig) -> Result<Arc<dyn Component>, String> {
        let factory = self.factories.get(&config.kind).ok_or_else(|| {
            let known: Vec<&str> = self.kinds().collect();
            format!(
                "unknown component kind {:?} (known: {})",
                config.kind,
                known.join(", ")
            )
        })?;
        factory(&ComponentContext { config })
    }
}
