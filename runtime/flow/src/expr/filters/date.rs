//! `date`, `dateAdd`, `timestamp`, `timestampMicro`, `timestampNano` and the formatting of
//! `now()`: Kestra's `AbstractDate` rules. A value is an ISO-8601 string (with or without an
//! offset, or a date alone, which is taken at noon as Kestra does for `LocalDate`), a string in
//! `existingFormat`, or epoch seconds; it is shown in `timeZone` (default UTC) with a Java
//! pattern or a named format (`iso`, `iso_sec`, `sql`, `iso_date_time`, ...).

use super::super::args::{bind, err, to_f64, to_i64};
use super::super::java_date;
use chrono::{
    DateTime, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error};

/// Registers the date filters.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("date", date);
    env.add_filter("dateAdd", date_add);
    env.add_filter("timestamp", |v: Value, a: Rest<Value>, k: Kwargs| {
        timestamp(v, &a, &k, 0)
    });
    env.add_filter("timestampMicro", |v: Value, a: Rest<Value>, k: Kwargs| {
        timestamp(v, &a, &k, 1)
    });
    env.add_filter("timestampNano", |v: Value, a: Rest<Value>, k: Kwargs| {
        timestamp(v, &a, &k, 2)
    });
}

/// A zone: a named zone or a fixed offset.
enum Zone {
    Named(Tz),
    Fixed(FixedOffset, String),
}

fn zone(tz: Option<&str>) -> Result<Zone, Error> {
    let Some(tz) = tz else {
        return Ok(Zone::Named(Tz::UTC));
    };
    if let Ok(z) = tz.parse::<Tz>() {
        return Ok(Zone::Named(z));
    }
    if tz == "Z" {
        return Ok(Zone::Named(Tz::UTC));
    }
    let fixed = tz
        .strip_prefix("UTC")
        .or_else(|| tz.strip_prefix("GMT"))
        .unwrap_or(tz);
    if let Ok(off) = DateTime::parse_from_str(
        &format!("2000-01-01T00:00:00{fixed}"),
        "%Y-%m-%dT%H:%M:%S%:z",
    )
    .or_else(|_| {
        DateTime::parse_from_str(
            &format!("2000-01-01T00:00:00{fixed}"),
            "%Y-%m-%dT%H:%M:%S%z",
        )
    })
    .map(|d| *d.offset())
    {
        return Ok(Zone::Fixed(off, tz.to_string()));
    }
    Err(err(format!("unknown time zone `{tz}`")))
}

impl Zone {
    /// `dt` in this zone, with the zone's id and abbreviation.
    fn apply(&self, dt: DateTime<FixedOffset>) -> (DateTime<FixedOffset>, String, String) {
        match self {
            Zone::Named(tz) => {
                let local = dt.with_timezone(tz);
                (
                    local.fixed_offset(),
                    tz.name().to_string(),
                    local.format("%Z").to_string(),
                )
            }
            Zone::Fixed(off, name) => (dt.with_timezone(off), name.clone(), name.clone()),
        }
    }

    fn local(&self, naive: NaiveDateTime) -> Result<DateTime<FixedOffset>, Error> {
        let r = match self {
            Zone::Named(tz) => tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|d| d.fixed_offset()),
            Zone::Fixed(off, _) => off.from_local_datetime(&naive).earliest(),
        };
        r.ok_or_else(|| err(format!("`{naive}` does not exist in this time zone")))
    }
}

fn iso_frac(nanos: u32) -> &'static str {
    if nanos == 0 {
        ""
    } else if nanos.is_multiple_of(1_000_000) {
        ".SSS"
    } else if nanos.is_multiple_of(1_000) {
        ".SSSSSS"
    } else {
        ".SSSSSSSSS"
    }
}

