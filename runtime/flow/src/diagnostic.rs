//! Errors and warnings about a flow, each with the position and field path of the value at fault.

use std::fmt;

use crate::yaml::Pos;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow is rejected.
    Error,
    /// The flow is accepted, but something deserves attention (e.g. a deprecated type).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A map key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// The path of a field in a flow, shown as `tasks[2].retry.maxAttempt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The root path (the flow itself).
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path with a key appended.
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    /// This path with an index appended.
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// An error or a warning about a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the value at fault starts in the source.
    pub pos: Pos,
    /// The field at fault (empty for the whole flow).
    pub path: FieldPath,
    /// What is wrong, and what to do about it when we know.
    pub message: String,
}

impl Diagnostic {
    /// A new error.
    pub fn error(pos: Pos, path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            pos,
            path,
            message: message.into(),
        }
    }

    /// A new warning.
    pub fn warning(pos: Pos, path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            pos,
            path,
            message: message.into(),
        }
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error: path: message`, the format of `weft validate`.
    pub fn display_in<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        struct In<'a>(&'a Diagnostic, &'a str);
        impl fmt::Display for In<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "{}:{}: {}: {}",
                    self.1, self.0.pos, self.0.severity, self.0
                )
            }
        }
        In(self, file)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_root() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The closest candidate to `word`, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let score = strsim::jaro_winkler(&lower, &c.to_ascii_lowercase());
            (c, score)
        })
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_kestra() {
        let p = FieldPath::root()
            .key("tasks")
            .index(2)
            .key("retry")
            .key("maxAttempt");
        assert_eq!(p.to_string(), "tasks[2].retry.maxAttempt");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("mesage", ["message", "level"]),
            Some("message")
        );
        assert_eq!(did_you_mean("zzz", ["message", "level"]), None);
    }

    #[test]
    fn display_in_file() {
        let d = Diagnostic::error(Pos { line: 3, col: 5 }, FieldPath::root().key("id"), "bad");
        assert_eq!(
            d.display_in("f.yaml").to_string(),
            "f.yaml:3:5: error: id: bad"
        );
    }
}
