//! The crate's error type: every variant names the file or the record at fault.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias of this crate.
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, carrying or writing archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A source archive folder (or a file in it) cannot be read: exit code 3.
    #[error("cannot read archive source {path}: {source}; check that it exists and is readable")]
    SourceUnreadable {
        /// The folder or file that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An input/output error on a target file.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or folder at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The disk filled up (or a file-size limit was hit) while writing: no partial file was left
    /// under a final name.
    #[error(
        "no space left (or file size limit) while writing {path}: {source}; no partial file was \
         left under its final name: free space and run again"
    )]
    NoSpace {
        /// The file being written.
        path: PathBuf,
        /// The underlying error (ENOSPC, EFBIG or EDQUOT).
        #[source]
        source: io::Error,
    },
    /// The target folder already holds a file with other content at a path this crate would write:
    /// exit code 4 ("foreign files").
    #[error(
        "{path} already exists in the target archive folder with different content (a foreign \
         file); refusing to overwrite it: move it away or choose an empty target folder"
    )]
    ForeignFile {
        /// The existing file.
        path: PathBuf,
    },
    /// The target archive folder holds a file no migration wrote (no manifest, or not listed in
    /// it): exit code 4 ("foreign files"). Checked before the run reads v1.
    #[error(
        "the target archive folder {root} holds {file}, which no migration wrote (it is not in \
         the folder's MANIFEST.sha256); refusing to write there: move it away or choose an empty \
         or new folder for --archives-v2"
    )]
    ForeignFolder {
        /// The target archive root.
        root: PathBuf,
        /// The first foreign file found (relative to the root).
        file: String,
    },
    /// The target archive folder (or the folder that would hold it) cannot be written: exit 3.
    #[error("cannot write the target archive folder {path}: {source}; check --archives-v2 and its permissions")]
    TargetUnwritable {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A path that would leave the archive root (`..`, absolute, through a symlink) or is not one
    /// this crate may write.
    #[error("refusing unsafe archive path {path}: {reason}")]
    UnsafePath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A one-line field (name, id, audience …) contains a line break.
    #[error(
        "{record}: field `{field}` contains a line break; a one-line field cannot be archived"
    )]
    LineBreak {
        /// The record, e.g. `user 0123…`.
        record: String,
        /// The field name.
        field: &'static str,
    },
    /// An id that is not 32 lower-case hex characters.
    #[error("{record}: invalid id {value:?} (expected 32 lower-case hex characters)")]
    InvalidId {
        /// The record holding the id.
        record: String,
        /// The id as given.
        value: String,
    },
    /// A record that cannot be archived for another reason (e.g. a year outside 1..=9999).
    #[error("{record}: {message}")]
    InvalidRecord {
        /// The record at fault.
        record: String,
        /// What is wrong with it.
        message: String,
    },
    /// A malformed archive file (v1 formats, or a v2 file this crate must update in place).
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file (relative to its archive root when known).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A copied file whose bytes did not verify against the source's sha256.
    #[error("copy of {path} failed verification: sha256 {expected} expected, {actual} found")]
    VerifyFailed {
        /// The destination file.
        path: PathBuf,
        /// The source's digest.
        expected: String,
        /// The copy's digest.
        actual: String,
    },
}

impl ArchiveError {
    /// The process exit code a binary should use for this error (`spec/interfaces.md`):
    /// 3 for unusable input, 4 for a refusal for safety, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ArchiveError::SourceUnreadable { .. }
            | ArchiveError::Parse { .. }
            | ArchiveError::TargetUnwritable { .. } => 3,
            ArchiveError::ForeignFile { .. } | ArchiveError::ForeignFolder { .. } => 4,
            _ => 1,
        }
    }

    /// Wraps an i/o error on `path` on the writing side, turning "disk full" and "file too large"
    /// into [`ArchiveError::NoSpace`].
    pub(crate) fn write(path: &Path, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => ArchiveError::NoSpace {
                path: path.to_path_buf(),
                source,
            },
            _ => ArchiveError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// Wraps an i/o error on the reading side of a source tree.
    pub(crate) fn source(path: &Path, source: io::Error) -> Self {
        ArchiveError::SourceUnreadable {
            path: path.to_path_buf(),
            source,
        }
    }
}
