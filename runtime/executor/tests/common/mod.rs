//! A simulated driver: a clock, a worker that renders properties like a plugin would
//! (Log, Return, OutputValues-like), timers, and a record of every advance for replays.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value as Json, json};
use weft_executor::{
    ChunkPolicy, Effect, Event, Execution, Executor, RunTask, StartSubflow, State, Timer,
    WorkerResult,
};
use weft_flow::expr::{Context, Renderer};
use weft_flow::{Flow, Registry};

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-06-01T10:00:00Z")
        .unwrap()
        .to_utc()
}

pub fn flow(src: &str) -> Flow {
    match weft_flow::parse_flow(src, &Registry::core()) {
        Ok(p) => p.flow,
        Err(d) => panic!("invalid test flow: {d:?}"),
    }
}

pub fn renderer() -> Arc<Renderer> {
    static R: std::sync::OnceLock<Arc<Renderer>> = std::sync::OnceLock::new();
    R.get_or_init(|| Arc::new(Renderer::new())).clone()
}

/// What the simulated worker answers.
pub type Worker = Box<dyn FnMut(&RunTask) -> (State, Map<String, Json>)>;

/// The default worker: Return renders `format` into `value`; Log renders `message` (fails when it
/// cannot); anything else succeeds with no outputs.
pub fn plugin_worker() -> Worker {
    Box::new(|t: &RunTask| {
        let r = renderer();
        let ctx = Context {
            vars: &t.context,
            now: t0(),
            seed: t.seed,
            host: None,
        };
        let short = t.task_type.rsplit('.').next().unwrap_or("");
        match short {
            "Return" => {
                let f = t.properties.get("format").cloned().unwrap_or(Json::Null);
                match r.render_value(&f, &ctx) {
                    Ok(v) => {
                        let mut m = Map::new();
                        m.insert("value".into(), v);
                        (State::Success, m)
                    }
                    Err(_) => (State::Failed, Map::new()),
                }
            }
            "Log" => {
                let f = t.properties.get("message").cloned().unwrap_or(Json::Null);
                match r.render_value(&f, &ctx) {
                    Ok(_) => (State::Success, Map::new()),
                    Err(_) => (State::Failed, Map::new()),
                }
            }
            _ => (State::Success, Map::new()),
        }
    })
}

pub struct Sim {
    pub ex: Executor,
    pub exec: Execution,
    pub now: DateTime<Utc>,
    pub pending: VecDeque<RunTask>,
    pub timers: Vec<(DateTime<Utc>, Timer)>,
    pub subflows: Vec<StartSubflow>,
    pub logs: Vec<(Option<String>, String)>,
    pub terminated: Vec<State>,
    pub cancelled: Vec<(String, u32)>,
    pub retries: Vec<u32>,
    /// Every advance: its events and time.
    pub record: Vec<(Vec<Event>, DateTime<Utc>)>,
    pub effects: usize,
    /// When set, every advance is stored as head + chunks and read back (see `stored`).
    pub storage: Option<SimStorage>,
}

/// A simulated object store for the stored form of the execution (`weft_executor::chunks`).
#[derive(Default)]
pub struct SimStorage {
    pub policy: ChunkPolicy,
    pub head: Vec<u8>,
    pub chunks: std::collections::HashMap<String, Vec<u8>>,
    /// Largest head written.
    pub max_head: usize,
    /// Bytes written (heads and chunks).
    pub written: usize,
    /// Writes so far.
    pub writes: usize,
    /// Read back (and compare) every this many writes (1: every write).
    pub check_every: usize,
    /// Continue from the copy read back at each check, as another process would.
    pub reload: bool,
}

impl SimStorage {
    pub fn new(policy: ChunkPolicy, check_every: usize, reload: bool) -> SimStorage {
        SimStorage {
            policy,
            check_every: check_every.max(1),
            reload,
            ..SimStorage::default()
        }
    }

    /// Writes `exec` (new chunks first, never replacing one).
    pub fn store(&mut self, exec: &mut Execution) {
        let stored = exec.encode_stored(&self.policy).unwrap();
        for (name, bytes) in stored.chunks {
            self.written += bytes.len();
            if let Some(old) = self.chunks.get(&name) {
                assert_eq!(old, &bytes, "chunk {name} rewritten with other content");
            }
            self.chunks.insert(name, bytes);
        }
        self.written += stored.head.len();
        self.max_head = self.max_head.max(stored.head.len());
        self.head = stored.head;
        self.writes += 1;
    }

    /// Writes `exec`, then reads it back.
    pub fn write(&mut self, exec: &mut Execution) -> Execution {
        self.store(exec);
        self.read()
    }

    /// The execution as stored.
    pub fn read(&self) -> Execution {
        let (mut exec, names) = Execution::decode_head(&self.head).unwrap();
        let parts: Vec<(String, Vec<u8>)> = names
            .iter()
            .map(|n| (n.clone(), self.chunks[n].clone()))
            .collect();
        exec.attach_chunks(parts).unwrap();
        exec
    }
}

