//! weft-engine: runs runnable tasks as sandboxed WebAssembly components. The only crate of weft
//! that depends on wasmtime.
//!
//! One [`Engine`] per process (component model, fuel, epoch interruption, the pooling allocator
//! where the machine supports it, a ticker thread for wall-time limits). A [`Registry`] loads
//! plugins (the embedded core plugin and a plugins directory), compiles each once (keyed by the
//! sha256 of its bytes, cached precompiled on disk), asks each to `describe` its task types, and
//! runs attempts: [`Registry::run_attempt`] builds a fresh `Store` from the pre-instantiated
//! component, applies the [`Limits`], and returns an [`AttemptOutcome`] whose failures are typed
//! ([`AttemptFailure`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_engine::LoadError> {
//! use std::sync::Arc;
//! use weft_engine::{AttemptRequest, Engine, EngineConfig, MemoryHost, Registry, TaskContext};
//!
//! let engine = Engine::new(EngineConfig::from_env())?;
//! let registry = Registry::load_default(&engine, None).await?;
//! let outcome = registry
//!     .run_attempt(AttemptRequest::new(
//!         "io.kestra.plugin.core.debug.Return",
//!         serde_json::json!({ "format": "{{ inputs.name }}" }),
//!         TaskContext::example(),
//!         Arc::new(MemoryHost::new()),
//!     ).with_variables(serde_json::json!({ "inputs": { "name": "world" } })))
//!     .await;
//! assert_eq!(outcome.result.ok(), Some(serde_json::json!({ "value": "world" })));
//! # Ok(()) }
//! ```

mod cache;
mod config;
mod engine;
mod host;
mod http;
mod outcome;
mod registry;
mod run;
mod state;

pub use config::{EngineConfig, Limits, Pooling};
pub use engine::Engine;
pub use host::{BoxFuture, MemoryHost, TaskHost};
pub use http::AllowList;
pub use outcome::{AttemptFailure, AttemptOutcome, Level, LogLine, Metric, MetricKind, TaskError};
pub use registry::{LoadError, Plugin, PluginSource, Registry, TaskType, default_plugins_dir};
pub use run::{AttemptRequest, TaskContext};

/// The `weft:plugin` contract version this engine implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The name of the interface a plugin exports.
pub(crate) const PLUGIN_INTERFACE: &str = "weft:plugin/plugin";

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "task",
        imports: {
            "weft:plugin/storage": async,
            "weft:plugin/http": async,
        },
        exports: { default: async },
    });
}
