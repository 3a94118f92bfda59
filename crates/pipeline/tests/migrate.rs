//! The whole migration on every committed fixture × both backends × both policies: the law in the
//! report equals the generator's truth and the v2 database agrees; every quarantined row is in
//! `migration_findings` with its original row; legitimate rows arrive with their content;
//! migrating twice is a no-op; a dry run leaves nothing.

mod support;

use std::collections::{HashMap, HashSet};

use support::{fingerprint, fixture, options, run, TestTarget, FIXTURES};
use thywill_fixturegen::truth::Decision as TruthDecision;
use thywill_pipeline::{migrate, PipelineError, Policy, QuarantineLimits};
use thywill_v1::{MarkRow, PrayerRow, V1Database};

fn truth(name: &str) -> thywill_fixturegen::truth::Truth {
    thywill_fixturegen::read_truth(&fixture(name).join("truth.json")).unwrap()
}

fn decision_of(f: &thywill_fixturegen::truth::Finding, policy: Policy) -> Option<TruthDecision> {
    match policy {
        Policy::Repair => f.repair,
        Policy::Strict => f.strict,
    }
}

/// Number of v2 members written inactive (a v1 `deactivated` grant).
fn inactive_users(db: &mut thywill_v2::V2Db) -> u64 {
    let mut n = 0;
    db.read_table::<thywill_v2::rows::User, thywill_v2::Error, _>(|u| {
        n += u64::from(!u.is_active);
        Ok(())
    })
    .unwrap();
    n
}

