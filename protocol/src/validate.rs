//! Checking data written to a value: type conversion (as the original's `JNTValue.convert`, but
//! refusing what it would have silently mangled), bounds and list items.

use std::net::Ipv4Addr;

use crate::fields::Data;
use crate::hadd::Hadd;
use crate::model::ValueType;

/// Why data cannot be written to a value. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a value accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Constraints<'a> {
    /// The data type (`None`: anything).
    pub value_type: Option<ValueType>,
    /// Lower bound of numeric types.
    pub min: Option<f64>,
    /// Upper bound of numeric types.
    pub max: Option<f64>,
    /// The choices of a List.
    pub list_items: Option<&'a [String]>,
}

fn integer(data: &Data) -> Option<i64> {
    match data {
        Data::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Data::String(text) => text.trim().parse::<i64>().ok(),
        // `true` is no number (a heartbeat of `true` is not one of 1 s).
        _ => None,
    }
}

fn decimal(data: &Data) -> Option<f64> {
    match data {
        Data::Number(number) => number.as_f64(),
        Data::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn boolean(data: &Data) -> Option<bool> {
    match data {
        Data::Bool(flag) => Some(*flag),
        Data::Number(number) => match number.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Data::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Some(true),
            "false" | "off" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn text(data: &Data) -> Option<String> {
    match data {
        Data::String(text) => Some(text.clone()),
        Data::Number(number) => Some(number.to_string()),
        Data::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn ranged_integer(data: &Data, low: i64, high: i64, what: &str) -> Result<Data, Invalid> {
    match integer(data) {
        Some(number) if (low..=high).contains(&number) => Ok(Data::from(number)),
        _ => Err(Invalid(format!(
            "expected {what} ({low} to {high}), got {data}"
        ))),
    }
}

/// Converts `data` to `value_type`, as the value will hold it.
pub fn convert(value_type: Option<ValueType>, data: &Data) -> Result<Data, Invalid> {
    let Some(value_type) = value_type else {
        return Ok(data.clone());
    };
    let refuse = |what: &str| Invalid(format!("expected {what}, got {data}"));
    match value_type {
        ValueType::Bool => boolean(data)
            .map(Data::from)
            .ok_or_else(|| refuse("a boolean")),
        ValueType::Byte => ranged_integer(data, 0, 255, "a byte"),
        ValueType::Short => {
            ranged_integer(data, i16::MIN.into(), i16::MAX.into(), "a short integer")
        }
        ValueType::Int => ranged_integer(data, i32::MIN.into(), i32::MAX.into(), "an integer"),
        ValueType::Decimal => decimal(data)
            .map(Data::from)
            .ok_or_else(|| refuse("a number")),
        ValueType::String | ValueType::Password | ValueType::List => {
            text(data).map(Data::from).ok_or_else(|| refuse("a text"))
        }
        ValueType::Array => match data {
            Data::Array(_) => Ok(data.clone()),
            Data::String(joined) => Ok(Data::Array(joined.split('|').map(Data::from).collect())),
            _ => Err(refuse("a list or \"a|b\"")),
        },
        ValueType::Hadd => match data {
            Data::String(text) => Hadd::parse(text)
                .map(|hadd| Data::from(hadd.to_string()))
                .map_err(|_| refuse("a HADD like 0220/0001")),
            _ => Err(refuse("a HADD like 0220/0001")),
        },
        ValueType::Ip => match data {
            Data::String(text) if text.trim().parse::<Ipv4Addr>().is_ok() => {
                Ok(Data::from(text.trim()))
            }
            _ => Err(refuse("an IPv4 address")),
        },
        ValueType::Rgb => match data {
            Data::String(text) if is_rgb(text) => Ok(data.clone()),
            _ => Err(refuse("a colour like 255#128#0")),
        },
        ValueType::Button
        | ValueType::Schedule
        | ValueType::Raw
        | ValueType::Json
        | ValueType::Var => Ok(data.clone()),
    }
}

fn is_rgb(text: &str) -> bool {
    let parts: Vec<&str> = text.split('#').collect();
    parts.len() == 3 && parts.iter().all(|part| part.parse::<u8>().is_ok())
}

/// Converts `data` and checks it against the bounds and the list items.
pub fn check(constraints: Constraints<'_>, data: &Data) -> Result<Data, Invalid> {
    let converted = convert(constraints.value_type, data)?;
    if let Some(number) = converted.as_f64() {
        if let Some(min) = constraints.min.filter(|min| number < *min) {
            return Err(Invalid(format!("{number} is below the minimum {min}")));
        }
        if let Some(max) = constraints.max.filter(|max| number > *max) {
            return Err(Invalid(format!("{number} is above the maximum {max}")));
        }
    }
    if let (Some(items), Some(ValueType::List)) = (constraints.list_items, constraints.value_type) {
        let choice = converted.as_str().unwrap_or_default();
        if !items.iter().any(|item| item == choice) {
            return Err(Invalid(format!(
                "{choice:?} is not one of {}",
                items.join(", ")
            )));
        }
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(value_type: ValueType) -> Constraints<'static> {
        Constraints {
            value_type: Some(value_type),
            ..Constraints::default()
        }
    }

    #[test]
    fn conversions_accept_the_originals_forms() {
        assert_eq!(check(typed(ValueType::Int), &json!("15")), Ok(json!(15)));
        assert_eq!(
            check(typed(ValueType::Bool), &json!("off")),
            Ok(json!(false))
        );
        assert_eq!(
            check(typed(ValueType::Decimal), &json!("21.5")),
            Ok(json!(21.5))
        );
        assert_eq!(
            check(typed(ValueType::Array), &json!("a|b")),
            Ok(json!(["a", "b"]))
        );
        assert_eq!(
            check(typed(ValueType::Hadd), &json!("220/1")),
            Ok(json!("0220/0001"))
        );
    }

    #[test]
    fn bad_data_is_refused_with_a_reason() {
        for (value_type, data) in [
            (ValueType::Int, json!("abc")),
            (ValueType::Int, json!(1.5)),
            (ValueType::Byte, json!(256)),
            (ValueType::Int, json!(true)),
            (ValueType::Short, json!(false)),
            (ValueType::Bool, json!("maybe")),
            (ValueType::Ip, json!("300.1.1.1")),
            (ValueType::Rgb, json!("red")),
            (ValueType::String, json!({"a": 1})),
        ] {
            let err = check(typed(value_type), &data).unwrap_err();
            assert!(err.0.contains("expected"), "{value_type}: {err}");
        }
    }

    #[test]
    fn bounds_and_list_items() {
        let heartbeat = Constraints {
            min: Some(1.0),
            max: Some(3000.0),
            ..typed(ValueType::Int)
        };
        assert!(check(heartbeat, &json!(0))
            .unwrap_err()
            .0
            .contains("minimum"));
        let refused = check(heartbeat, &json!(true)).unwrap_err();
        assert!(refused.0.contains("expected an integer"), "{refused}");
        assert!(check(heartbeat, &json!(3001))
            .unwrap_err()
            .0
            .contains("maximum"));
        let items = ["on".to_owned(), "off".to_owned()];
        let switch = Constraints {
            list_items: Some(&items),
            ..typed(ValueType::List)
        };
        assert_eq!(check(switch, &json!("on")), Ok(json!("on")));
        assert!(check(switch, &json!("dim"))
            .unwrap_err()
            .0
            .contains("not one of on, off"));
    }
}
