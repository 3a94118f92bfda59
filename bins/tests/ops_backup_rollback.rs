//! `thywill-backup` and `thywill-rollback` as operators run them: exit codes and messages.

mod ops_common;

use ops_common::*;

const BACKUP: &str = env!("CARGO_BIN_EXE_thywill-backup");
const ROLLBACK: &str = env!("CARGO_BIN_EXE_thywill-rollback");

#[test]
fn backup_exit_codes_and_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let v1 = LiveV1::new(d);
    let before = v1_fingerprint(&v1.path);
    let archives = root().join("fixtures/g1-s/text_archives");
    let backups = d.join("backups");
    let out = run(
        BACKUP,
        &["--archives-v1", archives.to_str().unwrap()],
        &[
            ("V1_DB_PATH", v1.path.to_str().unwrap()),
            ("BACKUP_DIR", backups.to_str().unwrap()),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("backup set:")
            && all.contains("thywill_v1_backup_")
            && all.contains("verified"),
        "{all}"
    );
    assert_eq!(v1_fingerprint(&v1.path), before, "the backup only reads v1");
    let set = std::fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = run(BACKUP, &["--verify", set.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    std::fs::write(d.join("file"), "").unwrap();
    let bad = d.join("file/backups");
    let out = run(
        BACKUP,
        &[
            "--v1-db",
            v1.path.to_str().unwrap(),
            "--backup-dir",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("not writable") && text(&out).contains("file/backups"),
        "{}",
        text(&out)
    );

    let out = run(
        BACKUP,
        &[
            "--v1-db",
            d.join("nope.db").to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("nope.db"));

    let out = run(BACKUP, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rollback_restores_removes_the_run_and_is_idempotent_and_refuses_a_bad_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (v1, v2_url, v2, backups) = backed_up_and_migrated(d);
    let marks = sqlite(&v1.path, "SELECT count(*) FROM prayermark");
    sqlite(&v1.path, "DELETE FROM prayermark");
    let args = [
        "--yes",
        "--v1-db",
        v1.path.to_str().unwrap(),
        "--backup-dir",
        backups.to_str().unwrap(),
        "--v2-db",
        &v2_url,
        "--switch-back-cmd",
        "echo switching back",
        "--restart-v1-cmd",
        "echo restarting v1",
    ];
    let out = run(ROLLBACK, &args, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("restored from the backup") && all.contains(RUN_ID),
        "{all}"
    );
    assert_eq!(sqlite(&v1.path, "SELECT count(*) FROM prayermark"), marks);
    assert_eq!(
        sqlite(
            &v2,
            &format!("SELECT count(*) FROM users WHERE id = '{RUN_USER}'")
        )
        .trim(),
        "0"
    );
    assert_eq!(
        sqlite(&v2, "SELECT count(*) FROM users").trim(),
        "1",
        "the row no run wrote is kept"
    );
    assert_eq!(
        sqlite(&v2, "SELECT status FROM migration_runs").trim(),
        "rolled_back"
    );
    // Twice: harmless.
    let dump = sqlite(&v1.path, ".dump");
    let out = run(ROLLBACK, &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sqlite(&v1.path, ".dump"), dump);
    // A tampered backup is refused before anything is touched.
    let set = std::fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(set.join("backup.json"), "{}").unwrap();
    sqlite(&v1.path, "DELETE FROM prayermark");
    let before = v1_fingerprint(&v1.path);
    let out = run(ROLLBACK, &args, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("does not verify") && text(&out).contains("backup.json"),
        "{}",
        text(&out)
    );
    assert_eq!(v1_fingerprint(&v1.path), before);
}

/// A backup and a migrated v2 (by the stand-in), for the rollback refusal tests.
fn backed_up_and_migrated(
    d: &std::path::Path,
) -> (LiveV1, String, std::path::PathBuf, std::path::PathBuf) {
    let v1 = LiveV1::new(d);
    let (v2_url, v2) = sqlite_v2(d);
    let backups = d.join("backups");
    let out = run(
        BACKUP,
        &[
            "--v1-db",
            v1.path.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (migrate, _) = standins(d);
    let out = std::process::Command::new(&migrate)
        .env("V2_DB_URL", &v2_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (v1, v2_url, v2, backups)
}

#[test]
fn rollback_of_an_unknown_run_refuses_before_touching_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (v1, v2_url, _, backups) = backed_up_and_migrated(d);
    // A v1 write made after the backup: a restore would lose it.
    sqlite(&v1.path, "DELETE FROM prayermark");
    let before = v1_fingerprint(&v1.path);
    let hook_ran = d.join("switched");
    let switch = format!("touch {}", hook_ran.display());
    let out = run(
        ROLLBACK,
        &[
            "--yes",
            "--v1-db",
            v1.path.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
            "--v2-db",
            &v2_url,
            "--run-id",
            "deadbeef",
            "--switch-back-cmd",
            &switch,
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(
        all.contains("deadbeef") && all.contains(RUN_ID) && all.contains("nothing was touched"),
        "{all}"
    );
    assert_eq!(v1_fingerprint(&v1.path), before, "v1 was restored");
    assert!(!hook_ran.exists(), "the switch-back hook ran");
    // An unreachable v2 is refused the same way (exit 4, v1 untouched).
    let out = run(
        ROLLBACK,
        &[
            "--yes",
            "--v1-db",
            v1.path.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
            "--v2-db",
            "postgresql://nobody@127.0.0.1:1/none",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("--keep-v2"), "{}", text(&out));
    assert_eq!(v1_fingerprint(&v1.path), before);
}

#[test]
fn a_rollback_that_cannot_do_everything_exits_5_after_doing_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (v1, v2_url, v2, backups) = backed_up_and_migrated(d);
    let marks = sqlite(&v1.path, "SELECT count(*) FROM prayermark");
    sqlite(&v1.path, "DELETE FROM prayermark");
    let out = run(
        ROLLBACK,
        &[
            "--yes",
            "--v1-db",
            v1.path.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
            "--v2-db",
            &v2_url,
            "--restart-v1-cmd",
            "exit 7",
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(5), "{all}");
    assert!(
        all.contains("rollback incomplete") && all.contains("exit 7"),
        "{all}"
    );
    // The rest was done: v1 restored, the run undone.
    assert_eq!(sqlite(&v1.path, "SELECT count(*) FROM prayermark"), marks);
    assert_eq!(
        sqlite(&v2, "SELECT status FROM migration_runs").trim(),
        "rolled_back"
    );
}

/// A backup folder that holds no set: the rollback refuses before touching anything, exit 4 as
/// the runbook says (it was 3), and names the folder.
#[test]
fn rollback_with_no_set_in_the_backup_folder_refuses_with_4() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let v1 = LiveV1::new(d);
    let (v2_url, _) = sqlite_v2(d);
    let empty = d.join("no_sets");
    std::fs::create_dir(&empty).unwrap();
    let before = v1_fingerprint(&v1.path);
    let out = run(
        ROLLBACK,
        &[
            "--yes",
            "--v1-db",
            v1.path.to_str().unwrap(),
            "--backup-dir",
            empty.to_str().unwrap(),
            "--v2-db",
            &v2_url,
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(
        all.contains("no_sets")
            && all.contains("holds no backup set")
            && all.contains("nothing was touched"),
        "{all}"
    );
    assert_eq!(v1_fingerprint(&v1.path), before);
}

/// A backup of something that is not a usable v1 database is refused with exit 3 naming the file
/// and what is wrong, before any set folder is made (it used to "verify" the first three).
#[test]
fn backup_refuses_what_is_not_a_v1_database() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("empty.db"), b"").unwrap();
    std::fs::write(d.join("text.db"), "hello\n").unwrap();
    sqlite(
        &d.join("other.db"),
        "CREATE TABLE recipes (id INTEGER); INSERT INTO recipes VALUES (1);",
    );
    let v1 = LiveV1::new(d);
    std::fs::copy(&v1.path, d.join("nocol.db")).unwrap();
    sqlite(&d.join("nocol.db"), "ALTER TABLE prayer DROP COLUMN text;");
    let full = std::fs::read(&v1.path).unwrap();
    std::fs::write(d.join("trunc.db"), &full[..full.len() / 3]).unwrap();
    damaged_copy(&root().join("fixtures/g1-s/v1.db"), &d.join("damaged.db"));
    for (file, why) in [
        ("empty.db", "empty"),
        ("text.db", "not a SQLite database"),
        ("other.db", "unrecognisable schema"),
        ("nocol.db", "no column text"),
        ("trunc.db", "truncated"),
        ("damaged.db", "damaged pages"),
    ] {
        let dir = d.join(format!("backups_{file}"));
        let src = d.join(file);
        let out = run(
            BACKUP,
            &[
                "--v1-db",
                src.to_str().unwrap(),
                "--backup-dir",
                dir.to_str().unwrap(),
            ],
            &[],
        );
        let all = text(&out);
        assert_eq!(out.status.code(), Some(3), "{file}: {all}");
        assert!(all.contains(file) && all.contains(why), "{file}: {all}");
        assert!(
            !all.contains(".partial"),
            "{file}: names its own copy: {all}"
        );
        // Neither a set nor its `.partial` copy: the folder is never even created.
        assert!(!dir.exists(), "{file}: a set folder was made");
    }
}

/// SIGINT and SIGTERM stop a backup cleanly: exit 130/143 saying so, and no set folder and no
/// `.partial` folder left (the signal used to kill it and leave the `.partial` copy).
#[test]
fn a_signal_stops_a_backup_and_removes_its_partial_set() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let v1 = LiveV1::new(d);
    // A tree big enough that the copy is still running when the signal lands.
    let tree = d.join("tree");
    big_tree(&tree, 4000);
    for signal in ["INT", "TERM"] {
        let backups = d.join(format!("backups_{signal}"));
        let child = command(
            BACKUP,
            &[
                "--v1-db",
                v1.path.to_str().unwrap(),
                "--archives-v1",
                tree.to_str().unwrap(),
                "--backup-dir",
                backups.to_str().unwrap(),
            ],
            &[],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let entries = || names_in(&backups);
        wait_until("the .partial set folder", || {
            entries().iter().any(|n| n.ends_with(".partial"))
        });
        send_signal(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        let all = text(&out);
        let (code, name) = signal_exit(signal);
        assert_eq!(out.status.code(), Some(code), "{signal}: {all}");
        assert!(all.contains(&format!("interrupted by {name}")), "{all}");
        assert!(
            entries().is_empty(),
            "{signal}: left {:?}\n{all}",
            entries()
        );
    }
}

/// A rollback overwrites v1: without --yes, and with no terminal to ask on, it refuses (exit 4)
/// and touches nothing.
#[test]
fn rollback_without_yes_and_no_terminal_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (v1, v2_url, _, backups) = backed_up_and_migrated(d);
    sqlite(&v1.path, "DELETE FROM prayermark");
    let before = v1_fingerprint(&v1.path);
    let out = run(
        ROLLBACK,
        &[
            "--v1-db",
            v1.path.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
            "--v2-db",
            &v2_url,
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(
        all.contains("--yes") && all.contains("will restore"),
        "{all}"
    );
    assert_eq!(v1_fingerprint(&v1.path), before);
}

/// On a terminal, a rollback without --yes says what it will do and asks: `no` refuses (exit 4,
/// v1 as it was), `yes` goes ahead (exit 0, v1 restored). A real pseudo-terminal (`script`).
#[test]
fn rollback_on_a_terminal_asks_and_goes_ahead_only_on_yes() {
    if !can_make_a_terminal() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (v1, v2_url, _, backups) = backed_up_and_migrated(d);
    let marks = sqlite(&v1.path, "SELECT count(*) FROM prayermark");
    sqlite(&v1.path, "DELETE FROM prayermark");
    let before = v1_fingerprint(&v1.path);
    let line = format!(
        "{ROLLBACK} --v1-db {} --backup-dir {} --v2-db {v2_url}",
        v1.path.display(),
        backups.display()
    );
    let out = on_a_terminal(&line, d, "no\n");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "answer no:\n{shown}");
    assert!(
        shown.contains("will restore") && shown.contains("Type yes to go ahead"),
        "it asked:\n{shown}"
    );
    assert_eq!(v1_fingerprint(&v1.path), before, "v1 touched after no");
    let out = on_a_terminal(&line, d, "yes\n");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "answer yes:\n{shown}");
    assert!(shown.contains("rolled back from"), "{shown}");
    assert_eq!(sqlite(&v1.path, "SELECT count(*) FROM prayermark"), marks);
}
