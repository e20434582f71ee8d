//! `advance` driven step by step, flowable by flowable; the test is the worker.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value as Json, json};
use weft_executor::{Event, State};

const NS: &str = "id: f\nnamespace: t\n";

fn src(body: &str) -> String {
    format!("{NS}{body}")
}

#[test]
fn sequential_runs_in_order_one_at_a_time() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: a
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: b
        type: io.kestra.plugin.core.debug.Return
        format: "{{ task.id }}"
      - id: c
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.b.value }}-c"
"#));
    s.start();
    assert_eq!(s.exec.state.current, State::Running);
    assert_eq!(s.pending.len(), 1);
    let a = s.pending.pop_front().unwrap();
    assert_eq!(a.task_id, "a");
    assert_eq!(a.task_type, "io.kestra.plugin.core.log.Log");
    assert_eq!(a.attempt, 1);
    assert_eq!(a.context["task"]["id"], "a");
    assert_eq!(a.context["flow"]["id"], "f");
    s.answer(&a, State::Success, Default::default());
    assert_eq!(s.pending.len(), 1, "b starts only after a");
    assert_eq!(s.pending[0].task_id, "b");
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.order(), ["a", "seq", "b", "c"]);
    assert_eq!(s.output("c", None)["value"], "b-c");
    assert_eq!(s.terminated, [State::Success]);
    let seq = s.exec.find_task_run("seq").unwrap();
    assert!(
        seq.attempts.is_none(),
        "flowable task runs have no attempts"
    );
    let hist: Vec<State> = seq.state.histories.iter().map(|h| h.state).collect();
    assert_eq!(hist, [State::Created, State::Running, State::Success]);
    let b = s.exec.find_task_run("b").unwrap();
    assert_eq!(b.parent_task_run_id.as_deref(), Some(seq.id.as_str()));
    assert_eq!(b.id.len(), 22);
}

#[test]
fn a_failure_stops_the_sequence_and_runs_errors_without_rescuing() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: ko
        type: io.kestra.plugin.core.execution.Fail
      - id: never
        type: io.kestra.plugin.core.log.Log
        message: no
    errors:
      - id: local
        type: io.kestra.plugin.core.log.Log
        message: local
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: no
errors:
  - id: global
    type: io.kestra.plugin.core.log.Log
    message: "{{ task.id }}"
finally:
  - id: fin
    type: io.kestra.plugin.core.log.Log
    message: fin
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.order(), ["seq", "ko", "local", "global", "fin"]);
    assert_eq!(s.state_of("seq"), State::Failed);
    assert_eq!(s.state_of("local"), State::Success);
    assert_eq!(s.runs_of("never"), 0);
    assert!(s.logs.iter().any(|(_, m)| m == "Task failure"));
}

#[test]
fn parallel_respects_concurrent() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: 2
    tasks:
      - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
      - {id: b, type: io.kestra.plugin.core.log.Log, message: b}
      - {id: c, type: io.kestra.plugin.core.log.Log, message: c}
      - {id: d, type: io.kestra.plugin.core.log.Log, message: d}
"#));
    s.start();
    assert_eq!(s.pending.len(), 2);
    let b = s.pending.pop_back().unwrap();
    s.answer(&b, State::Success, Default::default());
    assert_eq!(s.pending.len(), 2, "c starts when b ends");
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.count(), 5);
}

#[test]
fn parallel_unlimited_starts_everything() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
      - {id: b, type: io.kestra.plugin.core.log.Log, message: b}
      - {id: c, type: io.kestra.plugin.core.log.Log, message: c}
"#));
    s.start();
    assert_eq!(s.pending.len(), 3);
    assert_eq!(s.run(), State::Success);
}

#[test]
fn foreach_sequential_by_default_with_loop_variables_and_nested_outputs() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", {"k": 1}]
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}-{{ taskrun.iteration }}-"
      - id: s
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.r[taskrun.value].value }}!"
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.s['a'].value }} {{ outputs.s.b.value }}"
"#));
    s.start();
    assert_eq!(s.pending.len(), 1, "concurrencyLimit defaults to 1");
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.order(), ["each", "r", "s", "r", "s", "r", "s", "last"]);
    assert_eq!(s.output("r", Some("a"))["value"], "a-0-");
    assert_eq!(s.output("s", Some("b"))["value"], "b-1-!");
    assert_eq!(s.output("r", Some("{\"k\":1}"))["value"], "{\"k\":1}-2-");
    assert_eq!(s.output("last", None)["value"], "a-0-! b-1-!");
    let tree = s.ex.outputs_tree(&mut s.exec);
    assert_eq!(tree["s"]["a"]["value"], "a-0-!");
}

#[test]
fn foreach_unlimited_and_limited_concurrency() {
    for (limit, first_wave) in [(0, 4), (2, 2)] {
        let mut s = Sim::new(&src(&format!(
            r#"
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "[1, 2, 3, 4]"
    concurrencyLimit: {limit}
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"#
        )));
        s.start();
        assert_eq!(s.pending.len(), first_wave, "limit {limit}");
        assert_eq!(s.run(), State::Success);
        assert_eq!(s.count(), 5);
    }
}

