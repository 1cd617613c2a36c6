//! Timestamps and dates as stored: UTC instants in RFC 3339, calendar dates as `YYYY-MM-DD`,
//! capture times as local wall-clock time with the offset when known.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, SecondsFormat, Timelike, Utc};

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

/// Parse `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// Format a date as `YYYY-MM-DD`.
pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A local capture time, formatted `YYYY-MM-DDTHH:MM:SS` plus `±HH:MM` when the offset is known.
pub fn fmt_local(dt: DateTime<Local>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Parse a capture time as stored (with or without offset).
pub fn parse_capture_time(s: &str) -> Option<NaiveDateTime> {
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
    fn gap_wraps_midnight() {
        let g = time_of_day_gap_hours("2026-01-01T23:00:00", "2026-02-01T01:00:00").unwrap();
        assert!((g - 2.0).abs() < 1e-9);
    }
}
