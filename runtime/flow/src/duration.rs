//! ISO-8601 durations as Kestra reads and writes them (Java's `java.time.Duration`).
//!
//! Java accepts `PnDTnHnMn.nS` (days, hours, minutes, seconds with up to 9 decimals, each part
//! optionally signed, the whole optionally negated) and prints hours, minutes and seconds only
//! (`P1D` prints as `PT24H`). Years, months and weeks are not durations in Java and are refused
//! here too, so a flow that weft accepts is one Kestra accepts.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// A signed duration with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    nanos: i128,
}

/// A string that is not an ISO-8601 duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO-8601 duration (expected e.g. `PT30S`, `PT15M`, `PT1H30M` or `P1D`)")]
pub struct DurationError(pub String);

static PATTERN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^([-+]?)P(?:([-+]?[0-9]+)D)?(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?$",
    )
    .ok()
});

const NANOS_PER_SECOND: i128 = 1_000_000_000;

impl Duration {
    /// A duration of whole seconds.
    pub fn from_secs(secs: i64) -> Self {
        Duration {
            nanos: i128::from(secs) * NANOS_PER_SECOND,
        }
    }

    /// A duration of milliseconds.
    pub fn from_millis(millis: i64) -> Self {
        Duration {
            nanos: i128::from(millis) * 1_000_000,
        }
    }

    /// A duration of nanoseconds.
    pub fn from_nanos(nanos: i128) -> Self {
        Duration { nanos }
    }

    /// Total nanoseconds.
    pub fn as_nanos(&self) -> i128 {
        self.nanos
    }

    /// Total milliseconds (truncated).
    pub fn as_millis(&self) -> i64 {
        i64::try_from(self.nanos / 1_000_000).unwrap_or(i64::MAX)
    }

    /// Whether the duration is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// As a `std::time::Duration`, or `None` when negative.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        let n = u128::try_from(self.nanos).ok()?;
        let secs = u64::try_from(n / 1_000_000_000).ok()?;
        let sub = u32::try_from(n % 1_000_000_000).ok()?;
        Some(std::time::Duration::new(secs, sub))
    }

    /// As a `chrono::TimeDelta`.
    pub fn to_chrono(&self) -> chrono::TimeDelta {
        let secs = i64::try_from(self.nanos.div_euclid(NANOS_PER_SECOND)).unwrap_or(i64::MAX);
        let sub = u32::try_from(self.nanos.rem_euclid(NANOS_PER_SECOND)).unwrap_or(0);
        chrono::TimeDelta::new(secs, sub).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// From a `chrono::TimeDelta`.
    pub fn from_chrono(d: chrono::TimeDelta) -> Self {
        Duration {
            nanos: i128::from(d.num_seconds()) * NANOS_PER_SECOND + i128::from(d.subsec_nanos()),
        }
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses a duration such as `PT1H30M`, `P2D`, `PT0.5S` or `-PT10S`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_string());
    let re = PATTERN.as_ref().ok_or_else(err)?;
    let caps = re.captures(text).ok_or_else(err)?;
    let part = |i: usize| -> Result<i128, DurationError> {
        caps.get(i)
            .map_or(Ok(0), |m| m.as_str().parse::<i128>().map_err(|_| err()))
    };
    let (days, hours, minutes, seconds) = (part(2)?, part(4)?, part(5)?, part(6)?);
    let has_time_part = caps.get(4).is_some() || caps.get(5).is_some() || caps.get(6).is_some();
    if caps.get(3).is_some() && !has_time_part {
        return Err(err()); // `PT` alone
    }
    if caps.get(2).is_none() && !has_time_part {
        return Err(err()); // `P` alone
    }
    let mut frac: i128 = 0;
    if let Some(m) = caps.get(7) {
        let digits = m.as_str();
        let padded = format!("{digits:0<9}");
        frac = padded.parse::<i128>().map_err(|_| err())?;
        if caps.get(6).is_some_and(|s| s.as_str().starts_with('-')) {
            frac = -frac;
        }
    }
    let mut nanos = ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
    nanos = nanos * NANOS_PER_SECOND + frac;
    if caps.get(1).is_some_and(|m| m.as_str() == "-") {
        nanos = -nanos;
    }
    Ok(Duration { nanos })
}

impl fmt::Display for Duration {
    /// Java's `Duration.toString()`: `PT0S`, `PT8H6M12.345S`, `PT-0.5S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("PT0S");
        }
        let total_secs = self.nanos.div_euclid(NANOS_PER_SECOND);
        let nano = self.nanos.rem_euclid(NANOS_PER_SECOND);
        let hours = total_secs / 3600;
        let minutes = (total_secs % 3600) / 60;
        let secs = total_secs % 60;
        f.write_str("PT")?;
        if hours != 0 {
            write!(f, "{hours}H")?;
        }
        if minutes != 0 {
            write!(f, "{minutes}M")?;
        }
        if secs == 0 && nano == 0 && (hours != 0 || minutes != 0) {
            return Ok(());
        }
        if secs < 0 && nano > 0 {
            if secs == -1 {
                f.write_str("-0")?;
            } else {
                write!(f, "{}", secs + 1)?;
            }
        } else {
            write!(f, "{secs}")?;
        }
        if nano > 0 {
            let shown = if secs < 0 {
                NANOS_PER_SECOND - nano
            } else {
                nano
            };
            let digits = format!("{shown:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("S")
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_durations() {
        assert_eq!(parse("PT1S").unwrap(), Duration::from_secs(1));
        assert_eq!(parse("PT15M").unwrap(), Duration::from_secs(900));
        assert_eq!(parse("PT1H30M").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("P1D").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse("P1DT1S").unwrap(), Duration::from_secs(86401));
        assert_eq!(parse("PT0.5S").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("-PT10S").unwrap(), Duration::from_secs(-10));
        assert_eq!(parse("pt2s").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn refuses_what_java_refuses() {
        for bad in [
            "", "P", "PT", "1S", "P1Y", "P1M", "P1W", "PT1.5M", "10s", "PT1H30",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn prints_like_java() {
        assert_eq!(Duration::from_secs(0).to_string(), "PT0S");
        assert_eq!(parse("P1D").unwrap().to_string(), "PT24H");
        assert_eq!(parse("PT5M6S").unwrap().to_string(), "PT5M6S");
        assert_eq!(parse("PT60M").unwrap().to_string(), "PT1H");
        assert_eq!(parse("PT1.250S").unwrap().to_string(), "PT1.25S");
        assert_eq!(parse("-PT0.5S").unwrap().to_string(), "PT-0.5S");
    }
}
