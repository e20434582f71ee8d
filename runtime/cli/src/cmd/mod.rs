//! One module per subcommand.

pub(crate) mod conformance;
pub(crate) mod plugins;
pub(crate) mod run;
pub(crate) mod server;
pub(crate) mod storage;
pub(crate) mod validate;
