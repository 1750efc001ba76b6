//! The web manager of a running controller: the page, `GET /metrics`, and the page's socket:
//! a snapshot, live value events, sets with the reply's status, bad input refused.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::web::{http_get, http_get_as, wait_for_listener, PageSocket};
use janitoo_protocol::{CommandClass, Data, Genre, Hadd, Message, Request};
use serde_json::json;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

const LED: Hadd = Hadd::new(220, 2);

fn config(web: SocketAddr) -> String {
    format!(
        r#"
[hardware]
simulate = true

[web]
listen = "{web}"
hosts = ["janitoo.test"]

[buses.rpibasic]
hadd = "0220/0000"

[buses.rpibasic.components.ambiance]
kind = "rpibasic.dht"
hadd = "0220/0001"
name = "Ambiance"

[buses.rpibasic.components.led]
kind = "rpibasic.led"
hadd = "0220/0002"
name = "LED"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_sees_values_live_and_sets_them() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let web: SocketAddr = (
        [127, 0, 0, 1],
        janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap(),
    )
        .into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.toml");
    std::fs::write(&file, config(web)).unwrap();
    let _controller = ControllerProcess::start(Path::new(JANITOO), &file, &broker.address());
    wait_for_listener(web, Duration::from_secs(10));

    let (status, page) = http_get(web, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Janitoo manager</title>"));
    let served = http_get_as(web, "/", &format!("localhost:{}", web.port()));
    assert_eq!(served.status, 200);
    assert_eq!(served.header("x-frame-options"), Some("DENY"));
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
    let policy = served.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("frame-ancestors 'none'") && policy.contains("default-src 'none'"),
        "{policy:?}"
    );
    let named = http_get_as(web, "/", &format!("JANITOO.test:{}", web.port()));
    assert_eq!(named.status, 200, "a configured name is served");
    // DNS rebinding: a page of attacker.example whose name now points here.
    for path in ["/", "/api/snapshot", "/ws"] {
        let rebound = http_get_as(web, path, &format!("attacker.example:{}", web.port()));
        assert_eq!(rebound.status, 421, "{path} served to another host name");
    }
    let (status, _) = http_get(web, "/nowhere");
    assert_eq!(status, 404);

    // The snapshot fills as the controller answers the manager's discovery, kind by kind
    // (system and config values may come before the user values this test looks at).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, snapshot) = http_get(web, "/api/snapshot");
        let snapshot: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
        let led_switch = snapshot["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["hadd"] == "0220/0002" && v["uuid"] == "switch");
        if led_switch {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{snapshot}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Another site's page (a foreign Origin) may not open the socket.
    let mut foreign =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{web}/ws"
        ))
        .unwrap();
    foreign
        .headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(foreign).await.is_err(),
        "a cross-origin socket was accepted"
    );

    let mut page = PageSocket::open(web).await;
    let snapshot = page
        .next_matching(Duration::from_secs(5), |e| e["type"] == "snapshot")
        .await
        .expect("a snapshot first");
    let switch = snapshot["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["hadd"] == "0220/0002" && v["uuid"] == "switch")
        .expect("the LED switch")
        .clone();
    assert_eq!(switch["genre"], "user");
    assert_eq!(switch["list_items"], json!(["on", "off"]));

    // A change made by someone else arrives live.
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client.subscribe("/values/user/0220/0002/switch").await;
    client
        .ask(Request::set(
            LED,
            "blink",
            Genre::User,
            CommandClass::SWITCH_BINARY,
            Data::from("heartbeat"),
        ))
        .await;
    let live = page
        .next_matching(Duration::from_secs(5), |e| {
            e["type"] == "value"
                && e["value"]["uuid"] == "blink"
                && e["value"]["data"] == "heartbeat"
        })
        .await;
    assert!(live.is_some(), "the change arrives");

    // A set from the page: the reply's status comes back, and the node got it.
    page.send(
        json!({"type": "set", "hadd": "0220/0002", "uuid": "switch", "genre": "user",
                     "index": 0, "data": "on", "request_id": "page-1"}),
    )
    .await;
    let reply = page
        .next_matching(Duration::from_secs(5), |e| {
            e["type"] == "reply" && e["request_id"] == "page-1"
        })
        .await
        .expect("the reply");
    assert_eq!(reply["status"], 200, "{reply}");
    let published = client
        .next_on("/values/user/0220/0002/switch", Duration::from_secs(3))
        .await
        .expect("the node published its new state");
    let Message::Value(value) = published.message() else {
        panic!()
    };
    assert_eq!(value.instances()[0].data, Data::from("on"));

    // Refusals: the node's (403, read-only), and the page's own (400, bad HADD).
    page.send(
        json!({"type": "set", "hadd": "0220/0001", "uuid": "temperature",
                     "genre": "user", "data": 30, "request_id": "page-2"}),
    )
    .await;
    let reply = page
        .next_matching(Duration::from_secs(5), |e| e["request_id"] == "page-2")
        .await
        .unwrap();
    assert_eq!(reply["status"], 403, "{reply}");
    page.send(
        json!({"type": "set", "hadd": "nope", "uuid": "switch", "genre": "user",
                     "data": "on", "request_id": "page-3"}),
    )
    .await;
    let reply = page
        .next_matching(Duration::from_secs(5), |e| e["request_id"] == "page-3")
        .await
        .unwrap();
    assert_eq!(reply["status"], 400);
    assert!(reply["error"].as_str().unwrap().contains("hadd"), "{reply}");

    // The metrics page counts the web manager's own actor, and every other.
    let (status, metrics) = http_get(web, "/metrics");
    assert_eq!(status, 200);
    let handled = |actor: &str| -> f64 {
        let prefix = format!("janitoo_actor_messages_handled_total{{actor=\"{actor}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{prefix} missing"))
    };
    assert!(handled("web") > 0.0 && handled("value") > 0.0 && handled("bridge") > 0.0);
    assert!(metrics.contains("# TYPE janitoo_actor_handler_seconds histogram"));
}

#[test]
fn a_taken_web_address_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.toml");
    std::fs::write(&file, config(addr)).unwrap();
    let broker_port = janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap();
    let output = std::process::Command::new(JANITOO)
        .args(["run", "--config"])
        .arg(&file)
        .args(["--embedded-listen", &format!("127.0.0.1:{broker_port}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("web manager: cannot listen on {addr}")),
        "{stderr}"
    );
}
