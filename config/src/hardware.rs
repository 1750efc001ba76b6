//! The `[hardware]` section: where and how hardware is read.
//!
//! ```toml
//! [hardware]
//! sysfs_root = "/"      # a fake tree in tests, a copy of a Pi's elsewhere
//! simulate = false      # simulated sensors, for machines that are not Pis
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// The `[hardware]` section.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareConfig {
    /// The root under which sysfs paths are resolved (`/` when absent).
    pub sysfs_root: Option<PathBuf>,
    /// Simulated sensors instead of the hardware (for machines that are not Pis).
    #[serde(default)]
    pub simulate: bool,
}
