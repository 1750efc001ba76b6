//! Reading and writing payload trees field by field, with the tolerance of the original on
//! input (booleans and numbers as strings, integer-valued floats) and errors that name the path
//! of the offending field.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::error::{ProtocolError, Result};
use crate::hadd::Hadd;

/// Any payload datum: the JSON data model, shared by both codecs.
pub type Data = Value;

/// The path of `key` below `parent` (`data.0220/0001.temperature`).
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A short description of what a field held, for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => format!("number {number}"),
        Value::String(text) => {
            let shown: String = text.chars().take(40).collect();
            let more = if text.chars().count() > 40 { "..." } else { "" };
            format!("string {shown:?}{more}")
        }
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(map) => format!("an object of {} fields", map.len()),
    }
}

pub(crate) fn invalid(path: &str, expected: &'static str, value: &Value) -> ProtocolError {
    ProtocolError::InvalidField {
        field: path.to_owned(),
        expected,
        found: describe(value),
    }
}

/// The object at `path`, or an error naming it.
pub(crate) fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(invalid(
            if path.is_empty() { "(payload)" } else { path },
            "an object",
            other,
        )),
    }
}

pub(crate) fn as_string(value: &Value, path: &str) -> Result<String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        other => Err(invalid(path, "a string", other)),
    }
}

/// The original's `string_to_bool`: `0|false|off|no` (any case) are false, other text is true.
pub fn string_to_bool(text: &str) -> bool {
    !matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "off" | "no"
    )
}

pub(crate) fn as_bool(value: &Value, path: &str) -> Result<bool> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) => Ok(string_to_bool(text)),
        Value::Number(number) => Ok(number.as_f64() != Some(0.0)),
        other => Err(invalid(path, "a boolean", other)),
    }
}

pub(crate) fn as_i64(value: &Value, path: &str) -> Result<i64> {
    let parsed = match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15)
                .map(|float| float as i64)
        }),
        Value::String(text) => parse_integer_text(text.trim()),
        _ => None,
    };
    parsed.ok_or_else(|| invalid(path, "an integer", value))
}

fn parse_integer_text(text: &str) -> Option<i64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

pub(crate) fn as_ranged<T: TryFrom<i64>>(
    value: &Value,
    path: &str,
    expected: &'static str,
) -> Result<T> {
    let number = as_i64(value, path).map_err(|_| invalid(path, expected, value))?;
    T::try_from(number).map_err(|_| invalid(path, expected, value))
}

pub(crate) fn as_f64(value: &Value, path: &str) -> Result<f64> {
    let parsed = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    parsed
        .filter(|float| float.is_finite())
        .ok_or_else(|| invalid(path, "a number", value))
}

pub(crate) fn as_hadd(value: &Value, path: &str) -> Result<Hadd> {
    match value {
        Value::String(text) => {
            Hadd::parse(text).map_err(|_| invalid(path, "a HADD like \"0220/0001\"", value))
        }
        other => Err(invalid(path, "a HADD like \"0220/0001\"", other)),
    }
}

/// Field-by-field access to one object of a payload.
pub(crate) struct Reader<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Reader<'a> {
    /// Reads the object `value` found at `path` (empty for the payload itself).
    pub(crate) fn new(value: &'a Value, path: &str) -> Result<Reader<'a>> {
        Ok(Reader {
            map: as_object(value, path)?,
            path: path.to_owned(),
        })
    }

    pub(crate) fn path(&self, key: &str) -> String {
        child_path(&self.path, key)
    }

    /// The value of `key`, absent and null alike being `None`.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    /// The raw value of `key`, null when absent.
    pub(crate) fn data(&self, key: &str) -> Value {
        self.map.get(key).cloned().unwrap_or(Value::Null)
    }

    pub(crate) fn optional<T>(
        &self,
        key: &str,
        convert: impl FnOnce(&Value, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        self.get(key)
            .map(|value| convert(value, &self.path(key)))
            .transpose()
    }

    pub(crate) fn required<T>(
        &self,
        key: &str,
        convert: impl FnOnce(&Value, &str) -> Result<T>,
    ) -> Result<T> {
        self.optional(key, convert)?
            .ok_or_else(|| ProtocolError::MissingField {
                field: self.path(key),
            })
    }

    pub(crate) fn string(&self, key: &str) -> Result<String> {
        self.required(key, as_string)
    }

    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>> {
        self.optional(key, as_string)
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.optional(key, as_bool)
    }

    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.optional(key, as_f64)
    }

    pub(crate) fn opt_hadd(&self, key: &str) -> Result<Option<Hadd>> {
        self.optional(key, as_hadd)
    }

    /// A request id: text, or a number taken as its text.
    pub(crate) fn opt_id(&self, key: &str) -> Result<Option<String>> {
        self.optional(key, |value, path| match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            other => Err(invalid(path, "a string or a number", other)),
        })
    }

    /// Every field whose key is not in `known`.
    pub(crate) fn extra(&self, known: &[&str]) -> BTreeMap<String, Value> {
        self.map
            .iter()
            .filter(|(key, _)| !known.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

/// Builds one object of a payload.
#[derive(Default)]
pub(crate) struct Writer {
    map: Map<String, Value>,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer::default()
    }

    pub(crate) fn put(&mut self, key: &str, value: impl Into<Value>) -> &mut Writer {
        self.map.insert(key.to_owned(), value.into());
        self
    }

    /// Writes `value` when it is present; nothing otherwise.
    pub(crate) fn put_some(&mut self, key: &str, value: Option<impl Into<Value>>) -> &mut Writer {
        if let Some(value) = value {
            self.put(key, value);
        }
        self
    }

    /// Adds fields that are not already written.
    pub(crate) fn put_extra(&mut self, extra: &BTreeMap<String, Value>) -> &mut Writer {
        for (key, value) in extra {
            self.map.entry(key.clone()).or_insert_with(|| value.clone());
        }
        self
    }

    pub(crate) fn finish(&mut self) -> Value {
        Value::Object(std::mem::take(&mut self.map))
    }
}

/// A number written as an integer when it is one (`30` rather than `30.0`), null when not finite.
pub(crate) fn number(float: f64) -> Value {
    if float.fract() == 0.0 && float.abs() < 9.0e15 {
        Value::from(float as i64)
    } else {
        Number::from_f64(float).map_or(Value::Null, Value::Number)
    }
}

pub(crate) fn opt_number(float: Option<f64>) -> Value {
    float.map_or(Value::Null, number)
}

pub(crate) fn opt_text(text: &Option<String>) -> Value {
    text.as_ref()
        .map_or(Value::Null, |text| Value::from(text.as_str()))
}

pub(crate) fn opt_display(item: Option<impl ToString>) -> Value {
    item.map_or(Value::Null, |item| Value::from(item.to_string()))
}
