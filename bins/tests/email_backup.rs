//! The backup set includes v1's e-mail database (interfaces.md: `--v1-email-db` on
//! `thywill-backup`): copied with the online backup API, in `backup.json` and `MANIFEST.sha256`,
//! verified by `--verify`, which fails once the copy is altered; a file that is not an e-mail
//! database is refused (exit 3) before anything is written.

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
    Command::new(env!("CARGO_BIN_EXE_thywill-backup"))
        .current_dir(dir)
        .args(args)
        .env_remove("V1_DB_PATH")
        .env_remove("BACKUP_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn the_backup_set_holds_the_email_database_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(root().join("fixtures/g3-s/v1.db"), d.join("v1.db")).unwrap();
    write_email_db(&d.join("email.db"), TEST_KEY, &standard_rows()).unwrap();
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