impl Sim {
    pub fn new(src: &str) -> Sim {
        let f = flow(src);
        let ex = Executor::new(&f, &Registry::core(), renderer()).unwrap();
        let exec = ex.create_execution(7, t0());
        Sim::with(ex, exec)
    }

    pub fn with(ex: Executor, exec: Execution) -> Sim {
        Sim {
            ex,
            exec,
            now: t0(),
            pending: VecDeque::new(),
            timers: Vec::new(),
            subflows: Vec::new(),
            logs: Vec::new(),
            terminated: Vec::new(),
            cancelled: Vec::new(),
            retries: Vec::new(),
            record: Vec::new(),
            effects: 0,
            storage: None,
        }
    }

    pub fn inputs(mut self, inputs: Json) -> Sim {
        self.exec.inputs = inputs.as_object().cloned().unwrap_or_default();
        self
    }

    pub fn apply(&mut self, events: Vec<Event>) {
        self.record.push((events.clone(), self.now));
        let effects = self.ex.advance(&mut self.exec, events, self.now);
        self.effects += effects.len();
        if let Some(st) = self.storage.as_mut() {
            st.store(&mut self.exec);
            if st.writes % st.check_every == 0 {
                let back = st.read();
                assert_eq!(
                    back, self.exec,
                    "the stored execution differs after write {}",
                    st.writes
                );
                if st.reload {
                    self.exec = back;
                }
            }
        }
        for e in effects {
            match e {
                Effect::RunTask(t) => self.pending.push_back(*t),
                Effect::WakeAt { at, timer } => self.timers.push((at, timer)),
                Effect::StartSubflow(s) => self.subflows.push(*s),
                Effect::Log {
                    task_run_id,
                    message,
                    ..
                } => self.logs.push((task_run_id, message)),
                Effect::Terminated { state } => self.terminated.push(state),
                Effect::CancelTask {
                    task_run_id,
                    attempt,
                } => self.cancelled.push((task_run_id, attempt)),
                Effect::CreateRetryExecution { attempt_number, .. } => {
                    self.retries.push(attempt_number)
                }
                Effect::KillExecution { .. } => {}
            }
        }
    }

    pub fn start(&mut self) {
        self.apply(vec![Event::Start { running: 0 }]);
    }

    pub fn answer(&mut self, t: &RunTask, state: State, outputs: Map<String, Json>) {
        self.apply(vec![Event::WorkerResult(WorkerResult {
            task_run_id: t.task_run_id.clone(),
            attempt: t.attempt,
            state,
            outputs,
            metrics: Vec::new(),
            log_file: None,
            working_directory_outputs: Default::default(),
        })]);
    }

    /// Fires the earliest timer (moving the clock).
    pub fn fire_timer(&mut self) -> bool {
        if self.timers.is_empty() {
            return false;
        }
        let i = self
            .timers
            .iter()
            .enumerate()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(i, _)| i)
            .unwrap();
        let (at, timer) = self.timers.remove(i);
        if at > self.now {
            self.now = at;
        }
        self.apply(vec![Event::Timer(timer)]);
        true
    }

    /// Runs the worker on every pending attempt, then timers, until nothing is left.
    pub fn run_with(&mut self, worker: &mut Worker) {
        loop {
            if let Some(t) = self.pending.pop_front() {
                self.now += TimeDelta::milliseconds(10);
                let (s, o) = worker(&t);
                self.answer(&t, s, o);
            } else if !self.fire_timer() {
                break;
            }
        }
    }

    pub fn run(&mut self) -> State {
        if matches!(self.exec.state.current, State::Created | State::Restarted) {
            self.start();
        }
        let mut w = plugin_worker();
        self.run_with(&mut w);
        self.exec.state.current
    }

    pub fn count(&self) -> usize {
        self.exec.task_run_list.len()
    }

    pub fn state_of(&self, task: &str) -> State {
        self.exec
            .find_task_run(task)
            .unwrap_or_else(|| panic!("no task run of {task}"))
            .state
            .current
    }

    pub fn runs_of(&self, task: &str) -> usize {
        self.exec
            .task_run_list
            .iter()
            .filter(|t| t.task_id == task)
            .count()
    }

    pub fn order(&self) -> Vec<String> {
        self.exec
            .task_run_list
            .iter()
            .map(|t| t.task_id.clone())
            .collect()
    }

    pub fn output(&self, task: &str, value: Option<&str>) -> Json {
        let r = self
            .exec
            .task_run_list
            .iter()
            .find(|t| t.task_id == task && (value.is_none() || t.value.as_deref() == value))
            .unwrap_or_else(|| panic!("no task run {task} {value:?}"));
        Json::Object(r.outputs.clone().unwrap_or_default())
    }

    pub fn json(&self) -> Json {
        serde_json::to_value(&self.exec).unwrap()
    }
}

pub fn ok() -> (State, Map<String, Json>) {
    (State::Success, Map::new())
}

pub fn value(v: Json) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("value".into(), v);
    m
}

pub fn j(v: Json) -> Json {
    json!(v)
}
