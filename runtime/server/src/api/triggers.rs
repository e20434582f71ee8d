//! `/api/v1/triggers`: the triggers of a flow with their run-time state, and switching them on or
//! off without editing the flow (Kestra's `TriggerController`):
//!
//! - `GET /triggers/{namespace}/{flowId}` (`page`, `size`): `{"results": [trigger], "total": n}`,
//!   one entry per trigger of the flow's latest revision.
//! - `PUT /triggers` with a trigger (`namespace`, `flowId`, `triggerId`, `disabled`): sets it,
//!   answers the trigger as now stored; 404 when the flow or the trigger does not exist.
//! - `POST /triggers/set-disabled/by-triggers` with `{"triggers": [...], "disabled": bool}`: the
//!   same for each (unknown ones are skipped, as Kestra), answers `{"count": n}`.
//! - `GET /triggers/search` (`namespace`: that one and those under it, `flowId`, `q`: text in the
//!   namespace, flow id or trigger id, `page`, `size`): the triggers of every flow, by namespace,
//!   flow and trigger id, each with its `abstractTrigger` (id, type) beside its context.
//! - `POST /triggers/set-disabled/by-query` (the same filters, and `disabled=true|false`): sets
//!   every trigger the search finds, answers `{"count": n}`.
//!
//! A trigger is answered as Kestra's trigger context: `namespace`, `flowId`, `triggerId`,
//! `disabled` (in the source or at run time: `disabled: true` in the source always wins) and
//! `date` (of the last switch, when there was one). The state is a [`ToggleRepo`] document.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use chrono::Utc;
use serde_json::{Value as JsonValue, json};
use weft_flow::Flow;
use weft_store::repo::{FlowRepo, RepoError, ToggleRepo, TriggerToggle};

use super::App;
use super::error::{ApiError, ApiResult};
use super::inputs::query_value;
use super::tenant::Tenant;

