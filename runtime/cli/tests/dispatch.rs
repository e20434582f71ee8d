#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `dispatch: http`, end to end: two real `weft server` processes on one local store folder. A
//! drives the executions and posts their runnable attempts to B (its `dispatch_url`, as it would
//! post them to a load balancer); B runs them and answers their results. When the pool cannot be
//! reached, A runs the attempts itself and counts the fallbacks. The tasks of a WorkingDirectory
//! always run on A, where its folder is.

mod common;

use common::{Instance, create_flow_at, free_port, json_of};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

const TOKEN: &str = "dispatch-test-token";

/// A fan-out of 4 Return tasks and a Log, then a Return that reads two of their outputs: 6
/// runnable attempts.
const FLOW: &str = r#"id: fanout
namespace: company.team
tasks:
  - id: fan
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: r1
        type: io.kestra.plugin.core.debug.Return
        format: "one {{ flow.id }}"
      - id: r2
        type: io.kestra.plugin.core.debug.Return
        format: two
      - id: r3
        type: io.kestra.plugin.core.debug.Return
        format: three
      - id: r4
        type: io.kestra.plugin.core.debug.Return
        format: "{{ 2 + 2 }}"
      - id: note
        type: io.kestra.plugin.core.log.Log
        message: "fanning out in {{ flow.namespace }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.r1.value }} + {{ outputs.r4.value }}"
"#;

const ATTEMPTS: u64 = 6;

/// Two tasks in a WorkingDirectory, then a Log that reads what they left.
const WORKING_DIRECTORY: &str = include_str!("../../../examples/working-directory.yaml");

