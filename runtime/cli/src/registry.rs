//! The type registry the CLI validates and runs flows with: weft's built-in types, with the task
//! types of the loaded WASM plugins registered the same way (see `weft_server::setup`).

use std::path::Path;

use anyhow::Context;
use weft_flow::Registry;

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
    let registry = weft_server::setup::registry_with(&plugins)?;
    Ok((plugins, registry))
}
