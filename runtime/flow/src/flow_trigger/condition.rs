//! The conditions of triggers. A Flow trigger tests them against the execution that terminated
//! ([`Cond::test`]): Kestra's `ExecutionStatus`, `ExecutionFlow`, `ExecutionNamespace`,
//! `ExecutionLabels`, `Expression`, `ExecutionOutputs`, `Not`, `Or`, and the `where` filters of
//! `preconditions`. A Schedule trigger tests them against each date it gives
//! ([`Cond::test_date`]): `DayWeek`, `DayWeekInMonth`, `Weekend`, `DateTimeBetween`,
//! `TimeBetween`, `Expression`, `Not`, `Or`. A type that is not one of those parses (a Flow
//! trigger stays valid) but fails its test with a reason; a schedule refuses it up front
//! ([`Cond::check_for_schedule`]).

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
    Weekday,
};
use chrono_tz::Tz;
use regex::Regex;
use serde_json::{Map, Value as Json};

use super::Source;
use crate::expr::{Context, Renderer};
use crate::model::{Condition, Label, Labels};

const NEW_PREFIX: &str = "io.kestra.plugin.core.condition.";
const OLD_PREFIX: &str = "io.kestra.core.models.conditions.types.";

/// The short name of a condition type: `ExecutionFlow` for
/// `io.kestra.plugin.core.condition.ExecutionFlow`, `...ExecutionFlowCondition` and the legacy
/// `io.kestra.core.models.conditions.types.ExecutionFlowCondition`.
pub(crate) fn short_type(type_name: &str) -> &str {
    let rest = type_name
        .strip_prefix(NEW_PREFIX)
        .or_else(|| type_name.strip_prefix(OLD_PREFIX))
        .unwrap_or(type_name);
    match rest.strip_suffix("Condition") {
        Some("Variable") => "Expression",
        Some(short) if !short.is_empty() => short,
        _ => rest,
    }
}

/// How `ExecutionNamespace` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Equals,
    Prefix,
    Suffix,
}

/// A `where` filter's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    FlowId,
    Namespace,
    State,
    Expression,
}

/// A `where` filter.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    field: Field,
    kind: String,
    value: Option<String>,
    values: Vec<String>,
    regex: Option<Regex>,
}

/// One condition, parsed.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Status {
        within: Vec<String>,
        outside: Vec<String>,
    },
    Flow {
        namespace: String,
        flow_id: String,
    },
    /// A `preconditions.flows` entry: each part optional.
    UpstreamFlow {
        namespace: Option<String>,
        flow_id: Option<String>,
    },
    Namespace {
        namespace: String,
        comparison: Comparison,
    },
    Labels(Vec<Label>),
    Expression(String),
    Outputs(String),
    /// True when no condition holds.
    Not(Vec<Cond>),
    /// True when one condition holds.
    Or(Vec<Cond>),
    /// True when every condition holds.
    All(Vec<Cond>),
    Filter(Box<Filter>),
    /// A date condition (schedules only).
    Date(DateCond),
    /// A type this runtime does not evaluate for Flow triggers.
    Unsupported(String),
}

/// Which week of the month `DayWeekInMonth` wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InMonth {
    First,
    Second,
    Third,
    Fourth,
    Last,
}

/// A condition on a date: `date` (a template, default `{{ trigger.date }}`) and the test.
#[derive(Debug, Clone)]
pub(crate) struct DateCond {
    type_name: String,
    date: Option<String>,
    test: DateTest,
}

/// What a [`DateCond`] tests. `after`/`before` are kept as written (they may be templates) and
/// read when tested; a literal one was read once at parse time.
#[derive(Debug, Clone)]
enum DateTest {
    DayWeek(Weekday),
    DayWeekInMonth(Weekday, InMonth),
    Weekend,
    DateTimeBetween {
        after: Option<String>,
        before: Option<String>,
    },
    TimeBetween {
        after: Option<String>,
        before: Option<String>,
    },
}

/// What a schedule's conditions see for one date.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateSubject<'a> {
    /// `{trigger: {date, next, previous}}`.
    pub vars: &'a Json,
    /// The trigger's time zone (date-times written without an offset are in it).
    pub tz: Tz,
    /// What `now()` returns.
    pub now: DateTime<Utc>,
}

