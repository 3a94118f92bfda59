//! Consistent online backups of a live v1 database and its archive tree, and their verification.
//!
//! A backup set is one folder under the backup folder:
//!
//! ```text
//! thywill_v1_backup_YYYYmmdd_HHMMSS/
//!   thywill_v1_backup_YYYYmmdd_HHMMSS.db   SQLite online backup of v1 (rollback journal mode)
//!   thywill_v1_files_YYYYmmdd_HHMMSS/      the v1 archive tree (regular files only)
//!   backup.json                            what was backed up: source, row counts, integrity
//!   MANIFEST.sha256                        "<sha256>  <relative path>" of every file above, sorted
//! ```
//!
//! The database is copied with SQLite's backup API inside the same read transaction that counted
//! the source's rows, so the copy and the counts are one snapshot of the source at one instant,
//! whatever other processes write meanwhile (WAL mode). A plain file copy of a WAL database can
//! miss committed transactions that still live in the `-wal` file; it is never used.
//! The set is assembled under a hidden `.partial` name and renamed into place only once it verifies.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use crate::error::{OpsError, Result};
use crate::fsutil::{copy_tree, ensure_writable_dir, sync_dir, write_atomic, TreeCopy};
use crate::manifest::{verify_manifest, write_manifest};

/// The name of the metadata file of a backup set.
pub const META_NAME: &str = "backup.json";
/// The prefix of a backup set folder and of its database file.
pub const SET_PREFIX: &str = "thywill_v1_backup_";

/// What to back up and where.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The live v1 database.
    pub v1_db: PathBuf,
    /// The v1 archive tree, if any.
    pub archives_v1: Option<PathBuf>,
    /// The backup folder (created if missing).
    pub backup_dir: PathBuf,
    /// v1's separate e-mail database (`--v1-email-db`), if any: part of the set.
    pub email_db: Option<PathBuf>,
    /// How long to wait for a writer's lock on the source.
    pub busy_timeout: Duration,
}

