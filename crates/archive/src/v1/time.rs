//! v1 times: `%B %d %Y at %H:%M` (e.g. `June 29 2025 at 19:33`), local v1 server time.

use chrono::{NaiveDate, NaiveDateTime};

/// The v1 time format.
pub const V1_TIME_FORMAT: &str = "%B %d %Y at %H:%M";

/// A v1 time as written (kept for byte-exact re-rendering) and as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Time {
    /// The text as it appears in the file.
    pub raw: String,
    /// The parsed value (naive: v1 server time).
    pub at: NaiveDateTime,
}

impl V1Time {
    /// Parses `June 29 2025 at 19:33` (also tolerates an unpadded day).
    pub fn parse(raw: &str) -> Option<Self> {
        let at = NaiveDateTime::parse_from_str(raw, V1_TIME_FORMAT).ok()?;
        Some(V1Time {
            raw: raw.to_string(),
            at,
        })
    }

    /// A time rendered in the v1 format.
    pub fn from_datetime(at: NaiveDateTime) -> Self {
        V1Time {
            raw: at.format(V1_TIME_FORMAT).to_string(),
            at,
        }
    }
}

/// Parses a v1 `<Month YYYY>` (as in a monthly file's header), returning (year, month).
pub fn parse_month_year(s: &str) -> Option<(i32, u32)> {
    let date = NaiveDate::parse_from_str(&format!("1 {s}"), "%d %B %Y").ok()?;
    use chrono::Datelike;
    Some((date.year(), date.month()))
}

/// Parses a v1 day header `<Month DD YYYY>`.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%B %d %Y").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_times() {
        let t = V1Time::parse("June 29 2025 at 19:33").unwrap();
        assert_eq!(t.at.to_string(), "2025-06-29 19:33:00");
        assert_eq!(V1Time::from_datetime(t.at).raw, "June 29 2025 at 19:33");
        assert_eq!(
            V1Time::from_datetime(
                NaiveDate::from_ymd_opt(2025, 6, 5)
                    .unwrap()
                    .and_hms_opt(7, 3, 0)
                    .unwrap()
            )
            .raw,
            "June 05 2025 at 07:03"
        );
        assert!(V1Time::parse("2025-06-29 19:33").is_none());
        assert_eq!(parse_month_year("June 2025"), Some((2025, 6)));
        assert_eq!(parse_day("June 29 2025").unwrap().to_string(), "2025-06-29");
    }
}
