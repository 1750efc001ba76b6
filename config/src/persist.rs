//! Writing settings changed over the network back into the configuration file, atomically and
//! keeping the file's comments and layout.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use janitoo_protocol::node::builtin;
use janitoo_protocol::Data;
use toml_edit::{DocumentMut, Item, Table};

use crate::convert::data_to_toml;
use crate::error::ConfigError;

/// Which node of the file a setting belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeKey {
    /// The controller node of bus `oid`: `[buses.<oid>]`.
    Bus(String),
    /// A component: `[buses.<bus>.components.<key>]`.
    Component {
        /// The bus oid.
        bus: String,
        /// The component key.
        key: String,
    },
}

/// Which setting of a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SettingKey {
    /// `name`.
    Name,
    /// `location`.
    Location,
    /// `hadd`.
    Hadd,
    /// `heartbeat`, seconds.
    Heartbeat,
    /// `config_timeout`, seconds.
    ConfigTimeout,
    /// `leased` (true: the address was leased from the network).
    Leased,
    /// `values.<uuid>` (instance 0 as a plain value) or `values.<uuid>.<index>`.
    Value {
        /// The value uuid.
        uuid: String,
        /// The instance.
        index: u32,
    },
}

impl SettingKey {
    fn node_key(&self) -> Option<&'static str> {
        Some(match self {
            SettingKey::Name => builtin::NAME,
            SettingKey::Location => builtin::LOCATION,
            SettingKey::Hadd => builtin::HADD,
            SettingKey::Heartbeat => builtin::HEARTBEAT,
            SettingKey::ConfigTimeout => builtin::CONFIG_TIMEOUT,
            SettingKey::Leased => crate::buses::LEASED_KEY,
            SettingKey::Value { .. } => return None,
        })
    }
}

impl std::fmt::Display for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeKey::Bus(oid) => f.write_str(oid),
            NodeKey::Component { bus, key } => write!(f, "{bus}__{key}"),
        }
    }
}

/// A configuration file open for write-back.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    document: DocumentMut,
}

