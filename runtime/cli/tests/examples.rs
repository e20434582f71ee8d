#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The README's commands: every flow in `examples/` run by the real `weft` binary on a fresh local
//! store, with the exit code and final state the README promises.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `weft run --json ARGS` in a fresh store; returns the exit code and the execution document.
fn weft_run(args: &[&str]) -> (i32, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(repo())
        .arg("run")
        .args(args)
        .arg("--json")
        .arg("--store")
        .arg(store.path())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "weft run {args:?}: stdout is not one JSON document ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn state(doc: &serde_json::Value) -> &str {
    doc["state"]["current"].as_str().unwrap_or("")
}

#[test]
fn hello_succeeds_with_its_default_input() {
    let (code, doc) = weft_run(&["examples/hello.yaml"]);
    assert_eq!((code, state(&doc)), (0, "SUCCESS"), "{doc:#}");
    let shout = doc["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["taskId"] == "shout")
        .unwrap();
    assert_eq!(shout["outputs"]["value"], "WORLD");
}

#[test]
fn inputs_are_typed_and_validated() {
    let (code, doc) = weft_run(&[
        "examples/inputs.yaml",
        "--input",
        "name=Ada",
        "--input",
        "count=3",
    ]);
    assert_eq!((code, state(&doc)), (0, "SUCCESS"), "{doc:#}");
    assert_eq!(doc["inputs"]["name"], "Ada");
    assert_eq!(doc["inputs"]["count"], 3);
}

#[test]
fn an_invalid_input_is_refused_with_its_name() {
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(repo())
        .args([
            "run",
            "examples/inputs.yaml",
            "--input",
            "count=zero",
            "--store",
        ])
        .arg(store.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("count"), "{stderr}");
}

#[test]
fn foreach_calls_a_subflow_from_the_flows_folder() {
    let (code, doc) = weft_run(&["examples/foreach-subflow.yaml", "--flows", "examples/"]);
    assert_eq!((code, state(&doc)), (0, "SUCCESS"), "{doc:#}");
}

fn run_state<'a>(doc: &'a serde_json::Value, task_id: &str) -> Option<&'a str> {
    doc["taskRunList"]
        .as_array()?
        .iter()
        .find(|t| t["taskId"] == task_id)?["state"]["current"]
        .as_str()
}

#[test]
fn retries_fail_then_the_errors_branch_runs() {
    let (code, doc) = weft_run(&["examples/retries.yaml"]);
    assert_eq!((code, state(&doc)), (1, "FAILED"), "{doc:#}");
    let flaky = doc["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["taskId"] == "flaky")
        .unwrap();
    assert_eq!(flaky["attempts"].as_array().unwrap().len(), 3, "{flaky:#}");
    assert_eq!(run_state(&doc, "alert"), Some("SUCCESS"), "{doc:#}");
}

#[test]
fn errors_and_finally_run_and_the_execution_still_fails() {
    // as in Kestra: an `errors` branch handles a failure but does not turn it into a success
    let (code, doc) = weft_run(&["examples/errors-finally.yaml"]);
    assert_eq!((code, state(&doc)), (1, "FAILED"), "{doc:#}");
    assert_eq!(run_state(&doc, "boom"), Some("FAILED"));
    assert_eq!(run_state(&doc, "handle"), Some("SUCCESS"));
    assert_eq!(run_state(&doc, "always"), Some("SUCCESS"));
}

#[test]
fn parallel_fan_out_joins_after_every_branch() {
    let (code, doc) = weft_run(&["examples/parallel-fan-out.yaml"]);
    assert_eq!((code, state(&doc)), (0, "SUCCESS"), "{doc:#}");
    for task in ["europe", "america", "asia", "join"] {
        assert_eq!(run_state(&doc, task), Some("SUCCESS"), "{task}");
    }
}

#[test]
fn tasks_in_a_working_directory_share_its_files() {
    let (code, doc) = weft_run(&["examples/working-directory.yaml"]);
    assert_eq!((code, state(&doc)), (0, "SUCCESS"), "{doc:#}");
    let runs = doc["taskRunList"].as_array().unwrap();
    let run = |id: &str| runs.iter().find(|t| t["taskId"] == id).unwrap();
    // `keep` uploads the file the WorkingDirectory's inputFiles wrote before `prepare` ran
    let kept = run("keep")["outputs"]["uris"]["greeting.txt"]
        .as_str()
        .unwrap();
    assert!(
        kept.starts_with("kestra:///weft/examples/working-directory/executions/"),
        "{kept}"
    );
    let report = run("workspace")["outputs"]["outputFiles"]["report/summary.txt"]
        .as_str()
        .unwrap_or_else(|| panic!("no outputFiles: {doc:#}"));
    assert!(report.contains("/tasks/workspace/"), "{report}");
}

/// The plugin template's README, step 3: its `.wasm` in a plugins directory, its task in a flow.
#[test]
fn the_plugin_template_runs_in_a_flow() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        weft_plugins::TEMPLATE_PATH,
        plugins.join("weft_plugin_hello.wasm"),
    )
    .unwrap();
    let readme =
        std::fs::read_to_string(repo().join("examples/plugin-template/README.md")).unwrap();
    let flow = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows a flow");
    let file = dir.path().join("hello.yaml");
    std::fs::write(&file, flow).unwrap();
    let (code, doc) = weft_run(&[
        file.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
        "--input",
        "name=Ada",
    ]);
    assert_eq!((code, state(&doc)), (0, "SUCCESS"), "{doc:#}");
    let greet = doc["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["taskId"] == "greet")
        .unwrap();
    assert_eq!(greet["outputs"]["greeting"], "Hello, Ada! Hello, Ada!");
}

/// Tasks nested in a flowable inside a WorkingDirectory share its folder too (the folder is made
/// once, never wiped by a later task).
#[test]
fn a_working_directory_folder_is_shared_by_nested_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested.yaml");
    std::fs::write(
        &file,
        r#"id: nested
namespace: weft.tests
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: steps
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: write
            type: io.kestra.plugin.core.storage.LocalFiles
            inputs:
              data.txt: written first
          - id: read
            type: io.kestra.plugin.core.storage.LocalFiles
            outputs:
              - data.txt
"#,
    )
    .unwrap();
    let (code, doc) = weft_run(&[file.to_str().unwrap()]);
    assert_eq!((code, state(&doc)), (0, "SUCCESS"), "{doc:#}");
    let read = doc["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["taskId"] == "read")
        .unwrap();
    assert!(read["outputs"]["uris"]["data.txt"].is_string(), "{read:#}");
}
