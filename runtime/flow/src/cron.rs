//! Cron expressions of Schedule triggers: 5 fields (or 6 with seconds) and nicknames such as
//! `@daily`, parsed with the croner crate (which also computes the next occurrences, with time
//! zones).

/// Parses a cron expression.
pub fn parse(expr: &str) -> Result<croner::Cron, String> {
    croner::Cron::new(expr.trim())
        .with_seconds_optional()
        .parse()
        .map_err(|e| format!("invalid cron expression `{expr}`: {e}"))
}

/// Checks a cron expression.
pub fn check(expr: &str) -> Result<(), String> {
    parse(expr).map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_kestra_crons() {
        for ok in [
            "* * * * *",
            "0 */2 * * *",
            "*/5 * * * * *",
            "@daily",
            "@hourly",
            "0 0 1 1 MON",
        ] {
            assert!(super::check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "* * *", "61 * * * *", "every day"] {
            assert!(super::check(bad).is_err(), "{bad}");
        }
    }
}
