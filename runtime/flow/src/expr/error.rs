//! The one error type of the expression language.

/// A syntax or evaluation error of a `{{ expression }}`.
///
/// `offset` is the byte offset into the template where a syntax problem was found; evaluation
/// errors usually have none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// What went wrong, in words a flow author can act on.
    pub message: String,
    /// Byte offset into the template where the problem is (syntax errors).
    pub offset: Option<usize>,
}

impl ExprError {
    /// A syntax error at a byte offset of the template.
    pub(crate) fn at(offset: usize, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            offset: Some(offset),
        }
    }

    /// An evaluation error without a position.
    pub(crate) fn eval(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            offset: None,
        }
    }
}