#[test]
fn foreach_values_from_an_expression_and_empty_and_null() {
    let mut s = Sim::new(&src(r#"
inputs:
  - id: items
    type: JSON
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ inputs.items }}"
    tasks:
      - {id: r, type: io.kestra.plugin.core.debug.Return, format: "{{ taskrun.value }}"}
"#))
    .inputs(json!({"items": ["x", "y"]}));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.count(), 3);

    let mut s = Sim::new(&src(r#"
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: []
    tasks:
      - {id: r, type: io.kestra.plugin.core.debug.Return, format: x}
  - {id: after, type: io.kestra.plugin.core.log.Log, message: x}
"#));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.count(), 2);

    let mut s = Sim::new(&src(r#"
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.EachSequential
    value: [1, null, {"key": "my-key"}]
    tasks:
      - {id: r, type: io.kestra.plugin.core.debug.Return, format: x}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.count(), 1);
    assert!(s.logs.iter().any(|(_, m)| {
        m.contains("Found '1' null values on Each, with values=[1, null, {key=my-key}]")
    }));
}

#[test]
fn each_parallel_runs_all_values_at_once_and_nested_loops_nest_outputs() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.EachParallel
    value: ["v1", "v2"]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.EachSequential
        value: ["w1", "w2"]
        tasks:
          - id: r
            type: io.kestra.plugin.core.debug.Return
            format: "{{ parent.taskrun.value }}-{{ taskrun.value }}"
"#));
    s.start();
    assert_eq!(
        s.pending.len(),
        2,
        "one inner loop per outer value, each one at a time"
    );
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.count(), 1 + 2 + 4);
    let tree = s.ex.outputs_tree(&mut s.exec);
    assert_eq!(tree["r"]["v2"]["w1"]["value"], "v2-w1");
}

#[test]
fn if_then_else_and_without_else() {
    for (param, ran, count) in [(true, "yes", 2), (false, "no", 2)] {
        let mut s = Sim::new(&src(r#"
inputs:
  - {id: p, type: BOOLEAN}
tasks:
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.p }}"
    then:
      - {id: "yes", type: io.kestra.plugin.core.log.Log, message: y}
    else:
      - {id: "no", type: io.kestra.plugin.core.log.Log, message: n}
"#))
        .inputs(json!({ "p": param }));
        assert_eq!(s.run(), State::Success);
        assert_eq!(s.count(), count);
        assert_eq!(s.runs_of(ran), 1);
    }
    let mut s = Sim::new(&src(r#"
tasks:
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{ 1 > 2 }}"
    then:
      - {id: "yes", type: io.kestra.plugin.core.log.Log, message: y}
"#));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.count(), 1);
}

#[test]
fn if_condition_that_cannot_render_fails_the_if() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{ nope.nope }}"
    then:
      - {id: "yes", type: io.kestra.plugin.core.log.Log, message: y}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.state_of("if"), State::Failed);
}

#[test]
fn switch_cases_and_defaults() {
    for (v, ran) in [("A", "a"), ("Z", "d")] {
        let mut s = Sim::new(&src(r#"
inputs:
  - {id: v, type: STRING}
tasks:
  - id: sw
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.v }}"
    cases:
      A:
        - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
      B:
        - {id: b, type: io.kestra.plugin.core.log.Log, message: b}
    defaults:
      - {id: d, type: io.kestra.plugin.core.log.Log, message: d}
"#))
        .inputs(json!({ "v": v }));
        assert_eq!(s.run(), State::Success);
        assert_eq!(s.count(), 2);
        assert_eq!(s.runs_of(ran), 1);
        assert_eq!(s.output("sw", None)["value"], v);
    }
}

#[test]
fn allow_failure_flowable_and_task_property() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: af
    type: io.kestra.plugin.core.flow.AllowFailure
    tasks:
      - {id: ko, type: io.kestra.plugin.core.execution.Fail}
  - id: t
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
  - {id: after, type: io.kestra.plugin.core.log.Log, message: x}
"#));
    assert_eq!(s.run(), State::Warning);
    assert_eq!(s.state_of("af"), State::Warning);
    assert_eq!(s.state_of("ko"), State::Failed);
    assert_eq!(s.state_of("t"), State::Warning);
    assert_eq!(
        s.exec
            .find_task_run("t")
            .unwrap()
            .attempts
            .as_ref()
            .unwrap()[0]
            .state
            .current,
        State::Failed
    );
    assert_eq!(s.state_of("after"), State::Success);

    let mut s = Sim::new(&src(r#"
tasks:
  - id: t
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    allowWarning: true
"#));
    assert_eq!(s.run(), State::Success);
}

#[test]
fn run_if_skips_and_a_bad_run_if_fails_and_disabled_makes_no_task_run() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a, runIf: "{{ 1 == 1 }}"}
  - {id: b, type: io.kestra.plugin.core.log.Log, message: b, runIf: "false"}
  - {id: c, type: io.kestra.plugin.core.log.Log, message: c, disabled: true}
  - {id: d, type: io.kestra.plugin.core.log.Log, message: d, runIf: "{{ outputs.nope.value }}"}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.order(), ["a", "b", "d"]);
    assert_eq!(s.state_of("b"), State::Skipped);
    assert_eq!(s.state_of("d"), State::Failed);
}

