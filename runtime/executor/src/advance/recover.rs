//! Recovery: an instance takes an execution over from one that stopped (its lease expired). What a
//! driver holds only in memory is lost with it: the attempts its workers were running and the
//! timers it waited for. [`Step::recover`] asks for them again from the execution document alone:
//! every attempt still RUNNING runs again (at least once, as Kestra's workers), and every timer is
//! asked for at the date it was first due (a date already past fires at once).

use chrono::{DateTime, Utc};

use super::{Step, pause, subflow};
use crate::effect::Effect;
use crate::event::{Timer, TimerKind};
use crate::plan::Kind;
use crate::state::{State, StateInfo};

/// The date of the latest move of `info` into `state`.
fn since(info: &StateInfo, state: State) -> Option<DateTime<Utc>> {
    info.histories
        .iter()
        .rev()
        .find(|h| h.state == state)
        .map(|h| h.date)
}

/// When the execution's current run began: its latest move into RUNNING that was not a resume
/// from PAUSED (the start, or a restart), the date its flow `timeout` and SLAs count from.
fn run_started(info: &StateInfo) -> Option<DateTime<Utc>> {
    let h = &info.histories;
    (0..h.len())
        .rev()
        .find(|&i| h[i].state == State::Running && (i == 0 || h[i - 1].state != State::Paused))
        .map(|i| h[i].date)
}

impl Step<'_> {
    /// Asks again for the attempts, subflow executions and timers of a taken-over execution.
    pub(super) fn recover(&mut self) {
        if self.exec.state.current.is_terminal() {
            return;
        }
        if let Some(started) = run_started(&self.exec.state) {
            self.execution_timers(started);
        }
        let active: Vec<u32> = self.ix.active.iter().copied().collect();
        for pos in active {
            self.recover_run(pos);
        }
    }

    /// The flow's `timeout` and MAX_DURATION SLAs, counted from `started`.
    pub(super) fn execution_timers(&mut self, started: DateTime<Utc>) {
        if let Some(t) = &self.plan().flow.timeout
            && let Ok(d) = weft_flow::duration::parse(t)
        {
            self.effects.push(Effect::WakeAt {
                at: started + d.to_chrono(),
                timer: Timer {
                    task_run_id: None,
                    kind: TimerKind::ExecutionTimeout,
                    number: 0,
                },
            });
        }
        let now = self.now;
        let first = self.effects.len();
        self.sla_timers();
        // `sla_timers` counts from now: move them back to the start
        for effect in &mut self.effects[first..] {
            if let Effect::WakeAt { at, .. } = effect {
                *at = started + (*at - now);
            }
        }
    }

    fn recover_run(&mut self, pos: u32) {
        let Some(run) = self.run(pos) else { return };
        let state = run.state.current;
        let kind = self.plan().node(self.meta(pos).node).kind;
        match (state, kind) {
            (State::Running, Kind::Runnable) => {
                let running = run
                    .last_attempt()
                    .filter(|a| a.state.current == State::Running)
                    .map(|a| a.state.start_date.unwrap_or(self.now));
                if let Some(started) = running {
                    let number = u32::try_from(run.attempt_count()).unwrap_or(u32::MAX);
                    self.run_task_effect(pos, number, started);
                }
            }
            (State::Retrying, _) => {
                let number = u32::try_from(run.attempt_count() + 1).unwrap_or(u32::MAX);
                let at = since(&run.state, State::Retrying)
                    .zip(self.retry_delay(pos))
                    .map_or(self.now, |(s, d)| s + d);
                let id = run.id.clone();
                self.effects.push(Effect::WakeAt {
                    at,
                    timer: Timer {
                        task_run_id: Some(id),
                        kind: TimerKind::Retry,
                        number,
                    },
                });
            }
            (State::Paused, Kind::Pause) => {
                let paused = since(&run.state, State::Paused).unwrap_or(self.now);
                pause::timers(self, pos, paused);
            }
            (State::Running, Kind::Subflow) => {
                // the subflow execution may not exist yet: asking again starts it, or finds it
                if let Err(e) = subflow::ask_child(self, pos) {
                    self.fail(pos, e);
                }
            }
            (State::Running, Kind::WaitFor) => {
                let agg = self.ix.aggs.get(&pos).copied().unwrap_or_default();
                if agg.waiting {
                    let id = run.id.clone();
                    self.effects.push(Effect::WakeAt {
                        at: self.now,
                        timer: Timer {
                            task_run_id: Some(id),
                            kind: TimerKind::WaitForNext,
                            number: agg.started,
                        },
                    });
                }
            }
            _ => {}
        }
    }
}
