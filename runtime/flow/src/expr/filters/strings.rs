//! String filters: case, trimming, substrings, replacing, splitting, slugs, indentation,
//! escaping, URL and base64 coding, hashes.

use super::super::args::{bind, err};
use super::super::value::display;
use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, Value};
use minijinja::{Environment, Error};
use sha2::Digest as _;

fn text(v: &Value) -> String {
    display(v)
}

fn one_arg(
    name: &'static str,
    arg: &'static [&'static str],
    args: &[Value],
    kw: &Kwargs,
) -> Result<String, Error> {
    bind(name, arg, args, kw)?.req_str(0)
}

/// Registers the string filters.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("lower", |v: Value| text(&v).to_lowercase());
    env.add_filter("upper", |v: Value| text(&v).to_uppercase());
    env.add_filter("trim", |v: Value| text(&v).trim().to_string());
    env.add_filter("capitalize", |v: Value| capitalize(&text(&v)));
    env.add_filter("title", |v: Value| {
        let s = text(&v);
        let mut out = String::with_capacity(s.len());
        let mut start = true;
        for c in s.chars() {
            if start && c.is_alphabetic() {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            start = c.is_whitespace();
        }
        out
    });
    env.add_filter(
        "abbreviate",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<String, Error> {
            let b = bind("abbreviate", &["length"], &a, &k)?;
            let n = b
                .opt_i64(0)?
                .ok_or_else(|| err("abbreviate needs the argument `length`"))?;
            let s = text(&v);
            let n = usize::try_from(n).map_err(|_| err("abbreviate: `length` must be positive"))?;
            if s.chars().count() <= n {
                return Ok(s);
            }
            if n < 3 {
                return Err(err("abbreviate: `length` must be at least 3"));
            }
            Ok(s.chars().take(n - 3).collect::<String>() + "...")
        },
    );
    env.add_filter("replace", replace);
    env.add_filter("slugify", |v: Value| slugify(&text(&v)));
    env.add_filter(
        "substringBefore",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<String, Error> {
            let sep = one_arg("substringBefore", &["separator"], &a, &k)?;
            let s = text(&v);
            Ok(match s.find(&sep) {
                Some(i) => s[..i].to_string(),
                None => s,
            })
        },
    );
    env.add_filter(
        "substringBeforeLast",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<String, Error> {
            let sep = one_arg("substringBeforeLast", &["separator"], &a, &k)?;
            let s = text(&v);
            Ok(match s.rfind(&sep) {
                Some(i) => s[..i].to_string(),
                None => s,
            })
        },
    );
    env.add_filter(
        "substringAfter",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<String, Error> {
            let sep = one_arg("substringAfter", &["separator"], &a, &k)?;
            let s = text(&v);
            Ok(match s.find(&sep) {
                Some(i) => s[i + sep.len()..].to_string(),
                None => String::new(),
            })
        },
    );
    env.add_filter(
        "substringAfterLast",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<String, Error> {
            let sep = one_arg("substringAfterLast", &["separator"], &a, &k)?;
            let s = text(&v);
            Ok(match s.rfind(&sep) {
                Some(i) if !sep.is_empty() => s[i + sep.len()..].to_string(),
                _ => String::new(),
            })
        },
    );
    env.add_filter(
        "startsWith",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<bool, Error> {
            Ok(text(&v).starts_with(&one_arg("startsWith", &["prefix"], &a, &k)?))
        },
    );
    env.add_filter(
        "endsWith",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<bool, Error> {
            Ok(text(&v).ends_with(&one_arg("endsWith", &["suffix"], &a, &k)?))
        },
    );
    env.add_filter("split", split);
    env.add_filter("indent", |v: Value, a: Rest<Value>, k: Kwargs| {
        indent(&v, &a, &k, false)
    });
    env.add_filter("nindent", |v: Value, a: Rest<Value>, k: Kwargs| {
        indent(&v, &a, &k, true)
    });
    env.add_filter(
        "escapeChar",
        |v: Value, a: Rest<Value>, k: Kwargs| -> Result<Value, Error> {
            let kind = one_arg("escapeChar", &["type"], &a, &k)?;
            let (from, to) = match kind.to_ascii_lowercase().as_str() {
                "single" => ("'", "\\'"),
                "double" => ("\"", "\\\""),
                "shell" => ("'", "'\\''"),
                other => {
                    return Err(err(format!(
                        "escapeChar: unknown type `{other}` (use single, double or shell)"
                    )));
                }
            };
            Ok(escape_deep(&v, from, to))
        },
    );
    env.add_filter("string", |v: Value| text(&v));
    env.add_filter("urlencode", |v: Value| url_encode(&text(&v)));
    env.add_filter("urldecode", |v: Value| -> Result<String, Error> {
        let s = text(&v).replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|e| err(format!("urldecode: {e}")))
    });
    env.add_filter("base64encode", |v: Value| {
        base64::engine::general_purpose::STANDARD.encode(text(&v))
    });
    env.add_filter("base64decode", |v: Value| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text(&v).trim())
            .map_err(|e| err(format!("base64decode: {e}")))?;
        String::from_utf8(bytes)
            .map_err(|_| err("base64decode: the decoded bytes are not UTF-8 text"))
    });
    env.add_filter("sha1", |v: Value| {
        hex::encode(sha1::Sha1::digest(text(&v).as_bytes()))
    });
    env.add_filter("sha256", |v: Value| {
        hex::encode(sha2::Sha256::digest(text(&v).as_bytes()))
    });
    env.add_filter("sha512", |v: Value| {
        hex::encode(sha2::Sha512::digest(text(&v).as_bytes()))
    });
    env.add_filter("md5", |v: Value| {
        hex::encode(md5::Md5::digest(text(&v).as_bytes()))
    });
}

