//! Small file-system helpers shared by the backup, the rollback and the cut-over: hashing,
//! atomic writes, fsync of folders, and copying a tree without following symlinks out of it.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{OpsError, Result};

/// The sha256 (hex) of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(OpsError::io("reading", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(OpsError::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The write-ahead log beside a SQLite file: `<db>-wal`.
pub use thywill_v1::wal_path;

/// `<path><suffix>` (e.g. `thywill.db-shm`).
pub fn sibling_with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The fingerprint of a live SQLite database as it stands on disk: the sha256 of its file followed
/// by its `-wal` when there is one (the same definition as `thywill_v1::source_sha256`). Two equal
/// fingerprints mean nothing changed the database in between.
pub fn db_fingerprint(db: &Path) -> Result<String> {
    Ok(thywill_v1::source_sha256(db)?)
}

/// fsyncs a folder so that a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OpsError::io("syncing folder", dir))
}

/// The mode of what the tools write for the operator alone (reports, backups, timelines): they
/// hold member data and session tokens, so they are never world-readable, whatever the umask.
pub const PRIVATE_FILE: u32 = 0o600;
/// The mode of the folders holding such files.
pub const PRIVATE_DIR: u32 = 0o700;
/// The mode of what others must read (the members' status page).
pub const PUBLIC_FILE: u32 = 0o644;

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename over
/// `path`, fsync the folder. A reader sees the old content or the new, never a half-written file.
/// The file is [`PRIVATE_FILE`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] of a file others must read ([`PUBLIC_FILE`], the umask can only narrow it).
pub fn write_atomic_public(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, PUBLIC_FILE, |w| w.write_all(bytes))
}

/// [`write_atomic`] for content produced as it is written (a large report is streamed, never held
/// whole): `fill` writes into a buffered temporary file beside `path`, which replaces `path` only
/// when `fill` succeeded. On any error the temporary file is removed and `path` is untouched.
/// The file is [`PRIVATE_FILE`].
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    write_atomic_mode(path, PRIVATE_FILE, fill)
}

fn write_atomic_mode(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = parent_dir(path);
    let (tmp_path, tmp) = tempfile_in(&dir, path, mode)?;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, tmp);
    let written = fill(&mut out)
        .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp_path);
        return Err(OpsError::io("writing", path)(e));
    }
    fs::rename(&tmp_path, path).map_err(|e| {
        let _ = fs::remove_file(&tmp_path);
        OpsError::io("renaming into place", path)(e)
    })?;
    sync_dir(&dir)
}

/// Copies `from` to `to` atomically (temporary file beside `to`, fsync, rename). The copy keeps
/// the mode `to` had (a restored v1 database stays readable by the v1 service), else `from`'s.
pub fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_dir(to);
    let mode = fs::metadata(to)
        .or_else(|_| fs::metadata(from))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(PRIVATE_FILE);
    let (tmp_path, mut tmp) = tempfile_in(&dir, to, mode)?;
    // The umask narrowed the create mode; the copy gets the original's exactly.
    let _ = tmp.set_permissions(fs::Permissions::from_mode(mode));
    let mut src = File::open(from).map_err(OpsError::io("reading", from))?;
    let copied = std::io::copy(&mut src, &mut tmp).and_then(|_| tmp.sync_all());
    drop(tmp);
    if let Err(e) = copied.and_then(|_| fs::rename(&tmp_path, to)) {
        let _ = fs::remove_file(&tmp_path);
        return Err(OpsError::io("copying into", to)(e));
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn tempfile_in(dir: &Path, target: &Path, mode: u32) -> Result<(PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{name}.tmp{}.{attempt}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(OpsError::io("creating a temporary file in", dir)(e)),
        }
    }
    Err(OpsError::io("creating a temporary file in", dir)(
        std::io::Error::other("too many stale temporary files"),
    ))
}

/// What [`copy_tree`] did.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct TreeCopy {
    /// Regular files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Entries left out, each with the reason (symlinks, sockets, names a manifest cannot hold).
    pub skipped: Vec<String>,
}

/// Copies the regular files and folders of the tree `from` into `to` (created). Symlinks are never
/// followed (a link could lead out of the tree or into a loop): they are listed in
/// [`TreeCopy::skipped`], as are other special files and names that are not UTF-8 or contain a
/// line break (a `MANIFEST.sha256` line could not name them unambiguously).
pub fn copy_tree(from: &Path, to: &Path) -> Result<TreeCopy> {
    copy_tree_with(from, to, Links::Skip)
}

