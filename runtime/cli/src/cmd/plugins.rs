//! `weft plugins list` and `weft plugins describe TYPE`: what the plugin engine loads (the core
//! plugin embedded in the binary, then the plugins directory) and each task type's schema.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use weft_engine::{Engine, EngineConfig, Registry};

/// Arguments of `weft plugins`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory of extra plugins (`*.wasm`); default `plugins/` next to the weft binary.
    #[arg(long, env = "WEFT_PLUGINS", global = true)]
    plugins: Option<PathBuf>,
    #[command(subcommand)]
    command: PluginsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PluginsCommand {
    /// List the loaded plugins and their task types.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a task type: aliases, plugin, properties and outputs JSON Schemas.
    Describe {
        /// Type name or alias, e.g. io.kestra.plugin.core.log.Log.
        #[arg(value_name = "TYPE")]
        type_name: String,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let engine = Engine::new(EngineConfig::from_env())?;
        let registry = Registry::load_default(&engine, args.plugins.as_deref()).await?;
        for e in registry.load_errors() {
            eprintln!("warning: {e}");
        }
        match args.command {
            PluginsCommand::List { json } => list(&registry, json),
            PluginsCommand::Describe { type_name } => describe(&registry, &type_name),
        }
    })
}

fn list(registry: &Registry, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let plugins: Vec<_> = registry
            .plugins()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "version": p.version,
                    "source": p.source.to_string(),
                    "sha256": p.sha256,
                    "tasks": p.task_types.iter().map(|t| serde_json::json!({
                        "type": t.name, "aliases": t.aliases, "description": t.description,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&plugins)?);
        return Ok(ExitCode::SUCCESS);
    }
    for p in registry.plugins() {
        println!("{} {} ({})", p.name, p.version, p.source);
        for t in &p.task_types {
            println!("  {}  {}", t.name, t.description);
            if !t.aliases.is_empty() {
                println!("      aliases: {}", t.aliases.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(registry: &Registry, type_name: &str) -> anyhow::Result<ExitCode> {
    let Some(t) = registry.task_type(type_name) else {
        eprintln!(
            "error: no loaded plugin provides the task type {type_name}; see `weft plugins list`"
        );
        return Ok(ExitCode::from(2));
    };
    println!("{}", serde_json::to_string_pretty(t)?);
    Ok(ExitCode::SUCCESS)
}
