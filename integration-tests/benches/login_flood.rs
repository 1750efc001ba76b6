//! Wrong logins by the thousand a second against a controller's web manager: does it keep its
//! memory, keep serving the network, and let the real user back in?
//!
//! Run: `cargo bench -p janitoo-integration-tests --bench login_flood`.
//!
//! The tutorial server (release build, simulated sensors) with its web manager and two users,
//! on the embedded broker. For 10 s, clients post `POST /login` with a wrong password for a
//! user who exists, each from its own loopback address (127.1.x.y), at 10,000 a second and as
//! fast as 128 connections at a time go. Measured: the attempts a second, the answers by
//! status, the controller's RSS before, at its peak (`VmHWM`) and after; every 250 ms the
//! real user's login from 127.0.0.1 (answered 303 or not) and a get of a node's name over
//! MQTT (median time, answered), one after the other; and from the flood's end until the real
//! user logs in.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use janitoo_integration_tests::client::{Client, CLIENT_HADD};
use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::web::wait_for_listener;
use janitoo_protocol::{CommandClass, Genre, Hadd, Request, Status, Topic};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");
const FLOOD: Duration = Duration::from_secs(10);
const CONNECTIONS: u32 = 128;
const NODE: Hadd = Hadd::new(220, 1);

/// `janitoo web-user NAME`, the password on standard input: its line.
fn user_line(name: &str, password: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(JANITOO)
        .args(["web-user", name, "--role", "operator"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// A login posted from `source`: its status (0: no answer) and how long it took.
async fn login(source: Ipv4Addr, web: SocketAddr, password: &str) -> (u16, Duration) {
    let started = Instant::now();
    let attempt = async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind((source, 0).into()).ok()?;
        let mut stream = socket.connect(web).await.ok()?;
        let body = format!("name=alice&password={password}");
        let request = format!(
            "POST /login HTTP/1.1\r\nHost: {web}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer)
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
    };
    let status = tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    (status, started.elapsed())
}

/// A field of `/proc/<pid>/status`, MiB.
fn proc_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap()
        / 1024.0
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

async fn run(rate: Option<u64>) {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web-users"),
        user_line("alice", "alice-password"),
    )
    .unwrap();
    let port = janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap();
    let web: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = copy_example("tutorial.toml", dir.path(), |text| {
        text + &format!("\n[web]\nlisten = \"{web}\"\nusers_file = \"web-users\"\n")
    });
    let controller = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--simulate"],
    );
    wait_for_listener(web, Duration::from_secs(20));
    let mut client = Client::connect(broker.port).await;
    client
        .subscribe(&Topic::NodeReply(CLIENT_HADD).to_string())
        .await;
    let get = || Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION);
    client
        .ask_until_answered(get, Duration::from_secs(20))
        .await;
    assert_eq!(
        login(Ipv4Addr::LOCALHOST, web, "alice-password").await.0,
        303,
        "the real user cannot log in"
    );
    let pid = controller.pid();
    let before = proc_mib(pid, "VmRSS");

    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let next = next.clone();
            tokio::spawn(async move {
                let mut statuses = BTreeMap::<u16, u64>::new();
                while start.elapsed() < FLOOD {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if let Some(rate) = rate {
                        let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let source = Ipv4Addr::from(0x7f01_0000 + (n % 60_000) as u32);
                    let (status, _) = login(source, web, &format!("guess{n}")).await;
                    *statuses.entry(status).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let (mut logins, mut gets) = (Vec::new(), Vec::new());
    while start.elapsed() < FLOOD {
        let asked = Instant::now();
        logins.push(login(Ipv4Addr::LOCALHOST, web, "alice-password").await);
        let getting = Instant::now();
        let answer = client.try_ask(get(), Duration::from_secs(2)).await;
        gets.push(
            answer
                .filter(|reply| reply.status() == Status::OK)
                .map(|_| getting.elapsed()),
        );
        tokio::time::sleep_until((asked + Duration::from_millis(250)).into()).await;
    }
    let mut statuses = BTreeMap::<u16, u64>::new();
    for worker in workers {
        for (status, count) in worker.await.unwrap() {
            *statuses.entry(status).or_default() += count;
        }
    }
    let flood_end = Instant::now();
    let back = loop {
        if login(Ipv4Addr::LOCALHOST, web, "alice-password").await.0 == 303
            || flood_end.elapsed() > Duration::from_secs(120)
        {
            break flood_end.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let peak = proc_mib(pid, "VmHWM");
    let after = proc_mib(pid, "VmRSS");
    let sent: u64 = statuses.values().sum();
    let answered: Vec<Duration> = gets.iter().flatten().copied().collect();
    let let_in: Vec<Duration> = logins
        .iter()
        .filter(|(status, _)| *status == 303)
        .map(|(_, took)| *took)
        .collect();
    let rate_text = rate.map_or("max".to_owned(), |rate| format!("{}k", rate / 1000));
    let statuses_text: Vec<String> = statuses
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    println!(
        "| {rate_text} | {:.0} | {} | {before:.1} / {peak:.1} / {after:.1} MiB | {}/{} ({:.0} ms) | {:.1} ms ({}/{}) | {:.2} s |",
        sent as f64 / FLOOD.as_secs_f64(),
        statuses_text.join(", "),
        let_in.len(),
        logins.len(),
        median(let_in.clone()).as_secs_f64() * 1e3,
        median(answered.clone()).as_secs_f64() * 1e3,
        answered.len(),
        gets.len(),
        back.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("| target/s | sent/s | answers | RSS before / peak / after | the user's logins during (303/asked, p50) | get p50 (answered) | until the user logs in |");
    println!("|---|---|---|---|---|---|---|");
    for rate in [Some(10_000), None] {
        run(rate).await;
    }
}