/// The Java pattern of a named format, or the pattern itself.
fn pattern_for(format: &str, dt: &DateTime<FixedOffset>, named_zone: bool) -> String {
    use chrono::Timelike;
    let frac = iso_frac(dt.nanosecond());
    let zone_suffix = if named_zone { "'['VV']'" } else { "" };
    match format {
        "iso" => "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX".into(),
        "iso_sec" => "yyyy-MM-dd'T'HH:mm:ssXXX".into(),
        "sql" => "yyyy-MM-dd HH:mm:ss.SSSSSS".into(),
        "sql_seq" => "yyyy-MM-dd HH:mm:ss".into(),
        "iso_date_time" | "iso_zoned_date_time" => {
            format!("yyyy-MM-dd'T'HH:mm:ss{frac}XXX{zone_suffix}")
        }
        "iso_offset_date_time" => format!("yyyy-MM-dd'T'HH:mm:ss{frac}XXX"),
        "iso_date" => "yyyy-MM-ddXXX".into(),
        "iso_time" | "iso_offset_time" => format!("HH:mm:ss{frac}XXX"),
        "iso_local_date" => "yyyy-MM-dd".into(),
        "iso_local_time" => format!("HH:mm:ss{frac}"),
        "iso_local_date_time" => format!("yyyy-MM-dd'T'HH:mm:ss{frac}"),
        "iso_instant" => format!("yyyy-MM-dd'T'HH:mm:ss{frac}'Z'"),
        "iso_ordinal_date" => "yyyy-DDDXXX".into(),
        "iso_week_date" => "YYYY-'W'ww-eXXX".into(),
        "rfc_1123_date_time" => "EEE, d MMM yyyy HH:mm:ss Z".into(),
        "full" => "EEEE, MMMM d, yyyy 'at' h:mm:ss a zzzz".into(),
        "long" => "MMMM d, yyyy 'at' h:mm:ss a z".into(),
        "medium" => "MMM d, yyyy, h:mm:ss a".into(),
        "short" => "M/d/yy, h:mm a".into(),
        other => other.into(),
    }
}

/// Formats an instant in a zone with a Java pattern or named format (default `iso`).
pub(crate) fn format_instant(
    dt: DateTime<FixedOffset>,
    format: Option<&str>,
    tz: Option<&str>,
) -> Result<String, Error> {
    let z = zone(tz)?;
    let format = format.unwrap_or("iso");
    let (dt, id, abbrev) = if format == "iso_instant" {
        (
            dt.with_timezone(&FixedOffset::east_opt(0).unwrap_or(*dt.offset())),
            "UTC".to_string(),
            "UTC".to_string(),
        )
    } else {
        z.apply(dt)
    };
    let pattern = pattern_for(format, &dt, matches!(z, Zone::Named(_)));
    let out = java_date::format(&dt, &id, &abbrev, &pattern).map_err(err)?;
    if format == "rfc_1123_date_time" && dt.offset().local_minus_utc() == 0 {
        return Ok(out.replace("+0000", "GMT"));
    }
    Ok(out)
}

