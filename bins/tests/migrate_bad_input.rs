//! The bad-input list of `spec/quality.md`, through the real `thywill-migrate` and
//! `thywill-analyze` binaries: each case gets its exit code and a message naming the culprit, never
//! a panic, and leaves no v2 database or archive folder behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;

mod ops_common;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn migrate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thywill-migrate"))
        .current_dir(dir)
        .args(args)
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .output()
        .unwrap()
}

/// Asserts the exit code, that stderr names `culprit`, that nothing panicked, and that no v2
/// output was left in `dir` (beyond the files the test put there).
fn expect(out: &Output, code: i32, culprit: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code; stderr: {stderr}"
    );
    assert!(
        stderr.contains(culprit),
        "{what}: message does not name {culprit:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panicked: {stderr}");
}

fn no_output(dir: &Path, what: &str) {
    for name in ["thywill_v2.db", "v2.db", "text_archives_v2"] {
        assert!(!dir.join(name).exists(), "{what}: left {name} behind");
    }
}

#[test]
fn unusable_v1_files_exit_3_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("folder.db")).unwrap();
    std::fs::write(d.join("empty.db"), b"").unwrap();
    std::fs::write(d.join("notes.txt"), "not a database\n").unwrap();
    let full = std::fs::read(fixture("g1-s").join("v1.db")).unwrap();
    std::fs::write(d.join("truncated.db"), &full[..full.len() / 3]).unwrap();
    ops_common::damaged_copy(&fixture("g1-s").join("v1.db"), &d.join("damaged.db"));
    Connection::open(d.join("recipes.db"))
        .unwrap()
        .execute_batch("CREATE TABLE recipe (id INTEGER PRIMARY KEY, title TEXT)")
        .unwrap();
    let nocol = d.join("nocol.db");
    std::fs::write(&nocol, &full).unwrap();
    Connection::open(&nocol)
        .unwrap()
        .execute_batch("ALTER TABLE prayer DROP COLUMN text")
        .unwrap();

    // Each message names the file as given (`v1 database PATH: …`) and what is wrong with it, so
    // a case cannot pass on the file name alone.
    for (file, what) in [
        ("missing.db", "no such file"),
        ("folder.db", "is a folder"),
        ("empty.db", "the file is empty"),
        ("notes.txt", "not a SQLite database"),
        ("truncated.db", "truncated: the header promises"),
        ("damaged.db", "damaged pages"),
        (
            "recipes.db",
            "unrecognisable schema: no `user` and `prayer` tables (found: recipe)",
        ),
        ("nocol.db", "table prayer has no column text"),
    ] {
        let out = migrate(d, &["--v1-db", file, "--archives-v2", "text_archives_v2"]);
        expect(&out, 3, &format!("v1 database {file}: {what}"), file);
        no_output(d, file);
    }
}

#[test]
fn a_v1_file_locked_by_a_writer_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.db");
    std::fs::copy(fixture("g0-s").join("v1.db"), &v1).unwrap();
    let writer = Connection::open(&v1).unwrap();
    writer
        .execute_batch("PRAGMA journal_mode=DELETE; BEGIN EXCLUSIVE; DELETE FROM session;")
        .unwrap();
    let out = migrate(dir.path(), &["--v1-db", "v1.db"]);
    expect(
        &out,
        3,
        "v1 database v1.db: locked by another process",
        "locked v1",
    );
    writer.execute_batch("ROLLBACK").unwrap();
    no_output(dir.path(), "locked v1");
}

