//! DS18B20 temperature sensors on the 1-Wire bus (`w1-gpio` and `w1-therm` kernel modules).

use std::path::PathBuf;

use crate::{read_text, HardwareError, SysfsRoot};

/// Where the 1-Wire devices are.
pub const DEVICES: &str = "/sys/bus/w1/devices";

/// What a DS18B20 reports before its first conversion: never a real reading.
const POWER_ON_MILLIDEGREES: i64 = 85_000;

/// Parses the two lines of `w1_slave`:
///
/// ```text
/// 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
/// 72 01 4b 46 7f ff 0e 10 57 t=23125
/// ```
///
/// The first must end in `YES` (the CRC matched); `t=` is in millidegrees; 85.000 °C is the
/// power-on value, refused as a bad read.
pub fn parse_w1_slave(sensor: &str, text: &str) -> Result<f64, HardwareError> {
    let bad = |why: &str| HardwareError::BadRead {
        what: sensor.to_owned(),
        why: why.to_owned(),
    };
    let mut lines = text.lines();
    let crc = lines.next().ok_or_else(|| bad("empty w1_slave"))?;
    if !crc.trim_end().ends_with("YES") {
        return Err(bad("CRC check failed (no YES)"));
    }
    let data = lines.next().ok_or_else(|| bad("no temperature line"))?;
    let millidegrees = data
        .split("t=")
        .nth(1)
        .and_then(|value| value.trim().parse::<i64>().ok())
        .ok_or_else(|| bad("no t=<millidegrees> on the temperature line"))?;
    if millidegrees == POWER_ON_MILLIDEGREES {
        return Err(bad("85.000 °C is the power-on value, not a reading"));
    }
    if !(-55_000..=125_000).contains(&millidegrees) {
        return Err(bad("outside the DS18B20's range (-55 to 125 °C)"));
    }
    Ok(millidegrees as f64 / 1000.0)
}

/// The temperature of the sensor `address` (`28-00000463b745`), in °C.
pub fn temperature(root: &SysfsRoot, address: &str) -> Result<f64, HardwareError> {
    let path: PathBuf = root.path(DEVICES).join(address).join("w1_slave");
    parse_w1_slave(address, &read_text(&path)?)
}

/// Every DS18B20 on the bus (`28-*`), sorted; the original needed each address by hand.
pub fn scan(root: &SysfsRoot) -> Result<Vec<String>, HardwareError> {
    let folder = root.path(DEVICES);
    let entries = std::fs::read_dir(&folder).map_err(|source| HardwareError::Io {
        path: folder,
        source,
    })?;
    let mut sensors: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("28-"))
        .collect();
    sensors.sort();
    Ok(sensors)
}

/// The first DS18B20 on the bus, for a node configured without an address.
pub fn first_sensor(root: &SysfsRoot) -> Result<String, HardwareError> {
    scan(root)?
        .into_iter()
        .next()
        .ok_or_else(|| HardwareError::Unavailable {
            what: "a DS18B20 (no 28-* on the 1-Wire bus)".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";

    #[test]
    fn a_good_read() {
        assert_eq!(parse_w1_slave("28-x", GOOD).unwrap(), 23.125);
        let negative = GOOD.replace("t=23125", "t=-10062");
        assert_eq!(parse_w1_slave("28-x", &negative).unwrap(), -10.062);
    }

    #[test]
    fn bad_reads_are_refused_with_their_reason() {
        for (text, reason) in [
            ("", "empty"),
            (&GOOD.replace("YES", "NO")[..], "CRC"),
            (&GOOD.replace("t=23125", "t=85000")[..], "power-on"),
            (&GOOD.replace("t=23125", "t=abc")[..], "no t="),
            ("garbage\n", "CRC"),
            (&GOOD.replace("t=23125", "t=150000")[..], "range"),
        ] {
            let err = parse_w1_slave("28-x", text).unwrap_err();
            assert!(err.to_string().contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_scan_lists_every_ds18b20_and_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysfsRoot::new(dir.path());
        for (name, text) in [
            ("28-00000463b745", GOOD),
            ("28-0000046aaaaa", GOOD),
            ("w1_bus_master1", ""),
        ] {
            let folder = root.path(DEVICES).join(name);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("w1_slave"), text).unwrap();
        }
        assert_eq!(scan(&root).unwrap(), ["28-00000463b745", "28-0000046aaaaa"]);
        assert_eq!(temperature(&root, "28-00000463b745").unwrap(), 23.125);
        assert!(matches!(
            temperature(&root, "28-missing").unwrap_err(),
            HardwareError::Io { .. }
        ));
    }
}
