//! The v1 archive reader (`spec/v1.md`, "v1 text archives"): typed records for every format, a
//! byte-exact re-renderer, and [`scan_v1_tree`] listing everything a tree holds for the
//! detector's reconciliation (`R-ARCHIVE-PATH`, `R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING`,
//! `R-ARCHIVE-MISMATCH`).

mod monthly;
mod prayer;
mod time;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

pub use monthly::{
    ActivityLog, AttributeLog, MarkLog, Registrations, V1ActivityEntry, V1AttributeRecord,
    V1LogFormat, V1LogLine, V1MarkRecord, V1MonthlyLog, V1Registration,
};
pub use prayer::{V1Action, V1PrayerActivity, V1PrayerFile};
pub use time::{parse_day, parse_month_year, V1Time, V1_TIME_FORMAT};

use crate::error::{ArchiveError, Result};
use crate::manifest::relative_name;
use crate::safety::check_relative;

pub(crate) fn parse_error(path: &Path, line: usize, message: &str) -> ArchiveError {
    ArchiveError::Parse {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    }
}

pub(crate) fn text_of<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        parse_error(path, line, "bytes that are not UTF-8")
    })
}

/// Which v1 format a relative path holds, judged by its place in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1FileKind {
    /// `prayers/YYYY/MM/*.txt`.
    Prayer,
    /// `users/*_users.txt`.
    Registrations,
    /// `activity/activity_*.txt`.
    Activity,
    /// `prayers/marks/*_marks.txt`.
    Marks,
    /// `prayers/skips/*_skips.txt`.
    Skips,
    /// `prayers/attributes/*_attributes.txt`.
    Attributes,
}

impl V1FileKind {
    /// The kind of a `/`-separated path relative to the v1 root, `None` for other files.
    pub fn of(rel: &str) -> Option<Self> {
        let parts: Vec<&str> = rel.split('/').collect();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        match parts.as_slice() {
            ["prayers", "marks", f] if f.ends_with("_marks.txt") => Some(Self::Marks),
            ["prayers", "skips", f] if f.ends_with("_skips.txt") => Some(Self::Skips),
            ["prayers", "attributes", f] if f.ends_with("_attributes.txt") => {
                Some(Self::Attributes)
            }
            ["prayers", y, m, f] if digits(y, 4) && digits(m, 2) && f.ends_with(".txt") => {
                Some(Self::Prayer)
            }
            ["users", f] if f.ends_with("_users.txt") => Some(Self::Registrations),
            ["activity", f] if f.starts_with("activity_") && f.ends_with(".txt") => {
                Some(Self::Activity)
            }
            _ => None,
        }
    }
}

/// A parsed v1 archive file of any format.
#[derive(Debug, Clone, PartialEq)]
pub enum V1File {
    /// A prayer file.
    Prayer(V1PrayerFile),
    /// A monthly registrations file.
    Registrations(V1MonthlyLog<Registrations>),
    /// A monthly activity file.
    Activity(V1MonthlyLog<ActivityLog>),
    /// A monthly marks file.
    Marks(V1MonthlyLog<MarkLog>),
    /// A monthly skips file.
    Skips(V1MonthlyLog<MarkLog>),
    /// A monthly attributes file.
    Attributes(V1MonthlyLog<AttributeLog>),
}

impl V1File {
    /// Parses `bytes` as the format `kind`; `path` names the file in errors.
    pub fn parse(kind: V1FileKind, path: &Path, bytes: &[u8]) -> Result<Self> {
        Ok(match kind {
            V1FileKind::Prayer => V1File::Prayer(V1PrayerFile::parse(path, bytes)?),
            V1FileKind::Registrations => V1File::Registrations(V1MonthlyLog::parse(path, bytes)?),
            V1FileKind::Activity => V1File::Activity(V1MonthlyLog::parse(path, bytes)?),
            V1FileKind::Marks => V1File::Marks(V1MonthlyLog::parse(path, bytes)?),
            V1FileKind::Skips => V1File::Skips(V1MonthlyLog::parse(path, bytes)?),
            V1FileKind::Attributes => V1File::Attributes(V1MonthlyLog::parse(path, bytes)?),
        })
    }

    /// Renders the file back in v1 format (the same bytes it was parsed from).
    pub fn render(&self) -> Vec<u8> {
        match self {
            V1File::Prayer(p) => p.render(),
            V1File::Registrations(l) => l.render(),
            V1File::Activity(l) => l.render(),
            V1File::Marks(l) | V1File::Skips(l) => l.render(),
            V1File::Attributes(l) => l.render(),
        }
    }
}

/// A record with the file (relative path) and line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<R> {
    /// Path relative to the v1 root, `/`-separated.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// The record.
    pub record: R,
}

/// Something in the tree that could not be read as v1 data (the scan goes on).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct V1Problem {
    /// Path relative to the v1 root.
    pub path: String,
    /// What is wrong (a parse error names the line).
    pub message: String,
}

