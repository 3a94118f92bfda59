//! The `prayermark` table, streamed grouped by prayer: `R-ORPHAN`, `R-TIME`, `R-ARCHIVE-PATH`,
//! `R-MARK-DUPLICATE`; and the pass-2 resolution of a mark row.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use thywill_v1::{MarkRow, V1Value};

use super::archive::{check_archive_path, RecordArchive};
use super::prayers::Prayers;
use super::users::Users;
use super::{
    check_time, key_text, require_parent, resolve_parent, Ctx, NoShape, RowFindings, TimeOutcome,
};
use crate::ids::{hex_id, v5};
use crate::keys::{normalize, KeyKind, NormKey};
use crate::model::{Decision, DetectError, Policy, RuleId};
use crate::plan::{Plan, ResolvedMark, Verdict};
use crate::time;

/// The v1 table name.
pub(crate) const TABLE: &str = "prayermark";

/// A mark's time: the stored value in any shape, else (repair) the date in its archive path.
fn mark_time(policy: Policy, row: &MarkRow) -> Option<NaiveDateTime> {
    time::parse_value(&row.created_at)
        .map(|p| p.at)
        .or_else(|| match policy {
            Policy::Repair => row
                .text_file_path
                .to_text_lossy()
                .and_then(|p| time::date_in_archive_path(&p)),
            Policy::Strict => None,
        })
}

/// The v2 id of a mark.
fn mark_v2_id(id: &V1Value, prayer: u128, user: u128, at: NaiveDateTime) -> u128 {
    match normalize(id, KeyKind::Hex) {
        Some(NormKey::Hex(h)) => h,
        _ => v5(&format!(
            "mark:{}:{}:{}",
            hex_id(prayer),
            hex_id(user),
            time::canonical(at)
        )),
    }
}

/// Before users are settled, when some user's `created_at` needs evidence: each member's
/// earliest mark (one extra streamed pass, only then).
pub(crate) fn user_activity(ctx: &Ctx<'_>, users: &mut Users) -> Result<(), DetectError> {
    ctx.db.for_each::<MarkRow, DetectError, _>(|m| {
        if let (Some(e), Some(t)) = (users.entry_of(&m.user), time::parse_value(&m.created_at)) {
            users.note_activity(e, t.at);
        }
        Ok(())
    })?;
    Ok(())
}

/// Pass 1 over `prayermark`, grouped by prayer (SQLite's external sort): only one prayer's
/// marks are held at a time. Returns the rowids pass 2 must skip.
pub(crate) fn stream(
    ctx: &mut Ctx<'_>,
    users: &Users,
    prayers: &mut Prayers,
) -> Result<HashSet<i64>, DetectError> {
    let mut skips = HashSet::new();
    let mut group: Vec<MarkRow> = Vec::new();
    let db = ctx.db;
    let n = db.for_each_mark_by_prayer::<DetectError, _>(|m| {
        if group.first().is_some_and(|g| g.prayer_id != m.prayer_id) {
            process_group(ctx, users, prayers, &mut group, &mut skips);
        }
        group.push(m);
        Ok(())
    })?;
    process_group(ctx, users, prayers, &mut group, &mut skips);
    ctx.sink.count_read(TABLE, n);
    Ok(skips)
}

fn process_group(
    ctx: &mut Ctx<'_>,
    users: &Users,
    prayers: &mut Prayers,
    group: &mut Vec<MarkRow>,
    skips: &mut HashSet<i64>,
) {
    let Some(first) = group.first() else {
        return;
    };
    let policy = ctx.policy;
    let files = ctx.opts.archive_files;
    let prayer_idx = prayers.index.lookup(&first.prayer_id, KeyKind::Hex);
    if let Some(p) = prayer_idx {
        for m in group.iter() {
            if let Some(t) = time::parse_value(&m.created_at) {
                prayers.note_activity(p, t.at);
            }
        }
        prayers.settle_pending(p);
    }
    let mut rfs: Vec<RowFindings> = Vec::with_capacity(group.len());
    // (member, instant) → indexes in `rfs` of the still-written marks with it.
    let mut sets: HashMap<(u128, NaiveDateTime), Vec<usize>> = HashMap::new();
    for m in group.iter() {
        let mut rf = RowFindings::new(m.rowid, key_text(&m.id, m.rowid));
        let parent = resolve_parent(&prayers.index, KeyKind::Hex, &m.prayer_id, |i| {
            prayers.is_written(i).then_some(i)
        });
        let prayer = require_parent(&mut rf, "prayer", parent);
        let user = require_parent(
            &mut rf,
            "member",
            resolve_parent(&users.index, users.kind, &m.user, |i| users.target(i)),
        );
        // Evidence is looked for only when the stored value fits no shape.
        let path_date = match time::parse_value(&m.created_at) {
            Some(_) => None,
            None => m
                .text_file_path
                .to_text_lossy()
                .and_then(|p| time::date_in_archive_path(&p)),
        };
        let at = match check_time(
            &mut rf,
            policy,
            "created_at",
            &m.created_at,
            false,
            NoShape::Evidence(path_date),
        ) {
            TimeOutcome::At(t) => Some(t),
            _ => None,
        };
        check_archive_path(&mut rf, &m.text_file_path, files, RecordArchive::Mark(at));
        if let (Some(_), Some(u), Some(t), true) = (prayer, user, at, rf.written()) {
            sets.entry((u, t)).or_default().push(rfs.len());
        }
        rfs.push(rf);
    }
    for members in sets.values().filter(|m| m.len() > 1) {
        let Some(&keeper) = members
            .iter()
            .min_by(|&&a, &&b| rfs[a].key.cmp(&rfs[b].key))
        else {
            continue;
        };
        let keeper_key = rfs[keeper].key.clone();
        for &d in members.iter().filter(|&&d| d != keeper) {
            rfs[d].push(
                RuleId::MarkDuplicate,
                Decision::Deduplicated,
                format!(
                    "same prayer, same member and same instant as mark {keeper_key} (kept: smallest key); deduplicated"
                ),
            );
        }
    }
    for rf in rfs {
        let rowid = rf.rowid;
        if !ctx.sink.commit(TABLE, rf) {
            skips.insert(rowid);
        }
    }
    group.clear();
}

/// Pass 2: the v2 mark for a row the plan does not skip.
pub(crate) fn resolve(plan: &Plan, row: &MarkRow) -> Verdict<ResolvedMark> {
    let prayer = plan
        .prayer_keys
        .lookup(&row.prayer_id, KeyKind::Hex)
        .and_then(|i| plan.prayers.get(i as usize))
        .filter(|s| s.written)
        .map(|s| s.v2_id);
    let user = plan.user_ref(&row.user);
    let at = mark_time(plan.policy, row);
    match (prayer, user, at) {
        (Some(p), Some(u), Some(at)) => Verdict::Write(ResolvedMark {
            id: hex_id(mark_v2_id(&row.id, p, u, at)),
            prayer_id: hex_id(p),
            user_id: hex_id(u),
            marked_at: at,
        }),
        _ => Verdict::Skip,
    }
}
