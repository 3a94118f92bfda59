//! `MANIFEST.sha256`: one line `"<sha256>  <relative path>"` per file of a folder, sorted by path,
//! `/` as separator. The one writer and the one verifier used by backups and restores.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{OpsError, Result};
use crate::fsutil::{sha256_file, write_atomic};

/// The manifest's file name.
pub const MANIFEST_NAME: &str = "MANIFEST.sha256";

/// Every regular file under `root` (the manifest itself excepted), relative path → sha256.
/// A symlink or a special file inside the folder is an error: a backup folder holds none.
pub fn hash_tree(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| OpsError::UnusableInput {
            path: e.path().unwrap_or(root).to_path_buf(),
            reason: format!("unreadable: {e}"),
        })?;
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let rel = relative_text(root, entry.path())?;
        if rel == MANIFEST_NAME {
            continue;
        }
        if !ft.is_file() {
            return Err(OpsError::UnusableInput {
                path: entry.path().to_path_buf(),
                reason: "not a regular file (a backup folder holds only regular files)".into(),
            });
        }
        out.insert(rel, sha256_file(entry.path())?);
    }
    Ok(out)
}

fn relative_text(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    match parts {
        Some(p) if !p.iter().any(|s| s.contains(['\n', '\r'])) => Ok(p.join("/")),
        _ => Err(OpsError::UnusableInput {
            path: path.to_path_buf(),
            reason: "file name is not UTF-8 or holds a line break; a manifest cannot name it"
                .into(),
        }),
    }
}

/// Writes `root/MANIFEST.sha256` over every file under `root`, atomically. Returns the entries.
pub fn write_manifest(root: &Path) -> Result<BTreeMap<String, String>> {
    let entries = hash_tree(root)?;
    let text: String = entries.iter().map(|(p, h)| format!("{h}  {p}\n")).collect();
    write_atomic(&root.join(MANIFEST_NAME), text.as_bytes())?;
    Ok(entries)
}

/// Reads and parses `root/MANIFEST.sha256`. Lines that are malformed, unsorted, or name a path
/// outside the folder are problems (returned as text, one per line at fault).
pub fn read_manifest(root: &Path) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let path = root.join(MANIFEST_NAME);
    let text = std::fs::read(&path).map_err(OpsError::io("reading", &path))?;
    let text = String::from_utf8_lossy(&text);
    let mut entries = BTreeMap::new();
    let mut problems = Vec::new();
    let mut last: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let Some((hash, rel)) = line.split_once("  ") else {
            problems.push(format!(
                "{MANIFEST_NAME} line {}: not \"<sha256>  <path>\"",
                i + 1
            ));
            continue;
        };
        let safe = !rel.is_empty()
            && Path::new(rel)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !safe {
            problems.push(format!(
                "{MANIFEST_NAME} line {}: bad hash or unsafe path '{rel}'",
                i + 1
            ));
            continue;
        }
        if last.as_deref().is_some_and(|l| l >= rel) {
            problems.push(format!(
                "{MANIFEST_NAME} line {}: not sorted or repeated: '{rel}'",
                i + 1
            ));
        }
        last = Some(rel.to_string());
        entries.insert(rel.to_string(), hash.to_ascii_lowercase());
    }
    Ok((entries, problems))
}

/// Verifies `root` against its manifest: every listed file present with its checksum, no file
/// present that is not listed. Returns the problems (empty: the folder verifies).
pub fn verify_manifest(root: &Path) -> Result<Vec<String>> {
    let (listed, mut problems) = match read_manifest(root) {
        Ok(x) => x,
        Err(e) => return Ok(vec![e.to_string()]),
    };
    let actual = match hash_tree(root) {
        Ok(a) => a,
        Err(e) => return Ok(vec![e.to_string()]),
    };
    for (rel, hash) in &listed {
        match actual.get(rel) {
            None => problems.push(format!("{rel}: listed in {MANIFEST_NAME} but missing")),
            Some(h) if h != hash => {
                problems.push(format!("{rel}: checksum differs from {MANIFEST_NAME}"))
            }
            Some(_) => {}
        }
    }
    for rel in actual.keys().filter(|r| !listed.contains_key(*r)) {
        problems.push(format!("{rel}: present but not listed in {MANIFEST_NAME}"));
    }
    Ok(problems)
}

/// The absolute path of a manifest entry (only call with paths [`read_manifest`] accepted).
pub fn entry_path(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_sorted_and_verifies_then_catches_tampering() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/x.txt"), "x").unwrap();
        std::fs::write(dir.path().join("a.db"), "db").unwrap();
        let entries = write_manifest(dir.path()).unwrap();
        assert_eq!(entries.keys().collect::<Vec<_>>(), ["a.db", "b/c/x.txt"]);
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_NAME)).unwrap();
        assert!(text.lines().next().unwrap().ends_with("  a.db"));
        assert!(verify_manifest(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("b/c/x.txt"), "y").unwrap();
        std::fs::write(dir.path().join("extra"), "").unwrap();
        let problems = verify_manifest(dir.path()).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        std::fs::write(
            dir.path().join(MANIFEST_NAME),
            format!("{}  ../etc/passwd\n", "0".repeat(64)),
        )
        .unwrap();
        assert!(verify_manifest(dir.path())
            .unwrap()
            .iter()
            .any(|p| p.contains("unsafe path")));
    }
}
