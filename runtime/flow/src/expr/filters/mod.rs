//! Kestra's and Pebble's filters, grouped by what they work on.

pub(crate) mod collections;
pub(crate) mod date;
pub(crate) mod json;
pub(crate) mod strings;

use minijinja::Environment;

/// Registers every filter.
pub(crate) fn register(env: &mut Environment<'static>) {
    collections::register(env);
    date::register(env);
    json::register(env);
    strings::register(env);
}
