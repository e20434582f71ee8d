//! Lanes: which children of a lane start next and whether the lane ended, by sequential,
//! parallel (with a limit) or DAG order, and the tail lane (`errors`, then `finally`). A lane
//! holds at most one run per task of its block, so looking at it costs the size of the flow.

use crate::execution::Execution;
use crate::index::{Agg, Index, NO_PARENT, TAIL};
use crate::plan::{BlockKind, Kind, Plan, ROOT};
use crate::state::State;

/// What a lane should do now.
#[derive(Debug, Default)]
pub(crate) struct LaneEval {
    /// Every child ended and nothing is left to start.
    pub(crate) done: bool,
    /// The worst state of the children that count.
    pub(crate) worst: State,
    /// Nodes to start now.
    pub(crate) start: Vec<u32>,
}

/// How the children of a body lane run.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Seq,
    Par(u32),
    Dag(u32),
}

fn int_prop(plan: &Plan, node: u32, name: &str) -> Option<u32> {
    plan.node(node).prop(name).and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn mode(plan: &Plan, pnode: u32) -> Mode {
    match plan.node(pnode).kind {
        Kind::Parallel => Mode::Par(int_prop(plan, pnode, "concurrent").unwrap_or(0)),
        Kind::EachParallel => Mode::Par(0),
        Kind::Dag => Mode::Dag(int_prop(plan, pnode, "concurrent").unwrap_or(0)),
        _ => Mode::Seq,
    }
}

pub(crate) fn lane_int_prop(plan: &Plan, node: u32, name: &str) -> Option<u32> {
    int_prop(plan, node, name)
}

fn kids(ix: &Index, p: u32, lane: u32) -> &[u32] {
    ix.lanes.get(&(p, lane)).map_or(&[], |l| l.kids.as_slice())
}

fn run_state(exec: &Execution, pos: u32) -> State {
    exec.task_run_list
        .get(pos as usize)
        .map_or(State::Success, |r| r.state.current)
}

/// Evaluates a body lane of parent `p` (its node `pnode`) whose body block is `body`.
pub(crate) fn eval_body(
    plan: &Plan,
    exec: &Execution,
    ix: &Index,
    p: u32,
    pnode: u32,
    lane: u32,
    body: Option<u16>,
) -> LaneEval {
    let Some(tasks) = body.and_then(|b| plan.node(pnode).blocks.get(b as usize)) else {
        return LaneEval {
            done: true,
            ..LaneEval::default()
        };
    };
    let tasks = &tasks.nodes;
    let kids = kids(ix, p, lane);
    match mode(plan, pnode) {
        Mode::Seq => seq(plan, exec, ix, kids, tasks),
        Mode::Par(limit) => par(plan, exec, ix, kids, tasks, limit, false),
        Mode::Dag(limit) => par(plan, exec, ix, kids, tasks, limit, true),
    }
}

fn first_enabled(plan: &Plan, tasks: &[u32], from: usize) -> Option<u32> {
    tasks
        .iter()
        .skip(from)
        .copied()
        .find(|&n| !plan.node(n).disabled())
}

fn seq(plan: &Plan, exec: &Execution, ix: &Index, kids: &[u32], tasks: &[u32]) -> LaneEval {
    let mut worst = State::Success;
    for &k in kids {
        let s = run_state(exec, k);
        if !s.is_terminal() {
            return LaneEval::default();
        }
        worst = worst.worst(s);
    }
    if worst.is_failed() {
        return LaneEval {
            done: true,
            worst,
            start: Vec::new(),
        };
    }
    let from = kids
        .last()
        .and_then(|&k| ix.meta.get(k as usize))
        .map_or(0, |m| plan.node(m.node).pos as usize + 1);
    match first_enabled(plan, tasks, from) {
        Some(n) => LaneEval {
            done: false,
            worst,
            start: vec![n],
        },
        None => LaneEval {
            done: true,
            worst,
            start: Vec::new(),
        },
    }
}

fn par(
    plan: &Plan,
    exec: &Execution,
    ix: &Index,
    kids: &[u32],
    tasks: &[u32],
    limit: u32,
    dag: bool,
) -> LaneEval {
    let mut worst = State::Success;
    let mut running = 0u32;
    let mut created = vec![false; tasks.len()];
    let mut ok = vec![false; tasks.len()];
    for &k in kids {
        let s = run_state(exec, k);
        if let Some(m) = ix.meta.get(k as usize) {
            let pos = plan.node(m.node).pos as usize;
            if let Some(c) = created.get_mut(pos) {
                *c = true;
            }
            if let Some(o) = ok.get_mut(pos) {
                *o = s.is_terminal() && !s.is_failed();
            }
        }
        if s.is_terminal() {
            worst = worst.worst(s);
        } else {
            running += 1;
        }
    }
    if worst.is_failed() {
        return LaneEval {
            done: running == 0,
            worst,
            start: Vec::new(),
        };
    }
    let mut start = Vec::new();
    let mut remaining = false;
    for (i, &n) in tasks.iter().enumerate() {
        if created[i] || plan.node(n).disabled() {
            continue;
        }
        remaining = true;
        if limit != 0 && running + start.len() as u32 >= limit {
            break;
        }
        if dag {
            let ready = plan.node(n).deps.iter().all(|&d| {
                let dn = plan.node(d);
                dn.disabled() || ok.get(dn.pos as usize).copied().unwrap_or(false)
            });
            if !ready {
                continue;
            }
        }
        start.push(n);
    }
    let done = start.is_empty() && running == 0 && !remaining;
    // a DAG whose remaining tasks can never be ready ends as it is
    let stuck = dag && start.is_empty() && running == 0 && remaining;
    LaneEval {
        done: done || stuck,
        worst,
        start,
    }
}

/// Evaluates the tail lane: the `errors` block when the body failed, then `finally`, then (for
/// the flow) each legacy listener whose conditions hold and `afterExecution`. Blocks run one after the other, a
/// failure ends its block; only the `finally` children count in `worst` (errors handlers never
/// rescue the parent, listeners never change the execution's state).
pub(crate) fn eval_tail(
    plan: &Plan,
    exec: &Execution,
    ix: &Index,
    p: u32,
    pnode: u32,
    body: State,
) -> LaneEval {
    let node = plan.node(pnode);
    let finally = node.block_of(&BlockKind::Finally);
    let kids = kids(ix, p, TAIL);
    let mut worst = State::Success;
    for &k in kids {
        let s = run_state(exec, k);
        if !s.is_terminal() {
            return LaneEval::default();
        }
        let in_finally = ix
            .meta
            .get(k as usize)
            .is_some_and(|m| Some(plan.node(m.node).block) == finally);
        if in_finally {
            worst = worst.worst(s);
        }
    }
    // the blocks of the tail, in order
    let mut segments: Vec<u16> = Vec::new();
    if body.is_failed()
        && let Some(e) = node.block_of(&BlockKind::Errors)
    {
        segments.push(e);
    }
    segments.extend(finally);
    let end_state = body.worst(worst);
    for (i, b) in node.blocks.iter().enumerate() {
        if let BlockKind::Listener(l) = b.kind
            && plan
                .flow
                .listeners
                .get(l)
                .is_some_and(|l| listener_applies(&l.conditions, end_state))
        {
            segments.extend(u16::try_from(i).ok());
        }
    }
    segments.extend(node.block_of(&BlockKind::AfterExecution));
    let nodes = |b: u16| {
        node.blocks
            .get(b as usize)
            .map_or(&[][..], |b| b.nodes.as_slice())
    };
    let last = kids.last().copied().and_then(|k| {
        ix.meta
            .get(k as usize)
            .map(|m| (plan.node(m.node), run_state(exec, k)))
    });
    let (seg, from) = match last {
        None => (0, 0),
        Some((n, s)) => match segments.iter().position(|&b| b == n.block) {
            Some(i) if !s.is_failed() => (i, n.pos as usize + 1),
            Some(i) => (i + 1, 0),
            None => (segments.len(), 0),
        },
    };
    let mut next = None;
    for (i, &b) in segments.iter().enumerate().skip(seg) {
        let start = if i == seg { from } else { 0 };
        if let Some(n) = first_enabled(plan, nodes(b), start) {
            next = Some(n);
            break;
        }
    }
    match next {
        Some(n) => LaneEval {
            done: false,
            worst,
            start: vec![n],
        },
        None => LaneEval {
            done: true,
            worst,
            start: Vec::new(),
        },
    }
}

/// Whether a legacy listener's conditions hold for an execution ending in `state`
/// (ExecutionStatusCondition `in`/`notIn`; other conditions are not checked).
fn listener_applies(conditions: &[weft_flow::model::Condition], state: State) -> bool {
    conditions.iter().all(|c| {
        if !c.type_name.ends_with("ExecutionStatusCondition")
            && !c.type_name.ends_with("ExecutionStatus")
        {
            return true;
        }
        let has = |key: &str| {
            c.properties
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| a.iter().any(|x| x.as_str() == Some(state.as_str())))
        };
        has("in").unwrap_or(true) && !has("notIn").unwrap_or(false)
    })
}

