//! The validator against the real migration: every committed fixture × both backends × both
//! policies is migrated with `thywill_pipeline::migrate` (archives too where the fixture has a
//! tree) and must then pass every check.

use std::path::{Path, PathBuf};

use thywill_pipeline::{migrate, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode};
use thywill_v2::testing::TempPgDb;
use thywill_validator::{validate, Options, Policy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn clock() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

fn migrate_then_validate(name: &str, url: &str, policy: Policy) {
    let out = tempfile::tempdir().unwrap();
    let v1_tree = fixture(name).join("text_archives");
    let archives_v1 = v1_tree.exists().then_some(v1_tree);
    let archives_v2 = Some(out.path().join("text_archives_v2"));
    let report = migrate(&MigrateOptions {
        common: CommonOptions {
            v1_db: fixture(name).join("v1.db"),
            archives_v1: archives_v1.clone(),
            policy: match policy {
                Policy::Repair => thywill_pipeline::Policy::Repair,
                Policy::Strict => thywill_pipeline::Policy::Strict,
            },
            as_of: Some(clock()),
            test_account_names: Vec::new(),
            clock: Default::default(),
            invite_hours: None,
            progress: ProgressMode::Silent,
            ..Default::default()
        },
        v2_url: url.to_string(),
        archives_v2: archives_v2.clone(),
        dry_run: false,
        replace: false,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{name} {policy:?}: migrate: {e}"));
    assert!(report.ok, "{name} {policy:?}: migration report not ok");

    let mut opts = Options::new(fixture(name).join("v1.db"), url);
    opts.archives_v1 = archives_v1;
    opts.archives_v2 = archives_v2;
    opts.policy = policy;
    opts.now = Some(clock());
    let v = validate(&opts).unwrap_or_else(|e| panic!("{name} {policy:?}: validate: {e}"));
    let failed: Vec<String> = v
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            format!(
                "{}: {} {:?}",
                c.name,
                c.summary,
                c.details.iter().take(5).collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(
        v.ok && failed.is_empty(),
        "{name} {policy:?} on {url}: {failed:#?}"
    );
    assert!(
        v.passed >= 6,
        "{name} {policy:?}: only {} checks ran",
        v.passed
    );
}

const FIXTURES: [&str; 4] = ["g0-s", "g1-s", "g2-s", "g3-s"];

#[test]
fn every_migrated_fixture_validates_on_sqlite() {
    for name in FIXTURES {
        for policy in [Policy::Repair, Policy::Strict] {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("v2.db").display());
            migrate_then_validate(name, &url, policy);
        }
    }
}

#[test]
fn every_migrated_fixture_validates_on_postgresql() {
    for name in FIXTURES {
        for policy in [Policy::Repair, Policy::Strict] {
            let Some(db) = TempPgDb::create() else { return };
            migrate_then_validate(name, &db.url, policy);
        }
    }
}