impl BackupOptions {
    /// Options with the default lock wait (10 s).
    pub fn new(v1_db: impl Into<PathBuf>, backup_dir: impl Into<PathBuf>) -> Self {
        BackupOptions {
            v1_db: v1_db.into(),
            archives_v1: None,
            backup_dir: backup_dir.into(),
            email_db: None,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// `backup.json`: what a backup set holds, written at backup time and checked at restore time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupMeta {
    /// The `YYYYmmdd_HHMMSS` stamp of the names.
    pub timestamp: String,
    /// When the snapshot was taken (UTC, RFC 3339).
    pub taken_at: String,
    /// The tool version that took it.
    pub tool_version: String,
    /// The v1 database backed up, as given.
    pub source_db: String,
    /// The archive tree backed up, as given.
    pub source_archives: Option<String>,
    /// The database file inside the set.
    pub db_file: String,
    /// The archive folder inside the set.
    pub files_dir: Option<String>,
    /// Row counts of every table of the snapshot (full scans).
    pub table_counts: BTreeMap<String, u64>,
    /// What `PRAGMA integrity_check` says of the snapshot when not `ok` (index problems the
    /// source already had; the backup is a faithful copy of them).
    pub integrity_notes: Vec<String>,
    /// The archive copy.
    pub archives: Option<TreeCopy>,
    /// v1's e-mail database backed up, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_email_db: Option<String>,
    /// The e-mail database file inside the set (an online-backup copy, like the main one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_db_file: Option<String>,
    /// Row counts of the e-mail database's tables (full scans).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub email_table_counts: BTreeMap<String, u64>,
}

/// A verified backup set on disk.
#[derive(Debug, Clone)]
pub struct BackupSet {
    /// The set folder.
    pub dir: PathBuf,
    /// Its metadata.
    pub meta: BackupMeta,
}

impl BackupSet {
    /// The backed-up database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(&self.meta.db_file)
    }

    /// The backed-up e-mail database, if the set has one.
    pub fn email_db_path(&self) -> Option<PathBuf> {
        self.meta.email_db_file.as_ref().map(|f| self.dir.join(f))
    }

    /// The backed-up archive tree, if the set has one.
    pub fn files_path(&self) -> Option<PathBuf> {
        self.meta.files_dir.as_ref().map(|d| self.dir.join(d))
    }
}

/// The local time as `YYYYmmdd_HHMMSS`, the stamp of backup and work folder names.
pub fn timestamp() -> String {
    chrono::Local::now().format("%Y%m%d_%H%M%S").to_string()
}

/// Takes a backup set of `opts.v1_db` (and its archive tree) under `opts.backup_dir`, verifies it
/// and returns it. An unwritable backup folder is [`OpsError::BackupDirNotWritable`] (exit 4).
pub fn backup(opts: &BackupOptions) -> Result<BackupSet> {
    check_source(&opts.v1_db)?;
    ensure_writable_dir(&opts.backup_dir).map_err(|source| OpsError::BackupDirNotWritable {
        path: opts.backup_dir.clone(),
        source,
    })?;
    let now = chrono::Local::now();
    let (stamp, final_dir) =
        free_set_name(&opts.backup_dir, &now.format("%Y%m%d_%H%M%S").to_string());
    let partial = opts.backup_dir.join(format!(
        ".{}.partial",
        final_dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(OpsError::io("removing a stale", &partial))?;
    }
    // The set holds session tokens and (soon) e-mail addresses: the operator's alone.
    let private = {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .mode(crate::fsutil::PRIVATE_DIR)
            .create(&partial)
    };
    private.map_err(|source| OpsError::BackupDirNotWritable {
        path: opts.backup_dir.clone(),
        source,
    })?;
    let set = assemble(opts, &stamp, &now, &partial).and_then(|meta| {
        OpsError::check_interrupt()?;
        let problems = verify_set_contents(&partial, &meta)?;
        OpsError::check_interrupt()?;
        if !problems.is_empty() {
            Err(OpsError::BackupInvalid {
                path: partial.clone(),
                problems,
            })
        } else {
            Ok(meta)
        }
    });
    // Any failure, SIGINT/SIGTERM included, leaves no `.partial` folder behind.
    let meta = match set {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            if let OpsError::Interrupted { .. } = e {
                tracing::warn!(partial = %partial.display(), "{e}: the unfinished set was removed; run the backup again");
            }
            return Err(e);
        }
    };
    fs::rename(&partial, &final_dir).map_err(OpsError::io("renaming into place", &final_dir))?;
    sync_dir(&opts.backup_dir)?;
    tracing::info!(set = %final_dir.display(), tables = meta.table_counts.len(), "backup verified");
    Ok(BackupSet {
        dir: final_dir,
        meta,
    })
}

/// Refuses (exit 3) a source the v1 reader does not recognise: an empty file, text, a truncated
/// file, another application's database, a v1 file missing a column the migration needs, a file
/// with damaged pages (the v1 reader's quick integrity check, as the migration runs it).
/// `thywill-backup` calls it before [`backup`], which itself copies any SQLite database, so that
/// a backup of something that is not ThyWill is never "verified".
pub fn check_v1_source(db: &Path) -> Result<()> {
    check_source(db)?;
    thywill_v1::V1Database::open(db)?.integrity()?;
    Ok(())
}

/// Refuses (exit 3) an e-mail database the v1 reader does not recognise (no file, no
/// `user_email` table): `thywill-backup --v1-email-db` calls it before [`backup`].
pub fn check_v1_email_source(db: &Path) -> Result<()> {
    thywill_v1::V1EmailDb::open(db)?;
    Ok(())
}

fn check_source(db: &Path) -> Result<()> {
    match fs::metadata(db) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(OpsError::UnusableInput {
            path: db.into(),
            reason: "is not a file (check --v1-db / V1_DB_PATH)".into(),
        }),
        Err(e) => Err(OpsError::UnusableInput {
            path: db.into(),
            reason: format!("{e} (check --v1-db / V1_DB_PATH)"),
        }),
    }
}

/// The first free `(stamp, set folder)` for `stamp` (a suffix `_2`, `_3`, … when two backups
/// fall within one second).
fn free_set_name(dir: &Path, stamp: &str) -> (String, PathBuf) {
    let mut candidate = stamp.to_string();
    for n in 2.. {
        let path = dir.join(format!("{SET_PREFIX}{candidate}"));
        if !path.exists() {
            return (candidate, path);
        }
        candidate = format!("{stamp}_{n}");
    }
    unreachable!("an unbounded range always yields a free name")
}

fn assemble(
    opts: &BackupOptions,
    stamp: &str,
    now: &chrono::DateTime<chrono::Local>,
    dir: &Path,
) -> Result<BackupMeta> {
    let db_file = format!("{SET_PREFIX}{stamp}.db");
    let snap = snapshot_copy(&opts.v1_db, &dir.join(&db_file), opts.busy_timeout)?;
    OpsError::check_interrupt()?;
    let (files_dir, archives) = match &opts.archives_v1 {
        Some(src) => {
            let name = format!("thywill_v1_files_{stamp}");
            let copy = copy_tree(src, &dir.join(&name))?;
            for s in &copy.skipped {
                tracing::warn!(entry = %s, "archive entry not backed up");
            }
            (Some(name), Some(copy))
        }
        None => (None, None),
    };
    OpsError::check_interrupt()?;
    let (email_db_file, email_counts) = match &opts.email_db {
        Some(src) => {
            let name = format!("thywill_v1_email_{stamp}.db");
            let snap = snapshot_copy(src, &dir.join(&name), opts.busy_timeout)?;
            (Some(name), snap.counts)
        }
        None => (None, BTreeMap::new()),
    };
    let meta = BackupMeta {
        timestamp: stamp.to_string(),
        taken_at: now
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        source_db: opts.v1_db.display().to_string(),
        source_archives: opts.archives_v1.as_ref().map(|p| p.display().to_string()),
        db_file,
        files_dir,
        table_counts: snap.counts,
        integrity_notes: snap.integrity_notes,
        archives,
        source_email_db: opts.email_db.as_ref().map(|p| p.display().to_string()),
        email_db_file,
        email_table_counts: email_counts,
    };
    let json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| OpsError::io("encoding", dir.join(META_NAME))(e.into()))?;
    write_atomic(&dir.join(META_NAME), &json)?;
    OpsError::check_interrupt()?;
    write_manifest(dir)?;
    Ok(meta)
}

