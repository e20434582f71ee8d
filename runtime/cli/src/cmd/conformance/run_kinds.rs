//! Cases that execute something: kind `run` (one execution, run to its end and checked), and
//! what the `scenario` and input kinds share with it: the plugin engine, the case's raw JSON,
//! flows with their `needs`, inputs with `$file` and `$repeat` values, and `setup`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indexmap::IndexMap;
use serde_json::{Map, Value as Json};
use weft_executor::inputs::RawInput;
use weft_flow::expr::{Renderer, Secrets};
use weft_flow::model::Label;
use weft_server::runner::{Catalog, Runner, StartRequest};

use super::cases::{Case, Outcome};
use super::expect::{self, Ctx, LogSink};

/// The default time an execution may take.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What execution cases share, made on first use: the async runtime, the plugin engine and the
/// type registry with the plugins' task types, and the raw case objects.
pub(crate) struct Env {
    dir: PathBuf,
    store: String,
    raw: Option<HashMap<String, Json>>,
    inner: Option<Inner>,
}

pub(crate) struct Inner {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) engine: Arc<weft_engine::Registry>,
    pub(crate) registry: Arc<weft_flow::Registry>,
    pub(crate) renderer: Arc<Renderer>,
}

impl Env {
    /// An environment for the corpus in `dir`.
    pub(crate) fn new(dir: &Path, store: &str) -> Self {
        Env {
            dir: dir.to_path_buf(),
            store: store.to_string(),
            raw: None,
            inner: None,
        }
    }

    /// The corpus folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of the store a case runs on: `memory://` as it is, otherwise a fresh prefix (or
    /// folder) of its own below the configured one, so cases never see each other's objects.
    pub(crate) fn store_url(&self, case: &str) -> String {
        if self.store == "memory://" {
            return self.store.clone();
        }
        let slug: String = case
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{}/{slug}-{unique}", self.store.trim_end_matches('/'))
    }

    /// The case object as written in `cases.json`.
    pub(crate) fn raw_case(&mut self, name: &str) -> anyhow::Result<Json> {
        if self.raw.is_none() {
            let path = self.dir.join("cases.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let list: Vec<Json> = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a case list", path.display()))?;
            let map = list
                .into_iter()
                .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c)))
                .collect();
            self.raw = Some(map);
        }
        self.raw
            .as_ref()
            .and_then(|m| m.get(name).cloned())
            .with_context(|| format!("case `{name}` is not in cases.json"))
    }

    /// The runtime, engine and registry.
    pub(crate) fn inner(&mut self) -> anyhow::Result<&Inner> {
        if self.inner.is_none() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let (engine, registry) = rt.block_on(crate::registry::load_with_plugins(None))?;
            self.inner = Some(Inner {
                rt,
                engine: Arc::new(engine),
                registry: Arc::new(registry),
                renderer: Arc::new(Renderer::new()),
            });
        }
        self.inner.as_ref().context("the runtime did not start")
    }
}

/// Reads and validates a flow file of the corpus.
pub(crate) fn read_flow(
    dir: &Path,
    file: &str,
    registry: &weft_flow::Registry,
) -> Result<weft_flow::Flow, String> {
    let path = dir.join(file);
    let source = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    weft_flow::parse_flow(&source, registry)
        .map(|p| p.flow)
        .map_err(|diags| {
            let text: Vec<String> = diags
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.to_string())
                .collect();
            format!("{file} does not validate: {}", text.join("; "))
        })
}

/// `setup` of a case as the runner can honour it: the variables added to every expression
/// (`envs` from `KESTRA_*`, `globals`), or why the case cannot run.
pub(crate) fn setup_globals(raw: &Json) -> Result<Map<String, Json>, String> {
    let mut globals = Map::new();
    let Some(setup) = raw.get("setup").and_then(Json::as_object) else {
        return Ok(globals);
    };
    for (key, value) in setup {
        match key.as_str() {
            "env" => {
                let mut envs = Map::new();
                for (name, v) in value.as_object().into_iter().flatten() {
                    if let Some(rest) = name.strip_prefix("KESTRA_") {
                        envs.insert(rest.to_lowercase(), v.clone());
                    } else if name.starts_with("SECRET_") {
                        // served by `setup_secrets`
                    } else {
                        return Err(format!("setup env `{name}` is not supported by the runner"));
                    }
                }
                globals.insert("envs".into(), Json::Object(envs));
            }
            "globals" => {
                globals.insert("globals".into(), value.clone());
            }
            // honoured by `prepare_store`
            "workingDirectoryCache" => {}
            "kv" => {
                return Err(
                    "setup `kv`: the namespace KV store is not supported by the in-process runner"
                        .into(),
                );
            }
            other => {
                return Err(format!("setup `{other}` is not supported by the runner"));
            }
        }
    }
    Ok(globals)
}

