//! Two Mosquittos bridged both ways with `deploy/mosquitto/bridge.conf` (on the first, as its
//! README says): plain listeners on loopback, the bridge's address changed to the second's port
//! and its TLS and account lines left out. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::wait_for_port;

/// Brokers a house may use together (a NATS cluster, a bridged pair), by position.
pub trait Backbone {
    /// The MQTT port of broker `at` on 127.0.0.1.
    fn port(&self, at: usize) -> u16;
    /// The addresses in `order`, as `--broker` takes them.
    fn addresses(&self, order: &[usize]) -> String;
    /// Kills broker `at` (SIGKILL).
    fn kill(&mut self, at: usize);
    /// Starts broker `at` again, and waits until it takes clients.
    fn restart(&mut self, at: usize);
}

impl Backbone for MosquittoPair {
    fn port(&self, at: usize) -> u16 {
        self.brokers[at].port
    }

    fn addresses(&self, order: &[usize]) -> String {
        MosquittoPair::addresses(self, order)
    }

    fn kill(&mut self, at: usize) {
        MosquittoPair::kill(self, at)
    }

    fn restart(&mut self, at: usize) {
        MosquittoPair::restart(self, at)
    }
}

/// One Mosquitto of the pair.
pub struct PairBroker {
    /// Its port on 127.0.0.1.
    pub port: u16,
    conf: PathBuf,
    child: Option<Child>,
}

/// The pair.
pub struct MosquittoPair {
    /// pi1 (with the bridge), then pi2.
    pub brokers: Vec<PairBroker>,
    mosquitto: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for MosquittoPair {
    fn drop(&mut self) {
        for at in 0..self.brokers.len() {
            self.kill(at);
        }
    }
}

impl MosquittoPair {
    /// Starts both, and waits until each listens.
    pub fn start(mosquitto: &Path) -> MosquittoPair {
        let dir = tempfile::tempdir().unwrap();
        let free = || janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap();
        let ports = [free(), free()];
        let deploy = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/mosquitto"));
        let bridge = std::fs::read_to_string(deploy.join("bridge.conf")).unwrap();
        assert!(bridge.contains("address pi2.home.lan:8883\n"));
        let bridge: String = bridge
            .replace(
                "address pi2.home.lan:8883\n",
                &format!("address 127.0.0.1:{}\n", ports[1]),
            )
            .lines()
            .filter(|line| {
                !["bridge_cafile", "remote_username", "remote_password"]
                    .iter()
                    .any(|key| line.starts_with(key))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let brokers = ports
            .iter()
            .enumerate()
            .map(|(at, port)| {
                let conf = dir.path().join(format!("pi{}.conf", at + 1));
                let mut text =
                    format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n");
                if at == 0 {
                    text.push_str(&bridge);
                }
                std::fs::write(&conf, text).unwrap();
                PairBroker {
                    port: *port,
                    conf,
                    child: None,
                }
            })
            .collect();
        let mut pair = MosquittoPair {
            brokers,
            mosquitto: mosquitto.to_owned(),
            _dir: dir,
        };
        pair.launch(1);
        pair.launch(0);
        pair
    }

    fn launch(&mut self, at: usize) {
        let broker = &mut self.brokers[at];
        let child = Command::new(&self.mosquitto)
            .arg("-c")
            .arg(&broker.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        broker.child = Some(child);
        assert!(
            wait_for_port(broker.port, Duration::from_secs(10)),
            "Mosquitto pi{} does not listen",
            at + 1
        );
    }

    /// `127.0.0.1:port` of broker `at`.
    pub fn address(&self, at: usize) -> String {
        format!("127.0.0.1:{}", self.brokers[at].port)
    }

    /// The brokers' addresses in `order`, as `--broker` takes them.
    pub fn addresses(&self, order: &[usize]) -> String {
        order
            .iter()
            .map(|at| self.address(*at))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills broker `at` (SIGKILL).
    pub fn kill(&mut self, at: usize) {
        if let Some(mut child) = self.brokers[at].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts broker `at` again on its port.
    pub fn restart(&mut self, at: usize) {
        self.kill(at);
        self.launch(at);
    }
}
