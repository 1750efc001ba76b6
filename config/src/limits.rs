//! The `[limits]` section: what a client may send, whoever it is.
//!
//! ```toml
//! [limits]
//! max_payload = 262144     # bytes, 1024 to 268435456
//! max_string = 4096        # bytes, 16 up to max_payload
//! max_in_flight = 256      # requests, 1 to 100000
//! max_requests_per_second = 5000  # requests to nodes read, 10 to 1000000; the rest dropped
//! ```

use janitoo_protocol::limits::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_REQUESTS_PER_SECOND, DEFAULT_MAX_STRING,
};
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
    /// Requests to nodes read a second, after a burst of a fifth of it (default 5,000); the
    /// rest is dropped unread and counted. Signed requests have a share of their own.
    pub max_requests_per_second: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_string: DEFAULT_MAX_STRING,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_requests_per_second: DEFAULT_MAX_REQUESTS_PER_SECOND,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    max_payload: Option<i64>,
    max_string: Option<i64>,
    max_in_flight: Option<i64>,
    max_requests_per_second: Option<i64>,
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
        let max_requests_per_second = self.count(
            "limits.max_requests_per_second",
            raw.max_requests_per_second,
            DEFAULT_MAX_REQUESTS_PER_SECOND,
            10..=1_000_000,
            "a number of requests a second, 10 to 1000000",
        )?;
        Ok(LimitsConfig {
            max_payload,
            max_string,
            max_in_flight,
            max_requests_per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::Config;

    const CONTROLLER: &str = "[network]\nrole = \"auto\"\nhadd = \"0900/0000\"\n";

    fn limits(section: &str) -> Result<LimitsConfig, ConfigError> {
        Config::parse(&format!("{CONTROLLER}{section}"), Path::new("janitoo.toml"))
            .map(|config| config.limits)
    }

    #[test]
    fn the_defaults_without_the_section_and_each_key_read() {
        assert_eq!(limits("").unwrap(), LimitsConfig::default());
        let set = limits(
            "[limits]\nmax_payload = 2048\nmax_string = 64\nmax_in_flight = 8\n\
             max_requests_per_second = 10\n",
        )
        .unwrap();
        assert_eq!(
            set,
            LimitsConfig {
                max_payload: 2048,
                max_string: 64,
                max_in_flight: 8,
                max_requests_per_second: 10,
            }
        );
    }

    #[test]
    fn a_value_out_of_range_is_named_with_the_range() {
        for (line, key, range) in [
            ("max_payload = 1023", "limits.max_payload", "1024 to"),
            ("max_string = 15", "limits.max_string", "16 up to"),
            ("max_in_flight = 0", "limits.max_in_flight", "1 to 100000"),
            (
                "max_requests_per_second = 9",
                "limits.max_requests_per_second",
                "10 to 1000000",
            ),
            (
                "max_requests_per_second = 1000001",
                "limits.max_requests_per_second",
                "10 to 1000000",
            ),
        ] {
            let err = limits(&format!("[limits]\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(range), "{line}: {err}");
        }
        let err = limits("[limits]\nmax_requests = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_requests"), "{err}");
    }
}
