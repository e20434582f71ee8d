//! The HTTP API end to end: a real `weft server` (the library's `Server`) on 127.0.0.1, a local
//! store in a temporary folder, the core plugins, and reqwest as the client.

#![allow(clippy::unwrap_used)] // helpers of the tests (outside #[test] fns) unwrap too

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use weft_server::api::{Server, ServerConfig};
use weft_server::setup::{Setup, storage_url};

const FLOW: &str = r#"id: hello
namespace: company.team
labels:
  team: data
inputs:
  - id: name
    type: STRING
    defaults: world
  - id: data
    type: FILE
    required: false
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }}"
  - id: shout
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name | upper }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cret-key
    conditions:
      - type: io.kestra.plugin.core.condition.ExpressionCondition
        expression: "{{ trigger.body.go ?? true }}"
"#;

struct TestServer {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(token: Option<&str>) -> TestServer {
        TestServer::start_with(token, None).await
    }

    async fn start_with(token: Option<&str>, basic: Option<&str>) -> TestServer {
        TestServer::start_config(|c| {
            c.auth_token = token.map(str::to_string);
            c.basic_auth = basic.map(str::to_string);
        })
        .await
    }

    /// A server on a fresh local store, with `tweak` applied to its configuration.
    async fn start_config(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            storage: dir.path().join("store").display().to_string(),
            wait_timeout_secs: 60,
            shutdown_grace_secs: 5,
            ..ServerConfig::default()
        };
        tweak(&mut config);
        let token = config.auth_token.clone();
        config.validate().unwrap();
        let store = weft_store::open(&storage_url(&config.storage).unwrap())
            .await
            .unwrap();
        let (setup, _) = Setup::load(None).await.unwrap();
        let server = Server::bind(&config, setup, store).await.unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            token,
            stop: Some(stop),
            done: Some(done),
            _dir: dir,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn create_flow(&self, prefix: &str, source: &str) -> (StatusCode, Value) {
        send(
            self.req(reqwest::Method::POST, &format!("{prefix}/flows"))
                .header("content-type", "application/x-yaml")
                .body(source.to_string()),
        )
        .await
    }

    async fn json(&self, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
        send(self.req(method, path)).await
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            d.await.unwrap();
        }
    }
}

