//! Snapshot tests of validation messages: every `tests/ui/*.yaml` is validated and its
//! diagnostics (`file:line:col: severity: path: message`) must equal the `.err` file beside it.
//! Run with `WEFT_BLESS=1` to write the `.err` files after reviewing a change of wording.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use weft_flow::Registry;

fn main() {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            Trial::test(name, move || check(&path))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn check(path: &Path) -> Result<(), Failed> {
    let source = std::fs::read_to_string(path)?;
    let name = format!("ui/{}", path.file_name().unwrap().to_string_lossy());
    let reports = weft_flow::check_documents(&source, &Registry::core());
    let mut got = String::new();
    for report in &reports {
        for d in &report.diagnostics {
            got.push_str(&format!("{}\n", d.display_in(&name)));
        }
    }
    let err_path = path.with_extension("err");
    if std::env::var_os("WEFT_BLESS").is_some() {
        std::fs::write(&err_path, &got)?;
        return Ok(());
    }
    let want = std::fs::read_to_string(&err_path).map_err(|e| {
        format!(
            "{}: {e} (run with WEFT_BLESS=1 to create it)",
            err_path.display()
        )
    })?;
    if !reports.iter().any(|r| !r.is_valid()) {
        return Err("every flow in tests/ui must be invalid".into());
    }
    if got != want {
        return Err(format!("diagnostics differ\n--- expected\n{want}--- got\n{got}").into());
    }
    Ok(())
}
