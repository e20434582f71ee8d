//! `advance`: applies events to an execution and returns the effects, with no I/O, no clock and
//! no randomness. One module per family of flowable tasks.
//!
//! Every flowable task run (and the execution itself, the "root") is a *parent* whose children
//! live in *lanes*: lane 0 for the body of Sequential, Parallel, If, Switch, Dag, ...; one lane
//! per value (ForEach, EachSequential, EachParallel) or iteration (WaitFor); and the tail lane
//! for `errors` then `finally`. When a child ends, only its lane is looked at (bounded by the
//! size of the flow, not of the execution), and per-parent counters say when every lane ended.

mod attempt;
mod flowable;
mod inline;
pub(crate) mod lanes;
mod outputs;
mod pause;
mod recover;
mod restart;
mod sla;
mod subflow;

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};
use weft_flow::expr::{Context, ExprHost, Renderer};
use weft_flow::{Flow, Registry};

use crate::context::{self, Site};
use crate::effect::Effect;
use crate::error::ExecutorError;
use crate::event::{Event, Timer, TimerKind};
use crate::execution::Execution;
use crate::ids;
use crate::index::{Agg, Index, NO_PARENT, RunMeta, TAIL, insert_outputs};
use crate::plan::{Kind, Plan, ROOT};
use crate::state::{State, StateInfo};
use crate::taskrun::TaskRun;

pub use restart::Admission;
pub use restart::admission as restart_admission;

/// Runs the executions of one flow revision: the flow indexed once, a renderer, and what the
/// driver adds to every render context.
pub struct Executor {
    plan: Plan,
    renderer: Arc<Renderer>,
    host: Option<Arc<dyn ExprHost>>,
    globals: Map<String, Json>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("flow", &self.plan.flow.id)
            .field("tasks", &(self.plan.nodes.len() - 1))
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Indexes `flow` (task types resolved with `registry`, `pluginDefaults` applied).
    pub fn new(
        flow: &Flow,
        registry: &Registry,
        renderer: Arc<Renderer>,
    ) -> Result<Self, ExecutorError> {
        Ok(Executor {
            plan: Plan::new(flow, registry)?,
            renderer,
            host: None,
            globals: Map::new(),
        })
    }

    /// Gives expressions the executor renders (conditions, loop values, ...) access to secrets,
    /// storage and the KV store.
    pub fn with_host(mut self, host: Arc<dyn ExprHost>) -> Self {
        self.host = Some(host);
        self
    }

    /// Variables added to every render context (e.g. `envs`, `globals`).
    pub fn with_globals(mut self, globals: Map<String, Json>) -> Self {
        self.globals = globals;
        self
    }

    /// The flow.
    pub fn flow(&self) -> &Flow {
        &self.plan.flow
    }

    /// A new execution of the flow in CREATED, its id made from `seed`.
    pub fn create_execution(&self, seed: u64, now: DateTime<Utc>) -> Execution {
        Execution::new(&self.plan.flow, ids::execution_id(seed), now)
    }

    /// Applies `events` to `exec` in order and returns what the driver must do. Costs in
    /// proportion to the events and the task runs they start, not to the execution's size.
    pub fn advance(
        &self,
        exec: &mut Execution,
        events: Vec<Event>,
        now: DateTime<Utc>,
    ) -> Vec<Effect> {
        let ix = match exec.index.take() {
            Some(ix) => ix,
            None => Box::new(Index::build(&self.plan, exec)),
        };
        let mut step = Step {
            ex: self,
            exec,
            ix,
            now,
            effects: Vec::new(),
            queue: VecDeque::new(),
            pending_exit: None,
        };
        for event in events {
            step.handle(event);
            step.drain();
        }
        let Step {
            exec, ix, effects, ..
        } = step;
        exec.index.put(ix);
        effects
    }

    /// The variables an expression over the whole execution sees: `flow`, `execution`,
    /// `inputs`, `vars`, `labels`, `trigger`, the globals and every task's `outputs` (what a Flow
    /// trigger renders its inputs and conditions with).
    pub fn execution_context(&self, exec: &mut Execution) -> Json {
        let ix = match exec.index.take() {
            Some(ix) => ix,
            None => Box::new(Index::build(&self.plan, exec)),
        };
        let vars = context::flow_outputs(&self.plan, &ix, exec, &self.globals);
        exec.index.put(ix);
        vars
    }

