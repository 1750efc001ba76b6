//! The operator tools against a running controller: `query network`, `query node`, `get`,
//! `set`, `spy`, with their output (tables and `--json`) and the exit codes scripts rely on.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess, Lines};
use janitoo_protocol::{CommandClass, Genre, Hadd, Request};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

const CONFIG: &str = r#"
[hardware]
simulate = true

[buses.rpibasic]
hadd = "0220/0000"
name = "Hello world"

[buses.rpibasic.components.ambiance]
kind = "rpibasic.dht"
hadd = "0220/0001"
name = "Ambiance"
location = "Living room"

[buses.rpibasic.components.led]
kind = "rpibasic.led"
hadd = "0220/0002"
name = "LED"

[buses.garden]
hadd = "0300/0000"
name = "Garden"

[buses.garden.components.thermometer]
kind = "rpi1wire.ds18b20"
hadd = "0300/0001"
name = "Thermometer"
"#;

fn janitoo(arguments: &[&str]) -> Output {
    Command::new(JANITOO).args(arguments).output().unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

struct Running {
    broker: BrokerProcess,
    _controller: ControllerProcess,
    _dir: tempfile::TempDir,
}

/// A broker and the controller above, answering.
async fn running() -> Running {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tools.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    let mut client = Client::connect(broker.port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    let ambiance = Hadd::new(220, 1);
    client
        .ask_until_answered(
            || Request::get(ambiance, "name", Genre::Config, CommandClass::CONFIGURATION),
            Duration::from_secs(10),
        )
        .await;
    Running {
        broker,
        _controller: controller,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_set_print_the_reply_and_exit_by_its_status() {
    let net = running().await;
    let broker = net.broker.address();
    let b = broker.as_str();

    let get = janitoo(&["get", "-b", b, "0220/0001", "temperature"]);
    let (out, err) = text(&get);
    assert_eq!(get.status.code(), Some(0), "{err}");
    assert!(
        out.starts_with("0220/0001 temperature[0] = ") && out.contains("°C") && out.contains("200"),
        "{out}"
    );

    let json = janitoo(&["get", "-b", b, "0220/0001", "temperature", "--json"]);
    let reply: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["uuid"], "temperature");
    assert!(reply["data"].is_number(), "{reply}");

    let set = janitoo(&[
        "set",
        "-b",
        b,
        "0220/0001",
        "name",
        "Salon",
        "--genre",
        "config",
    ]);
    let (out, err) = text(&set);
    assert_eq!(set.status.code(), Some(0), "{err}");
    assert!(out.contains("name[0] = Salon"), "{out}");
    let read_back = janitoo(&["get", "-b", b, "0220/0001", "name", "--genre", "config"]);
    assert!(
        text(&read_back).0.contains("= Salon"),
        "{:?}",
        text(&read_back)
    );

    // The LED switch, a list value.
    let switch = janitoo(&["set", "-b", b, "0220/0002", "switch", "on"]);
    assert_eq!(switch.status.code(), Some(0), "{:?}", text(&switch));

    // Refusals: exit 3 and the node's reason.
    let unknown = janitoo(&["get", "-b", b, "0220/0001", "pressure"]);
    let (_, err) = text(&unknown);
    assert_eq!(unknown.status.code(), Some(3), "{err}");
    assert!(err.contains("404") && err.contains("pressure"), "{err}");
    // A read-only value (its discovery says so) is refused before anything is sent: the
    // original's nodes would answer 200 and change nothing.
    let read_only = janitoo(&["set", "-b", b, "0220/0001", "temperature", "30"]);
    let (_, err) = text(&read_only);
    assert_eq!(read_only.status.code(), Some(2), "{err}");
    assert!(
        err.contains("read-only") && err.contains("nothing sent"),
        "{err}"
    );
    let bad = janitoo(&[
        "set",
        "-b",
        b,
        "0220/0001",
        "pin",
        "many",
        "--genre",
        "config",
    ]);
    assert_eq!(bad.status.code(), Some(3), "{:?}", text(&bad));
    assert!(text(&bad).1.contains("400"), "{:?}", text(&bad));

    // The process's metrics are system values of its process node (the first bus by oid,
    // `garden`, here): value actors (instance 2) have handled messages.
    let handled = janitoo(&[
        "get",
        "-b",
        b,
        "0300/0000",
        "actor_handled",
        "--index",
        "2",
        "--genre",
        "system",
        "--json",
    ]);
    let reply: serde_json::Value = serde_json::from_slice(&handled.stdout).unwrap();
    assert_eq!(reply["status"], 200, "{reply}");
    assert!(reply["data"].as_u64().unwrap() > 0, "{reply}");

    // Nobody at that address: exit 1, said so.
    let nobody = janitoo(&["get", "-b", b, "0999/0001", "temperature", "--wait", "0.5"]);
    let (_, err) = text(&nobody);
    assert_eq!(nobody.status.code(), Some(1), "{err}");
    assert!(err.contains("no answer from node 0999/0001"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_shows_the_network_and_a_node() {
    let net = running().await;
    let broker = net.broker.address();
    let b = broker.as_str();

    let network = janitoo(&["query", "network", "-b", b, "--wait", "5"]);
    let (out, err) = text(&network);
    assert_eq!(network.status.code(), Some(0), "{err}");
    for row in [
        "0220/0000",
        "0220/0001  Ambiance",
        "0220/0002  LED",
        "0300/0001  Thermometer",
    ] {
        assert!(out.contains(row), "{row} missing in\n{out}");
    }
    let json = janitoo(&["query", "network", "-b", b, "--json"]);
    let nodes: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(nodes.len(), 5, "{nodes:?}");

    let node = janitoo(&["query", "node", "-b", b, "0220/0001"]);
    let (out, err) = text(&node);
    assert_eq!(node.status.code(), Some(0), "{err}");
    assert!(out.contains("\"Ambiance\" at \"Living room\""), "{out}");
    for row in [
        "user    temperature[0]",
        "config  pin[0]",
        "system  heartbeat[0]",
    ] {
        assert!(out.contains(row), "{row} missing in\n{out}");
    }
    let users = janitoo(&[
        "query",
        "node",
        "-b",
        b,
        "0220/0001",
        "--genre",
        "user",
        "--json",
    ]);
    let answer: serde_json::Value = serde_json::from_slice(&users.stdout).unwrap();
    assert_eq!(answer["node"]["name"], "Ambiance");
    let uuids: Vec<&str> = answer["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids, ["humidity", "temperature"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spy_decodes_every_message_and_shows_unknown_traffic_raw() {
    let net = running().await;
    let broker = net.broker.address();
    let mut spy = Command::new(JANITOO)
        .args(["spy", "-b", &broker, "--json", "--duration", "4"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let said = Lines::read(spy.stderr.take().unwrap());
    assert!(
        said.wait_for("spying on", Duration::from_secs(5)),
        "spy never subscribed"
    );
    let mut client = Client::connect(net.broker.port).await;
    client.publish("/not/janitoo", b"hello".to_vec()).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client
        .ask(Request::get(
            Hadd::new(300, 1),
            "temperature",
            Genre::User,
            CommandClass::SENSOR_MULTILEVEL,
        ))
        .await;
    let output = spy.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert!(kinds.contains(&"request"), "{kinds:?}");
    assert!(kinds.contains(&"value-reply"), "{kinds:?}");
    assert!(kinds.contains(&"value"), "{kinds:?}");
    let raw = lines
        .iter()
        .find(|l| l["topic"] == "/not/janitoo")
        .expect("unknown traffic shown");
    assert_eq!(raw["raw"], "hello");
    assert!(raw["error"].is_string());

    // `janitoo spy | head -1`: the reader goes away; spy ends quietly, it does not panic.
    let mut piped = Command::new(JANITOO)
        .args(["spy", "-b", &broker, "--duration", "20"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(piped.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(piped.stdout.take());
    let ended = piped.wait_with_output().unwrap();
    assert_eq!(
        ended.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ended.stderr)
    );

    // For people: one line each, no colour when not on a terminal.
    let mut spy = Command::new(JANITOO)
        .args(["spy", "-b", &broker, "--count", "1", "--duration", "20"])
        .args(["--filter", "/nodes/+/+/request"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let said = Lines::read(spy.stderr.take().unwrap());
    assert!(
        said.wait_for("spying on", Duration::from_secs(5)),
        "spy never subscribed"
    );
    client
        .ask(Request::get(
            Hadd::new(300, 1),
            "temperature",
            Genre::User,
            CommandClass::SENSOR_MULTILEVEL,
        ))
        .await;
    let lines = spy.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&lines.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("request           /nodes/0300/0001/request get temperature on 0300/0001")
            && !out.contains('\x1b'),
        "{out}"
    );
}

#[test]
fn bad_input_and_an_unreachable_broker_are_named() {
    let bad_hadd = janitoo(&["get", "-b", "127.0.0.1:1", "0220-0001", "temperature"]);
    let (_, err) = text(&bad_hadd);
    assert_eq!(bad_hadd.status.code(), Some(2), "{err}");
    assert!(err.contains("HADD \"0220-0001\""), "{err}");

    let bad_broker = janitoo(&["query", "network", "-b", "nowhere"]);
    assert_eq!(bad_broker.status.code(), Some(2));
    let said = text(&bad_broker).1;
    assert!(
        said.contains("--broker") && said.contains("\"nowhere\": expected host:port"),
        "{said}"
    );

    let nan = janitoo(&[
        "get",
        "-b",
        "127.0.0.1:1",
        "0220/0001",
        "x",
        "--wait",
        "nan",
    ]);
    assert_eq!(nan.status.code(), Some(2));
    assert!(
        text(&nan).1.contains("not a number of seconds"),
        "{:?}",
        text(&nan)
    );

    let bad_filter = janitoo(&["spy", "-b", "127.0.0.1:1", "--filter", "a/#/b"]);
    assert_eq!(bad_filter.status.code(), Some(2));
    assert!(text(&bad_filter).1.contains("not an MQTT topic filter"));

    let port = janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap();
    let address = format!("127.0.0.1:{port}");
    for command in [
        vec!["get", "-b", &address, "0220/0001", "temperature"],
        vec!["query", "node", "-b", &address, "0220/0001"],
        vec!["spy", "-b", &address, "--count", "1"],
    ] {
        let unreachable = janitoo(&command);
        let (_, err) = text(&unreachable);
        assert_eq!(unreachable.status.code(), Some(1), "{command:?}: {err}");
        assert!(
            err.contains(&format!("broker {address} unreachable")),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_lists_every_controller_and_its_actors() {
    let net = running().await;
    let broker = net.broker.address();
    let b = broker.as_str();

    let json = janitoo(&["top", "-b", b, "--once", "--json", "--wait", "2"]);
    let (out, err) = text(&json);
    assert_eq!(json.status.code(), Some(0), "{err}");
    let view: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["actors"][2], "value");
    // The process node (garden, first by oid) carries the metrics, one instance per actor.
    let process = &view["controllers"]["0300/0000"];
    assert_eq!(
        process["actor_handled"].as_array().unwrap().len(),
        7,
        "{view}"
    );
    assert!(process["bridge_queue_depth"].is_array(), "{view}");

    let table = janitoo(&["top", "-b", b, "--once", "--sort", "latency"]);
    let (out, _) = text(&table);
    assert!(out.contains("CONTROLLER  ACTOR"), "{out}");
    for actor in [
        "bus",
        "node",
        "value",
        "bridge",
        "supervisor",
        "config_writer",
        "web",
    ] {
        assert!(
            out.contains(&format!("0300/0000   {actor}")),
            "{actor} in\n{out}"
        );
    }

    // No controller publishing metrics: said so, exit 1.
    let quiet = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let nothing = janitoo(&["top", "-b", &quiet.address(), "--once", "--wait", "1"]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(text(&nothing).1.contains("no controller published metrics"));
}
