//! Cases of kind `api`: the runner starts a real `weft server` (this binary, `weft server`) on a
//! free loopback port with a store in a temporary folder and the case's `setup.env`, loads the
//! case's flow (and its `needs`) with `POST /api/v1/flows`, then performs the steps over HTTP:
//! `http` steps as written, `run` steps as `POST /api/v1/executions/{namespace}/{id}` followed by
//! polling `GET /api/v1/executions/{id}` until the execution ends. Execution checks reuse
//! [`expect::check`] on the execution the server answered.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Map, Value as Json};
use weft_executor::Execution;

use super::cases::{Case, Outcome};
use super::expect::{self, Ctx};
use super::run_kinds::{self, DEFAULT_TIMEOUT, Env};

/// Step actions this runner performs.
const SUPPORTED: &[&str] = &["http", "run"];

/// A `weft server` child process, killed when dropped.
struct ServerProcess {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `weft server` on 127.0.0.1 (port chosen by the system) with `env` added.
    fn start(env: &Map<String, Json>) -> anyhow::Result<ServerProcess> {
        let dir = tempfile::tempdir().context("cannot make a temporary store")?;
        let exe = std::env::current_exe().context("cannot find the weft binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("server")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--storage")
            .arg(dir.path().join("store"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // only the case's settings: none of the caller's (a token, basic auth, a store, ...)
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("WEFT_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            cmd.env(k, text);
        }
        let mut child = cmd.spawn().context("cannot start `weft server`")?;
        let stdout = child
            .stdout
            .take()
            .context("the server's stdout is not piped")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // keep reading so the server never blocks on a full pipe
            for _ in lines {}
        });
        let mut server = ServerProcess {
            child,
            base: String::new(),
            _dir: dir,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("`weft server` did not say where it listens within 60 s")?;
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| format!("unexpected first line from `weft server`: {line}"))?;
        server.base = base.to_string();
        Ok(server)
    }
}

/// Runs one an `api` case; an error is a failure of the case.
pub(crate) fn run(env: &mut Env, case: &Case) -> anyhow::Result<Outcome> {
    let raw = env.raw_case(&case.name)?;
    let dir = env.dir().to_path_buf();
    let steps: Vec<Json> = raw
        .get("steps")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    for step in &steps {
        let action = step.get("action").and_then(Json::as_str).unwrap_or("");
        if !SUPPORTED.contains(&action) {
            return Ok(Outcome::Skipped(format!(
                "step action `{action}` is not supported by the api runner"
            )));
        }
    }
    let mut server_env = Map::new();
    if let Some(setup) = raw.get("setup").and_then(Json::as_object) {
        for (key, value) in setup {
            match key.as_str() {
                "env" => {
                    for (k, v) in value.as_object().into_iter().flatten() {
                        server_env.insert(k.clone(), v.clone());
                    }
                }
                other => {
                    return Ok(Outcome::Skipped(format!(
                        "setup `{other}` is not supported by the api runner"
                    )));
                }
            }
        }
    }
    let mut files = Vec::new();
    for need in raw
        .get("needs")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        files.push(need.to_string());
    }
    files.push(case.file.clone());
    // the server child loads the plugins; this process only needs an HTTP client
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let server = ServerProcess::start(&server_env)?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        for file in &files {
            let path = dir.join(file);
            let source = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let resp = client
                .post(format!("{}/api/v1/flows", server.base))
                .header("content-type", "application/x-yaml")
                .body(source)
                .send()
                .await
                .with_context(|| format!("POST /api/v1/flows ({file})"))?;
            if !resp.status().is_success() {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                return Ok(Outcome::Failed(format!(
                    "the server refused the flow {file}: {status} {text}"
                )));
            }
        }
        let mut api = Api {
            client,
            base: server.base.clone(),
            aliases: HashMap::new(),
            bodies: Vec::new(),
            problems: Vec::new(),
            case_flow: format!(
                "{}/{}",
                raw.get("namespace").and_then(Json::as_str).unwrap_or(""),
                raw.get("id").and_then(Json::as_str).unwrap_or("")
            ),
        };
        for (i, step) in steps.iter().enumerate() {
            let action = step.get("action").and_then(Json::as_str).unwrap_or("");
            let before = api.problems.len();
            if let Err(e) = api.step(step, &raw).await {
                api.problems.push(format!("{e:#}"));
            }
            if api.problems.len() > before {
                let msgs: Vec<String> = api
                    .problems
                    .drain(before..)
                    .map(|p| format!("step {i} ({action}): {p}"))
                    .collect();
                api.problems.extend(msgs);
                break;
            }
        }
        Ok::<Outcome, anyhow::Error>(if api.problems.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed(api.problems.join("\n"))
        })
    })
}

