//! Marks, in memory that does not grow with their number: each mark row and each
//! `prayed this prayer` line of a prayer file becomes a fixed-size [`MarkEntry`] (keys of its
//! prayer and member, its time, where to find it again); a [`MarkSort`] orders the entries by
//! group, so the groups are compared one at a time; a row or line that takes part in a finding is
//! read again for its words.

use std::io;

use chrono::{DateTime, NaiveDateTime};

use super::{
    match_group, row_time, shown, ArchiveFinding, ArchiveRule, DbMark, ReconcileOptions,
    ReconcileRows, RecordKind, RowTime,
};
use thywill_v1::archive::{key_of, Key, MarkLinePos, V1Archive, V1PrayerMark};

/// One mark of either side in the form the reconciliation sorts: the keys of its group (the
/// prayer id, normalised, and the member's display name as written), then — rows before lines — the order in
/// which the group is matched, and where the row or line can be found again. Fixed-size, so an
/// external sort can spill it ([`MarkEntry::SIZE`], [`MarkEntry::encode`],
/// [`MarkEntry::decode`]); `Ord` is the order [`MarkSort`] must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MarkEntry {
    prayer: Key,
    user: Key,
    /// 0: a database row, 1: an archive line.
    side: u8,
    /// A row's time: 0 an instant, 1 a day, 2 unknown (rows match most specific first); 0 for a
    /// line.
    class: u8,
    /// The time as Unix seconds (a day: its midnight; unknown: 0) and nanoseconds.
    secs: i64,
    nanos: u32,
    /// A row's rowid (present, value); a line: (false, index of its prayer file).
    rowid: (bool, i64),
    /// A row's handle ([`ReconcileRows::mark`]); 0 for a line.
    handle: u64,
    /// A line's number (0 for a row).
    line: u64,
}

/// Sorts [`MarkEntry`]s by their `Ord`. `Vec<MarkEntry>` sorts in memory; a migration gives an
/// external sort so the memory does not grow with the number of marks.
pub trait MarkSort {
    /// The entries in order (an error ends the stream).
    type Sorted: Iterator<Item = io::Result<MarkEntry>>;
    /// Adds an entry.
    fn push(&mut self, entry: MarkEntry) -> io::Result<()>;
    /// Every entry pushed, in order.
    fn sorted(self) -> io::Result<Self::Sorted>;
}

impl MarkSort for Vec<MarkEntry> {
    type Sorted =
        std::iter::Map<std::vec::IntoIter<MarkEntry>, fn(MarkEntry) -> io::Result<MarkEntry>>;

    fn push(&mut self, entry: MarkEntry) -> io::Result<()> {
        Vec::push(self, entry);
        Ok(())
    }

    fn sorted(mut self) -> io::Result<Self::Sorted> {
        self.sort_unstable();
        Ok(self.into_iter().map(Ok))
    }
}

fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    out[*at..*at + bytes.len()].copy_from_slice(bytes);
    *at += bytes.len();
}

fn take<const N: usize>(bytes: &[u8], at: &mut usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&bytes[*at..*at + N]);
    *at += N;
    b
}

impl MarkEntry {
    /// The encoded size in bytes.
    pub const SIZE: usize = 2 * 17 + 2 + 12 + 9 + 16;

    /// Writes the entry into `out` ([`Self::SIZE`] bytes).
    pub fn encode(&self, out: &mut [u8]) {
        let at = &mut 0;
        for (tag, value) in [self.prayer, self.user] {
            put(out, at, &[tag]);
            put(out, at, &value.to_le_bytes());
        }
        put(out, at, &[self.side, self.class]);
        put(out, at, &self.secs.to_le_bytes());
        put(out, at, &self.nanos.to_le_bytes());
        put(out, at, &[u8::from(self.rowid.0)]);
        put(out, at, &self.rowid.1.to_le_bytes());
        put(out, at, &self.handle.to_le_bytes());
        put(out, at, &self.line.to_le_bytes());
    }

    /// Reads an entry written by [`Self::encode`].
    pub fn decode(bytes: &[u8]) -> Self {
        let at = &mut 0;
        let mut key = || {
            let [tag] = take::<1>(bytes, at);
            (tag, u128::from_le_bytes(take(bytes, at)))
        };
        let (prayer, user) = (key(), key());
        let [side, class] = take(bytes, at);
        MarkEntry {
            prayer,
            user,
            side,
            class,
            secs: i64::from_le_bytes(take(bytes, at)),
            nanos: u32::from_le_bytes(take(bytes, at)),
            rowid: (
                take::<1>(bytes, at)[0] != 0,
                i64::from_le_bytes(take(bytes, at)),
            ),
            handle: u64::from_le_bytes(take(bytes, at)),
            line: u64::from_le_bytes(take(bytes, at)),
        }
    }

    /// The entry of mark row `row`, its prayer id keyed `prayer` ([`V1Archive::prayer_key`]).
    fn row(handle: u64, row: &DbMark, prayer: Key) -> Self {
        let (class, t) = row_time(row.created_at.as_deref()).sort_key();
        let t = t.map(|t| t.and_utc());
        MarkEntry {
            prayer,
            user: key_of(&row.user),
            side: 0,
            class,
            secs: t.map_or(0, |t| t.timestamp()),
            nanos: t.map_or(0, |t| t.timestamp_subsec_nanos()),
            rowid: (row.rowid.is_some(), row.rowid.unwrap_or(0)),
            handle,
            line: 0,
        }
    }

