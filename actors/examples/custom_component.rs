//! A custom component in a few lines: a soil-moisture probe with a configurable dry threshold.
//!
//! ```sh
//! cargo run -p janitoo-actors --example custom_component              # embedded broker
//! cargo run -p janitoo-actors --example custom_component -- 127.0.0.1:1883
//! ```
//!
//! Then, from any MQTT client: `/nodes/0400/0001/request` answers gets and sets of `moisture`,
//! `dry` and `threshold`; `/values/user/0400/0001/moisture` is published every 10 s.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use janitoo_actors::{
    Component, ComponentError, ComponentInfo, ComponentRegistry, Controller, StartOptions,
    ValueSpec,
};
use janitoo_config::{BrokerAddress, Config};
use janitoo_protocol::{data_as_f64, Data, ValueType};

/// The probe: a reading, and a threshold below which the soil is dry.
struct SoilProbe {
    threshold: AtomicU64,
}

impl SoilProbe {
    fn moisture(&self) -> f64 {
        // A real probe would read an ADC here, e.g. under /sys/bus/iio/devices/.
        37.5
    }
}

impl Component for SoilProbe {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Soil moisture probe")
    }

    fn values(&self) -> Vec<ValueSpec> {
        vec![
            ValueSpec::sensor("moisture", ValueType::Decimal)
                .label("Moisture")
                .units("%")
                .poll(10.0),
            ValueSpec::sensor("dry", ValueType::Bool)
                .label("Dry")
                .genre(janitoo_protocol::Genre::Basic),
            ValueSpec::config("threshold", ValueType::Decimal)
                .help("Below this moisture the soil is dry")
                .units("%")
                .range(0.0, 100.0)
                .default_data(30.0),
        ]
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        let threshold = f64::from_bits(self.threshold.load(Ordering::Relaxed));
        match uuid {
            "moisture" => Ok(Data::from(self.moisture())),
            "dry" => Ok(Data::from(self.moisture() < threshold)),
            other => Err(ComponentError::NoSuchValue(other.to_owned())),
        }
    }

    fn apply(&self, uuid: &str, _index: u32, data: &Data) -> Result<(), ComponentError> {
        match (uuid, data_as_f64(data)) {
            ("threshold", Some(threshold)) => {
                self.threshold.store(threshold.to_bits(), Ordering::Relaxed);
                Ok(())
            }
            _ => Err(ComponentError::NoSuchValue(uuid.to_owned())),
        }
    }
}

const CONFIG: &str = r#"
[buses.garden]
hadd = "0400/0000"
name = "Garden"

[buses.garden.components.soil]
kind = "garden.soil"
hadd = "0400/0001"
name = "Vegetable patch"
values = { threshold = 25 }
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse(CONFIG, Path::new("custom_component.toml"))?;
    let mut registry = ComponentRegistry::new();
    registry.register("garden.soil", |context| {
        let threshold = context
            .setting("threshold")
            .and_then(data_as_f64)
            .unwrap_or(30.0);
        Ok(Arc::new(SoilProbe {
            threshold: AtomicU64::new(threshold.to_bits()),
        }))
    });

    let (broker, _embedded): (BrokerAddress, _) = match std::env::args().nth(1) {
        Some(address) => (address.parse()?, None),
        None => {
            let embedded = janitoo_broker::EmbeddedBroker::start("127.0.0.1:1883".parse()?)?;
            (embedded.addr().into(), Some(embedded))
        }
    };
    println!("serving node 0400/0001 through {broker}; Ctrl-C to stop");
    let options = StartOptions {
        broker: &broker.clone().into(),
        registry: &registry,
        codec: Default::default(),
        write_back: false,
    };
    Ok(Controller::run_until_stopped(&config, options)?)
}
