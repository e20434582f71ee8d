//! `/api/v1/flows`: create (YAML body), update (a new revision), get (`?revision=`,
//! `?source=true`), delete, list a namespace, revisions, validate (one result per document).
//!
//! A flow is answered as Kestra shapes it: the flow's own fields as written, with `revision`
//! and `deleted` (and `source` when asked for).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value as JsonValue, json};
use weft_flow::Diagnostic;
use weft_store::repo::{FlowRepo, FlowRevision};

use super::error::{ApiError, ApiResult};
use super::inputs::{query_flag, query_value};
use super::tenant::Tenant;
use super::{App, schedules};

/// `{line, column, path, message}` of a diagnostic.
fn diagnostic_json(d: &Diagnostic) -> JsonValue {
    json!({
        "line": d.pos.line,
        "column": d.pos.col,
        "path": d.path.to_string(),
        "message": d.message,
    })
}

/// Parses and validates a flow source; a 422 naming the first error and its line otherwise.
fn check(source: &str, app: &App) -> ApiResult<weft_flow::Flow> {
    match weft_flow::parse_flow(source, &app.setup.registry) {
        Ok(parsed) => Ok(parsed.flow),
        Err(diags) => {
            let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
            let first = errors
                .first()
                .map(|d| format!("line {}, column {}: {d}", d.pos.line, d.pos.col))
                .unwrap_or_else(|| "the flow is not valid".into());
            let more = if errors.len() > 1 {
                format!(" (and {} more)", errors.len() - 1)
            } else {
                String::new()
            };
            Err(
                ApiError::unprocessable(format!("invalid flow: {first}{more}")).with_details(
                    JsonValue::Array(errors.iter().map(|d| diagnostic_json(d)).collect()),
                ),
            )
        }
    }
}

/// The JSON of a stored revision.
fn flow_json(rev: &FlowRevision, with_source: bool) -> JsonValue {
    let mut value: JsonValue = if rev.deleted {
        json!({ "id": rev.id, "namespace": rev.namespace })
    } else {
        serde_yaml::from_str(&rev.source)
            .unwrap_or_else(|_| json!({ "id": rev.id, "namespace": rev.namespace }))
    };
    if let Some(map) = value.as_object_mut() {
        map.insert("revision".into(), json!(rev.revision));
        map.insert("deleted".into(), json!(rev.deleted));
        if with_source {
            map.insert("source".into(), json!(rev.source));
        }
    }
    value
}

fn repo(app: &App, tenant: &Tenant) -> ApiResult<FlowRepo> {
    Ok(FlowRepo::new(tenant.store(&app.store)?))
}

/// What follows a flow's save (`Some`) or deletion (`None`): its schedules follow it, and this
/// process's drivers see its Flow triggers at once.
async fn saved(
    app: &App,
    tenant: &Tenant,
    namespace: &str,
    id: &str,
    flow: Option<&weft_flow::Flow>,
) -> ApiResult<()> {
    app.flows.flows_changed(&tenant.0);
    schedules::sync(app, &tenant.0, namespace, id, flow, Utc::now()).await
}

/// `POST /flows` with a YAML body: a new flow (409 when it exists; use PUT).
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    body: String,
) -> ApiResult<Json<JsonValue>> {
    let flow = check(&body, &app)?;
    let repo = repo(&app, &tenant)?;
    if repo.get(&flow.namespace, &flow.id).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "flow {}.{} already exists: update it with PUT /api/v1/flows/{}/{}",
            flow.namespace, flow.id, flow.namespace, flow.id
        )));
    }
    schedules::check(&flow)?;
    let rev = repo.save(&body).await?;
    saved(&app, &tenant, &flow.namespace, &flow.id, Some(&flow)).await?;
    Ok(Json(flow_json(&rev, true)))
}

