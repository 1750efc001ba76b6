//! `janitoo`: the command of janitoo-rs, as a library so that the integration tests can build
//! the same binary under another name.

pub mod connect;
mod demo;
mod logging;
pub mod run;
pub mod tools;
pub mod top;
mod view;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// `janitoo --version`: the version, the target it was built for, and the commit.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("JANITOO_TARGET"),
    ", commit ",
    env!("JANITOO_COMMIT"),
    ")"
);

/// A Janitoo home-automation controller: the Janitoo protocol over MQTT.
#[derive(Parser)]
#[command(name = "janitoo", version = VERSION, about, long_about = None)]
struct Cli {
    /// More logs: -v for debug, -vv for trace (RUST_LOG, when set, wins: `RUST_LOG=debug`,
    /// or `RUST_LOG=info,janitoo_actors::bridge=debug`).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// How logs are written to standard error: text, or one JSON object per line (journald).
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: logging::LogFormat,
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
    Run(run::RunArgs),
    /// Run an embedded MQTT broker in the foreground (until Ctrl-C).
    Broker(run::BrokerArgs),
    /// An embedded broker, a primary, two secondaries and the tutorial server (simulated
    /// sensors) as separate processes, with a live view of roles, epochs, nodes and values.
    /// Ctrl-C stops everything it started.
    Demo(demo::DemoArgs),
    /// Print the network once: controllers and their roles, nodes and their states, values.
    Status(demo::StatusArgs),
    /// Discovery: the nodes of the network, or one node's info and values.
    Query {
        #[command(subcommand)]
        what: tools::query::QueryCommand,
    },
    /// Read a value of a node (exit 3 when the node refuses, 1 when nobody answers).
    Get(tools::value::ValueTarget),
    /// Set a value of a node and print the reply's status (exit 3 when the node refuses).
    Set(tools::value::SetArgs),
    /// Every controller of the network and its actors, live: messages handled, backlog,
    /// handler latency, restarts; queue depth, publications per second, epoch.
    Top(top::TopArgs),
    /// Print a line of the web manager's users file (`[web] users_file`): the password is
    /// read from standard input (one line) and kept as an argon2 hash.
    WebUser(WebUserArgs),
    /// Print every message of the network, decoded, one line each (Ctrl-C stops).
    Spy(tools::spy::SpyArgs),
    /// The network's leases (`hadd = "auto"`): list them, or remove one.
    Lease {
        #[command(subcommand)]
        what: tools::lease::LeaseCommand,
    },
    /// Write a new network key (`[network] key_file`): the same file on every network
    /// controller signs the control plane. It never overwrites a key.
    NetworkKey(NetworkKeyArgs),
}

/// The arguments of `janitoo network-key`.
#[derive(clap::Args)]
struct NetworkKeyArgs {
    /// Where to write it (it must not exist), e.g. /etc/janitoo/network.key.
    file: std::path::PathBuf,
}

/// `janitoo network-key FILE`.
fn network_key(args: NetworkKeyArgs) -> Result<(), run::Failure> {
    janitoo_config::secrets::write_new_key(&args.file)
        .map_err(|err| run::Failure::Usage(err.into()))?;
    println!(
        "janitoo: a new network key in {} (readable by you only). Copy it to every network \
         controller and name it in their [network] key_file.",
        args.file.display()
    );
    Ok(())
}

/// What a web user may do.
#[derive(Clone, Copy, ValueEnum)]
enum WebRole {
    /// Browse and set values.
    Operator,
    /// Browse only.
    Viewer,
}

/// The arguments of `janitoo web-user`.
#[derive(clap::Args)]
struct WebUserArgs {
    /// The user's name.
    name: String,
    /// What the user may do.
    #[arg(long, value_enum, default_value = "operator")]
    role: WebRole,
}

/// `janitoo web-user`: the users-file line of `name`, the password from standard input.
fn web_user(args: WebUserArgs) -> Result<(), run::Failure> {
    let WebUserArgs { name, role } = args;
    if name.is_empty() || name.contains([':', '\n']) {
        return Err(run::Failure::Usage(anyhow::anyhow!(
            "user name {name:?}: expected a name without ':'"
        )));
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|err| run::Failure::Other(err.into()))?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.len() < 8 {
        return Err(run::Failure::Usage(anyhow::anyhow!(
            "the password (read from standard input) needs 8 characters or more"
        )));
    }
    let role = match role {
        WebRole::Operator => janitoo_web::Role::Operator,
        WebRole::Viewer => janitoo_web::Role::Viewer,
    };
    println!("{}", janitoo_web::login::user_line(&name, role, password));
    Ok(())
}

/// A duration argument in seconds: a finite number, more than 0 and at most a day.
pub(crate) fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value <= 86_400.0 => Ok(value),
        _ => Err(format!(
            "{text:?} is not a number of seconds (more than 0, at most 86400)"
        )),
    }
}

/// A duration argument as a duration.
pub(crate) fn seconds(value: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(value.clamp(0.1, 86_400.0))
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    let outcome = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Broker(args) => run::broker(args),
        Command::Demo(args) => demo::demo(args),
        Command::Status(args) => demo::status(args),
        Command::Query { what } => tools::query::query(what),
        Command::Get(target) => tools::value::get_or_set(target, None),
        Command::Set(args) => tools::value::set(args),
        Command::Top(args) => top::top(args),
        Command::WebUser(args) => web_user(args),
        Command::Spy(args) => tools::spy::spy(args),
        Command::Lease { what } => tools::lease::lease(what),
        Command::NetworkKey(args) => network_key(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
