//! The input types Kestra knows.

use std::fmt;

/// An input's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// `STRING`
    String,
    /// `INT` (a 64-bit integer here; Kestra uses Java's 32-bit `Integer`)
    Int,
    /// `FLOAT` (a 32-bit float, as Kestra)
    Float,
    /// `BOOLEAN`
    Boolean,
    /// `BOOL` (same as `BOOLEAN`)
    Bool,
    /// `DATETIME`: an instant
    DateTime,
    /// `DATE`: a local date
    Date,
    /// `TIME`: a local time
    Time,
    /// `DURATION`: an ISO-8601 duration
    Duration,
    /// `FILE`: a storage URI
    File,
    /// `JSON`
    Json,
    /// `YAML`
    Yaml,
    /// `URI`
    Uri,
    /// `SECRET`
    Secret,
    /// `ARRAY` (with `itemType`)
    Array,
    /// `SELECT`
    Select,
    /// `MULTISELECT`
    MultiSelect,
    /// `ENUM` (deprecated `SELECT`)
    Enum,
    /// `EMAIL`
    Email,
}

impl InputKind {
    /// Every kind, in Kestra's order.
    pub const ALL: [InputKind; 19] = [
        InputKind::String,
        InputKind::Int,
        InputKind::Float,
        InputKind::Boolean,
        InputKind::Bool,
        InputKind::DateTime,
        InputKind::Date,
        InputKind::Time,
        InputKind::Duration,
        InputKind::File,
        InputKind::Json,
        InputKind::Yaml,
        InputKind::Uri,
        InputKind::Secret,
        InputKind::Array,
        InputKind::Select,
        InputKind::MultiSelect,
        InputKind::Enum,
        InputKind::Email,
    ];

    /// The kind named by a flow's `type` (case-insensitive), if any.
    pub fn parse(name: &str) -> Option<InputKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Kestra's name (`DATETIME`).
    pub fn name(self) -> &'static str {
        match self {
            InputKind::String => "STRING",
            InputKind::Int => "INT",
            InputKind::Float => "FLOAT",
            InputKind::Boolean => "BOOLEAN",
            InputKind::Bool => "BOOL",
            InputKind::DateTime => "DATETIME",
            InputKind::Date => "DATE",
            InputKind::Time => "TIME",
            InputKind::Duration => "DURATION",
            InputKind::File => "FILE",
            InputKind::Json => "JSON",
            InputKind::Yaml => "YAML",
            InputKind::Uri => "URI",
            InputKind::Secret => "SECRET",
            InputKind::Array => "ARRAY",
            InputKind::Select => "SELECT",
            InputKind::MultiSelect => "MULTISELECT",
            InputKind::Enum => "ENUM",
            InputKind::Email => "EMAIL",
        }
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
