//! Coalesced writes: while a driver holds an execution, the steps that only start attempts and
//! record their results are applied in memory and written together, at most
//! [`Runner::with_flush_interval`] after the first of them (DESIGN.md §4: batch what can be
//! batched). Everything another party may act on is written before it is acted on: a state of
//! the execution other than RUNNING, a subflow or retry execution to create, an execution to
//! kill, a user's action (kill, resume, restart) and a takeover.
//!
//! What a crash loses is what a crash already lost: the attempts in flight. The stored document
//! is at most one interval behind, and the instance that takes it over runs again every attempt
//! it shows RUNNING (at least once, as Kestra's workers).
//!
//! A write that meets a conflict (another party wrote the execution meanwhile, e.g. a kill on an
//! instance without the lease) reads it again and replays the unwritten steps on it in order (the
//! executor is deterministic). When more than one step was held, the effects of the earlier ones
//! were applied already: the document is then asked, with `Event::Recover`, for the attempts and
//! subflows it needs now, and the driver starts only those it does not run already.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use weft_executor::{Effect, Event, Execution, RunTask, State};
use weft_store::repo::Versioned;

use super::{Live, RunError, Runner, storage};

/// The steps applied to an execution in memory since its last write.
#[derive(Debug, Default)]
pub(super) struct Unflushed {
    /// Each step's events and date, in order.
    steps: Vec<(Vec<Event>, DateTime<Utc>)>,
    /// When the first of them was applied.
    since: Option<Instant>,
}

impl Unflushed {
    /// An execution created in memory: it is due for its first write one interval from now.
    pub(super) fn created() -> Self {
        Unflushed {
            steps: Vec::new(),
            since: Some(Instant::now()),
        }
    }

    pub(super) fn push(&mut self, events: Vec<Event>, at: DateTime<Utc>) {
        self.steps.push((events, at));
        self.since.get_or_insert_with(Instant::now);
    }

    fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// When these steps must be written, `interval` after the first.
    pub(super) fn due(&self, interval: Duration) -> Option<Instant> {
        self.since.map(|s| s + interval)
    }
}

/// Whether `effects` ask for the attempt of `task` already.
fn asks_for(effects: &[Effect], task: &RunTask) -> bool {
    effects.iter().any(|e| {
        matches!(e, Effect::RunTask(o)
            if o.task_run_id == task.task_run_id && o.attempt == task.attempt)
    })
}

/// Whether a step may stay in memory: it handled only starts, worker results and timers, left
/// the execution RUNNING, and asked only for attempts, timers and log lines.
pub(super) fn deferrable(
    events: &[Event],
    before: State,
    after: State,
    effects: &[Effect],
) -> bool {
    let quiet_events = events.iter().all(|e| {
        matches!(
            e,
            Event::Start { .. } | Event::WorkerResult(_) | Event::Timer(_)
        )
    });
    let quiet_effects = effects.iter().all(|e| {
        matches!(
            e,
            Effect::RunTask(_)
                | Effect::WakeAt { .. }
                | Effect::CancelTask { .. }
                | Effect::Log { .. }
        )
    });
    let running = after == State::Running
        && matches!(
            before,
            State::Running | State::Created | State::Restarted | State::Queued
        );
    quiet_events && quiet_effects && running
}

/// What another party may wait for before an unstored execution is first written (the server
/// takes the execution's lease there, so that another instance carries it on if this one dies).
pub trait Claim: Send + Sync {
    /// Claims execution `id`, about to be written for the first time; an error stops the write.
    fn claim<'a>(&'a self, id: &'a str) -> weft_engine::BoxFuture<'a, Result<(), RunError>>;
}

