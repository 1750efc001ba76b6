//! The locked-down Mosquitto of `deploy/mosquitto/` (its `mosquitto.conf` and `janitoo.acl`,
//! only the ports changed to free ones), with accounts made by `mosquitto_passwd` and a test
//! PKI: the failover example and the tutorial server work over TLS with their accounts, an
//! operator's tools too; a stranger cannot connect; a node server's account cannot seize the
//! primary nor say a controller is OFFLINE. Needs Mosquitto (mandatory with
//! `JANITOO_TEST_MOSQUITTO`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use janitoo_integration_tests::client::{Client, Received};
use janitoo_integration_tests::network::FailoverNetwork;
use janitoo_integration_tests::process::{mosquitto_path, wait_for_port};
use janitoo_integration_tests::require;
use janitoo_integration_tests::tls::TestPki;
use janitoo_protocol::{Data, Hadd, Message};
use tokio::time::Instant;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

/// The accounts, as the deploy README makes them.
const ACCOUNTS: [&str; 5] = [
    "controller-0001",
    "controller-0002",
    "controller-0003",
    "server-tutorial",
    "operator",
];

fn password(account: &str) -> String {
    format!("{account}-secret")
}

/// The deploy files, running.
struct LockedBroker {
    plain_port: u16,
    tls_port: u16,
    dir: tempfile::TempDir,
    pki: TestPki,
    child: Child,
}

impl Drop for LockedBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LockedBroker {
    fn start(mosquitto: &Path) -> LockedBroker {
        let deploy = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/mosquitto"));
        let dir = tempfile::tempdir().unwrap();
        let free = || janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap();
        let (plain_port, tls_port) = (free(), free());
        let conf = std::fs::read_to_string(deploy.join("mosquitto.conf")).unwrap();
        assert!(conf.contains("listener 1883 127.0.0.1\n") && conf.contains("listener 8883\n"));
        let conf = conf
            .replace(
                "listener 1883 127.0.0.1\n",
                &format!("listener {plain_port} 127.0.0.1\n"),
            )
            .replace("listener 8883\n", &format!("listener {tls_port}\n"));
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        std::fs::copy(deploy.join("janitoo.acl"), dir.path().join("janitoo.acl")).unwrap();
        let pki = TestPki::generate();
        std::fs::copy(&pki.ca, dir.path().join("ca.pem")).unwrap();
        std::fs::copy(&pki.server.0, dir.path().join("server.pem")).unwrap();
        std::fs::copy(&pki.server.1, dir.path().join("server.key")).unwrap();
        let passwords = dir.path().join("janitoo.passwd");
        for (at, account) in ACCOUNTS.iter().enumerate() {
            let mut command = Command::new("mosquitto_passwd");
            if at == 0 {
                command.arg("-c");
            }
            let made = command
                .arg("-b")
                .arg(&passwords)
                .args([*account, &password(account)])
                .status()
                .expect("mosquitto_passwd is not installed");
            assert!(made.success());
            std::fs::write(
                dir.path().join(format!("{account}.password")),
                password(account),
            )
            .unwrap();
        }
        // Mosquitto started as root reads its files as the `mosquitto` user.
        let _ = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(dir.path())
            .status();
        let child = Command::new(mosquitto)
            .arg("-c")
            .arg("mosquitto.conf")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_for_port(plain_port, Duration::from_secs(10))
                && wait_for_port(tls_port, Duration::from_secs(10)),
            "the locked broker did not listen"
        );
        LockedBroker {
            plain_port,
            tls_port,
            dir,
            pki,
            child,
        }
    }

    /// The `[broker]` lines of `account` over TLS.
    fn broker_lines(&self, account: &str) -> String {
        format!(
            "tls = true\nca_file = {:?}\nusername = {account:?}\npassword_file = {:?}\n",
            self.pki.ca.display().to_string(),
            self.dir
                .path()
                .join(format!("{account}.password"))
                .display()
                .to_string()
        )
    }
}

fn decoded(received: &Received) -> Option<Message> {
    let topic = janitoo_protocol::Topic::parse(&received.topic).ok()?;
    Message::decode(&topic, &received.payload, janitoo_protocol::Codec::Json).ok()
}