/// What [`snapshot_copy`] saw of the source.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Row counts of every table, read in the same transaction the copy was made from.
    pub counts: BTreeMap<String, u64>,
    /// Integrity-check messages shared by source and copy (empty when the copy is `ok`).
    pub integrity_notes: Vec<String>,
}

/// Copies the live database `src` to the new file `dest` with SQLite's backup API, inside one read
/// transaction of `src` that also counts every table's rows; then checks the copy: its
/// `PRAGMA integrity_check` must be `ok` (or list exactly the index problems the source snapshot
/// has) and its counts must equal the source's. The copy is left in rollback-journal mode so that
/// reading it never creates `-wal`/`-shm` files beside it. `dest` must not exist.
pub fn snapshot_copy(src: &Path, dest: &Path, busy_timeout: Duration) -> Result<Snapshot> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let source = Connection::open_with_flags(src, flags)
        .map_err(OpsError::sqlite("opening the source read-only", src))?;
    source
        .busy_timeout(busy_timeout)
        .map_err(OpsError::sqlite("setting the lock wait", src))?;
    // One read transaction: the counts and the pages copied below are the same snapshot.
    source
        .execute_batch("BEGIN DEFERRED")
        .map_err(OpsError::sqlite("starting the read transaction", src))?;
    let counts = table_counts(&source, src)?;
    crate::fsutil::create_private_file(dest).map_err(OpsError::io("creating", dest))?;
    let mut copy =
        Connection::open(dest).map_err(OpsError::sqlite("creating the backup file", dest))?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut copy)
            .map_err(OpsError::sqlite("starting the online backup", dest))?;
        // All pages in one step, from the open read transaction of `source`.
        match backup.step(-1).map_err(OpsError::sqlite("copying pages", src))? {
            rusqlite::backup::StepResult::Done => {}
            other => {
                return Err(OpsError::BackupInvalid {
                    path: dest.to_path_buf(),
                    problems: vec![format!("the online backup of {} stopped early ({other:?}); retry when the source is less busy", src.display())],
                })
            }
        }
    }
    copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
        .map_err(OpsError::sqlite("setting the backup's journal mode", dest))?;
    let copy_integrity = integrity_messages(&copy, dest)?;
    let integrity_notes = if copy_integrity == ["ok"] {
        Vec::new()
    } else {
        // Not ok: acceptable only if it is exactly what the source snapshot has (a faithful copy of
        // known index problems, e.g. rows missing from an index).
        let source_integrity = integrity_messages(&source, src)?;
        if source_integrity != copy_integrity {
            return Err(OpsError::BackupInvalid {
                path: dest.to_path_buf(),
                problems: vec![format!(
                    "integrity_check of the copy differs from the source's: {}",
                    copy_integrity.join(" | ")
                )],
            });
        }
        copy_integrity
    };
    let copy_counts = table_counts(&copy, dest)?;
    drop(source);
    if copy_counts != counts {
        return Err(OpsError::BackupInvalid {
            path: dest.to_path_buf(),
            problems: vec![format!(
                "row counts of the copy {copy_counts:?} differ from the source snapshot {counts:?}"
            )],
        });
    }
    drop(copy);
    fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(OpsError::io("syncing", dest))?;
    Ok(Snapshot {
        counts,
        integrity_notes,
    })
}

fn integrity_messages(conn: &Connection, path: &Path) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check(100000)")
        .map_err(OpsError::sqlite("integrity_check", path))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(OpsError::sqlite("integrity_check", path))?;
    Ok(rows)
}

