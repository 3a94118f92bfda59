//! The v1 archive reader (`spec/v1.md`, "v1 text archives"): typed records for every format, a
//! byte-exact re-renderer, and [`scan_v1_tree`] keeping what the detector (`R-ARCHIVE-PATH`) and
//! the reconciliation (`R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING`, `R-ARCHIVE-MISMATCH`) need of a
//! tree, in compact form.

mod index;
mod monthly;
mod prayer;
mod time;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use index::{fingerprint, key_of, norm_text, Key};
pub use index::{PrayerEntry, V1PrayerIndex};
use monthly::read_log;
pub use monthly::LinePos;

pub use monthly::{
    ActivityLog, AttributeLog, MarkLog, Registrations, V1ActivityEntry, V1AttributeRecord,
    V1LogFormat, V1LogLine, V1MarkRecord, V1MonthlyLog, V1Registration,
};
pub use prayer::{V1Action, V1PrayerActivity, V1PrayerFile};
pub use time::{parse_day, parse_month_year, V1Time, V1_TIME_FORMAT};

use crate::V1Error;

/// Result of the archive reader.
pub type Result<T, E = V1Error> = std::result::Result<T, E>;

/// An archive file or folder that cannot be read.
pub(crate) fn unreadable(path: &Path, source: std::io::Error) -> V1Error {
    V1Error::ArchiveUnreadable {
        path: path.to_path_buf(),
        source,
    }
}

/// The `/`-separated name of `path` relative to `root`; `None` when a component is not UTF-8.
pub fn relative_name(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/"))
}

/// True for a line break (U+000A, U+000D, U+000B, U+000C, U+0085, U+2028, U+2029).
pub fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Checks a `/`-separated relative path: not empty, not absolute, no `..`, `.` or empty
/// components, no NUL, backslash or line break. Returns its components, or why it is refused.
pub fn check_relative(rel: &str) -> std::result::Result<Vec<&str>, &'static str> {
    if rel.is_empty() {
        return Err("empty path");
    }
    if rel.starts_with('/') {
        return Err("absolute path");
    }
    if rel.contains(['\0', '\\']) || rel.chars().any(is_line_break) {
        return Err("NUL, backslash or line break in the path");
    }
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err("empty path component"),
            "." | ".." => return Err("`.` or `..` component climbs out of the root"),
            _ => {}
        }
    }
    Ok(parts)
}