/// Everything a v1 archive tree holds.
#[derive(Debug, Clone, Default)]
pub struct V1Archive {
    /// The tree's root.
    pub root: PathBuf,
    /// Every regular file, relative and `/`-separated.
    pub files: BTreeSet<String>,
    /// Every prayer file that parsed, with its path, in path order.
    pub prayers: Vec<(String, V1PrayerFile)>,
    /// Every registration line.
    pub registrations: Vec<Located<V1Registration>>,
    /// Every activity-log line.
    pub activity: Vec<Located<V1ActivityEntry>>,
    /// Every mark line.
    pub marks: Vec<Located<V1MarkRecord>>,
    /// Every skip line.
    pub skips: Vec<Located<V1MarkRecord>>,
    /// Every attribute line.
    pub attributes: Vec<Located<V1AttributeRecord>>,
    /// Files that did not parse, symlinks not followed, names that are not UTF-8.
    pub problems: Vec<V1Problem>,
    by_prayer_id: HashMap<String, Vec<usize>>,
}

/// The key prayer ids are looked up by: trimmed, lower-case.
pub fn normalize_id(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

impl V1Archive {
    /// The paths of the files holding prayer `id` (normalised: case and surrounding spaces do not
    /// matter), in path order; more than one when v1 wrote it twice.
    pub fn prayer_paths(&self, id: &str) -> Vec<&str> {
        self.by_prayer_id
            .get(&normalize_id(id))
            .map(|ix| ix.iter().map(|i| self.prayers[*i].0.as_str()).collect())
            .unwrap_or_default()
    }

    /// The first file holding prayer `id`, parsed.
    pub fn prayer(&self, id: &str) -> Option<(&str, &V1PrayerFile)> {
        let i = *self.by_prayer_id.get(&normalize_id(id))?.first()?;
        Some((self.prayers[i].0.as_str(), &self.prayers[i].1))
    }

    /// Every prayer id found in the tree (normalised).
    pub fn prayer_ids(&self) -> impl Iterator<Item = &str> {
        self.by_prayer_id.keys().map(String::as_str)
    }

    /// Resolves a database `text_file_path` (e.g. `text_archives/prayers/2025/06/x.txt`) to a file
    /// of this tree: `None` when it is absolute, climbs with `..`, lies under a temporary folder
    /// or names no file here. The leading `text_archives/` (the v1 root's own name) is optional.
    pub fn resolve_db_path(&self, text_file_path: &str) -> Option<&str> {
        let rel = text_file_path
            .strip_prefix("text_archives/")
            .unwrap_or(text_file_path);
        check_relative(rel).ok()?;
        self.files.get(rel).map(String::as_str)
    }
}

/// Reads a whole v1 tree. An unreadable root is an error (exit code 3); a file that does not
/// parse, a symlink (never followed) or a name that is not UTF-8 becomes a [`V1Problem`] and the
/// scan goes on.
pub fn scan_v1_tree(root: &Path) -> Result<V1Archive> {
    fs::read_dir(root).map_err(|e| ArchiveError::source(root, e))?;
    let mut archive = V1Archive {
        root: root.to_path_buf(),
        ..V1Archive::default()
    };
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            ArchiveError::source(&path, e.into())
        })?;
        let lossy = || {
            entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .into_owned()
        };
        if entry.file_type().is_symlink() {
            archive.problems.push(V1Problem {
                path: lossy(),
                message: "symlink, not followed".into(),
            });
            continue;
        }
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = relative_name(root, entry.path()) else {
            archive.problems.push(V1Problem {
                path: lossy(),
                message: "file name is not UTF-8".into(),
            });
            continue;
        };
        archive.files.insert(rel.clone());
        let Some(kind) = V1FileKind::of(&rel) else {
            continue;
        };
        let bytes = fs::read(entry.path()).map_err(|e| ArchiveError::source(entry.path(), e))?;
        match V1File::parse(kind, Path::new(&rel), &bytes) {
            Ok(file) => archive.add(rel, file),
            Err(e) => archive.problems.push(V1Problem {
                path: rel,
                message: e.to_string(),
            }),
        }
    }
    Ok(archive)
}

impl V1Archive {
    fn add(&mut self, rel: String, file: V1File) {
        fn located<F: V1LogFormat>(
            rel: &str,
            log: &V1MonthlyLog<F>,
            out: &mut Vec<Located<F::Record>>,
        ) {
            out.extend(log.records_with_lines().map(|(line, r)| Located {
                path: rel.to_string(),
                line,
                record: r.clone(),
            }));
        }
        match file {
            V1File::Prayer(p) => {
                self.by_prayer_id
                    .entry(normalize_id(&p.id))
                    .or_default()
                    .push(self.prayers.len());
                self.prayers.push((rel, p));
            }
            V1File::Registrations(l) => located(&rel, &l, &mut self.registrations),
            V1File::Activity(l) => located(&rel, &l, &mut self.activity),
            V1File::Marks(l) => located(&rel, &l, &mut self.marks),
            V1File::Skips(l) => located(&rel, &l, &mut self.skips),
            V1File::Attributes(l) => located(&rel, &l, &mut self.attributes),
        }
    }
}

#[cfg(test)]
mod tests;
