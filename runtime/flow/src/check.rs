//! The schema checker: walks a YAML [`Node`] tree against a [`Schema`], looking types up in the
//! [`Registry`], and reports every problem with its position and field path.

use std::sync::Arc;

use crate::diagnostic::{Diagnostic, FieldPath, did_you_mean};
use crate::registry::{Registry, TaskKind, TypeDef};
use crate::schema::{Category, ObjectSchema, Prop, Schema, StringFormat};
use crate::yaml::{Node, Pos, Style, Value};

/// A task found in the flow, wherever it is nested.
#[derive(Debug, Clone)]
pub struct TaskSite {
    /// Its id (empty when missing).
    pub id: String,
    /// Its canonical type name.
    pub type_name: String,
    /// Flowable or runnable.
    pub kind: Option<TaskKind>,
    /// Its field path.
    pub path: FieldPath,
    /// Where it starts.
    pub pos: Pos,
}

/// A typed object found in the flow (trigger, input, ...), with its id when it has one.
#[derive(Debug, Clone)]
pub struct Site {
    /// Its `id` (or legacy `name` for inputs).
    pub id: String,
    /// Its field path.
    pub path: FieldPath,
    /// Where it starts.
    pub pos: Pos,
}

/// A plugin default that applies to some types.
#[derive(Debug, Clone)]
pub(crate) struct DefaultSite {
    pub(crate) type_prefix: String,
    pub(crate) keys: Vec<String>,
}

