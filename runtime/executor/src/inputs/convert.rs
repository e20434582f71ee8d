//! Raw values to typed values, type by type (Kestra's `FlowInputOutput.parseType`).
//!
//! Every function takes a JSON value: a string as a user sends it, or an already typed value
//! (defaults written in YAML, values passed by a Subflow task). Errors are the message part of
//! Kestra's `Invalid input for `id`, <message>, but received `value``.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use regex::Regex;
use serde_json::Value as Json;

use super::java;
use super::kind::InputKind;

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static DATE: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"^[+-]?\d{4,9}-\d{2}-\d{2}$"));
static TIME: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$"));
static DATETIME_NO_SECONDS: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(Z|[+-]\d{2}:\d{2})$"));
static URI: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#@]*@?[^\s/?#]+(?:[/?#]\S*)?$"));
static SCHEME: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$"));
static EMAIL: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^$|^[a-zA-Z0-9_!#$%&’*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$"));

fn is_match(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(s))
}

/// `Expected `TYPE` but received `value``: the message of a value that is not of its type.
pub(crate) fn expected(kind: InputKind, v: &Json) -> String {
    format!("Expected `{kind}` but received `{}`", java::to_string(v))
}

fn expected_because(kind: InputKind, v: &Json, why: impl std::fmt::Display) -> String {
    format!("{}: {why}", expected(kind, v))
}

/// The text of a scalar (strings bare, other values as JSON).
fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An ISO-8601 instant (`2019-10-06T18:27:49Z`, offsets accepted and moved to UTC).
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let caps = DATETIME_NO_SECONDS.as_ref()?.captures(s)?;
    let full = format!("{}:00{}", caps.get(1)?.as_str(), caps.get(2)?.as_str());
    DateTime::parse_from_rfc3339(&full)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An ISO-8601 local date (`2019-10-06`).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    if !is_match(&DATE, s) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A local time as Java's `LocalTime.parse` reads it (`18:27`, `18:27:49`, `18:27:49.5`).
pub(crate) fn parse_time(s: &str) -> Option<NaiveTime> {
    let caps = TIME.as_ref()?.captures(s)?;
    let num = |i: usize| {
        caps.get(i)
            .map_or(Some(0), |m| m.as_str().parse::<u32>().ok())
    };
    let nanos = match caps.get(4) {
        Some(m) => format!("{:0<9}", m.as_str()).parse::<u32>().ok()?,
        None => 0,
    };
    NaiveTime::from_hms_nano_opt(num(1)?, num(2)?, num(3)?, nanos)
}

/// A 32-bit float from a value, as Java's `Float.valueOf(toString())`.
pub(crate) fn parse_float(v: &Json) -> Option<f32> {
    let s = text(v);
    let s = s.trim_end_matches(['f', 'F', 'd', 'D']);
    let f: f32 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// A 64-bit integer from a value.
pub(crate) fn parse_int(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Converts a present (non-null) value to `kind`. `item` is the `itemType` of ARRAY and
/// MULTISELECT inputs. SECRET values come back as plain strings: they are wrapped after
/// validation.
pub(crate) fn convert(kind: InputKind, item: Option<InputKind>, v: &Json) -> Result<Json, String> {
    match kind {
        InputKind::String
        | InputKind::Select
        | InputKind::Enum
        | InputKind::Email
        | InputKind::Secret => Ok(Json::String(text(v))),
        InputKind::Int => parse_int(v)
            .map(Json::from)
            .ok_or_else(|| expected(kind, v)),
        InputKind::Float => parse_float(v)
            .and_then(java::float_json)
            .ok_or_else(|| expected(kind, v)),
        InputKind::Boolean | InputKind::Bool => match v {
            Json::Bool(b) => Ok(Json::Bool(*b)),
            Json::String(s) if s.eq_ignore_ascii_case("true") => Ok(Json::Bool(true)),
            Json::String(s) if s.eq_ignore_ascii_case("false") => Ok(Json::Bool(false)),
            _ => Err(expected(kind, v)),
        },
        InputKind::DateTime => parse_instant(&text(v))
            .map(|t| Json::String(java::instant(&t)))
            .ok_or_else(|| expected(kind, v)),
        InputKind::Date => parse_date(&text(v))
            .map(|d| Json::String(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| expected(kind, v)),
        InputKind::Time => parse_time(&text(v))
            .map(|t| Json::String(java::iso_time(&t)))
            .ok_or_else(|| expected(kind, v)),
        InputKind::Duration => weft_flow::duration::parse(&text(v))
            .map(|d| Json::String(d.to_string()))
            .map_err(|_| expected(kind, v)),
        InputKind::File => {
            let s = text(v).replace('\\', "/");
            if is_match(&SCHEME, &s) {
                Ok(Json::String(s))
            } else {
                Err(expected_because(
                    kind,
                    v,
                    "a FILE input takes an uploaded file or a storage URI such as `kestra:///...`",
                ))
            }
        }
        InputKind::Json => match v {
            Json::String(s) => serde_json::from_str(s).map_err(|e| expected_because(kind, v, e)),
            other => Ok(other.clone()),
        },
        InputKind::Yaml => match v {
            Json::String(s) => {
                serde_yaml::from_str::<Json>(s).map_err(|e| expected_because(kind, v, e))
            }
            other => Ok(other.clone()),
        },
        InputKind::Uri => {
            let s = text(v);
            if is_match(&URI, &s) {
                Ok(Json::String(s))
            } else {
                Err(expected(kind, v))
            }
        }
        InputKind::Array => convert_items(item, list(kind, v, false)?),
        InputKind::MultiSelect => convert_items(
            Some(item.unwrap_or(InputKind::String)),
            list(kind, v, true)?,
        ),
    }
}

/// The items of an ARRAY or MULTISELECT value: a list, or a JSON array in a string
/// (MULTISELECT also takes `a,b,c`).
fn list(kind: InputKind, v: &Json, comma_separated: bool) -> Result<Vec<Json>, String> {
    match v {
        Json::Array(items) => Ok(items.clone()),
        Json::String(s) => match serde_json::from_str::<Json>(s) {
            Ok(Json::Array(items)) => Ok(items),
            _ if comma_separated && !s.trim_start().starts_with('[') => Ok(s
                .split(',')
                .map(|p| Json::String(p.trim().to_string()))
                .filter(|p| p.as_str().is_some_and(|p| !p.is_empty()))
                .collect()),
            Ok(_) => Err(expected_because(kind, v, "not a JSON array")),
            Err(e) => Err(expected_because(kind, v, e)),
        },
        _ => Err(expected(kind, v)),
    }
}

fn convert_items(item: Option<InputKind>, items: Vec<Json>) -> Result<Json, String> {
    let Some(item) = item else {
        return Ok(Json::Array(items));
    };
    items
        .iter()
        .map(|element| {
            if element.is_null() {
                return Ok(Json::Null);
            }
            convert(item, None, element).map_err(|_| {
                format!(
                    "Unable to parse array element as `{item}` on `{}`",
                    java::to_string(element)
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Json::Array)
}

/// Whether `s` is a valid email address for an EMAIL input.
pub(crate) fn is_email(s: &str) -> bool {
    is_match(&EMAIL, s)
}
