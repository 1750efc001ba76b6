//! Files of `field:field` lines: the embedded broker's accounts (`user:password`) and the web
//! manager's users (`name:role:hash`). Blank lines and `#` comments are skipped; a bad line
//! is named with its number, and nothing of the file is taken.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a line file cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{}{}: {reason}", file.display(), if *line > 0 { format!(", line {line}") } else { String::new() })]
pub struct LineFileError {
    /// The file.
    pub file: PathBuf,
    /// The line (0: the whole file).
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Reads `file`: each line that is not blank or a comment, split on `:` into at most `fields`
/// fields, made an entry by `entry` (or refused with why); at least one entry, a `what` (named
/// when there is none).
pub fn read_lines<T>(
    file: &Path,
    fields: usize,
    what: &str,
    mut entry: impl FnMut(&[&str]) -> Result<T, String>,
) -> Result<Vec<T>, LineFileError> {
    let refuse = |line: usize, reason: String| LineFileError {
        file: file.to_owned(),
        line,
        reason,
    };
    let text =
        std::fs::read_to_string(file).map_err(|err| refuse(0, format!("cannot read it: {err}")))?;
    let mut entries = Vec::new();
    for (at, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let split: Vec<&str> = line.splitn(fields, ':').collect();
        entries.push(entry(&split).map_err(|reason| refuse(at + 1, reason))?);
    }
    if entries.is_empty() {
        return Err(refuse(0, format!("no {what} in it")));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Result<Vec<(String, String)>, LineFileError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("accounts");
        std::fs::write(&file, text).unwrap();
        read_lines(&file, 2, "account", |fields| match fields {
            [user, password] if !user.is_empty() && !password.is_empty() => {
                Ok((user.to_string(), password.to_string()))
            }
            _ => Err("expected user:password".into()),
        })
        .map_err(|err| LineFileError {
            file: "accounts".into(),
            ..err
        })
    }

    #[test]
    fn entries_skip_blanks_and_comments_and_keep_colons_in_the_last_field() {
        let read = pairs("# operators\n\n  alice:a:b:c  \nbob:secret\n").unwrap();
        assert_eq!(
            read,
            [
                ("alice".to_owned(), "a:b:c".to_owned()),
                ("bob".to_owned(), "secret".to_owned())
            ]
        );
    }

    #[test]
    fn a_bad_line_is_named_and_an_empty_file_refused() {
        let err = pairs("alice:a\nbob\n").unwrap_err();
        assert_eq!(err.to_string(), "accounts, line 2: expected user:password");
        let err = pairs("# nobody\n").unwrap_err();
        assert_eq!(err.to_string(), "accounts: no account in it");
        let err = read_lines(Path::new("/nonexistent/users"), 3, "user", |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/users: cannot read it"),
            "{err}"
        );
    }
}
