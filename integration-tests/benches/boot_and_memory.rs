//! Boot time (start of the process to its first heartbeat) and memory of
//! `janitoo run --config deploy/examples/tutorial.toml`, release build.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench boot_and_memory`
//!
//! Ten starts against an already running broker (`--broker`): the first heartbeat is seen by a
//! subscriber connected before the start. Ten starts with the embedded broker inside the process
//! (the example file has no broker address), for memory only. RSS is read from /proc after 3 s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{wait_for_port, BrokerKind, BrokerProcess};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const STARTS: usize = 10;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn one_start(embedded: bool) -> (Option<f64>, u64) {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    );
    let port = janitoo_broker::free_local_port("127.0.0.1".parse().unwrap()).unwrap();
    let _broker = (!embedded)
        .then(|| BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), Some(port)));
    let mut command = Command::new(JANITOO);
    command
        .args(["run", "--config", example, "--no-write-back"])
        .stderr(Stdio::null());
    let boot = if embedded {
        command.args(["--embedded-listen", &format!("127.0.0.1:{port}")]);
        None
    } else {
        command.args(["--broker", &format!("127.0.0.1:{port}")]);
        let mut client = Client::connect(port).await;
        client.subscribe("/dhcp/heartbeat/#").await;
        Some(client)
    };
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let boot = match boot {
        Some(mut client) => {
            client
                .next_matching(Duration::from_secs(10), |_| true)
                .await
                .expect("no heartbeat");
            Some(started.elapsed().as_secs_f64() * 1e3)
        }
        None => {
            assert!(wait_for_port(port, Duration::from_secs(10)));
            None
        }
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    (boot, rss)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    for embedded in [false, true] {
        let (mut boots, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..STARTS {
            let (boot, kib) = one_start(embedded).await;
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
                "tutorial.toml, external broker (--broker): start to first heartbeat median {:.1} ms (max {:.1} ms), {memory}",
                median(boots.clone()),
                boots.iter().cloned().fold(0.0, f64::max),
            );
        }
    }
}
