//! # janitoo-hardware
//!
//! Raspberry Pi sensors read through the kernel, every path resolved under a configurable root
//! ([`SysfsRoot`]: `/` on a Pi, a fake tree in tests):
//!
//! - [`cpu`]: temperature from the thermal zone (millidegrees), frequency from cpufreq (kHz),
//!   voltage where the Pi's firmware exposes it, else a clear "unavailable".
//! - [`w1`]: DS18B20 sensors on 1-Wire: `w1_slave` parsing (the CRC line must end in `YES`,
//!   `t=` in millidegrees, the 85.000 power-on value is a bad read) and a scan of every `28-*`.
//! - [`dht`]: DHT11/DHT22/AM2302 through the kernel's IIO driver (`dtoverlay=dht11`), with the
//!   retries the sensor needs, and the 40-bit frame decoder of a GPIO bit-bang reader as a pure
//!   function.
//!
//! Every reader returns a [`HardwareError`] that says what was wrong (missing file, garbage,
//! implausible value, the driver's I/O error) instead of a made-up number; the component turns
//! it into the node's health.
//!
//! The tutorial's components are built on them ([`components`]), or simulated on any machine
//! ([`simulated`]), with the same values ([`tutorial`]); [`register_components`] registers
//! each kind once, with the readings asked for.

pub mod components;
pub mod cpu;
pub mod dht;
pub mod dht_bitbang;
mod error;
pub mod led;
pub mod simulated;
pub mod tutorial;
pub mod w1;

use std::path::{Path, PathBuf};

use janitoo_actors::ComponentRegistry;

pub use error::HardwareError;

/// Where the tutorial's components take their readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readings {
    /// Simulated sensors and outputs, on any machine (`--simulate`).
    Simulated,
    /// The hardware: sysfs under this root, and GPIO.
    Hardware(SysfsRoot),
}

/// Registers every component kind this crate knows, once each: `rpibasic.dht`,
/// `rpi1wire.ds18b20`, `hostsensor.picpu` and `rpibasic.led` from `readings`, and
/// `hostsensor.load` (always simulated).
pub fn register_components(registry: &mut ComponentRegistry, readings: Readings) {
    let root = match readings {
        Readings::Simulated => None,
        Readings::Hardware(root) => Some(root),
    };
    let (dht_root, w1_root, cpu_root) = (root.clone(), root.clone(), root.clone());
    let led_hardware = root.is_some();
    registry
        .register("rpibasic.dht", move |context| match &dht_root {
            Some(root) => components::dht(root, context),
            None => simulated::dht(context),
        })
        .register("rpi1wire.ds18b20", move |context| match &w1_root {
            Some(root) => components::ds18b20(root, context),
            None => simulated::ds18b20(context),
        })
        .register("hostsensor.picpu", move |context| match &cpu_root {
            Some(root) => components::picpu(root),
            None => simulated::picpu(context),
        })
        .register("rpibasic.led", move |context| {
            if led_hardware {
                components::led(context)
            } else {
                simulated::led()
            }
        })
        .register("hostsensor.load", simulated::load);
}

/// Where sysfs is: `/` on a Pi, a folder of fake files in tests (`--sysfs-root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsRoot(PathBuf);

impl Default for SysfsRoot {
    fn default() -> Self {
        SysfsRoot(PathBuf::from("/"))
    }
}

impl SysfsRoot {
    /// The root `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SysfsRoot(dir.into())
    }

    /// An absolute sysfs path (`/sys/...`) under this root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.0.join(absolute.trim_start_matches('/'))
    }

    /// The root folder.
    pub fn dir(&self) -> &Path {
        &self.0
    }
}

/// Reads a small text file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> Result<String, HardwareError> {
    std::fs::read_to_string(path).map_err(|source| HardwareError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a file holding one integer (`45120\n`).
pub(crate) fn read_integer(path: &Path) -> Result<i64, HardwareError> {
    let text = read_text(path)?;
    text.trim()
        .parse::<i64>()
        .map_err(|_| HardwareError::Garbage {
            path: path.to_owned(),
            text: text.trim().chars().take(40).collect(),
        })
}
