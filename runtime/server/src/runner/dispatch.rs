//! Where a runnable attempt runs: in this process ([`Dispatch::Local`]), or posted to the pool of
//! instances through its load balancer's URL ([`Dispatch::Http`], `POST
//! {dispatch_url}/api/v1/worker/attempts`), so that the attempts of a fan-out spread over
//! instances as a FaaS scales out. The instance that receives the attempt runs it with
//! [`Worker::run`], as this process would, and answers its [`WorkerResult`]; the driver applies
//! it as if it had run here.
//!
//! A dispatch that fails (the pool cannot be reached, answers an error, or an answer that is not
//! the attempt's result) is logged, counted by reason, and the attempt runs here instead: no
//! attempt is lost. An attempt the pool ran and whose answer was lost may so run twice: at
//! least once, as an attempt lost to a crash.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tokio::sync::mpsc;
use weft_executor::{RunTask, WorkerResult};
use weft_store::repo::ExecutionFiles;

use super::attempt::{AttemptBody, Worker};
use super::{Finished, Live, Runner};

/// How long a pool instance may take on top of the attempt's own timeout (instantiation, storing
/// logs and outputs, the way through the load balancer) before the driver gives up on it.
const MARGIN: Duration = Duration::from_secs(60);

/// How long connecting to the pool may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The part of an error answer kept in the warning.
const MAX_ANSWER_IN_WARNING: usize = 300;

/// Where the attempts of a runner run.
#[derive(Debug, Clone, Default)]
pub enum Dispatch {
    /// In this process.
    #[default]
    Local,
    /// Posted to the pool.
    Http(HttpDispatch),
}

/// Credentials sent to the pool: the server's own.
#[derive(Clone)]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP basic auth, `user:password`.
    Basic(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
            Credentials::Basic(_) => f.write_str("Basic(***)"),
        }
    }
}

/// Counters of the attempts this process dispatched over HTTP.
#[derive(Debug, Default)]
pub struct DispatchCounters {
    dispatched: AtomicU64,
    fallbacks: Mutex<BTreeMap<&'static str, u64>>,
    lost: Mutex<BTreeMap<&'static str, u64>>,
}

impl DispatchCounters {
    /// Attempts the pool ran and answered.
    pub fn dispatched(&self) -> u64 {
        self.dispatched.load(Ordering::Relaxed)
    }

    /// Attempts run here after their dispatch failed, by reason (see [`DispatchError::reason`]).
    pub fn fallbacks(&self) -> BTreeMap<&'static str, u64> {
        self.fallbacks.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Counts an attempt the pool ran and answered.
    pub(crate) fn count_dispatched(&self) {
        self.dispatched.fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts sent to the pool whose answer was lost (failed, not run again here), by reason.
    pub fn lost(&self) -> BTreeMap<&'static str, u64> {
        self.lost.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Counts an attempt whose dispatch failed for `reason`: `lost` when it failed (the pool may
    /// have run it), else run here.
    pub(crate) fn count_failed(&self, reason: &'static str, lost: bool) {
        let counts = if lost { &self.lost } else { &self.fallbacks };
        if let Ok(mut m) = counts.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }
}

/// Why a dispatch failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The request did not get an answer (connection refused, reset, timed out, ...).
    #[error("{url}: {source}")]
    Transport {
        /// The URL posted to.
        url: String,
        /// The client's error.
        source: reqwest::Error,
    },
    /// The pool answered with a status that is not a success.
    #[error("{url} answered {status}: {answer}")]
    Status {
        /// The URL posted to.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
        /// The start of the answer's body.
        answer: String,
    },
    /// The pool answered something that is not the attempt's result.
    #[error("{url} answered something that is not the attempt's result: {reason}")]
    Answer {
        /// The URL posted to.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl DispatchError {
    /// Whether the pool may have run (or be running) the attempt: the request may have reached
    /// it. Only when it cannot have does the attempt run here instead; otherwise running it here
    /// too could run it twice.
    pub fn may_have_run(&self) -> bool {
        match self {
            DispatchError::Transport { source, .. } => !source.is_connect(),
            // refused before running: busy, unavailable, or the request was refused
            DispatchError::Status { status, .. } => {
                !(status.as_u16() == 429
                    || status.as_u16() == 503
                    || (status.is_client_error() && status.as_u16() != 408))
            }
            DispatchError::Answer { .. } => true,
        }
    }

    /// The reason, as the fallback metric labels it: `connect`, `timeout`, `transport`,
    /// `status` or `answer`.
    pub fn reason(&self) -> &'static str {
        match self {
            DispatchError::Transport { source, .. } if source.is_connect() => "connect",
            DispatchError::Transport { source, .. } if source.is_timeout() => "timeout",
            DispatchError::Transport { .. } => "transport",
            DispatchError::Status { .. } => "status",
            DispatchError::Answer { .. } => "answer",
        }
    }
}

/// Posts attempts to the pool behind `base` (a load balancer's URL), for one tenant.
#[derive(Debug, Clone)]
pub struct HttpDispatch {
    client: reqwest::Client,
    /// The pool's URL, without a trailing `/`.
    base: String,
    /// The tenant whose attempts are posted (`main`: the paths without a tenant).
    tenant: String,
    credentials: Option<Credentials>,
    counters: Arc<DispatchCounters>,
}

impl HttpDispatch {
    /// A dispatcher to the pool at `base` (`http(s)://host[:port][/prefix]`), sending
    /// `credentials`, counting in `counters`; for the tenant `main` until [`Self::for_tenant`].
    pub fn new(
        base: &str,
        credentials: Option<Credentials>,
        counters: Arc<DispatchCounters>,
    ) -> Result<HttpDispatch, reqwest::Error> {
        // no overall timeout here: each request gets its attempt's own (see `post`)
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(Duration::from_secs(30))
            .build()?;
        Ok(HttpDispatch {
            client,
            base: base.trim_end_matches('/').to_string(),
            tenant: "main".to_string(),
            credentials,
            counters,
        })
    }

