//! Between payload data (the JSON model of `janitoo-protocol`) and TOML values.

use janitoo_protocol::Data;
use toml_edit::{Array, InlineTable, Value};

/// A TOML value as payload data. Dates become their text.
pub fn toml_to_data(value: &toml::Value) -> Data {
    match value {
        toml::Value::String(text) => Data::from(text.as_str()),
        toml::Value::Integer(number) => Data::from(*number),
        toml::Value::Float(number) => Data::from(*number),
        toml::Value::Boolean(flag) => Data::from(*flag),
        toml::Value::Datetime(date) => Data::from(date.to_string()),
        toml::Value::Array(items) => Data::Array(items.iter().map(toml_to_data).collect()),
        toml::Value::Table(table) => Data::Object(
            table
                .iter()
                .map(|(key, value)| (key.clone(), toml_to_data(value)))
                .collect(),
        ),
    }
}

/// Payload data as a TOML value; `None` for null (TOML has no null: the key is removed) and for
/// numbers TOML cannot hold.
pub fn data_to_toml(data: &Data) -> Option<Value> {
    Some(match data {
        Data::Null => return None,
        Data::Bool(flag) => Value::from(*flag),
        Data::Number(number) => match number.as_i64() {
            Some(integer) => Value::from(integer),
            None => Value::from(number.as_f64()?),
        },
        Data::String(text) => Value::from(text.as_str()),
        Data::Array(items) => {
            Value::Array(items.iter().filter_map(data_to_toml).collect::<Array>())
        }
        Data::Object(map) => {
            let mut table = InlineTable::new();
            for (key, item) in map {
                if let Some(item) = data_to_toml(item) {
                    table.insert(key, item);
                }
            }
            Value::InlineTable(table)
        }
    })
}