#[test]
fn retry_constant_until_max_attempt_then_success_with_warning_on_retry() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: x
    retry: {type: constant, interval: PT1S, maxAttempt: 4, warningOnRetry: true}
"#));
    s.start();
    for i in 1..=3 {
        let t = s.pending.pop_front().unwrap();
        assert_eq!(t.attempt, i);
        assert_eq!(t.context["taskrun"]["attemptsCount"], i - 1);
        s.answer(&t, State::Failed, Default::default());
        assert_eq!(s.state_of("t"), State::Retrying);
        assert!(s.pending.is_empty());
        assert!(s.fire_timer());
    }
    let t = s.pending.pop_front().unwrap();
    assert_eq!(t.attempt, 4);
    s.answer(&t, State::Success, Default::default());
    assert_eq!(s.exec.state.current, State::Warning);
    assert_eq!(
        s.exec
            .find_task_run("t")
            .unwrap()
            .attempts
            .as_ref()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn retry_gives_up_on_max_attempt_and_max_duration_and_stale_results_are_ignored() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: t
    type: io.kestra.plugin.core.execution.Fail
    retry: {type: constant, interval: PT0.25S, maxAttempt: 5}
errors:
  - {id: e, type: io.kestra.plugin.core.log.Log, message: e}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.exec.find_task_run("t").unwrap().attempt_count(), 5);
    assert_eq!(s.count(), 2);

    let mut s = Sim::new(&src(r#"
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: x
    retry: {type: constant, interval: PT2S, maxDuration: PT6S}
"#));
    s.start();
    let mut first = None;
    while let Some(t) = s.pending.pop_front() {
        first.get_or_insert(t.clone());
        s.answer(&t, State::Failed, Default::default());
        s.fire_timer();
    }
    assert_eq!(s.exec.state.current, State::Failed);
    assert_eq!(s.exec.find_task_run("t").unwrap().attempt_count(), 3);
    // a late duplicate result changes nothing
    let before = s.json();
    let f = first.unwrap();
    s.answer(&f, State::Success, Default::default());
    assert_eq!(s.json(), before);
}

#[test]
fn flow_level_retry_applies_to_tasks_without_their_own() {
    let mut s = Sim::new(&src(r#"
retry: {type: constant, interval: PT1S, maxAttempt: 3, behavior: RETRY_FAILED_TASK}
tasks:
  - {id: t, type: io.kestra.plugin.core.execution.Fail}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.exec.find_task_run("t").unwrap().attempt_count(), 3);
}

#[test]
fn create_new_execution_retries_end_retried() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: t
    type: io.kestra.plugin.core.execution.Fail
    retry: {type: constant, interval: PT1S, maxAttempt: 3, behavior: CREATE_NEW_EXECUTION}
"#));
    assert_eq!(s.run(), State::Retried);
    assert_eq!(s.retries, [2]);
    assert_eq!(s.exec.find_task_run("t").unwrap().attempt_count(), 1);
}

#[test]
fn create_new_execution_chains_attempts_across_executions() {
    let flow = src(r#"
retry: {type: constant, interval: PT5M, maxAttempt: 9, behavior: RETRY_FAILED_TASK}
tasks:
  - id: t
    type: io.kestra.plugin.core.execution.Fail
    retry: {type: constant, interval: PT30S, maxAttempt: 3, behavior: CREATE_NEW_EXECUTION}
"#);
    let mut s = Sim::new(&flow);
    assert_eq!(s.run(), State::Retried);
    // the failed task's retry, with its own interval
    let ended = s.exec.state.end_date.unwrap();
    let (n, at) = s.ex.pending_retry(&s.exec).unwrap();
    assert_eq!((n, at), (2, ended + chrono::TimeDelta::seconds(30)));
    assert_eq!(s.retries, [2]);
    let new = s.ex.retry_execution(&s.exec, n, at, ended);
    assert_eq!(new, s.ex.retry_execution(&s.exec, n, at, ended));
    assert_eq!(
        new.id,
        weft_executor::ids::retry_execution_id(&s.exec.id, 2)
    );
    assert_eq!(new.state.current, State::Created);
    assert!(new.task_run_list.is_empty());
    assert_eq!(new.parent_id.as_deref(), Some(s.exec.id.as_str()));
    assert_eq!(new.original_id.as_deref(), Some(s.exec.id.as_str()));
    assert_eq!(new.labels, s.exec.labels);
    assert_eq!(new.metadata.as_ref().unwrap().attempt_number, 2);
    assert_eq!(new.schedule_date, Some(at));

    // started before its date, it waits for it
    let mut s2 = common::Sim::with(Executor2::from(&s), new);
    s2.now = ended;
    s2.start();
    assert_eq!(s2.exec.state.current, State::Created);
    assert_eq!(s2.timers.len(), 1);
    assert_eq!(s2.timers[0].0, at);
    assert_eq!(s2.run(), State::Retried);
    let running = s2
        .exec
        .state
        .histories
        .iter()
        .find(|h| h.state == State::Running);
    assert_eq!(running.map(|h| h.date), Some(at));
    let (n, at) = s2.ex.pending_retry(&s2.exec).unwrap();
    assert_eq!(n, 3);
    // the third attempt is the last (maxAttempt counts across executions)
    let mut s3 = common::Sim::with(
        Executor2::from(&s),
        s2.ex.retry_execution(&s2.exec, n, at, at),
    );
    s3.now = at;
    assert_eq!(s3.run(), State::Failed);
    assert!(s3.ex.pending_retry(&s3.exec).is_none());
    let meta = s3.exec.metadata.as_ref().unwrap();
    assert_eq!(meta.attempt_number, 3);
    assert_eq!(meta.original_created_date, s.exec.state.histories[0].date);
    assert_eq!(s3.exec.original_id.as_deref(), Some(s.exec.id.as_str()));
}

#[test]
fn task_timeout_fails_the_attempt_and_cancels_it() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: t, type: io.kestra.plugin.core.flow.Sleep, duration: PT1M, timeout: PT2S}
"#));
    s.start();
    let t = s.pending.pop_front().unwrap();
    assert_eq!(t.timeout.map(|d| d.to_string()).as_deref(), Some("PT2S"));
    assert!(s.fire_timer());
    assert_eq!(s.exec.state.current, State::Failed);
    assert_eq!(s.cancelled, [(t.task_run_id.clone(), 1)]);
    assert!(s.logs.iter().any(|(_, m)| m == "timeout after PT2S"));
    // the worker's late answer is ignored
    s.answer(&t, State::Success, Default::default());
    assert_eq!(s.exec.state.current, State::Failed);
}

