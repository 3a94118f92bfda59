//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chrono::{NaiveDate, NaiveDateTime};
use thywill_v2::rows::*;
use thywill_v2::testing::{self, TempPgDb};
use thywill_v2::{Error, LoadOptions, RowSink, RunInfo, RunSummary, Target, V2Db};

/// A target for one test, with whatever keeps it alive.
pub struct TestTarget {
    pub label: &'static str,
    pub target: Target,
    _pg: Option<TempPgDb>,
    _dir: Option<tempfile::TempDir>,
}

/// A new SQLite file target and, when `THYWILL_TEST_PG_URL` is set, a new PostgreSQL database.
pub fn targets() -> Vec<TestTarget> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let mut out = vec![TestTarget {
        label: "sqlite",
        target: Target::parse(&format!("sqlite://{}", path.display())).unwrap(),
        _pg: None,
        _dir: Some(dir),
    }];
    if let Some(pg) = TempPgDb::create() {
        out.push(TestTarget {
            label: "postgres",
            target: Target::parse(&pg.url).unwrap(),
            _pg: Some(pg),
            _dir: None,
        });
    }
    out
}

pub fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micro: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_micro_opt(h, mi, s, micro)
        .unwrap()
}

pub const TRICKY: &str =
    "Tab\there, newline\nthere, CR\r, backslash \\ and \\N, quotes \"double\" 'single', \
     comma, semicolon; unicode é ☃ 🙏 \u{202e}rtl\u{202c}, emoji, \u{7f} and \u{1} controls";

/// A small data set exercising every table and awkward text.
pub struct Sample {
    pub users: Vec<User>,
    pub prayers: Vec<Prayer>,
    pub marks: Vec<PrayerMark>,
    pub roles: Vec<UserRole>,
    pub invites: Vec<Invite>,
    pub sessions: Vec<Session>,
    pub flags: Vec<ContentFlag>,
}

pub fn sample(tag: u64) -> Sample {
    let mut users: Vec<User> = (0..5).map(|i| testing::user(i + tag * 100)).collect();
    users[0].invited_by_user_id = None;
    for u in users.iter_mut().skip(1) {
        u.invited_by_user_id = Some(testing::hex_id(1, tag * 100));
    }
    users[1].display_name = format!("O'Brien \"Quote\" \\ {tag}");
    users[2].display_name = format!("Zoë ☃ \u{200f}{tag}");
    users[3].prayer_style = Some("tab\tand\nnewline".into());
    users[4].email = Some(format!("m{tag}@example.org"));
    users[4].display_name = format!("x{tag}");
    let uid = |i: usize| users[i].id.clone();
    let mut prayers: Vec<Prayer> = (0..4).map(|i| testing::prayer(i + tag * 100, 1)).collect();
    for (i, p) in prayers.iter_mut().enumerate() {
        p.author_id = uid(i % 5);
    }
    prayers[0].text = TRICKY.into();
    prayers[1].generated_prayer = Some(TRICKY.into());
    prayers[1].created_at = ts(2024, 2, 29, 23, 59, 59, 999_999);
    prayers[2].is_answered = true;
    prayers[2].answered_at = Some(ts(2024, 3, 1, 0, 0, 0, 1));
    prayers[2].testimony = None;
    prayers[3].is_answered = true;
    prayers[3].answered_at = Some(ts(2024, 3, 1, 0, 0, 0, 0));
    prayers[3].testimony = Some(TRICKY.into());
    prayers[3].text = "x".repeat(5000);
    let marks: Vec<PrayerMark> = (0..20)
        .map(|i| PrayerMark {
            id: testing::hex_id(3, i + tag * 100),
            prayer_id: prayers[i as usize % 4].id.clone(),
            user_id: uid(i as usize % 5),
            marked_at: ts(2024, 4, 1, 0, 0, 0, 0) + chrono::TimeDelta::minutes(i as i64 / 2),
        })
        .collect();
    let roles = vec![
        UserRole {
            user_id: uid(0),
            role: "admin".into(),
            granted_at: ts(2024, 1, 1, 0, 0, 0, 0),
            granted_by_user_id: None,
        },
        UserRole {
            user_id: uid(0),
            role: "moderator".into(),
            granted_at: ts(2024, 1, 1, 0, 0, 0, 0),
            granted_by_user_id: Some(uid(0)),
        },
    ];
    let invites = vec![Invite {
        id: testing::hex_id(4, tag),
        token: format!("tok-{tag}-\u{e9}"),
        created_by_user_id: Some(uid(0)),
        invited_display_name: Some("New \"one\"".into()),
        created_at: ts(2024, 1, 1, 0, 0, 0, 0),
        expires_at: ts(2024, 1, 1, 12, 0, 0, 0),
        max_uses: Some(1),
        use_count: 1,
        used_at: Some(ts(2024, 1, 1, 1, 0, 0, 0)),
        used_by_user_id: Some(uid(1)),
        is_admin_token: false,
    }];
    let sessions = vec![
        Session {
            id: format!("{:064x}", tag + 1),
            user_id: uid(1),
            created_at: ts(2024, 1, 1, 0, 0, 0, 0),
            expires_at: ts(2099, 1, 1, 0, 0, 0, 0),
            last_seen_at: ts(2024, 1, 1, 0, 0, 0, 0),
            user_agent: Some(TRICKY.into()),
            ip_address: Some("2001:db8::1".into()),
        },
        Session {
            id: format!("s{tag}"),
            user_id: uid(2),
            created_at: ts(2024, 1, 1, 0, 0, 0, 0),
            expires_at: ts(2099, 1, 1, 0, 0, 0, 0),
            last_seen_at: ts(2024, 1, 1, 0, 0, 0, 0),
            user_agent: None,
            ip_address: Some("10.0.0.0/8".into()),
        },
    ];
    let flags = vec![ContentFlag {
        id: testing::hex_id(5, tag),
        prayer_id: prayers[0].id.clone(),
        flagged_by_user_id: None,
        reason: Some("carried over from v1".into()),
        flagged_at: ts(2024, 1, 2, 0, 0, 0, 0),
        resolved_at: None,
        resolved_by_user_id: None,
        resolution_action: None,
    }];
    Sample {
        users,
        prayers,
        marks,
        roles,
        invites,
        sessions,
        flags,
    }
}

