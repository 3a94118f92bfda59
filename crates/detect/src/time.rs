//! Timestamp parsing for `R-TIME`: every shape v1 rows were seen with, to UTC.
//!
//! Canonical v1 timestamps are TEXT `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD HH:MM:SS.ffffff` (naive
//! UTC, as SQLAlchemy writes them). Other shapes parse too, but are not canonical: ISO 8601 with
//! `T`, with `Z` or an offset (converted to UTC), minute precision, date only (midnight), epoch
//! seconds or milliseconds (as TEXT, INTEGER or REAL storage), and surrounding whitespace.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use thywill_v1::V1Value;

/// A parsed timestamp: the instant (microsecond precision), whether the stored value was already
/// canonical, and whether it named its own zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedTime {
    /// The instant, naive: UTC, or the v1 server's wall clock for a naive value of a column v1
    /// writes with its local clock (see [`crate::clock::Clock`]).
    pub at: NaiveDateTime,
    /// True when the stored value was canonical TEXT (no `R-TIME` finding).
    pub canonical: bool,
    /// True when the value fixed its own instant (a `Z` or an offset, or epoch seconds or
    /// milliseconds): no server clock applies to it.
    pub zoned: bool,
}

/// An optional instant in 8 bytes (microseconds since the epoch, `i64::MIN` for none), for the
/// per-row state the detector keeps in memory (an `Option<NaiveDateTime>` takes 16). Every
/// instant the parser makes has microsecond precision and fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedTime(i64);

impl PackedTime {
    /// No instant.
    pub(crate) const NONE: PackedTime = PackedTime(i64::MIN);

    /// Packs an instant (sub-microsecond digits, which the parser never makes, are dropped).
    pub(crate) fn new(at: Option<NaiveDateTime>) -> Self {
        at.map_or(Self::NONE, |t| PackedTime(t.and_utc().timestamp_micros()))
    }

    /// The packed form (for fixed-size records on disk).
    pub(crate) fn raw(self) -> i64 {
        self.0
    }

    /// The instant of a packed form made by [`PackedTime::raw`].
    pub(crate) fn from_raw(raw: i64) -> Self {
        PackedTime(raw)
    }

    /// The instant.
    pub(crate) fn get(self) -> Option<NaiveDateTime> {
        (self != Self::NONE)
            .then(|| chrono::DateTime::from_timestamp_micros(self.0).map(|d| d.naive_utc()))
            .flatten()
    }
}

/// Epoch values at or above this magnitude are milliseconds, below it seconds (1e11 seconds is
/// the year 5138; 1e11 milliseconds is 1973).
const MILLIS_THRESHOLD: f64 = 1e11;

/// Parses a stored value of any storage class. `None` when no shape fits (NULL included).
pub fn parse_value(v: &V1Value) -> Option<ParsedTime> {
    match v {
        V1Value::Null => None,
        V1Value::Integer(i) => epoch(*i as f64).map(zoned),
        V1Value::Real(r) => epoch(*r).map(zoned),
        V1Value::Text(b) => {
            let s = std::str::from_utf8(b).ok()?;
            parse_str(s)
        }
        V1Value::Blob(b) => {
            let s = std::str::from_utf8(b).ok()?;
            parse_str(s).map(|p| ParsedTime {
                canonical: false,
                ..p
            })
        }
    }
}

/// A value in a shape that fixes its instant (epoch, `Z`, offset).
fn zoned(at: NaiveDateTime) -> ParsedTime {
    ParsedTime {
        at,
        canonical: false,
        zoned: true,
    }
}

/// Parses a text timestamp. `None` when no shape fits.
pub fn parse_str(s: &str) -> Option<ParsedTime> {
    if let Some(at) = parse_canonical(s.as_bytes()) {
        return Some(ParsedTime {
            at,
            canonical: true,
            zoned: false,
        });
    }
    let t = s.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    if let Some((at, has_zone)) = parse_iso(t) {
        return Some(ParsedTime {
            at,
            canonical: false,
            zoned: has_zone,
        });
    }
    if t.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
        && t.bytes().any(|b| b.is_ascii_digit())
        && !t[1..].contains(['-', '+'])
    {
        let x: f64 = t.parse().ok()?;
        return epoch(x).map(zoned);
    }
    None
}

/// The canonical shape only: exactly `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn parse_canonical(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() != 19 && b.len() != 26 {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let micros = if b.len() == 26 {
        if b[19] != b'.' {
            return None;
        }
        digits(&b[20..26])?
    } else {
        0
    };
    let date = NaiveDate::from_ymd_opt(
        digits(&b[0..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )?;
    let time = NaiveTime::from_hms_micro_opt(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
        micros,
    )?;
    Some(NaiveDateTime::new(date, time))
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as u32)?;
    }
    Some(n)
}

