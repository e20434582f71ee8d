//! The flow, indexed once: every task (after `pluginDefaults`) as a node with its kind, its
//! parent, the blocks of child tasks it holds (`tasks`, `then`, `cases`, `errors`, `finally`,
//! ...), and the tasks whose outputs its expressions read.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};
use weft_flow::model::{PluginDefault, Task};
use weft_flow::{Flow, Registry};

use crate::error::ExecutorError;

/// The type of the `<id>_split` task of a ForEachItem: run by the driver, which splits the
/// `items` file by `batch` and returns `outputs.splits`, the list of batch file URIs.
pub const SPLIT_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemSplit";
/// The type of the `<id>_items` task of a ForEachItem (run by the executor).
pub(crate) const ITEMS_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemExecutable";
/// The type of the `<id>_merge` task of a ForEachItem: run by the driver, which merges the
/// flow outputs of the subflow executions listed in `executionIds` into one file and returns
/// `outputs.subflowOutputs`, its URI.
pub const MERGE_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemMergeOutputs";

/// The node index of the flow itself (its `tasks`, `errors` and `finally`).
pub(crate) const ROOT: u32 = 0;

/// How the executor treats a task type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Root,
    Sequential,
    Parallel,
    ForEach,
    EachSequential,
    EachParallel,
    Switch,
    If,
    AllowFailure,
    Dag,
    Subflow,
    Pause,
    WaitFor,
    WorkingDirectory,
    Fail,
    Exit,
    OutputValues,
    Labels,
    /// ForEachItem: runs `<id>_split`, `<id>_items`, `<id>_merge` in order.
    ForEachItem,
    /// `<id>_items` of a ForEachItem: one subflow execution per batch.
    ForEachItemExecutable,
    /// A flowable type weft does not run yet: its task run fails with a clear message.
    Unsupported,
    /// Run by a worker.
    Runnable,
}

impl Kind {
    fn of(canonical: &str) -> Kind {
        match canonical {
            "io.kestra.plugin.core.flow.Sequential" => Kind::Sequential,
            "io.kestra.plugin.core.flow.Parallel" => Kind::Parallel,
            "io.kestra.plugin.core.flow.ForEach" => Kind::ForEach,
            "io.kestra.plugin.core.flow.EachSequential" => Kind::EachSequential,
            "io.kestra.plugin.core.flow.EachParallel" => Kind::EachParallel,
            "io.kestra.plugin.core.flow.Switch" => Kind::Switch,
            "io.kestra.plugin.core.flow.If" => Kind::If,
            "io.kestra.plugin.core.flow.AllowFailure" => Kind::AllowFailure,
            "io.kestra.plugin.core.flow.Dag" => Kind::Dag,
            "io.kestra.plugin.core.flow.Subflow" => Kind::Subflow,
            "io.kestra.plugin.core.flow.Pause" => Kind::Pause,
            "io.kestra.plugin.core.flow.WaitFor" => Kind::WaitFor,
            "io.kestra.plugin.core.flow.WorkingDirectory" => Kind::WorkingDirectory,
            "io.kestra.plugin.core.execution.Fail" => Kind::Fail,
            "io.kestra.plugin.core.execution.Exit" => Kind::Exit,
            "io.kestra.plugin.core.output.OutputValues" => Kind::OutputValues,
            "io.kestra.plugin.core.execution.Labels" => Kind::Labels,
            "io.kestra.plugin.core.flow.ForEachItem" => Kind::ForEachItem,
            ITEMS_TYPE => Kind::ForEachItemExecutable,
            "io.kestra.plugin.core.flow.Template" => Kind::Unsupported,
            _ => Kind::Runnable,
        }
    }

    /// Whether task runs of this kind hold child task runs.
    pub(crate) fn is_parent(self) -> bool {
        matches!(
            self,
            Kind::Root
                | Kind::Sequential
                | Kind::Parallel
                | Kind::ForEach
                | Kind::EachSequential
                | Kind::EachParallel
                | Kind::Switch
                | Kind::If
                | Kind::AllowFailure
                | Kind::Dag
                | Kind::Pause
                | Kind::WaitFor
                | Kind::WorkingDirectory
                | Kind::ForEachItem
        )
    }

    /// Whether each body lane of this kind is one value of a list (children get `value`s and
    /// their outputs are nested by value).
    pub(crate) fn is_value_loop(self) -> bool {
        matches!(
            self,
            Kind::ForEach | Kind::EachSequential | Kind::EachParallel
        )
    }

    /// Whether the body lanes are numbered iterations.
    pub(crate) fn is_loop(self) -> bool {
        self.is_value_loop() || self == Kind::WaitFor
    }

