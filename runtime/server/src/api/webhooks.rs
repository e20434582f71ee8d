//! `GET|POST|PUT /api/v1/executions/webhook/{namespace}/{flowId}/{key}`: the flow's Webhook
//! trigger whose `key` (an expression: `{{ flow.id }}`, `{{ secret('X') }}`) renders to `key`
//! starts an execution with `trigger.body` (JSON when the body is JSON, else text),
//! `trigger.headers` and `trigger.parameters` (each name to a list of values). Kestra's codes:
//! 404 for an unknown flow or key (or a trigger disabled, in the source or at run time), 204 when
//! the trigger's conditions are false. The key is the
//! webhook's authentication (compared in constant time), so no bearer token is needed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use indexmap::IndexMap;
use serde_json::{Map, Value as JsonValue, json};
use weft_executor::inputs::RawInput;
use weft_flow::expr::{Context, Secrets};
use weft_flow::model::Trigger;
use weft_store::repo::{FlowRepo, ToggleRepo};

use super::App;
use super::auth::same_secret;
use super::error::{ApiError, ApiResult};
use super::executions::{idempotency_seed, start_and_answer};
use super::inputs::{query_flag, query_pairs};
use super::store_flows::StoreFlows;
use super::tenant::Tenant;
use crate::runner::StartRequest;

/// Type names of the Webhook trigger (current and legacy).
const WEBHOOK_TYPES: &[&str] = &[
    "io.kestra.plugin.core.trigger.Webhook",
    "io.kestra.core.models.triggers.types.Webhook",
];

/// Type names of the expression condition.
const EXPRESSION_CONDITIONS: &[&str] = &[
    "io.kestra.plugin.core.condition.ExpressionCondition",
    "io.kestra.plugin.core.condition.Expression",
    "io.kestra.core.models.conditions.types.VariableCondition",
];

fn not_found() -> ApiError {
    ApiError::not_found("webhook not found: no flow with a Webhook trigger of this key")
}

fn render(app: &App, template: &str, vars: &JsonValue) -> Result<String, String> {
    let secrets = Secrets::from_env();
    let ctx = Context {
        vars,
        now: Utc::now(),
        seed: rand::random(),
        host: Some(&secrets),
    };
    app.setup
        .renderer
        .render(template, &ctx)
        .map_err(|e| e.to_string())
}

/// The trigger of `flow` whose key renders to `key`.
fn find_trigger<'f>(
    app: &App,
    flow: &'f weft_flow::Flow,
    flow_vars: &JsonValue,
    key: &str,
) -> Option<&'f Trigger> {
    let mut found = None;
    for t in flow
        .triggers
        .iter()
        .filter(|t| !t.disabled && WEBHOOK_TYPES.contains(&t.type_name.as_str()))
    {
        let Some(template) = t.properties.get("key").and_then(JsonValue::as_str) else {
            continue;
        };
        match render(app, template, flow_vars) {
            // every trigger is compared, so timing does not tell which one matched
            Ok(expected) => {
                if same_secret(key.as_bytes(), expected.as_bytes()) && found.is_none() {
                    found = Some(t);
                }
            }
            Err(e) => tracing::warn!(
                flow = %flow.id, trigger = %t.id, error = %e,
                "the webhook key does not render"
            ),
        }
    }
    found
}

fn headers_json(headers: &HeaderMap) -> JsonValue {
    let mut map: IndexMap<String, Vec<JsonValue>> = IndexMap::new();
    for (name, value) in headers {
        map.entry(name.as_str().to_string())
            .or_default()
            .push(JsonValue::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
    }
    JsonValue::Object(
        map.into_iter()
            .map(|(k, v)| (k, JsonValue::Array(v)))
            .collect(),
    )
}

fn parameters_json(query: Option<&str>) -> JsonValue {
    let mut map: IndexMap<String, Vec<JsonValue>> = IndexMap::new();
    for (k, v) in query_pairs(query) {
        map.entry(k).or_default().push(JsonValue::String(v));
    }
    JsonValue::Object(
        map.into_iter()
            .map(|(k, v)| (k, JsonValue::Array(v)))
            .collect(),
    )
}

fn body_json(body: &Bytes) -> JsonValue {
    if body.is_empty() {
        return JsonValue::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| JsonValue::String(String::from_utf8_lossy(body).into_owned()))
}

/// Whether every condition of the trigger holds; an error for a condition weft cannot evaluate.
fn conditions_hold(app: &App, trigger: &Trigger, vars: &JsonValue) -> ApiResult<bool> {
    for (i, c) in trigger.conditions.iter().enumerate() {
        if !EXPRESSION_CONDITIONS.contains(&c.type_name.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "trigger `{}` condition {i}: type {} is not supported for webhooks (only ExpressionCondition)",
                trigger.id, c.type_name
            )));
        }
        let Some(expression) = c.properties.get("expression").and_then(JsonValue::as_str) else {
            return Err(ApiError::unprocessable(format!(
                "trigger `{}` condition {i}: `expression` is missing",
                trigger.id
            )));
        };
        let out = render(app, expression, vars).map_err(|e| {
            ApiError::unprocessable(format!(
                "trigger `{}` condition {i} (`{expression}`): {e}",
                trigger.id
            ))
        })?;
        if !weft_flow::flow_trigger::expression_holds(&out) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The webhook call.
