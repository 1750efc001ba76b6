//! Starting the embedded broker makes rumqttd log nothing at WARN or ERROR level.
//!
//! In its own test binary: it installs a process-wide `tracing` subscriber (rumqttd logs on its
//! own threads), which must not see other tests' brokers.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use janitoo_broker::EmbeddedBroker;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records every event at `Level::INFO` or more severe, as "LEVEL target: fields".
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Level, String)>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut fields = Fields(format!("{} {}:", metadata.level(), metadata.target()));
        event.record(&mut fields);
        self.0.lock().unwrap().push((*metadata.level(), fields.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The readiness probe leaves no WARN or ERROR line from rumqttd (a bare TCP probe would).
#[test]
fn start_logs_no_warning() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).unwrap();

    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    // rumqttd logs the probe's disconnection asynchronously.
    std::thread::sleep(std::time::Duration::from_millis(300));

    let events = recorder.0.lock().unwrap().clone();
    for (_, line) in &events {
        eprintln!("{line}");
    }
    let loud: Vec<_> = events
        .iter()
        .filter(|(level, _)| *level <= Level::WARN)
        .collect();
    assert!(loud.is_empty(), "broker on {}: {loud:?}", broker.addr());
}
