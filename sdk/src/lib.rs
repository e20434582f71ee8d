//! weft-sdk: what a weft plugin author depends on.
//!
//! A weft plugin is a WebAssembly component (`wasm32-wasip2`) that provides one or more runnable
//! task types. The author writes each task as a struct of typed properties (serde +
//! [`schemars::JsonSchema`]), implements [`Task`] for it, lists the tasks in a [`Plugin`] and calls
//! [`export!`]. The SDK turns the struct into the JSON Schema weft validates flows against,
//! parses the properties of each attempt, and gives the task a [`Context`] for logs, metrics,
//! expressions, internal storage and HTTP: the only ways a plugin reaches the world.
//!
//! A complete plugin (this is what `examples/plugin-template` contains):
//!
//! ```no_run
//! use weft_sdk::{Context, Plugin, Property, Task, TaskDef};
//! use weft_sdk::schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! /// Greets someone: `type: com.example.Hello`.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase", deny_unknown_fields)]
//! struct Hello {
//!     /// Who to greet; may be an expression such as `{{ inputs.name }}`.
//!     name: Property<String>,
//!     /// How many times to say it.
//!     #[serde(default)]
//!     times: Option<Property<u32>>,
//! }
//!
//! /// What `Hello` returns: `{{ outputs.greet.greeting }}`.
//! #[derive(Serialize, JsonSchema)]
//! struct HelloOutputs {
//!     /// The greeting.
//!     greeting: String,
//! }
//!
//! impl Task for Hello {
//!     const TYPE: &'static str = "com.example.Hello";
//!     const DESCRIPTION: &'static str = "Greets someone.";
//!     type Outputs = HelloOutputs;
//!
//!     fn run(self, ctx: &Context) -> weft_sdk::Result<HelloOutputs> {
//!         let name = ctx.render(&self.name)?;
//!         let times = match &self.times {
//!             Some(t) => ctx.render(t)?,
//!             None => 1,
//!         };
//!         let greeting = vec![format!("Hello, {name}!"); times as usize].join(" ");
//!         ctx.info(&greeting);
//!         ctx.counter("greetings", f64::from(times), &[("lang", "en")]);
//!         let uri = ctx.write_file("greeting.txt", greeting.as_bytes())?;
//!         ctx.output_file("greeting.txt", &uri);
//!         Ok(HelloOutputs { greeting })
//!     }
//! }
//!
//! struct MyPlugin;
//!
//! impl Plugin for MyPlugin {
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "0.1.0";
//!     fn tasks() -> Vec<TaskDef> {
//!         vec![TaskDef::of::<Hello>()]
//!     }
//! }
//!
//! weft_sdk::export!(MyPlugin);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and put the `.wasm` file in weft's
//! plugins directory.
#![deny(missing_docs)]

extern crate self as weft_sdk;

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use schemars;
pub use serde_json;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The wit-bindgen bindings of the `weft:plugin` contract (`wit/plugin.wit`). Plugin authors do
/// not need them: [`Context`] wraps every import and [`export!`] implements the exports.
#[doc(hidden)]
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "task",
        pub_export_macro: true,
        export_macro_name: "__export_task",
        default_bindings_module: "weft_sdk::bindings",
        runtime_path: "weft_sdk::__wit_bindgen::rt",
    });
}

use bindings::weft::plugin as wit;

/// The contract version this SDK implements (the `weft:plugin` WIT package version).
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Properties every Kestra task accepts, handled by weft itself; a plugin never sees them.
pub const COMMON_PROPERTIES: &[&str] = &[
    "id",
    "type",
    "description",
    "timeout",
    "retry",
    "allowFailure",
    "allowWarning",
    "disabled",
    "runIf",
    "workerGroup",
    "logLevel",
    "logToFile",
];

/// The result of a task.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a task attempt failed. Each variant becomes the matching `task-error` of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A property is missing or has the wrong shape.
    InvalidProperties(String),
    /// Rendering an expression failed.
    Render(String),
    /// Reading or writing internal storage failed.
    Storage(String),
    /// An HTTP call failed.
    Http(String),
    /// Any other failure.
    Failed(String),
}

impl Error {
    /// A general failure with a message.
    pub fn failed(msg: impl fmt::Display) -> Self {
        Self::Failed(msg.to_string())
    }