/// Brings a case's store to what its `setup` asks: `workingDirectoryCache: "absent for NS/FLOW
/// task TASK"` removes that WorkingDirectory's cache (`wd-cache/NS/FLOW/TASK.tar`).
pub(crate) async fn prepare_store(raw: &Json, store: &weft_store::DynStore) -> anyhow::Result<()> {
    let Some(wanted) = raw
        .pointer("/setup/workingDirectoryCache")
        .and_then(Json::as_str)
    else {
        return Ok(());
    };
    let parsed = wanted
        .strip_prefix("absent for ")
        .and_then(|rest| rest.split_once(" task "))
        .and_then(|(flow, task)| flow.split_once('/').map(|(ns, f)| (ns, f, task)));
    let Some((namespace, flow_id, task_id)) = parsed else {
        anyhow::bail!(
            "setup workingDirectoryCache `{wanted}` is not `absent for NS/FLOW task TASK`"
        );
    };
    let key = weft_store::repo::working_directory_cache_key(namespace, flow_id, task_id)?;
    match store.delete(&key, None).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The secrets of a case: its `setup.env` `SECRET_*` variables on top of the environment.
pub(crate) fn setup_secrets(raw: &Json) -> Secrets {
    let vars = raw
        .pointer("/setup/env")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.starts_with("SECRET_"))
        .filter_map(|(name, v)| Some((name.clone(), v.as_str()?.to_string())));
    Secrets::with_variables(vars)
}

/// The catalog of a case: its flow, the flows it `needs`, and `extra` flow files.
pub(crate) fn catalog(
    dir: &Path,
    raw: &Json,
    inner: &Inner,
    globals: &Map<String, Json>,
) -> Result<(Catalog, weft_flow::Flow), String> {
    let file = raw.get("file").and_then(Json::as_str).unwrap_or("");
    let flow = read_flow(dir, file, &inner.registry)?;
    let mut catalog = Catalog::default();
    let mut add = |f: &weft_flow::Flow| {
        catalog
            .add_with_globals(f, &inner.registry, inner.renderer.clone(), globals.clone())
            .map_err(|e| e.to_string())
    };
    for need in raw
        .get("needs")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(need) = need.as_str() else { continue };
        let other = read_flow(dir, need, &inner.registry)?;
        add(&other)?;
    }
    add(&flow)?;
    Ok((catalog, flow))
}

/// A file described by `{"$file": {name, content | generate}}`.
fn file_value(spec: &Json, ctx: &dyn Fn(&str) -> String) -> Option<(String, Vec<u8>)> {
    let f = spec.get("$file")?;
    let name = f
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or("file")
        .to_string();
    if let Some(content) = f.get("content").and_then(Json::as_str) {
        return Some((name, ctx(content).into_bytes()));
    }
    let generate = f.get("generate")?;
    let range = generate.get("intLines")?.as_array()?;
    let (a, b) = (range.first()?.as_i64()?, range.get(1)?.as_i64()?);
    let pad = generate.get("padLeft").and_then(Json::as_u64).unwrap_or(0) as usize;
    let newline = generate
        .get("newlineAfterEach")
        .and_then(Json::as_bool)
        .unwrap_or(true);
    let mut text = String::new();
    for i in a..=b {
        text.push_str(&format!("{i:>pad$}"));
        if newline || i != b {
            text.push('\n');
        }
    }
    Some((name, text.into_bytes()))
}

/// A `{"$repeat": {char, count}}` string.
fn repeat_value(spec: &Json) -> Option<String> {
    let r = spec.get("$repeat")?;
    let c = r.get("char").and_then(Json::as_str).unwrap_or("a");
    let n = r.get("count").and_then(Json::as_u64).unwrap_or(0) as usize;
    Some(c.repeat(n))
}

/// Builds a start request from `inputs` and `executionLabels`; `subst` replaces placeholders in
/// file contents.
pub(crate) fn start_request(
    inputs: Option<&Json>,
    labels: Option<&Json>,
    subst: &dyn Fn(&str) -> String,
) -> StartRequest {
    let mut req = StartRequest::default();
    for (k, v) in inputs.and_then(Json::as_object).into_iter().flatten() {
        if let Some((name, bytes)) = file_value(v, subst) {
            req.files.push((k.clone(), name, bytes));
        } else if let Some(s) = repeat_value(v) {
            req.inputs.insert(k.clone(), RawInput::Text(s));
        } else if let Json::String(s) = v {
            req.inputs.insert(k.clone(), RawInput::Text(subst(s)));
        } else {
            req.inputs.insert(k.clone(), RawInput::Json(v.clone()));
        }
    }
    for l in labels.and_then(Json::as_array).into_iter().flatten() {
        let text = |key: &str| {
            l.get(key)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .unwrap_or_default()
        };
        req.labels.push(Label {
            key: text("key"),
            value: text("value"),
        });
    }
    req
}

