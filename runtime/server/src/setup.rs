//! What every command that runs flows sets up the same way: the WASM plugin engine with the
//! embedded core plugin (and a folder of extra plugins), the type registry with the plugins'
//! task types registered (a plugin's own description replaces the built-in declaration of a
//! core runnable task), the expression renderer, and the storage URL.

use std::path::Path;
use std::sync::Arc;

use weft_flow::expr::Renderer;
use weft_flow::registry::{Provider, TaskKind, TypeDef};
use weft_flow::schema::Category;

/// Why the set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The plugin engine did not start.
    #[error("cannot start the plugin engine: {0}")]
    Engine(String),
    /// The plugins could not be loaded.
    #[error("cannot load the plugins: {0}")]
    Plugins(String),
    /// A plugin's task type could not be registered.
    #[error("cannot register task type {name}: {reason}")]
    Register {
        /// The task type.
        name: String,
        /// Why.
        reason: String,
    },
    /// The storage folder cannot be created or resolved.
    #[error("storage folder {path}: {source}")]
    StorageDir {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The plugin engine, the type registry and the renderer, shared by every execution.
#[derive(Clone)]
pub struct Setup {
    /// The plugins and their engine.
    pub engine: Arc<weft_engine::Registry>,
    /// The types flows are validated against.
    pub registry: Arc<weft_flow::Registry>,
    /// The expression renderer.
    pub renderer: Arc<Renderer>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup").finish_non_exhaustive()
    }
}

impl Setup {
    /// Loads the embedded core plugin and the plugins of `dir`. Plugins of `dir` that fail to load
    /// are skipped with a warning (returned in the second element).
    pub async fn load(dir: Option<&Path>) -> Result<(Setup, Vec<String>), SetupError> {
        Self::load_with(weft_engine::EngineConfig::from_env(), dir).await
    }

    /// As [`Setup::load`], with an engine configured by `config` instead of the environment.
    pub async fn load_with(
        config: weft_engine::EngineConfig,
        dir: Option<&Path>,
    ) -> Result<(Setup, Vec<String>), SetupError> {
        let engine =
            weft_engine::Engine::new(config).map_err(|e| SetupError::Engine(e.to_string()))?;
        let plugins = weft_engine::Registry::load_default(&engine, dir)
            .await
            .map_err(|e| SetupError::Plugins(e.to_string()))?;
        let warnings = plugins
            .load_errors()
            .iter()
            .map(|e| e.to_string())
            .collect();
        let registry = registry_with(&plugins)?;
        Ok((
            Setup {
                engine: Arc::new(plugins),
                registry: Arc::new(registry),
                renderer: Arc::new(Renderer::new()),
            },
            warnings,
        ))
    }
}

/// weft's built-in types with the task types of `plugins` registered.
pub fn registry_with(plugins: &weft_engine::Registry) -> Result<weft_flow::Registry, SetupError> {
    let mut registry = weft_flow::Registry::core();
    for t in plugins.task_types() {
        let flowable = registry
            .get(Category::Task, &t.name)
            .is_some_and(|d| d.kind == Some(TaskKind::Flowable));
        if flowable {
            continue;
        }
        let mut def = TypeDef::plugin_task(
            &t.name,
            t.aliases.clone(),
            &t.properties_schema,
            Provider::Plugin {
                name: t.plugin.clone(),
                version: t.plugin_version.clone(),
            },
        );
        def.description = Some(t.description.clone());
        def.outputs = Some(t.outputs_schema.clone());
        if let Some(core) = registry.get(Category::Task, &t.name) {
            def.deprecated = core.deprecated.clone();
        }
        registry.register(def).map_err(|e| SetupError::Register {
            name: t.name.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(registry)
}

/// A storage URL from what a user gave: a URL (`s3://bucket/prefix`, `file:///path`,
/// `memory://`) as it is, or a folder (created if missing) as `file:///absolute/path`.
pub fn storage_url(store: &str) -> Result<String, SetupError> {
    if store.contains("://") {
        return Ok(store.to_string());
    }
    let err = |source| SetupError::StorageDir {
        path: store.to_string(),
        source,
    };
    std::fs::create_dir_all(store).map_err(err)?;
    let abs = std::fs::canonicalize(store).map_err(err)?;
    Ok(format!("file://{}", abs.display()))
}