/// What [`copy_tree_with`] does with a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Leave it out and list it in [`TreeCopy::skipped`] (backups: a link is not data).
    Skip,
    /// Make the same link in the copy, pointing where the original points, never followed (the
    /// rehearsal: its copy must hold what the real tree holds, links included).
    Recreate,
}

/// [`copy_tree`] with a choice of what to do with symlinks.
pub fn copy_tree_with(from: &Path, to: &Path, links: Links) -> Result<TreeCopy> {
    let meta = fs::symlink_metadata(from).map_err(|e| OpsError::UnusableInput {
        path: from.to_path_buf(),
        reason: format!("archive folder unreadable: {e} (check --archives-v1)"),
    })?;
    if !meta.is_dir() {
        return Err(OpsError::UnusableInput {
            path: from.to_path_buf(),
            reason: "is not a folder (check --archives-v1)".into(),
        });
    }
    fs::create_dir_all(to).map_err(OpsError::io("creating", to))?;
    let mut out = TreeCopy::default();
    let walker = walkdir::WalkDir::new(from)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walker {
        // A long copy stops at the next file when SIGINT/SIGTERM arrives (backup, rehearsal).
        OpsError::check_interrupt()?;
        let entry = entry.map_err(|e| OpsError::UnusableInput {
            path: e.path().unwrap_or(from).to_path_buf(),
            reason: format!("archive tree unreadable: {e}"),
        })?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let ft = entry.file_type();
        let shown = rel.display().to_string();
        let printable = rel.to_str().is_some_and(|s| !s.contains(['\n', '\r']));
        if !printable {
            out.skipped
                .push(format!("{shown}: name is not UTF-8 or holds a line break"));
            continue;
        }
        let dest = to.join(rel);
        if ft.is_dir() {
            fs::create_dir_all(&dest).map_err(OpsError::io("creating", &dest))?;
        } else if ft.is_file() {
            let n = fs::copy(entry.path(), &dest).map_err(OpsError::io("copying into", &dest))?;
            out.files += 1;
            out.bytes += n;
        } else if ft.is_symlink() && links == Links::Recreate {
            let target =
                fs::read_link(entry.path()).map_err(OpsError::io("reading", entry.path()))?;
            std::os::unix::fs::symlink(&target, &dest).map_err(OpsError::io("linking", &dest))?;
        } else if ft.is_symlink() {
            out.skipped.push(format!("{shown}: symlink, not followed"));
        } else {
            out.skipped.push(format!("{shown}: not a regular file"));
        }
    }
    Ok(out)
}

/// Creates an empty [`PRIVATE_FILE`] at `path` unless a file is there already.
pub use thywill_v2::create_private_file;

/// Checks that `dir` exists (creating it if missing) and that this process may create entries
/// in it, with the archive target's `access(2)` check: nothing is created to find out, so a
/// backup killed at any moment leaves no probe file in the backup folder.
pub fn ensure_writable_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    thywill_archive::target::writable_folder(dir)
}

/// Creates `dir` and any missing parents [`PRIVATE_DIR`] (0700) whatever the umask; an existing
/// folder is left as it is.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_backup_folder_is_created_and_left_empty() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("a/backups");
        ensure_writable_dir(&backups).unwrap();
        assert_eq!(fs::read_dir(&backups).unwrap().count(), 0);
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(ensure_writable_dir(&file).is_err());
        assert!(ensure_writable_dir(&file.join("backups")).is_err());
    }

    #[test]
    fn an_atomic_write_replaces_the_file_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old\n").unwrap();

        // Content failing halfway (a report whose findings cannot be read back) leaves the old
        // file and no temporary file behind.
        let failed = write_atomic_with(&path, |w| {
            w.write_all(b"{\"half\": ")?;
            Err(std::io::Error::other("findings unreadable"))
        });
        let message = failed.unwrap_err().to_string();
        assert!(
            message.contains("report.json") && message.contains("findings unreadable"),
            "{message}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        write_atomic_with(&path, |w| w.write_all(b"new\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        write_atomic(&path, b"newer\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "newer\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, PRIVATE_FILE, "the operator's alone");
        let public = dir.path().join("status.html");
        write_atomic_public(&public, b"<p>ok</p>").unwrap();
        let mode = std::fs::metadata(&public).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            PUBLIC_FILE & !umask(),
            "readable by the web server"
        );
    }

    /// The process's umask, read without changing it (Linux's `/proc/self/status`; 0o022 elsewhere).
    fn umask() -> u32 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            })
            .unwrap_or(0o022)
    }
}
