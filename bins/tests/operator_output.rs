//! What the operator sees, through the real binaries on fixtures/g1-s: logs without ANSI colour
//! codes unless stderr is a terminal (and never with `NO_COLOR`), the migrate summary naming the
//! target and the run id rollback needs, and `-q` silencing logs while every binary still prints
//! its final summary on stdout.

mod ops_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ops_common::{root, sqlite_v2, standins};

const ESC: &str = "\x1b[";

/// Whether `s` holds an ANSI colour (SGR) sequence `ESC [ digits;… m`; a terminal's progress bar
/// may use other control sequences (clear line), which are not colour.
fn has_colour(s: &str) -> bool {
    s.split(ESC).skip(1).any(|rest| {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_some_and(|i| rest[i..].starts_with('m'))
    })
}

fn g1s(rel: &str) -> String {
    root().join("fixtures/g1-s").join(rel).display().to_string()
}

/// Runs a binary in `dir` with neither the URL variables nor `RUST_LOG` nor `NO_COLOR` inherited
/// (so the flags alone decide), stdout and stderr captured through pipes.
fn run(bin: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .current_dir(dir)
        .args(args)
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("BACKUP_DIR")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> (String, String) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    (stdout, stderr)
}

/// `run_id: X …` of a migrate summary.
fn run_id(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("run_id: "))
        .unwrap_or_else(|| panic!("no run_id line in\n{stdout}"));
    line.split_whitespace().next().unwrap().to_string()
}

fn migrate(dir: &Path, v1: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--v1-db", v1, "--v2-db", "sqlite://v2.db"];
    args.extend_from_slice(extra);
    run(env!("CARGO_BIN_EXE_thywill-migrate"), dir, &args)
}

#[test]
fn logs_into_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let archives = g1s("text_archives");
    let out = migrate(
        dir.path(),
        &g1s("v1.db"),
        &["--archives-v1", &archives, "--archives-v2", "av2"],
    );
    let (_, stderr) = ok(&out);
    assert!(stderr.contains("INFO"), "info logs expected:\n{stderr}");
    assert!(!stderr.contains(ESC), "ANSI codes in a pipe:\n{stderr:?}");
}

/// Runs `thywill-analyze` on a pseudo-terminal (util-linux `script`), with `NO_COLOR` as given.
fn analyze_on_a_terminal(no_color: Option<&str>) -> Option<String> {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("NOTICE: /usr/bin/script not found; the terminal check was skipped");
        return None;
    }
    let cmd = format!(
        "{} --v1-db {}",
        env!("CARGO_BIN_EXE_thywill-analyze"),
        g1s("v1.db")
    );
    let mut c = Command::new("/usr/bin/script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_on_a_terminal_unless_no_color_is_set() {
    let Some(tty) = analyze_on_a_terminal(None) else {
        return;
    };
    assert!(has_colour(&tty), "a terminal gets colour:\n{tty:?}");
    let plain = analyze_on_a_terminal(Some("1")).unwrap();
    assert!(plain.contains("INFO") && !has_colour(&plain), "{plain:?}");
    assert!(!has_colour("bar \x1b[2K done"));
}

#[test]
fn migrate_summary_names_the_target_and_the_run_to_undo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = g1s("v1.db");
    let (dry, _) = ok(&migrate(d, &v1, &["--dry-run"]));
    assert!(
        dry.contains("  target: sqlite://v2.db (sqlite)\n"),
        "target line:\n{dry}"
    );
    assert!(
        dry.contains("(dry run: nothing kept, nothing to undo)"),
        "{dry}"
    );

    let (first, _) = ok(&migrate(d, &v1, &["--report-json", "run.json"]));
    let id = run_id(&first);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["run_id"], id.as_str());
    let undo = format!("  run_id: {id} (undo with: thywill-rollback --run-id {id})\n");
    assert!(first.contains(&undo), "{first}");
    assert!(first.contains("  target: sqlite://v2.db (sqlite)\n"));

    // A re-run writes nothing and names the run that holds the data.
    let (again, _) = ok(&migrate(d, &v1, &[]));
    assert!(
        again.contains("already_migrated") && again.contains(&undo),
        "{again}"
    );
}

