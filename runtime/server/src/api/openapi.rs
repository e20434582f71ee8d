//! The OpenAPI 3.1 document of the API (`openapi.yaml` beside this file, written by hand),
//! served at `GET /api/v1/openapi.yaml` and, converted, `GET /api/v1/openapi.json`. A test
//! compares its paths and methods with the routes the router serves ([`super::protected_routes`],
//! [`super::public_routes`]), both ways.

use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The document, as written.
pub(crate) const DOCUMENT: &str = include_str!("openapi.yaml");

/// The document as JSON, converted once.
static JSON: LazyLock<Result<String, String>> = LazyLock::new(|| {
    serde_yaml::from_str::<serde_json::Value>(DOCUMENT)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::to_string(&v).map_err(|e| e.to_string()))
});

/// `GET /api/v1/openapi.yaml`.
pub(crate) async fn yaml() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/yaml")],
        DOCUMENT,
    )
        .into_response()
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn json() -> Response {
    match &*JSON {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            text.clone(),
        )
            .into_response(),
        Err(e) => ApiError::internal(format!("the OpenAPI document is not valid YAML: {e}"))
            .into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::super::{protected_routes, public_routes};
    use super::*;

    /// The methods an OpenAPI path item may have.
    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn document() -> Value {
        serde_yaml::from_str(DOCUMENT).unwrap()
    }

    /// A path with its parameters' names left out (`/flows/{namespace}` -> `/flows/{}`): the
    /// router and the document may name a parameter differently.
    fn shape(path: &str) -> String {
        path.split('/')
            .map(|seg| {
                if seg.starts_with('{') && seg.ends_with('}') {
                    "{}"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The names of the parameters of a path template, in order.
    fn template_params(path: &str) -> Vec<String> {
        path.split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect()
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'d>(doc: &'d Value, v: &'d Value) -> &'d Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').unwrap();
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("unresolved $ref {r}"))
            }
            None => v,
        }
    }

    /// `(method, path shape, public)` of every route the router serves.
    fn served() -> BTreeSet<(String, String, bool)> {
        let mut out = BTreeSet::new();
        for (routes, public) in [(protected_routes(), false), (public_routes(), true)] {
            for (verb, path) in routes.served() {
                let fresh = out.insert((verb.openapi_name().to_string(), shape(path), public));
                assert!(fresh, "{verb:?} {path} is registered twice");
            }
        }
        out
    }

    /// `(method, path shape, public)` of every operation of the document; an operation is
    /// public when its `security` is `[]`.
    fn documented(doc: &Value) -> BTreeSet<(String, String, bool)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (key, op) in item.as_object().unwrap() {
                if !METHODS.contains(&key.as_str()) {
                    continue;
                }
                let public = op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty);
                let fresh = out.insert((key.clone(), shape(path), public));
                assert!(fresh, "{key} {path} is documented twice");
            }
        }
        out
    }

    #[test]
    fn openapi_document_and_router_list_the_same_operations() {
        let doc = document();
        let served = served();
        let documented = documented(&doc);
        let describe = |set: Vec<&(String, String, bool)>| {
            set.iter()
                .map(|(m, p, public)| {
                    let auth = if *public { "no auth" } else { "auth" };
                    format!("  {} {p} ({auth})", m.to_uppercase())
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "runtime/server/src/api/openapi.yaml and the router (api/mod.rs) disagree \
             (a public route is documented with `security: []`)\n\
             served but not documented:\n{}\ndocumented but not served:\n{}",
            describe(undocumented),
            describe(unserved),
        );
    }

    #[test]
    fn openapi_document_declares_every_path_parameter() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let want: BTreeSet<String> = template_params(path).into_iter().collect();
            let shared = item.get("parameters").and_then(Value::as_array);
            for (key, op) in item.as_object().unwrap() {
                if !METHODS.contains(&key.as_str()) {
                    continue;
                }
                let own = op.get("parameters").and_then(Value::as_array);
                let declared: BTreeSet<String> = shared
                    .into_iter()
                    .chain(own)
                    .flatten()
                    .map(|p| resolve(&doc, p))
                    .filter(|p| p["in"] == "path")
                    .map(|p| {
                        assert_eq!(p["required"], true, "{key} {path}: {p}");
                        p["name"].as_str().unwrap().to_string()
                    })
                    .collect();
                assert_eq!(declared, want, "path parameters of {key} {path}");
                assert!(
                    op.get("responses").and_then(Value::as_object).is_some(),
                    "{key} {path} has no responses"
                );
            }
        }
    }

    #[test]
    fn openapi_document_is_3_1_and_its_refs_resolve() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        fn walk(doc: &Value, v: &Value) {
            match v {
                Value::Object(map) => {
                    if map.contains_key("$ref") {
                        resolve(doc, v);
                    }
                    map.values().for_each(|x| walk(doc, x));
                }
                Value::Array(items) => items.iter().for_each(|x| walk(doc, x)),
                _ => {}
            }
        }
        walk(&doc, &doc);
        // every security scheme used is defined
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        for requirement in doc["security"].as_array().unwrap() {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "security scheme {name}");
            }
        }
        // the JSON served is the same document
        let served: Value = serde_json::from_str(JSON.as_ref().unwrap()).unwrap();
        assert_eq!(served, doc);
    }
}
