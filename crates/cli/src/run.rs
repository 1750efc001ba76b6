//! `janitoo run`: a controller process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use janitoo_actors::leasing::{displaced, lease_addresses, shared_address, to_lease_again};
use janitoo_actors::{ComponentRegistry, Controller, MqttSettings, StartOptions};
use janitoo_broker::{Accounts, EmbeddedBroker};
use janitoo_config::{BrokerAddress, BrokerList, Config};
use janitoo_hardware::{Readings, SysfsRoot};
use janitoo_protocol::{Codec, Hadd};
use tracing::info;

use crate::CodecArg;

/// How a command failed: bad input (exit 2) or trouble at run time (exit 1).
pub enum Failure {
    /// A bad argument or configuration: nothing was started.
    Usage(anyhow::Error),
    /// Something failed while running.
    Other(anyhow::Error),
    /// A node answered with a refusal (exit 3).
    Refused(String),
}

impl Failure {
    /// Prints the error and gives the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Usage(err) => {
                eprintln!("janitoo: {err}");
                ExitCode::from(2)
            }
            Failure::Other(err) => {
                eprintln!("janitoo: {err}");
                ExitCode::from(1)
            }
            Failure::Refused(why) => {
                eprintln!("janitoo: refused: {why}");
                ExitCode::from(3)
            }
        }
    }
}

/// The arguments of `janitoo run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The configuration file (TOML); see deploy/examples/.
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// The MQTT broker, or several separated by commas (a clustered or bridged broker: the
    /// first, then the next when one fails), overriding `[broker] address(es)` of the file.
    #[arg(short, long, value_name = "HOST:PORT[,HOST:PORT...]")]
    broker: Option<BrokerList>,
    /// Where the embedded broker listens when there is no broker address.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:1883")]
    embedded_listen: SocketAddr,
    /// Payload encoding.
    #[arg(long, value_enum, default_value = "json")]
    codec: CodecArg,
    /// Do not write settings changed over the network back into the file.
    #[arg(long)]
    no_write_back: bool,
    /// Read sysfs under DIR instead of `/` (overrides `[hardware] sysfs_root`): a fake tree
    /// for tests, or a copy of a Pi's.
    #[arg(long, value_name = "DIR")]
    sysfs_root: Option<PathBuf>,
    /// Simulated sensors instead of the hardware (as `[hardware] simulate = true`).
    #[arg(long)]
    simulate: bool,
    /// Serve the web manager on IP:PORT (overrides `[web] listen`).
    #[arg(long, value_name = "IP:PORT")]
    web: Option<SocketAddr>,
}

/// The arguments of `janitoo broker`.
#[derive(clap::Args)]
pub struct BrokerArgs {
    /// Address to listen on.
    #[arg(short, long, value_name = "IP:PORT", default_value = "127.0.0.1:1883")]
    listen: SocketAddr,
    /// Require an account of this file (`user:password` lines) of every client.
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Listen with TLS there too (with --cert-file and --key-file).
    #[arg(long, value_name = "IP:PORT", requires_all = ["cert_file", "key_file"])]
    tls_listen: Option<SocketAddr>,
    /// The broker's certificate (PEM), for --tls-listen.
    #[arg(long, value_name = "FILE", requires = "tls_listen")]
    cert_file: Option<PathBuf>,
    /// Its private key (PEM), for --tls-listen.
    #[arg(long, value_name = "FILE", requires = "tls_listen")]
    key_file: Option<PathBuf>,
}

/// `janitoo broker`: an embedded broker in the foreground, until Ctrl-C.
pub fn broker(args: BrokerArgs) -> Result<(), Failure> {
    let accounts = args
        .accounts
        .as_deref()
        .map(Accounts::load)
        .transpose()
        .map_err(|err| Failure::Usage(err.into()))?;
    let tls = args.tls_listen.zip(args.cert_file.zip(args.key_file)).map(
        |(listen, (cert_file, key_file))| janitoo_broker::TlsListener {
            listen,
            cert_file,
            key_file,
        },
    );
    janitoo_broker::run_foreground(args.listen, accounts, tls)
        .map_err(|err| Failure::Other(err.into()))
}

/// The component kinds this binary knows: the hardware readers under `root`, or simulated
/// sensors. The load statistics are simulated either way.
pub fn registry(root: Option<PathBuf>, simulate: bool) -> ComponentRegistry {
    let readings = if simulate {
        Readings::Simulated
    } else {
        Readings::Hardware(root.map_or_else(SysfsRoot::default, SysfsRoot::new))
    };
    let mut registry = ComponentRegistry::new();
    janitoo_hardware::register_components(&mut registry, readings);
    registry
}

