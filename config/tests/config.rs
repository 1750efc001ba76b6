//! Loading checks every key and names what is wrong; write-back keeps the file whole.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use janitoo_config::{
    Address, AggregateFunction, Config, ConfigError, ConfigFile, NetworkRole, NodeKey, SettingKey,
};
use janitoo_protocol::lease_table::MAX_UNCONFIRMED_PER_CONTROLLER;
use janitoo_protocol::{Data, Hadd};

const GOOD: &str = r#"
# The tutorial's first bus.
[broker]
address = "127.0.0.1:1883"

[network]
role = "secondary"
priority = 5
hadd = "0002/0000"

[buses.rpibasic]
hadd = "0220/0000"
name = "Hello world"   # kept on write-back
location = "DHT"
heartbeat = 30

[buses.rpibasic.components.ambiance]
kind = "rpibasic.dht"
hadd = "0220/0001"
values = { pin = 6, sensor = 11, temperature_poll = 300, load = { 0 = 1.5, 2 = 2.5 } }
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

fn invalid_key(text: &str) -> String {
    match parse(text) {
        Err(ConfigError::Invalid { key, file, .. }) => {
            assert_eq!(file, Path::new("test.toml"));
            key
        }
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn a_good_file_gives_buses_components_and_value_instances() {
    let config = parse(GOOD).unwrap();
    assert_eq!(
        config.broker.brokers.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:1883")
    );
    assert_eq!(config.broker.keepalive, 60);
    assert_eq!(
        (config.network.role, config.network.priority),
        (NetworkRole::Secondary, 5)
    );
    let bus = &config.buses[0];
    assert_eq!(
        (bus.oid.as_str(), bus.kind.as_str(), bus.node.hadd),
        ("rpibasic", "rpibasic", Hadd::new(220, 0))
    );
    let ambiance = &bus.components[0];
    assert_eq!(ambiance.uuid(bus), "rpibasic__ambiance");
    assert_eq!(ambiance.node.values["pin"][&0], Data::from(6));
    assert_eq!(
        ambiance.node.values["load"]
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [0, 2]
    );
}

#[test]
fn an_empty_file_is_a_broker_less_process_with_no_bus() {
    let config = parse("").unwrap();
    assert_eq!(config.broker.brokers, None);
    assert!(config.buses.is_empty());
}

/// `[broker] addresses`: several brokers, in order; each bad entry named, and `address`
/// beside it refused.
#[test]
fn a_list_of_brokers_is_read_in_order_and_each_bad_entry_named() {
    let three = GOOD.replace(
        "address = \"127.0.0.1:1883\"",
        "addresses = [\"pi1:1883\", \"pi2:1883\", \"pi3:1883\"]",
    );
    let broker = parse(&three).unwrap().broker;
    assert_eq!(
        broker.brokers.unwrap().to_string(),
        "pi1:1883,pi2:1883,pi3:1883"
    );
    assert!(broker.standby, "a standby connection by default");
    let without = three.replace("pi3:1883\"]", "pi3:1883\"]\nstandby = false");
    assert!(!parse(&without).unwrap().broker.standby);
    let wrong = three.replace("pi3:1883\"]", "pi3:1883\"]\nstandby = \"no\"");
    let shown = parse(&wrong).unwrap_err().to_string();
    assert!(shown.contains("standby"), "{shown}");
    for (text, key, says) in [
        ("[\"pi1:1883\", \"pi2\"]", "broker.addresses[1]", "\"pi2\""),
        (
            "[\"pi1:1883\", \"pi1:1883\"]",
            "broker.addresses[1]",
            "given twice",
        ),
        ("[]", "broker.addresses", "an empty list"),
    ] {
        let bad = GOOD.replace(
            "address = \"127.0.0.1:1883\"",
            &format!("addresses = {text}"),
        );
        match parse(&bad) {
            Err(err @ ConfigError::Invalid { .. }) => {
                let shown = err.to_string();
                assert!(
                    shown.contains(key) && shown.contains(says),
                    "{text}: {shown}"
                );
            }
            other => panic!("{text}: expected an invalid key, got {other:?}"),
        }
    }
    let both = GOOD.replace(
        "address = \"127.0.0.1:1883\"",
        "address = \"127.0.0.1:1883\"\naddresses = [\"pi2:1883\"]",
    );
    assert_eq!(invalid_key(&both), "broker.addresses");
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(
        invalid_key(&GOOD.replace("\"0220/0001\"", "\"02x0/0001\"")),
        "buses.rpibasic.components.ambiance.hadd"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("\"0220/0001\"", "\"0221/0001\"")),
        "buses.rpibasic.components.ambiance.hadd"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("\"0220/0000\"", "\"0220/0001\"")),
        "buses.rpibasic.hadd"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("heartbeat = 30", "heartbeat = 0")),
        "buses.rpibasic.heartbeat"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("127.0.0.1:1883", "localhost")),
        "broker.address"
    );
    assert_eq!(
        invalid_key(&GOOD.replace("2 = 2.5", "two = 2.5")),
        "buses.rpibasic.components.ambiance.values.load.two"
    );
    let twice = format!("{GOOD}\n[buses.other]\nhadd = \"0220/0000\"\n");
    assert_eq!(invalid_key(&twice), "buses.rpibasic.hadd");
    let median = GOOD.replace(
        "heartbeat = 30",
        "heartbeat = 30\naggregates = { temperature = \"median\" }",
    );
    assert_eq!(
        invalid_key(&median),
        "buses.rpibasic.aggregates.temperature"
    );
    let web = format!("{GOOD}\n[web]\nlisten = \"localhost:eighty\"\n");
    assert_eq!(invalid_key(&web), "web.listen");
    let original = GOOD.replace("priority = 5", "priority = 5\noriginal_interval = 0.5");
    assert_eq!(invalid_key(&original), "network.original_interval");
}