#[test]
fn quiet_silences_logs_but_every_binary_prints_its_final_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = d.join("thywill.db");
    std::fs::copy(g1s("v1.db"), &v1).unwrap();
    let v1 = v1.to_str().unwrap();
    let quiet = |bin: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.push("-q");
        let (stdout, stderr) = ok(&run(bin, d, &all));
        assert!(stderr.is_empty(), "{bin} -q logged:\n{stderr}");
        stdout
    };

    let analyze = quiet(env!("CARGO_BIN_EXE_thywill-analyze"), &["--v1-db", v1]);
    assert!(
        analyze.contains("thywill-analyze") && analyze.contains("feasible"),
        "{analyze}"
    );

    let migrate = quiet(
        env!("CARGO_BIN_EXE_thywill-migrate"),
        &["--v1-db", v1, "--v2-db", "sqlite://v2.db"],
    );
    let id = run_id(&migrate);

    let validate = quiet(
        env!("CARGO_BIN_EXE_thywill-validate"),
        &["--v1-db", v1, "--v2-db", "sqlite://v2.db"],
    );
    assert!(
        validate.contains("PASS ") && validate.contains("OK: "),
        "{validate}"
    );

    let backup = quiet(
        env!("CARGO_BIN_EXE_thywill-backup"),
        &["--v1-db", v1, "--backup-dir", "backups"],
    );
    assert!(
        backup.contains("backup set: ") && backup.contains("verified:"),
        "{backup}"
    );

    let rollback = quiet(
        env!("CARGO_BIN_EXE_thywill-rollback"),
        &[
            "--yes",
            "--v1-db",
            v1,
            "--backup-dir",
            "backups",
            "--v2-db",
            "sqlite://v2.db",
            "--run-id",
            &id,
        ],
    );
    assert!(rollback.contains("rolled back from "), "{rollback}");

    let (m, v) = standins(d);
    let work: PathBuf = d.join("rehearsal");
    let scratch = d.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let (scratch_url, _) = sqlite_v2(&scratch);
    let cutover = quiet(
        env!("CARGO_BIN_EXE_thywill-cutover"),
        &[
            "--rehearsal",
            "--v1-db",
            v1,
            "--work-dir",
            work.to_str().unwrap(),
            "--rehearsal-v2-db",
            &scratch_url,
            "--migrate-bin",
            m.to_str().unwrap(),
            "--validate-bin",
            v.to_str().unwrap(),
        ],
    );
    assert!(cutover.contains("of the 01:00:00 budget"), "{cutover}");
}

#[test]
fn fixtures_takes_the_common_flags_and_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_thywill-fixtures");
    let flags = [
        "--generation=G2",
        "-s",
        "S",
        "--seed",
        "3",
        "--corruption",
        "0",
        "--archives",
        "--no-archives",
        "-o",
        "g2",
    ];
    for common in [&["-q"][..], &["-v", "--log-format", "json"]] {
        let mut args = flags.to_vec();
        args.extend_from_slice(common);
        let (stdout, _) = ok(&run(bin, dir.path(), &args));
        assert!(stdout.starts_with("G2 S seed 3: "), "{common:?}: {stdout}");
    }
    assert!(dir.path().join("g2/v1.db").is_file());
    // The last of --archives / --no-archives wins, as before: G2 has no archive tree.
    assert!(!dir.path().join("g2/text_archives").exists());
    let usage = run(bin, dir.path(), &["--generation", "G9", "--out", "x"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("G9"));
    let refused = run(bin, dir.path(), &["-g", "G0", "--archives", "-o", "g0"]);
    assert_eq!(refused.status.code(), Some(2));
}

/// Validate's checks and a backup's copy and verification take 10+ s on a large community: in a
/// log they say when they start and end (and log "still running" every 10 s in between), so the
/// operator never watches a silent process.
#[test]
fn validate_and_backup_say_when_their_long_step_starts_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = g1s("v1.db");
    ok(&migrate(d, &v1, &[]));
    for (bin, args, step) in [
        (
            env!("CARGO_BIN_EXE_thywill-validate"),
            vec!["--v1-db", v1.as_str(), "--v2-db", "sqlite://v2.db"],
            "validate",
        ),
        (
            env!("CARGO_BIN_EXE_thywill-backup"),
            vec!["--v1-db", v1.as_str(), "--backup-dir", "backups"],
            "backup",
        ),
    ] {
        let (_, stderr) = ok(&run(bin, d, &args));
        let started = stderr.find(&format!("{step}: started"));
        let done = stderr.find(&format!("stage done stage={step}"));
        assert!(
            started.is_some() && done.is_some() && started < done,
            "{bin}:\n{stderr}"
        );
    }
}

/// The report's `archives` stage counts every file it handled: one per member and prayer written
/// to v2, plus the v1 files carried over (the bar's length and its end agree with the report).
#[test]
fn the_archives_stage_counts_members_prayers_and_carried_v1_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let v1 = g1s("v1.db");
    let tree = g1s("text_archives");
    ok(&migrate(
        d,
        &v1,
        &[
            "--archives-v1",
            &tree,
            "--archives-v2",
            "archives_v2",
            "--report-json",
            "report.json",
            "-q",
        ],
    ));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    let stage = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "archives")
        .expect("an archives stage");
    let v2 = rusqlite::Connection::open(d.join("v2.db")).unwrap();
    let count = |table: &str| -> u64 {
        v2.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let carried = report["archives"]["v1_files_copied"].as_u64().unwrap();
    assert!(carried > 0, "g1-s carries v1 files");
    assert_eq!(
        stage["rows"].as_u64().unwrap(),
        count("users") + count("prayers") + carried,
        "{stage}"
    );
}
