//! Validation of everything that becomes a file name or a one-line field.
//!
//! File names are only ever built from validated 32-hex ids and `YYYY-MM` months; relative paths
//! are checked component by component before they are joined to an archive root.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDateTime, Timelike};

use crate::error::{ArchiveError, Result};

/// Checks that `value` is a 32-character lower-case hex id; `record` names the record for errors.
pub fn validate_id(record: &dyn fmt::Display, value: &str) -> Result<()> {
    if value.len() == 32
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ArchiveError::InvalidId {
            record: record.to_string(),
            value: value.to_string(),
        })
    }
}

pub use thywill_v1::archive::is_line_break;

/// Refuses a one-line field (name, id, audience, email) that contains a line break.
pub fn check_one_line(record: &dyn fmt::Display, field: &'static str, value: &str) -> Result<()> {
    if value.chars().any(is_line_break) {
        Err(ArchiveError::LineBreak {
            record: record.to_string(),
            field,
        })
    } else {
        Ok(())
    }
}

/// A calendar month, the key of the monthly v2 files (`activity/<YYYY-MM>.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    /// Year, 1..=9999.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
}

impl YearMonth {
    /// The month of a timestamp; refuses years outside 1..=9999 (they would not fit `YYYY`).
    pub fn of(record: &dyn fmt::Display, at: &NaiveDateTime) -> Result<Self> {
        Self::new(at.year(), at.month()).ok_or_else(|| ArchiveError::InvalidRecord {
            record: record.to_string(),
            message: format!("timestamp {at} is outside the years 1..=9999"),
        })
    }

    /// A month from its parts, `None` when out of range.
    pub fn new(year: i32, month: u32) -> Option<Self> {
        ((1..=9999).contains(&year) && (1..=12).contains(&month))
            .then_some(YearMonth { year, month })
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !s[..4].bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if !s[5..].bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Self::new(s[..4].parse().ok()?, s[5..].parse().ok()?)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Drops the sub-second part: v2 archives show whole seconds, and every ordering uses what is
/// shown so that an incremental update and a full render agree.
pub fn whole_seconds(at: &NaiveDateTime) -> NaiveDateTime {
    at.with_nanosecond(0).unwrap_or(*at)
}

/// Checks a `/`-separated relative path (the v1 reader's [`thywill_v1::archive::check_relative`]):
/// not empty, not absolute, no `..`, `.` or empty components, no NUL, backslash or line break.
/// Returns its components.
pub fn check_relative(rel: &str) -> Result<Vec<&str>> {
    thywill_v1::archive::check_relative(rel).map_err(|reason| ArchiveError::UnsafePath {
        path: rel.to_string(),
        reason: reason.to_string(),
    })
}

/// Joins a checked relative path to `root`, refusing any existing ancestor below `root` that is
/// a symlink (it could lead out of the root) or not a directory.
pub fn safe_join(root: &Path, rel: &str) -> Result<PathBuf> {
    let parts = check_relative(rel)?;
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        if i + 1 < parts.len() {
            check_not_symlink(&path, rel)?;
        }
    }
    Ok(path)
}

/// Refuses `dir` when it exists and is a symlink or not a directory.
pub(crate) fn check_not_symlink(dir: &Path, rel: &str) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(ArchiveError::UnsafePath {
            path: rel.to_string(),
            reason: format!(
                "{} is a symlink (it could lead outside the root)",
                dir.display()
            ),
        }),
        Ok(meta) if !meta.is_dir() => Err(ArchiveError::UnsafePath {
            path: rel.to_string(),
            reason: format!("{} is not a directory", dir.display()),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_32_lower_hex() {
        assert!(validate_id(&"u", "0123456789abcdef0123456789abcdef").is_ok());
        for bad in [
            "0123456789ABCDEF0123456789abcdef",
            "0123",
            "../../etc/passwd",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcde/",
        ] {
            let err = validate_id(&"user x", bad).unwrap_err();
            assert!(err.to_string().contains("user x"), "{err}");
        }
    }

    #[test]
    fn one_line_fields_refuse_line_breaks() {
        assert!(check_one_line(&"user a", "display_name", "Mary 'Q' \u{202e}x").is_ok());
        for bad in ["a\nb", "a\rb", "a\u{2028}b"] {
            let err = check_one_line(&"user a", "display_name", bad).unwrap_err();
            assert!(err.to_string().contains("user a") && err.to_string().contains("display_name"));
        }
    }

    #[test]
    fn relative_paths_cannot_climb_out() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
        ] {
            assert!(check_relative(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            check_relative("users/a.txt").unwrap(),
            vec!["users", "a.txt"]
        );
    }

    #[test]
    fn symlinked_directories_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("users")).unwrap();
        let err = safe_join(root.path(), "users/x.txt").unwrap_err();
        assert!(matches!(err, ArchiveError::UnsafePath { .. }), "{err}");
    }

    #[test]
    fn months() {
        assert_eq!(YearMonth::parse("2025-06").unwrap().to_string(), "2025-06");
        assert!(YearMonth::parse("2025-13").is_none());
        assert!(YearMonth::parse("25-06").is_none());
        assert!(YearMonth::parse("2025_06").is_none());
    }
}