/// Recomputes a parent's progress from its lanes (when an execution is loaded).
pub(crate) fn rebuild_agg(plan: &Plan, exec: &Execution, ix: &mut Index, p: u32) -> Agg {
    let pnode = if p == NO_PARENT {
        ROOT
    } else {
        ix.meta.get(p as usize).map_or(ROOT, |m| m.node)
    };
    let node = plan.node(pnode);
    let run = exec
        .task_run_list
        .get(p as usize)
        .filter(|_| p != NO_PARENT);
    let mut agg = Agg::default();
    // the body block: the block of the first body child, else the kind's default
    // loops start lane 0 first, so lane 0 is enough
    let first_body_kid = kids(ix, p, 0).first().copied();
    agg.body = match first_body_kid.and_then(|k| ix.meta.get(k as usize)) {
        Some(m) => Some(plan.node(m.node).block),
        None => match node.kind {
            Kind::If | Kind::Switch => None,
            _ => node.block_of(&BlockKind::Tasks),
        },
    };
    if let Some(values) = run.and_then(|r| r.loop_values.as_ref()) {
        agg.total = u32::try_from(values.len()).unwrap_or(u32::MAX);
    }
    let mut started = 0u32;
    if node.kind.is_loop() {
        // lanes start in order, so the highest lane with children says how many started
        let mut l = 0u32;
        while ix.lanes.contains_key(&(p, l)) {
            l += 1;
        }
        started = l;
    } else if ix.lanes.contains_key(&(p, 0)) {
        started = 1;
    }
    agg.started = started;
    for l in 0..started {
        let ev = eval_body(plan, exec, ix, p, pnode, l, agg.body);
        if ev.done {
            if let Some(lane) = ix.lanes.get_mut(&(p, l)) {
                lane.done = true;
            }
            agg.done += 1;
            agg.worst = agg.worst.worst(ev.worst);
            if ev.worst.is_failed() {
                agg.failed = true;
            }
        }
    }
    agg.tail = ix.lanes.contains_key(&(p, TAIL));
    if node.kind == Kind::WaitFor {
        agg.total = started.max(1);
        let running = run.is_some_and(|r| r.state.current == State::Running);
        agg.waiting = running && !agg.tail && !agg.failed && agg.done == started && started > 0;
    }
    agg
}