    /// The same pool, for the attempts of `tenant`.
    pub fn for_tenant(&self, tenant: &str) -> HttpDispatch {
        HttpDispatch {
            tenant: tenant.to_string(),
            ..self.clone()
        }
    }

    /// The worker endpoint of the tenant on the pool.
    pub fn endpoint(&self) -> String {
        match self.tenant.as_str() {
            "main" => format!("{}/api/v1/worker/attempts", self.base),
            tenant => format!("{}/api/v1/{tenant}/worker/attempts", self.base),
        }
    }

    /// Posts `task` and reads its result; gives up after `limit`.
    async fn post(
        &self,
        namespace: &str,
        flow_id: &str,
        task: &RunTask,
        limit: Duration,
    ) -> Result<WorkerResult, DispatchError> {
        let url = self.endpoint();
        let body = AttemptBody {
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            task: task.clone(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| DispatchError::Answer {
            url: url.clone(),
            reason: format!("the attempt cannot be sent: {e}"),
        })?;
        let mut request = self
            .client
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .timeout(limit)
            .body(body);
        request = match &self.credentials {
            Some(Credentials::Bearer(token)) => {
                request.header(AUTHORIZATION, format!("Bearer {token}"))
            }
            Some(Credentials::Basic(pair)) => {
                let (user, password) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
                request.basic_auth(user, Some(password))
            }
            None => request,
        };
        let transport = |source| DispatchError::Transport {
            url: url.clone(),
            source,
        };
        let answer = request.send().await.map_err(transport)?;
        let status = answer.status();
        let bytes = answer.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let answer: String = text.chars().take(MAX_ANSWER_IN_WARNING).collect();
            return Err(DispatchError::Status {
                url,
                status,
                answer,
            });
        }
        let result: WorkerResult =
            serde_json::from_slice(&bytes).map_err(|e| DispatchError::Answer {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if result.task_run_id != task.task_run_id || result.attempt != task.attempt {
            return Err(DispatchError::Answer {
                url,
                reason: format!(
                    "the result of task run {} attempt {}, not of {} attempt {}",
                    result.task_run_id, result.attempt, task.task_run_id, task.attempt
                ),
            });
        }
        Ok(result)
    }
}

impl Runner {
    /// The longest a dispatched attempt may take before the driver gives up on the pool: the
    /// task's timeout as this process's engine bounds it, plus a margin.
    fn dispatch_limit(&self, task: &RunTask) -> Duration {
        let config = self.engine.engine().config();
        task.timeout
            .and_then(|t| t.to_std())
            .unwrap_or(config.default_timeout)
            .min(config.max_timeout)
            .saturating_add(MARGIN)
    }

    /// Runs the attempt `task` of `live` (here, or on the pool when dispatching over HTTP) in a
    /// task of its own that sends its result on `tx`; aborting it drops the attempt (a request
    /// to the pool is dropped with it).
    pub(super) fn spawn_attempt(
        &self,
        live: &Live,
        task: RunTask,
        tx: mpsc::UnboundedSender<Finished>,
    ) -> tokio::task::JoinHandle<()> {
        let worker = Worker {
            engine: self.engine.clone(),
            store: self.store.clone(),
            renderer: self.renderer.clone(),
            offload: self.offload,
            work_dirs: self.work_dirs,
            secrets: self.secrets.clone(),
            stats: self.attempt_stats.clone(),
        };
        let files = live.files.clone();
        // the tasks of one WorkingDirectory share its folder, on this process's disk: they stay here
        let remote = match &self.dispatch {
            Dispatch::Http(http) if task.working_directory.is_none() => {
                Some((http.clone(), self.dispatch_limit(&task)))
            }
            _ => None,
        };
        let observer = self.observer.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let dispatched = match remote {
                Some((http, limit)) => {
                    match http
                        .post(files.namespace(), files.flow_id(), &task, limit)
                        .await
                    {
                        Ok(result) => {
                            http.counters.count_dispatched();
                            Some(result)
                        }
                        Err(e) => {
                            // the pool may have run it: running it here too could run it
                            // twice, so it fails and the task's retry policy decides
                            let lost = e.may_have_run();
                            tracing::warn!(
                                execution = %task.execution_id,
                                task = %task.task_id,
                                attempt = task.attempt,
                                reason = e.reason(),
                                error = %e,
                                then = if lost { "the attempt fails" } else { "it runs in this process" },
                                "the attempt could not be dispatched to the pool"
                            );
                            http.counters.count_failed(e.reason(), lost);
                            match lost {
                                true => Some(lost_answer(&worker, &files, &task, &e).await),
                                false => None,
                            }
                        }
                    }
                }
                None => None,
            };
            let result = match dispatched {
                Some(result) => result,
                None => {
                    let attempted = worker.run_in(files, &task).await;
                    for line in &attempted.lines {
                        observer.log(
                            &task.execution_id,
                            &task.task_id,
                            &line.level,
                            &line.message,
                        );
                    }
                    attempted.result
                }
            };
            // An attempt is applied by this process's next write of the execution (one
            // request, not two), wherever it ran. An attempt lost to a crash here runs again
            // when its execution is taken over: at least once, as Kestra's workers.
            observer.attempt_ended(&task, result.state, started.elapsed().as_millis());
            let _ = tx.send(Finished {
                exec_id: task.execution_id.clone(),
                result,
            });
        })
    }
}

/// The result of an attempt sent to the pool whose answer was lost: FAILED, with the reason in
/// its logs.
async fn lost_answer(
    worker: &Worker,
    files: &ExecutionFiles,
    task: &RunTask,
    e: &DispatchError,
) -> WorkerResult {
    let message = format!(
        "the attempt was sent to the pool but its answer was lost ({e}); it is not run again here, so it fails and the task's retry policy applies"
    );
    let mut logs = super::logs::AttemptLogs::new(files.namespace(), files.flow_id(), task);
    logs.push("ERROR", &message);
    if let Err(e) = logs
        .store(&weft_store::repo::LogRepo::new(worker.store.clone()))
        .await
    {
        tracing::warn!(error = %e, "could not store the attempt's logs");
    }
    WorkerResult {
        task_run_id: task.task_run_id.clone(),
        attempt: task.attempt,
        state: weft_executor::State::Failed,
        outputs: Default::default(),
        metrics: Vec::new(),
        log_file: None,
        working_directory_outputs: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> DispatchError {
        DispatchError::Status {
            url: "http://pool".into(),
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            answer: String::new(),
        }
    }

    #[test]
    fn only_an_attempt_the_pool_cannot_have_run_runs_here() {
        // refused before running: run here
        for code in [400, 401, 403, 404, 413, 422, 429, 503] {
            assert!(!status(code).may_have_run(), "{code}");
        }
        // the request may have reached a worker: never run it twice
        for code in [408, 500, 502, 504] {
            assert!(status(code).may_have_run(), "{code}");
        }
        let answer = DispatchError::Answer {
            url: "http://pool".into(),
            reason: "not json".into(),
        };
        assert!(answer.may_have_run());
    }
}