    /// Whether the task is run by a worker or by the executor as an attempt (it has attempts).
    pub(crate) fn has_attempts(self) -> bool {
        matches!(
            self,
            Kind::Runnable | Kind::Fail | Kind::Exit | Kind::OutputValues | Kind::Labels
        )
    }
}

/// Which list of child tasks a block is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Tasks,
    Then,
    Else,
    Case(String),
    Defaults,
    Errors,
    Finally,
    /// The tasks of the flow's legacy `listeners[i]`.
    Listener(usize),
    /// The flow's `afterExecution` tasks.
    AfterExecution,
}

/// A list of child tasks.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) kind: BlockKind,
    pub(crate) nodes: Vec<u32>,
}

/// Which task outputs a node's expressions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refs {
    /// These task ids.
    Some(Vec<String>),
    /// `outputs` used as a whole: every output.
    All,
}

/// One task of the flow.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The task after `pluginDefaults` (`None` for the root).
    pub(crate) task: Option<Task>,
    pub(crate) kind: Kind,
    /// Canonical type name.
    pub(crate) type_name: String,
    pub(crate) parent: u32,
    /// Index of the block of the parent holding this node.
    pub(crate) block: u16,
    /// Position in that block.
    pub(crate) pos: u32,
    pub(crate) blocks: Vec<Block>,
    /// Dag: the nodes this one depends on.
    pub(crate) deps: Vec<u32>,
    pub(crate) refs: Refs,
    /// The value-loop ancestors, outermost first.
    pub(crate) loops: Vec<u32>,
}

impl Node {
    pub(crate) fn block_of(&self, kind: &BlockKind) -> Option<u16> {
        self.blocks
            .iter()
            .position(|b| &b.kind == kind)
            .and_then(|i| u16::try_from(i).ok())
    }

    pub(crate) fn task_id(&self) -> &str {
        self.task.as_ref().map_or("", |t| t.id.as_str())
    }

    pub(crate) fn disabled(&self) -> bool {
        self.task.as_ref().is_some_and(|t| t.disabled)
    }

    pub(crate) fn prop(&self, name: &str) -> Option<&Json> {
        self.task.as_ref().and_then(|t| t.prop(name))
    }
}

/// The indexed flow.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) flow: Flow,
    pub(crate) nodes: Vec<Node>,
    pub(crate) by_task_id: HashMap<String, u32>,
}

impl Plan {
    pub(crate) fn new(flow: &Flow, registry: &Registry) -> Result<Plan, ExecutorError> {
        let mut plan = Plan {
            flow: flow.clone(),
            nodes: vec![Node {
                task: None,
                kind: Kind::Root,
                type_name: String::new(),
                parent: ROOT,
                block: 0,
                pos: 0,
                blocks: Vec::new(),
                deps: Vec::new(),
                refs: Refs::Some(Vec::new()),
                loops: Vec::new(),
            }],
            by_task_id: HashMap::new(),
        };
        let mut b = Builder {
            registry,
            defaults: &flow.plugin_defaults,
        };
        let lists = [
            (BlockKind::Tasks, &flow.tasks),
            (BlockKind::Errors, &flow.errors),
            (BlockKind::Finally, &flow.finally),
        ];
        for (kind, tasks) in lists {
            b.add_block(&mut plan, ROOT, kind, tasks.clone(), &[])?;
        }
        for (i, l) in flow.listeners.iter().enumerate() {
            b.add_block(
                &mut plan,
                ROOT,
                BlockKind::Listener(i),
                l.tasks.clone(),
                &[],
            )?;
        }
        let after = flow.after_execution.clone();
        b.add_block(&mut plan, ROOT, BlockKind::AfterExecution, after, &[])?;
        Ok(plan)
    }

    pub(crate) fn node(&self, n: u32) -> &Node {
        // every node index comes from this plan; the root is a safe fallback
        self.nodes.get(n as usize).unwrap_or(&self.nodes[0])
    }
}

struct Builder<'a> {
    registry: &'a Registry,
    defaults: &'a [PluginDefault],
}

