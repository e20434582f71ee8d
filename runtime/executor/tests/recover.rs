//! `Event::Recover`: a driver that takes an execution over from one that stopped asks again, from
//! the document alone, for the attempts, subflow executions and timers the other one held in
//! memory.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::TimeDelta;
use common::*;
use weft_executor::event::TimerKind;
use weft_executor::{Event, State};

const NS: &str = "id: f\nnamespace: t\n";

/// The driver stops: everything it held in memory is gone, and the next one reads the document
/// (a clone has no indexes, as a document read from storage).
fn crash_and_recover(s: &mut Sim) {
    s.pending.clear();
    s.timers.clear();
    s.subflows.clear();
    s.exec = s.exec.clone();
    s.apply(vec![Event::Recover]);
}

#[test]
fn a_running_attempt_runs_again_and_the_execution_ends() {
    let mut s = Sim::new(&format!(
        "{NS}tasks:\n  - {{id: a, type: io.kestra.plugin.core.debug.Return, format: x}}\n  - {{id: b, type: io.kestra.plugin.core.debug.Return, format: y}}\n"
    ));
    s.start();
    let lost = s.pending.front().cloned().unwrap();
    crash_and_recover(&mut s);
    assert_eq!(s.pending.len(), 1);
    let again = s.pending.front().unwrap();
    assert_eq!(
        (&again.task_run_id, again.attempt),
        (&lost.task_run_id, lost.attempt)
    );
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.runs_of("a"), 1);
    assert_eq!(s.exec.find_task_run("a").unwrap().attempt_count(), 1);
    assert_eq!(s.output("b", None)["value"], "y");
}

#[test]
fn timers_keep_their_first_due_date() {
    let mut s = Sim::new(&format!(
        "{NS}timeout: PT1H\ntasks:\n  - {{id: a, type: io.kestra.plugin.core.debug.Return, format: x, timeout: PT10S}}\n"
    ));
    s.start();
    s.now += TimeDelta::seconds(4);
    crash_and_recover(&mut s);
    let mut due: Vec<(TimerKind, i64)> = s
        .timers
        .iter()
        .map(|(at, t)| (t.kind, (*at - t0()).num_seconds()))
        .collect();
    due.sort_by_key(|(_, secs)| *secs);
    assert_eq!(
        due,
        [
            (TimerKind::Timeout, 10),
            (TimerKind::ExecutionTimeout, 3600)
        ]
    );
}

#[test]
fn a_pause_resumes_at_its_first_date() {
    let mut s = Sim::new(&format!(
        "{NS}tasks:\n  - {{id: p, type: io.kestra.plugin.core.flow.Pause, delay: PT1S}}\n  - {{id: a, type: io.kestra.plugin.core.log.Log, message: a}}\n"
    ));
    s.start();
    s.now += TimeDelta::milliseconds(500);
    crash_and_recover(&mut s);
    assert_eq!(s.timers.len(), 1);
    assert_eq!(s.timers[0].0, t0() + TimeDelta::seconds(1));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.state_of("a"), State::Success);
}

#[test]
fn the_flow_timeout_counts_from_the_start_across_a_pause() {
    let mut s = Sim::new(&format!(
        "{NS}timeout: PT1H\ntasks:\n  - {{id: p, type: io.kestra.plugin.core.flow.Pause, delay: PT10S}}\n  - {{id: a, type: io.kestra.plugin.core.flow.Pause}}\n"
    ));
    s.start();
    // the delay passes: the execution goes PAUSED -> RUNNING, then waits in the second Pause
    s.now += TimeDelta::seconds(10);
    let delay = s
        .timers
        .iter()
        .find(|(_, t)| t.kind == TimerKind::PauseDelay)
        .cloned()
        .unwrap();
    s.timers.retain(|(_, t)| t.kind != TimerKind::PauseDelay);
    s.apply(vec![Event::Timer(delay.1)]);
    assert_eq!(s.exec.state.current, State::Paused);
    s.now += TimeDelta::seconds(5);
    crash_and_recover(&mut s);
    let timeout: Vec<i64> = s
        .timers
        .iter()
        .filter(|(_, t)| t.kind == TimerKind::ExecutionTimeout)
        .map(|(at, _)| (*at - t0()).num_seconds())
        .collect();
    assert_eq!(
        timeout,
        [3600],
        "counted from the start, not from the resume"
    );
}

#[test]
fn a_retry_waits_for_its_interval_from_the_failure() {
    let mut s = Sim::new(&format!(
        "{NS}tasks:\n  - id: a\n    type: io.kestra.plugin.core.debug.Return\n    format: x\n    retry: {{type: constant, interval: PT5S, maxAttempt: 3}}\n"
    ));
    s.start();
    let t = s.pending.pop_front().unwrap();
    s.now += TimeDelta::seconds(1);
    s.answer(&t, State::Failed, Default::default());
    let planned = s.timers.clone();
    assert_eq!(s.state_of("a"), State::Retrying);
    s.now += TimeDelta::seconds(2);
    crash_and_recover(&mut s);
    assert_eq!(s.timers, planned);
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.exec.find_task_run("a").unwrap().attempt_count(), 2);
}

#[test]
fn an_awaited_subflow_is_asked_for_again_under_the_same_id() {
    let mut s = Sim::new(&format!(
        "{NS}tasks:\n  - {{id: sub, type: io.kestra.plugin.core.flow.Subflow, namespace: t, flowId: child}}\n"
    ));
    s.start();
    let first = s.subflows[0].execution_id.clone();
    crash_and_recover(&mut s);
    assert_eq!(s.subflows.len(), 1);
    assert_eq!(s.subflows[0].execution_id, first);
    assert!(s.subflows[0].wait);
}

#[test]
fn a_created_execution_starts_and_an_ended_one_asks_for_nothing() {
    let mut s = Sim::new(&format!(
        "{NS}tasks:\n  - {{id: a, type: io.kestra.plugin.core.debug.Return, format: x}}\n"
    ));
    s.apply(vec![Event::Recover]);
    assert_eq!(s.exec.state.current, State::Running);
    assert_eq!(s.pending.len(), 1);
    assert_eq!(s.run(), State::Success);
    let effects = s.effects;
    crash_and_recover(&mut s);
    assert_eq!(s.effects, effects);
    assert_eq!(s.exec.state.current, State::Success);
}
