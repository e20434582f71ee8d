//! Schedule triggers (`Schedule`, `ScheduleOnDates`) of stored flows, fired by ticks.
//!
//! Saving a flow writes one entry per enabled schedule trigger,
//! `schedules/{tenant}/{namespace}/{flowId}/{triggerId}.json` in the store's root: the trigger as
//! written and its state (the next date due, the last one fired). A trigger saved unchanged keeps
//! its state; a changed one starts again from the next date after the save; a removed or
//! disabled one (or a deleted flow) loses its entry. A tick lists the entries (reading again
//! only those that changed since this process last saw them), asks [`weft_flow::schedule`] which
//! dates are due, and starts one execution per date. The execution's
//! id is derived from the tenant, flow, trigger and date, and created only if absent, so a date is
//! fired once however many instances tick at the same time, and a tick that died halfway is
//! finished by the next one; the entry then moves on with a version condition.
//!
//! A trigger disabled at run time (`PUT /api/v1/triggers`, the Toggle task: its toggle document,
//! [`ToggleRepo`], read only when a date is due) starts nothing: its due dates pass as if fired,
//! so once enabled again it goes on from the next date after that (missed dates are not
//! recovered, as Kestra's `recoverMissedSchedules: NONE`).
//!
//! A backfill set at run time (`PUT /api/v1/triggers` with `backfill`, see [`set_backfill`])
//! lives in the entry: the dates of its range fire besides the schedule's own, a thousand per tick
//! at most, with the backfill's `inputs` over the trigger's and its `labels` added; paused, it
//! waits; done, it is removed. Each of its executions has an id derived from the date and the
//! backfill, so a range fired again by another backfill runs again, but a tick repeated never
//! runs a date twice.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_flow::model::{Flow, Trigger};
use weft_flow::schedule::{Fire, Schedule, ScheduleState};
use weft_store::repo::ToggleRepo;
use weft_store::{Condition, Key, StoreError};

use super::App;
use super::drive::{self, Init};
use super::error::{ApiError, ApiResult};
use super::tenant::Tenant;
use crate::listed::Listed;
use crate::runner::{RunError, StartRequest};

const PREFIX: &str = "schedules/";

/// A schedule trigger's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    tenant: String,
    namespace: String,
    flow_id: String,
    trigger: Trigger,
    state: ScheduleState,
    /// A backfill set at run time, until it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backfill: Option<Backfill>,
}

/// The schedule entries as this process last read or wrote them: a tick reads again only those
/// that changed since ([`crate::listed`]).
#[derive(Debug, Default)]
pub(crate) struct Entries(Listed<Entry>);

/// A backfill of a schedule trigger (Kestra's `Backfill`): the dates from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Backfill {
    /// The first date of the range.
    pub(crate) start: DateTime<Utc>,
    /// The last date of the range (the time it was set when not given).
    pub(crate) end: DateTime<Utc>,
    /// The next date to handle.
    pub(crate) current_date: DateTime<Utc>,
    /// Paused: no date fires until it is unpaused.
    #[serde(default)]
    pub(crate) paused: bool,
    /// Inputs of its executions, over the trigger's own.
    #[serde(default)]
    pub(crate) inputs: serde_json::Map<String, serde_json::Value>,
    /// Labels added to its executions.
    #[serde(default)]
    pub(crate) labels: Vec<weft_flow::model::Label>,
    /// When it was set (its executions' ids derive from it).
    pub(crate) set_at: DateTime<Utc>,
}

fn flow_prefix(tenant: &str, namespace: &str, flow_id: &str) -> String {
    format!("{PREFIX}{tenant}/{namespace}/{flow_id}/")
}

