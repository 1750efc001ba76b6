//! The `[limits]` section: what a client may send, whoever it is.
//!
//! ```toml
//! [limits]
//! max_payload = 262144     # bytes, 1024 to 268435456
//! max_string = 4096        # bytes, 16 up to max_payload
//! max_in_flight = 256      # requests, 1 to 100000
//! ```

use janitoo_protocol::limits::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_STRING};
use serde::Deserialize;

use crate::check::Checker;
use crate::error::ConfigError;

/// The `[limits]` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitsConfig {
    /// The largest payload accepted (or sent), bytes (default 256 KiB).
    pub max_payload: usize,
    /// The longest string a value may be set to, bytes (default 4 KiB), unless the value's
    /// own spec says otherwise.
    pub max_string: usize,
    /// Requests a controller works on at once; more are refused at once with 503 (default 256).
    pub max_in_flight: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_string: DEFAULT_MAX_STRING,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    max_payload: Option<i64>,
    max_string: Option<i64>,
    max_in_flight: Option<i64>,
}

impl Checker<'_> {
    pub(crate) fn limits(&self, raw: RawLimits) -> Result<LimitsConfig, ConfigError> {
        let max_payload = self.count(
            "limits.max_payload",
            raw.max_payload,
            DEFAULT_MAX_PAYLOAD,
            1 << 10..=256 << 20,
            "bytes, 1024 to 268435456",
        )?;
        let max_string = self.count(
            "limits.max_string",
            raw.max_string,
            DEFAULT_MAX_STRING,
            16..=i64::try_from(max_payload).unwrap_or(i64::MAX),
            "bytes, 16 up to limits.max_payload",
        )?;
        let max_in_flight = self.count(
            "limits.max_in_flight",
            raw.max_in_flight,
            DEFAULT_MAX_IN_FLIGHT,
            1..=100_000,
            "a number of requests, 1 to 100000",
        )?;
        Ok(LimitsConfig {
            max_payload,
            max_string,
            max_in_flight,
        })
    }
}
