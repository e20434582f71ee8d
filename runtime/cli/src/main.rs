//! `weft`: the command-line tool of weft.

mod cmd;
mod registry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// weft runs Kestra-style YAML flows, with no database and no always-on cluster.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check flow files: parse, validate, and print `file:line:col: error: message`.
    Validate(cmd::validate::Args),
    /// Show the loaded plugins (`list`) and a task type's schema (`describe TYPE`).
    Plugins(cmd::plugins::Args),
    /// Run a flow to its end in this process, on the embedded local store (`.weft/`).
    Run(cmd::run::Args),
    /// Serve the HTTP API (Kestra's paths under /api/v1) on one instance.
    Server(cmd::server::Args),
    /// Storage tools: `weft storage check URL` verifies a store honours conditional writes.
    Storage(cmd::storage::Args),
    /// Run a conformance corpus (a folder with `cases.json`) and compare with its expectations.
    Conformance(cmd::conformance::Args),
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Plugins(args) => cmd::plugins::run(args),
        Command::Conformance(args) => cmd::conformance::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Storage(args) => cmd::storage::run(args),
        Command::Server(args) => cmd::server::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
