//! `/api/v1/executions`: start (multipart inputs, `?wait=true`, `?labels=k:v`), get, search,
//! delete, logs, files of `kestra:///` URIs, kill, resume, restart, replay. Every answer about
//! an execution is read from storage, so any instance gives it.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde_json::{Value as JsonValue, json};
use weft_engine::Level;
use weft_executor::inputs::mask_secrets;
use weft_executor::{Event, Execution, State as ExecState};
use weft_store::DynStore;
use weft_store::repo::{ExecutionFiles, ExecutionIndex, IndexKey, LogRepo};

use super::App;
use super::drive::{self, Action, Init};
use super::error::{ApiError, ApiResult};
use super::inputs::{self, query_flag, query_value};
use super::tenant::Tenant;
use crate::runner::{RunError, StartRequest};

/// An execution as the API shows it (secret inputs masked).
pub(crate) fn exec_json(exec: &Execution) -> JsonValue {
    match serde_json::to_value(exec) {
        Ok(v) => mask_secrets(&v),
        Err(e) => json!({ "id": exec.id, "error": e.to_string() }),
    }
}

/// Reads an execution from the tenant's store; 404 when absent.
pub(crate) async fn read(store: &DynStore, id: &str) -> ApiResult<Execution> {
    crate::executions(store.clone())
        .find(id)
        .await?
        .map(|v| v.value)
        .ok_or_else(|| ApiError::not_found(format!("execution {id} not found")))
}

/// The longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The seed of the execution a start with an `Idempotency-Key` header creates: the same key on
/// the same flow of the same tenant gives the same execution id, so a request repeated (a client
/// retrying after a lost answer, a load balancer retrying on another instance) answers the
/// execution the first one created instead of starting a second one. A 400 for a key that is
/// empty, longer than 255 bytes or not visible ASCII.
pub(crate) fn idempotency_seed(
    headers: &HeaderMap,
    tenant: &Tenant,
    namespace: &str,
    flow_id: &str,
) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.as_bytes();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
    {
        return Err(ApiError::bad_request(format!(
            "header Idempotency-Key: must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )));
    }
    Ok(Some(weft_executor::ids::hash64(&[
        b"idempotency-key",
        tenant.0.as_bytes(),
        namespace.as_bytes(),
        flow_id.as_bytes(),
        key,
    ])))
}

/// Starts an execution and answers it: as created, or terminated with `wait`. A start whose
/// `seed` (from an `Idempotency-Key`) names an execution that exists answers that one.
pub(crate) async fn start_and_answer(
    app: Arc<App>,
    tenant: &Tenant,
    store: DynStore,
    namespace: String,
    flow_id: String,
    mut req: StartRequest,
    wait: bool,
) -> ApiResult<Json<JsonValue>> {
    // nobody can ask for it before it ended: it may stay in memory until then
    req.defer_create = wait;
    let started = drive::spawn(
        app.clone(),
        tenant.0.clone(),
        store.clone(),
        Init::Start {
            namespace,
            flow_id,
            req,
        },
    )
    .await;
    let mut driven = match started {
        Ok(driven) => driven,
        Err(RunError::Exists(id)) => return answer_existing(&app, &store, &id, wait).await,
        Err(e) => return Err(e.into()),
    };
    if !wait {
        return Ok(Json(exec_json(&driven.first)));
    }
    let ended = drive::wait_done(&mut driven.done, app.wait_timeout).await;
    match read(&store, &driven.first.id).await {
        Ok(exec) => Ok(Json(exec_json(&exec))),
        // kept in memory until its first write, which never came: its driver stopped
        Err(e) if !ended && e.status() == StatusCode::NOT_FOUND => {
            Err(ApiError::internal(format!(
                "the driver of execution {} stopped before it was stored",
                driven.first.id
            )))
        }
        Err(e) => Err(e),
    }
}

/// Answers an execution a repeated start created earlier: as it is, or once it terminated with
/// `wait` (it may be driven by another instance: read from storage until then).
async fn answer_existing(
    app: &App,
    store: &DynStore,
    id: &str,
    wait: bool,
) -> ApiResult<Json<JsonValue>> {
    let deadline = tokio::time::Instant::now() + app.wait_timeout;
    loop {
        let exec = read(store, id).await?;
        if !wait || exec.state.current.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(exec_json(&exec)));
        }
        tokio::time::sleep(EXISTING_POLL).await;
    }
}

