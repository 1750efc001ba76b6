//! Brokers and controllers as child processes, killed when dropped.

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `janitoo broker` (rumqttd).
    Embedded,
    /// Debian's Mosquitto.
    Mosquitto,
}

/// Whether the Mosquitto tests must run (CI) rather than be skipped when it is missing.
pub fn mosquitto_required() -> bool {
    crate::require::required("JANITOO_TEST_MOSQUITTO")
}

/// Where Mosquitto is installed, if it is.
pub fn mosquitto_path() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
}

/// The brokers to test against: the embedded one always, Mosquitto when installed (and always
/// when required, so that a missing Mosquitto fails the run).
pub fn brokers_under_test() -> Vec<BrokerKind> {
    let mut kinds = vec![BrokerKind::Embedded];
    if mosquitto_path().is_some() || mosquitto_required() {
        kinds.push(BrokerKind::Mosquitto);
    } else {
        eprintln!("SKIPPED: the Mosquitto half of these tests, Mosquitto is not installed (set JANITOO_TEST_MOSQUITTO=1 to require them)");
    }
    kinds
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A broker process on a loopback port.
pub struct BrokerProcess {
    /// Which broker.
    pub kind: BrokerKind,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts a broker of `kind` on `port` (a free one when `None`); `janitoo` is the path of
    /// the janitoo binary (for the embedded broker).
    pub fn start(kind: BrokerKind, janitoo: &Path, port: Option<u16>) -> BrokerProcess {
        let port = port.unwrap_or_else(|| {
            janitoo_broker::free_local_port(Ipv4Addr::LOCALHOST.into()).unwrap()
        });
        let dir = tempfile::tempdir().unwrap();
        let child = match kind {
            BrokerKind::Embedded => Command::new(janitoo)
                .args(["broker", "--listen", &format!("127.0.0.1:{port}")])
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            BrokerKind::Mosquitto => {
                let path = mosquitto_path()
                    .expect("JANITOO_TEST_MOSQUITTO=1 but mosquitto is not installed");
                let config = dir.path().join("mosquitto.conf");
                let mut file = std::fs::File::create(&config).unwrap();
                writeln!(
                    file,
                    "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nset_tcp_nodelay true"
                )
                .unwrap();
                if std::env::var("USER").is_ok_and(|user| user == "root") || is_root() {
                    writeln!(file, "user root").unwrap();
                }
                Command::new(path)
                    .arg("-c")
                    .arg(&config)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            }
        };
        assert!(
            wait_for_port(port, Duration::from_secs(10)),
            "{kind:?} broker did not listen on {port}"
        );
        BrokerProcess {
            kind,
            port,
            child,
            _dir: dir,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .map(|line| line.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A `janitoo run` process.
pub struct ControllerProcess {
    child: Child,
}

impl ControllerProcess {
    /// Starts `janitoo run --config <config> --broker <broker>`.
    pub fn start(janitoo: &Path, config: &Path, broker: &str) -> ControllerProcess {
        ControllerProcess::start_with(janitoo, config, &["--broker", broker])
    }

    /// Starts `janitoo run --config <config>` with more arguments. Its output goes to stderr
    /// only, so that a test's captured stdout is never held open by a leftover process.
    pub fn start_with(janitoo: &Path, config: &Path, arguments: &[&str]) -> ControllerProcess {
        ControllerProcess::spawn(Command::new(janitoo), config, arguments)
    }

    /// Runs `run --config <config> <arguments>` with `command` (the janitoo binary, or a
    /// wrapper such as `ip netns exec NS janitoo`).
    pub fn spawn(mut command: Command, config: &Path, arguments: &[&str]) -> ControllerProcess {
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .args(arguments)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,rumqttd=off".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        ControllerProcess { child }
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`...).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name} {}", self.pid());
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A configuration without its LED (GPIO output needs a Raspberry Pi): the section of
/// `rpibasic.led` is dropped, up to the next blank line.
pub fn without_led(config: &str) -> String {
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in config.lines() {
        if line.starts_with("[buses.rpibasic.components.led]") {
            skipping = true;
        } else if skipping && line.trim().is_empty() {
            skipping = false;
        }
        if !skipping {
            kept.push(line);
        }
    }
    kept.join("\n") + "\n"
}

/// The lines a child process writes to a pipe, read as they come, so that a test can wait for
/// one of them and still see everything afterwards.
pub struct Lines {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Lines {
    /// Reads `pipe` (a child's stdout or stderr) on a thread of its own until it closes.
    pub fn read(pipe: impl std::io::Read + Send + 'static) -> Lines {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let filled = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                filled.lock().unwrap().push(line);
            }
        });
        Lines {
            lines,
            reader: Some(reader),
        }
    }

    /// Waits up to `limit` for a line containing `text`; whether one came.
    pub fn wait_for(&self, text: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains(text))
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything, once the pipe is closed (the child has exited).
    pub fn finish(mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines.lock().unwrap().join("\n")
    }
}
