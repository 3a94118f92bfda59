//! The v1 server's clock (rules.md "Clocks"): from 2025-06-14 v1 writes `user.created_at`,
//! `prayer.created_at`, the `created_at` of marks made online and `answer_date` values with the
//! server's local wall clock; everything else, and everything before, is UTC. [`Clock`] turns
//! such a value into its UTC instant.
//!
//! A naive value (one that names no zone) of a local column, at or after the threshold, is read
//! in the server's zone. A value with `Z`, an offset or an epoch number fixed its own instant. A
//! mark made offline (whole milliseconds, the client's `toISOString()`, from 2025-10-12, and not
//! a whole minute, which is what v1's archive importer writes) is UTC already. A wall-clock time
//! that the zone skips (spring forward) or repeats (fall back) takes the earlier of its two
//! readings and is reported ([`Shift`]).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use thywill_v1::V1Value;

use crate::time::{self, ParsedTime};

/// When v1 started writing local times, unless the operator says otherwise (the release of
/// 2025-06-14 that switched them).
pub fn default_local_since() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 6, 14)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
}

/// The first day of v1's offline marks (client times, UTC, whole milliseconds).
fn offline_since() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 10, 12)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
}

/// The columns whose naive values v1 writes with its local clock, as the report names them.
pub const LOCAL_COLUMNS: [&str; 4] = [
    "user.created_at",
    "prayer.created_at",
    "prayermark.created_at (marks made online)",
    "prayer_attributes.answer_date",
];

/// Which clock a column's naive values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalColumn {
    /// Always the server's local clock from the threshold on (`user.created_at`,
    /// `prayer.created_at`, `answer_date`).
    Local,
    /// `prayermark.created_at`: local for marks made online, UTC for marks made offline.
    Mark,
}

/// A wall-clock time the zone does not map to exactly one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    /// The clocks sprang forward over it: it never existed.
    Gap,
    /// The clocks fell back over it: it existed twice.
    Fold,
}

impl Shift {
    /// Words for a finding.
    pub fn describe(self) -> &'static str {
        match self {
            Shift::Gap => "does not exist (the clocks sprang forward over it)",
            Shift::Fold => "existed twice (the clocks fell back over it)",
        }
    }
}

/// A value of a local column read through the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// The parsed value, its instant now UTC.
    pub parsed: ParsedTime,
    /// Set when the wall-clock time was skipped or repeated and the earlier reading was taken.
    pub shift: Option<Shift>,
}

/// The zone the v1 server ran in and when it started writing local times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    zone: Tz,
    local_since: NaiveDateTime,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::utc()
    }
}

impl Clock {
    /// A server on UTC: no value changes.
    pub fn utc() -> Self {
        Clock::new(Tz::UTC, default_local_since())
    }

    /// A server in `zone` that wrote local times from `local_since` (a wall-clock time).
    pub fn new(zone: Tz, local_since: NaiveDateTime) -> Self {
        Clock { zone, local_since }
    }

    /// Reads an IANA zone name (`America/Chicago`); the error says what is wrong.
    pub fn parse_zone(name: &str) -> Result<Tz, String> {
        name.parse::<Tz>().map_err(|_| {
            format!("`{name}` is not an IANA time zone name (for example UTC, America/Chicago)")
        })
    }

    /// The server's zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// When the server started writing local times.
    pub fn local_since(&self) -> NaiveDateTime {
        self.local_since
    }

    /// True when the zone never differs from UTC, so that no value is converted.
    pub fn is_utc(&self) -> bool {
        matches!(
            self.zone,
            Tz::UTC
                | Tz::Etc__UTC
                | Tz::Etc__UCT
                | Tz::UCT
                | Tz::Zulu
                | Tz::Etc__Zulu
                | Tz::Universal
                | Tz::Etc__Universal
        )
    }

    /// Parses a stored value of a local column and reads it through the clock.
    pub fn parse(&self, v: &V1Value, column: LocalColumn) -> Option<LocalTime> {
        time::parse_value(v).and_then(|p| self.read(p, column))
    }

    /// Parses a text value of a local column (an attribute's `answer_date`) likewise.
    pub fn parse_str(&self, s: &str, column: LocalColumn) -> Option<LocalTime> {
        time::parse_str(s).and_then(|p| self.read(p, column))
    }

    /// Reads an already parsed value of a local column through the clock. `None` when its UTC
    /// instant is past v2's last year (9999): such a value fits no timestamp v2 can hold.
    pub fn read(&self, p: ParsedTime, column: LocalColumn) -> Option<LocalTime> {
        if !self.applies(&p, column) {
            return Some(LocalTime {
                parsed: p,
                shift: None,
            });
        }
        let (at, shift) = self.to_utc(p.at);
        (at.year() <= 9999).then_some(LocalTime {
            parsed: ParsedTime { at, ..p },
            shift,
        })
    }