    /// The outputs tree (`outputs.task[value]...`) of an execution, as expressions see it.
    pub fn outputs_tree(&self, exec: &mut Execution) -> Map<String, Json> {
        let ix = match exec.index.take() {
            Some(ix) => ix,
            None => Box::new(Index::build(&self.plan, exec)),
        };
        let out = ix.outputs.clone();
        exec.index.put(ix);
        out
    }
}

/// One call of `advance`: the execution, its indexes, the effects so far, and the task runs
/// that just ended and whose parent must look at them.
pub(crate) struct Step<'a> {
    ex: &'a Executor,
    exec: &'a mut Execution,
    ix: Box<Index>,
    now: DateTime<Utc>,
    effects: Vec<Effect>,
    queue: VecDeque<u32>,
    /// An Exit task asked to end the execution in this state.
    pending_exit: Option<State>,
}

/// Kestra's truthiness of a rendered condition: `false`, `0`, `-0`, `null` and blank are false.
pub(crate) fn truthy(s: &str) -> bool {
    let t = s.trim();
    !(t.is_empty()
        || t.eq_ignore_ascii_case("false")
        || t == "0"
        || t == "-0"
        || t.eq_ignore_ascii_case("null"))
}

impl<'a> Step<'a> {
    fn plan(&self) -> &'a Plan {
        &self.ex.plan
    }

    fn run(&self, pos: u32) -> Option<&TaskRun> {
        self.exec.task_run_list.get(pos as usize)
    }

    /// The one way to change a task run: it is marked changed for storage (see [`crate::chunks`]).
    fn run_mut(&mut self, pos: u32) -> Option<&mut TaskRun> {
        self.exec.archive.touch(pos);
        self.exec.task_run_list.get_mut(pos as usize)
    }

    fn meta(&self, pos: u32) -> RunMeta {
        self.ix.meta.get(pos as usize).copied().unwrap_or(RunMeta {
            node: ROOT,
            parent: NO_PARENT,
            lane: 0,
        })
    }

    fn node_of(&self, pos: u32) -> u32 {
        if pos == NO_PARENT {
            ROOT
        } else {
            self.meta(pos).node
        }
    }

    fn state_of(&self, pos: u32) -> State {
        self.run(pos).map_or(State::Success, |r| r.state.current)
    }

    fn log(&mut self, pos: Option<u32>, level: &str, message: String) {
        let task_run_id = pos.and_then(|p| self.run(p)).map(|r| r.id.clone());
        self.effects.push(Effect::Log {
            task_run_id,
            level: level.to_string(),
            message,
        });
    }

    /// Whether nothing new may start: the execution is being killed or has ended.
    fn stopping(&self) -> bool {
        let s = self.exec.state.current;
        s.is_terminal() || s == State::Killing
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Start { running } => self.start(running),
            Event::WorkerResult(r) => {
                if let Some(&pos) = self.ix.by_id.get(&r.task_run_id) {
                    let current = self.run(pos).is_some_and(|run| {
                        run.state.current == State::Running
                            && run.attempt_count() == r.attempt as usize
                    });
                    if current
                        && matches!(r.state, State::Success | State::Warning)
                        && !r.working_directory_outputs.is_empty()
                    {
                        self.set_working_directory_outputs(pos, r.working_directory_outputs);
                    }
                    self.attempt_ended(pos, r.attempt, r.state, r.outputs, r.metrics, r.log_file);
                }
            }
            Event::Timer(t) => self.timer(t),
            Event::SubflowEnded {
                task_run_id,
                execution_id,
                state,
                outputs,
            } => self.subflow_ended(&task_run_id, &execution_id, state, outputs),
            Event::Kill => self.kill(State::Killed),
            Event::Resume { inputs } => self.resume(inputs),
            Event::Restart => {
                if self.restart_in_place().is_ok() {
                    self.start(0);
                }
            }
            Event::Recover => match self.exec.state.current {
                State::Created | State::Restarted => self.start(0),
                _ => self.recover(),
            },
        }
    }

    /// Processes the task runs that ended, parent by parent, until nothing moves.
    fn drain(&mut self) {
        while let Some(pos) = self.queue.pop_front() {
            let meta = self.meta(pos);
            self.evaluate(meta.parent, Some(meta.lane));
        }
    }

    fn start(&mut self, running: u32) {
        match self.exec.state.current {
            State::Created | State::Queued => {
                if let Some(at) = self.exec.schedule_date.filter(|at| *at > self.now)
                    && self.exec.state.current == State::Created
                {
                    // not yet: started again at its date
                    self.effects.push(Effect::WakeAt {
                        at,
                        timer: Timer {
                            task_run_id: None,
                            kind: TimerKind::Start,
                            number: 0,
                        },
                    });
                    return;
                }
                match restart::admission(&self.plan().flow, running) {
                    Admission::Run => {}
                    Admission::Queue => {
                        self.exec.state.transition(State::Queued, self.now);
                        return;
                    }
                    Admission::Cancel => return self.end_execution(State::Cancelled),
                    Admission::Fail => return self.end_execution(State::Failed),
                }
                self.exec.state.transition(State::Running, self.now);
                self.execution_timers(self.now);
                let agg = Agg {
                    body: self
                        .plan()
                        .node(ROOT)
                        .block_of(&crate::plan::BlockKind::Tasks),
                    ..Agg::default()
                };
                self.ix.aggs.insert(NO_PARENT, agg);
                self.evaluate(NO_PARENT, None);
            }
            State::Restarted => {
                // a restart runs with the whole flow `timeout` again
                self.exec.state.transition(State::Running, self.now);
                self.execution_timers(self.now);
                self.continue_restarted();
            }
            _ => {}
        }
    }

    /// Looks at a parent after a child in `lane` ended (or after it started): starts what can
    /// start, and ends the parent when every lane and then its `errors`/`finally` ended.
    fn evaluate(&mut self, p: u32, hint: Option<u32>) {
        if self.stopping() {
            return;
        }
        if p != NO_PARENT {
            let s = self.state_of(p);
            if s.is_terminal() || s == State::Paused || s.is_created() {
                return;
            }
        }
        let pnode = self.node_of(p);
        let kind = self.plan().node(pnode).kind;
        let mut agg = self.ix.aggs.get(&p).copied().unwrap_or_default();
        if !agg.tail {
            if let Some(l) = hint.filter(|&l| l != TAIL) {
                self.step_lane(p, pnode, l, &mut agg);
            }
            let limit = flowable::lane_limit(self, pnode, kind);
            while !agg.failed
                && !self.stopping()
                && agg.started < agg.total
                && (limit == 0 || agg.started - agg.done < limit)
            {
                let l = agg.started;
                agg.started += 1;
                self.step_lane(p, pnode, l, &mut agg);
            }
            let body_over = agg.done == agg.started
                && ((agg.started >= agg.total && !agg.waiting) || agg.failed);
            if body_over {
                agg.tail = true;
            }
        }
        if self.stopping() {
            return;
        }
        if agg.tail {
            let body = if agg.failed && !agg.worst.is_failed() {
                State::Failed
            } else {
                agg.worst
            };
            let ev = lanes::eval_tail(self.plan(), self.exec, &self.ix, p, pnode, body);
            let value = self.lane_value(p, TAIL);
            for n in ev.start {
                self.create(p, n, TAIL, value.clone(), None);
            }
            if ev.done {
                self.ix.aggs.insert(p, agg);
                let state = agg.worst.worst(ev.worst);
                if p == NO_PARENT {
                    self.end_execution(state);
                } else {
                    self.finish_run(p, state);
                }
                return;
            }
        }
        self.ix.aggs.insert(p, agg);
    }

    /// Looks at one body lane: starts its next children, or counts it ended.
    fn step_lane(&mut self, p: u32, pnode: u32, lane: u32, agg: &mut Agg) {
        if self.ix.lanes.get(&(p, lane)).is_some_and(|l| l.done) {
            return;
        }
        let ev = lanes::eval_body(self.plan(), self.exec, &self.ix, p, pnode, lane, agg.body);
        let value = self.lane_value(p, lane);
        let iteration = self.plan().node(pnode).kind.is_loop().then_some(lane);
        for n in ev.start {
            if self.stopping() {
                return;
            }
            self.create(p, n, lane, value.clone(), iteration);
        }
        if ev.done {
            self.ix.lanes.entry((p, lane)).or_default().done = true;
            agg.done += 1;
            agg.worst = agg.worst.worst(ev.worst);
            if ev.worst.is_failed() {
                agg.failed = true;
            }
            if self.plan().node(pnode).kind == Kind::WaitFor {
                flowable::waitfor_iteration_ended(self, p, agg);
            }
        }
    }

    /// The `value` of children in a lane: the loop value, else the parent's own.
    fn lane_value(&self, p: u32, lane: u32) -> Option<String> {
        let run = self.run(p)?;
        if lane != TAIL
            && let Some(values) = &run.loop_values
        {
            return values.get(lane as usize).cloned();
        }
        run.value.clone()
    }

    /// Creates a task run of `node` in a lane of `p` and starts it.
    fn create(
        &mut self,
        p: u32,
        node: u32,
        lane: u32,
        value: Option<String>,
        iteration: Option<u32>,
    ) -> u32 {
        let plan = self.plan();
        let task_id = plan.node(node).task_id().to_string();
        let parent_id = self.run(p).map(|r| r.id.clone());
        let ordinal = self.exec.task_run_list.len();
        let id = ids::task_run_id(
            &self.exec.id,
            parent_id.as_deref(),
            &task_id,
            value.as_deref(),
            iteration,
            ordinal,
        );
        let pos = u32::try_from(ordinal).unwrap_or(u32::MAX);
        self.exec.task_run_list.push(TaskRun {
            id: id.clone(),
            execution_id: self.exec.id.clone(),
            namespace: self.exec.namespace.clone(),
            flow_id: self.exec.flow_id.clone(),
            task_id,
            parent_task_run_id: parent_id,
            value,
            iteration,
            attempts: None,
            outputs: None,
            state: StateInfo::new(State::Created, self.now),
            loop_values: None,
        });
        self.ix.by_id.insert(id, pos);
        self.ix.meta.push(RunMeta {
            node,
            parent: p,
            lane,
        });
        self.ix.lanes.entry((p, lane)).or_default().kids.push(pos);
        self.ix.active.insert(pos);
        self.begin(pos);
        pos
    }

    /// Starts a created task run: `runIf`, then by kind.
    fn begin(&mut self, pos: u32) {
        let node = self.meta(pos).node;
        let n = self.plan().node(node);
        if let Some(cond) = n.task.as_ref().and_then(|t| t.run_if.clone()) {
            match self.render_str(pos, &cond) {
                Ok(s) if !truthy(&s) => {
                    self.set_state(pos, State::Skipped);
                    self.ended(pos);
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    self.set_state(pos, State::Running);
                    return self.fail(pos, format!("runIf: {e}"));
                }
            }
        }
        match n.kind {
            k if k.has_attempts() => self.new_attempt(pos),
            Kind::Unsupported => {
                self.set_state(pos, State::Running);
                let t = n.type_name.clone();
                self.fail(pos, format!("task type `{t}` is not supported by weft yet"));
            }
            Kind::Subflow => subflow::begin(self, pos),
            Kind::ForEachItemExecutable => subflow::begin_items(self, pos),
            Kind::Pause => pause::begin(self, pos),
            _ => flowable::begin(self, pos),
        }
    }

    fn set_state(&mut self, pos: u32, state: State) {
        let now = self.now;
        if let Some(r) = self.run_mut(pos) {
            r.state.transition(state, now);
        }
    }

    fn set_outputs(&mut self, pos: u32, outputs: Map<String, Json>) {
        let path = self.ix.loop_path(self.exec, pos);
        self.exec.archive.touch(pos);
        let Some(run) = self.exec.task_run_list.get_mut(pos as usize) else {
            return;
        };
        insert_outputs(&mut self.ix.outputs, &run.task_id, &path, outputs.clone());
        run.outputs = Some(outputs);
    }

    /// A task run reached a terminal state: its parent will look at it.
    fn ended(&mut self, pos: u32) {
        self.ix.active.remove(&pos);
        self.queue.push_back(pos);
    }

    /// Ends a task run in `state`, after `allowFailure` (FAILED becomes WARNING) and
    /// `allowWarning` (WARNING becomes SUCCESS).
    fn finish_run(&mut self, pos: u32, mut state: State) {
        let original = state;
        let node = self.meta(pos).node;
        let n = self.plan().node(node);
        if state == State::Failed && n.kind == Kind::AllowFailure {
            state = State::Warning;
        }
        if let Some(t) = &n.task {
            if state == State::Failed && t.allow_failure {
                state = State::Warning;
            }
            if state == State::Warning && t.allow_warning {
                state = State::Success;
            }
        }
        if self.state_of(pos).is_terminal() {
            return;
        }
        let now = self.now;
        if let Some(a) = self
            .run_mut(pos)
            .and_then(|r| r.attempts.as_mut())
            .and_then(|a| a.last_mut())
            .filter(|a| !a.state.current.is_terminal())
        {
            // a Subflow's or ForEachItem's attempt ends with the task run
            a.state.transition(original, now);
        }
        self.set_state(pos, state);
        self.ended(pos);
    }

    /// Fails a task run with a message (logged at ERROR).
    fn fail(&mut self, pos: u32, message: String) {
        self.log(Some(pos), "ERROR", message);
        self.finish_run(pos, State::Failed);
    }

    /// The render context of a task run.
    fn context(&self, pos: u32) -> Json {
        let meta = self.meta(pos);
        let run = self.run(pos);
        context::task(
            self.plan(),
            &self.ix,
            self.exec,
            &self.ex.globals,
            &Site {
                node: meta.node,
                pos: Some(pos),
                parent: meta.parent,
                value: run.and_then(|r| r.value.as_deref()),
                iteration: run.and_then(|r| r.iteration),
            },
        )
    }

    fn seed(&self, pos: u32) -> u64 {
        self.run(pos).map_or(0, |r| {
            ids::hash64(&[r.id.as_bytes(), &(r.attempt_count() as u64).to_le_bytes()])
        })
    }

    fn render_str(&self, pos: u32, template: &str) -> Result<String, String> {
        if !weft_flow::expr::is_template(template) {
            return Ok(template.to_string());
        }
        let vars = self.context(pos);
        let ctx = Context {
            vars: &vars,
            now: self.now,
            seed: self.seed(pos),
            host: self.ex.host.as_deref(),
        };
        self.ex
            .renderer
            .render(template, &ctx)
            .map_err(|e| e.to_string())
    }

    fn render_value(&self, pos: u32, value: &Json) -> Result<Json, String> {
        let vars = self.context(pos);
        let ctx = Context {
            vars: &vars,
            now: self.now,
            seed: self.seed(pos),
            host: self.ex.host.as_deref(),
        };
        self.ex
            .renderer
            .render_value(value, &ctx)
            .map_err(|e| e.to_string())
    }

    fn timer(&mut self, t: Timer) {
        if t.kind == TimerKind::Sla {
            return self.sla_due(t.number);
        }
        if t.kind == TimerKind::Start {
            return self.start(0);
        }
        if t.kind == TimerKind::ExecutionTimeout {
            if !self.exec.state.current.is_terminal() {
                self.log(
                    None,
                    "ERROR",
                    "the execution timed out (flow `timeout`)".into(),
                );
                self.kill(State::Failed);
            }
            return;
        }
        let Some(pos) = t
            .task_run_id
            .as_ref()
            .and_then(|id| self.ix.by_id.get(id).copied())
        else {
            return;
        };
        match t.kind {
            TimerKind::Retry => attempt::retry_due(self, pos, t.number),
            TimerKind::Timeout => attempt::timeout_due(self, pos, t.number),
            TimerKind::PauseDelay => pause::delay_due(self, pos),
            TimerKind::PauseTimeout => pause::timeout_due(self, pos),
            TimerKind::WaitForNext => flowable::waitfor_next(self, pos, t.number),
            TimerKind::ExecutionTimeout | TimerKind::Sla | TimerKind::Start => {}
        }
    }
}
