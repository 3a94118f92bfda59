//! The `prayer_attributes` table: folded into their prayer's v2 row, `R-ATTR-UNMAPPED` for names
//! with no v2 home, `R-ORPHAN`, `R-TIME`, `R-UTF8`, `R-ARCHIVE-PATH`.

use std::collections::HashMap;
use std::fs::File;
use std::io;

use chrono::NaiveDateTime;
use thywill_spill::{records_for_budget, ExternalSort, Record};
use thywill_v1::AttributeRow;

use super::archive::{check_archive_path, RecordArchive};
use super::prayers::Prayers;
use super::users::Users;
use super::{
    check_time, check_utf8, key_text, note_respelling, note_shift, require_parent, resolve_parent,
    show, Ctx, NoShape, Parent, RowFindings, TimeOutcome,
};
use crate::clock::{Clock, LocalColumn};
use crate::keys::{KeyKind, NormKey};
use crate::model::{Decision, DetectError, Policy, RuleId};
use crate::plan::PrayerExtras;
use crate::stored::{read_spooled, ByEntryWriter, Spool};
use crate::time::{self, PackedTime};

/// The v1 table name.
pub(crate) const TABLE: &str = "prayer_attributes";

/// The attribute names v2 has a home for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Archived,
    Answered,
    AnswerDate,
    Testimony,
    Flagged,
}

/// The kinds by their position (the encoding of [`FoldRecord::kind`]).
const KINDS: [Kind; 5] = [
    Kind::Archived,
    Kind::Answered,
    Kind::AnswerDate,
    Kind::Testimony,
    Kind::Flagged,
];

fn kind(name: &str) -> Option<Kind> {
    Some(match name {
        "archived" => Kind::Archived,
        "answered" => Kind::Answered,
        "answer_date" => Kind::AnswerDate,
        "answer_testimony" => Kind::Testimony,
        "flagged" => Kind::Flagged,
        _ => return None,
    })
}

/// An attribute whose prayer's fate was still pending when it was read.
pub(crate) struct Deferred {
    rf: RowFindings,
    prayer: u32,
    fold: Option<Fold>,
}

/// What a carried attribute contributes to its prayer (its value already read for its kind).
#[derive(Clone, Debug, PartialEq)]
struct Fold {
    kind: Kind,
    at: NaiveDateTime,
    /// The value does not say false (`archived`, `answered`, `flagged`).
    on: bool,
    /// The parsed value of an `answer_date`.
    date: Option<NaiveDateTime>,
    /// The value of an `answer_testimony`, when not blank.
    testimony: Option<String>,
    by: Option<u128>,
}

impl Fold {
    fn new(kind: Kind, at: NaiveDateTime, value: Option<String>, by: Option<u128>) -> Fold {
        Fold {
            kind,
            at,
            on: value
                .as_deref()
                .map(|v| thywill_v1::V1Value::text(v).as_bool() != Some(false))
                .unwrap_or(true),
            date: match kind {
                Kind::AnswerDate => value.as_deref().and_then(time::parse_str).map(|p| p.at),
                _ => None,
            },
            testimony: value.filter(|v| kind == Kind::Testimony && !v.trim().is_empty()),
            by,
        }
    }
}

/// Attribute folds of settled prayers, in bounded memory until [`store`] folds each prayer's
/// in reading order: fixed-size records in an external sort by (prayer, reading order), the
/// testimony texts in a temporary file. Attributes do not stay in memory however many
/// prayers have them.
pub(crate) struct Folds {
    records: ExternalSort<FoldRecord>,
    /// The testimonies.
    texts: Spool,
}

/// Records held in memory before a sorted run is spilled (1 MiB).
const FOLDS_IN_MEMORY: usize = 1 << 20;

impl Folds {
    fn new() -> Folds {
        Folds {
            records: ExternalSort::with_limit(records_for_budget::<FoldRecord>(FOLDS_IN_MEMORY)),
            texts: Spool::new(),
        }
    }

    fn push(&mut self, prayer: u32, f: Fold) -> io::Result<()> {
        let testimony = match &f.testimony {
            Some(t) => (self.texts.append(&[t.as_bytes()]), t.len() as u32),
            None => (0, NO_TEXT),
        };
        self.records.push(FoldRecord {
            prayer,
            seq: self.records.len(),
            kind: KINDS.iter().position(|k| *k == f.kind).unwrap_or(0) as u8,
            at: PackedTime::new(Some(f.at)).raw(),
            on: f.on,
            date: PackedTime::new(f.date).raw(),
            by: f.by,
            testimony,
        })
    }
}

