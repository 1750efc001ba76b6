//! `janitoo demo` and `janitoo status`.
//!
//! The demo starts, as separate processes of this same binary, an embedded broker, three
//! network controllers (a primary and two secondaries, the files of
//! `deploy/examples/failover/`) and the tutorial server with simulated sensors, then shows the
//! network live. `--chaos N` kills the current primary every N seconds (and restarts it N/2
//! seconds later), so the takeover can be watched. `--brokers 3` runs it on a NATS cluster of
//! three servers (`deploy/nats/`, when `nats-server` is installed), each controller on "its
//! Pi's" server first; with `--chaos`, "a Pi" dies then: the primary's server and the primary
//! together. Ctrl-C stops everything it started.

use std::fs::File;
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::connect::BrokerArg;
use crate::run::Failure;
use crate::view::{ask_map, ask_nodes, NetworkView, Watch};
use crate::{parse_seconds, seconds};

const CONTROLLERS: [(&str, &str); 3] = [
    (
        "primary",
        include_str!("../../../deploy/examples/failover/primary.toml"),
    ),
    (
        "secondary-a",
        include_str!("../../../deploy/examples/failover/secondary-a.toml"),
    ),
    (
        "secondary-b",
        include_str!("../../../deploy/examples/failover/secondary-b.toml"),
    ),
];
const TUTORIAL: &str = include_str!("../../../deploy/examples/tutorial.toml");

/// The arguments of `janitoo demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Kill the current primary (SIGKILL) every SECONDS, and restart it SECONDS/2 later; with
    /// --brokers 3, its "Pi": its NATS server with it. With --duration, nothing is killed in
    /// the last SECONDS, so that the demo ends on a house that has settled.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    chaos: Option<f64>,
    /// Brokers: 1 (an embedded broker), or 3 (a NATS cluster; needs nats-server).
    #[arg(long, default_value = "1", value_parser = parse_broker_count)]
    brokers: usize,
    /// Stop by itself after SECONDS.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<f64>,
    /// Port of the demo's broker on 127.0.0.1 (default: a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Where the web manager listens (a free port instead when this one is taken).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080")]
    web: std::net::SocketAddr,
    /// No web manager.
    #[arg(long)]
    no_web: bool,
}

/// The arguments of `janitoo status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    broker: BrokerArg,
    /// Seconds to listen before printing.
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    wait: f64,
}

/// `--brokers`: 1 or 3.
fn parse_broker_count(text: &str) -> Result<usize, String> {
    match text.trim() {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!(
            "{text:?}: 1 (an embedded broker) or 3 (a NATS cluster) brokers"
        )),
    }
}

/// `wanted` when it can be listened on, else (or for port 0) a free port on the same IP.
fn web_address(wanted: std::net::SocketAddr) -> anyhow::Result<std::net::SocketAddr> {
    if wanted.port() != 0 && std::net::TcpListener::bind(wanted).is_ok() {
        return Ok(wanted);
    }
    let listener = std::net::TcpListener::bind((wanted.ip(), 0))?;
    Ok(listener.local_addr()?)
}

struct Process {
    name: String,
    /// The program: this binary when None.
    program: Option<std::path::PathBuf>,
    arguments: Vec<String>,
    child: Option<Child>,
}

impl Process {
    fn spawn(&mut self, logs: &Path) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(logs.join(format!("{}.log", self.name)))?;
        let program = match &self.program {
            Some(program) => program.clone(),
            None => std::env::current_exe()?,
        };
        let child = Command::new(program)
            .args(&self.arguments)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (a clean stop: OFFLINE heartbeats), then SIGKILL after 3 s.
    fn stop(&mut self) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(janitoo_broker::free_local_port(Ipv4Addr::LOCALHOST.into())?)
}

/// Runs the demo until Ctrl-C (or `--duration`).
pub fn demo(args: DemoArgs) -> Result<(), Failure> {
    let outcome = run_demo(args);
    outcome.map_err(Failure::Other)
}

/// The demo's brokers: the processes and the addresses.
struct Brokers {
    /// The broker processes (one embedded broker, or three NATS servers).
    processes: Vec<Process>,
    /// Their MQTT addresses, pi1 first.
    addresses: Vec<String>,
}

