//! The stored form of executions (head + immutable chunks) under real `advance` runs: after every
//! step the execution is written and read back, and must be the same; some runs continue from
//! the copy read back, as another process would.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use weft_executor::{ChunkPolicy, Event, Execution, State};

const NS: &str = "id: f\nnamespace: t\n";

fn foreach(values: usize, limit: u32) -> String {
    let values: Vec<String> = (0..values).map(|i| format!("\"v{i}\"")).collect();
    format!(
        r#"{NS}
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    concurrencyLimit: {limit}
    values: [{}]
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.r['v3'].value }}}}"
"#,
        values.join(", ")
    )
}

fn policy(runs_per_chunk: usize, max_head_runs: usize) -> ChunkPolicy {
    ChunkPolicy {
        runs_per_chunk,
        max_head_runs,
        max_chunk_runs: 200,
    }
}

#[test]
fn a_stored_foreach_reads_back_equal_after_every_step() {
    let src = foreach(400, 1);
    let mut plain = Sim::new(&src);
    assert_eq!(plain.run(), State::Success);

    let mut s = Sim::new(&src);
    s.storage = Some(SimStorage::new(policy(32, 1024), 1, false));
    assert_eq!(s.run(), State::Success);
    assert_eq!(s.json(), plain.json(), "storing changes nothing of the run");
    let st = s.storage.as_ref().unwrap();
    assert_eq!(st.read(), s.exec);
    assert!(st.chunks.len() >= 400 / 32, "{} chunks", st.chunks.len());
    // the terminated execution's head holds no task run
    let head: serde_json::Value = serde_json::from_slice(&st.head).unwrap();
    assert_eq!(head["taskRunList"].as_array().unwrap().len(), 0);
    assert_eq!(head["weftChunks"]["total"], 402);
    // the head stays small: at most 32 terminated runs and the running ones
    let full = serde_json::to_vec(&s.exec).unwrap().len();
    assert!(
        st.max_head * 5 < full,
        "largest head {} vs whole execution {full}",
        st.max_head
    );
    assert_eq!(s.output("last", None)["value"], "v3");

    // the same, going on from the copy read back every 13 writes
    let mut r = Sim::new(&src);
    r.storage = Some(SimStorage::new(policy(32, 1024), 13, true));
    assert_eq!(r.run(), State::Success);
    assert_eq!(r.json(), plain.json());
    assert_eq!(r.storage.as_ref().unwrap().read(), r.exec);
}

#[test]
fn thousands_started_at_once_leave_the_head() {
    let mut s = Sim::new(&foreach(1500, 0));
    s.storage = Some(SimStorage::new(policy(100, 500), 50, true));
    s.start();
    assert_eq!(s.pending.len(), 1500);
    let st = s.storage.as_ref().unwrap();
    let head: serde_json::Value = serde_json::from_slice(&st.head).unwrap();
    assert_eq!(
        head["taskRunList"].as_array().unwrap().len(),
        0,
        "1,501 running runs are over the 500 a head keeps"
    );
    assert_eq!(s.run(), State::Success);
    let st = s.storage.as_ref().unwrap();
    assert_eq!(st.read(), s.exec);
    assert!(st.max_head < 120_000, "largest head {}", st.max_head);
}

#[test]
fn archived_runs_changed_by_a_kill_are_not_lost() {
    let mut s = Sim::new(&foreach(400, 0));
    s.storage = Some(SimStorage::new(policy(10, 50), 1, true));
    s.start();
    // a few results, then a kill: the running runs were archived while running
    for _ in 0..25 {
        let t = s.pending.pop_front().unwrap();
        s.answer(&t, State::Success, value(serde_json::json!("x")));
    }
    s.apply(vec![Event::Kill]);
    assert_eq!(s.exec.state.current, State::Killed);
    let back = s.storage.as_ref().unwrap().read();
    assert_eq!(back, s.exec);
    let killed = back
        .task_run_list
        .iter()
        .filter(|r| r.state.current == State::Killed)
        .count();
    assert_eq!(
        killed,
        400 - 25 + 1,
        "the running iterations and the ForEach"
    );
}