    /// A property error with a message.
    pub fn invalid(msg: impl fmt::Display) -> Self {
        Self::InvalidProperties(msg.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidProperties(m) => write!(f, "invalid properties: {m}"),
            Self::Render(m) => write!(f, "render: {m}"),
            Self::Storage(m) => write!(f, "storage: {m}"),
            Self::Http(m) => write!(f, "http: {m}"),
            Self::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for wit::types::TaskError {
    fn from(e: Error) -> Self {
        use wit::types::TaskError as T;
        match e {
            Error::InvalidProperties(m) => T::InvalidProperties(m),
            Error::Render(m) => T::Render(m),
            Error::Storage(m) => T::Storage(m),
            Error::Http(m) => T::Http(m),
            Error::Failed(m) => T::Failed(m),
        }
    }
}

/// A property that may hold a `{{ expression }}`, rendered through the host when the task asks
/// ([`Context::render`]), as Kestra's dynamic properties. Its JSON Schema accepts either a `T` or a
/// string (an expression).
pub struct Property<T> {
    raw: Value,
    _t: PhantomData<fn() -> T>,
}

impl<T> Property<T> {
    /// A property holding a literal value or an expression.
    pub fn new(raw: Value) -> Self {
        Self {
            raw,
            _t: PhantomData,
        }
    }

    /// The value as written in the flow, not rendered.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

impl<T> Clone for Property<T> {
    fn clone(&self) -> Self {
        Self::new(self.raw.clone())
    }
}

impl<T> fmt::Debug for Property<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Property({})", self.raw)
    }
}

impl<'de, T> serde::Deserialize<'de> for Property<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Value::deserialize(d).map(Self::new)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Property<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Property_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let inner = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [inner, { "type": "string", "description": "an expression: {{ ... }}" }]
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// A runnable task type: a struct of properties that runs.
pub trait Task: DeserializeOwned + schemars::JsonSchema {
    /// The Kestra type name, e.g. `io.kestra.plugin.core.debug.Return`.
    const TYPE: &'static str;
    /// Older names that also select this type.
    const ALIASES: &'static [&'static str] = &[];
    /// One line saying what the task does.
    const DESCRIPTION: &'static str;
    /// The outputs of a successful run.
    type Outputs: Serialize + schemars::JsonSchema;

    /// Run one attempt.
    fn run(self, ctx: &Context) -> Result<Self::Outputs>;
}

/// One task type of a plugin, as [`Plugin::tasks`] lists it.
pub struct TaskDef {
    name: &'static str,
    aliases: &'static [&'static str],
    description: &'static str,
    properties_schema: fn() -> Value,
    outputs_schema: fn() -> Value,
    run: fn(&Context, Value) -> Result<Value>,
}

impl TaskDef {
    /// The definition of a [`Task`] type.
    pub fn of<T: Task>() -> Self {
        Self {
            name: T::TYPE,
            aliases: T::ALIASES,
            description: T::DESCRIPTION,
            properties_schema: || schema_of::<T>(),
            outputs_schema: || schema_of::<T::Outputs>(),
            run: run_task::<T>,
        }
    }

    /// Whether `type_name` selects this task (its name or an alias).
    pub fn answers_to(&self, type_name: &str) -> bool {
        self.name == type_name || self.aliases.contains(&type_name)
    }
}

fn schema_of<T: schemars::JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    let schema = settings.into_generator().into_root_schema_for::<T>();
    schema.to_value()
}

fn run_task<T: Task>(ctx: &Context, mut props: Value) -> Result<Value> {
    if let Value::Object(map) = &mut props {
        for k in COMMON_PROPERTIES {
            map.remove(*k);
        }
    }
    let task: T =
        serde_json::from_value(props).map_err(|e| Error::InvalidProperties(e.to_string()))?;
    let outputs = task.run(ctx)?;
    serde_json::to_value(outputs).map_err(|e| Error::failed(format!("outputs are not JSON: {e}")))
}

/// A plugin: a set of task types with a name and a version.
pub trait Plugin {
    /// The plugin name, e.g. `core`.
    const NAME: &'static str;
    /// The plugin version (semver).
    const VERSION: &'static str;
    /// The task types.
    fn tasks() -> Vec<TaskDef>;
}

/// The environment of one task attempt: where it runs, and the host's services.
#[derive(Debug, Clone)]
pub struct Context {
    /// Namespace of the flow.
    pub namespace: String,
    /// Flow id.
    pub flow_id: String,
    /// Execution id.
    pub execution_id: String,
    /// Task id.
    pub task_id: String,
    /// Task run id.
    pub task_run_id: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The type name the flow used (may be an alias).
    pub task_type: String,
}

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// TRACE
    Trace,
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARN
    Warn,
    /// ERROR
    Error,
}

