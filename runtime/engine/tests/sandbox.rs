#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::field_reassign_with_default
)]
//! The sandbox's limits, shown with the misbehaving fixture guest (`plugins/fixtures`): each
//! limit ends the attempt with its typed failure, and the next attempt on the same engine
//! succeeds.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_engine::{
    AllowList, AttemptFailure, AttemptOutcome, AttemptRequest, Engine, EngineConfig, Level, Limits,
    LoadError, MemoryHost, PluginSource, Registry, TaskContext, TaskError,
};

const MISBEHAVE: &str = "weft.test.Misbehave";

async fn registry() -> Registry {
    registry_with(EngineConfig::default()).await
}

async fn registry_with(mut config: EngineConfig) -> Registry {
    config.cache_dir =
        Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"));
    let engine = Engine::new(config).unwrap();
    let mut r = Registry::load_default(&engine, Some(std::path::Path::new("/nonexistent")))
        .await
        .unwrap();
    r.add_file(std::path::Path::new(weft_plugins::FIXTURES_PATH))
        .await
        .unwrap();
    r
}

fn req(task_type: &str, props: Value) -> AttemptRequest {
    AttemptRequest::new(
        task_type,
        props,
        TaskContext::example(),
        Arc::new(MemoryHost::new()),
    )
}

fn misbehave(action: &str, n: u64) -> AttemptRequest {
    req(MISBEHAVE, json!({ "action": action, "n": n }))
}

async fn next_attempt_succeeds(r: &Registry) {
    let out = r.run_attempt(misbehave("ok", 0)).await;
    assert_eq!(
        out.result,
        Ok(json!({ "result": true })),
        "logs: {:?}",
        out.logs
    );
}

