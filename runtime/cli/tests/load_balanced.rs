#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! weft as it runs in production (DESIGN.md §6), end to end: a real S3-compatible server (moto,
//! or `WEFT_TEST_S3_ENDPOINT`), three `weft server` processes on 127.0.0.1 ticking every second,
//! and haproxy (Debian's package; `tests/run` and `.ci/run` install it) in front of them.
//!
//! - 500 webhook calls of a 5-task flow with a ForEach are sent through haproxy, 32 at a time,
//!   each with its own `Idempotency-Key`. Halfway, one server is killed with SIGKILL and started
//!   again on the same port 2 s later. A call answered with an error (the killed server's
//!   connections) is sent again with the same key, as any client retries.
//! - Meanwhile a schedule fires every second on all three instances.
//! - Then, through haproxy: every call made exactly one execution, all ended SUCCESS, every task
//!   run has its output; each second of the schedule made exactly one execution.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Instance, create_flow, env_refs, free_port, json_of, s3_env};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use weft_store::testing::TestS3;

const CALLS: usize = 500;
const AT_ONCE: usize = 32;
const NAMESPACE: &str = "e2e.lb";

const ORDERS: &str = r#"id: orders
namespace: e2e.lb
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: lb-test-key
tasks:
  - id: receive
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body.n }}"
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c"]
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.receive.value }}-{{ taskrun.value }}"
  - id: note
    type: io.kestra.plugin.core.log.Log
    message: "order {{ outputs.receive.value }}"
  - id: done
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.receive.value }} done"
"#;

const EVERY_SECOND: &str = r#"id: every-second
namespace: e2e.lb
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }}"
"#;

/// haproxy, from PATH or Debian's /usr/sbin.
fn haproxy_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "haproxy is not installed: `apt-get install haproxy` (tests/run does it when it can)"
        )
    })
}

/// haproxy on `port`, round robin over `servers`, health-checked every 500 ms. A request that
/// could not reach a server is sent to another one (`retry-on conn-failure`, `redispatch`).
struct Balancer(Child);

