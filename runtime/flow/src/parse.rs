//! Reading a flow: YAML with positions, the schema of the flow and of every type in it, the
//! checks that span the whole flow (unique ids, ...), then the typed model.

use std::collections::HashMap;

use crate::check::{Checker, DefaultSite, TaskSite};
use crate::diagnostic::{Diagnostic, FieldPath, Severity};
use crate::model::Flow;
use crate::registry::Registry;
use crate::schema::{Category, Prop, Schema, StringFormat};
use crate::yaml::{self, Node, Pos, Value};

/// A flow that passed validation, with its warnings.
#[derive(Debug, Clone)]
pub struct ParsedFlow {
    /// The flow.
    pub flow: Flow,
    /// Warnings (deprecated types and properties, ...).
    pub warnings: Vec<Diagnostic>,
    /// Every task, with its path and position.
    pub tasks: Vec<TaskSite>,
}

/// The outcome of one YAML document of a file.
#[derive(Debug, Clone)]
pub struct DocumentReport {
    /// The document's position in the file (0-based).
    pub index: usize,
    /// The flow's `id` and `namespace` when they could be read.
    pub id: Option<String>,
    /// The flow's namespace.
    pub namespace: Option<String>,
    /// The flow, when valid.
    pub flow: Option<Flow>,
    /// Errors then warnings, each sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl DocumentReport {
    /// Whether the document is a valid flow.
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The schema of a flow's top-level properties.
pub fn flow_schema() -> Schema {
    let p = Prop::new;
    let task_list = Schema::tasks;
    Schema::object(vec![
        p("id", Schema::String(StringFormat::Id))
            .required()
            .literal(),
        p("namespace", Schema::String(StringFormat::Namespace))
            .required()
            .literal(),
        p("revision", Schema::int_min(1)),
        p("description", Schema::string()).literal(),
        p("disabled", Schema::bool()),
        p("deleted", Schema::bool()),
        p("labels", Schema::Labels),
        p("inputs", Schema::array(Schema::Typed(Category::Input))),
        p(
            "outputs",
            Schema::array(Schema::object(vec![
                p("id", Schema::String(StringFormat::Id))
                    .required()
                    .literal(),
                p(
                    "type",
                    Schema::one_of_values(crate::core_types::INPUT_TYPES),
                )
                .required(),
                p("value", Schema::Any).required(),
                p("description", Schema::string()).literal(),
                p("displayName", Schema::string()).literal(),
                p("required", Schema::bool()),
            ])),
        ),
        p("variables", Schema::map(Schema::Any)),
        p("tasks", task_list()).required().non_empty(),
        p("errors", task_list()),
        p("finally", task_list()),
        p("afterExecution", task_list()),
        p(
            "listeners",
            Schema::array(Schema::object(vec![
                p("description", Schema::string()).literal(),
                p(
                    "conditions",
                    Schema::array(Schema::Typed(Category::Condition)),
                ),
                p("tasks", task_list()).required().non_empty(),
            ])),
        )
        .deprecated("use `afterExecution` or a flow trigger"),
        p("triggers", Schema::array(Schema::Typed(Category::Trigger))),
        p("pluginDefaults", plugin_defaults()),
        p("taskDefaults", plugin_defaults()).deprecated("use `pluginDefaults`"),
        p("retry", Schema::Typed(Category::Retry)),
        p(
            "concurrency",
            Schema::object(vec![
                p("limit", Schema::int_min(1)).required(),
                p(
                    "behavior",
                    Schema::one_of_values(&["QUEUE", "CANCEL", "FAIL"]),
                ),
            ]),
        ),
        p("sla", Schema::array(Schema::Typed(Category::Sla))),
        p("timeout", Schema::duration()),
        p("workerGroup", Schema::Any),
    ])
}

fn plugin_defaults() -> Schema {
    Schema::array(Schema::object(vec![
        Prop::new("type", Schema::string()).required().literal(),
        Prop::new("forced", Schema::bool()),
        Prop::new("values", Schema::map(Schema::Any)).required(),
    ]))
}

/// Parses and validates a file that must hold exactly one flow.
pub fn parse_flow(source: &str, registry: &Registry) -> Result<ParsedFlow, Vec<Diagnostic>> {
    let docs = match yaml::parse_documents(source) {
        Ok(d) => d,
        Err(e) => return Err(vec![Diagnostic::error(e.pos, FieldPath::root(), e.message)]),
    };
    let real: Vec<&yaml::Document> = docs
        .iter()
        .filter(|d| d.root.value != Value::Null)
        .collect();
    match real.as_slice() {
        [one] => check_document(&one.root, source, registry),
        [] => Err(vec![Diagnostic::error(
            Pos { line: 1, col: 1 },
            FieldPath::root(),
            "the file is empty: a flow needs at least `id`, `namespace` and `tasks`",
        )]),
        [_, second, ..] => Err(vec![Diagnostic::error(
            second.root.pos,
            FieldPath::root(),
            format!(
                "the file holds {} YAML documents, one flow was expected",
                real.len()
            ),
        )]),
    }
}

/// Checks every YAML document of a file (a file may hold several flows separated by `---`).
pub fn check_documents(source: &str, registry: &Registry) -> Vec<DocumentReport> {
    let docs = match yaml::parse_documents(source) {
        Ok(d) => d,
        Err(e) => {
            return vec![DocumentReport {
                index: 0,
                id: None,
                namespace: None,
                flow: None,
                diagnostics: vec![Diagnostic::error(e.pos, FieldPath::root(), e.message)],
            }];
        }
    };
    let mut reports = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d.root.value != Value::Null || docs.len() == 1)
    {
        let id = doc.root.get("id").and_then(Node::scalar_text);
        let namespace = doc.root.get("namespace").and_then(Node::scalar_text);
        let (flow, diagnostics) = match check_document(&doc.root, source, registry) {
            Ok(parsed) => (Some(parsed.flow), parsed.warnings),
            Err(diags) => (None, diags),
        };
        reports.push(DocumentReport {
            index: reports.len(),
            id,
            namespace,
            flow,
            diagnostics,
        });
    }
    reports
}