struct Api {
    client: reqwest::Client,
    base: String,
    /// `as` name -> the execution as last read.
    aliases: HashMap<String, Execution>,
    /// The multipart body of each step (for `$sameAsStep`).
    bodies: Vec<Option<Json>>,
    problems: Vec<String>,
    case_flow: String,
}

impl Api {
    async fn step(&mut self, step: &Json, raw: &Json) -> anyhow::Result<()> {
        match step.get("action").and_then(Json::as_str).unwrap_or("") {
            "run" => {
                self.bodies.push(None);
                self.run(step, raw).await
            }
            _ => self.http(step).await,
        }
    }

    async fn run(&mut self, step: &Json, raw: &Json) -> anyhow::Result<()> {
        let flow = step
            .get("flow")
            .and_then(Json::as_str)
            .unwrap_or(&self.case_flow)
            .to_string();
        let inputs = step.get("inputs").or_else(|| raw.get("inputs"));
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in inputs.and_then(Json::as_object).into_iter().flatten() {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            form = form.text(k.clone(), text);
        }
        let resp = self
            .client
            .post(format!("{}/api/v1/executions/{flow}", self.base))
            .multipart(form)
            .send()
            .await?;
        let status = resp.status();
        let body: Json = resp.json().await.unwrap_or(Json::Null);
        if !status.is_success() {
            bail!("starting {flow} answered {status}: {body}");
        }
        let id = body
            .get("id")
            .and_then(Json::as_str)
            .context("the answer has no execution id")?
            .to_string();
        let timeout = run_kinds::timeout_of(step.get("timeout")).unwrap_or(DEFAULT_TIMEOUT);
        let exec = self.await_end(&id, timeout).await?;
        if let Some(alias) = step.get("as").and_then(Json::as_str) {
            self.aliases.insert(alias.to_string(), exec.clone());
        }
        if let Some(expect) = step.get("expect") {
            self.check(expect, &exec, None).await;
        }
        Ok(())
    }

