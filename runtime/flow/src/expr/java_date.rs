//! Java `DateTimeFormatter` patterns (`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`), as Kestra's `date`
//! filters and `now()` take them: formatting of every common letter, and a translation to a
//! chrono format string for parsing (`existingFormat`).

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

#[derive(Debug, PartialEq)]
enum Piece {
    Letter(char, usize),
    Lit(String),
}

fn tokenize(pattern: &str) -> Result<Vec<Piece>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // quoted literal; '' is a single quote
            if chars.get(i + 1) == Some(&'\'') {
                out.push(Piece::Lit("'".into()));
                i += 2;
                continue;
            }
            let mut lit = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated quote in date pattern `{pattern}`")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        lit.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Piece::Lit(lit));
        } else if c.is_ascii_alphabetic() {
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            out.push(Piece::Letter(c, n));
            i += n;
        } else if c == '[' || c == ']' {
            i += 1;
        } else if c == '{' || c == '}' || c == '#' {
            return Err(format!(
                "reserved character `{c}` in date pattern `{pattern}`"
            ));
        } else {
            out.push(Piece::Lit(c.to_string()));
            i += 1;
        }
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn pad(v: i64, n: usize) -> String {
    if v < 0 {
        format!("-{:0width$}", -v, width = n)
    } else {
        format!("{v:0n$}")
    }
}

fn offset(secs: i32, colon: bool, with_seconds: bool, minutes_optional: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    let (h, m, s) = (a / 3600, (a / 60) % 60, a % 60);
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{h:02}");
    if !(minutes_optional && m == 0 && s == 0) {
        out.push_str(&format!("{sep}{m:02}"));
    }
    if with_seconds && s != 0 {
        out.push_str(&format!("{sep}{s:02}"));
    }
    out
}

/// Formats `dt` with a Java pattern; `zone` is the zone id (`Europe/Paris`, `UTC`, `+02:00`).
pub(crate) fn format(
    dt: &DateTime<FixedOffset>,
    zone: &str,
    zone_abbrev: &str,
    pattern: &str,
) -> Result<String, String> {
    let mut out = String::new();
    let off = dt.offset().local_minus_utc();
    for p in tokenize(pattern)? {
        let (c, n) = match p {
            Piece::Lit(s) => {
                out.push_str(&s);
                continue;
            }
            Piece::Letter(c, n) => (c, n),
        };
        let s = match c {
            'G' => {
                if n == 4 {
                    "Anno Domini".to_string()
                } else {
                    "AD".to_string()
                }
            }
            'y' | 'u' | 'Y' => {
                let y = if c == 'Y' {
                    dt.iso_week().year()
                } else {
                    dt.year()
                } as i64;
                if n == 2 {
                    pad(y.rem_euclid(100), 2)
                } else {
                    pad(y, n)
                }
            }
            'Q' | 'q' => {
                let q = (dt.month0() / 3 + 1) as i64;
                match n {
                    1 | 2 => pad(q, n),
                    3 => format!("Q{q}"),
                    _ => format!("{} quarter", ["1st", "2nd", "3rd", "4th"][(q - 1) as usize]),
                }
            }
            'M' | 'L' => {
                let m = dt.month0() as usize;
                match n {
                    1 | 2 => pad(m as i64 + 1, n),
                    3 => MONTHS[m][..3].to_string(),
                    4 => MONTHS[m].to_string(),
                    _ => MONTHS[m][..1].to_string(),
                }
            }
            'w' => pad(dt.iso_week().week() as i64, n),
            'D' => pad(dt.ordinal() as i64, n),
            'd' => pad(dt.day() as i64, n),
            'E' | 'e' | 'c' => {
                let d = dt.weekday().num_days_from_monday() as usize;
                if c != 'E' && n <= 2 {
                    pad(d as i64 + 1, n)
                } else {
                    match n {
                        4 => DAYS[d].to_string(),
                        5 => DAYS[d][..1].to_string(),
                        _ => DAYS[d][..3].to_string(),
                    }
                }
            }
            'a' => {
                if dt.hour() < 12 {
                    "AM".to_string()
                } else {
                    "PM".to_string()
                }
            }
            'h' => pad(((dt.hour() + 11) % 12 + 1) as i64, n),
            'K' => pad((dt.hour() % 12) as i64, n),
            'k' => pad(if dt.hour() == 0 { 24 } else { dt.hour() as i64 }, n),
            'H' => pad(dt.hour() as i64, n),
            'm' => pad(dt.minute() as i64, n),
            's' => pad(dt.second() as i64, n),
            'S' => {
                let nanos = format!("{:09}", dt.nanosecond() % 1_000_000_000);
                if n <= 9 {
                    nanos[..n].to_string()
                } else {
                    format!("{nanos:0<n$}")
                }
            }
            'A' => pad(
                (dt.num_seconds_from_midnight() as i64) * 1000
                    + (dt.nanosecond() / 1_000_000) as i64,
                n,
            ),
            'n' => pad(dt.nanosecond() as i64, n),
            'N' => pad(
                (dt.num_seconds_from_midnight() as i64) * 1_000_000_000 + dt.nanosecond() as i64,
                n,
            ),
            'V' => zone.to_string(),
            'z' => {
                if n >= 4 {
                    zone.to_string()
                } else {
                    zone_abbrev.to_string()
                }
            }
            'O' => {
                if off == 0 {
                    "GMT".to_string()
                } else if n == 4 {
                    format!("GMT{}", offset(off, true, true, false))
                } else {
                    let a = off.abs();
                    let sign = if off < 0 { '-' } else { '+' };
                    let (h, m) = (a / 3600, (a / 60) % 60);
                    if m == 0 {
                        format!("GMT{sign}{h}")
                    } else {
                        format!("GMT{sign}{h}:{m:02}")
                    }
                }
            }
            'X' | 'x' => {
                if c == 'X' && off == 0 {
                    "Z".to_string()
                } else {
                    match n {
                        1 => offset(off, false, false, true),
                        2 => offset(off, false, false, false),
                        3 => offset(off, true, false, false),
                        4 => offset(off, false, true, false),
                        _ => offset(off, true, true, false),
                    }
                }
            }
            'Z' => match n {
                1..=3 => offset(off, false, false, false),
                4 => {
                    if off == 0 {
                        "GMT".to_string()
                    } else {
                        format!("GMT{}", offset(off, true, true, false))
                    }
                }
                _ => {
                    if off == 0 {
                        "Z".to_string()
                    } else {
                        offset(off, true, true, false)
                    }
                }
            },
            other => {
                return Err(format!(
                    "unknown pattern letter `{other}` in date pattern `{pattern}`"
                ));
            }
        };
        out.push_str(&s);
    }
    Ok(out)
}

