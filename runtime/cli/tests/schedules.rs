#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! A schedule ticking every second, with three real `weft server` processes on one local store
//! each ticking every second: every date fires exactly once, with the trigger's variables.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Instance, create_flow, json_of};
use serde_json::Value;

const FLOW: &str = r#"id: every-second
namespace: company.team
inputs:
  - id: when
    type: STRING
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    inputs:
      when: "{{ trigger.date }}"
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.when }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_fire_each_date_of_a_schedule_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let http = reqwest::Client::new();
    let pool: Vec<Instance> = (0..3).map(|_| Instance::start(&store, 1)).collect();

    create_flow(&http, &pool[0].url, FLOW).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = http
        .delete(format!(
            "{}/api/v1/flows/company.team/every-second",
            pool[1].url
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // let the executions of the last dates end
    tokio::time::sleep(Duration::from_secs(3)).await;

    let found: Value = json_of(http.get(format!(
        "{}/api/v1/executions/search?namespace=company.team&flowId=every-second&size=1000",
        pool[2].url
    )))
    .await;
    let mut by_date: BTreeMap<String, usize> = BTreeMap::new();
    for exec in found["results"].as_array().unwrap() {
        assert_eq!(exec["state"]["current"], "SUCCESS", "{exec:#}");
        let date = exec["trigger"]["variables"]["date"]
            .as_str()
            .unwrap()
            .to_string();
        let echo = exec["taskRunList"][0]["outputs"]["value"].as_str().unwrap();
        assert_eq!(echo, date, "the input renders trigger.date");
        assert_eq!(exec["trigger"]["id"], "tick");
        *by_date.entry(date).or_default() += 1;
    }
    let fired = by_date.len();
    let twice: Vec<_> = by_date.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "3 instances ticking every second for 6 s: {fired} dates fired, {} executions, {} fired twice",
        found["total"],
        twice.len()
    );
    assert!(twice.is_empty(), "fired more than once: {twice:?}");
    assert!((4..=8).contains(&fired), "{fired} dates fired in about 6 s");
    // one date per second, none skipped
    let seconds: Vec<i64> = by_date
        .keys()
        .map(|d| chrono::DateTime::parse_from_rfc3339(d).unwrap().timestamp())
        .collect();
    assert!(
        seconds.windows(2).all(|w| w[1] - w[0] == 1),
        "a date is missing: {seconds:?}"
    );
}