/// A client that sends the servers' token.
fn client() -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Runs the flow to its end and checks the execution: SUCCESS, each task's output, and the Log
/// task's line in the tenant's logs. Returns the execution.
async fn run_and_check(http: &reqwest::Client, base: &str) -> Value {
    let r = http
        .post(format!("{base}/executions/company.team/fanout?wait=true"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let exec: Value = r.json().await.unwrap();
    assert_eq!(exec["state"]["current"], "SUCCESS", "{exec:#}");
    let output = |task: &str| {
        exec["taskRunList"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["taskId"] == task)
            .unwrap_or_else(|| panic!("no task run of {task}: {exec:#}"))["outputs"]["value"]
            .clone()
    };
    for (task, value) in [
        ("r1", "one fanout"),
        ("r2", "two"),
        ("r3", "three"),
        ("r4", "4"),
        ("after", "one fanout + 4"),
    ] {
        assert_eq!(output(task), value, "{task}: {exec:#}");
    }
    let id = exec["id"].as_str().unwrap();
    let logs: Value = json_of(http.get(format!("{base}/executions/{id}/logs?taskId=note"))).await;
    let messages: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    assert_eq!(messages, ["fanning out in company.team"], "{logs:#}");
    exec
}

/// The metrics of an instance, as `name{labels}` -> value.
async fn metrics(http: &reqwest::Client, url: &str) -> Vec<(String, f64)> {
    let r = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.text()
        .await
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of metric `name` (every label set); 0 when it has none.
fn total(metrics: &[(String, f64)], name: &str) -> u64 {
    metrics
        .iter()
        .filter(|(n, _)| n == name || n.starts_with(&format!("{name}{{")))
        .map(|(_, v)| *v as u64)
        .sum()
}

/// One sample of `name{labels}`.
fn sample(metrics: &[(String, f64)], name: &str) -> Option<u64> {
    metrics
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_is_dispatched_to_the_pool_and_runs_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store").display().to_string();
    let auth = [("WEFT_AUTH_TOKEN", TOKEN)];
    let b = Instance::start_on(&store, "127.0.0.1:0", 0, &auth);
    let a = Instance::start_on(
        &store,
        "127.0.0.1:0",
        0,
        &[
            ("WEFT_AUTH_TOKEN", TOKEN),
            ("WEFT_DISPATCH", "http"),
            ("WEFT_DISPATCH_URL", &b.url),
        ],
    );
    let http = client();

    // the tenant `main`, and a tenant of its own: B runs each attempt over the caller's tenant
    for base in [
        format!("{}/api/v1", a.url),
        format!("{}/api/v1/acme", a.url),
    ] {
        create_flow_at(&http, &base, FLOW).await;
        run_and_check(&http, &base).await;
    }

    // the tasks of a WorkingDirectory share its folder on A: they run there; `show`, after it,
    // is dispatched
    let base = format!("{}/api/v1", a.url);
    create_flow_at(&http, &base, WORKING_DIRECTORY).await;
    let exec: Value = json_of(http.post(format!(
        "{base}/executions/weft.examples/working-directory?wait=true"
    )))
    .await;
    assert_eq!(exec["state"]["current"], "SUCCESS", "{exec:#}");

    let on_a = metrics(&http, &a.url).await;
    let on_b = metrics(&http, &b.url).await;
    assert_eq!(
        sample(&on_a, "weft_attempts_dispatched_total"),
        Some(2 * ATTEMPTS + 1),
        "{on_a:?}"
    );
    assert_eq!(
        total(&on_a, "weft_attempt_dispatch_fallbacks_total"),
        0,
        "{on_a:?}"
    );
    assert_eq!(sample(&on_a, "weft_worker_attempts_served_total"), Some(0));
    assert_eq!(
        sample(&on_b, "weft_worker_attempts_served_total"),
        Some(2 * ATTEMPTS + 1),
        "{on_b:?}"
    );
    // an attempt counts where its plugin ran: the WorkingDirectory's two on A, the rest on B
    let ran = "weft_task_attempt_duration_seconds_count{state=\"SUCCESS\"}";
    assert_eq!(sample(&on_a, ran), Some(2), "{on_a:?}");
    assert_eq!(sample(&on_b, ran), Some(2 * ATTEMPTS + 1), "{on_b:?}");
    // B ran attempts only: it drove no execution
    assert_eq!(sample(&on_b, "weft_executions_started_total"), Some(0));
    assert_eq!(sample(&on_b, "weft_attempts_dispatched_total"), Some(0));

    // the worker endpoint refuses a body that is not an attempt, and a caller without the token
    let r = http
        .post(format!("{}/api/v1/worker/attempts", b.url))
        .header("content-type", "application/json")
        .body(r#"{"namespace": "company.team", "flowId": "fanout"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let message = r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("missing field `task`"), "{message}");
    // ...and an attempt of a WorkingDirectory, whose folder is on the driving instance
    let r = http
        .post(format!("{}/api/v1/worker/attempts", b.url))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "namespace": "company.team",
                "flowId": "fanout",
                "task": {
                    "executionId": "e1", "taskRunId": "tr1", "attempt": 1, "taskId": "t",
                    "taskType": "io.kestra.plugin.core.debug.Return", "properties": {},
                    "context": {}, "seed": 1,
                    "workingDirectory": {"taskRunId": "w", "first": true, "properties": {}},
                },
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let message = r.json::<Value>().await.unwrap()["message"].to_string();
    assert!(message.contains("WorkingDirectory"), "{message}");
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/worker/attempts", b.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_run_in_process_when_the_pool_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store").display().to_string();
    // nothing listens there
    let closed = format!("http://127.0.0.1:{}", free_port());
    let a = Instance::start_on(
        &store,
        "127.0.0.1:0",
        0,
        &[
            ("WEFT_AUTH_TOKEN", TOKEN),
            ("WEFT_DISPATCH", "http"),
            ("WEFT_DISPATCH_URL", &closed),
        ],
    );
    let http = client();
    let base = format!("{}/api/v1", a.url);
    create_flow_at(&http, &base, FLOW).await;
    run_and_check(&http, &base).await;

    let on_a = metrics(&http, &a.url).await;
    assert_eq!(
        sample(
            &on_a,
            "weft_attempt_dispatch_fallbacks_total{reason=\"connect\"}"
        ),
        Some(ATTEMPTS),
        "{on_a:?}"
    );
    assert_eq!(
        sample(&on_a, "weft_attempts_dispatched_total"),
        Some(0),
        "{on_a:?}"
    );
}
