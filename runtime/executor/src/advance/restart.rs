//! Kill (KILLING -> KILLED, every running task run and subflow too), Exit, flow `concurrency`
//! admission, restart of a failed execution (same id, RESTARTED) and replay from a task run (a
//! new execution with `parentId` and `originalId`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use weft_flow::Flow;

use super::{Executor, Step};
use crate::effect::Effect;
use crate::error::ExecutorError;
use crate::execution::Execution;
use crate::ids;
use crate::index::{Index, NO_PARENT, TAIL};
use crate::plan::Kind;
use crate::state::State;

/// What to do with a new execution under the flow's `concurrency` limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Start it.
    Run,
    /// Keep it QUEUED until a slot frees (behaviour QUEUE).
    Queue,
    /// End it CANCELLED (behaviour CANCEL).
    Cancel,
    /// End it FAILED (behaviour FAIL).
    Fail,
}

/// The decision for a new execution of `flow` while `running` others run.
pub fn admission(flow: &Flow, running: u32) -> Admission {
    match &flow.concurrency {
        Some(c) if running >= c.limit => match c.behavior.as_str() {
            "CANCEL" => Admission::Cancel,
            "FAIL" => Admission::Fail,
            _ => Admission::Queue,
        },
        _ => Admission::Run,
    }
}

impl Step<'_> {
    /// Kills every task run not terminal, then ends the execution in `end` (KILLED, or FAILED
    /// for a flow timeout).
    pub(super) fn kill(&mut self, end: State) {
        if self.exec.state.current.is_terminal() {
            return;
        }
        if end == State::Killed {
            self.exec.state.transition(State::Killing, self.now);
        }
        self.kill_active(None);
        self.queue.clear();
        self.end_execution(end);
    }

    /// Kills every active task run but `keep`.
    fn kill_active(&mut self, keep: Option<u32>) {
        let active: Vec<u32> = self.ix.active.iter().rev().copied().collect();
        let now = self.now;
        for pos in active {
            if Some(pos) == keep {
                continue;
            }
            let node = self.meta(pos).node;
            let kind = self.plan().node(node).kind;
            let Some(run) = self.run_mut(pos) else {
                continue;
            };
            if let Some(a) = run.attempts.as_mut().and_then(|a| a.last_mut())
                && !a.state.current.is_terminal()
            {
                a.state.transition(State::Killed, now);
            }
            let attempt = run.attempt_count();
            let running_attempt = kind == Kind::Runnable && run.state.current == State::Running;
            let subflows: Vec<String> = match kind {
                Kind::Subflow => run
                    .outputs
                    .as_ref()
                    .and_then(|o| o.get("executionId"))
                    .and_then(Json::as_str)
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
                Kind::ForEachItemExecutable => {
                    let o = run.outputs.as_ref();
                    let ended: Vec<&str> = o
                        .and_then(|o| o.get("terminatedIds"))
                        .and_then(Json::as_array)
                        .map(|a| a.iter().filter_map(Json::as_str).collect())
                        .unwrap_or_default();
                    o.and_then(|o| o.get("executionIds"))
                        .and_then(Json::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Json::as_str)
                                .filter(|id| !ended.contains(id))
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default()
                }
                _ => Vec::new(),
            };
            let id = run.id.clone();
            run.state.transition(State::Killed, now);
            self.ix.active.remove(&pos);
            if running_attempt {
                self.effects.push(Effect::CancelTask {
                    task_run_id: id,
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                });
            }
            for execution_id in subflows {
                self.effects.push(Effect::KillExecution { execution_id });
            }
        }
    }

    /// An Exit task ends the execution in `state`; what still runs is killed.
    pub(super) fn exit(&mut self, pos: u32, state: State) {
        self.kill_active(Some(pos));
        self.queue.clear();
        self.end_execution(state);
    }

    /// Restart in `advance` (the [`crate::Event::Restart`] event).
    pub(super) fn restart_in_place(&mut self) -> Result<(), ExecutorError> {
        let ix = std::mem::take(&mut self.ix);
        self.exec.index.put(ix);
        let r = self.ex.restart(self.exec, self.now);
        self.ix = self
            .exec
            .index
            .take()
            .unwrap_or_else(|| Box::new(Index::build(&self.ex.plan, self.exec)));
        r
    }

    /// Continues a RESTARTED execution: restarted runnables get a new attempt, restarted
    /// flowables run again, every parent looks for work. Every task run still active in a
    /// RESTARTED execution is one the restart reopened: RESTARTED, or a flowable parent put
    /// back to RUNNING.
    pub(super) fn continue_restarted(&mut self) {
        let restarted: Vec<u32> = self
            .ix
            .active
            .iter()
            .copied()
            .filter(|&p| {
                let parent = self.plan().node(self.meta(p).node).kind.is_parent();
                self.run(p).is_some_and(|r| {
                    r.state.current == State::Restarted
                        || (parent && r.state.current == State::Running)
                })
            })
            .collect();
        for pos in &restarted {
            let kind = self.plan().node(self.meta(*pos).node).kind;
            if !kind.has_attempts() {
                self.set_state(*pos, State::Running);
            }
        }
        for pos in restarted {
            let kind = self.plan().node(self.meta(pos).node).kind;
            if kind.has_attempts() {
                self.new_attempt(pos);
            } else if kind == Kind::Subflow {
                super::subflow::begin(self, pos);
            } else if kind.is_parent() {
                self.evaluate(pos, None);
            }
        }
        self.evaluate(NO_PARENT, None);
    }
}

