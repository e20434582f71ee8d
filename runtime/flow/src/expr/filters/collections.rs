//! Filters on lists, maps and numbers: `first`, `last`, `join`, `keys`, `values`, `sort`,
//! `rsort`, `reverse`, `slice`, `merge`, `chunk`, `flatten`, `distinct`, `length`, `default`,
//! `abs`, `number`.

use super::super::args::{bind, err, to_f64};
use super::super::value::display;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error};
use std::cmp::Ordering;

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => Ok(Vec::new()),
        ValueKind::Seq | ValueKind::Iterable => Ok(v.try_iter()?.collect()),
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            Ok(keys
                .iter()
                .map(|k| v.get_item(k).unwrap_or_default())
                .collect())
        }
        _ => Err(err(format!("`{}` is not a list", display(v)))),
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (
        to_f64(a).filter(|_| a.kind() == ValueKind::Number),
        to_f64(b).filter(|_| b.kind() == ValueKind::Number),
    ) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// Registers the collection and number filters.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("length", |v: Value| -> usize {
        match v.kind() {
            ValueKind::String => v.as_str().map(|s| s.chars().count()).unwrap_or(0),
            ValueKind::None | ValueKind::Undefined => 0,
            _ => v.len().unwrap_or(0),
        }
    });
    env.add_filter("first", |v: Value| -> Result<Value, Error> {
        if let Some(s) = v.as_str() {
            return Ok(s
                .chars()
                .next()
                .map(|c| Value::from(c.to_string()))
                .unwrap_or_default());
        }
        Ok(items(&v)?.into_iter().next().unwrap_or(Value::from(())))
    });
    env.add_filter("last", |v: Value| -> Result<Value, Error> {
        if let Some(s) = v.as_str() {
            return Ok(s
                .chars()
                .last()
                .map(|c| Value::from(c.to_string()))
                .unwrap_or_default());
        }
        Ok(items(&v)?.into_iter().last().unwrap_or(Value::from(())))
    });
    env.add_filter(
        "join",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<String, Error> {
            let b = bind("join", &["separator"], &a, &k)?;
            let sep = b.opt_str(0)?.unwrap_or_default();
            Ok(items(&v)?
                .iter()
                .map(display)
                .collect::<Vec<_>>()
                .join(&sep))
        },
    );
    env.add_filter("keys", |v: Value| -> Result<Value, Error> {
        match v.kind() {
            ValueKind::Map => Ok(Value::from(v.try_iter()?.collect::<Vec<_>>())),
            _ => Err(err(format!("keys: `{}` is not a map", display(&v)))),
        }
    });
    env.add_filter("values", |v: Value| -> Result<Value, Error> {
        match v.kind() {
            ValueKind::Map => Ok(Value::from(items(&v)?)),
            _ => Err(err(format!("values: `{}` is not a map", display(&v)))),
        }
    });
    env.add_filter("sort", |v: Value| -> Result<Value, Error> {
        let mut x = items(&v)?;
        x.sort_by(compare);
        Ok(Value::from(x))
    });
    env.add_filter("rsort", |v: Value| -> Result<Value, Error> {
        let mut x = items(&v)?;
        x.sort_by(|a, b| compare(b, a));
        Ok(Value::from(x))
    });
    env.add_filter("reverse", |v: Value| -> Result<Value, Error> {
        if let Some(s) = v.as_str() {
            return Ok(Value::from(s.chars().rev().collect::<String>()));
        }
        let mut x = items(&v)?;
        x.reverse();
        Ok(Value::from(x))
    });
    env.add_filter(
        "slice",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<Value, Error> {
            let b = bind("slice", &["fromIndex", "toIndex"], &a, &k)?;
            let from = b.opt_i64(0)?.unwrap_or(0);
            let to = b.opt_i64(1)?;
            let clamp = |len: usize, i: i64| -> usize { usize::try_from(i).unwrap_or(0).min(len) };
            if let Some(s) = v.as_str() {
                let chars: Vec<char> = s.chars().collect();
                let (f, t) = (
                    clamp(chars.len(), from),
                    clamp(chars.len(), to.unwrap_or(chars.len() as i64)),
                );
                if f > t {
                    return Err(err("slice: fromIndex is after toIndex"));
                }
                return Ok(Value::from(chars[f..t].iter().collect::<String>()));
            }
            let x = items(&v)?;
            let (f, t) = (
                clamp(x.len(), from),
                clamp(x.len(), to.unwrap_or(x.len() as i64)),
            );
            if f > t {
                return Err(err("slice: fromIndex is after toIndex"));
            }
            Ok(Value::from(x[f..t].to_vec()))
        },
    );
    env.add_filter(
        "merge",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<Value, Error> {
            let b = bind("merge", &["items"], &a, &k)?;
            let other = b.req(0)?.clone();
            match (v.kind(), other.kind()) {
                (ValueKind::Map, ValueKind::Map) => {
                    let mut pairs: Vec<(Value, Value)> = Vec::new();
                    for m in [&v, &other] {
                        for key in m.try_iter()? {
                            let val = m.get_item(&key).unwrap_or_default();
                            if let Some(slot) = pairs.iter_mut().find(|(k2, _)| *k2 == key) {
                                slot.1 = val;
                            } else {
                                pairs.push((key, val));
                            }
                        }
                    }
                    Ok(Value::from_pairs(pairs))
                }
                (ValueKind::Seq, _) => {
                    let mut x = items(&v)?;
                    if other.kind() == ValueKind::Seq {
                        x.extend(items(&other)?);
                    } else {
                        x.push(other);
                    }
                    Ok(Value::from(x))
                }
                _ => Err(err(
                    "merge: can merge a map with a map, or a list with a list",
                )),
            }
        },
    );
    env.add_filter(
        "chunk",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<Value, Error> {
            let b = bind("chunk", &["size"], &a, &k)?;
            let n = b
                .opt_i64(0)?
                .ok_or_else(|| err("chunk needs the argument `size`"))?;
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| err("chunk: `size` must be positive"))?;
            Ok(Value::from(
                items(&v)?
                    .chunks(n)
                    .map(|c| Value::from(c.to_vec()))
                    .collect::<Vec<_>>(),
            ))
        },
    );
    env.add_filter("flatten", |v: Value| -> Result<Value, Error> {
        let mut out = Vec::new();
        for x in items(&v)? {
            if x.kind() == ValueKind::Seq {
                out.extend(items(&x)?);
            } else {
                out.push(x);
            }
        }
        Ok(Value::from(out))
    });
    env.add_filter("distinct", |v: Value| -> Result<Value, Error> {
        let mut out: Vec<Value> = Vec::new();
        for x in items(&v)? {
            if !out.contains(&x) {
                out.push(x);
            }
        }
        Ok(Value::from(out))
    });
    env.add_filter(
        "default",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<Value, Error> {
            let b = bind("default", &["default"], &a, &k)?;
            let empty = match v.kind() {
                ValueKind::None | ValueKind::Undefined => true,
                ValueKind::String => v.as_str().is_some_and(|s| s.trim().is_empty()),
                ValueKind::Seq | ValueKind::Map => v.len() == Some(0),
                _ => false,
            };
            Ok(if empty {
                b.opt(0).cloned().unwrap_or(Value::from(()))
            } else {
                v
            })
        },
    );
    env.add_filter("abs", |v: Value| -> Result<Value, Error> {
        if let Some(i) = v.as_i64().filter(|_| v.is_integer()) {
            return Ok(Value::from(i.abs()));
        }
        to_f64(&v)
            .map(|f| Value::from(f.abs()))
            .ok_or_else(|| err(format!("abs: `{}` is not a number", display(&v))))
    });
    env.add_filter("number", |v: Value, a: Rest<Value>, k: Kwargs| -> Result<Value, Error> {
        let b = bind("number", &["type"], &a, &k)?;
        let kind = b.opt_str(0)?.map(|s| s.to_ascii_uppercase());
        let s = display(&v);
        let s = s.trim();
        let bad = || err(format!("number: `{s}` is not a number"));
        match kind.as_deref() {
            Some("INT") | Some("INTEGER") | Some("LONG") | Some("BIGINTEGER") => {
                s.parse::<i64>().map(Value::from).map_err(|_| bad())
            }
            Some("FLOAT") | Some("DOUBLE") | Some("BIGDECIMAL") => s.parse::<f64>().map(Value::from).map_err(|_| bad()),
            Some(other) => Err(err(format!("number: unknown type `{other}` (INT, LONG, FLOAT, DOUBLE, BIGDECIMAL, BIGINTEGER)"))),
            None => match s.parse::<i64>() {
                Ok(i) => Ok(Value::from(i)),
                Err(_) => s.parse::<f64>().map(Value::from).map_err(|_| bad()),
            },
        }
    });
}
