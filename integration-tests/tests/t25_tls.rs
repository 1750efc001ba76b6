//! TLS to the broker: a controller reaches Mosquitto's TLS listener with the CA file and a
//! client certificate from its configuration, and serves a client on the plain listener; a
//! controller given the wrong CA does not connect, and says why. Needs Mosquitto (mandatory
//! with `JANITOO_TEST_MOSQUITTO`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::{mosquitto_path, ControllerProcess, Lines};
use janitoo_integration_tests::require;
use janitoo_integration_tests::tls::{TestPki, TlsMosquitto};
use janitoo_protocol::{Data, Hadd};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

fn broker_section(
    port: u16,
    ca: &Path,
    client: &(std::path::PathBuf, std::path::PathBuf),
) -> String {
    format!(
        "\n[broker]\naddress = \"localhost:{port}\"\ntls = true\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
        ca.display().to_string(),
        client.0.display().to_string(),
        client.1.display().to_string()
    )
}

/// Whether the Mosquitto tests run (mandatory with `JANITOO_TEST_MOSQUITTO`).
fn mosquitto_runs() -> Option<()> {
    require::runs(
        "JANITOO_TEST_MOSQUITTO",
        mosquitto_path().is_some(),
        "Mosquitto is not installed",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_serves_over_tls_with_a_client_certificate() {
    let Some(()) = mosquitto_runs() else {
        return;
    };
    let pki = TestPki::generate();
    let broker = TlsMosquitto::start(&pki).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let section = broker_section(broker.tls_port, &pki.ca, &pki.client);
    let config = copy_example("tutorial.toml", dir.path(), |text| text + &section);
    let _controller = ControllerProcess::start_with(Path::new(JANITOO), &config, &["--simulate"]);
    let mut client = Client::connect(broker.plain_port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let reply = client
        .config_until_answered(Hadd::new(220, 1), "name", Duration::from_secs(15))
        .await;
    assert_eq!(reply.value.data, Data::from("Ambiance"));

    // The tools over TLS: with the options, and with the controller's own file.
    let tls_port = broker.tls_port.to_string();
    let by_options = Command::new(JANITOO)
        .args(["get", "0220/0001", "name", "--genre", "config", "--tls"])
        .args(["--broker", &format!("localhost:{tls_port}")])
        .arg("--ca-file")
        .arg(&pki.ca)
        .arg("--cert-file")
        .arg(&pki.client.0)
        .arg("--key-file")
        .arg(&pki.client.1)
        .output()
        .unwrap();
    let by_file = Command::new(JANITOO)
        .args(["get", "0220/0001", "name", "--genre", "config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    for output in [by_options, by_file] {
        let (out, err) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        assert_eq!(output.status.code(), Some(0), "{out}{err}");
        assert!(out.contains("Ambiance"), "{out}");
    }
    // Without TLS, the TLS listener answers nothing a tool can use.
    let plain = Command::new(JANITOO)
        .args(["get", "0220/0001", "name", "--genre", "config"])
        .args(["--broker", &format!("localhost:{tls_port}")])
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(1));
}

/// The wrong CA: the broker's certificate is refused, the controller says so and retries.
#[test]
fn a_controller_given_the_wrong_ca_says_why() {
    let Some(()) = mosquitto_runs() else {
        return;
    };
    let pki = TestPki::generate();
    let broker = TlsMosquitto::start(&pki).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let section = broker_section(broker.tls_port, &pki.other_ca, &pki.client);
    let config = copy_example("tutorial.toml", dir.path(), |text| text + &section);
    let mut child = Command::new(JANITOO)
        .args(["run", "--simulate", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::read(child.stderr.take().unwrap());
    let said = lines.wait_for("UnknownIssuer", Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.finish();
    assert!(said, "no word of the unknown issuer:\n{text}");
}

/// Files that cannot be used are named at start (exit 2), before any connection.
#[test]
fn unusable_tls_files_are_named_at_start() {
    let pki = TestPki::generate();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let cases = [
        (
            broker_section(1, &missing, &pki.client),
            "missing.pem",
            "cannot read it",
        ),
        (
            broker_section(1, &not_pem, &pki.client),
            "not.pem",
            "no certificate",
        ),
        (
            broker_section(1, &pki.ca, &(pki.client.0.clone(), pki.server.1.clone())),
            "server.key",
            "does not go with",
        ),
    ];
    for (section, file, why) in cases {
        let config = copy_example("minimal.toml", dir.path(), |text| text + &section);
        let output = Command::new(JANITOO)
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(file) && stderr.contains(why),
            "{file}: {stderr}"
        );
    }
}

/// `server_name`: a broker reached by IP address, its certificate checked against a name. The
/// right name connects; another is refused, and said.
#[test]
fn the_certificate_is_checked_against_server_name() {
    let Some(()) = mosquitto_runs() else {
        return;
    };
    let pki = TestPki::generate();
    let broker = TlsMosquitto::start(&pki).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, expected) in [
        ("localhost", "controller started"),
        ("wrong.example", "not valid for name \"wrong.example\""),
    ] {
        let section = broker_section(broker.tls_port, &pki.ca, &pki.client)
            .replace("localhost:", "127.0.0.1:")
            + &format!("server_name = {name:?}\n");
        let config = copy_example("minimal.toml", dir.path(), |text| text + &section);
        let mut child = Command::new(JANITOO)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Lines::read(child.stderr.take().unwrap());
        let connected =
            |lines: &Lines| lines.wait_for("connected to the broker", Duration::from_secs(15));
        let said = if name == "localhost" {
            connected(&lines)
        } else {
            lines.wait_for(expected, Duration::from_secs(15))
        };
        let _ = child.kill();
        let _ = child.wait();
        let text = lines.finish();
        assert!(said, "{name}: expected {expected:?} in:\n{text}");
        if name != "localhost" {
            assert!(!text.contains("connected to the broker"), "{text}");
        }
    }
}
