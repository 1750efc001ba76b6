//! [`Checker`]: what every section's checks share: the file they name in errors, paths relative
//! to it, and the checks of values that several sections hold (addresses, names, periods).

use std::path::{Path, PathBuf};

use janitoo_protocol::Hadd;

use crate::error::ConfigError;

/// Checks one file's values, naming the keys.
pub(crate) struct Checker<'a> {
    pub(crate) file: &'a Path,
}

impl Checker<'_> {
    /// A path the file names: relative ones are from the file's folder.
    pub(crate) fn beside(&self, path: PathBuf) -> PathBuf {
        match self.file.parent() {
            Some(folder) if path.is_relative() => folder.join(path),
            _ => path,
        }
    }

    /// The error for `key`, which should hold `expected` and holds `found`.
    pub(crate) fn invalid(
        &self,
        key: &str,
        expected: &str,
        found: impl std::fmt::Display,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            key: key.to_owned(),
            expected: expected.to_owned(),
            found: found.to_string(),
        }
    }

    /// A HADD.
    pub(crate) fn hadd(&self, key: &str, text: &str) -> Result<Hadd, ConfigError> {
        Hadd::parse(text)
            .map_err(|_| self.invalid(key, "a HADD like \"0220/0001\"", format!("{text:?}")))
    }

    /// A name of a bus, a component or a value.
    pub(crate) fn name(&self, key: &str, name: &str) -> Result<(), ConfigError> {
        let ok = !name.is_empty()
            && !name.contains("__")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                "a name of letters, digits, '_', '-', '.' (no \"__\")",
                format!("{name:?}"),
            ))
        }
    }

    /// A whole number within `range`, else `default`.
    pub(crate) fn count(
        &self,
        key: &str,
        value: Option<i64>,
        default: usize,
        range: std::ops::RangeInclusive<i64>,
        expected: &str,
    ) -> Result<usize, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if range.contains(&v) => {
                usize::try_from(v).map_err(|_| self.invalid(key, expected, v))
            }
            Some(v) => Err(self.invalid(key, expected, v)),
        }
    }

    /// Seconds within `range`, else `default`.
    pub(crate) fn seconds_within(
        &self,
        key: &str,
        value: Option<f64>,
        default: f64,
        range: std::ops::RangeInclusive<f64>,
        expected: &str,
    ) -> Result<f64, ConfigError> {
        let secs = value.unwrap_or(default);
        if range.contains(&secs) {
            Ok(secs)
        } else {
            Err(self.invalid(key, expected, secs))
        }
    }

    /// A node's period, seconds: at most 3000, and more than 0 when `min_exclusive` (0 allowed
    /// otherwise).
    pub(crate) fn period(
        &self,
        key: &str,
        value: Option<f64>,
        min_exclusive: bool,
    ) -> Result<Option<f64>, ConfigError> {
        match value {
            Some(secs)
                if !(secs.is_finite()
                    && secs <= 3000.0
                    && (secs > 0.0 || !min_exclusive && secs == 0.0)) =>
            {
                let expected = if min_exclusive {
                    "seconds, more than 0 and at most 3000"
                } else {
                    "seconds, 0 to 3000"
                };
                Err(self.invalid(key, expected, secs))
            }
            other => Ok(other),
        }
    }
}
