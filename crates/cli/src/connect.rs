//! How the operator tools reach the broker: `--broker`, TLS and an account from the command
//! line, or all of it from a controller's configuration file (`--config`), the command line
//! winning. One MQTT client setup for every tool.

use std::path::PathBuf;
use std::time::Duration;

use janitoo_actors::MqttSettings;
use janitoo_config::{BrokerAddress, BrokerConfig, BrokerList, Config, TlsConfig};
use rumqttc::{AsyncClient, EventLoop};

use crate::run::Failure;

/// The broker a tool talks to, and how.
#[derive(clap::Args)]
pub struct BrokerArg {
    /// The MQTT broker, or several separated by commas, tried in turn (default: the
    /// --config file's, else 127.0.0.1:1883).
    #[arg(short, long, value_name = "HOST:PORT[,HOST:PORT...]")]
    pub broker: Option<BrokerList>,
    /// Take the broker's address, TLS, account and network key from this controller
    /// configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TLS to the broker.
    #[arg(long)]
    pub tls: bool,
    /// CA certificates (PEM) the broker's certificate must chain to (default: the system's).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM), for brokers that ask for one.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key_file"])]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["tls", "cert_file"])]
    pub key_file: Option<PathBuf>,
    /// The name the broker's certificate must carry, when not the --broker host.
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub server_name: Option<String>,
    /// The network's key file (as `[network] key_file`; else the --config file's): `status`
    /// then believes only signed control messages, and requests to nodes are signed (a keyed
    /// controller reads them from the operators' share, during a flood too).
    #[arg(long, value_name = "FILE")]
    pub network_key: Option<PathBuf>,
    /// User name on the broker.
    #[arg(long)]
    pub username: Option<String>,
    /// A file holding the password (else the environment variable JANITOO_BROKER_PASSWORD).
    #[arg(long, value_name = "FILE", requires = "username")]
    pub password_file: Option<PathBuf>,
}

/// Everything needed to connect, checked.
#[derive(Clone)]
pub struct BrokerSettings {
    /// The broker and how to reach it (the bridge's own setup).
    pub mqtt: MqttSettings,
    /// The network's key, when given.
    pub control_key: Option<janitoo_protocol::control_plane::ControlKey>,
}

impl BrokerSettings {
    /// A plain connection to `address` (one broker, or a list).
    pub fn plain(address: impl Into<BrokerList>) -> BrokerSettings {
        BrokerSettings {
            mqtt: MqttSettings::plain(address),
            control_key: None,
        }
    }

    /// Where: the brokers, in order.
    pub fn address(&self) -> &BrokerList {
        &self.mqtt.brokers
    }

    /// A client called `client_id` and its event loop.
    pub fn client(&self, client_id: String) -> (AsyncClient, EventLoop) {
        MqttSettings::client(self.mqtt.options(client_id), 1024)
    }
}

impl BrokerArg {
    /// The settings: the configuration file's, overridden by the options given.
    pub fn settings(self) -> Result<BrokerSettings, Failure> {
        let usage = |err: anyhow::Error| Failure::Usage(err);
        let (mut broker, network_key) = match &self.config {
            Some(file) => {
                let config = Config::load(file).map_err(|err| usage(err.into()))?;
                (config.broker, config.network.key_file)
            }
            None => (BrokerConfig::default(), None),
        };
        let control_key = self
            .network_key
            .or(network_key)
            .map(|file| janitoo_config::secrets::control_key(&file))
            .transpose()
            .map_err(|err| usage(err.into()))?;
        if let Some(brokers) = self.broker {
            broker.brokers = Some(brokers);
        }
        if self.tls {
            let from_file = broker.tls.take().unwrap_or_default();
            let client = self.cert_file.zip(self.key_file).or(from_file.client);
            broker.tls = Some(TlsConfig {
                ca_file: self.ca_file.or(from_file.ca_file),
                client,
                server_name: self.server_name.or(from_file.server_name),
            });
        }
        if let Some(username) = self.username {
            broker.username = Some(username);
            if self.password_file.is_some() {
                broker.password = None;
                broker.password_file = self.password_file;
            }
        }
        let brokers = broker
            .brokers
            .clone()
            .unwrap_or_else(|| BrokerAddress::new("127.0.0.1", 1883).into());
        let mut mqtt = MqttSettings::of(&broker, brokers).map_err(|err| usage(err.into()))?;
        // A tool's session is short: a broker that dies is noticed sooner.
        mqtt.keepalive = Duration::from_secs(30);
        Ok(BrokerSettings { mqtt, control_key })
    }
}
