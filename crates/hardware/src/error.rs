//! The one error type of the hardware crate.

use std::path::PathBuf;

use thiserror::Error;

/// Why a reading could not be taken. No reading is ever made up.
#[derive(Debug, Error)]
pub enum HardwareError {
    /// The file could not be read (missing, permission, or the driver's own error such as EIO).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file holds something else than expected.
    #[error("{path}: unexpected content {text:?}")]
    Garbage {
        /// The file.
        path: PathBuf,
        /// What it held (abbreviated).
        text: String,
    },
    /// The sensor answered, but its answer is not trustworthy (bad CRC, power-on value,
    /// out of the sensor's range).
    #[error("{what}: bad read: {why}")]
    BadRead {
        /// The sensor.
        what: String,
        /// Why the value is refused.
        why: String,
    },
    /// This machine does not expose the value.
    #[error("{what} is not available on this machine")]
    Unavailable {
        /// The value.
        what: String,
    },
}