fn failure(out: &AttemptOutcome) -> &AttemptFailure {
    match &out.result {
        Err(f) => f,
        Ok(v) => panic!("expected a failure, got {v}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_times_out_within_1_5_s() {
    let r = registry().await;
    let start = Instant::now();
    let out = r
        .run_attempt(misbehave("loop", 0).with_timeout(Duration::from_secs(1)))
        .await;
    let took = start.elapsed();
    assert_eq!(
        failure(&out),
        &AttemptFailure::Timeout {
            after: Duration::from_secs(1)
        }
    );
    assert_eq!(failure(&out).to_string(), "timeout after PT1S");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guest_does_not_block_other_tasks() {
    let r = registry().await;
    let spinning = r.run_attempt(misbehave("loop", 0).with_timeout(Duration::from_millis(800)));
    let quick = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let start = Instant::now();
        let out = r.run_attempt(misbehave("ok", 0)).await;
        (out, start.elapsed())
    };
    let (spun, (quick, _took)) = tokio::join!(spinning, quick);
    assert!(matches!(failure(&spun), AttemptFailure::Timeout { .. }));
    assert!(quick.result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeping_guest_times_out() {
    let r = registry().await;
    let out = r
        .run_attempt(misbehave("sleep", 60_000).with_timeout(Duration::from_millis(300)))
        .await;
    assert!(matches!(failure(&out), AttemptFailure::Timeout { .. }));
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_allocation_hits_a_64_mib_memory_limit() {
    let r = registry().await;
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let out = r
        .run_attempt(misbehave("alloc", 1024).with_limits(limits))
        .await;
    assert_eq!(
        failure(&out),
        &AttemptFailure::MemoryLimit {
            limit_bytes: 64 << 20
        }
    );
    assert_eq!(failure(&out).to_string(), "memory limit 64 MiB");
    // within the limit it works
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let out = r
        .run_attempt(misbehave("alloc", 16).with_limits(limits))
        .await;
    assert_eq!(out.result, Ok(json!({ "result": 16 << 20 })));
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_exhaustion_is_typed() {
    let r = registry().await;
    let limits = Limits {
        fuel: Some(50_000_000),
        ..Limits::default()
    };
    let out = r
        .run_attempt(misbehave("loop", 0).with_limits(limits))
        .await;
    assert_eq!(
        failure(&out),
        &AttemptFailure::FuelExhausted { budget: 50_000_000 }
    );
    assert!(out.fuel_used >= 50_000_000);
    next_attempt_succeeds(&r).await;
    let ok = r.run_attempt(misbehave("ok", 0)).await;
    assert!(ok.fuel_used > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_trap_with_the_message() {
    let r = registry().await;
    let out = r.run_attempt(misbehave("panic", 0)).await;
    match failure(&out) {
        AttemptFailure::Trap(m) => assert!(m.contains("the fixture panics on command"), "{m}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_output_is_refused() {
    let r = registry().await;
    let limits = Limits {
        max_output_bytes: 1 << 20,
        ..Limits::default()
    };
    let out = r
        .run_attempt(misbehave("big-output", 2 << 20).with_limits(limits))
        .await;
    assert!(matches!(
        failure(&out),
        AttemptFailure::OutputTooLarge { limit: 1048576, .. }
    ));
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_flood_is_capped_with_a_note() {
    let r = registry().await;
    let limits = Limits {
        max_log_lines: 100,
        ..Limits::default()
    };
    let out = r
        .run_attempt(misbehave("log-flood", 20_000).with_limits(limits))
        .await;
    assert!(out.result.is_ok());
    assert_eq!(out.logs.len(), 101);
    assert_eq!(out.logs_dropped, 19_900);
    let note = &out.logs[100];
    assert_eq!(note.level, Level::Warn);
    assert!(
        note.message.contains("19900 log lines dropped"),
        "{}",
        note.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_are_captured_with_a_cap() {
    let r = registry().await;
    let limits = Limits {
        max_stdio_bytes: 1000,
        ..Limits::default()
    };
    let out = r
        .run_attempt(misbehave("stdout", 100_000).with_limits(limits))
        .await;
    let stdout_lines = out.logs.iter().filter(|l| l.level == Level::Info).count();
    assert!(stdout_lines <= 10, "{stdout_lines} lines");
    assert!(stdout_lines >= 1);
    assert!(
        out.logs
            .iter()
            .any(|l| l.level == Level::Warn && l.message == "to stderr")
            || out.result.is_err()
    );
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_files_are_denied() {
    let r = registry().await;
    let out = r
        .run_attempt(req(
            MISBEHAVE,
            json!({ "action": "read-file", "target": "/etc/passwd" }),
        ))
        .await;
    match failure(&out) {
        AttemptFailure::Task(TaskError::Failed(m)) => assert!(m.starts_with("denied"), "{m}"),
        other => panic!("expected the read to fail, got {other:?}"),
    }
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_dir_is_the_only_folder_the_plugin_sees() {
    let r = registry().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), b"12345").unwrap();
    let read = |target: &str| {
        req(
            MISBEHAVE,
            json!({ "action": "read-file", "target": target }),
        )
        .with_work_dir(dir.path())
    };
    // a relative and an absolute path both resolve inside the granted folder
    for target in ["data.txt", "/data.txt"] {
        let out = r.run_attempt(read(target)).await;
        assert_eq!(
            out.result,
            Ok(json!({ "result": { "read": 5 } })),
            "{target}"
        );
    }
    // the host's files stay out of reach: `/etc/passwd` is the folder's own `etc/passwd`
    for target in ["/etc/passwd", "../data.txt", "../../etc/passwd"] {
        let out = r.run_attempt(read(target)).await;
        match failure(&out) {
            AttemptFailure::Task(TaskError::Failed(m)) => assert!(m.starts_with("denied"), "{m}"),
            other => panic!("{target}: expected the read to fail, got {other:?}"),
        }
    }
    next_attempt_succeeds(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_empty() {
    let r = registry().await;
    assert!(std::env::var_os("PATH").is_some());
    let out = r.run_attempt(misbehave("read-env", 0)).await;
    assert_eq!(out.result, Ok(json!({ "result": [] })));
}

fn serve(responses: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..responses {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "hello from the test server";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_denied() {
    let (port, _server) = serve(1);
    let r = registry().await;
    let out = r
        .run_attempt(req(
            MISBEHAVE,
            json!({ "action": "socket", "target": format!("127.0.0.1:{port}") }),
        ))
        .await;
    match failure(&out) {
        AttemptFailure::Task(TaskError::Failed(m)) => assert!(m.starts_with("denied"), "{m}"),
        other => panic!("expected the connect to fail, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_follows_the_allow_list() {
    let (port, server) = serve(2);
    let r = registry().await;
    let uri = format!("http://127.0.0.1:{port}/hello");
    let denied = r
        .run_attempt(req(MISBEHAVE, json!({ "action": "http", "target": uri })))
        .await;
    match failure(&denied) {
        AttemptFailure::Task(TaskError::Http(m)) => assert!(m.contains("allow-list"), "{m}"),
        other => panic!("expected a denied call, got {other:?}"),
    }
    let other_port = r
        .run_attempt(
            req(MISBEHAVE, json!({ "action": "http", "target": uri })).with_allow_list(
                AllowList::new([format!("127.0.0.1:{}", port.wrapping_add(1))]),
            ),
        )
        .await;
    assert!(matches!(
        failure(&other_port),
        AttemptFailure::Task(TaskError::Http(_))
    ));
    let allowed = r
        .run_attempt(
            req(MISBEHAVE, json!({ "action": "http", "target": uri }))
                .with_allow_list(AllowList::new(["127.0.0.1"])),
        )
        .await;
    assert_eq!(
        allowed.result,
        Ok(json!({ "result": { "status": 200, "body": "hello from the test server" } }))
    );
    // the core Request task too
    let request = r
        .run_attempt(
            req("io.kestra.plugin.core.http.Request", json!({ "uri": uri }))
                .with_allow_list(AllowList::new([format!("127.0.0.1:{port}")])),
        )
        .await;
    let out = request.result.unwrap();
    assert_eq!(out["code"], 200);
    assert_eq!(out["body"], "hello from the test server");
    assert_eq!(out["headers"]["content-type"], json!(["text/plain"]));
    server.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_s_allow_list_covers_its_tasks_and_those_below_it() {
    let (port, server) = serve(1);
    let r = registry_with(EngineConfig {
        http_allow_namespaces: vec![("weft".into(), AllowList::new(["127.0.0.1"]))],
        ..EngineConfig::default()
    })
    .await;
    let call = |namespace: &str| {
        let mut context = TaskContext::example();
        context.namespace = namespace.into();
        AttemptRequest::new(
            MISBEHAVE,
            json!({ "action": "http", "target": format!("http://127.0.0.1:{port}/hello") }),
            context,
            Arc::new(MemoryHost::new()),
        )
    };
    // `weft.examples` is under `weft`: allowed; `weftx` is not
    let allowed = r.run_attempt(call("weft.examples")).await;
    assert_eq!(
        allowed.result,
        Ok(json!({ "result": { "status": 200, "body": "hello from the test server" } }))
    );
    match failure(&r.run_attempt(call("weftx")).await) {
        AttemptFailure::Task(TaskError::Http(m)) => assert!(m.contains("allow-list"), "{m}"),
        other => panic!("expected a denied call, got {other:?}"),
    }
    server.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_contract_version_is_refused() {
    let r = registry().await;
    let mut bytes = std::fs::read(weft_plugins::FIXTURES_PATH).unwrap();
    let from = b"weft:plugin/plugin@0.1.0";
    let to = b"weft:plugin/plugin@0.9.0";
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
    let mut r2 = Registry::new(r.engine());
    let err = r2
        .add_component(&bytes, PluginSource::Embedded("old".into()))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LoadError::ContractVersion {
            source_name: "embedded:old".into(),
            found: "0.9.0".into(),
            expected: "0.1.0".into(),
        }
    );
    assert!(err.to_string().contains("rebuild the plugin"));
    let err = r2
        .add_component(b"not wasm", PluginSource::Embedded("junk".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)));
}