fn primary_beat_from(received: &Received, hadd: Hadd) -> bool {
    matches!(decoded(received), Some(Message::ResolvHeartbeat(beat)) if beat.hadd == hadd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_accounts_speak_and_only_controllers_speak_for_the_network() {
    let Some(mosquitto) = require::runs(
        "JANITOO_TEST_MOSQUITTO",
        mosquitto_path().is_some(),
        "Mosquitto is not installed",
    )
    .and_then(|()| mosquitto_path()) else {
        return;
    };
    let broker = LockedBroker::start(&mosquitto);
    let address = format!("localhost:{}", broker.tls_port);
    let _net = FailoverNetwork::start_editing(
        Path::new(JANITOO),
        &address,
        |text| {
            let code = text
                .split("hadd = \"")
                .nth(1)
                .and_then(|rest| rest.get(..4))
                .unwrap_or("0000")
                .to_owned();
            let lines = broker.broker_lines(&format!("controller-{code}"));
            text.replacen("[broker]\n", &format!("[broker]\n{lines}"), 1)
        },
        |text| {
            format!(
                "{text}\n[broker]\n{}",
                broker.broker_lines("server-tutorial")
            )
        },
    );

    // A stranger, and a wrong password: no connection.
    assert!(Client::connect_as(broker.plain_port, None).await.is_none());
    assert!(
        Client::connect_as(broker.plain_port, Some(("operator", "guess")))
            .await
            .is_none()
    );

    // The operator: reads everything, asks.
    let operator_password = password("operator");
    let mut operator =
        Client::connect_as(broker.plain_port, Some(("operator", &operator_password)))
            .await
            .expect("the operator's account is refused");
    for filter in ["/dhcp/#", "/nodes/9999/9990/reply"] {
        operator.subscribe(filter).await;
    }
    let primary = Hadd::new(1, 0);
    assert!(
        operator
            .next_matching(Duration::from_secs(20), |r| primary_beat_from(r, primary))
            .await
            .is_some(),
        "the primary does not beat over TLS with its account"
    );
    let reply = operator
        .config_until_answered(Hadd::new(220, 1), "name", Duration::from_secs(15))
        .await;
    assert_eq!(reply.value.data, Data::from("Ambiance"));
    let tool = Command::new(JANITOO)
        .args(["get", "0220/0001", "name", "--genre", "config", "--tls"])
        .args(["--broker", &address, "--username", "operator"])
        .arg("--ca-file")
        .arg(&broker.pki.ca)
        .arg("--password-file")
        .arg(broker.dir.path().join("operator.password"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&tool.stdout);
    assert!(tool.status.success() && out.contains("Ambiance"), "{out}");

    // A node server's account tries to seize the primary and to fail it.
    let server_password = password("server-tutorial");
    let server = Client::connect_as(
        broker.plain_port,
        Some(("server-tutorial", &server_password)),
    )
    .await
    .expect("the node server's account is refused");
    operator.clear();
    let attack = Instant::now();
    for round in 0..10u64 {
        let claim = format!(
            r#"{{"add_ctrl":99,"add_node":0,"state":"ONLINE","epoch":{}}}"#,
            ((50 + round) << 16) | 0x63
        );
        server.publish("/dhcp/resolv/heartbeat", claim).await;
        server.publish("/dhcp/heartbeat/0001/0000", "OFFLINE").await;
        server
            .publish(
                "/dhcp/heartbeat/",
                r#"{"add_ctrl":220,"add_node":2,"state":"FAILED","epoch":65537,"observer":"0001/0000"}"#,
            )
            .await;
    }
    // Three more beats of the real primary; none of the forgeries reached anyone.
    for _ in 0..3 {
        assert!(
            operator
                .next_matching(Duration::from_secs(5), |r| primary_beat_from(r, primary))
                .await
                .is_some(),
            "the primary stopped beating after the attack"
        );
    }
    let forged = operator
        .next_matching(Duration::ZERO, |r| {
            r.topic == "/dhcp/heartbeat/"
                || r.topic == "/dhcp/heartbeat/0001/0000"
                    && String::from_utf8_lossy(&r.payload).contains("OFFLINE")
                || primary_beat_from(r, Hadd::new(99, 0))
                || primary_beat_from(r, Hadd::new(2, 0))
        })
        .await;
    assert!(
        forged.is_none(),
        "{:?} reached the network {:?} after the attack",
        forged.map(|r| r.topic),
        attack.elapsed()
    );
}
