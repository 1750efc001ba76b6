//! The Janitoo tutorial server in under 100 lines: the CPU, a DHT and a DS18B20 of a Raspberry
//! Pi. A sensor node is one small `Component` impl; each reading is a function over the kernel
//! readers of janitoo-hardware.
//!
//! ```sh
//! janitoo broker &                                  # or Mosquitto on 127.0.0.1:1883
//! cargo run -p janitoo-hardware --example tutorial -- 127.0.0.1:1883 /   # broker, sysfs root
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use janitoo_actors::{Component, ComponentError, ComponentInfo, ComponentRegistry};
use janitoo_actors::{Controller, StartOptions, ValueSpec};
use janitoo_config::{BrokerAddress, Config};
use janitoo_hardware::{cpu, dht, register_components, w1, HardwareError, Readings, SysfsRoot};
use janitoo_protocol::{Data, ValueType};

/// The tutorial's configuration: three buses, their nodes, the LED (simulated here).
const CONFIG: &str = include_str!("../../../deploy/examples/tutorial.toml");

/// A reading: its value uuid, its units, and how to take it.
type Reading = (&'static str, &'static str, Take);
/// How a reading is taken.
type Take = fn(&SysfsRoot) -> Result<f64, HardwareError>;

/// A sensor node: each of its readings is a value, polled every minute.
struct Sensor {
    root: SysfsRoot,
    readings: Vec<Reading>,
}

impl Component for Sensor {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Tutorial sensor")
    }

    fn values(&self) -> Vec<ValueSpec> {
        let spec = |(uuid, units, _): &Reading| {
            ValueSpec::sensor(uuid, ValueType::Decimal)
                .units(units)
                .poll(60.0)
        };
        self.readings.iter().map(spec).collect()
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        let (_, _, take) = self
            .readings
            .iter()
            .find(|(name, _, _)| *name == uuid)
            .ok_or_else(|| ComponentError::NoSuchValue(uuid.into()))?;
        take(&self.root)
            .map(Data::from)
            .map_err(|err| ComponentError::Unavailable(err.to_string()))
    }
}

/// The DHT through the kernel's IIO driver, with the retries the sensor needs.
fn dht(root: &SysfsRoot) -> Result<dht::Reading, HardwareError> {
    let device = dht::find_iio_device(root, None)?;
    dht::with_retries(3, Duration::from_millis(500), std::thread::sleep, || {
        dht::read_iio(&device)
    })
}

/// The first DS18B20 on the 1-Wire bus.
fn ds18b20(root: &SysfsRoot) -> Result<f64, HardwareError> {
    w1::temperature(root, &w1::first_sensor(root)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let broker: BrokerAddress = args.next().as_deref().unwrap_or("127.0.0.1:1883").parse()?;
    let root = SysfsRoot::new(args.next().unwrap_or_else(|| "/".into()));
    let kinds: [(&str, Vec<Reading>); 3] = [
        (
            "hostsensor.picpu",
            vec![
                ("temperature", "°C", cpu::temperature),
                ("frequency", "MHz", cpu::frequency),
            ],
        ),
        (
            "rpibasic.dht",
            vec![
                ("temperature", "°C", |r| Ok(dht(r)?.temperature)),
                ("humidity", "%", |r| Ok(dht(r)?.humidity)),
            ],
        ),
        ("rpi1wire.ds18b20", vec![("temperature", "°C", ds18b20)]),
    ];
    let mut registry = ComponentRegistry::new();
    register_components(&mut registry, Readings::Simulated); // a simulated LED; led::Led drives one
    for (kind, readings) in kinds {
        let root = root.clone();
        registry.register(kind, move |_| {
            Ok(Arc::new(Sensor {
                root: root.clone(),
                readings: readings.clone(),
            }))
        });
    }
    let config = Config::parse(CONFIG, Path::new("tutorial.toml"))?;
    let options = StartOptions {
        broker: &broker.clone().into(),
        registry: &registry,
        codec: Default::default(),
        write_back: false,
    };
    Ok(Controller::run_until_stopped(&config, options)?)
}