fn entry_key(tenant: &str, namespace: &str, flow_id: &str, trigger_id: &str) -> ApiResult<Key> {
    Key::new(format!(
        "{}{trigger_id}.json",
        flow_prefix(tenant, namespace, flow_id)
    ))
    .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The schedule triggers of `flow` that fire, parsed (an invalid one is a 422 naming it).
fn schedules_of(flow: &Flow) -> ApiResult<Vec<(&Trigger, Schedule)>> {
    let mut out = Vec::new();
    if flow.disabled {
        return Ok(out);
    }
    for t in flow.triggers.iter().filter(|t| !t.disabled) {
        if let Some(s) = Schedule::from_trigger(t).map_err(ApiError::unprocessable)? {
            out.push((t, s));
        }
    }
    Ok(out)
}

/// Checks the schedule triggers of a flow about to be saved.
pub(crate) fn check(flow: &Flow) -> ApiResult<()> {
    schedules_of(flow).map(|_| ())
}

/// Writes the entries of `flow`'s schedule triggers after it was saved (`None`: deleted).
pub(crate) async fn sync(
    app: &App,
    tenant: &str,
    namespace: &str,
    flow_id: &str,
    flow: Option<&Flow>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let store = &app.store;
    let existing = store
        .list_all(&flow_prefix(tenant, namespace, flow_id))
        .await
        .map_err(ApiError::internal)?;
    let wanted = match flow {
        Some(f) => schedules_of(f)?,
        None => Vec::new(),
    };
    let mut kept = Vec::new();
    for (trigger, schedule) in wanted {
        let key = entry_key(tenant, namespace, flow_id, &trigger.id)?;
        kept.push(key.clone());
        let stored = match store.get(&key).await {
            Ok(o) => Some(o),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(ApiError::internal(e)),
        };
        let stored = stored.and_then(|o| serde_json::from_slice::<Entry>(&o.bytes).ok());
        if stored.as_ref().is_some_and(|e| e.trigger == *trigger) {
            continue;
        }
        let entry = Entry {
            tenant: tenant.to_string(),
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            trigger: trigger.clone(),
            state: schedule.first_state(now),
            // a backfill not done goes on with the trigger as now written
            backfill: stored.and_then(|e| e.backfill),
        };
        let bytes = serde_json::to_vec(&entry).map_err(ApiError::internal)?;
        store
            .put(&key, Bytes::from(bytes), Condition::None)
            .await
            .map_err(ApiError::internal)?;
    }
    for old in existing.into_iter().filter(|e| !kept.contains(&e.key)) {
        match store.delete(&old.key, None).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Ok(())
}

/// Fires every schedule due at `now`; returns how many executions this call started.
pub(crate) async fn fire_due(app: &Arc<App>, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let mut started = 0;
    // an entry that cannot be read is left out (the other schedules still fire) and read again
    // at the next tick
    let entries = app.schedule_entries.0.scan(&app.store, PREFIX).await?;
    for found in entries {
        let (key, version, mut entry) = (found.key, found.version, found.value);
        let schedule = match Schedule::from_trigger(&entry.trigger) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(%key, error = %e, "invalid schedule skipped");
                continue;
            }
        };
        let due = schedule.due(&entry.state, now, &app.setup.renderer);
        // the backfill's dates, and where it goes on from (None: done)
        // (a range reaching into the future fires its dates as they come: up to now, then it
        // waits at the next date until its `end` has passed)
        let backfill = entry
            .backfill
            .as_ref()
            .filter(|b| !b.paused && b.current_date <= now)
            .map(|b| {
                let (due, left) =
                    schedule.backfill(b.current_date, b.end.min(now), now, &app.setup.renderer);
                let left = left.or_else(|| {
                    (b.end > now)
                        .then(|| schedule.next_after(now))
                        .flatten()
                        .filter(|next| *next <= b.end)
                });
                (due, left)
            });
        let backfill_skipped = backfill.as_ref().map_or(&[][..], |(b, _)| &b.skipped[..]);
        for skip in due.skipped.iter().chain(backfill_skipped) {
            match &skip.error {
                Some(e) => tracing::error!(
                    namespace = %entry.namespace, flow = %entry.flow_id,
                    trigger = %entry.trigger.id, date = %skip.date, error = %e,
                    "a schedule condition cannot be evaluated; this date is skipped"
                ),
                None => tracing::debug!(
                    namespace = %entry.namespace, flow = %entry.flow_id,
                    trigger = %entry.trigger.id, date = %skip.date,
                    "schedule conditions not met; this date is skipped"
                ),
            }
        }
        if due.fires.is_empty() && due.state == entry.state && backfill.is_none() {
            continue;
        }
        let mut complete = true;
        let is_disabled =
            (!due.fires.is_empty() || backfill.is_some()) && disabled(app, &entry).await;
        let fires = if is_disabled {
            // disabled at run time: its dates pass without executions
            &[][..]
        } else {
            &due.fires[..]
        };
        // a disabled trigger's backfill waits (its dates are not lost)
        let backfill = backfill.filter(|_| !is_disabled);
        let backfill_fires = backfill.as_ref().map_or(&[][..], |(b, _)| &b.fires[..]);
        let runs = fires
            .iter()
            .map(|f| (f, None))
            .chain(backfill_fires.iter().map(|f| (f, entry.backfill.as_ref())));
        for (fire, of_backfill) in runs {
            match start(app, &entry, &schedule, fire, of_backfill).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                // a date that can never start (inputs refused, the flow gone or broken) passes,
                // or it would hold back every later date: only storage errors are tried again
                Err(
                    e @ (RunError::Inputs(_) | RunError::Flow { .. } | RunError::UnknownFlow(_)),
                ) => {
                    tracing::error!(
                        namespace = %entry.namespace, flow = %entry.flow_id,
                        trigger = %entry.trigger.id, date = %fire.date, error = %e,
                        "the scheduled execution cannot start; this date is skipped"
                    );
                }
                Err(e) => {
                    tracing::warn!(
                        namespace = %entry.namespace, flow = %entry.flow_id,
                        trigger = %entry.trigger.id, date = %fire.date, error = %e,
                        "could not start the scheduled execution; the next tick tries again"
                    );
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            continue;
        }
        let before = (entry.state.clone(), entry.backfill.clone());
        entry.state = due.state;
        if let Some((_, left)) = backfill {
            match left {
                Some(from) => {
                    if let Some(b) = entry.backfill.as_mut() {
                        b.current_date = from;
                    }
                }
                None => {
                    tracing::info!(namespace = %entry.namespace, flow = %entry.flow_id,
                        trigger = %entry.trigger.id, "backfill done");
                    entry.backfill = None;
                }
            }
        }
        if (&entry.state, &entry.backfill) == (&before.0, &before.1) {
            // nothing moved (e.g. a backfill waiting on a trigger disabled at run time)
            continue;
        }
        let bytes = match serde_json::to_vec(&entry) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "schedule entry not encoded");
                continue;
            }
        };
        match app
            .store
            .put(&key, Bytes::from(bytes), Condition::IfVersion(version))
            .await
        {
            // another instance moved it on (or the flow was saved): its write stands
            Err(e) if e.is_conflict() || e.is_not_found() => {}
            Err(e) => return Err(e),
            Ok(written) => app.schedule_entries.0.wrote(key, written, entry),
        }
    }
    Ok(started)
}

