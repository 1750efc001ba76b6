//! A controller under a flood of requests: memory, a probe's latency, what was answered,
//! refused (503) and dropped, and the recovery.
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench flood` (needs Mosquitto).
//!
//! A `janitoo run` process (release build) serves `deploy/examples/tutorial.toml` with
//! simulated sensors, on Mosquitto. Four raw MQTT clients send gets of `name` on 0220/0001
//! (answers to 9999/9991, counted by status by a fifth client) at 20k, 40k then 80k requests/s
//! in all, for 10 s each. A probe client sends a get every 250 ms and times its answer. The
//! controller's RSS is sampled every 50 ms. After each flood: how long until a probe is
//! answered 200 and the RSS is back within 2 MiB of its idle value (at most 30 s watched).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::procfs::rss_mib;
use janitoo_protocol::{CommandClass, Genre, Hadd, Request, Status};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const NODE: Hadd = Hadd::new(220, 1);
/// The node holding the controller's metrics (its first bus by oid, hostsensor).
const METRICS_NODE: Hadd = Hadd::new(222, 0);
const FLOODERS: u64 = 4;
const FLOOD: Duration = Duration::from_secs(10);

/// Replies to the flood, by status.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

fn options(name: &str, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(format!("{name}-{}", std::process::id()), "127.0.0.1", port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    options
}

/// Counts the replies on `/nodes/9999/9991/reply` by status.
async fn count_replies(port: u16, tally: Arc<Tally>) {
    let (client, mut events) = AsyncClient::new(options("flood-tally", port), 1024);
    client
        .subscribe("/nodes/9999/9991/reply", QoS::AtMostOnce)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let text = &publish.payload[..];
                    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
                    let counter = if has(b"\"status\":200") {
                        &tally.ok
                    } else if has(b"\"status\":503") {
                        &tally.busy
                    } else {
                        &tally.other
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
}

/// One flooder: `rate` gets per second for `FLOOD`, in bursts every 10 ms; how many it sent.
async fn flood(port: u16, index: u64, rate: u64) -> u64 {
    let name = format!("flood-{rate}-{index}");
    let (client, mut events) = AsyncClient::new(options(&name, port), 65_536);
    let mut driver = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(err) => {
                    eprintln!("flooder {index}: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    let payload = br#"{"op":"get","uuid":"name","genre":3,"cmd_class":112,"hadd":"0220/0001","reply_hadd":"9999/9991"}"#;
    let start = Instant::now();
    let mut sent = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while start.elapsed() < FLOOD {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            if client
                .publish(
                    "/nodes/0220/0001/request",
                    QoS::AtMostOnce,
                    false,
                    &payload[..],
                )
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
    }
    // Let the client's queue drain before it goes.
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), &mut driver).await;
    driver.abort();
    sent
}

/// Probes every 250 ms while `until` is in the future: the answer times and statuses.
async fn probe(client: &mut Client, until: Instant) -> Vec<(Duration, Option<Status>)> {
    let mut answers = Vec::new();
    while Instant::now() < until {
        let start = Instant::now();
        let request = Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION);
        let reply = client.try_ask(request, Duration::from_secs(5)).await;
        answers.push((start.elapsed(), reply.map(|reply| reply.status())));
        tokio::time::sleep_until((start + Duration::from_millis(250)).into()).await;
    }
    answers
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let broker = BrokerProcess::start(BrokerKind::Mosquitto, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let config = copy_example("tutorial.toml", dir.path(), |text| text);
    let controller = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--simulate"],
    );
    let pid = controller.pid().to_string();
    let mut prober = Client::connect(broker.port).await;
    prober.subscribe("/nodes/9999/9990/reply").await;
    prober
        .ask_until_answered(
            || Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION),
            Duration::from_secs(10),
        )
        .await;
    let tally = Arc::new(Tally::default());
    count_replies(broker.port, tally.clone()).await;
    println!("flood: 4 raw clients, gets of `name` on 0220/0001 for 10 s; Mosquitto; tutorial --simulate");
    println!(
        "{:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10} {:>9} {:>10}",
        "target/s",
        "sent/s",
        "answered",
        "refused",
        "dropped",
        "idle MiB",
        "peak MiB",
        "probe p50",
        "probe max",
        "recovery"
    );
    for rate in [20_000u64, 40_000, 80_000] {
        let idle = rss_mib(&pid);
        let before: Vec<u64> = {
            let mut values = Vec::new();
            for uuid in ["mqtt_received", "requests_shed", "bridge_dropped"] {
                values.push(prober.metric(METRICS_NODE, uuid).await as u64);
            }
            values
        };
        for counter in [&tally.ok, &tally.busy, &tally.other] {
            counter.store(0, Ordering::Relaxed);
        }
        let peak = Arc::new(std::sync::Mutex::new(idle));
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let (peak, sampling, pid) = (peak.clone(), sampling.clone(), pid.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    let now = rss_mib(&pid);
                    {
                        let mut peak = peak.lock().unwrap();
                        *peak = peak.max(now);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let start = Instant::now();
        let flooders: Vec<_> = (0..FLOODERS)
            .map(|index| tokio::spawn(flood(broker.port, index, rate / FLOODERS)))
            .collect();
        let probes = probe(&mut prober, start + FLOOD).await;
        let mut sent = 0;
        for flooder in flooders {
            sent += flooder.await.unwrap();
        }
        let flood_end = Instant::now();
        // Recovery: a probe answered 200, and the RSS back near idle.
        let mut recovered = None;
        while flood_end.elapsed() < Duration::from_secs(30) {
            let request = Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION);
            let answered = prober
                .try_ask(request, Duration::from_secs(1))
                .await
                .is_some_and(|reply| reply.status() == Status::OK);
            if answered && rss_mib(&pid) <= idle + 2.0 {
                recovered = Some(flood_end.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sampling.store(false, Ordering::Relaxed);
        let _ = sampler.await;
        let peak = *peak.lock().unwrap();
        let (ok, busy, other) = (
            tally.ok.load(Ordering::Relaxed),
            tally.busy.load(Ordering::Relaxed),
            tally.other.load(Ordering::Relaxed),
        );
        let answered_probes: Vec<Duration> = probes
            .iter()
            .filter(|(_, status)| *status == Some(Status::OK))
            .map(|(time, _)| *time)
            .collect();
        let unanswered = probes.iter().filter(|(_, s)| s.is_none()).count();
        let refused_probes = probes
            .iter()
            .filter(|(_, s)| *s == Some(Status(503)))
            .count();
        let max_probe = probes
            .iter()
            .map(|(time, _)| *time)
            .max()
            .unwrap_or_default();
        println!(
            "{:>8} {:>8.0} {:>9} {:>9} {:>9} {:>8.1} {:>10.1} {:>10.1?} {:>9.1?} {:>10}",
            rate,
            sent as f64 / FLOOD.as_secs_f64(),
            ok,
            busy,
            sent.saturating_sub(ok + busy + other),
            idle,
            peak,
            median(answered_probes.clone()),
            max_probe,
            recovered.map_or("> 30 s".to_owned(), |time| format!("{:.1?}", time)),
        );
        let mut after = Vec::new();
        for uuid in ["mqtt_received", "requests_shed", "bridge_dropped"] {
            after.push(prober.metric(METRICS_NODE, uuid).await as u64);
        }
        println!(
            "         controller: {} received, {} shed (503 or dropped), {} replies dropped (outbound queue full)",
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        );
        println!(
            "         probes: {} sent, {} answered 200, {} refused 503, {} unanswered within 5 s",
            probes.len(),
            answered_probes.len(),
            refused_probes,
            unanswered
        );
    }
    drop(controller);
}