fn check_document(
    root: &Node,
    source: &str,
    registry: &Registry,
) -> Result<ParsedFlow, Vec<Diagnostic>> {
    let mut c = Checker::new(registry, source);
    if root.as_map().is_none() {
        c.error(
            root.pos,
            &FieldPath::root(),
            format!(
                "a flow must be a map with `id`, `namespace` and `tasks`, found {}",
                root.kind()
            ),
        );
        return Err(c.diags);
    }
    c.flow_id = root.get("id").and_then(Node::scalar_text);
    c.namespace = root.get("namespace").and_then(Node::scalar_text);
    c.defaults = collect_defaults(root);
    c.check(root, &flow_schema(), &FieldPath::root(), true);
    check_unique_ids(&mut c, root);
    check_inputs(&mut c, root);
    if c.has_errors() {
        return Err(sorted(c.diags));
    }
    let flow: Flow = match serde_json::from_value(root.to_json()) {
        Ok(f) => f,
        Err(e) => {
            c.error(
                root.pos,
                &FieldPath::root(),
                format!("cannot read the flow: {e}"),
            );
            return Err(sorted(c.diags));
        }
    };
    // what the schema cannot say: a cron's number of fields against `withSeconds`, dates, ...
    for t in &flow.triggers {
        if let Err(e) = crate::schedule::Schedule::from_trigger(t) {
            let site = c.triggers.iter().find(|s| s.id == t.id);
            let (pos, path) =
                site.map_or((root.pos, FieldPath::root()), |s| (s.pos, s.path.clone()));
            c.error(pos, &path, e);
        }
    }
    if c.has_errors() {
        return Err(sorted(c.diags));
    }
    Ok(ParsedFlow {
        flow,
        warnings: sorted(c.diags),
        tasks: c.tasks,
    })
}

fn sorted(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by_key(|d| (d.severity != Severity::Error, d.pos));
    diags
}

