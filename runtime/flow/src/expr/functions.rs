//! Kestra's functions (`now()`, `uuid()`, `render()`, `secret()`, ...), Pebble's tests
//! (`is defined`, `is empty`, ...) and the internal helpers the emitted minijinja source calls
//! (`__p`, `__o`, `__cat`, ...; see `emit`).

use super::args::{bind, err, to_f64, to_i64};
use super::filters::date;
use super::host::HostRequest;
use super::scope;
use super::value::{display, from_json, lookup};
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

/// Registers the functions, tests and helpers on `env`.
pub(crate) fn register(env: &mut Environment<'static>) {
    // helpers called by emitted code
    env.add_function("__p", strict_path);
    env.add_function("__o", optional_path);
    env.add_function("__cat", concat);
    env.add_function("__contains", |a: Value, b: Value| {
        Ok::<_, Error>(Value::from(contains(&a, &b)))
    });
    env.add_function("__range", |a: Value, b: Value| {
        range_values(&a, &b, &Value::from(1))
    });
    env.add_function("__div", divide);
    env.add_function("__bool", |v: Value| Value::from(truthy(&v)));
    env.add_function("__iter", iterate);

    // tests
    env.add_test("pb_defined", |v: Value| !v.is_undefined());
    env.add_test("pb_present", |v: Value| !v.is_undefined() && !v.is_none());
    env.add_test("pb_null", |v: Value| v.is_none() || v.is_undefined());
    env.add_test("pb_empty", is_empty);
    env.add_test("pb_even", |v: Value| to_i64(&v).is_some_and(|i| i % 2 == 0));
    env.add_test("pb_odd", |v: Value| to_i64(&v).is_some_and(|i| i % 2 != 0));
    env.add_test("pb_iterable", |v: Value| {
        matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable)
    });
    env.add_test("pb_map", |v: Value| matches!(v.kind(), ValueKind::Map));
    env.add_test("pb_json", |v: Value| match v.as_str() {
        Some(s) => serde_json::from_str::<serde_json::Value>(s).is_ok(),
        None => false,
    });

    // Kestra functions
    env.add_function("now", now);
    env.add_function("uuid", uuid);
    env.add_function("id", id);
    env.add_function("randomInt", random_int);
    env.add_function("range", range);
    env.add_function("min", |args: Rest<Value>| min_max(&args, true));
    env.add_function("max", |args: Rest<Value>| min_max(&args, false));
    env.add_function(
        "render",
        |state: &State<'_, '_>, args: Rest<Value>, kw: Kwargs| render(state, &args, &kw, true),
    );
    env.add_function(
        "renderOnce",
        |state: &State<'_, '_>, args: Rest<Value>, kw: Kwargs| render(state, &args, &kw, false),
    );
    env.add_function("fromJson", from_json_fn);
    env.add_function("json", from_json_fn);
    env.add_function("yaml", from_yaml_fn);
    env.add_function("secret", |args: Rest<Value>, kw: Kwargs| {
        let a = bind("secret()", &["key"], &args, &kw)?;
        host(HostRequest::Secret(a.req_str(0)?))
    });
    env.add_function("read", |args: Rest<Value>, kw: Kwargs| {
        let a = bind("read()", &["path"], &args, &kw)?;
        host(HostRequest::Read(a.req_str(0)?))
    });
    env.add_function("fileSize", |args: Rest<Value>, kw: Kwargs| {
        let a = bind("fileSize()", &["path"], &args, &kw)?;
        host(HostRequest::FileSize(a.req_str(0)?))
    });
    env.add_function("fileURI", |args: Rest<Value>, kw: Kwargs| {
        let a = bind("fileURI()", &["path"], &args, &kw)?;
        host(HostRequest::FileUri(a.req_str(0)?))
    });
    env.add_function("kv", kv);
    env.add_function("fetchContext", |args: Rest<Value>| context(&args));
    env.add_function("printContext", |args: Rest<Value>| context(&args));
    env.add_function("randomPort", |args: Rest<Value>| -> Result<Value, Error> {
        if !args.is_empty() {
            return Err(err("randomPort() takes no argument"));
        }
        let r = scope::current().map(|s| s.next_u64()).unwrap_or(0) % (65535 - 1024);
        Ok(Value::from(1024 + r as i64))
    });
    env.add_function("currentEachOutput", |args: Rest<Value>, kw: Kwargs| {
        let a = bind("currentEachOutput()", &["outputs"], &args, &kw)?;
        current_each_output(a.req(0)?)
    });
    env.add_function("errorLogs", |args: Rest<Value>, kw: Kwargs| {
        let _ = bind("errorLogs()", &[], &args, &kw)?;
        host(HostRequest::ErrorLogs)
    });
}