impl Builder<'_> {
    fn add_block(
        &mut self,
        plan: &mut Plan,
        parent: u32,
        kind: BlockKind,
        tasks: Vec<Task>,
        deps: &[Vec<String>],
    ) -> Result<(), ExecutorError> {
        let block = u16::try_from(plan.nodes[parent as usize].blocks.len()).unwrap_or(u16::MAX);
        plan.nodes[parent as usize].blocks.push(Block {
            kind,
            nodes: Vec::new(),
        });
        let mut ids = Vec::new();
        for (pos, task) in tasks.into_iter().enumerate() {
            let n = self.add_task(plan, parent, block, pos, task)?;
            ids.push(n);
        }
        // Dag dependencies, by task id within the block
        for (i, d) in deps.iter().enumerate() {
            let mut v = Vec::new();
            for id in d {
                if let Some(&n) = plan.by_task_id.get(id) {
                    v.push(n);
                }
            }
            if let Some(&n) = ids.get(i) {
                plan.nodes[n as usize].deps = v;
            }
        }
        plan.nodes[parent as usize].blocks[block as usize].nodes = ids;
        Ok(())
    }

    fn add_task(
        &mut self,
        plan: &mut Plan,
        parent: u32,
        block: u16,
        pos: usize,
        task: Task,
    ) -> Result<u32, ExecutorError> {
        let task = apply_defaults(task, self.defaults, self.registry)?;
        let type_name = self
            .registry
            .canonical_task_type(&task.type_name)
            .to_string();
        let kind = Kind::of(&type_name);
        let n = u32::try_from(plan.nodes.len()).unwrap_or(u32::MAX);
        let parent_node = &plan.nodes[parent as usize];
        let mut loops = parent_node.loops.clone();
        if parent_node.kind.is_value_loop() {
            loops.push(parent);
        }
        let refs = refs_of(&task);
        plan.by_task_id.entry(task.id.clone()).or_insert(n);
        plan.nodes.push(Node {
            task: Some(task.clone()),
            kind,
            type_name,
            parent,
            block,
            pos: u32::try_from(pos).unwrap_or(u32::MAX),
            blocks: Vec::new(),
            deps: Vec::new(),
            refs,
            loops,
        });
        let sub = |name: &str| -> Result<Vec<Task>, ExecutorError> {
            task.subtasks(name).map_err(|e| ExecutorError::Plan {
                task: task.id.clone(),
                message: format!("`{name}`: {e}"),
            })
        };
        match kind {
            Kind::If => {
                self.add_block(plan, n, BlockKind::Then, sub("then")?, &[])?;
                self.add_block(plan, n, BlockKind::Else, sub("else")?, &[])?;
            }
            Kind::Switch => {
                let cases: indexmap::IndexMap<String, Vec<Task>> = match task.prop("cases") {
                    None => indexmap::IndexMap::new(),
                    Some(v) => {
                        serde_json::from_value(v.clone()).map_err(|e| ExecutorError::Plan {
                            task: task.id.clone(),
                            message: format!("`cases`: {e}"),
                        })?
                    }
                };
                for (key, tasks) in cases {
                    self.add_block(plan, n, BlockKind::Case(key), tasks, &[])?;
                }
                self.add_block(plan, n, BlockKind::Defaults, sub("defaults")?, &[])?;
            }
            Kind::Dag => {
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct DagTask {
                    task: Task,
                    #[serde(default)]
                    depends_on: Vec<String>,
                }
                let items: Vec<DagTask> = match task.prop("tasks") {
                    None => Vec::new(),
                    Some(v) => {
                        serde_json::from_value(v.clone()).map_err(|e| ExecutorError::Plan {
                            task: task.id.clone(),
                            message: format!("`tasks`: {e}"),
                        })?
                    }
                };
                let (tasks, deps): (Vec<Task>, Vec<Vec<String>>) =
                    items.into_iter().map(|d| (d.task, d.depends_on)).unzip();
                self.add_block(plan, n, BlockKind::Tasks, tasks, &deps)?;
            }
            Kind::ForEachItem => {
                self.add_block(plan, n, BlockKind::Tasks, for_each_item_tasks(&task)?, &[])?;
            }
            k if k.is_parent() => {
                self.add_block(plan, n, BlockKind::Tasks, sub("tasks")?, &[])?;
            }
            _ => {}
        }
        if kind.is_parent() {
            self.add_block(plan, n, BlockKind::Errors, sub("errors")?, &[])?;
            self.add_block(plan, n, BlockKind::Finally, sub("finally")?, &[])?;
        }
        Ok(n)
    }
}

/// The three tasks a ForEachItem runs, as Kestra names them.
fn for_each_item_tasks(task: &Task) -> Result<Vec<Task>, ExecutorError> {
    let id = &task.id;
    let mk = |suffix: &str, type_name: &str, props: serde_json::Value| {
        let mut t = serde_json::json!({"id": format!("{id}_{suffix}"), "type": type_name});
        if let (Json::Object(m), Json::Object(p)) = (&mut t, props) {
            m.extend(p);
        }
        serde_json::from_value::<Task>(t).map_err(|e| ExecutorError::Plan {
            task: id.clone(),
            message: e.to_string(),
        })
    };
    let items = task.prop("items").cloned().unwrap_or(Json::Null);
    let batch = task
        .prop("batch")
        .cloned()
        .unwrap_or(serde_json::json!({"rows": 1}));
    Ok(vec![
        mk(
            "split",
            SPLIT_TYPE,
            serde_json::json!({"items": items, "batch": batch}),
        )?,
        mk("items", ITEMS_TYPE, serde_json::json!({}))?,
        mk(
            "merge",
            MERGE_TYPE,
            serde_json::json!({"executionIds": format!("{{{{ outputs['{id}_items'].executionIds }}}}")}),
        )?,
    ])
}