/// `FoldRecord::testimony`'s length when there is none.
const NO_TEXT: u32 = u32::MAX;

/// A [`Fold`] as [`Folds`] keeps it, ordered by prayer then reading order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FoldRecord {
    prayer: u32,
    seq: u64,
    kind: u8,
    at: i64,
    on: bool,
    date: i64,
    by: Option<u128>,
    /// (offset, length) in the texts file; length [`NO_TEXT`] when none.
    testimony: (u64, u32),
}

impl Record for FoldRecord {
    const SIZE: usize = 4 + 8 + 1 + 8 + 1 + 8 + 17 + 8 + 4;

    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.prayer.to_le_bytes());
        out[4..12].copy_from_slice(&self.seq.to_le_bytes());
        out[12] = self.kind;
        out[13..21].copy_from_slice(&self.at.to_le_bytes());
        out[21] = self.on as u8;
        out[22..30].copy_from_slice(&self.date.to_le_bytes());
        out[30] = self.by.is_some() as u8;
        out[31..47].copy_from_slice(&self.by.unwrap_or(0).to_le_bytes());
        out[47..55].copy_from_slice(&self.testimony.0.to_le_bytes());
        out[55..59].copy_from_slice(&self.testimony.1.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        let bytes = |from: usize, to: usize| &b[from..to];
        let u64_at = |i: usize| u64::from_le_bytes(bytes(i, i + 8).try_into().unwrap_or_default());
        FoldRecord {
            prayer: u32::from_le_bytes(bytes(0, 4).try_into().unwrap_or_default()),
            seq: u64_at(4),
            kind: b[12],
            at: u64_at(13) as i64,
            on: b[21] != 0,
            date: u64_at(22) as i64,
            by: (b[30] != 0)
                .then(|| u128::from_le_bytes(bytes(31, 47).try_into().unwrap_or_default())),
            testimony: (
                u64_at(47),
                u32::from_le_bytes(bytes(55, 59).try_into().unwrap_or_default()),
            ),
        }
    }
}

impl FoldRecord {
    /// The fold, its testimony read back from `texts`.
    fn fold(&self, texts: Option<&File>) -> Result<Fold, DetectError> {
        let testimony = match self.testimony {
            (_, NO_TEXT) => None,
            (offset, len) => {
                let mut buf = vec![0u8; len as usize];
                read_spooled(texts, offset, &mut buf)?;
                Some(String::from_utf8(buf).map_err(|e| {
                    DetectError::Spill(io::Error::new(io::ErrorKind::InvalidData, e))
                })?)
            }
        };
        let corrupt = || DetectError::Spill(io::ErrorKind::InvalidData.into());
        Ok(Fold {
            kind: *KINDS.get(self.kind as usize).ok_or_else(corrupt)?,
            at: PackedTime::from_raw(self.at).get().ok_or_else(corrupt)?,
            on: self.on,
            date: PackedTime::from_raw(self.date).get(),
            testimony,
            by: self.by,
        })
    }
}

/// Once the attributes are read: folds every settled prayer's attributes (in reading order,
/// onto its side record if it has one) and stores the records out of memory; only a pending
/// prayer's record stays, as the deferred attributes can still change it.
pub(crate) fn store(prayers: &mut Prayers, folds: Folds) -> Result<(), DetectError> {
    let texts = folds.texts.finish()?;
    let mut sorted = folds.records.into_sorted()?;
    let mut next_fold = sorted.next().transpose()?;
    let mut settled = prayers.states.take_settled_extras().into_iter().peekable();
    let mut out = ByEntryWriter::new();
    loop {
        let prayer = match (settled.peek().map(|s| s.0), next_fold.map(|f| f.prayer)) {
            (None, None) => break,
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a.min(b),
        };
        let mut extras = settled
            .next_if(|s| s.0 == prayer)
            .map_or_else(PrayerExtras::default, |(_, e)| *e);
        while let Some(f) = next_fold.filter(|f| f.prayer == prayer) {
            apply(&mut extras, f.fold(texts.as_ref())?);
            next_fold = sorted.next().transpose()?;
        }
        if extras.flag_attr.is_some() {
            prayers.states.set_flag_attribute(prayer);
        }
        out.push(prayer, &extras);
    }
    prayers.states.set_stored_extras(out.finish()?);
    Ok(())
}

