//! Binds Pebble arguments (positional, then named) to a function's parameter names, as
//! Pebble does: `date('yyyy', timeZone='UTC')` and `date(format='yyyy')` are the same call.

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};

/// An evaluation error with a message.
pub(crate) fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Arguments bound to names.
pub(crate) struct Bound {
    what: &'static str,
    names: &'static [&'static str],
    vals: Vec<Option<Value>>,
}

/// Binds `args` and `kwargs` to `names`; `what` names the filter or function in errors.
pub(crate) fn bind(
    what: &'static str,
    names: &'static [&'static str],
    args: &[Value],
    kwargs: &Kwargs,
) -> Result<Bound, Error> {
    if args.len() > names.len() {
        return Err(err(format!(
            "{what} takes at most {} argument(s), {} given",
            names.len(),
            args.len()
        )));
    }
    let mut vals: Vec<Option<Value>> = vec![None; names.len()];
    for (i, a) in args.iter().enumerate() {
        vals[i] = Some(a.clone());
    }
    let keys: Vec<String> = kwargs.args().map(str::to_string).collect();
    for k in keys {
        let Some(i) = names.iter().position(|n| *n == k) else {
            return Err(err(format!(
                "{what} has no argument named `{k}` (it takes: {})",
                names.join(", ")
            )));
        };
        vals[i] = Some(kwargs.get::<Value>(&k)?);
    }
    Ok(Bound { what, names, vals })
}

impl Bound {
    /// The argument at `i`, if given and not null.
    pub(crate) fn opt(&self, i: usize) -> Option<&Value> {
        self.vals
            .get(i)
            .and_then(|v| v.as_ref())
            .filter(|v| !v.is_none() && !v.is_undefined())
    }

    /// The argument at `i`, required.
    pub(crate) fn req(&self, i: usize) -> Result<&Value, Error> {
        self.opt(i).ok_or_else(|| {
            err(format!(
                "{} needs the argument `{}`",
                self.what,
                self.names.get(i).copied().unwrap_or("?")
            ))
        })
    }

    /// An optional string argument.
    pub(crate) fn opt_str(&self, i: usize) -> Result<Option<String>, Error> {
        match self.opt(i) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                Some(s) => Ok(Some(s.to_string())),
                None => Ok(Some(super::value::display(v))),
            },
        }
    }

    /// A required string argument.
    pub(crate) fn req_str(&self, i: usize) -> Result<String, Error> {
        let v = self.req(i)?;
        Ok(v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| super::value::display(v)))
    }

    /// An optional integer argument.
    pub(crate) fn opt_i64(&self, i: usize) -> Result<Option<i64>, Error> {
        match self.opt(i) {
            None => Ok(None),
            Some(v) => to_i64(v).map(Some).ok_or_else(|| {
                err(format!(
                    "{}: `{}` must be a number",
                    self.what, self.names[i]
                ))
            }),
        }
    }

    /// An optional boolean argument.
    pub(crate) fn opt_bool(&self, i: usize) -> Option<bool> {
        self.opt(i).map(|v| match v.as_str() {
            Some(s) => s.eq_ignore_ascii_case("true"),
            None => v.is_true(),
        })
    }
}

/// A value as an integer (numbers and numeric strings).
pub(crate) fn to_i64(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    if let Ok(f) = f64::try_from(v.clone())
        && f.fract() == 0.0
    {
        return Some(f as i64);
    }
    v.as_str().and_then(|s| s.trim().parse().ok())
}

/// A value as a float (numbers and numeric strings).
pub(crate) fn to_f64(v: &Value) -> Option<f64> {
    if let Ok(f) = f64::try_from(v.clone()) {
        return Some(f);
    }
    v.as_str().and_then(|s| s.trim().parse().ok())
}
