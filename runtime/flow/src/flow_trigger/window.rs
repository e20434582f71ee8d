//! Time windows of `MultipleCondition` and `preconditions.timeWindow` (dates in UTC):
//!
//! - `DURATION_WINDOW` (the default; `window` P1D unless set, or a legacy `window`/`windowAdvance`):
//!   fixed windows of `window` that tile time from midnight plus `windowAdvance` (windows longer
//!   than a day tile from the Unix epoch plus `windowAdvance`). Results reset when a new window
//!   starts.
//! - `SLIDING_WINDOW`: a condition counts when it was met in the last `window`.
//! - `DAILY_TIME_DEADLINE`: conditions count from midnight up to `deadline` each day.
//! - `DAILY_TIME_WINDOW`: conditions count between `startTime` and `endTime` each day.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A time window, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeWindow {
    Duration {
        window: TimeDelta,
        advance: TimeDelta,
    },
    Sliding {
        window: TimeDelta,
    },
    DailyDeadline {
        deadline: NaiveTime,
    },
    DailyWindow {
        start: NaiveTime,
        end: NaiveTime,
    },
}

/// The results of one multiple condition in its current window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowState {
    /// Start of the current fixed window (absent for a sliding one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// End (exclusive) of the current fixed window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// Condition name -> when an execution last met it.
    #[serde(default)]
    pub results: BTreeMap<String, DateTime<Utc>>,
}

fn duration(value: Option<&Json>, field: &str, default: TimeDelta) -> Result<TimeDelta, String> {
    match value {
        None | Some(Json::Null) => Ok(default),
        Some(Json::String(s)) => {
            let d = crate::duration::parse(s)
                .map_err(|e| format!("`{field}`: {e}"))?
                .to_chrono();
            if d < TimeDelta::zero() {
                return Err(format!("`{field}`: `{s}` is negative"));
            }
            Ok(d)
        }
        Some(other) => Err(format!("`{field}`: expected a duration, got {other}")),
    }
}

fn time(value: Option<&Json>, field: &str) -> Result<NaiveTime, String> {
    let text = value
        .and_then(Json::as_str)
        .ok_or_else(|| format!("`{field}` is missing"))?;
    ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(text.trim(), f).ok())
        .ok_or_else(|| format!("`{field}`: `{text}` is not a time of day (HH:MM[:SS])"))
}

const DAY: TimeDelta = TimeDelta::days(1);

impl TimeWindow {
    /// The window of a `timeWindow` (or `sla`) object; without one, a `DURATION_WINDOW` of
    /// `legacy_window` (default P1D) advanced by `legacy_advance`.
    pub(crate) fn parse(
        object: Option<&Json>,
        legacy_window: Option<&Json>,
        legacy_advance: Option<&Json>,
    ) -> Result<TimeWindow, String> {
        let tw = match object.filter(|o| !o.is_null()) {
            None => TimeWindow::Duration {
                window: duration(legacy_window, "window", DAY)?,
                advance: duration(legacy_advance, "windowAdvance", TimeDelta::zero())?,
            },
            Some(object) => TimeWindow::from_object(object)?,
        };
        match &tw {
            TimeWindow::Duration { window, .. } | TimeWindow::Sliding { window }
                if *window <= TimeDelta::zero() =>
            {
                Err("`window` must be longer than zero".into())
            }
            _ => Ok(tw),
        }
    }

    fn from_object(object: &Json) -> Result<TimeWindow, String> {
        let get = |k: &str| object.get(k);
        let kind = get("type")
            .and_then(Json::as_str)
            .unwrap_or("DURATION_WINDOW");
        let window = || duration(get("window"), "timeWindow.window", DAY);
        Ok(match kind {
            "DURATION_WINDOW" => TimeWindow::Duration {
                window: window()?,
                advance: duration(
                    get("windowAdvance"),
                    "timeWindow.windowAdvance",
                    TimeDelta::zero(),
                )?,
            },
            "SLIDING_WINDOW" => TimeWindow::Sliding { window: window()? },
            "DAILY_TIME_DEADLINE" => TimeWindow::DailyDeadline {
                deadline: time(get("deadline"), "timeWindow.deadline")?,
            },
            "DAILY_TIME_WINDOW" => TimeWindow::DailyWindow {
                start: time(get("startTime"), "timeWindow.startTime")?,
                end: time(get("endTime"), "timeWindow.endTime")?,
            },
            other => return Err(format!("`timeWindow.type`: unknown type `{other}`")),
        })
    }