fn weekday_of(props: &Map<String, Json>) -> Result<Weekday, String> {
    let text = required(props, "dayOfWeek")?;
    match text.trim().to_ascii_uppercase().as_str() {
        "MONDAY" => Ok(Weekday::Mon),
        "TUESDAY" => Ok(Weekday::Tue),
        "WEDNESDAY" => Ok(Weekday::Wed),
        "THURSDAY" => Ok(Weekday::Thu),
        "FRIDAY" => Ok(Weekday::Fri),
        "SATURDAY" => Ok(Weekday::Sat),
        "SUNDAY" => Ok(Weekday::Sun),
        _ => Err(format!(
            "`dayOfWeek`: `{text}` is not one of MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY"
        )),
    }
}

/// An ISO-8601 date-time as written, with its offset (`...+01:00[Europe/Paris]`, `...Z`); one
/// without an offset, or a plain date (midnight), is a wall-clock time in `tz`.
pub(crate) fn parse_zoned(text: &str, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    let trimmed = text.trim();
    let plain = trimmed.split('[').next().unwrap_or(trimmed);
    if let Ok(d) = DateTime::parse_from_rfc3339(plain) {
        return Ok(d);
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(plain, f).ok())
    .or_else(|| {
        let day = NaiveDate::parse_from_str(plain, "%Y-%m-%d").ok()?;
        day.and_hms_opt(0, 0, 0)
    })
    .ok_or_else(|| format!("`{text}` is not an ISO-8601 date-time"))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.fixed_offset())
        .ok_or_else(|| format!("`{text}` does not exist in time zone {tz}"))
}

/// An ISO-8601 time of day, with its offset when written (`16:00:00+02:00`, `16:00Z`, `16:00`).
fn parse_time(text: &str) -> Result<(NaiveTime, Option<FixedOffset>), String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not an ISO-8601 time (e.g. `16:00:00+02:00`)");
    let (clock, offset) = match t.find(['+', '-', 'Z', 'z']) {
        None => (t, None),
        Some(i) => {
            let zone = &t[i..];
            let offset = if zone.eq_ignore_ascii_case("z") {
                FixedOffset::east_opt(0)
            } else {
                DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{zone}"))
                    .ok()
                    .map(|d| *d.offset())
            };
            (&t[..i], Some(offset.ok_or_else(bad)?))
        }
    };
    let time = ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(clock, f).ok())
        .ok_or_else(bad)?;
    Ok((time, offset))
}

