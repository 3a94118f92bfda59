//! Rolling back to v1: switch traffic back, remove the v2 data of the undone runs, restore the v1
//! database (and archive files) from a verified backup set, restart v1, check v1 is readable.
//! Every step is attempted even when an earlier one failed (a rollback must do as much as it can);
//! the problems are reported together. Running it twice is harmless.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::backup::{verify_set, BackupSet};
use crate::command::Child;
use crate::error::{OpsError, Result};
use crate::fsutil::{copy_atomic, db_fingerprint, sha256_file, sibling_with_suffix};
use crate::manifest::read_manifest;
use crate::v2runs::{resolve_runs, RunRemoval, RunSelection, RunsToUndo};

/// When to restore the v1 database from the backup.
#[derive(Debug, Clone)]
pub enum RestorePolicy {
    /// Always (the operator asked for a restore).
    Always,
    /// Never (v1 was never frozen, so it may hold live writes newer than any backup).
    Never,
    /// Only when v1's fingerprint (sha256 of the file and its `-wal`) differs from this one, taken
    /// when v1 was frozen: an unchanged v1 is left byte-identical, and nothing written before the
    /// freeze is lost to an older backup.
    UnlessUnchanged(String),
}

/// What to roll back.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// The v1 database to restore.
    pub v1_db: PathBuf,
    /// The backup set folder to restore from (needed when a restore may happen).
    pub backup: Option<PathBuf>,
    /// v1's separate e-mail database (`--v1-email-db`), restored from the set's copy together
    /// with the v1 database (the two must stay from one moment: the addresses belong to the
    /// members of that v1), and left alone when v1 is.
    pub email_db: Option<PathBuf>,
    /// The v1 archive tree to restore missing or changed files into, if any.
    pub archives_v1: Option<PathBuf>,
    /// The v2 database whose runs are undone (`None`: leave v2 alone).
    pub v2_db: Option<String>,
    /// Which runs.
    pub runs: RunSelection,
    /// When to restore v1.
    pub restore: RestorePolicy,
    /// Hook: switch traffic back to v1.
    pub switch_back_cmd: Option<String>,
    /// Hook: restart the v1 services.
    pub restart_v1_cmd: Option<String>,
    /// The automatic rollback of a failed cut-over: a v2 database that cannot be reached or read
    /// is one more problem of the rollback, not a refusal, because traffic must go back to v1
    /// whatever v2's state. An operator's rollback (false) refuses instead, before touching
    /// anything.
    pub best_effort: bool,
}

/// What a rollback did.
#[derive(Debug, Clone, Default)]
pub struct RollbackReport {
    /// Whether the v1 database was restored from the backup (false: it was already as wanted).
    pub v1_restored: bool,
    /// Whether v1's e-mail database was restored from the backup with it.
    pub email_restored: bool,
    /// Archive files restored (missing or changed in the v1 tree).
    pub archive_files_restored: u64,
    /// The v2 runs undone.
    pub v2_runs: Vec<RunRemoval>,
    /// Problems met along the way (empty: the rollback is complete).
    pub problems: Vec<String>,
}

impl RollbackReport {
    /// One line for an operator.
    pub fn summary(&self) -> String {
        let runs: Vec<String> = self
            .v2_runs
            .iter()
            .map(|r| match &r.deleted {
                Some(d) => format!(
                    "{} removed ({} rows)",
                    r.run_id,
                    d.iter().map(|(_, n)| n).sum::<u64>()
                ),
                None => format!("{} already rolled back", r.run_id),
            })
            .collect();
        format!(
            "v1 {}{}; {} archive file(s) restored; v2 runs: {}",
            if self.v1_restored {
                "restored from the backup"
            } else {
                "unchanged, no restore needed"
            },
            if self.email_restored {
                " (its e-mail database with it)"
            } else {
                ""
            },
            self.archive_files_restored,
            if runs.is_empty() {
                "none to undo".into()
            } else {
                runs.join(", ")
            },
        )
    }
}

