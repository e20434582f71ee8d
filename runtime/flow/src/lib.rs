//! weft-flow: the flow language of weft.
//!
//! Reads Kestra-style YAML flows with the position of every value, checks them against the
//! schema of every task, trigger and input type (the type registry), validates ids, graphs,
//! durations, cron expressions and `{{ expressions }}`, and renders expressions.
pub mod expr;
