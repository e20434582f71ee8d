//! weft-server: the stateless HTTP executor (Kestra-shaped API, webhooks, dispatch, tick), and the
//! driver loop that both `weft run` and the server use to advance executions.

pub mod api;
mod codec;
pub mod lease;
mod listed;
pub mod runner;
pub mod setup;

pub use codec::{ExecutionCodec, executions};
