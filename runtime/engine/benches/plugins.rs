#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::field_reassign_with_default
)]
//! Plugin engine figures (prints them; asserts nothing). Run with
//! `cargo bench -p weft-engine --bench plugins`.
//!
//! 1. instantiate + run of the core Return task, per attempt, with and without pooling;
//! 2. first attempt in a fresh process with a cold and a warm precompiled cache;
//! 3. sha256 of 10 MiB in the fixture guest (epochs only, epochs + fuel) vs the same code native.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest as _;
use weft_engine::{
    AttemptRequest, Engine, EngineConfig, MemoryHost, Pooling, Registry, TaskContext,
};

const CHILD: &str = "WEFT_BENCH_FIRST_ATTEMPT";

fn config(pooling: Pooling, fuel: bool) -> EngineConfig {
    let mut c = EngineConfig::default();
    c.pooling = pooling;
    c.consume_fuel = fuel;
    c.cache_dir = None;
    c
}

fn return_req(host: &Arc<MemoryHost>) -> AttemptRequest {
    AttemptRequest::new(
        "io.kestra.plugin.core.debug.Return",
        json!({ "format": "hello" }),
        TaskContext::example(),
        host.clone(),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn return_attempts(pooling: Pooling, keep_resident: usize, n: usize) {
    let mut c = config(pooling, true);
    c.pool_keep_resident_bytes = keep_resident;
    let engine = Engine::new(c).expect("engine");
    let registry = Registry::load_default(&engine, Some(std::path::Path::new("/nonexistent")))
        .await
        .expect("core plugin");
    let host = Arc::new(MemoryHost::new());
    for _ in 0..200 {
        let _ = registry.run_attempt(return_req(&host)).await;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let out = registry.run_attempt(return_req(&host)).await;
        times.push(t.elapsed());
        assert!(out.result.is_ok());
    }
    times.sort();
    println!(
        "return attempt (instantiate+run), pooling {:<3} (active: {}, {:>4} KiB kept resident): p50 {}  p99 {}  ({n} attempts)",
        format!("{pooling:?}").to_lowercase(),
        engine.pooling(),
        keep_resident >> 10,
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
    );
}

/// In a child process: engine + core plugin load + one Return attempt, from process start.
async fn child_first_attempt(start: Instant) {
    let engine = Engine::new(EngineConfig::from_env()).expect("engine");
    let registry = Registry::load_default(&engine, Some(std::path::Path::new("/nonexistent")))
        .await
        .expect("core plugin");
    let out = registry
        .run_attempt(return_req(&Arc::new(MemoryHost::new())))
        .await;
    assert!(out.result.is_ok());
    println!("{}", start.elapsed().as_nanos());
}

fn first_attempt(cache: &std::path::Path) -> Duration {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env(CHILD, "1")
        .env("WEFT_CACHE_DIR", cache)
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    let nanos: u64 = text
        .trim()
        .lines()
        .last()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 7)) as u8
}

fn native_sha(mib: usize) -> String {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let total = mib << 20;
    let mut done = 0;
    while done < total {
        for (j, b) in buf.iter_mut().enumerate() {
            *b = pattern(done + j);
        }
        h.update(&buf);
        done += buf.len();
    }
    hex::encode(h.finalize())
}

async fn sha_in_wasm(fuel: bool, runs: usize) -> (Duration, String) {
    let engine = Engine::new(config(Pooling::Auto, fuel)).expect("engine");
    let mut registry = Registry::new(&engine);
    registry
        .add_file(std::path::Path::new(weft_plugins::FIXTURES_PATH))
        .await
        .expect("fixtures");
    let host = Arc::new(MemoryHost::new());
    let mut times = Vec::new();
    let mut digest = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = registry
            .run_attempt(AttemptRequest::new(
                "weft.test.Misbehave",
                json!({ "action": "sha256", "n": 10 }),
                TaskContext::example(),
                host.clone(),
            ))
            .await;
        times.push(t.elapsed());
        digest = out.result.expect("sha")["result"]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    times.sort();
    (times[times.len() / 2], digest)
}

fn main() {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var_os(CHILD).is_some() {
        rt.block_on(child_first_attempt(start));
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "weft plugin engine benchmark (wasmtime 48, {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    rt.block_on(async {
        let keep = EngineConfig::default().pool_keep_resident_bytes;
        // in turns, so that a slower stretch of this shared machine does not favour one setting
        for _ in 0..2 {
            return_attempts(Pooling::On, keep, 5000).await;
            return_attempts(Pooling::On, 0, 5000).await;
        }
        return_attempts(Pooling::Off, 0, 5000).await;
    });

    let cache = std::env::temp_dir().join(format!("weft-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cold = first_attempt(&cache);
    let mut warm: Vec<Duration> = (0..5).map(|_| first_attempt(&cache)).collect();
    warm.sort();
    let _ = std::fs::remove_dir_all(&cache);
    println!(
        "first attempt in a fresh process (engine + core plugin + Return): cold cache {}  warm cache {} (median of 5)",
        ms(cold),
        ms(warm[2])
    );

    let mut native = Vec::new();
    let mut native_digest = String::new();
    for _ in 0..5 {
        let t = Instant::now();
        native_digest = native_sha(10);
        native.push(t.elapsed());
    }
    native.sort();
    let native = native[2];
    let (epochs, d1) = rt.block_on(sha_in_wasm(false, 5));
    let (fuel, d2) = rt.block_on(sha_in_wasm(true, 5));
    assert_eq!(d1, native_digest);
    assert_eq!(d2, native_digest);
    println!(
        "sha256 of 10 MiB: native ({}) {}  wasm+epochs {} ({:.2}x)  wasm+epochs+fuel {} ({:.2}x)",
        if cfg!(feature = "bench-soft-sha") {
            "sha2's portable code, as in the guest"
        } else {
            "sha2 with the CPU's SHA extensions if any; --features bench-soft-sha for the guest's code"
        },
        ms(native),
        ms(epochs),
        epochs.as_secs_f64() / native.as_secs_f64(),
        ms(fuel),
        fuel.as_secs_f64() / native.as_secs_f64()
    );
}
