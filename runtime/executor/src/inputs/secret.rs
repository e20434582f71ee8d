//! SECRET inputs.
//!
//! Kestra stores a SECRET input encrypted in the execution and decrypts it when it renders task
//! properties. weft's executor is pure and holds no key, so a typed SECRET value is a marked
//! object instead of a bare string:
//!
//! ```json
//! {"type": "weft.datatype:secret", "value": "the plain text"}
//! ```
//!
//! The marker keeps the value out of anything printed ([`mask_secrets`] for logs, CLI output and
//! API answers), and [`reveal_secrets`] turns it back into the plain string where expressions
//! are rendered (`{{ inputs.password }}` gives the plain text, as in Kestra). Encryption at rest
//! is the store's concern.

use serde_json::{Map, Value as Json};

/// The `type` of a marked secret value.
pub const SECRET_TYPE: &str = "weft.datatype:secret";

/// What [`mask_secrets`] prints instead of a secret.
pub const SECRET_MASK: &str = "******";

/// A marked secret holding `plain`.
pub fn seal(plain: &str) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), Json::String(SECRET_TYPE.into()));
    m.insert("value".into(), Json::String(plain.into()));
    Json::Object(m)
}

/// The plain text of a marked secret, or `None` when `v` is not one.
pub fn secret_value(v: &Json) -> Option<&str> {
    let m = v.as_object()?;
    if m.len() == 2 && m.get("type").and_then(Json::as_str) == Some(SECRET_TYPE) {
        m.get("value").and_then(Json::as_str)
    } else {
        None
    }
}

/// Whether `v` is a marked secret.
pub fn is_secret(v: &Json) -> bool {
    secret_value(v).is_some()
}

fn map_secrets(v: &Json, f: &dyn Fn(&str) -> Json) -> Json {
    if let Some(plain) = secret_value(v) {
        return f(plain);
    }
    match v {
        Json::Array(items) => Json::Array(items.iter().map(|x| map_secrets(x, f)).collect()),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), map_secrets(x, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `v` with every marked secret replaced by its plain text: what expressions see.
pub fn reveal_secrets(v: &Json) -> Json {
    map_secrets(v, &|plain| Json::String(plain.to_string()))
}

/// `v` with every marked secret replaced by `******`: what is printed.
pub fn mask_secrets(v: &Json) -> Json {
    map_secrets(v, &|_| Json::String(SECRET_MASK.to_string()))
}