impl ConfigFile {
    /// Opens `path` for write-back (it should have been checked with `Config::load`).
    pub fn open(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        let document = text
            .parse::<DocumentMut>()
            .map_err(|err| ConfigError::Syntax {
                file: path.to_owned(),
                message: err.to_string(),
            })?;
        // A write-back killed half-way leaves its temporary file: nothing in it is needed.
        let _ = fs::remove_file(temporary_path(path));
        Ok(ConfigFile {
            path: path.to_owned(),
            document,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one setting; see [`ConfigFile::persist_all`].
    pub fn persist(
        &mut self,
        node: &NodeKey,
        setting: &SettingKey,
        data: &Data,
    ) -> Result<(), ConfigError> {
        self.persist_all([(node, setting, data)])
    }

    /// Writes settings into the file, atomically: all of them or, on error, none (the file and
    /// this handle stay as they were). Null data removes the setting.
    pub fn persist_all<'a>(
        &mut self,
        changes: impl IntoIterator<Item = (&'a NodeKey, &'a SettingKey, &'a Data)>,
    ) -> Result<(), ConfigError> {
        let mut document = self.document.clone();
        for (node, setting, data) in changes {
            let table =
                node_table(&mut document, node).ok_or_else(|| ConfigError::UnknownNode {
                    file: self.path.clone(),
                    node: node.to_string(),
                    key: format!("{setting:?}"),
                })?;
            apply(table, setting, data);
        }
        write_atomically(&self.path, document.to_string().as_bytes()).map_err(|source| {
            ConfigError::Write {
                file: self.path.clone(),
                source,
            }
        })?;
        self.document = document;
        Ok(())
    }
}

/// One setting to write: the node, the setting, its new data.
pub type Change = (NodeKey, SettingKey, Data);

impl ConfigFile {
    /// Writes a batch of settings changed over the network, each checked first exactly as the
    /// start-up check would check the file (`Config::parse`), so that nothing reaches the file
    /// that the next start would refuse. The valid ones are written together, atomically; an
    /// invalid one is left out and its error returned in its place.
    ///
    /// `Err` when the file cannot be written: then nothing was, and the handle is unchanged.
    pub fn persist_checked(
        &mut self,
        changes: &[Change],
    ) -> Result<Vec<Result<(), ConfigError>>, ConfigError> {
        let mut document = self.document.clone();
        let unknown = |node: &NodeKey, setting: &SettingKey| ConfigError::UnknownNode {
            file: self.path.clone(),
            node: node.to_string(),
            key: format!("{setting:?}"),
        };
        // Most often the whole batch is valid: one check for all of it.
        let mut outcomes = Vec::with_capacity(changes.len());
        for (node, setting, data) in changes {
            match node_table(&mut document, node) {
                Some(table) => {
                    apply(table, setting, data);
                    outcomes.push(Ok(()));
                }
                None => outcomes.push(Err(unknown(node, setting))),
            }
        }
        if crate::Config::parse(&document.to_string(), &self.path).is_err() {
            // Find the culprits: each change on top of the valid ones before it.
            document = self.document.clone();
            for (outcome, (node, setting, data)) in outcomes.iter_mut().zip(changes) {
                if outcome.is_err() {
                    continue;
                }
                let mut attempt = document.clone();
                let Some(table) = node_table(&mut attempt, node) else {
                    continue;
                };
                apply(table, setting, data);
                match crate::Config::parse(&attempt.to_string(), &self.path) {
                    Ok(_) => document = attempt,
                    Err(err) => *outcome = Err(err),
                }
            }
        }
        if outcomes.iter().any(Result::is_ok) {
            write_atomically(&self.path, document.to_string().as_bytes()).map_err(|source| {
                ConfigError::Write {
                    file: self.path.clone(),
                    source,
                }
            })?;
            self.document = document;
        }
        Ok(outcomes)
    }
}

fn node_table<'d>(document: &'d mut DocumentMut, node: &NodeKey) -> Option<&'d mut Table> {
    let buses = document.get_mut("buses")?.as_table_like_mut()?;
    let (bus, component) = match node {
        NodeKey::Bus(oid) => (oid, None),
        NodeKey::Component { bus, key } => (bus, Some(key)),
    };
    let bus = buses.get_mut(bus)?.as_table_mut()?;
    match component {
        None => Some(bus),
        Some(key) => bus
            .get_mut("components")?
            .as_table_like_mut()?
            .get_mut(key)?
            .as_table_mut(),
    }
}

fn apply(table: &mut Table, setting: &SettingKey, data: &Data) {
    let value = data_to_toml(data);
    if let Some(key) = setting.node_key() {
        match value {
            Some(value) => table[key] = Item::Value(value),
            None => {
                table.remove(key);
            }
        }
        return;
    }
    let SettingKey::Value { uuid, index } = setting else {
        return;
    };
    let values = table
        .entry("values")
        .or_insert_with(|| Item::Table(Table::new()));
    let Some(values) = values.as_table_like_mut() else {
        return;
    };
    let existing_instances = values.get(uuid).is_some_and(|item| item.is_table_like());
    if *index == 0 && !existing_instances {
        match value {
            Some(value) => values.insert(uuid, Item::Value(value)),
            None => values.remove(uuid),
        };
        return;
    }
    // Instances: a table of index = data, turning a plain instance-0 value into one.
    if !existing_instances {
        let mut instances = toml_edit::InlineTable::new();
        if let Some(old) = values.get(uuid).and_then(Item::as_value) {
            instances.insert("0", old.clone());
        }
        values.insert(uuid, Item::Value(toml_edit::Value::InlineTable(instances)));
    }
    if let Some(instances) = values.get_mut(uuid).and_then(Item::as_table_like_mut) {
        let index = index.to_string();
        match value {
            Some(value) => instances.insert(&index, Item::Value(value)),
            None => instances.remove(&index),
        };
    }
}

/// Writes `bytes` to `path` so that a crash at any point leaves the old file or the new one: a
/// temporary file in the same folder, fsync, rename over the original, fsync of the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = folder_of(path);
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = File::create(&temporary)?;
        if let Ok(metadata) = fs::metadata(path) {
            file.set_permissions(metadata.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        File::open(folder)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    }
}

/// `.<name>.tmp` beside the file: one per file, so a killed write-back leaves at most one.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    folder_of(path).join(format!(".{name}.tmp"))
}
