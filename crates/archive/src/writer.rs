//! Atomic, batched file writing under an archive root.
//!
//! Every file goes to a temp file in its own folder, is made durable, and is renamed over its
//! final name; each touched folder is fsynced once per batch, after all the renames. A file whose
//! bytes equal the existing file is left alone. Temp files are created with mode 0644 and folders
//! with 0755 (the process umask can only make them stricter).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{ArchiveError, Result};
use crate::safety::{check_not_symlink, check_relative};

/// Suffix of this crate's temp files; the manifest ignores them and writers remove stale ones.
pub const TEMP_SUFFIX: &str = ".thywill-tmp";

/// How written files are made durable before they are renamed over their final names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// One `syncfs(2)` per batch flushes every temp file of the batch at once (fast for tens of
    /// thousands of files; it also flushes other dirty data of the same filesystem).
    Batched,
    /// `fdatasync(2)` on each file before it is closed (right for a handful of files).
    PerFile,
}

/// What a write did to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file did not exist.
    Created,
    /// The file existed with other bytes and was replaced.
    Updated,
    /// The file existed with the same bytes; nothing was written.
    Unchanged,
}

/// What to do when the final name exists with other content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDifferent {
    /// Replace it (v2 files this crate owns).
    Replace,
    /// Refuse with [`ArchiveError::ForeignFile`] (carried v1 files).
    Refuse,
}

struct Pending {
    tmp: PathBuf,
    dest: PathBuf,
}

/// Writes files atomically under one root, in batches.
pub struct AtomicWriter {
    root: PathBuf,
    durability: Durability,
    batch_files: usize,
    pending: Vec<Pending>,
    touched_dirs: BTreeSet<PathBuf>,
    ready_dirs: HashSet<PathBuf>,
    digests: HashMap<String, [u8; 32]>,
    pid: u32,
}

impl AtomicWriter {
    /// A writer under `root` (created with mode 0755 when missing). `batch_files` is how many
    /// files are staged before a flush (at least 1).
    pub fn new(root: &Path, durability: Durability, batch_files: usize) -> Result<Self> {
        if let Ok(meta) = fs::symlink_metadata(root) {
            if !meta.is_dir() && !meta.file_type().is_symlink() {
                return Err(ArchiveError::UnsafePath {
                    path: root.display().to_string(),
                    reason: "the archive root is not a directory".into(),
                });
            }
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(root)
            .map_err(|e| ArchiveError::write(root, e))?;
        Ok(AtomicWriter {
            root: root.to_path_buf(),
            durability,
            batch_files: batch_files.max(1),
            pending: Vec::new(),
            touched_dirs: BTreeSet::new(),
            ready_dirs: HashSet::new(),
            digests: HashMap::new(),
            pid: std::process::id(),
        })
    }

    /// The archive root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The sha256 of every file written or found unchanged so far, by relative path.
    pub fn digests(&self) -> &HashMap<String, [u8; 32]> {
        &self.digests
    }

    /// Writes `bytes` at the relative path `rel`, replacing a different existing file.
    pub fn put(&mut self, rel: &str, bytes: &[u8]) -> Result<Outcome> {
        self.put_with(rel, bytes, OnDifferent::Replace, false)
    }

    /// Writes `bytes` at `rel`. `verify` re-reads the temp file and checks its sha256 before the
    /// rename.
    pub(crate) fn put_with(
        &mut self,
        rel: &str,
        bytes: &[u8],
        on_different: OnDifferent,
        verify: bool,
    ) -> Result<Outcome> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let dest = self.prepare_dir(rel)?;
        let outcome = match existing_equals(&dest, rel, bytes)? {
            Some(true) => Outcome::Unchanged,
            Some(false) if on_different == OnDifferent::Refuse => {
                return Err(ArchiveError::ForeignFile { path: dest });
            }
            Some(false) => Outcome::Updated,
            None => Outcome::Created,
        };
        if outcome != Outcome::Unchanged {
            let tmp = temp_name(&dest, self.pid);
            if let Err(e) = self.write_temp(&tmp, &dest, bytes, &digest, verify) {
                let _ = fs::remove_file(&tmp);
                self.abort();
                return Err(e);
            }
            self.pending.push(Pending { tmp, dest });
            if self.pending.len() >= self.batch_files {
                self.flush()?;
            }
        }
        self.digests.insert(rel.to_string(), digest);
        Ok(outcome)
    }