fn apply(state: &mut PrayerExtras, f: Fold) {
    let on = f.on;
    state.updated_at = Some(state.updated_at.map_or(f.at, |u| u.max(f.at)));
    let answered = |state: &mut PrayerExtras| {
        state.answered = Some(state.answered.map_or(f.at, |a| a.min(f.at)));
    };
    match f.kind {
        Kind::Archived => state.is_archived |= on,
        Kind::Answered if on => answered(state),
        Kind::Answered => {}
        // Carried only beside a shown `answered` that says true (see [`Shown`]).
        Kind::AnswerDate => {
            if let Some(at) = f.date {
                state.answer_date = Some(at);
            }
        }
        Kind::Testimony => {
            if let Some(v) = f.testimony {
                state.testimony = Some(v.into());
            }
        }
        Kind::Flagged if on => {
            if state.flag_attr.is_none_or_later(f.at) {
                state.flag_attr = Some((f.at, f.by));
            }
        }
        Kind::Flagged => {}
    }
}

trait EarliestFlag {
    fn is_none_or_later(&self, at: NaiveDateTime) -> bool;
}

impl EarliestFlag for Option<(NaiveDateTime, Option<u128>)> {
    fn is_none_or_later(&self, at: NaiveDateTime) -> bool {
        match self {
            Some((t, _)) => *t > at,
            None => true,
        }
    }
}

/// Which attribute rows v1 shows (rules.md, mapping of prayers): of several rows of one name on
/// one prayer (v1's importers add one at each import), `.first()`, the smallest rowid; and the
/// prayers whose shown `answered` says true (an `answer_date` or `answer_testimony` of any other
/// prayer has no v2 home: v2 keeps no answer for an unanswered prayer). One extra scan of the
/// table, an entry per (prayer, attribute name) held.
#[derive(Default)]
struct Shown {
    first: HashMap<(NormKey, u8), (i64, bool)>,
}

impl Shown {
    fn read(db: &thywill_v1::V1Database) -> Result<Shown, DetectError> {
        let mut shown = Shown::default();
        db.for_each::<AttributeRow, DetectError, _>(|row| {
            let (Some(k), Some(prayer)) = (
                row_kind(&row),
                crate::keys::normalize(&row.prayer_id, KeyKind::Hex),
            ) else {
                return Ok(());
            };
            let on = row
                .value
                .to_text_lossy()
                .map(|v| thywill_v1::V1Value::text(&v).as_bool() != Some(false));
            let slot = shown
                .first
                .entry((prayer, k as u8))
                .or_insert((row.rowid, on.unwrap_or(true)));
            if row.rowid < slot.0 {
                *slot = (row.rowid, on.unwrap_or(true));
            }
            Ok(())
        })?;
        Ok(shown)
    }

    /// The rowid of the row v1 shows for this row's prayer and name (`None`: no such key).
    fn first_of(&self, row: &AttributeRow, k: Kind) -> Option<i64> {
        let prayer = crate::keys::normalize(&row.prayer_id, KeyKind::Hex)?;
        self.first.get(&(prayer, k as u8)).map(|s| s.0)
    }

    /// True when the prayer of `row` is answered as v1 shows it.
    fn answered(&self, row: &AttributeRow) -> bool {
        crate::keys::normalize(&row.prayer_id, KeyKind::Hex)
            .and_then(|p| self.first.get(&(p, Kind::Answered as u8)))
            .is_some_and(|s| s.1)
    }
}

fn row_kind(row: &AttributeRow) -> Option<Kind> {
    row.name.to_text_lossy().and_then(|c| kind(c.trim()))
}