impl Balancer {
    fn start(dir: &Path, port: u16, servers: &[u16]) -> Balancer {
        let mut config = format!(
            "global\n  maxconn 1024\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  \
             timeout server 60s\n  retries 3\n  option redispatch 1\n  \
             retry-on conn-failure empty-response\n\
             frontend weft\n  bind 127.0.0.1:{port}\n  default_backend pool\n\
             backend pool\n  balance roundrobin\n  option httpchk GET /health\n"
        );
        for (i, p) in servers.iter().enumerate() {
            config.push_str(&format!(
                "  server weft{i} 127.0.0.1:{p} check inter 500ms fall 1 rise 1\n"
            ));
        }
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Balancer(child)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends webhook call `n` until it is answered with a success; returns how many times it was
/// sent again.
async fn call(http: &reqwest::Client, lb: &str, n: usize) -> usize {
    let url = format!("{lb}/api/v1/executions/webhook/{NAMESPACE}/orders/lb-test-key");
    let mut retries = 0;
    loop {
        let sent = http
            .post(&url)
            .header("idempotency-key", format!("order-{n}"))
            .json(&json!({ "n": n }))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return retries,
            Ok(r) if r.status().is_client_error() => {
                panic!("call {n}: {} {}", r.status(), r.text().await.unwrap())
            }
            _ => {}
        }
        retries += 1;
        assert!(retries < 50, "call {n} never succeeded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn search(http: &reqwest::Client, lb: &str, flow: &str) -> Vec<Value> {
    let found: Value = json_of(http.get(format!(
        "{lb}/api/v1/executions/search?namespace={NAMESPACE}&flowId={flow}&size=1000"
    )))
    .await;
    found["results"].as_array().cloned().unwrap_or_default()
}

/// The sum of a counter of the instances' `/metrics` (the killed process's counts are lost).
async fn counter(http: &reqwest::Client, pool: &[Instance], name: &str) -> u64 {
    let mut total = 0;
    for instance in pool {
        let text = http
            .get(format!("{}/metrics", instance.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += text
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    total
}

fn output<'a>(exec: &'a Value, task: &str, value: Option<&str>) -> Option<&'a str> {
    exec["taskRunList"]
        .as_array()?
        .iter()
        .find(|r| r["taskId"] == task && value.is_none_or(|v| r["value"] == v))?["outputs"]["value"]
        .as_str()
}

/// What is wrong with the execution of call `n`, if anything.
fn check_order(exec: &Value, n: &str) -> Option<String> {
    if exec["state"]["current"] != "SUCCESS" {
        return Some(format!("ended {}", exec["state"]["current"]));
    }
    let mut expected = vec![("receive", None, n.to_string())];
    for v in ["a", "b", "c"] {
        expected.push(("item", Some(v), format!("{n}-{v}")));
    }
    expected.push(("done", None, format!("{n} done")));
    for (task, value, want) in expected {
        let got = output(exec, task, value);
        if got != Some(want.as_str()) {
            return Some(format!("{task} {value:?}: output {got:?}, expected {want}"));
        }
    }
    let runs = exec["taskRunList"].as_array().map_or(0, Vec::len);
    (runs != 7).then(|| format!("{runs} task runs, expected 7"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_behind_haproxy_survive_a_sigkill_and_run_every_call_once() {
    let s3 = TestS3::start().expect("an S3-compatible server (tests/s3-server installs moto)");
    let bucket = s3.bucket("lb").await.unwrap();
    let storage = format!("s3://{}/weft", bucket.bucket());
    let owned_env = s3_env(&s3);
    let env = env_refs(&owned_env);

    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let start = |port: u16| Instance::start_on(&storage, &format!("127.0.0.1:{port}"), 1, &env);
    let mut pool: Vec<Instance> = ports.iter().map(|p| start(*p)).collect();
    let lb_port = free_port();
    let _balancer = Balancer::start(dir.path(), lb_port, &ports);
    let lb = format!("http://127.0.0.1:{lb_port}");
    let http = reqwest::Client::new();

    for flow in [ORDERS, EVERY_SECOND] {
        create_flow(&http, &lb, flow).await;
    }

    // the second server is killed when half of the calls were answered, and started again on
    // its port 2 s later
    let began = Instant::now();
    let answered = Arc::new(AtomicUsize::new(0));
    let mut victim = pool.remove(1);
    let killer = {
        let answered = answered.clone();
        let (storage, port, env) = (storage.clone(), ports[1], owned_env.clone());
        tokio::spawn(async move {
            while answered.load(Ordering::SeqCst) < CALLS / 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            victim.kill();
            println!(
                "SIGKILL of server 1 after {:.1} s, {} calls answered",
                began.elapsed().as_secs_f64(),
                answered.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            tokio::task::spawn_blocking(move || {
                Instance::start_on(&storage, &format!("127.0.0.1:{port}"), 1, &env_refs(&env))
            })
            .await
            .unwrap()
        })
    };

    // 500 calls, 32 at a time
    let retries = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(AT_ONCE));
    let mut calls = Vec::new();
    for n in 0..CALLS {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (http, lb, answered, retries) =
            (http.clone(), lb.clone(), answered.clone(), retries.clone());
        calls.push(tokio::spawn(async move {
            retries.fetch_add(call(&http, &lb, n).await, Ordering::SeqCst);
            answered.fetch_add(1, Ordering::SeqCst);
            drop(permit);
        }));
    }
    for c in calls {
        c.await.unwrap();
    }
    println!(
        "{CALLS} calls answered in {:.1} s, {} sent again after an error",
        began.elapsed().as_secs_f64(),
        retries.load(Ordering::SeqCst)
    );
    pool.push(killer.await.unwrap());

    // every execution ends: those of the killed server are taken over by a tick once their
    // lease expired (3 s)
    let deadline = Instant::now() + Duration::from_secs(300);
    let orders = loop {
        let found = search(&http, &lb, "orders").await;
        let ended = found
            .iter()
            .filter(|e| {
                !matches!(
                    e["state"]["current"].as_str(),
                    Some("CREATED" | "RUNNING" | "PAUSED" | "RESTARTED")
                )
            })
            .count();
        if ended >= CALLS || Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let taken_over = counter(&http, &pool, "weft_executions_taken_over_total").await;
    println!(
        "{} executions of `orders` ended {:.1} s after the first call; {taken_over} executions taken over from the killed server; {} storage requests, {} conflicts",
        orders.len(),
        began.elapsed().as_secs_f64(),
        counter(&http, &pool, "weft_storage_requests_total").await,
        counter(&http, &pool, "weft_storage_conflicts_total").await,
    );
    assert!(
        taken_over > 0,
        "the killed server held no execution: nothing was tested"
    );
    let r = http
        .delete(format!("{lb}/api/v1/flows/{NAMESPACE}/every-second"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // each call made exactly one execution, which ran every task once with its outputs
    let mut by_call: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for exec in &orders {
        let n = exec["trigger"]["variables"]["body"]["n"].to_string();
        by_call.entry(n).or_default().push(exec);
    }
    let twice: Vec<_> = by_call.iter().filter(|(_, e)| e.len() > 1).collect();
    let wrong: Vec<String> = by_call
        .iter()
        .filter_map(|(n, e)| check_order(e[0], n).map(|why| format!("call {n}: {why}")))
        .collect();
    let succeeded = orders
        .iter()
        .filter(|e| e["state"]["current"] == "SUCCESS")
        .count();
    println!(
        "executions: {} for {} distinct calls of {CALLS}, {succeeded} SUCCESS, {} calls with more than one, {} wrong",
        orders.len(),
        by_call.len(),
        twice.len(),
        wrong.len()
    );
    assert!(
        twice.is_empty(),
        "calls that made two executions: {twice:?}"
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(by_call.len(), CALLS, "calls that made no execution");

    // the schedule: one execution per second, none missing, none twice
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired = search(&http, &lb, "every-second").await;
    let mut by_date: BTreeMap<i64, usize> = BTreeMap::new();
    for exec in &fired {
        assert_eq!(exec["state"]["current"], "SUCCESS", "{exec:#}");
        let date = exec["trigger"]["variables"]["date"].as_str().unwrap();
        *by_date
            .entry(
                chrono::DateTime::parse_from_rfc3339(date)
                    .unwrap()
                    .timestamp(),
            )
            .or_default() += 1;
    }
    let dates: Vec<i64> = by_date.keys().copied().collect();
    let gaps = dates.windows(2).filter(|w| w[1] - w[0] != 1).count();
    let doubles = by_date.values().filter(|n| **n > 1).count();
    println!(
        "schedule every second on 3 instances: {} dates over {} s, {} executions, {doubles} dates fired twice, {gaps} gaps",
        by_date.len(),
        dates.last().unwrap_or(&0) - dates.first().unwrap_or(&0) + 1,
        fired.len()
    );
    assert_eq!(doubles, 0, "{by_date:?}");
    assert_eq!(gaps, 0, "a second without its execution: {dates:?}");
    assert!(by_date.len() >= 3, "the schedule hardly fired: {dates:?}");
    drop(pool);
}
