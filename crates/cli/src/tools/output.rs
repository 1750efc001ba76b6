//! What the tools print: data with its units, tables, JSON, and nothing when nobody reads.

use std::io::Write as _;

use janitoo_protocol::{Data, ValueReply};

use crate::run::Failure;

/// Text of a value's data, with its units.
pub fn show_data(data: &Data, units: Option<&str>) -> String {
    let text = match data {
        Data::String(text) => text.clone(),
        other => other.to_string(),
    };
    match units {
        Some(units) if !units.is_empty() => format!("{text} {units}"),
        _ => text,
    }
}

/// The data a `set` argument means: JSON when it parses (numbers, booleans, quoted strings),
/// the text itself otherwise.
pub fn parse_data(text: &str) -> Data {
    serde_json::from_str::<Data>(text).unwrap_or_else(|_| Data::String(text.to_owned()))
}

/// Writes `value` as one line of JSON.
pub fn print_json(value: &impl serde::Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
}

/// Writes `text` to stdout; false when nobody reads it any more (`janitoo spy | head`), which
/// ends a long-running tool quietly instead of panicking.
pub fn emit(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// The failure a refusing reply makes: its status and error, exit code 3.
pub fn refused(reply: &ValueReply) -> Failure {
    Failure::Refused(format!(
        "{} {}",
        reply.status().0,
        reply.error.as_deref().unwrap_or("refused")
    ))
}

/// Left-aligned columns, as wide as their widest cell.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (at, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if at + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
