//! The monthly v2 files: `activity/<YYYY-MM>.txt` and `community/<YYYY-MM>.txt`. Each has one
//! record type ordered by what the file shows, a renderer and a parser (the parser is what lets
//! the v2 application insert one record into an existing month).

use std::path::Path;

use chrono::NaiveDateTime;

use super::{parse_iso, push_iso};
use crate::error::{ArchiveError, Result};
use crate::safety::YearMonth;

/// `activity/<YYYY-MM>.txt`.
pub fn activity_path(month: YearMonth) -> String {
    format!("activity/{month}.txt")
}

/// `community/<YYYY-MM>.txt`.
pub fn community_path(month: YearMonth) -> String {
    format!("community/{month}.txt")
}

/// One block of an activity month, ordered by (time, prayer id, name): the block is fully
/// determined by these, so equal keys render equal blocks and no hidden tie-breaker exists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ActivityEntry {
    pub at: NaiveDateTime,
    pub prayer_id: String,
    pub name: String,
}

/// Appends one activity block.
pub(crate) fn push_activity_block(
    out: &mut Vec<u8>,
    at: &NaiveDateTime,
    prayer_id: &str,
    name: &str,
) {
    out.extend_from_slice(b"Prayer Mark\nDate: ");
    push_iso(out, at);
    out.extend_from_slice(b"\nPrayer ID: ");
    out.extend_from_slice(prayer_id.as_bytes());
    out.extend_from_slice(b"\nMarked By: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\n\nUser marked this prayer as prayed.\n\n");
}

/// What a community line announces; the order is the tie-breaker at equal times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CommunityKind {
    Joined,
    Requested,
    Answered,
}

/// One line of a community month, ordered by (time, kind, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CommunityEntry {
    pub at: NaiveDateTime,
    pub kind: CommunityKind,
    pub name: String,
}

const JOIN_PREFIX: &str = "User '";
const JOIN_SUFFIX: &str = "' joined the community";
const REQUEST_PREFIX: &str = "Prayer request submitted by ";
const ANSWER_PREFIX: &str = "Prayer answered - testimony by ";

/// Appends one community line.
pub(crate) fn push_community_line(
    out: &mut Vec<u8>,
    at: &NaiveDateTime,
    kind: CommunityKind,
    name: &str,
) {
    push_iso(out, at);
    out.extend_from_slice(b": ");
    let (prefix, suffix) = match kind {
        CommunityKind::Joined => (JOIN_PREFIX, JOIN_SUFFIX),
        CommunityKind::Requested => (REQUEST_PREFIX, ""),
        CommunityKind::Answered => (ANSWER_PREFIX, ""),
    };
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    out.push(b'\n');
}

fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes)
        .map_err(|e| parse_error(path, line_of(bytes, e.valid_up_to()), "not UTF-8"))
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

fn parse_error(path: &Path, line: usize, message: &str) -> ArchiveError {
    ArchiveError::Parse {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    }
}

/// Parses an activity month written by this crate.
pub(crate) fn parse_activity(path: &Path, bytes: &[u8]) -> Result<Vec<ActivityEntry>> {
    let text = utf8(path, bytes)?;
    let lines: Vec<&str> = text.split('\n').collect();
    // Every block is 7 lines ending in an empty one, and the file ends with "\n".
    if lines.last() != Some(&"") || !(lines.len() - 1).is_multiple_of(7) {
        return Err(parse_error(
            path,
            lines.len(),
            "activity file does not end with a whole block",
        ));
    }
    let mut entries = Vec::with_capacity(lines.len() / 7);
    for (b, block) in lines[..lines.len() - 1].chunks(7).enumerate() {
        let first = b * 7 + 1;
        let field = |i: usize, prefix: &str| {
            block[i]
                .strip_prefix(prefix)
                .ok_or_else(|| parse_error(path, first + i, &format!("expected `{prefix}…`")))
        };
        let fixed = |i: usize, want: &str| {
            if block[i] == want {
                Ok(())
            } else {
                Err(parse_error(path, first + i, &format!("expected `{want}`")))
            }
        };
        fixed(0, "Prayer Mark")?;
        let at = parse_iso(field(1, "Date: ")?)
            .ok_or_else(|| parse_error(path, first + 1, "bad time"))?;
        let prayer_id = field(2, "Prayer ID: ")?.to_string();
        let name = field(3, "Marked By: ")?.to_string();
        fixed(4, "")?;
        fixed(5, "User marked this prayer as prayed.")?;
        fixed(6, "")?;
        entries.push(ActivityEntry {
            at,
            prayer_id,
            name,
        });
    }
    Ok(entries)
}

/// Renders an activity month from entries already sorted.
pub(crate) fn render_activity(entries: &[ActivityEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 140);
    for e in entries {
        push_activity_block(&mut out, &e.at, &e.prayer_id, &e.name);
    }
    out
}

/// Parses a community month written by this crate.
pub(crate) fn parse_community(path: &Path, bytes: &[u8]) -> Result<Vec<CommunityEntry>> {
    let text = utf8(path, bytes)?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(parse_error(
            path,
            line_of(bytes, bytes.len()),
            "community file does not end with a newline",
        ));
    };
    let mut entries = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let bad = || parse_error(path, i + 1, "expected `<time>: <event>`");
        let (time, rest) = line.split_at_checked(19).ok_or_else(bad)?;
        let at = parse_iso(time).ok_or_else(bad)?;
        let rest = rest.strip_prefix(": ").ok_or_else(bad)?;
        let (kind, name) = if let Some(n) = rest
            .strip_prefix(JOIN_PREFIX)
            .and_then(|r| r.strip_suffix(JOIN_SUFFIX))
        {
            (CommunityKind::Joined, n)
        } else if let Some(n) = rest.strip_prefix(REQUEST_PREFIX) {
            (CommunityKind::Requested, n)
        } else if let Some(n) = rest.strip_prefix(ANSWER_PREFIX) {
            (CommunityKind::Answered, n)
        } else {
            return Err(bad());
        };
        entries.push(CommunityEntry {
            at,
            kind,
            name: name.to_string(),
        });
    }
    Ok(entries)
}

/// Renders a community month from entries already sorted.
pub(crate) fn render_community(entries: &[CommunityEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 64);
    for e in entries {
        push_community_line(&mut out, &e.at, e.kind, &e.name);
    }
    out
}
