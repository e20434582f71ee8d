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
//! - Backfill of a Schedule trigger: `PUT /triggers` with `backfill` (`start`, `end`, `inputs`,
//!   `labels`, `paused`) sets it; `POST /triggers/backfill/pause`, `/unpause` and `/delete` with
//!   the trigger (`namespace`, `flowId`, `triggerId`) change it. The ticks fire its dates (see
//!   [`super::schedules`]); a trigger answers its `backfill` while it is not done.
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
use super::inputs::{self, query_value};
use super::schedules::{self, Backfill, BackfillChange};
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

/// Adds `backfill` to a trigger's JSON when it has one.
fn with_backfill(mut trigger: JsonValue, backfill: Option<&Backfill>) -> JsonValue {
    if let (Some(b), Some(obj)) = (backfill, trigger.as_object_mut()) {
        obj.insert(
            "backfill".into(),
            serde_json::to_value(b).unwrap_or(JsonValue::Null),
        );
    }
    trigger
}

/// `GET /triggers/{namespace}/{flowId}`.
pub(crate) async fn for_flow(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, flow_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JsonValue>> {
    let (page, size) = inputs::paging(query.as_deref())?;
    let store = tenant.store(&app.store)?;
    let flow = load_flow(&app, &FlowRepo::new(store.clone()), &namespace, &flow_id).await?;
    let toggles = ToggleRepo::new(store).list(&namespace, &flow_id).await?;
    let backfills = schedules::backfills_of(&app, &tenant.0, &namespace, &flow_id).await?;
    let all: Vec<JsonValue> = flow
        .triggers
        .iter()
        .map(|t| {
            let json = trigger_json(
                &namespace,
                &flow_id,
                &t.id,
                t.disabled || flow.disabled,
                toggles.get(&t.id),
            );
            with_backfill(json, backfills.get(&t.id))
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
    let namespace = field(&body, "namespace", "")?;
    let flow_id = field(&body, "flowId", "")?;
    let trigger_id = field(&body, "triggerId", "")?;
    let backfill = match body.get("backfill") {
        None | Some(JsonValue::Null) => None,
        Some(b) => Some(parse_backfill(b)?),
    };
    // `disabled` may be left out when the call sets a backfill
    let disabled = match (body.get("disabled"), &backfill) {
        (None | Some(JsonValue::Null), Some(_)) => None,
        _ => Some(disabled_field(&body, "")?),
    };
    // the backfill first: a trigger that cannot take one (not a schedule) leaves the call
    // without effect, its toggle unchanged
    let backfilled = match backfill {
        Some(b) => Some(
            schedules::set_backfill(
                &app,
                &tenant.0,
                namespace,
                flow_id,
                trigger_id,
                BackfillChange::Set(b),
            )
            .await?,
        ),
        None => None,
    };
    let mut out = match disabled {
        Some(d) => set_one(&app, &tenant, namespace, flow_id, trigger_id, d).await?,
        None => {
            let store = tenant.store(&app.store)?;
            let flow = load_flow(&app, &FlowRepo::new(store.clone()), namespace, flow_id).await?;
            let toggle = ToggleRepo::new(store)
                .list(namespace, flow_id)
                .await?
                .remove(trigger_id);
            let in_source = flow.disabled
                || flow
                    .triggers
                    .iter()
                    .find(|t| t.id == trigger_id)
                    .is_some_and(|t| t.disabled);
            trigger_json(namespace, flow_id, trigger_id, in_source, toggle.as_ref())
        }
    };
    if let Some(set) = backfilled {
        tracing::info!(%namespace, flow = %flow_id, trigger = %trigger_id, "backfill set");
        out = with_backfill(out, set.as_ref());
    }
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
    let (page, size) = inputs::paging(query.as_deref())?;
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

/// A `backfill` of a `PUT /triggers` body; `end` defaults to now, as in Kestra.
fn parse_backfill(b: &JsonValue) -> ApiResult<Backfill> {
    let bad = |m: String| ApiError::unprocessable(format!("backfill: {m}"));
    let date = |name: &str| -> ApiResult<Option<chrono::DateTime<Utc>>> {
        match b.get(name) {
            None | Some(JsonValue::Null) => Ok(None),
            Some(JsonValue::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|e| {
                    bad(format!(
                        "`{name}` is not an ISO-8601 date-time with an offset ({e}): `{s}`"
                    ))
                }),
            Some(other) => Err(bad(format!(
                "`{name}` must be a date-time string, got {other}"
            ))),
        }
    };
    let now = Utc::now();
    let start = date("start")?.ok_or_else(|| bad("`start` is required".into()))?;
    let end = date("end")?.unwrap_or(now);
    if end < start {
        return Err(bad(format!("`end` ({end}) is before `start` ({start})")));
    }
    let inputs = match b.get("inputs") {
        None | Some(JsonValue::Null) => serde_json::Map::new(),
        Some(JsonValue::Object(m)) => m.clone(),
        Some(other) => return Err(bad(format!("`inputs` must be an object, got {other}"))),
    };
    let labels = match b.get("labels") {
        None | Some(JsonValue::Null) => Vec::new(),
        Some(l) => serde_json::from_value::<weft_flow::model::Labels>(l.clone())
            .map(|l| l.0)
            .map_err(|e| bad(format!("`labels`: {e}")))?,
    };
    let paused = match b.get("paused") {
        None | Some(JsonValue::Null) => false,
        Some(JsonValue::Bool(p)) => *p,
        Some(other) => return Err(bad(format!("`paused` must be a boolean, got {other}"))),
    };
    Ok(Backfill {
        start,
        end,
        current_date: start,
        paused,
        inputs,
        labels,
        set_at: now,
    })
}

/// `POST /triggers/backfill/{pause|unpause|delete}`: the trigger as it now stands.
async fn change_backfill(
    app: &App,
    tenant: &Tenant,
    body: &Bytes,
    change: BackfillChange,
) -> ApiResult<Json<JsonValue>> {
    let body = parse_body(body)?;
    let namespace = field(&body, "namespace", "")?;
    let flow_id = field(&body, "flowId", "")?;
    let trigger_id = field(&body, "triggerId", "")?;
    let store = tenant.store(&app.store)?;
    let flow = load_flow(app, &FlowRepo::new(store.clone()), namespace, flow_id).await?;
    let Some(trigger) = flow.triggers.iter().find(|t| t.id == trigger_id) else {
        return Err(ApiError::not_found(format!(
            "flow {namespace}.{flow_id} has no trigger {trigger_id}"
        )));
    };
    let backfill =
        schedules::set_backfill(app, &tenant.0, namespace, flow_id, trigger_id, change).await?;
    let toggle = ToggleRepo::new(store)
        .list(namespace, flow_id)
        .await?
        .remove(trigger_id);
    let json = trigger_json(
        namespace,
        flow_id,
        trigger_id,
        trigger.disabled || flow.disabled,
        toggle.as_ref(),
    );
    Ok(Json(with_backfill(json, backfill.as_ref())))
}

/// `POST /triggers/backfill/pause`.
pub(crate) async fn pause_backfill(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    body: Bytes,
) -> ApiResult<Json<JsonValue>> {
    change_backfill(&app, &tenant, &body, BackfillChange::Pause(true)).await
}

/// `POST /triggers/backfill/unpause`.
pub(crate) async fn unpause_backfill(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    body: Bytes,
) -> ApiResult<Json<JsonValue>> {
    change_backfill(&app, &tenant, &body, BackfillChange::Pause(false)).await
}

/// `POST /triggers/backfill/delete`.
pub(crate) async fn delete_backfill(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    body: Bytes,
) -> ApiResult<Json<JsonValue>> {
    change_backfill(&app, &tenant, &body, BackfillChange::Delete).await
}
