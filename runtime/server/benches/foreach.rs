#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! End-to-end orchestration speed (prints figures; asserts nothing). Run with
//! `cargo bench -p weft-server --bench foreach`.
//!
//! A ForEach over 1,000 and over 10,000 values with a `Return` inside (`format:
//! "{{ taskrun.value }}"`), sequential (`concurrencyLimit: 1`) and unlimited (`0`), and 40
//! sequential `Return` tasks: each run in-process through the driver of `weft run`, every
//! attempt in the WASM engine, on the local store in a temporary folder (on disk, `fsync` on).
//! Each case runs in a process of its own (this binary again), so that its peak memory (the
//! kernel's `VmHWM`) is its own. Figures: total time, task runs per second, time per task run,
//! peak memory, storage PUTs and the stored execution (head and chunks) at the end.
//!
//! `WEFT_BENCH_FLUSH_MS` sets the flush interval (default: the runner's, 100 ms); `0` writes
//! every step at once, as before writes were coalesced. `WEFT_BENCH_CASES=1000,10000` picks the
//! ForEach sizes.

use std::process::Command;
use std::time::{Duration, Instant};

use weft_server::runner::{Catalog, DEFAULT_FLUSH_INTERVAL, Runner, StartRequest};
use weft_server::setup::Setup;

const CASE_ENV: &str = "WEFT_BENCH_FOREACH_CASE";

fn foreach_flow(values: usize, limit: u32) -> String {
    let values: Vec<String> = (0..values).map(|i| i.to_string()).collect();
    format!(
        "id: foreach\nnamespace: weft.bench\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    concurrencyLimit: {limit}\n    values: [{}]\n    tasks:\n      - id: r\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ taskrun.value }}}}\"\n",
        values.join(", ")
    )
}

fn sequential_flow(tasks: usize) -> String {
    let mut yaml = String::from("id: foreach\nnamespace: weft.bench\ntasks:\n");
    for i in 0..tasks {
        yaml.push_str(&format!(
            "  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: \"task {i}\"\n"
        ));
    }
    yaml
}

/// The kernel's figure for this process, in KiB (`VmHWM`: peak resident memory).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn flush_interval() -> Duration {
    std::env::var("WEFT_BENCH_FLUSH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_FLUSH_INTERVAL, Duration::from_millis)
}

/// Runs one case in this process and prints its row.
fn run_case(case: &str) {
    let (label, yaml) = match case.split_once(':') {
        Some(("seq", n)) => (
            format!("{n} sequential Return"),
            sequential_flow(n.parse().unwrap()),
        ),
        Some((limit, n)) => {
            let limit: u32 = limit.parse().unwrap();
            let mode = if limit == 1 {
                "`concurrencyLimit: 1`"
            } else {
                "unlimited (`0`)"
            };
            (
                format!("ForEach {n}, {mode}"),
                foreach_flow(n.parse().unwrap(), limit),
            )
        }
        None => panic!("bad case {case}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (setup, _) = Setup::load(None).await.expect("plugins");
        let flow = weft_flow::parse_flow(&yaml, &setup.registry)
            .map(|p| p.flow)
            .unwrap_or_else(|d| panic!("the bench flow does not validate: {d:?}"));
        let dir = tempfile::tempdir().expect("tempdir");
        let store = weft_store::open(&format!("file://{}", dir.path().display()))
            .await
            .expect("local store");
        let run = |store| {
            let mut catalog = Catalog::default();
            catalog
                .add(&flow, &setup.registry, setup.renderer.clone())
                .expect("catalog");
            Runner::new(
                setup.engine.clone(),
                store,
                setup.renderer.clone(),
                catalog,
            )
            .with_flush_interval(flush_interval())
        };
        // a warm-up run of a small flow: the plugin's instance pool fills
        let warm = tempfile::tempdir().expect("tempdir");
        let warm_store = weft_store::open(&format!("file://{}", warm.path().display()))
            .await
            .expect("local store");
        let mut warm_catalog = Catalog::default();
        let small = weft_flow::parse_flow(&foreach_flow(20, 0), &setup.registry)
            .unwrap()
            .flow;
        warm_catalog
            .add(&small, &setup.registry, setup.renderer.clone())
            .unwrap();
        Runner::new(
            setup.engine.clone(),
            warm_store,
            setup.renderer.clone(),
            warm_catalog,
        )
        .run("weft.bench", "foreach", StartRequest::default())
        .await
        .expect("warm-up");

        let runner = run(store.clone());
        let before = store.stats().snapshot();
        let started = Instant::now();
        let exec = runner
            .run("weft.bench", "foreach", StartRequest::default())
            .await
            .expect("run");
        let secs = started.elapsed().as_secs_f64();
        let spent = store.stats().snapshot().since(&before);
        assert_eq!(exec.state.current.as_str(), "SUCCESS", "{label}");
        let runs = exec.task_run_list.len();
        let head = store
            .get(&weft_store::repo::execution_key(&exec.id).unwrap())
            .await
            .expect("head")
            .bytes
            .len();
        let stored: u64 = store
            .list_all(&format!("executions/{}", exec.id))
            .await
            .expect("list")
            .iter()
            .map(|e| e.size)
            .sum();
        let json = serde_json::to_vec(&exec).expect("json").len();
        println!(
            "| {label} | {runs} | {:.0} | {:.0} | {:.1} | {:.1} MiB | {} | {:.1} KiB / {:.1} MiB | {:.1} MiB |",
            secs * 1e3,
            runs as f64 / secs,
            secs * 1e6 / runs as f64,
            status_kib("VmHWM:") as f64 / 1024.0,
            spent.put,
            head as f64 / 1024.0,
            stored as f64 / (1024.0 * 1024.0),
            json as f64 / (1024.0 * 1024.0),
        );
    });
}

fn main() {
    if let Ok(case) = std::env::var(CASE_ENV) {
        return run_case(&case);
    }
    let sizes: Vec<String> = std::env::var("WEFT_BENCH_CASES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(str::to_string)
        .collect();
    println!("flush interval: {} ms", flush_interval().as_millis());
    println!(
        "| case | task runs | total ms | task runs/s | µs per task run | peak memory | PUTs | head / stored | execution JSON |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut cases = vec!["seq:40".to_string()];
    for n in &sizes {
        cases.push(format!("1:{n}"));
        cases.push(format!("0:{n}"));
    }
    let me = std::env::current_exe().expect("this bench");
    for case in cases {
        let status = Command::new(&me)
            .env(CASE_ENV, &case)
            .status()
            .expect("run a case");
        assert!(status.success(), "case {case} failed");
    }
}
