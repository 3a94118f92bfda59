//! v1's e-mail database in operations (interfaces.md: `--v1-email-db` on backup and cutover):
//! the backup set holds it (an online-backup copy, in `backup.json` and `MANIFEST.sha256`,
//! checked by `--verify`, which fails once the copy is altered); a file that is not an e-mail
//! database is refused before anything is written; a cut-over rehearsal backs it up and hands
//! it with its key file to the real migrate and validate steps, and names no address.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use thywill_fixturegen::email::{standard_rows, write_email_db, TEST_KEY};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn backup(dir: &Path, args: &[&str]) -> Output {
    ops_bin(env!("CARGO_BIN_EXE_thywill-backup"), dir, args)
}

/// Runs an operations binary in `dir`, none of its settings taken from the environment.
fn ops_bin(exe: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .current_dir(dir)
        .args(args)
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("BACKUP_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// `d` holds g3-s's `v1.db` and an `email.db` of the standard rows.
fn community(d: &Path) {
    std::fs::copy(root().join("fixtures/g3-s/v1.db"), d.join("v1.db")).unwrap();
    write_email_db(&d.join("email.db"), TEST_KEY, &standard_rows()).unwrap();
}

#[test]
fn the_backup_set_holds_the_email_database_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    community(d);
    let o = backup(
        d,
        &[
            "--v1-db",
            "v1.db",
            "--v1-email-db",
            "email.db",
            "--backup-dir",
            "backups",
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("e-mail db:") && stdout.contains("8 rows"),
        "{stdout}"
    );
    let set = std::fs::read_dir(d.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a set folder");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(set.join("backup.json")).unwrap()).unwrap();
    let file = meta["email_db_file"]
        .as_str()
        .expect("email_db_file")
        .to_string();
    assert_eq!(meta["email_table_counts"]["user_email"], 8);
    let manifest = std::fs::read_to_string(set.join("MANIFEST.sha256")).unwrap();
    assert!(manifest.contains(&file), "{manifest}");
    let copy = rusqlite::Connection::open(set.join(&file)).unwrap();
    let n: i64 = copy
        .query_row("SELECT count(*) FROM user_email", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 8);
    drop(copy);

    let set_arg = set.display().to_string();
    let ok = backup(d, &["--verify", &set_arg]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Altered: a row deleted from the copy.
    rusqlite::Connection::open(set.join(&file))
        .unwrap()
        .execute("DELETE FROM user_email WHERE rowid = 1", [])
        .unwrap();
    let bad = backup(d, &["--verify", &set_arg]);
    assert!(!bad.status.success(), "an altered e-mail copy verified");
}

#[test]
fn a_file_that_is_not_an_email_database_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(root().join("fixtures/g3-s/v1.db"), d.join("v1.db")).unwrap();
    let o = backup(
        d,
        &[
            "--v1-db",
            "v1.db",
            "--v1-email-db",
            "v1.db",
            "--backup-dir",
            "backups",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("user_email"));
    assert!(!d.join("backups").exists());
}

/// Every file under `dir` whose name is `name`.
fn find(dir: &Path, name: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == name)
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn a_rehearsal_backs_up_migrates_and_validates_the_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(root().join("fixtures/g3-s/v1.db"), d.join("v1.db")).unwrap();
    let rows = standard_rows();
    write_email_db(&d.join("email.db"), TEST_KEY, &rows).unwrap();
    std::fs::write(d.join("email.key"), TEST_KEY).unwrap();
    let tree = root().join("fixtures/g3-s/text_archives");
    let o = Command::new(env!("CARGO_BIN_EXE_thywill-cutover"))
        .current_dir(d)
        .args([
            "--rehearsal",
            "--v1-db",
            "v1.db",
            "--archives-v1",
            tree.to_str().unwrap(),
            "--v1-email-db",
            "email.db",
            "--v1-email-key-file",
            "email.key",
            "--work-dir",
            "work",
            "--migrate-bin",
            env!("CARGO_BIN_EXE_thywill-migrate"),
            "--validate-bin",
            env!("CARGO_BIN_EXE_thywill-validate"),
        ])
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("BACKUP_DIR")
        .env_remove("EMAIL_ENCRYPTION_KEY")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{all}");
    let migration = find(&d.join("work"), "migration_report.json");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&migration[0]).unwrap()).unwrap();
    assert_eq!(
        report["source"]["email_db"]["rows"], 8,
        "{}",
        report["source"]
    );
    assert_eq!(report["tables"]["user_email"]["written"], 2);
    let validation = find(&d.join("work"), "validation_report.json");
    let v = std::fs::read_to_string(&validation[0]).unwrap();
    assert!(
        v.contains("\"user_email\""),
        "the validator derived user_email"
    );
    let sets = find(&d.join("work"), "backup.json");
    assert!(!sets.is_empty());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sets[0]).unwrap()).unwrap();
    assert!(meta["email_db_file"].is_string(), "{meta}");
    // Nothing the day printed or wrote beside v2 names an address.
    for s in thywill_fixturegen::email::secrets(&rows) {
        assert!(!all.contains(&s), "{s} printed");
        for p in find(&d.join("work"), "migration_report.json")
            .into_iter()
            .chain(validation.iter().cloned())
            .chain(find(&d.join("work"), "cutover_timeline.json"))
        {
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(!t.contains(&s), "{s} in {}", p.display());
        }
    }
}

fn rollback(dir: &Path, args: &[&str]) -> Output {
    ops_bin(env!("CARGO_BIN_EXE_thywill-rollback"), dir, args)
}

fn email_rows(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM user_email", [], |r| r.get(0))
        .unwrap()
}

/// A rollback restores the e-mail database together with v1 (one moment for both), and refuses,
/// touching nothing, when the set holds no copy of it.
#[test]
fn a_rollback_restores_the_email_database_with_v1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    community(d);
    let plain = backup(d, &["--v1-db", "v1.db", "--backup-dir", "plain"]);
    assert!(plain.status.success(), "{plain:?}");
    let with_email = [
        "--v1-db",
        "v1.db",
        "--v1-email-db",
        "email.db",
        "--backup-dir",
        "backups",
    ];
    assert!(backup(d, &with_email).status.success());
    // After the backup: an address deleted, a member added to v1.
    rusqlite::Connection::open(d.join("email.db"))
        .unwrap()
        .execute("DELETE FROM user_email WHERE rowid = 1", [])
        .unwrap();
    assert_eq!(email_rows(&d.join("email.db")), 7);

    let refused = rollback(
        d,
        &[
            "--v1-db",
            "v1.db",
            "--v1-email-db",
            "email.db",
            "--backup-dir",
            "plain",
            "--keep-v2",
            "--yes",
        ],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no copy of the e-mail database"),
        "{stderr}"
    );
    assert_eq!(email_rows(&d.join("email.db")), 7, "a refusal touched it");

    let o = rollback(
        d,
        &[
            "--v1-db",
            "v1.db",
            "--v1-email-db",
            "email.db",
            "--backup-dir",
            "backups",
            "--keep-v2",
            "--yes",
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("its e-mail database with it"), "{stdout}");
    assert_eq!(email_rows(&d.join("email.db")), 8);
}
