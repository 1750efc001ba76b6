//! Two Mosquittos bridged across a link that a test can cut: broker A in this network
//! namespace, broker B in a namespace of its own, reached over a veth pair. Processes started
//! in B's namespace talk to B; the bridge carries every topic between the halves while the
//! link is up. Needs root and `ip` (iproute2); [`Partition::available`] says whether they work.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{mosquitto_path, wait_for_port};

fn ip(arguments: &[&str]) -> bool {
    Command::new("ip")
        .args(arguments)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn must(arguments: &[&str]) {
    assert!(ip(arguments), "ip {} failed", arguments.join(" "));
}

/// Two bridged brokers and the link between them.
pub struct Partition {
    namespace: String,
    veth: String,
    /// Broker A, on 127.0.0.1 of this namespace.
    pub port_a: u16,
    /// Broker B's port, on 127.0.0.1 of its namespace.
    pub port_b: u16,
    broker_a: Child,
    broker_b: Child,
    _dir: tempfile::TempDir,
}

impl Partition {
    /// Whether network namespaces can be made here (root, iproute2).
    pub fn available() -> bool {
        let probe = format!("jtprobe{}", std::process::id() % 100_000);
        let made = ip(&["netns", "add", &probe]);
        if made {
            ip(&["netns", "del", &probe]);
        }
        made && mosquitto_path().is_some()
    }

    /// Makes the namespace, the link and both brokers, and waits until both listen.
    pub fn create() -> Partition {
        let tag = std::process::id() % 200;
        let namespace = format!("jt{}", std::process::id());
        let (veth, peer) = (format!("jta{tag}"), format!("jtb{tag}"));
        let (ip_a, ip_b) = (format!("10.213.{tag}.1"), format!("10.213.{tag}.2"));
        // Leftovers of an interrupted run would make the next fail.
        ip(&["netns", "del", &namespace]);
        ip(&["link", "del", &veth]);
        must(&["netns", "add", &namespace]);
        must(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        must(&["link", "set", &peer, "netns", &namespace]);
        must(&["addr", "add", &format!("{ip_a}/24"), "dev", &veth]);
        must(&["link", "set", &veth, "up"]);
        let inside = |args: &[&str]| {
            let mut full = vec!["netns", "exec", &namespace, "ip"];
            full.extend_from_slice(args);
            must(&full);
        };
        inside(&["addr", "add", &format!("{ip_b}/24"), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        // A cut link fails the bridge's connection attempts at once (instead of leaving a SYN
        // to be retried seconds after the heal): routes over a link without carrier are
        // ignored in B's namespace.
        for conf in ["all", peer.as_str()] {
            let setting = format!("/proc/sys/net/ipv4/conf/{conf}/ignore_routes_with_linkdown");
            let set = Command::new("ip")
                .args(["netns", "exec", &namespace, "sh", "-c"])
                .arg(format!("echo 1 > {setting}"))
                .status();
            assert!(set.is_ok_and(|s| s.success()), "cannot set {setting}");
        }

        let dir = tempfile::tempdir().unwrap();
        let mosquitto = mosquitto_path().expect("Mosquitto is not installed");
        let port_a = janitoo_broker::free_local_port(Ipv4Addr::LOCALHOST.into()).unwrap();
        let bridge_port = janitoo_broker::free_local_port(Ipv4Addr::LOCALHOST.into()).unwrap();
        let port_b = 18_830;
        let config_a = dir.path().join("a.conf");
        write(
            &config_a,
            &format!(
                "listener {port_a} 127.0.0.1\nlistener {bridge_port} {ip_a}\nallow_anonymous true\n\
                 max_queued_messages 0\nset_tcp_nodelay true\nuser root\n"
            ),
        );
        // The bridge notices a cut link within a few seconds and tries again every second.
        let config_b = dir.path().join("b.conf");
        write(
            &config_b,
            &format!(
                "listener {port_b}\nallow_anonymous true\nmax_queued_messages 0\nset_tcp_nodelay true\n\
                 user root\nconnection to-a\naddress {ip_a}:{bridge_port}\ntopic # both 0\n\
                 restart_timeout 1\nkeepalive_interval 2\ncleansession true\n"
            ),
        );
        let broker_a = Command::new(&mosquitto)
            .arg("-c")
            .arg(&config_a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let broker_b = Command::new("ip")
            .args(["netns", "exec", &namespace])
            .arg(&mosquitto)
            .arg("-c")
            .arg(&config_b)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let partition = Partition {
            namespace,
            veth,
            port_a,
            port_b,
            broker_a,
            broker_b,
            _dir: dir,
        };
        assert!(
            wait_for_port(port_a, Duration::from_secs(10)),
            "broker A does not listen"
        );
        let b: SocketAddr = format!("{ip_b}:{port_b}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&b, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "broker B does not listen on {b}");
            std::thread::sleep(Duration::from_millis(20));
        }
        partition
    }

    /// A command run in B's namespace (where B is `127.0.0.1:<port_b>`).
    pub fn command_in_b(&self, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace])
            .arg(program);
        command
    }

    /// `127.0.0.1:<port>` of broker B, as seen from its namespace.
    pub fn address_b(&self) -> String {
        format!("127.0.0.1:{}", self.port_b)
    }

    /// `127.0.0.1:<port>` of broker A.
    pub fn address_a(&self) -> String {
        format!("127.0.0.1:{}", self.port_a)
    }

    /// Cuts the link: nothing crosses the bridge until [`Partition::heal`].
    pub fn cut(&self) {
        must(&["link", "set", &self.veth, "down"]);
    }

    /// Brings the link back; the bridge reconnects within about a second.
    pub fn heal(&self) {
        must(&["link", "set", &self.veth, "up"]);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        for broker in [&mut self.broker_a, &mut self.broker_b] {
            let _ = broker.kill();
            let _ = broker.wait();
        }
        ip(&["link", "del", &self.veth]);
        ip(&["netns", "del", &self.namespace]);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}
