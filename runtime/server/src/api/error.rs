//! The errors of the HTTP API: JSON `{"message": ..., "details": [...]}` with the status code
//! that says who is at fault. A 5xx never shows its cause to the client: the cause is logged
//! with a reference the answer carries.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json_, json};
use weft_store::repo::RepoError;

use crate::runner::RunError;

/// An error answered to an API client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// What is at fault, in detail (a field, a YAML line), when known.
    details: Option<Json_>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            details: None,
        }
    }

    /// The status code answered.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn with_details(mut self, details: Json_) -> Self {
        self.details = Some(details);
        self
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// The message answered.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// A failure of the server: logged in full, answered with a reference only.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        let reference = format!("{:016x}", rand::random::<u64>());
        tracing::error!(reference = %reference, error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error (reference {reference}; see the server log)"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "message": self.message });
        if let Some(details) = self.details {
            body["details"] = details;
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        if e.is_not_found() {
            return ApiError::not_found(e.to_string());
        }
        if e.is_conflict() {
            return ApiError::conflict(e.to_string());
        }
        match &e {
            RepoError::InvalidName { .. }
            | RepoError::InvalidUri { .. }
            | RepoError::OutsideExecution { .. } => ApiError::bad_request(e.to_string()),
            RepoError::InvalidFlow { .. } | RepoError::NamespaceChanged { .. } => {
                ApiError::unprocessable(e.to_string())
            }
            _ => ApiError::internal(e),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match &e {
            RunError::UnknownFlow(name) => ApiError::not_found(format!("flow {name} not found")),
            RunError::UnknownExecution(_) => ApiError::not_found(e.to_string()),
            RunError::Inputs(_) => ApiError::bad_request(format!("invalid inputs: {e}")),
            RunError::InvalidState(_) | RunError::Exists(_) => ApiError::conflict(e.to_string()),
            RunError::Flow { .. } => ApiError::unprocessable(e.to_string()),
            RunError::Storage(_) => ApiError::internal(e),
        }
    }
}

/// The result of a handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