fn collect_defaults(root: &Node) -> Vec<DefaultSite> {
    ["pluginDefaults", "taskDefaults"]
        .iter()
        .filter_map(|k| root.get(k).and_then(Node::as_seq))
        .flatten()
        .filter_map(|d| {
            let type_prefix = d.get("type")?.scalar_text()?;
            let keys = d
                .get("values")?
                .as_map()?
                .iter()
                .filter_map(|(k, _)| k.scalar_text())
                .collect();
            Some(DefaultSite { type_prefix, keys })
        })
        .collect()
}

/// Task ids are unique across the whole flow (nested tasks, errors, finally, listeners
/// included), and so are trigger ids. Kestra reports both in one violation.
fn check_unique_ids(c: &mut Checker<'_>, root: &Node) {
    let mut parts = Vec::new();
    let mut first_pos: Option<(Pos, FieldPath)> = None;
    let task_dups = duplicates(c.tasks.iter().map(|t| (t.id.as_str(), t.pos, &t.path)));
    if !task_dups.is_empty() {
        let names: Vec<&str> = task_dups.iter().map(|(n, _, _)| *n).collect();
        parts.push(format!(
            "Duplicate task id with name [{}]",
            names.join(", ")
        ));
        first_pos = task_dups.first().map(|(_, p, path)| (*p, (*path).clone()));
    }
    let trig_dups = duplicates(c.triggers.iter().map(|t| (t.id.as_str(), t.pos, &t.path)));
    if !trig_dups.is_empty() {
        let names: Vec<&str> = trig_dups.iter().map(|(n, _, _)| *n).collect();
        parts.push(format!(
            "Duplicate trigger id with name [{}]",
            names.join(", ")
        ));
        if first_pos.is_none() {
            first_pos = trig_dups.first().map(|(_, p, path)| (*p, (*path).clone()));
        }
    }
    if let Some((pos, path)) = first_pos {
        let lines: Vec<String> = task_dups
            .iter()
            .chain(&trig_dups)
            .map(|(n, p, _)| format!("`{n}` again at line {}", p.line))
            .collect();
        c.error(
            pos,
            &path.key("id"),
            format!("{} ({})", parts.join(", "), lines.join(", ")),
        );
    }
    let _ = root;
}

/// The second occurrence of every id that appears more than once, ordered as Kestra lists them:
/// by where the id first appears, walking `tasks`, `errors`, `finally`, `afterExecution` and then
/// listeners (whatever their order in the file).
fn duplicates<'a>(
    items: impl Iterator<Item = (&'a str, Pos, &'a FieldPath)>,
) -> Vec<(&'a str, Pos, &'a FieldPath)> {
    let rank = |path: &FieldPath, pos: Pos| {
        let section = match path.0.first() {
            Some(crate::diagnostic::Seg::Key(k)) => match k.as_str() {
                "tasks" => 0,
                "errors" => 1,
                "finally" => 2,
                "afterExecution" => 3,
                _ => 4,
            },
            _ => 5,
        };
        (section, pos)
    };
    // id -> (rank of its first occurrence, occurrences, its second occurrence)
    type Seen<'p> = ((u8, Pos), usize, Option<(Pos, &'p FieldPath)>);
    let mut seen: HashMap<&str, Seen<'a>> = HashMap::new();
    for (id, pos, path) in items {
        if id.is_empty() {
            continue;
        }
        let r = rank(path, pos);
        let e = seen.entry(id).or_insert((r, 0, None));
        e.0 = e.0.min(r);
        e.1 += 1;
        if e.1 == 2 {
            e.2 = Some((pos, path));
        }
    }
    let mut out: Vec<((u8, Pos), &str, Pos, &FieldPath)> = seen
        .into_iter()
        .filter_map(|(id, (first, _, second))| second.map(|(pos, path)| (first, id, pos, path)))
        .collect();
    out.sort_by_key(|(first, ..)| *first);
    out.into_iter()
        .map(|(_, id, pos, path)| (id, pos, path))
        .collect()
}

