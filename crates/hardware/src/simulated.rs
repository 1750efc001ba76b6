//! Simulated components: deterministic (seeded) sensors and outputs with the values of the
//! tutorial's components, for the demo and the tests, on any machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use janitoo_actors::{Component, ComponentContext, ComponentError, ComponentInfo, ValueSpec};
use janitoo_protocol::{Data, ValueType};

use crate::components::Built;
use crate::tutorial;

/// A reading that drifts around `base` by at most `spread`, deterministic for a seed.
#[derive(Debug)]
pub struct Drift {
    base: f64,
    spread: f64,
    state: AtomicU64,
}

impl Drift {
    /// A drifting reading.
    pub fn new(base: f64, spread: f64, seed: u64) -> Self {
        Drift {
            base,
            spread,
            state: AtomicU64::new(seed | 1),
        }
    }

    /// The next reading, rounded to 0.1.
    pub fn next(&self) -> f64 {
        // xorshift64: deterministic, no dependency.
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        let unit = (x % 10_000) as f64 / 10_000.0;
        ((self.base + (unit * 2.0 - 1.0) * self.spread) * 10.0).round() / 10.0
    }
}

fn seed_of(context: &ComponentContext<'_>) -> u64 {
    let hadd = context.config.node.hadd;
    u64::from(hadd.ctrl) << 16 | u64::from(hadd.node)
}

/// A sensor node: one drifting reading per value.
pub struct SimulatedSensor {
    product: &'static str,
    specs: Vec<ValueSpec>,
    readings: Vec<(String, Drift)>,
}

impl Component for SimulatedSensor {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software(self.product)
    }

    fn values(&self) -> Vec<ValueSpec> {
        self.specs.clone()
    }

    fn read(&self, uuid: &str, index: u32) -> Result<Data, ComponentError> {
        let (_, drift) = self
            .readings
            .iter()
            .find(|(name, _)| name == uuid)
            .ok_or_else(|| ComponentError::NoSuchValue(uuid.to_owned()))?;
        Ok(Data::from(drift.next() + f64::from(index)))
    }
}

/// The tutorial's DHT node (`rpibasic.dht`): temperature, humidity, `pin` and `sensor`.
pub fn dht(context: &ComponentContext<'_>) -> Built {
    let seed = seed_of(context);
    Ok(Arc::new(SimulatedSensor {
        product: "DHT sensor (simulated)",
        specs: tutorial::dht_values(6.0, 11.0),
        readings: vec![
            ("temperature".into(), Drift::new(21.0, 1.5, seed)),
            ("humidity".into(), Drift::new(45.0, 5.0, seed ^ 0x5eed)),
        ],
    }))
}

/// The tutorial's DS18B20 node (`rpi1wire.ds18b20`): temperature and `hexadd`.
pub fn ds18b20(context: &ComponentContext<'_>) -> Built {
    Ok(Arc::new(SimulatedSensor {
        product: "DS18B20 sensor (simulated)",
        specs: tutorial::ds18b20_values("28-00000463b745"),
        readings: vec![(
            "temperature".into(),
            Drift::new(19.0, 1.0, seed_of(context)),
        )],
    }))
}

/// The tutorial's CPU node (`hostsensor.picpu`): temperature, frequency, voltage.
pub fn picpu(context: &ComponentContext<'_>) -> Built {
    let seed = seed_of(context);
    Ok(Arc::new(SimulatedSensor {
        product: "Raspberry Pi CPU (simulated)",
        specs: tutorial::picpu_values(),
        readings: vec![
            ("temperature".into(), Drift::new(48.0, 4.0, seed)),
            ("frequency".into(), Drift::new(1200.0, 300.0, seed ^ 1)),
            ("voltage".into(), Drift::new(1.2, 0.05, seed ^ 2)),
        ],
    }))
}

/// The host's load average as three instances, like the original's hostsensor `load`.
pub fn load(context: &ComponentContext<'_>) -> Built {
    Ok(Arc::new(SimulatedSensor {
        product: "Load statistics (simulated)",
        specs: vec![ValueSpec::sensor("load", ValueType::Decimal)
            .label("Load")
            .help("The load average over 1, 5 and 15 minutes")
            .genre(janitoo_protocol::Genre::Basic)
            .instances(&[0, 1, 2])
            .poll(60.0)],
        readings: vec![("load".into(), Drift::new(0.5, 0.4, seed_of(context)))],
    }))
}

/// The tutorial's LED (`rpibasic.led`): `switch` (on/off) and `blink` (off, blink, heartbeat).
pub struct SimulatedLed {
    state: Mutex<(String, String)>,
}

impl Component for SimulatedLed {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("LED (simulated)")
    }

    fn values(&self) -> Vec<ValueSpec> {
        tutorial::led_values(19.0)
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        let state = self
            .state
            .lock()
            .map_err(|_| ComponentError::Unavailable("LED state lost".into()))?;
        match uuid {
            "switch" => Ok(Data::from(state.0.as_str())),
            "blink" => Ok(Data::from(state.1.as_str())),
            other => Err(ComponentError::NoSuchValue(other.to_owned())),
        }
    }

    fn apply(&self, uuid: &str, _index: u32, data: &Data) -> Result<(), ComponentError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| ComponentError::Unavailable("LED state lost".into()))?;
        let text = data.as_str().unwrap_or_default().to_owned();
        match uuid {
            "switch" => state.0 = text,
            "blink" => state.1 = text,
            "pin" => {}
            other => return Err(ComponentError::NoSuchValue(other.to_owned())),
        }
        Ok(())
    }
}

/// The tutorial's LED, simulated (`rpibasic.led`), off.
pub fn led() -> Built {
    Ok(Arc::new(SimulatedLed {
        state: Mutex::new(("off".into(), "off".into())),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_deterministic_and_bounded() {
        let (a, b) = (Drift::new(21.0, 1.5, 7), Drift::new(21.0, 1.5, 7));
        for _ in 0..1000 {
            let (x, y) = (a.next(), b.next());
            assert_eq!(x, y);
            assert!((19.5..=22.5).contains(&x), "{x}");
        }
    }
}