/// `fetchContext()`: every variable of the render.
fn context(args: &[Value]) -> Result<Value, Error> {
    if !args.is_empty() {
        return Err(err("fetchContext() takes no argument"));
    }
    Ok(scope::current().map(|s| s.vars.clone()).unwrap_or_default())
}

/// `currentEachOutput(outputs.task)`: the output of the current iteration of the loops around
/// the task, i.e. `outputs.task[outer value]...[inner value]`, the values being those of the
/// `parents` that have one (outermost first) then `taskrun.value`.
fn current_each_output(outputs: &Value) -> Result<Value, Error> {
    let vars = scope::current().map(|s| s.vars.clone()).unwrap_or_default();
    let value_of = |v: &Value| lookup(&lookup(v, &Value::from("taskrun")), &Value::from("value"));
    let mut path = Vec::new();
    let parents = lookup(&vars, &Value::from("parents"));
    if let Ok(iter) = parents.try_iter() {
        for p in iter {
            let v = value_of(&p);
            if !v.is_undefined() && !v.is_none() {
                path.push(v);
            }
        }
    }
    path.reverse(); // `parents` is innermost first
    let own = value_of(&vars);
    if !own.is_undefined() && !own.is_none() {
        path.push(own);
    }
    let mut out = outputs.clone();
    for key in &path {
        let next = lookup(&out, key);
        if next.is_undefined() {
            return Err(err(format!(
                "currentEachOutput(): the outputs have no entry for the loop value `{}` (values of the current iteration, outermost first: {})",
                display(key),
                path.iter().map(display).collect::<Vec<_>>().join(", ")
            )));
        }
        out = next;
    }
    Ok(out)
}

fn host(req: HostRequest) -> Result<Value, Error> {
    scope::host_call(req).map(|j| from_json(&j)).map_err(err)
}

/// Pebble truthiness: null, undefined, false, 0, "" and empty collections are false.
pub(crate) fn truthy(v: &Value) -> bool {
    match v.kind() {
        ValueKind::String => v.as_str().is_some_and(|s| !s.is_empty() && s != "false"),
        _ => v.is_true(),
    }
}

/// `__p(tag, line, root, 'root', seg...)`: a chain of lookups; the first missing step fails
/// with Kestra's "Unable to find" message.
fn strict_path(args: Rest<Value>) -> Result<Value, Error> {
    let [tag, line, root, root_name, segs @ ..] = args.as_slice() else {
        return Err(err("__p: bad arguments"));
    };
    let missing = |name: String| {
        Error::new(
            ErrorKind::UndefinedError,
            format!(
                "Unable to find `{name}` used in the expression `{}` at line {}",
                tag.as_str().unwrap_or_default(),
                display(line)
            ),
        )
    };
    if root.is_undefined() {
        return Err(missing(display(root_name)));
    }
    let mut cur = root.clone();
    for seg in segs {
        let next = lookup(&cur, seg);
        if next.is_undefined() {
            return Err(missing(display(seg)));
        }
        cur = next;
    }
    Ok(cur)
}

/// `__o(root, seg...)`: like `__p` but undefined instead of an error.
fn optional_path(args: Rest<Value>) -> Value {
    let [root, segs @ ..] = args.as_slice() else {
        return Value::UNDEFINED;
    };
    let mut cur = root.clone();
    for seg in segs {
        cur = lookup(&cur, seg);
        if cur.is_undefined() {
            break;
        }
    }
    cur
}

fn concat(args: Rest<Value>) -> Value {
    let mut s = String::new();
    for a in args.iter() {
        s.push_str(&display(a));
    }
    Value::from(s)
}

/// Pebble's `contains`: substring, list element (or all elements of a list), map key.
pub(crate) fn contains(container: &Value, item: &Value) -> bool {
    match container.kind() {
        ValueKind::String => {
            let s = container.as_str().unwrap_or_default();
            s.contains(&display(item))
        }
        ValueKind::Map => !lookup(container, item).is_undefined(),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = container
                .try_iter()
                .map(|i| i.collect())
                .unwrap_or_default();
            if matches!(item.kind(), ValueKind::Seq) {
                let wanted: Vec<Value> = item.try_iter().map(|i| i.collect()).unwrap_or_default();
                wanted.iter().all(|w| items.iter().any(|x| loose_eq(x, w)))
            } else {
                items.iter().any(|x| loose_eq(x, item))
            }
        }
        _ => false,
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    a == b
}