/// Pass 1 over `prayer_attributes`. Rows of prayers whose fate is pending are returned for
/// [`finish`]; the folds of the others, for [`store`].
pub(crate) fn read(
    ctx: &mut Ctx<'_>,
    users: &Users,
    prayers: &mut Prayers,
) -> Result<(Vec<Deferred>, Folds), DetectError> {
    let mut deferred = Vec::new();
    let mut folds = Folds::new();
    let policy = ctx.policy;
    let clock = ctx.opts.clock;
    let files = ctx.opts.archive_files;
    let db = ctx.db;
    let shown = Shown::read(db)?;
    let n = db.for_each::<AttributeRow, DetectError, _>(|row| {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        let texts = check_utf8(&mut rf, &[("attribute_value", &row.value)]);
        let k = carried_kind(&mut rf, &shown, &row);
        let at = attribute_time(&mut rf, policy, &row);
        check_archive_path(
            &mut rf,
            &row.text_file_path,
            files,
            RecordArchive::Attribute(at),
        );
        let by = creator(&mut rf, users, &row);
        let parent = resolve_parent(&prayers.states.keys, KeyKind::Hex, &row.prayer_id, |i| {
            (!prayers.is_skipped(i)).then_some(i)
        });
        let prayer = require_parent(&mut rf, "prayer", parent);
        if let (Some(p), Some(t)) = (prayer, at) {
            prayers.note_activity(p, t);
        }
        let fold = match (k, at) {
            (Some(kind), Some(at)) => Some(fold_of(&mut rf, &clock, &row, kind, at, texts, by)),
            _ => None,
        };
        match prayer {
            Some(p) if prayers.is_pending(p) => {
                deferred.push(Deferred {
                    rf,
                    prayer: p,
                    fold,
                });
            }
            // Committed as read: nothing is kept of a settled attribute but its fold.
            Some(p) => {
                if let (true, Some(f)) = (ctx.sink.commit(TABLE, &rf), fold) {
                    folds.push(p, f)?;
                }
            }
            None => {
                ctx.sink.commit(TABLE, &rf);
            }
        }
        Ok(())
    })?;
    ctx.sink.count_read(TABLE, n);
    Ok((deferred, folds))
}

/// The kind of v2 home the row's name has, if the row is carried: `R-ATTR-UNMAPPED` for a name
/// with none (and for an answer of a prayer v1 does not show answered), `R-ATTR-DUPLICATE` for
/// a row v1 does not show (another of the same name comes first).
fn carried_kind(rf: &mut RowFindings, shown: &Shown, row: &AttributeRow) -> Option<Kind> {
    let name = row
        .name
        .to_text_lossy()
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    let Some(kd) = kind(&name) else {
        rf.push(
            RuleId::AttrUnmapped,
            Decision::NotCarried,
            format!(
                "attribute {} has no v2 home; not carried (kept in the v1 backup)",
                show(&row.name)
            ),
        );
        return None;
    };
    match shown.first_of(row, kd) {
        Some(first) if first != row.rowid => {
            rf.push(
                RuleId::AttrDuplicate,
                Decision::Deduplicated,
                format!(
                    "another '{name}' row of prayer {} (v1 shows the first, rowid {first}); deduplicated",
                    show(&row.prayer_id)
                ),
            );
            None
        }
        _ if matches!(kd, Kind::AnswerDate | Kind::Testimony) && !shown.answered(row) => {
            rf.push(
                RuleId::AttrUnmapped,
                Decision::NotCarried,
                format!(
                    "'{name}' of prayer {}, which v1 does not show answered (no `answered` \
                     attribute saying true): v2 keeps no answer for an unanswered prayer; \
                     not carried (kept in the v1 backup)",
                    show(&row.prayer_id)
                ),
            );
            None
        }
        _ => Some(kd),
    }
}

/// `R-TIME` of the row's `created_at` (the date in its archive path is the evidence).
fn attribute_time(
    rf: &mut RowFindings,
    policy: Policy,
    row: &AttributeRow,
) -> Option<NaiveDateTime> {
    let path_date = row
        .text_file_path
        .to_text_lossy()
        .and_then(|p| time::date_in_archive_path(&p));
    match check_time(
        rf,
        policy,
        "created_at",
        &row.created_at,
        false,
        NoShape::Evidence(path_date),
    ) {
        TimeOutcome::At(t) => Some(t),
        _ => None,
    }
}

/// The carried member who made the row (`None`: no such member, which is no fault), with the
/// `R-ORPHAN` repair of a respelled reference.
fn creator(rf: &mut RowFindings, users: &Users, row: &AttributeRow) -> Option<u128> {
    note_respelling(rf, "created_by", &users.index, users.kind, &row.created_by);
    match resolve_parent(&users.index, users.kind, &row.created_by, |i| {
        users.target(i)
    }) {
        Parent::Found(t) => Some(t),
        _ => None,
    }
}