/// Row counts of every table by full scan (`NOT INDEXED`, so rows missing from an index count).
pub fn table_counts(conn: &Connection, path: &Path) -> Result<BTreeMap<String, u64>> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(OpsError::sqlite("listing tables", path))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(OpsError::sqlite("listing tables", path))?;
    let mut counts = BTreeMap::new();
    for name in names {
        let sql = format!(
            "SELECT count(*) FROM \"{}\" NOT INDEXED",
            name.replace('"', "\"\"")
        );
        let n: i64 = conn
            .query_row(&sql, [], |r| r.get(0))
            .map_err(OpsError::sqlite(format!("counting table {name}"), path))?;
        counts.insert(name, n as u64);
    }
    Ok(counts)
}

/// Verifies a backup set folder on its own (no source needed): the manifest's checksums, then the
/// database's `PRAGMA integrity_check` and row counts against `backup.json`. Refuses (exit 4) a set
/// that does not verify, listing every problem.
pub fn verify_set(dir: &Path) -> Result<BackupSet> {
    let meta_path = dir.join(META_NAME);
    let bytes = fs::read(&meta_path).map_err(|e| OpsError::BackupInvalid {
        path: dir.to_path_buf(),
        problems: vec![format!(
            "{META_NAME}: {e} (is this a backup set folder made by thywill-backup?)"
        )],
    })?;
    let meta: BackupMeta = serde_json::from_slice(&bytes).map_err(|e| OpsError::BackupInvalid {
        path: dir.to_path_buf(),
        problems: vec![format!("{META_NAME}: {e}")],
    })?;
    let problems = verify_set_contents(dir, &meta)?;
    if !problems.is_empty() {
        return Err(OpsError::BackupInvalid {
            path: dir.to_path_buf(),
            problems,
        });
    }
    Ok(BackupSet {
        dir: dir.to_path_buf(),
        meta,
    })
}

fn verify_set_contents(dir: &Path, meta: &BackupMeta) -> Result<Vec<String>> {
    let mut problems = verify_manifest(dir)?;
    if !problems.is_empty() {
        // Checksums first: never open a database file that is not the one backed up.
        return Ok(problems);
    }
    let db = dir.join(&meta.db_file);
    if meta.db_file.contains(['/', '\\']) || !db.is_file() {
        problems.push(format!("{}: missing database file", meta.db_file));
        return Ok(problems);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let checked = Connection::open_with_flags(&db, flags)
        .map_err(OpsError::sqlite("opening the backup", &db))
        .and_then(|c| Ok((integrity_messages(&c, &db)?, table_counts(&c, &db)?)));
    match checked {
        Ok((integrity, counts)) => {
            let expected: Vec<String> = if meta.integrity_notes.is_empty() {
                vec!["ok".into()]
            } else {
                meta.integrity_notes.clone()
            };
            if integrity != expected {
                problems.push(format!(
                    "{}: integrity_check says {}",
                    meta.db_file,
                    integrity.join(" | ")
                ));
            }
            if counts != meta.table_counts {
                problems.push(format!(
                    "{}: row counts {counts:?} differ from {META_NAME} {:?}",
                    meta.db_file, meta.table_counts
                ));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    if let Some(file) = &meta.email_db_file {
        let db = dir.join(file);
        if file.contains(['/', '\\']) || !db.is_file() {
            problems.push(format!("{file}: missing e-mail database file"));
            return Ok(problems);
        }
        let checked = Connection::open_with_flags(&db, flags)
            .map_err(OpsError::sqlite("opening the backup", &db))
            .and_then(|c| Ok((integrity_messages(&c, &db)?, table_counts(&c, &db)?)));
        match checked {
            Ok((integrity, counts)) => {
                if integrity != ["ok"] {
                    problems.push(format!(
                        "{file}: integrity_check says {}",
                        integrity.join(" | ")
                    ));
                }
                if counts != meta.email_table_counts {
                    problems.push(format!(
                        "{file}: row counts {counts:?} differ from {META_NAME} {:?}",
                        meta.email_table_counts
                    ));
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    Ok(problems)
}

/// The newest backup set folder under `backup_dir` (by its timestamped name), if any.
pub fn latest_set(backup_dir: &Path) -> Result<Option<PathBuf>> {
    let entries = fs::read_dir(backup_dir).map_err(|e| OpsError::UnusableInput {
        path: backup_dir.to_path_buf(),
        reason: format!("backup folder unreadable: {e} (check --backup-dir / BACKUP_DIR)"),
    })?;
    let mut sets: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            name.strip_prefix(SET_PREFIX)
                .map(|s| (s.to_string(), e.path()))
        })
        .collect();
    // Stamps sort by time; a same-second suffix `_N` sorts after its plain stamp and by N.
    sets.sort_by_cached_key(|(stamp, _)| {
        let (base, n) = stamp.split_at(stamp.len().min(15));
        let n: u32 = n.trim_start_matches('_').parse().unwrap_or(0);
        (base.to_string(), n)
    });
    Ok(sets.pop().map(|(_, p)| p))
}