/// Runs a controller until Ctrl-C or SIGTERM.
pub fn run(args: RunArgs) -> Result<(), Failure> {
    let config = Config::load(&args.config).map_err(|err| Failure::Usage(err.into()))?;
    let codec = match args.codec {
        CodecArg::Json => Codec::Json,
        CodecArg::Msgpack => Codec::MessagePack,
    };
    let (broker, _embedded) = match args.broker.or_else(|| config.broker.brokers.clone()) {
        Some(address) => (address, None),
        None => {
            let accounts = config
                .broker
                .accounts_file
                .as_deref()
                .map(Accounts::load)
                .transpose()
                .map_err(|err| Failure::Usage(err.into()))?;
            let embedded = EmbeddedBroker::start_with(
                args.embedded_listen,
                config.limits.max_payload,
                accounts,
            )
            .map_err(|err| Failure::Other(err.into()))?;
            info!(address = %embedded.addr(), "embedded broker started");
            (
                BrokerList::from(BrokerAddress::from(embedded.addr())),
                Some(embedded),
            )
        }
    };
    let simulate = args.simulate || config.hardware.simulate;
    let registry = registry(
        args.sysfs_root
            .or_else(|| config.hardware.sysfs_root.clone()),
        simulate,
    );
    let system = actix::System::new();
    system.block_on(async move {
        let mqtt = MqttSettings::of(&config.broker, broker.clone())
            .map_err(|err| Failure::Usage(err.into()))?;
        let mut config = config;
        // Round again when a leased address turns out to be another node's (a partition):
        // the controller stops and leases anew.
        loop {
            config = lease_addresses(&config, &mqtt, codec, !args.no_write_back)
                .await
                .map_err(|err| Failure::Usage(err.into()))?;
            let controller = Controller::start(
                &config,
                StartOptions {
                    broker: &broker,
                    registry: &registry,
                    codec,
                    write_back: !args.no_write_back,
                },
            )
            .map_err(|err| Failure::Usage(err.into()))?;
            info!(file = %config.file.display(), %broker, buses = config.buses.len(), "controller started");
            let web = match args.web.or(config.web.listen) {
                Some(listen) => Some(start_web(listen, &config, &controller)?),
                None => None,
            };
            let displaced = tokio::select! {
                signal = janitoo_actors::stop_signal() => {
                    signal.map_err(|err| Failure::Other(err.into()))?;
                    None
                }
                displaced = displaced(&config, &mqtt, codec) => Some(displaced),
                displaced = shared_address(&config, controller.duplicates()) => Some(displaced),
            };
            match &displaced {
                None => info!("stopping: OFFLINE heartbeats, then disconnect"),
                Some(moved) => info!(node = %moved.place, hadd = %moved.hadd, "restarting on a new lease"),
            }
            if let Some(web) = web {
                web.stop().await;
            }
            controller.stop().await;
            match &displaced {
                None => return Ok(()),
                Some(moved) => config = to_lease_again(&config, moved),
            }
        }
    })
}

/// The web manager of `config`, on `listen`.
fn start_web(
    listen: SocketAddr,
    config: &Config,
    controller: &Controller,
) -> Result<janitoo_web::WebServer, Failure> {
    let hadd = Hadd::new(9997, 1000 + (std::process::id() % 8999) as u16);
    let users = config
        .web
        .users_file
        .as_deref()
        .map(janitoo_web::Users::load)
        .transpose()
        .map_err(|err| Failure::Usage(err.into()))?;
    if users.is_none() && !listen.ip().is_loopback() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "the web manager on {listen} would be open to the network without a \
             login: name its users with [web] users_file (`janitoo web-user NAME` \
             makes a line), or listen on 127.0.0.1"
        )));
    }
    let logins = users.map(|users| std::sync::Arc::new(janitoo_web::Logins::new(users)));
    let server = janitoo_web::start(
        listen,
        &config.web.hosts,
        logins,
        hadd,
        config.network.key_file.is_some(),
        controller.bridge(),
        controller.metrics(),
    )
    .map_err(|err| Failure::Usage(err.into()))?;
    info!(url = %format!("http://{}/", server.addr), "web manager started");
    Ok(server)
}
