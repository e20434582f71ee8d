//! Constraints of typed values (Kestra's `Input.validate`): `validator`, `min`/`max`,
//! `after`/`before`, `values`. Messages are Kestra's, including its capital `It` for durations.

use regex::Regex;
use serde_json::Value as Json;
use weft_flow::model::Input;

use super::convert::{parse_date, parse_float, parse_instant, parse_int, parse_time};
use super::java;
use super::kind::InputKind;

/// A property as text (YAML may hold `after: 2023-01-01` as a string or `min: 10` as a number).
fn prop_text(input: &Input, key: &str) -> Option<String> {
    match input.properties.get(key)? {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Whether `allowCustomValue` (or the older `allowInput`) is set.
pub(crate) fn allows_custom_value(input: &Input) -> bool {
    ["allowCustomValue", "allowInput"]
        .iter()
        .any(|k| input.properties.get(*k).and_then(Json::as_bool) == Some(true))
}

/// A definition error: a constraint of the flow that cannot be read.
fn bad_bound(key: &str, value: &str, kind: InputKind) -> String {
    format!("the input definition is invalid: `{key}` `{value}` is not a valid {kind}")
}

/// Checks a typed value. `values` are the allowed values of SELECT, ENUM and MULTISELECT
/// inputs (already rendered when they come from an expression).
pub(crate) fn validate(
    input: &Input,
    kind: InputKind,
    typed: &Json,
    values: Option<&[String]>,
) -> Result<(), String> {
    match kind {
        InputKind::String | InputKind::Secret => {
            let (Some(pattern), Some(s)) = (prop_text(input, "validator"), typed.as_str()) else {
                return Ok(());
            };
            let re = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("the input definition is invalid: `validator` {e}"))?;
            if re.is_match(s) {
                Ok(())
            } else {
                Err(format!("it must match the pattern `{pattern}`"))
            }
        }
        InputKind::Int => {
            let Some(v) = typed.as_i64() else {
                return Ok(());
            };
            for (key, word) in [("min", "more"), ("max", "less")] {
                if let Some(b) = prop_text(input, key) {
                    let bound = parse_int(&Json::String(b.clone()))
                        .ok_or_else(|| bad_bound(key, &b, kind))?;
                    if (key == "min" && v < bound) || (key == "max" && v > bound) {
                        return Err(format!("it must be {word} than `{bound}`"));
                    }
                }
            }
            Ok(())
        }
        InputKind::Float => {
            let Some(v) = parse_float(typed) else {
                return Ok(());
            };
            for (key, word) in [("min", "more"), ("max", "less")] {
                if let Some(b) = prop_text(input, key) {
                    let bound = parse_float(&Json::String(b.clone()))
                        .ok_or_else(|| bad_bound(key, &b, kind))?;
                    if (key == "min" && v < bound) || (key == "max" && v > bound) {
                        return Err(format!("it must be {word} than `{}`", java::float(bound)));
                    }
                }
            }
            Ok(())
        }
        InputKind::Duration => {
            let Some(v) = typed
                .as_str()
                .and_then(|s| weft_flow::duration::parse(s).ok())
            else {
                return Ok(());
            };
            for (key, word) in [("min", "more"), ("max", "less")] {
                if let Some(b) = prop_text(input, key) {
                    let bound =
                        weft_flow::duration::parse(&b).map_err(|_| bad_bound(key, &b, kind))?;
                    if (key == "min" && v < bound) || (key == "max" && v > bound) {
                        return Err(format!("It must be {word} than `{bound}`"));
                    }
                }
            }
            Ok(())
        }
        InputKind::DateTime => {
            let Some(v) = typed.as_str().and_then(parse_instant) else {
                return Ok(());
            };
            dated(input, kind, &v, parse_instant, java::instant)
        }
        InputKind::Date => {
            let Some(v) = typed.as_str().and_then(parse_date) else {
                return Ok(());
            };
            dated(input, kind, &v, parse_date, |d| {
                d.format("%Y-%m-%d").to_string()
            })
        }
        InputKind::Time => {
            let Some(v) = typed.as_str().and_then(parse_time) else {
                return Ok(());
            };
            dated(input, kind, &v, parse_time, java::local_time)
        }
        InputKind::Email => match typed.as_str() {
            Some(s) if !super::convert::is_email(s) => {
                Err("The input must be a valid email".into())
            }
            _ => Ok(()),
        },
        InputKind::Select | InputKind::Enum => {
            let (Some(values), Some(s)) = (values, typed.as_str()) else {
                return Ok(());
            };
            if values.iter().any(|v| v == s)
                || (kind == InputKind::Select && allows_custom_value(input))
            {
                Ok(())
            } else {
                Err(format!(
                    "it must match the values `{}`",
                    java::list(values.iter().cloned())
                ))
            }
        }
        InputKind::MultiSelect => {
            let (Some(values), Some(items)) = (values, typed.as_array()) else {
                return Ok(());
            };
            if allows_custom_value(input) {
                return Ok(());
            }
            for item in items {
                let s = java::to_string(item);
                if !values.contains(&s) {
                    return Err(format!(
                        "it must match the values `{}`",
                        java::list(values.iter().cloned())
                    ));
                }
            }
            Ok(())
        }
        InputKind::Bool
        | InputKind::Boolean
        | InputKind::File
        | InputKind::Json
        | InputKind::Yaml
        | InputKind::Uri
        | InputKind::Array => Ok(()),
    }
}

/// `after` / `before` of DATE, DATETIME and TIME inputs (both bounds inclusive, as Java's
/// `isBefore` / `isAfter`).
fn dated<T: PartialOrd>(
    input: &Input,
    kind: InputKind,
    v: &T,
    parse: fn(&str) -> Option<T>,
    show: impl Fn(&T) -> String,
) -> Result<(), String> {
    if let Some(b) = prop_text(input, "after") {
        let bound = parse(&b).ok_or_else(|| bad_bound("after", &b, kind))?;
        if *v < bound {
            return Err(format!("it must be after `{}`", show(&bound)));
        }
    }
    if let Some(b) = prop_text(input, "before") {
        let bound = parse(&b).ok_or_else(|| bad_bound("before", &b, kind))?;
        if *v > bound {
            return Err(format!("it must be before `{}`", show(&bound)));
        }
    }
    Ok(())
}