/// Runs the rollback. Everything that can be checked is checked before anything is touched: the
/// backup verifies when a restore is needed ([`OpsError::BackupInvalid`], exit 4), the v2 database
/// answers and records every run asked for ([`OpsError::RollbackRefused`], exit 4; with
/// `best_effort` a v2 problem is reported and the rest still done). Then every step is attempted.
/// Returns the report, or [`OpsError::RollbackIncomplete`] (exit 5) listing what could not be done.
pub fn rollback(opts: &RollbackOptions) -> Result<RollbackReport> {
    let need_restore = match &opts.restore {
        RestorePolicy::Always => true,
        RestorePolicy::Never => false,
        RestorePolicy::UnlessUnchanged(frozen) => {
            db_fingerprint(&opts.v1_db).map_or(true, |now| &now != frozen)
        }
    };
    let set = backup_to_use(opts, need_restore)?;
    let mut report = RollbackReport::default();
    let runs = runs_to_undo(opts, &mut report.problems)?;
    act(opts, need_restore, set.as_ref(), runs, &mut report);
    if report.problems.is_empty() {
        tracing::info!("rollback complete: {}", report.summary());
        Ok(report)
    } else {
        Err(OpsError::RollbackIncomplete {
            problems: report.problems,
        })
    }
}

/// The verified backup set, when a restore may happen; refusals before anything is touched: no
/// set for a v1 that must be restored, a set that does not verify, a set without the e-mail
/// database the operator asked to restore with v1.
fn backup_to_use(opts: &RollbackOptions, need_restore: bool) -> Result<Option<BackupSet>> {
    let set = match (&opts.backup, need_restore || opts.archives_v1.is_some()) {
        (Some(dir), true) => Some(verify_set(dir)?),
        (None, true) if need_restore => {
            return Err(OpsError::RollbackRefused {
                reason: format!(
                "v1 {} changed and no backup set was given to restore it from; nothing was touched",
                opts.v1_db.display()
            ),
            })
        }
        _ => None,
    };
    if let (Some(set), Some(email)) = (&set, &opts.email_db) {
        if need_restore && set.email_db_path().is_none() {
            return Err(OpsError::RollbackRefused {
                reason: format!(
                    "the backup set {} holds no copy of the e-mail database {}, so v1 and its \
                     addresses cannot be restored to one moment; give the set taken with \
                     --v1-email-db, or leave --v1-email-db out; nothing was touched",
                    set.dir.display(),
                    email.display()
                ),
            });
        }
    }
    Ok(set)
}

/// The v2 runs to undo (none when v2 is left alone). A v2 that cannot be read is a refusal,
/// unless `best_effort`, where it is one more of the `problems` and v2 is left alone.
fn runs_to_undo(opts: &RollbackOptions, problems: &mut Vec<String>) -> Result<Option<RunsToUndo>> {
    let Some(url) = &opts.v2_db else {
        return Ok(None);
    };
    match resolve_runs(url, &opts.runs) {
        Ok(runs) => Ok(Some(runs)),
        Err(e) if opts.best_effort => {
            tracing::error!("rollback: reading the v2 runs: {e}");
            problems.push(format!("reading the v2 runs: {e}"));
            Ok(None)
        }
        Err(e @ OpsError::RollbackRefused { .. }) => Err(e),
        Err(e) => Err(OpsError::RollbackRefused {
            reason: format!(
                "{e}; nothing was touched (fix the v2 URL, or pass --keep-v2 to restore v1 only)"
            ),
        }),
    }
}

/// Every step of the rollback, each attempted whatever the earlier ones did; what fails is added
/// to the report's problems.
fn act(
    opts: &RollbackOptions,
    need_restore: bool,
    set: Option<&BackupSet>,
    runs: Option<RunsToUndo>,
    report: &mut RollbackReport,
) {
    let mut attempt = |what: &str, r: Result<()>| {
        if let Err(e) = r {
            tracing::error!("rollback: {what}: {e}");
            report.problems.push(format!("{what}: {e}"));
        }
    };
    // The hooks see the v2 URL of the runs undone (redacted unless the operator opts in, and
    // scrubbed from their relayed output).
    let hook = |flag: &str, cmd: &str| match &opts.v2_db {
        Some(url) => Child::hook(flag, cmd).with_env("V2_DB_URL", url.clone()),
        None => Child::hook(flag, cmd),
    };
    if let Some(cmd) = &opts.switch_back_cmd {
        attempt(
            "switching traffic back",
            hook("--switch-back-cmd", cmd).run(),
        );
    }
    let mut removed = Vec::new();
    if let Some(runs) = &runs {
        attempt(
            "removing the run's v2 data",
            runs.remove().map(|r| removed = r),
        );
    }
    let (mut restored, mut email_restored, mut files) = (false, false, 0);
    if let Some(set) = set {
        if need_restore {
            attempt(
                "restoring the v1 database",
                restore_db(set, &opts.v1_db).map(|_| restored = true),
            );
            if let (Some(email), Some(copy)) = (&opts.email_db, set.email_db_path()) {
                attempt(
                    "restoring v1's e-mail database",
                    restore_sqlite(&copy, email, true).map(|_| email_restored = true),
                );
            }
        }
        if let (Some(tree), Some(_)) = (&opts.archives_v1, set.files_path()) {
            attempt(
                "restoring v1 archive files",
                restore_files(set, tree).map(|n| files = n),
            );
        }
    }
    if let Some(cmd) = &opts.restart_v1_cmd {
        attempt("restarting v1", hook("--restart-v1-cmd", cmd).run());
    }
    attempt("checking v1 is readable", check_v1(&opts.v1_db));
    report.v1_restored = restored;
    report.email_restored = email_restored;
    report.archive_files_restored = files;
    report.v2_runs = removed;
}

