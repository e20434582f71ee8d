#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Coalesced writes of the driver (`runner::flush`): steps that only run attempts stay in memory
//! up to the flush interval and are written together; whatever was written by someone else
//! meanwhile is kept (the steps are replayed on it). The real core plugins, a local store in a
//! temporary directory.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_executor::{Event, Execution, Executor, RunTask, State};
use weft_server::runner::{Observer, Runner, StartRequest};
use weft_server::setup::Setup;
use weft_store::DynStore;
use weft_store::repo::Versioned;

fn foreach(values: usize) -> String {
    let values: Vec<String> = (0..values).map(|i| i.to_string()).collect();
    format!(
        "id: each\nnamespace: t\ntasks:\n  - id: loop\n    type: io.kestra.plugin.core.flow.ForEach\n    concurrencyLimit: 1\n    values: [{}]\n    tasks:\n      - id: r\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ taskrun.value }}}}\"\n",
        values.join(", ")
    )
}

async fn setup() -> (Setup, tempfile::TempDir, DynStore) {
    common::local_setup().await
}

fn runner(setup: &Setup, store: DynStore, yaml: &str, interval: Duration) -> Runner {
    common::runner(setup, store, &[yaml]).with_flush_interval(interval)
}

async fn stored(store: &DynStore, id: &str) -> Versioned<Execution> {
    weft_server::executions(store.clone())
        .get(id)
        .await
        .expect("stored execution")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_are_written_together_and_the_end_at_once() {
    let (setup, _dir, store) = setup().await;
    let yaml = foreach(300);
    // every step written: at least one PUT per task run
    let every = runner(&setup, store.clone(), &yaml, Duration::ZERO);
    let before = store.stats().snapshot();
    let exec = every
        .run("t", "each", StartRequest::default())
        .await
        .unwrap();
    let puts_every = store.stats().snapshot().since(&before).put;
    assert_eq!(exec.state.current, State::Success);
    assert!(puts_every > 300, "{puts_every} PUTs");

    // a long interval: the creation, the end (its head, chunk and index entry), little else
    let coalesced = runner(&setup, store.clone(), &yaml, Duration::from_secs(20));
    let before = store.stats().snapshot();
    let exec = coalesced
        .run("t", "each", StartRequest::default())
        .await
        .unwrap();
    let puts = store.stats().snapshot().since(&before).put;
    assert_eq!(exec.state.current, State::Success);
    assert!(
        puts <= 8,
        "{puts} PUTs for {} task runs",
        exec.task_run_list.len()
    );
    // what is stored is the whole execution, as it ended
    let read = stored(&store, &exec.id).await.value;
    assert_eq!(read.state.current, State::Success);
    assert_eq!(read.task_run_list.len(), 301);
    let values: Vec<String> = read
        .task_run_list
        .iter()
        .filter(|r| r.task_id == "r")
        .map(|r| {
            r.outputs.as_ref().unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(values.len(), 300);
    assert_eq!(values[299], "299");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_session_holds_is_written_when_it_stops_driving() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(
        &setup,
        store.clone(),
        &foreach(3000),
        Duration::from_millis(50),
    );
    let mut session = runner.session();
    let id = session
        .start("t", "each", StartRequest::default(), false)
        .await
        .unwrap();
    // drive until 200 runs ended
    session
        .drive_until(Instant::now() + Duration::from_secs(60), |s| {
            s.execution(&id)
                .is_some_and(|e| e.task_run_list.len() > 200)
        })
        .await
        .unwrap();
    let read = stored(&store, &id).await.value;
    let held = session.execution(&id).unwrap();
    // `drive_until` writes what it holds when it returns
    assert_eq!(read.task_run_list.len(), held.task_run_list.len());
    assert_eq!(read.state.current, State::Running);
}

/// Once the stored execution `id` has 50 task runs, changes it in storage with `change` (as
/// another party would, with a version condition) while a session drives it; returns how many
/// task runs it saw.
fn write_meanwhile(
    store: &DynStore,
    id: &str,
    change: impl Fn(&mut Execution) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<usize> {
    let repo = weft_server::executions(store.clone());
    let id = id.to_string();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let current = repo.get(&id).await.unwrap();
            let seen = current.value.task_run_list.len();
            if seen < 50 {
                continue;
            }
            repo.update_from(&id, current, |e: &mut Execution| {
                change(e);
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .unwrap();
            return seen;
        }
    })
}

/// Counts the attempts started, by task run and attempt number.
#[derive(Default)]
struct Started(Mutex<HashMap<(String, u32), u32>>);

impl Observer for Started {
    fn attempt_started(&self, task: &RunTask) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((task.task_run_id.clone(), task.attempt))
            .or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_written_by_another_party_meanwhile_is_kept() {
    let (setup, _dir, store) = setup().await;
    let yaml = foreach(5000);
    let started = Arc::new(Started::default());
    let runner = runner(&setup, store.clone(), &yaml, Duration::from_millis(30))
        .with_observer(started.clone());
    let flow = weft_flow::parse_flow(&yaml, &setup.registry).unwrap().flow;
    let outside = Arc::new(Executor::new(&flow, &setup.registry, setup.renderer.clone()).unwrap());
    let mut session = runner.session();
    let id = session
        .start("t", "each", StartRequest::default(), false)
        .await
        .unwrap();
    // another party (an instance without the lease) kills it in storage while this session
    // drives it with steps in memory
    let killer = write_meanwhile(&store, &id, move |e| {
        outside.advance(e, vec![Event::Kill], chrono::Utc::now());
    });
    let ended = session
        .drive_until(Instant::now() + Duration::from_secs(60), |s| s.is_done(&id))
        .await
        .unwrap();
    let seen = killer.await.unwrap();
    assert!(ended, "the session did not see the end");
    let held = session.execution(&id).unwrap().clone();
    assert_eq!(held.state.current, State::Killed);
    let read = stored(&store, &id).await.value;
    assert_eq!(read.state.current, State::Killed);
    // stopped early: the kill was not overwritten by the steps this session held
    assert!(
        read.task_run_list.len() < 5000,
        "{}",
        read.task_run_list.len()
    );
    assert!(
        read.task_run_list
            .iter()
            .all(|r| r.state.current.is_terminal()),
        "a task run was left running"
    );
    // the runs the killer saw are kept, each iteration's output its value
    let done: Vec<&weft_executor::TaskRun> = read
        .task_run_list
        .iter()
        .filter(|r| r.task_id == "r" && r.state.current == State::Success)
        .collect();
    assert!(done.len() + 2 >= seen, "{} ended, {seen} seen", done.len());
    for r in &done {
        assert_eq!(
            r.outputs.as_ref().unwrap()["value"].as_str(),
            r.value.as_deref(),
            "{r:?}"
        );
    }
    // what is stored ran here: every attempt recorded is one this session started (the kill
    // takes effect from the state it read; attempts that ended after it are not recorded)
    let ran = started.0.lock().unwrap().clone();
    for r in read.task_run_list.iter().filter(|r| r.task_id == "r") {
        let attempts = r.attempts.as_ref().map_or(0, Vec::len);
        assert_eq!(attempts, 1, "{r:?}");
        assert!(ran.contains_key(&(r.id.clone(), 1)), "never started: {r:?}");
    }
    // and no attempt was started twice
    let twice: Vec<_> = started
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    assert!(twice.is_empty(), "started twice: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_party_meanwhile_keeps_both_it_and_the_held_steps() {
    let (setup, _dir, store) = setup().await;
    let runner = runner(
        &setup,
        store.clone(),
        &foreach(2000),
        Duration::from_millis(30),
    );
    let mut session = runner.session();
    let id = session
        .start("t", "each", StartRequest::default(), false)
        .await
        .unwrap();
    // another party adds a label in storage while this session holds steps in memory
    let labeller = write_meanwhile(&store, &id, |e| {
        e.labels.push(weft_flow::model::Label {
            key: "checked".into(),
            value: "yes".into(),
        });
    });
    let ended = session
        .drive_until(Instant::now() + Duration::from_secs(60), |s| s.is_done(&id))
        .await
        .unwrap();
    let _ = labeller.await.unwrap();
    assert!(ended, "the session did not see the end");
    let read = stored(&store, &id).await.value;
    assert_eq!(read.state.current, State::Success);
    assert!(
        read.labels.iter().any(|l| l.key == "checked"),
        "the other write was lost: {:?}",
        read.labels
    );
    // the steps held when it was written were replayed on it: every iteration is there
    let values: Vec<&str> = read
        .task_run_list
        .iter()
        .filter(|r| r.task_id == "r")
        .map(|r| r.outputs.as_ref().unwrap()["value"].as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 2000);
    assert!(values.iter().enumerate().all(|(i, v)| *v == i.to_string()));
}