/// Applies `pluginDefaults` whose type is a prefix of the task's type (as written or canonical):
/// a default fills a property the task does not set; a forced one replaces it.
pub(crate) fn apply_defaults(
    task: Task,
    defaults: &[PluginDefault],
    registry: &Registry,
) -> Result<Task, ExecutorError> {
    if defaults.is_empty() {
        return Ok(task);
    }
    let canonical = registry.canonical_task_type(&task.type_name).to_string();
    let matching: Vec<&PluginDefault> = defaults
        .iter()
        .filter(|d| {
            task.type_name.starts_with(&d.type_prefix) || canonical.starts_with(&d.type_prefix)
        })
        .collect();
    if matching.is_empty() {
        return Ok(task);
    }
    let id = task.id.clone();
    let mut json = serde_json::to_value(&task).map_err(|e| ExecutorError::Plan {
        task: id.clone(),
        message: e.to_string(),
    })?;
    if let Json::Object(map) = &mut json {
        for d in matching {
            for (k, v) in &d.values {
                if k == "id" || k == "type" {
                    continue;
                }
                if d.forced || !map.contains_key(k) {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
    }
    serde_json::from_value(json).map_err(|e| ExecutorError::Plan {
        task: id,
        message: format!("pluginDefaults: {e}"),
    })
}

/// The task ids read through `outputs` by the expressions of a task's own properties.
fn refs_of(task: &Task) -> Refs {
    let mut out = Vec::new();
    let mut all = false;
    let mut visit = |s: &str| {
        if !weft_flow::expr::is_template(s) {
            return;
        }
        scan_refs(s, &mut out, &mut all);
    };
    if let Some(r) = &task.run_if {
        visit(r);
    }
    fn walk(v: &Json, key: Option<&str>, f: &mut dyn FnMut(&str)) {
        match v {
            Json::String(s) => f(s),
            Json::Array(a) => a.iter().for_each(|x| walk(x, None, f)),
            Json::Object(m) => {
                for (k, x) in m {
                    f(k);
                    walk(x, Some(k), f);
                }
            }
            _ => {}
        }
        let _ = key;
    }
    for (k, v) in &task.properties {
        // child task lists are their own nodes
        if matches!(
            k.as_str(),
            "tasks" | "then" | "else" | "cases" | "defaults" | "errors" | "finally"
        ) && v.is_array() | v.is_object()
        {
            if k == "defaults" && !v.is_array() {
                walk(v, Some(k), &mut visit);
            }
            continue;
        }
        walk(v, Some(k), &mut visit);
    }
    if all {
        Refs::All
    } else {
        out.sort();
        out.dedup();
        Refs::Some(out)
    }
}

fn scan_refs(s: &str, out: &mut Vec<String>, all: &mut bool) {
    let bytes = s.as_bytes();
    let is_id = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let mut i = 0;
    while let Some(off) = s[i..].find("outputs") {
        let start = i + off;
        let end = start + "outputs".len();
        i = end;
        if start > 0 && (is_id(bytes[start - 1]) || bytes[start - 1] == b'.') {
            continue; // `xoutputs`, `foo.outputs`
        }
        match bytes.get(end) {
            Some(b'.') => {
                let mut j = end + 1;
                while j < bytes.len() && (is_id(bytes[j])) {
                    j += 1;
                }
                if j > end + 1 {
                    out.push(s[end + 1..j].trim_end_matches('-').to_string());
                } else {
                    *all = true;
                }
            }
            Some(b'[') => {
                let rest = &s[end + 1..];
                let q = rest.chars().next();
                match q {
                    Some(q @ ('\'' | '"')) => match rest[1..].find(q) {
                        Some(close) => out.push(rest[1..1 + close].to_string()),
                        None => *all = true,
                    },
                    _ => *all = true,
                }
            }
            Some(c) if is_id(*c) => {} // `outputsFoo`
            _ => *all = true,
        }
    }
}

/// The task properties a plugin receives: everything but the common task properties.
pub(crate) fn plugin_properties(task: &Task) -> Map<String, Json> {
    task.properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_output_references() {
        let mut out = Vec::new();
        let mut all = false;
        scan_refs(
            "{{ outputs.a.value }} {{ outputs['b-c'].x }} {{ outputs.d[taskrun.value] }}",
            &mut out,
            &mut all,
        );
        assert_eq!(out, ["a", "b-c", "d"]);
        assert!(!all);
        scan_refs("{{ outputs | json }}", &mut out, &mut all);
        assert!(all);
    }
}
