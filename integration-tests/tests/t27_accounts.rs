//! The embedded broker with accounts: `janitoo broker --accounts FILE`, and `janitoo run`
//! with `[broker] accounts_file` and no address. Nobody connects without an account; the
//! controller's own client uses its `[broker]` account. The demo needs none of this.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::{wait_for_port, ControllerProcess};
use janitoo_protocol::{Data, Hadd};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

fn free_port() -> u16 {
    janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_requires_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts");
    std::fs::write(
        &accounts,
        "# operators\noperator:op-secret\ncontroller:ctl-secret\n",
    )
    .unwrap();
    let port = free_port();
    let _broker = Killed(
        Command::new(JANITOO)
            .args([
                "broker",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--accounts",
            ])
            .arg(&accounts)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10)));
    assert!(Client::connect_as(port, None).await.is_none(), "anonymous");
    assert!(Client::connect_as(port, Some(("operator", "guess")))
        .await
        .is_none());
    assert!(Client::connect_as(port, Some(("operator", "op-secret")))
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_with_an_embedded_broker_and_accounts_serves_account_holders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        "operator:op-secret\ncontroller:ctl-secret\n",
    )
    .unwrap();
    let port = free_port();
    let config = copy_example("minimal.toml", dir.path(), |text| {
        text + "\n[broker]\naccounts_file = \"accounts\"\nusername = \"controller\"\npassword = \"ctl-secret\"\n"
    });
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let _controller = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--embedded-listen", &listen.to_string()],
    );
    assert!(wait_for_port(port, Duration::from_secs(10)));
    assert!(Client::connect_as(port, None).await.is_none(), "anonymous");
    let mut operator = Client::connect_as(port, Some(("operator", "op-secret")))
        .await
        .expect("the operator's account");
    operator.subscribe("/nodes/9999/9990/reply").await;
    let reply = operator
        .config_until_answered(Hadd::new(300, 1), "name", Duration::from_secs(10))
        .await;
    assert_ne!(reply.value.data, Data::Null);
}

#[test]
fn a_bad_accounts_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts");
    std::fs::write(&accounts, "operator:ok\nno-colon-here\n").unwrap();
    let output = Command::new(JANITOO)
        .args(["broker", "--listen", "127.0.0.1:1", "--accounts"])
        .arg(&accounts)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("accounts, line 2") && stderr.contains("expected user:password"),
        "{stderr}"
    );
}

/// `janitoo broker --tls-listen`: a controller reaches it over TLS (verifying the broker's
/// certificate against the test CA) and serves a client of the plain listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_serves_tls() {
    let pki = janitoo_integration_tests::tls::TestPki::generate();
    let (plain, secured) = (free_port(), free_port());
    let _broker = Killed(
        Command::new(JANITOO)
            .args(["broker", "--listen", &format!("127.0.0.1:{plain}")])
            .args([
                "--tls-listen",
                &format!("127.0.0.1:{secured}"),
                "--cert-file",
            ])
            .arg(&pki.server.0)
            .arg("--key-file")
            .arg(&pki.server.1)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(plain, Duration::from_secs(10)));
    assert!(wait_for_port(secured, Duration::from_secs(10)));
    let dir = tempfile::tempdir().unwrap();
    let config = copy_example("minimal.toml", dir.path(), |text| {
        text + &format!(
            "\n[broker]\naddress = \"localhost:{secured}\"\ntls = true\nca_file = {:?}\n",
            pki.ca.display().to_string()
        )
    });
    let _controller = ControllerProcess::start_with(Path::new(JANITOO), &config, &[]);
    let mut client = Client::connect(plain).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let reply = client
        .config_until_answered(Hadd::new(300, 1), "name", Duration::from_secs(15))
        .await;
    assert_ne!(reply.value.data, Data::Null);
}
