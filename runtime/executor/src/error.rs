//! Errors of the executor.

/// What can go wrong outside an execution (an execution's own failures are states, not errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// A task's child tasks could not be read.
    #[error("flow task `{task}`: {message}")]
    Plan {
        /// The task.
        task: String,
        /// What is wrong.
        message: String,
    },
    /// A restart or replay that does not apply.
    #[error("execution `{execution}` cannot be {action}: {reason}")]
    NotAllowed {
        /// The execution.
        execution: String,
        /// `restarted` or `replayed`.
        action: &'static str,
        /// Why.
        reason: String,
    },
}