#[test]
fn a_network_beside_the_originals_primary_says_so_and_its_period() {
    let plain = parse(GOOD).unwrap();
    assert!(!plain.network.original_primary);
    assert_eq!(plain.network.original_interval, 15.0);
    let mixed = parse(&GOOD.replace(
        "priority = 5",
        "priority = 5\noriginal_primary = true\noriginal_interval = 20",
    ))
    .unwrap();
    assert!(mixed.network.original_primary);
    assert_eq!(mixed.network.original_interval, 20.0);
}

#[test]
fn a_keyed_network_believes_a_controllers_offline_at_once_an_unkeyed_one_doubts_it() {
    let unkeyed = parse(GOOD).unwrap().network.election();
    assert!(!unkeyed.offline_signed);
    assert_eq!(unkeyed.offline_doubt(), unkeyed.interval * 3 / 10);
    let keyed = parse(&GOOD.replace("priority = 5", "priority = 5\nkey_file = \"network.key\""))
        .unwrap()
        .network
        .election();
    assert!(keyed.offline_signed);
    assert!(keyed.offline_doubt().is_zero());
}

#[test]
fn bus_aggregates_name_a_value_and_a_function() {
    let text = GOOD.replace(
        "heartbeat = 30",
        "heartbeat = 30\naggregates = { temperature = \"average\", humidity = \"max\" }",
    );
    let config = parse(&text).unwrap();
    let aggregates = &config.buses[0].aggregates;
    assert_eq!(aggregates["temperature"], AggregateFunction::Average);
    assert_eq!(aggregates["humidity"], AggregateFunction::Max);
    assert!(parse(GOOD).unwrap().buses[0].aggregates.is_empty());
}

#[test]
fn unknown_keys_and_wrong_types_are_syntax_errors_that_name_the_key() {
    for (text, named) in [
        (
            GOOD.replace("location = \"DHT\"", "locaton = \"DHT\""),
            "locaton",
        ),
        (
            GOOD.replace("heartbeat = 30", "heartbeat = \"often\""),
            "heartbeat",
        ),
        (
            GOOD.replace("role = \"secondary\"", "role = \"boss\""),
            "boss",
        ),
    ] {
        let err = parse(&text).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{message}");
        assert!(
            message.starts_with("test.toml: ") && message.contains(named),
            "{message}"
        );
    }
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load(Path::new("/nonexistent/janitoo.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/janitoo.toml: cannot read it"),
        "{err}"
    );
}