impl Level {
    /// Parse `TRACE`, `debug`, ... (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TRACE" => Some(Self::Trace),
            "DEBUG" => Some(Self::Debug),
            "INFO" => Some(Self::Info),
            "WARN" | "WARNING" => Some(Self::Warn),
            "ERROR" => Some(Self::Error),
            _ => None,
        }
    }
}

/// An HTTP request sent through the host ([`Context::http`]).
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Absolute URI.
    pub uri: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Vec<u8>>,
    /// Timeout for the whole exchange, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Largest response body accepted.
    pub max_body_bytes: Option<u64>,
    /// Follow redirects (default true).
    pub follow_redirects: Option<bool>,
}

impl HttpRequest {
    /// A `GET` of `uri`.
    pub fn get(uri: impl Into<String>) -> Self {
        Self {
            method: "GET".into(),
            uri: uri.into(),
            ..Self::default()
        }
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A response whose body was streamed into an internal-storage file ([`Context::download`]).
#[derive(Debug, Clone)]
pub struct StoredResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The `kestra:///...` URI of the file holding the body.
    pub uri: String,
    /// Size of the body in bytes.
    pub length: u64,
}

/// Why an HTTP request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host is not on the allow-list.
    Denied(String),
    /// The request is malformed.
    InvalidRequest(String),
    /// Timed out.
    Timeout,
    /// The body is larger than the cap.
    TooLarge(u64),
    /// Connection or protocol failure.
    Transport(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "denied: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Self::Timeout => f.write_str("timed out"),
            Self::TooLarge(n) => write!(f, "response body larger than {n} bytes"),
            Self::Transport(m) => write!(f, "transport: {m}"),
        }
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        Error::Http(e.to_string())
    }
}

impl Context {
    /// Log a line at a level.
    pub fn log(&self, level: Level, message: &str) {
        use wit::types::Level as L;
        let l = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        wit::log::log(l, message);
    }

