//! The plan as pass 2 uses it, and the real-data facts the spec insists on.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rusqlite::Connection;
use thywill_detect::{detect, DetectOptions, OriginalRows, Plan, Policy, RuleId, Verdict};
use thywill_v1::{MarkRow, PrayerRow, V1Database, V1Value};

fn as_of() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 6, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid date")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .join("v1.db")
}

/// Pass 2 over the fixtures: the rows the plan writes are exactly the law's `written`, and every
/// written mark and prayer references written rows.
#[test]
fn pass_two_writes_exactly_what_the_law_counts() {
    let (mut used_invites, mut flagged) = (0, 0);
    for g in ["g0-s", "g1-s", "g2-s", "g3-s"] {
        let db = V1Database::open(fixture(g)).unwrap();
        for policy in [Policy::Repair, Policy::Strict] {
            let plan = detect(&db, &DetectOptions::new(policy, as_of())).unwrap();
            let users: std::collections::HashSet<String> =
                plan.users().map(|u| u.unwrap().id).collect();
            assert_eq!(users.len(), plan.users().len(), "{g}: v2 user ids unique");
            assert_eq!(plan.users().len() as u64, plan.counts()["user"].written);
            // An invite's latest use is dated by its `invite_token_usage` row, else (and for a
            // row v1's migration 008 backfilled) by its member's created_at.
            let created: std::collections::HashMap<String, chrono::NaiveDateTime> = plan
                .users()
                .map(|u| u.map(|u| (u.id, u.created_at)).unwrap())
                .collect();
            let mut claimed: std::collections::HashMap<String, Vec<chrono::NaiveDateTime>> =
                Default::default();
            if db.schema().has_table("invite_token_usage") {
                db.for_each::<thywill_v1::InviteUsageRow, thywill_v1::V1Error, _>(|u| {
                    if let (Some(t), Some(at)) = (
                        u.token.to_text_lossy(),
                        thywill_detect::time::parse_value(&u.claimed_at),
                    ) {
                        claimed.entry(t.into_owned()).or_default().push(at.at);
                    }
                    Ok(())
                })
                .unwrap();
            }
            for i in plan.invites().iter() {
                let i = i.unwrap();
                if let Some(by) = &i.used_by_user_id {
                    let at = i.used_at.expect("a use has a time");
                    let by_usage = claimed.get(&i.token).is_some_and(|c| c.contains(&at));
                    assert!(
                        by_usage || created.get(by) == Some(&at),
                        "{g}: used_at {at} of {} is neither a claim's nor its member's",
                        i.token
                    );
                    assert!(i.created_at <= at, "{g}: created after its use");
                    used_invites += 1;
                }
            }
            let mut prayers = std::collections::HashSet::new();
            let mut flags = Vec::new();
            db.for_each::<PrayerRow, thywill_v1::V1Error, _>(|row| {
                if let Verdict::Write(p) = plan.resolve_prayer(&row).expect("resolve") {
                    if let Some(f) = &p.flag {
                        flags.push((p.id.clone(), f.clone()));
                    }
                    assert!(users.contains(&p.author_id), "{g}: author written");
                    assert!(p.is_answered || (p.answered_at.is_none() && p.testimony.is_none()));
                    assert!(p.updated_at >= p.created_at);
                    prayers.insert(p.id);
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(
                prayers.len() as u64,
                plan.counts()["prayer"].written,
                "{g} {policy}"
            );
            // content_flags come from the plan's state: the same flags the prayers carry.
            let from_plan: Vec<_> = plan.flags().collect::<Result<_, _>>().expect("flags");
            assert_eq!(from_plan, flags, "{g} {policy}: flags");
            flagged += flags.len();
            let mut marks = std::collections::HashSet::new();
            db.for_each::<MarkRow, thywill_v1::V1Error, _>(|row| {
                if let Verdict::Write(m) = plan.resolve_mark(&row) {
                    assert!(users.contains(&m.user_id), "{g}: mark member written");
                    assert!(prayers.contains(&m.prayer_id), "{g}: mark prayer written");
                    assert!(
                        marks.insert((m.prayer_id, m.user_id, m.marked_at)),
                        "{g}: v2 unique"
                    );
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(
                marks.len() as u64,
                plan.counts()["prayermark"].written,
                "{g} {policy}"
            );
            if let Some(c) = plan.counts().get("user_roles") {
                // A `deactivated` grant is written into its member's row (is_active = false).
                assert_eq!(
                    plan.role_grants().len() as u64 + plan.folded_grants(),
                    c.written + plan.implicit_grants()
                );
                assert_eq!(plan.role_grants().len() as u64, plan.grant_rows());
                let inactive = plan
                    .users()
                    .filter(|u| !u.as_ref().unwrap().is_active)
                    .count();
                assert_eq!(inactive as u64, plan.folded_grants(), "{g} {policy}");
            }
            assert_eq!(
                plan.sessions().len() as u64,
                plan.counts()["session"].written
            );
            assert_eq!(
                plan.invites().len() as u64,
                plan.counts()["invitetoken"].written
            );
            for inv in plan.invites().iter().map(Result::unwrap) {
                assert!(inv.expires_at > inv.created_at);
            }
            let mut originals = OriginalRows::new(&db);
            for f in plan.findings() {
                let f = f.unwrap();
                assert!(originals.of(&f).unwrap().is_object(), "{g}: original row");
                assert!(!f.reason.is_empty());
            }
        }
    }
    assert!(used_invites > 0, "some fixture has a used invite");
    assert!(flagged > 0, "some fixture has a flagged prayer");
}

/// A small G1 file built by hand.
fn g1_file(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("v1.db");
    let conn = Connection::open(&path).unwrap();
    let ddl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/ddl/g1.sql"),
    )
    .unwrap_or_else(|_| {
        "CREATE TABLE user (id VARCHAR NOT NULL, display_name VARCHAR NOT NULL, created_at DATETIME NOT NULL, religious_preference VARCHAR(50), prayer_style VARCHAR(100), invited_by_user_id VARCHAR, invite_token_used VARCHAR, welcome_message_dismissed BOOLEAN NOT NULL, text_file_path VARCHAR, PRIMARY KEY (id));
         CREATE TABLE prayer (id VARCHAR NOT NULL, author_id VARCHAR NOT NULL, text VARCHAR NOT NULL, generated_prayer VARCHAR, project_tag VARCHAR, created_at DATETIME NOT NULL, flagged BOOLEAN NOT NULL, target_audience VARCHAR(50), text_file_path VARCHAR, PRIMARY KEY (id));
         CREATE TABLE prayermark (id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, prayer_id VARCHAR NOT NULL, created_at DATETIME NOT NULL, text_file_path VARCHAR, PRIMARY KEY (id));
         CREATE TABLE role (id VARCHAR NOT NULL, name VARCHAR(50) NOT NULL, description VARCHAR(255), permissions VARCHAR NOT NULL, created_at DATETIME NOT NULL, created_by VARCHAR, is_system_role BOOLEAN NOT NULL, PRIMARY KEY (id));
         CREATE TABLE prayer_attributes (id VARCHAR NOT NULL, prayer_id VARCHAR NOT NULL, attribute_name VARCHAR(50) NOT NULL, attribute_value VARCHAR(255), created_at DATETIME NOT NULL, created_by VARCHAR, text_file_path VARCHAR, PRIMARY KEY (id));".into()
    });
    // Hostile rows need the loose declarations some early files had (no NOT NULL).
    let ddl = if extra.is_empty() {
        ddl
    } else {
        ddl.replace(" NOT NULL", "")
    };
    conn.execute_batch(&ddl).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO user (id, display_name, created_at, religious_preference, welcome_message_dismissed)
           VALUES ('{a}', 'Mary', '2025-06-01 10:00:00.000000', 'christian', 0),
                  ('{b}', ' mary ', '2025-06-02 10:00:00.000000', 'christian', 0),
                  ('{c}', 'MARY', '2025-06-03 10:00:00.000000', 'christian', 0),
                  ('{d}', 'Testimony Tom', '2025-06-04 10:00:00.000000', 'christian', 0);
         INSERT INTO prayer (id, author_id, text, created_at, flagged, target_audience)
           VALUES ('{p}', '{a}', 'Please pray for my mother''s healing', '2025-06-05 10:00:00.000000', 0, 'all');
         INSERT INTO prayermark (id, user_id, prayer_id, created_at) VALUES
           ('{m1}', '{d}', '{p}', '2025-06-06 10:00:00.000000'),
           ('{m2}', '{d}', '{p}', '2025-06-07 10:00:00.000000'),
           ('{m3}', '{d}', '{p}', '2025-06-08 10:00:00.000000'),
           ('{m4}', '{b}', '{p}', '2025-06-09 10:00:00.000000'),
           ('{m5}', '{a}', '{p}', '2025-06-09 10:00:00.000000');
         INSERT INTO prayer_attributes (id, prayer_id, attribute_name, attribute_value, created_at) VALUES
           ('{t1}', '{p}', 'answered', 'true', '2025-06-10 10:00:00.000000'),
           ('{t2}', '{p}', 'answer_date', '2025-06-10T08:30:00Z', '2025-06-10 10:00:00.000000'),
           ('{t3}', '{p}', 'answer_testimony', 'She is home.', '2025-06-10 10:00:00.000000');
         {extra}",
        a = "a".repeat(32),
        b = "b".repeat(32),
        c = "c".repeat(32),
        d = "d".repeat(32),
        p = "1".repeat(32),
        m1 = "2".repeat(32),
        m2 = "3".repeat(32),
        m3 = "4".repeat(32),
        m4 = "5".repeat(32),
        m5 = "6".repeat(32),
        t1 = "7".repeat(32),
        t2 = "8".repeat(32),
        t3 = "9".repeat(32),
    ))
    .unwrap();
    path
}

fn plan_of(path: &Path, policy: Policy) -> Plan {
    let db = V1Database::open(path).unwrap();
    detect(&db, &DetectOptions::new(policy, as_of())).unwrap()
}

#[test]
fn real_data_facts_hold() {
    let dir = tempfile::tempdir().unwrap();
    let path = g1_file(dir.path(), "");
    let plan = plan_of(&path, Policy::Repair);
    let rules = |table: &str| -> Vec<(i64, RuleId)> {
        plan.findings()
            .iter()
            .map(Result::unwrap)
            .filter(|f| f.v1_table == table)
            .map(|f| (f.rowid, f.rule))
            .collect()
    };
    // Repeated marks of the same prayer by the same member at different times are carried.
    // The merge of ' mary ' into 'Mary' makes marks 4 and 5 the same instant: one is deduplicated.
    assert_eq!(rules("prayermark"), vec![(5, RuleId::MarkDuplicate)]);
    assert_eq!(plan.counts()["prayermark"].written, 4);
    // An ISO answer_date is not a finding, and becomes answered_at in UTC.
    assert!(rules("prayer_attributes").is_empty());
    let db = V1Database::open(&path).unwrap();
    let prayer: Vec<PrayerRow> = db.read_all().unwrap();
    let Verdict::Write(p) = plan.resolve_prayer(&prayer[0]).expect("resolve") else {
        panic!("prayer written")
    };
    assert!(p.is_answered);
    assert_eq!(p.answered_at.unwrap().to_string(), "2025-06-10 08:30:00");
    assert_eq!(p.testimony.as_deref(), Some("She is home."));
    // Names differing only in case or surrounding spaces are one person, the earliest survives.
    let user_rules = rules("user");
    assert!(user_rules.contains(&(2, RuleId::UserDuplicate)));
    assert!(user_rules.contains(&(2, RuleId::UserName)));
    assert!(user_rules.contains(&(3, RuleId::UserDuplicate)));
    assert_eq!(plan.counts()["user"].merged, 2);
    let mary = "a".repeat(32);
    assert!(
        plan.id_map()
            .filter(|e| e.as_ref().unwrap().v2_id == mary)
            .count()
            == 3
    );
    // "Testimony Tom" is not a test account.
    assert!(!user_rules.iter().any(|(r, _)| *r == 4));
}

#[test]
fn hostile_rows_never_panic_and_keep_the_law() {
    let dir = tempfile::tempdir().unwrap();
    let path = g1_file(
        dir.path(),
        "INSERT INTO user (id, display_name, created_at, welcome_message_dismissed, invited_by_user_id, text_file_path)
           VALUES (NULL, NULL, NULL, 0, NULL, '../../etc/passwd'),
                  (x'00ff', x'ff00', 12.5, 0, 'None', '/tmp/tmpx/complete_site_archive/users/x.txt'),
                  (42, 'Zed', 'garbage', 0, '42', NULL),
                  (' EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE\u{200B}', 'Eve' || char(10) || 'Lyn', '2025-06-01T10:00:00+02:00', 0, NULL, NULL);
         INSERT INTO prayer (id, author_id, text, created_at, flagged, target_audience)
           VALUES (NULL, NULL, NULL, NULL, NULL, NULL),
                  ('p2', 'None', x'ff', 'yesterday', 1, 'Everyone'),
                  ('p3', '42', printf('%.*c', 6000, 'x'), 1751225580, 0, 'christian');
         INSERT INTO prayermark (id, user_id, prayer_id, created_at) VALUES (NULL, NULL, NULL, NULL), ('mx', 'None', 'p2', 'x');",
    );
    for policy in [Policy::Repair, Policy::Strict] {
        let plan = plan_of(&path, policy);
        for c in plan.counts().values() {
            assert!(c.balances());
        }
        let keys: Vec<String> = plan.findings().iter().map(|f| f.unwrap().v1_key).collect();
        assert!(
            keys.iter().any(|k| k == "rowid:5"),
            "NULL keys are rowid:<n>: {keys:?}"
        );
        assert!(keys.iter().any(|k| k == "x'00ff'"), "BLOB keys are hex");
    }
}

#[test]
fn marks_group_by_their_resolved_prayer_whatever_the_spelling_of_prayer_id() {
    let dir = tempfile::tempdir().unwrap();
    let (d, p, q) = ("d".repeat(32), "1".repeat(32), "f0".repeat(16));
    let path = g1_file(
        dir.path(),
        &format!(
            "INSERT INTO prayer (id, author_id, text, created_at, flagged, target_audience)
               VALUES ('{q}', '{a}', 'Please pray for our new neighbours', 'garbage', 0, 'all');
             INSERT INTO prayermark (id, user_id, prayer_id, created_at) VALUES
               ('{m6}', '{d}', ' {p} ', '2025-06-06 10:00:00.000000'),
               ('{m7}', '{d}', '{qu}', '2025-06-21 10:00:00.000000'),
               ('{m8}', '{d}', '{q}', '2025-06-20 10:00:00.000000'),
               ('{m9}', '{d}', '{q}', '2025-06-21 10:00:00.000000');",
            a = "a".repeat(32),
            qu = q.to_uppercase(),
            m6 = "e".repeat(32),
            m7 = "ab".repeat(16),
            m8 = "ac".repeat(16),
            m9 = "ad".repeat(16),
        ),
    );
    let plan = plan_of(&path, Policy::Repair);
    let dups: Vec<(String, String)> = plan
        .findings()
        .iter()
        .map(Result::unwrap)
        .filter(|f| f.rule == RuleId::MarkDuplicate)
        .map(|f| (f.v1_key.clone(), f.reason.clone()))
        .collect();
    // ' 111…1 ' is the prayer 111…1: same member and instant as mark 222…2 (kept: smaller key).
    // 'F0F0…' is the prayer f0f0…: the upper-case spelling's mark is kept (smaller key 'abab…').
    assert_eq!(dups.len(), 3, "{dups:#?}");
    assert!(
        dups.iter().any(|x| x.0 == "6".repeat(32)),
        "the merge case still holds"
    );
    assert!(dups
        .iter()
        .any(|x| x.0 == "e".repeat(32) && x.1.contains(&"2".repeat(32))));
    assert!(dups
        .iter()
        .any(|x| x.0 == "ad".repeat(16) && x.1.contains(&"ab".repeat(16))));
    assert_eq!(plan.counts()["prayermark"].written, 6);
    // The pending prayer's created_at is its earliest mark over every spelling of its key.
    let db = V1Database::open(&path).unwrap();
    let rows: Vec<PrayerRow> = db.read_all().unwrap();
    let row = rows.iter().find(|r| r.id == V1Value::text(&q)).unwrap();
    let Verdict::Write(pr) = plan.resolve_prayer(row).expect("resolve") else {
        panic!("the prayer is written with evidence")
    };
    assert_eq!(pr.created_at.to_string(), "2025-06-20 10:00:00");
}

/// A user's unparseable `created_at` (no archive path) takes the earliest of its prayers and
/// marks, found before the users are settled; a prayer whose author is quarantined names the
/// author's v1 key, although the user rows are gone by the time the prayers are read.
#[test]
fn user_times_take_the_earliest_prayer_or_mark_and_orphans_name_their_author() {
    let dir = tempfile::tempdir().unwrap();
    let (e, f, g) = ("e".repeat(32), "f".repeat(32), "g".repeat(32));
    let path = g1_file(
        dir.path(),
        &format!(
            "INSERT INTO user (id, display_name, created_at, religious_preference, welcome_message_dismissed)
               VALUES ('{e}', 'Ezra', 'garbage', 'christian', 0),
                      ('{f}', 'Fern', 'garbage', 'christian', 0),
                      ('{g}', '   ', '2025-06-01 10:00:00.000000', 'christian', 0);
             INSERT INTO prayer (id, author_id, text, created_at, flagged, target_audience) VALUES
               ('{pe}', '{e}', 'Please pray for the harvest this year', '2025-06-12 10:00:00.000000', 0, 'all'),
               ('{pf}', '{f}', 'Please pray for my brother at sea', '2025-06-13 10:00:00.000000', 0, 'all'),
               ('{pg}', '{g}', 'Please pray for rain in the valley', '2025-06-14 10:00:00.000000', 0, 'all');
             INSERT INTO prayermark (id, user_id, prayer_id, created_at) VALUES
               ('{m1}', '{e}', '{pf}', '2025-06-11 10:00:00.000000'),
               ('{m2}', '{f}', '{pe}', '2025-06-20 10:00:00.000000');",
            pe = "e1".repeat(16),
            pf = "f1".repeat(16),
            pg = "a1".repeat(16),
            m1 = "e2".repeat(16),
            m2 = "f2".repeat(16),
        ),
    );
    for policy in [Policy::Repair, Policy::Strict] {
        let plan = plan_of(&path, policy);
        for c in plan.counts().values() {
            assert!(c.balances());
        }
        let created = |id: &str| {
            plan.users()
                .map(Result::unwrap)
                .find(|u| u.id == id)
                .map(|u| u.created_at.to_string())
        };
        if policy == Policy::Repair {
            // Ezra's earliest activity is a mark, Fern's a prayer.
            assert_eq!(created(&e).as_deref(), Some("2025-06-11 10:00:00"));
            assert_eq!(created(&f).as_deref(), Some("2025-06-13 10:00:00"));
        }
        let orphan = plan
            .findings()
            .iter()
            .map(Result::unwrap)
            .find(|x| x.v1_table == "prayer" && x.v1_key == "a1".repeat(16))
            .expect("the quarantined author's prayer has a finding");
        assert_eq!(orphan.rule, RuleId::Orphan);
        assert!(orphan.reason.contains(&g), "{}", orphan.reason);
    }
}