/// Parses a step or case `timeout` (ISO-8601 duration `PT1M`, or seconds).
pub(crate) fn timeout_of(v: Option<&Json>) -> Option<Duration> {
    match v? {
        Json::Number(n) => n.as_f64().map(Duration::from_secs_f64),
        Json::String(s) => {
            let rest = s.strip_prefix("PT")?;
            let mut secs = 0.0;
            let mut num = String::new();
            for c in rest.chars() {
                match c {
                    'H' => secs += num.parse::<f64>().ok()? * 3600.0,
                    'M' => secs += num.parse::<f64>().ok()? * 60.0,
                    'S' => secs += num.parse::<f64>().ok()?,
                    c => {
                        num.push(c);
                        continue;
                    }
                }
                num.clear();
            }
            Some(Duration::from_secs_f64(secs))
        }
        _ => None,
    }
}

/// Runs one a `run` case; an error is a failure of the case.
pub(crate) fn run(env: &mut Env, case: &Case) -> anyhow::Result<Outcome> {
    let raw = env.raw_case(&case.name)?;
    let dir = env.dir().to_path_buf();
    let store_url = env.store_url(&case.name);
    let inner = env.inner()?;
    let globals = match setup_globals(&raw) {
        Ok(g) => g,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    let (catalog, flow) = match catalog(&dir, &raw, inner, &globals) {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::Failed(e)),
    };
    let timeout = timeout_of(raw.get("timeout")).unwrap_or(DEFAULT_TIMEOUT);
    // no `inputs` at all: the upstream harness put none and validated nothing (corpus README)
    let raw_inputs = raw.get("inputsRaw").and_then(Json::as_bool) == Some(true)
        || raw
            .get("inputs")
            .is_none_or(|i| i.as_object().is_some_and(Map::is_empty));
    let req = start_request(raw.get("inputs"), raw.get("executionLabels"), &|s| {
        s.to_string()
    });
    let sink = Arc::new(LogSink::default());
    inner.rt.block_on(async {
        let store = weft_store::open(&store_url).await?;
        prepare_store(&raw, &store).await?;
        let runner = Runner::new(inner.engine.clone(), store, inner.renderer.clone(), catalog)
            .with_observer(sink.clone())
            .with_secrets(setup_secrets(&raw));
        let mut session = runner.session();
        let id = match session
            .start(&flow.namespace, &flow.id, req, raw_inputs)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                return Ok(Outcome::Failed(format!(
                    "the execution could not start: {e}"
                )));
            }
        };
        let deadline = Instant::now() + timeout;
        let done = session
            .drive_until(deadline, |s| s.is_done(&id))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(exec) = session.execution(&id).cloned() else {
            return Ok(Outcome::Failed("the execution vanished".into()));
        };
        if !done {
            return Ok(Outcome::Failed(format!(
                "the execution did not terminate within {}s (state {})",
                timeout.as_secs(),
                exec.state.current.as_str()
            )));
        }
        let logs = sink.snapshot();
        let aliases = HashMap::new();
        let ctx = Ctx {
            exec: &exec,
            files: session.files(&id),
            logs: Some(&logs),
            aliases: &aliases,
            previous: None,
        };
        let report = expect::check(&case.expect, &ctx).await;
        Ok::<Outcome, anyhow::Error>(outcome_of(report))
    })
}

/// Passed when nothing failed; notes are added to a failure.
pub(crate) fn outcome_of(report: expect::Report) -> Outcome {
    if report.problems.is_empty() {
        Outcome::Passed
    } else {
        let mut lines = report.problems;
        lines.extend(report.notes.into_iter().map(|n| format!("(note) {n}")));
        Outcome::Failed(lines.join("\n"))
    }
}

/// Raw inputs for input-typing cases: an `IndexMap` of the base inputs, with files given URIs.
pub(crate) fn typing_inputs(
    inputs: &Map<String, Json>,
    flow: &weft_flow::Flow,
    exec_id: &str,
) -> IndexMap<String, RawInput> {
    let mut out = IndexMap::new();
    for (k, v) in inputs {
        if let Some((name, _)) = file_value(v, &|s| s.to_string()) {
            let uri =
                weft_executor::inputs::file_input_uri(&flow.namespace, &flow.id, exec_id, k, &name);
            out.insert(k.clone(), RawInput::File { name, uri });
        } else if let Some(s) = repeat_value(v) {
            out.insert(k.clone(), RawInput::Text(s));
        } else if let Json::String(s) = v {
            out.insert(k.clone(), RawInput::Text(s.clone()));
        } else {
            out.insert(k.clone(), RawInput::Json(v.clone()));
        }
    }
    out
}