#[test]
fn plugin_defaults_fill_and_force() {
    let mut s = Sim::new(&src(r#"
pluginDefaults:
  - type: io.kestra.plugin.core.log
    values: {message: default, level: WARN}
  - type: io.kestra.plugin.core.log.Log
    forced: true
    values: {level: ERROR}
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: mine, level: INFO}
  - {id: b, type: io.kestra.core.tasks.log.Log}
"#));
    s.start();
    let a = s.pending.pop_front().unwrap();
    assert_eq!(a.properties["message"], "mine");
    assert_eq!(a.properties["level"], "ERROR");
    s.answer(&a, State::Success, Default::default());
    let b = s.pending.pop_front().unwrap();
    assert_eq!(b.properties["message"], "default");
    assert_eq!(b.task_type, "io.kestra.plugin.core.log.Log");
}

#[test]
fn dag_follows_depends_on() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task: {id: a, type: io.kestra.plugin.core.log.Log, message: a}
      - task: {id: b, type: io.kestra.plugin.core.log.Log, message: b}
        dependsOn: [a]
      - task: {id: c, type: io.kestra.plugin.core.log.Log, message: c}
        dependsOn: [a]
      - task: {id: d, type: io.kestra.plugin.core.log.Log, message: d}
        dependsOn: [b, c]
"#));
    s.start();
    assert_eq!(
        s.pending
            .iter()
            .map(|t| t.task_id.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    let a = s.pending.pop_front().unwrap();
    s.answer(&a, State::Success, Default::default());
    assert_eq!(s.pending.len(), 2);
    let b = s.pending.pop_front().unwrap();
    s.answer(&b, State::Success, Default::default());
    assert_eq!(s.pending.len(), 1, "d waits for c");
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.order(), ["dag", "a", "b", "c", "d"]);
}

#[test]
fn outputvalues_labels_and_flow_outputs() {
    let mut s = Sim::new(&src(r#"
labels: {team: data}
outputs:
  - {id: o, type: STRING, value: "{{ outputs.ov.values }}"}
  - {id: n, type: INT, value: "{{ 40 + 2 }}"}
tasks:
  - id: ov
    type: io.kestra.plugin.core.output.OutputValues
    values: {a: "{{ labels.team }}", b: x}
  - id: lb
    type: io.kestra.plugin.core.execution.Labels
    labels: {team: ops, run: "{{ taskrun.id }}"}
"#));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.output("ov", None)["values"]["a"], "data");
    assert_eq!(s.exec.label("team"), Some("ops"));
    assert_eq!(
        s.exec.label("run"),
        Some(s.exec.find_task_run("lb").unwrap().id.as_str())
    );
    assert_eq!(
        s.exec.label("system.correlationId"),
        Some(s.exec.id.as_str())
    );
    let out = s.exec.outputs.clone().unwrap();
    assert_eq!(out["o"], "{\"a\":\"data\",\"b\":\"x\"}");
    assert_eq!(out["n"], 42);
    assert_eq!(s.exec.find_task_run("ov").unwrap().attempt_count(), 1);
}

#[test]
fn a_flow_output_that_cannot_render_fails_the_execution() {
    let mut s = Sim::new(&src(r#"
outputs:
  - {id: o, type: STRING, value: "{{ invalid.thing }}"}
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
"#));
    assert_eq!(s.run(), State::Failed);
    assert!(s.exec.outputs.is_none());
}

#[test]
fn fail_with_condition_and_exit() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: f, type: io.kestra.plugin.core.execution.Fail, condition: "{{ 1 == 2 }}", errorMessage: "boom"}
  - {id: e, type: io.kestra.plugin.core.execution.Exit, state: WARNING}
  - {id: never, type: io.kestra.plugin.core.log.Log, message: x}
finally:
  - {id: fin, type: io.kestra.plugin.core.log.Log, message: x}
"#));
    assert_eq!(s.run(), State::Warning);
    assert_eq!(s.state_of("f"), State::Success);
    assert_eq!(s.runs_of("never"), 0);
}

#[test]
fn pause_with_delay_resumes_by_itself() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: p, type: io.kestra.plugin.core.flow.Pause, delay: PT1S}
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
"#));
    s.start();
    assert_eq!(s.exec.state.current, State::Paused);
    assert_eq!(s.state_of("p"), State::Paused);
    assert_eq!(s.run(), State::Success);
    let p = s.exec.find_task_run("p").unwrap();
    assert_eq!(p.state.count(State::Running), 2);
    assert_eq!(p.state.count(State::Paused), 1);
    assert_eq!(s.now, t0() + chrono::TimeDelta::milliseconds(1010));
}

#[test]
fn pause_timeout_fails_and_manual_resume_with_inputs() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: p, type: io.kestra.plugin.core.flow.Pause, timeout: PT1S}
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.count(), 1);
    let p = s.exec.find_task_run("p").unwrap();
    assert_eq!(
        (
            p.state.count(State::Running),
            p.state.count(State::Paused),
            p.state.count(State::Failed)
        ),
        (1, 1, 1)
    );

    let mut s = Sim::new(&src(r#"
tasks:
  - id: p
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - {id: asked, type: STRING}
  - {id: last, type: io.kestra.plugin.core.debug.Return, format: "{{ outputs.p.onResume.asked }}"}
"#));
    s.start();
    assert_eq!(s.exec.state.current, State::Paused);
    let mut inputs = serde_json::Map::new();
    inputs.insert("asked".into(), json!("restarted"));
    s.apply(vec![Event::Resume { inputs }]);
    assert_eq!(s.exec.state.current, State::Running);
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.output("last", None)["value"], "restarted");
}

