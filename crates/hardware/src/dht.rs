//! DHT11, DHT22 and AM2302 humidity and temperature sensors.
//!
//! The recommended backend is the kernel's IIO driver (`dtoverlay=dht11,gpiopin=N` in
//! `/boot/config.txt`, for every DHT model): it exposes `in_temp_input` (millidegrees) and
//! `in_humidityrelative_input` (thousandths of a percent) under
//! `/sys/bus/iio/devices/iio:deviceN/`. The sensor fails often (EIO, timeouts), so reads are
//! retried. A GPIO bit-bang reader gets a train of pulses; [`bits_from_pulses`] and
//! [`decode_frame`] turn it into a reading, as pure functions.

use std::path::PathBuf;
use std::time::Duration;

use crate::{read_integer, read_text, HardwareError, SysfsRoot};

/// Where IIO devices are.
pub const IIO_DEVICES: &str = "/sys/bus/iio/devices";

/// The sensor model: the frame's scaling differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// DHT11: whole degrees and percents (a tenth in the second byte of each).
    Dht11,
    /// DHT22 and AM2302: tenths, 16 bits each, sign bit on the temperature.
    Dht22,
}

impl Model {
    /// The model of the original's `sensor` value: 11, 22 or 2302.
    pub fn from_code(code: i64) -> Option<Model> {
        match code {
            11 => Some(Model::Dht11),
            22 | 2302 => Some(Model::Dht22),
            _ => None,
        }
    }
}

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// °C.
    pub temperature: f64,
    /// Relative humidity, %.
    pub humidity: f64,
}

fn plausible(what: &str, reading: Reading) -> Result<Reading, HardwareError> {
    let bad = |why: String| HardwareError::BadRead {
        what: what.to_owned(),
        why,
    };
    if !(-40.0..=80.0).contains(&reading.temperature) {
        return Err(bad(format!(
            "{} °C is outside a DHT's range",
            reading.temperature
        )));
    }
    if !(0.0..=100.0).contains(&reading.humidity) {
        return Err(bad(format!(
            "{} % is not a relative humidity",
            reading.humidity
        )));
    }
    Ok(reading)
}

/// The IIO device of the DHT driver: `device` names it (`iio:device0`), else the first one
/// whose `name` is `dht11` (the driver's name for every model).
pub fn find_iio_device(root: &SysfsRoot, device: Option<&str>) -> Result<PathBuf, HardwareError> {
    let folder = root.path(IIO_DEVICES);
    if let Some(device) = device {
        return Ok(folder.join(device));
    }
    let entries = std::fs::read_dir(&folder).map_err(|source| HardwareError::Io {
        path: folder.clone(),
        source,
    })?;
    let mut devices: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    devices.sort();
    devices
        .into_iter()
        .find(|path| read_text(&path.join("name")).is_ok_and(|name| name.trim().starts_with("dht")))
        .ok_or_else(|| HardwareError::Unavailable {
            what: format!(
                "a DHT sensor (no IIO device named dht11 under {})",
                folder.display()
            ),
        })
}

/// One read of the IIO device at `device`.
pub fn read_iio(device: &std::path::Path) -> Result<Reading, HardwareError> {
    let reading = Reading {
        temperature: read_integer(&device.join("in_temp_input"))? as f64 / 1000.0,
        humidity: read_integer(&device.join("in_humidityrelative_input"))? as f64 / 1000.0,
    };
    plausible(&device.display().to_string(), reading)
}

/// Calls `read` up to `tries` times, pausing `pause` (through `sleep`) between failures; the
/// last error if none succeeds. The DHT fails often: EIO and timeouts from the driver, and
/// readings that do not pass the plausibility check.
pub fn with_retries<T>(
    tries: u32,
    pause: Duration,
    mut sleep: impl FnMut(Duration),
    mut read: impl FnMut() -> Result<T, HardwareError>,
) -> Result<T, HardwareError> {
    let mut attempt = 1;
    loop {
        match read() {
            Ok(value) => return Ok(value),
            Err(err @ HardwareError::Unavailable { .. }) => return Err(err),
            Err(err) if attempt >= tries.max(1) => return Err(err),
            Err(_) => {
                attempt += 1;
                sleep(pause);
            }
        }
    }
}