/// The fold of a carried row into its prayer; an `answer_date`'s value is read with v1's local
/// clock (rules.md "Clocks"), a skipped or repeated wall-clock time recorded.
fn fold_of(
    rf: &mut RowFindings,
    clock: &Clock,
    row: &AttributeRow,
    kind: Kind,
    at: NaiveDateTime,
    texts: Vec<Option<String>>,
    by: Option<u128>,
) -> Fold {
    let value = texts.into_iter().next().flatten();
    let local = (kind == Kind::AnswerDate).then(|| {
        value
            .as_deref()
            .and_then(|v| clock.parse_str(v, LocalColumn::Local))
    });
    let mut fold = Fold::new(kind, at, value, by);
    if let Some(local) = local {
        note_shift(rf, clock, "answer_date value", &row.value, local);
        fold.date = local.map(|l| l.parsed.at);
    }
    fold
}

/// Settles the attributes of prayers that were pending, once prayers are committed.
pub(crate) fn finish(ctx: &mut Ctx<'_>, prayers: &mut Prayers, deferred: Vec<Deferred>) {
    for mut d in deferred {
        if !prayers.is_written(d.prayer) {
            d.rf.push(
                RuleId::Orphan,
                Decision::Quarantined,
                "its prayer is itself quarantined (see its finding); quarantined with it",
            );
        }
        if ctx.sink.commit(TABLE, &d.rf) {
            if let Some(f) = d.fold {
                let extras = prayers.states.extras_mut(d.prayer);
                apply(extras, f);
                if extras.flag_attr.is_some() {
                    prayers.states.set_flag_attribute(d.prayer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2025, 6, day)
            .and_then(|d| d.and_hms_micro_opt(10, 0, 0, 123_456))
            .expect("valid date")
    }

    #[test]
    fn a_fold_survives_its_record() {
        let folds = [
            Fold::new(
                Kind::Testimony,
                at(1),
                Some("She is home.".into()),
                Some(7 << 100),
            ),
            Fold::new(Kind::Testimony, at(2), Some("   ".into()), None),
            Fold::new(
                Kind::AnswerDate,
                at(3),
                Some("2025-06-10T08:30:00Z".into()),
                None,
            ),
            Fold::new(Kind::Archived, at(4), Some("false".into()), Some(1)),
            Fold::new(Kind::Flagged, at(5), None, None),
        ];
        assert_eq!(folds[1].testimony, None, "a blank testimony is none");
        assert!(folds[2].date.is_some() && !folds[3].on && folds[4].on);
        let mut spill = Folds::new();
        for (i, f) in folds.iter().enumerate() {
            spill.push(9 - i as u32, f.clone()).expect("push");
        }
        let texts = spill.texts.finish().expect("flush");
        let back: Vec<Fold> = spill
            .records
            .into_sorted()
            .expect("sort")
            .map(|r| r.expect("read").fold(texts.as_ref()).expect("fold"))
            .collect();
        let mut expected = folds.to_vec();
        expected.reverse();
        assert_eq!(back, expected);
    }

    /// Past the in-memory budget the records spill; each prayer's folds come back together and
    /// in reading order.
    #[test]
    fn many_folds_come_back_by_prayer_in_reading_order() {
        let mut spill = Folds::new();
        let n = 3 * records_for_budget::<FoldRecord>(FOLDS_IN_MEMORY) as u32;
        for i in 0..n {
            let text = format!("testimony {i}");
            spill
                .push(
                    i % 7,
                    Fold::new(Kind::Testimony, at(1 + i % 28), Some(text), None),
                )
                .expect("push");
        }
        assert!(spill.records.spilled_runs() > 0, "the test spills");
        let texts = spill.texts.finish().expect("flush");
        let mut last: Option<(u32, u32)> = None;
        for r in spill.records.into_sorted().expect("sort") {
            let r = r.expect("read");
            let f = r.fold(texts.as_ref()).expect("fold");
            let i: u32 = f.testimony.as_deref().expect("text")[10..]
                .parse()
                .expect("number");
            assert_eq!(i % 7, r.prayer);
            assert!(last.is_none_or(|(p, j)| p < r.prayer || (p == r.prayer && j < i)));
            last = Some((r.prayer, i));
        }
    }
}
