//! The v1 archive reader (`spec/v1-real.md` §2, the tree v1 really writes): typed records for
//! every format, a byte-exact re-renderer, and [`scan_v1_tree`] keeping what the detector
//! (`R-ARCHIVE-PATH`) and the reconciliation (`R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING`,
//! `R-ARCHIVE-MISMATCH`, `R-ARCHIVE-UNREADABLE`) need of a tree, in compact form.
//!
//! The formats: prayer files (`prayers/YYYY/MM/…`, with their `Activity:` lines, the only
//! record of marks: one `prayed this prayer` line per act), `users/YYYY_MM_users.txt`,
//! `activity/activity_YYYY_MM.txt`, and in trees from 2025-06-30 on `sessions/`,
//! `roles/…_role_assignments.txt`, `system/…_invite_usage.txt` and the export-all files
//! (`prayers/prayer_marks.txt`, `invites/invite_tokens.txt`, `invites/invite_token_usage.txt`,
//! `users/user_attributes.txt`). v1 never wrote `prayers/marks|skips|attributes/`: such files
//! are not read (they are carried as any other file).

mod index;
mod logs;
mod monthly;
mod prayer;
mod time;
mod userattrs;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

pub use index::{fingerprint, key_of, Key};
pub use index::{PrayerEntry, V1PrayerIndex};
use monthly::read_log;
pub use monthly::LinePos;

pub use logs::{
    ExportInviteTokens, ExportInviteUsage, ExportMarks, InviteUsageLog, RoleAssignmentLog,
    SessionLog, V1ExportInviteToken, V1ExportInviteUsage, V1ExportMark, V1InviteUsage,
    V1RoleAssignment, V1SessionRecord,
};
pub use monthly::{
    ActivityLog, Registrations, V1ActivityEntry, V1LogFormat, V1LogLine, V1MonthlyLog,
    V1Registration,
};
pub use prayer::{V1Action, V1PrayerActivity, V1PrayerFile};
pub use time::{parse_day, parse_month_year, V1Time, V1_TIME_FORMAT};
pub use userattrs::{V1AttributeLine, V1UserAttributes, V1UserAttributesFile};

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
    /// `sessions/*_sessions.txt`.
    Sessions,
    /// `roles/*_role_assignments.txt`.
    RoleAssignments,
    /// `system/*_invite_usage.txt`.
    InviteUsage,
    /// export-all's `prayers/prayer_marks.txt`.
    ExportMarks,
    /// export-all's `invites/invite_tokens.txt`.
    ExportInviteTokens,
    /// export-all's `invites/invite_token_usage.txt`.
    ExportInviteUsage,
    /// `users/user_attributes.txt`.
    UserAttributes,
}

