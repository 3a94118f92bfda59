//! `R-EMAIL` through the whole migration (rules.md "E-mail addresses"): a copy of
//! `fixtures/g3-s/v1.db` with an `email.db` of one row per decision (the generator's standard
//! rows, Fernet-encrypted with its test key), migrated on SQLite and on PostgreSQL; each test
//! reads one decision back from v2 (`users.email`, `email_verified_at`, `migration_findings`)
//! and the report's law.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;

use support::{fixture, options, run, TestTarget};
use thywill_fixturegen::email::{standard_rows, write_email_db, TEST_KEY};
use thywill_pipeline::{EmailKey, Policy, Report};
use thywill_v2::rows::{Finding, User};

/// One migrated target: the report, v2's members by display name, the `user_email` findings by
/// v1 key.
struct Migrated {
    ctx: String,
    report: Report,
    users: HashMap<String, User>,
    findings: HashMap<String, Finding>,
}

fn v1_copy(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let v1 = dir.join("v1.db");
    std::fs::copy(fixture("g3-s").join("v1.db"), &v1).unwrap();
    let email = dir.join("email.db");
    write_email_db(&email, TEST_KEY, &standard_rows()).unwrap();
    (v1, email)
}

/// The fixture with its e-mail database, migrated on every backend available.
fn migrated() -> Vec<Migrated> {
    let mut out = Vec::new();
    for target in TestTarget::all() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, email) = v1_copy(dir.path());
        let mut opts = options("g3-s", target.url(), Policy::Repair);
        opts.common.v1_db = v1;
        opts.common.email_db = Some(email);
        opts.common.email_key = EmailKey::new(TEST_KEY);
        let report = run(&opts);
        assert!(report.ok, "{}: report not ok", target.url());
        let mut db = target.open();
        let mut users = HashMap::new();
        db.read_table::<User, thywill_v2::Error, _>(|u| {
            users.insert(u.display_name.clone(), u);
            Ok(())
        })
        .unwrap();
        let run_id = report.run_id.clone().unwrap();
        let findings = db
            .findings(&run_id)
            .unwrap()
            .into_iter()
            .filter(|f| f.v1_table == "user_email")
            .map(|f| (f.v1_key.clone(), f))
            .collect();
        out.push(Migrated {
            ctx: target.url().to_string(),
            report,
            users,
            findings,
        });
    }
    out
}

fn key(n: u32) -> String {
    format!("{n:032x}")
}

