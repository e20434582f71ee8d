//! `weft conformance DIR`: runs a conformance corpus (a folder with `cases.json` and the flow files
//! it names, in the format of `../shared/conformance/kestra/README.md`) and prints one line per
//! case and a final `N passed, N failed` line.
//!
//! Cases listed in an out-of-reach file (one `case-name: reason` per line) are reported as
//! skipped; a baseline file holds the least number of passing cases CI accepts (it may only go up).

mod api_kind;
mod cases;
mod expect;
mod input_kinds;
mod run_kinds;
mod scenario;
mod validate_kinds;
mod watchdog;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use cases::{Case, Outcome};

/// Arguments of `weft conformance`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The corpus folder (holds `cases.json`).
    dir: PathBuf,
    /// Only run cases of these kinds (comma-separated: run, scenario, api, input-typing,
    /// input-validation, parse, valid, invalid).
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// Only run cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// A file of cases known to be out of reach, one `name: reason` per line.
    #[arg(long)]
    out_of_reach: Option<PathBuf>,
    /// A file holding the least number of cases that must pass; fewer is a failure.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The word printed before the summary line (`NAME: N passed, N failed`).
    #[arg(long, default_value = "conformance")]
    label: String,
    /// Folders of the corpus (relative to DIR) whose every flow file must be valid: each file is
    /// checked as a case named `file:<path>` of kind `valid`.
    #[arg(long, value_delimiter = ',')]
    valid_dirs: Vec<String>,
    /// Print only failures and the summary.
    #[arg(long, short)]
    quiet: bool,
    /// Where executions are kept while cases run (`memory://`, a local folder, `s3://bucket/prefix`):
    /// every case gets its own prefix below it.
    #[arg(long, env = "WEFT_STORAGE", default_value = "memory://")]
    store: String,
    /// A case still running after this many seconds fails the whole run at once, naming the case
    /// (a hang must not eat a CI run's time budget in silence).
    #[arg(long, default_value_t = 300)]
    case_limit_secs: u64,
}

/// Runs the corpus.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cases = cases::load(&args.dir)?;
    for dir in &args.valid_dirs {
        cases.extend(cases::valid_files(&args.dir, dir)?);
    }
    let out_of_reach = match &args.out_of_reach {
        Some(path) => cases::load_out_of_reach(path)?,
        None => Default::default(),
    };
    let registry = crate::registry::load()?;
    let mut env = run_kinds::Env::new(&args.dir, &args.store);
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|c| args.kinds.is_empty() || args.kinds.contains(&c.kind))
        .filter(|c| {
            args.filter
                .as_ref()
                .is_none_or(|f| c.name.contains(f.as_str()))
        })
        .collect();
    let watchdog =
        watchdog::Watchdog::start(&args.label, Duration::from_secs(args.case_limit_secs));
    for case in selected {
        watchdog.enter(&case.name);
        let outcome = match out_of_reach.get(&case.name) {
            Some(reason) => Outcome::Skipped(format!("out of reach: {reason}")),
            None => match case.kind.as_str() {
                "parse" | "valid" | "invalid" => validate_kinds::run(&args.dir, case, &registry),
                "run" => failed_on_error(run_kinds::run(&mut env, case)),
                "input-typing" | "input-validation" => {
                    failed_on_error(input_kinds::run(&mut env, case))
                }
                "scenario" => failed_on_error(scenario::run(&mut env, case)),
                "api" => failed_on_error(api_kind::run(&mut env, case)),
                other => Outcome::Skipped(format!("kind `{other}` is not supported yet")),
            },
        };
        watchdog.leave();
        match &outcome {
            Outcome::Passed => {
                passed += 1;
                if !args.quiet {
                    println!("ok      {}", case.name);
                }
            }
            Outcome::Failed(why) => {
                failed += 1;
                println!("FAILED  {}: {}", case.name, why.replace('\n', "\n        "));
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                if !args.quiet {
                    println!("skipped {}: {why}", case.name);
                }
            }
        }
    }
    println!(
        "{}: {passed} passed, {failed} failed, {skipped} skipped",
        args.label
    );
    let mut ok = failed == 0;
    if let Some(path) = &args.baseline {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the baseline {}", path.display()))?;
        let baseline: usize = text
            .trim()
            .parse()
            .with_context(|| format!("{}: the baseline must be a number", path.display()))?;
        if passed < baseline {
            println!(
                "{}: {passed} cases passed, fewer than the baseline {baseline} in {}",
                args.label,
                path.display()
            );
            ok = false;
        } else if passed > baseline {
            println!(
                "{}: {passed} cases passed, more than the baseline {baseline}: raise it in {}",
                args.label,
                path.display()
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A case that could not be carried out failed, with the whole error chain as its reason.
fn failed_on_error(outcome: anyhow::Result<Outcome>) -> Outcome {
    outcome.unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")))
}
