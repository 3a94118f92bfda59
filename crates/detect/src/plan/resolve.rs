//! Pass 2: what a v1 prayer or mark row becomes in v2, from the plan's state (decided in the
//! first pass) and the row itself. Nothing here decides: every value is the one the first pass
//! vetted, made by the same functions of the same row.

use chrono::NaiveDateTime;
use thywill_v1::{MarkRow, PrayerRow};

use super::state::{
    PrayerExtras, ResolvedFlag, ResolvedMark, ResolvedPrayer, Verdict, FLAGGED_COLUMN,
    FLAG_ATTRIBUTE, PATH_REPAIRED,
};
use super::Plan;
use crate::ids::{hex_id, v5};
use crate::keys::KeyKind;
use crate::model::DetectError;
use crate::rules::archive::carried_path;
use crate::rules::marks::{mark_time, mark_v2_id};
use crate::rules::prayers::{audience, lossy, v2_text};

/// The v2 flag of a prayer: the v1 column (at the prayer's `created_at`), or its earliest
/// `flagged` attribute (time, member).
fn flag_of(
    prayer_id: u128,
    bits: u8,
    extras: &PrayerExtras,
    created_at: Option<NaiveDateTime>,
) -> Option<ResolvedFlag> {
    if bits & FLAGGED_COLUMN == 0 && extras.flag_attr.is_none() {
        return None;
    }
    let flagged_at = extras.flag_attr.map(|f| f.0).or(created_at);
    debug_assert!(
        flagged_at.is_some(),
        "a written prayer's created_at is known"
    );
    Some(ResolvedFlag {
        id: hex_id(v5(&format!("flag:{}", hex_id(prayer_id)))),
        flagged_by_user_id: extras.flag_attr.and_then(|f| f.1).map(hex_id),
        flagged_at: flagged_at?,
        reason: "carried over from v1",
    })
}

/// Pass 2 for `content_flags`: prayer `idx`'s v2 id and flag, when it is written and flagged
/// (the same flag [`prayer`] gives; only a flagged prayer's side record is read).
pub(crate) fn flag(plan: &Plan, idx: u32) -> Result<Option<(String, ResolvedFlag)>, DetectError> {
    let states = &plan.prayers;
    let bits = states.bits[idx as usize];
    if bits & (FLAGGED_COLUMN | FLAG_ATTRIBUTE) == 0 || states.written_v2_id(idx).is_none() {
        return Ok(None);
    }
    // A column-flagged prayer's created_at is kept; an attribute gives its own time.
    let created_at = states.created(idx);
    let extras = states.extras(idx)?;
    let flag = flag_of(states.v2_id(idx), bits, &extras, created_at);
    Ok(flag.map(|f| (hex_id(states.v2_id(idx)), f)))
}

/// Pass 2: the v2 prayer for a row the plan writes (prayer entry `idx`).
pub(crate) fn prayer(
    plan: &Plan,
    idx: u32,
    row: &PrayerRow,
) -> Result<Verdict<ResolvedPrayer>, DetectError> {
    let states = &plan.prayers;
    let operator = states.operator.get(&idx);
    let author = operator
        .and_then(|o| o.author)
        .or_else(|| plan.user_ref(&row.author));
    let (Some(author), Some(created_at)) = (author, states.created(idx)) else {
        return Ok(Verdict::Skip);
    };
    let extras = states.extras(idx)?;
    let bits = states.bits[idx as usize];
    let answered_at = extras.answer_date.or(extras.answered);
    let is_answered = answered_at.is_some();
    let flag = flag_of(states.v2_id(idx), bits, &extras, Some(created_at));
    let v1_archive_path = if bits & PATH_REPAIRED != 0 {
        extras.archive_path.as_deref().map(str::to_string)
    } else {
        carried_path(&row.text_file_path)
    };
    Ok(Verdict::Write(ResolvedPrayer {
        id: hex_id(states.v2_id(idx)),
        author_id: hex_id(author),
        text: match operator.and_then(|o| o.text.as_deref()) {
            Some(t) => t.to_string(),
            None => v2_text(&row.text),
        },
        generated_prayer: lossy(&row.generated_prayer),
        project_tag: lossy(&row.project_tag).map(crate::text::fit_short_text),
        target_audience: audience(&row.target_audience).0.to_string(),
        created_at,
        updated_at: extras.updated_at.unwrap_or(created_at).max(created_at),
        is_archived: extras.is_archived,
        is_answered,
        answered_at,
        testimony: if is_answered {
            extras.testimony.as_deref().map(str::to_string)
        } else {
            None
        },
        flag,
        v1_archive_path,
    }))
}

/// Pass 2: the v2 mark for a row the plan does not skip.
pub(crate) fn mark(plan: &Plan, row: &MarkRow) -> Verdict<ResolvedMark> {
    let prayer = plan
        .prayers
        .keys
        .lookup(&row.prayer_id, KeyKind::Hex)
        .and_then(|i| plan.prayers.written_v2_id(i));
    let user = plan.user_ref(&row.user);
    let at = mark_time(plan.policy, &plan.clock, row);
    match (prayer, user, at) {
        (Some(p), Some(u), Some(at)) => Verdict::Write(ResolvedMark {
            id: hex_id(mark_v2_id(
                &row.id,
                plan.mark_rekeyed.binary_search(&row.rowid).is_ok(),
                p,
                u,
                at,
            )),
            prayer_id: hex_id(p),
            user_id: hex_id(u),
            marked_at: at,
        }),
        _ => Verdict::Skip,
    }
}
