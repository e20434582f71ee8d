//! Compile once: components are keyed by the sha256 of their bytes, kept in memory for the life
//! of the engine and cached precompiled on disk so a new process does not recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::engine::Engine;
use crate::registry::LoadError;

/// The hex sha256 of bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn compat_tag(engine: &wasmtime::Engine) -> String {
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{:016x}", h.finish())
}

fn cache_path(dir: &Path, engine: &wasmtime::Engine, sha: &str) -> PathBuf {
    dir.join(format!("{sha}-{}.cwasm", compat_tag(engine)))
}

/// Deserialize precompiled code.
#[allow(unsafe_code)]
fn deserialize_own(engine: &wasmtime::Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `path` is in weft's own cache directory under a name made of the sha256 of the
    // source component and of this engine's compatibility hash; weft writes these files itself
    // (write to a temporary name, then rename), from `Engine::precompile_component`. wasmtime
    // checks the header and the engine compatibility before using the code.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Deserialize bytes just produced by `precompile_component`.
#[allow(unsafe_code)]
fn deserialize_fresh(engine: &wasmtime::Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `bytes` were returned by `Engine::precompile_component` on this very engine a
    // moment ago; they never left the process.
    unsafe { Component::deserialize(engine, bytes) }
}

impl Engine {
    /// The compiled component for these bytes, and their sha256: from memory, from the disk
    /// cache, or compiled now (and written to the disk cache).
    pub(crate) fn component(&self, bytes: &[u8]) -> Result<(Component, String), LoadError> {
        let sha = sha256_hex(bytes);
        if let Ok(map) = self.inner.compiled.lock()
            && let Some(c) = map.get(&sha)
        {
            return Ok((c.clone(), sha));
        }
        let engine = &self.inner.wasmtime;
        let path = self
            .inner
            .config
            .cache_dir
            .as_deref()
            .map(|d| cache_path(d, engine, &sha));
        let mut component = None;
        if let Some(p) = &path
            && p.is_file()
        {
            match deserialize_own(engine, p) {
                Ok(c) => component = Some(c),
                Err(e) => tracing::warn!("ignoring cached {}: {e}", p.display()),
            }
        }
        let component = match component {
            Some(c) => c,
            None => {
                let pre = engine
                    .precompile_component(bytes)
                    .map_err(|e| LoadError::Invalid(format!("not a valid component: {e:#}")))?;
                if let Some(p) = &path {
                    write_cache(p, &pre);
                }
                deserialize_fresh(engine, &pre)
                    .map_err(|e| LoadError::Invalid(format!("cannot load compiled code: {e:#}")))?
            }
        };
        if let Ok(mut map) = self.inner.compiled.lock() {
            map.insert(sha.clone(), component.clone());
        }
        Ok((component, sha))
    }
}

fn write_cache(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::warn!("cannot create the plugin cache {}: {e}", dir.display());
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!("cannot write the plugin cache {}: {e}", path.display());
    }
}
