//! Mixed networks with the original, played by scripts:
//! - `janitoo get` and `set` against a node of the original: it answers only requests with the
//!   command class it expects (112 for config values), and only on the value's topic, without
//!   echoing the request id;
//! - our secondaries beside a primary of the original (`janitoo_dhcp`): resolv heartbeats
//!   without epoch every 15 s, then silence;
//! - ours taking over from it after missing a node's period change while frozen: no false
//!   PENDING (the original's primary gives no map to learn the period from).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::{copy_example, unkeyed};
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::watch::Watcher;
use janitoo_protocol::Hadd;
use tokio::time::Instant;

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
            let mut tree: serde_json::Value = serde_json::from_slice(&request.payload).unwrap();
            if tree["uuid"] == "request_info_configs" {
                // Discovery: the request echoed, plus {hadd: {uuid: {index: valuedict}}}; its
                // `serial` is read-only (the original would answer a set of it 200 anyway).
                let reply_topic = format!("/nodes/{}/reply", tree["reply_hadd"].as_str().unwrap());
                tree["data"] = serde_json::json!({"0400/0001": {
                    "name": {"0": {"uuid": "name", "hadd": "0400/0001", "genre": 3,
                        "cmd_class": 112, "index": 0, "data": name, "type": 8,
                        "is_readonly": false}},
                    "serial": {"0": {"uuid": "serial", "hadd": "0400/0001", "genre": 3,
                        "cmd_class": 112, "index": 0, "data": "A1", "type": 8,
                        "is_readonly": true}}}});
                answerer.publish(&reply_topic, tree.to_string()).await;
                continue;
            }
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
    // Issue 23, item 6: the original answers its value's own instance whatever the index: the
    // tool shows it and fails (exit 1) rather than pass instance 0 off as instance 1.
    let (code, out) = run(&["get", "0400/0001", "name", "--index", "1"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("name[0] = Shed"), "{out}");
    // Issue 23, item 6: a read-only value is refused before anything is sent.
    let (code, _) = run(&["set", "0400/0001", "serial", "B2"]);
    assert_eq!(code, Some(2), "a set of a read-only value");
    let (code, _) = run(&["set", "0400/0001", "name", "done"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        script.await.unwrap(),
        0,
        "a request the original would drop was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_learn_a_user_values_command_class_from_an_original_node() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let mut node = Client::connect(broker.port).await;
    node.subscribe("/nodes/0400/0002/request").await;
    let answerer = Client::connect(broker.port).await;
    let script = tokio::spawn(async move {
        let mut state = String::from("off");
        let mut ignored = 0;
        let value = |state: &str| {
            serde_json::json!({"uuid": "switch", "hadd": "0400/0002", "genre": 2,
                "cmd_class": 37, "index": 0, "data": state, "type": 5,
                "list_items": ["on", "off"]})
        };
        while let Some(request) = node
            .next_on("/nodes/0400/0002/request", Duration::from_secs(30))
            .await
        {
            let mut tree: serde_json::Value = serde_json::from_slice(&request.payload).unwrap();
            let reply_topic = format!("/nodes/{}/reply", tree["reply_hadd"].as_str().unwrap());
            if tree["uuid"] == "request_info_users" {
                // The request echoed, plus data: {hadd: {uuid: {index: valuedict}}}.
                tree["data"] = serde_json::json!({"0400/0002": {"switch": {"0": value(&state)}}});
                answerer.publish(&reply_topic, tree.to_string()).await;
                continue;
            }
            // The original's on_request for a user value: its own command class, or nothing.
            if tree["uuid"] != "switch" || tree["cmd_class"] != 37 {
                ignored += 1;
                continue;
            }
            if tree["is_writeonly"] == true {
                state = tree["data"].as_str().unwrap_or_default().to_owned();
            }
            let mut answer = value(&state);
            for (key, field) in tree.as_object().unwrap() {
                if key != "data" {
                    answer[key] = field.clone();
                }
            }
            answerer.publish(&reply_topic, answer.to_string()).await;
            answerer
                .publish("/values/user/0400/0002/switch", value(&state).to_string())
                .await;
            if state == "done" {
                break;
            }
        }
        ignored
    });
    let run = |args: &[&str]| {
        let output = Command::new(JANITOO)
            .args(args)
            .args(["--genre", "user", "-b", &broker.address()])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["get", "0400/0002", "switch"]);
    assert!(code == Some(0) && out.contains("off"), "{out}");
    let (code, out) = run(&["set", "0400/0002", "switch", "on"]);
    assert!(code == Some(0) && out.contains("on"), "{out}");
    let (code, out) = run(&["get", "0400/0002", "switch"]);
    assert!(code == Some(0) && out.contains("on"), "{out}");
    let (code, _) = run(&["set", "0400/0002", "switch", "done"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        script.await.unwrap(),
        0,
        "a request the original would drop was sent"
    );
}

/// The original primary's resolv heartbeat, as recorded (`s10_dhcp_primary_startup.trace`).
const ORIGINAL_RESOLV_HEARTBEAT: &str =
    r#"{"add_ctrl": "0001", "add_node": "0000", "state": "ONLINE"}"#;

/// Its `resolv_timeout` is 15 s in the original's sample configuration: the 45 s that takes
/// is tested on paused time (`actors/tests/paused_time/supervisor.rs`); here, processes with a 3 s cadence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_secondaries_follow_an_original_primary_and_take_over_after_three_of_its_periods() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let watcher = Watcher::start("127.0.0.1", broker.port, &["/dhcp/resolv/heartbeat"]).await;
    let original = Client::connect(broker.port).await;
    let cadence = Duration::from_secs(3);
    let beats = 3;
    let start = Instant::now();
    original
        .publish("/dhcp/resolv/heartbeat", ORIGINAL_RESOLV_HEARTBEAT)
        .await;
    // Ours start between two of its heartbeats: they must hear the next before claiming.
    tokio::time::sleep_until(start + cadence / 2).await;
    let dir = tempfile::tempdir().unwrap();
    let _controllers: Vec<ControllerProcess> = ["secondary-a.toml", "secondary-b.toml"]
        .iter()
        .map(|file| {
            // Beside the original, a network stays unkeyed.
            let config = copy_example(&format!("failover/{file}"), dir.path(), |text| {
                unkeyed(text)
                    .replace("# original_primary = true", "original_primary = true")
                    .replace("# original_interval = 15", "original_interval = 3")
            });
            ControllerProcess::start(Path::new(JANITOO), &config, &broker.address())
        })
        .collect();
    let mut last_beat = start;
    for beat in 1..beats {
        // The script's own cadence: a timer, as the original's.
        tokio::time::sleep_until(start + cadence * beat).await;
        last_beat = Instant::now();
        original
            .publish("/dhcp/resolv/heartbeat", ORIGINAL_RESOLV_HEARTBEAT)
            .await;
    }
    let claim = watcher
        .wait_for(Duration::from_secs(20), || {
            watcher
                .primaries(start)
                .into_iter()
                .find(|(_, _, epoch)| *epoch != 0)
        })
        .await
        .expect("no takeover within 20 s of the original's last heartbeat");
    let (claimed_at, claimant, _) = claim;
    let after_last = claimed_at - last_beat;
    assert!(
        after_last > cadence * 3 && after_last < cadence * 3 + Duration::from_secs(3),
        "{claimant} claimed {after_last:?} after the original's last heartbeat: \
         3 of its 3 s periods are due"
    );
    // The claimant is ours, and alone.
    let settled = claimed_at + Duration::from_secs(3);
    watcher
        .wait_for(Duration::from_secs(10), || {
            (Instant::now() >= settled).then_some(())
        })
        .await;
    let claimants: std::collections::BTreeSet<Hadd> = watcher
        .primaries(start)
        .into_iter()
        .filter(|(_, _, epoch)| *epoch != 0)
        .map(|(_, hadd, _)| hadd)
        .collect();
    assert_eq!(claimants.len(), 1, "claimants {claimants:?}");
}

/// A node of the original, played by a script: beats on `/dhcp/heartbeat/0300/0001` every
/// `period` (changed at once when a new one is sent on `periods`), and answers the nodes
/// discovery with its period, as the original's bus does.
async fn scripted_node(port: u16, mut periods: tokio::sync::mpsc::UnboundedReceiver<u64>) {
    let mut node = Client::connect(port).await;
    node.subscribe("/broadcast/request").await;
    let mut period = 2;
    let mut next_beat = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_beat) => {
                node.publish("/dhcp/heartbeat/0300/0001", "ONLINE").await;
                next_beat = Instant::now() + Duration::from_secs(period);
            }
            changed = periods.recv() => {
                let Some(changed) = changed else { return };
                period = changed;
                // Its heartbeat value, as a node publishes it after a change.
                node.publish(
                    "/values/system/0300/0001/heartbeat",
                    format!(
                        r#"{{"uuid":"heartbeat","genre":4,"cmd_class":112,"index":0,"data":{period},"hadd":"0300/0001"}}"#
                    ),
                )
                .await;
                next_beat = Instant::now() + Duration::from_secs(period);
            }
            request = node.next_matching(Duration::from_millis(100), |r| r.topic == "/broadcast/request") => {
                let Some(request) = request else { continue };
                let Ok(request) = serde_json::from_slice::<serde_json::Value>(&request.payload) else {
                    continue;
                };
                let (Some(uuid), Some(reply_hadd)) =
                    (request["uuid"].as_str(), request["reply_hadd"].as_str())
                else {
                    continue;
                };
                if uuid == "request_info_nodes" {
                    let answer = format!(
                        r#"{{"uuid":"request_info_nodes","cmd_class":20480,"genre":4,"reply_hadd":"{reply_hadd}","data":{{"0300/0001":{{"hadd":"0300/0001","name":"Original node","heartbeat":{period}}}}}}}"#
                    );
                    node.publish(&format!("/broadcast/reply/{reply_hadd}"), answer)
                        .await;
                }
            }
        }
    }
}