fn at(s: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

#[test]
fn a_verified_address_is_carried_lower_cased_and_trimmed_with_its_verification_time() {
    for m in migrated() {
        let u = &m.users["Abigail Afolabi"];
        assert_eq!(
            u.email.as_deref(),
            Some("abigail.afolabi@example.org"),
            "{}",
            m.ctx
        );
        assert_eq!(
            u.email_verified_at,
            Some(at("2025-08-07 10:00:00")),
            "{}",
            m.ctx
        );
        // Written (repaired: v1 would have stored it lower-cased and trimmed).
        let f = &m.findings[&key(1)];
        assert_eq!(f.decision, "repaired", "{}", m.ctx);
        assert!(f.reason.contains("a•••@example.org"), "{}", f.reason);
        // The law: 8 read = 2 written + 2 not carried + 4 quarantined.
        let c = m.report.tables["user_email"];
        assert_eq!(
            (c.read, c.written, c.repaired, c.not_carried, c.quarantined),
            (8, 2, 1, 2, 4),
            "{}: {c:?}",
            m.ctx
        );
        let s = m.report.source.email_db.as_ref().expect("source.email_db");
        assert_eq!(s.rows, 8);
        assert_eq!(s.sha256.len(), 64);
    }
}

#[test]
fn an_unverified_address_is_not_carried() {
    for m in migrated() {
        assert_eq!(m.users["Ruth O'Neill"].email, None, "{}", m.ctx);
        assert_eq!(m.users["Ruth O'Neill"].email_verified_at, None, "{}", m.ctx);
        let f = &m.findings[&key(2)];
        assert_eq!(
            (f.rule.as_str(), f.decision.as_str()),
            ("R-EMAIL", "not_carried")
        );
        assert!(f.reason.contains("never verified"), "{}", f.reason);
    }
}

#[test]
fn a_row_the_key_cannot_decrypt_is_quarantined_with_its_ciphertext() {
    for m in migrated() {
        assert_eq!(m.users["Matthew Tanaka"].email, None, "{}", m.ctx);
        for k in [key(3), key(8)] {
            let f = &m.findings[&k];
            assert_eq!(f.decision, "quarantined", "{}: {k}", m.ctx);
            assert!(f.reason.contains("does not decrypt"), "{}", f.reason);
        }
        // original_json keeps the row as v1 stored it: the token, not the address.
        let orig: serde_json::Value =
            serde_json::from_str(&m.findings[&key(3)].original_json).unwrap();
        let token = orig["email_encrypted"].as_str().unwrap();
        assert!(token.starts_with("gAAAAA"), "{token}");
        assert_eq!(orig["user_id"], "Matthew Tanaka");
    }
}

#[test]
fn a_row_that_is_not_an_address_is_quarantined() {
    for m in migrated() {
        assert_eq!(m.users["Ayşe Ali"].email, None, "{}", m.ctx);
        let f = &m.findings[&key(4)];
        assert_eq!(f.decision, "quarantined", "{}", m.ctx);
        assert!(f.reason.contains("not an e-mail address"), "{}", f.reason);
        assert!(!f.reason.contains("ayse at example"), "{}", f.reason);
    }
}

#[test]
fn a_shared_address_goes_to_the_member_who_verified_it_first() {
    for m in migrated() {
        // Abigail Mensah verified it on 2025-08-07, Amélie Afolabi a day later.
        let first = &m.users["Abigail Mensah"];
        assert_eq!(
            first.email.as_deref(),
            Some("family.afolabi@example.org"),
            "{}",
            m.ctx
        );
        assert_eq!(first.email_verified_at, Some(at("2025-08-07 09:00:00")));
        assert_eq!(m.users["Amélie Afolabi"].email, None, "{}", m.ctx);
        assert!(
            !m.findings.contains_key(&key(6)),
            "{}: the first is written",
            m.ctx
        );
        let f = &m.findings[&key(5)];
        assert_eq!(f.decision, "not_carried", "{}", m.ctx);
        assert!(f.reason.contains("verified it first"), "{}", f.reason);
        assert!(f.reason.contains("f•••@example.org"), "{}", f.reason);
    }
}

#[test]
fn the_row_of_a_member_who_is_not_carried_follows_its_member() {
    for m in migrated() {
        assert!(!m.users.contains_key("Test User"), "{}", m.ctx);
        let f = &m.findings[&key(7)];
        assert_eq!(f.decision, "quarantined", "{}", m.ctx);
        assert!(f.reason.contains("follows its member"), "{}", f.reason);
        // Nobody else got the test account's address.
        assert!(m
            .users
            .values()
            .all(|u| u.email.as_deref() != Some("tester@example.org")));
    }
}

#[test]
fn without_an_email_db_nothing_changes() {
    for target in TestTarget::all() {
        let report = run(&options("g3-s", target.url(), Policy::Repair));
        assert!(!report.tables.contains_key("user_email"));
        assert!(report.source.email_db.is_none());
        let mut db = target.open();
        db.read_table::<User, thywill_v2::Error, _>(|u| {
            assert_eq!((u.email.as_deref(), u.email_verified_at), (None, None));
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn a_missing_email_db_or_one_without_user_email_is_unusable_input_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = TestTarget::sqlite();
    let mut opts = options("g3-s", target.url(), Policy::Repair);
    opts.common.email_db = Some(dir.path().join("absent-email.db"));
    opts.common.email_key = EmailKey::new(TEST_KEY);
    let e = thywill_pipeline::migrate(&opts).expect_err("missing");
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.to_string().contains("absent-email.db"), "{e}");
    // The main v1 database has no user_email table.
    opts.common.email_db = Some(fixture("g3-s").join("v1.db"));
    let e = thywill_pipeline::migrate(&opts).expect_err("no table");
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.to_string().contains("user_email"), "{e}");
}
