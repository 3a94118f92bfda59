//! Carrying a v1 archive tree into the v2 root, verbatim, at the same relative paths.
//!
//! Decisions: only regular files are copied. Symlinks are never followed, whatever they point
//! at; each one is listed in [`CarryReport::skipped_symlinks`] with its kind (outside the tree,
//! loop, dangling, inside the tree) and the run goes on: a symlink is not v1 data (v1 wrote regular
//! files), and a report entry lets the operator see it without stopping the migration. Other
//! non-regular entries and names that are not UTF-8 go to [`CarryReport::skipped_other`]. A file
//! already in the target with the same bytes counts as unchanged; with other bytes it is refused
//! ([`ArchiveError::ForeignFile`], exit code 4). Every copy is checked by sha256 before it gets
//! its final name.

use std::fs;
use std::path::Path;

use crate::error::{ArchiveError, Result};
use crate::manifest::{relative_name, MANIFEST_NAME};
use crate::safety::YearMonth;
use crate::writer::{AtomicWriter, Durability, OnDifferent, Outcome};

/// An entry of the v1 tree that was not copied, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedEntry {
    /// Path relative to the v1 root (lossy when not UTF-8).
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// What carrying a v1 tree did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CarryReport {
    /// Files copied (they were not in the target).
    pub v1_files_copied: u64,
    /// Files already in the target with the same bytes.
    pub unchanged: u64,
    /// Bytes copied.
    pub bytes_copied: u64,
    /// Symlinks not followed.
    pub skipped_symlinks: Vec<SkippedEntry>,
    /// Other entries not copied (devices, fifos, sockets, names that are not UTF-8).
    pub skipped_other: Vec<SkippedEntry>,
}

/// Copies the v1 tree `source` into `root` (see the module documentation). Does not write a
/// manifest: [`crate::V2ArchiveWriter::finish`] lists carried files in it.
pub fn carry_v1_tree(source: &Path, root: &Path, durability: Durability) -> Result<CarryReport> {
    let mut writer = AtomicWriter::new(root, durability, 4096)?;
    let report = carry_into(&mut writer, source)?;
    writer.flush()?;
    Ok(report)
}

/// True for the relative names this crate writes as v2 files (a v1 file there would collide).
fn is_v2_name(rel: &str) -> bool {
    if rel == MANIFEST_NAME {
        return true;
    }
    let Some((dir, file)) = rel.split_once('/') else {
        return false;
    };
    let Some(stem) = file.strip_suffix(".txt") else {
        return false;
    };
    match dir {
        "users" | "prayers" => stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()),
        "activity" | "community" => YearMonth::parse(stem).is_some(),
        _ => false,
    }
}

fn symlink_kind(path: &Path, source_canon: &Path) -> String {
    match fs::canonicalize(path) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => "symlink loop (not followed)".into(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "dangling symlink (not followed)".into()
        }
        Err(e) => format!("symlink not followed: {e}"),
        Ok(target) if !target.starts_with(source_canon) => {
            format!(
                "symlink pointing outside the archive tree, to {} (not followed)",
                target.display()
            )
        }
        Ok(_) => {
            "symlink inside the archive tree (not followed; v1 writes regular files only)".into()
        }
    }
}

