//! `janitoo`: the command of janitoo-rs, as a library so that the integration tests can build
//! the same binary under another name.

pub mod connect;
mod demo;
mod logging;
pub mod run;
pub mod tools;
pub mod top;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use connect::BrokerArg;
use janitoo_config::BrokerAddress;

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
    Run {
        /// The configuration file (TOML); see deploy/examples/.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The MQTT broker, overriding `[broker] address` of the file.
        #[arg(short, long, value_name = "HOST:PORT")]
        broker: Option<BrokerAddress>,
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
    },
    /// Run an embedded MQTT broker in the foreground (until Ctrl-C).
    Broker {
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
    },
    /// An embedded broker, a primary, two secondaries and the tutorial server (simulated
    /// sensors) as separate processes, with a live view of roles, epochs, nodes and values.
    /// Ctrl-C stops everything it started.
    Demo {
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
        web: SocketAddr,
        /// No web manager.
        #[arg(long)]
        no_web: bool,
    },
    /// Print the network once: controllers and their roles, nodes and their states, values.
    Status {
        #[command(flatten)]
        broker: BrokerArg,
        /// Seconds to listen before printing.
        #[arg(long, default_value = "3", value_parser = parse_seconds)]
        wait: f64,
    },
    /// Discovery: the nodes of the network, or one node's info and values.
    Query {
        #[command(subcommand)]
        what: QueryCommand,
    },
    /// Read a value of a node (exit 3 when the node refuses, 1 when nobody answers).
    Get {
        #[command(flatten)]
        target: ValueTarget,
    },
    /// Set a value of a node and print the reply's status (exit 3 when the node refuses).
    Set {
        #[command(flatten)]
        target: ValueTarget,
        /// The new data: JSON (1, 2.5, true, "text") or plain text.
        #[arg(allow_hyphen_values = true)]
        data: String,
    },
    /// Every controller of the network and its actors, live: messages handled, backlog,
    /// handler latency, restarts; queue depth, publications per second, epoch.
    Top {
        #[command(flatten)]
        broker: BrokerArg,
        /// The order of the actors.
        #[arg(long, value_enum, default_value = "backlog")]
        sort: top::SortBy,
        /// Print once after --wait instead of refreshing.
        #[arg(long)]
        once: bool,
        /// With --once: JSON instead of tables.
        #[arg(long, requires = "once")]
        json: bool,
        /// With --once: seconds to gather metrics (controllers publish them every 10 s; a
        /// discovery asks for them at start).
        #[arg(long, default_value = "3", value_parser = parse_seconds)]
        wait: f64,
    },
    /// Print a line of the web manager's users file (`[web] users_file`): the password is
    /// read from standard input (one line) and kept as an argon2 hash.
    WebUser {
        /// The user's name.
        name: String,
        /// What the user may do.
        #[arg(long, value_enum, default_value = "operator")]
        role: WebRole,
    },
    /// Print every message of the network, decoded, one line each (Ctrl-C stops).
    Spy {
        #[command(flatten)]
        broker: BrokerArg,
        /// Only the topics matching this MQTT filter.
        #[arg(short, long, default_value = "#")]
        filter: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Stop after N messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after SECONDS.
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
        duration: Option<f64>,
    },
}

