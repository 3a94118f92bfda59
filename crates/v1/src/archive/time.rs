//! v1 archive times: `%B %d %Y at %H:%M` (e.g. `June 29 2025 at 19:33`), local v1 server time.
//!
//! A parser of its own, not the detector's (`thywill_detect::time`): this is a different textual
//! format (month names, `at`, minute precision, no zone: what v1 wrote into its text files), not
//! a shape of a database timestamp. Database values are read by the detector's parser only.

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
        let at = parse_written(raw)
            .or_else(|| NaiveDateTime::parse_from_str(raw, V1_TIME_FORMAT).ok())?;
        Some(V1Time {
            raw: raw.to_string(),
            at,
        })
    }

    /// Parses the v1 format or an ISO time as v1's `|`-separated logs write them
    /// (`2025-07-01T10:00:00.123456`, `T` or a space, with or without fractions, `Z` or
    /// `+00:00`): the value is kept naive, as written.
    pub fn parse_any(raw: &str) -> Option<Self> {
        if let Some(t) = Self::parse(raw) {
            return Some(t);
        }
        let body = raw
            .strip_suffix("+00:00")
            .or_else(|| raw.strip_suffix('Z'))
            .unwrap_or(raw);
        let at = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(body, f).ok())?;
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

/// The form v1 wrote, `<Month> DD YYYY at HH:MM` exactly, read without chrono's format
/// interpreter (a log holds one per line); `None` for anything else, which
/// [`V1_TIME_FORMAT`] then reads as before (the same value where both accept a text).
fn parse_written(raw: &str) -> Option<NaiveDateTime> {
    let (month, rest) = raw.split_once(' ')?;
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let b = rest.as_bytes();
    if b.len() != 16 || b[2] != b' ' || &b[7..11] != b" at " || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| rest[r].parse().ok())?
    };
    NaiveDate::from_ymd_opt(num(3..7)? as i32, month, num(0..2)?)?.and_hms_opt(
        num(11..13)?,
        num(14..16)?,
        0,
    )
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
        for iso in [
            "2025-07-01T10:00:00.123456",
            "2025-07-01T10:00:00.123456+00:00",
            "2025-07-01 10:00:00",
            "2025-07-01T10:00:00Z",
        ] {
            let t = V1Time::parse_any(iso).unwrap();
            assert_eq!(t.at.format("%H:%M").to_string(), "10:00", "{iso}");
            assert_eq!(t.raw, iso);
        }
        assert!(V1Time::parse_any("timestamp").is_none());
        // the written form and chrono's reading agree, also on what they refuse
        for raw in [
            "June 29 2025 at 19:33",
            "June 31 2025 at 19:33",
            "February 29 2024 at 00:00",
            "February 29 2025 at 00:00",
            "December 01 2025 at 23:59",
            "December 01 2025 at 24:00",
            "june 29 2025 at 19:33",
            "June 9 2025 at 19:33",
            "June 29 2025 at 7:33",
            "June +9 2025 at 19:33",
        ] {
            assert_eq!(
                V1Time::parse(raw).map(|t| t.at),
                NaiveDateTime::parse_from_str(raw, V1_TIME_FORMAT).ok(),
                "{raw}"
            );
        }
        assert_eq!(parse_month_year("June 2025"), Some((2025, 6)));
        assert_eq!(parse_day("June 29 2025").unwrap().to_string(), "2025-06-29");
    }
}