/// Turns the high-pulse durations of a frame (µs) into its 5 bytes: a bit is 1 when its high
/// pulse is longer than 50 µs (26-28 µs for 0, 70 µs for 1). The sensor's 80 µs response pulse
/// may lead the train. A pulse longer than 90 µs is two merged by a missed edge, and a
/// response pulse outside 60-100 µs means the train is shifted: both are bad reads, since a
/// shifted frame can pass the checksum by chance.
pub fn bits_from_pulses(high_micros: &[u32]) -> Result<[u8; 5], HardwareError> {
    let bad = |why: String| HardwareError::BadRead {
        what: "DHT frame".into(),
        why,
    };
    let pulses = match high_micros.len() {
        40 => high_micros,
        41 if (60..=100).contains(&high_micros[0]) => &high_micros[1..],
        41 => {
            return Err(bad(format!(
                "a response pulse of {} µs, expected about 80 (edges missed)",
                high_micros[0]
            )))
        }
        count => return Err(bad(format!("{count} pulses, expected 40"))),
    };
    if let Some(long) = pulses.iter().find(|micros| **micros > 90) {
        return Err(bad(format!(
            "a bit pulse of {long} µs, at most 90 (edges missed)"
        )));
    }
    let mut bytes = [0u8; 5];
    for (at, micros) in pulses.iter().enumerate() {
        if *micros > 50 {
            bytes[at / 8] |= 0x80 >> (at % 8);
        }
    }
    Ok(bytes)
}

