//! `thywill-runs` through the real binaries: nothing recorded (no file, no schema) says so and
//! exits 0 without creating anything; after a migration of fixtures/g1-s the run is listed with
//! the report's run id, source sha256 and rows written, as a table and as JSON; on SQLite and,
//! with THYWILL_TEST_PG_URL, on PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use thywill_v2::testing::TempPgDb;

fn fixture() -> PathBuf {
    fixture_db("g1-s")
}

/// The v1 database of fixtures/`name`.
fn fixture_db(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("fixtures")
        .join(name)
        .join("v1.db")
}

fn run(bin: &str, dir: &Path, args: &[&str]) -> (String, String) {
    let out: Output = Command::new(bin)
        .current_dir(dir)
        .args(args)
        .env_remove("V2_DB_URL")
        .env_remove("V1_DB_PATH")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{bin} {args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

fn runs(dir: &Path, url: &str, json: bool) -> String {
    let mut args = vec!["--v2-db", url];
    if json {
        args.push("--json");
    }
    run(env!("CARGO_BIN_EXE_thywill-runs"), dir, &args).0
}

/// Lists an empty target, migrates g1-s into it, lists again and checks the run. `shown` is the
/// target as messages print it.
fn lists_the_migrated_run(dir: &Path, url: &str, shown: &str) {
    assert_eq!(
        runs(dir, url, false),
        format!("no migration runs recorded in {shown}\n")
    );
    assert_eq!(runs(dir, url, true).trim(), "[]");

    let report = dir.join("run.json");
    run(
        env!("CARGO_BIN_EXE_thywill-migrate"),
        dir,
        &[
            "--v1-db",
            fixture().to_str().unwrap(),
            "--v2-db",
            url,
            "--quiet",
            "--report-json",
            report.to_str().unwrap(),
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let run_id = report["run_id"].as_str().unwrap();
    let sha = report["source"]["sha256"].as_str().unwrap();
    let written: u64 = report["tables"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["written"].as_u64().unwrap())
        .sum();

    let table = runs(dir, url, false);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("run_id ") && lines[0].ends_with("rows written"));
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    // run_id, status, started (date, time), finished (date, time), generation, dry run, sha,
    // decisions file (none: `-`), rows.
    assert_eq!(cells.len(), 11, "{table}");
    assert_eq!(cells[0], run_id);
    assert_eq!(cells[1], "succeeded");
    assert_eq!(
        &cells[6..],
        ["G1", "no", &sha[..12], "-", &written.to_string()]
    );
    assert_eq!(lines[1].find("succeeded"), lines[0].find("status"));
    assert_eq!(lines[2], format!("1 run(s) recorded in {shown}"));

    let json: serde_json::Value = serde_json::from_str(&runs(dir, url, true)).unwrap();
    let listed = json.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["run_id"], run_id);
    assert_eq!(listed[0]["source_sha256"], sha);
    assert_eq!(listed[0]["rows_written"], written);
    assert_eq!(listed[0]["dry_run"], false);
    assert!(listed[0]["decisions_sha256"].is_null());
}

#[test]
fn sqlite_lists_nothing_then_the_migrated_run() {
    let dir = tempfile::tempdir().unwrap();
    lists_the_migrated_run(dir.path(), "sqlite://v2.db", "sqlite://v2.db");
}

#[test]
fn a_missing_sqlite_file_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    runs(dir.path(), "sqlite://absent.db", false);
    assert!(!dir.path().join("absent.db").exists());
}

#[test]
fn pg_lists_nothing_then_the_migrated_run() {
    let Some(db) = TempPgDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    lists_the_migrated_run(dir.path(), &db.url, &thywill_v2::redact_url(&db.url));
}

/// `--replace` through the binaries: g0-s migrated, then g1-s with `--replace --yes` into the
/// same target. The second run logs per table what it deletes, and `thywill-runs` shows the first
/// run `replaced` (it used to delete silently and leave it `succeeded`).
#[test]
fn replace_logs_what_it_deletes_and_marks_the_replaced_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let migrate = |name: &str, extra: &[&str]| {
        let report = d.join(format!("{name}.json"));
        let db = fixture_db(name);
        let mut args = vec![
            "--v1-db",
            db.to_str().unwrap(),
            "--v2-db",
            "sqlite://v2.db",
            "--report-json",
            report.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (_, stderr) = run(env!("CARGO_BIN_EXE_thywill-migrate"), d, &args);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        (report["run_id"].as_str().unwrap().to_string(), stderr)
    };
    let (first, _) = migrate("g0-s", &[]);
    let users: i64 = rusqlite::Connection::open(d.join("v2.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(users > 0);
    let (second, stderr) = migrate("g1-s", &["--replace", "--yes"]);
    let line = stderr
        .lines()
        .find(|l| l.contains("--replace: deleting the application rows"))
        .unwrap_or_else(|| panic!("no deletion line:\n{stderr}"));
    assert!(
        line.contains(&format!("users: {users}")) && line.contains("prayers: "),
        "the line counts each table: {line}"
    );
    let table = runs(d, "sqlite://v2.db", false);
    let status = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("run {id} not listed:\n{table}"))
            .to_string()
    };
    assert_eq!(status(&first), "replaced", "{table}");
    assert_eq!(status(&second), "succeeded", "{table}");
}
