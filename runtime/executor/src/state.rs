//! The 14 states of executions, task runs and attempts, Kestra's transitions between them, and
//! the state-with-history object (`{current, histories, startDate, endDate, duration}`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use weft_flow::duration::Duration;

/// A state, as Kestra names it (`SUCCESS`, `FAILED`, ...).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Created, not started yet.
    Created,
    /// Waiting for a concurrency slot.
    Queued,
    /// Running.
    Running,
    /// Paused (a Pause task), waiting for a resume or a timer.
    Paused,
    /// Restarted after a failure; runs again.
    Restarted,
    /// Being killed.
    Killing,
    /// Waiting for its next attempt.
    Retrying,
    /// Ended well.
    #[default]
    Success,
    /// Ended with a warning.
    Warning,
    /// Ended with a failure.
    Failed,
    /// Killed.
    Killed,
    /// Cancelled (concurrency limit, Exit task).
    Cancelled,
    /// Skipped (`runIf` false).
    Skipped,
    /// Ended and retried in a new execution.
    Retried,
}

impl State {
    /// Every state, in declaration order.
    pub const ALL: [State; 14] = [
        State::Created,
        State::Queued,
        State::Running,
        State::Paused,
        State::Restarted,
        State::Killing,
        State::Retrying,
        State::Success,
        State::Warning,
        State::Failed,
        State::Killed,
        State::Cancelled,
        State::Skipped,
        State::Retried,
    ];

    /// Kestra's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "CREATED",
            State::Queued => "QUEUED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Restarted => "RESTARTED",
            State::Killing => "KILLING",
            State::Retrying => "RETRYING",
            State::Success => "SUCCESS",
            State::Warning => "WARNING",
            State::Failed => "FAILED",
            State::Killed => "KILLED",
            State::Cancelled => "CANCELLED",
            State::Skipped => "SKIPPED",
            State::Retried => "RETRIED",
        }
    }

    /// A state from its name (any case).
    pub fn parse(name: &str) -> Option<State> {
        State::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether the state is final: SUCCESS, WARNING, FAILED, KILLED, CANCELLED, SKIPPED, RETRIED.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Success
                | State::Warning
                | State::Failed
                | State::Killed
                | State::Cancelled
                | State::Skipped
                | State::Retried
        )
    }

    /// Whether the state stops what follows it: FAILED, KILLED or CANCELLED.
    pub fn is_failed(self) -> bool {
        matches!(self, State::Failed | State::Killed | State::Cancelled)
    }

    /// Whether work is under way: RUNNING or KILLING.
    pub fn is_running(self) -> bool {
        matches!(self, State::Running | State::Killing)
    }

    /// Whether the state waits to be (re)started: CREATED, RESTARTED, RETRYING.
    pub fn is_created(self) -> bool {
        matches!(self, State::Created | State::Restarted | State::Retrying)
    }

    /// Whether Kestra allows going from `self` to `next`.
    ///
    /// Terminal states only move to RESTARTED (restart, replay) and FAILED to RETRIED (a retry in
    /// a new execution); KILLING only ends KILLED; every other state may move to any other one.
    pub fn can_transition_to(self, next: State) -> bool {
        if self == next {
            return next == State::Running;
        }
        match self {
            State::Killing => next == State::Killed,
            State::Failed => matches!(next, State::Restarted | State::Retried),
            s if s.is_terminal() => next == State::Restarted,
            _ => true,
        }
    }

    /// How bad a terminal state is when states are merged (a parent takes the worst of its
    /// children): SUCCESS/SKIPPED 0, WARNING 1, CANCELLED 2, FAILED 3, KILLED 4.
    pub(crate) fn severity(self) -> u8 {
        match self {
            State::Warning => 1,
            State::Cancelled => 2,
            State::Failed | State::Retried => 3,
            State::Killed => 4,
            _ => 0,
        }
    }

    /// The worse of two terminal states (SUCCESS when both are fine).
    pub(crate) fn worst(self, other: State) -> State {
        let pick = if other.severity() > self.severity() {
            other
        } else {
            self
        };
        if pick.severity() == 0 {
            State::Success
        } else {
            pick
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a state history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The state entered.
    pub state: State,
    /// When.
    pub date: DateTime<Utc>,
}

/// A state with its history, as Kestra serialises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateInfo {
    /// The current state.
    pub current: State,
    /// Every state entered, oldest first.
    pub histories: Vec<History>,
    /// When the first state was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<DateTime<Utc>>,
    /// When a terminal state was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DateTime<Utc>>,
    /// `endDate - startDate` once terminated (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

impl StateInfo {
    /// A new state history starting in `state` at `now`.
    pub fn new(state: State, now: DateTime<Utc>) -> Self {
        let mut s = StateInfo {
            current: state,
            histories: vec![History { state, date: now }],
            start_date: Some(now),
            end_date: None,
            duration: None,
        };
        s.stamp(now);
        s
    }

    /// Enters `state` at `now` (a no-op when already in it, except RUNNING -> RUNNING).
    pub fn transition(&mut self, state: State, now: DateTime<Utc>) {
        if self.current == state && state != State::Running {
            return;
        }
        self.current = state;
        self.histories.push(History { state, date: now });
        self.stamp(now);
    }

    /// How many times `state` appears in the history.
    pub fn count(&self, state: State) -> usize {
        self.histories.iter().filter(|h| h.state == state).count()
    }

    /// Whether the current state is terminal.
    pub fn is_terminal(&self) -> bool {
        self.current.is_terminal()
    }

    fn stamp(&mut self, now: DateTime<Utc>) {
        if self.current.is_terminal() {
            self.end_date = Some(now);
            self.duration = self
                .start_date
                .map(|s| Duration::from_chrono(now.signed_duration_since(s)));
        } else {
            self.end_date = None;
            self.duration = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_set_is_kestras() {
        let terminal: Vec<&str> = State::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(State::as_str)
            .collect();
        assert_eq!(
            terminal,
            [
                "SUCCESS",
                "WARNING",
                "FAILED",
                "KILLED",
                "CANCELLED",
                "SKIPPED",
                "RETRIED"
            ]
        );
        assert_eq!(State::parse("killing"), Some(State::Killing));
    }

    #[test]
    fn transitions() {
        assert!(State::Created.can_transition_to(State::Running));
        assert!(State::Killing.can_transition_to(State::Killed));
        assert!(!State::Killing.can_transition_to(State::Success));
        assert!(State::Failed.can_transition_to(State::Restarted));
        assert!(!State::Success.can_transition_to(State::Running));
        assert_eq!(State::Warning.worst(State::Failed), State::Failed);
        assert_eq!(State::Skipped.worst(State::Success), State::Success);
    }

    #[test]
    fn history_serialises_like_kestra() {
        let t0 = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let mut s = StateInfo::new(State::Created, t0);
        s.transition(State::Running, t0);
        s.transition(State::Success, t0 + chrono::TimeDelta::milliseconds(1500));
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["current"], "SUCCESS");
        assert_eq!(j["histories"].as_array().unwrap().len(), 3);
        assert_eq!(j["duration"], "PT1.5S");
        assert_eq!(j["startDate"], "2024-01-01T00:00:00Z");
    }
}