#[test]
fn a_restart_after_archiving_keeps_every_change() {
    let src = format!(
        r#"{NS}
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [{}]
    tasks:
      - {{id: r, type: io.kestra.plugin.core.debug.Return, format: "{{{{ taskrun.value }}}}"}}
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - {{id: c, type: io.kestra.plugin.core.log.Log, message: "{{{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}}}"}}
  - {{id: d, type: io.kestra.plugin.core.log.Log, message: d}}
errors:
  - {{id: e, type: io.kestra.plugin.core.log.Log, message: e}}
"#,
        (0..300)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut s = Sim::new(&src);
    s.storage = Some(SimStorage::new(policy(16, 1024), 1, false));
    assert_eq!(s.run(), State::Failed);
    let st = s.storage.as_ref().unwrap();
    assert_eq!(st.read(), s.exec);
    assert!(!s.exec.chunk_names().is_empty());

    // continue from the stored copy, as another process would
    s.exec = st.read();
    s.ex.restart(&mut s.exec, s.now).unwrap();
    assert_eq!(s.runs_of("e"), 0, "the errors branch is dropped");
    assert_eq!(s.state_of("c"), State::Restarted);
    let back = s.storage.as_mut().unwrap().write(&mut s.exec);
    assert_eq!(
        back, s.exec,
        "the restart's changes and removals are stored"
    );
    assert_eq!(
        back.find_task_run("c").unwrap().state.current,
        State::Restarted
    );

    assert_eq!(s.run(), State::Success);
    let st = s.storage.as_ref().unwrap();
    assert_eq!(st.read(), s.exec);
    assert_eq!(s.runs_of("r"), 300);
    assert_eq!(s.order().last().map(String::as_str), Some("d"));
}

#[test]
fn a_document_without_chunks_still_loads() {
    let mut s = Sim::new(&foreach(300, 1));
    assert_eq!(s.run(), State::Success);
    // the format written before chunks: the whole list in `taskRunList`
    let old = serde_json::to_vec(&s.exec).unwrap();
    let (mut exec, names) = Execution::decode_head(&old).unwrap();
    assert!(names.is_empty());
    exec.attach_chunks(Vec::<(String, Vec<u8>)>::new()).unwrap();
    assert_eq!(exec, s.exec);
    // its next write moves the runs out of the head
    let mut st = SimStorage::new(policy(64, 1024), 1, false);
    let back = st.write(&mut exec);
    assert_eq!(back, s.exec);
    assert!(st.chunks.len() >= 2);
    assert!(st.head.len() * 10 < old.len());
}

#[test]
fn a_corrupt_or_missing_chunk_is_named() {
    let mut s = Sim::new(&foreach(50, 1));
    s.storage = Some(SimStorage::new(policy(8, 1024), 1, false));
    assert_eq!(s.run(), State::Success);
    let st = s.storage.as_ref().unwrap();
    let (exec, names) = Execution::decode_head(&st.head).unwrap();
    let name = names[1].clone();

    let mut corrupt: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (n.clone(), st.chunks[n].clone()))
        .collect();
    corrupt[1].1[5] ^= 1;
    let e = exec.clone().attach_chunks(corrupt).unwrap_err().to_string();
    assert!(e.contains(&exec.id) && e.contains(&name), "{e}");
    assert!(e.contains("corrupt"), "{e}");

    let missing: Vec<(String, Vec<u8>)> = names
        .iter()
        .filter(|n| **n != name)
        .map(|n| (n.clone(), st.chunks[n].clone()))
        .collect();
    let e = exec.clone().attach_chunks(missing).unwrap_err().to_string();
    assert!(e.contains(&exec.id), "{e}");
}