fn check_fixture(name: &str, target: &TestTarget, policy: Policy) {
    let truth = truth(name);
    let report = run(&options(name, target.url(), policy));
    let ctx = format!("{name} {policy} {}", target.url());
    assert!(report.ok, "{ctx}: report not ok");
    assert_eq!(report.outcome, "migrated", "{ctx}");

    // The law in the report is the truth's law, table by table.
    let law = &truth.law[policy.as_str()];
    for (table, want) in law {
        let got = report
            .tables
            .get(table)
            .unwrap_or_else(|| panic!("{ctx}: no {table} in report"));
        assert!(got.balances(), "{ctx}: {table} does not balance: {got:?}");
        assert_eq!(
            (
                got.read,
                got.written,
                got.repaired,
                got.merged,
                got.deduplicated,
                got.quarantined,
                got.not_carried
            ),
            (
                want.read,
                want.written,
                want.repaired,
                want.merged,
                want.deduplicated,
                want.quarantined,
                want.not_carried
            ),
            "{ctx}: law of {table}"
        );
    }

    // The v2 database agrees with the law.
    let mut db = target.open();
    let counts: HashMap<&str, i64> = db.table_counts().unwrap().into_iter().collect();
    for (v1, v2) in [
        ("user", "users"),
        ("prayer", "prayers"),
        ("prayermark", "prayer_marks"),
        ("user_roles", "user_roles"),
        ("invitetoken", "invites"),
        ("session", "sessions"),
    ] {
        // A `deactivated` grant is written into its member's row, not as a grant row, and the
        // member named `admin` gets a grant no v1 row holds.
        let (folded, implicit) = if v1 == "user_roles" {
            let implicit = truth
                .expected
                .iter()
                .filter(|f| f.table == "user" && f.rule == "R-ROLE")
                .filter(|f| decision_of(f, policy) == Some(TruthDecision::Repaired))
                .count() as u64;
            (inactive_users(&mut db), implicit)
        } else {
            (0, 0)
        };
        assert_eq!(
            counts[v2] as u64 + folded,
            law.get(v1).map_or(0, |c| c.written) + implicit,
            "{ctx}: rows in {v2}"
        );
    }

    // Every finding of the truth is recorded, with its original row.
    let run_id = report.run_id.clone().unwrap();
    let findings = db.findings(&run_id).unwrap();
    let recorded: HashSet<(String, String, String, String)> = findings
        .iter()
        .map(|f| {
            (
                f.v1_table.clone(),
                f.v1_key.clone(),
                f.rule.clone(),
                f.decision.clone(),
            )
        })
        .collect();
    let mut expected = 0;
    for f in &truth.expected {
        let Some(d) = decision_of(f, policy) else {
            continue;
        };
        expected += 1;
        let d = serde_json::to_value(d)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            recorded.contains(&(f.table.clone(), f.key.clone(), f.rule.clone(), d.clone())),
            "{ctx}: missing finding {} {} {} {d}",
            f.table,
            f.key,
            f.rule
        );
    }
    assert_eq!(findings.len(), expected, "{ctx}: findings recorded");
    for f in &findings {
        let original: serde_json::Value = serde_json::from_str(&f.original_json).unwrap();
        assert!(
            original.as_object().is_some_and(|o| !o.is_empty()),
            "{ctx}: empty original row for {}",
            f.v1_key
        );
    }

    // Legitimate prayers and marks arrive with their content.
    let skipped: HashSet<(String, i64)> = truth
        .expected
        .iter()
        .filter(|f| decision_of(f, policy).is_some_and(|d| d != TruthDecision::Repaired))
        .filter_map(|f| Some((f.table.clone(), f.rowid?)))
        .collect();
    let touched: HashSet<(String, i64)> = truth
        .expected
        .iter()
        .filter(|f| decision_of(f, policy).is_some())
        .filter_map(|f| Some((f.table.clone(), f.rowid?)))
        .collect();
    let prayers: HashMap<String, (String, chrono::NaiveDateTime)> = {
        let mut m = HashMap::new();
        db.read_table::<thywill_v2::rows::Prayer, thywill_v2::Error, _>(|p| {
            m.insert(p.id, (p.text, p.created_at));
            Ok(())
        })
        .unwrap();
        m
    };
    let marks: HashSet<String> = {
        let mut s = HashSet::new();
        db.read_table::<thywill_v2::rows::PrayerMark, thywill_v2::Error, _>(|m| {
            s.insert(m.id);
            Ok(())
        })
        .unwrap();
        s
    };
    let v1 = V1Database::open(fixture(name).join("v1.db")).unwrap();
    let mut checked = 0;
    for p in v1.read_all::<PrayerRow>().unwrap() {
        if skipped.contains(&("prayer".to_string(), p.rowid)) {
            continue;
        }
        let id = p.id.as_str().unwrap().to_ascii_lowercase();
        let (text, created_at) = prayers
            .get(&id)
            .unwrap_or_else(|| panic!("{ctx}: legitimate prayer {id} missing"));
        if !touched.contains(&("prayer".to_string(), p.rowid)) {
            assert_eq!(
                Some(text.as_str()),
                p.text.as_str(),
                "{ctx}: text of prayer {id}"
            );
            assert_eq!(
                thywill_detect::time::parse_value(&p.created_at).map(|t| t.at),
                Some(*created_at),
                "{ctx}: created_at of prayer {id}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "{ctx}: only {checked} untouched prayers compared"
    );
    for m in v1.read_all::<MarkRow>().unwrap() {
        if skipped.contains(&("prayermark".to_string(), m.rowid)) {
            continue;
        }
        if let Some(id) =
            m.id.as_str()
                .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            assert!(
                marks.contains(&id.to_ascii_lowercase()),
                "{ctx}: legitimate mark {id} missing"
            );
        }
    }
}

#[test]
fn every_fixture_and_policy_on_sqlite() {
    for name in FIXTURES {
        for policy in [Policy::Repair, Policy::Strict] {
            check_fixture(name, &TestTarget::sqlite(), policy);
        }
    }
}

#[test]
fn every_fixture_and_policy_on_postgresql() {
    for name in FIXTURES {
        for policy in [Policy::Repair, Policy::Strict] {
            let Some(target) = TestTarget::pg() else {
                return;
            };
            check_fixture(name, &target, policy);
        }
    }
}

#[test]
fn migrating_twice_is_a_no_op_on_both_backends() {
    for target in TestTarget::all() {
        let opts = options("g1-s", target.url(), Policy::Repair);
        let first = run(&opts);
        let before = fingerprint(&mut target.open());
        let runs_before = target.open().runs().unwrap().len();
        let second = run(&opts);
        assert_eq!(second.outcome, "already_migrated", "{}", target.url());
        assert_eq!(second.run_id, first.run_id);
        assert_eq!(fingerprint(&mut target.open()), before, "{}", target.url());
        assert_eq!(
            target.open().runs().unwrap().len(),
            runs_before,
            "a no-op run records nothing"
        );
    }
}

