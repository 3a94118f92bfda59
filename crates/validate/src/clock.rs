//! The v1 server's clock as the validator reads it (rules.md "Clocks"), written apart from the
//! detector's: a naive value of a column v1 writes with its local clock, at or after the switch,
//! is a wall-clock time of the server's zone; every other value is UTC.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use thywill_v1::V1Value;

use crate::rules::{self, text};

/// The server's zone and the wall-clock time from which it wrote local times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V1Clock {
    /// The IANA zone.
    pub zone: Tz,
    /// The switch to local times (a wall-clock time of the zone).
    pub local_since: NaiveDateTime,
}

impl Default for V1Clock {
    fn default() -> Self {
        V1Clock {
            zone: Tz::UTC,
            local_since: NaiveDate::from_ymd_opt(2025, 6, 14)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap_or_default(),
        }
    }
}

/// A stored local value as UTC, and whether the zone skipped or repeated its wall-clock time
/// (then the earlier reading is taken, and the migration owes the row an `R-TIME` finding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// The instant.
    pub at: NaiveDateTime,
    /// The wall-clock time was skipped or repeated.
    pub shifted: bool,
}

impl V1Clock {
    /// A value of `user.created_at`, `prayer.created_at` or an `answer_date`.
    pub fn local(&self, v: &V1Value) -> Option<Utc> {
        self.read(v, false)
    }

    /// A value of `prayermark.created_at` (offline marks are UTC already).
    pub fn mark(&self, v: &V1Value) -> Option<Utc> {
        self.read(v, true)
    }

    fn read(&self, v: &V1Value, mark: bool) -> Option<Utc> {
        let at = rules::parse_time(v)?;
        let utc = Utc { at, shifted: false };
        let offline = mark && made_offline(at);
        if self.zone == Tz::UTC || names_its_instant(v) || at < self.local_since || offline {
            return Some(utc);
        }
        // Past v2's last year once in UTC: no timestamp v2 can hold.
        Some(self.wall_clock_to_utc(at)).filter(|u| u.at.year() <= 9999)
    }

    /// The instant the zone's clocks showed `wall`; of two readings, the earlier.
    fn wall_clock_to_utc(&self, wall: NaiveDateTime) -> Utc {
        let readings: Vec<NaiveDateTime> = match self.zone.from_local_datetime(&wall) {
            chrono::LocalResult::Single(t) => vec![t.naive_utc()],
            chrono::LocalResult::Ambiguous(a, b) => vec![a.naive_utc(), b.naive_utc()],
            // Skipped: read it with the offset of twelve hours before and of twelve after.
            chrono::LocalResult::None => [-12, 12]
                .iter()
                .map(|h| {
                    let probe = wall + Duration::hours(*h);
                    let offset = self.zone.offset_from_utc_datetime(&probe).fix();
                    wall - Duration::seconds(i64::from(offset.local_minus_utc()))
                })
                .collect(),
        };
        Utc {
            at: readings.iter().copied().min().unwrap_or(wall),
            shifted: readings.len() > 1,
        }
    }
}

/// A value that fixes its own instant: an epoch number, or text ending in `Z` or an offset.
fn names_its_instant(v: &V1Value) -> bool {
    let Some(s) = (match v {
        V1Value::Integer(_) | V1Value::Real(_) => return true,
        V1Value::Null => return false,
        _ => text(v),
    }) else {
        return false;
    };
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return true;
    }
    let after_date = s.get(10..).unwrap_or("");
    after_date.ends_with(['Z', 'z']) || after_date.contains(['+', '-'])
}

/// v1's offline queue: the client's `toISOString()` (whole milliseconds), from 2025-10-12, never a
/// whole minute (that is v1's importer, writing the archive's local minute).
fn made_offline(at: NaiveDateTime) -> bool {
    let first = NaiveDate::from_ymd_opt(2025, 10, 12).and_then(|d| d.and_hms_opt(0, 0, 0));
    let whole_ms = at.nanosecond().is_multiple_of(1_000_000);
    let whole_minute = at.second() == 0 && at.nanosecond() == 0;
    first.is_some_and(|f| at >= f) && whole_ms && !whole_minute
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chicago() -> V1Clock {
        V1Clock {
            zone: chrono_tz::America::Chicago,
            ..V1Clock::default()
        }
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn local_values_offline_marks_and_zoned_values() {
        let c = chicago();
        let t = |s: &str| V1Value::text(s);
        assert_eq!(
            c.local(&t("2026-07-04 03:59:13.417")).unwrap().at,
            at("2026-07-04 08:59:13.417")
        );
        assert_eq!(
            c.mark(&t("2025-11-20 14:03:27.123000")).unwrap().at,
            at("2025-11-20 14:03:27.123")
        );
        assert_eq!(
            c.mark(&t("2025-11-20 14:03:00")).unwrap().at,
            at("2025-11-20 20:03:00")
        );
        assert_eq!(
            c.local(&t("2026-07-04T03:59:13-05:00")).unwrap().at,
            at("2026-07-04 08:59:13")
        );
        assert_eq!(
            c.local(&t("2025-06-01 10:00:00")).unwrap().at,
            at("2025-06-01 10:00:00")
        );
    }

    #[test]
    fn the_earlier_reading_of_a_skipped_or_repeated_time() {
        let c = chicago();
        let fold = c.local(&V1Value::text("2025-11-02 01:30:00")).unwrap();
        assert_eq!((fold.at, fold.shifted), (at("2025-11-02 06:30:00"), true));
        let gap = c.local(&V1Value::text("2026-03-08 02:30:00")).unwrap();
        assert_eq!((gap.at, gap.shifted), (at("2026-03-08 07:30:00"), true));
    }
}