fn written(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("janitoo.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn settings_are_written_back_keeping_comments() {
    let (_dir, path) = written(GOOD);
    let mut file = ConfigFile::open(&path).unwrap();
    let ambiance = NodeKey::Component {
        bus: "rpibasic".into(),
        key: "ambiance".into(),
    };
    file.persist(&ambiance, &SettingKey::Name, &Data::from("Salon"))
        .unwrap();
    file.persist(
        &NodeKey::Bus("rpibasic".into()),
        &SettingKey::Heartbeat,
        &Data::from(15),
    )
    .unwrap();
    file.persist(
        &ambiance,
        &SettingKey::Value {
            uuid: "temperature_poll".into(),
            index: 0,
        },
        &Data::from(60),
    )
    .unwrap();
    file.persist(
        &ambiance,
        &SettingKey::Value {
            uuid: "pin".into(),
            index: 1,
        },
        &Data::from(7),
    )
    .unwrap();
    file.persist(
        &ambiance,
        &SettingKey::Value {
            uuid: "load".into(),
            index: 2,
        },
        &Data::Null,
    )
    .unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("# kept on write-back") && text.contains("# The tutorial's first bus."),
        "{text}"
    );
    let config = Config::load(&path).unwrap();
    let bus = &config.buses[0];
    let node = &bus.components[0].node;
    assert_eq!(
        (node.name.as_deref(), bus.node.heartbeat),
        (Some("Salon"), Some(15.0))
    );
    assert_eq!(node.values["temperature_poll"][&0], Data::from(60));
    assert_eq!(
        node.values["pin"]
            .iter()
            .map(|(i, d)| (*i, d.clone()))
            .collect::<Vec<_>>(),
        [(0, Data::from(6)), (1, Data::from(7))]
    );
    assert_eq!(node.values["load"].keys().copied().collect::<Vec<_>>(), [0]);
}

#[test]
fn writing_an_unknown_node_changes_nothing() {
    let (_dir, path) = written(GOOD);
    let mut file = ConfigFile::open(&path).unwrap();
    let err = file
        .persist(
            &NodeKey::Bus("nope".into()),
            &SettingKey::Name,
            &Data::from("x"),
        )
        .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownNode { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), GOOD);
}

/// Run by `a_kill_at_any_moment_leaves_the_old_or_the_new_file` in a child process: writes the
/// name back and forth as fast as it can until killed.
#[test]
#[ignore = "helper process of the kill test"]
fn writer_child() {
    let Some(path) = std::env::var_os("JANITOO_WRITER_FILE") else {
        return;
    };
    let mut file = ConfigFile::open(Path::new(&path)).unwrap();
    let node = NodeKey::Bus("rpibasic".into());
    for round in 0u64.. {
        let name = if round % 2 == 0 {
            "a".repeat(5000)
        } else {
            "b".repeat(3)
        };
        file.persist(&node, &SettingKey::Name, &Data::from(name))
            .unwrap();
    }
}

#[test]
fn a_kill_at_any_moment_leaves_the_old_or_the_new_file() {
    let (dir, path) = written(GOOD);
    for attempt in 0..15u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["writer_child", "--exact", "--ignored", "--quiet"])
            .env("JANITOO_WRITER_FILE", &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + attempt * 7));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let config = Config::load(&path).unwrap_or_else(|err| panic!("attempt {attempt}: {err}"));
        let name = config.buses[0].node.name.clone().unwrap();
        assert!(
            name == "Hello world" || name == "a".repeat(5000) || name == "bbb",
            "attempt {attempt}: {name:.20}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        leftovers.len() <= 2,
        "temporary files pile up: {leftovers:?}"
    );
}

