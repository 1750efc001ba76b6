//! What the NATS cluster of `deploy/nats/` costs on a Pi: Debian's arm64 `nats-server` (the
//! package of the same version as this machine's, unpacked into `target/nats-arm64/`, fetched
//! with curl the first time) run under qemu-aarch64, three servers, with the failover example
//! and the tutorial connected (native processes). After 30 s of settling, 60 s of the house's
//! ordinary traffic: each server's resident memory (VmRSS, qemu's own included) and CPU time
//! (qemu's emulation included, so an upper bound of a Pi 4's).
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench nats_cost`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use janitoo_broker::nats::{write_loopback_cluster, LoopbackPorts, Security};
use janitoo_integration_tests::network::FailoverNetwork;
use janitoo_integration_tests::process::wait_for_port;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

/// The arm64 nats-server of the installed version, unpacked under `target/`.
fn arm64_nats() -> PathBuf {
    let target = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/nats-arm64"));
    let binary = target.join("usr/sbin/nats-server");
    if binary.exists() {
        return binary;
    }
    let version = String::from_utf8(
        Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", "nats-server"])
            .output()
            .expect("dpkg-query")
            .stdout,
    )
    .unwrap();
    let deb = target.with_extension("deb");
    let url = format!(
        "http://deb.debian.org/debian/pool/main/n/nats-server/nats-server_{version}_arm64.deb"
    );
    assert!(
        Command::new("curl")
            .args(["-sSfo"])
            .arg(&deb)
            .arg(&url)
            .status()
            .unwrap()
            .success(),
        "cannot fetch {url}"
    );
    assert!(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&target)
        .status()
        .unwrap()
        .success());
    binary
}

/// VmRSS (KiB) and CPU time (utime + stime, clock ticks) of `pid`.
fn usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |at: usize| {
        fields
            .get(at)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command's name: state is field 0, utime 11, stime 12.
    (rss, ticks(11) + ticks(12))
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let nats = arm64_nats();
    let dir = tempfile::tempdir().unwrap();
    let free = || janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap();
    let ports = LoopbackPorts {
        mqtt: [free(), free(), free()],
        routes: [free(), free(), free()],
        clients: [free(), free(), free()],
    };
    let confs = write_loopback_cluster(dir.path(), &ports, &Security::Plain).unwrap();
    let mut servers: Vec<Child> = confs
        .iter()
        .map(|conf| {
            Command::new("qemu-aarch64-static")
                .args(["-L", "/usr/aarch64-linux-gnu"])
                .arg(&nats)
                .arg("-c")
                .arg(conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("qemu-aarch64-static runs nats-server")
        })
        .collect();
    for port in ports.mqtt {
        assert!(
            wait_for_port(port, Duration::from_secs(60)),
            "a server never listened"
        );
    }
    let address = |first: usize| {
        (0..3)
            .map(|at| format!("127.0.0.1:{}", ports.mqtt[(first + at) % 3]))
            .collect::<Vec<_>>()
            .join(",")
    };
    let janitoo = Path::new(JANITOO);
    let _net = FailoverNetwork::launch(
        janitoo,
        &address(0),
        |hadd| Some((Command::new(janitoo), address(usize::from(hadd.ctrl) - 1))),
        |text| text + "\n[homeassistant]\n",
        |text| text,
    );
    std::thread::sleep(Duration::from_secs(30));
    let before: Vec<(u64, u64)> = servers.iter().map(|s| usage(s.id())).collect();
    let window = Duration::from_secs(60);
    std::thread::sleep(window);
    let after: Vec<(u64, u64)> = servers.iter().map(|s| usage(s.id())).collect();
    let ticks_per_second = 100.0;
    for (at, ((_, cpu_before), (rss, cpu_after))) in before.iter().zip(&after).enumerate() {
        let cpu = (cpu_after - cpu_before) as f64 / ticks_per_second / window.as_secs_f64();
        println!(
            "nats-server pi{} (arm64 under qemu, the failover example, the tutorial and Home Assistant's discovery on the cluster): RSS {:.1} MiB, CPU {:.1} % of one core",
            at + 1,
            *rss as f64 / 1024.0,
            cpu * 100.0
        );
    }
    for server in &mut servers {
        let _ = server.kill();
        let _ = server.wait();
    }
}
