//! CPU and memory of the tutorial server reading every sensor each second.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench tutorial_polling`
//!
//! `deploy/examples/tutorial.toml` with every `_poll` set to 1 s, on a fake sysfs tree (the
//! DHT through IIO, a DS18B20, the thermal zone and cpufreq), against an embedded broker, with a
//! subscriber counting the publications. CPU is user + system time over 60 s (from /proc), RSS
//! at the end. The original reported 2 to 6 % CPU and 14 MB on a Pi.

use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::procfs::{cpu_seconds, rss_mib};
use janitoo_integration_tests::sysfs::{tutorial_tree, write};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const MEASURE: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    tutorial_tree(root);
    write(root, "/sys/class/hwmon/hwmon0/in0_input", "1200\n");

    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tutorial.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    ))
    .unwrap();
    let text = janitoo_integration_tests::process::without_led(&text);
    std::fs::write(&config, text.replace("_poll = 300", "_poll = 1")).unwrap();
    let sysfs = root.display().to_string();
    let server = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &[
            "--broker",
            &broker.address(),
            "--sysfs-root",
            &sysfs,
            "--no-write-back",
        ],
    );
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/values/user/#").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    client.clear();
    let (cpu_before, started) = (cpu_seconds(&server.pid().to_string()), Instant::now());
    let mut publications = 0;
    while started.elapsed() < MEASURE {
        if client
            .next_matching(Duration::from_millis(200), |_| true)
            .await
            .is_some()
        {
            publications += 1;
        }
    }
    let cpu = cpu_seconds(&server.pid().to_string()) - cpu_before;
    println!(
        "tutorial server, 6 sensor values polled every second on a fake tree: {publications} publications in {:.0} s, CPU {:.2} % of a core, RSS {:.1} MiB",
        started.elapsed().as_secs_f64(),
        cpu / started.elapsed().as_secs_f64() * 100.0,
        rss_mib(&server.pid().to_string()),
    );
}