impl V1FileKind {
    /// The kind of a `/`-separated path relative to the v1 root, `None` for other files.
    pub fn of(rel: &str) -> Option<Self> {
        let parts: Vec<&str> = rel.split('/').collect();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        match parts.as_slice() {
            ["prayers", "prayer_marks.txt"] => Some(Self::ExportMarks),
            ["prayers", y, m, f] if digits(y, 4) && digits(m, 2) && f.ends_with(".txt") => {
                Some(Self::Prayer)
            }
            ["users", "user_attributes.txt"] => Some(Self::UserAttributes),
            ["users", f] if f.ends_with("_users.txt") => Some(Self::Registrations),
            ["activity", f] if f.starts_with("activity_") && f.ends_with(".txt") => {
                Some(Self::Activity)
            }
            ["sessions", f] if f.ends_with("_sessions.txt") => Some(Self::Sessions),
            ["roles", f] if f.ends_with("_role_assignments.txt") => Some(Self::RoleAssignments),
            ["system", f] if f.ends_with("_invite_usage.txt") => Some(Self::InviteUsage),
            ["invites", "invite_tokens.txt"] => Some(Self::ExportInviteTokens),
            ["invites", "invite_token_usage.txt"] => Some(Self::ExportInviteUsage),
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
    /// A monthly sessions file.
    Sessions(V1MonthlyLog<SessionLog>),
    /// A monthly role-assignments file.
    RoleAssignments(V1MonthlyLog<RoleAssignmentLog>),
    /// A monthly invite-usage file.
    InviteUsage(V1MonthlyLog<InviteUsageLog>),
    /// export-all's marks (with mark ids).
    ExportMarks(V1MonthlyLog<ExportMarks>),
    /// export-all's invite tokens.
    ExportInviteTokens(V1MonthlyLog<ExportInviteTokens>),
    /// export-all's invite-token usage.
    ExportInviteUsage(V1MonthlyLog<ExportInviteUsage>),
    /// The user attributes file.
    UserAttributes(V1UserAttributesFile),
}

impl V1File {
    /// Parses `bytes` as the format `kind`; `path` names the file in errors.
    pub fn parse(kind: V1FileKind, path: &Path, bytes: &[u8]) -> Result<Self> {
        use V1FileKind as K;
        Ok(match kind {
            K::Prayer => V1File::Prayer(V1PrayerFile::parse(path, bytes)?),
            K::Registrations => V1File::Registrations(V1MonthlyLog::parse(path, bytes)?),
            K::Activity => V1File::Activity(V1MonthlyLog::parse(path, bytes)?),
            K::Sessions => V1File::Sessions(V1MonthlyLog::parse(path, bytes)?),
            K::RoleAssignments => V1File::RoleAssignments(V1MonthlyLog::parse(path, bytes)?),
            K::InviteUsage => V1File::InviteUsage(V1MonthlyLog::parse(path, bytes)?),
            K::ExportMarks => V1File::ExportMarks(V1MonthlyLog::parse(path, bytes)?),
            K::ExportInviteTokens => V1File::ExportInviteTokens(V1MonthlyLog::parse(path, bytes)?),
            K::ExportInviteUsage => V1File::ExportInviteUsage(V1MonthlyLog::parse(path, bytes)?),
            K::UserAttributes => V1File::UserAttributes(V1UserAttributesFile::parse(path, bytes)?),
        })
    }

    /// Renders the file back in v1 format (the same bytes it was parsed from).
    pub fn render(&self) -> Vec<u8> {
        match self {
            V1File::Prayer(p) => p.render(),
            V1File::Registrations(l) => l.render(),
            V1File::Activity(l) => l.render(),
            V1File::Sessions(l) => l.render(),
            V1File::RoleAssignments(l) => l.render(),
            V1File::InviteUsage(l) => l.render(),
            V1File::ExportMarks(l) => l.render(),
            V1File::ExportInviteTokens(l) => l.render(),
            V1File::ExportInviteUsage(l) => l.render(),
            V1File::UserAttributes(f) => f.render(),
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
/// the marks: the list of files, the prayer files in compact form, the registration, role
/// assignment and invite-usage lines (one or two a member), and the unreadable lines. The marks
/// (`prayed this prayer` lines of the prayer files) are read again, one file at a time, when the
/// reconciliation compares them ([`V1Archive::for_each_mark_line`]). Every v1-format file is
/// parsed during the scan, so one that does not parse is a [`V1Problem`] up front.
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
    /// Every line of `roles/*_role_assignments.txt` (of the files that parsed).
    pub role_assignments: Vec<Located<V1RoleAssignment>>,
    /// Every claim line (a member named) of `system/*_invite_usage.txt`; token creations are
    /// not kept.
    pub invite_claims: Vec<Located<V1InviteUsage>>,
    /// Files that did not parse, symlinks not followed, names that are not UTF-8.
    pub problems: Vec<V1Problem>,
    /// Lines no shape fits (`R-ARCHIVE-UNREADABLE`), with the kind of file they are in; the rest
    /// of each file is read.
    pub unreadable: Vec<(V1FileKind, Located<String>)>,
    /// How prayer ids and request texts are keyed.
    id_key: IdKeyOf,
}

/// How the scan keys prayer ids (the file's first line, and every id looked up in it): the
/// reader keeps ids as written ([`key_of`]); the caller that compares them with database rows
/// gives its own normaliser ([`scan_v1_tree_keyed`]), so there is one, the detector's.
pub type IdKey = fn(&str) -> Key;

/// How the scan fingerprints a prayer file's request text: as written ([`fingerprint`]) by
/// default; the caller that compares texts with database rows gives its own (the detector's
/// normalisation of line endings and surrounding whitespace), so the reader interprets nothing.
pub type TextKey = fn(&str) -> u64;

fn text_as_written(text: &str) -> u64 {
    fingerprint(text)
}

/// The [`IdKey`] and [`TextKey`] of a tree (a newtype, so that [`V1Archive`] has a default:
/// ids and texts as written).
#[derive(Debug, Clone, Copy)]
struct IdKeyOf(IdKey, TextKey);

impl Default for IdKeyOf {
    fn default() -> Self {
        IdKeyOf(key_of, text_as_written)
    }
}

/// Where a `prayed this prayer` line lies: the prayer file (an index into
/// [`V1Archive::prayers`], which is in path order) and the line's number in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkLinePos {
    /// Index of the prayer file in [`V1Archive::prayers`].
    pub file: u32,
    /// 1-based line number in it.
    pub line: u32,
}

/// One `<time> - <name> prayed this prayer` line of a prayer file: an act of prayer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1PrayerMark {
    /// When (server local time, minute precision; an offline mark: UTC).
    pub at: V1Time,
    /// The prayer id of the file's first line, as written.
    pub prayer_id: String,
    /// The member: all of the text between ` - ` and ` prayed this prayer`.
    pub user: String,
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

    /// Reads every `prayed this prayer` line again, prayer file by prayer file (path order),
    /// each file's lines in file order; only one file is in memory at a time. An error when a
    /// file can no longer be read or parsed (the tree changed since the scan).
    pub fn for_each_mark_line(
        &self,
        mut f: impl FnMut(MarkLinePos, V1PrayerMark) -> Result<()>,
    ) -> Result<()> {
        for i in 0..self.prayers.len() {
            let file = self.prayers.read(&self.root, i)?;
            for a in file.prayed() {
                let pos = MarkLinePos {
                    file: i as u32,
                    line: a.line as u32,
                };
                f(
                    pos,
                    V1PrayerMark {
                        at: a.at.clone(),
                        prayer_id: file.id.clone(),
                        user: a.name.clone(),
                    },
                )?;
            }
        }
        Ok(())
    }

    /// The `prayed this prayer` line at `pos` read again: its file's path and the mark.
    pub fn mark_line(&self, pos: MarkLinePos) -> Result<(&str, V1PrayerMark)> {
        let i = pos.file as usize;
        let rel = self.prayers.path(i);
        let file = self.prayers.read(&self.root, i)?;
        let a = file
            .prayed()
            .find(|a| a.line == pos.line as usize)
            .ok_or_else(|| {
                parse_error(
                    Path::new(rel),
                    pos.line as usize,
                    "the line changed since the scan",
                )
            })?;
        let mark = V1PrayerMark {
            at: a.at.clone(),
            prayer_id: file.id.clone(),
            user: a.name.clone(),
        };
        Ok((rel, mark))
    }
}

/// Reads a whole v1 tree, prayer ids keyed as written ([`key_of`]). An unreadable root is an
/// error (exit code 3); a file that does not parse, a symlink (never followed) or a name that is
/// not UTF-8 becomes a [`V1Problem`] and the scan goes on. Monthly logs are read line by line and
/// only their registration lines are kept.
pub fn scan_v1_tree(root: &Path) -> Result<V1Archive> {
    scan_v1_tree_keyed(root, key_of, text_as_written)
}

/// [`scan_v1_tree`] with prayer ids keyed by `id_key` and request texts fingerprinted by
/// `text_key` (the caller's normalisers).
pub fn scan_v1_tree_keyed(root: &Path, id_key: IdKey, text_key: TextKey) -> Result<V1Archive> {
    fs::read_dir(root).map_err(|e| unreadable(root, e))?;
    let mut archive = V1Archive {
        root: root.to_path_buf(),
        id_key: IdKeyOf(id_key, text_key),
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

/// Keeps no record (a log read only for its unreadable lines).
fn none<T>(_: T) -> Option<()> {
    None
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
    /// Reads a log whose records the scan keeps only if `keep` gives them back (as
    /// [`Located`] records), noting the lines no shape fits.
    fn read_kept<F: V1LogFormat, T>(
        &mut self,
        kind: V1FileKind,
        rel: &str,
        input: impl BufRead,
        mut keep: impl FnMut(F::Record) -> Option<T>,
    ) -> Result<Vec<Located<T>>> {
        let mut kept = Vec::new();
        let unreadable = &mut self.unreadable;
        read_log::<F>(Path::new(rel), input, |at, line| {
            match line {
                V1LogLine::Record(record) => {
                    if let Some(record) = keep(record) {
                        kept.push(Located {
                            path: rel.to_string(),
                            line: at.line,
                            record,
                        });
                    }
                }
                other => note_unreadable(unreadable, kind, rel, at, other),
            }
            Ok(())
        })?;
        Ok(kept)
    }

    /// Parses file `rel` of kind `kind` (at `path`) and keeps what the archive keeps of it.
    fn add(&mut self, kind: V1FileKind, rel: &str, path: &Path) -> Result<()> {
        use V1FileKind as K;
        let name = Path::new(rel);
        let open = || -> Result<BufReader<fs::File>> {
            let file = fs::File::open(path).map_err(|e| unreadable(path, e))?;
            Ok(BufReader::with_capacity(1 << 16, file))
        };
        let located = |line: usize, record: String| Located {
            path: rel.to_string(),
            line,
            record,
        };
        match kind {
            K::Prayer => {
                let bytes = fs::read(path).map_err(|e| unreadable(path, e))?;
                let file = V1PrayerFile::parse(name, &bytes)?;
                for (line, text) in &file.unreadable {
                    self.unreadable.push((kind, located(*line, text.clone())));
                }
                self.prayers.push(rel, &file, self.id_key.0, self.id_key.1);
            }
            K::UserAttributes => {
                let bytes = fs::read(path).map_err(|e| unreadable(path, e))?;
                let file = V1UserAttributesFile::parse(name, &bytes)?;
                for (line, text) in file.unreadable() {
                    self.unreadable.push((kind, located(line, text)));
                }
            }
            K::Registrations => {
                let lines = self.read_kept::<Registrations, _>(kind, rel, open()?, Some)?;
                self.registrations.extend(lines);
            }
            K::RoleAssignments => {
                let lines = self.read_kept::<RoleAssignmentLog, _>(kind, rel, open()?, Some)?;
                self.role_assignments.extend(lines);
            }
            K::InviteUsage => {
                let lines = self.read_kept::<InviteUsageLog, _>(kind, rel, open()?, |r| {
                    r.is_claim().then_some(r)
                })?;
                self.invite_claims.extend(lines);
            }
            K::Activity => drop(self.read_kept::<ActivityLog, _>(kind, rel, open()?, none)?),
            K::Sessions => drop(self.read_kept::<SessionLog, _>(kind, rel, open()?, none)?),
            K::ExportMarks => drop(self.read_kept::<ExportMarks, _>(kind, rel, open()?, none)?),
            K::ExportInviteTokens => {
                drop(self.read_kept::<ExportInviteTokens, _>(kind, rel, open()?, none)?)
            }
            K::ExportInviteUsage => {
                drop(self.read_kept::<ExportInviteUsage, _>(kind, rel, open()?, none)?)
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
