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
    let secret = std::fs::read(file).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => refuse(format!(
            "it does not exist: make it with `janitoo network-key {}`, then copy it to every network controller",
            file.display()
        )),
        _ => refuse(format!("cannot read it: {err}")),
    })?;
    ControlKey::from_secret(&secret).ok_or_else(|| {
        refuse(format!(
            "a key of at least {MIN_SECRET} bytes is expected (`janitoo network-key FILE` makes one)"
        ))
    })
}

/// Writes a new network key into `file`, which must not exist: 32 random bytes as 64 hex
/// digits, readable by its owner only (give the service's group read access where it runs as
/// another user).
pub fn write_new_key(file: &Path) -> Result<(), ConfigError> {
    use std::io::Write as _;
    let refuse = |reason: String| ConfigError::ControlKey {
        file: file.display().to_string(),
        reason,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file).map_err(|err| match err.kind() {
        std::io::ErrorKind::AlreadyExists => {
            refuse("it exists already: a network keeps its key (remove the file to make a new one, then copy it to every controller)".into())
        }
        _ => refuse(format!("cannot create it: {err}")),
    })?;
    let bytes: [u8; 32] = rand::random();
    let text: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    out.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|err| refuse(format!("cannot write it: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("network.key");
        let err = control_key(&file).unwrap_err().to_string();
        assert!(
            err.contains("does not exist") && err.contains("janitoo network-key"),
            "{err}"
        );
    }

    #[test]
    fn a_new_key_is_usable_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("network.key");
        write_new_key(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(control_key(&file).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = write_new_key(&file).unwrap_err().to_string();
        assert!(again.contains("exists already"), "{again}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
        let other = dir.path().join("other.key");
        write_new_key(&other).unwrap();
        assert_ne!(std::fs::read_to_string(&other).unwrap(), text);
    }
}
