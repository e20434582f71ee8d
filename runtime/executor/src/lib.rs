//! weft-executor: the execution model (Kestra's JSON shape) and the pure `advance` state machine
//! that holds every flowable task's semantics. It never does I/O.
//!
//! A driver loop: build an [`Executor`] once per flow revision, create an [`Execution`]
//! ([`Executor::create_execution`]), then call [`Executor::advance`] with [`Event`]s (start,
//! worker results, timers, subflow ends, kill, resume, restart) and act on the [`Effect`]s it
//! returns (run task attempts, wake up at a time, start subflows), until
//! [`Effect::Terminated`]. Everything the executor needs is in the execution document, so any
//! process may advance it after loading it.
//!
//! ```text
//! let executor = Executor::new(&flow, &registry, renderer)?;   // once per flow revision
//! let mut exec = executor.create_execution(seed, now).with_inputs(typed_inputs);
//! let mut events = vec![Event::Start { running: 0 }];
//! loop {
//!     for effect in executor.advance(&mut exec, std::mem::take(&mut events), clock.now()) {
//!         match effect {
//!             Effect::RunTask(t) => worker.submit(t),            // answers Event::WorkerResult
//!             Effect::WakeAt { at, timer } => timers.add(at, timer), // answers Event::Timer
//!             Effect::StartSubflow(s) => start_child(s),         // answers Event::SubflowEnded
//!             Effect::Terminated { .. } => return,
//!             _ => {}                                            // cancel, kill, logs, retries
//!         }
//!     }
//!     store(exec.encode_stored(&policy)?); // a small head + new chunks (see `chunks`)
//!     events = next_events();      // worker results, timers, kill, resume, ...
//! }
//! ```
pub mod inputs;

mod advance;
pub mod chunks;
mod context;
pub mod effect;
pub mod error;
pub mod event;
pub mod execution;
pub mod ids;
mod index;
mod plan;
pub mod state;
pub mod taskrun;

pub use advance::restart_admission as admission;
pub use advance::{Admission, Executor};
pub use chunks::{ChunkError, ChunkPolicy, Stored};
pub use effect::{Effect, RunTask, StartSubflow, WorkingDirectory};
pub use error::ExecutorError;
pub use event::{Event, Timer, TimerKind, WorkerResult};
pub use execution::{Execution, ExecutionMetadata};
pub use plan::{MERGE_TYPE, SPLIT_TYPE};
pub use state::{History, State, StateInfo};
pub use taskrun::{Attempt, TaskRun};
