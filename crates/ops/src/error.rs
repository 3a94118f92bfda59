//! The crate's error type. Every message names the culprit (file, step, hook command, URL without
//! password) and what to do; [`OpsError::exit_code`] maps it to the exit codes of
//! `spec/interfaces.md`.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = OpsError> = std::result::Result<T, E>;

/// Everything that can go wrong in a backup, a rollback or a cut-over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// The backup folder cannot be created or written to (exit 4).
    #[error("backup folder {path} is not writable: {source} (give a folder this user can write with --backup-dir or BACKUP_DIR)")]
    BackupDirNotWritable {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An input file or folder is missing or not what it should be (exit 3).
    #[error("{path}: {reason}")]
    UnusableInput {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A file operation failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", …).
        context: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// SQLite refused an operation on a database file.
    #[error("SQLite database {path}, {context}: {source}")]
    Sqlite {
        /// What was being done.
        context: String,
        /// The file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The v1 reader refused the v1 file.
    #[error(transparent)]
    V1(#[from] thywill_v1::V1Error),
    /// The v2 database refused or could not be reached (the URL is redacted by `thywill-v2`).
    #[error(transparent)]
    V2(#[from] thywill_v2::Error),
    /// A backup does not verify: it is refused for a restore (exit 4).
    #[error("backup {path} does not verify: {}; use another backup (ls the backup folder) or take a new one with thywill-backup", problems.join("; "))]
    BackupInvalid {
        /// The backup set folder.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// A hook command or a child step exited non-zero or could not be started.
    #[error("{what} `{command}` {outcome}")]
    CommandFailed {
        /// Which hook or step ("hook --switch-cmd", "thywill-migrate").
        what: String,
        /// The command line.
        command: String,
        /// "exited with code 3", "was killed by a signal", "could not be started: …".
        outcome: String,
        /// The child's exit code, when it exited.
        code: Option<i32>,
    },
    /// One of our own binaries run as a step (`thywill-migrate`, `thywill-validate`) refused for
    /// safety: it exited 4 (foreign data in v2, foreign files in the archive folder), and so does
    /// the caller. A hook's exit codes are the operator's own and never mean this.
    #[error("{what} `{command}` refused for safety (exited with code 4)")]
    ChildRefused {
        /// Which step ("thywill-migrate").
        what: String,
        /// The command line.
        command: String,
    },
    /// The rollback refused before touching anything (unknown run id, v2 unreachable): exit 4.
    #[error("rollback refused: {reason}")]
    RollbackRefused {
        /// What is wrong and what to do.
        reason: String,
    },
    /// SIGINT or SIGTERM arrived (the binary installed `thywill_pipeline::interrupt`): the job
    /// stopped at its next file or step and cleaned up (exit 128 + the signal: 130, 143).
    #[error("interrupted by {}", thywill_pipeline::interrupt::signal_name(*signal))]
    Interrupted {
        /// The signal number.
        signal: i32,
    },
    /// The rollback could not do everything; each problem is listed (exit 5).
    #[error("rollback incomplete: {}", problems.join("; "))]
    RollbackIncomplete {
        /// Every problem, in order.
        problems: Vec<String>,
    },
    /// A cut-over step failed; the rollback ran (its outcome is part of the message).
    #[error("cut-over failed at step '{step}': {cause}; {rollback}")]
    CutoverFailed {
        /// The step's name.
        step: &'static str,
        /// What went wrong in it.
        cause: String,
        /// What the automatic rollback did.
        rollback: String,
        /// The exit code: 4 when the step refused for safety, 5 when the rollback is
        /// incomplete, 1 otherwise.
        exit: u8,
    },
}

impl OpsError {
    /// The exit code of `spec/interfaces.md`: 3 unusable input, 4 refused for safety, 5 a
    /// rollback that acted but could not do everything (docs/runbook.md), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            OpsError::BackupDirNotWritable { .. }
            | OpsError::BackupInvalid { .. }
            | OpsError::RollbackRefused { .. }
            | OpsError::ChildRefused { .. } => 4,
            OpsError::RollbackIncomplete { .. } => 5,
            OpsError::CutoverFailed { exit, .. } => *exit,
            OpsError::Interrupted { signal } => interrupted_exit(*signal),
            OpsError::UnusableInput { .. } => 3,
            OpsError::V1(e) => e.exit_code(),
            OpsError::V2(e) => e.exit_code(),
            _ => 1,
        }
    }

    /// `Err(OpsError::Interrupted)` once SIGINT or SIGTERM has arrived: the jobs call it between
    /// files and steps (one atomic load; never set unless the binary installed the handler).
    pub fn check_interrupt() -> Result<()> {
        match thywill_pipeline::interrupt::received() {
            None => Ok(()),
            Some(signal) => Err(OpsError::Interrupted { signal }),
        }
    }

    /// An [`OpsError::Io`] for `path`.
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> OpsError {
        let path = path.into();
        move |source| OpsError::Io {
            context,
            path,
            source,
        }
    }

    /// An [`OpsError::Sqlite`] for `path`.
    pub(crate) fn sqlite(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(rusqlite::Error) -> OpsError {
        let (context, path) = (context.into(), path.into());
        move |source| OpsError::Sqlite {
            context,
            path,
            source,
        }
    }
}

/// The exit code of a run stopped by `signal`: 128 + the signal (130 SIGINT, 143 SIGTERM).
pub fn interrupted_exit(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(1)
}
