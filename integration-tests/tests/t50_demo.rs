//! `janitoo demo` runs the whole network as separate processes, shows it, and leaves nothing
//! behind; `janitoo status` says when the broker cannot be reached.

use janitoo_integration_tests::process::Lines;
use std::process::Command;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

/// Ten seconds of demo: a primary elected, the tutorial's nodes named and online, values shown;
/// afterwards none of its processes is left.
#[test]
fn the_demo_shows_the_network_and_stops_everything_it_started() {
    let output = Command::new(JANITOO)
        .args(["demo", "--duration", "10"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = text.rsplit("janitoo demo: broker").next().unwrap();
    // The demo's network is keyed, and its view checks signatures: the primary it shows
    // signed its heartbeats.
    assert!(last.contains("a keyed network"), "{last}");
    assert!(last.contains("primary: 0001/0000"), "{last}");
    // The web manager is on by default, at 8080 or a free port, and the demo says where.
    assert!(last.contains("Web manager: http://127.0.0.1:"), "{last}");
    for expected in [
        "Ambiance",
        "0220/0001  ONLINE",
        "temperature",
        "0003/0000  secondary",
    ] {
        assert!(
            last.contains(expected),
            "{expected:?} missing from:\n{last}"
        );
    }
    let logs = text
        .lines()
        .find_map(|line| line.split("logs were in ").nth(1))
        .map(|rest| rest.trim_end_matches(").").to_owned())
        .expect("the demo names its folder");
    assert_eq!(
        processes_mentioning(&logs),
        Vec::<String>::new(),
        "processes left"
    );
}

/// The command lines of running processes that mention `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(text))
        .collect()
}

/// Ctrl-C (SIGINT) stops the demo and everything it started.
#[test]
fn ctrl_c_stops_the_demo_and_its_processes() {
    let mut child = Command::new(JANITOO)
        .args(["demo", "--duration", "60", "--no-web"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Everything is up once the live view shows a primary.
    let stdout = Lines::read(child.stdout.take().unwrap());
    assert!(
        stdout.wait_for("primary: 0", std::time::Duration::from_secs(30)),
        "the demo never showed a primary"
    );
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let text = stdout.finish();
    assert!(status.success(), "{text}");
    let logs = text
        .lines()
        .find_map(|line| line.split("logs were in ").nth(1))
        .map(|rest| rest.trim_end_matches(").").to_owned())
        .expect("the demo says it stopped");
    assert_eq!(
        processes_mentioning(&logs),
        Vec::<String>::new(),
        "processes left"
    );
}

/// An unreachable broker: a clear message and exit code 1.
#[test]
fn status_reports_an_unreachable_broker() {
    let output = Command::new(JANITOO)
        .args(["status", "--broker", "127.0.0.1:1", "--wait", "0.5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("broker 127.0.0.1:1 unreachable"));
}

/// `janitoo demo --brokers 3 --chaos 15`: the demo on a NATS cluster of three servers, where
/// "a Pi" dies (the primary's server and the primary together) and comes back, twice; the
/// house goes on: at the end a primary beats and the tutorial's nodes are online, and nothing
/// is left running. Nothing is killed in the last 15 s (a takeover across a lost NATS server
/// can take 10 s and more: clients reconnect, then listen `rejoin` before they claim). Needs
/// nats-server (mandatory with `JANITOO_TEST_NATS`).
#[test]
fn the_demo_on_a_nats_cluster_lives_through_the_death_of_a_pi() {
    let Some(_) = janitoo_integration_tests::nats::nats_server() else {
        return;
    };
    let output = Command::new(JANITOO)
        .args([
            "demo",
            "--brokers",
            "3",
            "--chaos",
            "15",
            "--duration",
            "48",
            "--no-web",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("janitoo demo: a NATS cluster (127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("chaos: pi1 died: its NATS server and primary (0001/0000)"),
        "{text}"
    );
    assert!(text.contains("chaos: pi1 is back"), "{text}");
    let last = text.rsplit("janitoo demo: a NATS cluster").next().unwrap();
    assert!(last.contains("primary: 000"), "{last}");
    assert!(last.contains("0220/0001  ONLINE"), "{last}");
    let logs = text
        .lines()
        .find_map(|line| line.split("logs were in ").nth(1))
        .map(|rest| rest.trim_end_matches(").").to_owned())
        .expect("the demo names its folder");
    assert_eq!(
        processes_mentioning(&logs),
        Vec::<String>::new(),
        "processes left"
    );
}