/// `PUT /flows/{namespace}/{id}` with a YAML body: a new revision (none when the source is
/// unchanged).
pub(crate) async fn update(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, id)): Path<(String, String)>,
    body: String,
) -> ApiResult<Json<JsonValue>> {
    let flow = check(&body, &app)?;
    if flow.namespace != namespace || flow.id != id {
        return Err(ApiError::unprocessable(format!(
            "the source declares flow {}.{}, not {namespace}.{id} (a flow's id and namespace never change)",
            flow.namespace, flow.id
        )));
    }
    let repo = repo(&app, &tenant)?;
    let Some(latest) = repo.get(&namespace, &id).await? else {
        return Err(ApiError::not_found(format!(
            "flow {namespace}.{id} not found: create it with POST /api/v1/flows"
        )));
    };
    schedules::check(&flow)?;
    if latest.source == body {
        // no new revision; its schedules are written again all the same, so that a save whose
        // process died between the revision and its schedules is mended by sending it again
        saved(&app, &tenant, &namespace, &id, Some(&flow)).await?;
        return Ok(Json(flow_json(&latest, true)));
    }
    let rev = repo.update(&namespace, &id, &body).await?;
    saved(&app, &tenant, &namespace, &id, Some(&flow)).await?;
    Ok(Json(flow_json(&rev, true)))
}

/// `GET /flows/{namespace}/{id}` (`?revision=N`, `?source=true`).
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let repo = repo(&app, &tenant)?;
    let with_source = query_flag(query.as_deref(), "source");
    let found = match query_value(query.as_deref(), "revision") {
        Some(r) => {
            let r: u32 = r.parse().map_err(|_| {
                ApiError::bad_request(format!("revision `{r}` is not a positive number"))
            })?;
            repo.get_revision(&namespace, &id, r).await?
        }
        None => repo.get(&namespace, &id).await?,
    };
    let rev =
        found.ok_or_else(|| ApiError::not_found(format!("flow {namespace}.{id} not found")))?;
    Ok(Json(flow_json(&rev, with_source)))
}

/// `DELETE /flows/{namespace}/{id}`: 204; the revisions stay in the history.
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    repo(&app, &tenant)?.delete(&namespace, &id).await?;
    saved(&app, &tenant, &namespace, &id, None).await?;
    // its triggers' run-time toggles go with it (a flow saved again later starts enabled)
    weft_store::repo::ToggleRepo::new(tenant.store(&app.store)?)
        .delete_flow(&namespace, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /flows/{namespace}`: the flows of a namespace, latest revisions.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(namespace): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    let repo = repo(&app, &tenant)?;
    let mut out = Vec::new();
    for summary in repo.list(&namespace).await? {
        if let Some(rev) = repo
            .get_revision(&namespace, &summary.id, summary.revision)
            .await?
        {
            out.push(flow_json(&rev, false));
        }
    }
    Ok(Json(JsonValue::Array(out)))
}

/// `GET /flows/{namespace}/{id}/revisions`: every revision, oldest first, with its source.
pub(crate) async fn revisions(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<Json<JsonValue>> {
    let repo = repo(&app, &tenant)?;
    let summaries = repo.revisions(&namespace, &id).await?;
    if summaries.is_empty() {
        return Err(ApiError::not_found(format!(
            "flow {namespace}.{id} not found"
        )));
    }
    let mut out = Vec::new();
    for s in summaries {
        if let Some(rev) = repo.get_revision(&namespace, &id, s.revision).await? {
            out.push(flow_json(&rev, true));
        }
    }
    Ok(Json(JsonValue::Array(out)))
}

/// `POST /flows/validate` with YAML (several documents separated by `---`): one result per
/// document, in order: `index`, `flow`, `namespace`, `constraints` (the errors as text, absent
/// when valid), `errors` (each with `line`, `column`, `path`, `message`), `warnings`.
pub(crate) async fn validate(State(app): State<Arc<App>>, body: String) -> Response {
    let reports = weft_flow::check_documents(&body, &app.setup.registry);
    let results: Vec<JsonValue> = reports
        .iter()
        .map(|r| {
            let errors: Vec<&Diagnostic> = r.diagnostics.iter().filter(|d| d.is_error()).collect();
            let warnings: Vec<String> = r
                .diagnostics
                .iter()
                .filter(|d| !d.is_error())
                .map(|d| format!("line {}, column {}: {d}", d.pos.line, d.pos.col))
                .collect();
            let mut v = json!({
                "index": r.index,
                "flow": r.id,
                "namespace": r.namespace,
                "outdated": false,
                "deprecationPaths": [],
                "infos": [],
                "warnings": warnings,
                "errors": errors.iter().map(|d| diagnostic_json(d)).collect::<Vec<_>>(),
            });
            if !errors.is_empty() {
                v["constraints"] = JsonValue::String(
                    errors
                        .iter()
                        .map(|d| format!("line {}, column {}: {d}", d.pos.line, d.pos.col))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            v
        })
        .collect();
    Json(JsonValue::Array(results)).into_response()
}
