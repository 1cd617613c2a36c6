//! Timestamps and dates as stored: UTC instants in RFC 3339, calendar dates as `YYYY-MM-DD`,
//! capture times as local wall-clock time with the offset when known.

use chrono::{DateTime, Datelike, Local, NaiveDate, NaiveDateTime, SecondsFormat, Timelike, Utc};

/// Now, as stored in rows and audit entries (UTC, milliseconds).
pub fn now_utc() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Today's date in the local time zone.
///
/// Debug builds (the ones tests run) honour `SAMEFRAME_TODAY=YYYY-MM-DD`, so tests can move
/// the calendar on past a consent's last day; release builds never read it.
pub fn today() -> NaiveDate {
    #[cfg(debug_assertions)]
    if let Some(d) = std::env::var("SAMEFRAME_TODAY")
        .ok()
        .and_then(|v| parse_date(&v))
    {
        return d;
    }
    Local::now().date_naive()
}

/// Parse `YYYY-MM-DD`: a four-digit year from 1900 on, a real calendar date (`26-3-1` or
/// `2026-02-30` are not dates).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| (1900..=2999).contains(&d.year()))
}

/// A date that must not be in the future (a signature, a capture, a visit): from 1900 on and
/// at most one day after today (time zones). Says what is wrong.
pub fn check_not_future(d: NaiveDate) -> Result<(), String> {
    if d.year() < 1900 {
        return Err(format!("{} is before 1900", fmt_date(d)));
    }
    let latest = today() + chrono::Days::new(1);
    if d > latest {
        return Err(format!("{} is in the future", fmt_date(d)));
    }
    Ok(())
}

/// Format a date as `YYYY-MM-DD`.
pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A local capture time, formatted `YYYY-MM-DDTHH:MM:SS` plus `±HH:MM` when the offset is known.
pub fn fmt_local(dt: DateTime<Local>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Parse a capture time as stored (with or without offset); its date as [`parse_date`] reads
/// dates.
pub fn parse_capture_time(s: &str) -> Option<NaiveDateTime> {
    parse_date(s.get(..10)?)?;
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.naive_local());
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()
}

/// Part of the day of a local capture time: the confounder that is derived, not ticked.
pub fn time_of_day(s: &str) -> Option<&'static str> {
    let h = parse_capture_time(s)?.hour();
    Some(match h {
        5..=11 => "morning",
        12..=16 => "afternoon",
        17..=21 => "evening",
        _ => "night",
    })
}

/// Hours between two capture times' wall-clock times of day (0–12), ignoring the date.
pub fn time_of_day_gap_hours(a: &str, b: &str) -> Option<f64> {
    let ta = parse_capture_time(a)?;
    let tb = parse_capture_time(b)?;
    let secs = |t: NaiveDateTime| f64::from(t.num_seconds_from_midnight());
    let d = (secs(ta) - secs(tb)).abs() / 3600.0;
    Some(if d > 12.0 { 24.0 - d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_buckets() {
        assert_eq!(time_of_day("2026-03-01T09:15:00"), Some("morning"));
        assert_eq!(time_of_day("2026-03-01T14:00:00+01:00"), Some("afternoon"));
        assert_eq!(time_of_day("2026-03-01T19:00:00"), Some("evening"));
        assert_eq!(time_of_day("2026-03-01T02:00:00"), Some("night"));
        assert_eq!(time_of_day("garbage"), None);
    }

    #[test]
    fn only_real_dates_with_four_digit_years_are_dates() {
        assert!(parse_date("2026-03-01").is_some());
        assert!(parse_date(" 2026-03-01 ").is_some());
        for bad in [
            "26-3-1",
            "2026-3-1",
            "0000-01-01",
            "0026-03-01",
            "1899-12-31",
            "9999-01-01",
            "2026-02-30",
            "2026-13-01",
            "2026-03-01x",
            "+2026-03-01",
            "２０２６-03-01",
        ] {
            assert!(parse_date(bad).is_none(), "{bad} was taken for a date");
        }
        assert!(parse_capture_time("2026-03-01T10:00:00").is_some());
        assert!(parse_capture_time("9999-03-01T10:00:00").is_none());
        assert!(parse_capture_time("0001-03-01T10:00:00").is_none());
        assert!(check_not_future(today()).is_ok());
        assert!(check_not_future(today() + chrono::Days::new(3)).is_err());
        assert!(check_not_future(NaiveDate::from_ymd_opt(1850, 1, 1).unwrap()).is_err());
    }

    #[test]
    fn gap_wraps_midnight() {
        let g = time_of_day_gap_hours("2026-01-01T23:00:00", "2026-02-01T01:00:00").unwrap();
        assert!((g - 2.0).abs() < 1e-9);
    }
}
