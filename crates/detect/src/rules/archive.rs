//! `R-ARCHIVE-PATH`: a row's `text_file_path` that is unsafe or (with an archive tree) missing.

use chrono::{Datelike, NaiveDateTime, Timelike};
use thywill_v1::V1Value;

use super::{show, RowFindings};
use crate::model::{ArchiveFiles, Decision, RuleId};

/// The archive file a record belongs in, relative to the v1 archive root.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RecordArchive {
    /// `users/YYYY_MM_users.txt`.
    User(Option<NaiveDateTime>),
    /// `prayers/YYYY/MM/YYYY_MM_DD_prayer_at_HHMM.txt`.
    Prayer(Option<NaiveDateTime>),
    /// `prayers/marks/YYYY_MM_marks.txt`.
    Mark(Option<NaiveDateTime>),
    /// `prayers/attributes/YYYY_MM_attributes.txt`.
    Attribute(Option<NaiveDateTime>),
}

impl RecordArchive {
    fn path(self) -> Option<String> {
        Some(match self {
            RecordArchive::User(t) => {
                let t = t?;
                format!("users/{:04}_{:02}_users.txt", t.year(), t.month())
            }
            RecordArchive::Prayer(t) => {
                let t = t?;
                format!(
                    "prayers/{0:04}/{1:02}/{0:04}_{1:02}_{2:02}_prayer_at_{3:02}{4:02}.txt",
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute()
                )
            }
            RecordArchive::Mark(t) => {
                let t = t?;
                format!("prayers/marks/{:04}_{:02}_marks.txt", t.year(), t.month())
            }
            RecordArchive::Attribute(t) => {
                let t = t?;
                format!(
                    "prayers/attributes/{:04}_{:02}_attributes.txt",
                    t.year(),
                    t.month()
                )
            }
        })
    }
}

/// Roots v1 wrote archive paths under; what follows them is relative to the archive root.
const ROOT_NAMES: [&str; 2] = ["text_archives", "complete_site_archive"];

/// What is wrong with a path (empty when it is safe).
fn problems(path: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let p = path.replace('\\', "/");
    let b = p.as_bytes();
    if p.starts_with('/') || (b.len() > 1 && b[1] == b':' && b[0].is_ascii_alphabetic()) {
        out.push("is absolute");
    }
    let comps: Vec<&str> = p.split('/').collect();
    if comps.contains(&"..") {
        out.push("climbs out of the archive root (..)");
    }
    let temp = comps.iter().any(|c| {
        let l = c.to_ascii_lowercase();
        l == "tmp" || l == "temp" || (l.starts_with("tmp") && l.len() > 3 && !l.contains('.'))
    });
    if temp {
        out.push("lies under a temporary folder");
    }
    out
}

/// The path relative to the archive root (without a leading `text_archives/`), when it is safe.
fn root_relative(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.trim_start_matches("./");
    match p.strip_prefix("text_archives/") {
        Some(rest) => rest.to_string(),
        None => p.to_string(),
    }
}

/// The part after the last archive-root folder name in an unsafe path (`/tmp/x/complete_site_archive/prayers/…`
/// → `prayers/…`), when what remains is safe.
fn tail_after_root(path: &str) -> Option<String> {
    let p = path.replace('\\', "/");
    let comps: Vec<&str> = p.split('/').collect();
    let at = comps.iter().rposition(|c| ROOT_NAMES.contains(c))?;
    let tail = comps[at + 1..].join("/");
    (!tail.is_empty() && problems(&tail).is_empty()).then_some(tail)
}

/// Applies `R-ARCHIVE-PATH` when the carried path itself is not needed (no allocation for the
/// common safe relative path). Returns true when the row got the finding.
pub(crate) fn check_archive_path_only(
    rf: &mut RowFindings,
    value: &V1Value,
    files: Option<&dyn ArchiveFiles>,
    record: RecordArchive,
) -> bool {
    if files.is_none() {
        if let V1Value::Null = value {
            return false;
        }
        if let Some(raw) = value.as_str() {
            if raw.trim().is_empty() || is_plain_safe(raw) {
                return false;
            }
        }
    }
    let before = rf.items.len();
    check_archive_path(rf, value, files, record);
    rf.items.len() != before
}

