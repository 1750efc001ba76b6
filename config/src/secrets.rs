//! The secrets a configuration names by file: the broker's password and the network's key.

use std::path::Path;

use janitoo_protocol::control_plane::{ControlKey, MIN_SECRET};

use crate::broker::BrokerConfig;
use crate::error::ConfigError;

/// The environment variable that may hold the broker password.
pub const PASSWORD_VARIABLE: &str = "JANITOO_BROKER_PASSWORD";

/// The broker password: `password`, else the first line of `password_file`, else the
/// environment variable [`PASSWORD_VARIABLE`].
pub fn password(broker: &BrokerConfig) -> Result<Option<String>, ConfigError> {
    if let Some(password) = &broker.password {
        return Ok(Some(password.clone()));
    }
    if let Some(file) = &broker.password_file {
        let refuse = |reason: String| ConfigError::Password {
            file: file.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(file)
            .map_err(|err| refuse(format!("cannot read it: {err}")))?;
        let line = text.lines().next().unwrap_or_default().trim_end();
        if line.is_empty() {
            return Err(refuse("it is empty".into()));
        }
        return Ok(Some(line.to_owned()));
    }
    Ok(std::env::var(PASSWORD_VARIABLE)
        .ok()
        .filter(|p| !p.is_empty()))
}

/// The network's key, from its key file (`[network] key_file`, or a tool's `--network-key`).
pub fn control_key(file: &Path) -> Result<ControlKey, ConfigError> {
    let refuse = |reason: String| ConfigError::ControlKey {
        file: file.display().to_string(),
        reason,
    };
    let secret = std::fs::read(file).map_err(|err| refuse(format!("cannot read it: {err}")))?;
    ControlKey::from_secret(&secret).ok_or_else(|| {
        refuse(format!(
            "a key of at least {MIN_SECRET} bytes is expected (`head -c 32 /dev/urandom | base64 > FILE` makes one)"
        ))
    })
}
