//! The quarantine guard rails (`--max-quarantined N`, `--max-quarantined-percent P`) through the
//! real `thywill-migrate` on fixtures/g1-s, which quarantines 6 of 310 prayers (1.94%), 14 of 3028
//! marks (0.46%) and 5 of 124 members (4.03%): over a limit the run exits 1 naming each table and
//! writes nothing (no v2 database or tables, no run row, no archive folder) but its report; within
//! the limits it migrates; a bad value is a usage error. The cut-over's pass-through is tested
//! with its rehearsal in `ops_cutover.rs`.

mod ops_common;

use std::path::Path;
use std::process::Output;

use ops_common::*;

const MIGRATE: &str = env!("CARGO_BIN_EXE_thywill-migrate");

/// Runs `thywill-migrate` on g1-s (database and archive tree) into `url`, in `dir`, with `extra`.
fn migrate_g1_s(dir: &Path, url: &str, extra: &[&str]) -> Output {
    let v1 = root().join("fixtures/g1-s/v1.db").display().to_string();
    let tree = root()
        .join("fixtures/g1-s/text_archives")
        .display()
        .to_string();
    let mut args = vec!["--v1-db", &v1, "--archives-v1", &tree, "--v2-db", url];
    args.extend_from_slice(extra);
    command(MIGRATE, &args, &[])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Asserts a refused run: exit 1, the message naming every table in `named` and none in
/// `not_named`, no archive folder (nor its staging folder) in `dir`, and the JSON report written
/// there as `report.json`, failed.
fn refused(dir: &Path, out: &Output, named: &[&str], not_named: &[&str]) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("error: refusing to migrate: quarantined rows over --max-quarantined"),
        "{all}"
    );
    for table in named {
        assert!(all.contains(table), "{table:?} not named:\n{all}");
    }
    for table in not_named {
        assert!(!all.contains(table), "{table:?} named:\n{all}");
    }
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("archives_v2"))
        .collect();
    assert!(left.is_empty(), "archive folders left: {left:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["outcome"], "failed");
    assert!(report.get("run_id").is_none(), "{report}");
}

#[test]
fn a_limit_below_the_quarantined_counts_stops_the_run_before_any_write_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let url = format!("sqlite://{}", d.join("v2.db").display());
    let report = [
        "--archives-v2",
        "archives_v2",
        "--report-json",
        "report.json",
    ];
    for (limits, named, not_named) in [
        (
            &["--max-quarantined", "5"][..],
            &["--max-quarantined 5: prayer 6 of 310 (1.94%), prayermark 14 of 3028 (0.46%)"][..],
            &["user 5 of"][..],
        ),
        (
            &["--max-quarantined-percent", "4"][..],
            &["--max-quarantined-percent 4: user 5 of 124 (4.03%), user_roles 2 of 47 (4.26%)"][..],
            &["prayer 6 of"][..],
        ),
        (
            &["--max-quarantined-percent", "1", "--dry-run"][..],
            &["prayer 6 of 310 (1.94%)", "user 5 of 124 (4.03%)"][..],
            &["prayermark 14 of"][..],
        ),
    ] {
        let mut args = report.to_vec();
        args.extend_from_slice(limits);
        let out = migrate_g1_s(d, &url, &args);
        refused(d, &out, named, not_named);
        assert!(
            !d.join("v2.db").exists(),
            "{limits:?}: the v2 file was created"
        );
    }
}

#[test]
fn a_limit_below_the_quarantined_counts_stops_the_run_before_any_write_on_postgresql() {
    let Some(pg) = thywill_v2::testing::TempPgDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = migrate_g1_s(
        d,
        &pg.url,
        &[
            "--max-quarantined",
            "13",
            "--archives-v2",
            "archives_v2",
            "--report-json",
            "report.json",
        ],
    );
    refused(
        d,
        &out,
        &["prayermark 14 of 3028 (0.46%)"],
        &["prayer 6 of"],
    );
    let tables = psql(
        &pg.url,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    );
    assert_eq!(
        tables.trim(),
        "0",
        "no schema, so no migration_runs row either"
    );
}

#[test]
fn limits_the_counts_stay_within_let_the_run_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let url = format!("sqlite://{}", d.join("v2.db").display());
    // Equal to the largest count (14 marks) and above the largest share (user_roles 4.44%).
    let out = migrate_g1_s(
        d,
        &url,
        &[
            "--max-quarantined",
            "14",
            "--max-quarantined-percent",
            "4.5",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(d.join("v2.db").exists());
}

#[test]
fn a_bad_limit_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let url = format!("sqlite://{}", d.join("v2.db").display());
    for bad in [
        "--max-quarantined=-1",
        "--max-quarantined=1.5",
        "--max-quarantined=many",
        "--max-quarantined-percent=-0.5",
        "--max-quarantined-percent=100.5",
        "--max-quarantined-percent=NaN",
        "--max-quarantined-percent=five",
    ] {
        let out = migrate_g1_s(d, &url, &[bad]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {all}");
        let flag = bad.split('=').next().unwrap();
        assert!(
            all.contains(&format!("'{flag} <")),
            "{bad}: the flag is named: {all}"
        );
        assert!(!d.join("v2.db").exists());
    }
    let out = run(
        env!("CARGO_BIN_EXE_thywill-cutover"),
        &[
            "--rehearsal",
            "--v1-db",
            "v1.db",
            "--max-quarantined-percent",
            "101",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
