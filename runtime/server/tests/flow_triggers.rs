#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Flow triggers in the runner: an execution that terminates starts the executions of the flows
//! whose Flow triggers match it, in the same session; a MultipleCondition's state is kept in the
//! store, so another runner (another process) over the same store carries it on.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use weft_executor::{Execution, State};
use weft_server::runner::{Runner, StartRequest};
use weft_server::setup::Setup;
use weft_store::DynStore;

const FLOWS: &[&str] = &[
    "id: src\nnamespace: t\ntasks:\n  - id: only\n    type: io.kestra.plugin.core.debug.Return\n    \
     format: \"from {{ execution.id }}\"\n",
    r#"id: listener
namespace: t
inputs:
  - id: from-parent
    type: STRING
tasks:
  - id: got
    type: io.kestra.plugin.core.debug.Return
    format: "got {{ inputs['from-parent'] }} from {{ trigger.flowId }}"
triggers:
  - id: after-src
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      from-parent: "{{ outputs.only.value }}"
    labels:
      via: flow-trigger
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: t
        flowId: src
"#,
    // every execution of namespace t, never its own
    r#"id: selfish
namespace: t
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.executionId }}"
triggers:
  - id: all-of-t
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionNamespace
        namespace: t
"#,
    r#"id: disabled-flow
namespace: t
disabled: true
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: never
triggers:
  - id: after-src
    type: io.kestra.plugin.core.trigger.Flow
"#,
    r#"id: disabled-trigger
namespace: t
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: never
triggers:
  - id: after-src
    type: io.kestra.plugin.core.trigger.Flow
    disabled: true
"#,
    "id: a\nnamespace: m\ntasks:\n  - id: only\n    type: io.kestra.plugin.core.debug.Return\n    format: a\n",
    "id: b\nnamespace: m\ntasks:\n  - id: only\n    type: io.kestra.plugin.core.debug.Return\n    format: b\n",
    r#"id: both
namespace: m
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ trigger.executionId }}"
triggers:
  - id: a-and-b
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatus
        in: [SUCCESS]
      - id: multiple
        type: io.kestra.plugin.core.condition.MultipleCondition
        window: P1D
        conditions:
          flow-a:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: m
            flowId: a
          flow-b:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: m
            flowId: b
"#,
    // switches listener's trigger at run time (the legacy type name)
    r#"id: toggler
namespace: t
inputs:
  - id: enabled
    type: BOOLEAN
tasks:
  - id: toggle
    type: io.kestra.core.tasks.trigger.Toggle
    flowId: listener
    trigger: after-src
    enabled: "{{ inputs.enabled }}"
"#,
    r#"id: toggle-missing
namespace: t
tasks:
  - id: toggle
    type: io.kestra.plugin.core.trigger.Toggle
    flowId: listener
    trigger: nope
"#,
];

/// A runner over `store` with every flow of [`FLOWS`].
fn runner(setup: &Setup, store: DynStore) -> Runner {
    common::runner(setup, store, FLOWS)
}

/// Runs `namespace.id` and every execution it triggers to their end; all the session's
/// executions.
async fn run_all(runner: &Runner, namespace: &str, id: &str) -> (String, Vec<Execution>) {
    run_with(runner, namespace, id, StartRequest::default()).await
}

/// [`run_all`] with `req`.
async fn run_with(
    runner: &Runner,
    namespace: &str,
    id: &str,
    req: StartRequest,
) -> (String, Vec<Execution>) {
    let mut session = runner.session();
    let root = session.start(namespace, id, req, false).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    assert!(
        session
            .drive_until(deadline, |s| s.all_done())
            .await
            .unwrap(),
        "unfinished: {:?}",
        session.unfinished()
    );
    let all = session.executions().into_iter().cloned().collect();
    (root, all)
}

fn of<'e>(all: &'e [Execution], flow_id: &str) -> Vec<&'e Execution> {
    all.iter().filter(|e| e.flow_id == flow_id).collect()
}