    fn write_temp(
        &self,
        tmp: &Path,
        dest: &Path,
        bytes: &[u8],
        digest: &[u8; 32],
        verify: bool,
    ) -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(tmp)
            .map_err(|e| ArchiveError::write(dest, e))?;
        file.write_all(bytes)
            .map_err(|e| ArchiveError::write(dest, e))?;
        if self.durability == Durability::PerFile {
            file.sync_data().map_err(|e| ArchiveError::write(dest, e))?;
        }
        drop(file);
        if verify {
            let back = fs::read(tmp).map_err(|e| ArchiveError::write(dest, e))?;
            let actual: [u8; 32] = Sha256::digest(&back).into();
            if &actual != digest {
                return Err(ArchiveError::VerifyFailed {
                    path: dest.to_path_buf(),
                    expected: hex::encode(digest),
                    actual: hex::encode(actual),
                });
            }
        }
        Ok(())
    }

    /// Checks the path, creates its folders (0755) and returns the final absolute path.
    fn prepare_dir(&mut self, rel: &str) -> Result<PathBuf> {
        let parts = check_relative(rel)?;
        let mut dir = self.root.clone();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            if self.ready_dirs.contains(&dir) {
                continue;
            }
            check_not_symlink(&dir, rel)?;
            if !dir.exists() {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&dir)
                    .map_err(|e| ArchiveError::write(&dir, e))?;
                if let Some(parent) = dir.parent() {
                    self.touched_dirs.insert(parent.to_path_buf());
                }
            }
            self.ready_dirs.insert(dir.clone());
        }
        let dest = dir.join(parts[parts.len() - 1]);
        self.touched_dirs.insert(dir);
        Ok(dest)
    }

    /// Makes the staged files durable, renames them over their final names and fsyncs each
    /// touched folder once.
    pub fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() && self.durability == Durability::Batched {
            let root = File::open(&self.root).map_err(|e| ArchiveError::write(&self.root, e))?;
            // SAFETY: syncfs only reads the descriptor, which `root` keeps open.
            if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&root)) } != 0 {
                let e = std::io::Error::last_os_error();
                self.abort();
                return Err(ArchiveError::write(&self.root, e));
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for (i, p) in pending.iter().enumerate() {
            if let Err(e) = fs::rename(&p.tmp, &p.dest) {
                for rest in &pending[i..] {
                    let _ = fs::remove_file(&rest.tmp);
                }
                return Err(ArchiveError::write(&p.dest, e));
            }
        }
        for dir in std::mem::take(&mut self.touched_dirs) {
            let f = File::open(&dir).map_err(|e| ArchiveError::write(&dir, e))?;
            f.sync_all().map_err(|e| ArchiveError::write(&dir, e))?;
        }
        Ok(())
    }

    /// Removes every staged temp file (after an error, or when dropped unflushed).
    fn abort(&mut self) {
        for p in self.pending.drain(..) {
            let _ = fs::remove_file(&p.tmp);
        }
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        self.abort();
    }
}

fn temp_name(dest: &Path, pid: u32) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{pid}{TEMP_SUFFIX}"))
}

/// `None` when `dest` does not exist, else whether its bytes equal `bytes`. A symlink at the
/// final name is refused (reading through it could leave the root).
fn existing_equals(dest: &Path, rel: &str, bytes: &[u8]) -> Result<Option<bool>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dest);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ArchiveError::UnsafePath {
                path: rel.to_string(),
                reason: "the target is a symlink".into(),
            })
        }
        Err(e) => return Err(ArchiveError::write(dest, e)),
    };
    let meta = file.metadata().map_err(|e| ArchiveError::write(dest, e))?;
    if !meta.is_file() {
        return Err(ArchiveError::UnsafePath {
            path: rel.to_string(),
            reason: "the target exists and is not a regular file".into(),
        });
    }
    if meta.len() != bytes.len() as u64 {
        return Ok(Some(false));
    }
    let mut existing = Vec::with_capacity(bytes.len());
    file.read_to_end(&mut existing)
        .map_err(|e| ArchiveError::write(dest, e))?;
    Ok(Some(existing == bytes))
}

/// Removes temp files a killed run left anywhere under `root`.
pub(crate) fn remove_stale_temps(root: &Path) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    // The whole tree: a killed run may have staged files in any folder, the carried v1
    // folders included. Links are not followed out of the root.
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry =
            entry.map_err(|e| ArchiveError::write(root, std::io::Error::other(e.to_string())))?;
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
            fs::remove_file(entry.path()).map_err(|e| ArchiveError::write(entry.path(), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn counts_created_updated_unchanged_and_modes() {
        let root = tempfile::tempdir().unwrap();
        let mut w = AtomicWriter::new(root.path(), Durability::Batched, 2).unwrap();
        assert_eq!(w.put("a/b/c.txt", b"one").unwrap(), Outcome::Created);
        assert_eq!(w.put("a/d.txt", b"two").unwrap(), Outcome::Created);
        assert_eq!(w.put("a/e.txt", b"x").unwrap(), Outcome::Created);
        w.flush().unwrap();
        assert_eq!(w.put("a/b/c.txt", b"one").unwrap(), Outcome::Unchanged);
        assert_eq!(w.put("a/d.txt", b"TWO").unwrap(), Outcome::Updated);
        w.flush().unwrap();
        assert_eq!(fs::read(root.path().join("a/d.txt")).unwrap(), b"TWO");
        let mode = fs::metadata(root.path().join("a/b/c.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o022, 0, "file is group/world writable: {mode:o}");
        let mode = fs::metadata(root.path().join("a/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o022, 0, "dir is group/world writable: {mode:o}");
        let names: Vec<_> = fs::read_dir(root.path().join("a")).unwrap().collect();
        assert_eq!(names.len(), 3, "no temp files left");
    }

    #[test]
    fn refuses_foreign_files_and_escapes() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("x.txt"), b"theirs").unwrap();
        let mut w = AtomicWriter::new(root.path(), Durability::PerFile, 10).unwrap();
        let err = w
            .put_with("x.txt", b"ours", OnDifferent::Refuse, true)
            .unwrap_err();
        assert_eq!(err.exit_code(), 4, "{err}");
        assert!(w.put("../x.txt", b"a").is_err());
        assert!(w.put("/tmp/x.txt", b"a").is_err());
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("t"), root.path().join("link.txt")).unwrap();
        assert!(w.put("link.txt", b"a").is_err());
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
        assert!(w.put("dir/a.txt", b"a").is_err());
        w.flush().unwrap();
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
