//! Indexes kept beside the task-run list so one `advance` never rescans the whole execution:
//! task runs by id, children by parent and lane, per-parent lane counters, the set of task runs
//! not yet terminal, and the `outputs` tree of the render context. Never serialised: rebuilt
//! once when an execution is loaded (or after a restart edits the list).

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value as Json};

use crate::execution::Execution;
use crate::plan::{BlockKind, Plan, ROOT};
use crate::state::State;

/// The parent key of root task runs.
pub(crate) const NO_PARENT: u32 = u32::MAX;
/// The lane of `errors` and `finally` children.
pub(crate) const TAIL: u32 = u32::MAX;

/// What is known of one task run besides the run itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunMeta {
    /// Its node in the plan.
    pub(crate) node: u32,
    /// Position of the parent task run, or [`NO_PARENT`].
    pub(crate) parent: u32,
    /// Its lane in the parent.
    pub(crate) lane: u32,
}

/// The children of one lane of one parent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lane {
    pub(crate) kids: Vec<u32>,
    /// Counted in its parent's `done` already.
    pub(crate) done: bool,
}

/// Progress of one parent (a flowable task run, or the execution itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Agg {
    /// How many body lanes there are (loop values; `u32::MAX` while a WaitFor goes on).
    pub(crate) total: u32,
    /// Lanes started (in order: 0, 1, ...).
    pub(crate) started: u32,
    /// Lanes ended.
    pub(crate) done: u32,
    /// The worst state of the ended lanes.
    pub(crate) worst: State,
    /// A lane failed: start no more.
    pub(crate) failed: bool,
    /// `errors`/`finally` started.
    pub(crate) tail: bool,
    /// The block of the parent's node that is the body (If/Switch: the chosen branch).
    pub(crate) body: Option<u16>,
    /// A WaitFor waits for the timer of its next iteration.
    pub(crate) waiting: bool,
}

impl Default for Agg {
    fn default() -> Self {
        Agg {
            total: 1,
            started: 0,
            done: 0,
            worst: State::Success,
            failed: false,
            tail: false,
            body: None,
            waiting: false,
        }
    }
}

/// The indexes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub(crate) by_id: HashMap<String, u32>,
    pub(crate) meta: Vec<RunMeta>,
    pub(crate) lanes: HashMap<(u32, u32), Lane>,
    pub(crate) aggs: HashMap<u32, Agg>,
    /// Task runs not terminal.
    pub(crate) active: BTreeSet<u32>,
    /// `outputs` as expressions see it: by task id, nested by loop values.
    pub(crate) outputs: Map<String, Json>,
}

/// Holds the indexes inside an [`Execution`]: skipped by serde, equal to any other, and empty
/// in a clone (a clone rebuilds its own).
#[derive(Default)]
pub(crate) struct IndexSlot(Option<Box<Index>>);

impl IndexSlot {
    pub(crate) fn get(&self) -> Option<&Index> {
        self.0.as_deref()
    }
    pub(crate) fn take(&mut self) -> Option<Box<Index>> {
        self.0.take()
    }
    pub(crate) fn put(&mut self, ix: Box<Index>) {
        self.0 = Some(ix);
    }
}

impl Clone for IndexSlot {
    fn clone(&self) -> Self {
        IndexSlot(None)
    }
}

impl std::fmt::Debug for IndexSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Index" } else { "NoIndex" })
    }
}

/// The lane of a child of `parent_node` living in `block`, with its `iteration`.
pub(crate) fn lane_of(plan: &Plan, parent_node: u32, block: u16, iteration: Option<u32>) -> u32 {
    let p = plan.node(parent_node);
    match p.blocks.get(block as usize).map(|b| &b.kind) {
        Some(
            BlockKind::Errors
            | BlockKind::Finally
            | BlockKind::Listener(_)
            | BlockKind::AfterExecution,
        ) => TAIL,
        _ if p.kind.is_loop() => iteration.unwrap_or(0),
        _ => 0,
    }
}

impl Index {
    /// Builds the indexes of an execution (one pass over the list, then one per parent).
    pub(crate) fn build(plan: &Plan, exec: &Execution) -> Index {
        let mut ix = Index::default();
        for (pos, run) in exec.task_run_list.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            ix.by_id.insert(run.id.clone(), pos);
            let node = plan.by_task_id.get(&run.task_id).copied().unwrap_or(ROOT);
            let parent = run
                .parent_task_run_id
                .as_ref()
                .and_then(|p| ix.by_id.get(p).copied())
                .unwrap_or(NO_PARENT);
            let n = plan.node(node);
            let lane = lane_of(plan, n.parent, n.block, run.iteration);
            ix.meta.push(RunMeta { node, parent, lane });
            ix.lanes.entry((parent, lane)).or_default().kids.push(pos);
            if !run.state.current.is_terminal() {
                ix.active.insert(pos);
            }
            if let Some(o) = &run.outputs {
                let path = ix.loop_path(exec, pos);
                insert_outputs(&mut ix.outputs, &run.task_id, &path, o.clone());
            }
        }
        // per-parent progress, from the lanes
        let mut parents: Vec<u32> = vec![NO_PARENT];
        for (pos, run) in exec.task_run_list.iter().enumerate() {
            let node = ix.meta[pos].node;
            if plan.node(node).kind.is_parent() && run.attempts.is_none() {
                parents.push(u32::try_from(pos).unwrap_or(u32::MAX));
            }
        }
        for p in parents {
            let agg = crate::advance::lanes::rebuild_agg(plan, exec, &mut ix, p);
            ix.aggs.insert(p, agg);
        }
        ix
    }

    /// The loop values from the outermost loop down to this run (only the values taken when
    /// entering a ForEach/EachSequential/EachParallel iteration).
    pub(crate) fn loop_path(&self, exec: &Execution, pos: u32) -> Vec<String> {
        let mut path = Vec::new();
        let mut cur = pos;
        while let Some(meta) = self.meta.get(cur as usize) {
            if meta.parent == NO_PARENT {
                break;
            }
            let is_loop_child = meta.lane != TAIL
                && exec
                    .task_run_list
                    .get(meta.parent as usize)
                    .and_then(|p| p.loop_values.as_ref())
                    .is_some();
            if is_loop_child
                && let Some(v) = exec
                    .task_run_list
                    .get(cur as usize)
                    .and_then(|r| r.value.clone())
            {
                path.push(v);
            }
            cur = meta.parent;
        }
        path.reverse();
        path
    }
}

/// Puts a task run's outputs into the outputs tree: `outputs[taskId]` or
/// `outputs[taskId][v1][v2]...` inside loops.
pub(crate) fn insert_outputs(
    tree: &mut Map<String, Json>,
    task_id: &str,
    path: &[String],
    outputs: Map<String, Json>,
) {
    if path.is_empty() {
        tree.insert(task_id.to_string(), Json::Object(outputs));
        return;
    }
    let mut cur = tree
        .entry(task_id.to_string())
        .or_insert_with(|| Json::Object(Map::new()));
    for v in path {
        if !cur.is_object() {
            *cur = Json::Object(Map::new());
        }
        let Json::Object(m) = cur else { return };
        cur = m
            .entry(v.clone())
            .or_insert_with(|| Json::Object(Map::new()));
    }
    *cur = Json::Object(outputs);
}