#[test]
fn waitfor_loops_until_the_condition_holds() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: wf
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ outputs.ov.values.count == '3' }}"
    checkFrequency: {interval: PT0.5S}
    tasks:
      - id: ov
        type: io.kestra.plugin.core.output.OutputValues
        values:
          count: "{{ outputs.wf.iterationCount + 1 }}"
"#));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.runs_of("ov"), 3);
    assert_eq!(s.output("wf", None)["iterationCount"], 3);
    let last = s.exec.task_run_list.last().unwrap();
    assert_eq!(last.iteration, Some(2));

    let mut s = Sim::new(&src(r#"
tasks:
  - id: wf
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ false }}"
    failOnMaxReached: true
    checkFrequency: {maxIterations: 4, interval: PT0.1S}
    tasks:
      - {id: l, type: io.kestra.plugin.core.log.Log, message: x}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.runs_of("l"), 4);
}

#[test]
fn working_directory_children_share_one_directory() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles: ["out.txt"]
    tasks:
      - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
      - {id: b, type: io.kestra.plugin.core.log.Log, message: b, disabled: true}
      - {id: c, type: io.kestra.plugin.core.log.Log, message: c}
"#));
    s.start();
    let a = s.pending.pop_front().unwrap();
    let wd = a.working_directory.clone().unwrap();
    assert!(wd.first);
    assert_eq!(wd.properties["outputFiles"], json!(["out.txt"]));
    s.answer(&a, State::Success, Default::default());
    let c = s.pending.pop_front().unwrap();
    let wd2 = c.working_directory.clone().unwrap();
    assert_eq!(wd2.task_run_id, wd.task_run_id);
    assert!(!wd2.first);
    s.answer(&c, State::Success, Default::default());
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.count(), 3);
}