/// Decodes a 40-bit frame: checksum, then the model's scaling (negative temperatures included).
pub fn decode_frame(bytes: [u8; 5], model: Model) -> Result<Reading, HardwareError> {
    let sum = bytes[..4]
        .iter()
        .fold(0u8, |sum, byte| sum.wrapping_add(*byte));
    if sum != bytes[4] {
        return Err(HardwareError::BadRead {
            what: "DHT frame".into(),
            why: format!("checksum {:#04x} does not match {:#04x}", bytes[4], sum),
        });
    }
    let reading = match model {
        Model::Dht11 => {
            let magnitude = f64::from(bytes[2]) + f64::from(bytes[3] & 0x7f) / 10.0;
            Reading {
                humidity: f64::from(bytes[0]) + f64::from(bytes[1]) / 10.0,
                temperature: if bytes[3] & 0x80 != 0 {
                    -magnitude
                } else {
                    magnitude
                },
            }
        }
        Model::Dht22 => {
            let magnitude = f64::from(u16::from(bytes[2] & 0x7f) << 8 | u16::from(bytes[3])) / 10.0;
            Reading {
                humidity: f64::from(u16::from(bytes[0]) << 8 | u16::from(bytes[1])) / 10.0,
                temperature: if bytes[2] & 0x80 != 0 {
                    -magnitude
                } else {
                    magnitude
                },
            }
        }
    };
    plausible("DHT frame", reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pulse train as a scope records it: jittered 26-28 µs zeros and 68-72 µs ones, after
    /// the 80 µs response.
    fn recorded(bytes: [u8; 5]) -> Vec<u32> {
        let mut pulses = vec![80];
        for (at, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                let jitter = ((at * 8 + bit) % 3) as u32;
                pulses.push(if byte & (0x80 >> bit) != 0 {
                    68 + jitter * 2
                } else {
                    26 + jitter
                });
            }
        }
        pulses
    }

    fn frame(first: [u8; 4]) -> [u8; 5] {
        let sum = first.iter().fold(0u8, |sum, byte| sum.wrapping_add(*byte));
        [first[0], first[1], first[2], first[3], sum]
    }

    #[test]
    fn dht22_frames_decode_with_tenths_and_negative_temperatures() {
        // 65.2 % and 35.1 °C: 0x028C, 0x015F.
        let bytes = bits_from_pulses(&recorded(frame([0x02, 0x8c, 0x01, 0x5f]))).unwrap();
        assert_eq!(
            decode_frame(bytes, Model::Dht22).unwrap(),
            Reading {
                humidity: 65.2,
                temperature: 35.1
            }
        );
        // -10.1 °C: sign bit set, magnitude 0x0065.
        let cold = decode_frame(frame([0x01, 0xf4, 0x80, 0x65]), Model::Dht22).unwrap();
        assert_eq!((cold.humidity, cold.temperature), (50.0, -10.1));
    }

    #[test]
    fn dht11_frames_decode_whole_values() {
        let bytes = bits_from_pulses(&recorded(frame([45, 0, 23, 4]))[1..]).unwrap();
        assert_eq!(
            decode_frame(bytes, Model::Dht11).unwrap(),
            Reading {
                humidity: 45.0,
                temperature: 23.4
            }
        );
        assert_eq!(
            decode_frame(frame([30, 0, 2, 0x85]), Model::Dht11)
                .unwrap()
                .temperature,
            -2.5
        );
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut bytes = frame([0x02, 0x8c, 0x01, 0x5f]);
        bytes[4] ^= 1;
        assert!(decode_frame(bytes, Model::Dht22)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        assert!(bits_from_pulses(&[30; 39])
            .unwrap_err()
            .to_string()
            .contains("39 pulses"));
        // 150 % humidity.
        assert!(decode_frame(frame([0x05, 0xdc, 0x00, 0xc8]), Model::Dht22)
            .unwrap_err()
            .to_string()
            .contains("humidity"));
        assert_eq!(Model::from_code(2302), Some(Model::Dht22));
        assert_eq!(Model::from_code(7), None);
    }

    fn iio_tree(temp: &str, humidity: &str) -> (tempfile::TempDir, SysfsRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = SysfsRoot::new(dir.path());
        let device = root.path(IIO_DEVICES).join("iio:device0");
        std::fs::create_dir_all(&device).unwrap();
        std::fs::write(device.join("name"), "dht11\n").unwrap();
        std::fs::write(device.join("in_temp_input"), temp).unwrap();
        std::fs::write(device.join("in_humidityrelative_input"), humidity).unwrap();
        (dir, root)
    }

    #[test]
    fn the_iio_driver_gives_the_numbers_in_the_tree() {
        let (_dir, root) = iio_tree("21400\n", "45100\n");
        let device = find_iio_device(&root, None).unwrap();
        assert_eq!(
            read_iio(&device).unwrap(),
            Reading {
                temperature: 21.4,
                humidity: 45.1
            }
        );
    }

    #[test]
    fn failing_reads_are_retried_then_reported() {
        let (_dir, root) = iio_tree("garbage", "45100\n");
        let device = find_iio_device(&root, None).unwrap();
        let mut pauses = 0;
        let err = with_retries(
            3,
            Duration::from_millis(10),
            |_| pauses += 1,
            || read_iio(&device),
        )
        .unwrap_err();
        assert!(matches!(err, HardwareError::Garbage { .. }));
        assert_eq!(pauses, 2);
        // The third try succeeds (EIO twice, as the driver does).
        let mut calls = 0;
        let reading = with_retries(
            3,
            Duration::ZERO,
            |_| {},
            || {
                calls += 1;
                if calls < 3 {
                    Err(HardwareError::Io {
                        path: device.clone(),
                        source: std::io::Error::from_raw_os_error(5),
                    })
                } else {
                    read_iio(&root.path(IIO_DEVICES).join("iio:device0")).or(Ok(Reading {
                        temperature: 1.0,
                        humidity: 1.0,
                    }))
                }
            },
        );
        assert!(reading.is_ok() && calls == 3);
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(empty.path().join("sys/bus/iio/devices")).unwrap();
        let missing = find_iio_device(&SysfsRoot::new(empty.path()), None).unwrap_err();
        assert!(
            matches!(missing, HardwareError::Unavailable { .. }),
            "{missing}"
        );
    }
}