/// Sends a request; its status and its body as JSON (or as a string when it is not JSON).
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = request.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn outputs_of<'v>(exec: &'v Value, task: &str) -> &'v Value {
    exec["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["taskId"] == task)
        .map(|t| &t["outputs"])
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_are_created_updated_validated_and_kept_per_tenant() {
    let s = TestServer::start(None).await;
    let (status, created) = s.create_flow("/api/v1", FLOW).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["revision"], 1);
    assert_eq!(created["id"], "hello");
    assert_eq!(created["source"], FLOW);

    // creating it again is a conflict; updating makes revision 2
    let (status, _) = s.create_flow("/api/v1", FLOW).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let updated_source = FLOW.replace("hello {{", "hi {{");
    let (status, updated) = send(
        s.req(reqwest::Method::PUT, "/api/v1/flows/company.team/hello")
            .header("content-type", "application/x-yaml")
            .body(updated_source.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["revision"], 2);
    let (_, first) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/flows/company.team/hello?revision=1&source=true",
        )
        .await;
    assert_eq!(first["source"], FLOW);
    let (_, latest) = s
        .json(reqwest::Method::GET, "/api/v1/flows/company.team/hello")
        .await;
    assert_eq!(latest["revision"], 2);
    assert!(latest.get("source").is_none());
    let (_, revisions) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/flows/company.team/hello/revisions",
        )
        .await;
    assert_eq!(revisions.as_array().unwrap().len(), 2);
    let (_, listed) = s
        .json(reqwest::Method::GET, "/api/v1/flows/company.team")
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // an invalid flow: 422 naming the line at fault
    let bad = "id: bad\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    mesage: hi\n";
    let (status, err) = s.create_flow("/api/v1", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err["message"].as_str().unwrap().contains("line 4"), "{err}");
    let details = err["details"].as_array().unwrap();
    assert!(
        details
            .iter()
            .any(|d| d["line"] == 6 && d["column"] == 5 && d["path"] == "tasks[0].mesage"),
        "{err}"
    );

    // validate: one result per document, with lines
    let docs = format!("{FLOW}---\n{bad}");
    let (status, results) = send(
        s.req(reqwest::Method::POST, "/api/v1/flows/validate")
            .header("content-type", "application/x-yaml")
            .body(docs),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = results.as_array().unwrap().clone();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].get("constraints").is_none(), "{:?}", results[0]);
    assert_eq!(results[1]["flow"], "bad");
    let lines: Vec<u64> = results[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    let doc_start = FLOW.lines().count() as u64 + 2;
    assert!(
        lines.contains(&(doc_start + 5)),
        "the line of `mesage` counts from the start of the file ({doc_start} + 5): {:?}",
        results[1]
    );
    assert!(
        results[1]["constraints"]
            .as_str()
            .unwrap()
            .contains("mesage")
    );

    // tenants: the same flow in tenant `acme` is another flow, invisible from `main`
    let other = FLOW.replace("id: hello", "id: only-acme");
    let (status, _) = s.create_flow("/api/v1/acme", &other).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .json(reqwest::Method::GET, "/api/v1/flows/company.team/only-acme")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/acme/flows/company.team/only-acme",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/main/flows/company.team/hello",
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // delete
    let (status, _) = s
        .json(reqwest::Method::DELETE, "/api/v1/flows/company.team/hello")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = s
        .json(reqwest::Method::GET, "/api/v1/flows/company.team/hello")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(err["message"].as_str().unwrap().contains("not found"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_start_with_inputs_wait_and_are_found_with_their_logs_and_files() {
    let s = TestServer::start(None).await;
    assert_eq!(s.create_flow("/api/v1", FLOW).await.0, StatusCode::OK);

    // start with a text input and a file, wait for the end
    let form = Form::new().text("name", "alice").part(
        "data",
        Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("data.csv"),
    );
    let (status, exec) = send(
        s.req(
            reqwest::Method::POST,
            "/api/v1/executions/company.team/hello?wait=true&labels=env:test",
        )
        .multipart(form),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    assert_eq!(exec["state"]["current"], "SUCCESS", "{exec}");
    assert_eq!(outputs_of(&exec, "shout")["value"], "ALICE");
    let labels = exec["labels"].as_array().unwrap();
    assert!(labels.contains(&json!({"key": "env", "value": "test"})));
    assert!(labels.contains(&json!({"key": "team", "value": "data"})));
    let id = exec["id"].as_str().unwrap().to_string();
    let uri = exec["inputs"]["data"].as_str().unwrap().to_string();
    assert!(
        uri.starts_with("kestra:///company/team/hello/executions/"),
        "{uri}"
    );

    // get reads the stored document
    let (status, got) = s
        .json(reqwest::Method::GET, &format!("/api/v1/executions/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["state"]["current"], "SUCCESS");
    let (status, _) = s
        .json(reqwest::Method::GET, "/api/v1/executions/nope1234")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // the uploaded file downloads again
    let resp = s
        .req(
            reqwest::Method::GET,
            &format!("/api/v1/executions/{id}/file"),
        )
        .query(&[("path", uri.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"a,b\n1,2\n");

    // logs
    let (status, logs) = s
        .json(reqwest::Method::GET, &format!("/api/v1/logs/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let logs = logs.as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["taskId"] == "greet" && l["message"] == "hello alice"),
        "{logs:?}"
    );

    // start without waiting: CREATED right away, then SUCCESS in storage
    let (status, created) = send(s.req(
        reqwest::Method::POST,
        "/api/v1/executions/company.team/hello",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["state"]["current"], "CREATED");
    let second = created["id"].as_str().unwrap().to_string();
    // search (by the index, which follows the execution document): wait for both to succeed
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let (status, found) = s
            .json(
                reqwest::Method::GET,
                "/api/v1/executions/search?namespace=company&flowId=hello&state=SUCCESS",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        if found["total"] == 2 {
            break found;
        }
        assert!(Instant::now() < deadline, "not 2 SUCCESS in time: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, e) = s
        .json(
            reqwest::Method::GET,
            &format!("/api/v1/executions/{second}"),
        )
        .await;
    assert_eq!(e["state"]["current"], "SUCCESS", "{e}");
    assert_eq!(outputs_of(&e, "shout")["value"], "WORLD");
    assert_eq!(found["results"][0]["id"], second.as_str(), "newest first");
    let (_, paged) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/executions/search?namespace=company.team&size=1&page=2",
        )
        .await;
    assert_eq!(paged["total"], 2);
    assert_eq!(paged["results"][0]["id"], id.as_str());
    let (_, none) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/executions/search?namespace=company.team&state=FAILED",
        )
        .await;
    assert_eq!(none["total"], 0);

    // a bad input value is a 400 naming the input; an unknown flow a 404
    let form = Form::new().part("data", Part::text("x")); // not a file part
    let (status, err) = send(
        s.req(
            reqwest::Method::POST,
            "/api/v1/executions/company.team/hello",
        )
        .multipart(form),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["message"].as_str().unwrap().contains("data"), "{err}");
    let (status, _) = send(s.req(reqwest::Method::POST, "/api/v1/executions/foo/bar")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // delete
    let (status, _) = s
        .json(reqwest::Method::DELETE, &format!("/api/v1/executions/{id}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/executions/search?namespace=company.team",
        )
        .await;
    assert_eq!(after["total"], 1);

    // metrics count what happened
    let text = metrics(&s).await;
    assert!(text.contains("weft_executions_started_total 2"), "{text}");
    assert!(
        text.contains("weft_executions_ended_total{state=\"SUCCESS\"} 2"),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_start_executions_by_key_and_conditions() {
    let s = TestServer::start(None).await;
    assert_eq!(s.create_flow("/api/v1", FLOW).await.0, StatusCode::OK);
    let (status, exec) = send(
        s.req(
            reqwest::Method::POST,
            "/api/v1/executions/webhook/company.team/hello/s3cret-key?wait=true&x=1&x=2",
        )
        .header("x-custom", "yes")
        .json(&json!({"go": true, "n": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    assert_eq!(exec["state"]["current"], "SUCCESS", "{exec}");
    let vars = &exec["trigger"]["variables"];
    assert_eq!(vars["body"]["n"], 3);
    assert_eq!(vars["headers"]["x-custom"], json!(["yes"]));
    assert_eq!(vars["parameters"]["x"], json!(["1", "2"]));
    assert_eq!(exec["trigger"]["id"], "hook");

    // the condition is false: 204 and no execution
    let resp = s
        .req(
            reqwest::Method::POST,
            "/api/v1/executions/webhook/company.team/hello/s3cret-key",
        )
        .json(&json!({"go": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.bytes().await.unwrap().is_empty());

    // a wrong key or an unknown flow: 404
    for path in [
        "/api/v1/executions/webhook/company.team/hello/wrong-key",
        "/api/v1/executions/webhook/company.team/nope/s3cret-key",
    ] {
        let (status, err) = s.json(reqwest::Method::GET, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {err}");
    }
    let (_, found) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/executions/search?namespace=company.team",
        )
        .await;
    assert_eq!(found["total"], 1, "{found}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_api_call_needs_it_but_webhooks_use_their_key() {
    let s = TestServer::start(Some("t0ken")).await;
    assert_eq!(s.create_flow("/api/v1", FLOW).await.0, StatusCode::OK);
    let anonymous = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);
    let resp = anonymous
        .get(url("/api/v1/flows/company.team/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    let resp = anonymous
        .get(url("/api/v1/flows/company.team/hello"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = anonymous
        .get(url("/api/v1/acme/flows/company.team/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = anonymous.get(url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .json(reqwest::Method::GET, "/api/v1/flows/company.team/hello")
        .await;
    assert_eq!(status, StatusCode::OK);
    let resp = anonymous
        .post(url(
            "/api/v1/executions/webhook/company.team/hello/s3cret-key",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = anonymous.get(url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = anonymous.get(url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_alone_or_beside_a_token() {
    let get = |s: &TestServer| {
        reqwest::Client::new().get(format!("{}/api/v1/flows/company.team/hello", s.base))
    };
    let s = TestServer::start_with(None, Some("ada:s3cret")).await;
    let resp = get(&s).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"weft\"");
    let wrong = get(&s)
        .basic_auth("ada", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let bearer = get(&s).bearer_auth("ada:s3cret").send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    // authenticated: the flow does not exist yet
    let ok = get(&s)
        .basic_auth("ada", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::NOT_FOUND);
    s.stop().await;

    // both configured: either one is enough
    let s = TestServer::start_with(Some("t0ken"), Some("ada:s3cret")).await;
    assert_eq!(s.create_flow("/api/v1", FLOW).await.0, StatusCode::OK);
    let by_basic = get(&s)
        .basic_auth("ada", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_basic.status(), StatusCode::OK);
    let by_token = get(&s).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(by_token.status(), StatusCode::OK);
    let anonymous = get(&s).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        // a folder not made yet holds nothing
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_execution_is_read_whole_and_deleted_with_its_chunks() {
    let s = TestServer::start(None).await;
    let values: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let flow = format!(
        "id: many\nnamespace: company.team\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [{}]\n    tasks:\n      - id: r\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{{{ taskrun.value }}}}\"\n",
        values.join(", ")
    );
    assert_eq!(s.create_flow("/api/v1", &flow).await.0, StatusCode::OK);
    let (status, exec) = s
        .json(
            reqwest::Method::POST,
            "/api/v1/executions/company.team/many?wait=true",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    assert_eq!(exec["state"]["current"], "SUCCESS");
    let id = exec["id"].as_str().unwrap().to_string();
    let store = s._dir.path().join("store");
    let stored: Vec<String> = files_under(&store)
        .into_iter()
        .filter(|f| f.contains(&format!("executions/{id}/chunks/")))
        .collect();
    assert!(!stored.is_empty(), "300 task runs are stored in chunks");

    // GET puts head and chunks back together, in Kestra's JSON
    let (status, got) = s
        .json(reqwest::Method::GET, &format!("/api/v1/executions/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let runs = got["taskRunList"].as_array().unwrap();
    let returns = runs.iter().filter(|r| r["taskId"] == "r").count();
    assert_eq!(returns, 300);
    assert!(got.get("weftChunks").is_none(), "internal field leaked");

    // DELETE removes the head, every chunk and result, the logs, the files and the index entry
    let (status, _) = s
        .json(reqwest::Method::DELETE, &format!("/api/v1/executions/{id}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left: Vec<String> = files_under(&store)
        .into_iter()
        .filter(|f| f.contains(&id))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    s.stop().await;
}

/// The server's metrics, as Prometheus text.
async fn metrics(s: &TestServer) -> String {
    s.req(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The storage requests of `kind` the server counted so far.
async fn storage_requests(s: &TestServer, kind: &str) -> u64 {
    let text = metrics(s).await;
    let prefix = format!("weft_storage_requests_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_are_searched_by_creation_date() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    let flow = "id: dated\nnamespace: company.team\ntasks:\n  - {id: a, type: io.kestra.plugin.core.debug.Return, format: one}\n";
    assert_eq!(s.create_flow("/api/v1", flow).await.0, StatusCode::OK);
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    for _ in 0..2 {
        let (status, exec) = s
            .json(
                reqwest::Method::POST,
                "/api/v1/executions/company.team/dated?wait=true",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{exec}");
    }
    let after = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let total = async |filter: &str| {
        let (status, found) = s
            .json(
                reqwest::Method::GET,
                &format!("/api/v1/executions/search?namespace=company.team&{filter}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{filter}: {found}");
        found["total"].as_u64().unwrap()
    };
    let date =
        |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(total(&format!("startDate={}", date(before))).await, 2);
    assert_eq!(total(&format!("startDate={}", date(after))).await, 0);
    assert_eq!(total(&format!("endDate={}", date(before))).await, 0);
    assert_eq!(
        total(&format!(
            "startDate={}&endDate={}",
            date(before),
            date(after)
        ))
        .await,
        2
    );
    assert_eq!(total("timeRange=PT1H").await, 2);
    // the later of startDate and now - timeRange
    assert_eq!(
        total(&format!("timeRange=PT1H&startDate={}", date(after))).await,
        0
    );
    for (bad, named) in [
        ("startDate=yesterday", "`startDate`"),
        ("endDate=2024-13-01T00:00:00Z", "`endDate`"),
        ("timeRange=1h", "`timeRange`"),
    ] {
        let (status, err) = s
            .json(
                reqwest::Method::GET,
                &format!("/api/v1/executions/search?{bad}"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
        assert!(err.to_string().contains(named), "{bad}: {err}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_give_attempt_durations_by_state_and_plugin_failures_by_kind() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    // `size` fails in its plugin: the file it asks for does not exist
    let flow = "id: sized\nnamespace: company.team\ntasks:\n  - {id: ok, type: io.kestra.plugin.core.debug.Return, format: fine}\n  - {id: size, type: io.kestra.plugin.core.storage.Size, uri: \"kestra:///company/team/sized/nothing.txt\"}\n";
    assert_eq!(s.create_flow("/api/v1", flow).await.0, StatusCode::OK);
    let (status, exec) = s
        .json(
            reqwest::Method::POST,
            "/api/v1/executions/company.team/sized?wait=true",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    assert_eq!(exec["state"]["current"], "FAILED", "{exec:#}");

    let text = metrics(&s).await;
    for line in [
        "# TYPE weft_task_attempt_duration_seconds histogram",
        "weft_task_attempt_duration_seconds_count{state=\"SUCCESS\"} 1",
        "weft_task_attempt_duration_seconds_bucket{state=\"SUCCESS\",le=\"+Inf\"} 1",
        "weft_task_attempt_duration_seconds_count{state=\"FAILED\"} 1",
        "# TYPE weft_plugin_failures_total counter",
        "weft_plugin_failures_total{kind=\"task_error\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "`{line}` not in the metrics:\n{text}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_with_wait_is_written_once_it_ended_and_one_without_at_once() {
    // no ticker, and an interval no run of this flow outlasts: only the execution's writes count
    let s = TestServer::start_config(|c| {
        c.tick_interval_secs = 0;
        c.flush_interval_ms = 5_000;
    })
    .await;
    let flow = "id: two\nnamespace: company.team\ntasks:\n  - {id: a, type: io.kestra.plugin.core.debug.Return, format: one}\n  - {id: b, type: io.kestra.plugin.core.debug.Return, format: two}\n";
    assert_eq!(s.create_flow("/api/v1", flow).await.0, StatusCode::OK);
    let writes = async || storage_requests(&s, "put").await + storage_requests(&s, "delete").await;

    // with ?wait=true nobody knows the execution before it ended: it is written then, as one
    // object, and its index entry, without a lease (no flow listens to its end)
    let before = writes().await;
    let (status, exec) = s
        .json(
            reqwest::Method::POST,
            "/api/v1/executions/company.team/two?wait=true",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    assert_eq!(exec["state"]["current"], "SUCCESS");
    let spent = writes().await - before;
    assert_eq!(spent, 2, "writes for a 2-task execution");
    let id = exec["id"].as_str().unwrap();
    let (status, got) = s
        .json(reqwest::Method::GET, &format!("/api/v1/executions/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["taskRunList"][1]["outputs"]["value"], "two");
    let (_, found) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/executions/search?namespace=company.team",
        )
        .await;
    assert_eq!(
        found["results"][0]["state"]["current"], "SUCCESS",
        "{found}"
    );

    // without it, the caller gets the id at once: the execution is stored before the answer
    let (status, exec) = s
        .json(reqwest::Method::POST, "/api/v1/executions/company.team/two")
        .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    let id = exec["id"].as_str().unwrap();
    let (status, _) = s
        .json(reqwest::Method::GET, &format!("/api/v1/executions/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_for(&s, id, "SUCCESS").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_with_wait_that_outlasts_the_flush_interval_holds_a_lease_until_it_ends() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    let flow = "id: slow\nnamespace: company.team\ntasks:\n  - {id: nap, type: io.kestra.plugin.core.flow.Sleep, duration: PT1S}\n  - {id: b, type: io.kestra.plugin.core.debug.Return, format: done}\n";
    assert_eq!(s.create_flow("/api/v1", flow).await.0, StatusCode::OK);
    let leases = s._dir.path().join("store/leases");
    let request = s.req(
        reqwest::Method::POST,
        "/api/v1/executions/company.team/slow?wait=true",
    );
    let answer = tokio::spawn(send(request));
    // written at its first flush (100 ms), with its lease: another instance can carry it on
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let held: Vec<String> = files_under(&leases)
            .into_iter()
            .filter(|f| f.ends_with(".json"))
            .collect();
        if !held.is_empty() || answer.is_finished() || Instant::now() > deadline {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(held.len(), 1, "no lease while it ran: {held:?}");
    let id = held[0]
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".json")
        .to_string();
    // the lease is taken just before the execution's first write
    let stored_by = Instant::now() + Duration::from_secs(5);
    let running = loop {
        let (status, running) = s
            .json(reqwest::Method::GET, &format!("/api/v1/executions/{id}"))
            .await;
        if status == StatusCode::OK || Instant::now() > stored_by {
            assert_eq!(status, StatusCode::OK, "not stored while it runs");
            break running;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(running["state"]["current"], "RUNNING");
    let (status, exec) = answer.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{exec}");
    assert_eq!(exec["id"], id.as_str());
    assert_eq!(exec["state"]["current"], "SUCCESS");
    let left: Vec<String> = files_under(&leases)
        .into_iter()
        .filter(|f| f.ends_with(".json"))
        .collect();
    assert!(
        left.is_empty(),
        "the lease outlived its execution: {left:?}"
    );
    s.stop().await;
}

const APPROVE: &str = r#"id: approve
namespace: company.team
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: count
        type: INT
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.wait.onResume.count + 1 }}"
"#;

/// Polls an execution until it is in `state` (at most 30 s).
async fn wait_for(s: &TestServer, id: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, exec) = s
            .json(reqwest::Method::GET, &format!("/api/v1/executions/{id}"))
            .await;
        if exec["state"]["current"] == state {
            return exec;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {state}: {exec:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Starts the `approve` flow and waits until it is PAUSED; returns its id.
async fn start_paused(s: &TestServer) -> String {
    let (status, exec) = s
        .json(
            reqwest::Method::POST,
            "/api/v1/executions/company.team/approve",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    let id = exec["id"].as_str().unwrap().to_string();
    wait_for(s, &id, "PAUSED").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_types_and_validates_on_resume_inputs() {
    let s = TestServer::start(None).await;
    assert_eq!(s.create_flow("/api/v1", APPROVE).await.0, StatusCode::OK);
    let id = start_paused(&s).await;
    let resume = format!("/api/v1/executions/{id}/resume");
    // missing, then not an INT: refused with the input's name, and the execution stays PAUSED
    for form in [
        reqwest::multipart::Form::new(),
        reqwest::multipart::Form::new().text("count", "many"),
    ] {
        let (status, err) = send(s.req(reqwest::Method::POST, &resume).multipart(form)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["message"].as_str().unwrap().contains("count"), "{err}");
        wait_for(&s, &id, "PAUSED").await;
    }
    let form = reqwest::multipart::Form::new().text("count", "41");
    let (status, body) = send(s.req(reqwest::Method::POST, &resume).multipart(form)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let exec = wait_for(&s, &id, "SUCCESS").await;
    // typed: 41 + 1, not "41" + 1
    assert_eq!(
        outputs_of(&exec, "wait")["onResume"]["count"],
        41,
        "{exec:#}"
    );
    assert_eq!(outputs_of(&exec, "after")["value"], "42", "{exec:#}");
    s.stop().await;
}

const RESUMER: &str = r#"id: resumer
namespace: company.team
inputs:
  - id: target
    type: STRING
tasks:
  - id: resume
    type: io.kestra.plugin.core.execution.Resume
    executionId: "{{ inputs.target }}"
    namespace: company.team
    flowId: approve
    inputs:
      count: "{{ 40 + 1 }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_task_resumes_an_execution_another_driver_holds() {
    let s = TestServer::start(None).await;
    for flow in [APPROVE, RESUMER] {
        assert_eq!(s.create_flow("/api/v1", flow).await.0, StatusCode::OK);
    }
    // PAUSED, its driver still running in this process
    let id = start_paused(&s).await;
    let start = "/api/v1/executions/company.team/resumer?wait=true";
    let form = reqwest::multipart::Form::new().text("target", id.clone());
    let (status, resumer) = send(s.req(reqwest::Method::POST, start).multipart(form)).await;
    assert_eq!(status, StatusCode::OK, "{resumer}");
    assert_eq!(resumer["state"]["current"], "SUCCESS", "{resumer:#}");
    let exec = wait_for(&s, &id, "SUCCESS").await;
    assert_eq!(outputs_of(&exec, "after")["value"], "42", "{exec:#}");
    // through the session of the driver that held it, not a second driver
    let (_, logs) = s
        .json(
            reqwest::Method::GET,
            &format!("/api/v1/logs/{}", resumer["id"].as_str().unwrap()),
        )
        .await;
    let want = format!("execution {id} resumed by the driver that holds it");
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == want.as_str()),
        "{logs:#}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_body_over_max_body_bytes_is_refused() {
    let s = TestServer::start_config(|c| c.max_body_bytes = 4096).await;
    assert_eq!(s.create_flow("/api/v1", APPROVE).await.0, StatusCode::OK);
    let start = "/api/v1/executions/company.team/approve";
    let big = reqwest::multipart::Form::new().text("note", "x".repeat(8192));
    let (status, err) = send(s.req(reqwest::Method::POST, start).multipart(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    let json = s
        .req(reqwest::Method::POST, start)
        .json(&json!({"note": "y".repeat(8192)}));
    let (status, err) = send(json).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    // under the limit: started
    let (status, exec) = s.json(reqwest::Method::POST, start).await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_repeated_with_the_same_idempotency_key_answers_the_first_execution() {
    let s = TestServer::start(None).await;
    assert_eq!(s.create_flow("/api/v1", FLOW).await.0, StatusCode::OK);
    let hook = "/api/v1/executions/webhook/company.team/hello/s3cret-key";
    let call = |key: &str, wait: bool| {
        let path = if wait {
            format!("{hook}?wait=true")
        } else {
            hook.to_string()
        };
        s.req(reqwest::Method::POST, &path)
            .header("idempotency-key", key)
            .json(&json!({"n": 1}))
    };
    let (status, first) = send(call("order-17", true)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["state"]["current"], "SUCCESS", "{first}");
    // the same key again, with and without wait: the same execution, nothing started
    for wait in [true, false] {
        let (status, again) = send(call("order-17", wait)).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["state"]["current"], "SUCCESS");
    }
    // another key starts another execution; the same key on the start route of the same flow
    // names the same execution
    let (_, other) = send(call("order-18", false)).await;
    assert_ne!(other["id"], first["id"]);
    let (status, started) = send(
        s.req(
            reqwest::Method::POST,
            "/api/v1/executions/company.team/hello",
        )
        .header("idempotency-key", "order-17"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["id"], first["id"]);
    // a key that is not visible ASCII, or too long: 400, nothing started
    for bad in ["", &"k".repeat(256)] {
        let (status, err) = send(call(bad, false)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["message"].as_str().unwrap().contains("Idempotency-Key"));
    }
    let other_id = other["id"].as_str().unwrap().to_string();
    wait_for(&s, &other_id, "SUCCESS").await;
    let (_, found) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/executions/search?namespace=company.team",
        )
        .await;
    assert_eq!(found["total"], 2, "{found}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_flow_with_a_flow_trigger_runs_after_the_execution_it_listens_to() {
    let s = TestServer::start(None).await;
    let listener = r#"id: listener
namespace: other.team
tasks:
  - id: said
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.flowId }} said {{ inputs.said }}"
triggers:
  - id: after-hello
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      said: "{{ outputs.shout.value }}"
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: company.team
        flowId: hello
"#;
    assert_eq!(s.create_flow("/api/v1", FLOW).await.0, StatusCode::OK);
    assert_eq!(s.create_flow("/api/v1", listener).await.0, StatusCode::OK);
    let (status, exec) = send(s.req(
        reqwest::Method::POST,
        "/api/v1/executions/company.team/hello?wait=true",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let (_, found) = s
            .json(
                reqwest::Method::GET,
                "/api/v1/executions/search?namespace=other.team&flowId=listener&state=SUCCESS",
            )
            .await;
        if found["total"] == 1 {
            break found;
        }
        assert!(Instant::now() < deadline, "the listener never ran: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = found["results"][0]["id"].as_str().unwrap().to_string();
    let (_, triggered) = s
        .json(reqwest::Method::GET, &format!("/api/v1/executions/{id}"))
        .await;
    assert_eq!(outputs_of(&triggered, "said")["value"], "hello said WORLD");
    assert_eq!(triggered["trigger"]["variables"]["executionId"], exec["id"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_served_as_json_and_yaml_without_auth() {
    let s = TestServer::start(Some("t0ken")).await;
    let anonymous = reqwest::Client::new();
    for prefix in ["/api/v1", "/api/v1/main"] {
        let resp = anonymous
            .get(format!("{}{prefix}/openapi.json", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{prefix}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let doc: Value = resp.json().await.unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1."),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v1/flows"));
        assert!(paths.contains_key("/api/v1/openapi.json"));
        assert!(doc["components"]["securitySchemes"]["bearerAuth"].is_object());
    }
    let resp = anonymous
        .get(format!("{}/api/v1/openapi.yaml", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/yaml");
    let yaml: Value = serde_yaml::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(yaml["paths"]["/api/v1/executions/{namespace}/{flowId}"]["post"].is_object());
    s.stop().await;
}

const TOGGLED: &str = r#"id: toggled
namespace: company.team
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: hook-key
  - id: every-second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
  - id: off-in-source
    type: io.kestra.plugin.core.trigger.Webhook
    key: off-key
    disabled: true
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: done
"#;

/// `disabled` of each trigger listed by `GET /triggers/{ns}/{flowId}`, by trigger id.
async fn listed_disabled(s: &TestServer, prefix: &str) -> Vec<(String, bool)> {
    let (status, page) = s
        .json(
            reqwest::Method::GET,
            &format!("{prefix}/triggers/company.team/toggled"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 3, "{page}");
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["namespace"], "company.team");
            assert_eq!(t["flowId"], "toggled");
            (
                t["triggerId"].as_str().unwrap().to_string(),
                t["disabled"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn tick(s: &TestServer) -> Value {
    let (status, report) = s.json(reqwest::Method::POST, "/api/v1/tick").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// A flow with a schedule firing every second under `conditions` (YAML list items, indented).
fn conditioned(id: &str, conditions: &str) -> String {
    format!(
        "id: {id}\nnamespace: company.team\ntriggers:\n  - id: every-second\n    \
         type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"* * * * * *\"\n    \
         withSeconds: true\n    conditions:\n{conditions}tasks:\n  - id: echo\n    \
         type: io.kestra.plugin.core.debug.Return\n    format: done\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_conditions_skip_dates_and_unsupported_ones_are_refused() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    let never = conditioned(
        "never",
        "      - type: io.kestra.plugin.core.condition.ExpressionCondition\n        \
         expression: \"{{ trigger.date == 'never' }}\"\n",
    );
    assert_eq!(s.create_flow("/api/v1", &never).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(tick(&s).await["fired"], 0);
    // the skipped dates are not tried again once the condition would hold
    let always = conditioned(
        "always",
        "      - type: io.kestra.core.models.conditions.types.DateTimeBetweenCondition\n        \
         after: \"2000-01-01T00:00:00Z\"\n",
    );
    assert_eq!(s.create_flow("/api/v1", &always).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = tick(&s).await;
    let fired = report["fired"].as_u64().unwrap();
    assert!((1..=2).contains(&fired), "{report}");

    let holiday = conditioned(
        "holiday",
        "      - type: io.kestra.plugin.core.condition.DayWeek\n        dayOfWeek: MONDAY\n      \
         - type: io.kestra.plugin.core.condition.PublicHoliday\n        country: FR\n",
    );
    let (status, err) = s.create_flow("/api/v1", &holiday).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("conditions[1]") && text.contains("PublicHoliday"),
        "{err}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_saved_again_unchanged_writes_its_schedules_again() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    let flow = conditioned(
        "mended",
        "      - type: io.kestra.core.models.conditions.types.DateTimeBetweenCondition\n        \
         after: \"2000-01-01T00:00:00Z\"\n",
    );
    assert_eq!(s.create_flow("/api/v1", &flow).await.0, StatusCode::OK);
    // as if the process had died between the flow's revision and its schedule's entry
    let entry = s
        ._dir
        .path()
        .join("store/schedules/main/company.team/mended/every-second.json");
    std::fs::remove_file(&entry).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(tick(&s).await["fired"], 0);
    // sending the same source again makes no revision, and mends the schedule
    let (status, saved) = send(
        s.req(reqwest::Method::PUT, "/api/v1/flows/company.team/mended")
            .header("content-type", "application/x-yaml")
            .body(flow.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["revision"], 1, "{saved}");
    assert!(entry.is_file(), "no schedule entry at {}", entry.display());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = tick(&s).await;
    assert!(report["fired"].as_u64().unwrap() >= 1, "{report}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_are_disabled_and_enabled_at_run_time() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    assert_eq!(s.create_flow("/api/v1", TOGGLED).await.0, StatusCode::OK);
    let f = |id: &str, d: bool| (id.to_string(), d);
    assert_eq!(
        listed_disabled(&s, "/api/v1").await,
        [
            f("hook", false),
            f("every-second", false),
            f("off-in-source", true)
        ]
    );
    let hook = "/api/v1/executions/webhook/company.team/toggled/hook-key?wait=true";
    let (status, exec) = s.json(reqwest::Method::POST, hook).await;
    assert_eq!(status, StatusCode::OK, "{exec}");

    // disable both (Kestra 1.x path with the tenant): the webhook is a 404, the schedule idles
    let (status, t) = send(
        s.req(reqwest::Method::PUT, "/api/v1/main/triggers")
            .json(&json!({"namespace": "company.team", "flowId": "toggled",
                          "triggerId": "hook", "disabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(
        (t["triggerId"].clone(), t["disabled"].clone()),
        (json!("hook"), json!(true))
    );
    assert!(t["date"].is_string(), "{t}");
    let (status, bulk) = send(
        s.req(
            reqwest::Method::POST,
            "/api/v1/triggers/set-disabled/by-triggers",
        )
        .json(&json!({"disabled": true, "triggers": [
            {"namespace": "company.team", "flowId": "toggled", "triggerId": "every-second"},
            {"namespace": "company.team", "flowId": "toggled", "triggerId": "unknown"}
        ]})),
    )
    .await;
    assert_eq!((status, bulk), (StatusCode::OK, json!({"count": 2})));
    assert_eq!(
        listed_disabled(&s, "/api/v1/main").await,
        [
            f("hook", true),
            f("every-second", true),
            f("off-in-source", true)
        ]
    );
    let (status, err) = s.json(reqwest::Method::POST, hook).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    // the schedule's first date (the next second) passes: no execution
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(tick(&s).await["fired"], 0);

    // enabled again: the webhook answers, the schedule fires from the next date on
    for id in ["hook", "every-second"] {
        let (status, t) = send(
            s.req(reqwest::Method::PUT, "/api/v1/triggers")
                .json(&json!({"namespace": "company.team", "flowId": "toggled",
                    "triggerId": id, "disabled": false})),
        )
        .await;
        assert_eq!(
            (status, t["disabled"].clone()),
            (StatusCode::OK, json!(false)),
            "{t}"
        );
    }
    let (status, exec) = s.json(reqwest::Method::POST, hook).await;
    assert_eq!(status, StatusCode::OK, "{exec}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = tick(&s).await;
    let fired = report["fired"].as_u64().unwrap();
    // the dates skipped while disabled are not recovered: at most the last second or two
    assert!((1..=2).contains(&fired), "{report}");
    // the source's `disabled: true` wins over an enable
    let (status, t) = send(
        s.req(reqwest::Method::PUT, "/api/v1/triggers")
            .json(&json!({"namespace": "company.team", "flowId": "toggled",
                "triggerId": "off-in-source", "disabled": false})),
    )
    .await;
    assert_eq!(
        (status, t["disabled"].clone()),
        (StatusCode::OK, json!(true)),
        "{t}"
    );
    assert_eq!(
        s.json(
            reqwest::Method::POST,
            "/api/v1/executions/webhook/company.team/toggled/off-key"
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // unknown flow or trigger: 404; a bad body: 422 naming the field
    for (body, code, needle) in [
        (
            json!({"namespace": "company.team", "flowId": "nope", "triggerId": "hook", "disabled": true}),
            StatusCode::NOT_FOUND,
            "company.team.nope not found",
        ),
        (
            json!({"namespace": "company.team", "flowId": "toggled", "triggerId": "nope", "disabled": true}),
            StatusCode::NOT_FOUND,
            "has no trigger nope",
        ),
        (
            json!({"namespace": "company.team", "flowId": "toggled", "triggerId": "hook"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`disabled`",
        ),
        (
            json!({"namespace": "company.team", "triggerId": "hook", "disabled": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "`flowId`",
        ),
    ] {
        let (status, err) = send(s.req(reqwest::Method::PUT, "/api/v1/triggers").json(&body)).await;
        assert_eq!(status, code, "{body}: {err}");
        assert!(err["message"].as_str().unwrap().contains(needle), "{err}");
    }
    let (status, err) = send(
        s.req(
            reqwest::Method::POST,
            "/api/v1/triggers/set-disabled/by-triggers",
        )
        .json(&json!({"disabled": true, "triggers": [{"namespace": "company.team"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("triggers[0]: `flowId`"),
        "{err}"
    );
    let (status, _) = s
        .json(reqwest::Method::GET, "/api/v1/triggers/company.team/nope")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // a deleted flow takes its toggles along
    let (status, _) = s
        .json(
            reqwest::Method::DELETE,
            "/api/v1/flows/company.team/toggled",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.stop().await;
}

/// The trigger ids a search answers, with their `disabled`.
async fn searched(s: &TestServer, query: &str) -> (u64, Vec<(String, bool)>) {
    let (status, page) = s
        .json(
            reqwest::Method::GET,
            &format!("/api/v1/triggers/search?{query}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let found = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["abstractTrigger"]["id"], r["triggerContext"]["triggerId"]);
            (
                format!(
                    "{}/{}",
                    r["triggerContext"]["flowId"].as_str().unwrap(),
                    r["triggerContext"]["triggerId"].as_str().unwrap()
                ),
                r["triggerContext"]["disabled"].as_bool().unwrap(),
            )
        })
        .collect();
    (page["total"].as_u64().unwrap(), found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_are_searched_and_switched_by_query() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    assert_eq!(s.create_flow("/api/v1", TOGGLED).await.0, StatusCode::OK);
    let other = TOGGLED
        .replace("id: toggled", "id: other")
        .replace("company.team", "company.team.sales")
        .replace("hook-key", "other-key")
        .replace("off-key", "other-off-key");
    assert_eq!(s.create_flow("/api/v1", &other).await.0, StatusCode::OK);
    let apart = TOGGLED
        .replace("company.team", "companyx")
        .replace("hook-key", "x-key")
        .replace("off-key", "x-off-key");
    assert_eq!(s.create_flow("/api/v1", &apart).await.0, StatusCode::OK);

    let f = |id: &str, d: bool| (id.to_string(), d);
    // a namespace covers those under it, not those that only start with its text
    let (total, page) = searched(&s, "namespace=company.team&size=4").await;
    assert_eq!(total, 6);
    assert_eq!(
        page,
        [
            f("toggled/hook", false),
            f("toggled/every-second", false),
            f("toggled/off-in-source", true),
            f("other/hook", false)
        ]
    );
    let (_, second) = searched(&s, "namespace=company.team&size=4&page=2").await;
    assert_eq!(second.len(), 2);
    let (total, found) = searched(&s, "q=EVERY").await;
    assert_eq!(total, 3, "{found:?}");
    let (total, _) = searched(&s, "flowId=other").await;
    assert_eq!(total, 3);

    // switch off every schedule under company.team
    let (status, out) = s
        .json(
            reqwest::Method::POST,
            "/api/v1/triggers/set-disabled/by-query?namespace=company.team&q=every&disabled=true",
        )
        .await;
    assert_eq!(
        (status, out["count"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{out}"
    );
    let (_, found) = searched(&s, "q=every").await;
    // by namespace: company.team, company.team.sales, then companyx, whose schedule stays on
    assert_eq!(
        found,
        [
            f("toggled/every-second", true),
            f("other/every-second", true),
            f("toggled/every-second", false)
        ]
    );

    let (status, err) = s
        .json(
            reqwest::Method::POST,
            "/api/v1/triggers/set-disabled/by-query?namespace=company.team",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["message"].as_str().unwrap().contains("`disabled`"),
        "{err}"
    );
    let (status, _) = s
        .json(reqwest::Method::GET, "/api/v1/triggers/search?size=5000")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    s.stop().await;
}

const DAILY: &str = r#"id: daily
namespace: company.team
inputs:
  - id: note
    type: STRING
    defaults: scheduled
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 3 * * *"
    inputs:
      note: "{{ trigger.date }}"
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: daily-key
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.note }}"
"#;

/// The executions of flow `daily`, as `(trigger date, note input, labels)`, by date.
async fn daily_runs(s: &TestServer) -> Vec<(String, String, Value)> {
    let (status, page) = s
        .json(
            reqwest::Method::GET,
            "/api/v1/executions/search?namespace=company.team&flowId=daily&size=100",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut runs: Vec<_> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["trigger"]["variables"]["date"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["inputs"]["note"].as_str().unwrap_or("").to_string(),
                e["labels"].clone(),
            )
        })
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    runs
}

async fn backfill_call(s: &TestServer, verb: &str) -> (StatusCode, Value) {
    send(
        s.req(
            reqwest::Method::POST,
            &format!("/api/v1/triggers/backfill/{verb}"),
        )
        .json(&json!({"namespace": "company.team", "flowId": "daily", "triggerId": "nightly"})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_fires_the_dates_of_its_range_once_and_can_be_paused() {
    let s = TestServer::start_config(|c| c.tick_interval_secs = 0).await;
    assert_eq!(s.create_flow("/api/v1", DAILY).await.0, StatusCode::OK);
    // set paused: nothing fires, the trigger shows it
    let put = |backfill: Value| {
        s.req(reqwest::Method::PUT, "/api/v1/triggers")
            .json(&json!({
            "namespace": "company.team", "flowId": "daily", "triggerId": "nightly",
            "backfill": backfill}))
    };
    let (status, t) = send(put(json!({
        "start": "2026-01-01T00:00:00Z", "end": "2026-01-04T12:00:00Z", "paused": true,
        "inputs": {"note": "again {{ trigger.date }}"}, "labels": {"reason": "outage"}})))
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["backfill"]["paused"], true, "{t}");
    assert_eq!(t["backfill"]["currentDate"], "2026-01-01T00:00:00Z");
    assert_eq!(t["disabled"], false);
    tick(&s).await;
    assert!(daily_runs(&s).await.is_empty());

    // unpaused: the four nights of the range fire, with the backfill's inputs and labels
    let (status, t) = backfill_call(&s, "unpause").await;
    assert_eq!(
        (status, &t["backfill"]["paused"]),
        (StatusCode::OK, &json!(false)),
        "{t}"
    );
    tick(&s).await;
    tick(&s).await;
    let runs = daily_runs(&s).await;
    let dates: Vec<&str> = runs.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        dates,
        [
            "2026-01-01T03:00:00Z",
            "2026-01-02T03:00:00Z",
            "2026-01-03T03:00:00Z",
            "2026-01-04T03:00:00Z"
        ]
    );
    assert_eq!(runs[0].1, "again 2026-01-01T03:00:00Z");
    assert!(
        runs[0]
            .2
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["key"] == "reason" && l["value"] == "outage"),
        "{:?}",
        runs[0].2
    );
    // done: the trigger has no backfill any more
    let (_, listed) = s
        .json(reqwest::Method::GET, "/api/v1/triggers/company.team/daily")
        .await;
    assert!(listed["results"][0].get("backfill").is_none(), "{listed}");
    let (status, err) = backfill_call(&s, "delete").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    // the same range once more is a new backfill: it runs again
    let (status, _) = send(put(
        json!({"start": "2026-01-04T00:00:00Z", "end": "2026-01-04T12:00:00Z"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    tick(&s).await;
    assert_eq!(daily_runs(&s).await.len(), 5);

    // a deleted backfill fires nothing more; only Schedule triggers backfill; bad ranges say why
    let (status, _) = send(put(
        json!({"start": "2025-01-01T00:00:00Z", "end": "2025-01-03T00:00:00Z", "paused": true}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, t) = backfill_call(&s, "delete").await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert!(t.get("backfill").is_none(), "{t}");
    tick(&s).await;
    assert_eq!(daily_runs(&s).await.len(), 5);
    let (status, err) = send(
        s.req(reqwest::Method::PUT, "/api/v1/triggers")
            .json(&json!({
            "namespace": "company.team", "flowId": "daily", "triggerId": "hook",
            "backfill": {"start": "2026-01-01T00:00:00Z"}})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, err) = send(put(
        json!({"start": "2026-01-05T00:00:00Z", "end": "2026-01-01T00:00:00Z"}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err.to_string().contains("`end`"), "{err}");

    // a range reaching into the future fires its past dates, then waits for the others
    let now = chrono::Utc::now();
    let start = (now - chrono::TimeDelta::days(2))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    let end = (now + chrono::TimeDelta::days(3)).to_rfc3339();
    let (status, t) = send(put(json!({"start": start, "end": end}))).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    tick(&s).await;
    let fired = daily_runs(&s).await.len() - 5;
    assert!((2..=3).contains(&fired), "only past nights fire: {fired}");
    let (_, listed) = s
        .json(reqwest::Method::GET, "/api/v1/triggers/company.team/daily")
        .await;
    let next = listed["results"][0]["backfill"]["currentDate"]
        .as_str()
        .unwrap_or_else(|| panic!("{listed}"))
        .to_string();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    assert!(next > now, "the backfill waits for its next date: {listed}");
    s.stop().await;
}