/// ISO-like shapes: `YYYY-MM-DD`, then optionally `T` or a space, `HH:MM[:SS[.f…]]`, then
/// optionally `Z`/`z` or an offset `±HH[:MM]`/`±HHMM` (the result is converted to UTC). The flag
/// says whether a zone designator was there.
fn parse_iso(t: &str) -> Option<(NaiveDateTime, bool)> {
    let b = t.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        digits(&b[0..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )?;
    if b.len() == 10 {
        return Some((date.and_time(NaiveTime::MIN), false));
    }
    if b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return None;
    }
    let rest = &b[11..];
    // Split the time from the zone designator.
    let zone_at = rest
        .iter()
        .position(|&c| c == b'Z' || c == b'z' || c == b'+' || c == b'-')
        .unwrap_or(rest.len());
    let (time_part, zone) = rest.split_at(zone_at);
    let time_part = trim_ascii(time_part);
    let time = parse_time(time_part)?;
    let offset_secs = parse_zone(zone)?;
    let local = date.and_time(time);
    let at = local.checked_sub_signed(Duration::seconds(offset_secs))?;
    Some((at, !trim_ascii(zone).is_empty()))
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn parse_time(b: &[u8]) -> Option<NaiveTime> {
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let h = digits(&b[0..2])?;
    let m = digits(&b[3..5])?;
    let (s, micros) = if b.len() == 5 {
        (0, 0)
    } else {
        if b[5] != b':' || b.len() < 8 {
            return None;
        }
        let s = digits(&b[6..8])?;
        let micros = if b.len() == 8 {
            0
        } else {
            if b[8] != b'.' && b[8] != b',' {
                return None;
            }
            let frac = &b[9..];
            if frac.is_empty() || frac.len() > 9 {
                return None;
            }
            let mut micros = digits(&frac[..frac.len().min(6)])?;
            digits(frac)?;
            for _ in frac.len()..6 {
                micros *= 10;
            }
            micros
        };
        (s, micros)
    };
    NaiveTime::from_hms_micro_opt(h, m, s, micros)
}

/// Seconds east of UTC for `""`, `Z`, `+HH`, `+HH:MM`, `+HHMM` (and `-`).
fn parse_zone(z: &[u8]) -> Option<i64> {
    let z = trim_ascii(z);
    match z {
        [] => Some(0),
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [a, b] => (digits(&[*a, *b])?, 0),
                [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i64;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// Epoch seconds (or milliseconds, from [`MILLIS_THRESHOLD`] up) to a UTC instant. A negative
/// epoch (before 1970) is no shape v1 wrote. A whole number is converted exactly (a 14-digit
/// millisecond value times 1,000 is beyond f64's exact integers).
fn epoch(x: f64) -> Option<NaiveDateTime> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let millis = x >= MILLIS_THRESHOLD;
    let micros = if x.fract() == 0.0 && x < 9.0e15 {
        (x as i64).checked_mul(if millis { 1_000 } else { 1_000_000 })?
    } else {
        let micros = x * if millis { 1_000.0 } else { 1_000_000.0 };
        if micros >= 9.0e18 {
            return None;
        }
        micros.round() as i64
    };
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// Formats an instant in the canonical v1 shape with microseconds (`2025-06-29 19:33:00.000000`).
pub fn canonical(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// The date (and time, when present) in an archive path's file name: `…/2025_06_29_prayer_at_1933.txt`
/// gives 2025-06-29 19:33, `…/2025_06_29_<anything>.txt` gives midnight of that day. Month-only
/// names (`2025_06_marks.txt`) are not evidence of a day. Archive times are taken as UTC.
pub fn date_in_archive_path(path: &str) -> Option<NaiveDateTime> {
    let name = path.rsplit(['/', '\\']).next()?;
    let b = name.as_bytes();
    (0..b.len().saturating_sub(9)).find_map(|i| {
        let w = &b[i..i + 10];
        if i > 0 && b[i - 1].is_ascii_digit() {
            return None;
        }
        if w[4] != b'_' || w[7] != b'_' {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(
            digits(&w[0..4])? as i32,
            digits(&w[5..7])?,
            digits(&w[8..10])?,
        )?;
        let after = &name[i + 10..];
        let time = after
            .find("_at_")
            .and_then(|p| after.get(p + 4..p + 8))
            .and_then(|hm| {
                let hb = hm.as_bytes();
                NaiveTime::from_hms_opt(digits(&hb[0..2])?, digits(&hb[2..4])?, 0)
            })
            .unwrap_or(NaiveTime::MIN);
        Some(date.and_time(time))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn canonical_shapes_are_canonical() {
        let p = parse_str("2025-06-29 19:33:00.000000").unwrap();
        assert!(p.canonical);
        assert_eq!(p.at, dt("2025-06-29 19:33:00"));
        assert!(parse_str("2025-06-29 19:33:00").unwrap().canonical);
        assert!(!parse_str(" 2025-06-29 19:33:00").unwrap().canonical);
        assert!(!parse_str("2025-06-29 19:33:00.123").unwrap().canonical);
    }

    #[test]
    fn every_other_shape_parses_to_utc() {
        let at = dt("2025-06-29 19:33:00");
        for s in [
            "2025-06-29T19:33:00",
            "2025-06-29T19:33:00Z",
            "2025-06-29T21:33:00+02:00",
            "2025-06-29T21:33:00+0200",
            "2025-06-29T14:33:00-05",
            "2025-06-29 19:33",
            "2025-06-29T19:33:00.000Z",
            "1751225580",
            "1751225580000",
            "1751225580.0",
        ] {
            let p = parse_str(s).unwrap_or_else(|| panic!("{s} did not parse"));
            assert_eq!(p.at, at, "{s}");
            assert!(!p.canonical, "{s}");
        }
        assert_eq!(
            parse_str("2025-06-29").unwrap().at,
            dt("2025-06-29 00:00:00")
        );
        assert_eq!(parse_value(&V1Value::Integer(1751225580)).unwrap().at, at);
        assert_eq!(
            parse_value(&V1Value::Integer(1751225580000)).unwrap().at,
            at
        );
        assert_eq!(
            parse_value(&V1Value::Real(1751225580.5)).unwrap().at,
            dt("2025-06-29 19:33:00.5")
        );
    }

    #[test]
    fn garbage_does_not_parse() {
        for s in [
            "",
            "yesterday",
            "2025-13-01 00:00:00",
            "2025-02-30",
            "29/06/2025",
            "NaN",
            "inf",
            "--5",
            "2025-06-29T25:00",
        ] {
            assert!(parse_str(s).is_none(), "{s}");
        }
        assert!(parse_value(&V1Value::Null).is_none());
        assert!(parse_value(&V1Value::Real(f64::NAN)).is_none());
        assert!(parse_value(&V1Value::Text(vec![0xff, 0xfe])).is_none());
    }

    #[test]
    fn archive_paths_give_evidence() {
        assert_eq!(
            date_in_archive_path("text_archives/prayers/2025/06/2025_06_29_prayer_at_1933.txt"),
            Some(dt("2025-06-29 19:33:00"))
        );
        assert_eq!(
            date_in_archive_path("/tmp/tmpab12/complete_site_archive/prayers/2025/06/2025_06_29_prayer_at_1933_2.txt"),
            Some(dt("2025-06-29 19:33:00"))
        );
        assert_eq!(
            date_in_archive_path("text_archives/prayers/marks/2025_06_marks.txt"),
            None
        );
        assert_eq!(date_in_archive_path(""), None);
    }

    proptest! {
        #[test]
        fn packed_times_round_trip(secs in -8_000_000_000_000i64..8_000_000_000_000, micros in 0u32..1_000_000) {
            let at = chrono::DateTime::from_timestamp(secs, micros * 1000).unwrap().naive_utc();
            prop_assert_eq!(PackedTime::new(Some(at)).get(), Some(at));
        }

        #[test]
        fn canonical_values_round_trip(secs in 0i64..253_402_300_799, micros in 0u32..1_000_000) {
            let at = chrono::DateTime::from_timestamp(secs, micros * 1000).unwrap().naive_utc();
            let s = canonical(at);
            let p = parse_str(&s).unwrap();
            prop_assert!(p.canonical);
            prop_assert_eq!(p.at, at);
        }

        #[test]
        fn no_string_panics(s in "\\PC{0,40}") {
            let _ = parse_str(&s);
            let _ = date_in_archive_path(&s);
        }

        #[test]
        fn no_timestamp_like_string_panics(s in "[0-9T:Z+. -]{0,32}") {
            let _ = parse_str(&s);
        }

        #[test]
        fn no_number_panics(i in any::<i64>(), r in any::<f64>()) {
            let _ = parse_value(&V1Value::Integer(i));
            let _ = parse_value(&V1Value::Real(r));
        }
    }
}