pub fn run_info(sha: &str) -> RunInfo {
    RunInfo::new("v1.db", sha, "G1", "test")
}

/// Writes `s` (plus an id-map row and a finding) in one load and commits it.
pub fn load_sample(
    db: &mut V2Db,
    s: &Sample,
    sha: &str,
    opts: LoadOptions,
) -> Result<RunSummary, Error> {
    let mut load = db.begin_load(run_info(sha), opts)?;
    write_sample(&mut load, s)?;
    load.commit(None)
}

pub fn write_sample(load: &mut thywill_v2::Load<'_>, s: &Sample) -> Result<(), Error> {
    load.write_all(&s.users)?;
    load.write_all(&s.prayers)?;
    load.write(|sink: &mut dyn RowSink<PrayerMark>| {
        for m in &s.marks {
            sink.push(m)?;
        }
        Ok::<(), Error>(())
    })?;
    load.write_all(&s.roles)?;
    load.write_all(&s.invites)?;
    load.write_all(&s.sessions)?;
    load.write_all(&s.flags)?;
    let run_id = load.run_id().to_string();
    load.write_all(&[IdMapEntry {
        run_id: run_id.clone(),
        entity: "user".into(),
        v1_key: s.users[1].display_name.clone(),
        v2_id: s.users[1].id.clone(),
    }])?;
    load.write_all(&[Finding {
        run_id,
        v1_table: "user".into(),
        v1_key: "x'00ff'".into(),
        rule: "R-USER-DUPLICATE".into(),
        decision: "merged".into(),
        reason: TRICKY.into(),
        original_json: "{\"a\":\"\\t\"}".into(),
        created_at: ts(2024, 5, 1, 0, 0, 0, 0),
    }])?;
    Ok(())
}

fn read<R: thywill_v2::AppRow>(db: &mut V2Db) -> Vec<R> {
    let mut v = Vec::new();
    db.read_table::<R, Error, _>(|r| {
        v.push(r);
        Ok(())
    })
    .unwrap();
    v
}

/// Every application table read back, as a comparable value.
pub fn dump(db: &mut V2Db) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        read::<User>(db),
        read::<Prayer>(db),
        read::<PrayerMark>(db),
        read::<UserRole>(db),
        read::<Invite>(db),
        read::<Session>(db),
        read::<ContentFlag>(db),
    )
}

pub fn sorted<T: Clone, K: Ord>(v: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort_by_key(|x| key(x));
    v
}
