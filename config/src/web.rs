//! The `[web]` section: the web manager.
//!
//! ```toml
//! [web]
//! listen = "127.0.0.1:8080"     # none: no web manager
//! hosts = ["pi.local"]          # names it is reached by, besides IP addresses and localhost
//! users_file = "users"          # name:role:hash lines; required off loopback
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::check::Checker;
use crate::error::ConfigError;

/// The `[web]` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebConfig {
    /// Where the web manager listens (`127.0.0.1:8080`); none when absent.
    pub listen: Option<std::net::SocketAddr>,
    /// Host names it is reached by (`pi.local`), besides IP addresses and `localhost`: a
    /// request naming any other host is refused (DNS rebinding).
    pub hosts: Vec<String>,
    /// The users who may log in (`name:role:hash` lines); required to listen elsewhere than
    /// on loopback.
    pub users_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWeb {
    listen: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    users_file: Option<PathBuf>,
}

impl Checker<'_> {
    pub(crate) fn web(&self, raw: RawWeb) -> Result<WebConfig, ConfigError> {
        let listen = raw
            .listen
            .as_deref()
            .map(|text| {
                text.parse::<std::net::SocketAddr>().map_err(|_| {
                    self.invalid(
                        "web.listen",
                        "an IP:PORT like \"127.0.0.1:8080\"",
                        format!("{text:?}"),
                    )
                })
            })
            .transpose()?;
        Ok(WebConfig {
            listen,
            hosts: raw.hosts,
            users_file: raw.users_file.map(|users| self.beside(users)),
        })
    }
}
