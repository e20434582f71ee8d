//! The Resume task (`io.kestra.plugin.core.execution.Resume`): resumes a PAUSED execution, as
//! the API's resume does. A host task (see [`super::host_tasks`]): it acts on another execution.
//!
//! Properties (Kestra's): `executionId` (default: the current execution), `namespace` and
//! `flowId` (both or neither; when set, the execution must belong to that flow) and `inputs`
//! (the Pause task's `onResume` values, rendered, then typed and validated as the API does).
//!
//! The execution is resumed where it is driven, as `POST /executions/{id}/resume` does: by this
//! driver when it holds it (a subflow, or one resumed before); through the sender of another
//! session of this process that drives it ([`SessionDirectory`], given by the server); else it is
//! read from storage into this driver, which resumes and drives it from then on. An execution
//! that does not exist or is not PAUSED fails the task, saying so, unless it was resumed since
//! the task started: its attempt ran again after a takeover, and it counts as done.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use weft_executor::inputs::RawInput;
use weft_executor::{RunTask, State, StateInfo};

use super::control::SessionSender;
use super::host_tasks::{Done, Driver, Performed, target_execution};
use super::{RunError, Runner, StartRequest};

/// The canonical type name of the Resume task.
pub(crate) const RESUME_TYPE: &str = "io.kestra.plugin.core.execution.Resume";

/// The sessions of this process that drive executions (the server's drivers), for the host
/// tasks that act on an execution another session drives.
pub trait SessionDirectory: Send + Sync {
    /// The sender of the session of this process that drives execution `id`, if any.
    fn sender(&self, id: &str) -> Option<SessionSender>;
}

impl Runner {
    /// Resume tasks reach the executions that other sessions of this process drive through
    /// `directory`.
    pub fn with_sessions(mut self, directory: std::sync::Arc<dyn SessionDirectory>) -> Self {
        self.sessions = Some(directory);
        self
    }

    fn resume_request(&self, task: &RunTask) -> Result<StartRequest, String> {
        let inputs = match self.host_value(task, "inputs")? {
            None | Some(serde_json::Value::Null) => IndexMap::new(),
            Some(serde_json::Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| (k, RawInput::Json(v)))
                .collect(),
            Some(other) => return Err(format!("`inputs` must be a map, got {other}")),
        };
        Ok(StartRequest {
            inputs,
            ..StartRequest::default()
        })
    }

    /// Performs a Resume attempt.
    pub(super) async fn run_resume(&self, driver: Driver<'_>, task: &RunTask) -> Performed {
        match self.resume_target(driver, task).await {
            Ok(performed) => performed,
            Err(e) => Performed::Now(Err(e)),
        }
    }

    async fn resume_target(&self, driver: Driver<'_>, task: &RunTask) -> Result<Performed, String> {
        let (namespace, flow_id, id, flow_given) = target_execution(self, task)?;
        let req = self.resume_request(task)?;
        let Driver { lives, pending } = driver;
        let exec = match lives.get_mut(&id) {
            Some(live) => live
                .current(&self.repo(), &id)
                .await
                .map_err(|e| e.to_string())?
                .value
                .clone(),
            None => {
                self.repo()
                    .find(&id)
                    .await
                    .map_err(|e| format!("cannot read execution {id}: {e}"))?
                    .ok_or_else(|| format!("cannot resume execution {id}: it does not exist"))?
                    .value
            }
        };
        if flow_given && (exec.namespace != namespace || exec.flow_id != flow_id) {
            return Err(format!(
                "cannot resume execution {id}: it is an execution of flow `{}.{}`, not `{namespace}.{flow_id}`",
                exec.namespace, exec.flow_id
            ));
        }
        let done = move |id: &str, by: &str| Done::line(format!("execution {id} resumed {by}"));
        if exec.state.current != State::Paused {
            // an attempt run again after a takeover finds the execution it resumed the first time
            if resumed_since(&exec.state, task_started(task)) {
                return Ok(Performed::Now(Ok(done(
                    &id,
                    "already, since this task started (its attempt ran again)",
                ))));
            }
            return Err(format!(
                "cannot resume execution {id}: it is {}, only a PAUSED execution can be resumed",
                exec.state.current.as_str()
            ));
        }
        let sender = match (lives.contains_key(&id), &self.sessions) {
            (false, Some(directory)) => directory.sender(&id),
            _ => None,
        };
        let req = match sender {
            Some(sender) => match sender.resume(&id, req) {
                Ok(answer) => {
                    return Ok(Performed::Later(Box::pin(async move {
                        match answer.await {
                            Ok(Ok(())) => Ok(done(&id, "by the driver that holds it")),
                            Ok(Err(e)) => Err(format!("cannot resume execution {id}: {e}")),
                            Err(_) => Err(format!(
                                "the driver of execution {id} stopped while resuming it"
                            )),
                        }
                    })));
                }
                // that driver ended meanwhile: resume from storage as below
                Err(req) => *req,
            },
            None => req,
        };
        if !lives.contains_key(&id) {
            // driven by nobody in this process: this driver takes it
            self.load_live(lives, &id).await.map_err(|e| match e {
                RunError::UnknownFlow(flow) => {
                    format!("cannot resume execution {id}: its flow {flow} is not available")
                }
                other => other.to_string(),
            })?;
        }
        self.queue_resume(lives, pending, &id, req)
            .await
            .map_err(|e| format!("cannot resume execution {id}: {e}"))?;
        Ok(Performed::Now(Ok(done(&id, "by this driver"))))
    }
}

/// When the task run of `task` started (`taskrun.startDate` of its context).
fn task_started(task: &RunTask) -> Option<DateTime<Utc>> {
    let date = task.context.get("taskrun")?.get("startDate")?.as_str()?;
    DateTime::parse_from_rfc3339(date)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Whether the execution of `state` went from PAUSED to RUNNING (a resume) at or after `since`.
fn resumed_since(state: &StateInfo, since: Option<DateTime<Utc>>) -> bool {
    let Some(since) = since else {
        return false;
    };
    state
        .histories
        .windows(2)
        .any(|w| w[0].state == State::Paused && w[1].state == State::Running && w[1].date >= since)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn a_resume_counts_once_it_came_after_the_task_started() {
        let t0 = Utc::now();
        let mut state = StateInfo::new(State::Running, t0);
        state.transition(State::Paused, t0 + TimeDelta::seconds(1));
        state.transition(State::Running, t0 + TimeDelta::seconds(5));
        assert!(resumed_since(&state, Some(t0 + TimeDelta::seconds(3))));
        assert!(resumed_since(&state, Some(t0 + TimeDelta::seconds(5))));
        // resumed before the task started: not by it
        assert!(!resumed_since(&state, Some(t0 + TimeDelta::seconds(6))));
        assert!(!resumed_since(&state, None));
        // started, never paused
        let never = StateInfo::new(State::Running, t0);
        assert!(!resumed_since(&never, Some(t0)));
    }
}