impl Runner {
    /// Writes the steps of execution `exec_id` kept in memory, if any (creating it when its
    /// creation was deferred). `effects` are those of the last step, not yet applied: returned
    /// as they are, or, when the write met a conflict, replaced by what the execution read again
    /// asks for.
    pub(super) async fn flush(
        &self,
        lives: &mut HashMap<String, Live>,
        exec_id: &str,
        effects: Vec<Effect>,
    ) -> Result<Vec<Effect>, RunError> {
        let Some(live) = lives.get_mut(exec_id) else {
            return Ok(effects);
        };
        if live.unflushed.is_empty() && live.stored {
            return Ok(effects);
        }
        let steps = std::mem::take(&mut live.unflushed).steps;
        let repo = self.repo();
        let mut current = live.take_current(&repo, exec_id).await?;
        if !live.stored {
            // an execution that ended needs no lease, unless something may still follow from its
            // end that a takeover would do again: a retry in a new execution, Flow triggers
            let ended = current.value.state.current.is_terminal()
                && !effects
                    .iter()
                    .any(|e| matches!(e, Effect::CreateRetryExecution { .. }));
            if let Some(claim) = &self.claim
                && (!ended || self.listened().await)
            {
                claim.claim(exec_id).await?;
            }
            let version = repo
                .create(exec_id, &mut current.value)
                .await
                .map_err(|e| match e.is_conflict() {
                    true => RunError::Exists(exec_id.to_string()),
                    false => storage(e),
                })?;
            // `head_size` keeps the estimate of the steps applied in memory
            live.stored = true;
            live.current = Some(Versioned {
                value: current.value,
                version,
            });
            self.index_live(live).await;
            return Ok(effects);
        }
        let executor = live.executor.clone();
        let seen_end = live.done;
        let last_pending = !effects.is_empty();
        // steps before the last one had their effects applied already: after replaying them on
        // what another party wrote, ask the document what must run now
        let recover = steps.len() > 1;
        let mut first = true;
        let updated = repo
            .update_from(exec_id, current, |exec: &mut Execution| {
                if std::mem::take(&mut first) {
                    // the held copy has the steps already
                    return Ok::<_, Infallible>(None);
                }
                let mut last = Vec::new();
                for (events, at) in &steps {
                    last = executor.advance(exec, events.clone(), *at);
                }
                let asked = match recover {
                    true => executor.advance(exec, vec![Event::Recover], Utc::now()),
                    false => Vec::new(),
                };
                Ok(Some((last, asked)))
            })
            .await
            .map_err(storage)?;
        live.head_size = updated.size;
        let ended = updated.value.state.current;
        live.current = Some(Versioned {
            value: updated.value,
            version: updated.version,
        });
        self.index_live(live).await;
        Ok(match updated.result {
            None => effects,
            Some((last, asked)) => {
                tracing::info!(
                    execution = exec_id,
                    steps = steps.len(),
                    "the execution changed in storage meanwhile: its last steps were applied again"
                );
                let mut out = if last_pending { last } else { Vec::new() };
                // what the recovery asks for beyond the last step: the attempts and subflows
                // still running (the driver skips the attempts it runs already; its timers are
                // armed already)
                let asked: Vec<Effect> = asked
                    .into_iter()
                    .filter(|e| match e {
                        Effect::RunTask(t) => !asks_for(&out, t),
                        Effect::StartSubflow(_) => true,
                        _ => false,
                    })
                    .collect();
                out.extend(asked);
                // ended by the other writer (a kill): this driver still has to see the end
                let told = out.iter().any(|e| matches!(e, Effect::Terminated { .. }));
                if ended.is_terminal() && !told && !seen_end {
                    out.push(Effect::Terminated { state: ended });
                }
                out
            }
        })
    }

    /// Writes every execution of `lives` whose steps in memory are due at `now` (all with
    /// `None`); returns the effects of those whose write met a conflict, by execution.
    pub(super) async fn flush_due(
        &self,
        lives: &mut HashMap<String, Live>,
        now: Option<Instant>,
    ) -> Result<Vec<(String, Vec<Effect>)>, RunError> {
        let due: Vec<String> = lives
            .iter()
            .filter(|(_, l)| match (now, l.unflushed.due(self.flush_interval)) {
                (_, None) => !l.stored && now.is_none(),
                (None, Some(_)) => true,
                (Some(now), Some(at)) => at <= now,
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            let effects = self.flush(lives, &id, Vec::new()).await?;
            if !effects.is_empty() {
                out.push((id, effects));
            }
        }
        Ok(out)
    }

    /// When the next execution of `lives` must be written.
    pub(super) fn next_flush(&self, lives: &HashMap<String, Live>) -> Option<Instant> {
        lives
            .values()
            .filter_map(|l| l.unflushed.due(self.flush_interval))
            .min()
    }

    /// Whether any flow has a Flow trigger (an ended execution may start others); true when
    /// they cannot be listed.
    async fn listened(&self) -> bool {
        !matches!(self.catalog.listeners().await, Ok(l) if l.is_empty())
    }

    /// Updates the execution's index entry when its state moved since it was last indexed.
    async fn index_live(&self, live: &mut Live) {
        let Some(current) = live.current.as_ref() else {
            return;
        };
        let state = current.value.state.current;
        if live.indexed != Some(state) {
            self.index(&current.value).await;
            live.indexed = Some(state);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_quiet_running_steps_are_deferred() {
        let start = [Event::Start { running: 0 }];
        assert!(deferrable(&start, State::Created, State::Running, &[]));
        // a state another party sees: written at once
        assert!(!deferrable(&start, State::Created, State::Queued, &[]));
        assert!(!deferrable(&start, State::Running, State::Success, &[]));
        assert!(!deferrable(&start, State::Paused, State::Running, &[]));
        // a user's action
        assert!(!deferrable(
            &[Event::Kill],
            State::Running,
            State::Running,
            &[]
        ));
        assert!(!deferrable(
            &[Event::Recover],
            State::Running,
            State::Running,
            &[]
        ));
        // something another party acts on
        let kill = Effect::KillExecution {
            execution_id: "x".into(),
        };
        assert!(!deferrable(&start, State::Created, State::Running, &[kill]));
    }
}
