//! ISO-8601 durations (`PT5S`, `P1DT2H`, `PT0.5S`), as Kestra writes them.

use std::time::Duration;

/// Parse an ISO-8601 duration of days, hours, minutes and (fractional) seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not an ISO-8601 duration such as PT5S");
    let rest = s.trim().strip_prefix(['P', 'p']).ok_or_else(bad)?;
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut secs = 0f64;
    let mut num = String::new();
    let mut any = false;
    for c in date.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'D' | 'd' => {
                secs += num.parse::<f64>().map_err(|_| bad())? * 86_400.0;
                num.clear();
                any = true;
            }
            'W' | 'w' => {
                secs += num.parse::<f64>().map_err(|_| bad())? * 604_800.0;
                num.clear();
                any = true;
            }
            _ => return Err(bad()),
        }
    }
    if !num.is_empty() {
        return Err(bad());
    }
    if let Some(time) = time {
        for c in time.chars() {
            let unit = match c {
                '0'..='9' | '.' | ',' => {
                    num.push(if c == ',' { '.' } else { c });
                    continue;
                }
                'H' | 'h' => 3600.0,
                'M' | 'm' => 60.0,
                'S' | 's' => 1.0,
                _ => return Err(bad()),
            };
            secs += num.parse::<f64>().map_err(|_| bad())? * unit;
            num.clear();
            any = true;
        }
        if !num.is_empty() {
            return Err(bad());
        }
    }
    if !any || !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kestra_durations() {
        assert_eq!(parse_duration("PT5S"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("PT1M30S"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("P1DT1H"), Ok(Duration::from_secs(90_000)));
        assert_eq!(parse_duration("PT0.5S"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5s").is_err());
        assert!(parse_duration("PT").is_err());
    }
}
