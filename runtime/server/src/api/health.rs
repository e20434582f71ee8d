//! `/health` (the process answers), `/ready` (it takes work and reaches its store), `/metrics`,
//! and the JSON 404 of unknown paths.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use weft_store::ListOptions;

use super::App;
use super::error::ApiError;

pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "UP" }))
}

pub(crate) async fn ready(State(app): State<Arc<App>>) -> Response {
    if !app.accepting.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "DOWN", "reason": "shutting down" })),
        )
            .into_response();
    }
    match app
        .store
        .list("flows/", ListOptions::default().limit(1))
        .await
    {
        Ok(_) => Json(json!({ "status": "UP" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "DOWN", "reason": "the store does not answer" })),
            )
                .into_response()
        }
    }
}

pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(&app.store.stats().snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