/// Kestra's `escapeChar`: every string, also inside maps and lists.
fn escape_deep(v: &Value, from: &str, to: &str) -> Value {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => Value::from(()),
        ValueKind::Seq => Value::from(
            v.try_iter()
                .map(|it| it.map(|x| escape_deep(&x, from, to)).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter().map(|it| it.collect()).unwrap_or_default();
            Value::from_pairs(keys.into_iter().map(|k| {
                let x = v.get_item(&k).unwrap_or_default();
                (k, escape_deep(&x, from, to))
            }))
        }
        _ => Value::from(text(v).replace(from, to)),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Java's `URLEncoder.encode(s, UTF_8)`: form encoding, space as `+`.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Kestra's slug of `s` (the `slugify` filter, and the folder of a task's files in internal
/// storage): lower case, every run of other characters than ASCII letters and digits one `-`, none
/// at either end (`each_split` -> `each-split`).
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.trim().to_lowercase().chars() {
        let c = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `replace({'from': 'to'}, regexp=false)`.
fn replace(v: Value, args: Rest<Value>, kw: Kwargs) -> Result<String, Error> {
    let b = bind("replace", &["replace_pairs", "regexp"], &args, &kw)?;
    let pairs = b.req(0)?;
    let regexp = b.opt_bool(1).unwrap_or(false);
    let mut s = text(&v);
    let keys: Vec<Value> = pairs
        .try_iter()
        .map_err(|_| err("replace needs a map of replacements, such as replace({'a': 'b'})"))?
        .collect();
    for k in keys {
        let from = text(&k);
        let to = text(&pairs.get_item(&k).unwrap_or_default());
        if regexp {
            let re = regex::Regex::new(&from)
                .map_err(|e| err(format!("replace: invalid regular expression `{from}`: {e}")))?;
            s = re
                .replace_all(&s, java_replacement(&to).as_str())
                .into_owned();
        } else {
            s = s.replace(&from, &to);
        }
    }
    Ok(s)
}

/// Java's `$1` and `\$` in a replacement, as the regex crate writes them.
fn java_replacement(to: &str) -> String {
    let mut out = String::new();
    let mut it = to.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                if let Some(n) = it.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = it.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    it.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `split(delimiter, limit)` with Java's `String.split` rules, as Pebble: the delimiter is a
/// regular expression, and without a limit trailing empty parts go.
fn split(v: Value, args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let b = bind("split", &["delimiter", "limit"], &args, &kw)?;
    let delim = b.req_str(0)?;
    let limit = b.opt_i64(1)?.unwrap_or(0);
    let s = text(&v);
    let re = regex::Regex::new(&delim)
        .map_err(|e| err(format!("split: invalid delimiter `{delim}`: {e}")))?;
    let mut parts: Vec<String> = if limit > 0 {
        re.splitn(&s, usize::try_from(limit).unwrap_or(usize::MAX))
            .map(str::to_string)
            .collect()
    } else {
        re.split(&s).map(str::to_string).collect()
    };
    // a zero-width match at the start gives no leading empty part
    if parts.len() > 1
        && parts.first().is_some_and(|p| p.is_empty())
        && re.find(&s).is_some_and(|m| m.is_empty())
    {
        parts.remove(0);
    }
    if limit == 0 {
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        if parts.is_empty() && s.is_empty() {
            parts.push(String::new());
        }
    }
    Ok(Value::from(
        parts.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

/// `indent(amount, prefix=' ')`: pads every line but the first; `nindent` starts with a new
/// line and pads every line.
fn indent(v: &Value, args: &[Value], kw: &Kwargs, new_line: bool) -> Result<String, Error> {
    let what = if new_line { "nindent" } else { "indent" };
    let b = bind(what, &["amount", "prefix"], args, kw)?;
    let n = b
        .opt_i64(0)?
        .ok_or_else(|| err(format!("{what} needs the argument `amount`")))?;
    let prefix = b.opt_str(1)?.unwrap_or_else(|| " ".to_string());
    if n < 0 {
        return Err(err(format!("{what}: `amount` must be 0 or more")));
    }
    let pad = prefix.repeat(usize::try_from(n).unwrap_or(0));
    let s = text(v);
    if s.is_empty() {
        return Ok(s);
    }
    // like Kestra: the line separator the text uses, each one followed by the padding
    let nl = ["\r\n", "\n\r", "\n", "\r"]
        .into_iter()
        .find(|sep| s.contains(sep))
        .unwrap_or("\n");
    let s = if new_line { format!("{nl}{s}") } else { s };
    let out = s.replace(nl, &format!("{nl}{pad}"));
    Ok(out)
}