/// Our secondary beside an original primary misses a node's period change (2 s to 60 s): it is
/// frozen (SIGSTOP) until the broker drops it, and the change comes then. Back, it believes
/// 2 s and judges the node silent; the original primary then goes quiet and ours takes over,
/// asks every node, and hears 60 s from the node itself: it tells nothing of the node (the
/// node beats again only a minute after its change). The simulation found the false PENDING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_change_missed_while_frozen_makes_no_false_pending_at_takeover() {
    let kind = *janitoo_integration_tests::process::brokers_under_test()
        .last()
        .unwrap();
    let broker = BrokerProcess::start(kind, Path::new(JANITOO), None);
    let watcher = Watcher::start(
        "127.0.0.1",
        broker.port,
        &[
            "/dhcp/resolv/heartbeat",
            "/dhcp/heartbeat/#",
            "/values/system/0300/0001/heartbeat",
        ],
    )
    .await;
    let node_hadd = Hadd::new(300, 1);
    // When the node's period value was heard since `since`, and how many of its beats after.
    let heard_node = |since: Instant| {
        let heard = watcher.since(since);
        let value_at = heard
            .iter()
            .find(|h| matches!(h.topic, janitoo_protocol::Topic::Value { hadd, .. } if hadd == node_hadd))
            .map(|h| h.at)?;
        let beats = heard
            .iter()
            .filter(|h| {
                h.at > value_at
                    && h.topic == janitoo_protocol::Topic::Heartbeat(node_hadd)
                    && matches!(h.message, janitoo_protocol::Message::Heartbeat(_))
            })
            .count();
        Some(beats)
    };
    let original = Client::connect(broker.port).await;
    let (change_period, periods) = tokio::sync::mpsc::unbounded_channel();
    let node = tokio::spawn(scripted_node(broker.port, periods));
    // The original's primary beats every 5 s until told to stop.
    let (stop_original, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let original_beats = tokio::spawn(async move {
        loop {
            original
                .publish("/dhcp/resolv/heartbeat", ORIGINAL_RESOLV_HEARTBEAT)
                .await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = &mut stopped => return,
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = copy_example("failover/secondary-a.toml", dir.path(), |text| {
        unkeyed(text)
            .replace("# original_primary = true", "original_primary = true")
            .replace("# original_interval = 15", "original_interval = 5")
            .replace(
                "address = \"127.0.0.1:1883\"",
                "address = \"127.0.0.1:1883\"\nkeepalive = 5",
            )
    });
    let ours = Hadd::new(2, 0);
    let controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
    let start = Instant::now();
    let own_beat = |since: Instant| {
        watcher.since(since).iter().any(|heard| {
            heard.topic == janitoo_protocol::Topic::Heartbeat(ours)
                && matches!(heard.message, janitoo_protocol::Message::Heartbeat(_))
        })
    };
    watcher
        .wait_for(Duration::from_secs(15), || own_beat(start).then_some(()))
        .await
        .expect("our secondary does not beat");
    // It hears the node (2 s, from its value) for a while.
    let told_two = Instant::now();
    change_period.send(2).unwrap();
    watcher
        .wait_for(Duration::from_secs(10), || {
            heard_node(told_two).filter(|beats| *beats >= 2)
        })
        .await
        .expect("the node's 2 s period and beats were not heard");

    // Frozen until the broker drops it (its Will: OFFLINE), then the node changes its period.
    controller.signal("STOP");
    let frozen = Instant::now();
    let dropped = watcher
        .wait_for(Duration::from_secs(20), || {
            watcher.since(frozen).into_iter().find(|heard| {
                heard.topic == janitoo_protocol::Topic::Heartbeat(ours)
                    && matches!(&heard.message, janitoo_protocol::Message::Heartbeat(beat) if beat.state == janitoo_protocol::NodeState::Offline)
            })
        })
        .await;
    assert!(
        dropped.is_some(),
        "the broker did not drop the frozen controller"
    );
    let changed = Instant::now();
    change_period.send(60).unwrap();
    watcher
        .wait_for(Duration::from_secs(5), || heard_node(changed))
        .await
        .expect("the node's new period was not published");
    controller.signal("CONT");
    let resumed = Instant::now();
    watcher
        .wait_for(Duration::from_secs(15), || own_beat(resumed).then_some(()))
        .await
        .expect("our secondary did not come back");
    // Past its rejoin allowance (10 s) it judges the node silent with 2 s; then the original
    // goes quiet, and ours takes over 3 of its periods later.
    tokio::time::sleep(Duration::from_secs(12)).await;
    stop_original.send(()).unwrap();
    let claimed = watcher
        .wait_for(Duration::from_secs(30), || {
            watcher
                .primaries(resumed)
                .into_iter()
                .find(|(_, hadd, epoch)| *hadd == ours && *epoch != 0)
        })
        .await
        .expect("ours did not take over from the quiet original");
    // Caught up a second later; the node's next beat is due a minute after its change.
    let watch_until = changed + Duration::from_secs(55);
    assert!(
        claimed.0 + Duration::from_secs(5) < watch_until,
        "the takeover came too late to tell: {:?} after the change",
        claimed.0 - changed
    );
    tokio::time::sleep_until(watch_until).await;
    let told: Vec<_> = watcher
        .dispatches(resumed)
        .into_iter()
        .filter(|dispatch| dispatch.node == node_hadd)
        .collect();
    assert!(
        told.is_empty(),
        "told of the node beating every 60 s: {told:?}"
    );
    original_beats.abort();
    node.abort();
}

/// The original's DHCP server (`janitoo_dhcp`), played by a script: it answers
/// `/dhcp/lease/new|lock|release` on `/reply/<rep_uuid>` with its lease columns (`last_seen`
/// in MongoDB's extended JSON), allocates a controller above the highest in its table and a
/// node above the highest under its controller, and beats on `/dhcp/resolv/heartbeat` without
/// epoch. Its table starts with one lease: on an empty table its `new_lease` fails (a known
/// bug of the original) and nothing answers. It plays until it has answered `locks` locks, or
/// for `stop` at most; what it heard, in order.
async fn original_dhcp(
    mut script: Client,
    answerer: Client,
    locks: usize,
    stop: Duration,
) -> Vec<String> {
    let mut table: std::collections::BTreeMap<(i64, i64), serde_json::Value> =
        std::collections::BTreeMap::new();
    table.insert(
        (10, 0),
        serde_json::json!({"name": "Kitchen", "location": "House"}),
    );
    let mut heard = Vec::new();
    let mut beat_at = Instant::now();
    let until = Instant::now() + stop;
    while Instant::now() < until && heard.iter().filter(|op| *op == "lock").count() < locks {
        if Instant::now() >= beat_at {
            answerer
                .publish(
                    "/dhcp/resolv/heartbeat",
                    r#"{"add_ctrl":1,"add_node":0,"state":"ONLINE"}"#,
                )
                .await;
            beat_at = Instant::now() + Duration::from_secs(15);
        }
        let Some(request) = script
            .next_matching(Duration::from_millis(500), |r| {
                r.topic.starts_with("/dhcp/lease/")
            })
            .await
        else {
            continue;
        };
        let op = request.topic.trim_start_matches("/dhcp/lease/").to_owned();
        let tree: serde_json::Value = serde_json::from_slice(&request.payload).unwrap();
        heard.push(op.clone());
        let rep_uuid = tree["rep_uuid"].as_str().unwrap().to_owned();
        let (mut ctrl, mut node) = (
            tree["add_ctrl"].as_i64().unwrap(),
            tree["add_node"].as_i64().unwrap(),
        );
        let state = match op.as_str() {
            "new" => {
                if ctrl == -1 {
                    ctrl = table.keys().map(|(c, _)| *c).max().unwrap() + 1;
                    node = 0;
                } else {
                    node = table
                        .keys()
                        .filter(|(c, _)| *c == ctrl)
                        .map(|(_, n)| *n)
                        .max()
                        .unwrap()
                        + 1;
                }
                let options = &tree["options"];
                table.insert(
                    (ctrl, node),
                    serde_json::json!({"name": options["name"], "location": options["location"]}),
                );
                "BOOT"
            }
            "lock" => "BOOT",
            "release" => "OFFLINE",
            _ => continue,
        };
        let lease = table.get(&(ctrl, node)).cloned().unwrap_or_default();
        let reply = serde_json::json!({
            "msg_status": 200, "rep_uuid": rep_uuid, "add_ctrl": ctrl, "add_node": node,
            "name": lease["name"], "location": lease["location"], "cmd_classes": "0x0000",
            "state": state, "last_seen": {"$date": 1_765_000_000_000_i64},
        });
        answerer
            .publish(&format!("/reply/{rep_uuid}"), reply.to_string())
            .await;
    }
    heard
}

/// An auto controller leases from the original's DHCP server: three addresses above its
/// table, written into the file; a restart locks them; a clean stop releases them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_controller_leases_from_the_originals_dhcp_server() {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let mut script = Client::connect(broker.port).await;
    script.subscribe("/dhcp/lease/#").await;
    let answerer = Client::connect(broker.port).await;
    let dhcp = tokio::spawn(original_dhcp(script, answerer, 3, Duration::from_secs(60)));
    let watcher = Watcher::start("127.0.0.1", broker.port, &["/dhcp/heartbeat/#"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = copy_example("auto.toml", dir.path(), |text| text);
    let leased = [Hadd::new(11, 0), Hadd::new(11, 1), Hadd::new(11, 2)];
    let beating = |since: Instant| {
        let watcher = &watcher;
        async move {
            watcher
                .wait_for(Duration::from_secs(20), || {
                    let heard: Vec<Hadd> = watcher
                        .since(since)
                        .into_iter()
                        .filter_map(|heard| match heard.topic {
                            janitoo_protocol::Topic::Heartbeat(hadd) => Some(hadd),
                            _ => None,
                        })
                        .collect();
                    leased.iter().all(|hadd| heard.contains(hadd)).then_some(())
                })
                .await
                .is_some()
        }
    };
    let started = Instant::now();
    let mut auto = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--simulate"],
    );
    assert!(beating(started).await, "no heartbeats on {leased:?}");
    let text = std::fs::read_to_string(&config).unwrap();
    for hadd in leased {
        assert!(text.contains(&format!("hadd = \"{hadd}\"")), "{text}");
    }
    let leased_lines = text
        .lines()
        .filter(|line| line.trim() == "leased = true")
        .count();
    assert_eq!(leased_lines, 3, "{text}");
    assert!(auto.terminate(Duration::from_secs(10)), "no clean stop");
    let again = Instant::now();
    let _auto = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--simulate"],
    );
    assert!(beating(again).await, "a restart keeps the addresses");
    let heard = dhcp.await.unwrap();
    let count = |op: &str| heard.iter().filter(|heard| *heard == op).count();
    assert_eq!(
        (count("new"), count("release"), count("lock")),
        (3, 3, 3),
        "three leased, released at the stop, locked at the restart: {heard:?}"
    );
}