#[test]
fn a_dry_run_leaves_nothing_behind() {
    // SQLite: the file is never created.
    let sqlite = TestTarget::sqlite();
    let mut opts = options("g2-s", sqlite.url(), Policy::Repair);
    opts.dry_run = true;
    let report = run(&opts);
    assert_eq!(report.outcome, "dry_run");
    assert!(report.tables["prayermark"].written > 0);
    let TestTarget::Sqlite(dir, _) = &sqlite else {
        unreachable!()
    };
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a dry run created files"
    );

    // PostgreSQL: no schema, no rows.
    if let Some(pg) = TestTarget::pg() {
        let mut opts = options("g2-s", pg.url(), Policy::Repair);
        opts.dry_run = true;
        run(&opts);
        let mut db = pg.open();
        assert_eq!(db.state("x").unwrap(), thywill_v2::TargetState::Empty);
        assert!(
            db.runs().map(|r| r.is_empty()).unwrap_or(true),
            "a dry run left a run row"
        );
    }
}

#[test]
fn quarantine_limits_stop_the_run_before_anything_is_written() {
    // g1-s quarantines 6 of its 310 prayers (1.94%) and 5 of its 124 members (4.03%).
    let over = |target: &TestTarget, limits: QuarantineLimits| {
        let mut opts = options("g1-s", target.url(), Policy::Repair);
        opts.quarantine_limits = limits;
        match migrate(&opts) {
            Err(e @ PipelineError::QuarantineOverLimit { .. }) => e,
            other => panic!(
                "{}: expected the limit to trip, got {other:?}",
                target.url()
            ),
        }
    };
    for target in TestTarget::all() {
        let e = over(
            &target,
            QuarantineLimits {
                max_rows: Some(5),
                max_percent: None,
            },
        );
        let msg = e.to_string();
        assert!(
            msg.contains("over --max-quarantined 5: prayer 6 of 310 (1.94%)"),
            "{msg}"
        );
        assert!(
            !msg.contains("user 5"),
            "a count equal to the limit passes: {msg}"
        );
        assert_eq!(e.exit_code(), 1);
        let report = e.report().expect("the refused run's report");
        assert!(!report.ok);
        assert_eq!(report.outcome, "failed");
        assert!(report.run_id.is_none());
        assert_eq!(report.feasibility.notes[0], msg);
        let e = over(
            &target,
            QuarantineLimits {
                max_rows: None,
                max_percent: Some(4.0),
            },
        );
        assert!(e.to_string().contains("user 5 of 124 (4.03%)"), "{e}");
        match &target {
            TestTarget::Sqlite(dir, _) => assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "a refused run created files"
            ),
            TestTarget::Pg(_) => {
                let mut db = target.open();
                assert_eq!(db.state("x").unwrap(), thywill_v2::TargetState::Empty);
                assert!(db.runs().map(|r| r.is_empty()).unwrap_or(true));
            }
        }
    }
    // A dry run honours them too; limits the counts stay within let the run go on.
    let target = TestTarget::sqlite();
    let mut opts = options("g1-s", target.url(), Policy::Repair);
    opts.dry_run = true;
    opts.quarantine_limits.max_rows = Some(0);
    assert!(matches!(
        migrate(&opts),
        Err(PipelineError::QuarantineOverLimit { .. })
    ));
    opts.quarantine_limits = QuarantineLimits {
        max_rows: Some(14),
        max_percent: Some(4.5),
    };
    assert_eq!(run(&opts).outcome, "dry_run");
}

#[test]
fn a_wal_mode_source_stopped_cleanly_migrates() {
    // v1 in WAL mode, stopped for maintenance: its log was checkpointed away. Opening it (even
    // read-only) creates an empty `-wal`, which is no change to the source.
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.db");
    std::fs::copy(fixture("g1-s").join("v1.db"), &v1).unwrap();
    let conn = rusqlite::Connection::open(&v1).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    assert!(!thywill_v1::wal_path(&v1).exists());
    let target = TestTarget::sqlite();
    let mut opts = options("g1-s", target.url(), Policy::Repair);
    opts.common.v1_db = v1;
    assert_eq!(run(&opts).outcome, "migrated");
}
