//! Every line recorded from the original Janitoo (`shared/conformance/*.trace`) decodes; its
//! re-encoding, in JSON and in MessagePack, decodes to the same message.

use std::path::PathBuf;

use janitoo_protocol::{split_trace_line, Codec, Message, Topic};

/// The traces folder: `$JANITOO_CONFORMANCE_DIR`, else `shared/conformance` beside the repo.
fn traces_dir() -> PathBuf {
    match std::env::var_os("JANITOO_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    }
}

fn check_line(line: &str) -> Result<(), String> {
    let (topic_text, payload) = split_trace_line(line).map_err(|err| err.to_string())?;
    let (topic, message) = Message::decode_on(topic_text, payload.as_bytes(), Codec::Json)
        .map_err(|err| format!("decode: {err}"))?;
    for codec in [Codec::Json, Codec::MessagePack] {
        let encoded = message.encode(codec);
        let again = Message::decode(&Topic::parse(&topic.to_string()).unwrap(), &encoded, codec)
            .map_err(|err| format!("decode of our {codec} re-encoding: {err}"))?;
        if again != message {
            return Err(format!("{codec} re-encoding decodes to another message"));
        }
    }
    Ok(())
}

#[test]
fn every_recorded_line_of_the_original_decodes_and_round_trips() {
    let dir = traces_dir();
    if !dir.is_dir() {
        // The same values as every JANITOO_TEST_* variable (integration-tests/src/require.rs).
        let required = std::env::var("JANITOO_TEST_CONFORMANCE").is_ok_and(|value| {
            !matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            )
        });
        assert!(
            !required,
            "JANITOO_TEST_CONFORMANCE is set but {} is missing",
            dir.display()
        );
        eprintln!("SKIPPED: no conformance traces at {}", dir.display());
        return;
    }
    let mut traces: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "trace"))
        .collect();
    traces.sort();
    assert!(!traces.is_empty(), "{} holds no .trace file", dir.display());

    let (mut lines, mut failures) = (0, Vec::new());
    for trace in &traces {
        let text = std::fs::read_to_string(trace).unwrap();
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
        {
            lines += 1;
            if let Err(why) = check_line(line) {
                let name = trace.file_name().unwrap().to_string_lossy();
                failures.push(format!("{name}:{}: {why}\n    {:.160}", number + 1, line));
            }
        }
    }
    eprintln!("{lines} lines in {} traces", traces.len());
    assert!(
        failures.is_empty(),
        "{} of {lines} lines fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