fn divide(a: Value, b: Value) -> Result<Value, Error> {
    if let (Some(x), Some(y)) = (
        a.as_i64().filter(|_| a.is_integer()),
        b.as_i64().filter(|_| b.is_integer()),
    ) {
        if y == 0 {
            return Err(err("division by zero"));
        }
        return Ok(Value::from(x / y));
    }
    match (to_f64(&a), to_f64(&b)) {
        (Some(x), Some(y)) => Ok(Value::from(x / y)),
        _ => Err(err(format!(
            "cannot divide `{}` by `{}`",
            display(&a),
            display(&b)
        ))),
    }
}

/// What `{% for %}` iterates: lists as they are, maps as Pebble entries with `key` and `value`.
fn iterate(v: Value) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            Ok(Value::from(
                keys.into_iter()
                    .map(|k| {
                        let val = v.get_item(&k).unwrap_or_default();
                        Value::from_pairs([(Value::from("key"), k), (Value::from("value"), val)])
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        ValueKind::None | ValueKind::Undefined => Ok(Value::from(Vec::<Value>::new())),
        ValueKind::String => Ok(Value::from(
            v.as_str()
                .unwrap_or_default()
                .chars()
                .map(|c| Value::from(c.to_string()))
                .collect::<Vec<_>>(),
        )),
        _ => Ok(v),
    }
}

fn is_empty(v: Value) -> bool {
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => true,
        ValueKind::String => v.as_str().is_some_and(|s| s.trim().is_empty()),
        _ => v.len() == Some(0),
    }
}

fn now(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind(
        "now()",
        &["format", "timeZone", "existingFormat", "locale"],
        &args,
        &kw,
    )?;
    let now = scope::current().map(|s| s.now).unwrap_or_default();
    let format = a.opt_str(0)?;
    let tz = a.opt_str(1)?;
    date::format_instant(now.fixed_offset(), format.as_deref(), tz.as_deref()).map(Value::from)
}

fn random_bytes() -> [u8; 16] {
    let (a, b) = match scope::current() {
        Some(s) => (s.next_u64(), s.next_u64()),
        None => (0, 0),
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

fn uuid(args: Rest<Value>) -> Result<Value, Error> {
    if !args.is_empty() {
        return Err(err("uuid() takes no argument"));
    }
    let mut b = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(Value::from(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )))
}

/// A Kestra id: a random 128-bit number in base 62, 22 characters.
fn id(args: Rest<Value>) -> Result<Value, Error> {
    if !args.is_empty() {
        return Err(err("id() takes no argument"));
    }
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = u128::from_be_bytes(random_bytes());
    let mut out = vec![b'0'; 22];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    Ok(Value::from(String::from_utf8_lossy(&out).into_owned()))
}

/// `randomInt(lower, upper)`: lower inclusive, upper exclusive.
fn random_int(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind("randomInt()", &["lower", "upper"], &args, &kw)?;
    let lower = a
        .opt_i64(0)?
        .ok_or_else(|| err("randomInt() needs `lower`"))?;
    let upper = a
        .opt_i64(1)?
        .ok_or_else(|| err("randomInt() needs `upper`"))?;
    if upper < lower {
        return Err(err(format!(
            "randomInt(): `upper` ({upper}) is less than `lower` ({lower})"
        )));
    }
    if upper == lower {
        return Ok(Value::from(lower));
    }
    let span = upper.abs_diff(lower);
    let r = scope::current().map(|s| s.next_u64()).unwrap_or(0) % span;
    Ok(Value::from(lower.wrapping_add(r as i64)))
}

fn range(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind("range()", &["start", "end", "increment"], &args, &kw)?;
    let step = a.opt(2).cloned().unwrap_or(Value::from(1));
    range_values(a.req(0)?, a.req(1)?, &step)
}

const MAX_RANGE: i64 = 100_000;

/// Pebble's inclusive range, of numbers or of single characters.
fn range_values(start: &Value, end: &Value, step: &Value) -> Result<Value, Error> {
    let step = to_i64(step).ok_or_else(|| err("range(): the increment must be an integer"))?;
    if step == 0 {
        return Err(err("range(): the increment must not be 0"));
    }
    if let (Some(s), Some(e)) = (start.as_str(), end.as_str())
        && let (Some(a), Some(b)) = (single_char(s), single_char(e))
    {
        {
            let (a, b) = (a as i64, b as i64);
            let mut out = Vec::new();
            let mut i = a;
            while (step > 0 && i <= b) || (step < 0 && i >= b) {
                out.push(Value::from(
                    char::from_u32(i as u32)
                        .map(String::from)
                        .unwrap_or_default(),
                ));
                i += step;
            }
            return Ok(Value::from(out));
        }
    }
    let (Some(s), Some(e)) = (to_i64(start), to_i64(end)) else {
        return Err(err(format!(
            "range(): `{}` .. `{}` are not integers",
            display(start),
            display(end)
        )));
    };
    if (e - s).abs() / step.abs() > MAX_RANGE {
        return Err(err(format!("range(): more than {MAX_RANGE} items")));
    }
    let mut out = Vec::new();
    let mut i = s;
    while (step > 0 && i <= e) || (step < 0 && i >= e) {
        out.push(Value::from(i));
        i += step;
    }
    Ok(Value::from(out))
}

fn single_char(s: &str) -> Option<char> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) if !c.is_ascii_digit() => Some(c),
        _ => None,
    }
}

