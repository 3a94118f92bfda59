//! The crate's error type. Every message names the thing at fault (URL without password, table,
//! key); [`Error::exit_code`] gives the exit code of `spec/interfaces.md` a binary should use.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the v2 writer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target URL is malformed or of an unknown scheme.
    #[error("invalid v2 database URL '{url}': {reason} (expected postgresql://…, postgres://…, sqlite://PATH or sqlite://:memory:)")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The target cannot be opened: unreachable, refusing the credentials, not a database.
    #[error("cannot open the v2 database {url}: {message}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's message, password redacted.
        message: String,
    },
    /// The target holds application data of another source (or of no recorded run).
    #[error("the v2 database {url} already holds application data {what}; pass --replace to empty it and start over")]
    ForeignData {
        /// The URL, password redacted.
        url: String,
        /// Whose data it is.
        what: String,
    },
    /// The target already holds a successful migration of the same source.
    #[error(
        "the v2 database {url} is already migrated from source sha256 {sha256} (run {run_id})"
    )]
    AlreadyMigrated {
        /// The URL, password redacted.
        url: String,
        /// The source fingerprint.
        sha256: String,
        /// The run that wrote the data.
        run_id: String,
    },
    /// A row breaks a v2 constraint (checked before anything is written).
    #[error("{table} row '{key}' breaks a v2 constraint: {reason}")]
    InvalidRow {
        /// The v2 table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// Which constraint and why.
        reason: String,
    },
    /// Creating or upgrading the schema failed.
    #[error("cannot create or upgrade the v2 schema in {url}: {message}")]
    Schema {
        /// The URL, password redacted.
        url: String,
        /// The cause.
        message: String,
    },
    /// A database statement failed.
    #[error("v2 database {url}: {context}: {message}")]
    Database {
        /// The URL, password redacted.
        url: String,
        /// What was being done (e.g. `COPY prayer_marks`).
        context: String,
        /// The driver's message, password redacted.
        message: String,
    },
    /// A file operation failed (dry-run copy of a SQLite file).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The load was used after an earlier error; it can only be rolled back.
    #[error("the load of run {run_id} failed earlier and can only be rolled back")]
    Poisoned {
        /// The run.
        run_id: String,
    },
    /// `remove_run` was given a run id the target does not know.
    #[error("the v2 database {url} has no migration run {run_id}")]
    UnknownRun {
        /// The URL, password redacted.
        url: String,
        /// The run id.
        run_id: String,
    },
}

impl Error {
    /// The exit code of `spec/interfaces.md` for this error: 2 for a malformed URL (usage), 3 for an
    /// unusable target (unreachable, bad credentials, not a database), 4 for a refusal for safety
    /// (foreign data), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidUrl { .. } => 2,
            Error::Connect { .. } => 3,
            Error::ForeignData { .. } => 4,
            _ => 1,
        }
    }
}

impl From<diesel::result::Error> for Error {
    /// Only used inside COPY callbacks, where the URL is added by the caller afterwards.
    fn from(e: diesel::result::Error) -> Self {
        Error::Database {
            url: String::new(),
            context: "statement".into(),
            message: e.to_string(),
        }
    }
}
