//! The type registry the CLI validates and runs flows with: weft's built-in types, with the task
//! types of the loaded WASM plugins registered the same way (a plugin's own description replaces
//! the built-in declaration of a core runnable task).

use std::path::Path;

use anyhow::Context;
use weft_flow::Registry;
use weft_flow::registry::{Provider, TaskKind, TypeDef};
use weft_flow::schema::Category;

/// weft's built-in types only (no plugin loaded).
pub(crate) fn load() -> anyhow::Result<Registry> {
    Ok(Registry::core())
}

/// The plugin engine with the embedded core plugin and the plugins of `dir`, and the registry
/// with their task types.
pub(crate) async fn load_with_plugins(
    dir: Option<&Path>,
) -> anyhow::Result<(weft_engine::Registry, Registry)> {
    let engine = weft_engine::Engine::new(weft_engine::EngineConfig::from_env())
        .context("cannot start the plugin engine")?;
    let plugins = weft_engine::Registry::load_default(&engine, dir)
        .await
        .context("cannot load the plugins")?;
    for e in plugins.load_errors() {
        eprintln!("warning: {e}");
    }
    let mut registry = Registry::core();
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
        registry
            .register(def)
            .with_context(|| format!("cannot register task type {}", t.name))?;
    }
    Ok((plugins, registry))
}
