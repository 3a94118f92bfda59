//! Test support: fixtures, targets on both backends, and a content fingerprint of v2.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use thywill_pipeline::{
    migrate, CommonOptions, MigrateOptions, NaiveDateTime, Policy, ProgressMode, Report,
};
use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, V2Db};

/// The committed fixtures.
pub const FIXTURES: [&str; 4] = ["g0-s", "g1-s", "g2-s", "g3-s"];

/// `fixtures/<name>` of the repository.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// The fixtures' clock: after every "live" row's creation, before 2099 expiries.
pub fn as_of() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

/// A v2 target that lives as long as the value: a SQLite file in a temp dir or a PostgreSQL
/// database of its own.
pub enum TestTarget {
    /// A SQLite file.
    Sqlite(tempfile::TempDir, String),
    /// A PostgreSQL database.
    Pg(TempPgDb),
}

impl TestTarget {
    /// A fresh SQLite target.
    pub fn sqlite() -> TestTarget {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("v2.db").display());
        TestTarget::Sqlite(dir, url)
    }

    /// A fresh PostgreSQL target, or `None` (skipped, printed) without `THYWILL_TEST_PG_URL`.
    pub fn pg() -> Option<TestTarget> {
        TempPgDb::create().map(TestTarget::Pg)
    }

    /// Both backends that are available.
    pub fn all() -> Vec<TestTarget> {
        let mut v = vec![TestTarget::sqlite()];
        v.extend(TestTarget::pg());
        v
    }

    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            TestTarget::Sqlite(_, u) => u,
            TestTarget::Pg(db) => &db.url,
        }
    }

    /// Open it.
    pub fn open(&self) -> V2Db {
        V2Db::open(&Target::parse(self.url()).unwrap()).unwrap()
    }
}

/// Migration options for a fixture (archives off unless given).
pub fn options(fixture_name: &str, url: &str, policy: Policy) -> MigrateOptions {
    MigrateOptions {
        common: CommonOptions {
            v1_db: fixture(fixture_name).join("v1.db"),
            archives_v1: None,
            policy,
            as_of: Some(as_of()),
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
    }
}

/// Runs a migration that must succeed.
pub fn run(opts: &MigrateOptions) -> Report {
    migrate(opts).unwrap_or_else(|e| panic!("migrating {}: {e}", opts.common.v1_db.display()))
}

/// The content fingerprint of the target's application tables.
pub fn fingerprint(db: &mut V2Db) -> thywill_v2::Fingerprint {
    db.content_fingerprint().unwrap()
}