pub(crate) fn carry_into(writer: &mut AtomicWriter, source: &Path) -> Result<CarryReport> {
    let source_canon = fs::canonicalize(source).map_err(|e| ArchiveError::source(source, e))?;
    fs::read_dir(&source_canon).map_err(|e| ArchiveError::source(source, e))?;
    if let Ok(root_canon) = fs::canonicalize(writer.root()) {
        if root_canon.starts_with(&source_canon) || source_canon.starts_with(&root_canon) {
            return Err(ArchiveError::UnsafePath {
                path: writer.root().display().to_string(),
                reason: format!("the v2 root and the v1 tree {} overlap", source.display()),
            });
        }
    }
    let mut report = CarryReport::default();
    let walk = walkdir::WalkDir::new(&source_canon)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(source).to_path_buf();
            ArchiveError::source(&path, e.into())
        })?;
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let lossy = entry
            .path()
            .strip_prefix(&source_canon)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        if kind.is_symlink() {
            let reason = symlink_kind(entry.path(), &source_canon);
            tracing::warn!(path = %lossy, %reason, "v1 archive: symlink skipped");
            report.skipped_symlinks.push(SkippedEntry {
                path: lossy,
                reason,
            });
            continue;
        }
        if !kind.is_file() {
            report.skipped_other.push(SkippedEntry {
                path: lossy,
                reason: "not a regular file".into(),
            });
            continue;
        }
        let rel = match relative_name(&source_canon, entry.path()) {
            Ok(rel) if !rel.contains('\n') => rel,
            _ => {
                let reason = "file name is not UTF-8 or holds a line break (cannot be listed in the manifest)";
                report.skipped_other.push(SkippedEntry {
                    path: lossy,
                    reason: reason.into(),
                });
                continue;
            }
        };
        if is_v2_name(&rel) {
            return Err(ArchiveError::InvalidRecord {
                record: format!("v1 archive file {}", entry.path().display()),
                message: "its relative path is reserved for a v2 archive file".into(),
            });
        }
        let bytes = fs::read(entry.path()).map_err(|e| ArchiveError::source(entry.path(), e))?;
        match writer.put_with(&rel, &bytes, OnDifferent::Refuse, true)? {
            Outcome::Unchanged => report.unchanged += 1,
            _ => {
                report.v1_files_copied += 1;
                report.bytes_copied += bytes.len() as u64;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn v1_tree() -> tempfile::TempDir {
        let src = tempfile::tempdir().unwrap();
        let p = src.path();
        fs::create_dir_all(p.join("prayers/2025/06")).unwrap();
        fs::create_dir_all(p.join("users")).unwrap();
        fs::write(
            p.join("prayers/2025/06/2025_06_29_prayer_at_1933.txt"),
            "Prayer x\n",
        )
        .unwrap();
        fs::write(
            p.join("users/2025_06_users.txt"),
            "User Registrations for June 2025\n\n",
        )
        .unwrap();
        src
    }

    #[test]
    fn copies_verbatim_and_is_idempotent() {
        let src = v1_tree();
        let dst = tempfile::tempdir().unwrap();
        let r = carry_v1_tree(src.path(), dst.path(), Durability::Batched).unwrap();
        assert_eq!((r.v1_files_copied, r.unchanged), (2, 0));
        assert_eq!(
            fs::read(dst.path().join("users/2025_06_users.txt")).unwrap(),
            b"User Registrations for June 2025\n\n"
        );
        let r = carry_v1_tree(src.path(), dst.path(), Durability::Batched).unwrap();
        assert_eq!((r.v1_files_copied, r.unchanged), (0, 2));
    }

    #[test]
    fn symlinks_outside_and_loops_are_reported_not_followed() {
        let src = v1_tree();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "secret").unwrap();
        symlink(
            outside.path().join("secret"),
            src.path().join("users/evil.txt"),
        )
        .unwrap();
        symlink(outside.path(), src.path().join("prayers/outdir")).unwrap();
        symlink(src.path().join("loop_b"), src.path().join("loop_a")).unwrap();
        symlink(src.path().join("loop_a"), src.path().join("loop_b")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let r = carry_v1_tree(src.path(), dst.path(), Durability::PerFile).unwrap();
        assert_eq!(r.v1_files_copied, 2);
        assert_eq!(r.skipped_symlinks.len(), 4, "{r:?}");
        assert!(r.skipped_symlinks.iter().any(|s| s.reason.contains("loop")));
        assert!(r
            .skipped_symlinks
            .iter()
            .any(|s| s.reason.contains("outside")));
        assert!(!dst.path().join("users/evil.txt").exists());
        assert!(!dst.path().join("prayers/outdir").exists());
    }

    #[test]
    fn foreign_file_is_refused_with_exit_4() {
        let src = v1_tree();
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir_all(dst.path().join("users")).unwrap();
        fs::write(dst.path().join("users/2025_06_users.txt"), "something else").unwrap();
        let err = carry_v1_tree(src.path(), dst.path(), Durability::Batched).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("2025_06_users.txt"), "{err}");
    }

    #[test]
    fn unreadable_or_missing_source_is_exit_3() {
        let dst = tempfile::tempdir().unwrap();
        let err = carry_v1_tree(
            Path::new("/nonexistent/v1"),
            dst.path(),
            Durability::Batched,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("/nonexistent/v1"));
    }

    #[test]
    fn v2_names_are_recognised() {
        assert!(is_v2_name("MANIFEST.sha256"));
        assert!(is_v2_name("users/0123456789abcdef0123456789abcdef.txt"));
        assert!(is_v2_name("activity/2025-06.txt"));
        assert!(!is_v2_name("activity/activity_2025_06.txt"));
        assert!(!is_v2_name("users/2025_06_users.txt"));
    }
}