    /// True when the clock converts this value: a naive value at or after the threshold, not
    /// an offline mark.
    fn applies(&self, p: &ParsedTime, column: LocalColumn) -> bool {
        let offline = column == LocalColumn::Mark && is_offline_mark(p.at);
        !(self.is_utc() || p.zoned || p.at < self.local_since || offline)
    }

    /// The UTC instant of a wall-clock time in the zone: the earlier reading when the time was
    /// skipped or repeated.
    pub fn to_utc(&self, local: NaiveDateTime) -> (NaiveDateTime, Option<Shift>) {
        use chrono::LocalResult;
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => (t.naive_utc(), None),
            LocalResult::Ambiguous(a, b) => (a.naive_utc().min(b.naive_utc()), Some(Shift::Fold)),
            LocalResult::None => {
                // Read with the offsets in force a day before and a day after: the earlier.
                let offset_at = |t: NaiveDateTime| {
                    let secs = self
                        .zone
                        .offset_from_utc_datetime(&t)
                        .fix()
                        .local_minus_utc();
                    local - Duration::seconds(i64::from(secs))
                };
                let before = offset_at(local - Duration::days(1));
                let after = offset_at(local + Duration::days(1));
                (before.min(after), Some(Shift::Gap))
            }
        }
    }
}

/// What the data itself says about the zone: a member's first session or invitation claim (UTC,
/// written in the same request as the registration) is when their `created_at` (local) says
/// they joined. When,
/// read through `clock`, most of the members who have one are a whole number of hours (or half
/// hours) apart from it, the zone given is likely wrong. Returns a warning for the report, or
/// `None` when the evidence agrees or is too thin (fewer than three members).
pub fn zone_evidence(
    db: &thywill_v1::V1Database,
    clock: &Clock,
) -> Result<Option<String>, thywill_v1::V1Error> {
    use std::collections::HashMap;
    use thywill_v1::{SessionRow, UserRow};
    if !db.schema().has_table("session") {
        return Ok(None);
    }
    let by_id = db.schema().session_user == thywill_v1::UserRefKind::ById;
    let mut first_session: HashMap<String, NaiveDateTime> = HashMap::new();
    db.for_each_ref::<SessionRow, thywill_v1::V1Error, _>(|s| {
        if let (Some(user), Some(t)) = (s.user.key_text(), time::parse_value(&s.created_at)) {
            let e = first_session.entry(user).or_insert(t.at);
            *e = (*e).min(t.at);
        }
        Ok(())
    })?;
    first_claims(db, &mut first_session)?;
    // Offsets in half hours, session minus created_at, of members who joined in local time.
    let mut offsets: HashMap<i64, usize> = HashMap::new();
    let mut sample = 0usize;
    db.for_each_ref::<UserRow, thywill_v1::V1Error, _>(|u| {
        let key = if by_id { &u.id } else { &u.display_name };
        let (Some(key), Some(stored)) = (key.key_text(), time::parse_value(&u.created_at)) else {
            return Ok(());
        };
        let (Some(session), Some(local)) = (
            first_session.get(&key),
            clock.read(stored, LocalColumn::Local),
        ) else {
            return Ok(());
        };
        // Only values v1 wrote with its local clock say anything about the zone.
        let naive = !stored.zoned && stored.at >= clock.local_since;
        let apart = (*session - local.parsed.at).num_minutes();
        if naive && apart.abs() < 15 * 60 {
            sample += 1;
            *offsets
                .entry((apart as f64 / 30.0).round() as i64)
                .or_default() += 1;
        }
        Ok(())
    })?;
    let Some((&half_hours, &n)) = offsets.iter().max_by_key(|(h, n)| (**n, -h.abs())) else {
        return Ok(None);
    };
    if half_hours == 0 || n < 3 || n * 2 <= sample {
        return Ok(None);
    }
    Ok(Some(format!(
        "the v1 server's zone looks wrong: read in {}, {n} of {sample} members who joined after {} \
         had their first session or invitation claim {:+.1} hours after their created_at (a \
         registration, its session and its claim are one request); check --v1-timezone (a zone {:+.1} hours from the one given)",
        clock.zone.name(),
        clock.local_since.format("%Y-%m-%d"),
        half_hours as f64 / 2.0,
        -(half_hours as f64) / 2.0,
    )))
}