fn check_inputs(c: &mut Checker<'_>, root: &Node) {
    let Some(inputs) = root.get("inputs").and_then(Node::as_seq) else {
        return;
    };
    let path = FieldPath::root().key("inputs");
    let ids: Vec<Option<String>> = inputs
        .iter()
        .map(|i| {
            i.get("id")
                .or_else(|| i.get("name"))
                .and_then(Node::scalar_text)
        })
        .collect();
    let mut seen = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(id) = id else { continue };
        if seen.insert(id.clone(), i).is_some() {
            c.error(
                inputs[i].pos,
                &path.index(i),
                format!("Duplicate input with name [{id}]"),
            );
        }
    }
    for (i, input) in inputs.iter().enumerate() {
        let Some(deps) = input
            .get("dependsOn")
            .and_then(|d| d.get("inputs"))
            .and_then(Node::as_seq)
        else {
            continue;
        };
        for (j, d) in deps.iter().enumerate() {
            let name = d.scalar_text().unwrap_or_default();
            let position = ids.iter().position(|x| x.as_deref() == Some(name.as_str()));
            let p = path.index(i).key("dependsOn").key("inputs").index(j);
            match position {
                None => c.error(d.pos, &p, format!("depends on an unknown input `{name}`")),
                Some(k) if k == i => c.error(d.pos, &p, "an input cannot depend on itself"),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(src: &str) -> Vec<String> {
        match parse_flow(src, &Registry::core()) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{}:{} {d}", d.pos.line, d.pos.col))
                .collect(),
        }
    }

    const OK: &str = "id: hello\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

    #[test]
    fn minimal_flow_is_valid() {
        let parsed = parse_flow(OK, &Registry::core()).unwrap();
        assert_eq!(parsed.flow.id, "hello");
        assert_eq!(
            parsed.flow.tasks[0].prop("message"),
            Some(&serde_json::json!("hi"))
        );
        assert_eq!(parsed.tasks.len(), 1);
    }

    #[test]
    fn unknown_property_with_suggestion() {
        let e = errors(&OK.replace("message: hi", "mesage: hi"));
        assert!(
            e.iter().any(|m| m.contains(
                "6:5 tasks[0].mesage: Unrecognized field \"mesage\"; did you mean `message`?"
            )),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_type_with_suggestion() {
        let e = errors(&OK.replace("log.Log", "log.Lgo"));
        assert!(e.iter().any(|m| m.contains("Invalid type: io.kestra.plugin.core.log.Lgo; did you mean `io.kestra.plugin.core.log.Log`?")), "{e:?}");
    }

    #[test]
    fn nested_duplicate_ids() {
        let src = "id: f\nnamespace: n\ntasks:\n  - id: p\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n      - id: p\n        type: io.kestra.plugin.core.debug.Return\n";
        let e = errors(src);
        assert!(
            e.iter()
                .any(|m| m.contains("Duplicate task id with name [p]")),
            "{e:?}"
        );
    }

    #[test]
    fn plugin_defaults_provide_required_properties() {
        let src = "id: f\nnamespace: n\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\npluginDefaults:\n  - type: io.kestra.plugin.core.log\n    values:\n      message: hi\n";
        assert!(errors(src).is_empty());
        let without =
            "id: f\nnamespace: n\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n";
        assert!(
            errors(without)
                .iter()
                .any(|m| m.contains("tasks[0].message: must not be null"))
        );
    }

    #[test]
    fn multi_document_reports() {
        let src = format!("{OK}---\nid: b\nnamespace: n\ntasks: []\n");
        let reports = check_documents(&src, &Registry::core());
        assert_eq!(reports.len(), 2);
        assert!(reports[0].is_valid());
        assert!(!reports[1].is_valid());
        assert_eq!(reports[1].id.as_deref(), Some("b"));
    }

    #[test]
    fn labels_map_becomes_list() {
        let src = OK.replace("tasks:", "labels:\n  a: b\ntasks:");
        let parsed = parse_flow(&src, &Registry::core()).unwrap();
        assert_eq!(
            serde_json::to_value(&parsed.flow.labels).unwrap(),
            serde_json::json!([{"key": "a", "value": "b"}])
        );
    }
}
