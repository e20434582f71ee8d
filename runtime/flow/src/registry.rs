//! The type registry: every task, trigger, condition, input, retry and SLA type weft knows, with
//! Kestra's names, their legacy aliases and their property schemas.
//!
//! Flowable tasks, triggers and conditions are built into weft (`core_types`). Runnable tasks are
//! provided by WASM plugins, which describe their types (name, aliases, JSON Schema of properties);
//! both kinds go through [`Registry::register`] as a [`TypeDef`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::check::Checker;
use crate::diagnostic::FieldPath;
use crate::schema::{Category, ObjectSchema, Schema};
use crate::yaml::Node;

/// Whether a task decides what runs next (in the executor) or does work (in a plugin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Runs inside the executor (Sequential, Parallel, ForEach, ...).
    Flowable,
    /// Runs in a WASM plugin (Log, Return, HTTP, ...).
    Runnable,
}

/// Extra checks of one type beyond its schema (e.g. Dag cycles), run on its YAML node.
pub type Hook = fn(&mut Checker<'_>, &Node, &FieldPath);

/// Where a type comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Built into weft.
    Core,
    /// A WASM plugin.
    Plugin {
        /// The plugin's name.
        name: String,
        /// The plugin's version.
        version: String,
    },
}

/// One type of the registry.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// Its category.
    pub category: Category,
    /// Its canonical (current Kestra) name.
    pub name: String,
    /// Other names it answers to (Kestra's legacy names).
    pub aliases: Vec<String>,
    /// For tasks: flowable or runnable.
    pub kind: Option<TaskKind>,
    /// Its own properties (the category's common ones are added by the checker).
    pub props: Arc<ObjectSchema>,
    /// A deprecation note: using the type is a warning.
    pub deprecated: Option<String>,
    /// Extra checks.
    pub hook: Option<Hook>,
    /// Who provides it.
    pub provider: Provider,
    /// A description of its outputs (JSON Schema), when known.
    pub outputs: Option<serde_json::Value>,
    /// Human description.
    pub description: Option<String>,
}

impl TypeDef {
    /// A core type with these properties.
    pub fn core(category: Category, name: &str, props: Schema) -> Self {
        let props = match props {
            Schema::Object(o) => o,
            _ => Arc::new(ObjectSchema::default()),
        };
        TypeDef {
            category,
            name: name.to_string(),
            aliases: Vec::new(),
            kind: (category == Category::Task).then_some(TaskKind::Flowable),
            props,
            deprecated: None,
            hook: None,
            provider: Provider::Core,
            outputs: None,
            description: None,
        }
    }

    /// A runnable task type described by a plugin with a JSON Schema of its properties.
    pub fn plugin_task(
        name: &str,
        aliases: Vec<String>,
        properties: &serde_json::Value,
        provider: Provider,
    ) -> Self {
        let props = match Schema::from_json_schema(properties) {
            Schema::Object(o) => o,
            _ => Arc::new(ObjectSchema {
                props: Vec::new(),
                additional: Some(Box::new(Schema::Any)),
            }),
        };
        TypeDef {
            category: Category::Task,
            name: name.to_string(),
            aliases,
            kind: Some(TaskKind::Runnable),
            props,
            deprecated: None,
            hook: None,
            provider,
            outputs: None,
            description: None,
        }
    }

    /// Adds legacy names.
    pub fn aliases(mut self, aliases: &[&str]) -> Self {
        self.aliases.extend(aliases.iter().map(|a| a.to_string()));
        self
    }

    /// Marks it deprecated.
    pub fn deprecated(mut self, note: &str) -> Self {
        self.deprecated = Some(note.to_string());
        self
    }

    /// Adds an extra check.
    pub fn hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Marks a task type runnable.
    pub fn runnable(mut self) -> Self {
        self.kind = Some(TaskKind::Runnable);
        self
    }
}

/// A name registered twice by different providers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{category} type `{name}` is already registered (by {existing})")]
pub struct RegistryError {
    /// The category noun.
    pub category: &'static str,
    /// The conflicting name.
    pub name: String,
    /// Who registered it first.
    pub existing: String,
}

/// All known types, by category and name (canonical names and aliases).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: HashMap<(Category, String), Arc<TypeDef>>,
    common: BTreeMap<Category, Arc<ObjectSchema>>,
    common_hooks: HashMap<Category, Hook>,
}

impl Registry {
    /// An empty registry (no types at all).
    pub fn empty() -> Self {
        Registry::default()
    }

    /// The registry of weft's built-in types: flowable tasks, triggers, conditions, inputs,
    /// retries and SLAs, with the core runnable task types declared until plugins replace them.
    pub fn core() -> Self {
        let mut r = Registry::default();
        crate::core_types::register(&mut r);
        r
    }

    /// Sets the properties every type of a category has (e.g. a task's `id`, `retry`, ...).
    pub fn set_common(&mut self, category: Category, props: Schema, hook: Option<Hook>) {
        if let Schema::Object(o) = props {
            self.common.insert(category, o);
        }
        if let Some(h) = hook {
            self.common_hooks.insert(category, h);
        }
    }

    /// The common properties of a category.
    pub fn common(&self, category: Category) -> Option<&Arc<ObjectSchema>> {
        self.common.get(&category)
    }

    /// The check run on every object of a category.
    pub fn common_hook(&self, category: Category) -> Option<Hook> {
        self.common_hooks.get(&category).copied()
    }

    /// Registers a type under its name and aliases. A plugin may replace a core declaration of
    /// a runnable task; any other clash is an error.
    pub fn register(&mut self, def: TypeDef) -> Result<(), RegistryError> {
        let def = Arc::new(def);
        let names: Vec<String> = std::iter::once(def.name.clone())
            .chain(def.aliases.iter().cloned())
            .collect();
        for name in &names {
            if let Some(existing) = self.types.get(&(def.category, name.clone())) {
                let replaceable = existing.provider == Provider::Core
                    && existing.kind == Some(TaskKind::Runnable)
                    && def.provider != Provider::Core;
                if !replaceable && existing.provider != def.provider {
                    return Err(RegistryError {
                        category: def.category.noun(),
                        name: name.clone(),
                        existing: match &existing.provider {
                            Provider::Core => "weft".to_string(),
                            Provider::Plugin { name, version } => {
                                format!("plugin {name} {version}")
                            }
                        },
                    });
                }
            }
        }
        for name in names {
            self.types.insert((def.category, name), Arc::clone(&def));
        }
        Ok(())
    }

    /// The type called `name` (canonical name or alias) in a category.
    pub fn get(&self, category: Category, name: &str) -> Option<&Arc<TypeDef>> {
        self.types.get(&(category, name.to_string()))
    }

    /// The canonical name of a task type, for a name or an alias.
    pub fn canonical_task_type<'a>(&'a self, name: &'a str) -> &'a str {
        self.get(Category::Task, name)
            .map_or(name, |d| d.name.as_str())
    }

    /// Every name (canonical and aliases) of a category, sorted.
    pub fn names(&self, category: Category) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .types
            .keys()
            .filter(|(c, _)| *c == category)
            .map(|(_, n)| n.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// Every distinct type of a category (each once, under its canonical name), sorted by name.
    pub fn types(&self, category: Category) -> Vec<&Arc<TypeDef>> {
        let mut v: Vec<&Arc<TypeDef>> = self
            .types
            .iter()
            .filter(|((c, n), d)| *c == category && *n == d.name)
            .map(|(_, d)| d)
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
