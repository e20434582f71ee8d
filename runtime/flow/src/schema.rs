//! The property schema language of the type registry.
//!
//! Every task, trigger, condition, input, retry and SLA type describes its properties with a
//! [`Schema`]. Core types are declared in Rust (`core_types`); types provided by WASM plugins
//! describe themselves with JSON Schema, which [`Schema::from_json_schema`] converts, so both kinds
//! are checked by the same code with the same error messages.

use std::sync::Arc;

use serde_json::Value as Json;

/// What a string must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringFormat {
    /// Anything.
    Any,
    /// An ISO-8601 duration (`PT15M`).
    Duration,
    /// A cron expression (5 fields, or 6 with seconds) or a nickname such as `@daily`.
    Cron,
    /// An id: `^[a-zA-Z0-9][a-zA-Z0-9._-]*$`.
    Id,
    /// A namespace: dot-separated ids.
    Namespace,
    /// A regular expression.
    Regex,
}

/// The categories of typed objects looked up by their `type` property in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Tasks (flowable and runnable).
    Task,
    /// Triggers.
    Trigger,
    /// Trigger conditions.
    Condition,
    /// Flow inputs (`STRING`, `INT`, ...).
    Input,
    /// Retry policies (`constant`, `exponential`, `random`).
    Retry,
    /// SLA definitions (`MAX_DURATION`, `EXECUTION_ASSERTION`).
    Sla,
}

impl Category {
    /// The name used in messages.
    pub fn noun(&self) -> &'static str {
        match self {
            Category::Task => "task",
            Category::Trigger => "trigger",
            Category::Condition => "condition",
            Category::Input => "input",
            Category::Retry => "retry",
            Category::Sla => "SLA",
        }
    }
}

/// The schema of a value.
#[derive(Debug, Clone)]
pub enum Schema {
    /// Any value.
    Any,
    /// A string (numbers and booleans are accepted and read as text, as Kestra does).
    String(StringFormat),
    /// An integer, with optional bounds.
    Integer {
        /// Smallest allowed value.
        min: Option<i64>,
        /// Largest allowed value.
        max: Option<i64>,
    },
    /// A number.
    Number,
    /// A boolean.
    Boolean,
    /// One of these strings.
    Enum(Vec<String>),
    /// A list of items.
    Array(Box<Schema>),
    /// A map with any keys and values of one schema.
    Map(Box<Schema>),
    /// An object with known properties.
    Object(Arc<ObjectSchema>),
    /// The first schema that accepts the value.
    OneOf(Vec<Schema>),
    /// An object whose `type` names a type of a category in the registry.
    Typed(Category),
    /// Labels: a map of strings, or a list of `{key, value}`.
    Labels,
}

/// The properties of an object.
#[derive(Debug, Clone, Default)]
pub struct ObjectSchema {
    /// Known properties, in declaration order.
    pub props: Vec<Prop>,
    /// Schema of properties not listed; `None` rejects them.
    pub additional: Option<Box<Schema>>,
}

/// One property of an object.
#[derive(Debug, Clone)]
pub struct Prop {
    /// Its name.
    pub name: String,
    /// Its schema.
    pub schema: Schema,
    /// Whether it must be present (and not null).
    pub required: bool,
    /// Whether a list or map must not be empty.
    pub non_empty: bool,
    /// Whether strings in it are rendered as expressions (checked at validation).
    pub rendered: bool,
    /// A deprecation note: using it is a warning.
    pub deprecated: Option<String>,
    /// Human description (from the plugin's schema, shown by `weft plugins describe`).
    pub description: Option<String>,
}

impl Prop {
    /// An optional property.
    pub fn new(name: &str, schema: Schema) -> Self {
        Prop {
            name: name.to_string(),
            schema,
            required: false,
            non_empty: false,
            rendered: true,
            deprecated: None,
            description: None,
        }
    }

    /// Makes it required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// A list or map that must not be empty.
    pub fn non_empty(mut self) -> Self {
        self.non_empty = true;
        self
    }

    /// Its strings are never rendered (descriptions, ids).
    pub fn literal(mut self) -> Self {
        self.rendered = false;
        self
    }

    /// Marks it deprecated, with what to use instead.
    pub fn deprecated(mut self, note: &str) -> Self {
        self.deprecated = Some(note.to_string());
        self
    }
}

impl Schema {
    /// Any string.
    pub fn string() -> Self {
        Schema::String(StringFormat::Any)
    }
    /// An ISO-8601 duration.
    pub fn duration() -> Self {
        Schema::String(StringFormat::Duration)
    }
    /// An integer.
    pub fn int() -> Self {
        Schema::Integer {
            min: None,
            max: None,
        }
    }
    /// An integer of at least `min`.
    pub fn int_min(min: i64) -> Self {
        Schema::Integer {
            min: Some(min),
            max: None,
        }
    }
    /// A boolean.
    pub fn bool() -> Self {
        Schema::Boolean
    }
    /// One of these strings.
    pub fn one_of_values(values: &[&str]) -> Self {
        Schema::Enum(values.iter().map(|s| s.to_string()).collect())
    }
    /// A list.
    pub fn array(item: Schema) -> Self {
        Schema::Array(Box::new(item))
    }
    /// A map of values.
    pub fn map(value: Schema) -> Self {
        Schema::Map(Box::new(value))
    }
    /// A list of tasks.
    pub fn tasks() -> Self {
        Schema::array(Schema::Typed(Category::Task))
    }
    /// An object of these properties (others rejected).
    pub fn object(props: Vec<Prop>) -> Self {
        Schema::Object(Arc::new(ObjectSchema {
            props,
            additional: None,
        }))
    }