/// Nanoseconds since midnight UTC of a time with an offset (Java's `OffsetTime` comparison).
fn time_key(time: NaiveTime, offset: FixedOffset) -> i64 {
    i64::from(time.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(time.nanosecond())
        - i64::from(offset.local_minus_utc()) * 1_000_000_000
}

/// `after`/`before` of a between condition, each checked when literal.
fn bounds(
    props: &Map<String, Json>,
    check: fn(&str) -> Result<(), String>,
) -> Result<(Option<String>, Option<String>), String> {
    let mut out = [None, None];
    for (slot, key) in out.iter_mut().zip(["after", "before"]) {
        if let Some(text) = string_of(props, key)? {
            if !crate::expr::is_template(text) {
                check(text).map_err(|e| format!("`{key}`: {e}"))?;
            }
            *slot = Some(text.to_string());
        }
    }
    let [after, before] = out;
    if after.is_none() && before.is_none() {
        return Err("needs `after`, `before` or both".into());
    }
    Ok((after, before))
}

impl DateCond {
    fn parse(type_name: &str, props: &Map<String, Json>) -> Result<Option<DateCond>, String> {
        let test = match short_type(type_name) {
            "DayWeek" => DateTest::DayWeek(weekday_of(props)?),
            "DayWeekInMonth" => {
                let day = weekday_of(props)?;
                let nth = match required(props, "dayInMonth")? {
                    "FIRST" => InMonth::First,
                    "SECOND" => InMonth::Second,
                    "THIRD" => InMonth::Third,
                    "FOURTH" => InMonth::Fourth,
                    "LAST" => InMonth::Last,
                    other => {
                        return Err(format!(
                            "`dayInMonth`: `{other}` is not one of FIRST, SECOND, THIRD, FOURTH, LAST"
                        ));
                    }
                };
                DateTest::DayWeekInMonth(day, nth)
            }
            "Weekend" => DateTest::Weekend,
            "DateTimeBetween" => {
                let (after, before) = bounds(props, |s| parse_zoned(s, Tz::UTC).map(|_| ()))?;
                DateTest::DateTimeBetween { after, before }
            }
            "TimeBetween" => {
                let (after, before) = bounds(props, |s| parse_time(s).map(|_| ()))?;
                DateTest::TimeBetween { after, before }
            }
            _ => return Ok(None),
        };
        let date = string_of(props, "date")?.map(str::to_string);
        Ok(Some(DateCond {
            type_name: type_name.to_string(),
            date,
            test,
        }))
    }

    fn test(&self, subject: &DateSubject<'_>, renderer: &Renderer) -> Result<bool, String> {
        let text = match &self.date {
            Some(template) => render_date_vars(renderer, template, subject)?,
            None => subject
                .vars
                .pointer("/trigger/date")
                .and_then(Json::as_str)
                .ok_or("`date`: there is no `trigger.date`")?
                .to_string(),
        };
        let date = parse_zoned(&text, subject.tz).map_err(|e| format!("`date`: {e}"))?;
        let day = date.date_naive();
        let bound = |key: &str, text: &Option<String>| -> Result<Option<String>, String> {
            text.as_deref()
                .map(|t| {
                    render_date_vars(renderer, t, subject).map_err(|e| format!("`{key}`: {e}"))
                })
                .transpose()
        };
        Ok(match &self.test {
            DateTest::DayWeek(wanted) => day.weekday() == *wanted,
            DateTest::DayWeekInMonth(wanted, nth) => {
                day.weekday() == *wanted && {
                    let week = (day.day0() / 7) as u8;
                    match nth {
                        InMonth::First => week == 0,
                        InMonth::Second => week == 1,
                        InMonth::Third => week == 2,
                        InMonth::Fourth => week == 3,
                        // a week later is in the next month
                        InMonth::Last => day
                            .checked_add_days(chrono::Days::new(7))
                            .is_none_or(|d| d.month() != day.month()),
                    }
                }
            }
            DateTest::Weekend => matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
            DateTest::DateTimeBetween { after, before } => {
                let read = |key: &str, t: &Option<String>| {
                    bound(key, t)?
                        .map(|s| parse_zoned(&s, subject.tz).map_err(|e| format!("`{key}`: {e}")))
                        .transpose()
                };
                let after = read("after", after)?;
                let before = read("before", before)?;
                after.is_none_or(|a| date > a) && before.is_none_or(|b| date < b)
            }
            DateTest::TimeBetween { after, before } => {
                let current = time_key(date.time(), *date.offset());
                let read = |key: &str, t: &Option<String>| -> Result<Option<i64>, String> {
                    bound(key, t)?
                        .map(|s| {
                            let (time, offset) =
                                parse_time(&s).map_err(|e| format!("`{key}`: {e}"))?;
                            Ok(time_key(time, offset.unwrap_or(*date.offset())))
                        })
                        .transpose()
                };
                let after = read("after", after)?;
                let before = read("before", before)?;
                after.is_none_or(|a| current > a) && before.is_none_or(|b| current < b)
            }
        })
    }
}

/// A template rendered with a schedule date's variables, trimmed (a literal is only trimmed).
fn render_date_vars(
    renderer: &Renderer,
    template: &str,
    subject: &DateSubject<'_>,
) -> Result<String, String> {
    if !crate::expr::is_template(template) {
        return Ok(template.trim().to_string());
    }
    let ctx = Context {
        vars: subject.vars,
        now: subject.now,
        seed: 0,
        host: None,
    };
    renderer
        .render(template, &ctx)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("`{template}` does not render: {e}"))
}

fn string_of<'a>(props: &'a Map<String, Json>, key: &str) -> Result<Option<&'a str>, String> {
    match props.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`{key}`: expected a string, got {other}")),
    }
}

fn required<'a>(props: &'a Map<String, Json>, key: &str) -> Result<&'a str, String> {
    string_of(props, key)?.ok_or_else(|| format!("`{key}` is missing"))
}

/// A list of state names (a single string is a list of one).
pub(crate) fn states_of(value: Option<&Json>) -> Result<Vec<String>, String> {
    let upper = |v: &Json| match v {
        Json::String(s) => Ok(s.trim().to_ascii_uppercase()),
        other => Err(format!("expected a state name, got {other}")),
    };
    match value {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items.iter().map(upper).collect(),
        Some(one) => Ok(vec![upper(one)?]),
    }
}