#[test]
fn subflow_wait_transmit_failed_and_labels() {
    let mut s = Sim::new(&src(r#"
labels: {team: data}
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: t
    flowId: child
    inputs: {x: "{{ execution.id }}"}
    labels: {k: v}
    inheritLabels: true
"#));
    s.start();
    assert_eq!(s.subflows.len(), 1);
    let sf = s.subflows[0].clone();
    assert!(sf.wait);
    assert_eq!(sf.inputs["x"], json!(s.exec.id));
    assert_eq!(sf.parent_id, s.exec.id);
    let keys: Vec<&str> = sf.labels.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["team", "k", "system.correlationId"]);
    assert_eq!(sf.trigger["variables"]["executionId"], json!(s.exec.id));
    assert_eq!(s.exec.state.current, State::Running);
    s.apply(vec![Event::SubflowEnded {
        task_run_id: sf.task_run_id.clone(),
        execution_id: sf.execution_id.clone(),
        state: State::Failed,
        outputs: None,
    }]);
    assert_eq!(s.exec.state.current, State::Failed);
    assert_eq!(s.output("sub", None)["state"], "FAILED");

    let mut s = Sim::new(&src(r#"
tasks:
  - {id: sub, type: io.kestra.plugin.core.flow.Subflow, namespace: t, flowId: child, wait: false}
"#));
    assert_eq!(s.run(), State::Success);
}

#[test]
fn kill_kills_running_task_runs_and_subflows() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - {id: a, type: io.kestra.plugin.core.flow.Sleep, duration: PT1M}
      - {id: sub, type: io.kestra.plugin.core.flow.Subflow, namespace: t, flowId: child}
"#));
    s.start();
    let a = s.pending.pop_front().unwrap();
    s.apply(vec![Event::Kill]);
    assert_eq!(s.exec.state.current, State::Killed);
    let hist: Vec<State> = s.exec.state.histories.iter().map(|h| h.state).collect();
    assert_eq!(
        hist,
        [
            State::Created,
            State::Running,
            State::Killing,
            State::Killed
        ]
    );
    assert!(
        s.exec
            .task_run_list
            .iter()
            .all(|t| t.state.current == State::Killed)
    );
    assert_eq!(s.cancelled.len(), 1);
    s.answer(&a, State::Success, Default::default());
    assert_eq!(s.exec.state.current, State::Killed);
}

#[test]
fn restart_reruns_failed_task_runs_in_the_same_execution() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - {id: c, type: io.kestra.plugin.core.log.Log, message: "{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}"}
  - {id: d, type: io.kestra.plugin.core.log.Log, message: d}
errors:
  - {id: e, type: io.kestra.plugin.core.log.Log, message: e}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.order(), ["a", "seq", "c", "e"]);
    let id = s.exec.id.clone();
    let c_id = s.exec.find_task_run("c").unwrap().id.clone();
    s.ex.restart(&mut s.exec, s.now).unwrap();
    assert_eq!(s.exec.state.current, State::Restarted);
    assert_eq!(s.exec.state.histories.len(), 4);
    assert_eq!(s.order(), ["a", "seq", "c"], "the errors branch is dropped");
    assert_eq!(s.state_of("c"), State::Restarted);
    assert_eq!(
        s.state_of("seq"),
        State::Running,
        "a flowable parent runs again"
    );
    assert_eq!(s.exec.find_task_run("c").unwrap().state.histories.len(), 4);
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.exec.id, id);
    let c = s.exec.find_task_run("c").unwrap();
    assert_eq!(c.id, c_id);
    assert_eq!(c.attempt_count(), 2);
    assert_eq!(s.order(), ["a", "seq", "c", "d"]);
    assert!(
        s.exec
            .task_run_list
            .iter()
            .all(|t| t.state.current == State::Success)
    );
}

#[test]
fn a_restarted_child_of_a_pause_does_not_pause_it_again() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1S
    tasks:
      - {id: c, type: io.kestra.plugin.core.log.Log, message: "{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}"}
      - {id: d, type: io.kestra.plugin.core.log.Log, message: d}
"#));
    assert_eq!(s.run(), State::Failed);
    s.ex.restart(&mut s.exec, s.now).unwrap();
    assert_eq!(s.state_of("pause"), State::Running);
    assert_eq!(s.state_of("c"), State::Restarted);
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.order(), ["a", "pause", "c", "d"]);
    let paused = s
        .exec
        .find_task_run("pause")
        .unwrap()
        .state
        .histories
        .iter();
    assert_eq!(paused.filter(|h| h.state == State::Paused).count(), 1);
    assert_eq!(s.exec.find_task_run("c").unwrap().attempt_count(), 2);
}

#[test]
fn replay_from_a_task_makes_a_new_execution() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
  - {id: b, type: io.kestra.plugin.core.log.Log, message: b}
  - {id: c, type: io.kestra.plugin.core.log.Log, message: c}
"#));
    assert_eq!(s.run(), State::Success);
    let b = s.exec.find_task_run("b").unwrap().id.clone();
    let new = s.ex.replay(&s.exec, &b, 99, s.now).unwrap();
    assert_ne!(new.id, s.exec.id);
    assert_eq!(new.parent_id.as_deref(), Some(s.exec.id.as_str()));
    assert_eq!(new.original_id.as_deref(), Some(s.exec.id.as_str()));
    assert_eq!(new.state.current, State::Restarted);
    assert_eq!(new.state.histories.len(), 4);
    assert_eq!(new.task_run_list.len(), 2);
    assert_eq!(new.task_run_list[1].state.current, State::Restarted);
    let ex = Executor2::from(&s);
    let mut s2 = common::Sim::with(ex, new);
    assert_eq!(s2.run(), State::Success);
    assert_eq!(s2.order(), ["a", "b", "c"]);
    assert_eq!(s2.exec.find_task_run("b").unwrap().attempt_count(), 2);
}

