#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The tasks the runner performs itself (log.Fetch, execution.Resume, ForEachItem's split and
//! merge) and retries in a new
//! execution (retry behavior CREATE_NEW_EXECUTION), with the real core plugins and a store in a
//! temporary directory.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use weft_executor::inputs::RawInput;
use weft_executor::{Execution, State};
use weft_server::runner::control::Session;
use weft_server::runner::{Runner, StartRequest};
use weft_server::setup::Setup;
use weft_store::DynStore;
use weft_store::repo::{ExecutionIndex, LogRepo};

const FLOWS: &[&str] = &[
    r#"id: fetch
namespace: t
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: "hello a"}
  - {id: b, type: io.kestra.plugin.core.log.Log, message: "careful b", level: WARN}
  - {id: c, type: io.kestra.plugin.core.log.Log, message: "debug c", level: DEBUG}
  - id: only-a
    type: io.kestra.plugin.core.log.Fetch
    tasksId: [a]
  - id: warn-up
    type: io.kestra.plugin.core.log.Fetch
    level: WARN
  - id: legacy
    type: io.kestra.core.tasks.log.Fetch
    taskId: "{{ 'c' }}"
    level: DEBUG
"#,
    r#"id: paused
namespace: t
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: answer
        type: STRING
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.wait.onResume.answer }}"
"#,
    r#"id: resumer
namespace: t
inputs:
  - id: target
    type: STRING
tasks:
  - id: resume
    type: io.kestra.plugin.core.execution.Resume
    executionId: "{{ inputs.target }}"
    inputs:
      answer: "from {{ flow.id }}"
"#,
    r#"id: retried
namespace: t
labels:
  team: a
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    retry:
      behavior: CREATE_NEW_EXECUTION
      type: constant
      interval: PT0.3S
      maxAttempt: 3
"#,
    r#"id: each
namespace: t
inputs:
  - {id: file, type: FILE}
tasks:
  - id: each_line
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: "{{ 1 + 2 }}"
    namespace: t
    flowId: batch
    inputs:
      items: "{{ taskrun.items }}"
      n: "{{ taskrun.iteration }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.each_line_merge.subflowOutputs }}"
"#,
    r#"id: batch
namespace: t
inputs:
  - {id: items, type: STRING}
  - {id: n, type: INT}
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) }}"
outputs:
  - {id: text, type: STRING, value: "{{ outputs.r.value }}"}
  - {id: n, type: INT, value: "{{ inputs.n }}"}
"#,
];

fn runner(setup: &Setup, store: DynStore) -> Runner {
    common::runner(setup, store, FLOWS)
}

async fn setup() -> (Setup, tempfile::TempDir, DynStore) {
    common::local_setup().await
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn text_input(key: &str, value: &str) -> StartRequest {
    let mut req = StartRequest::default();
    req.inputs
        .insert(key.into(), RawInput::Text(value.to_string()));
    req
}

fn outputs(exec: &Execution, task: &str) -> serde_json::Map<String, Json> {
    exec.find_task_run(task)
        .and_then(|r| r.outputs.clone())
        .unwrap_or_default()
}

/// Starts `paused` in `session` and drives it until it is PAUSED; its id.
async fn pause(session: &mut Session<'_>) -> String {
    let id = session
        .start("t", "paused", StartRequest::default(), false)
        .await
        .unwrap();
    let paused = session
        .drive_until(deadline(), |s| {
            s.execution(&id)
                .is_some_and(|e| e.state.current == State::Paused)
        })
        .await
        .unwrap();
    assert!(
        paused,
        "{:?}",
        session.execution(&id).map(|e| e.state.current)
    );
    id
}

/// The log messages of an execution's task.
async fn messages(store: &DynStore, exec: &str, task: &str) -> Vec<String> {
    LogRepo::new(store.clone())
        .read_all(exec)
        .await
        .unwrap()
        .iter()
        .filter(|r| r["taskId"] == task)
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect()
}

/// Starts flow `t.{flow}` in `session` and drives it to its end; returns its id.
async fn run_to_end(session: &mut Session<'_>, flow: &str, req: StartRequest) -> String {
    let id = session.start("t", flow, req, false).await.unwrap();
    assert!(
        session
            .drive_until(deadline(), |s| s.is_done(&id))
            .await
            .unwrap()
    );
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_writes_the_chosen_log_lines_to_a_file() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store);
    let mut session = runner.session();
    let id = run_to_end(&mut session, "fetch", StartRequest::default()).await;
    let exec = session.execution(&id).unwrap().clone();
    assert_eq!(exec.state.current, State::Success, "{exec:#?}");
    let files = session.files(&id).unwrap();
    let lines_of = async |task: &str| -> (u64, Vec<Json>) {
        let out = outputs(&exec, task);
        let uri = out["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("kestra:///t/fetch/executions/") && uri.ends_with("/logs.ion"),
            "{uri}"
        );
        let text = files.read_text(uri).await.unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str::<Json>(l).unwrap())
            .collect();
        (out["size"].as_u64().unwrap(), lines)
    };
    let (size, lines) = lines_of("only-a").await;
    assert_eq!(size, 1);
    assert_eq!(lines[0]["message"], "hello a");
    assert_eq!(lines[0]["taskId"], "a");
    assert_eq!(lines[0]["executionId"], json!(id));
    assert_eq!(lines[0]["level"], "INFO");
    // WARN and above, every task: b only
    let (size, lines) = lines_of("warn-up").await;
    assert_eq!(size, 1);
    assert_eq!(lines[0]["message"], "careful b");
    // the deprecated `taskId` (rendered), down to DEBUG
    let (size, lines) = lines_of("legacy").await;
    assert_eq!(size, 1);
    assert_eq!(lines[0]["message"], "debug c");
}

