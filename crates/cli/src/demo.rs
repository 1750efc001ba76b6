//! `janitoo demo` and `janitoo status`.
//!
//! The demo starts, as separate processes of this same binary, an embedded broker, three
//! network controllers (a primary and two secondaries, the files of
//! `deploy/examples/failover/`) and the tutorial server with simulated sensors, then shows the
//! network live. `--chaos N` kills the current primary every N seconds (and restarts it N/2
//! seconds later), so the takeover can be watched. Ctrl-C stops everything it started.

use std::fs::File;
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::connect::BrokerArg;
use crate::run::Failure;
use crate::view::{ask_map, ask_nodes, feed, watch, NetworkView};
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
    /// Kill the current primary (SIGKILL) every SECONDS, and restart it SECONDS/2 later.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    chaos: Option<f64>,
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
    arguments: Vec<String>,
    child: Option<Child>,
}

impl Process {
    fn spawn(&mut self, logs: &Path) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(logs.join(format!("{}.log", self.name)))?;
        let child = Command::new(std::env::current_exe()?)
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

fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let port = match args.port {
        Some(port) => port,
        None => free_port()?,
    };
    let address = format!("127.0.0.1:{port}");
    let dir = tempfile::Builder::new().prefix("janitoo-demo-").tempdir()?;
    let logs = dir.path().to_owned();
    let mut processes = vec![Process {
        name: "broker".into(),
        arguments: vec!["broker".into(), "--listen".into(), address.clone()],
        child: None,
    }];
    processes[0].spawn(&logs)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the demo's broker did not start (see {}/broker.log)",
            logs.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let web = (!args.no_web)
        .then_some(args.web)
        .map(web_address)
        .transpose()?;
    // A keyed network, as every network should be: the controllers share a new key.
    let key_file = logs.join("network.key");
    janitoo_config::secrets::write_new_key(&key_file)?;
    let key = janitoo_config::secrets::control_key(&key_file)?;
    let files = CONTROLLERS.iter().copied().chain([("tutorial", TUTORIAL)]);
    for (name, text) in files {
        let config = logs.join(format!("{name}.toml"));
        let keyed = text.replace("# key_file = \"network.key\"", "key_file = \"network.key\"");
        std::fs::write(&config, keyed)?;
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
    let result = runtime.block_on(show(
        &address,
        port,
        &logs,
        &mut processes,
        &args,
        &web_note,
        key,
    ));
    for process in processes.iter_mut().rev() {
        process.stop();
    }
    println!(
        "janitoo demo: stopped everything it started (logs were in {}).",
        logs.display()
    );
    result
}

async fn show(
    address: &str,
    port: u16,
    logs: &Path,
    processes: &mut [Process],
    args: &DemoArgs,
    web_note: &str,
    key: janitoo_protocol::control_plane::ControlKey,
) -> anyhow::Result<()> {
    let local = crate::connect::BrokerSettings::plain(janitoo_config::BrokerAddress::new(
        "127.0.0.1",
        port,
    ));
    let (client, mut event_loop) = watch(&local).await?;
    let mut view = NetworkView::keyed(key);
    let started = Instant::now();
    let mut last_ask = None::<Instant>;
    let mut next_chaos = args
        .chaos
        .map(|every| started + Duration::from_secs_f64(every));
    let mut restart: Option<(usize, Instant)> = None;
    let mut chaos_note = String::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = feed(&mut view, &mut event_loop, Duration::from_millis(500)) => {}
        }
        if last_ask.is_none_or(|at| at.elapsed() > Duration::from_secs(5)) {
            ask_nodes(&client).await;
            ask_map(&client).await;
            last_ask = Some(Instant::now());
        }
        if let (Some(at), Some(every)) = (next_chaos, args.chaos) {
            if Instant::now() >= at {
                next_chaos = Some(Instant::now() + Duration::from_secs_f64(every));
                if let Some((primary, _)) = view.primary() {
                    // Processes 1, 2, 3 are the controllers 0001, 0002, 0003.
                    let index = usize::from(primary.ctrl);
                    if (1..=3).contains(&index) && processes[index].child.is_some() {
                        processes[index].kill();
                        restart =
                            Some((index, Instant::now() + Duration::from_secs_f64(every / 2.0)));
                        chaos_note = format!(
                            "chaos: killed {} ({primary}) with SIGKILL",
                            processes[index].name
                        );
                    }
                }
            }
        }
        if let Some((index, at)) = restart {
            if Instant::now() >= at {
                processes[index].spawn(logs)?;
                chaos_note = format!("chaos: restarted {}", processes[index].name);
                restart = None;
            }
        }
        print!("\x1b[H\x1b[2J");
        println!(
            "janitoo demo: broker {address}, 5 processes, a keyed network (network.key), logs in {}. Ctrl-C stops everything.{web_note}",
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
        let (client, mut event_loop) = watch(broker).await.map_err(Failure::Other)?;
        let mut view = match &broker.control_key {
            Some(key) => NetworkView::keyed(key.clone()),
            None => NetworkView::default(),
        };
        let connected = feed(&mut view, &mut event_loop, Duration::from_millis(300)).await;
        if !connected {
            return Err(Failure::Other(anyhow::anyhow!(
                "broker {} unreachable",
                broker.address()
            )));
        }
        ask_nodes(&client).await;
        ask_map(&client).await;
        feed(&mut view, &mut event_loop, wait).await;
        print!("{}", view.render());
        Ok(())
    })
}
