//! weft-executor: the execution model (Kestra's JSON shape) and the pure `advance` state machine
//! that holds every flowable task's semantics. It never does I/O.
//!
//! A driver loop: build an [`Executor`] once per flow revision, create an [`Execution`]
//! ([`Executor::create_execution`]), then call [`Executor::advance`] with [`Event`]s (start,
//! worker results, timers, subflow ends, kill, resume, restart) and act on the [`Effect`]s it
//! returns (run task attempts, wake up at a time, start subflows), until
//! [`Effect::Terminated`]. Everything the executor needs is in the execution document, so any
//! process may advance it after loading it.
pub mod inputs;

mod advance;
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

pub use advance::{Admission, Executor};
pub use advance::restart_admission as admission;
pub use effect::{Effect, RunTask, StartSubflow, WorkingDirectory};
pub use error::ExecutorError;
pub use event::{Event, Timer, TimerKind, WorkerResult};
pub use execution::{Execution, ExecutionMetadata};
pub use state::{History, State, StateInfo};
pub use taskrun::{Attempt, TaskRun};
