//! The tutorial's components on real hardware: `rpibasic.dht` (IIO, or bit-banged GPIO),
//! `rpi1wire.ds18b20` (1-Wire), `hostsensor.picpu` (thermal zone, cpufreq) and `rpibasic.led`
//! (GPIO). Reads run on the runtime's blocking pool; a failed or implausible read is an error
//! (the node's heartbeat says FAILED), never a made-up number.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use janitoo_actors::{Component, ComponentContext, ComponentError, ComponentInfo, ValueSpec};
use janitoo_protocol::{data_as_f64, Data, ValueType};

use crate::dht::{find_iio_device, read_iio, with_retries, Model, Reading};
use crate::dht_bitbang::{read_line, GpioLine};
use crate::{cpu, tutorial, w1, HardwareError, SysfsRoot};

fn unavailable(err: HardwareError) -> ComponentError {
    match err {
        HardwareError::Unavailable { .. } => ComponentError::NotSupported(err.to_string()),
        other => ComponentError::Unavailable(other.to_string()),
    }
}

fn setting_text(context: &ComponentContext<'_>, uuid: &str) -> Option<String> {
    context
        .setting(uuid)
        .and_then(Data::as_str)
        .map(str::to_owned)
}

/// How a DHT is read.
enum DhtBackend {
    /// The kernel's IIO driver: the named device, else the first `dht11`.
    Iio(Option<String>),
    /// Bit-banging its GPIO line; the last good reading is reused for 2 s (temperature and
    /// humidity come from one frame, and the sensor wants 2 s between frames).
    Gpio(Mutex<(GpioLine, Option<(Instant, Reading)>)>),
}

/// A DHT, through the kernel's IIO driver (recommended) or by bit-banging its GPIO line.
struct Dht {
    root: SysfsRoot,
    backend: DhtBackend,
    pin: f64,
    sensor: f64,
}

impl Dht {
    fn read_once(&self) -> Result<Reading, HardwareError> {
        match &self.backend {
            DhtBackend::Iio(device) => read_iio(&find_iio_device(&self.root, device.as_deref())?),
            DhtBackend::Gpio(line) => {
                let model = Model::from_code(self.sensor as i64).unwrap_or(Model::Dht11);
                let mut guard = line.lock().map_err(|_| HardwareError::BadRead {
                    what: "DHT".into(),
                    why: "a previous read panicked".into(),
                })?;
                let (line, last) = &mut *guard;
                if let Some((at, reading)) = last {
                    if at.elapsed() < Duration::from_secs(2) {
                        return Ok(*reading);
                    }
                }
                let reading = read_line(line, model)?;
                *last = Some((Instant::now(), reading));
                Ok(reading)
            }
        }
    }
}

impl Component for Dht {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software(match self.backend {
            DhtBackend::Iio(_) => "DHT sensor (IIO)",
            DhtBackend::Gpio(_) => "DHT sensor (GPIO)",
        })
    }

    fn values(&self) -> Vec<ValueSpec> {
        let (backend, device) = match &self.backend {
            DhtBackend::Iio(device) => ("iio", device.clone().unwrap_or_default()),
            DhtBackend::Gpio(_) => ("gpio", String::new()),
        };
        let mut values = tutorial::dht_values(self.pin, self.sensor);
        values.push(
            ValueSpec::config("device", ValueType::String)
                .help("The IIO device (empty: the first dht11)")
                .default_data(device),
        );
        values.push(
            ValueSpec::config("backend", ValueType::String)
                .help("iio: the kernel's dht11 driver (recommended); gpio: bit-bang `pin` (applies at restart)")
                .default_data(backend),
        );
        values
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        // The sensor wants 2 s between reads (DHT22) and fails often: retry after that pause.
        let pause = match self.backend {
            DhtBackend::Iio(_) => Duration::from_millis(500),
            DhtBackend::Gpio(_) => Duration::from_secs(2),
        };
        let reading =
            with_retries(3, pause, std::thread::sleep, || self.read_once()).map_err(unavailable)?;
        match uuid {
            "temperature" => Ok(Data::from(reading.temperature)),
            "humidity" => Ok(Data::from(reading.humidity)),
            other => Err(ComponentError::NoSuchValue(other.to_owned())),
        }
    }
}

