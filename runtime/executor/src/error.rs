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
        /// `restarted`, `replayed` or `resumed`.
        action: &'static str,
        /// Why.
        reason: String,
    },
    /// Inputs (of a resume) that could not be read, in Kestra's words.
    #[error("{0}")]
    Inputs(crate::inputs::InputErrors),
}
