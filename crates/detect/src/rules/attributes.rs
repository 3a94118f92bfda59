//! The `prayer_attributes` table: folded into their prayer's v2 row, `R-ATTR-UNMAPPED` for names
//! with no v2 home, `R-ORPHAN`, `R-TIME`, `R-UTF8`, `R-ARCHIVE-PATH`.

use chrono::NaiveDateTime;
use thywill_v1::AttributeRow;

use super::archive::{check_archive_path, RecordArchive};
use super::prayers::Prayers;
use super::users::Users;
use super::{
    check_time, check_utf8, key_text, require_parent, resolve_parent, show, Ctx, NoShape, Parent,
    RowFindings, TimeOutcome,
};
use crate::keys::KeyKind;
use crate::model::{Decision, DetectError, RuleId};
use crate::plan::PrayerExtras;
use crate::time;

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

/// What a carried attribute contributes to its prayer.
#[derive(Clone, Debug)]
struct Fold {
    kind: Kind,
    at: NaiveDateTime,
    value: Option<String>,
    by: Option<u128>,
}

fn apply(state: &mut PrayerExtras, f: Fold) {
    let on = f
        .value
        .as_deref()
        .map(|v| thywill_v1::V1Value::text(v).as_bool() != Some(false))
        .unwrap_or(true);
    state.updated_at = Some(state.updated_at.map_or(f.at, |u| u.max(f.at)));
    let answered = |state: &mut PrayerExtras| {
        state.answered = Some(state.answered.map_or(f.at, |a| a.min(f.at)));
    };
    match f.kind {
        Kind::Archived => state.is_archived |= on,
        Kind::Answered if on => answered(state),
        Kind::Answered => {}
        Kind::AnswerDate => {
            answered(state);
            if let Some(p) = f.value.as_deref().and_then(time::parse_str) {
                state.answer_date = Some(p.at);
            }
        }
        Kind::Testimony => {
            answered(state);
            if let Some(v) = f.value.filter(|v| !v.trim().is_empty()) {
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

/// Pass 1 over `prayer_attributes`. Rows of prayers whose fate is pending are returned for
/// [`finish`].
pub(crate) fn read(
    ctx: &mut Ctx<'_>,
    users: &Users,
    prayers: &mut Prayers,
) -> Result<Vec<Deferred>, DetectError> {
    let mut deferred = Vec::new();
    let policy = ctx.policy;
    let files = ctx.opts.archive_files;
    let db = ctx.db;
    let n = db.for_each::<AttributeRow, DetectError, _>(|row| {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        let texts = check_utf8(&mut rf, &[("attribute_value", &row.value)]);
        let name = row
            .name
            .to_text_lossy()
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        let k = kind(&name);
        if k.is_none() {
            rf.push(
                RuleId::AttrUnmapped,
                Decision::NotCarried,
                format!(
                    "attribute {} has no v2 home; not carried (kept in the v1 backup)",
                    show(&row.name)
                ),
            );
        }
        let path_date = row
            .text_file_path
            .to_text_lossy()
            .and_then(|p| time::date_in_archive_path(&p));
        let at = match check_time(
            &mut rf,
            policy,
            "created_at",
            &row.created_at,
            false,
            NoShape::Evidence(path_date),
        ) {
            TimeOutcome::At(t) => Some(t),
            _ => None,
        };
        check_archive_path(
            &mut rf,
            &row.text_file_path,
            files,
            RecordArchive::Attribute(at),
        );
        let by = match resolve_parent(&users.index, users.kind, &row.created_by, |i| {
            users.target(i)
        }) {
            Parent::Found(t) => Some(t),
            _ => None,
        };
        let parent = resolve_parent(&prayers.states.keys, KeyKind::Hex, &row.prayer_id, |i| {
            (!prayers.is_skipped(i)).then_some(i)
        });
        let prayer = require_parent(&mut rf, "prayer", parent);
        if let (Some(p), Some(t)) = (prayer, at) {
            prayers.note_activity(p, t);
        }
        let fold = match (k, at) {
            (Some(kind), Some(at)) => Some(Fold {
                kind,
                at,
                value: texts[0].clone(),
                by,
            }),
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
                    apply(prayers.states.extras_mut(p), f);
                }
            }
            None => {
                ctx.sink.commit(TABLE, &rf);
            }
        }
        Ok(())
    })?;
    ctx.sink.count_read(TABLE, n);
    Ok(deferred)
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
                apply(prayers.states.extras_mut(d.prayer), f);
            }
        }
    }
}
