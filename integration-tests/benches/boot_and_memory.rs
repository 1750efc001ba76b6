//! Boot time (start of the process to its first heartbeat) and memory of
//! `janitoo run --config deploy/examples/tutorial.toml`, release build.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench boot_and_memory`
//!
//! Ten starts against an already running broker (`--broker`), for each broker: the first
//! heartbeat is timed by `mosquitto_sub -F %U` (arrival time), subscribed before the start. Ten starts with the embedded broker inside the process
//! (the example file has no broker address), for memory only. RSS is read from /proc after 3 s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use janitoo_integration_tests::process::{
    brokers_under_test, wait_for_port, BrokerKind, BrokerProcess,
};
use janitoo_integration_tests::procfs::rss_kib;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const STARTS: usize = 10;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Starts `mosquitto_sub` on the heartbeats; it prints the arrival time of the first one.
fn heartbeat_watcher(port: u16) -> std::process::Child {
    let watcher = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "/dhcp/heartbeat/#",
            "-F",
            "%U",
            "-C",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (Debian's mosquitto-clients) is needed to time the boot");
    std::thread::sleep(Duration::from_millis(300)); // subscribed
    watcher
}

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn one_start(embedded: bool, kind: BrokerKind) -> (Option<f64>, u64) {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    );
    let port = janitoo_broker::free_local_port("127.0.0.1".parse().unwrap()).unwrap();
    let _broker = (!embedded).then(|| BrokerProcess::start(kind, Path::new(JANITOO), Some(port)));
    let mut command = Command::new(JANITOO);
    command
        .args(["run", "--config", example, "--no-write-back", "--simulate"])
        .stderr(Stdio::null());
    let watcher = if embedded {
        command.args(["--embedded-listen", &format!("127.0.0.1:{port}")]);
        None
    } else {
        command.args(["--broker", &format!("127.0.0.1:{port}")]);
        Some(heartbeat_watcher(port))
    };
    let started = unix_now();
    let mut child = command.spawn().unwrap();
    let boot = match watcher {
        Some(watcher) => {
            let output = watcher.wait_with_output().unwrap();
            let arrived: f64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .expect("a timestamp");
            Some((arrived - started) * 1e3)
        }
        None => {
            assert!(wait_for_port(port, Duration::from_secs(10)));
            None
        }
    };
    std::thread::sleep(Duration::from_secs(3));
    let rss = rss_kib(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();
    (boot, rss)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runs = brokers_under_test()
        .into_iter()
        .map(|kind| (false, kind))
        .chain([(true, BrokerKind::Embedded)]);
    for (embedded, kind) in runs {
        let (mut boots, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..STARTS {
            let (boot, kib) = one_start(embedded, kind);
            boots.extend(boot);
            rss.push(kib as f64);
        }
        let memory = format!(
            "RSS median {:.1} MiB over {STARTS} starts",
            median(rss) / 1024.0
        );
        if embedded {
            println!("tutorial.toml, embedded broker in the process: {memory}");
        } else {
            println!(
                "tutorial.toml, {kind:?} broker (--broker): start to first heartbeat median {:.1} ms (max {:.1} ms), {memory}",
                median(boots.clone()),
                boots.iter().cloned().fold(0.0, f64::max),
            );
        }
    }
}
