//! `weft validate FILE_OR_DIR...`

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `weft validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Flow files (`.yaml`/`.yml`) or directories to search for them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Runs `weft validate`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    Ok(ExitCode::SUCCESS)
}
