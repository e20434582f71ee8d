//! Kestra's `Schedule` and `ScheduleOnDates` triggers: which fires are due at a given instant.
//!
//! Pure: no clock, no I/O. A server tick keeps a [`ScheduleState`] per trigger (starting from
//! [`Schedule::first_state`]), calls [`Schedule::due`] with the current time and stores the state
//! it returns.
//!
//! - Cron dates are whole seconds computed in the trigger's `timezone` (default UTC). croner maps
//!   a wall-clock time that happens twice (DST fold) to its first instant, so occurrences in the
//!   repeated hour fire once; one in a DST gap fires at the end of the gap.
//! - A date is due when it is `<= now`. A due date is **on time** when it is at most
//!   [`ON_TIME_TOLERANCE`] (60 s) old, **missed** otherwise. A tick every 1-10 s therefore never
//!   classes a normal fire as missed.
//! - `recoverMissedSchedules`: on-time dates always fire; of the missed ones `ALL` (the default)
//!   fires every one in order, `LAST` only the latest due date (when no date is on time), `NONE`
//!   none.
//! - `lateMaximumDelay`: a date older than `now - lateMaximumDelay` is skipped, whatever the
//!   above says.
//! - `backfill.start` (deprecated): the first state starts at the first date at or after it.
//!   `backfill.end`: missed dates after it are skipped, so after the backfill the trigger goes on
//!   from now.
//! - `conditions` (and the deprecated `scheduleConditions`): every one must hold for a date, else
//!   the date is skipped: no fire, and the state moves past it as if it fired, so it is not tried
//!   again. They are tested on the date in the trigger's `timezone` (see
//!   [`crate::flow_trigger::condition`]): `DayWeek`, `DayWeekInMonth`, `Weekend`,
//!   `DateTimeBetween`, `TimeBetween`, `Expression` (rendered with `trigger.date`, `trigger.next`,
//!   `trigger.previous`), `Not`, `Or`. Any other type is refused by [`Schedule::from_trigger`];
//!   a condition that fails when tested (a template that does not render) skips the date with the
//!   reason in [`Due::skipped`].
//! - One [`Schedule::due`] call handles at most [`MAX_FIRES_PER_CALL`] dates (fired or
//!   skipped); the state then points at the first date not handled and the next call goes on
//!   from there.
//! - A backfill set at run time (Kestra's `PUT /triggers` with `backfill`) is a range of past
//!   dates fired besides the schedule's own: [`Schedule::backfill`] gives the dates of a range,
//!   every one of them (`recoverMissedSchedules` and `lateMaximumDelay` are about missed dates,
//!   not about a range asked for), conditions applied, [`MAX_FIRES_PER_CALL`] at a time.

use chrono::{DateTime, SecondsFormat, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::expr::Renderer;
use crate::flow_trigger::condition::{Cond, DateSubject};
use crate::model::{Condition, Labels, Trigger};

/// The names of the Schedule trigger type (current, legacy).
pub const SCHEDULE_TYPES: [&str; 2] = [
    "io.kestra.plugin.core.trigger.Schedule",
    "io.kestra.core.models.triggers.types.Schedule",
];

/// The names of the ScheduleOnDates trigger type (current, legacy).
pub const SCHEDULE_ON_DATES_TYPES: [&str; 2] = [
    "io.kestra.plugin.core.trigger.ScheduleOnDates",
    "io.kestra.core.models.triggers.types.ScheduleOnDates",
];

/// How old a due date may be and still be on time (not missed).
pub const ON_TIME_TOLERANCE: TimeDelta = TimeDelta::seconds(60);

/// The most dates (fired or skipped) one [`Schedule::due`] call handles.
pub const MAX_FIRES_PER_CALL: usize = 1000;

const ONE_NANO: TimeDelta = TimeDelta::nanoseconds(1);

/// Steps through the repeated hour of a DST fold (one per second at most).
const MAX_FOLD_STEPS: usize = 4000;

/// `recoverMissedSchedules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recover {
    All,
    Last,
    None,
}

/// Where the dates come from.
#[derive(Debug, Clone)]
enum Dates {
    Cron(croner::Cron),
    /// Sorted, without duplicates.
    List(Vec<DateTime<Utc>>),
}

/// A `Schedule` or `ScheduleOnDates` trigger, parsed and checked.
#[derive(Debug, Clone)]
pub struct Schedule {
    trigger_id: String,
    dates: Dates,
    tz: Tz,
    recover: Recover,
    late_maximum_delay: Option<TimeDelta>,
    backfill_start: Option<DateTime<Utc>>,
    backfill_end: Option<DateTime<Utc>>,
    inputs: Map<String, Json>,
    labels: Labels,
    /// All must hold for a date to fire.
    conditions: Vec<Cond>,
}

/// What the tick stores per trigger between calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleState {
    /// The next date to handle; `None` when there are no more (dates exhausted).
    pub next: Option<DateTime<Utc>>,
    /// The last date fired.
    pub last: Option<DateTime<Utc>>,
}

/// The outcome of [`Schedule::due`].
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// The fires, in date order.
    pub fires: Vec<Fire>,
    /// The dates skipped because a condition does not hold, in date order.
    pub skipped: Vec<Skip>,
    /// The state after them.
    pub state: ScheduleState,
}

/// A date skipped by the trigger's conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    /// The scheduled date.
    pub date: DateTime<Utc>,
    /// Why a condition could not be tested; `None` when one is simply false.
    pub error: Option<String>,
}

/// One execution to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    /// The scheduled date.
    pub date: DateTime<Utc>,
    /// Kestra's `trigger` variables: `date`, `next`, `previous` (ISO-8601 in the trigger's time
    /// zone; `next`/`previous` absent when there is none).
    pub variables: Json,
}

