//! `cargo bench -p weft --bench http`: a real `weft server` process (the release binary) under
//! load from a Rust client on loopback, on the local store and on a real S3-compatible server
//! (moto, started here; skipped when it cannot start, or `WEFT_TEST_S3_ENDPOINT`).
//!
//! - **Throughput and latency**: `POST /api/v1/executions/{ns}/{flow}?wait=true` of a 2-task flow,
//!   open loop (each request is sent at its planned time whatever the answers, and its latency
//!   is measured from that time, so a stalled server is not hidden), at a rising rate until the
//!   server falls behind: the p99 over 1 s, more than 1% errors, or fewer executions per second
//!   than 90% of the rate asked.
//! - **Cold start**: from spawning the process to the answer of the first webhook call
//!   (`?wait=true`, the execution ended), on a store that holds the flow; the median of 10.
//! - **Search**: then, over the executions the load left, `GET /executions/search` without and
//!   with a `state` filter; the median of 5.
//!
//! `WEFT_BENCH_SECONDS` (default 5) is how long each rate is held; `WEFT_BENCH_RATES` (comma
//! separated, default `50,100,200,300,400,600,800,1000,1500`) the rates tried. The local store
//! is a temporary folder: `TMPDIR=/dev/shm` puts it in memory (its `fsync`s then cost nothing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Instance, create_flow, env_refs, free_port, json_of, s3_env, server_command};
use tokio::sync::Mutex;

const FLOW: &str = r#"id: two
namespace: bench
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: bench-key
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.first.value }} again"
"#;

/// Environment of the benchmarked servers: no tick, warnings only.
const SERVER_ENV: [(&str, &str); 2] = [("WEFT_TICK_INTERVAL_SECS", "0"), ("RUST_LOG", "warn")];

fn server(storage: &str, listen: &str, env: &[(String, String)]) -> std::process::Command {
    let mut all = SERVER_ENV.to_vec();
    all.extend(env_refs(env));
    server_command(storage, listen, &all)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One rate held for `secs`: (executions per second answered SUCCESS, p50, p99, errors).
async fn hold(
    http: &reqwest::Client,
    url: &str,
    rate: u32,
    secs: u64,
) -> (f64, Duration, Duration, usize) {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let total = rate as u64 * secs;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let planned = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(planned.into()).await;
        let (http, url, latencies, errors) = (
            http.clone(),
            url.to_string(),
            latencies.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let answer = http
                .post(format!("{url}/api/v1/executions/bench/two?wait=true"))
                .send()
                .await;
            let ok = match answer {
                Ok(r) if r.status().is_success() => r
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|e| e["state"]["current"] == "SUCCESS"),
                _ => false,
            };
            if ok {
                latencies.lock().await.push(planned.elapsed());
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let mut l = latencies.lock().await.clone();
    l.sort();
    let per_sec = l.len() as f64 / elapsed.as_secs_f64();
    (
        per_sec,
        percentile(&l, 0.50),
        percentile(&l, 0.99),
        errors.load(std::sync::atomic::Ordering::Relaxed),
    )
}

async fn rising_rate(label: &str, storage: &str, env: &[(String, String)]) {
    let server = Instance::spawn(server(storage, "127.0.0.1:0", env));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .build()
        .unwrap();
    create_flow(&http, &server.url, FLOW).await;
    // warm up: plugin instances, connections, the flow cache of the store
    let _ = hold(&http, &server.url, 20, 1).await;
    let secs: u64 = std::env::var("WEFT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rates: Vec<u32> = std::env::var("WEFT_BENCH_RATES")
        .ok()
        .map(|s| s.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![50, 100, 200, 300, 400, 600, 800, 1000, 1500]);
    println!("\n{label}: 2-task flow, POST ?wait=true, open loop, {secs} s per rate");
    println!("| rate asked /s | executions/s | p50 ms | p99 ms | errors |");
    println!("|---:|---:|---:|---:|---:|");
    for rate in rates {
        let (per_sec, p50, p99, errors) = hold(&http, &server.url, rate, secs).await;
        println!(
            "| {rate} | {per_sec:.0} | {:.1} | {:.1} | {errors} |",
            ms(p50),
            ms(p99)
        );
        let sent = (u64::from(rate) * secs) as f64;
        if ms(p99) > 1000.0 || errors as f64 > sent * 0.01 || per_sec < f64::from(rate) * 0.9 {
            println!("(the server fell behind at {rate}/s: stopped)");
            break;
        }
    }
    search(&http, &server.url).await;
}

/// Times a search of the executions the load left (first page of 10; median of 5), without
/// and with a `state` filter (which reads each index entry).
async fn search(http: &reqwest::Client, url: &str) {
    for filter in ["", "&state=SUCCESS"] {
        let mut times = Vec::new();
        let mut total = 0;
        for _ in 0..5 {
            let began = Instant::now();
            let page: serde_json::Value = json_of(http.get(format!(
                "{url}/api/v1/executions/search?namespace=bench&size=10{filter}"
            )))
            .await;
            times.push(began.elapsed());
            total = page["total"].as_u64().unwrap_or(0);
        }
        times.sort();
        println!(
            "search `namespace=bench{filter}` over {total} executions: median {:.1} ms (min {:.1}, max {:.1})",
            ms(times[2]),
            ms(times[0]),
            ms(times[4])
        );
    }
}

/// Spawn to the first webhook execution answered, `runs` times, on a store holding the flow.
async fn cold_start(storage: &str, runs: usize) -> Vec<Duration> {
    let http = reqwest::Client::new();
    {
        let server = Instance::spawn(server(storage, "127.0.0.1:0", &[]));
        create_flow(&http, &server.url, FLOW).await;
    }
    let mut times = Vec::new();
    for _ in 0..runs {
        let port = free_port();
        let url = format!(
            "http://127.0.0.1:{port}/api/v1/executions/webhook/bench/two/bench-key?wait=true"
        );
        let began = Instant::now();
        let mut child = server(storage, &format!("127.0.0.1:{port}"), &[])
            .spawn()
            .unwrap();
        let took = loop {
            match http.post(&url).send().await {
                Ok(r) if r.status().is_success() => break began.elapsed(),
                Ok(r) => panic!("cold start: {}", r.status()),
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "the server never answered"
            );
        };
        times.push(took);
        let _ = child.kill();
        let _ = child.wait();
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("store").display().to_string();

    let cold = cold_start(&dir.path().join("cold").display().to_string(), 10).await;
    println!(
        "cold start (spawn to the first webhook execution ended, local store, 10 runs): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(cold[cold.len() / 2]),
        ms(cold[0]),
        ms(cold[cold.len() - 1])
    );

    rising_rate("local store", &local, &[]).await;

    match weft_store::testing::TestS3::start() {
        Ok(s3) => {
            let bucket = match s3.bucket("bench-http").await {
                Ok(b) => b,
                Err(e) => return println!("\nS3: skipped ({e})"),
            };
            let storage = format!("s3://{}/bench", bucket.bucket());
            rising_rate("S3 (moto on loopback)", &storage, &s3_env(&s3)).await;
        }
        Err(e) => println!("\nS3: skipped ({e})"),
    }
}