fn min_max(args: &[Value], min: bool) -> Result<Value, Error> {
    let items: Vec<Value> = match args {
        [one] if matches!(one.kind(), ValueKind::Seq) => one.try_iter()?.collect(),
        _ => args.to_vec(),
    };
    let mut best: Option<Value> = None;
    for v in items {
        best = Some(match best {
            None => v,
            Some(b) => {
                let (x, y) = (to_f64(&v), to_f64(&b));
                let better = match (x, y) {
                    (Some(x), Some(y)) => {
                        if min {
                            x < y
                        } else {
                            x > y
                        }
                    }
                    _ => {
                        if min {
                            v < b
                        } else {
                            v > b
                        }
                    }
                };
                if better { v } else { b }
            }
        });
    }
    best.ok_or_else(|| {
        err(if min {
            "min() needs at least one argument"
        } else {
            "max() needs at least one argument"
        })
    })
}

fn render(
    state: &State<'_, '_>,
    args: &[Value],
    kw: &Kwargs,
    default_recursive: bool,
) -> Result<Value, Error> {
    let what = if default_recursive {
        "render()"
    } else {
        "renderOnce()"
    };
    let a = bind(what, &["toRender", "recursive"], args, kw)?;
    let Some(v) = a.opt(0) else {
        return Ok(Value::from(()));
    };
    let Some(mut text) = v.as_str().map(str::to_string) else {
        return Ok(v.clone());
    };
    let recursive = a.opt_bool(1).unwrap_or(default_recursive);
    let vars = scope::current().map(|s| s.vars.clone()).unwrap_or_default();
    for _ in 0..100 {
        if !super::is_template(&text) {
            break;
        }
        let src = super::translate(&text).map_err(|e| err(format!("{what}: {}", e.message)))?;
        let out = state.env().render_str(&src, vars.clone())?;
        let done = out == text;
        text = out;
        if !recursive || done {
            break;
        }
    }
    Ok(Value::from(text))
}

fn from_json_fn(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind("fromJson()", &["json"], &args, &kw)?;
    match a.opt(0) {
        None => Ok(Value::from(())),
        Some(v) => match v.as_str() {
            Some(s) => serde_json::from_str::<serde_json::Value>(s)
                .map(|j| from_json(&j))
                .map_err(|e| err(format!("fromJson(): invalid JSON: {e}"))),
            None => Ok(v.clone()),
        },
    }
}

fn from_yaml_fn(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind("yaml()", &["yaml"], &args, &kw)?;
    let s = a.req_str(0)?;
    serde_yaml::from_str::<serde_json::Value>(&s)
        .map(|j| from_json(&j))
        .map_err(|e| err(format!("yaml(): invalid YAML: {e}")))
}

fn kv(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind("kv()", &["key", "namespace", "errorOnMissing"], &args, &kw)?;
    let key = a.req_str(0)?;
    let ns = a.opt_str(1)?;
    let error_on_missing = a.opt_bool(2).unwrap_or(true);
    let answer = scope::host_call(HostRequest::Kv(ns, key.clone())).map_err(err)?;
    if answer.get("found").and_then(|f| f.as_bool()) == Some(true) {
        Ok(answer.get("value").map(from_json).unwrap_or_default())
    } else if error_on_missing {
        Err(err(format!("kv(): the key '{key}' does not exist")))
    } else {
        Ok(Value::from(()))
    }
}