/// A DS18B20 on 1-Wire: the configured `hexadd`, else the first sensor found on the bus.
struct Ds18b20 {
    root: SysfsRoot,
    hexadd: Option<String>,
}

impl Component for Ds18b20 {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("DS18B20 sensor (1-Wire)")
    }

    fn values(&self) -> Vec<ValueSpec> {
        tutorial::ds18b20_values(self.hexadd.as_deref().unwrap_or_default())
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        if uuid != "temperature" {
            return Err(ComponentError::NoSuchValue(uuid.to_owned()));
        }
        let address = match &self.hexadd {
            Some(address) => address.clone(),
            None => w1::first_sensor(&self.root).map_err(unavailable)?,
        };
        w1::temperature(&self.root, &address)
            .map(Data::from)
            .map_err(unavailable)
    }
}

/// The host's CPU.
struct PiCpu {
    root: SysfsRoot,
}

impl Component for PiCpu {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Raspberry Pi CPU")
    }

    fn values(&self) -> Vec<ValueSpec> {
        tutorial::picpu_values()
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        let reading = match uuid {
            "temperature" => cpu::temperature(&self.root),
            "frequency" => cpu::frequency(&self.root),
            "voltage" => cpu::voltage(&self.root),
            other => return Err(ComponentError::NoSuchValue(other.to_owned())),
        };
        reading.map(Data::from).map_err(unavailable)
    }
}

/// A built component, or why it cannot be (the configuration's fault, or the machine's).
pub type Built = Result<Arc<dyn Component>, String>;

/// `rpibasic.dht`: through the kernel's IIO driver (`backend = "iio"`, the default) or by
/// bit-banging GPIO `pin` (`backend = "gpio"`).
pub fn dht(root: &SysfsRoot, context: &ComponentContext<'_>) -> Built {
    let sensor = context
        .setting("sensor")
        .and_then(data_as_f64)
        .unwrap_or(11.0);
    if crate::dht::Model::from_code(sensor as i64).is_none() {
        return Err(format!("`sensor` must be 11, 22 or 2302, not {sensor}"));
    }
    let pin = context.setting("pin").and_then(data_as_f64).unwrap_or(6.0);
    let backend = match setting_text(context, "backend").as_deref() {
        None | Some("iio") => {
            DhtBackend::Iio(setting_text(context, "device").filter(|device| !device.is_empty()))
        }
        Some("gpio") => {
            let number = u8::try_from(pin as i64)
                .map_err(|_| format!("`pin` {pin} is not a GPIO number"))?;
            let line = GpioLine::open(number)
                .map_err(|err| format!("{err}; use `backend = \"iio\"`, or run with --simulate"))?;
            DhtBackend::Gpio(Mutex::new((line, None)))
        }
        Some(other) => {
            return Err(format!(
                "`backend` must be \"iio\" or \"gpio\", not {other:?}"
            ))
        }
    };
    Ok(Arc::new(Dht {
        root: root.clone(),
        backend,
        pin,
        sensor,
    }))
}

/// `rpi1wire.ds18b20`: the configured `hexadd`, else the first sensor on the bus.
pub fn ds18b20(root: &SysfsRoot, context: &ComponentContext<'_>) -> Built {
    Ok(Arc::new(Ds18b20 {
        root: root.clone(),
        hexadd: setting_text(context, "hexadd").filter(|address| !address.is_empty()),
    }))
}

/// `hostsensor.picpu`: the thermal zone and cpufreq.
pub fn picpu(root: &SysfsRoot) -> Built {
    Ok(Arc::new(PiCpu { root: root.clone() }))
}

/// `rpibasic.led`: GPIO `pin` (default 19) as an output.
pub fn led(context: &ComponentContext<'_>) -> Built {
    let pin = context.setting("pin").and_then(data_as_f64).unwrap_or(19.0);
    let pin = u8::try_from(pin as i64).map_err(|_| format!("`pin` {pin} is not a GPIO number"))?;
    Ok(Arc::new(crate::led::Led::open(pin)?))
}
