//! The `[broker]` section: which MQTT broker, and how to reach it.
//!
//! ```toml
//! [broker]                          # omit it for an embedded broker in the process
//! address = "127.0.0.1:1883"
//! # addresses = ["pi1:1883", "pi2:1883", "pi3:1883"]   # several: a clustered or bridged broker
//! keepalive = 60                    # seconds, 5 or more
//! standby = true                    # with several addresses: a connection kept open to the next
//! username = "janitoo"              # with password, password_file or JANITOO_BROKER_PASSWORD
//! password_file = "broker.password"
//! tls = true                        # then ca_file, cert_file + key_file, server_name
//! ca_file = "ca.pem"
//! # accounts_file = "accounts"      # with no address: the embedded broker's accounts
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::address::{BadList, BrokerList};
use crate::check::Checker;
use crate::error::ConfigError;

/// The MQTT keep-alive when the file says none, seconds.
pub const DEFAULT_KEEPALIVE: u16 = 60;

/// Where the broker is. `brokers: None` means: start an embedded broker in-process.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `host:port` of each broker the process may use, in order (`address`, or `addresses`
    /// for a clustered or bridged broker): it starts on the first and moves on when its broker
    /// fails.
    pub brokers: Option<BrokerList>,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password, if the broker wants one.
    pub password: Option<String>,
    /// A file holding the password (so that it needs not sit in a file that is written
    /// back); relative paths from the configuration file's folder. The environment variable
    /// `JANITOO_BROKER_PASSWORD` is the third way.
    pub password_file: Option<PathBuf>,
    /// MQTT keep-alive, seconds.
    pub keepalive: u16,
    /// TLS to the broker, when `tls = true`.
    pub tls: Option<TlsConfig>,
    /// With no address: the accounts (`user:password` lines) the embedded broker requires.
    pub accounts_file: Option<PathBuf>,
    /// With several addresses, a second connection kept open to the next broker, which carries
    /// the process's publications while its own connection is down and moving.
    pub standby: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            brokers: None,
            username: None,
            password: None,
            password_file: None,
            keepalive: DEFAULT_KEEPALIVE,
            tls: None,
            accounts_file: None,
            standby: true,
        }
    }
}

/// TLS to the broker (`[broker] tls = true`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    /// The CA certificates (PEM) the broker's certificate must chain to; the system's when
    /// absent.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) and its private key, for brokers that ask for one.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The name the broker's certificate must carry, when it is not the address's host (a
    /// broker reached by IP address, say).
    pub server_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBroker {
    address: Option<String>,
    addresses: Option<Vec<String>>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    keepalive: Option<u16>,
    #[serde(default)]
    tls: bool,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    accounts_file: Option<PathBuf>,
    standby: Option<bool>,
}

impl Checker<'_> {
    pub(crate) fn broker(&self, raw: RawBroker) -> Result<BrokerConfig, ConfigError> {
        let brokers = match (&raw.address, &raw.addresses) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "broker.addresses",
                    "address (one broker) or addresses (several), not both",
                    "both",
                ))
            }
            (Some(text), None) => Some(BrokerList::parse([text.as_str()]).map_err(|_| {
                self.invalid(
                    "broker.address",
                    "host:port, with a port 1 to 65535",
                    format!("{text:?}"),
                )
            })?),
            (None, Some(texts)) => Some(
                BrokerList::parse(texts.iter().map(String::as_str))
                    .map_err(|bad| self.bad_list(&bad))?,
            ),
            (None, None) => None,
        };
        let keepalive = raw.keepalive.unwrap_or(DEFAULT_KEEPALIVE);
        if keepalive < 5 {
            return Err(self.invalid("broker.keepalive", "seconds, 5 or more", keepalive));
        }
        let tls_only = [
            ("broker.ca_file", raw.ca_file.is_some()),
            ("broker.cert_file", raw.cert_file.is_some()),
            ("broker.key_file", raw.key_file.is_some()),
            ("broker.server_name", raw.server_name.is_some()),
        ];
        if let Some((key, _)) = tls_only.iter().find(|(_, set)| *set && !raw.tls) {
            return Err(self.invalid(key, "`tls = true` beside it", "tls off"));
        }
        let client = match (raw.cert_file, raw.key_file) {
            (Some(cert), Some(key)) => Some((self.beside(cert), self.beside(key))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.invalid("broker.key_file", "the key of cert_file", "none"))
            }
            (None, Some(_)) => {
                return Err(self.invalid("broker.cert_file", "the certificate of key_file", "none"))
            }
        };
        if raw.accounts_file.is_some() && brokers.is_some() {
            return Err(self.invalid(
                "broker.accounts_file",
                "no broker address beside it (it is for the embedded broker)",
                "an address",
            ));
        }
        if raw.password.is_some() && raw.password_file.is_some() {
            return Err(self.invalid(
                "broker.password_file",
                "password or password_file, not both",
                "both",
            ));
        }
        Ok(BrokerConfig {
            brokers,
            username: raw.username,
            password: raw.password,
            password_file: raw.password_file.map(|file| self.beside(file)),
            accounts_file: raw.accounts_file.map(|file| self.beside(file)),
            keepalive,
            standby: raw.standby.unwrap_or(true),
            tls: raw.tls.then(|| TlsConfig {
                ca_file: raw.ca_file.map(|file| self.beside(file)),
                client,
                server_name: raw.server_name,
            }),
        })
    }
}

impl Checker<'_> {
    /// `[broker] addresses` refused, naming the entry.
    fn bad_list(&self, bad: &BadList) -> ConfigError {
        let expected = "a list of host:port, none twice";
        match bad {
            BadList::Empty => self.invalid("broker.addresses", expected, "an empty list"),
            BadList::Entry { position, bad } => self.invalid(
                &format!("broker.addresses[{}]", position - 1),
                "host:port, with a port 1 to 65535",
                format!("{:?}", bad.text),
            ),
            BadList::Repeated { position, address } => self.invalid(
                &format!("broker.addresses[{}]", position - 1),
                "each broker once",
                format!("{address}, given twice"),
            ),
        }
    }
}