/// [`check_archive_path_only`] for a stream of rows of one table: whether a path gets a finding
/// depends on the stored value alone (and the fixed archive tree), so the last value that got
/// none is remembered (rows stored together share their monthly archive file).
#[derive(Default)]
pub(crate) struct CleanPathMemo {
    last_clean: Option<V1Value>,
}

impl CleanPathMemo {
    pub(crate) fn check(
        &mut self,
        rf: &mut RowFindings,
        value: &V1Value,
        files: Option<&dyn ArchiveFiles>,
        record: RecordArchive,
    ) {
        if self.last_clean.as_ref() == Some(value) {
            return;
        }
        if !check_archive_path_only(rf, value, files, record) {
            match (&mut self.last_clean, value) {
                (Some(V1Value::Text(buf)), V1Value::Text(b)) => {
                    buf.clear();
                    buf.extend_from_slice(b);
                }
                (last, _) => *last = Some(value.clone()),
            }
        }
    }
}

/// The fast path's test: a relative path with nothing that could make it unsafe.
/// Exactly: not starting with `/` and containing none of `..`, `tmp`, `temp`, `Temp`, `TMP`,
/// `\\`, `:` (one pass over the bytes).
fn is_plain_safe(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.first() == Some(&b'/') {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let rest = &b[i + 1..];
        let hit = match c {
            b'\\' | b':' => true,
            b'.' => rest.first() == Some(&b'.'),
            b't' => rest.starts_with(b"mp") || rest.starts_with(b"emp"),
            b'T' => rest.starts_with(b"emp") || rest.starts_with(b"MP"),
            _ => false,
        };
        if hit {
            return false;
        }
    }
    true
}

/// The path pass 2 carries for a `text_file_path` that `R-ARCHIVE-PATH` left alone (what
/// [`check_archive_path`] returns when it records no finding): relative to the v1 archive root,
/// `None` when empty.
pub(crate) fn carried_path(value: &V1Value) -> Option<String> {
    let raw = value.to_text_lossy()?;
    (!raw.trim().is_empty()).then(|| root_relative(&raw))
}

