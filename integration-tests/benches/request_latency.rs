//! Request-to-answer latency of get and set on loopback, through each broker, beside a raw MQTT
//! echo through the same broker in the same run.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench request_latency`
//!
//! With `JANITOO_BASELINE=/path/to/janitoo` (another build, say of an earlier commit), that
//! controller serves a copy of the file at 0301/0001 beside this one, and its gets are
//! interleaved too: before and after in one run.
//!
//! A `janitoo run` process (release build) serves `deploy/examples/minimal.toml`, and
//! `mqtt-echo` (a rumqttc client in its own process) republishes what it hears on
//! `/echo/request` to `/echo/reply`. A client sends 2,000 gets of the config value `name`,
//! each followed by an echo of a payload as long as the get's, one at a time; then 2,000
//! sets of `location`. Each is timed from the publish to the arrival of its answer (on
//! `/nodes/9999/9990/reply`, or `/echo/reply`). The ratio is the get's p50 over the echo's:
//! what the controller adds to a bare round trip through the broker.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::process::{brokers_under_test, BrokerProcess, ControllerProcess};
use janitoo_protocol::{Codec, CommandClass, Data, Genre, Hadd, Message, Request, Status, Topic};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const ECHO: &str = env!("CARGO_BIN_EXE_mqtt-echo");
/// Gets and sets per broker (`JANITOO_LATENCY_REQUESTS` for more: a profile of the gets).
fn requests() -> usize {
    std::env::var("JANITOO_LATENCY_REQUESTS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(2_000)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

fn get_name(ctrl: u16) -> Request {
    Request::get(
        Hadd::new(ctrl, 1),
        "name",
        Genre::Config,
        CommandClass::CONFIGURATION,
    )
}

/// The echo process, until dropped.
struct Echo(Child);

impl Echo {
    fn start(broker: &str) -> Echo {
        let mut child = Command::new(ECHO)
            .arg(broker)
            .stdout(Stdio::piped())
            .spawn()
            .expect("mqtt-echo starts");
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready");
        Echo(child)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One echo of `payload`, timed.
async fn echo(client: &mut Client, payload: &[u8]) -> Duration {
    let start = Instant::now();
    client.publish("/echo/request", payload.to_vec()).await;
    client
        .next_on("/echo/reply", Duration::from_secs(5))
        .await
        .expect("the echo answers");
    start.elapsed()
}

/// One request, timed from its publication to its answer's arrival (found by its request id,
/// as the echo is by its topic); read and checked after the clock stops.
async fn ask(client: &mut Client, mut request: Request) -> Duration {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!(
        "lat-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    request.request_id = Some(id.clone());
    request.reply_hadd = Some(janitoo_integration_tests::client::CLIENT_HADD);
    let topic = Topic::NodeRequest(request.hadd.unwrap()).to_string();
    let quoted = format!("\"{id}\"");
    let start = Instant::now();
    client
        .publish(&topic, Message::Request(request).encode(Codec::Json))
        .await;
    let answer = client
        .next_matching(Duration::from_secs(5), |received| {
            received.topic == "/nodes/9999/9990/reply"
                && received
                    .payload
                    .windows(quoted.len())
                    .any(|window| window == quoted.as_bytes())
        })
        .await
        .expect("an answer");
    let took = start.elapsed();
    let Message::ValueReply(reply) = answer.message() else {
        panic!("not a value reply: {}", answer.topic);
    };
    assert_eq!(reply.status(), Status::OK);
    took
}

fn summary(times: &mut [Duration]) -> (Duration, Duration, Duration) {
    times.sort();
    (
        percentile(times, 0.5),
        percentile(times, 0.99),
        times[times.len() - 1],
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/examples/minimal.toml"
    );
    for kind in brokers_under_test() {
        let broker = BrokerProcess::start(kind, Path::new(JANITOO), None);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("minimal.toml");
        std::fs::copy(example, &config).unwrap();
        let _echo = Echo::start(&broker.address());
        let mut client = Client::connect(broker.port).await;
        client.subscribe("/nodes/9999/9990/reply").await;
        client.subscribe("/echo/reply").await;
        // Subscribed before the controllers start: their first heartbeats come when they are up.
        client.subscribe("/dhcp/heartbeat/+/0001").await;
        let _controller = ControllerProcess::start(Path::new(JANITOO), &config, &broker.address());
        let baseline = std::env::var_os("JANITOO_BASELINE").map(|binary| {
            let config = dir.path().join("baseline.toml");
            let text = std::fs::read_to_string(example)
                .unwrap()
                .replace("\"0300/", "\"0301/");
            std::fs::write(&config, text).unwrap();
            ControllerProcess::start(Path::new(&binary), &config, &broker.address())
        });
        for ctrl in [300].into_iter().chain(baseline.as_ref().map(|_| 301)) {
            let beat = format!("/dhcp/heartbeat/{ctrl:04}/0001");
            assert!(
                client
                    .next_on(&beat, Duration::from_secs(10))
                    .await
                    .is_some(),
                "{beat}"
            );
        }
        // The echo carries as many bytes as a get.
        let mut request = get_name(300);
        request.reply_hadd = Some(janitoo_integration_tests::client::CLIENT_HADD);
        request.request_id = Some("r-0000".into());
        let payload = Message::Request(request).encode(Codec::Json);
        // Warm every path up.
        for _ in 0..100 {
            ask(&mut client, get_name(300)).await;
            echo(&mut client, &payload).await;
            if baseline.is_some() {
                ask(&mut client, get_name(301)).await;
            }
        }
        let (mut gets, mut echoes, mut before) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..requests() {
            gets.push(ask(&mut client, get_name(300)).await);
            echoes.push(echo(&mut client, &payload).await);
            if baseline.is_some() {
                before.push(ask(&mut client, get_name(301)).await);
            }
        }
        let mut sets = Vec::new();
        for round in 0..requests() {
            let set = Request::set(
                Hadd::new(300, 1),
                "location",
                Genre::Config,
                CommandClass::CONFIGURATION,
                Data::from(format!("spot {}", round % 7)),
            );
            sets.push(ask(&mut client, set).await);
        }
        let get = summary(&mut gets);
        let raw = summary(&mut echoes);
        let mut rows = vec![("raw echo", raw), ("get", get), ("set", summary(&mut sets))];
        if !before.is_empty() {
            let baseline = summary(&mut before);
            rows.push(("baseline get", baseline));
            println!(
                "{kind:?}: baseline get p50 / echo p50 = {:.2}; p99 / echo p99 = {:.2}",
                baseline.0.as_secs_f64() / raw.0.as_secs_f64(),
                baseline.1.as_secs_f64() / raw.1.as_secs_f64(),
            );
        }
        for (what, (p50, p99, max)) in rows {
            println!(
                "{kind:?}: {} {what}s, request to answer: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                requests(),
                ms(p50),
                ms(p99),
                ms(max),
            );
        }
        println!(
            "{kind:?}: get p50 / echo p50 = {:.2} (goal <= 1.3); get p99 / echo p99 = {:.2}",
            get.0.as_secs_f64() / raw.0.as_secs_f64(),
            get.1.as_secs_f64() / raw.1.as_secs_f64(),
        );
    }
}
