//! `POST /api/v1/tick` and the built-in ticker: the periodic work of a pool of stateless
//! instances, done by whichever instance is asked (an outside scheduler such as a cron job or a
//! cloud scheduler calls the route; a long-lived process runs [`every`]). A tick fires the
//! schedules that are due ([`super::schedules`]) and takes over the executions whose lease
//! expired (their process died, see [`crate::lease`]); every transition is a conditional write,
//! so ticks on several instances at once do each thing once.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::Serialize;

use super::App;
use super::drive::{self, Init};
use super::error::{ApiError, ApiResult};
use super::tenant::Tenant;

/// What one tick did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TickReport {
    /// Drivers started on the executions of expired leases.
    pub(crate) taken_over: usize,
    /// Executions those drivers hold.
    pub(crate) executions: usize,
    /// Executions started by schedules.
    pub(crate) fired: usize,
}

pub(crate) async fn handle(State(app): State<Arc<App>>) -> ApiResult<Json<TickReport>> {
    tick(&app).await.map(Json)
}

/// One tick.
pub(crate) async fn tick(app: &Arc<App>) -> ApiResult<TickReport> {
    // a failed listing of the schedules does not hold back the takeovers
    let fired = super::schedules::fire_due(app, Utc::now()).await;
    let mut report = TickReport {
        fired: *fired.as_ref().unwrap_or(&0),
        ..TickReport::default()
    };
    let claimed = app
        .leases
        .claim_expired(Utc::now())
        .await
        .map_err(ApiError::internal)?;
    for lease in claimed {
        let tenant = lease.doc().tenant.clone();
        let store = match Tenant(tenant.clone()).store(&app.store) {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(%tenant, error = %e.message(), "lease of an invalid tenant skipped");
                continue;
            }
        };
        report.executions += lease.doc().executions.len();
        let root = lease.doc().root.clone();
        match drive::spawn(app.clone(), tenant, store, Init::TakeOver { lease }).await {
            Ok(_) => report.taken_over += 1,
            Err(e) => tracing::warn!(%root, error = %e, "could not take the executions over"),
        }
    }
    if let Err(e) = fired {
        return Err(ApiError::internal(e));
    }
    if report.taken_over > 0 {
        tracing::info!(
            drivers = report.taken_over,
            executions = report.executions,
            "tick: took over executions whose lease expired"
        );
    }
    Ok(report)
}

/// Ticks every `every` until the task is aborted; a failed tick is logged and the next one runs.
pub(crate) async fn every(app: Arc<App>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = tick(&app).await {
            tracing::warn!(error = %e.message(), "tick failed");
        }
    }
}
