//! The one error type of the configuration crate.

use std::path::PathBuf;

use thiserror::Error;

/// What can be wrong with a configuration file, the files it names, or its write-back. Loading
/// changes nothing; a failed write-back leaves the file as it was.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read it: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong type or is unknown.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's explanation, with the line and the key.
        message: String,
    },
    /// A key holds a value that is not acceptable.
    #[error("{file}: `{key}`: expected {expected}, found {found}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The dotted path of the key (`buses.rpibasic.components.ambiance.hadd`).
        key: String,
        /// What the key must hold.
        expected: String,
        /// What it held.
        found: String,
    },
    /// Writing the file back failed; the file on disk is unchanged.
    #[error("{file}: cannot write it back: {source}")]
    Write {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A write-back names a node or a key the file does not describe.
    #[error("{file}: no node `{node}` to write `{key}` into")]
    UnknownNode {
        /// The file.
        file: PathBuf,
        /// The node (`rpibasic` or `rpibasic__ambiance`).
        node: String,
        /// The key.
        key: String,
    },
    /// TLS to the broker cannot be set up from the files named.
    #[error("{file}: {reason}")]
    Tls {
        /// The file (CA, certificate or key), or what was wrong.
        file: String,
        /// Why.
        reason: String,
    },
    /// The broker password cannot be read.
    #[error("{file}: {reason}")]
    Password {
        /// The password file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The network's key file cannot be used.
    #[error("{file}: {reason}")]
    ControlKey {
        /// The key file.
        file: String,
        /// Why.
        reason: String,
    },
}