/// Restores `v1_db` from the set's database with SQLite's backup API (through SQLite's own
/// locking and journal, so a stale `-wal` can never be replayed over the restored pages), then
/// checkpoints the WAL into the file. If SQLite cannot open the damaged v1 file at all, the file
/// is replaced whole instead (its `-wal`/`-shm` removed first).
pub fn restore_db(set: &BackupSet, v1_db: &Path) -> Result<()> {
    restore_sqlite(&set.db_path(), v1_db, set.meta.integrity_notes.is_empty())
}

/// Restores the SQLite file `dest` from the copy `src` as [`restore_db`] does; `must_be_clean`:
/// the restored file must pass `quick_check` (false when the copy was taken with known damage).
fn restore_sqlite(src: &Path, dest: &Path, must_be_clean: bool) -> Result<()> {
    let via_api = (|| -> std::result::Result<(), String> {
        let s = |e: rusqlite::Error| e.to_string();
        let mut conn = Connection::open(dest).map_err(s)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(s)?;
        conn.restore(
            rusqlite::MAIN_DB,
            src,
            None::<fn(rusqlite::backup::Progress)>,
        )
        .map_err(s)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(s)?;
        let ok: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(s)?;
        if ok != "ok" && must_be_clean {
            return Err(format!("quick_check after restore: {ok}"));
        }
        Ok(())
    })();
    match via_api {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(file = %dest.display(), "restore through SQLite failed ({e}); replacing the file whole");
            for suffix in ["-wal", "-shm", "-journal"] {
                let p = sibling_with_suffix(dest, suffix);
                if p.exists() {
                    std::fs::remove_file(&p).map_err(OpsError::io("removing", &p))?;
                }
            }
            copy_atomic(src, dest)
        }
    }
}

/// Restores into `tree` every file of the set's archive copy that is missing or differs there
/// (atomically, file by file). Files v1 wrote after the backup are left alone. Returns the count.
pub fn restore_files(set: &BackupSet, tree: &Path) -> Result<u64> {
    let Some(files_dir) = set.meta.files_dir.as_deref() else {
        return Ok(0);
    };
    let (entries, _) = read_manifest(&set.dir)?;
    let prefix = format!("{files_dir}/");
    let mut n = 0;
    for (rel, hash) in entries
        .iter()
        .filter_map(|(r, h)| r.strip_prefix(&prefix).map(|r| (r, h)))
    {
        let dest = tree.join(rel);
        let same = dest.is_file() && sha256_file(&dest).is_ok_and(|h| &h == hash);
        if !same {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(OpsError::io("creating", parent))?;
            }
            copy_atomic(&set.dir.join(files_dir).join(rel), &dest)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Opens v1 with the v1 reader (read-only) and runs its integrity check: damaged pages or an
/// unreadable schema are errors; known index problems are not.
pub fn check_v1(v1_db: &Path) -> Result<()> {
    let db = thywill_v1::V1Database::open(v1_db)?;
    let report = db.integrity()?;
    if !report.is_clean() {
        tracing::warn!(file = %v1_db.display(), missing_index_entries = report.missing_index_entries.len(), "v1 readable, with the index problems it had before");
    }
    Ok(())
}
