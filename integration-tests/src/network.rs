//! The failover example as processes: three network controllers
//! (`deploy/examples/failover/`: 0001 primary, 0002 and 0003 secondaries) and the tutorial
//! server (simulated sensors), each from a copy of its example file.

use std::path::{Path, PathBuf};
use std::process::Command;

use janitoo_protocol::Hadd;

use crate::process::ControllerProcess;

/// The controllers of the failover example, in their files' order.
pub const CONTROLLERS: [(Hadd, &str); 3] = [
    (Hadd::new(1, 0), "primary.toml"),
    (Hadd::new(2, 0), "secondary-a.toml"),
    (Hadd::new(3, 0), "secondary-b.toml"),
];

/// An example configuration of `deploy/examples/`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples")).join(name)
}

/// Copies an example (path relative to `deploy/examples/`) into `dir`, editing its text.
pub fn copy_example(name: &str, dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = edit(std::fs::read_to_string(example(name)).unwrap());
    let copy = dir.join(Path::new(name).file_name().unwrap());
    // The failover examples name the network's key beside them: the copies share one.
    if text.contains(EXAMPLE_KEY_LINE) && !dir.join("network.key").exists() {
        janitoo_config::secrets::write_new_key(&dir.join("network.key")).unwrap();
    }
    std::fs::write(&copy, text).unwrap();
    copy
}

/// How the failover examples name their key (`network.key`, beside them).
const EXAMPLE_KEY_LINE: &str = "\nkey_file = \"network.key\"";

/// A configuration's `text` with the network's key in `key_file`: the example's line replaced,
/// or one added in its `[network]` table, or in one of its own.
pub fn with_key_file(text: String, key_file: &Path) -> String {
    let line = format!("key_file = {:?}\n", key_file.display().to_string());
    let text = unkeyed(text);
    match text.find("[network]\n") {
        Some(at) => {
            let after = at + "[network]\n".len();
            format!("{}{line}{}", &text[..after], &text[after..])
        }
        None => format!("{text}\n[network]\n{line}"),
    }
}

/// A configuration's `text` without the example's key: an unkeyed network (beside the
/// original, or to test what an unkeyed network withstands).
pub fn unkeyed(text: String) -> String {
    text.lines()
        .filter(|line| !line.starts_with("key_file = \"network.key\""))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Network controllers and the tutorial server, killed when dropped.
pub struct FailoverNetwork {
    /// Each controller, by address.
    pub controllers: Vec<(Hadd, ControllerProcess)>,
    /// The tutorial server.
    pub tutorial: ControllerProcess,
    _dir: tempfile::TempDir,
}

impl FailoverNetwork {
    /// Starts the three controllers and the tutorial server on `broker`.
    pub fn start(janitoo: &Path, broker: &str) -> FailoverNetwork {
        FailoverNetwork::start_with(janitoo, broker, |_| None, |text| text)
    }

    /// Starts them, with `command_for` to run a controller some other way (another network
    /// namespace: it then gets its own broker address too), and `tutorial` to edit the
    /// tutorial's file.
    pub fn start_with(
        janitoo: &Path,
        broker: &str,
        command_for: impl Fn(Hadd) -> Option<(Command, String)>,
        tutorial: impl FnOnce(String) -> String,
    ) -> FailoverNetwork {
        FailoverNetwork::launch(janitoo, broker, command_for, |text| text, tutorial)
    }

    /// Starts them with `controller` to edit each controller's file (add a key, say), and
    /// `tutorial` the tutorial's.
    pub fn start_editing(
        janitoo: &Path,
        broker: &str,
        controller: impl Fn(String) -> String,
        tutorial: impl FnOnce(String) -> String,
    ) -> FailoverNetwork {
        FailoverNetwork::launch(janitoo, broker, |_| None, controller, tutorial)
    }

    /// Starts them with everything chosen: `command_for` (another command, or another broker
    /// address, for a controller), `controller` to edit each controller's file and `tutorial`
    /// the tutorial's, which connects to `broker`.
    pub fn launch(
        janitoo: &Path,
        broker: &str,
        command_for: impl Fn(Hadd) -> Option<(Command, String)>,
        controller: impl Fn(String) -> String,
        tutorial: impl FnOnce(String) -> String,
    ) -> FailoverNetwork {
        let dir = tempfile::tempdir().unwrap();
        let controllers = CONTROLLERS
            .iter()
            .map(|(hadd, file)| {
                let config = copy_example(&format!("failover/{file}"), dir.path(), &controller);
                let (command, address) = command_for(*hadd)
                    .unwrap_or_else(|| (Command::new(janitoo), broker.to_owned()));
                let process = ControllerProcess::spawn(command, &config, &["--broker", &address]);
                (*hadd, process)
            })
            .collect();
        let config = copy_example("tutorial.toml", dir.path(), tutorial);
        let tutorial =
            ControllerProcess::start_with(janitoo, &config, &["--broker", broker, "--simulate"]);
        FailoverNetwork {
            controllers,
            tutorial,
            _dir: dir,
        }
    }

    /// The process of controller `hadd`.
    pub fn controller(&self, hadd: Hadd) -> &ControllerProcess {
        &self
            .controllers
            .iter()
            .find(|(h, _)| *h == hadd)
            .expect("no such controller")
            .1
    }
}

/// Waits until, since `since`, a primary has beaten and every controller of the example has
/// announced itself; the primary and its epoch.
pub async fn network_up(
    watcher: &crate::watch::Watcher,
    since: tokio::time::Instant,
    limit: std::time::Duration,
) -> Option<(Hadd, u64)> {
    watcher
        .wait_for(limit, || {
            let candidacies = watcher.candidacies(since);
            let all = CONTROLLERS
                .iter()
                .all(|(hadd, _)| candidacies.iter().any(|(_, c)| c.hadd == *hadd));
            let primary = watcher
                .primaries(since)
                .last()
                .map(|(_, hadd, epoch)| (*hadd, *epoch));
            primary.filter(|_| all)
        })
        .await
}

/// Waits until `who` announces itself, since `since`, as a secondary that has seen `epoch`
/// (it heard the network and stepped down); when.
pub async fn stepped_down(
    watcher: &crate::watch::Watcher,
    who: Hadd,
    epoch: u64,
    since: tokio::time::Instant,
    limit: std::time::Duration,
) -> Option<tokio::time::Instant> {
    watcher
        .wait_for(limit, || {
            watcher
                .candidacies(since)
                .into_iter()
                .find(|(_, c)| c.hadd == who && !c.primary && c.epoch >= epoch)
                .map(|(at, _)| at)
        })
        .await
}
