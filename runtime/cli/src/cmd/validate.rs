//! `weft validate FILE_OR_DIR...`: parse and validate flows, print `file:line:col: error: message`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use weft_flow::Registry;

/// Arguments of `weft validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Flow files (`.yaml`/`.yml`, one or more flows separated by `---`) or directories to
    /// search for them recursively.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    paths: Vec<PathBuf>,
    /// Do not print warnings.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `weft validate`: exit 0 when every flow is valid, 1 when any is not, 2 on usage errors.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        if !path.exists() {
            eprintln!("error: {}: no such file or directory", path.display());
            return Ok(ExitCode::from(2));
        }
        collect(path, &mut files)?;
    }
    if files.is_empty() {
        eprintln!(
            "error: no .yaml or .yml file found in {}",
            join(&args.paths)
        );
        return Ok(ExitCode::from(2));
    }
    let registry = crate::registry::load()?;
    let (mut flows, mut invalid, mut warnings) = (0usize, 0usize, 0usize);
    for file in &files {
        let source = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let name = file.display().to_string();
        for report in check_file(&source, &registry) {
            flows += 1;
            if !report.is_valid() {
                invalid += 1;
            }
            for d in &report.diagnostics {
                if d.is_error() || !args.quiet {
                    println!("{}", d.display_in(&name));
                }
                warnings += usize::from(!d.is_error());
            }
        }
    }
    let summary = format!(
        "{} file(s), {flows} flow(s): {} valid, {invalid} invalid, {warnings} warning(s)",
        files.len(),
        flows - invalid
    );
    eprintln!("{summary}");
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check_file(source: &str, registry: &Registry) -> Vec<weft_flow::DocumentReport> {
    weft_flow::check_documents(source, registry)
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The flow files of a file or folder, sorted.
pub(crate) fn flow_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    collect(path, &mut out)?;
    Ok(out)
}

/// Flow files under `path`, sorted, skipping hidden directories and `target`.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if entry.is_dir() {
            if !name.starts_with('.') && name != "target" {
                collect(&entry, out)?;
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(entry);
        }
    }
    Ok(())
}
