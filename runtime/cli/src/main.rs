//! `weft`: the command-line tool of weft.

mod cmd;

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
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Plugins(args) => cmd::plugins::run(args),
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
