//! Retries in a new execution (retry behavior CREATE_NEW_EXECUTION): the executor ends the failed
//! execution RETRIED and asks, with `Effect::CreateRetryExecution`, for a new execution of the
//! same flow revision; the runner creates it here and drives it as any other.
//!
//! The new execution's id comes from the retried one's id and the attempt number, so asking
//! twice (a driver that took the retried execution over asks again, see
//! [`super::control::Session::take_over`]) creates it once: one that exists already is carried
//! on. It is created at once, CREATED with its `scheduleDate` at the end of the retry interval;
//! the executor starts it at that date, also after a takeover.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use weft_executor::Event;

use super::control::running_in;
use super::{CreateError, Live, RunError, Runner};

impl Runner {
    /// Creates (once) the execution that `exec_id`, RETRIED, retries in as attempt
    /// `attempt_number`, starting at `at`, and queues its start.
    pub(super) async fn create_retry(
        &self,
        lives: &mut HashMap<String, Live>,
        pending: &mut IndexMap<String, Vec<Event>>,
        exec_id: &str,
        attempt_number: u32,
        at: DateTime<Utc>,
    ) -> Result<(), RunError> {
        let Some(live) = lives.get_mut(exec_id) else {
            return Ok(());
        };
        let executor = live.executor.clone();
        let retried = &live.current(&self.repo(), exec_id).await?.value;
        let new = executor.retry_execution(retried, attempt_number, at, Utc::now());
        let new_id = new.id.clone();
        let (namespace, flow_id) = (new.namespace.clone(), new.flow_id.clone());
        let files = self.files_of(&new)?;
        match self.create(lives, executor, new, files, None).await {
            Ok(()) => {
                self.observer.log(
                    exec_id,
                    "",
                    "INFO",
                    &format!(
                        "retried in a new execution {new_id} (attempt {attempt_number}), starting at {}",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ),
                );
                let running = running_in(lives, &namespace, &flow_id);
                pending
                    .entry(new_id)
                    .or_default()
                    .push(Event::Start { running });
            }
            // asked again (a takeover): it exists, carry it on
            Err(CreateError::Exists) => {
                let known = lives.contains_key(&new_id);
                let exec = self.load_live(lives, &new_id).await?;
                if !known && !exec.state.current.is_terminal() {
                    pending.entry(new_id).or_default().push(Event::Recover);
                }
            }
            Err(e) => return Err(e.into_run(&new_id)),
        }
        Ok(())
    }
}