fn bad(t: &Trigger, field: &str, message: impl std::fmt::Display) -> String {
    format!("trigger `{}`: `{field}`: {message}", t.id)
}

fn prop<'a>(t: &'a Trigger, key: &str) -> Option<&'a Json> {
    t.properties.get(key).filter(|v| !v.is_null())
}

fn string_prop<'a>(t: &'a Trigger, key: &str) -> Result<Option<&'a str>, String> {
    match prop(t, key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(t, key, format!("expected a string, got {other}"))),
    }
}

fn parse_cron(expr: &str, with_seconds: bool) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    let wanted = if with_seconds { 6 } else { 5 };
    if !expr.trim_start().starts_with('@') && (fields == 5 || fields == 6) && fields != wanted {
        return Err(format!(
            "`{expr}` has {fields} fields but `withSeconds` is {with_seconds} (6 fields need `withSeconds: true`)"
        ));
    }
    crate::cron::parse(expr)
}

/// Reads an ISO-8601 date-time; without an offset it is a wall-clock time in `tz`.
fn parse_date(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    crate::flow_trigger::condition::parse_zoned(text, tz).map(|d| d.with_timezone(&Utc))
}

/// The trigger's `conditions` and deprecated `scheduleConditions`, each one a schedule can test.
fn parse_conditions(t: &Trigger) -> Result<Vec<Cond>, String> {
    let mut out = Vec::new();
    for (i, c) in t.conditions.iter().enumerate() {
        let field = format!("conditions[{i}]");
        let cond = Cond::parse(c).map_err(|e| bad(t, &field, e))?;
        cond.check_for_schedule().map_err(|e| bad(t, &field, e))?;
        out.push(cond);
    }
    let legacy = match prop(t, "scheduleConditions") {
        None => &[][..],
        Some(Json::Array(items)) => &items[..],
        Some(other) => {
            let message = format!("expected a list of conditions, got {other}");
            return Err(bad(t, "scheduleConditions", message));
        }
    };
    for (i, json) in legacy.iter().enumerate() {
        let field = format!("scheduleConditions[{i}]");
        let c: Condition = serde_json::from_value(json.clone())
            .map_err(|e| bad(t, &field, format!("bad condition: {e}")))?;
        let cond = Cond::parse(&c).map_err(|e| bad(t, &field, e))?;
        cond.check_for_schedule().map_err(|e| bad(t, &field, e))?;
        out.push(cond);
    }
    Ok(out)
}

