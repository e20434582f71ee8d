//! weft-flow: the flow language of weft.
//!
//! Reads Kestra-style YAML flows with the position of every value, checks them against the
//! schema of every task, trigger and input type (the type registry), validates ids, graphs,
//! durations, cron expressions and `{{ expressions }}`, and renders expressions.
pub mod check;
pub mod core_types;
pub mod cron;
pub mod diagnostic;
pub mod duration;
pub mod expr;
pub mod flow_trigger;
pub mod ids;
pub mod model;
pub mod parse;
pub mod registry;
pub mod schedule;
pub mod schema;
pub mod yaml;

pub use diagnostic::{Diagnostic, FieldPath, Severity};
pub use model::Flow;
pub use parse::{DocumentReport, ParsedFlow, check_documents, parse_flow};
pub use registry::Registry;
