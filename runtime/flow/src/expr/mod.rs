//! Kestra's expression language: Pebble `{{ expressions }}` and `{% tags %}`, rendered by
//! minijinja.
//!
//! Pebble and Jinja share most syntax but not all of it (`??`, `???`, ternaries, `contains`,
//! `..`, 0-based `loop.index`, strict undefined variables). So a small front end parses the
//! Pebble grammar inside every tag (`lexer`, `parser`, `template`, with byte offsets for errors)
//! and emits equivalent minijinja source (`emit`), which minijinja compiles once (cached) and
//! evaluates with Kestra's filters and functions (`filters`, `functions`). `check` stops after
//! parsing, so validation never evaluates anything.
//!
//! Rendering is deterministic: `now()` is the context's `now`, and `uuid()`, `id()` and
//! `randomInt()` draw from a generator seeded with the context's `seed`.

mod args;
mod ast;
mod emit;
mod error;
mod filters;
mod functions;
mod host;
mod java_date;
mod lexer;
mod names;
mod parser;
mod scope;
mod secrets;
mod template;
mod value;

pub use error::ExprError;
pub use filters::strings::slugify;
pub use host::ExprHost;
pub use secrets::{Secrets, mask as mask_secrets};

use chrono::{DateTime, Utc};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

/// Whether `s` contains a tag (`{{` or `{%`) and so needs rendering.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// Whether rendering could change `s` (a tag or a comment).
fn needs_render(s: &str) -> bool {
    is_template(s) || s.contains("{#")
}

/// Checks the syntax of a template: the Pebble grammar, tag nesting, and the names of filters,
/// functions and tests. Evaluates nothing. The error's `offset` is the byte offset of the
/// problem in `template`.
pub fn check(template: &str) -> Result<(), ExprError> {
    if !template.contains('{') {
        return Ok(());
    }
    template::parse(template).map(|_| ())
}

/// minijinja source for a Pebble template.
pub(crate) fn translate(template: &str) -> Result<String, ExprError> {
    Ok(emit::template(&template::parse(template)?))
}

/// What an expression sees.
pub struct Context<'a> {
    /// The variables: `inputs`, `outputs`, `vars`, `execution`, `flow`, `task`, `taskrun`,
    /// `parent`, `parents`, `trigger`, `labels`, `envs`, `globals`.
    pub vars: &'a serde_json::Value,
    /// What `now()` returns.
    pub now: DateTime<Utc>,
    /// Seed of `uuid()`, `id()` and `randomInt()`.
    pub seed: u64,
    /// Secrets, storage and the KV store; `None` makes those functions fail.
    pub host: Option<&'a dyn ExprHost>,
}

/// How many compiled templates a renderer keeps.
const MAX_CACHED_TEMPLATES: usize = 4096;

/// Renders templates. Build one per process and share it: it caches compiled templates.
///
/// The environment (filters, functions, and a loader that compiles a template the first time it
/// is asked for) is shared as an `Arc`: a render holds the `Arc`, never a lock, so a template
/// that calls the host (storage reads, secrets) for as long as it needs holds back no other
/// render. The lock is taken only to clone the `Arc`, and to start a fresh cache once
/// [`MAX_CACHED_TEMPLATES`] templates were compiled.
pub struct Renderer {
    env: RwLock<Arc<Environment<'static>>>,
    /// Templates compiled into the current cache (counted by the loader).
    compiled: Arc<AtomicUsize>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

fn map_err(e: &minijinja::Error) -> ExprError {
    let mut best = e;
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(me) = s.downcast_ref::<minijinja::Error>()
            && me.detail().is_some()
        {
            best = me;
        }
        src = s.source();
    }
    let msg = match (best.kind(), best.detail()) {
        (
            minijinja::ErrorKind::InvalidOperation | minijinja::ErrorKind::UndefinedError,
            Some(d),
        ) => d.to_string(),
        (kind, Some(d)) => format!("{kind}: {d}"),
        (kind, None) => kind.to_string(),
    };
    ExprError::eval(msg)
}

/// The template variables a set of texts can reach: only the top-level variables whose name
/// appears in one of the texts are converted (a 10,000-task-run `outputs` is not converted
/// for `{{ flow.id }}`), unless a text may reach every variable (`render()`, `fetchContext()`).
fn context_for(vars: &serde_json::Value, texts: &[&str]) -> minijinja::Value {
    let everything = texts.iter().any(|t| {
        ["render", "fetchContext", "printContext"]
            .iter()
            .any(|f| t.contains(f))
    });
    // currentEachOutput() reads the loop values of `parents` and `taskrun` itself
    let loop_values = texts.iter().any(|t| t.contains("currentEachOutput"));
    let wanted = |k: &str| {
        texts.iter().any(|t| t.contains(k)) || (loop_values && matches!(k, "parents" | "taskrun"))
    };
    match vars {
        serde_json::Value::Object(map) if !everything => minijinja::Value::from_pairs(
            map.iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| (minijinja::Value::from(k.as_str()), value::from_json(v))),
        ),
        other => value::from_json(other),
    }
}

fn strings<'v>(v: &'v serde_json::Value, out: &mut Vec<&'v str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k);
            strings(x, out);
        }),
        _ => {}
    }
}

fn needs_host(s: &str) -> bool {
    names::HOST_FUNCTIONS.iter().any(|f| s.contains(f))
}

fn any_string(v: &serde_json::Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        serde_json::Value::String(s) => pred(s),
        serde_json::Value::Array(a) => a.iter().any(|x| any_string(x, pred)),
        serde_json::Value::Object(m) => m.iter().any(|(k, x)| pred(k) || any_string(x, pred)),
        _ => false,
    }
}