impl Brokers {
    /// The addresses of the servers, starting at `first` (a process's own Pi).
    fn list_from(&self, first: usize) -> String {
        (0..self.addresses.len())
            .map(|at| self.addresses[(first + at) % self.addresses.len()].clone())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Waits until something listens on `port` of 127.0.0.1, at most 10 s.
fn wait_for_listener(port: u16, what: &str, logs: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the demo's {what} did not start (see {}/{what}.log)",
            logs.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The embedded broker on `port`, or (`count` 3) the NATS cluster of `deploy/nats/` on free
/// ports.
fn start_brokers(count: usize, port: Option<u16>, logs: &Path) -> anyhow::Result<Brokers> {
    if count == 1 {
        let port = match port {
            Some(port) => port,
            None => free_port()?,
        };
        let address = format!("127.0.0.1:{port}");
        let mut broker = Process {
            name: "broker".into(),
            program: None,
            arguments: vec!["broker".into(), "--listen".into(), address.clone()],
            child: None,
        };
        broker.spawn(logs)?;
        wait_for_listener(port, "broker", logs)?;
        return Ok(Brokers {
            processes: vec![broker],
            addresses: vec![address],
        });
    }
    let Some(nats) = janitoo_broker::nats::nats_server_path() else {
        anyhow::bail!(
            "--brokers 3 runs a NATS cluster, and nats-server is not installed: `sudo apt-get install nats-server` on Debian and Raspberry Pi OS (or put nats-server on the PATH)"
        );
    };
    use janitoo_broker::nats::{write_loopback_cluster, LoopbackPorts, Security};
    let free = || free_port();
    let ports = LoopbackPorts {
        mqtt: [free()?, free()?, free()?],
        routes: [free()?, free()?, free()?],
        clients: [free()?, free()?, free()?],
    };
    let confs = write_loopback_cluster(&logs.join("nats"), &ports, &Security::Plain)?;
    let mut processes = Vec::new();
    for (at, conf) in confs.iter().enumerate() {
        let mut server = Process {
            name: format!("nats-pi{}", at + 1),
            program: Some(nats.clone()),
            arguments: vec!["-c".into(), conf.display().to_string()],
            child: None,
        };
        server.spawn(logs)?;
        processes.push(server);
    }
    for (at, port) in ports.mqtt.iter().enumerate() {
        wait_for_listener(*port, &format!("nats-pi{}", at + 1), logs)?;
    }
    Ok(Brokers {
        processes,
        addresses: ports
            .mqtt
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect(),
    })
}

fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("janitoo-demo-").tempdir()?;
    let logs = dir.path().to_owned();
    let brokers = start_brokers(args.brokers, args.port, &logs)?;
    let server_count = brokers.processes.len();
    let web = (!args.no_web)
        .then_some(args.web)
        .map(web_address)
        .transpose()?;
    // A keyed network, as every network should be: the controllers share a new key.
    let key_file = logs.join("network.key");
    janitoo_config::secrets::write_new_key(&key_file)?;
    let key = janitoo_config::secrets::control_key(&key_file)?;
    let mut processes: Vec<Process> = Vec::new();
    let files = CONTROLLERS.iter().copied().chain([("tutorial", TUTORIAL)]);
    for (at, (name, text)) in files.enumerate() {
        // Controller 000k is on "pi k" (its server first), the tutorial on pi1.
        let address = brokers.list_from(at % server_count);
        let config = logs.join(format!("{name}.toml"));
        // The failover examples name `network.key` beside them: the key just written.
        std::fs::write(&config, text)?;
        let mut arguments: Vec<String> = vec![
            "run".into(),
            "--config".into(),
            config.display().to_string(),
            "--broker".into(),
            address.clone(),
            // Simulated sensors: the demo runs on any machine.
            "--simulate".into(),
        ];
        if let (Some(web), "tutorial") = (web, name) {
            arguments.extend(["--web".into(), web.to_string()]);
        }
        let mut process = Process {
            name: name.into(),
            program: None,
            arguments,
            child: None,
        };
        process.spawn(&logs)?;
        processes.push(process);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let web_note = web.map_or(String::new(), |web| format!(" Web manager: http://{web}/"));
    let mut brokers = brokers;
    let result = runtime.block_on(show(
        &mut brokers,
        &logs,
        &mut processes,
        &args,
        &web_note,
        key,
    ));
    for process in processes.iter_mut().rev() {
        process.stop();
    }
    for broker in brokers.processes.iter_mut().rev() {
        broker.stop();
    }
    println!(
        "janitoo demo: stopped everything it started (logs were in {}).",
        logs.display()
    );
    result
}

/// What chaos brings back, and when.
struct Comeback {
    at: Instant,
    controller: usize,
    server: Option<usize>,
}

async fn show(
    brokers: &mut Brokers,
    logs: &Path,
    processes: &mut [Process],
    args: &DemoArgs,
    web_note: &str,
    key: janitoo_protocol::control_plane::ControlKey,
) -> anyhow::Result<()> {
    let list: janitoo_config::BrokerList = brokers.list_from(0).parse()?;
    let local = crate::connect::BrokerSettings::plain(list);
    let mut watch = Watch::start(&local);
    let mut view = NetworkView::keyed(key);
    let started = Instant::now();
    let mut last_ask = None::<Instant>;
    let mut next_chaos = args
        .chaos
        .map(|every| started + Duration::from_secs_f64(every));
    let mut comeback: Option<Comeback> = None;
    let mut chaos_note = String::new();
    let servers = brokers.processes.len();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = watch.feed(&mut view, Duration::from_millis(500)) => {}
        }
        if last_ask.is_none_or(|at| at.elapsed() > Duration::from_secs(5)) {
            ask_nodes(&watch.client).await;
            ask_map(&watch.client).await;
            last_ask = Some(Instant::now());
        }
        if let (Some(at), Some(every)) = (next_chaos, args.chaos) {
            let settles_in_time = args
                .duration
                .is_none_or(|limit| started.elapsed().as_secs_f64() + every <= limit);
            if Instant::now() >= at && comeback.is_none() && settles_in_time {
                // (No primary seen yet: tried again at the next screen.)
                if let Some((primary, _)) = view.primary() {
                    // Processes 0, 1, 2 are the controllers 0001, 0002, 0003; controller 000k
                    // lives on "pi k".
                    let index = usize::from(primary.ctrl).wrapping_sub(1);
                    if index < 3 && processes[index].child.is_some() {
                        next_chaos = Some(Instant::now() + Duration::from_secs_f64(every));
                        processes[index].kill();
                        let server = (servers > 1).then_some(index % servers);
                        if let Some(server) = server {
                            brokers.processes[server].kill();
                        }
                        comeback = Some(Comeback {
                            at: Instant::now() + Duration::from_secs_f64(every / 2.0),
                            controller: index,
                            server,
                        });
                        chaos_note = match server {
                            Some(server) => format!(
                                "chaos: pi{} died: its NATS server and {} ({primary}), SIGKILL",
                                server + 1,
                                processes[index].name
                            ),
                            None => format!(
                                "chaos: killed {} ({primary}) with SIGKILL",
                                processes[index].name
                            ),
                        };
                    }
                }
            }
        }
        if let Some(back) = comeback.as_ref().filter(|back| Instant::now() >= back.at) {
            if let Some(server) = back.server {
                brokers.processes[server].spawn(logs)?;
            }
            processes[back.controller].spawn(logs)?;
            chaos_note = match back.server {
                Some(server) => format!(
                    "chaos: pi{} is back: its NATS server and {}",
                    server + 1,
                    processes[back.controller].name
                ),
                None => format!("chaos: restarted {}", processes[back.controller].name),
            };
            comeback = None;
        }
        print!("\x1b[H\x1b[2J");
        let on = if servers > 1 {
            format!("a NATS cluster ({})", brokers.addresses.join(", "))
        } else {
            format!("broker {}", brokers.addresses[0])
        };
        println!(
            "janitoo demo: {on}, 4 processes, a keyed network (network.key), logs in {}. Ctrl-C stops everything.{web_note}",
            logs.display()
        );
        if !chaos_note.is_empty() {
            println!("{chaos_note}");
        }
        println!("\n{}", view.render());
        if args
            .duration
            .is_some_and(|limit| started.elapsed().as_secs_f64() >= limit)
        {
            break;
        }
    }
    Ok(())
}

/// `janitoo status`: the view once, after listening for `--wait`.
pub fn status(args: StatusArgs) -> Result<(), Failure> {
    let (broker, wait) = (&args.broker.settings()?, seconds(args.wait));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Other(err.into()))?;
    runtime.block_on(async {
        let mut watch = Watch::start(broker);
        let mut view = match &broker.control_key {
            Some(key) => NetworkView::keyed(key.clone()),
            None => NetworkView::default(),
        };
        let connected = watch.feed(&mut view, Duration::from_millis(300)).await;
        if !connected {
            return Err(Failure::Other(anyhow::anyhow!(
                "broker {} unreachable",
                broker.address()
            )));
        }
        ask_nodes(&watch.client).await;
        ask_map(&watch.client).await;
        watch.feed(&mut view, wait).await;
        print!("{}", view.render());
        Ok(())
    })
}