/// A chrono `strftime` string that parses what `pattern` formats (for `existingFormat`).
pub(crate) fn to_strftime(pattern: &str) -> Result<String, String> {
    let mut out = String::new();
    for p in tokenize(pattern)? {
        match p {
            Piece::Lit(s) => out.push_str(&s.replace('%', "%%")),
            Piece::Letter(c, n) => out.push_str(match (c, n) {
                ('y' | 'u', 2) => "%y",
                ('y' | 'u', _) => "%Y",
                ('M', 1 | 2) => "%m",
                ('M', 3) => "%b",
                ('M', _) => "%B",
                ('d', _) => "%d",
                ('D', _) => "%j",
                ('H', _) => "%H",
                ('h', _) => "%I",
                ('m', _) => "%M",
                ('s', _) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('S', _) => "%f",
                ('a', _) => "%p",
                ('E', 4) => "%A",
                ('E', _) => "%a",
                ('X' | 'x', 3) | ('X' | 'x', 5) | ('Z', 5) => "%:z",
                ('X' | 'x' | 'Z', _) => "%z",
                (other, _) => {
                    return Err(format!(
                        "cannot parse dates with the pattern letter `{other}` (`{pattern}`)"
                    ));
                }
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn common_patterns() {
        let d = dt("2024-03-05T07:08:09.123456789+01:00");
        assert_eq!(
            format(&d, "+01:00", "+01:00", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap(),
            "2024-03-05T07:08:09.123+01:00"
        );
        assert_eq!(format(&d, "", "", "yyyy-MM-dd").unwrap(), "2024-03-05");
        assert_eq!(format(&d, "", "", "yy/M/d H:m:s").unwrap(), "24/3/5 7:8:9");
        assert_eq!(
            format(&d, "", "", "EEE, d MMM yyyy hh:mm a").unwrap(),
            "Tue, 5 Mar 2024 07:08 AM"
        );
        assert_eq!(format(&d, "", "", "EEEE MMMM").unwrap(), "Tuesday March");
        assert_eq!(format(&d, "", "", "Z").unwrap(), "+0100");
        assert_eq!(format(&d, "", "", "'it''s' D").unwrap(), "it's 65");
        assert_eq!(format(&d, "", "", "''").unwrap(), "'");
        let utc = dt("2024-03-05T17:08:09Z");
        assert_eq!(
            format(&utc, "UTC", "UTC", "XXX|xxx|X|h a|VV").unwrap(),
            "Z|+00:00|Z|5 PM|UTC"
        );
        assert_eq!(format(&utc, "UTC", "UTC", "SSSSSS").unwrap(), "000000");
    }

    #[test]
    fn bad_patterns() {
        assert!(format(&dt("2024-03-05T17:08:09Z"), "", "", "'open").is_err());
        assert!(format(&dt("2024-03-05T17:08:09Z"), "", "", "yyyy-bb").is_err());
    }

    #[test]
    fn strftime_for_parsing() {
        assert_eq!(
            to_strftime("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap(),
            "%Y-%m-%dT%H:%M:%S.%3f%:z"
        );
        assert_eq!(to_strftime("dd/MM/yyyy").unwrap(), "%d/%m/%Y");
    }
}