/// Runs the `resumer` flow on `target` to the end of every execution of the session; checks
/// that it succeeded.
async fn run_resumer(session: &mut Session<'_>, target: &str) {
    let resumer = session
        .start("t", "resumer", text_input("target", target), false)
        .await
        .unwrap();
    assert!(
        session
            .drive_until(deadline(), |s| s.all_done())
            .await
            .unwrap()
    );
    assert_eq!(
        session.execution(&resumer).unwrap().state.current,
        State::Success
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_task_resumes_an_execution_of_the_session() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store);
    let mut session = runner.session();
    let target = pause(&mut session).await;
    run_resumer(&mut session, &target).await;
    let resumed = session.execution(&target).unwrap();
    assert_eq!(resumed.state.current, State::Success);
    // the `onResume` inputs, rendered in the resuming task's context
    assert_eq!(outputs(resumed, "after")["value"], "from resumer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_task_takes_a_stored_execution_and_fails_on_one_not_paused() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store.clone());
    // paused by a driver that is gone
    let target = {
        let mut first = runner.session();
        pause(&mut first).await
    };
    let mut session = runner.session();
    run_resumer(&mut session, &target).await;
    let stored = weft_server::executions(store.clone())
        .get(&target)
        .await
        .unwrap()
        .value;
    assert_eq!(stored.state.current, State::Success);

    // again: it is no longer PAUSED; and an id that does not exist
    for (id, want) in [
        (
            target.as_str(),
            "it is SUCCESS, only a PAUSED execution can be resumed",
        ),
        ("nope", "cannot resume execution nope: it does not exist"),
    ] {
        let again = run_to_end(&mut session, "resumer", text_input("target", id)).await;
        assert_eq!(
            session.execution(&again).unwrap().state.current,
            State::Failed
        );
        let logged = messages(&store, &again, "resume").await;
        assert!(logged.iter().any(|m| m.contains(want)), "{logged:?}");
    }
}

/// Ids of the executions of `t.retried` in storage.
async fn retried_ids(store: &DynStore) -> Vec<String> {
    let mut ids: Vec<String> = ExecutionIndex::new(store.clone())
        .list_under(Some("t"))
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.flow_id == "retried")
        .map(|k| k.id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_retries_in_new_executions_up_to_max_attempt() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store.clone());
    let mut req = StartRequest::default();
    req.labels.push(weft_flow::model::Label {
        key: "by".into(),
        value: "test".into(),
    });
    // `weft run`: the last execution of the chain
    let last = runner.run("t", "retried", req).await.unwrap();
    assert_eq!(last.state.current, State::Failed);
    assert_eq!(last.metadata.as_ref().unwrap().attempt_number, 3);
    let ids = retried_ids(&store).await;
    assert_eq!(ids.len(), 3, "{ids:?}");
    let repo = weft_server::executions(store.clone());
    let mut chain = Vec::new();
    let mut cur = last.clone();
    chain.push(cur.clone());
    while let Some(parent) = cur.parent_id.clone() {
        cur = repo.get(&parent).await.unwrap().value;
        chain.push(cur.clone());
    }
    chain.reverse();
    let states: Vec<State> = chain.iter().map(|e| e.state.current).collect();
    assert_eq!(states, [State::Retried, State::Retried, State::Failed]);
    let first = &chain[0];
    for (n, e) in chain.iter().enumerate().skip(1) {
        assert_eq!(e.original_id.as_deref(), Some(first.id.as_str()));
        let meta = e.metadata.as_ref().unwrap();
        assert_eq!(meta.attempt_number as usize, n + 1);
        assert_eq!(meta.original_created_date, first.state.histories[0].date);
        assert_eq!(e.label("by"), Some("test"));
        assert_eq!(e.label("team"), Some("a"));
        assert_eq!(e.label("system.correlationId"), Some(first.id.as_str()));
        // it waited for the retry interval after the one it retries ended
        let ended = chain[n - 1].state.end_date.unwrap();
        let started = e
            .state
            .histories
            .iter()
            .find(|h| h.state == State::Running)
            .unwrap()
            .date;
        assert!(
            started - ended >= chrono::TimeDelta::milliseconds(300),
            "{ended} -> {started}"
        );
        assert_eq!(
            e.id,
            weft_executor::ids::retry_execution_id(&chain[n - 1].id, n as u32 + 1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_of_a_retried_execution_creates_its_retry_once() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store.clone());
    let repo = weft_server::executions(store.clone());
    let first = {
        let mut session = runner.session();
        let id = run_to_end(&mut session, "retried", StartRequest::default()).await;
        // the driver stops here, before the new execution started
        id
    };
    let second = weft_executor::ids::retry_execution_id(&first, 2);
    let created = repo.get(&second).await.unwrap().value;
    assert_eq!(created.state.current, State::Created);
    assert!(created.schedule_date.is_some());

    // a driver that stopped before it created the new execution: taken over, it is created
    repo.delete(&second, None).await.unwrap();
    let mut session = runner.session();
    session
        .take_over(std::slice::from_ref(&first))
        .await
        .unwrap();
    // taken over again (two takeovers, or one after the creation): the same execution
    let mut other = runner.session();
    other.take_over(std::slice::from_ref(&first)).await.unwrap();
    drop(other);
    assert!(
        session
            .drive_until(deadline(), |s| s.all_done())
            .await
            .unwrap()
    );
    assert_eq!(
        session.execution(&second).unwrap().state.current,
        State::Retried
    );
    let ids = retried_ids(&store).await;
    assert_eq!(ids.len(), 3, "{ids:?}");
    let third = weft_executor::ids::retry_execution_id(&second, 3);
    assert!(ids.contains(&first) && ids.contains(&second) && ids.contains(&third));
    assert_eq!(
        repo.get(&third).await.unwrap().value.state.current,
        State::Failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_item_splits_a_file_runs_a_subflow_per_batch_and_merges_their_outputs() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store.clone());
    let mut session = runner.session();
    // 8 lines, the last without a newline: batches of 3, 3 and 2 lines
    let content: String = (1..=8)
        .map(|i| format!("line {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut req = StartRequest::default();
    req.files
        .push(("file".into(), "data.txt".into(), content.into_bytes()));
    let id = session.start("t", "each", req, false).await.unwrap();
    assert!(
        session
            .drive_until(deadline(), |s| s.is_done(&id))
            .await
            .unwrap()
    );
    let exec = session.execution(&id).unwrap().clone();
    assert_eq!(exec.state.current, State::Success, "{exec:#?}");
    let files = session.files(&id).unwrap();

    // the batches: files of the split task run, named by its id and the batch number
    let split = exec.find_task_run("each_line_split").unwrap();
    let splits: Vec<String> = outputs(&exec, "each_line_split")["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    let dir = format!(
        "kestra:///t/each/executions/{id}/tasks/each-line-split/{}/",
        split.id
    );
    let names: Vec<String> = (0..3).map(|n| format!("{dir}{n}.txt")).collect();
    assert_eq!(splits, names);
    let mut batches = Vec::new();
    for uri in &splits {
        batches.push(files.read_text(uri).await.unwrap());
    }
    assert_eq!(
        batches,
        [
            "line 1\nline 2\nline 3\n",
            "line 4\nline 5\nline 6\n",
            "line 7\nline 8\n"
        ]
    );

    // one child execution per batch, given its batch's URI, all ended
    let items = outputs(&exec, "each_line_items");
    assert_eq!(items["numberOfBatches"], 3);
    assert_eq!(items["iterations"]["SUCCESS"], 3);
    assert_eq!(items["iterations"]["RUNNING"], 0);
    let children: Vec<String> = items["executionIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert_eq!(children.len(), 3);
    for (i, child) in children.iter().enumerate() {
        let child = session.execution(child).unwrap();
        assert_eq!(child.flow_id, "batch");
        assert_eq!(child.state.current, State::Success);
        assert_eq!(child.inputs["items"], json!(splits[i]));
    }

    // the merge: one JSON line per child execution, in batch order
    let merged = outputs(&exec, "each_line_merge")["subflowOutputs"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        merged.starts_with(&format!(
            "kestra:///t/each/executions/{id}/tasks/each-line-merge/"
        )),
        "{merged}"
    );
    assert_eq!(outputs(&exec, "after")["value"], json!(merged));
    let lines: Vec<Json> = files
        .read_text(&merged)
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        (0..3)
            .map(|i| json!({"text": batches[i], "n": i}))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_item_over_a_missing_file_fails_its_split_naming_items() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store.clone());
    let mut session = runner.session();
    let mut req = StartRequest::default();
    req.files
        .push(("file".into(), "data.txt".into(), b"x\n".to_vec()));
    let id = session.start("t", "each", req, false).await.unwrap();
    // the uploaded file is gone before the split reads it
    let files = session.files(&id).unwrap();
    let uri = files.input_file_uri("file", "data.txt").unwrap();
    files.delete(&uri).await.unwrap();
    assert!(
        session
            .drive_until(deadline(), |s| s.is_done(&id))
            .await
            .unwrap()
    );
    let exec = session.execution(&id).unwrap().clone();
    assert_eq!(exec.state.current, State::Failed);
    assert_eq!(
        exec.find_task_run("each_line_split").unwrap().state.current,
        State::Failed
    );
    let lines = messages(&store, &id, "each_line_split").await;
    assert_eq!(
        lines,
        [format!("`items`: the file {uri} does not exist")],
        "{lines:?}"
    );
    assert!(exec.find_task_run("each_line_items").is_none());
}