/// Whether the entry's trigger is disabled at run time (a toggle that cannot be read is logged
/// and counts as enabled: the schedule keeps firing).
async fn disabled(app: &App, entry: &Entry) -> bool {
    let store = match Tenant(entry.tenant.clone()).store(&app.store) {
        Ok(s) => s,
        Err(_) => return false,
    };
    match ToggleRepo::new(store)
        .is_disabled(&entry.namespace, &entry.flow_id, &entry.trigger.id)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(namespace = %entry.namespace, flow = %entry.flow_id,
                trigger = %entry.trigger.id, error = %e, "trigger toggle not read");
            false
        }
    }
}

/// Starts the execution of one fire (of the schedule, or of `backfill`); false when it exists
/// already (fired by another tick).
async fn start(
    app: &Arc<App>,
    entry: &Entry,
    schedule: &Schedule,
    fire: &Fire,
    backfill: Option<&Backfill>,
) -> Result<bool, RunError> {
    let store = Tenant(entry.tenant.clone())
        .store(&app.store)
        .map_err(|e| RunError::Storage(e.message().to_string()))?;
    let vars = json!({
        "flow": { "id": entry.flow_id, "namespace": entry.namespace },
        "trigger": fire.variables,
    });
    let mut templates = schedule.inputs().clone();
    let mut labels = schedule.labels().0.clone();
    let mut backfill_mark = String::new();
    if let Some(b) = backfill {
        templates.extend(b.inputs.iter().map(|(k, v)| (k.clone(), v.clone())));
        labels.extend(b.labels.iter().cloned());
        backfill_mark = format!("backfill {}", b.set_at.to_rfc3339());
    }
    let inputs = super::webhooks::render_inputs(app, &templates, &vars)
        .map_err(|e| RunError::Inputs(e.message().to_string()))?;
    let date = fire.date.to_rfc3339();
    let seed = weft_executor::ids::hash64(&[
        entry.tenant.as_bytes(),
        entry.namespace.as_bytes(),
        entry.flow_id.as_bytes(),
        entry.trigger.id.as_bytes(),
        date.as_bytes(),
        backfill_mark.as_bytes(),
    ]);
    let req = StartRequest {
        inputs,
        labels,
        trigger: Some(json!({
            "id": entry.trigger.id,
            "type": entry.trigger.type_name,
            "variables": fire.variables,
        })),
        seed: Some(seed),
        ..StartRequest::default()
    };
    let init = Init::Start {
        namespace: entry.namespace.clone(),
        flow_id: entry.flow_id.clone(),
        req,
    };
    match drive::spawn(app.clone(), entry.tenant.clone(), store, init).await {
        Ok(_) => Ok(true),
        Err(RunError::Exists(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What a backfill call does to a schedule trigger's entry.
pub(crate) enum BackfillChange {
    /// Sets a new backfill (replacing one not done).
    Set(Backfill),
    /// Pauses or unpauses the current one.
    Pause(bool),
    /// Removes the current one.
    Delete,
}

/// Applies `change` to the backfill of schedule trigger `trigger_id` of a flow, with a version
/// condition (re-read on a conflict); the backfill as it now stands. A 404 when the trigger has
/// no schedule entry (not a schedule, or disabled in its source), a 422 to pause, unpause or
/// delete a backfill that is not there.
pub(crate) async fn set_backfill(
    app: &App,
    tenant: &str,
    namespace: &str,
    flow_id: &str,
    trigger_id: &str,
    change: BackfillChange,
) -> ApiResult<Option<Backfill>> {
    let key = entry_key(tenant, namespace, flow_id, trigger_id)?;
    loop {
        let object = match app.store.get(&key).await {
            Ok(o) => o,
            Err(e) if e.is_not_found() => {
                return Err(ApiError::not_found(format!(
                    "flow {namespace}.{flow_id} has no enabled schedule trigger {trigger_id}: only Schedule triggers backfill"
                )));
            }
            Err(e) => return Err(ApiError::internal(e)),
        };
        let mut entry: Entry = serde_json::from_slice(&object.bytes).map_err(ApiError::internal)?;
        match &change {
            BackfillChange::Set(b) => entry.backfill = Some(b.clone()),
            BackfillChange::Pause(paused) => match entry.backfill.as_mut() {
                Some(b) => b.paused = *paused,
                None => return Err(no_backfill(namespace, flow_id, trigger_id)),
            },
            BackfillChange::Delete => {
                if entry.backfill.take().is_none() {
                    return Err(no_backfill(namespace, flow_id, trigger_id));
                }
            }
        }
        let bytes = serde_json::to_vec(&entry).map_err(ApiError::internal)?;
        match app
            .store
            .put(
                &key,
                Bytes::from(bytes),
                Condition::IfVersion(object.version),
            )
            .await
        {
            Ok(_) => return Ok(entry.backfill),
            // a tick moved it on meanwhile: apply the change to what it wrote
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
}

fn no_backfill(namespace: &str, flow_id: &str, trigger_id: &str) -> ApiError {
    ApiError::unprocessable(format!(
        "trigger {trigger_id} of flow {namespace}.{flow_id} has no backfill"
    ))
}

/// The backfills of a flow's schedule triggers, by trigger id.
pub(crate) async fn backfills_of(
    app: &App,
    tenant: &str,
    namespace: &str,
    flow_id: &str,
) -> ApiResult<std::collections::HashMap<String, Backfill>> {
    let mut out = std::collections::HashMap::new();
    let listed = app
        .store
        .list_all(&flow_prefix(tenant, namespace, flow_id))
        .await
        .map_err(ApiError::internal)?;
    for l in listed {
        let object = match app.store.get(&l.key).await {
            Ok(o) => o,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(ApiError::internal(e)),
        };
        if let Ok(entry) = serde_json::from_slice::<Entry>(&object.bytes)
            && let Some(b) = entry.backfill
        {
            out.insert(entry.trigger.id, b);
        }
    }
    Ok(out)
}
