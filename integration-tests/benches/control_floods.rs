//! The failover example under floods of what any client may send: does the primary hold?
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench control_floods` (needs Mosquitto).
//!
//! For each flood (resolv requests, discovery broadcasts, gets to a node, each with a new
//! `reply_hadd` every time; made-up values of a real node) at 10,000 messages/s and at the
//! highest rate four clients reach here: a fresh broker (Mosquitto), the three controllers of
//! `deploy/examples/failover/` and the tutorial server (release builds), all with the network's
//! key, 10 s of flood. Measured: the primary's largest gap between two of its heartbeats (its
//! interval is 1 s) from the flood's start to 5 s after its end, claims by any other
//! controller, states told of nodes other than ONLINE (nothing died: each is false), the
//! primary's RSS before and at most (sampled every 100 ms), a probe's get of the tutorial's
//! name every 250 ms, unsigned and signed with the key in turn (median answer time and how many
//! were answered, of each), and the time from the flood's end until an unsigned probe is
//! answered.

use std::path::Path;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::network::{self, FailoverNetwork};
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess};
use janitoo_integration_tests::procfs::rss_mib;
use janitoo_integration_tests::watch::Watcher;
use janitoo_protocol::control_plane::ControlKey;
use janitoo_protocol::{CommandClass, Genre, Hadd, NodeState, Request, Status};
use rumqttc::{AsyncClient, Event, MqttOptions, QoS};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const FLOODERS: u64 = 4;
const FLOOD: Duration = Duration::from_secs(10);
const NODE: Hadd = Hadd::new(220, 1);
/// The network's key, which the probe's signed gets are signed with.
const SECRET: &str = "a shared secret the operator's tools have too";
const FILTERS: [&str; 3] = [
    "/dhcp/heartbeat/#",
    "/dhcp/resolv/heartbeat",
    "/values/system/+/+/network_controller",
];

/// A made-up address for message `n`: a new `reply_hadd` every time.
fn made_up(n: u64) -> Hadd {
    Hadd::new(
        1_000 + (n % 8_000) as u16,
        (n >> 32) as u16 * 100 + (n % 97) as u16,
    )
}

fn info_request(n: u64) -> String {
    format!(
        r#"{{"cmd_class":20480,"genre":4,"op":"info","reply_hadd":"{}","uuid":"request_info_nodes"}}"#,
        made_up(n)
    )
}

/// The floods: a name, and the message `n` (topic, payload).
type Flood = (&'static str, fn(u64) -> (String, String));

const FLOODS: [Flood; 4] = [
    ("resolv requests", |n| {
        ("/dhcp/resolv/request/".into(), info_request(n))
    }),
    ("discovery broadcasts", |n| {
        ("/broadcast/request".into(), info_request(n))
    }),
    ("gets, new reply_hadd each", |n| {
        (
            "/nodes/0220/0001/request".into(),
            format!(
                r#"{{"op":"get","uuid":"name","genre":3,"cmd_class":112,"hadd":"0220/0001","reply_hadd":"{}"}}"#,
                made_up(n)
            ),
        )
    }),
    ("made-up values", |n| {
        let uuid = format!("fake{}", n % 100_000);
        (
            format!("/values/user/0220/0001/{uuid}"),
            format!(r#"{{"uuid":"{uuid}","genre":2,"index":0,"data":{n},"hadd":"0220/0001"}}"#),
        )
    }),
];

/// One flooder: `message` at `rate` a second (`None`: as fast as it goes) for `FLOOD`.
async fn flooder(
    port: u16,
    index: u64,
    rate: Option<u64>,
    message: fn(u64) -> (String, String),
) -> u64 {
    let mut options = MqttOptions::new(
        format!("flooder-{index}-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 65_536);
    let driver = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while start.elapsed() < FLOOD {
        let due = match rate {
            Some(rate) => {
                tick.tick().await;
                (start.elapsed().as_secs_f64() * rate as f64) as u64
            }
            None => sent + 100,
        };
        while sent < due {
            let (topic, payload) = message(index << 32 | sent);
            if client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        if rate.is_none() {
            tokio::task::yield_now().await;
        }
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
    sent
}

/// Answer times (`None`: unanswered within 2 s).
type Probes = Vec<Option<Duration>>;

/// A get of the tutorial's name every 250 ms until `until`, unsigned and signed with `key` in
/// turn: the answer times of each.
async fn probe(client: &mut Client, key: &ControlKey, until: Instant) -> (Probes, Probes) {
    let (mut unsigned, mut signed) = (Vec::new(), Vec::new());
    while Instant::now() < until {
        let start = Instant::now();
        let request = Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION);
        let signing = (unsigned.len() > signed.len()).then_some(key);
        let reply = client
            .try_ask_signed(request, signing, Duration::from_secs(2))
            .await;
        let time = reply
            .filter(|reply| reply.status() == Status::OK)
            .map(|_| start.elapsed());
        match signing {
            Some(_) => signed.push(time),
            None => unsigned.push(time),
        }
        tokio::time::sleep_until((start + Duration::from_millis(250)).into()).await;
    }
    (unsigned, signed)
}

/// The median of the answered probes, and how many were: "p50 ms (answered/asked)".
fn summary(probes: &Probes) -> String {
    let answered: Vec<Duration> = probes.iter().flatten().copied().collect();
    format!(
        "{:.1} ms ({}/{})",
        median(answered.clone()).as_secs_f64() * 1e3,
        answered.len(),
        probes.len()
    )
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

async fn run(name: &str, rate: Option<u64>, message: fn(u64) -> (String, String)) {
    let broker = BrokerProcess::start(BrokerKind::Mosquitto, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("network.key");
    std::fs::write(&key_file, SECRET).unwrap();
    let key = ControlKey::from_secret(SECRET.as_bytes()).unwrap();
    let net = FailoverNetwork::start_editing(
        Path::new(JANITOO),
        &broker.address(),
        |text| network::with_key_file(text, &key_file),
        |text| network::with_key_file(text, &key_file),
    );
    let watcher = Watcher::start("127.0.0.1", broker.port, &FILTERS).await;
    let (primary, _) = network::network_up(
        &watcher,
        tokio::time::Instant::now(),
        Duration::from_secs(20),
    )
    .await
    .expect("the network did not come up");
    let mut prober = Client::connect(broker.port).await;
    prober
        .subscribe(
            &janitoo_protocol::Topic::NodeReply(janitoo_integration_tests::client::CLIENT_HADD)
                .to_string(),
        )
        .await;
    prober
        .ask_until_answered(
            || Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION),
            Duration::from_secs(20),
        )
        .await;
    let pid = net.controller(primary).pid().to_string();
    let rss_before = rss_mib(&pid);
    let watch_from = tokio::time::Instant::now();
    let start = Instant::now();
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|index| {
            tokio::spawn(flooder(
                broker.port,
                index,
                rate.map(|rate| rate / FLOODERS),
                message,
            ))
        })
        .collect();
    let sampler = {
        let pid = pid.clone();
        tokio::spawn(async move {
            let mut peak = 0.0f64;
            while start.elapsed() < FLOOD + Duration::from_secs(5) {
                peak = peak.max(rss_mib(&pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let (unsigned, signed) = probe(&mut prober, &key, start + FLOOD).await;
    let mut sent = 0;
    for flooder in flooders {
        sent += flooder.await.unwrap();
    }
    let flood_end = Instant::now();
    let back = loop {
        let request = Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION);
        let answered = prober.try_ask(request, Duration::from_secs(2)).await;
        if answered.is_some_and(|reply| reply.status() == Status::OK)
            || flood_end.elapsed() > Duration::from_secs(60)
        {
            break flood_end.elapsed();
        }
    };
    let peak = sampler.await.unwrap();
    tokio::time::sleep_until((flood_end + Duration::from_secs(5)).into()).await;
    let beats = watcher.primaries(watch_from);
    let own: Vec<_> = beats
        .iter()
        .filter(|(_, hadd, _)| *hadd == primary)
        .map(|(at, _, _)| *at)
        .collect();
    let gap = own
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    let claims = beats.iter().filter(|(_, hadd, _)| *hadd != primary).count();
    let false_states = watcher
        .dispatches(watch_from)
        .iter()
        .filter(|dispatch| dispatch.state != NodeState::Online)
        .count();
    let rate_text = rate.map_or("max".to_owned(), |rate| format!("{}k", rate / 1000));
    println!(
        "| {name} | {rate_text} | {:.0} | {:.2} s | {claims} | {false_states} | {rss_before:.1} MiB | {peak:.1} MiB | {} | {} | {:.2} s |",
        sent as f64 / FLOOD.as_secs_f64(),
        gap.as_secs_f64(),
        summary(&unsigned),
        summary(&signed),
        back.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if janitoo_integration_tests::process::mosquitto_path().is_none() {
        println!("SKIPPED: control_floods needs Mosquitto");
        return;
    }
    println!("| flood | target/s | sent/s | largest beat gap | claims | false states | primary RSS before | RSS peak | probe get p50 (answered) | signed probe p50 (answered) | back to normal |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, message) in FLOODS {
        for rate in [Some(10_000), None] {
            run(name, rate, message).await;
        }
    }
}
