//! "No silent change" (issue 16), each example a real v1 file with one hostile value, migrated
//! on both backends: the run succeeds, the value reaches v2 as the mapping says or its row has a
//! finding that says what changed, and the independent validator passes the result.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use thywill_pipeline::{migrate, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode};
use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, V2Db};
use thywill_validator::{validate, Options, Policy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn clock() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

/// A finding as the migration recorded it in v2.
struct Recorded {
    table: String,
    key: String,
    rule: String,
    decision: String,
    reason: String,
}

/// One migrated and validated copy: the v2 database, its findings, and what keeps both alive
/// (the temporary folder and, on PostgreSQL, the database dropped with it).
struct Migrated {
    db: V2Db,
    findings: Vec<Recorded>,
    _dir: tempfile::TempDir,
    _pg: Option<TempPgDb>,
}

/// A copy of fixture `name`'s v1 database, changed by `sql`, migrated into a fresh target of each
/// backend, then validated (both must succeed).
fn migrate_hostile(name: &str, sql: &str) -> Vec<Migrated> {
    let mut targets: Vec<(String, Option<TempPgDb>)> = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    targets.push((
        format!("sqlite://{}", dir.path().join("v2.db").display()),
        None,
    ));
    let mut dirs = vec![dir];
    if let Some(pg) = TempPgDb::create() {
        targets.push((pg.url.clone(), Some(pg)));
        dirs.push(tempfile::tempdir().unwrap());
    }
    targets
        .into_iter()
        .zip(dirs)
        .map(|((url, pg), dir)| {
            let v1 = dir.path().join("v1.db");
            std::fs::copy(fixture(name).join("v1.db"), &v1).unwrap();
            Connection::open(&v1).unwrap().execute_batch(sql).unwrap();
            let (db, findings) = migrate_and_validate(name, &v1, &url);
            Migrated {
                db,
                findings,
                _dir: dir,
                _pg: pg,
            }
        })
        .collect()
}

/// Migrates `v1` into `url` under `repair`, validates it, and reads the run's findings back.
fn migrate_and_validate(name: &str, v1: &Path, url: &str) -> (V2Db, Vec<Recorded>) {
    let report = migrate(&MigrateOptions {
        common: CommonOptions {
            v1_db: v1.to_path_buf(),
            archives_v1: None,
            policy: thywill_pipeline::Policy::Repair,
            as_of: Some(clock()),
            test_account_names: Vec::new(),
            clock: Default::default(),
            invite_hours: None,
            progress: ProgressMode::Silent,
            ..Default::default()
        },
        v2_url: url.to_string(),
        archives_v2: None,
        dry_run: false,
        replace: false,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{name} on {url}: migrate failed: {e}"));
    assert!(report.ok, "{name} on {url}: report not ok");

    let mut opts = Options::new(v1, url);
    opts.policy = Policy::Repair;
    opts.now = Some(clock());
    let v = validate(&opts).unwrap_or_else(|e| panic!("{name} on {url}: validate: {e}"));
    let failed: Vec<String> = v
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {} {:?}", c.name, c.summary, c.details))
        .collect();
    assert!(v.ok, "{name} on {url}: validation failed: {failed:#?}");

    let mut db = V2Db::open(&Target::parse(url).unwrap()).unwrap();
    let run = db.runs().unwrap().pop().unwrap();
    let findings = db
        .findings(&run.run_id)
        .unwrap()
        .into_iter()
        .map(|f| Recorded {
            table: f.v1_table,
            key: f.v1_key,
            rule: f.rule,
            decision: f.decision,
            reason: f.reason,
        })
        .collect();
    (db, findings)
}

/// The v2 text of prayer `id`, if written.
fn prayer_text(db: &mut V2Db, id: &str) -> Option<String> {
    let mut text = None;
    db.read_table::<thywill_v2::rows::Prayer, thywill_v2::Error, _>(|p| {
        if p.id == id {
            text = Some(p.text);
        }
        Ok(())
    })
    .unwrap();
    text
}

fn has(findings: &[Recorded], table: &str, key: &str, rule: &str, decision: &str) -> bool {
    findings
        .iter()
        .any(|f| f.table == table && f.key == key && f.rule == rule && f.decision == decision)
}

fn dump(findings: &[Recorded], table: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.table == table)
        .map(|f| format!("{} {} {} {}", f.key, f.rule, f.decision, f.reason))
        .collect()
}

const PRAYER_ID: &str = "(SELECT id FROM prayer WHERE author_id IN (SELECT id FROM user) \
     AND id NOT IN (SELECT prayer_id FROM prayer_attributes) ORDER BY rowid LIMIT 1)";

fn first_prayer_id(name: &str) -> String {
    let c = Connection::open(fixture(name).join("v1.db")).unwrap();
    c.query_row(&format!("SELECT {PRAYER_ID}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_prayer_text_stored_as_a_blob_of_non_utf8_bytes_has_its_finding() {
    let id = first_prayer_id("g1-s");
    let sql = format!(
        "UPDATE prayer SET text = x'506c656173652070726179ff2066ee72206d65' WHERE id = '{id}';"
    );
    for mut m in migrate_hostile("g1-s", &sql) {
        assert!(
            has(&m.findings, "prayer", &id, "R-UTF8", "repaired"),
            "{:#?}",
            dump(&m.findings, "prayer")
        );
        assert_eq!(
            prayer_text(&mut m.db, &id).as_deref(),
            Some("Please pray\u{FFFD} f\u{FFFD}r me")
        );
    }
}

#[test]
fn a_valid_utf8_blob_is_text_and_needs_no_finding() {
    let id = first_prayer_id("g1-s");
    // "Please pray for me" as a BLOB: v1's text, stored by another client; nothing changes.
    let sql =
        format!("UPDATE prayer SET text = CAST('Please pray for me' AS BLOB) WHERE id = '{id}';");
    for mut m in migrate_hostile("g1-s", &sql) {
        assert!(
            !m.findings
                .iter()
                .any(|f| f.table == "prayer" && f.key == id && f.rule == "R-UTF8"),
            "{:#?}",
            dump(&m.findings, "prayer")
        );
        assert_eq!(
            prayer_text(&mut m.db, &id).as_deref(),
            Some("Please pray for me")
        );
    }
}

#[test]
fn a_nul_byte_is_one_utf8_repair_that_migrate_and_validate_agree_on() {
    let id = first_prayer_id("g1-s");
    let sql = format!(
        "UPDATE prayer SET text = 'Please pray' || char(0) || ' for my family' WHERE id = '{id}';
         UPDATE user SET display_name = 'Nul' || char(0) || 'Name' WHERE rowid = (SELECT max(rowid) FROM user);"
    );
    for m in migrate_hostile("g1-s", &sql) {
        assert!(has(&m.findings, "prayer", &id, "R-UTF8", "repaired"));
    }
}

#[test]
fn a_session_ip_that_is_not_an_address_is_repaired_with_a_finding() {
    let sql = "UPDATE session SET ip_address = 'not-an-ip; DROP TABLE' \
               WHERE rowid = (SELECT min(rowid) FROM session WHERE expires_at > '2026-06-01' \
               AND user_id IN (SELECT id FROM user));";
    let c = Connection::open(fixture("g1-s").join("v1.db")).unwrap();
    let key: String = c
        .query_row(
            "SELECT id FROM session WHERE rowid = (SELECT min(rowid) FROM session \
             WHERE expires_at > '2026-06-01' AND user_id IN (SELECT id FROM user))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    for mut m in migrate_hostile("g1-s", sql) {
        assert!(
            has(&m.findings, "session", &key, "R-SESSION-IP", "repaired"),
            "{:#?}",
            dump(&m.findings, "session")
        );
        let mut found = None;
        m.db.read_table::<thywill_v2::rows::Session, thywill_v2::Error, _>(|s| {
            if s.id == key {
                found = Some(s.ip_address);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            found,
            Some(None),
            "the session is carried, its address NULL"
        );
    }
}

#[test]
fn an_invite_count_beyond_v2s_integer_never_stops_the_run() {
    let c = Connection::open(fixture("g3-s").join("v1.db")).unwrap();
    let token: String = c
        .query_row(
            "SELECT token FROM invitetoken WHERE typeof(token) = 'text' \
             AND (token_type IS NULL OR token_type IN ('new_user', 'admin')) ORDER BY rowid LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sql = format!("UPDATE invitetoken SET usage_count = 99999999999 WHERE token = '{token}';");
    for m in migrate_hostile("g3-s", &sql) {
        assert!(
            m.findings.iter().any(|f| f.table == "invitetoken"
                && f.key == token
                && f.rule == "R-INVITE-COUNT"
                && f.reason.contains("99999999999")),
            "{:#?}",
            dump(&m.findings, "invitetoken")
        );
    }
}

#[test]
fn a_g1_member_keyed_admin_gets_the_v5_id_of_their_key_and_validates() {
    // The real first-week database has a member whose id is `admin`; their prayers, marks and
    // sessions reference that key.
    let c = Connection::open(fixture("g1-s").join("v1.db")).unwrap();
    let old: String = c
        .query_row(
            "SELECT author_id FROM prayer WHERE author_id IN (SELECT id FROM user) ORDER BY rowid LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sql = format!(
        "PRAGMA foreign_keys = OFF;
         UPDATE prayer SET author_id = 'admin' WHERE author_id = '{old}';
         UPDATE prayermark SET user_id = 'admin' WHERE user_id = '{old}';
         UPDATE session SET user_id = 'admin' WHERE user_id = '{old}';
         UPDATE user SET invited_by_user_id = 'admin' WHERE invited_by_user_id = '{old}';
         UPDATE user SET id = 'admin' WHERE id = '{old}';"
    );
    let want = uuid::Uuid::new_v5(&thywill_v2_namespace(), b"user-id:admin")
        .simple()
        .to_string();
    for mut m in migrate_hostile("g1-s", &sql) {
        let map = m.db.id_map().unwrap();
        assert!(
            map.iter()
                .any(|e| e.entity == "user" && e.v1_key == "admin" && e.v2_id == want),
            "no id map entry admin -> {want}"
        );
        let mut ids = Vec::new();
        m.db.read_table::<thywill_v2::rows::User, thywill_v2::Error, _>(|u| {
            ids.push(u.id);
            Ok(())
        })
        .unwrap();
        assert!(ids.contains(&want), "the member is written under {want}");
        assert!(
            !m.findings
                .iter()
                .any(|f| f.key == "admin" && f.table == "user"),
            "a valid text key is not damage"
        );
    }
}

/// The fixed namespace of the project's UUID v5 ids (written here a third time, on purpose: the
/// test must not take it from the code it checks).
fn thywill_v2_namespace() -> uuid::Uuid {
    uuid::Uuid::from_u128(0x6a1f_3c52_8e0b_5d47_9b3e_7468_7977_696c)
}
