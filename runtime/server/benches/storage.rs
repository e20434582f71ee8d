#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Storage cost of running flows (prints figures; asserts nothing). Run with
//! `cargo bench -p weft-server --bench storage` (moto must be installed for the S3 rows:
//! `tests/s3-server` installs it; `WEFT_TEST_S3_ENDPOINT` points the bench at another server).
//!
//! For 40 sequential `Return` tasks and for a ForEach over 1,000 values with a `Return` inside, on
//! the local store and on a real S3-compatible server (moto on loopback): storage requests and
//! bytes written per task run, time per task run, and the size of the execution document at the
//! end. Each execution runs in-process through the same driver as `weft run`.

use std::sync::Arc;
use std::time::Instant;

use weft_server::runner::{Catalog, Runner, StartRequest};
use weft_server::setup::Setup;
use weft_store::DynStore;
use weft_store::repo::execution_key;
use weft_store::testing::TestS3;

const SEQUENTIAL: usize = 40;
const FOREACH: usize = 1000;

fn sequential_flow() -> String {
    let mut yaml = String::from("id: sequential\nnamespace: weft.bench\ntasks:\n");
    for i in 0..SEQUENTIAL {
        yaml.push_str(&format!(
            "  - id: t{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: \"task {i}\"\n"
        ));
    }
    yaml
}

fn foreach_flow() -> String {
    let values: Vec<String> = (0..FOREACH).map(|i| i.to_string()).collect();
    format!(
        "id: foreach\nnamespace: weft.bench\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [{}]\n    tasks:\n      - id: r\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ taskrun.value }}}}\"\n",
        values.join(", ")
    )
}

struct Figures {
    task_runs: usize,
    millis: f64,
    requests: u64,
    puts: u64,
    gets: u64,
    bytes_written: u64,
    document: usize,
}

async fn run_once(setup: &Setup, store: &DynStore, yaml: &str, id: &str) -> Figures {
    let flow = weft_flow::parse_flow(yaml, &setup.registry)
        .map(|p| p.flow)
        .unwrap_or_else(|d| panic!("the bench flow does not validate: {d:?}"));
    let mut catalog = Catalog::default();
    catalog
        .add(&flow, &setup.registry, setup.renderer.clone())
        .expect("catalog");
    let runner = Runner::new(
        setup.engine.clone(),
        store.clone(),
        setup.renderer.clone(),
        catalog,
    );
    let before = store.stats().snapshot();
    let started = Instant::now();
    let exec = runner
        .run("weft.bench", id, StartRequest::default())
        .await
        .expect("run");
    let millis = started.elapsed().as_secs_f64() * 1e3;
    let spent = store.stats().snapshot().since(&before);
    assert_eq!(
        exec.state.current.as_str(),
        "SUCCESS",
        "{id} did not succeed"
    );
    let document = store
        .get(&execution_key(&exec.id).unwrap())
        .await
        .expect("document")
        .bytes
        .len();
    Figures {
        task_runs: exec.task_run_list.len(),
        millis,
        requests: spent.total(),
        puts: spent.put,
        gets: spent.get,
        bytes_written: spent.bytes_written,
        document,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bench_store(setup: &Setup, name: &str, store: DynStore) {
    let cases = [
        ("40 sequential Return", sequential_flow(), "sequential", 5),
        ("ForEach over 1,000 values", foreach_flow(), "foreach", 1),
    ];
    for (label, yaml, id, runs) in cases {
        // one warm-up run: the plugin instance pool and the renderer's caches fill
        let _ = run_once(setup, &store, &yaml, id).await;
        let mut all = Vec::new();
        for _ in 0..runs {
            all.push(run_once(setup, &store, &yaml, id).await);
        }
        let f = &all[all.len() / 2];
        let per = |x: u64| x as f64 / f.task_runs as f64;
        let ms_per_run = median(all.iter().map(|f| f.millis / f.task_runs as f64).collect());
        println!(
            "| {name} | {label} | {} | {:.2} ({} GET, {} PUT) | {:.1} KiB | {ms_per_run:.2} ms | {:.0} ms | {:.1} KiB |",
            f.task_runs,
            per(f.requests),
            f.gets,
            f.puts,
            per(f.bytes_written) / 1024.0,
            median(all.iter().map(|f| f.millis).collect()),
            f.document as f64 / 1024.0,
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (setup, _) = Setup::load(None).await.expect("plugins");
        println!(
            "| store | flow | task runs | requests per task run | bytes written per task run | time per task run | total | execution document |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        let dir = tempfile::tempdir().expect("tempdir");
        let local = weft_store::open(&format!("file://{}", dir.path().display()))
            .await
            .expect("local store");
        bench_store(&setup, "local", local).await;
        let s3 = tokio::task::spawn_blocking(TestS3::start)
            .await
            .expect("join")
            .expect("an S3 server (install moto: tests/s3-server)");
        let store: DynStore = Arc::new(s3.bucket("bench").await.expect("bucket"));
        bench_store(&setup, "S3 (moto, loopback)", store).await;
    });
}
