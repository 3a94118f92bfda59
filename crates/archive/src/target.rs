//! The checks of a target archive folder that can be made before a run reads v1, so that a run
//! that would be refused is refused at once: the v2 root must not overlap the v1 tree, must be
//! writable, and, when it exists, must hold only what migrations wrote (its manifest's files).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{ArchiveError, Result};
use crate::manifest::{read_manifest, relative_name, MANIFEST_NAME};
use crate::writer::TEMP_SUFFIX;

/// Checks `v2_root` before a run: no overlap with `v1_tree` ([`ArchiveError::UnsafePath`]),
/// writable ([`ArchiveError::TargetUnwritable`], exit 3), and no foreign file in it
/// ([`ArchiveError::ForeignFolder`], exit 4). Touches nothing.
pub fn check_target_folder(v2_root: &Path, v1_tree: Option<&Path>) -> Result<()> {
    let (existing, rest) = nearest_existing(v2_root);
    if let Some(v1) = v1_tree {
        if let (Ok(v1_canon), Ok(base)) = (fs::canonicalize(v1), fs::canonicalize(&existing)) {
            let root_canon = base.join(rest);
            if root_canon.starts_with(&v1_canon) || v1_canon.starts_with(&root_canon) {
                return Err(ArchiveError::UnsafePath {
                    path: v2_root.display().to_string(),
                    reason: format!(
                        "the v2 root and the v1 tree {} overlap; give --archives-v2 a folder \
                         outside --archives-v1",
                        v1.display()
                    ),
                });
            }
        }
    }
    probe_writable(&existing)?;
    if existing.as_path() == v2_root {
        refuse_foreign_files(v2_root)?;
    }
    Ok(())
}

/// `path`'s nearest existing ancestor (itself when it exists; `.` for a relative path with none)
/// and the part of `path` below it that does not exist yet.
fn nearest_existing(path: &Path) -> (PathBuf, PathBuf) {
    let mut p = path;
    loop {
        if fs::symlink_metadata(p).is_ok() {
            let rest = path.strip_prefix(p).unwrap_or(Path::new(""));
            return (p.to_path_buf(), rest.to_path_buf());
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => return (PathBuf::from("."), path.to_path_buf()),
        }
    }
}

fn probe_writable(dir: &Path) -> Result<()> {
    writable_folder(dir).map_err(|source| ArchiveError::TargetUnwritable {
        path: dir.to_path_buf(),
        source,
    })
}

/// Whether `dir` is a folder this process may create entries in (`access(2)` with
/// `W_OK | X_OK`: the permissions and a read-only file system), asked without creating anything,
/// so that a run killed at any moment leaves no probe file behind.
pub fn writable_folder(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if !fs::metadata(dir)?.is_dir() {
        return Err(std::io::Error::other("not a folder"));
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("a NUL byte in the path"))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Refuses an existing folder holding a regular file its manifest does not list (every file,
/// when there is no manifest). The manifest, this crate's temp files and folders are not files
/// of the archive.
fn refuse_foreign_files(root: &Path) -> Result<()> {
    let listed = read_manifest(root)?.unwrap_or_default();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let entry = entry.map_err(|e| ArchiveError::SourceUnreadable {
            path: e.path().unwrap_or(root).to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = relative_name(root, entry.path())?;
        if rel == MANIFEST_NAME || rel.ends_with(TEMP_SUFFIX) || listed.contains_key(&rel) {
            continue;
        }
        return Err(ArchiveError::ForeignFolder {
            root: root.to_path_buf(),
            file: rel,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_foreign_files_overlap_and_unwritable_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // A new folder, an empty one: fine.
        check_target_folder(&d.join("new/v2"), None).unwrap();
        fs::create_dir(d.join("empty")).unwrap();
        check_target_folder(&d.join("empty"), None).unwrap();
        // A file nobody listed: refused, exit 4, named.
        fs::create_dir(d.join("used")).unwrap();
        fs::write(d.join("used/notes.txt"), "mine").unwrap();
        let e = check_target_folder(&d.join("used"), None).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().contains("notes.txt"), "{e}");
        // Listed in the manifest: a folder an earlier run wrote.
        fs::write(
            d.join("used").join(MANIFEST_NAME),
            format!("{}  notes.txt\n", "0".repeat(64)),
        )
        .unwrap();
        check_target_folder(&d.join("used"), None).unwrap();
        // Beside the v1 tree (the README's layout): fine, also when nothing of it exists yet.
        fs::create_dir_all(d.join("site/v1")).unwrap();
        check_target_folder(&d.join("site/v2"), Some(&d.join("site/v1"))).unwrap();
        check_target_folder(&d.join("site/new/v2"), Some(&d.join("site/v1"))).unwrap();
        // Inside the v1 tree, or holding it: refused.
        fs::create_dir(d.join("v1")).unwrap();
        let e = check_target_folder(&d.join("v1/v2"), Some(&d.join("v1"))).unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
        let e = check_target_folder(d, Some(&d.join("v1"))).unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
        // Under a file: not writable, exit 3.
        fs::write(d.join("file"), "x").unwrap();
        let e = check_target_folder(&d.join("file"), None).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.to_string().contains("cannot write"), "{e}");
    }
}
