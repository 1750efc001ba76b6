//! `janitoo run` refuses bad input before starting anything: a clear message naming the file,
//! the key or the argument, and exit code 2.

use std::process::Command;

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

fn run_with(config_text: Option<&str>, broker: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    if let Some(text) = config_text {
        std::fs::write(&path, text).unwrap();
    }
    let output = Command::new(JANITOO)
        .args(["run", "--config"])
        .arg(&path)
        .args(["--broker", broker])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A missing file, a bad HADD, an unknown component kind, a bad broker address.
#[test]
fn bad_configurations_and_arguments_are_named_and_nothing_starts() {
    let (code, stderr) = run_with(None, "127.0.0.1:1");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bad.toml: cannot read it"), "{stderr}");

    let bad_hadd = "[buses.b]\nhadd = \"0220/0000\"\n[buses.b.components.c]\nkind = \"rpibasic.dht\"\nhadd = \"0220/00x1\"\n";
    let (code, stderr) = run_with(Some(bad_hadd), "127.0.0.1:1");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`buses.b.components.c.hadd`: expected a HADD"),
        "{stderr}"
    );

    let unknown_kind = "[buses.b]\nhadd = \"0220/0000\"\n[buses.b.components.c]\nkind = \"nope.nothing\"\nhadd = \"0220/0001\"\n";
    let (code, stderr) = run_with(Some(unknown_kind), "127.0.0.1:1");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`buses.b.components.c`: unknown component kind \"nope.nothing\""),
        "{stderr}"
    );

    let (code, stderr) = run_with(Some("[buses.b]\nhadd = \"0220/0000\"\n"), "no-port");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--broker") && stderr.contains("\"no-port\": expected host:port"),
        "{stderr}"
    );
}

/// `--help` explains each command.
#[test]
fn help_explains_the_commands() {
    let output = Command::new(JANITOO).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    for command in ["run", "broker", "demo"] {
        assert!(text.contains(command), "{text}");
    }
    let run = Command::new(JANITOO)
        .args(["run", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("--config") && text.contains("--broker") && text.contains("embedded"),
        "{text}"
    );
}

/// Off a Raspberry Pi, the tutorial's LED cannot have its GPIO: a clear error naming the
/// component, exit code 2, no panic.
#[test]
fn gpio_off_a_pi_is_a_clear_error_naming_the_component() {
    if std::path::Path::new("/dev/gpiomem").exists() {
        return; // a Raspberry Pi: the GPIO opens
    }
    let tutorial = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/tutorial.toml"
    );
    let output = Command::new(JANITOO)
        .args(["run", "--config", tutorial, "--broker", "127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`buses.rpibasic.components.led`: GPIO is not available"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The bit-banged DHT backend needs the GPIO too: off a Pi, the same clear refusal, naming the
/// component and pointing at the IIO backend; a backend that does not exist is named.
#[test]
fn a_bit_banged_dht_off_a_pi_is_a_clear_error() {
    if std::path::Path::new("/dev/gpiomem").exists() {
        return;
    }
    for (backend, expected) in [
        ("gpio", "GPIO 6 for the DHT"),
        ("spi", "`backend` must be \"iio\" or \"gpio\", not \"spi\""),
    ] {
        let stderr = refused_at_start(&format!(
            "[buses.rpibasic]\nhadd = \"0220/0000\"\n\
             [buses.rpibasic.components.ambiance]\nkind = \"rpibasic.dht\"\n\
             hadd = \"0220/0001\"\nvalues = {{ pin = 6, backend = \"{backend}\" }}\n"
        ));
        assert!(
            stderr.contains("`buses.rpibasic.components.ambiance`") && stderr.contains(expected),
            "{stderr}"
        );
    }
}

/// A bus aggregate of a value no component of the bus has is refused at start, naming the key
/// and the values there are.
#[test]
fn an_aggregate_of_an_unknown_value_is_named() {
    let stderr = refused_at_start(
        "[hardware]\nsimulate = true\n\
         [buses.tutorial2]\nhadd = \"0225/0000\"\naggregates = { pressure = \"average\" }\n\
         [buses.tutorial2.components.ambiance]\nkind = \"rpibasic.dht\"\nhadd = \"0225/0001\"\n",
    );
    assert!(
        stderr.contains("`buses.tutorial2.aggregates.pressure`")
            && stderr.contains("humidity, temperature"),
        "{stderr}"
    );
}

/// Runs `janitoo run` on configuration `text`: it must refuse to start (exit 2) without a
/// panic; its stderr.
fn refused_at_start(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("refused.toml");
    std::fs::write(&config, text).unwrap();
    let output = Command::new(JANITOO)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--broker", "127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A network key file that is missing or too short is refused at start, naming the file
/// (relative to the configuration file's folder) and what was wrong.
#[test]
fn a_bad_network_key_file_is_named() {
    let network =
        "[network]\nrole = \"primary\"\nhadd = \"0001/0000\"\nkey_file = \"no-such.key\"\n";
    let stderr = refused_at_start(network);
    assert!(
        stderr.contains("no-such.key") && stderr.contains("does not exist"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, "tiny\n").unwrap();
    let stderr = refused_at_start(&network.replace(
        "\"no-such.key\"",
        &format!("{:?}", short.display().to_string()),
    ));
    assert!(
        stderr.contains("short.key") && stderr.contains("at least 16 bytes"),
        "{stderr}"
    );
}

/// `janitoo network-key FILE` writes a key a controller accepts, readable by its owner only,
/// and never overwrites one.
#[test]
fn network_key_writes_a_new_key_and_never_overwrites_one() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("network.key");
    let output = Command::new(JANITOO)
        .arg("network-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(text.trim().len(), 64, "{text}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = Command::new(JANITOO)
        .arg("network-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
}
