//! Errors of the v1 reader: each names the file and, where it applies, the table and column.

use std::path::PathBuf;

/// Everything that can go wrong while opening or reading a v1 database.
#[derive(Debug, thiserror::Error)]
pub enum V1Error {
    /// The path does not exist.
    #[error("v1 database {path}: no such file (check --v1-db / V1_DB_PATH)")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The path is a folder.
    #[error("v1 database {path}: is a folder, not a SQLite file")]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file has no bytes.
    #[error("v1 database {path}: the file is empty (0 bytes), not a v1 database")]
    Empty {
        /// The path given.
        path: PathBuf,
    },
    /// The file does not start with the SQLite header.
    #[error("v1 database {path}: not a SQLite database (no SQLite header): {detail}")]
    NotSqlite {
        /// The path given.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The file is shorter than its header says.
    #[error("v1 database {path}: truncated: the header promises {expected} bytes but the file has {actual}; restore it from a backup")]
    Truncated {
        /// The path given.
        path: PathBuf,
        /// Bytes the header promises.
        expected: u64,
        /// Bytes on disk.
        actual: u64,
    },
    /// Table pages are damaged (integrity errors other than missing index entries).
    #[error("v1 database {path}: damaged pages ({} integrity error(s)), first: {}; restore it from a backup or repair it with sqlite3 .recover", errors.len(), errors.first().map(String::as_str).unwrap_or("?"))]
    Damaged {
        /// The path given.
        path: PathBuf,
        /// The integrity-check messages that are not missing index entries.
        errors: Vec<String>,
    },
    /// The file is SQLite but not a ThyWill v1 database.
    #[error(
        "v1 database {path}: unrecognisable schema: {detail} (is this a ThyWill v1 database?)"
    )]
    UnrecognisedSchema {
        /// The path given.
        path: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// A column the reader needs is absent.
    #[error("v1 database {path}: table {table} has no column {column}, which the migration needs")]
    MissingColumn {
        /// The path given.
        path: PathBuf,
        /// The table.
        table: String,
        /// The missing column.
        column: String,
    },
    /// Another process holds a lock the reader waited for in vain.
    #[error("v1 database {path}: locked by another process (waited {waited_ms} ms); stop the v1 writer or put v1 in maintenance mode first")]
    Locked {
        /// The path given.
        path: PathBuf,
        /// How long the reader waited.
        waited_ms: u64,
    },
    /// Any other SQLite error while reading a table.
    #[error("v1 database {path}: reading {table}: {source}")]
    Sqlite {
        /// The path given.
        path: PathBuf,
        /// The table being read (or `sqlite_master`).
        table: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// An I/O error on the file itself.
    #[error("v1 database {path}: {source}")]
    Io {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A v1 archive folder (or a file in it) cannot be read: exit code 3.
    #[error("cannot read archive source {path}: {source}; check that it exists and is readable")]
    ArchiveUnreadable {
        /// The folder or file that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// v1's e-mail database (`--v1-email-db`) is missing or not one: exit code 3.
    #[error("v1 e-mail database {path}: {detail} (check --v1-email-db)")]
    EmailDb {
        /// The file given.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The e-mail key file (`--v1-email-key-file`) cannot be read or is empty.
    #[error("e-mail key file {path}: {detail} (check --v1-email-key-file)")]
    EmailKey {
        /// The file given.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A malformed v1 archive file (exit code 3).
    #[error("{path}:{line}: {message}")]
    ArchiveParse {
        /// The file (relative to its archive root when known).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        message: String,
    },
}

impl V1Error {
    /// The exit code of `spec/interfaces.md` for this error: 3 (unusable input), whatever the
    /// variant. Every crate that wraps a `V1Error` asks it here, so "v1 → exit 3" is decided once.
    pub fn exit_code(&self) -> u8 {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v1_error_is_unusable_input() {
        let path = PathBuf::from("thywill.db");
        let errors = [
            V1Error::Missing { path: path.clone() },
            V1Error::Locked {
                path: path.clone(),
                waited_ms: 5,
            },
            V1Error::Io {
                path,
                source: std::io::Error::other("x"),
            },
        ];
        for e in errors {
            assert_eq!(e.exit_code(), 3, "{e}");
        }
    }
}