/// Walks nodes against schemas and collects diagnostics and what it found on the way.
#[derive(Debug)]
pub struct Checker<'a> {
    /// The registry types are looked up in.
    pub registry: &'a Registry,
    /// What is wrong so far.
    pub diags: Vec<Diagnostic>,
    /// Every task, in document order (parents before children).
    pub tasks: Vec<TaskSite>,
    /// Every trigger.
    pub triggers: Vec<Site>,
    /// The flow's id, once known (for checks such as recursive subflows).
    pub flow_id: Option<String>,
    /// The flow's namespace, once known.
    pub namespace: Option<String>,
    pub(crate) defaults: Vec<DefaultSite>,
    source: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Checker<'a> {
    /// A checker for a document of `source`.
    pub fn new(registry: &'a Registry, source: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Checker {
            registry,
            diags: Vec::new(),
            tasks: Vec::new(),
            triggers: Vec::new(),
            flow_id: None,
            namespace: None,
            defaults: Vec::new(),
            source,
            line_starts,
        }
    }

    /// Reports an error.
    pub fn error(&mut self, pos: Pos, path: &FieldPath, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(pos, path.clone(), message));
    }

    /// Reports a warning.
    pub fn warn(&mut self, pos: Pos, path: &FieldPath, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::warning(pos, path.clone(), message));
    }

    /// Whether any error was reported.
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    /// Checks `node` against `schema`. `rendered` says whether strings here are expressions.
    pub fn check(&mut self, node: &Node, schema: &Schema, path: &FieldPath, rendered: bool) {
        if let Value::String(s, _) = &node.value
            && crate::expr::is_template(s)
        {
            if rendered {
                self.check_template(node, s, path);
            }
            // A dynamic value: its type is known once rendered, at run time.
            if !matches!(
                schema,
                Schema::String(StringFormat::Id | StringFormat::Namespace)
            ) {
                return;
            }
        }
        match schema {
            Schema::Any => self.walk_any(node, path, rendered),
            Schema::String(format) => self.check_string(node, *format, path),
            Schema::Integer { min, max } => self.check_integer(node, *min, *max, path),
            Schema::Number => {
                let ok = match &node.value {
                    Value::Int(_) | Value::Float(_) => true,
                    Value::String(s, _) => s.trim().parse::<f64>().is_ok(),
                    _ => false,
                };
                if !ok {
                    self.type_error(node, path, "a number");
                }
            }
            Schema::Boolean => {
                let ok = match &node.value {
                    Value::Bool(_) => true,
                    Value::String(s, _) => matches!(s.as_str(), "true" | "false"),
                    _ => false,
                };
                if !ok {
                    self.type_error(node, path, "a boolean (`true` or `false`)");
                }
            }
            Schema::Enum(values) => self.check_enum(node, values, path),
            Schema::Array(item) => match &node.value {
                Value::Seq(items) => {
                    for (i, it) in items.iter().enumerate() {
                        self.check(it, item, &path.index(i), rendered);
                    }
                }
                _ => self.type_error(node, path, "a list"),
            },
            Schema::Map(value) => match &node.value {
                Value::Map(entries) => {
                    for (k, v) in entries {
                        let key = k.scalar_text().unwrap_or_default();
                        self.check(v, value, &path.key(&key), rendered);
                    }
                }
                _ => self.type_error(node, path, "a map"),
            },
            Schema::Object(obj) => {
                let obj = Arc::clone(obj);
                self.check_object(node, &[&obj], path, &[]);
            }
            Schema::OneOf(alternatives) => self.check_one_of(node, alternatives, path, rendered),
            Schema::Typed(category) => self.check_typed(node, *category, path),
            Schema::Labels => self.check_labels(node, path),
        }
    }

    fn type_error(&mut self, node: &Node, path: &FieldPath, expected: &str) {
        let found = match &node.value {
            Value::String(s, _) => format!("the string `{}`", shorten(s)),
            _ => node.kind().to_string(),
        };
        self.error(
            node.pos,
            path,
            format!("expected {expected}, found {found}"),
        );
    }

    fn walk_any(&mut self, node: &Node, path: &FieldPath, rendered: bool) {
        match &node.value {
            Value::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    self.walk_any(it, &path.index(i), rendered);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    if rendered
                        && let Some(ks) = k.as_str()
                        && crate::expr::is_template(ks)
                    {
                        self.check_template(k, ks, path);
                    }
                    let key = k.scalar_text().unwrap_or_default();
                    self.walk_any(v, &path.key(&key), rendered);
                }
            }
            // Templates among scalars were checked by `check`.
            _ => {}
        }
    }

    /// Checks the syntax of a `{{ }}` template, pointing at the offending character.
    pub fn check_template(&mut self, node: &Node, text: &str, path: &FieldPath) {
        if let Err(e) = crate::expr::check(text) {
            let pos = self.pos_in_scalar(node, text, e.offset.unwrap_or(0));
            self.error(pos, path, format!("invalid expression: {}", e.message));
        }
    }

    /// The position of byte `offset` of a scalar's text, using the source to find where the
    /// scalar's characters are.
    fn pos_in_scalar(&self, node: &Node, text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or("");
        let style = match &node.value {
            Value::String(_, style) => *style,
            _ => Style::Plain,
        };
        match style {
            Style::Block => {
                // Content starts on the line after the `|`/`>` indicator, at its indentation.
                let indicator = self.line_text(node.pos.line as usize).is_some_and(|l| {
                    let t = l.trim_end();
                    t.ends_with(['|', '>', '-', '+']) || t.contains(": |") || t.contains(": >")
                });
                let first = node.pos.line as usize + usize::from(indicator);
                let newlines = before.matches('\n').count();
                let line = first + newlines;
                let indent = self
                    .line_text(line)
                    .map_or(0, |l| l.len() - l.trim_start_matches(' ').len());
                let col_in_line = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
                Pos {
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                    col: u32::try_from(indent + col_in_line + 1).unwrap_or(u32::MAX),
                }
            }
            Style::Plain | Style::Quoted if !before.contains('\n') => {
                let quote = usize::from(style == Style::Quoted);
                Pos {
                    line: node.pos.line,
                    col: node.pos.col + u32::try_from(before.chars().count() + quote).unwrap_or(0),
                }
            }
            _ => node.pos,
        }
    }

    fn line_text(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.source.len(), |e| e.saturating_sub(1));
        self.source.get(start..end)
    }

    fn check_string(&mut self, node: &Node, format: StringFormat, path: &FieldPath) {
        let Some(text) = node.scalar_text() else {
            if node.value != Value::Null {
                self.type_error(node, path, "a string");
            }
            return;
        };
        let problem = match format {
            StringFormat::Any => None,
            StringFormat::Duration => crate::duration::parse(&text).err().map(|e| e.to_string()),
            StringFormat::Cron => crate::cron::check(&text).err(),
            StringFormat::Id => crate::ids::check_id(&text).err(),
            StringFormat::Namespace => crate::ids::check_namespace(&text).err(),
            StringFormat::Regex => regex::Regex::new(&text).err().map(|e| {
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                format!(
                    "invalid regular expression: {}",
                    last.trim_start_matches("error: ")
                )
            }),
        };
        if let Some(message) = problem {
            self.error(node.pos, path, message);
        }
    }

    fn check_integer(&mut self, node: &Node, min: Option<i64>, max: Option<i64>, path: &FieldPath) {
        let value = match &node.value {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Value::String(s, _) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let Some(v) = value else {
            self.type_error(node, path, "an integer");
            return;
        };
        if let Some(min) = min.filter(|m| v < *m) {
            self.error(
                node.pos,
                path,
                format!("must be greater than or equal to {min}"),
            );
        }
        if let Some(max) = max.filter(|m| v > *m) {
            self.error(
                node.pos,
                path,
                format!("must be less than or equal to {max}"),
            );
        }
    }

    fn check_enum(&mut self, node: &Node, values: &[String], path: &FieldPath) {
        let Some(text) = node.scalar_text() else {
            self.type_error(node, path, &format!("one of {}", values.join(", ")));
            return;
        };
        if values.contains(&text) {
            return;
        }
        let hint = did_you_mean(&text, values.iter().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        self.error(
            node.pos,
            path,
            format!("`{text}` is not one of {}{hint}", values.join(", ")),
        );
    }

    fn check_one_of(
        &mut self,
        node: &Node,
        alternatives: &[Schema],
        path: &FieldPath,
        rendered: bool,
    ) {
        let (diags, tasks, triggers) = (self.diags.len(), self.tasks.len(), self.triggers.len());
        let mut best: Option<Vec<Diagnostic>> = None;
        for alt in alternatives {
            self.check(node, alt, path, rendered);
            if !self.diags[diags..].iter().any(Diagnostic::is_error) {
                return;
            }
            let errors: Vec<Diagnostic> = self.diags.drain(diags..).collect();
            self.tasks.truncate(tasks);
            self.triggers.truncate(triggers);
            // Prefer the alternative that got furthest (its errors are deeper than the node).
            let deeper = errors.iter().any(|d| d.path.0.len() > path.0.len());
            if best.is_none() || deeper {
                best = Some(errors);
            }
        }
        self.diags.extend(best.unwrap_or_default());
    }

    fn check_labels(&mut self, node: &Node, path: &FieldPath) {
        match &node.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let key = k.scalar_text().unwrap_or_default();
                    let p = path.key(&key);
                    if v.scalar_text().is_none() && v.value != Value::Null {
                        self.type_error(v, &p, "a string label value");
                    }
                    self.check_label_key(k, &key, &p);
                    if let Some(s) = v.as_str().filter(|s| crate::expr::is_template(s)) {
                        self.check_template(v, s, &p);
                    }
                }
            }
            Value::Seq(items) => {
                let label = Schema::object(vec![
                    Prop::new("key", Schema::string()).required(),
                    Prop::new("value", Schema::string()).required(),
                ]);
                for (i, it) in items.iter().enumerate() {
                    let p = path.index(i);
                    self.check(it, &label, &p, true);
                    if let Some(k) = it.get("key")
                        && let Some(text) = k.scalar_text()
                    {
                        self.check_label_key(k, &text, &p.key("key"));
                    }
                }
            }
            _ => self.type_error(node, path, "a map of labels or a list of {key, value}"),
        }
    }

    fn check_label_key(&mut self, node: &Node, key: &str, path: &FieldPath) {
        if key.starts_with("system.") && key != "system.readOnly" && key != "system.correlationId" {
            self.error(
                node.pos,
                path,
                format!("system labels can only be set by Kestra itself, offending label: {key}"),
            );
        }
    }

    fn check_typed(&mut self, node: &Node, category: Category, path: &FieldPath) {
        let Some(_) = node.as_map() else {
            self.type_error(
                node,
                path,
                &format!("a {} (a map with a `type`)", category.noun()),
            );
            return;
        };
        let Some(type_node) = node.get("type") else {
            self.error(
                node.pos,
                &path.key("type"),
                "missing required property `type`",
            );
            return;
        };
        let type_name = type_node.scalar_text().unwrap_or_default();
        let Some(def) = self.registry.get(category, &type_name).cloned() else {
            let names = self.registry.names(category);
            let hint = did_you_mean(&type_name, names.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            self.error(
                type_node.pos,
                &path.key("type"),
                format!("Invalid type: {type_name}{hint}"),
            );
            return;
        };
        if let Some(note) = &def.deprecated {
            self.warn(
                type_node.pos,
                &path.key("type"),
                format!(
                    "{} type `{type_name}` is deprecated: {note}",
                    category.noun()
                ),
            );
        }
        let id = node
            .get("id")
            .or_else(|| node.get("name"))
            .and_then(Node::scalar_text)
            .unwrap_or_default();
        match category {
            Category::Task => self.tasks.push(TaskSite {
                id: id.clone(),
                type_name: def.name.clone(),
                kind: def.kind,
                path: path.clone(),
                pos: node.pos,
            }),
            Category::Trigger => self.triggers.push(Site {
                id: id.clone(),
                path: path.clone(),
                pos: node.pos,
            }),
            _ => {}
        }
        let provided = self.defaulted_keys(&def);
        let common = self.registry.common(category).cloned();
        let mut schemas: Vec<&ObjectSchema> = Vec::new();
        if let Some(c) = &common {
            schemas.push(c);
        }
        schemas.push(&def.props);
        self.check_object(node, &schemas, path, &provided);
        if let Some(hook) = self.registry.common_hook(category) {
            hook(self, node, path);
        }
        if let Some(hook) = def.hook {
            hook(self, node, path);
        }
    }

    /// Keys that plugin defaults provide for a type (they count as present).
    fn defaulted_keys(&self, def: &TypeDef) -> Vec<String> {
        let names: Vec<&str> = std::iter::once(def.name.as_str())
            .chain(def.aliases.iter().map(String::as_str))
            .collect();
        self.defaults
            .iter()
            .filter(|d| names.iter().any(|n| n.starts_with(&d.type_prefix)))
            .flat_map(|d| d.keys.iter().cloned())
            .collect()
    }

    /// Checks a map against the union of several property lists.
    pub fn check_object(
        &mut self,
        node: &Node,
        schemas: &[&ObjectSchema],
        path: &FieldPath,
        provided: &[String],
    ) {
        let Some(entries) = node.as_map() else {
            self.type_error(node, path, "a map");
            return;
        };
        let find = |name: &str| schemas.iter().find_map(|s| s.prop(name));
        for (k, v) in entries {
            let Some(key) = k.scalar_text() else {
                self.type_error(k, path, "a string key");
                continue;
            };
            let p = path.key(&key);
            if let Some(prop) = find(&key) {
                if let Some(note) = &prop.deprecated {
                    self.warn(k.pos, &p, format!("`{key}` is deprecated: {note}"));
                }
                if v.value == Value::Null {
                    continue; // null means absent
                }
                if prop.non_empty && is_empty_collection(v) {
                    self.error(v.pos, &p, "must not be empty");
                    continue;
                }
                self.check(v, &prop.schema, &p, prop.rendered);
            } else if let Some(additional) = schemas.iter().find_map(|s| s.additional.as_deref()) {
                self.check(v, additional, &p, true);
            } else {
                let known = schemas
                    .iter()
                    .flat_map(|s| s.props.iter().map(|p| p.name.as_str()));
                let hint = did_you_mean(&key, known)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                self.error(k.pos, &p, format!("Unrecognized field \"{key}\"{hint}"));
            }
        }
        for schema in schemas {
            for prop in schema.props.iter().filter(|p| p.required) {
                let present = node.get(&prop.name).is_some_and(|v| v.value != Value::Null);
                if !present && !provided.contains(&prop.name) {
                    let message = if prop.non_empty {
                        "must not be empty"
                    } else {
                        "must not be null"
                    };
                    self.error(
                        node.pos,
                        &path.key(&prop.name),
                        format!("{message} (required property `{}` is missing)", prop.name),
                    );
                }
            }
        }
    }
}

fn is_empty_collection(node: &Node) -> bool {
    match &node.value {
        Value::Seq(s) => s.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::String(s, _) => s.is_empty(),
        _ => false,
    }
}

fn shorten(s: &str) -> String {
    let first: String = s.chars().take(40).collect();
    if first.len() < s.len() {
        format!("{first}...")
    } else {
        first
    }
}