impl Executor {
    /// Restarts a FAILED or KILLED execution with the same id: its failed task runs (and their
    /// parents) become RESTARTED, `errors`/`finally` task runs under them are dropped, and the
    /// execution is RESTARTED. Send [`crate::Event::Start`] (or use [`crate::Event::Restart`])
    /// to run it again.
    pub fn restart(&self, exec: &mut Execution, now: DateTime<Utc>) -> Result<(), ExecutorError> {
        if !matches!(exec.state.current, State::Failed | State::Killed) {
            return Err(ExecutorError::NotAllowed {
                execution: exec.id.clone(),
                action: "restarted",
                reason: format!(
                    "it is {}, only FAILED or KILLED executions restart",
                    exec.state.current
                ),
            });
        }
        let ix = match exec.index.take() {
            Some(ix) => ix,
            None => Box::new(Index::build(&self.plan, exec)),
        };
        // failed task runs and their ancestors restart
        let mut restart: HashSet<u32> = HashSet::new();
        for (pos, run) in exec.task_run_list.iter().enumerate() {
            if run.state.current.is_failed() {
                let mut cur = u32::try_from(pos).unwrap_or(u32::MAX);
                while cur != NO_PARENT && restart.insert(cur) {
                    cur = ix.meta.get(cur as usize).map_or(NO_PARENT, |m| m.parent);
                }
            }
        }
        // errors/finally of restarted parents (and the root) go, with their descendants
        let mut removed = vec![false; exec.task_run_list.len()];
        for pos in 0..exec.task_run_list.len() {
            let Some(m) = ix.meta.get(pos) else { continue };
            let parent_removed =
                m.parent != NO_PARENT && removed.get(m.parent as usize).copied().unwrap_or(false);
            let tail_of_restarted =
                m.lane == TAIL && (m.parent == NO_PARENT || restart.contains(&m.parent));
            removed[pos] = parent_removed || tail_of_restarted;
        }
        let mut keep = removed.iter().map(|r| !r);
        exec.task_run_list.retain(|_| keep.next().unwrap_or(true));
        for run in exec.task_run_list.iter_mut() {
            if run.state.current.is_failed()
                || (run.state.current.is_terminal() && restarted_parent(&restart, &ix, &run.id))
            {
                // as Kestra: a flowable parent goes back to RUNNING (it has no attempt to run
                // again, and a Pause does not pause twice); the others are RESTARTED
                let parent = ix
                    .by_id
                    .get(&run.id)
                    .and_then(|&p| ix.meta.get(p as usize))
                    .is_some_and(|m| self.plan.node(m.node).kind.is_parent());
                let state = if parent {
                    State::Running
                } else {
                    State::Restarted
                };
                run.state.transition(state, now);
            }
        }
        exec.outputs = None;
        exec.state.transition(State::Restarted, now);
        // runs were removed and changed anywhere in the list: all of it goes back to the head
        exec.invalidate_index();
        exec.index.put(Box::new(Index::build(&self.plan, exec)));
        Ok(())
    }

    /// Replays a terminated execution from one of its task runs: a new execution (id from
    /// `seed`, `parentId` the replayed one, same `originalId`) keeping the task runs created
    /// before it, the task run itself (and its parents) RESTARTED.
    pub fn replay(
        &self,
        exec: &Execution,
        task_run_id: &str,
        seed: u64,
        now: DateTime<Utc>,
    ) -> Result<Execution, ExecutorError> {
        let not = |reason: String| ExecutorError::NotAllowed {
            execution: exec.id.clone(),
            action: "replayed",
            reason,
        };
        if !exec.state.current.is_terminal() {
            return Err(not(format!("it is {}", exec.state.current)));
        }
        let target = exec
            .task_run_list
            .iter()
            .position(|r| r.id == task_run_id)
            .ok_or_else(|| not(format!("it has no task run `{task_run_id}`")))?;
        let ix = Index::build(&self.plan, exec);
        let mut ancestors: HashSet<u32> = HashSet::new();
        let mut cur = u32::try_from(target).unwrap_or(u32::MAX);
        while cur != NO_PARENT {
            ancestors.insert(cur);
            cur = ix.meta.get(cur as usize).map_or(NO_PARENT, |m| m.parent);
        }
        let new_id = ids::execution_id(seed);
        let map_id = |old: &str| ids::base62(ids::hash128(&[new_id.as_bytes(), old.as_bytes()]));
        let mut list = Vec::with_capacity(target + 1);
        for (pos, run) in exec.task_run_list.iter().take(target + 1).enumerate() {
            let m = ix.meta.get(pos);
            // errors/finally of the replayed run's parents go
            if m.is_some_and(|m| {
                m.lane == TAIL && (m.parent == NO_PARENT || ancestors.contains(&m.parent))
            }) {
                continue;
            }
            let mut r = run.clone();
            r.id = map_id(&run.id);
            r.execution_id = new_id.clone();
            r.parent_task_run_id = run.parent_task_run_id.as_deref().map(map_id);
            if ancestors.contains(&u32::try_from(pos).unwrap_or(u32::MAX)) {
                r.state.transition(State::Restarted, now);
                if pos != target {
                    r.outputs = None;
                }
            }
            list.push(r);
        }
        let mut new = exec.clone();
        new.id = new_id.clone();
        new.parent_id = Some(exec.id.clone());
        new.original_id = exec.original_id.clone().or_else(|| Some(exec.id.clone()));
        new.outputs = None;
        new.task_run_list = list;
        new.state.transition(State::Restarted, now);
        // a new execution: none of the replayed one's chunks is its own
        new.invalidate_index();
        Ok(new)
    }
}

fn restarted_parent(restart: &HashSet<u32>, ix: &Index, id: &str) -> bool {
    ix.by_id.get(id).is_some_and(|p| restart.contains(p))
}
