//! `janitoo get` and `set` against a node of the original, played by a script: it answers
//! only requests with the command class it expects (112 for config values), and only on the
//! value's topic, without echoing the request id.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_read_and_set_a_config_value_of_an_original_node() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let mut node = Client::connect(broker.port).await;
    node.subscribe("/nodes/0400/0001/request").await;
    let answerer = Client::connect(broker.port).await;
    let script = tokio::spawn(async move {
        let mut name = String::from("Garden");
        let mut ignored = 0;
        while let Some(request) = node
            .next_on("/nodes/0400/0001/request", Duration::from_secs(30))
            .await
        {
            let tree: serde_json::Value = serde_json::from_slice(&request.payload).unwrap();
            // The original's on_request: anything but the value's command class is dropped.
            if tree["cmd_class"] != 112 || tree["uuid"] != "name" {
                ignored += 1;
                continue;
            }
            if tree["is_writeonly"] == true || tree["op"] == "set" {
                name = tree["data"].as_str().unwrap_or_default().to_owned();
            }
            let value = serde_json::json!({"uuid": "name", "hadd": "0400/0001", "genre": 3,
                "cmd_class": 112, "index": 0, "data": name, "type": 8});
            answerer
                .publish("/values/config/0400/0001/name", value.to_string())
                .await;
            if name == "done" {
                break;
            }
        }
        ignored
    });
    let run = |args: &[&str]| {
        let output = Command::new(JANITOO)
            .args(args)
            .args(["--genre", "config", "-b", &broker.address()])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["get", "0400/0001", "name"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Garden"), "{out}");
    let (code, out) = run(&["set", "0400/0001", "name", "Shed"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Shed"), "{out}");
    let (code, out) = run(&["get", "0400/0001", "name"]);
    assert!(code == Some(0) && out.contains("Shed"), "{out}");
    let (code, _) = run(&["set", "0400/0001", "name", "done"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        script.await.unwrap(),
        0,
        "a request the original would drop was sent"
    );
}
