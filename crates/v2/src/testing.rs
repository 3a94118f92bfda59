//! Test helpers shared with other crates' tests (hidden from the documentation): a throw-away
//! PostgreSQL database per test, and deterministic synthetic v2 rows.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use crate::rows::*;

/// The environment variable naming the PostgreSQL server for tests.
pub const PG_ENV: &str = "THYWILL_TEST_PG_URL";

/// The PostgreSQL server for tests: the value of [`PG_ENV`]. Without it a test skips (this
/// prints `skipped: THYWILL_TEST_PG_URL not set` and gives `None`), except in CI (`CI` set),
/// where it fails: a CI run that silently skipped every PostgreSQL test would pass untested.
/// Every test that needs PostgreSQL asks here, so they all behave alike.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{PG_ENV} is not set in CI (CI is set): the PostgreSQL tests must run there; \
                 .ci/run sets it"
            );
            println!("skipped: {PG_ENV} not set");
            None
        }
    }
}

/// A PostgreSQL database created for one test and dropped (forcibly) when this value drops.
pub struct TempPgDb {
    admin_url: String,
    /// The database's name.
    pub name: String,
    /// A URL reaching it.
    pub url: String,
}

impl TempPgDb {
    /// Creates a database with a random name on the server of `THYWILL_TEST_PG_URL`; `None` when
    /// the variable is not set (a failure in CI: see [`pg_admin_url`]).
    pub fn create() -> Option<TempPgDb> {
        let admin_url = pg_admin_url()?;
        let name = format!("thywill_test_{}", uuid::Uuid::new_v4().simple());
        let mut c = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("{PG_ENV}: cannot connect: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let url = with_database(&admin_url, &name);
        Some(TempPgDb {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for TempPgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = PgConnection::establish(&self.admin_url) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let scheme_end = main.find("://").map_or(0, |i| i + 3);
    let base = match main[scheme_end..].find('/') {
        Some(i) => &main[..scheme_end + i],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A deterministic 32-hex id for entity `kind` number `i`.
pub fn hex_id(kind: u8, i: u64) -> String {
    // Multiplying by an odd constant is a bijection modulo 2^120: unique ids whose every digit
    // varies, like real uuid4 ids (a shared prefix would defeat PostgreSQL's abbreviated sort
    // keys and make key builds look slower than they are on real data).
    const ODD: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
    let spread = (u128::from(i)).wrapping_mul(ODD) & ((1u128 << 120) - 1);
    format!("{kind:02x}{spread:030x}")
}

fn t0() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// Synthetic user `i` (ids `hex_id(1, i)`).
pub fn user(i: u64) -> User {
    let created = t0() + TimeDelta::seconds(i as i64 * 37);
    User {
        id: hex_id(1, i),
        display_name: format!("Member {i}"),
        email: None,
        religious_preference: ["christian", "unspecified", "other"][i as usize % 3].into(),
        prayer_style: i.is_multiple_of(4).then(|| "contemplative".to_string()),
        invited_by_user_id: (i > 0).then(|| hex_id(1, i / 2)),
        created_at: created,
        updated_at: created,
        is_active: true,
        is_supporter: i.is_multiple_of(10),
        supporter_since: i.is_multiple_of(10).then_some(created),
        text_archive_path: Some(format!("users/{}.txt", hex_id(1, i))),
        supporter_type: i
            .is_multiple_of(20)
            .then(|| "supporter,prayer_warrior".to_string()),
        welcome_dismissed: i.is_multiple_of(3),
        email_verified_at: None,
    }
}

/// Synthetic prayer `i` of about 200 characters by one of `users` users (ids `hex_id(2, i)`).
pub fn prayer(i: u64, users: u64) -> Prayer {
    let created = t0() + TimeDelta::seconds(i as i64 * 53 + 1);
    let answered = i.is_multiple_of(7);
    Prayer {
        id: hex_id(2, i),
        author_id: hex_id(1, (i * 31) % users),
        text: format!(
            "Please pray for request {i}: for healing, for strength in a hard season, for peace \
             in our family and wisdom for the doctors. We trust in the Lord and thank this \
             community for standing with us in prayer."
        ),
        generated_prayer: i
            .is_multiple_of(2)
            .then(|| format!("Lord, hear request {i}.")),
        project_tag: None,
        target_audience: if i.is_multiple_of(5) {
            "christians_only"
        } else {
            "all"
        }
        .into(),
        created_at: created,
        updated_at: created,
        is_archived: i.is_multiple_of(11),
        is_answered: answered,
        answered_at: answered.then(|| created + TimeDelta::days(3)),
        testimony: answered.then(|| "God answered!".to_string()),
        text_archive_path: None,
    }
}

/// Synthetic mark `i` over `prayers` prayers and `users` users (ids `hex_id(3, i)`).
pub fn mark(i: u64, prayers: u64, users: u64) -> PrayerMark {
    PrayerMark {
        id: hex_id(3, i),
        prayer_id: hex_id(2, i % prayers),
        user_id: hex_id(1, (i / prayers + i * 7) % users),
        marked_at: t0() + TimeDelta::seconds(i as i64 * 11 + 2),
    }
}