fn conditions_list(props: &Map<String, Json>) -> Result<Vec<Cond>, String> {
    match props.get("conditions") {
        Some(Json::Array(items)) => items.iter().map(Cond::from_json).collect(),
        _ => Err("`conditions`: expected a list of conditions".into()),
    }
}

impl Cond {
    /// A condition from its JSON form (`{type, ...}`).
    pub(crate) fn from_json(json: &Json) -> Result<Cond, String> {
        let condition: Condition =
            serde_json::from_value(json.clone()).map_err(|e| format!("bad condition: {e}"))?;
        Cond::parse(&condition)
    }

    /// A condition of a trigger. `MultipleCondition` is not one (see [`super::Multiple`]).
    pub(crate) fn parse(c: &Condition) -> Result<Cond, String> {
        let props: Map<String, Json> = c
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let at = |e: String| format!("condition {}: {e}", c.type_name);
        let cond = match short_type(&c.type_name) {
            "ExecutionStatus" => Cond::Status {
                within: states_of(props.get("in")).map_err(at)?,
                outside: states_of(props.get("notIn")).map_err(at)?,
            },
            "ExecutionFlow" => Cond::Flow {
                namespace: required(&props, "namespace").map_err(at)?.to_string(),
                flow_id: required(&props, "flowId").map_err(at)?.to_string(),
            },
            "ExecutionNamespace" => {
                let legacy_prefix = props.get("prefix").and_then(Json::as_bool) == Some(true);
                let comparison = match string_of(&props, "comparison").map_err(at)? {
                    None if legacy_prefix => Comparison::Prefix,
                    None | Some("EQUALS") => Comparison::Equals,
                    Some("PREFIX") => Comparison::Prefix,
                    Some("SUFFIX") => Comparison::Suffix,
                    Some(other) => {
                        return Err(at(format!(
                            "`comparison`: `{other}` is not one of EQUALS, PREFIX, SUFFIX"
                        )));
                    }
                };
                Cond::Namespace {
                    namespace: required(&props, "namespace").map_err(at)?.to_string(),
                    comparison,
                }
            }
            "ExecutionLabels" => Cond::Labels(
                Labels::from_json(props.get("labels").unwrap_or(&Json::Null))
                    .map_err(at)?
                    .0,
            ),
            "Expression" => Cond::Expression(required(&props, "expression").map_err(at)?.into()),
            "ExecutionOutputs" => Cond::Outputs(required(&props, "expression").map_err(at)?.into()),
            "Not" => Cond::Not(conditions_list(&props).map_err(at)?),
            "Or" => Cond::Or(conditions_list(&props).map_err(at)?),
            _ => match DateCond::parse(&c.type_name, &props).map_err(at)? {
                Some(d) => Cond::Date(d),
                None => Cond::Unsupported(c.type_name.clone()),
            },
        };
        Ok(cond)
    }

    /// Ok when a schedule can evaluate the condition (and every condition inside it).
    pub(crate) fn check_for_schedule(&self) -> Result<(), String> {
        match self {
            Cond::Date(_) | Cond::Expression(_) => Ok(()),
            Cond::Not(all) | Cond::Or(all) | Cond::All(all) => {
                all.iter().try_for_each(Cond::check_for_schedule)
            }
            Cond::Unsupported(type_name) if short_type(type_name) == "PublicHoliday" => {
                Err(format!(
                    "condition type `{type_name}` is not supported: weft has no public holiday data"
                ))
            }
            Cond::Unsupported(type_name) => Err(format!(
                "condition type `{type_name}` cannot be evaluated by a schedule"
            )),
            other => Err(format!(
                "condition {} tests an execution and cannot be evaluated by a schedule",
                other.kind()
            )),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Cond::Status { .. } => "ExecutionStatus",
            Cond::Flow { .. } | Cond::UpstreamFlow { .. } => "ExecutionFlow",
            Cond::Namespace { .. } => "ExecutionNamespace",
            Cond::Labels(_) => "ExecutionLabels",
            Cond::Outputs(_) => "ExecutionOutputs",
            Cond::Filter(_) => "filter",
            _ => "condition",
        }
    }

