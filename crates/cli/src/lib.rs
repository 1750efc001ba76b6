//! `janitoo`: the command of janitoo-rs, as a library so that the integration tests can build
//! the same binary under another name.

mod demo;
mod logging;
pub mod run;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// A Janitoo home-automation controller: the Janitoo protocol over MQTT.
#[derive(Parser)]
#[command(name = "janitoo", version, about, long_about = None)]
struct Cli {
    /// More logs: -v for debug, -vv for trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Payload encoding of what a controller sends.
#[derive(Clone, Copy, ValueEnum)]
pub enum CodecArg {
    /// The original's JSON (what every Janitoo client understands).
    Json,
    /// MessagePack, smaller, for networks of janitoo-rs controllers only.
    Msgpack,
}

#[derive(Subcommand)]
enum Command {
    /// Run a controller: its buses, their nodes and values, from a configuration file.
    ///
    /// Without a broker address (neither --broker nor `[broker] address` in the file), an
    /// embedded broker is started in the process on --embedded-listen.
    Run {
        /// The configuration file (TOML); see deploy/examples/.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The MQTT broker, overriding `[broker] address` of the file.
        #[arg(short, long, value_name = "HOST:PORT")]
        broker: Option<String>,
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
    },
    /// Run an embedded MQTT broker in the foreground (until Ctrl-C).
    Broker {
        /// Address to listen on.
        #[arg(short, long, value_name = "IP:PORT", default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
    },
    /// An embedded broker, a primary, two secondaries and the tutorial server (simulated
    /// sensors) as separate processes, with a live view of roles, epochs, nodes and values.
    /// Ctrl-C stops everything it started.
    Demo {
        /// Kill the current primary (SIGKILL) every SECONDS, and restart it SECONDS/2 later.
        #[arg(long, value_name = "SECONDS")]
        chaos: Option<f64>,
        /// Stop by itself after SECONDS.
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
        /// Port of the demo's broker on 127.0.0.1 (default: a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Print the network once: controllers and their roles, nodes and their states, values.
    Status {
        /// The MQTT broker.
        #[arg(
            short,
            long,
            value_name = "HOST:PORT",
            default_value = "127.0.0.1:1883"
        )]
        broker: String,
        /// Seconds to listen before printing.
        #[arg(long, default_value = "3")]
        wait: f64,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let outcome = match cli.command {
        Command::Run {
            config,
            broker,
            embedded_listen,
            codec,
            no_write_back,
            sysfs_root,
            simulate,
        } => run::run(run::RunArgs {
            config,
            broker,
            embedded_listen,
            codec,
            write_back: !no_write_back,
            sysfs_root,
            simulate,
        }),
        Command::Broker { listen } => {
            janitoo_broker::run_foreground(listen).map_err(run::Failure::Runtime)
        }
        Command::Demo {
            chaos,
            duration,
            port,
        } => demo::demo(demo::DemoArgs {
            chaos,
            duration,
            port,
        }),
        Command::Status { broker, wait } => {
            demo::status(&broker, std::time::Duration::from_secs_f64(wait.max(0.1)))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
