//! Loading plugins and the registry of the task types they describe.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use wasmtime::component::types::ComponentItem;

use crate::bindings::TaskPre;
use crate::engine::Engine;
use crate::state::AttemptState;
use crate::{CONTRACT_VERSION, PLUGIN_INTERFACE};

/// Why a plugin (or the engine) could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The engine could not be built.
    #[error("engine: {0}")]
    Engine(String),
    /// A plugins directory or file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The bytes are not a valid component.
    #[error("{0}")]
    Invalid(String),
    /// The component was built for another version of the contract.
    #[error(
        "{source_name}: built for weft:plugin@{found}, but this weft runs plugins of weft:plugin@{expected}; rebuild the plugin with a weft-sdk of contract {expected}"
    )]
    ContractVersion {
        /// The plugin.
        source_name: String,
        /// The version it exports.
        found: String,
        /// The version this engine implements.
        expected: String,
    },
    /// The component is not a weft plugin, or imports what weft does not provide.
    #[error("{source_name}: {message}")]
    NotAPlugin {
        /// The plugin.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// `describe` failed or returned something unusable.
    #[error("{source_name}: describe failed: {message}")]
    Describe {
        /// The plugin.
        source_name: String,
        /// What failed.
        message: String,
    },
}

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PluginSource {
    /// Embedded in the binary.
    Embedded(String),
    /// A `.wasm` file.
    File(PathBuf),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded(n) => write!(f, "embedded:{n}"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One task type, as its plugin describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskType {
    /// Kestra type name.
    pub name: String,
    /// Older names that also select it.
    pub aliases: Vec<String>,
    /// One line saying what it does.
    pub description: String,
    /// JSON Schema of its own properties (the common task properties are not included).
    pub properties_schema: Value,
    /// JSON Schema of its outputs.
    pub outputs_schema: Value,
    /// The plugin providing it.
    pub plugin: String,
    /// The plugin's version.
    pub plugin_version: String,
}

/// A loaded plugin.
pub struct Plugin {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it came from.
    pub source: PluginSource,
    /// sha256 of its bytes.
    pub sha256: String,
    /// Its task types.
    pub task_types: Vec<TaskType>,
    pub(crate) pre: TaskPre<AttemptState>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("source", &self.source)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The loaded plugins and their task types.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) engine: Engine,
    plugins: Vec<Arc<Plugin>>,
    /// type name or alias -> (plugin index, task type index)
    by_name: HashMap<String, (usize, usize)>,
    errors: Vec<LoadError>,
}

/// The default plugins directory: `plugins/` next to the running binary.
pub fn default_plugins_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("plugins")))
}

impl Registry {
    /// An empty registry.
    pub fn new(engine: &Engine) -> Self {
        Self {
            engine: engine.clone(),
            plugins: Vec::new(),
            by_name: HashMap::new(),
            errors: Vec::new(),
        }
    }

    /// The core plugin embedded in the binary, then the `.wasm` files of `dir` (if given and
    /// present; by default `plugins/` next to the binary). A plugin of the directory that fails
    /// to load is skipped and reported in [`Registry::load_errors`].
    pub async fn load_default(engine: &Engine, dir: Option<&Path>) -> Result<Self, LoadError> {
        let mut r = Self::new(engine);
        r.add_component(weft_plugins::CORE, PluginSource::Embedded("core".into()))
            .await?;
        let default_dir = default_plugins_dir();
        let dir = dir.or(default_dir.as_deref());
        if let Some(dir) = dir {
            let errors = r.add_dir(dir).await;
            r.errors.extend(errors);
        }
        Ok(r)
    }

