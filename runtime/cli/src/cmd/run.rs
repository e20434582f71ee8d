//! `weft run FLOW.yaml`: runs a flow to its end in this process, on the embedded local store.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use weft_executor::inputs::RawInput;
use weft_executor::{Execution, RunTask, State};
use weft_flow::expr::Renderer;
use weft_server::runner::{Catalog, Observer, Runner, StartRequest};

/// Arguments of `weft run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The flow file.
    flow: PathBuf,
    /// An input value, `id=value` (repeatable).
    #[arg(long = "input", short = 'i', value_name = "ID=VALUE")]
    inputs: Vec<String>,
    /// A FILE input, `id=path` (repeatable).
    #[arg(long = "file", short = 'f', value_name = "ID=PATH")]
    files: Vec<String>,
    /// A label of the execution, `key=value` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// A folder of other flows, available to Subflow tasks (searched recursively).
    #[arg(long, value_name = "DIR")]
    flows: Vec<PathBuf>,
    /// Where state is kept: a folder, or a storage URL (`s3://bucket/prefix`, `file:///path`).
    #[arg(long, env = "WEFT_STORAGE", default_value = ".weft")]
    store: String,
    /// A folder of extra plugins (`*.wasm`).
    #[arg(long, env = "WEFT_PLUGINS", value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Print the final execution (Kestra's JSON) on stdout and nothing else there.
    #[arg(long)]
    json: bool,
}

/// Runs `weft run`: exit 0 when the execution ends SUCCESS or WARNING, 1 otherwise.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: Args) -> anyhow::Result<ExitCode> {
    let (engine, registry) = crate::registry::load_with_plugins(args.plugins.as_deref()).await?;
    let registry = Arc::new(registry);
    let renderer = Arc::new(Renderer::new());
    let flow = read_flow(&args.flow, &registry)?;
    let mut catalog = Catalog::default();
    for dir in &args.flows {
        for file in crate::cmd::validate::flow_files(dir)? {
            if file.canonicalize().ok() == args.flow.canonicalize().ok() {
                continue;
            }
            let other = read_flow(&file, &registry)?;
            catalog.add(&other, &registry, renderer.clone())?;
        }
    }
    catalog.add(&flow, &registry, renderer.clone())?;
    let store = weft_store::open(&weft_server::setup::storage_url(&args.store)?)
        .await
        .with_context(|| format!("cannot open the store {}", args.store))?;

    let mut request = StartRequest::default();
    for kv in &args.inputs {
        let (k, v) = split_pair(kv, "--input")?;
        request
            .inputs
            .insert(k.to_string(), RawInput::Text(v.to_string()));
    }
    for kv in &args.files {
        let (k, path) = split_pair(kv, "--file")?;
        let bytes =
            std::fs::read(path).with_context(|| format!("--file {k}: cannot read {path}"))?;
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file")
            .to_string();
        request.files.push((k.to_string(), name, bytes));
    }
    for kv in &args.labels {
        let (k, v) = split_pair(kv, "--label")?;
        request.labels.push(weft_flow::model::Label {
            key: k.to_string(),
            value: v.to_string(),
        });
    }

    let observer: Arc<dyn Observer> = Arc::new(Printer {
        color: std::io::stderr().is_terminal(),
    });
    let runner = Runner::new(Arc::new(engine), store, renderer, catalog).with_observer(observer);
    let exec = runner.run(&flow.namespace, &flow.id, request).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&exec)?);
    } else {
        print_summary(&exec);
    }
    Ok(match exec.state.current {
        State::Success | State::Warning => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

fn read_flow(path: &Path, registry: &weft_flow::Registry) -> anyhow::Result<weft_flow::Flow> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match weft_flow::parse_flow(&source, registry) {
        Ok(parsed) => {
            for w in &parsed.warnings {
                eprintln!("{}", w.display_in(&path.display().to_string()));
            }
            Ok(parsed.flow)
        }
        Err(diags) => {
            for d in &diags {
                eprintln!("{}", d.display_in(&path.display().to_string()));
            }
            bail!("{} is not a valid flow", path.display())
        }
    }
}

fn split_pair<'a>(kv: &'a str, flag: &str) -> anyhow::Result<(&'a str, &'a str)> {
    kv.split_once('=')
        .with_context(|| format!("{flag} expects KEY=VALUE, got `{kv}`"))
}

fn print_summary(exec: &Execution) {
    println!(
        "execution {} of {}.{}: {:?}",
        exec.id, exec.namespace, exec.flow_id, exec.state.current
    );
    if let Some(outputs) = &exec.outputs
        && !outputs.is_empty()
    {
        println!("outputs:");
        for (k, v) in outputs {
            println!("  {k}: {v}");
        }
    }
    for tr in &exec.task_run_list {
        if tr.outputs.as_ref().is_some_and(|o| !o.is_empty()) {
            let value = tr
                .value
                .as_deref()
                .map(|v| format!("[{v}]"))
                .unwrap_or_default();
            println!(
                "  {}{value}: {}",
                tr.task_id,
                serde_json::to_string(&tr.outputs).unwrap_or_default()
            );
        }
    }
}

/// Prints task runs as they start and end (stderr, so `--json` keeps stdout clean).
struct Printer {
    color: bool,
}

impl Printer {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl Observer for Printer {
    fn attempt_started(&self, task: &RunTask) {
        let attempt = if task.attempt > 1 {
            format!(" (attempt {})", task.attempt)
        } else {
            String::new()
        };
        eprintln!("{} {}{attempt}", self.paint("36", "RUNNING "), task.task_id);
    }

    fn attempt_ended(&self, task: &RunTask, state: State, elapsed_ms: u128) {
        let (code, word) = match state {
            State::Success => ("32", "SUCCESS "),
            State::Warning => ("33", "WARNING "),
            _ => ("31", "FAILED  "),
        };
        eprintln!(
            "{} {} ({elapsed_ms} ms)",
            self.paint(code, word),
            task.task_id
        );
    }

    fn log(&self, _exec_id: &str, task_id: &str, level: &str, message: &str) {
        eprintln!("  {} {task_id}: {message}", self.paint("2", level));
    }

    fn terminated(&self, exec: &Execution) {
        eprintln!(
            "{} {}.{} {}",
            self.paint("1", &format!("{:?}", exec.state.current).to_uppercase()),
            exec.namespace,
            exec.flow_id,
            exec.id
        );
    }
}