impl Renderer {
    /// A renderer with every Kestra filter and function registered.
    pub fn new() -> Self {
        let mut env = Environment::empty();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_formatter(|out, _state, value| {
            out.write_str(&value::display(value)).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write output")
            })
        });
        filters::register(&mut env);
        functions::register(&mut env);
        // a template is named by its own Pebble text: the loader translates it (a translation
        // error is reported again by `render_in_scope`, with its position)
        let compiled = Arc::new(AtomicUsize::new(0));
        let counter = compiled.clone();
        env.set_loader(move |name| {
            counter.fetch_add(1, Ordering::Relaxed);
            translate(name).map(Some).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::SyntaxError, e.to_string())
            })
        });
        Self {
            env: RwLock::new(Arc::new(env)),
            compiled,
        }
    }

    /// The current environment, to render with (the lock is held only to clone it).
    fn env(&self) -> Result<Arc<Environment<'static>>, ExprError> {
        self.env
            .read()
            .map(|env| env.clone())
            .map_err(|_| ExprError::eval("renderer lock poisoned"))
    }

    /// Starts an empty cache of compiled templates once the current one is full (renders
    /// running on the old one finish with it).
    fn bound_cache(&self) {
        if self.compiled.load(Ordering::Relaxed) < MAX_CACHED_TEMPLATES {
            return;
        }
        if let Ok(mut env) = self.env.write()
            && self.compiled.load(Ordering::Relaxed) >= MAX_CACHED_TEMPLATES
        {
            let mut fresh = Environment::clone(&env);
            fresh.clear_templates();
            *env = Arc::new(fresh);
            self.compiled.store(0, Ordering::Relaxed);
        }
    }

    /// Runs `f` with a render scope; with a host and a template that may call it, on a scoped
    /// thread while this thread answers the host calls.
    fn scoped<T: Send>(
        &self,
        ctx: &Context<'_>,
        vars: minijinja::Value,
        wants_host: bool,
        f: impl FnOnce() -> Result<T, ExprError> + Send,
    ) -> Result<T, ExprError> {
        match ctx.host {
            Some(host) if wants_host => std::thread::scope(|s| {
                let (tx, rx) = mpsc::channel::<scope::HostCall>();
                let (now, seed) = (ctx.now, ctx.seed);
                let handle = s.spawn(move || {
                    let _guard = scope::enter(now, seed, vars, Some(tx));
                    f()
                });
                for call in rx {
                    let _ = call.reply.send(call.request.serve(host));
                }
                handle.join().unwrap_or_else(|_| {
                    Err(ExprError::eval(
                        "rendering the expression failed unexpectedly",
                    ))
                })
            }),
            _ => {
                let _guard = scope::enter(ctx.now, ctx.seed, vars, None);
                f()
            }
        }
    }

    fn render_in_scope(
        &self,
        template: &str,
        vars: &minijinja::Value,
    ) -> Result<String, ExprError> {
        if !needs_render(template) {
            return Ok(template.to_string());
        }
        self.bound_cache();
        let env = self.env()?;
        let compiled = match env.get_template(template) {
            Ok(t) => t,
            // the translation's own error says where; else minijinja's
            Err(e) => return Err(translate(template).err().unwrap_or_else(|| map_err(&e))),
        };
        compiled.render(vars).map_err(|e| map_err(&e))
    }

    /// Renders a template to a string. Strings without tags come back unchanged.
    pub fn render(&self, template: &str, ctx: &Context<'_>) -> Result<String, ExprError> {
        if !needs_render(template) {
            return Ok(template.to_string());
        }
        let vars = context_for(ctx.vars, &[template]);
        let v2 = vars.clone();
        self.scoped(ctx, vars, needs_host(template), move || {
            self.render_in_scope(template, &v2)
        })
    }

    /// Renders every string of a JSON value, map keys included.
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &Context<'_>,
    ) -> Result<serde_json::Value, ExprError> {
        if !any_string(value, &needs_render) {
            return Ok(value.clone());
        }
        let mut texts = Vec::new();
        strings(value, &mut texts);
        let vars = context_for(ctx.vars, &texts);
        let v2 = vars.clone();
        self.scoped(ctx, vars, any_string(value, &needs_host), move || {
            self.walk(value, &v2)
        })
    }

    fn walk(
        &self,
        value: &serde_json::Value,
        vars: &minijinja::Value,
    ) -> Result<serde_json::Value, ExprError> {
        Ok(match value {
            serde_json::Value::String(s) => {
                serde_json::Value::String(self.render_in_scope(s, vars)?)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(
                a.iter()
                    .map(|x| self.walk(x, vars))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, x) in m {
                    out.insert(self.render_in_scope(k, vars)?, self.walk(x, vars)?);
                }
                serde_json::Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Evaluates a bare Pebble expression (no braces) to a typed value.
    pub fn eval(
        &self,
        expression: &str,
        ctx: &Context<'_>,
    ) -> Result<serde_json::Value, ExprError> {
        let expr = parser::parse_expression_at(expression, 0, expression.len())?;
        let src = emit::expression(&expr, expression);
        let vars = context_for(ctx.vars, &[expression]);
        let v2 = vars.clone();
        self.scoped(ctx, vars, needs_host(expression), move || {
            let env = self
                .env
                .read()
                .map_err(|_| ExprError::eval("renderer lock poisoned"))?;
            let compiled = env.compile_expression_owned(src).map_err(|e| map_err(&e))?;
            let v = compiled.eval(v2).map_err(|e| map_err(&e))?;
            Ok(value::to_json(&v))
        })
    }
}

#[cfg(test)]
mod tests;
