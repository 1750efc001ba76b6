//! `janitoo demo` runs the whole network as separate processes, shows it, and leaves nothing
//! behind; `janitoo status` says when the broker cannot be reached.

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
    assert!(last.contains("primary: 0001/0000"), "{last}");
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
    let leftovers = Command::new("pgrep").args(["-f", &logs]).output().unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&leftovers.stdout)
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