async fn setup() -> (Setup, tempfile::TempDir, DynStore) {
    common::local_setup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_execution_starts_the_matching_flows() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store);
    let (root, all) = run_all(&runner, "t", "src").await;

    let listener = of(&all, "listener");
    assert_eq!(listener.len(), 1, "{all:#?}");
    let l = listener[0];
    assert_eq!(l.state.current, State::Success);
    assert_eq!(
        l.trigger.as_ref().unwrap(),
        &json!({"id": "after-src", "type": "io.kestra.plugin.core.trigger.Flow",
                "variables": {"executionId": root, "namespace": "t", "flowId": "src",
                              "flowRevision": 1, "state": "SUCCESS"}})
    );
    assert_eq!(l.inputs["from-parent"], json!(format!("from {root}")));
    assert_eq!(l.label("via"), Some("flow-trigger"));
    // the correlation id of the source goes on
    assert_eq!(l.label("system.correlationId"), Some(root.as_str()));
    let got = &l.task_run_list[0].outputs.as_ref().unwrap()["value"];
    assert_eq!(got, &json!(format!("got from {root} from src")));

    // selfish: started by src and by listener, not by its own executions
    let mut sources: Vec<String> = of(&all, "selfish")
        .iter()
        .map(|e| e.trigger.as_ref().unwrap()["variables"]["flowId"].clone())
        .map(|v: Json| v.as_str().unwrap().to_string())
        .collect();
    sources.sort();
    assert_eq!(sources, ["listener", "src"]);
    // disabled flows and triggers never fire
    assert!(of(&all, "disabled-flow").is_empty());
    assert!(of(&all, "disabled-trigger").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiple_condition_is_carried_on_by_another_runner_over_the_same_store() {
    let (setup, _dir, store) = setup().await;
    let first = runner(&setup, store.clone());
    let (_, all) = run_all(&first, "m", "a").await;
    assert!(of(&all, "both").is_empty(), "only a ran");
    let state = store
        .get(&weft_store::Key::new("triggers/m/both/a-and-b.json").unwrap())
        .await
        .expect("the trigger's state is stored");
    let state: Json = serde_json::from_slice(&state.bytes).unwrap();
    assert!(
        state["windows"]["multiple"]["results"]
            .get("flow-a")
            .is_some(),
        "{state}"
    );

    // another process: its own runner and catalog
    let second = runner(&setup, store.clone());
    let (b, all) = run_all(&second, "m", "b").await;
    let both = of(&all, "both");
    assert_eq!(both.len(), 1, "{all:#?}");
    assert_eq!(
        both[0].trigger.as_ref().unwrap()["variables"]["executionId"],
        json!(b)
    );
    // the results were reset: b alone does not fire again
    let (_, all) = run_all(&second, "m", "b").await;
    assert!(of(&all, "both").is_empty());
}

fn toggle_to(enabled: bool) -> StartRequest {
    let mut req = StartRequest::default();
    req.inputs.insert(
        "enabled".into(),
        weft_executor::inputs::RawInput::Json(json!(enabled)),
    );
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toggle_task_disables_and_enables_a_flow_trigger() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store.clone());
    let (id, all) = run_with(&runner, "t", "toggler", toggle_to(false)).await;
    let toggler = all.iter().find(|e| e.id == id).unwrap();
    assert_eq!(toggler.state.current, State::Success, "{toggler:#?}");
    let doc = store
        .get(&weft_store::Key::new("triggers/t/listener/after-src/toggle.json").unwrap())
        .await
        .expect("the toggle is stored");
    let doc: Json = serde_json::from_slice(&doc.bytes).unwrap();
    assert_eq!(doc["disabled"], json!(true));

    // disabled at run time: src ends, listener does not start (selfish still does)
    let (_, all) = run_all(&runner, "t", "src").await;
    assert!(of(&all, "listener").is_empty(), "{all:#?}");
    assert_eq!(of(&all, "selfish").len(), 1);

    // enabled again (by another runner over the same store): it fires
    let other = self::runner(&setup, store.clone());
    let (_, _) = run_with(&other, "t", "toggler", toggle_to(true)).await;
    let (_, all) = run_all(&runner, "t", "src").await;
    assert_eq!(of(&all, "listener").len(), 1, "{all:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toggle_of_an_unknown_trigger_fails_the_task() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(&setup, store.clone());
    let (id, all) = run_all(&runner, "t", "toggle-missing").await;
    let exec = all.iter().find(|e| e.id == id).unwrap();
    assert_eq!(exec.state.current, State::Failed);
    let logs = weft_store::repo::LogRepo::new(store)
        .read_all(&id)
        .await
        .unwrap();
    let text = serde_json::to_string(&logs).unwrap();
    assert!(
        text.contains("flow `t.listener` has no trigger `nope`"),
        "{text}"
    );
}

/// A driver stopped after `src` ended but before its Flow triggers started anything: the
/// instance that takes its lease over fires them, once however often it is taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_fires_the_flow_triggers_of_an_execution_that_ended() {
    let (setup, _dir, store) = setup().await;
    // the first driver knows no listener: `src` ends and nothing fires
    let first = common::runner(&setup, store.clone(), &FLOWS[..1]);
    let (root, all) = run_all(&first, "t", "src").await;
    assert_eq!(all.len(), 1);

    let runner = runner(&setup, store.clone());
    for _ in 0..2 {
        let mut session = runner.session();
        session
            .take_over(std::slice::from_ref(&root))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        assert!(
            session
                .drive_until(deadline, |s| s.all_done())
                .await
                .unwrap()
        );
    }
    let listener = stored(&store, "t", "listener").await;
    assert_eq!(
        listener.len(),
        1,
        "one execution for the one end: {listener:#?}"
    );
    assert_eq!(listener[0].state.current, State::Success);
    assert_eq!(
        listener[0].inputs["from-parent"],
        json!(format!("from {root}"))
    );
}

/// The stored executions of `namespace.flow_id`, read through the execution index.
async fn stored(store: &DynStore, namespace: &str, flow_id: &str) -> Vec<Execution> {
    let index = weft_store::repo::ExecutionIndex::new(store.clone());
    let query = weft_store::repo::IndexQuery {
        namespace,
        flow_id: Some(flow_id),
        ..Default::default()
    };
    let repo = weft_server::executions(store.clone());
    let mut out = Vec::new();
    for key in index.list(&query).await.unwrap() {
        out.push(repo.get(&key.id).await.unwrap().value);
    }
    out
}