#[test]
fn bad_v2_targets_exit_2_or_3_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("g0-s").join("v1.db");
    let v1 = v1.to_str().unwrap();
    let out = migrate(dir.path(), &["--v1-db", v1, "--v2-db", "mysql://x"]);
    expect(&out, 2, "mysql://x", "malformed URL");
    // A URL only libpq can tell is malformed is usage too (decision 8), not "unreachable".
    let out = migrate(
        dir.path(),
        &["--v1-db", v1, "--v2-db", "postgresql://u:s3cret-pw@[::1"],
    );
    expect(&out, 2, "IPv6", "malformed PostgreSQL URL");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret-pw"));
    let out = migrate(
        dir.path(),
        &[
            "--v1-db",
            v1,
            "--v2-db",
            "postgresql://thywill:s3cret-pw@127.0.0.1:1/thywill_v2",
        ],
    );
    expect(&out, 3, "127.0.0.1", "unreachable PostgreSQL");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("s3cret-pw"),
        "password printed"
    );
    if let Some(url) = thywill_v2::testing::pg_admin_url() {
        let bad = thywill_v2::testing::with_database(&url, "thywill_no_such_db")
            .replacen("://", "://no_such_role:s3cret-pw@", 1)
            .replacen("@postgres@", "@", 1)
            .replacen("@root@", "@", 1);
        let out = migrate(dir.path(), &["--v1-db", v1, "--v2-db", &bad]);
        expect(&out, 3, "thywill_no_such_db", "refused credentials");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("s3cret-pw"),
            "password printed"
        );
    }
    no_output(dir.path(), "bad targets");
}

#[test]
fn a_target_holding_another_source_is_refused_with_4() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = migrate(
        d,
        &[
            "--v1-db",
            fixture("g0-s").join("v1.db").to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = std::fs::read(d.join("thywill_v2.db")).unwrap();
    let out = migrate(
        d,
        &["--v1-db", fixture("g1-s").join("v1.db").to_str().unwrap()],
    );
    expect(&out, 4, "--replace", "foreign target");
    assert_eq!(
        std::fs::read(d.join("thywill_v2.db")).unwrap(),
        before,
        "the refused run changed the target"
    );
}

#[test]
fn an_unreadable_archive_folder_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("g1-s").join("v1.db");
    let out = migrate(
        dir.path(),
        &[
            "--v1-db",
            v1.to_str().unwrap(),
            "--archives-v1",
            "no_such_tree",
            "--archives-v2",
            "text_archives_v2",
        ],
    );
    expect(&out, 3, "no_such_tree", "missing archive folder");
    no_output(dir.path(), "missing archive folder");
}

#[test]
fn usage_errors_exit_2_and_help_has_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = migrate(dir.path(), &["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let out = migrate(dir.path(), &["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Example"));
    let analyze = Command::new(env!("CARGO_BIN_EXE_thywill-analyze"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&analyze.stdout).contains("Example"));
    // A zone that is not an IANA name, or a switch that is not a time, is named before v1 is read.
    std::fs::copy(fixture("g3-s").join("v1.db"), dir.path().join("v1.db")).unwrap();
    for (flags, culprit) in [
        (["--v1-timezone", "Mars/Olympus"], "Mars/Olympus"),
        (["--v1-local-since", "last June"], "--v1-local-since"),
    ] {
        let mut args = vec!["--v1-db", "v1.db", "--v2-db", "sqlite://v2.db"];
        args.extend(flags);
        expect(&migrate(dir.path(), &args), 2, culprit, flags[0]);
        no_output(dir.path(), flags[0]);
    }
}

#[test]
fn analyze_reports_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.db");
    std::fs::copy(fixture("g3-s").join("v1.db"), &v1).unwrap();
    let before = std::fs::read(&v1).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_thywill-analyze"))
        .current_dir(dir.path())
        .args([
            "--v1-db",
            "v1.db",
            "--report-json",
            "a.json",
            "--report-md",
            "a.md",
            "--as-of",
            "2026-01-01 00:00:00",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&v1).unwrap(), before, "analyze changed v1");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("a.json")).unwrap()).unwrap();
    assert_eq!(report["report_version"], 1);
    assert_eq!(report["source"]["generation"], "G3");
    assert_eq!(report["source"]["clock"]["zone"], "UTC");
    assert_eq!(
        report["source"]["clock"]["converted"],
        serde_json::json!([])
    );
    assert!(
        report["findings_by_rule"]["R-USER-UNRETRIEVABLE"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(std::fs::read_to_string(dir.path().join("a.md"))
        .unwrap()
        .contains("## Findings by rule"));
    assert!(!dir.path().join("thywill_v2.db").exists());
}

/// A v2 database of another application, with a `users` table of its own and no `prayers`, is
/// refused for safety (exit 4) naming both tables, even with `--replace`, and left untouched.
#[test]
fn another_applications_database_is_refused_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = fixture("g1-s").join("v1.db");
    let v1 = v1.to_str().unwrap();
    let other_app = "CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT); \
                     INSERT INTO users (id, login) VALUES (1, 'someone');";
    let sqlite = d.join("shop.db");
    Connection::open(&sqlite)
        .unwrap()
        .execute_batch(other_app)
        .unwrap();
    let mut urls = vec![format!("sqlite://{}", sqlite.display())];
    let pg = thywill_v2::testing::TempPgDb::create();
    if let Some(db) = &pg {
        let mut c = postgres_exec(&db.url);
        c(other_app);
        urls.push(db.url.clone());
    }
    for url in &urls {
        for extra in [&[][..], &["--replace", "--yes"][..]] {
            let mut args = vec!["--v1-db", v1, "--v2-db", url.as_str()];
            args.extend_from_slice(extra);
            let out = migrate(d, &args);
            expect(&out, 4, "users", &format!("{url} {extra:?}"));
            expect(&out, 4, "prayers", &format!("{url} {extra:?}"));
        }
    }
    let n: i64 = Connection::open(&sqlite)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the other application's database was changed");
}

