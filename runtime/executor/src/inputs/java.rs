//! Values printed as Java prints them, since Kestra's messages embed `toString()` output.

use chrono::{DateTime, NaiveTime, SecondsFormat, Timelike, Utc};
use serde_json::Value as Json;

/// Java's `Float.toString`: `0.1`, `42.42`, `1.0`, `1.0E7`, `1.5E-5`.
pub(crate) fn float(f: f32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

/// A 32-bit float as the JSON number Jackson writes for it (`42.42`, not `42.41999816894531`).
pub(crate) fn float_json(f: f32) -> Option<Json> {
    let shortest = format!("{f}");
    let wide: f64 = shortest.parse().ok()?;
    serde_json::Number::from_f64(wide).map(Json::Number)
}

/// Java's `Instant.toString`: UTC, `Z`, fractions in groups of 3 digits.
pub(crate) fn instant(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn fraction_grouped(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

/// Java's `LocalTime.toString`: `01:00`, `11:59:59`, `10:15:30.123`.
pub(crate) fn local_time(t: &NaiveTime) -> String {
    let nanos = t.nanosecond() % 1_000_000_000;
    let mut s = format!("{:02}:{:02}", t.hour(), t.minute());
    if t.second() != 0 || nanos != 0 {
        s.push_str(&format!(":{:02}", t.second()));
        s.push_str(&fraction_grouped(nanos));
    }
    s
}

/// A time as stored in typed inputs: `HH:mm:ss` with the fraction when there is one.
pub(crate) fn iso_time(t: &NaiveTime) -> String {
    let nanos = t.nanosecond() % 1_000_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s
}

/// Java's `toString` of a value: strings bare, lists `[a, b]`, maps `{k=v}`.
pub(crate) fn to_string(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::String(s) => s.clone(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::Array(items) => list(items.iter().map(to_string)),
        Json::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", to_string(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Java's `List.toString`: `[a, b]`.
pub(crate) fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}