    /// The fixed window `[start, end)` holding `now`; `None` for a sliding window, and for a
    /// daily window when `now` is outside today's.
    fn bounds(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        match self {
            TimeWindow::Sliding { .. } => None,
            TimeWindow::Duration { window, advance } => {
                let anchor = if *window > DAY {
                    DateTime::<Utc>::UNIX_EPOCH + *advance
                } else {
                    let a = midnight + *advance;
                    if a > now { a - DAY } else { a }
                };
                let window_ns = window.num_nanoseconds()?;
                let since = (now - anchor).num_nanoseconds()?;
                let start =
                    anchor + TimeDelta::nanoseconds(since.div_euclid(window_ns) * window_ns);
                Some((start, start + *window))
            }
            TimeWindow::DailyDeadline { deadline } => {
                let end = midnight + (*deadline - NaiveTime::MIN);
                (now <= end).then_some((midnight, end))
            }
            TimeWindow::DailyWindow { start, end } => {
                let s = midnight + (*start - NaiveTime::MIN);
                let e = midnight + (*end - NaiveTime::MIN);
                (s <= now && now <= e).then_some((s, e))
            }
        }
    }

    /// Moves `state` to the window holding `now` (dropping results of past windows or, for a
    /// sliding window, older than it). False when `now` is in no window (daily windows): nothing
    /// counts then.
    pub(crate) fn refresh(&self, state: &mut WindowState, now: DateTime<Utc>) -> bool {
        if let TimeWindow::Sliding { window } = self {
            let from = now - *window;
            state.start = None;
            state.end = None;
            state.results.retain(|_, at| *at > from);
            return true;
        }
        match self.bounds(now) {
            None => {
                state.results.clear();
                state.start = None;
                state.end = None;
                false
            }
            Some((start, end)) => {
                if state.start != Some(start) || state.end != Some(end) {
                    state.results.clear();
                    state.start = Some(start);
                    state.end = Some(end);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn duration_windows_tile_the_day_from_midnight_plus_advance() {
        let tw = TimeWindow::parse(None, Some(&json!("PT10M")), Some(&json!("PT5M"))).unwrap();
        assert_eq!(
            tw.bounds(at("2024-03-01T10:17:00Z")),
            Some((at("2024-03-01T10:15:00Z"), at("2024-03-01T10:25:00Z")))
        );
        // before the advance of the day: the windows of the day before go on
        assert_eq!(
            tw.bounds(at("2024-03-01T00:02:00Z")),
            Some((at("2024-02-29T23:55:00Z"), at("2024-03-01T00:05:00Z")))
        );
        let day = TimeWindow::parse(None, Some(&json!("P1D")), Some(&json!("P0D"))).unwrap();
        assert_eq!(
            day.bounds(at("2024-03-01T18:00:00Z")),
            Some((at("2024-03-01T00:00:00Z"), at("2024-03-02T00:00:00Z")))
        );
    }

    #[test]
    fn a_new_fixed_window_forgets_the_results() {
        let tw = TimeWindow::parse(Some(&json!({"window": "PT1H"})), None, None).unwrap();
        let mut st = WindowState::default();
        assert!(tw.refresh(&mut st, at("2024-03-01T10:10:00Z")));
        st.results.insert("a".into(), at("2024-03-01T10:10:00Z"));
        assert!(tw.refresh(&mut st, at("2024-03-01T10:59:00Z")));
        assert_eq!(st.results.len(), 1);
        assert!(tw.refresh(&mut st, at("2024-03-01T11:00:00Z")));
        assert!(st.results.is_empty());
    }

    #[test]
    fn sliding_windows_drop_only_old_results() {
        let tw = TimeWindow::parse(
            Some(&json!({"type": "SLIDING_WINDOW", "window": "PT1H"})),
            None,
            None,
        )
        .unwrap();
        let mut st = WindowState::default();
        st.results.insert("old".into(), at("2024-03-01T09:00:00Z"));
        st.results.insert("new".into(), at("2024-03-01T09:30:00Z"));
        assert!(tw.refresh(&mut st, at("2024-03-01T10:15:00Z")));
        assert_eq!(st.results.keys().collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn daily_windows_count_only_inside_their_hours() {
        let deadline = TimeWindow::parse(
            Some(&json!({"type": "DAILY_TIME_DEADLINE", "deadline": "09:00:00"})),
            None,
            None,
        )
        .unwrap();
        let mut st = WindowState::default();
        assert!(deadline.refresh(&mut st, at("2024-03-01T08:00:00Z")));
        assert!(!deadline.refresh(&mut st, at("2024-03-01T09:30:00Z")));
        let window = TimeWindow::parse(
            Some(&json!({"type": "DAILY_TIME_WINDOW", "startTime": "06:00", "endTime": "12:00"})),
            None,
            None,
        )
        .unwrap();
        assert!(!window.refresh(&mut st, at("2024-03-01T05:00:00Z")));
        assert!(window.refresh(&mut st, at("2024-03-01T07:00:00Z")));
        assert_eq!(st.start, Some(at("2024-03-01T06:00:00Z")));
    }

    #[test]
    fn bad_windows_are_errors() {
        assert!(TimeWindow::parse(Some(&json!({"type": "WEEKLY"})), None, None).is_err());
        assert!(TimeWindow::parse(None, Some(&json!("PT0S")), None).is_err());
        assert!(
            TimeWindow::parse(
                Some(&json!({"type": "DAILY_TIME_WINDOW", "startTime": "x"})),
                None,
                None
            )
            .is_err()
        );
    }
}