    /// Load every `*.wasm` file of a directory (sorted by name); a missing directory is empty.
    /// Returns the errors of the files that could not be loaded.
    pub async fn add_dir(&mut self, dir: &Path) -> Vec<LoadError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                return vec![LoadError::Io {
                    path: dir.to_path_buf(),
                    message: e.to_string(),
                }];
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        let mut errors = Vec::new();
        for f in files {
            if let Err(e) = self.add_file(&f).await {
                tracing::warn!("skipping plugin {}: {e}", f.display());
                errors.push(e);
            }
        }
        errors
    }

    /// Load one `.wasm` file.
    pub async fn add_file(&mut self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        self.add_component(&bytes, PluginSource::File(path.to_path_buf()))
            .await
    }

    /// Load a component from bytes. Its task types replace those of the same name loaded before
    /// (so a plugins directory can override the embedded core plugin).
    pub async fn add_component(
        &mut self,
        bytes: &[u8],
        source: PluginSource,
    ) -> Result<Arc<Plugin>, LoadError> {
        let source_name = source.to_string();
        let (component, sha256) = self.engine.component(bytes).map_err(|e| match e {
            LoadError::Invalid(m) => LoadError::Invalid(format!("{source_name}: {m}")),
            other => other,
        })?;
        check_contract(&self.engine, &component, &source_name)?;
        let instance_pre = self
            .engine
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::NotAPlugin {
                source_name: source_name.clone(),
                message: format!("it imports something weft does not provide: {e:#}"),
            })?;
        let pre = TaskPre::new(instance_pre).map_err(|e| LoadError::NotAPlugin {
            source_name: source_name.clone(),
            message: format!("{e:#}"),
        })?;
        let info = crate::run::describe(&self.engine, &pre)
            .await
            .map_err(|message| LoadError::Describe {
                source_name: source_name.clone(),
                message,
            })?;
        let mut task_types = Vec::new();
        for t in info.tasks {
            let parse = |what: &str, s: &str| {
                serde_json::from_str::<Value>(s).map_err(|e| LoadError::Describe {
                    source_name: source_name.clone(),
                    message: format!("{}: {what} is not JSON: {e}", t.name),
                })
            };
            task_types.push(TaskType {
                properties_schema: parse("properties-schema", &t.properties_schema)?,
                outputs_schema: parse("outputs-schema", &t.outputs_schema)?,
                name: t.name.clone(),
                aliases: t.aliases.clone(),
                description: t.description.clone(),
                plugin: info.name.clone(),
                plugin_version: info.version.clone(),
            });
        }
        let plugin = Arc::new(Plugin {
            name: info.name,
            version: info.version,
            source,
            sha256,
            task_types,
            pre,
        });
        let idx = self.plugins.len();
        for (ti, t) in plugin.task_types.iter().enumerate() {
            for n in std::iter::once(&t.name).chain(t.aliases.iter()) {
                if let Some((old, _)) = self.by_name.insert(n.clone(), (idx, ti)) {
                    tracing::info!(
                        "task type {n} of {} replaces the one of {}",
                        plugin.source,
                        self.plugins[old].source
                    );
                }
            }
        }
        self.plugins.push(plugin.clone());
        Ok(plugin)
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// Every task type that is selected by its name (not shadowed), sorted by name.
    pub fn task_types(&self) -> Vec<&TaskType> {
        let mut v: Vec<&TaskType> = self
            .by_name
            .iter()
            .filter_map(|(n, (p, t))| {
                let tt = &self.plugins[*p].task_types[*t];
                (tt.name == *n).then_some(tt)
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The task type selected by a name or alias.
    pub fn task_type(&self, name: &str) -> Option<&TaskType> {
        self.by_name
            .get(name)
            .map(|(p, t)| &self.plugins[*p].task_types[*t])
    }

    pub(crate) fn plugin_for(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.by_name.get(name).map(|(p, _)| &self.plugins[*p])
    }

    /// Plugins of the directory that could not be loaded.
    pub fn load_errors(&self) -> &[LoadError] {
        &self.errors
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A component must export `weft:plugin/plugin@0.1.0`; another version is refused by name.
fn check_contract(
    engine: &Engine,
    component: &wasmtime::component::Component,
    source_name: &str,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    let mut found = Vec::new();
    for (name, item) in ty.exports(&engine.inner.wasmtime) {
        if let Some(version) = name.strip_prefix(&format!("{PLUGIN_INTERFACE}@")) {
            if version == CONTRACT_VERSION && matches!(item.ty, ComponentItem::ComponentInstance(_))
            {
                return Ok(());
            }
            return Err(LoadError::ContractVersion {
                source_name: source_name.to_string(),
                found: version.to_string(),
                expected: CONTRACT_VERSION.to_string(),
            });
        }
        found.push(name.to_string());
    }
    Err(LoadError::NotAPlugin {
        source_name: source_name.to_string(),
        message: format!(
            "not a weft plugin: it exports [{}], not {PLUGIN_INTERFACE}@{CONTRACT_VERSION}",
            found.join(", ")
        ),
    })
}
