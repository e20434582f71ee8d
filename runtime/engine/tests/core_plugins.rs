#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::field_reassign_with_default
)]
//! The core plugin (embedded in the binary): each task through the engine, under its name and
//! its legacy alias.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weft_engine::{
    AttemptFailure, AttemptRequest, Engine, EngineConfig, Level, MemoryHost, Registry, TaskContext,
    TaskError,
};

async fn registry() -> Registry {
    let mut config = EngineConfig::default();
    config.cache_dir =
        Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"));
    let engine = Engine::new(config).unwrap();
    Registry::load_default(&engine, Some(std::path::Path::new("/nonexistent")))
        .await
        .unwrap()
}

fn req(host: &Arc<MemoryHost>, task_type: &str, props: Value) -> AttemptRequest {
    AttemptRequest::new(task_type, props, TaskContext::example(), host.clone())
        .with_variables(json!({ "inputs": { "name": "world", "n": 3 } }))
}

const CORE_TYPES: &[(&str, &str)] = &[
    (
        "io.kestra.plugin.core.log.Log",
        "io.kestra.core.tasks.log.Log",
    ),
    (
        "io.kestra.plugin.core.debug.Return",
        "io.kestra.core.tasks.debugs.Return",
    ),
    (
        "io.kestra.plugin.core.debug.Echo",
        "io.kestra.core.tasks.debugs.Echo",
    ),
    (
        "io.kestra.plugin.core.flow.Sleep",
        "io.kestra.core.tasks.flows.Sleep",
    ),
    (
        "io.kestra.plugin.core.http.Request",
        "io.kestra.plugin.fs.http.Request",
    ),
    (
        "io.kestra.plugin.core.http.Download",
        "io.kestra.plugin.fs.http.Download",
    ),
    (
        "io.kestra.plugin.core.storage.Write",
        "io.kestra.core.tasks.storages.Write",
    ),
    (
        "io.kestra.plugin.core.storage.Concat",
        "io.kestra.core.tasks.storages.Concat",
    ),
    (
        "io.kestra.plugin.core.storage.Split",
        "io.kestra.core.tasks.storages.Split",
    ),
    (
        "io.kestra.plugin.core.storage.Size",
        "io.kestra.core.tasks.storages.Size",
    ),
    (
        "io.kestra.plugin.core.storage.Delete",
        "io.kestra.core.tasks.storages.Delete",
    ),
    (
        "io.kestra.plugin.core.storage.LocalFiles",
        "io.kestra.core.tasks.storages.LocalFiles",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_lists_every_core_type_with_its_alias_and_schema() {
    let r = registry().await;
    for (name, alias) in CORE_TYPES {
        let t = r
            .task_type(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(
            t.aliases.iter().any(|a| a == alias),
            "{name}: {:?}",
            t.aliases
        );
        assert_eq!(r.task_type(alias).map(|t| &t.name), Some(&t.name));
        assert_eq!(t.properties_schema["type"], "object", "{name}");
        assert_eq!(t.plugin, "core");
    }
    let ret = r.task_type("io.kestra.plugin.core.debug.Return").unwrap();
    assert!(ret.properties_schema["properties"]["format"].is_object());
    assert_eq!(ret.properties_schema["additionalProperties"], false);
    assert!(ret.outputs_schema["properties"]["value"].is_object());
    assert_eq!(r.task_types().len(), CORE_TYPES.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_renders_format_into_value() {
    let r = registry().await;
    let host = Arc::new(MemoryHost::new());
    for t in [
        "io.kestra.plugin.core.debug.Return",
        "io.kestra.core.tasks.debugs.Return",
    ] {
        let out = r
            .run_attempt(req(
                &host,
                t,
                json!({ "id": "r", "type": t, "format": "Hello {{ inputs.name }}" }),
            ))
            .await;
        assert_eq!(out.result, Ok(json!({ "value": "Hello world" })));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_properties_and_types_are_typed_failures() {
    let r = registry().await;
    let host = Arc::new(MemoryHost::new());
    let out = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.debug.Return",
            json!({ "formt": "x" }),
        ))
        .await;
    assert!(matches!(
        out.result,
        Err(AttemptFailure::Task(TaskError::InvalidProperties(_)))
    ));
    let out = r
        .run_attempt(req(&host, "io.kestra.plugin.Nope", json!({})))
        .await;
    assert!(matches!(
        out.result,
        Err(AttemptFailure::UnknownType { .. })
    ));
    let out = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.debug.Return",
            json!({ "format": "{{ inputs.missing }}" }),
        ))
        .await;
    assert!(matches!(
        out.result,
        Err(AttemptFailure::Task(TaskError::Render(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_writes_each_message_at_its_level() {
    let r = registry().await;
    let host = Arc::new(MemoryHost::new());
    let out = r
        .run_attempt(req(
            &host,
            "io.kestra.core.tasks.log.Log",
            json!({ "message": ["one {{ inputs.n }}", "two"], "level": "WARN" }),
        ))
        .await;
    assert_eq!(out.result, Ok(json!({})));
    let lines: Vec<_> = out
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert_eq!(lines, vec![(Level::Warn, "one 3"), (Level::Warn, "two")]);
    let out = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.log.Log",
            json!({ "message": "hi {{ inputs.name }}" }),
        ))
        .await;
    assert_eq!(out.logs[0].level, Level::Info);
    assert_eq!(out.logs[0].message, "hi world");
    let out = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.debug.Echo",
            json!({ "format": "echo", "level": "DEBUG" }),
        ))
        .await;
    assert_eq!(
        (out.logs[0].level, out.logs[0].message.as_str()),
        (Level::Debug, "echo")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_below_the_min_log_level_are_dropped() {
    let r = registry().await;
    let host = Arc::new(MemoryHost::new());
    let trace = json!({ "message": "fine", "level": "TRACE" });
    let out = r
        .run_attempt(req(&host, "io.kestra.plugin.core.log.Log", trace.clone()))
        .await;
    assert_eq!(out.logs.len(), 1, "no minimum: every line is kept");
    let out = r
        .run_attempt(
            req(&host, "io.kestra.plugin.core.log.Log", trace)
                .with_min_log_level(Level::parse("info").unwrap()),
        )
        .await;
    assert_eq!(out.result, Ok(json!({})));
    assert!(out.logs.is_empty(), "{:?}", out.logs);
    let out = r
        .run_attempt(
            req(
                &host,
                "io.kestra.plugin.core.log.Log",
                json!({ "message": "kept", "level": "WARN" }),
            )
            .with_min_log_level(Level::Info),
        )
        .await;
    assert_eq!(out.logs[0].message, "kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_waits_and_respects_the_timeout() {
    let r = registry().await;
    let host = Arc::new(MemoryHost::new());
    let start = std::time::Instant::now();
    let out = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.flow.Sleep",
            json!({ "duration": "PT0.2S" }),
        ))
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(start.elapsed() >= Duration::from_millis(200));
    let out = r
        .run_attempt(
            req(
                &host,
                "io.kestra.plugin.core.flow.Sleep",
                json!({ "duration": "PT10S" }),
            )
            .with_timeout(Duration::from_millis(200)),
        )
        .await;
    assert!(matches!(out.result, Err(AttemptFailure::Timeout { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_tasks_work_on_the_execution_files() {
    let r = registry().await;
    let host = Arc::new(MemoryHost::new());
    let write = |content: &str| {
        req(
            &host,
            "io.kestra.plugin.core.storage.Write",
            json!({ "content": content, "extension": "txt" }),
        )
    };
    let a = r.run_attempt(write("a\nb\nc\n")).await.result.unwrap();
    let uri_a = a["uri"].as_str().unwrap().to_string();
    assert_eq!(
        uri_a,
        "kestra:///weft/examples/example/executions/exec1/tasks/task1/run1/task1.txt"
    );
    let mut w2 = write("d\n");
    w2.context.task_id = "task2".into();
    let b = r.run_attempt(w2).await.result.unwrap();
    let uri_b = b["uri"].as_str().unwrap().to_string();

    let size = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.storage.Size",
            json!({ "uri": uri_a }),
        ))
        .await;
    assert_eq!(size.result, Ok(json!({ "size": 6 })));

    let concat = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.storage.Concat",
            json!({ "files": [uri_a, uri_b] }),
        ))
        .await
        .result
        .unwrap();
    let joined = host.files()[concat["uri"].as_str().unwrap()].clone();
    assert_eq!(joined, b"a\nb\nc\nd\n");

    let split = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.storage.Split",
            json!({ "from": concat["uri"], "rows": 3 }),
        ))
        .await
        .result
        .unwrap();
    let parts: Vec<Vec<u8>> = split["uris"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| host.files()[u.as_str().unwrap()].clone())
        .collect();
    assert_eq!(parts, vec![b"a\nb\nc\n".to_vec(), b"d\n".to_vec()]);

    let del = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.storage.Delete",
            json!({ "uri": uri_b }),
        ))
        .await;
    assert_eq!(del.result.unwrap()["deleted"], true);
    let del = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.storage.Delete",
            json!({ "uri": uri_b, "errorOnMissing": true }),
        ))
        .await;
    assert!(matches!(
        del.result,
        Err(AttemptFailure::Task(TaskError::Storage(_)))
    ));

    // files of another execution are out of reach
    let other = "kestra:///weft/examples/example/executions/OTHER/tasks/t/r/x.txt";
    host.put(other, b"secret".to_vec());
    let size = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.storage.Size",
            json!({ "uri": other }),
        ))
        .await;
    match size.result {
        Err(AttemptFailure::Task(TaskError::Storage(m))) => {
            assert!(m.contains("not a file of this execution"), "{m}")
        }
        other => panic!("expected a scoping error, got {other:?}"),
    }

    let local = r
        .run_attempt(req(
            &host,
            "io.kestra.plugin.core.storage.LocalFiles",
            json!({ "inputs": { "a.csv": "x,y", "b.txt": "hi {{ inputs.name }}" }, "outputs": ["*.txt"] }),
        ))
        .await;
    let uris = local.result.unwrap()["uris"].clone();
    assert_eq!(uris.as_object().unwrap().len(), 1);
    assert_eq!(host.files()[uris["b.txt"].as_str().unwrap()], b"hi world");
    assert_eq!(local.output_files.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_template_runs() {
    let mut r = registry().await;
    r.add_file(std::path::Path::new(weft_plugins::TEMPLATE_PATH))
        .await
        .unwrap();
    let t = r.task_type("com.example.Hello").unwrap();
    assert_eq!(t.plugin, "hello");
    let host = Arc::new(MemoryHost::new());
    let out = r
        .run_attempt(req(
            &host,
            "com.example.Hello",
            json!({ "name": "{{ inputs.name }}", "times": 2 }),
        ))
        .await;
    let outputs = out.result.unwrap();
    assert_eq!(outputs["greeting"], "Hello, world! Hello, world!");
    assert_eq!(
        host.files()[outputs["uri"].as_str().unwrap()],
        b"Hello, world! Hello, world!"
    );
    assert_eq!(out.metrics[0].name, "greetings");
    assert_eq!(out.output_files.len(), 1);
}
