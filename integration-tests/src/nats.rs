//! The NATS cluster of `deploy/nats/` (its `pi1.conf`, `pi2.conf`, `pi3.conf`, `janitoo.conf`
//! and `accounts.conf`), three servers on loopback: only the addresses, ports and paths changed,
//! with a test PKI for the cluster's TLS. [`Security::Plain`] also takes the MQTT listener's TLS
//! and the accounts out (for the tests of failover, which speak plain MQTT); [`Security::AsDeployed`]
//! keeps them, with passwords of the test's own. Servers are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use janitoo_broker::nats::{
    write_loopback_cluster, Certificates, LoopbackPorts, Security as Loopback, PI_FILES,
};

use crate::tls::TestPki;

pub use janitoo_broker::nats::nats_server_path;

/// Whether the NATS tests run: `nats-server` installed, or a failure when
/// `JANITOO_TEST_NATS` requires it.
pub fn nats_server() -> Option<PathBuf> {
    let path = nats_server_path();
    crate::require::runs(
        "JANITOO_TEST_NATS",
        path.is_some(),
        "nats-server is not installed (apt-get install nats-server)",
    )?;
    path
}

/// How much of the deployed security the servers keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// The MQTT listener in plain text, no accounts (the cluster's routes keep their TLS).
    Plain,
    /// TLS on the MQTT listener and the accounts of `accounts.conf`; each password is the
    /// account's name followed by `-secret`.
    AsDeployed,
}

/// The password of `account` in a cluster [`Security::AsDeployed`].
pub fn password(account: &str) -> String {
    format!("{account}-secret")
}

/// One server.
pub struct NatsServer {
    /// `pi1`, `pi2`, `pi3`.
    pub name: String,
    /// Its MQTT port on 127.0.0.1.
    pub mqtt_port: u16,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// Three servers of the deploy files.
pub struct NatsCluster {
    /// The servers, pi1 first.
    pub servers: Vec<NatsServer>,
    /// The certificates: the cluster's routes, and the MQTT listener when
    /// [`Security::AsDeployed`].
    pub pki: TestPki,
    security: Security,
    nats: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for at in 0..self.servers.len() {
            self.kill(at);
        }
    }
}

impl NatsCluster {
    /// Starts the three servers with `nats` and waits until each accepts MQTT clients (a fresh
    /// cluster's JetStream elects its leaders first: seconds).
    pub fn start(nats: &Path, security: Security) -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate();
        let free = || janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap();
        let ports = LoopbackPorts {
            mqtt: [free(), free(), free()],
            routes: [free(), free(), free()],
            clients: [free(), free(), free()],
        };
        let certificates = Certificates {
            ca: pki.ca.clone(),
            cert: pki.server.0.clone(),
            key: pki.server.1.clone(),
        };
        let files = match security {
            Security::Plain => Loopback::Routes(certificates),
            Security::AsDeployed => Loopback::AsDeployed(certificates, password),
        };
        let confs = write_loopback_cluster(dir.path(), &ports, &files).unwrap();
        let servers = confs
            .into_iter()
            .zip(PI_FILES)
            .enumerate()
            .map(|(at, (conf, (name, _)))| NatsServer {
                name: name.to_owned(),
                mqtt_port: ports.mqtt[at],
                log: conf.with_file_name("server.log"),
                conf,
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster {
            servers,
            pki,
            security,
            nats: nats.to_owned(),
            dir,
        };
        for at in 0..3 {
            cluster.launch(at);
        }
        for at in 0..3 {
            cluster.wait_ready(at);
        }
        cluster
    }

    fn launch(&mut self, at: usize) {
        let server = &mut self.servers[at];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&server.log)
            .unwrap();
        let child = Command::new(&self.nats)
            .arg("-c")
            .arg(&server.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        server.child = Some(child);
    }

    /// Waits until server `at` accepts an MQTT client (a CONNACK), at most 60 s.
    fn wait_ready(&self, at: usize) {
        let port = self.servers[at].mqtt_port;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if mqtt_accepts(port, self.security, &self.pki.ca) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "NATS server {} accepts no MQTT client after 60 s:\n{}",
            self.servers[at].name,
            self.log(at)
        );
    }

    /// `127.0.0.1:port` of server `at`'s MQTT listener.
    pub fn address(&self, at: usize) -> String {
        format!("127.0.0.1:{}", self.servers[at].mqtt_port)
    }

    /// The servers' MQTT addresses in `order`, as `--broker` takes them.
    pub fn addresses(&self, order: &[usize]) -> String {
        order
            .iter()
            .map(|at| self.address(*at))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills server `at` (SIGKILL).
    pub fn kill(&mut self, at: usize) {
        if let Some(mut child) = self.servers[at].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `at` again, and waits until it accepts MQTT clients.
    pub fn restart(&mut self, at: usize) {
        self.kill(at);
        self.launch(at);
        self.wait_ready(at);
    }

    /// What server `at` logged.
    pub fn log(&self, at: usize) -> String {
        std::fs::read_to_string(&self.servers[at].log).unwrap_or_default()
    }

    /// The server that leads JetStream's stream `stream` (`$MQTT_sess`, MQTT's sessions), as
    /// the servers' logs tell it: the last to log itself its new leader.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let said = "new stream leader for '";
        let named = format!(" > {stream}'");
        (0..self.servers.len())
            .filter_map(|at| {
                let log = self.log(at);
                let last = log
                    .lines()
                    .rfind(|line| line.contains(said) && line.contains(&named))
                    .map(log_time)?;
                Some((last, at))
            })
            .max()
            .map(|(_, at)| at)
    }

    /// The cluster's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether an MQTT client is accepted on `port` now.
fn mqtt_accepts(port: u16, security: Security, ca: &Path) -> bool {
    use std::io::{Read, Write};
    if security == Security::AsDeployed {
        // Over TLS with an account: mosquitto_pub says it (CI has the clients).
        return Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
            .arg(ca)
            .args(["-u", "operator", "-P", &password("operator")])
            .args(["-t", "/broadcast/request", "-n", "-q", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
    }
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    // CONNECT, MQTT 3.1.1, clean session, keep-alive 10 s, client id "ready".
    let connect = [
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 10, 0, 5, b'r', b'e', b'a', b'd', b'y',
    ];
    let mut connack = [0u8; 4];
    stream.write_all(&connect).is_ok()
        && stream.read_exact(&mut connack).is_ok()
        && connack[0] == 0x20
        && connack[3] == 0
}

impl crate::pair::Backbone for NatsCluster {
    fn port(&self, at: usize) -> u16 {
        self.servers[at].mqtt_port
    }

    fn addresses(&self, order: &[usize]) -> String {
        NatsCluster::addresses(self, order)
    }

    fn kill(&mut self, at: usize) {
        NatsCluster::kill(self, at)
    }

    fn restart(&mut self, at: usize) {
        NatsCluster::restart(self, at)
    }
}

/// The time of a nats-server log line (`[pid] 2026/12/06 00:05:01.813373 [INF] ...`), as text
/// that sorts in time order.
fn log_time(line: &str) -> String {
    line.split_whitespace()
        .skip(1)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}
