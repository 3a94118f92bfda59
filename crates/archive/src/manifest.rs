//! `MANIFEST.sha256`: `<sha256>  <relative path>` for every regular file under the root (the
//! manifest itself and this crate's temp files excepted), sorted by path bytes.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{ArchiveError, Result};
use crate::writer::TEMP_SUFFIX;

/// The manifest's file name, at the archive root.
pub const MANIFEST_NAME: &str = "MANIFEST.sha256";

/// The manifest's entries: relative path → lower-case hex sha256, in path order.
pub type ManifestEntries = BTreeMap<String, String>;

/// Lists every regular file under `root` with its sha256. Digests already known (files this run
/// wrote) are taken from `known` instead of re-reading the file. Symlinks are not followed and not
/// listed.
pub fn scan_manifest(root: &Path, known: &HashMap<String, [u8; 32]>) -> Result<ManifestEntries> {
    let mut entries = ManifestEntries::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            ArchiveError::write(&path, e.into())
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = relative_name(root, entry.path())?;
        if rel == MANIFEST_NAME || rel.ends_with(TEMP_SUFFIX) {
            continue;
        }
        let digest = match known.get(&rel) {
            Some(d) => hex::encode(d),
            None => {
                let bytes =
                    fs::read(entry.path()).map_err(|e| ArchiveError::write(entry.path(), e))?;
                hex::encode(Sha256::digest(&bytes))
            }
        };
        entries.insert(rel, digest);
    }
    Ok(entries)
}

/// The `/`-separated UTF-8 path of `path` relative to `root`.
pub(crate) fn relative_name(root: &Path, path: &Path) -> Result<String> {
    thywill_v1::archive::relative_name(root, path).ok_or_else(|| ArchiveError::UnsafePath {
        path: path.display().to_string(),
        reason: "file name is not UTF-8".into(),
    })
}

/// Renders the manifest text.
pub fn render_manifest(entries: &ManifestEntries) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 100);
    for (path, digest) in entries {
        out.extend_from_slice(digest.as_bytes());
        out.extend_from_slice(b"  ");
        out.extend_from_slice(path.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Parses a manifest's text; `path` names it in errors.
pub fn parse_manifest(path: &Path, text: &[u8]) -> Result<ManifestEntries> {
    let text = std::str::from_utf8(text).map_err(|_| ArchiveError::Parse {
        path: path.to_path_buf(),
        line: 1,
        message: "manifest is not UTF-8".into(),
    })?;
    let mut entries = ManifestEntries::new();
    for (i, line) in text.lines().enumerate() {
        let parsed = line.split_once("  ").filter(|(d, p)| {
            d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) && !p.is_empty()
        });
        let Some((digest, rel)) = parsed else {
            return Err(ArchiveError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                message: "expected `<sha256>  <relative path>`".into(),
            });
        };
        entries.insert(rel.to_string(), digest.to_string());
    }
    Ok(entries)
}

/// Reads the manifest under `root`, `None` when there is none.
pub fn read_manifest(root: &Path) -> Result<Option<ManifestEntries>> {
    let path = root.join(MANIFEST_NAME);
    match fs::read(&path) {
        Ok(bytes) => parse_manifest(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ArchiveError::write(&path, e)),
    }
}