    /// Polls `GET /executions/{id}` until the execution ended.
    async fn await_end(&self, id: &str, timeout: Duration) -> anyhow::Result<Execution> {
        let deadline = Instant::now() + timeout;
        loop {
            let exec = self.get_execution(id).await?;
            if exec.state.current.is_terminal() {
                return Ok(exec);
            }
            if Instant::now() >= deadline {
                bail!(
                    "execution {id} did not end within {}s (it is {})",
                    timeout.as_secs_f64(),
                    exec.state.current.as_str()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get_execution(&self, id: &str) -> anyhow::Result<Execution> {
        let resp = self
            .client
            .get(format!("{}/api/v1/executions/{id}", self.base))
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("GET /api/v1/executions/{id} answered {status}: {text}");
        }
        serde_json::from_str(&text)
            .with_context(|| format!("GET /api/v1/executions/{id} is not an execution: {text}"))
    }

    async fn check(&mut self, expect: &Json, exec: &Execution, previous: Option<&Execution>) {
        let ctx = Ctx {
            exec,
            files: None,
            logs: None,
            aliases: &self.aliases,
            previous,
        };
        let report = expect::check(expect, &ctx).await;
        self.problems.extend(report.problems);
    }

    fn substitute(&self, s: &str) -> String {
        expect::substitute_in(s, None, &self.aliases)
    }

    /// The multipart form of a step (`files` parts are named `files` with the input id as
    /// file name, as Kestra's clients send them).
    fn form(&self, spec: &Json) -> anyhow::Result<reqwest::multipart::Form> {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in spec.as_object().into_iter().flatten() {
            if k == "files" {
                for (input, file) in v.as_object().into_iter().flatten() {
                    let name = file.get("name").and_then(Json::as_str).unwrap_or(input);
                    let content = file
                        .get("content")
                        .and_then(Json::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("# {name}\nkey: value\n"));
                    let mut part = reqwest::multipart::Part::bytes(content.into_bytes())
                        .file_name(input.clone());
                    if let Some(ct) = file.get("contentType").and_then(Json::as_str) {
                        part = part.mime_str(ct)?;
                    }
                    form = form.part("files", part);
                }
            } else {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                form = form.text(k.clone(), self.substitute(&text));
            }
        }
        Ok(form)
    }

    async fn http(&mut self, step: &Json) -> anyhow::Result<()> {
        let method = step.get("method").and_then(Json::as_str).unwrap_or("GET");
        let path = self.substitute(step.get("path").and_then(Json::as_str).unwrap_or("/"));
        // the execution the path names (`${alias.id}`), to compare with
        let previous = self
            .aliases
            .values()
            .find(|e| path.contains(&e.id))
            .cloned();
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        let mut multipart = step.get("multipart").cloned();
        if let Some(n) = multipart
            .as_ref()
            .and_then(|m| m.get("$sameAsStep"))
            .and_then(Json::as_u64)
        {
            multipart = self
                .bodies
                .get(n as usize)
                .cloned()
                .flatten()
                .with_context(|| format!("$sameAsStep {n}: that step had no multipart body"))?
                .into();
        }
        self.bodies.push(multipart.clone());
        if let Some(m) = &multipart {
            req = req.multipart(self.form(m)?);
        } else if let Some(j) = step.get("json") {
            req = req.json(j);
        } else if let Some(t) = step.get("text").and_then(Json::as_str) {
            req = req.body(t.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        let body: Option<Json> = serde_json::from_str(&text).ok();
        let timeout = run_kinds::timeout_of(step.get("timeout")).unwrap_or(DEFAULT_TIMEOUT);
        let answered: Option<Execution> = body
            .as_ref()
            .and_then(|b| serde_json::from_value(b.clone()).ok());
        if let Some(imm) = step.get("expectImmediate") {
            self.check_http(
                imm,
                status,
                &text,
                body.as_ref(),
                answered.as_ref(),
                previous.as_ref(),
                None,
            )
            .await;
        }
        if let Some(expect) = step.get("expect") {
            // after an immediate check, `expect` is about the execution once it ended
            let ended = match (&answered, step.get("expectImmediate")) {
                (Some(exec), Some(_)) => Some(self.await_end(&exec.id, timeout).await?),
                _ => None,
            };
            self.check_http(
                expect,
                status,
                &text,
                body.as_ref(),
                answered.as_ref(),
                previous.as_ref(),
                ended,
            )
            .await;
        }
        if let (Some(alias), Some(exec)) = (step.get("as").and_then(Json::as_str), &answered) {
            self.aliases.insert(alias.to_string(), exec.clone());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn check_http(
        &mut self,
        expect: &Json,
        status: reqwest::StatusCode,
        text: &str,
        body: Option<&Json>,
        answered: Option<&Execution>,
        previous: Option<&Execution>,
        ended: Option<Execution>,
    ) {
        let Some(map) = expect.as_object() else {
            return;
        };
        let mut rest = Map::new();
        for (k, want) in map {
            match k.as_str() {
                "httpStatus" => {
                    if want.as_u64() != Some(u64::from(status.as_u16())) {
                        self.problems
                            .push(format!("httpStatus: expected {want}, got {status}: {text}"));
                    }
                }
                "httpStatusClass" => {
                    let class = format!("{}xx", status.as_u16() / 100);
                    if want.as_str() != Some(class.as_str()) {
                        self.problems
                            .push(format!("httpStatusClass: expected {want}, got {status}"));
                    }
                }
                "bodyContains" => {
                    for w in want
                        .as_array()
                        .cloned()
                        .unwrap_or_else(|| vec![want.clone()])
                    {
                        let w = w.as_str().unwrap_or("").to_string();
                        if !text.contains(&w) {
                            self.problems
                                .push(format!("bodyContains: `{w}` not in the answer: {text}"));
                        }
                    }
                }
                "emptyBody" => {
                    if want.as_bool() == Some(true) && !text.is_empty() {
                        self.problems
                            .push(format!("emptyBody: the answer has a body: {text}"));
                    }
                }
                "executionCreated" => {
                    let id = body.and_then(|b| b.get("id")).and_then(Json::as_str);
                    let created = match id {
                        Some(id) if status.is_success() => self.get_execution(id).await.is_ok(),
                        _ => false,
                    };
                    if want.as_bool() != Some(created) {
                        self.problems.push(format!(
                            "executionCreated: expected {want}, the answer was {status}: {text}"
                        ));
                    }
                }
                "json" => {
                    for (key, w) in want.as_object().into_iter().flatten() {
                        let found =
                            body.and_then(|b| b.pointer(&format!("/{}", key.replace('.', "/"))));
                        if found != Some(w) {
                            self.problems
                                .push(format!("json `{key}`: expected {w}, found {found:?}"));
                        }
                    }
                }
                _ => {
                    rest.insert(k.clone(), want.clone());
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        let exec = match (ended, answered) {
            (Some(e), _) => e,
            (None, Some(e)) => e.clone(),
            (None, None) => {
                self.problems.push(format!(
                    "expected an execution in the answer ({status}): {text}"
                ));
                return;
            }
        };
        self.check(&Json::Object(rest), &exec, previous).await;
    }
}
