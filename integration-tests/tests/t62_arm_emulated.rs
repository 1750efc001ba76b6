//! The aarch64 and armv7 binaries (`deploy/build-arm`, in `target/arm/`), run under qemu-user
//! against Mosquitto: the tutorial server on a fake sysfs tree publishes its heartbeats and the
//! tree's numbers; in simulated mode its LED is set; SIGTERM says OFFLINE; off a Pi, its GPIO is
//! refused at start with the same clear error as on x86.
//!
//! Mandatory with `JANITOO_TEST_ARM=1` (`.ci/run` builds the binaries first); skipped, saying
//! why, when the binaries, qemu or Mosquitto are missing and the variable is unset.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{
    mosquitto_path, without_led, BrokerKind, BrokerProcess, ControllerProcess,
};
use janitoo_integration_tests::require::runs;
use janitoo_integration_tests::sysfs::tutorial_tree;
use janitoo_protocol::{CommandClass, Data, Genre, Hadd, Request, Status};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

/// An ARM target: its triple, qemu, and the folder of its C library.
struct Arm {
    triple: &'static str,
    qemu: &'static str,
    libraries: &'static str,
}

const TARGETS: [Arm; 2] = [
    Arm {
        triple: "aarch64-unknown-linux-gnu",
        qemu: "qemu-aarch64-static",
        libraries: "/usr/aarch64-linux-gnu",
    },
    Arm {
        triple: "armv7-unknown-linux-gnueabihf",
        qemu: "qemu-arm-static",
        libraries: "/usr/arm-linux-gnueabihf",
    },
];

impl Arm {
    fn binary(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/arm")
            .join(self.triple)
            .join("release/janitoo")
    }

    fn qemu_found(&self) -> bool {
        Command::new(self.qemu)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// `janitoo` of this target, under qemu.
    fn command(&self) -> Command {
        let mut command = Command::new(self.qemu);
        command.arg("-L").arg(self.libraries).arg(self.binary());
        command
    }
}

/// Whether the test runs: the binaries, qemu and Mosquitto are there (or, required, a panic).
fn ready() -> bool {
    let missing: Vec<String> = TARGETS
        .iter()
        .flat_map(|arm| {
            let mut missing = Vec::new();
            if !arm.binary().exists() {
                missing.push(format!("{} (run deploy/build-arm)", arm.binary().display()));
            }
            if !arm.qemu_found() {
                missing.push(format!("{} (apt install qemu-user-static)", arm.qemu));
            }
            missing
        })
        .chain(mosquitto_path().is_none().then(|| "mosquitto".to_owned()))
        .collect();
    runs(
        "JANITOO_TEST_ARM",
        missing.is_empty(),
        &format!("missing {}", missing.join(", ")),
    )
    .is_some()
}

fn reading(hadd: Hadd, uuid: &str) -> Request {
    Request::get(hadd, uuid, Genre::User, CommandClass::SENSOR_MULTILEVEL)
}

fn tutorial() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    ))
    .unwrap()
}

async fn tree_numbers_heartbeats_and_offline(arm: &Arm, broker: &BrokerProcess) {
    let tree = tempfile::tempdir().unwrap();
    tutorial_tree(tree.path());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tutorial.toml");
    std::fs::write(&config, without_led(&tutorial())).unwrap();
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client.subscribe("/dhcp/heartbeat/#").await;
    let sysfs = tree.path().display().to_string();
    let mut server = ControllerProcess::spawn(
        arm.command(),
        &config,
        &["--broker", &broker.address(), "--sysfs-root", &sysfs],
    );
    let beat = client
        .next_matching(Duration::from_secs(30), |received| {
            received.topic == "/dhcp/heartbeat/0220/0001" && received.payload == b"ONLINE"
        })
        .await;
    assert!(beat.is_some(), "{}: no heartbeat of 0220/0001", arm.triple);
    let (dht, ds18b20, cpu) = (Hadd::new(220, 1), Hadd::new(221, 1), Hadd::new(222, 1));
    let first = client
        .ask_until_answered(|| reading(cpu, "temperature"), Duration::from_secs(20))
        .await;
    assert_eq!(first.value.data, Data::from(47.25), "{}", arm.triple);
    for (hadd, uuid, expected) in [
        (dht, "temperature", 21.4),
        (dht, "humidity", 45.1),
        (ds18b20, "temperature", 18.625),
        (cpu, "frequency", 1500.0),
    ] {
        let reply = client.ask(reading(hadd, uuid)).await;
        assert_eq!(
            (reply.status(), reply.value.data),
            (Status::OK, Data::from(expected)),
            "{}: {hadd} {uuid}",
            arm.triple
        );
    }
    client.clear();
    assert!(
        server.terminate(Duration::from_secs(20)),
        "{}: no clean exit on SIGTERM",
        arm.triple
    );
    let offline = client
        .next_matching(Duration::from_secs(5), |received| {
            received.topic == "/dhcp/heartbeat/0220/0001" && received.payload == b"OFFLINE"
        })
        .await;
    assert!(offline.is_some(), "{}: no OFFLINE on SIGTERM", arm.triple);
}

async fn simulated_led_is_set(arm: &Arm, broker: &BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tutorial.toml");
    std::fs::write(&config, tutorial()).unwrap();
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let _server = ControllerProcess::spawn(
        arm.command(),
        &config,
        &["--broker", &broker.address(), "--simulate"],
    );
    let led = Hadd::new(220, 2);
    let set = || {
        Request::set(
            led,
            "switch",
            Genre::User,
            CommandClass::SWITCH_BINARY,
            Data::from("on"),
        )
    };
    let reply = client
        .ask_until_answered(set, Duration::from_secs(30))
        .await;
    assert_eq!(
        (reply.status(), reply.value.data),
        (Status::OK, Data::from("on")),
        "{}",
        arm.triple
    );
}

/// Off a Pi, the LED's GPIO is refused at start: the same message and exit code as on x86.
fn gpio_refused_as_on_x86(arm: &Arm) {
    let tutorial = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    );
    let run = |mut command: Command| {
        let output = command
            .args(["run", "--config", tutorial, "--broker", "127.0.0.1:1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let line = stderr
            .lines()
            .find(|line| line.contains("GPIO"))
            .map(|line| {
                line.split_once("GPIO")
                    .map_or(line, |(_, rest)| rest)
                    .to_owned()
            });
        (output.status.code(), line, stderr)
    };
    let (x86_code, x86_line, x86) = run(Command::new(JANITOO));
    let (arm_code, arm_line, stderr) = run(arm.command());
    assert_eq!(x86_code, Some(2), "{x86}");
    assert_eq!(
        (arm_code, &arm_line),
        (x86_code, &x86_line),
        "{}: {stderr}",
        arm.triple
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arm_binaries_run_the_tutorial_server_under_emulation() {
    if !ready() {
        return;
    }
    let broker = BrokerProcess::start(BrokerKind::Mosquitto, Path::new(JANITOO), None);
    for arm in &TARGETS {
        tree_numbers_heartbeats_and_offline(arm, &broker).await;
        simulated_led_is_set(arm, &broker).await;
        if !Path::new("/dev/gpiomem").exists() {
            gpio_refused_as_on_x86(arm);
        }
    }
}
