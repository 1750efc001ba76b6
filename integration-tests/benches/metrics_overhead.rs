//! What the actor metrics cost: values published per second with and without the per-message
//! instrumentation, in the same run.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench metrics_overhead`
//!
//! One controller in-process against an in-process embedded broker, one node with 500 stored
//! values each published every millisecond: far more than the process can do, so the rate it
//! reaches is its capacity. Each value publication is handled by the value actor and the
//! bridge (a timer tick, a `Publish` message, encoding, the MQTT client). Windows of 2 s
//! alternate instrumentation on and off (10 of each, after a warm-up); the figure is the
//! values produced per second (handed to the MQTT client, or dropped by the bounded queue when
//! the broker connection is the limit), as medians per setting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use janitoo_actors::{
    Component, ComponentError, ComponentInfo, ComponentRegistry, Controller, Metrics, StartOptions,
    ValueSpec,
};
use janitoo_broker::EmbeddedBroker;
use janitoo_config::Config;
use janitoo_integration_tests::procfs::cpu_seconds;
use janitoo_protocol::{Codec, Data, ValueType};

const VALUES: usize = 500;
const WINDOW: Duration = Duration::from_secs(2);
const ROUNDS: usize = 10;

struct Busy {
    values: usize,
    period: f64,
}

impl Component for Busy {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::software("Busy node")
    }
    fn values(&self) -> Vec<ValueSpec> {
        (0..self.values)
            .map(|i| {
                ValueSpec::config(&format!("v{i}"), ValueType::Int)
                    .default_data(i as i64)
                    .poll_fixed(self.period)
            })
            .collect()
    }
    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        Err(ComponentError::NoSuchValue(uuid.to_owned()))
    }
}

fn produced(metrics: &Metrics) -> u64 {
    metrics.published.get() + metrics.dropped.get()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Alternating windows on and off: (values/s, CPU µs per value) medians for each.
async fn measure(metrics: &Metrics) -> [(f64, f64); 2] {
    tokio::time::sleep(Duration::from_secs(3)).await; // connected, polling, warm
    let mut samples: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS * 2 {
        let instrumented = round % 2 == 0;
        metrics.set_instrumented(instrumented);
        let (start, count, cpu) = (Instant::now(), produced(metrics), cpu_seconds("self"));
        tokio::time::sleep(WINDOW).await;
        let values = (produced(metrics) - count) as f64;
        let rate = values / start.elapsed().as_secs_f64();
        let cpu_per_value = (cpu_seconds("self") - cpu) * 1e6 / values.max(1.0);
        samples[usize::from(!instrumented)].push((rate, cpu_per_value));
    }
    metrics.set_instrumented(true);
    samples.map(|windows| {
        (
            median(windows.iter().map(|w| w.0).collect()),
            median(windows.iter().map(|w| w.1).collect()),
        )
    })
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()).unwrap();
    println!(
        "actor metrics overhead: {ROUNDS} windows of {WINDOW:?} per setting, alternating, medians"
    );
    for (name, values, period) in [
        (
            "capacity: 500 values every 1 ms (more than the process can publish)",
            VALUES,
            0.001,
        ),
        (
            "fixed load: 50 values every 2 ms (25,000 values/s)",
            50,
            0.002,
        ),
    ] {
        let config = Config::parse(
            "[buses.bench]\nhadd = \"0400/0000\"\n[buses.bench.components.busy]\nkind = \"bench.busy\"\nhadd = \"0400/0001\"\n",
            std::path::Path::new("bench.toml"),
        )
        .unwrap();
        let mut registry = ComponentRegistry::new();
        registry.register("bench.busy", move |_| Ok(Arc::new(Busy { values, period })));
        let address = broker.addr().into();
        actix::System::new().block_on(async move {
            let controller = Controller::start(
                &config,
                StartOptions {
                    broker: &address,
                    registry: &registry,
                    codec: Codec::Json,
                    write_back: false,
                },
            )
            .unwrap();
            let metrics = controller.metrics();
            let [(on, on_cpu), (off, off_cpu)] = measure(&metrics).await;
            println!("{name}:");
            println!("  instrumented:     {on:>9.0} values/s, {on_cpu:.2} µs CPU per value");
            println!("  not instrumented: {off:>9.0} values/s, {off_cpu:.2} µs CPU per value");
            println!(
                "  ratio instrumented / not: {:.3} values/s, {:.3} CPU per value; dropped by the full queue: {}",
                on / off,
                on_cpu / off_cpu,
                metrics.dropped.get()
            );
            controller.stop().await;
        });
    }
}
