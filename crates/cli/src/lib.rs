//! `janitoo`: the command of janitoo-rs, as a library so that the integration tests can build
//! the same binary under another name.

mod logging;
pub mod run;

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
    },
    /// Run an embedded MQTT broker in the foreground (until Ctrl-C).
    Broker {
        /// Address to listen on.
        #[arg(short, long, value_name = "IP:PORT", default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
    },
    /// An embedded broker, a primary, two secondaries and the tutorial server, with a live
    /// view (not built yet: it comes with the network supervisor).
    Demo,
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
        } => run::run(run::RunArgs {
            config,
            broker,
            embedded_listen,
            codec,
            write_back: !no_write_back,
        }),
        Command::Broker { listen } => {
            janitoo_broker::run_foreground(listen).map_err(run::Failure::Runtime)
        }
        Command::Demo => Err(run::Failure::Usage(anyhow::anyhow!(
            "`janitoo demo` is not built yet: it arrives with the network supervisor. \
             Meanwhile: `janitoo run --config deploy/examples/tutorial.toml`."
        ))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