/// The latest revision of a flow, parsed; a 404 when there is none (or it is not valid any more).
async fn load_flow(app: &App, repo: &FlowRepo, namespace: &str, flow_id: &str) -> ApiResult<Flow> {
    let not_found = || ApiError::not_found(format!("flow {namespace}.{flow_id} not found"));
    let rev = match repo.get(namespace, flow_id).await {
        Ok(Some(rev)) if !rev.deleted => rev,
        Ok(_) | Err(RepoError::InvalidName { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    weft_flow::parse_flow(&rev.source, &app.setup.registry)
        .map(|p| p.flow)
        .map_err(|_| {
            ApiError::unprocessable(format!(
                "flow {namespace}.{flow_id}: its latest revision is not valid any more; fix it with PUT /api/v1/flows"
            ))
        })
}

/// A trigger as Kestra's trigger context.
fn trigger_json(
    namespace: &str,
    flow_id: &str,
    trigger_id: &str,
    in_source: bool,
    toggle: Option<&TriggerToggle>,
) -> JsonValue {
    json!({
        "namespace": namespace,
        "flowId": flow_id,
        "triggerId": trigger_id,
        "disabled": in_source || toggle.is_some_and(|t| t.disabled),
        "date": toggle.map(|t| t.date),
    })
}

/// The largest page `size`.
const MAX_PAGE_SIZE: usize = 1_000;

fn page_param(query: Option<&str>, name: &str, default: usize) -> ApiResult<usize> {
    match query_value(query, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` must be an integer from 1 to {MAX_PAGE_SIZE}, got `{v}`"
                ))
            }),
    }
}

/// `GET /triggers/{namespace}/{flowId}`.
pub(crate) async fn for_flow(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, flow_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let page = page_param(query.as_deref(), "page", 1)?;
    let size = page_param(query.as_deref(), "size", 10)?;
    let store = tenant.store(&app.store)?;
    let flow = load_flow(&app, &FlowRepo::new(store.clone()), &namespace, &flow_id).await?;
    let toggles = ToggleRepo::new(store).list(&namespace, &flow_id).await?;
    let all: Vec<JsonValue> = flow
        .triggers
        .iter()
        .map(|t| {
            trigger_json(
                &namespace,
                &flow_id,
                &t.id,
                t.disabled || flow.disabled,
                toggles.get(&t.id),
            )
        })
        .collect();
    let total = all.len();
    let results: Vec<JsonValue> = all
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect();
    Ok(Json(json!({ "results": results, "total": total })))
}

/// A string field of a trigger body; a 422 naming it when missing.
fn field<'a>(body: &'a JsonValue, name: &str, at: &str) -> ApiResult<&'a str> {
    body.get(name)
        .and_then(JsonValue::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::unprocessable(format!("{at}`{name}` is required (a string)")))
}

fn disabled_field(body: &JsonValue, at: &str) -> ApiResult<bool> {
    body.get("disabled")
        .and_then(JsonValue::as_bool)
        .ok_or_else(|| ApiError::unprocessable(format!("{at}`disabled` is required (a boolean)")))
}

fn parse_body(body: &Bytes) -> ApiResult<JsonValue> {
    let value: JsonValue = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::unprocessable("the body must be a JSON object"))
    }
}

/// Sets one trigger; its JSON as now stored. A 404 when the flow or the trigger does not exist.
async fn set_one(
    app: &App,
    tenant: &Tenant,
    namespace: &str,
    flow_id: &str,
    trigger_id: &str,
    disabled: bool,
) -> ApiResult<JsonValue> {
    let store = tenant.store(&app.store)?;
    let flow = load_flow(app, &FlowRepo::new(store.clone()), namespace, flow_id).await?;
    let Some(trigger) = flow.triggers.iter().find(|t| t.id == trigger_id) else {
        return Err(ApiError::not_found(format!(
            "flow {namespace}.{flow_id} has no trigger {trigger_id}"
        )));
    };
    let toggle = ToggleRepo::new(store)
        .set(namespace, flow_id, trigger_id, disabled, Utc::now())
        .await?;
    tracing::info!(%namespace, flow = %flow_id, trigger = %trigger_id, disabled,
        "trigger switched at run time");
    Ok(trigger_json(
        namespace,
        flow_id,
        trigger_id,
        trigger.disabled || flow.disabled,
        Some(&toggle),
    ))
}

/// `PUT /triggers`.
pub(crate) async fn update(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    body: Bytes,
) -> ApiResult<Json<JsonValue>> {
    let body = parse_body(&body)?;
    if body.get("backfill").is_some_and(|b| !b.is_null()) {
        return Err(ApiError::unprocessable(
            "`backfill` is not supported by weft; only `disabled` can be set",
        ));
    }
    let namespace = field(&body, "namespace", "")?;
    let flow_id = field(&body, "flowId", "")?;
    let trigger_id = field(&body, "triggerId", "")?;
    let disabled = disabled_field(&body, "")?;
    let out = set_one(&app, &tenant, namespace, flow_id, trigger_id, disabled).await?;
    Ok(Json(out))
}

/// `POST /triggers/set-disabled/by-triggers`.
pub(crate) async fn set_disabled_by_triggers(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    body: Bytes,
) -> ApiResult<Json<JsonValue>> {
    let body = parse_body(&body)?;
    let disabled = disabled_field(&body, "")?;
    let triggers = body
        .get("triggers")
        .and_then(JsonValue::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::unprocessable("`triggers` is required (a non-empty list of triggers)")
        })?;
    let mut wanted = Vec::with_capacity(triggers.len());
    for (i, t) in triggers.iter().enumerate() {
        let at = format!("triggers[{i}]: ");
        wanted.push((
            field(t, "namespace", &at)?,
            field(t, "flowId", &at)?,
            field(t, "triggerId", &at)?,
        ));
    }
    for (namespace, flow_id, trigger_id) in &wanted {
        match set_one(&app, &tenant, namespace, flow_id, trigger_id, disabled).await {
            Ok(_) => {}
            // as Kestra: a trigger that does not exist is skipped
            Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Json(json!({ "count": wanted.len() })))
}

/// The filters of a trigger search.
struct Filters {
    namespace: Option<String>,
    flow_id: Option<String>,
    q: Option<String>,
}

impl Filters {
    fn from_query(query: Option<&str>) -> Filters {
        let text = |name: &str| query_value(query, name).filter(|v| !v.is_empty());
        Filters {
            namespace: text("namespace"),
            flow_id: text("flowId"),
            q: text("q").map(|q| q.to_lowercase()),
        }
    }

    fn flow_matches(&self, namespace: &str, flow_id: &str) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|n| weft_flow::ids::namespace_within(namespace, n))
            && self.flow_id.as_deref().is_none_or(|f| f == flow_id)
    }

    fn matches(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> bool {
        self.q.as_deref().is_none_or(|q| {
            [namespace, flow_id, trigger_id]
                .iter()
                .any(|field| field.to_lowercase().contains(q))
        })
    }
}

/// A trigger the search found.
struct Found {
    namespace: String,
    flow_id: String,
    trigger_id: String,
    trigger_type: String,
    in_source: bool,
    toggle: Option<TriggerToggle>,
}

/// Every trigger of the tenant's flows that `filters` select, by namespace, flow and trigger id.
/// A flow whose latest revision no longer parses is skipped (it fires nothing either).
async fn find(app: &App, tenant: &Tenant, filters: &Filters) -> ApiResult<Vec<Found>> {
    let store = tenant.store(&app.store)?;
    let flows = FlowRepo::new(store.clone());
    let toggles = ToggleRepo::new(store);
    let mut summaries = flows.list_every().await?;
    summaries.retain(|f| !f.deleted && filters.flow_matches(&f.namespace, &f.id));
    summaries.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
    let mut found = Vec::new();
    for summary in summaries {
        let flow = match load_flow(app, &flows, &summary.namespace, &summary.id).await {
            Ok(flow) => flow,
            Err(e) if e.status().is_client_error() => continue,
            Err(e) => return Err(e),
        };
        let selected: Vec<_> = flow
            .triggers
            .iter()
            .filter(|t| filters.matches(&flow.namespace, &flow.id, &t.id))
            .collect();
        if selected.is_empty() {
            continue;
        }
        let mut states = toggles.list(&flow.namespace, &flow.id).await?;
        for t in selected {
            found.push(Found {
                namespace: flow.namespace.clone(),
                flow_id: flow.id.clone(),
                trigger_id: t.id.clone(),
                trigger_type: t.type_name.clone(),
                in_source: t.disabled || flow.disabled,
                toggle: states.remove(&t.id),
            });
        }
    }
    Ok(found)
}

/// `GET /triggers/search`.
pub(crate) async fn search(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let page = page_param(query.as_deref(), "page", 1)?;
    let size = page_param(query.as_deref(), "size", 10)?;
    let found = find(&app, &tenant, &Filters::from_query(query.as_deref())).await?;
    let total = found.len();
    let results: Vec<JsonValue> = found
        .iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .map(|f| {
            let context = trigger_json(
                &f.namespace,
                &f.flow_id,
                &f.trigger_id,
                f.in_source,
                f.toggle.as_ref(),
            );
            json!({
                "abstractTrigger": {
                    "id": f.trigger_id,
                    "type": f.trigger_type,
                    "disabled": f.in_source,
                },
                "triggerContext": context,
            })
        })
        .collect();
    Ok(Json(json!({ "results": results, "total": total })))
}

/// `POST /triggers/set-disabled/by-query`.
pub(crate) async fn set_disabled_by_query(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let disabled = match query_value(query.as_deref(), "disabled").as_deref() {
        Some("true") => true,
        Some("false") => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "`disabled` is required, true or false (got {})",
                other.map_or("nothing".to_string(), |v| format!("`{v}`"))
            )));
        }
    };
    let found = find(&app, &tenant, &Filters::from_query(query.as_deref())).await?;
    let mut count = 0;
    for f in &found {
        match set_one(
            &app,
            &tenant,
            &f.namespace,
            &f.flow_id,
            &f.trigger_id,
            disabled,
        )
        .await
        {
            Ok(_) => count += 1,
            // the flow changed since the search: as Kestra, a trigger that is gone is skipped
            Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Json(json!({ "count": count })))
}