#[derive(Subcommand)]
enum QueryCommand {
    /// Broadcast discovery: every node of every controller that answers.
    Network {
        #[command(flatten)]
        broker: BrokerArg,
        /// Seconds to wait for answers at most.
        #[arg(long, default_value = "5", value_parser = parse_seconds)]
        wait: f64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One node: its info and values.
    Node {
        #[command(flatten)]
        broker: BrokerArg,
        /// The node's address, like 0220/0001.
        hadd: String,
        /// Only the values of this genre.
        #[arg(long, value_enum)]
        genre: Option<GenreArg>,
        /// Seconds to wait for each answer.
        #[arg(long, default_value = "3", value_parser = parse_seconds)]
        wait: f64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// What a web user may do.
#[derive(Clone, Copy, ValueEnum)]
enum WebRole {
    /// Browse and set values.
    Operator,
    /// Browse only.
    Viewer,
}

/// `janitoo web-user`: the users-file line of `name`, the password from standard input.
fn web_user(name: &str, role: WebRole) -> Result<(), run::Failure> {
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
    println!("{}", janitoo_web::login::user_line(name, role, password));
    Ok(())
}

/// A value genre.
#[derive(Clone, Copy, ValueEnum)]
enum GenreArg {
    User,
    Config,
    System,
    Basic,
    Command,
}

impl From<GenreArg> for janitoo_protocol::Genre {
    fn from(genre: GenreArg) -> Self {
        use janitoo_protocol::Genre;
        match genre {
            GenreArg::User => Genre::User,
            GenreArg::Config => Genre::Config,
            GenreArg::System => Genre::System,
            GenreArg::Basic => Genre::Basic,
            GenreArg::Command => Genre::Command,
        }
    }
}

/// The value `get` and `set` address.
#[derive(clap::Args)]
struct ValueTarget {
    #[command(flatten)]
    broker: BrokerArg,
    /// The node's address, like 0220/0001.
    hadd: String,
    /// The value's uuid, like temperature.
    uuid: String,
    /// The instance.
    #[arg(long, default_value = "0")]
    index: u32,
    /// The genre the request names.
    #[arg(long, value_enum, default_value = "user")]
    genre: GenreArg,
    /// The value's command class (the original's nodes need it: 112 is sent for config and
    /// system values, and this for the others, like 37 for a switch).
    #[arg(long, value_name = "N")]
    cmd_class: Option<u16>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    wait: f64,
    /// One JSON object instead of a line.
    #[arg(long)]
    json: bool,
}

impl ValueTarget {
    fn into_args(self) -> Result<tools::ValueArgs, run::Failure> {
        Ok(tools::ValueArgs {
            broker: self.broker.settings()?,
            hadd: self.hadd,
            uuid: self.uuid,
            index: self.index,
            genre: self.genre.into(),
            cmd_class: self.cmd_class,
            wait: seconds(self.wait),
            json: self.json,
        })
    }
}

/// A duration argument in seconds: a finite number, more than 0 and at most a day.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 && value <= 86_400.0 => Ok(value),
        _ => Err(format!(
            "{text:?} is not a number of seconds (more than 0, at most 86400)"
        )),
    }
}

fn seconds(value: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(value.clamp(0.1, 86_400.0))
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    let outcome = match cli.command {
        Command::Run {
            config,
            broker,
            embedded_listen,
            codec,
            no_write_back,
            sysfs_root,
            simulate,
            web,
        } => run::run(run::RunArgs {
            config,
            broker,
            embedded_listen,
            codec,
            write_back: !no_write_back,
            sysfs_root,
            simulate,
            web,
        }),
        Command::Broker {
            listen,
            accounts,
            tls_listen,
            cert_file,
            key_file,
        } => accounts
            .as_deref()
            .map(janitoo_broker::Accounts::load)
            .transpose()
            .map_err(|err| run::Failure::Usage(err.into()))
            .and_then(|accounts| {
                let tls = tls_listen.zip(cert_file.zip(key_file)).map(
                    |(listen, (cert_file, key_file))| janitoo_broker::TlsListener {
                        listen,
                        cert_file,
                        key_file,
                    },
                );
                janitoo_broker::run_foreground(listen, accounts, tls)
                    .map_err(|err| run::Failure::Other(err.into()))
            }),
        Command::Demo {
            chaos,
            duration,
            port,
            web,
            no_web,
        } => demo::demo(demo::DemoArgs {
            chaos,
            duration,
            port,
            web: (!no_web).then_some(web),
        }),
        Command::Status { broker, wait } => broker
            .settings()
            .and_then(|broker| demo::status(&broker, seconds(wait))),
        Command::Query {
            what: QueryCommand::Network { broker, wait, json },
        } => broker
            .settings()
            .and_then(|broker| tools::query_network(&broker, seconds(wait), json)),
        Command::Query {
            what:
                QueryCommand::Node {
                    broker,
                    hadd,
                    genre,
                    wait,
                    json,
                },
        } => broker.settings().and_then(|broker| {
            tools::query_node(tools::NodeQuery {
                broker,
                hadd,
                genre: genre.map(Into::into),
                wait: seconds(wait),
                json,
            })
        }),
        Command::Top {
            broker,
            sort,
            once,
            json,
            wait,
        } => broker
            .settings()
            .and_then(|broker| top::top(&broker, sort, once, json, seconds(wait))),
        Command::WebUser { name, role } => web_user(&name, role),
        Command::Get { target } => target
            .into_args()
            .and_then(|args| tools::get_or_set(args, None)),
        Command::Set { target, data } => target
            .into_args()
            .and_then(|args| tools::get_or_set(args, Some(data))),
        Command::Spy {
            broker,
            filter,
            json,
            count,
            duration,
        } => broker
            .settings()
            .and_then(|broker| tools::spy(&broker, &filter, json, count, duration.map(seconds))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
