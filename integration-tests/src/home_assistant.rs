//! A real Home Assistant (2024.3.3, from PyPI, in a venv) driven through
//! `integration-tests/ha/harness.py`: started in its own config folder, onboarded, given the MQTT
//! integration, asked for its states and registries over its REST and WebSocket APIs.
//!
//! The venv is `target/ha-venv` (or `$JANITOO_HA_VENV`), made once by
//! `python3 integration-tests/ha/harness.py make-venv` (about a minute, 700 MB), as `.ci/run`
//! does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// The harness script.
pub fn harness() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/ha/harness.py"))
}

/// The venv Home Assistant runs from.
pub fn venv() -> PathBuf {
    std::env::var_os("JANITOO_HA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/ha-venv")))
}

/// Whether the venv is made (complete) and Python is there.
pub fn available() -> bool {
    venv().join(".janitoo-ready").exists()
        && venv().join("bin/hass").exists()
        && Command::new("python3").arg("--version").output().is_ok()
}

/// A Home Assistant process, stopped when dropped.
pub struct HomeAssistant {
    dir: tempfile::TempDir,
    /// Its address (`http://127.0.0.1:<port>`).
    pub url: String,
    /// A long-lived access token.
    pub token: String,
}

fn run(arguments: &[&str]) -> Result<String, String> {
    let output = Command::new("python3")
        .arg(harness())
        .arg("--venv")
        .arg(venv())
        .args(arguments)
        .output()
        .map_err(|err| format!("python3: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "harness {arguments:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl HomeAssistant {
    /// Starts it, onboards it and adds the MQTT integration for the broker on `mqtt_port`.
    pub fn start(mqtt_port: u16) -> HomeAssistant {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().to_str().unwrap().to_owned();
        let port = mqtt_port.to_string();
        let answer = run(&["up", "--config", &config, "--mqtt-port", &port])
            .unwrap_or_else(|err| panic!("Home Assistant did not start: {err}"));
        let up: Value = serde_json::from_str(answer.trim()).unwrap();
        eprintln!("Home Assistant up: {}", up["timings"]);
        HomeAssistant {
            url: up["url"].as_str().unwrap().to_owned(),
            token: up["token"].as_str().unwrap().to_owned(),
            dir,
        }
    }

    /// Its config folder (its log is `home-assistant.log` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn ask(&self, arguments: &[&str]) -> Value {
        let config = self.dir.path().to_str().unwrap();
        let mut all = vec![arguments[0], "--config", config];
        all.extend(&arguments[1..]);
        let answer = run(&all).unwrap_or_else(|err| panic!("{err}"));
        serde_json::from_str(answer.trim()).unwrap_or(Value::Null)
    }

    /// Every entity's state (`/api/states`).
    pub fn states(&self) -> Vec<Value> {
        self.ask(&["states"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The entity registry.
    pub fn entities(&self) -> Vec<Value> {
        self.ask(&["entities"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The device registry.
    pub fn devices(&self) -> Vec<Value> {
        self.ask(&["devices"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Calls a service (`switch.turn_on`) with `data`.
    pub fn call(&self, service: &str, data: Value) {
        self.ask(&["call", service, &data.to_string()]);
    }

    /// Asks for the states until `wanted` finds what it looks for, at most `limit` (every
    /// 200 ms: Home Assistant tells nothing by itself here).
    pub async fn wait_states<T>(
        &self,
        limit: Duration,
        wanted: impl Fn(&[Value]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = wanted(&self.states()) {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Problems in its log (errors, tracebacks), for a failing test's message.
    pub fn log_problems(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("home-assistant.log")).unwrap_or_default();
        log.lines()
            .filter(|line| line.contains("ERROR") || line.contains("Traceback"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        let config = self.dir.path().to_str().unwrap_or_default().to_owned();
        if let Err(err) = run(&["down", "--config", &config]) {
            eprintln!("{err}");
        }
    }
}

/// The state of `entity_id`, if Home Assistant has it.
pub fn state_of<'a>(states: &'a [Value], entity_id: &str) -> Option<&'a Value> {
    states.iter().find(|state| state["entity_id"] == entity_id)
}