/// Runs SQL on a PostgreSQL database with `psql`, as an operator would.
fn postgres_exec(url: &str) -> impl FnMut(&str) + '_ {
    move |sql| {
        let out = Command::new("psql")
            .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The refusals that need no v1 read come before it: nothing is created (no v2 database, no
/// archive folder), and each names its culprit with its exit code.
/// `thywill-validate --report-json` (or `--report-html`) into a folder that does not exist: exit
/// 3 naming the flag, before any check runs (no PASS/FAIL line), on a migration that would pass.
#[test]
fn validate_refuses_a_report_into_a_missing_folder_before_checking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = fixture("g1-s").join("v1.db");
    let v1 = v1.to_str().unwrap();
    let out = migrate(d, &["--v1-db", v1, "-q"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for flag in ["--report-json", "--report-html"] {
        let out = Command::new(env!("CARGO_BIN_EXE_thywill-validate"))
            .current_dir(d)
            .args(["--v1-db", v1, flag, "missing/x.json"])
            .env_remove("V1_DB_PATH")
            .env_remove("V2_DB_URL")
            .output()
            .unwrap();
        expect(&out, 3, &format!("{flag} missing/x.json"), flag);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("PASS") && !stdout.contains("FAIL"),
            "{flag}: checks ran first:\n{stdout}"
        );
        assert!(!d.join("missing").exists());
    }
}

#[test]
fn refusals_known_before_reading_v1_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g1 = fixture("g1-s");
    let v1 = g1.join("v1.db");
    let v1 = v1.to_str().unwrap();
    // A report into a folder that does not exist: 3 at once, not 1 after the commit.
    let out = migrate(d, &["--v1-db", v1, "--report-json", "missing/run.json"]);
    expect(&out, 3, "missing", "report into a missing folder");
    no_output(d, "report into a missing folder");
    // Foreign files in --archives-v2: 4, and the file is left as it was, no manifest added.
    std::fs::create_dir(d.join("text_archives_v2")).unwrap();
    std::fs::write(d.join("text_archives_v2/notes.txt"), "mine").unwrap();
    let out = migrate(d, &["--v1-db", v1, "--archives-v2", "text_archives_v2"]);
    expect(
        &out,
        4,
        "notes.txt",
        "foreign files in the v2 archive folder",
    );
    assert!(!d.join("thywill_v2.db").exists());
    assert_eq!(
        std::fs::read_dir(d.join("text_archives_v2"))
            .unwrap()
            .count(),
        1
    );
    std::fs::remove_dir_all(d.join("text_archives_v2")).unwrap();
    // --archives-v2 inside --archives-v1: refused before detection writes anything.
    let tree = d.join("v1_tree");
    copy_dir(&g1.join("text_archives"), &tree);
    let inside = tree.join("v2");
    let out = migrate(
        d,
        &[
            "--v1-db",
            v1,
            "--archives-v1",
            tree.to_str().unwrap(),
            "--archives-v2",
            inside.to_str().unwrap(),
        ],
    );
    expect(&out, 1, "overlap", "v2 archives inside the v1 tree");
    assert!(!inside.exists() && !d.join("thywill_v2.db").exists());
    // Relative folders side by side, as in the README: not an overlap.
    let out = migrate(
        d,
        &[
            "--v1-db",
            v1,
            "--archives-v1",
            "v1_tree",
            "--archives-v2",
            "text_archives_v2",
            "-q",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(d.join("thywill_v2.db")).unwrap();
    // An archive folder that cannot be written says so (not "cannot read archive source").
    let file = d.join("a_file");
    std::fs::write(&file, "x").unwrap();
    let out = migrate(
        d,
        &[
            "--v1-db",
            v1,
            "--archives-v2",
            file.join("v2").to_str().unwrap(),
        ],
    );
    expect(
        &out,
        3,
        "cannot write the target archive folder",
        "unwritable archive folder",
    );
    assert!(!d.join("thywill_v2.db").exists());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Two migrations of the same source started together: one migrates, the other waits for it and
/// reports "already migrated" (never a raw catalog error from both creating the schema).
#[test]
fn two_concurrent_migrations_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("g1-s").join("v1.db");
    let pg = thywill_v2::testing::TempPgDb::create();
    let mut urls = vec![format!("sqlite://{}", dir.path().join("v2.db").display())];
    urls.extend(pg.as_ref().map(|p| p.url.clone()));
    for url in urls {
        let start = || {
            Command::new(env!("CARGO_BIN_EXE_thywill-migrate"))
                .args(["--v1-db", v1.to_str().unwrap(), "--v2-db", &url])
                .current_dir(dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (start(), start());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        for out in &outs {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{url}: {stderr}");
            assert!(!stderr.contains("duplicate key"), "{url}: {stderr}");
        }
        let stdout: String = outs
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .collect();
        assert!(stdout.contains("already"), "{url}: {stdout}");
    }
}

/// `--replace` deletes data: without `--yes` and with no terminal to ask on, it refuses (exit 4)
/// before anything is read or written.
#[test]
fn replace_without_yes_and_no_terminal_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("g1-s").join("v1.db");
    let out = migrate(dir.path(), &["--v1-db", v1.to_str().unwrap(), "--replace"]);
    expect(&out, 4, "--yes", "--replace without --yes");
    assert!(String::from_utf8_lossy(&out.stderr).contains("will delete every application row"));
    no_output(dir.path(), "--replace without --yes");
}

/// On a terminal, `--replace` without `--yes` asks: any answer but `yes` refuses (exit 4,
/// nothing written); `yes` goes ahead. The terminal is a real pseudo-terminal made by
/// util-linux's `script`, fed the answer on its stdin.
#[test]
fn replace_on_a_terminal_asks_and_goes_ahead_only_on_yes() {
    if !ops_common::can_make_a_terminal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v1 = fixture("g1-s").join("v1.db");
    let line = format!(
        "{} --v1-db {} --replace",
        env!("CARGO_BIN_EXE_thywill-migrate"),
        v1.display()
    );
    let answer = |text: &str| ops_common::on_a_terminal(&line, dir.path(), text);
    for refused in ["no\n", "\n", "YES please\n"] {
        let out = answer(refused);
        let all = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "answer {refused:?}:\n{all}");
        assert!(all.contains("Type yes to go ahead"), "it asked:\n{all}");
        assert!(all.contains("not confirmed; nothing was touched"), "{all}");
        no_output(dir.path(), "--replace answered no");
    }
    let out = answer("yes\n");
    let all = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "answer yes:\n{all}");
    assert!(all.contains("migrated"), "{all}");
    assert!(dir.path().join("thywill_v2.db").exists());
}
