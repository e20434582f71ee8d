//! Input errors, worded as Kestra words them (its tests assert the text).

use std::fmt;

/// One input that could not be read: Kestra's
/// `id: Invalid input for `id`, <message>, but received `<value>``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id}: Invalid input for `{id}`, {message}, but received `{received}`")]
pub struct InputError {
    /// The input's id (dotted ids stay dotted).
    pub id: String,
    /// What is wrong (`it must be more than `10``, `missing required input`, ...).
    pub message: String,
    /// The value as it was received, printed as Java prints it (`null` when absent).
    pub received: String,
}

/// Every input error of one request, in the flow's input order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputErrors(pub Vec<InputError>);

impl InputErrors {
    /// The errors of one input.
    pub fn of(&self, id: &str) -> impl Iterator<Item = &InputError> {
        self.0.iter().filter(move |e| e.id == id)
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for InputErrors {
    /// As Java's `ConstraintViolationException`: the violations joined by `, `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