/// A batch of settings from the network: each is checked as the start-up check checks the
/// file; the invalid ones are left out with their error, the valid ones written together.
#[test]
fn a_checked_batch_writes_only_what_the_next_start_would_take() {
    let two = format!(
        "{GOOD}\n[buses.rpibasic.components.led]\nkind = \"rpibasic.led\"\nhadd = \"0220/0002\"\n"
    );
    let (_dir, path) = written(&two);
    let mut file = ConfigFile::open(&path).unwrap();
    let ambiance = NodeKey::Component {
        bus: "rpibasic".into(),
        key: "ambiance".into(),
    };
    let changes = vec![
        (ambiance.clone(), SettingKey::Name, Data::from("Salon")),
        // The LED's address.
        (ambiance.clone(), SettingKey::Hadd, Data::from("0220/0002")),
        // Another controller's range.
        (ambiance.clone(), SettingKey::Hadd, Data::from("9999/9999")),
        (
            NodeKey::Bus("rpibasic".into()),
            SettingKey::Heartbeat,
            Data::from(15),
        ),
        (
            NodeKey::Bus("nope".into()),
            SettingKey::Name,
            Data::from("x"),
        ),
        // Instance 0 of a value with instances, and of a plain one.
        (
            ambiance.clone(),
            SettingKey::Value {
                uuid: "load".into(),
                index: 0,
            },
            Data::from(9.5),
        ),
        (
            ambiance.clone(),
            SettingKey::Value {
                uuid: "temperature_poll".into(),
                index: 0,
            },
            Data::from(60),
        ),
    ];
    let outcomes = file.persist_checked(&changes).unwrap();
    let refused: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| outcome.is_err())
        .map(|(at, _)| at)
        .collect();
    assert_eq!(refused, [1, 2, 4], "{outcomes:?}");
    assert!(matches!(outcomes[1], Err(ConfigError::Invalid { .. })));
    assert!(matches!(outcomes[4], Err(ConfigError::UnknownNode { .. })));
    let unknown = outcomes[4].as_ref().unwrap_err().to_string();
    assert!(unknown.contains("nope"), "{unknown}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("temperature_poll = 60"),
        "a plain value stays plain:\n{text}"
    );
    let config = Config::load(&path).expect("the file still starts");
    let bus = &config.buses[0];
    assert_eq!(bus.node.heartbeat, Some(15.0));
    let ambiance = &bus
        .components
        .iter()
        .find(|c| c.key == "ambiance")
        .unwrap()
        .node;
    assert_eq!(
        (ambiance.name.as_deref(), ambiance.hadd),
        (Some("Salon"), Hadd::new(220, 1))
    );
    let load: Vec<(u32, Data)> = ambiance.values["load"]
        .iter()
        .map(|(index, data)| (*index, data.clone()))
        .collect();
    assert_eq!(load, [(0, Data::from(9.5)), (2, Data::from(2.5))]);

    // A batch that is all refused leaves the file as it was, not even rewritten.
    let before = std::fs::read_to_string(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let outcomes = file
        .persist_checked(&[(
            NodeKey::Bus("rpibasic".into()),
            SettingKey::Hadd,
            Data::from("0220/0001"),
        )])
        .unwrap();
    assert!(outcomes[0].is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
}

/// A write that fails (here a directory where the temporary file goes) is an error for the
/// whole batch, and the handle stays as it was: the next batch does not carry the failed one.
#[test]
fn a_failed_batch_write_changes_nothing() {
    let (dir, path) = written(GOOD);
    let mut file = ConfigFile::open(&path).unwrap();
    let ambiance = NodeKey::Component {
        bus: "rpibasic".into(),
        key: "ambiance".into(),
    };
    let blocker = dir.path().join(".janitoo.toml.tmp");
    std::fs::create_dir(&blocker).unwrap();
    let err = file
        .persist_checked(&[(ambiance.clone(), SettingKey::Name, Data::from("Lost"))])
        .unwrap_err();
    assert!(matches!(err, ConfigError::Write { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), GOOD);
    std::fs::remove_dir(&blocker).unwrap();
    file.persist_checked(&[(ambiance, SettingKey::Location, Data::from("Kept"))])
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("Kept") && !text.contains("Lost"), "{text}");
}

/// `hadd = "auto"` (issue 23): a bus and its components whose addresses the network leases.
#[test]
fn auto_addresses_are_read_checked_and_written_back_as_leased() {
    let auto = GOOD
        .replace("\"0220/0000\"", "\"auto\"")
        .replace("\"0220/0001\"", "\"auto\"");
    let config = parse(&auto).unwrap();
    let bus = &config.buses[0];
    assert_eq!(bus.node.address, Address::Auto);
    assert_eq!(bus.components[0].node.address, Address::Auto);
    // Two "auto" are not two uses of one address.
    let two = format!("{auto}\n[buses.other]\nhadd = \"auto\"\n");
    assert_eq!(parse(&two).unwrap().buses.len(), 2);
    // A fixed node cannot sit under a controller still to lease.
    let fixed_under_auto = GOOD.replace("\"0220/0000\"", "\"auto\"");
    assert_eq!(
        invalid_key(&fixed_under_auto),
        "buses.rpibasic.components.ambiance.hadd"
    );
    // An auto node under a fixed bus is leased under it.
    let auto_under_fixed = GOOD.replace("\"0220/0001\"", "\"auto\"");
    let config = parse(&auto_under_fixed).unwrap();
    assert_eq!(config.buses[0].node.address, Address::Fixed);
    assert_eq!(config.buses[0].components[0].node.address, Address::Auto);
    // `leased` goes with an address, not with "auto".
    let leased_auto = auto.replace("heartbeat = 30", "heartbeat = 30\nleased = true");
    assert_eq!(invalid_key(&leased_auto), "buses.rpibasic.leased");
    // More auto components than the primary leases at once under one controller.
    let mut crowded = auto.clone();
    for at in 0..=MAX_UNCONFIRMED_PER_CONTROLLER {
        crowded.push_str(&format!(
            "\n[buses.rpibasic.components.c{at}]\nkind = \"rpibasic.dht\"\nhadd = \"auto\"\n"
        ));
    }
    assert_eq!(invalid_key(&crowded), "buses.rpibasic.components");
    // Written back: the addresses, each with `leased = true`, read as leased.
    let (_dir, path) = written(&auto);
    let mut file = ConfigFile::open(&path).unwrap();
    let bus_key = NodeKey::Bus("rpibasic".into());
    let ambiance = NodeKey::Component {
        bus: "rpibasic".into(),
        key: "ambiance".into(),
    };
    let edits = [
        (bus_key.clone(), SettingKey::Hadd, Data::from("0010/0000")),
        (bus_key, SettingKey::Leased, Data::from(true)),
        (ambiance.clone(), SettingKey::Hadd, Data::from("0010/0001")),
        (ambiance, SettingKey::Leased, Data::from(true)),
    ];
    let outcomes = file.persist_checked(&edits).unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let config = Config::load(&path).unwrap();
    let bus = &config.buses[0];
    assert_eq!(
        (bus.node.hadd, bus.node.address),
        (Hadd::new(10, 0), Address::Leased)
    );
    let node = &bus.components[0].node;
    assert_eq!(
        (node.hadd, node.address),
        (Hadd::new(10, 1), Address::Leased)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# kept on write-back"), "{text}");
}

/// `[network] state_dir`: beside the file unless absolute.
#[test]
fn the_state_folder_is_beside_the_file_unless_absolute() {
    let config = Config::parse(GOOD, Path::new("/etc/janitoo/janitoo.toml")).unwrap();
    assert_eq!(
        config.network.state_dir,
        Path::new("/etc/janitoo").join(janitoo_config::network::DEFAULT_STATE_DIR)
    );
    let absolute = GOOD.replace(
        "priority = 5",
        "priority = 5\nstate_dir = \"/var/lib/janitoo\"",
    );
    let config = Config::parse(&absolute, Path::new("/etc/janitoo/janitoo.toml")).unwrap();
    assert_eq!(config.network.state_dir, Path::new("/var/lib/janitoo"));
}
