//! Fake sysfs trees for the hardware readers.

use std::path::Path;

/// The DS18B20 of the tutorial's tree.
pub const W1_SLAVE: &str = "/sys/bus/w1/devices/28-00000463b745/w1_slave";

/// Writes `text` at the absolute sysfs `path` under `root`.
pub fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().expect("a file path")).expect("a writable tree");
    std::fs::write(path, text).expect("a writable tree");
}

/// The sensors of the tutorial server: the SoC at 47.25 °C and 1500 MHz, a DHT through IIO at
/// 21.4 °C and 45.1 %, a DS18B20 at 18.625 °C. No voltage monitor.
pub fn tutorial_tree(root: &Path) {
    write(root, "/sys/class/thermal/thermal_zone0/temp", "47250\n");
    write(
        root,
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq",
        "1500000\n",
    );
    write(root, "/sys/bus/iio/devices/iio:device0/name", "dht11\n");
    write(
        root,
        "/sys/bus/iio/devices/iio:device0/in_temp_input",
        "21400\n",
    );
    write(
        root,
        "/sys/bus/iio/devices/iio:device0/in_humidityrelative_input",
        "45100\n",
    );
    write(
        root,
        W1_SLAVE,
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=18625\n",
    );
}