/// Adds to `first` each member's earliest invitation claim (`invite_token_usage.claimed_at`,
/// UTC, written in the registration's request like the first session), leaving out the rows
/// v1's migration 008 backfilled (dated the token's `expires_at`, not the claim).
fn first_claims(
    db: &thywill_v1::V1Database,
    first: &mut std::collections::HashMap<String, NaiveDateTime>,
) -> Result<(), thywill_v1::V1Error> {
    use thywill_v1::{InviteRow, InviteUsageRow};
    if !db.schema().has_table("invite_token_usage") {
        return Ok(());
    }
    let mut expires = std::collections::HashMap::new();
    db.for_each_ref::<InviteRow, thywill_v1::V1Error, _>(|t| {
        if let (Some(token), Some(at)) = (t.token.key_text(), time::parse_value(&t.expires_at)) {
            expires.insert(token, at.at);
        }
        Ok(())
    })?;
    db.for_each_ref::<InviteUsageRow, thywill_v1::V1Error, _>(|c| {
        let (Some(user), Some(at)) = (c.user.key_text(), time::parse_value(&c.claimed_at)) else {
            return Ok(());
        };
        let expiry = c.token.key_text().and_then(|t| expires.get(&t).copied());
        let backfilled = crate::rules::small::is_backfilled_claim(at.at, expiry);
        if !backfilled {
            let e = first.entry(user).or_insert(at.at);
            *e = (*e).min(at.at);
        }
        Ok(())
    })?;
    Ok(())
}

/// A mark value v1's offline queue wrote: the client's `toISOString()` (whole milliseconds, not
/// a whole minute), from 2025-10-12 on.
pub fn is_offline_mark(at: NaiveDateTime) -> bool {
    let micros = at.nanosecond() / 1_000;
    at >= offline_since() && micros.is_multiple_of(1_000) && !(at.second() == 0 && micros == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chicago() -> Clock {
        Clock::new(chrono_tz::America::Chicago, default_local_since())
    }

    fn read(c: &Clock, s: &str, col: LocalColumn) -> (String, Option<Shift>) {
        let t = c.parse(&V1Value::text(s), col).unwrap();
        (time::canonical(t.parsed.at), t.shift)
    }

    #[test]
    fn a_local_value_becomes_its_utc_instant() {
        let c = chicago();
        assert_eq!(
            read(&c, "2026-07-04 03:59:13.417123", LocalColumn::Local),
            ("2026-07-04 08:59:13.417123".into(), None)
        );
        assert_eq!(
            read(&c, "2026-01-04 03:59:13.417123", LocalColumn::Local).0,
            "2026-01-04 09:59:13.417123"
        );
    }

    #[test]
    fn values_before_the_switch_zoned_values_and_offline_marks_stay() {
        let c = chicago();
        for (s, col) in [
            ("2025-06-13 23:59:59.000001", LocalColumn::Local),
            ("2026-07-04T03:59:13Z", LocalColumn::Local),
            ("2026-07-04T03:59:13+02:00", LocalColumn::Local),
            ("1780000000", LocalColumn::Local),
            ("2025-11-20 14:03:27.123000", LocalColumn::Mark),
        ] {
            let t = c.parse(&V1Value::text(s), col).unwrap();
            assert_eq!(t.parsed.at, time::parse_str(s).unwrap().at, "{s}");
            assert_eq!(t.shift, None, "{s}");
        }
        // The same value in a column that is always local, and a whole-minute mark (v1's
        // importer), are converted.
        assert_eq!(
            read(&c, "2025-11-20 14:03:27.123000", LocalColumn::Local).0,
            "2025-11-20 20:03:27.123000"
        );
        assert_eq!(
            read(&c, "2025-11-20 14:03:00.000000", LocalColumn::Mark).0,
            "2025-11-20 20:03:00.000000"
        );
    }

    #[test]
    fn skipped_and_repeated_times_take_the_earlier_instant() {
        let c = chicago();
        // 2026-03-08 02:30 never happened in Chicago: CST would give 08:30 UTC, CDT 07:30.
        assert_eq!(
            read(&c, "2026-03-08 02:30:00", LocalColumn::Local),
            ("2026-03-08 07:30:00.000000".into(), Some(Shift::Gap))
        );
        // 2025-11-02 01:30 happened twice: CDT 06:30 UTC, then CST 07:30 UTC.
        assert_eq!(
            read(&c, "2025-11-02 01:30:00.250000", LocalColumn::Local),
            ("2025-11-02 06:30:00.250000".into(), Some(Shift::Fold))
        );
    }

    #[test]
    fn utc_changes_nothing_and_zone_names_are_checked() {
        let c = Clock::utc();
        assert!(c.is_utc());
        assert_eq!(
            read(&c, "2026-03-08 02:30:00", LocalColumn::Local),
            ("2026-03-08 02:30:00.000000".into(), None)
        );
        assert!(Clock::parse_zone("America/Chicago").is_ok());
        assert!(Clock::parse_zone("Mars/Olympus")
            .unwrap_err()
            .contains("Mars/Olympus"));
    }
}
