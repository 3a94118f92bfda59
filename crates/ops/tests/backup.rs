//! Backups of a live WAL-mode database (quality.md, data safety 6), backup-set verification, and
//! the restore path.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::Connection;
use thywill_ops::backup::{backup, latest_set, verify_set, BackupOptions};
use thywill_ops::rollback::restore_db;
use thywill_ops::OpsError;

fn rows(conn: &Connection, table: &str) -> Vec<(i64, String)> {
    let mut stmt = conn
        .prepare(&format!("SELECT seq, body FROM {table} ORDER BY seq"))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn live_source(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=50;
         CREATE TABLE prayer (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
         CREATE TABLE prayermark (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .unwrap();
}

#[test]
fn backup_of_a_database_written_meanwhile_is_one_instant() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("thywill.db");
    live_source(&src);
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let writer = {
        let (src, stop, committed) = (src.clone(), stop.clone(), committed.clone());
        std::thread::spawn(move || {
            // Its own connection; every transaction adds row n to both tables, so any instant's
            // state is rows 1..k in both.
            let mut c = Connection::open(&src).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) || n < 2000 {
                n += 1;
                let tx = c.transaction().unwrap();
                let body = format!("prayer {n} {}", "x".repeat((n % 300) as usize));
                tx.execute("INSERT INTO prayer VALUES (?1, ?2)", (n, &body))
                    .unwrap();
                tx.execute("INSERT INTO prayermark VALUES (?1, ?2)", (n, &body))
                    .unwrap();
                tx.commit().unwrap();
                committed.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    // Back up only once the writer has committed rows (in WAL mode they land in the -wal file,
    // so the main file's size says nothing), however loaded the machine is.
    while committed.load(Ordering::Relaxed) < 50 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let backups = dir.path().join("backups");
    let mut sets = Vec::new();
    for _ in 0..3 {
        sets.push(backup(&BackupOptions::new(&src, &backups)).unwrap());
    }
    assert!(
        std::path::Path::new(&format!("{}-wal", src.display())).exists(),
        "source must be in WAL mode"
    );
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let source = Connection::open(&src).unwrap();
    let source_rows = rows(&source, "prayer");
    assert_eq!(source_rows.len() as i64, written);
    for set in &sets {
        let db = set.db_path();
        assert!(db
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("thywill_v1_backup_"));
        let c = Connection::open(&db).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let (p, m) = (rows(&c, "prayer"), rows(&c, "prayermark"));
        let k = p.len();
        assert!(k > 0);
        assert_eq!(p, m, "both tables at the same instant");
        assert_eq!(
            p,
            source_rows[..k],
            "the backup equals the source at one instant (its first {k} rows)"
        );
        assert_eq!(set.meta.table_counts["prayer"], k as u64);
        drop(c);
        verify_set(&set.dir).unwrap();
        // Restoring and re-reading gives the same rows.
        let restored = dir.path().join(format!("restored_{k}.db"));
        std::fs::copy(&src, &restored).unwrap();
        restore_db(set, &restored).unwrap();
        let r = Connection::open(&restored).unwrap();
        assert_eq!(rows(&r, "prayer"), p);
        assert_eq!(rows(&r, "prayermark"), m);
    }
    assert_eq!(
        latest_set(&backups).unwrap().unwrap(),
        sets.last().unwrap().dir
    );
}

#[test]
fn archive_tree_is_copied_without_following_symlinks_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("v1.db");
    live_source(&src);
    let tree = dir.path().join("text_archives");
    std::fs::create_dir_all(tree.join("prayers/2024/05")).unwrap();
    std::fs::write(tree.join("prayers/2024/05/a.txt"), "Prayer Request\n").unwrap();
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, "outside").unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(&tree, tree.join("prayers/loop")).unwrap();
    let mut opts = BackupOptions::new(&src, dir.path().join("b"));
    opts.archives_v1 = Some(tree.clone());
    let set = backup(&opts).unwrap();
    let files = set.files_path().unwrap();
    assert_eq!(
        std::fs::read_to_string(files.join("prayers/2024/05/a.txt")).unwrap(),
        "Prayer Request\n"
    );
    assert!(!files.join("escape.txt").exists());
    assert!(!files.join("prayers/loop").exists());
    assert_eq!(set.meta.archives.as_ref().unwrap().skipped.len(), 2);
    let manifest = std::fs::read_to_string(set.dir.join("MANIFEST.sha256")).unwrap();
    let paths: Vec<&str> = manifest
        .lines()
        .map(|l| l.split_once("  ").unwrap().1)
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(paths.iter().any(|p| p.ends_with("prayers/2024/05/a.txt")));
    // Tampering is caught and the set refused.
    std::fs::write(files.join("prayers/2024/05/a.txt"), "changed").unwrap();
    let e = verify_set(&set.dir).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("a.txt: checksum differs"), "{e}");
}

#[test]
fn unwritable_backup_folder_is_refused_and_missing_source_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("v1.db");
    live_source(&src);
    let file = dir.path().join("not_a_folder");
    std::fs::write(&file, "").unwrap();
    let e = backup(&BackupOptions::new(&src, file.join("backups"))).unwrap_err();
    assert!(matches!(e, OpsError::BackupDirNotWritable { .. }), "{e}");
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("not_a_folder"), "{e}");
    let e = backup(&BackupOptions::new(
        dir.path().join("missing.db"),
        dir.path().join("b"),
    ))
    .unwrap_err();
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("missing.db"), "{e}");
    assert!(!dir
        .path()
        .join("b")
        .read_dir()
        .map(|mut d| d.any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("thywill")))
        .unwrap_or(false));
}