pub(crate) fn parse_error(path: &Path, line: usize, message: &str) -> V1Error {
    V1Error::ArchiveParse {
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

/// What the rest of the migration needs of a v1 archive tree, in memory that does not grow with
/// the monthly logs: the list of files, the prayer files in compact form, the registration
/// lines, and where the marks logs are (their lines are read again, one at a time, when the
/// reconciliation compares them: `thywill_detect::reconcile`). Every v1-format file is parsed during
/// the scan, so one that does not parse is a [`V1Problem`] up front.
#[derive(Debug, Clone, Default)]
pub struct V1Archive {
    /// The tree's root.
    pub root: PathBuf,
    /// Every regular file, relative and `/`-separated.
    pub files: BTreeSet<String>,
    /// Every prayer file that parsed, in path order, in compact form.
    pub prayers: V1PrayerIndex,
    /// Every registration line (of the files that parsed).
    pub registrations: Vec<Located<V1Registration>>,
    /// Files that did not parse, symlinks not followed, names that are not UTF-8.
    pub problems: Vec<V1Problem>,
    /// Lines of the monthly logs that no shape fits (`R-ARCHIVE-UNREADABLE`), with the kind of
    /// file they are in; the rest of each file is read.
    pub unreadable: Vec<(V1FileKind, Located<String>)>,
    /// The marks logs that parsed, in path order.
    mark_logs: Vec<String>,
    /// How prayer ids are keyed.
    id_key: IdKeyOf,
}

/// How the scan keys prayer ids (the file's first line, and every id looked up in it): the
/// reader keeps ids as written ([`key_of`]); the caller that compares them with database rows
/// gives its own normaliser ([`scan_v1_tree_keyed`]), so there is one, the detector's.
pub type IdKey = fn(&str) -> Key;

/// The [`IdKey`] of a tree (a newtype, so that [`V1Archive`] has a default: ids as written).
#[derive(Debug, Clone, Copy)]
struct IdKeyOf(IdKey);

impl Default for IdKeyOf {
    fn default() -> Self {
        IdKeyOf(key_of)
    }
}

/// Where a marks-log line lies: the log (an index into the tree's marks logs, which are in path
/// order), the line's number and its byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkLinePos {
    /// Index of the marks log.
    pub log: u32,
    /// Line number and offset in it.
    pub at: LinePos,
}

impl V1Archive {
    /// The key prayer id `id` has in this tree's index (the scan's [`IdKey`]): every id a
    /// caller looks up, a row's or a marks line's, goes through it.
    pub fn prayer_key(&self, id: &str) -> Key {
        (self.id_key.0)(id)
    }

    /// The paths of the files holding prayer `id` (keyed by [`V1Archive::prayer_key`]), in path
    /// order; more than one when v1 wrote it twice.
    pub fn prayer_paths(&self, id: &str) -> Vec<&str> {
        self.prayers
            .with_id(self.prayer_key(id))
            .map(|i| self.prayers.path(i))
            .collect()
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

    /// Reads every marks-log line again, in log order then file order. An error when a log can
    /// no longer be read or parsed (the tree changed since the scan).
    pub fn for_each_mark_line(
        &self,
        mut f: impl FnMut(MarkLinePos, V1MarkRecord) -> Result<()>,
    ) -> Result<()> {
        for (log, rel) in self.mark_logs.iter().enumerate() {
            let path = self.root.join(rel);
            let file = fs::File::open(&path).map_err(|e| unreadable(&path, e))?;
            let input = BufReader::with_capacity(1 << 16, file);
            read_log::<MarkLog>(Path::new(rel), input, |at, line| match line {
                V1LogLine::Record(r) => f(
                    MarkLinePos {
                        log: log as u32,
                        at,
                    },
                    r,
                ),
                _ => Ok(()),
            })?;
        }
        Ok(())
    }

    /// The marks-log line at `pos` read again: the log's path and the line's record.
    pub fn mark_line(&self, pos: MarkLinePos) -> Result<(&str, V1MarkRecord)> {
        let rel = &self.mark_logs[pos.log as usize];
        let path = self.root.join(rel);
        let read = || -> std::io::Result<Vec<u8>> {
            let mut file = fs::File::open(&path)?;
            file.seek(SeekFrom::Start(pos.at.offset))?;
            let mut line = Vec::new();
            BufReader::new(file).read_until(b'\n', &mut line)?;
            Ok(line)
        };
        let bytes = read().map_err(|e| unreadable(&path, e))?;
        let text = text_of(Path::new(rel), &bytes)?;
        let record =
            MarkLog::parse(text.strip_suffix('\n').unwrap_or(text), None).ok_or_else(|| {
                parse_error(
                    Path::new(rel),
                    pos.at.line,
                    "the line changed since the scan",
                )
            })?;
        Ok((rel, record))
    }
}

/// Reads a whole v1 tree, prayer ids keyed as written ([`key_of`]). An unreadable root is an
/// error (exit code 3); a file that does not parse, a symlink (never followed) or a name that is
/// not UTF-8 becomes a [`V1Problem`] and the scan goes on. Monthly logs are read line by line and
/// only their registration lines are kept.
pub fn scan_v1_tree(root: &Path) -> Result<V1Archive> {
    scan_v1_tree_keyed(root, key_of)
}

/// [`scan_v1_tree`] with prayer ids keyed by `id_key` (the caller's normaliser).
pub fn scan_v1_tree_keyed(root: &Path, id_key: IdKey) -> Result<V1Archive> {
    fs::read_dir(root).map_err(|e| unreadable(root, e))?;
    let mut archive = V1Archive {
        root: root.to_path_buf(),
        id_key: IdKeyOf(id_key),
        ..V1Archive::default()
    };
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            unreadable(&path, e.into())
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
        let Some(rel) = relative_name(root, entry.path()) else {
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
        if let Err(e) = archive.add(kind, &rel, entry.path()) {
            match e {
                V1Error::ArchiveParse { .. } => archive.problems.push(V1Problem {
                    path: rel,
                    message: e.to_string(),
                }),
                e => return Err(e),
            }
        }
    }
    archive.prayers.finish();
    Ok(archive)
}

/// Keeps `line` when it is one no shape of its log fits.
fn note_unreadable<R>(
    out: &mut Vec<(V1FileKind, Located<String>)>,
    kind: V1FileKind,
    rel: &str,
    at: LinePos,
    line: V1LogLine<R>,
) {
    if let V1LogLine::Unreadable(text) = line {
        out.push((
            kind,
            Located {
                path: rel.to_string(),
                line: at.line,
                record: text,
            },
        ));
    }
}

impl V1Archive {
    /// Reads a log whose records the scan does not keep: it checks the header and notes the
    /// lines no shape fits.
    fn check_log<F: V1LogFormat>(
        &mut self,
        kind: V1FileKind,
        rel: &str,
        input: impl BufRead,
    ) -> Result<()> {
        let unreadable = &mut self.unreadable;
        read_log::<F>(Path::new(rel), input, |at, line| {
            note_unreadable(unreadable, kind, rel, at, line);
            Ok(())
        })?;
        Ok(())
    }

    /// Parses file `rel` of kind `kind` (at `path`) and keeps what the archive keeps of it.
    fn add(&mut self, kind: V1FileKind, rel: &str, path: &Path) -> Result<()> {
        let name = Path::new(rel);
        let open = || -> Result<BufReader<fs::File>> {
            let file = fs::File::open(path).map_err(|e| unreadable(path, e))?;
            Ok(BufReader::with_capacity(1 << 16, file))
        };
        match kind {
            V1FileKind::Prayer => {
                let bytes = fs::read(path).map_err(|e| unreadable(path, e))?;
                self.prayers
                    .push(rel, &V1PrayerFile::parse(name, &bytes)?, self.id_key.0);
            }
            V1FileKind::Registrations => {
                let mut lines = Vec::new();
                let unreadable = &mut self.unreadable;
                read_log::<Registrations>(name, open()?, |at, line| {
                    match line {
                        V1LogLine::Record(record) => lines.push(Located {
                            path: rel.to_string(),
                            line: at.line,
                            record,
                        }),
                        other => note_unreadable(unreadable, kind, rel, at, other),
                    }
                    Ok(())
                })?;
                self.registrations.extend(lines);
            }
            V1FileKind::Marks => {
                self.check_log::<MarkLog>(kind, rel, open()?)?;
                self.mark_logs.push(rel.to_string());
            }
            V1FileKind::Skips => self.check_log::<MarkLog>(kind, rel, open()?)?,
            V1FileKind::Activity => self.check_log::<ActivityLog>(kind, rel, open()?)?,
            V1FileKind::Attributes => self.check_log::<AttributeLog>(kind, rel, open()?)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