struct Executor2;
impl Executor2 {
    fn from(s: &Sim) -> weft_executor::Executor {
        weft_executor::Executor::new(s.ex.flow(), &weft_flow::Registry::core(), renderer()).unwrap()
    }
}

#[test]
fn concurrency_admission() {
    let f = r#"
concurrency: {limit: 1, behavior: CANCEL}
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
"#;
    let mut s = Sim::new(&src(f));
    s.apply(vec![Event::Start { running: 1 }]);
    assert_eq!(s.exec.state.current, State::Cancelled);
    let hist: Vec<State> = s.exec.state.histories.iter().map(|h| h.state).collect();
    assert_eq!(hist, [State::Created, State::Cancelled]);

    let mut s = Sim::new(&src(&f.replace("CANCEL", "QUEUE")));
    s.apply(vec![Event::Start { running: 1 }]);
    assert_eq!(s.exec.state.current, State::Queued);
    s.apply(vec![Event::Start { running: 0 }]);
    assert_eq!(s.run(), State::Success);
    assert_eq!(
        weft_executor::admission(s.ex.flow(), 0),
        weft_executor::Admission::Run
    );
}

#[test]
fn variables_are_passed_raw_and_rendered_with_render() {
    let mut s = Sim::new(&src(r#"
variables:
  a: "1"
  b: "{{ vars.a }} > 2"
tasks:
  - {id: r, type: io.kestra.plugin.core.debug.Return, format: "{{ render(vars.b) }}"}
"#));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.output("r", None)["value"], "1 > 2");
}

#[test]
fn execution_json_has_kestras_shape_and_reloads() {
    let mut s = Sim::new(&src(r#"
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2]
    tasks:
      - {id: r, type: io.kestra.plugin.core.debug.Return, format: "{{ taskrun.value }}"}
  - {id: last, type: io.kestra.plugin.core.debug.Return, format: "{{ outputs.r['2'].value }}"}
"#));
    s.start();
    // reload from JSON between every step: indexes are rebuilt and nothing changes
    let mut w = plugin_worker();
    while let Some(t) = s.pending.pop_front() {
        let text = serde_json::to_string(&s.exec).unwrap();
        s.exec = serde_json::from_str(&text).unwrap();
        let (st, o) = w(&t);
        s.answer(&t, st, o);
    }
    assert_eq!(s.exec.state.current, State::Success);
    assert_eq!(s.output("last", None)["value"], "2");
    let j: Json = s.json();
    for key in [
        "id",
        "namespace",
        "flowId",
        "flowRevision",
        "inputs",
        "labels",
        "state",
        "taskRunList",
        "originalId",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    let tr = &j["taskRunList"][1];
    for key in [
        "id",
        "executionId",
        "namespace",
        "flowId",
        "taskId",
        "parentTaskRunId",
        "value",
        "attempts",
        "outputs",
        "state",
    ] {
        assert!(tr.get(key).is_some(), "task run misses {key}");
    }
    assert!(j["state"]["duration"].as_str().unwrap().starts_with("PT"));
    assert_eq!(tr["attempts"][0]["state"]["current"], "SUCCESS");
}

#[test]
fn legacy_listeners_run_at_the_end_without_changing_the_state() {
    let mut s = Sim::new(&src(r#"
listeners:
  - tasks:
      - {id: ko, type: io.kestra.plugin.core.execution.Fail}
  - conditions:
      - type: io.kestra.plugin.core.condition.ExecutionStatusCondition
        in: [FAILED]
    tasks:
      - {id: never, type: io.kestra.plugin.core.log.Log, message: x}
  - tasks:
      - {id: l2, type: io.kestra.plugin.core.log.Log, message: x}
tasks:
  - {id: first, type: io.kestra.plugin.core.log.Log, message: x}
"#));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.order(), ["first", "ko", "l2"]);
    assert_eq!(s.state_of("ko"), State::Failed);
}

#[test]
fn sla_assertion_and_max_duration() {
    let f = r#"
inputs:
  - {id: s, type: STRING}
sla:
  - {id: c, type: EXECUTION_ASSERTION, behavior: CANCEL, assert: "{{ inputs.s != 'CANCEL' }}"}
  - {id: l, type: EXECUTION_ASSERTION, behavior: NONE, assert: "{{ inputs.s != 'LABEL' }}", labels: {sla: violated}}
tasks:
  - {id: a, type: io.kestra.plugin.core.log.Log, message: a}
"#;
    for (input, state, label) in [
        ("PASS", State::Success, None),
        ("CANCEL", State::Cancelled, None),
        ("LABEL", State::Success, Some("violated")),
    ] {
        let mut s = Sim::new(&src(f)).inputs(json!({ "s": input }));
        assert_eq!(s.run(), state, "{input}");
        assert_eq!(s.exec.label("sla"), label);
    }
    let mut s = Sim::new(&src(r#"
sla:
  - {id: m, type: MAX_DURATION, behavior: FAIL, duration: PT1S}
tasks:
  - {id: a, type: io.kestra.plugin.core.flow.Sleep, duration: PT1M}
"#));
    s.start();
    let a = s.pending.pop_front().unwrap();
    assert!(s.fire_timer());
    assert_eq!(s.exec.state.current, State::Failed);
    assert_eq!(s.state_of("a"), State::Killed);
    assert_eq!(s.cancelled, [(a.task_run_id.clone(), 1)]);
}

#[test]
fn after_execution_tasks_run_last_and_do_not_change_the_state() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: ko, type: io.kestra.plugin.core.execution.Fail}
finally:
  - {id: fin, type: io.kestra.plugin.core.log.Log, message: x}
afterExecution:
  - {id: after, type: io.kestra.plugin.core.log.Log, message: "{{ execution.id }}"}
"#));
    assert_eq!(s.run(), State::Failed);
    assert_eq!(s.order(), ["ko", "fin", "after"]);
}

#[test]
fn for_each_item_splits_starts_one_subflow_per_batch_and_merges() {
    let mut s = Sim::new(&src(r#"
inputs:
  - {id: file, type: FILE}
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch: {rows: 4}
    namespace: t
    flowId: child
    inputs:
      items: "{{ taskrun.items }}"
  - {id: after, type: io.kestra.plugin.core.debug.Return, format: "{{ outputs.each_items.numberOfBatches }}"}
"#))
    .inputs(json!({"file": "kestra:///t/f/executions/x/inputs/file/data.txt"}));
    s.start();
    let split = s.pending.pop_front().unwrap();
    assert_eq!(split.task_id, "each_split");
    assert_eq!(split.task_type, weft_executor::SPLIT_TYPE);
    assert_eq!(split.properties["batch"]["rows"], 4);
    let mut out = serde_json::Map::new();
    out.insert(
        "splits".into(),
        json!(["kestra:///b0", "kestra:///b1", "kestra:///b2"]),
    );
    s.answer(&split, State::Success, out);
    assert_eq!(s.subflows.len(), 3);
    assert_eq!(s.subflows[1].inputs["items"], "kestra:///b1");
    let items = s.output("each_items", None);
    assert_eq!(items["iterations"]["RUNNING"], 3);
    for sf in s.subflows.clone() {
        s.apply(vec![Event::SubflowEnded {
            task_run_id: sf.task_run_id.clone(),
            execution_id: sf.execution_id.clone(),
            state: State::Success,
            outputs: None,
        }]);
    }
    assert_eq!(s.output("each_items", None)["iterations"]["SUCCESS"], 3);
    let merge = s.pending.pop_front().unwrap();
    assert_eq!(merge.task_type, weft_executor::MERGE_TYPE);
    assert_eq!(
        merge.context["outputs"]["each_items"]["executionIds"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    s.answer(&merge, State::Success, Default::default());
    assert_eq!(s.run(), State::Success);
    assert_eq!(
        s.order(),
        ["each", "each_split", "each_items", "each_merge", "after"]
    );
    assert_eq!(s.output("after", None)["value"], "3");
}

#[test]
fn subflow_and_items_task_runs_have_one_attempt() {
    let mut s = Sim::new(&src(r#"
tasks:
  - {id: sub, type: io.kestra.plugin.core.flow.Subflow, namespace: t, flowId: child}
"#));
    s.start();
    let sf = s.subflows[0].clone();
    s.apply(vec![Event::SubflowEnded {
        task_run_id: sf.task_run_id,
        execution_id: sf.execution_id,
        state: State::Success,
        outputs: None,
    }]);
    let r = s.exec.find_task_run("sub").unwrap();
    assert_eq!(r.attempt_count(), 1);
    assert_eq!(r.last_attempt().unwrap().state.current, State::Success);
    assert_eq!(s.exec.state.current, State::Success);
}

#[test]
fn resume_inputs_are_typed_and_validated_by_the_pause_on_resume() {
    use indexmap::IndexMap;
    use weft_executor::inputs::{InputContext, RawInput};
    let mut s = Sim::new(&src(r#"
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - {id: asked, type: STRING}
      - {id: n, type: INT, required: false}
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.pause.onResume.asked }} {{ outputs.pause.onResume.n }}"
"#));
    let r = renderer();
    let ctx = InputContext::new("x", t0(), &r);
    let e =
        s.ex.resume_inputs(&s.exec, &IndexMap::new(), &ctx)
            .unwrap_err();
    assert!(e.to_string().contains("not PAUSED"), "{e}");
    s.start();
    assert_eq!(s.exec.state.current, State::Paused);
    let e =
        s.ex.resume_inputs(&s.exec, &IndexMap::new(), &ctx)
            .unwrap_err();
    assert!(
        e.to_string()
            .contains("Invalid input for `asked`, missing required input, but received `null`"),
        "{e}"
    );
    let raw = IndexMap::from([
        ("asked".to_string(), RawInput::Text("yes".into())),
        ("n".to_string(), RawInput::Text("4".into())),
    ]);
    let typed = s.ex.resume_inputs(&s.exec, &raw, &ctx).unwrap();
    assert_eq!(typed["n"], json!(4));
    s.apply(vec![Event::Resume { inputs: typed }]);
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.output("last", None)["value"], json!("yes 4"));
}