fn parse_dates(t: &Trigger, tz: Tz) -> Result<Vec<DateTime<Utc>>, String> {
    let texts: Vec<&Json> = match prop(t, "dates") {
        None => return Err(bad(t, "dates", "missing")),
        Some(Json::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    };
    let mut dates = texts
        .into_iter()
        .map(|v| match v {
            Json::String(s) => parse_date(s, tz).map_err(|e| bad(t, "dates", e)),
            other => Err(bad(
                t,
                "dates",
                format!("expected a date-time, got {other}"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    dates.sort_unstable();
    dates.dedup();
    Ok(dates)
}

impl Schedule {
    /// `None` when the trigger is not a schedule type; an error naming the trigger id and the
    /// bad field when it is invalid (bad cron, unknown time zone, bad date, ...).
    pub fn from_trigger(t: &Trigger) -> Result<Option<Schedule>, String> {
        let on_dates = SCHEDULE_ON_DATES_TYPES.contains(&t.type_name.as_str());
        if !on_dates && !SCHEDULE_TYPES.contains(&t.type_name.as_str()) {
            return Ok(None);
        }
        let tz = match string_prop(t, "timezone")? {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| bad(t, "timezone", format!("unknown time zone `{name}`")))?,
        };
        let dates = if on_dates {
            Dates::List(parse_dates(t, tz)?)
        } else {
            let expr = string_prop(t, "cron")?.ok_or_else(|| bad(t, "cron", "missing"))?;
            let with_seconds = prop(t, "withSeconds").and_then(Json::as_bool) == Some(true);
            Dates::Cron(parse_cron(expr, with_seconds).map_err(|e| bad(t, "cron", e))?)
        };
        let recover = match string_prop(t, "recoverMissedSchedules")? {
            None | Some("ALL") => Recover::All,
            Some("LAST") => Recover::Last,
            Some("NONE") => Recover::None,
            Some(other) => {
                let message = format!("`{other}` is not one of ALL, LAST, NONE");
                return Err(bad(t, "recoverMissedSchedules", message));
            }
        };
        let late_maximum_delay = string_prop(t, "lateMaximumDelay")?
            .map(|s| match crate::duration::parse(s) {
                Ok(d) if d.is_negative() => Err(format!("`{s}` is negative")),
                Ok(d) => Ok(d.to_chrono()),
                Err(e) => Err(e.to_string()),
            })
            .transpose()
            .map_err(|e| bad(t, "lateMaximumDelay", e))?;
        let backfill = prop(t, "backfill").filter(|_| !on_dates);
        let backfill_date = |key: &str| match backfill.and_then(|b| b.get(key)) {
            Some(Json::String(s)) => parse_date(s, tz)
                .map(Some)
                .map_err(|e| bad(t, &format!("backfill.{key}"), e)),
            _ => Ok(None),
        };
        let inputs = match prop(t, "inputs") {
            None => Map::new(),
            Some(Json::Object(m)) => m.clone(),
            Some(other) => return Err(bad(t, "inputs", format!("expected a map, got {other}"))),
        };
        let labels = prop(t, "labels").map_or(Ok(Labels::default()), Labels::from_json);
        Ok(Some(Schedule {
            trigger_id: t.id.clone(),
            dates,
            tz,
            recover,
            late_maximum_delay,
            backfill_start: backfill_date("start")?,
            backfill_end: backfill_date("end")?,
            inputs,
            labels: labels.map_err(|e| bad(t, "labels", e))?,
            conditions: parse_conditions(t)?,
        }))
    }

    /// The id of the trigger.
    pub fn trigger_id(&self) -> &str {
        &self.trigger_id
    }

    /// The trigger's `inputs`, raw (rendering them is the caller's business).
    pub fn inputs(&self) -> &Map<String, Json> {
        &self.inputs
    }

    /// The trigger's `labels`.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The state of a trigger seen for the first time at `now`: its first date at or after
    /// `backfill.start` when there is one, else its first date strictly after `now`.
    pub fn first_state(&self, now: DateTime<Utc>) -> ScheduleState {
        let next = match self.backfill_start {
            Some(start) => self.at_or_after(start),
            None => self.after(now),
        };
        ScheduleState { next, last: None }
    }

    /// The fires due at `now` given `state` (in date order), the dates the conditions skip, and
    /// the state after them. `renderer` renders the conditions' templates.
    pub fn due(&self, state: &ScheduleState, now: DateTime<Utc>, renderer: &Renderer) -> Due {
        let Some(next) = state.next.filter(|n| *n <= now) else {
            return Due {
                fires: Vec::new(),
                skipped: Vec::new(),
                state: state.clone(),
            };
        };
        let just_after_now = now + ONE_NANO;
        let on_time_from = now - ON_TIME_TOLERANCE;
        // dates before `lo` are skipped; missed dates that may be recovered are in [lo, missed_end)
        let too_late = self
            .late_maximum_delay
            .and_then(|d| now.checked_sub_signed(d));
        let lo = too_late.map_or(next, |t| next.max(t));
        let backfill_end = self
            .backfill_end
            .and_then(|e| e.checked_add_signed(ONE_NANO));
        let missed_end = backfill_end.map_or(on_time_from, |end| on_time_from.min(end));
        let on_time = (lo.max(on_time_from), just_after_now);
        let runs = match self.recover {
            Recover::All => vec![(lo, missed_end), on_time],
            Recover::None => vec![on_time],
            Recover::Last if self.at_or_after(on_time.0).is_some_and(|d| d <= now) => vec![on_time],
            Recover::Last => self
                .before(missed_end)
                .filter(|d| *d >= lo)
                .map(|d| vec![(d, d + ONE_NANO)])
                .unwrap_or_default(),
        };
        let mut due = Due {
            fires: Vec::new(),
            skipped: Vec::new(),
            state: state.clone(),
        };
        let resume = self.fire_runs(&runs, now, renderer, &mut due);
        due.state = ScheduleState {
            next: if resume.is_some() {
                resume
            } else {
                self.after(now)
            },
            last: due.fires.last().map(|f| f.date).or(state.last),
        };
        due
    }

    /// The first date of the schedule strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.after(t)
    }

    /// The fires (and skips) of a backfill from `from` to `until` (both included), and the date
    /// the next call goes on from (`None`: the range is done).
    pub fn backfill(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        renderer: &Renderer,
    ) -> (Due, Option<DateTime<Utc>>) {
        let mut due = Due {
            fires: Vec::new(),
            skipped: Vec::new(),
            state: ScheduleState::default(),
        };
        let left = self.fire_runs(&[(from, until + ONE_NANO)], now, renderer, &mut due);
        (due, left)
    }

    /// Adds the fires (and skips) of the dates in the half-open ranges to `due`; the first date
    /// left out by the cap.
    fn fire_runs(
        &self,
        runs: &[(DateTime<Utc>, DateTime<Utc>)],
        now: DateTime<Utc>,
        renderer: &Renderer,
        due: &mut Due,
    ) -> Option<DateTime<Utc>> {
        for &(from, until) in runs {
            let mut previous = None;
            let mut date = self.at_or_after(from);
            while let Some(d) = date.filter(|d| *d < until) {
                if due.fires.len() + due.skipped.len() == MAX_FIRES_PER_CALL {
                    return Some(d);
                }
                let following = self.after(d);
                let before = previous.or_else(|| self.before(d));
                let variables = self.variables(d, before, following);
                match self.conditions_hold(&variables, now, renderer) {
                    Ok(true) => due.fires.push(Fire { date: d, variables }),
                    Ok(false) => due.skipped.push(Skip {
                        date: d,
                        error: None,
                    }),
                    Err(e) => due.skipped.push(Skip {
                        date: d,
                        error: Some(e),
                    }),
                }
                previous = Some(d);
                date = following;
            }
        }
        None
    }

    /// Whether every condition holds for the date whose `trigger` variables are `variables`.
    fn conditions_hold(
        &self,
        variables: &Json,
        now: DateTime<Utc>,
        renderer: &Renderer,
    ) -> Result<bool, String> {
        if self.conditions.is_empty() {
            return Ok(true);
        }
        let vars = serde_json::json!({ "trigger": variables });
        let subject = DateSubject {
            vars: &vars,
            tz: self.tz,
            now,
        };
        for (i, c) in self.conditions.iter().enumerate() {
            let holds = c
                .test_date(&subject, renderer)
                .map_err(|e| format!("trigger `{}`: condition {i}: {e}", self.trigger_id))?;
            if !holds {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn variables(
        &self,
        date: DateTime<Utc>,
        previous: Option<DateTime<Utc>>,
        next: Option<DateTime<Utc>>,
    ) -> Json {
        let mut vars = Map::new();
        vars.insert("date".into(), self.format(date));
        if let Some(n) = next {
            vars.insert("next".into(), self.format(n));
        }
        if let Some(p) = previous {
            vars.insert("previous".into(), self.format(p));
        }
        Json::Object(vars)
    }

    fn format(&self, d: DateTime<Utc>) -> Json {
        let local = d.with_timezone(&self.tz);
        Json::String(local.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    /// The first date strictly after `t`.
    fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.dates {
            Dates::List(list) => list.get(list.partition_point(|d| *d <= t)).copied(),
            Dates::Cron(cron) => {
                let mut from = t.with_nanosecond(0)?;
                // in a DST fold croner can answer an instant before `t`: step on past it
                for _ in 0..MAX_FOLD_STEPS {
                    let local = from.with_timezone(&self.tz);
                    let next = cron.find_next_occurrence(&local, false).ok()?;
                    let next = next.with_timezone(&Utc);
                    if next > t {
                        return Some(next);
                    }
                    from = next;
                }
                None
            }
        }
    }

    /// The first date at or after `t`.
    fn at_or_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.after(t - ONE_NANO)
    }

    /// The last date strictly before `t`.
    fn before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.dates {
            Dates::List(list) => list[..list.partition_point(|d| *d < t)].last().copied(),
            Dates::Cron(_) => self.cron_before(t),
        }
    }

    /// croner only searches forward: look back in growing spans for a span holding a date, then
    /// bisect it (cron dates are whole seconds).
    fn cron_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let truncated = t.with_nanosecond(0)?;
        let end = if truncated < t {
            truncated + TimeDelta::seconds(1)
        } else {
            t
        };
        let holds = |from: DateTime<Utc>| self.at_or_after(from).is_some_and(|d| d < end);
        let mut span = TimeDelta::minutes(1);
        let mut lo = loop {
            let lo = end.checked_sub_signed(span)?;
            if holds(lo) {
                break lo;
            }
            if span > TimeDelta::days(366 * 30) {
                return None;
            }
            span = span * 8;
        };
        let mut hi = end;
        while hi - lo > TimeDelta::seconds(1) {
            let mid = lo + TimeDelta::seconds((hi - lo).num_seconds() / 2);
            if holds(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.at_or_after(lo)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn trigger(mut props: Json) -> Trigger {
        let object = props.as_object_mut().unwrap();
        object.entry("id").or_insert(json!("every"));
        object.entry("type").or_insert(json!(SCHEDULE_TYPES[0]));
        serde_json::from_value(props).unwrap()
    }

    fn schedule(props: Json) -> Schedule {
        Schedule::from_trigger(&trigger(props)).unwrap().unwrap()
    }

    /// A schedule from a flow's YAML: `rest` follows `type: io.kestra.plugin.core.trigger.`.
    fn from_yaml(rest: &str) -> Schedule {
        let yaml = format!(
            "id: f\nnamespace: n\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    \
             message: hi\ntriggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.{rest}\n"
        );
        let flow = crate::parse_flow(&yaml, &crate::Registry::core())
            .unwrap()
            .flow;
        Schedule::from_trigger(&flow.triggers[0]).unwrap().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn renderer() -> &'static Renderer {
        static RENDERER: std::sync::OnceLock<Renderer> = std::sync::OnceLock::new();
        RENDERER.get_or_init(Renderer::new)
    }

    /// Calls `due` and applies the new state; the dates fired.
    fn tick(s: &Schedule, state: &mut ScheduleState, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let due = s.due(state, now, renderer());
        *state = due.state;
        due.fires.iter().map(|f| f.date).collect()
    }

    fn minutes(from: &str, count: i64) -> Vec<DateTime<Utc>> {
        (0..count)
            .map(|i| at(from) + TimeDelta::minutes(i))
            .collect()
    }

    #[test]
    fn every_minute_fires_once_per_minute_with_a_tick_every_second() {
        let s = schedule(json!({"cron": "* * * * *"}));
        let start = at("2026-03-01T12:00:00Z");
        let mut state = s.first_state(start);
        assert_eq!(state.next, Some(at("2026-03-01T12:01:00Z")));
        let mut fired = Vec::new();
        for second in 1..=300 {
            let now = start + TimeDelta::seconds(second) + TimeDelta::milliseconds(250);
            fired.extend(tick(&s, &mut state, now));
        }
        assert_eq!(fired, minutes("2026-03-01T12:01:00Z", 5));
        assert_eq!(state.last, Some(at("2026-03-01T12:05:00Z")));
        assert_eq!(state.next, Some(at("2026-03-01T12:06:00Z")));
    }

    #[test]
    fn cron_in_a_time_zone_with_variables() {
        let s = from_yaml("Schedule\n    cron: \"0 9 * * *\"\n    timezone: Europe/Paris");
        let mut state = s.first_state(at("2026-01-15T00:00:00Z"));
        assert_eq!(state.next, Some(at("2026-01-15T08:00:00Z")));
        let due = s.due(&state, at("2026-01-15T08:00:00Z"), renderer());
        assert_eq!(due.fires.len(), 1);
        assert_eq!(
            due.fires[0].variables,
            json!({"date": "2026-01-15T09:00:00+01:00", "next": "2026-01-16T09:00:00+01:00",
                   "previous": "2026-01-14T09:00:00+01:00"})
        );
        state = due.state;
        assert_eq!(state.next, Some(at("2026-01-16T08:00:00Z")));
        // summer time: 09:00 in Paris is 07:00Z
        state.next = s.first_state(at("2026-07-01T00:00:00Z")).next;
        assert_eq!(state.next, Some(at("2026-07-01T07:00:00Z")));
    }

    #[test]
    fn dst_fold_and_gap_in_paris() {
        let s = schedule(json!({"cron": "*/15 * * * *", "timezone": "Europe/Paris"}));
        let start = at("2026-10-25T00:00:00Z"); // 02:00 CEST; at 01:00Z clocks go back to 02:00
        let mut state = s.first_state(start);
        let mut fired = Vec::new();
        for step in 1..=1080 {
            fired.extend(tick(&s, &mut state, start + TimeDelta::seconds(10 * step)));
        }
        let expected = [
            "00:15", "00:30", "00:45", "02:00", "02:15", "02:30", "02:45", "03:00",
        ]
        .map(|hm| at(&format!("2026-10-25T{hm}:00Z")));
        assert_eq!(fired, expected);
        // 02:30 does not exist on 2026-03-29: it fires when the gap ends, 03:00 CEST
        let daily = schedule(json!({"cron": "30 2 * * *", "timezone": "Europe/Paris"}));
        let state = daily.first_state(at("2026-03-28T12:00:00Z"));
        assert_eq!(state.next, Some(at("2026-03-29T01:00:00Z")));
    }

    #[test]
    fn utc_variables_and_previous_far_back() {
        let s = schedule(json!({"cron": "0 10 22 11 *"}));
        let state = s.first_state(at("2026-01-01T00:00:00Z"));
        let due = s.due(&state, at("2026-11-22T10:00:03Z"), renderer());
        assert_eq!(
            due.fires[0].variables,
            json!({"date": "2026-11-22T10:00:00Z", "next": "2027-11-22T10:00:00Z",
                   "previous": "2025-11-22T10:00:00Z"})
        );
    }

    #[test]
    fn seconds_crons_need_with_seconds() {
        let s = schedule(json!({"cron": "*/10 * * * * *", "withSeconds": true}));
        let start = at("2026-03-01T12:00:00Z");
        let mut state = s.first_state(start);
        let mut fired = Vec::new();
        for second in 1..=60 {
            fired.extend(tick(&s, &mut state, start + TimeDelta::seconds(second)));
        }
        let expected: Vec<_> = (1..=6)
            .map(|i| start + TimeDelta::seconds(10 * i))
            .collect();
        assert_eq!(fired, expected);
        for (cron, with_seconds) in [("*/10 * * * * *", false), ("* * * * *", true)] {
            let t = trigger(json!({"cron": cron, "withSeconds": with_seconds}));
            let e = Schedule::from_trigger(&t).unwrap_err();
            assert!(e.contains("`every`") && e.contains("`cron`"), "{e}");
        }
        assert!(Schedule::from_trigger(&trigger(json!({"cron": "@daily"}))).is_ok());
    }

    fn after_outage(recover: &str, cron: &str) -> Vec<DateTime<Utc>> {
        let s = schedule(json!({"cron": cron, "recoverMissedSchedules": recover}));
        let mut state = s.first_state(at("2026-03-01T10:00:30Z"));
        tick(&s, &mut state, at("2026-03-01T10:10:30Z"))
    }

    #[test]
    fn recover_missed_schedules_after_a_ten_minute_outage() {
        let every_minute = "* * * * *";
        assert_eq!(
            after_outage("ALL", every_minute),
            minutes("2026-03-01T10:01:00Z", 10)
        );
        let last = vec![at("2026-03-01T10:10:00Z")];
        assert_eq!(after_outage("LAST", every_minute), last);
        // 10:10:00 is 30 s old, on time: it fires, the 9 missed dates do not
        assert_eq!(after_outage("NONE", every_minute), last);
        // every 4 minutes: 10:04 and 10:08 are missed, none is on time
        assert_eq!(after_outage("ALL", "*/4 * * * *").len(), 2);
        assert_eq!(
            after_outage("LAST", "*/4 * * * *"),
            vec![at("2026-03-01T10:08:00Z")]
        );
        assert_eq!(
            after_outage("NONE", "*/4 * * * *"),
            Vec::<DateTime<Utc>>::new()
        );
        let s = schedule(json!({"cron": "*/4 * * * *", "recoverMissedSchedules": "NONE"}));
        let mut state = s.first_state(at("2026-03-01T10:00:30Z"));
        tick(&s, &mut state, at("2026-03-01T10:10:30Z"));
        assert_eq!(state.next, Some(at("2026-03-01T10:12:00Z")));
        assert_eq!(state.last, None);
    }

    #[test]
    fn late_maximum_delay_skips_old_dates() {
        let s = schedule(json!({"cron": "* * * * *", "lateMaximumDelay": "PT5M"}));
        let mut state = s.first_state(at("2026-03-01T10:00:30Z"));
        let fired = tick(&s, &mut state, at("2026-03-01T10:10:30Z"));
        assert_eq!(fired, minutes("2026-03-01T10:06:00Z", 5));
        assert_eq!(state.next, Some(at("2026-03-01T10:11:00Z")));
    }

    #[test]
    fn a_run_time_backfill_fires_its_whole_range_in_capped_calls() {
        // NONE recovers no missed date, but a backfill is a range asked for: all of it fires
        let s = schedule(json!({"cron": "0 * * * *", "recoverMissedSchedules": "NONE"}));
        let now = at("2026-03-10T00:00:30Z");
        let (due, left) = s.backfill(
            at("2026-03-01T00:00:00Z"),
            at("2026-03-01T03:00:00Z"),
            now,
            renderer(),
        );
        let dates: Vec<_> = due.fires.iter().map(|f| f.date).collect();
        assert_eq!(
            dates,
            (0..4)
                .map(|h| at("2026-03-01T00:00:00Z") + TimeDelta::hours(h))
                .collect::<Vec<_>>()
        );
        assert_eq!(due.fires[1].variables["previous"], "2026-03-01T00:00:00Z");
        assert_eq!(left, None, "the range is done");
        // 50 days of hours: 1,000 per call, then the rest
        let (first, left) = s.backfill(
            at("2026-01-01T00:00:00Z"),
            at("2026-02-20T00:00:00Z"),
            now,
            renderer(),
        );
        assert_eq!(first.fires.len(), MAX_FIRES_PER_CALL);
        let from = left.unwrap();
        assert_eq!(from, at("2026-01-01T00:00:00Z") + TimeDelta::hours(1000));
        let (rest, left) = s.backfill(from, at("2026-02-20T00:00:00Z"), now, renderer());
        assert_eq!(first.fires.len() + rest.fires.len(), 50 * 24 + 1);
        assert_eq!(left, None);
    }

    #[test]
    fn backfill_start_and_end() {
        let s = schedule(json!({"cron": "*/10 * * * *", "backfill": {
            "start": "2026-03-01T08:55:00Z", "end": "2026-03-01T09:30:00Z"}}));
        let mut state = s.first_state(at("2026-03-01T10:10:30Z"));
        assert_eq!(state.next, Some(at("2026-03-01T09:00:00Z")));
        let fired = tick(&s, &mut state, at("2026-03-01T10:10:30Z"));
        let mut expected: Vec<_> = (0..4)
            .map(|i| at("2026-03-01T09:00:00Z") + TimeDelta::minutes(10 * i))
            .collect();
        expected.push(at("2026-03-01T10:10:00Z"));
        assert_eq!(fired, expected);
        assert_eq!(state.next, Some(at("2026-03-01T10:20:00Z")));
    }

    #[test]
    fn first_state_is_strictly_after_now() {
        let s = schedule(json!({"cron": "0 * * * *"}));
        let state = s.first_state(at("2026-03-01T10:00:00Z"));
        assert_eq!(state.next, Some(at("2026-03-01T11:00:00Z")));
        assert_eq!(state.last, None);
        assert_eq!(
            s.due(&state, at("2026-03-01T10:59:59Z"), renderer()).fires,
            vec![]
        );
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json, json!({"next": "2026-03-01T11:00:00Z", "last": null}));
    }

    #[test]
    fn schedule_on_dates_in_order_then_exhausted() {
        let s = schedule(
            json!({"type": SCHEDULE_ON_DATES_TYPES[1], "timezone": "Europe/Paris",
            "dates": ["2026-05-02T10:00:00", "2026-05-01T10:00:00Z", "2026-05-03T09:00:00+02:00"]}),
        );
        let mut state = s.first_state(at("2026-04-01T00:00:00Z"));
        assert_eq!(state.next, Some(at("2026-05-01T10:00:00Z")));
        let due = s.due(&state, at("2026-06-01T00:00:00Z"), renderer());
        let dates: Vec<_> = due.fires.iter().map(|f| f.date).collect();
        let expected = [
            "2026-05-01T10:00:00Z",
            "2026-05-02T08:00:00Z",
            "2026-05-03T07:00:00Z",
        ];
        assert_eq!(dates, expected.map(at));
        assert_eq!(
            due.fires[0].variables,
            json!({"date": "2026-05-01T12:00:00+02:00", "next": "2026-05-02T10:00:00+02:00"})
        );
        assert_eq!(
            due.fires[2].variables,
            json!({"date": "2026-05-03T09:00:00+02:00", "previous": "2026-05-02T10:00:00+02:00"})
        );
        state = due.state;
        assert_eq!(state.next, None);
        assert_eq!(
            tick(&s, &mut state, at("2027-01-01T00:00:00Z")),
            Vec::<DateTime<Utc>>::new()
        );
        let one = from_yaml("ScheduleOnDates\n    dates: 2026-05-01T10:00:00Z");
        let mut state = one.first_state(at("2026-04-01T00:00:00Z"));
        let fired = tick(&one, &mut state, at("2026-05-01T10:00:01Z"));
        assert_eq!(fired, vec![at("2026-05-01T10:00:00Z")]);
        assert_eq!(state.next, None);
    }

    #[test]
    fn invalid_triggers_name_the_id_and_field() {
        let cases = [
            (json!({"cron": "61 * * * *"}), "`cron`"),
            (
                json!({"cron": "* * * * *", "timezone": "Mars/Olympus"}),
                "`timezone`",
            ),
            (
                json!({"cron": "* * * * *", "recoverMissedSchedules": "SOME"}),
                "recover",
            ),
            (
                json!({"cron": "* * * * *", "lateMaximumDelay": "5m"}),
                "lateMaximumDelay",
            ),
            (
                json!({"cron": "* * * * *", "lateMaximumDelay": "-PT5M"}),
                "negative",
            ),
            (
                json!({"type": SCHEDULE_ON_DATES_TYPES[0], "dates": ["tomorrow"]}),
                "`dates`",
            ),
        ];
        for (props, field) in cases {
            let e = Schedule::from_trigger(&trigger(props)).unwrap_err();
            assert!(e.contains("trigger `every`") && e.contains(field), "{e}");
        }
        let webhook = trigger(json!({"type": "io.kestra.plugin.core.trigger.Webhook"}));
        assert!(Schedule::from_trigger(&webhook).unwrap().is_none());
    }

    #[test]
    fn inputs_and_labels() {
        let s = schedule(json!({"cron": "@hourly", "type": SCHEDULE_TYPES[1],
            "inputs": {"n": 1}, "labels": {"team": "data"}}));
        assert_eq!(s.inputs().get("n"), Some(&json!(1)));
        assert_eq!(s.labels().get("team"), Some("data"));
        let listed = schedule(json!({"cron": "@hourly",
            "labels": [{"key": "team", "value": "ops"}]}));
        assert_eq!(listed.labels().get("team"), Some("ops"));
        assert_eq!(listed.trigger_id(), "every");
    }

    #[test]
    fn fires_are_capped_per_call() {
        let s = schedule(json!({"cron": "* * * * *"}));
        let start = at("2026-03-01T00:00:00Z");
        let mut state = ScheduleState {
            next: Some(start),
            last: None,
        };
        let now = start + TimeDelta::minutes(1999) + TimeDelta::seconds(30);
        let first = tick(&s, &mut state, now);
        assert_eq!(first.len(), MAX_FIRES_PER_CALL);
        assert_eq!(state.next, Some(start + TimeDelta::minutes(1000)));
        assert_eq!(state.last, first.last().copied());
        let second = tick(&s, &mut state, now);
        let all: Vec<_> = first.into_iter().chain(second).collect();
        assert_eq!(
            all,
            (0..2000)
                .map(|i| start + TimeDelta::minutes(i))
                .collect::<Vec<_>>()
        );
        assert_eq!(state.next, Some(start + TimeDelta::minutes(2000)));
    }

    const COND: &str = "io.kestra.plugin.core.condition.";

    /// The dates fired and skipped from `start` (the first date handled) up to `now`.
    fn fired_between(s: &Schedule, start: &str, now: &str) -> (Vec<DateTime<Utc>>, Due) {
        let state = ScheduleState {
            next: s.first_state(at(start) - ONE_NANO).next,
            last: None,
        };
        let due = s.due(&state, at(now), renderer());
        (due.fires.iter().map(|f| f.date).collect(), due)
    }

    fn daily_with(cron: &str, tz: &str, conditions: Json) -> Schedule {
        schedule(json!({"cron": cron, "timezone": tz, "conditions": conditions}))
    }

    #[test]
    fn day_week_monday_fires_only_on_mondays_and_skips_are_not_retried() {
        let s = daily_with(
            "0 9 * * *",
            "UTC",
            json!([{"type": format!("{COND}DayWeek"), "dayOfWeek": "MONDAY"}]),
        );
        // 2026-03-01 is a Sunday
        let (fired, due) = fired_between(&s, "2026-03-01T00:00:00Z", "2026-03-16T00:00:00Z");
        assert_eq!(
            fired,
            [at("2026-03-02T09:00:00Z"), at("2026-03-09T09:00:00Z")]
        );
        assert_eq!(due.skipped.len(), 13);
        assert!(due.skipped.iter().all(|k| k.error.is_none()));
        assert_eq!(due.state.next, Some(at("2026-03-16T09:00:00Z")));
        assert_eq!(due.state.last, Some(at("2026-03-09T09:00:00Z")));
        // the skipped dates are behind the state: a later tick does not try them again
        let again = s.due(&due.state, at("2026-03-16T08:00:00Z"), renderer());
        assert!(again.fires.is_empty() && again.skipped.is_empty());
        // the fired date still sees the cron's neighbours as next/previous
        assert_eq!(
            due.fires[0].variables,
            json!({"date": "2026-03-02T09:00:00Z", "next": "2026-03-03T09:00:00Z",
                   "previous": "2026-03-01T09:00:00Z"})
        );
    }

    #[test]
    fn day_week_in_month_last_friday() {
        let s = daily_with(
            "0 12 * * *",
            "UTC",
            json!([{"type": format!("{COND}DayWeekInMonth"), "dayOfWeek": "FRIDAY",
                    "dayInMonth": "LAST"}]),
        );
        let (fired, _) = fired_between(&s, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z");
        let expected =
            ["2026-01-30", "2026-02-27", "2026-03-27"].map(|d| at(&format!("{d}T12:00:00Z")));
        assert_eq!(fired, expected);
        let second = daily_with(
            "0 12 * * *",
            "UTC",
            json!([{"type": format!("{COND}DayWeekInMonth"), "dayOfWeek": "MONDAY",
                    "dayInMonth": "SECOND"}]),
        );
        let (fired, _) = fired_between(&second, "2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z");
        assert_eq!(
            fired,
            [at("2026-01-12T12:00:00Z"), at("2026-02-09T12:00:00Z")]
        );
    }

    #[test]
    fn time_between_is_strict_and_reads_offsets() {
        // hourly in Paris (UTC+1 in January): local hours strictly between 08:00 and 11:00
        for (after, before) in [
            ("08:00:00+01:00", "11:00:00+01:00"),
            ("07:00:00Z", "10:00Z"),
            ("08:00", "11:00"),
        ] {
            let s = daily_with(
                "0 * * * *",
                "Europe/Paris",
                json!([{"type": format!("{COND}TimeBetween"), "after": after, "before": before}]),
            );
            let (fired, _) = fired_between(&s, "2026-01-15T00:00:00Z", "2026-01-15T23:30:00Z");
            // 09:00 and 10:00 Paris time
            assert_eq!(
                fired,
                [at("2026-01-15T08:00:00Z"), at("2026-01-15T09:00:00Z")],
                "{after} {before}"
            );
        }
        let only_after = daily_with(
            "0 * * * *",
            "UTC",
            json!([{"type": format!("{COND}TimeBetweenCondition"), "after": "21:30:00Z"}]),
        );
        let (fired, _) = fired_between(&only_after, "2026-01-15T00:00:00Z", "2026-01-15T23:30:00Z");
        assert_eq!(
            fired,
            [at("2026-01-15T22:00:00Z"), at("2026-01-15T23:00:00Z")]
        );
    }

    #[test]
    fn date_time_between() {
        let s = daily_with(
            "0 9 * * *",
            "UTC",
            json!([{"type": format!("{COND}DateTimeBetween"),
                    "after": "2026-03-03T00:00:00Z", "before": "2026-03-05T12:00:00+02:00"}]),
        );
        let (fired, _) = fired_between(&s, "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z");
        assert_eq!(
            fired,
            [
                at("2026-03-03T09:00:00Z"),
                at("2026-03-04T09:00:00Z"),
                at("2026-03-05T09:00:00Z")
            ]
        );
    }

    #[test]
    fn expression_condition_renders_with_the_trigger_variables() {
        let s = daily_with(
            "0 9 * * *",
            "UTC",
            json!([{"type": format!("{COND}ExpressionCondition"),
                    "expression": "{{ trigger.next == '2026-03-04T09:00:00Z' or trigger.previous == '2026-03-04T09:00:00Z' }}"}]),
        );
        let (fired, _) = fired_between(&s, "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z");
        assert_eq!(
            fired,
            [at("2026-03-03T09:00:00Z"), at("2026-03-05T09:00:00Z")]
        );
        // anything but blank or `false` holds; blank does not
        for (expression, fires) in [("yes", 1), ("{{ trigger.nothing }}", 0), (" false ", 0)] {
            let s = daily_with(
                "0 9 * * *",
                "UTC",
                json!([{"type": format!("{COND}Expression"), "expression": expression}]),
            );
            let (fired, _) = fired_between(&s, "2026-03-01T00:00:00Z", "2026-03-01T12:00:00Z");
            assert_eq!(fired.len(), fires, "{expression}");
        }
        // an expression that does not render skips the date with the reason
        let broken = daily_with(
            "0 9 * * *",
            "UTC",
            json!([{"type": format!("{COND}Expression"), "expression": "{{ noSuchFunction() }}"}]),
        );
        let (fired, due) = fired_between(&broken, "2026-03-01T00:00:00Z", "2026-03-01T12:00:00Z");
        assert!(fired.is_empty());
        let error = due.skipped[0].error.as_deref().unwrap();
        assert!(error.contains("trigger `every`: condition 0"), "{error}");
    }

    #[test]
    fn conditions_read_the_local_date_of_the_time_zone() {
        // 22:00 in New York is the next day in UTC: Monday 2026-03-02 22:00 EST is Tuesday 03:00Z
        let s = daily_with(
            "0 22 * * *",
            "America/New_York",
            json!([{"type": format!("{COND}DayWeek"), "dayOfWeek": "MONDAY"}]),
        );
        let (fired, due) = fired_between(&s, "2026-03-01T00:00:00Z", "2026-03-11T00:00:00Z");
        assert_eq!(
            fired,
            [at("2026-03-03T03:00:00Z"), at("2026-03-10T02:00:00Z")]
        );
        assert_eq!(
            due.fires[0].variables["date"],
            json!("2026-03-02T22:00:00-05:00")
        );
        // Weekend and Not/Or combine on the local date too
        let weekdays = daily_with(
            "0 22 * * *",
            "America/New_York",
            json!([{"type": format!("{COND}Not"),
                    "conditions": [{"type": format!("{COND}Weekend")}]},
                   {"type": format!("{COND}Or"), "conditions": [
                       {"type": format!("{COND}DayWeek"), "dayOfWeek": "FRIDAY"},
                       {"type": format!("{COND}DayWeek"), "dayOfWeek": "SATURDAY"}]}]),
        );
        let (fired, _) = fired_between(&weekdays, "2026-03-01T00:00:00Z", "2026-03-11T00:00:00Z");
        // Friday 2026-03-06 22:00 EST; Saturday is a weekend day
        assert_eq!(fired, [at("2026-03-07T03:00:00Z")]);
    }

    #[test]
    fn legacy_condition_names_from_a_flow() {
        let s = from_yaml(
            "Schedule\n    cron: \"0 9 * * *\"\n    conditions:\n      - type: \
             io.kestra.core.models.conditions.types.DayWeekCondition\n        dayOfWeek: MONDAY\n    \
             scheduleConditions:\n      - type: io.kestra.core.models.conditions.types.VariableCondition\n        \
             expression: \"{{ trigger.date != '2026-03-09T09:00:00Z' }}\"",
        );
        let (fired, _) = fired_between(&s, "2026-03-01T00:00:00Z", "2026-03-20T00:00:00Z");
        assert_eq!(
            fired,
            [at("2026-03-02T09:00:00Z"), at("2026-03-16T09:00:00Z")]
        );
    }

    #[test]
    fn conditions_a_schedule_cannot_evaluate_are_refused() {
        let cases = [
            (
                json!([{"type": format!("{COND}PublicHoliday"), "country": "FR"}]),
                "`conditions[0]`: condition type `io.kestra.plugin.core.condition.PublicHoliday` is not supported",
            ),
            (
                json!([{"type": format!("{COND}DayWeek"), "dayOfWeek": "MONDAY"},
                       {"type": format!("{COND}ExecutionStatus"), "in": ["SUCCESS"]}]),
                "`conditions[1]`: condition ExecutionStatus",
            ),
            (
                json!([{"type": format!("{COND}Or"), "conditions": [
                    {"type": format!("{COND}HasRetryAttempt")}]}]),
                "cannot be evaluated by a schedule",
            ),
            (
                json!([{"type": format!("{COND}DayWeek"), "dayOfWeek": "MONDAYS"}]),
                "`dayOfWeek`",
            ),
            (
                json!([{"type": format!("{COND}DayWeekInMonth"), "dayOfWeek": "MONDAY",
                        "dayInMonth": "FIFTH"}]),
                "`dayInMonth`",
            ),
            (
                json!([{"type": format!("{COND}TimeBetween")}]),
                "needs `after`, `before` or both",
            ),
            (
                json!([{"type": format!("{COND}TimeBetween"), "after": "25:00"}]),
                "`after`",
            ),
            (
                json!([{"type": format!("{COND}DateTimeBetween"), "before": "soon"}]),
                "`before`",
            ),
        ];
        for (conditions, wanted) in cases {
            let t = trigger(json!({"cron": "@daily", "conditions": conditions}));
            let e = Schedule::from_trigger(&t).unwrap_err();
            assert!(e.contains("trigger `every`") && e.contains(wanted), "{e}");
        }
        let legacy = trigger(json!({"cron": "@daily", "scheduleConditions": [
            {"type": "io.kestra.core.models.conditions.types.PublicHolidayCondition"}]}));
        let e = Schedule::from_trigger(&legacy).unwrap_err();
        assert!(
            e.contains("`scheduleConditions[0]`") && e.contains("holiday"),
            "{e}"
        );
    }
}