    /// Whether the condition holds for a schedule's date; an error for a condition that cannot
    /// be evaluated (a type [`Cond::check_for_schedule`] refuses, a template that does not
    /// render, a date that does not parse). `Expression` holds unless it renders blank or
    /// `false`, as in Kestra.
    pub(crate) fn test_date(
        &self,
        subject: &DateSubject<'_>,
        renderer: &Renderer,
    ) -> Result<bool, String> {
        Ok(match self {
            Cond::Date(d) => d.test(subject, renderer)?,
            Cond::Expression(expr) => expression_holds(&render_date_vars(renderer, expr, subject)?),
            Cond::Not(all) => {
                for c in all {
                    if c.test_date(subject, renderer)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Or(any) => {
                for c in any {
                    if c.test_date(subject, renderer)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::All(all) => {
                for c in all {
                    if !c.test_date(subject, renderer)? {
                        return Ok(false);
                    }
                }
                true
            }
            other => return Err(other.check_for_schedule().err().unwrap_or_default()),
        })
    }

    /// Whether the condition holds for `src`; an error for a condition that cannot be evaluated
    /// (unsupported type, expression that does not render).
    pub(crate) fn test(&self, src: &Source<'_>, renderer: &Renderer) -> Result<bool, String> {
        Ok(match self {
            Cond::Status { within, outside } => {
                (within.is_empty() || within.iter().any(|s| s == src.state))
                    && !outside.iter().any(|s| s == src.state)
            }
            Cond::Flow { namespace, flow_id } => {
                src.namespace == namespace && src.flow_id == flow_id
            }
            Cond::UpstreamFlow { namespace, flow_id } => {
                namespace.as_deref().is_none_or(|n| n == src.namespace)
                    && flow_id.as_deref().is_none_or(|f| f == src.flow_id)
            }
            Cond::Namespace {
                namespace,
                comparison,
            } => match comparison {
                Comparison::Equals => src.namespace == namespace,
                Comparison::Prefix => src.namespace.starts_with(namespace.as_str()),
                Comparison::Suffix => src.namespace.ends_with(namespace.as_str()),
            },
            Cond::Labels(wanted) => wanted.iter().all(|w| {
                src.labels
                    .iter()
                    .any(|l| l.key == w.key && l.value == w.value)
            }),
            Cond::Expression(expr) => {
                render(renderer, expr, src.context, src).is_some_and(|s| expression_holds(&s))
            }
            Cond::Outputs(expr) => match src.outputs {
                None => false,
                Some(outputs) => {
                    let mut vars = src.context.clone();
                    if let Json::Object(m) = &mut vars {
                        m.insert("outputs".into(), Json::Object(outputs.clone()));
                    }
                    render(renderer, expr, &vars, src).is_some_and(|s| s == "true")
                }
            },
            Cond::Not(all) => {
                for c in all {
                    if c.test(src, renderer)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Or(any) => {
                for c in any {
                    if c.test(src, renderer)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::All(all) => {
                for c in all {
                    if !c.test(src, renderer)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Filter(f) => f.test(src, renderer)?,
            Cond::Date(d) => {
                return Err(format!(
                    "condition type `{}` is not supported by Flow triggers",
                    d.type_name
                ));
            }
            Cond::Unsupported(type_name) => {
                return Err(format!(
                    "condition type `{type_name}` is not supported by Flow triggers"
                ));
            }
        })
    }
}

/// The rendered expression, trimmed; `None` when it does not render (e.g. it reads a variable
/// the execution does not have): as in Kestra, the condition is then not met.
fn render(renderer: &Renderer, expr: &str, vars: &Json, src: &Source<'_>) -> Option<String> {
    let ctx = Context {
        vars,
        now: src.now,
        seed: 0,
        host: None,
    };
    renderer
        .render(expr, &ctx)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Filter types that compare the field with `value`/`values`.
const FILTER_TYPES: &[&str] = &[
    "EQUAL_TO",
    "NOT_EQUAL_TO",
    "IS_NULL",
    "IS_NOT_NULL",
    "IS_TRUE",
    "IS_FALSE",
    "STARTS_WITH",
    "ENDS_WITH",
    "REGEX",
    "CONTAINS",
    "IN",
    "NOT_IN",
    "PREFIX",
];

impl Filter {
    /// A `where` filter (`{field, type, value, values}`).
    pub(crate) fn from_json(json: &Json) -> Result<Filter, String> {
        let props = json
            .as_object()
            .ok_or_else(|| format!("filter: expected a map, got {json}"))?;
        let field = match required(props, "field")? {
            "FLOW_ID" => Field::FlowId,
            "NAMESPACE" => Field::Namespace,
            "STATE" => Field::State,
            "EXPRESSION" => Field::Expression,
            other => return Err(format!("filter `field`: unknown field `{other}`")),
        };
        let kind = required(props, "type")?.to_string();
        if !FILTER_TYPES.contains(&kind.as_str()) {
            return Err(format!("filter `type`: unknown type `{kind}`"));
        }
        let value = string_of(props, "value")?.map(str::to_string);
        let values = match props.get("values") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect(),
            Some(other) => return Err(format!("filter `values`: expected a list, got {other}")),
        };
        let regex = match (kind.as_str(), &value) {
            ("REGEX", Some(v)) => Some(
                Regex::new(&format!("^(?:{v})$"))
                    .map_err(|e| format!("filter `value`: bad regex `{v}`: {e}"))?,
            ),
            ("REGEX", None) => return Err("filter `value` is missing for REGEX".into()),
            _ => None,
        };
        Ok(Filter {
            field,
            kind,
            value,
            values,
            regex,
        })
    }

    fn test(&self, src: &Source<'_>, renderer: &Renderer) -> Result<bool, String> {
        // EXPRESSION: the rendered `value` is the subject; the others compare a field with `value`
        let (subject, operand) = match self.field {
            Field::FlowId => (Some(src.flow_id.to_string()), self.value.as_deref()),
            Field::Namespace => (Some(src.namespace.to_string()), self.value.as_deref()),
            Field::State => (Some(src.state.to_string()), self.value.as_deref()),
            Field::Expression => {
                let expr = self
                    .value
                    .as_deref()
                    .ok_or("filter on EXPRESSION without a `value`")?;
                let Some(rendered) = render(renderer, expr, src.context, src) else {
                    return Ok(false);
                };
                (Some(rendered).filter(|s| !s.is_empty()), None)
            }
        };
        let operand_needed = || {
            operand
                .ok_or_else(|| format!("filter {} on {:?} needs a `value`", self.kind, self.field))
        };
        let s = subject.as_deref();
        Ok(match self.kind.as_str() {
            "IS_NULL" => s.is_none(),
            "IS_NOT_NULL" => s.is_some(),
            "IS_TRUE" => s == Some("true"),
            "IS_FALSE" => s == Some("false"),
            "IN" => s.is_some_and(|s| self.values.iter().any(|v| v == s)),
            "NOT_IN" => !s.is_some_and(|s| self.values.iter().any(|v| v == s)),
            "EQUAL_TO" => s == Some(operand_needed()?),
            "NOT_EQUAL_TO" => s != Some(operand_needed()?),
            "STARTS_WITH" => {
                let o = operand_needed()?;
                s.is_some_and(|s| s.starts_with(o))
            }
            "ENDS_WITH" => {
                let o = operand_needed()?;
                s.is_some_and(|s| s.ends_with(o))
            }
            "CONTAINS" => {
                let o = operand_needed()?;
                s.is_some_and(|s| s.contains(o))
            }
            "PREFIX" => {
                let o = operand_needed()?;
                s.is_some_and(|s| crate::ids::namespace_within(s, o))
            }
            "REGEX" => s.is_some_and(|s| self.regex.as_ref().is_some_and(|r| r.is_match(s))),
            other => return Err(format!("filter type `{other}` is not supported")),
        })
    }
}

/// Whether a rendered Expression condition holds: as Kestra, unless it is blank or `false`.
pub fn expression_holds(rendered: &str) -> bool {
    let t = rendered.trim();
    !(t.is_empty() || t == "false")
}

#[cfg(test)]
mod holds_tests {
    use super::expression_holds;

    #[test]
    fn an_expression_holds_unless_blank_or_false() {
        for yes in ["true", "1", "yes", " true "] {
            assert!(expression_holds(yes), "{yes}");
        }
        for no in ["", "  ", "false", " false\n"] {
            assert!(!expression_holds(no), "{no:?}");
        }
    }
}