    /// The entry of `prayed this prayer` line `line`, its prayer id keyed `prayer`
    /// ([`V1Archive::prayer_key`]).
    fn line(pos: MarkLinePos, line: &V1PrayerMark, prayer: Key) -> Self {
        MarkEntry {
            prayer,
            user: key_of(&line.user),
            side: 1,
            class: 0,
            secs: line.at.at.and_utc().timestamp(),
            nanos: 0,
            rowid: (false, i64::from(pos.file)),
            handle: 0,
            line: u64::from(pos.line),
        }
    }

    fn group(&self) -> (Key, Key) {
        (self.prayer, self.user)
    }

    fn time(&self) -> Option<NaiveDateTime> {
        DateTime::from_timestamp(self.secs, self.nanos).map(|t| t.naive_utc())
    }

    fn row_time(&self) -> RowTime {
        match (self.class, self.time()) {
            (0, Some(t)) => RowTime::At(t),
            (1, Some(t)) => RowTime::Day(t.date()),
            _ => RowTime::Unknown,
        }
    }

    fn line_pos(&self) -> MarkLinePos {
        MarkLinePos {
            file: self.rowid.1 as u32,
            line: self.line as u32,
        }
    }
}

/// The lines of one group that count: per minute, those of the one file holding the most
/// (the first in path order on a tie). Several files hold one prayer when `heal-archives` wrote a
/// copy (`_2`): its lines are the same acts again, not more of them. `lines` are sorted (by
/// minute, then file).
fn counted_lines<'a>(lines: &[&'a MarkEntry]) -> Vec<&'a MarkEntry> {
    let mut out = Vec::with_capacity(lines.len());
    for minute in lines.chunk_by(|a, b| a.secs.div_euclid(60) == b.secs.div_euclid(60)) {
        let best = minute
            .chunk_by(|a, b| a.rowid == b.rowid)
            .fold(&minute[..0], |best, file| {
                if file.len() > best.len() {
                    file
                } else {
                    best
                }
            });
        out.extend_from_slice(best);
    }
    out
}

/// The marks of `rows` against the `prayed this prayer` lines of `archive`'s prayer files (the
/// module's comparison rules).
pub(super) fn reconcile_marks<R: ReconcileRows, S: MarkSort>(
    archive: &V1Archive,
    rows: &R,
    mut sort: S,
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) -> Result<(), R::Error> {
    rows.for_each_mark(&mut |handle, m| {
        Ok(sort.push(MarkEntry::row(handle, m, archive.prayer_key(&m.prayer_id)))?)
    })?;
    // a sort's i/o error inside the tree's callback: kept aside, since that callback speaks the
    // reader's error type
    let mut spill = None;
    archive.for_each_mark_line(|pos, line| {
        if spill.is_none() {
            spill = sort
                .push(MarkEntry::line(
                    pos,
                    &line,
                    archive.prayer_key(&line.prayer_id),
                ))
                .err();
        }
        Ok(())
    })?;
    if let Some(e) = spill {
        return Err(e.into());
    }
    let mut group: Vec<MarkEntry> = Vec::new();
    for entry in sort.sorted()? {
        let entry = entry?;
        if group.first().is_some_and(|g| g.group() != entry.group()) {
            compare_group(archive, rows, &group, opts, out)?;
            group.clear();
        }
        group.push(entry);
    }
    compare_group(archive, rows, &group, opts, out)
}

/// One group: its rows and lines, each in matching order (as sorted).
fn compare_group<R: ReconcileRows>(
    archive: &V1Archive,
    rows: &R,
    group: &[MarkEntry],
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) -> Result<(), R::Error> {
    let (row_entries, line_entries) = group.split_at(group.partition_point(|e| e.side == 0));
    let row_entries: Vec<&MarkEntry> = row_entries.iter().collect();
    let line_entries = counted_lines(&line_entries.iter().collect::<Vec<_>>());
    let (pairs, left_rows, left_lines) = match_group(&row_entries, &line_entries, |r, l| {
        l.time()
            .is_some_and(|at| opts.time_matches(r.row_time(), at))
    });
    let row_key = |r: &DbMark| {
        r.id.clone()
            .unwrap_or_else(|| format!("{}|{}", r.prayer_id, r.user))
    };
    for (r, l) in pairs {
        let row = rows.mark(r.handle)?;
        let (path, line) = archive.mark_line(l.line_pos())?;
        out.push(ArchiveFinding {
            line: Some(l.line as u32),
            rule: ArchiveRule::Mismatch,
            kind: RecordKind::Mark,
            key: row_key(&row),
            rowid: row.rowid,
            path: Some(path.to_string()),
            detail: format!(
                "line {}: mark of prayer {} by `{}` at `{}`, row created_at {}",
                l.line,
                line.prayer_id,
                line.user,
                line.at.raw,
                shown(row.created_at.as_deref())
            ),
        });
    }
    for r in left_rows.into_iter().filter(|_| opts.rows_without_log_line) {
        let row = rows.mark(r.handle)?;
        out.push(ArchiveFinding {
            line: None,
            rule: ArchiveRule::Missing,
            kind: RecordKind::Mark,
            key: row_key(&row),
            rowid: row.rowid,
            path: None,
            detail: format!(
                "no `prayed this prayer` line for this mark of prayer {} by `{}` (created_at {})",
                row.prayer_id,
                row.user,
                shown(row.created_at.as_deref())
            ),
        });
    }
    for l in left_lines {
        let (path, line) = archive.mark_line(l.line_pos())?;
        out.push(ArchiveFinding {
            line: Some(l.line as u32),
            rule: ArchiveRule::Only,
            kind: RecordKind::Mark,
            key: format!("{}|{}", line.prayer_id, line.user),
            rowid: None,
            path: Some(path.to_string()),
            detail: format!(
                "line {}: `{} - {} prayed this prayer` is beyond the prayermark rows of this \
                 prayer, member and minute",
                l.line, line.at.raw, line.user
            ),
        });
    }
    Ok(())
}