pub(crate) async fn call(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path((namespace, flow_id, key)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let store = tenant.store(&app.store)?;
    let Some(rev) = FlowRepo::new(store.clone())
        .get(&namespace, &flow_id)
        .await
        .map_err(|e| {
            if matches!(e, weft_store::repo::RepoError::InvalidName { .. }) {
                not_found()
            } else {
                ApiError::from(e)
            }
        })?
    else {
        app.metrics.webhook("not_found");
        return Err(not_found());
    };
    // before a key matched, a caller learns nothing but "not found": not whether the flow
    // exists, is disabled or is broken (the log says which). The revision is parsed once per
    // process, and the execution starts this very revision (no second read of the flow).
    let executor = match StoreFlows::new(&app, &tenant.0, store.clone()).executor(&rev) {
        Ok(executor) => executor,
        Err(e) => {
            tracing::warn!(
                namespace = %namespace, flow = %flow_id, revision = rev.revision, error = %e,
                "webhook on a flow revision that is not valid any more; fix it with PUT"
            );
            app.metrics.webhook("not_found");
            return Err(not_found());
        }
    };
    let flow = executor.flow();
    if flow.disabled {
        app.metrics.webhook("not_found");
        return Err(not_found());
    }
    let flow_vars = json!({
        "flow": { "id": flow.id, "namespace": flow.namespace, "revision": rev.revision },
    });
    let Some(trigger) = find_trigger(&app, flow, &flow_vars, &key) else {
        app.metrics.webhook("not_found");
        return Err(not_found());
    };
    // disabled at run time (API, Toggle task): as an unknown key
    if ToggleRepo::new(store.clone())
        .is_disabled(&namespace, &flow_id, &trigger.id)
        .await?
    {
        app.metrics.webhook("not_found");
        return Err(not_found());
    }
    let variables = json!({
        "body": body_json(&body),
        "headers": headers_json(&headers),
        "parameters": parameters_json(query.as_deref()),
    });
    let mut vars = flow_vars.clone();
    vars["trigger"] = variables.clone();
    if !conditions_hold(&app, trigger, &vars)? {
        app.metrics.webhook("conditions_false");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut req = StartRequest {
        seed: idempotency_seed(&headers, &tenant, &namespace, &flow_id)?,
        revision: Some(rev.revision),
        trigger: Some(json!({
            "id": trigger.id,
            "type": trigger.type_name,
            "variables": variables,
        })),
        ..StartRequest::default()
    };
    if let Some(inputs) = trigger
        .properties
        .get("inputs")
        .and_then(JsonValue::as_object)
    {
        req.inputs = render_inputs(&app, inputs, &vars)?;
    }
    let wait = query_flag(query.as_deref(), "wait");
    app.metrics.webhook("started");
    let answer = start_and_answer(app, &tenant, store, namespace, flow_id, req, wait).await?;
    Ok(answer.into_response())
}

/// The trigger's `inputs`, strings rendered with the trigger's variables.
pub(crate) fn render_inputs(
    app: &App,
    inputs: &Map<String, JsonValue>,
    vars: &JsonValue,
) -> ApiResult<IndexMap<String, RawInput>> {
    let mut out = IndexMap::new();
    for (k, v) in inputs {
        let raw = match v {
            JsonValue::String(s) => RawInput::Text(
                render(app, s, vars)
                    .map_err(|e| ApiError::unprocessable(format!("webhook input `{k}`: {e}")))?,
            ),
            other => RawInput::Json(other.clone()),
        };
        out.insert(k.clone(), raw);
    }
    Ok(out)
}
