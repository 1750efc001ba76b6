//! The CPU: temperature, frequency and voltage.

use crate::{read_integer, HardwareError, SysfsRoot};

/// The thermal zone of the SoC.
pub const THERMAL_ZONE: &str = "/sys/class/thermal/thermal_zone0/temp";
/// The current frequency of CPU 0, in kHz.
pub const CPU_FREQUENCY: &str = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq";
/// Where hardware monitors are.
pub const HWMON: &str = "/sys/class/hwmon";

/// The SoC temperature in °C (the file holds millidegrees).
pub fn temperature(root: &SysfsRoot) -> Result<f64, HardwareError> {
    let path = root.path(THERMAL_ZONE);
    let celsius = read_integer(&path)? as f64 / 1000.0;
    if !(-40.0..=125.0).contains(&celsius) {
        return Err(HardwareError::BadRead {
            what: path.display().to_string(),
            why: format!("{celsius} °C is outside what a SoC reports"),
        });
    }
    Ok(celsius)
}

/// The CPU frequency in MHz (the file holds kHz).
pub fn frequency(root: &SysfsRoot) -> Result<f64, HardwareError> {
    Ok(read_integer(&root.path(CPU_FREQUENCY))? as f64 / 1000.0)
}

/// The core voltage in V, from a hardware monitor that reports `in0_input` (millivolts), when
/// the machine has one; else [`HardwareError::Unavailable`], never a made-up number.
pub fn voltage(root: &SysfsRoot) -> Result<f64, HardwareError> {
    let unavailable = || HardwareError::Unavailable {
        what: "the core voltage".into(),
    };
    let monitors = std::fs::read_dir(root.path(HWMON)).map_err(|_| unavailable())?;
    for monitor in monitors.flatten() {
        let input = monitor.path().join("in0_input");
        if input.exists() {
            return Ok(read_integer(&input)? as f64 / 1000.0);
        }
    }
    Err(unavailable())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, SysfsRoot) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let root = SysfsRoot::new(dir.path());
        (dir, root)
    }

    #[test]
    fn readings_come_from_the_tree() {
        let (_dir, root) = tree(&[
            (THERMAL_ZONE, "48312\n"),
            (CPU_FREQUENCY, "1200000\n"),
            ("/sys/class/hwmon/hwmon1/in0_input", "1203\n"),
        ]);
        assert_eq!(temperature(&root).unwrap(), 48.312);
        assert_eq!(frequency(&root).unwrap(), 1200.0);
        assert_eq!(voltage(&root).unwrap(), 1.203);
    }

    #[test]
    fn missing_empty_and_garbage_files_are_errors_that_name_the_file() {
        let (_dir, root) = tree(&[
            (CPU_FREQUENCY, ""),
            ("/sys/class/hwmon/hwmon0/name", "cpu_thermal\n"),
        ]);
        let missing = temperature(&root).unwrap_err();
        assert!(
            matches!(missing, HardwareError::Io { .. })
                && missing.to_string().contains("thermal_zone0"),
            "{missing}"
        );
        assert!(matches!(
            frequency(&root).unwrap_err(),
            HardwareError::Garbage { .. }
        ));
        assert!(matches!(
            voltage(&root).unwrap_err(),
            HardwareError::Unavailable { .. }
        ));
        let (_dir, root) = tree(&[(THERMAL_ZONE, "hot\n")]);
        assert!(matches!(
            temperature(&root).unwrap_err(),
            HardwareError::Garbage { .. }
        ));
    }

    #[test]
    fn an_implausible_temperature_is_a_bad_read() {
        let (_dir, root) = tree(&[(THERMAL_ZONE, "200000\n")]);
        assert!(matches!(
            temperature(&root).unwrap_err(),
            HardwareError::BadRead { .. }
        ));
    }
}
