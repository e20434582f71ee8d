#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Listing cost of the local store (prints figures; asserts nothing). Run with
//! `cargo bench -p weft-store --bench list`.
//!
//! `WEFT_BENCH_KEYS` (default 25,000) small objects in one folder, as an execution index of one
//! flow holds them, in a temporary local store on disk; then `list_all` of the folder (pages of
//! 1,000) and the first page alone, five times each: the median, min and max.

use std::time::{Duration, Instant};

use bytes::Bytes;
use weft_store::{Condition, Key, ListOptions};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what}: median {:.1} ms (min {:.1}, max {:.1})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
}

#[tokio::main]
async fn main() {
    let keys: usize = std::env::var("WEFT_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000);
    let dir = tempfile::tempdir().unwrap();
    let store = weft_store::open(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    let began = Instant::now();
    for i in 0..keys {
        let key = Key::new(format!("index/f/2026-12-07T00:00:00.{i:06}Z-e{i}")).unwrap();
        store
            .put(&key, Bytes::from_static(b"{}"), Condition::None)
            .await
            .unwrap();
    }
    println!(
        "{keys} objects written in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    let mut all = Vec::new();
    let mut first = Vec::new();
    for _ in 0..5 {
        let began = Instant::now();
        let listed = store.list_all("index/f/").await.unwrap();
        all.push(began.elapsed());
        assert_eq!(listed.len(), keys);
        let began = Instant::now();
        let page = store
            .list("index/f/", ListOptions::default())
            .await
            .unwrap();
        first.push(began.elapsed());
        assert!(!page.entries.is_empty());
    }
    report(&format!("list_all of {keys} keys"), all);
    report("its first page (1,000 keys)", first);
}
