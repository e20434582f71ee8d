//! Conversions between `serde_json::Value` and minijinja's `Value`, Kestra's way of printing a
//! value (maps and lists as JSON, integral numbers without `.0`, null as nothing), and
//! attribute lookup with Pebble's rules.

use minijinja::value::{Value, ValueKind};
use serde_json::{Map, Number, Value as Json};

/// A JSON value as a template value.
pub(crate) fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(from_json).collect::<Vec<_>>()),
        Json::Object(map) => Value::from_pairs(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v))),
        ),
    }
}

/// A template value as JSON; undefined becomes null.
pub(crate) fn to_json(v: &Value) -> Json {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(v.is_true()),
        ValueKind::Number => number_to_json(v),
        ValueKind::String => Json::String(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => {
            Json::String(String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned())
        }
        ValueKind::Map => {
            let mut out = Map::new();
            if let Ok(keys) = v.try_iter() {
                for k in keys {
                    let val = v.get_item(&k).unwrap_or_default();
                    out.insert(key_string(&k), to_json(&val));
                }
            }
            Json::Object(out)
        }
        ValueKind::Seq | ValueKind::Iterable => match v.try_iter() {
            Ok(items) => Json::Array(items.map(|x| to_json(&x)).collect()),
            Err(_) => Json::Null,
        },
        _ => Json::String(v.to_string()),
    }
}

fn number_to_json(v: &Value) -> Json {
    if v.is_integer() {
        if let Some(i) = v.as_i64() {
            return Json::Number(i.into());
        }
        if let Ok(u) = u64::try_from(v.clone()) {
            return Json::Number(u.into());
        }
    }
    match f64::try_from(v.clone()) {
        Ok(f) => Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null),
        Err(_) => Json::Null,
    }
}

/// A map key as a string.
pub(crate) fn key_string(k: &Value) -> String {
    match k.as_str() {
        Some(s) => s.to_string(),
        None => display(k),
    }
}

/// How Kestra prints a value: strings as is, null as nothing, maps and lists as JSON,
/// integral decimals without `.0`.
pub(crate) fn display(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::Bool => v.is_true().to_string(),
        ValueKind::Number => {
            if v.is_integer() {
                v.to_string()
            } else {
                match f64::try_from(v.clone()) {
                    Ok(f) => format_float(f),
                    Err(_) => v.to_string(),
                }
            }
        }
        ValueKind::Map | ValueKind::Seq | ValueKind::Iterable => to_json(v).to_string(),
        _ => v.to_string(),
    }
}

/// A decimal number as Kestra prints it.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e17 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// `base[key]` with Pebble's rules; undefined when there is no such attribute.
pub(crate) fn lookup(base: &Value, key: &Value) -> Value {
    match base.kind() {
        ValueKind::Undefined | ValueKind::None => Value::UNDEFINED,
        ValueKind::Seq | ValueKind::Iterable => {
            let idx = if let Some(i) = key.as_i64() {
                Some(i)
            } else {
                key.as_str().and_then(|s| s.parse::<i64>().ok())
            };
            match idx {
                Some(i) if i >= 0 => base
                    .get_item_by_index(i as usize)
                    .unwrap_or(Value::UNDEFINED),
                _ => match key.as_str() {
                    Some(s) => base.get_attr(s).unwrap_or(Value::UNDEFINED),
                    None => Value::UNDEFINED,
                },
            }
        }
        ValueKind::Map => {
            let v = base.get_item(key).unwrap_or(Value::UNDEFINED);
            if v.is_undefined() && !matches!(key.kind(), ValueKind::String) {
                // `map[1]` on a map with the key "1"
                return base
                    .get_item(&Value::from(display(key)))
                    .unwrap_or(Value::UNDEFINED);
            }
            v
        }
        _ => match key.as_str() {
            Some(s) => base.get_attr(s).unwrap_or(Value::UNDEFINED),
            None => base.get_item(key).unwrap_or(Value::UNDEFINED),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_order_and_types() {
        let j = json!({"z": 1, "a": [1.5, "x", null, true], "m": {"k": -3}});
        assert_eq!(to_json(&from_json(&j)), j);
        assert_eq!(to_json(&from_json(&j)).to_string(), j.to_string());
    }

    #[test]
    fn display_like_kestra() {
        assert_eq!(display(&from_json(&json!({"a": 1}))), r#"{"a":1}"#);
        assert_eq!(display(&from_json(&json!([1, "b"]))), r#"[1,"b"]"#);
        assert_eq!(display(&Value::from(2.0)), "2");
        assert_eq!(display(&Value::from(2.5)), "2.5");
        assert_eq!(display(&Value::from(())), "");
        assert_eq!(display(&Value::from(true)), "true");
    }

    #[test]
    fn lookup_rules() {
        let v = from_json(&json!({"a": [10, 20], "1": "one"}));
        assert_eq!(
            lookup(&lookup(&v, &Value::from("a")), &Value::from("1")),
            Value::from(20)
        );
        assert_eq!(lookup(&v, &Value::from(1)), Value::from("one"));
        assert!(lookup(&v, &Value::from("zz")).is_undefined());
        assert!(lookup(&Value::from(()), &Value::from("zz")).is_undefined());
    }
}