/// Applies `R-ARCHIVE-PATH` and returns the path pass 2 carries, relative to the v1 archive root.
pub(crate) fn check_archive_path(
    rf: &mut RowFindings,
    value: &V1Value,
    files: Option<&dyn ArchiveFiles>,
    record: RecordArchive,
) -> Option<String> {
    let raw = value.to_text_lossy()?;
    if raw.trim().is_empty() {
        return None;
    }
    // Fast path for the common safe relative path (no tree to check against).
    if files.is_none() && is_plain_safe(&raw) {
        return carried_path(value);
    }
    let raw = raw.into_owned();
    let mut why = problems(&raw);
    let rel = root_relative(&raw);
    if why.is_empty() {
        match files {
            Some(f) if !f.contains_file(&rel) => {
                why.push("names a file the archive tree does not have")
            }
            _ => return carried_path(value),
        }
    }
    let repointed = files.and_then(|f| {
        [tail_after_root(&raw), record.path()]
            .into_iter()
            .flatten()
            .find(|c| f.contains_file(c))
    });
    let done = match &repointed {
        Some(p) => format!("re-pointed to the record's archive {p}"),
        None if files.is_some() => {
            "the archive tree has no file for the record; set to NULL".into()
        }
        None => "no archive tree given to re-point it; set to NULL".into(),
    };
    rf.push(
        RuleId::ArchivePath,
        Decision::Repaired,
        format!(
            "text_file_path {} {}; {done}",
            show(value),
            why.join(" and ")
        ),
    );
    repointed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn run(p: &str, files: Option<&BTreeSet<String>>) -> (Option<String>, bool) {
        let mut rf = RowFindings::new(1, "k".into());
        let t = NaiveDateTime::parse_from_str("2025-06-29 19:33:00", "%Y-%m-%d %H:%M:%S").ok();
        let out = check_archive_path(
            &mut rf,
            &V1Value::text(p),
            files.map(|f| f as &dyn ArchiveFiles),
            RecordArchive::Prayer(t),
        );
        (out, !rf.items.is_empty())
    }

    #[test]
    fn the_one_pass_safety_test_equals_the_substring_test() {
        let reference = |raw: &str| {
            !raw.starts_with('/')
                && !["..", "tmp", "temp", "Temp", "TMP", "\\", ":"]
                    .iter()
                    .any(|s| raw.contains(s))
        };
        for p in [
            "text_archives/prayers/marks/2025_06_marks.txt",
            "",
            "/x",
            "a/../b",
            "a.b",
            "x.",
            ".",
            "..",
            "tmp",
            "atmp",
            "temp",
            "Temp",
            "TEMP",
            "TMP",
            "Tmp",
            "tEmp",
            "t",
            "te",
            "tem",
            "T",
            "TM",
            "Te",
            "c:\\x",
            "a\\b",
            "a:b",
            "prayers/2025/06/2025_06_29_prayer_at_1933.txt",
            "contemplate",
            "attempt",
            "éé/tmp",
        ] {
            assert_eq!(is_plain_safe(p), reference(p), "{p:?}");
        }
    }

    #[test]
    fn unsafe_paths_are_found_and_repointed() {
        let good = "text_archives/prayers/2025/06/2025_06_29_prayer_at_1933.txt";
        assert_eq!(
            run(good, None),
            (
                Some("prayers/2025/06/2025_06_29_prayer_at_1933.txt".into()),
                false
            )
        );
        assert_eq!(run("../../etc/passwd", None), (None, true));
        assert_eq!(
            run(
                "/tmp/tmpab12/complete_site_archive/prayers/2025/06/x.txt",
                None
            ),
            (None, true)
        );
        let files: BTreeSet<String> =
            ["prayers/2025/06/2025_06_29_prayer_at_1933.txt".to_string()].into();
        assert_eq!(
            run(
                "/tmp/tmpab12/complete_site_archive/prayers/2025/06/nope.txt",
                Some(&files)
            ),
            (
                Some("prayers/2025/06/2025_06_29_prayer_at_1933.txt".into()),
                true
            )
        );
        assert!(!run(good, Some(&files)).1);
        assert!(run("text_archives/prayers/2025/06/missing.txt", Some(&files)).1);
        assert_eq!(run("", None), (None, false));
    }

    /// The reason of a check, for wording tests.
    fn reason(p: &str, files: Option<&BTreeSet<String>>) -> String {
        let mut rf = RowFindings::new(1, "k".into());
        check_archive_path(
            &mut rf,
            &V1Value::text(p),
            files.map(|f| f as &dyn ArchiveFiles),
            RecordArchive::Prayer(None),
        );
        rf.items
            .into_iter()
            .map(|(_, _, why)| why)
            .next()
            .unwrap_or_else(|| panic!("no finding for {p:?}"))
    }

    /// Reasons read as sentences: "climbs out of", "names a file", never "is climbs" or
    /// "is names" (the old wording).
    #[test]
    fn reasons_read_as_sentences() {
        let climbs = reason("../../etc/passwd", None);
        assert!(climbs.contains("climbs out of"), "{climbs}");
        assert!(!climbs.contains(" is climbs"), "{climbs}");
        let files: BTreeSet<String> = ["prayers/2025/06/other.txt".to_string()].into();
        let missing = reason("text_archives/prayers/2025/06/missing.txt", Some(&files));
        assert!(missing.contains("names a file"), "{missing}");
        assert!(!missing.contains(" is names"), "{missing}");
    }
}
