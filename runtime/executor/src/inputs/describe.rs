//! What an input expects, in words (for `weft run --input` help and API errors).

use serde_json::Value as Json;
use weft_flow::model::Input;

use super::java;
use super::kind::InputKind;
use super::validate::allows_custom_value;

fn prop(input: &Input, key: &str) -> Option<String> {
    match input.properties.get(key)? {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn range(input: &Input, lo: &str, hi: &str, lo_word: &str, hi_word: &str) -> String {
    match (prop(input, lo), prop(input, hi)) {
        (Some(a), Some(b)) => format!(" between {a} and {b}"),
        (Some(a), None) => format!(" {lo_word} {a}"),
        (None, Some(b)) => format!(" {hi_word} {b}"),
        (None, None) => String::new(),
    }
}

fn values(input: &Input) -> String {
    match input
        .properties
        .get("values")
        .or_else(|| input.properties.get("options"))
    {
        Some(Json::Array(items)) => java::list(items.iter().map(java::to_string)),
        Some(Json::String(expr)) => format!("the values of `{expr}`"),
        _ => match prop(input, "expression") {
            Some(expr) => format!("the values of `{expr}`"),
            None => "[]".into(),
        },
    }
}

/// What a value of this kind looks like.
pub fn describe_kind(kind: InputKind) -> &'static str {
    match kind {
        InputKind::String => "a string",
        InputKind::Int => "an integer (e.g. 42)",
        InputKind::Float => "a number (e.g. 4.2)",
        InputKind::Boolean | InputKind::Bool => "`true` or `false`",
        InputKind::DateTime => "an ISO-8601 date-time with a zone (e.g. 2024-01-31T18:27:49Z)",
        InputKind::Date => "an ISO-8601 date (e.g. 2024-01-31)",
        InputKind::Time => "a time (e.g. 18:27:49)",
        InputKind::Duration => "an ISO-8601 duration (e.g. PT5M or PT1H30M)",
        InputKind::File => "a file (upload one, or give a storage URI such as kestra:///...)",
        InputKind::Json => "a JSON document",
        InputKind::Yaml => "a YAML document",
        InputKind::Uri => "an absolute URI (e.g. https://example.com/path)",
        InputKind::Secret => "a secret string (never printed)",
        InputKind::Array => "a JSON array",
        InputKind::Select | InputKind::Enum => "one of the listed values",
        InputKind::MultiSelect => "a JSON array of the listed values",
        InputKind::Email => "an email address",
    }
}

/// What `input` expects, e.g. `an integer (e.g. 42) between 10 and 20; optional` or
/// `one of [A, B]; required`.
pub fn describe(input: &Input) -> String {
    let Some(kind) = InputKind::parse(&input.type_name) else {
        return format!("a value of the unknown type `{}`", input.type_name);
    };
    let mut s = match kind {
        InputKind::String | InputKind::Secret => {
            let mut s = describe_kind(kind).to_string();
            if let Some(p) = prop(input, "validator") {
                s.push_str(&format!(" matching `{p}`"));
            }
            s
        }
        InputKind::Int | InputKind::Float | InputKind::Duration => format!(
            "{}{}",
            describe_kind(kind),
            range(input, "min", "max", "of at least", "of at most")
        ),
        InputKind::Date | InputKind::DateTime | InputKind::Time => format!(
            "{}{}",
            describe_kind(kind),
            match (prop(input, "after"), prop(input, "before")) {
                (Some(a), Some(b)) => format!(" from {a} to {b}"),
                (Some(a), None) => format!(" not before {a}"),
                (None, Some(b)) => format!(" not after {b}"),
                (None, None) => String::new(),
            }
        ),
        InputKind::Array => {
            let item = prop(input, "itemType").and_then(|t| InputKind::parse(&t));
            match item {
                Some(item) => format!("a JSON array of {}", describe_kind(item)),
                None => describe_kind(kind).to_string(),
            }
        }
        InputKind::Select | InputKind::Enum => {
            let mut s = format!("one of {}", values(input));
            if kind == InputKind::Select && allows_custom_value(input) {
                s.push_str(" (or any other value)");
            }
            s
        }
        InputKind::MultiSelect => {
            let mut s = format!("a JSON array of values among {}", values(input));
            if allows_custom_value(input) {
                s.push_str(" (or any other value)");
            }
            s
        }
        _ => describe_kind(kind).to_string(),
    };
    match &input.defaults {
        Some(d) => s.push_str(&format!("; default `{}`", java::to_string(d))),
        None if input.required => s.push_str("; required"),
        None => s.push_str("; optional"),
    }
    if input.depends_on.is_some() {
        s.push_str("; asked only when the inputs it depends on allow it");
    }
    s
}
