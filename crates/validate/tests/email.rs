//! The validator's own reading of v1's e-mail database: a copy of fixtures/g3-s with an
//! `email.db` of every `R-EMAIL` case, migrated by the real pipeline on SQLite and PostgreSQL,
//! passes; the same v2 with an address changed, or one removed, fails (and names no address);
//! so does validating without the e-mail database a run that carried addresses.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use thywill_fixturegen::email::{standard_rows, write_email_db, TEST_KEY};
use thywill_pipeline::{migrate, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode};
use thywill_v1::EmailKey;
use thywill_v2::testing::TempPgDb;
use thywill_validator::email::EmailSource;
use thywill_validator::{validate, Options, Report};

fn clock() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

fn exec(url: &str, sql: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    } else {
        diesel::PgConnection::establish(url)
            .unwrap()
            .batch_execute(sql)
            .unwrap();
    }
}

fn failed(r: &Report) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.details.join(" | ")))
        .collect()
}

/// Migrates the copy into `url` and returns the validator's options for it.
fn migrated(dir: &Path, url: &str) -> Options {
    let v1 = dir.join("v1.db");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g3-s/v1.db"),
        &v1,
    )
    .unwrap();
    let email = dir.join("email.db");
    write_email_db(&email, TEST_KEY, &standard_rows()).unwrap();
    let report = migrate(&MigrateOptions {
        common: CommonOptions {
            v1_db: v1.clone(),
            as_of: Some(clock()),
            progress: ProgressMode::Silent,
            email_db: Some(email.clone()),
            email_key: EmailKey::new(TEST_KEY),
            ..Default::default()
        },
        v2_url: url.to_string(),
        ..Default::default()
    })
    .unwrap();
    assert!(report.ok);
    let mut opts = Options::new(&v1, url);
    opts.now = Some(clock());
    opts.email = Some(EmailSource {
        db: email,
        key: EmailKey::new(TEST_KEY).unwrap(),
    });
    opts
}

fn each_backend(f: impl Fn(&Path, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    f(dir.path(), &url);
    if let Some(pg) = TempPgDb::create() {
        let dir = tempfile::tempdir().unwrap();
        f(dir.path(), &pg.url);
    }
}

#[test]
fn a_migration_with_addresses_passes_and_the_law_includes_user_email() {
    each_backend(|dir, url| {
        let opts = migrated(dir, url);
        let r = validate(&opts).unwrap();
        assert!(r.ok, "{url}: {:?}", failed(&r));
        let law = &r.check("law").unwrap().data;
        let t = law
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == "user_email")
            .expect("user_email in the law");
        assert_eq!(
            (
                &t["read"],
                &t["written"],
                &t["quarantined"],
                &t["not_carried"]
            ),
            (&8.into(), &2.into(), &4.into(), &2.into()),
            "{t}"
        );
    });
}

#[test]
fn a_changed_address_fails_without_printing_it() {
    each_backend(|dir, url| {
        let opts = migrated(dir, url);
        exec(
            url,
            "UPDATE users SET email = 'someone.else@example.net' WHERE email = 'abigail.afolabi@example.org'",
        );
        let r = validate(&opts).unwrap();
        assert!(!r.ok, "{url}: a changed address passed");
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("fidelity"), "{text}");
        assert!(r.check("fidelity").is_some_and(|c| !c.passed));
        for s in ["abigail.afolabi@example.org", "someone.else@example.net"] {
            assert!(!text.contains(s), "{url}: {s} printed in the report");
        }
    });
}

#[test]
fn a_removed_address_fails_the_law_and_fidelity() {
    each_backend(|dir, url| {
        let opts = migrated(dir, url);
        exec(
            url,
            "UPDATE users SET email = NULL, email_verified_at = NULL WHERE email = 'family.afolabi@example.org'",
        );
        let r = validate(&opts).unwrap();
        assert!(
            r.check("law").is_some_and(|c| !c.passed),
            "{url}: {:?}",
            failed(&r)
        );
        assert!(r.check("fidelity").is_some_and(|c| !c.passed), "{url}");
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("family.afolabi@"), "{url}: printed");
    });
}

#[test]
fn a_missing_finding_fails_the_law() {
    each_backend(|dir, url| {
        let opts = migrated(dir, url);
        // The shared address's loser: its not_carried finding removed.
        exec(
            url,
            &format!(
                "DELETE FROM migration_findings WHERE v1_table = 'user_email' AND v1_key = '{:032x}'",
                5
            ),
        );
        let r = validate(&opts).unwrap();
        let law = r.check("law").unwrap();
        assert!(!law.passed, "{url}");
        assert!(
            law.details
                .iter()
                .any(|d| d.contains("no finding keeping it out")),
            "{:?}",
            law.details
        );
    });
}

#[test]
fn validating_without_the_email_db_a_run_that_carried_addresses_fails() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let mut opts = migrated(dir.path(), &url);
    opts.email = None;
    let r = validate(&opts).unwrap();
    assert!(r.check("fidelity").is_some_and(|c| !c.passed));
}