/// How often a repeated `?wait=true` start reads the execution it waits for.
const EXISTING_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// `POST /executions/{namespace}/{flowId}`.
pub(crate) async fn start(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, flow_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> ApiResult<Json<JsonValue>> {
    let store = tenant.store(&app.store)?;
    let labels = inputs::labels(query.as_deref())?;
    let wait = query_flag(query.as_deref(), "wait");
    let seed = idempotency_seed(request.headers(), &tenant, &namespace, &flow_id)?;
    let form = inputs::read(request, app.max_body).await?;
    let req = StartRequest {
        inputs: form.values,
        files: form.files,
        labels,
        seed,
        ..StartRequest::default()
    };
    start_and_answer(app, &tenant, store, namespace, flow_id, req, wait).await
}

/// `GET /executions/{id}`.
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    let store = tenant.store(&app.store)?;
    Ok(Json(exec_json(&read(&store, &id).await?)))
}

/// `DELETE /executions/{id}`: the document, its worker results and its index entry (204), and,
/// as in Kestra unless `deleteLogs=false` / `deleteStorage=false`, its logs and its files. A
/// running execution is refused (kill it first).
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    let store = tenant.store(&app.store)?;
    let exec = read(&store, &id).await?;
    if !exec.state.current.is_terminal() {
        return Err(ApiError::conflict(format!(
            "execution {id} is {}: kill it before deleting it",
            exec.state.current.as_str()
        )));
    }
    let keep = |flag: &str| {
        query_value(query.as_deref(), flag).is_some_and(|v| v.eq_ignore_ascii_case("false"))
    };
    if !keep("deleteStorage") {
        ExecutionFiles::new(store.clone(), &exec.namespace, &exec.flow_id, &id)?
            .delete_all()
            .await?;
    }
    if !keep("deleteLogs") {
        LogRepo::new(store.clone()).delete_all(&id).await?;
    }
    crate::executions(store.clone()).delete(&id, None).await?;
    if let Some(start_date) = exec
        .state
        .start_date
        .or_else(|| exec.state.histories.first().map(|h| h.date))
    {
        ExecutionIndex::new(store)
            .delete(&IndexKey {
                namespace: exec.namespace.clone(),
                flow_id: exec.flow_id.clone(),
                id: id.clone(),
                start_date,
            })
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /executions/search?namespace=&flowId=&state=&startDate=&endDate=&timeRange=&page=1&size=10`:
/// newest first, `{"results": [...], "total": N}`. `namespace` matches sub-namespaces too;
/// `state` may be repeated; `startDate` and `endDate` (RFC 3339) bound the date the execution
/// was created, as does `timeRange` (an ISO-8601 duration back from now, Kestra's `PT24H`).
pub(crate) async fn search(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let store = tenant.store(&app.store)?;
    let q = query.as_deref();
    let namespace = query_value(q, "namespace").filter(|s| !s.is_empty());
    let flow_id = query_value(q, "flowId").filter(|s| !s.is_empty());
    let states: Vec<String> = inputs::query_pairs(q)
        .into_iter()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| v.to_ascii_uppercase())
        .collect();
    let (page, size) = inputs::paging(q)?;
    let (since, until) = created_between(q, Utc::now())?;
    let index = ExecutionIndex::new(store.clone());
    let mut keys = index.list_under(namespace.as_deref()).await?;
    // the index keys carry the flow and the start date: these filters read nothing more
    keys.retain(|k| {
        flow_id.as_ref().is_none_or(|f| &k.flow_id == f)
            && since.is_none_or(|s| k.start_date >= s)
            && until.is_none_or(|u| k.start_date <= u)
    });
    keys.sort_by(|a, b| b.start_date.cmp(&a.start_date).then(b.id.cmp(&a.id)));
    if !states.is_empty() {
        // the state is in each entry's body: read them, many at a time, in order
        let read: Vec<_> = futures::stream::iter(keys)
            .map(|k| {
                let index = &index;
                async move { index.get(&k).await.map(|entry| (k, entry)) }
            })
            .buffered(SEARCH_READS)
            .collect()
            .await;
        keys = Vec::new();
        for got in read {
            if let (k, Some(entry)) = got?
                && states.contains(&entry.state)
            {
                keys.push(k);
            }
        }
    }
    let total = keys.len();
    let repo = crate::executions(store);
    let mut results = Vec::new();
    for k in keys.iter().skip((page - 1) * size).take(size) {
        if let Some(exec) = repo.find(&k.id).await? {
            results.push(exec_json(&exec.value));
        }
    }
    Ok(Json(json!({ "results": results, "total": total })))
}

/// How many index entries a search with a `state` filter reads at a time.
const SEARCH_READS: usize = 32;

/// The earliest and latest creation dates a search keeps (each bound optional).
type CreatedBetween = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The creation dates a search keeps, from `startDate`, `endDate` and `timeRange` (the later
/// of `startDate` and `now - timeRange`).
fn created_between(q: Option<&str>, now: DateTime<Utc>) -> ApiResult<CreatedBetween> {
    let date = |name: &str| -> ApiResult<Option<DateTime<Utc>>> {
        query_value(q, name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| {
                        ApiError::bad_request(format!(
                            "`{name}` must be a date-time such as 2024-05-01T00:00:00Z, got `{v}`: {e}"
                        ))
                    })
            })
            .transpose()
    };
    let mut since = date("startDate")?;
    let until = date("endDate")?;
    if let Some(v) = query_value(q, "timeRange").filter(|v| !v.is_empty()) {
        let range = weft_flow::duration::parse(&v).map_err(|e| {
            ApiError::bad_request(format!(
                "`timeRange` must be an ISO-8601 duration such as PT24H, got `{v}`: {}",
                e.0
            ))
        })?;
        let from = now - range.to_chrono();
        since = Some(since.map_or(from, |s| s.max(from)));
    }
    Ok((since, until))
}

/// `GET /executions/{id}/logs` and `GET /logs/{id}` (`?minLevel=`, `?taskRunId=`, `?taskId=`,
/// `?attempt=`): the log records of an execution, in time order.
pub(crate) async fn logs(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let store = tenant.store(&app.store)?;
    read(&store, &id).await?;
    let q = query.as_deref();
    let min = match query_value(q, "minLevel") {
        None => None,
        Some(l) => Some(Level::parse(&l).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`minLevel` must be TRACE, DEBUG, INFO, WARN or ERROR, not `{l}`"
            ))
        })?),
    };
    let task_run = query_value(q, "taskRunId");
    let task = query_value(q, "taskId");
    let attempt = query_value(q, "attempt").and_then(|a| a.parse::<u64>().ok());
    let records = LogRepo::new(store).read_all(&id).await?;
    let text = |r: &JsonValue, k: &str| r.get(k).and_then(JsonValue::as_str).map(str::to_string);
    let kept: Vec<JsonValue> = records
        .into_iter()
        .filter(|r| {
            // a record without a known level counts as INFO
            min.is_none_or(|m| {
                text(r, "level")
                    .and_then(|l| Level::parse(&l))
                    .unwrap_or(Level::Info)
                    >= m
            }) && task_run
                .as_ref()
                .is_none_or(|t| text(r, "taskRunId").as_ref() == Some(t))
                && task
                    .as_ref()
                    .is_none_or(|t| text(r, "taskId").as_ref() == Some(t))
                && attempt
                    .is_none_or(|a| r.get("attemptNumber").and_then(JsonValue::as_u64) == Some(a))
        })
        .collect();
    Ok(Json(JsonValue::Array(kept)))
}

/// `GET /executions/{id}/file?path=kestra:///...`: a file of the execution's internal storage.
pub(crate) async fn file(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let store = tenant.store(&app.store)?;
    let exec = read(&store, &id).await?;
    let Some(path) = query_value(query.as_deref(), "path") else {
        return Err(ApiError::bad_request(
            "give the file as `?path=kestra:///...`",
        ));
    };
    let files = ExecutionFiles::new(store, &exec.namespace, &exec.flow_id, &exec.id)?;
    let bytes = files.get(&path).await?;
    let name = path.rsplit('/').next().unwrap_or("file").replace('"', "");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// `DELETE /executions/{id}/kill` (POST too): 202 while the kill is carried out.
pub(crate) async fn kill(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let store = tenant.store(&app.store)?;
    let exec = read(&store, &id).await?;
    if exec.state.current.is_terminal() {
        return Err(ApiError::conflict(format!(
            "execution {id} already ended ({})",
            exec.state.current.as_str()
        )));
    }
    if !app.drivers.send(&tenant.0, &id, Event::Kill) {
        drive::spawn(
            app.clone(),
            tenant.0.clone(),
            store,
            Init::Load {
                id: id.clone(),
                action: Action::Kill,
            },
        )
        .await?;
    }
    Ok((StatusCode::ACCEPTED, Json(exec_json(&exec))).into_response())
}

/// `POST /executions/{id}/resume` with the Pause task's `onResume` values (multipart or a JSON
/// object; given as strings): 204.
pub(crate) async fn resume(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<StatusCode> {
    let store = tenant.store(&app.store)?;
    let exec = read(&store, &id).await?;
    if exec.state.current != ExecState::Paused {
        return Err(ApiError::conflict(format!(
            "execution {id} is {}: only a PAUSED execution can be resumed",
            exec.state.current.as_str()
        )));
    }
    let form = inputs::read(request, app.max_body).await?;
    let req = StartRequest {
        inputs: form.values,
        files: form.files,
        ..StartRequest::default()
    };
    // the session driving it types and validates the inputs (Kestra's errors for a missing or
    // invalid `onResume` input) and uploads the files
    let req = match app.drivers.sender(&tenant.0, &id) {
        Some(session) => match session.resume(&id, req) {
            Ok(answer) => {
                return match answer.await {
                    Ok(result) => result
                        .map(|()| StatusCode::NO_CONTENT)
                        .map_err(ApiError::from),
                    Err(_) => Err(ApiError::internal(format!(
                        "the driver of execution {id} stopped while resuming it"
                    ))),
                };
            }
            // the driver ended meanwhile: resume from storage as below
            Err(req) => *req,
        },
        None => req,
    };
    drive::spawn(
        app.clone(),
        tenant.0.clone(),
        store,
        Init::Load {
            id,
            action: Action::Resume { req },
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /executions/{id}/restart`: a FAILED or KILLED execution runs again from its failed
/// tasks (same id); answers it RESTARTED.
pub(crate) async fn restart(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    let store = tenant.store(&app.store)?;
    // an unknown id is a 404 from the driver's read
    let driven = drive::spawn(
        app.clone(),
        tenant.0.clone(),
        store,
        Init::Load {
            id,
            action: Action::Restart,
        },
    )
    .await?;
    Ok(Json(exec_json(&driven.first)))
}

/// `POST /executions/{id}/replay?taskRunId=`: a new execution from that task run (from the
/// start without one); answers the new execution.
pub(crate) async fn replay(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let store = tenant.store(&app.store)?;
    let exec = read(&store, &id).await?;
    let task_run_id = match query_value(query.as_deref(), "taskRunId") {
        Some(t) => {
            if exec.task_run(&t).is_none() {
                return Err(ApiError::bad_request(format!(
                    "execution {id} has no task run `{t}`"
                )));
            }
            t
        }
        None => exec
            .task_run_list
            .first()
            .map(|t| t.id.clone())
            .ok_or_else(|| {
                ApiError::conflict(format!("execution {id} has no task run to replay from"))
            })?,
    };
    let driven = drive::spawn(
        app.clone(),
        tenant.0.clone(),
        store,
        Init::Load {
            id,
            action: Action::Replay { task_run_id },
        },
    )
    .await?;
    Ok(Json(exec_json(&driven.first)))
}
