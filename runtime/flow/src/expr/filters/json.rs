//! JSON and YAML filters: `toJson`/`json`, `fromJson`, `yaml`, and `jq` (on the jaq crates;
//! like Kestra it returns the list of all results).

use super::super::args::{bind, err};
use super::super::value::{from_json, to_json};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use minijinja::value::{Kwargs, Rest, Value};
use minijinja::{Environment, Error};

/// Registers the JSON filters.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("toJson", |v: Value| to_json(&v).to_string());
    env.add_filter("json", |v: Value| to_json(&v).to_string());
    env.add_filter("fromJson", |v: Value| -> Result<Value, Error> {
        match v.as_str() {
            Some(s) => serde_json::from_str::<serde_json::Value>(s)
                .map(|j| from_json(&j))
                .map_err(|e| err(format!("fromJson: invalid JSON: {e}"))),
            None => Ok(v),
        }
    });
    env.add_filter("yaml", |v: Value| -> Result<String, Error> {
        serde_yaml::to_string(&to_json(&v)).map_err(|e| err(format!("yaml: {e}")))
    });
    env.add_filter(
        "jq",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<Value, Error> {
            let b = bind("jq", &["expression"], &a, &k)?;
            let code = b.req_str(0)?;
            let input = match v.as_str() {
                // Kestra parses a string input as JSON when it can
                Some(s) => serde_json::from_str(s)
                    .unwrap_or_else(|_| serde_json::Value::String(s.to_string())),
                None => to_json(&v),
            };
            let out = jq(&code, &input).map_err(err)?;
            Ok(Value::from(out.iter().map(from_json).collect::<Vec<_>>()))
        },
    );
}

/// Runs a jq program on a JSON value; all its results.
pub(crate) fn jq(code: &str, input: &serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code, path: () })
        .map_err(|e| format!("jq: cannot parse `{code}`: {e:?}"))?;
    let filter = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|e| format!("jq: cannot compile `{code}`: {e:?}"))?;
    let text = input.to_string();
    let val = jaq_json::read::parse_single(text.as_bytes())
        .map_err(|e| format!("jq: bad input: {e:?}"))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut out = Vec::new();
    for r in filter.id.run((ctx, val)).map(unwrap_valr) {
        let v = r.map_err(|e| format!("jq: `{code}` failed: {e}"))?;
        let s = v.to_string();
        out.push(serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)));
    }
    Ok(out)
}
