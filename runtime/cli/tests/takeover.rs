#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! An instance dies: two real `weft server` processes on one local store. The first is killed
//! with SIGKILL while a task of an execution runs; the second takes the execution over through
//! `POST /api/v1/tick` once the lease expired, runs the lost attempt again and ends it. Or the
//! first is stopped with SIGTERM: past its grace period it hands the execution back at once.

mod common;

use std::time::{Duration, Instant};

use common::{Instance, create_flow, json_of};
use serde_json::Value;

const FLOW: &str = r#"id: nap
namespace: company.team
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: hello
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT3S
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.value }} again"
"#;

async fn execution(http: &reqwest::Client, url: &str, id: &str) -> Value {
    json_of(http.get(format!("{url}/api/v1/executions/{id}"))).await
}

fn run_of<'a>(exec: &'a Value, task: &str) -> Option<&'a Value> {
    exec["taskRunList"]
        .as_array()?
        .iter()
        .find(|r| r["taskId"] == task)
}

async fn tick(http: &reqwest::Client, url: &str) -> Value {
    let r = http
        .post(format!("{url}/api/v1/tick"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

/// Creates the flow on the instance at `url`, starts it, and waits until its `sleep` task runs;
/// returns the execution's id.
async fn start_until_sleep_runs(http: &reqwest::Client, url: &str) -> String {
    create_flow(http, url, FLOW).await;
    let started: Value =
        json_of(http.post(format!("{url}/api/v1/executions/company.team/nap"))).await;
    let id = started["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exec = execution(http, url, &id).await;
        if run_of(&exec, "sleep").is_some_and(|r| r["state"]["current"] == "RUNNING") {
            return id;
        }
        assert!(Instant::now() < deadline, "sleep never ran: {exec:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_execution_is_taken_over_by_a_tick_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let http = reqwest::Client::new();

    let a = Instance::start(&store, 0);
    // wait until `sleep` runs, then kill the instance running it
    let id = start_until_sleep_runs(&http, &a.url).await;
    drop(a);
    let lease = store.join(format!("leases/main/{id}.json"));
    assert!(lease.is_file(), "no lease at {}", lease.display());

    // a second instance, ticked from outside: nothing to take over while the lease holds
    let b = Instance::start(&store, 0);
    let early = tick(&http, &b.url).await;
    assert_eq!(early["takenOver"], 0, "{early}");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let due = tick(&http, &b.url).await;
    assert_eq!(due["takenOver"], 1, "{due}");
    assert_eq!(due["executions"], 1, "{due}");
    let again = tick(&http, &b.url).await;
    assert_eq!(again["takenOver"], 0, "taken over twice: {again}");

    let deadline = Instant::now() + Duration::from_secs(60);
    let exec = loop {
        let exec = execution(&http, &b.url, &id).await;
        if exec["state"]["current"] == "SUCCESS" {
            break exec;
        }
        assert!(
            exec["state"]["current"] == "RUNNING" && Instant::now() < deadline,
            "{exec:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let after = run_of(&exec, "after").unwrap();
    assert_eq!(after["outputs"]["value"], "hello again", "{exec:#}");
    // the lost attempt ran again as the same attempt, and `first` did not run again
    assert_eq!(
        run_of(&exec, "sleep").unwrap()["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        run_of(&exec, "first").unwrap()["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // the driver that ended it gave its lease back
    let gone = Instant::now() + Duration::from_secs(5);
    while lease.exists() && Instant::now() < gone {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!lease.exists(), "the lease outlived its executions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_hands_its_execution_back_for_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let storage = store.display().to_string();
    let http = reqwest::Client::new();
    // a long lease: only a hand-back lets a tick take the execution over at once
    let env = [
        ("WEFT_LEASE_TTL_SECS", "60"),
        ("WEFT_SHUTDOWN_GRACE_SECS", "0"),
    ];
    let mut a = Instance::start_on(&storage, "127.0.0.1:0", 0, &env);
    let id = start_until_sleep_runs(&http, &a.url).await;
    let status = a.terminate();
    assert!(status.success(), "{status}");

    // what it held is in storage, and its lease expired when it stopped
    let b = Instance::start_on(&storage, "127.0.0.1:0", 0, &env);
    let exec = execution(&http, &b.url, &id).await;
    assert_eq!(
        run_of(&exec, "first").unwrap()["state"]["current"],
        "SUCCESS"
    );
    let due = tick(&http, &b.url).await;
    assert_eq!(due["takenOver"], 1, "{due}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exec = execution(&http, &b.url, &id).await;
        if exec["state"]["current"] == "SUCCESS" {
            assert_eq!(
                run_of(&exec, "after").unwrap()["outputs"]["value"],
                "hello again"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{exec:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