    /// Converts the JSON Schema a plugin describes its properties with.
    ///
    /// Supported: `type` (one or a list), `properties`, `required`, `additionalProperties`,
    /// `items`, `enum`, `oneOf`/`anyOf`, `minimum`/`maximum`, `format: duration`, `deprecated`,
    /// `description`. Anything else is accepted as [`Schema::Any`]: the plugin validates it at run
    /// time.
    pub fn from_json_schema(js: &Json) -> Schema {
        let Some(obj) = js.as_object() else {
            return Schema::Any;
        };
        if let Some(values) = obj.get("enum").and_then(Json::as_array) {
            return Schema::Enum(
                values
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect(),
            );
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = obj.get(key).and_then(Json::as_array) {
                return Schema::OneOf(alts.iter().map(Schema::from_json_schema).collect());
            }
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Json::String(t)) => vec![t.as_str()],
            Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
            _ if obj.contains_key("properties") => vec!["object"],
            _ => vec![],
        };
        let non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        match non_null.as_slice() {
            [] => Schema::Any,
            [one] => Self::from_json_type(one, obj),
            many => Schema::OneOf(many.iter().map(|t| Self::from_json_type(t, obj)).collect()),
        }
    }

    fn from_json_type(ty: &str, obj: &serde_json::Map<String, Json>) -> Schema {
        let int_bound = |k: &str| obj.get(k).and_then(Json::as_i64);
        match ty {
            "string" => match obj.get("format").and_then(Json::as_str) {
                Some("duration") => Schema::duration(),
                Some("cron") => Schema::String(StringFormat::Cron),
                Some("regex") => Schema::String(StringFormat::Regex),
                _ => Schema::string(),
            },
            "integer" => Schema::Integer {
                min: int_bound("minimum"),
                max: int_bound("maximum"),
            },
            "number" => Schema::Number,
            "boolean" => Schema::Boolean,
            "array" => Schema::array(
                obj.get("items")
                    .map_or(Schema::Any, Schema::from_json_schema),
            ),
            "object" => {
                let Some(props) = obj.get("properties").and_then(Json::as_object) else {
                    return match obj.get("additionalProperties") {
                        Some(Json::Object(_)) => Schema::map(
                            obj.get("additionalProperties")
                                .map_or(Schema::Any, Schema::from_json_schema),
                        ),
                        _ => Schema::map(Schema::Any),
                    };
                };
                let required: Vec<&str> = obj
                    .get("required")
                    .and_then(Json::as_array)
                    .map(|r| r.iter().filter_map(Json::as_str).collect())
                    .unwrap_or_default();
                let props = props
                    .iter()
                    .map(|(name, js)| {
                        let mut p = Prop::new(name, Schema::from_json_schema(js));
                        p.required = required.contains(&name.as_str());
                        p.description = js
                            .get("description")
                            .and_then(Json::as_str)
                            .map(str::to_string);
                        if js.get("deprecated").and_then(Json::as_bool) == Some(true) {
                            p.deprecated = Some("deprecated by its plugin".into());
                        }
                        p
                    })
                    .collect();
                let additional = match obj.get("additionalProperties") {
                    Some(Json::Bool(true)) => Some(Box::new(Schema::Any)),
                    Some(js @ Json::Object(_)) => Some(Box::new(Schema::from_json_schema(js))),
                    _ => None,
                };
                Schema::Object(Arc::new(ObjectSchema { props, additional }))
            }
            _ => Schema::Any,
        }
    }
}

impl ObjectSchema {
    /// The property called `name`.
    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_plugin_json_schema() {
        let js = serde_json::json!({
            "type": "object",
            "properties": {
                "format": {"type": "string", "description": "what to return"},
                "count": {"type": "integer", "minimum": 1},
                "level": {"enum": ["INFO", "WARN"]},
                "message": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
            },
            "required": ["format"]
        });
        let Schema::Object(o) = Schema::from_json_schema(&js) else {
            panic!("object expected")
        };
        let format = o.prop("format").unwrap();
        assert!(format.required);
        assert_eq!(format.description.as_deref(), Some("what to return"));
        assert!(matches!(
            o.prop("count").unwrap().schema,
            Schema::Integer {
                min: Some(1),
                max: None
            }
        ));
        assert!(matches!(o.prop("level").unwrap().schema, Schema::Enum(_)));
        assert!(matches!(
            o.prop("message").unwrap().schema,
            Schema::OneOf(_)
        ));
        assert!(o.additional.is_none());
    }
}
