//! The values of the tutorial's components (§7 of the protocol notes), shared by the simulated
//! components and the hardware ones, so that both publish the same uuids, units and classes.

use janitoo_actors::ValueSpec;
use janitoo_protocol::{CommandClass, ValueType};

/// Publication period of the tutorial's sensor readings, seconds.
pub const POLL: f64 = 300.0;

/// `temperature`: a reading in °C.
pub fn temperature(help: &str) -> ValueSpec {
    ValueSpec::sensor("temperature", ValueType::Decimal)
        .label("Temperature")
        .help(help)
        .units("°C")
        .poll(POLL)
}

/// A DHT node (`rpibasic.dht`): temperature, humidity, `pin`, `sensor`.
pub fn dht_values(pin: f64, sensor: f64) -> Vec<ValueSpec> {
    vec![
        temperature("The temperature"),
        ValueSpec::sensor("humidity", ValueType::Decimal)
            .label("Humidity")
            .help("The relative humidity")
            .units("%")
            .poll(POLL),
        ValueSpec::config("pin", ValueType::Int)
            .help("The GPIO pin of the sensor")
            .range(0.0, 53.0)
            .default_data(pin),
        ValueSpec::config("sensor", ValueType::Int)
            .help("The sensor type: 11, 22 or 2302")
            .default_data(sensor),
    ]
}

/// A DS18B20 node (`rpi1wire.ds18b20`): temperature, `hexadd`.
pub fn ds18b20_values(hexadd: &str) -> Vec<ValueSpec> {
    vec![
        temperature("The temperature"),
        ValueSpec::config("hexadd", ValueType::String)
            .help("The 1-Wire address of the sensor (empty: the first 28-* found)")
            .default_data(hexadd),
    ]
}

/// The CPU node (`hostsensor.picpu`): temperature, frequency, voltage.
pub fn picpu_values() -> Vec<ValueSpec> {
    vec![
        temperature("The CPU temperature"),
        ValueSpec::sensor("frequency", ValueType::Decimal)
            .label("Frequency")
            .units("MHz")
            .poll(POLL),
        ValueSpec::sensor("voltage", ValueType::Decimal)
            .label("Voltage")
            .units("V")
            .poll(POLL),
    ]
}

/// The LED's `blink` choices.
pub const BLINK_MODES: [&str; 3] = ["off", "blink", "heartbeat"];

/// The LED node (`rpibasic.led`): `switch`, `blink`, `pin`.
pub fn led_values(pin: f64) -> Vec<ValueSpec> {
    vec![
        ValueSpec::action("switch", ValueType::List, CommandClass::SWITCH_BINARY)
            .label("Switch")
            .help("Switch the LED on or off")
            .items(&["on", "off"])
            .default_data("off"),
        ValueSpec::action("blink", ValueType::List, CommandClass::BLINK)
            .label("Blink")
            .help("Make the LED blink")
            .items(&BLINK_MODES)
            .default_data("off"),
        ValueSpec::config("pin", ValueType::Int)
            .help("The GPIO pin of the LED (applied at restart)")
            .range(0.0, 53.0)
            .default_data(pin),
    ]
}
