//! Errors that stop a validation before its checks can run (unusable input). A check that runs
//! and finds a problem is not an error: it is a failed [`crate::CheckResult`].

use std::path::PathBuf;

/// Why the validator could not run. Every message names the culprit (file, URL without password,
/// table) and [`ValidateError::exit_code`] gives the exit code of `spec/interfaces.md`.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The v1 database is unusable (missing, not SQLite, damaged pages, unknown schema, locked).
    #[error(transparent)]
    V1(#[from] thywill_v1::V1Error),
    /// The `--v2-db` URL is malformed.
    #[error(transparent)]
    V2Url(thywill_v2::Error),
    /// The v2 database cannot be opened (unreachable, refusing the credentials, not a database).
    #[error("cannot open the v2 database {url}: {message}")]
    V2Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's message, password redacted.
        message: String,
    },
    /// A read-back query on the v2 database failed (missing table, wrong schema).
    #[error("v2 database {url}: reading {what}: {message} (is this a migrated v2 database?)")]
    V2Query {
        /// The URL, password redacted.
        url: String,
        /// What was being read.
        what: String,
        /// The driver's message, password redacted.
        message: String,
    },
    /// An archive folder cannot be read.
    #[error("archive folder {path}: {message}")]
    Archive {
        /// The folder or file at fault.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The JSON report could not be written.
    #[error("cannot write the report {path}: {source}")]
    Report {
        /// The report file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ValidateError {
    /// The exit code of `spec/interfaces.md`: 2 for a malformed URL, 1 for a report that could not
    /// be written, 3 (unusable input) otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ValidateError::V1(e) => e.exit_code(),
            ValidateError::V2Url(_) => 2,
            ValidateError::Report { .. } => 1,
            _ => 3,
        }
    }
}