/// A value as an instant: ISO strings, `existingFormat` strings, epoch seconds.
pub(crate) fn to_datetime(
    v: &Value,
    existing: Option<&str>,
    tz: Option<&str>,
) -> Result<DateTime<FixedOffset>, Error> {
    let z = zone(tz)?;
    if matches!(v.kind(), ValueKind::Number) {
        let utc = if v.is_integer() {
            let s = to_i64(v).ok_or_else(|| err("date: number out of range"))?;
            Utc.timestamp_opt(s, 0).single()
        } else {
            let f = to_f64(v).unwrap_or(0.0);
            Utc.timestamp_opt(f.floor() as i64, ((f - f.floor()) * 1e9) as u32)
                .single()
        };
        return utc
            .map(|d| d.fixed_offset())
            .ok_or_else(|| err("date: epoch out of range"));
    }
    let Some(s) = v.as_str() else {
        return Err(err(format!(
            "date: `{}` is not a date",
            super::super::value::display(v)
        )));
    };
    let s = s.trim();
    if let Some(existing) = existing {
        let f = java_date::to_strftime(existing).map_err(err)?;
        if let Ok(d) = DateTime::parse_from_str(s, &f) {
            return Ok(d);
        }
        if let Ok(n) = NaiveDateTime::parse_from_str(s, &f) {
            return z.local(n);
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, &f) {
            return z.local(d.and_time(NaiveTime::MIN));
        }
        return Err(err(format!(
            "date: `{s}` does not match the format `{existing}`"
        )));
    }
    let bare = match s.find('[') {
        Some(i) if s.ends_with(']') => &s[..i],
        _ => s,
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(bare) {
        return Ok(d);
    }
    for f in [
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(bare, f) {
            return Ok(d);
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(bare, f) {
            return z.local(n);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(bare, "%Y-%m-%d") {
        return z.local(d.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN)));
    }
    Err(err(format!(
        "date: `{s}` is not an ISO-8601 date; give its format with existingFormat"
    )))
}

const DATE_ARGS: &[&str] = &["format", "timeZone", "existingFormat", "locale"];

fn date(v: Value, args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind("date", DATE_ARGS, &args, &kw)?;
    if v.is_none() || v.is_undefined() {
        return Ok(Value::from(()));
    }
    let format = a.opt_str(0)?;
    let tz = a.opt_str(1)?;
    let existing = a.opt_str(2)?;
    let dt = to_datetime(&v, existing.as_deref(), tz.as_deref())?;
    format_instant(dt, format.as_deref(), tz.as_deref()).map(Value::from)
}

fn date_add(v: Value, args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = bind(
        "dateAdd",
        &[
            "amount",
            "unit",
            "format",
            "timeZone",
            "existingFormat",
            "locale",
        ],
        &args,
        &kw,
    )?;
    let amount = a
        .opt_i64(0)?
        .ok_or_else(|| err("dateAdd needs the argument `amount`"))?;
    let unit = a.req_str(1)?;
    let format = a.opt_str(2)?;
    let tz = a.opt_str(3)?;
    let existing = a.opt_str(4)?;
    let dt = to_datetime(&v, existing.as_deref(), tz.as_deref())?;
    // months and years add in the zone's calendar
    let (local, _, _) = zone(tz.as_deref())?.apply(dt);
    let months = |m: i64| -> Option<DateTime<FixedOffset>> {
        if m >= 0 {
            local.checked_add_months(Months::new(u32::try_from(m).ok()?))
        } else {
            local.checked_sub_months(Months::new(u32::try_from(-m).ok()?))
        }
    };
    let out = match unit.to_ascii_uppercase().as_str() {
        "NANOS" => local.checked_add_signed(Duration::nanoseconds(amount)),
        "MICROS" => local.checked_add_signed(Duration::microseconds(amount)),
        "MILLIS" => local.checked_add_signed(Duration::milliseconds(amount)),
        "SECONDS" => Duration::try_seconds(amount).and_then(|d| local.checked_add_signed(d)),
        "MINUTES" => Duration::try_minutes(amount).and_then(|d| local.checked_add_signed(d)),
        "HOURS" => Duration::try_hours(amount).and_then(|d| local.checked_add_signed(d)),
        "HALF_DAYS" => Duration::try_hours(amount.saturating_mul(12)).and_then(|d| local.checked_add_signed(d)),
        "DAYS" => Duration::try_days(amount).and_then(|d| local.checked_add_signed(d)),
        "WEEKS" => Duration::try_weeks(amount).and_then(|d| local.checked_add_signed(d)),
        "MONTHS" => months(amount),
        "YEARS" => months(amount.saturating_mul(12)),
        "DECADES" => months(amount.saturating_mul(120)),
        "CENTURIES" => months(amount.saturating_mul(1200)),
        other => {
            return Err(err(format!(
                "dateAdd: unknown unit `{other}` (use SECONDS, MINUTES, HOURS, DAYS, WEEKS, MONTHS, YEARS, ...)"
            )));
        }
    }
    .ok_or_else(|| err("dateAdd: the date is out of range"))?;
    format_instant(out, format.as_deref(), tz.as_deref()).map(Value::from)
}

fn timestamp(v: Value, args: &[Value], kw: &Kwargs, precision: u8) -> Result<Value, Error> {
    let a = bind("timestamp", &["existingFormat", "timeZone"], args, kw)?;
    let existing = a.opt_str(0)?;
    let tz = a.opt_str(1)?;
    let dt = to_datetime(&v, existing.as_deref(), tz.as_deref())?;
    let secs = dt.timestamp();
    let nanos = i64::from(dt.timestamp_subsec_nanos());
    Ok(Value::from(match precision {
        0 => secs,
        1 => secs.saturating_mul(1_000_000).saturating_add(nanos / 1000),
        _ => secs.saturating_mul(1_000_000_000).saturating_add(nanos),
    }))
}