    /// Log at INFO.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    /// Log at WARN.
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// Log at DEBUG.
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }

    /// Log at ERROR.
    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }

    /// Add to a counter metric.
    pub fn counter(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        wit::metrics::counter(name, value, &to_tags(tags));
    }

    /// Record a duration for a timer metric.
    pub fn timer(&self, name: &str, duration: std::time::Duration, tags: &[(&str, &str)]) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wit::metrics::timer(name, nanos, &to_tags(tags));
    }

    /// Render a template string (`{{ ... }}`) in the task's context.
    pub fn render_str(&self, template: &str) -> Result<String> {
        if !has_template(template) {
            return Ok(template.to_string());
        }
        wit::render::render(template).map_err(Error::Render)
    }

    /// Render a dynamic property: every string in it that holds an expression is rendered, then
    /// the result is read as a `T` (a rendered string that is JSON, e.g. `"3"` for a number, is
    /// parsed as JSON when `T` is not a string).
    pub fn render<T: DeserializeOwned>(&self, prop: &Property<T>) -> Result<T> {
        let rendered = self.render_value(prop.raw())?;
        match serde_json::from_value::<T>(rendered.clone()) {
            Ok(v) => Ok(v),
            Err(first) => {
                if let Value::String(s) = &rendered
                    && let Ok(parsed) = serde_json::from_str::<Value>(s)
                    && let Ok(v) = serde_json::from_value::<T>(parsed)
                {
                    return Ok(v);
                }
                Err(Error::InvalidProperties(first.to_string()))
            }
        }
    }

    /// Render every string holding an expression inside a JSON value.
    pub fn render_value(&self, value: &Value) -> Result<Value> {
        Ok(match value {
            Value::String(s) => Value::String(self.render_str(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v))
                    .collect::<Result<_>>()?,
            ),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, v) in map {
                    out.insert(self.render_str(k)?, self.render_value(v)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Read a whole internal-storage file by its `kestra:///...` URI.
    pub fn read_file(&self, uri: &str) -> Result<Vec<u8>> {
        wit::storage::read(uri).map_err(Error::Storage)
    }

    /// Write a file of this task run to internal storage; returns its `kestra:///...` URI.
    pub fn write_file(&self, name: &str, data: &[u8]) -> Result<String> {
        wit::storage::write(name, data).map_err(Error::Storage)
    }

    /// The size of an internal-storage file.
    pub fn file_size(&self, uri: &str) -> Result<u64> {
        wit::storage::size(uri).map_err(Error::Storage)
    }

    /// Delete an internal-storage file; returns whether it existed.
    pub fn delete_file(&self, uri: &str) -> Result<bool> {
        wit::storage::delete(uri).map_err(Error::Storage)
    }

    /// The attempt's working directory, when the host granted one (tasks inside a
    /// `WorkingDirectory` share one): the folder `/`, read and written with `std::fs`. `None`
    /// when the attempt has no file system at all (the default).
    pub fn work_dir(&self) -> Option<&'static std::path::Path> {
        let root = std::path::Path::new("/");
        std::fs::read_dir(root).is_ok().then_some(root)
    }

    /// Report a file as one of the task run's output files.
    pub fn output_file(&self, name: &str, uri: &str) {
        wit::storage::output_file(name, uri);
    }

    /// Send an HTTP request through the host (checked against the allow-list).
    pub fn http(&self, req: &HttpRequest) -> Result<HttpResponse, HttpError> {
        wit::http::send(&wit_request(req))
            .map(|resp| HttpResponse {
                status: resp.status,
                headers: resp.headers,
                body: resp.body,
            })
            .map_err(http_error)
    }

    /// Send an HTTP request through the host and stream the response body into a file of this task
    /// run named `name`, without holding it in the plugin's memory (for downloads of any size).
    pub fn download(&self, req: &HttpRequest, name: &str) -> Result<StoredResponse, HttpError> {
        wit::http::download(&wit_request(req), name)
            .map(|resp| StoredResponse {
                status: resp.status,
                headers: resp.headers,
                uri: resp.uri,
                length: resp.length,
            })
            .map_err(http_error)
    }
}

fn wit_request(req: &HttpRequest) -> wit::http::Request {
    wit::http::Request {
        method: req.method.clone(),
        uri: req.uri.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        timeout_ms: req.timeout_ms,
        max_body_bytes: req.max_body_bytes,
        follow_redirects: req.follow_redirects,
    }
}

fn http_error(e: wit::http::HttpError) -> HttpError {
    use wit::http::HttpError as E;
    match e {
        E::Denied(m) => HttpError::Denied(m),
        E::InvalidRequest(m) => HttpError::InvalidRequest(m),
        E::Timeout => HttpError::Timeout,
        E::TooLarge(n) => HttpError::TooLarge(n),
        E::Transport(m) => HttpError::Transport(m),
    }
}

fn to_tags(tags: &[(&str, &str)]) -> Vec<wit::types::Tag> {
    tags.iter()
        .map(|(k, v)| wit::types::Tag {
            key: (*k).to_string(),
            value: (*v).to_string(),
        })
        .collect()
}

#[doc(hidden)]
pub fn __describe<P: Plugin>() -> wit::types::PluginInfo {
    wit::types::PluginInfo {
        name: P::NAME.to_string(),
        version: P::VERSION.to_string(),
        tasks: P::tasks()
            .into_iter()
            .map(|t| wit::types::TaskType {
                name: t.name.to_string(),
                aliases: t.aliases.iter().map(|a| (*a).to_string()).collect(),
                description: t.description.to_string(),
                properties_schema: (t.properties_schema)().to_string(),
                outputs_schema: (t.outputs_schema)().to_string(),
            })
            .collect(),
    }
}

#[doc(hidden)]
pub fn __run<P: Plugin>(
    ctx: wit::types::TaskContext,
    properties: String,
) -> std::result::Result<String, wit::types::TaskError> {
    let ctx = Context {
        namespace: ctx.namespace,
        flow_id: ctx.flow_id,
        execution_id: ctx.execution_id,
        task_id: ctx.task_id,
        task_run_id: ctx.task_run_id,
        attempt: ctx.attempt,
        task_type: ctx.task_type,
    };
    let tasks = P::tasks();
    let Some(def) = tasks.iter().find(|t| t.answers_to(&ctx.task_type)) else {
        return Err(Error::failed(format!(
            "plugin {} has no task type {}",
            P::NAME,
            ctx.task_type
        ))
        .into());
    };
    let props: Value = serde_json::from_str(&properties)
        .map_err(|e| Error::InvalidProperties(format!("properties are not JSON: {e}")))?;
    let out = (def.run)(&ctx, props)?;
    Ok(out.to_string())
}

/// Export a [`Plugin`] as the component's `weft:plugin/plugin` implementation.
///
/// ```ignore
/// weft_sdk::export!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __WeftPluginExport;

        impl $crate::bindings::exports::weft::plugin::plugin::Guest for __WeftPluginExport {
            fn describe() -> $crate::bindings::weft::plugin::types::PluginInfo {
                $crate::__describe::<$plugin>()
            }

            fn run(
                context: $crate::bindings::weft::plugin::types::TaskContext,
                properties: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::weft::plugin::types::TaskError,
            > {
                $crate::__run::<$plugin>(context, properties)
            }
        }

        $crate::bindings::__export_task!(__WeftPluginExport);
    };
}
