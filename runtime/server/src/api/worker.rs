//! `POST /api/v1/worker/attempts`: runs one attempt of a runnable task for another instance of
//! the pool (one with `dispatch: http`, see [`crate::runner::dispatch`]) and answers its
//! `WorkerResult`. The body is `{"namespace": ..., "flowId": ..., "task": RunTask}`, the task as
//! the executor asked for it (never one of a WorkingDirectory: its folder is on the driving
//! instance). The attempt runs with this instance's engine over the caller tenant's store, exactly as the driver would run it in its own process: its logs and large
//! outputs are stored before the answer, and the driver applies the result to the execution (this
//! endpoint never writes the execution document).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use weft_executor::WorkerResult;
use weft_store::repo::OffloadConfig;

use super::App;
use super::error::{ApiError, ApiResult};
use super::tenant::Tenant;
use crate::runner::attempt::{AttemptBody, Worker};

/// `POST /api/v1/worker/attempts`.
pub(crate) async fn attempt(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    body: Bytes,
) -> ApiResult<Json<WorkerResult>> {
    let store = tenant.store(&app.store)?;
    let body: AttemptBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not an attempt: {e}; send a JSON object {{\"namespace\", \"flowId\", \"task\"}} with the task as the executor's RunTask"
        ))
    })?;
    for (what, id) in [
        ("task.taskId", &body.task.task_id),
        ("task.taskRunId", &body.task.task_run_id),
    ] {
        weft_flow::ids::check_id(id)
            .map_err(|reason| ApiError::bad_request(format!("{what}: {reason}")))?;
    }
    if body.task.working_directory.is_some() {
        return Err(ApiError::bad_request(format!(
            "task `{}` runs in a WorkingDirectory, whose folder is on the instance that drives the execution: it cannot run here",
            body.task.task_id
        )));
    }
    let worker = Worker::new(
        app.setup.engine.clone(),
        store,
        app.setup.renderer.clone(),
        // as the drivers of this process (`drive::spawn`) run attempts
        OffloadConfig::default(),
        app.metrics.attempts.clone(),
    );
    let attempted = worker
        .run(&body.namespace, &body.flow_id, &body.task)
        .await?;
    app.metrics.attempt_served();
    Ok(Json(attempted.result))
}
