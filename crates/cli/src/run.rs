//! `janitoo run`: a controller process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use janitoo_actors::{ComponentRegistry, Controller, StartOptions};
use janitoo_broker::{Accounts, EmbeddedBroker};
use janitoo_config::BrokerAddress;
use janitoo_config::Config;
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
#[allow(missing_docs)]
pub struct RunArgs {
    pub config: PathBuf,
    pub broker: Option<BrokerAddress>,
    pub embedded_listen: SocketAddr,
    pub codec: CodecArg,
    pub write_back: bool,
    pub sysfs_root: Option<PathBuf>,
    pub simulate: bool,
    pub web: Option<SocketAddr>,
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
    let (broker, _embedded) = match args.broker.or_else(|| config.broker.address.clone()) {
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
            (BrokerAddress::from(embedded.addr()), Some(embedded))
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
        let controller = Controller::start(
            &config,
            StartOptions {
                broker: &broker,
                registry: &registry,
                codec,
                write_back: args.write_back,
            },
        )
        .map_err(|err| Failure::Usage(err.into()))?;
        info!(file = %config.file.display(), %broker, buses = config.buses.len(), "controller started");
        let web = match args.web.or(config.web.listen) {
            Some(listen) => {
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
                    controller.bridge(),
                    controller.metrics(),
                )
                .map_err(|err| Failure::Usage(err.into()))?;
                info!(url = %format!("http://{}/", server.addr), "web manager started");
                Some(server)
            }
            None => None,
        };
        janitoo_actors::stop_signal().await.map_err(|err| Failure::Other(err.into()))?;
        info!("stopping: OFFLINE heartbeats, then disconnect");
        if let Some(web) = web {
            web.stop().await;
        }
        controller.stop().await;
        Ok(())
    })
}
