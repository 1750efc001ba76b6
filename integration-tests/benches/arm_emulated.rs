//! The ARM binaries (`deploy/build-arm`, release): their size stripped, and the tutorial
//! server's start under qemu-user, **emulation**: for regressions only, not a Pi's speed.
//!
//! Run: `bash deploy/build-arm && cargo bench -p janitoo-integration-tests --bench arm_emulated`
//!
//! For each target (x86_64 native, as the reference of the same run, then aarch64 and armv7
//! under qemu): five starts of `janitoo run --config deploy/examples/tutorial.toml --simulate`
//! against Mosquitto; the start is timed to the first heartbeat's arrival (`mosquitto_sub -F
//! %U`, subscribed before); RSS is read from /proc 3 s after the start (under qemu, the
//! emulator's RSS, which holds the guest's memory and qemu's own).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use janitoo_integration_tests::process::{BrokerKind, BrokerProcess};
use janitoo_integration_tests::procfs::rss_kib;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const STARTS: usize = 5;

struct Target {
    name: &'static str,
    binary: PathBuf,
    /// qemu and the C library folder, for an ARM target.
    emulator: Option<(&'static str, &'static str)>,
    strip: &'static str,
}

fn targets() -> Vec<Target> {
    let arm = |triple: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/arm")
            .join(triple)
            .join("release/janitoo")
    };
    vec![
        Target {
            name: "x86_64 (native)",
            binary: PathBuf::from(JANITOO),
            emulator: None,
            strip: "strip",
        },
        Target {
            name: "aarch64 (qemu)",
            binary: arm("aarch64-unknown-linux-gnu"),
            emulator: Some(("qemu-aarch64-static", "/usr/aarch64-linux-gnu")),
            strip: "aarch64-linux-gnu-strip",
        },
        Target {
            name: "armv7 (qemu)",
            binary: arm("armv7-unknown-linux-gnueabihf"),
            emulator: Some(("qemu-arm-static", "/usr/arm-linux-gnueabihf")),
            strip: "arm-linux-gnueabihf-strip",
        },
    ]
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The size of a stripped copy, in KiB.
fn stripped_kib(target: &Target) -> Option<u64> {
    let copy = tempfile::NamedTempFile::new().ok()?;
    std::fs::copy(&target.binary, copy.path()).ok()?;
    let stripped = Command::new(target.strip).arg(copy.path()).status().ok()?;
    stripped
        .success()
        .then(|| std::fs::metadata(copy.path()).map(|m| m.len() / 1024).ok())?
}

fn one_start(target: &Target) -> (f64, u64) {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    );
    let broker = BrokerProcess::start(BrokerKind::Mosquitto, Path::new(JANITOO), None);
    let watcher = Command::new("mosquitto_sub")
        .args(["-p", &broker.port.to_string(), "-t", "/dhcp/heartbeat/#"])
        .args(["-F", "%U", "-C", "1", "-W", "120"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (Debian's mosquitto-clients)");
    std::thread::sleep(Duration::from_millis(300)); // subscribed
    let mut command = match target.emulator {
        Some((qemu, libraries)) => {
            let mut command = Command::new(qemu);
            command.arg("-L").arg(libraries).arg(&target.binary);
            command
        }
        None => Command::new(&target.binary),
    };
    command
        .args(["run", "--config", example, "--no-write-back", "--simulate"])
        .args(["--broker", &broker.address()])
        .stderr(Stdio::null());
    let started = unix_now();
    let mut child = command.spawn().unwrap();
    let output = watcher.wait_with_output().unwrap();
    let arrived: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("no heartbeat within 120 s");
    let elapsed = unix_now() - started;
    std::thread::sleep(Duration::from_secs(3).saturating_sub(Duration::from_secs_f64(elapsed)));
    let rss = rss_kib(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();
    (arrived - started, rss)
}

fn main() {
    println!("ARM binaries: size stripped, and the tutorial server's start under EMULATION");
    println!("(qemu-user on this x86_64 machine: for regressions only, not a Pi's speed)\n");
    println!(
        "{:<18} {:>14} {:>22} {:>16}",
        "target", "stripped KiB", "start to heartbeat ms", "RSS at 3 s MiB"
    );
    for target in targets() {
        if !target.binary.exists() {
            println!(
                "{:<18} not built: {} (run deploy/build-arm)",
                target.name,
                target.binary.display()
            );
            continue;
        }
        let size = stripped_kib(&target).map_or("?".to_owned(), |kib| kib.to_string());
        let runs: Vec<(f64, u64)> = (0..STARTS).map(|_| one_start(&target)).collect();
        let start = median(runs.iter().map(|(s, _)| s * 1000.0).collect());
        let rss = median(runs.iter().map(|(_, r)| *r as f64 / 1024.0).collect());
        println!(
            "{:<18} {:>14} {:>22.0} {:>16.1}",
            target.name, size, start, rss
        );
    }
    println!("\nmedians of {STARTS} starts each, Mosquitto on loopback, --simulate");
}
