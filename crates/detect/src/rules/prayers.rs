//! The `prayer` table: `R-ORPHAN` (author), `R-TEXT-LENGTH`, `R-ENUM` (audience), `R-UTF8`,
//! `R-TIME`, `R-ARCHIVE-PATH`; and the pass-2 resolution of a prayer row.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use thywill_v1::{PrayerRow, V1Value};

use super::archive::{check_archive_path, RecordArchive};
use super::users::Users;
use super::{
    check_time, check_utf8_only, key_text, require_parent, resolve_parent, show,
    time_from_evidence, Ctx, NoShape, Parent, RowFindings, TimeOutcome,
};
use crate::ids::{hex_id, v5};
use crate::keys::{normalize, KeyIndex, KeyKind, NormKey};
use crate::model::{Decision, DetectError, RuleId};
use crate::plan::{IdMapEntry, Plan, PrayerState, ResolvedFlag, ResolvedPrayer, Verdict};
use crate::text::parse_lower_hex32;
use crate::time;

/// The v1 table name.
pub(crate) const TABLE: &str = "prayer";

/// Text bounds of v2 (`length(text) between 10 and 5000`).
const MIN_TEXT: usize = 10;
const MAX_TEXT: usize = 5000;

/// Where a prayer's fate stands during pass 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PFate {
    /// Written.
    Written,
    /// Not written.
    Skipped,
    /// `created_at` waits for evidence from marks and attributes.
    Pending,
}

/// Compact state of every prayer between the passes.
pub(crate) struct Prayers {
    pub(crate) index: KeyIndex,
    pub(crate) states: Vec<PrayerState>,
    pub(crate) fates: Vec<PFate>,
    pub(crate) by_rowid: HashMap<i64, u32>,
    rowids: Vec<i64>,
    authors: Vec<Option<u32>>,
    author_refs: HashMap<u32, V1Value>,
    rfs: HashMap<u32, RowFindings>,
    raw_created: HashMap<u32, V1Value>,
    pub(crate) min_activity: HashMap<u32, NaiveDateTime>,
}

/// The v2 id of a prayer key: the hex id, else UUID v5 of `prayer:<key>`.
pub(crate) fn prayer_v2_id(norm: Option<&NormKey>, key: &str) -> u128 {
    match norm {
        Some(NormKey::Hex(h)) => *h,
        _ => v5(&format!("prayer:{key}")),
    }
}

/// `R-ENUM` for `target_audience`: the v2 value and whether it changed. Only spellings of `all`
/// (case, whitespace) and NULL/empty mean everyone; any other value (`everyone`, `public`, …)
/// becomes `christians_only`: a repair may never widen who can see a prayer.
pub(crate) fn audience(v: &V1Value) -> (&'static str, bool) {
    let raw = v.to_text_lossy();
    let t = raw
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_lowercase()
        .replace([' ', '-'], "_");
    let mapped = match t.as_str() {
        "" | "all" => "all",
        _ => "christians_only",
    };
    (mapped, raw.as_deref() != Some(mapped))
}

fn lossy(v: &V1Value) -> Option<String> {
    crate::text::storable_text(v).filter(|s| !s.is_empty())
}

/// The v2 text: as stored (decoded), trimmed only when that alone brings it within bounds.
fn v2_text(v: &V1Value) -> String {
    let t = crate::text::storable_text(v).unwrap_or_default();
    let n = t.chars().count();
    if (MIN_TEXT..=MAX_TEXT).contains(&n) {
        t
    } else {
        t.trim().to_string()
    }
}

impl Prayers {
    /// Pass 1 over `prayer` (streamed): per-row rules, the key set and compact state.
    pub(crate) fn read(ctx: &mut Ctx<'_>, users: &mut Users) -> Result<Prayers, DetectError> {
        let has_audience = ctx.db.schema().has_column(TABLE, "target_audience");
        let mut p = Prayers {
            index: KeyIndex::default(),
            states: Vec::new(),
            fates: Vec::new(),
            by_rowid: HashMap::new(),
            rowids: Vec::new(),
            authors: Vec::new(),
            author_refs: HashMap::new(),
            rfs: HashMap::new(),
            raw_created: HashMap::new(),
            min_activity: HashMap::new(),
        };
        let policy = ctx.policy;
        let files = ctx.opts.archive_files;
        let n = ctx.db.for_each_ref::<PrayerRow, DetectError, _>(|row| {
            let idx = p.states.len() as u32;
            let key = key_text(&row.id, row.rowid);
            let mut rf = RowFindings::new(row.rowid, key.clone());
            let norm = normalize(&row.id, KeyKind::Hex);
            if let Some(nk) = &norm {
                let _ = p.index.insert(nk, idx);
            }
            check_utf8_only(
                &mut rf,
                &[
                    ("text", &row.text),
                    ("generated_prayer", &row.generated_prayer),
                    ("project_tag", &row.project_tag),
                ],
            );
            // The stored text as v2 gets it (`storable_text`: NUL → U+FFFD, one character for
            // one, neither is whitespace), counted without copying it.
            let len = row
                .text
                .to_text_lossy()
                .map_or(0, |t| t.trim().chars().count());
            if !(MIN_TEXT..=MAX_TEXT).contains(&len) {
                rf.push(
                    RuleId::TextLength,
                    Decision::Quarantined,
                    format!(
                        "text is {len} characters after trimming (v2 needs {MIN_TEXT}–{MAX_TEXT}); quarantined for the operator to decide"
                    ),
                );
            }
            if has_audience {
                let (value, changed) = audience(&row.target_audience);
                if changed {
                    rf.push(
                        RuleId::Enum,
                        Decision::Repaired,
                        format!(
                            "target_audience {} is outside the v2 domain; set to '{value}'",
                            show(&row.target_audience)
                        ),
                    );
                }
            }
            let path = row.text_file_path.to_text_lossy().map(|c| c.into_owned());
            let path_date = path.as_deref().and_then(time::date_in_archive_path);
            let no_shape = match path_date {
                Some(d) => NoShape::Evidence(Some(d)),
                None => NoShape::Pending,
            };
            let outcome = check_time(&mut rf, policy, "created_at", &row.created_at, false, no_shape);
            let created = match outcome {
                TimeOutcome::At(t) => Some(t),
                _ => None,
            };
            let archive_path =
                check_archive_path(&mut rf, &row.text_file_path, files, RecordArchive::Prayer(created));
            let author = users.entry_of(&row.author);
            if let (Some(a), Some(t)) = (author, created) {
                users.note_activity(a, t);
            }
            if author.is_none() {
                p.author_refs.insert(idx, row.author.clone());
            }
            let fate = if !rf.written() {
                PFate::Skipped
            } else if outcome == TimeOutcome::Pending {
                p.raw_created.insert(idx, row.created_at.clone());
                PFate::Pending
            } else {
                PFate::Written
            };
            p.states.push(PrayerState {
                v2_id: prayer_v2_id(norm.as_ref(), &key),
                written: false,
                author: None,
                created_at: created,
                updated_at: created,
                is_archived: false,
                answered: None,
                answer_date: None,
                testimony: None,
                flagged_column: row.flagged.as_bool().unwrap_or(false),
                flag_attr: None,
                archive_path: archive_path.map(Into::into),
            });
            p.fates.push(fate);
            p.authors.push(author);
            p.by_rowid.insert(row.rowid, idx);
            p.rowids.push(row.rowid);
            // A canonical lower-case hex key is its own v2 id text (no string built to compare).
            let canonical_key = matches!(&row.id, V1Value::Text(b) if parse_lower_hex32(b).is_some());
            if !rf.items.is_empty()
                || (!canonical_key && key != hex_id(p.states[idx as usize].v2_id))
            {
                p.rfs.insert(idx, rf);
            }
            Ok(())
        })?;
        ctx.sink.count_read(TABLE, n);
        Ok(p)
    }

    /// The row findings of prayer `idx` (created on demand from its v2 id).
    fn rf(&mut self, idx: u32) -> &mut RowFindings {
        let rowid = self.rowids[idx as usize];
        let key = hex_id(self.states[idx as usize].v2_id);
        self.rfs
            .entry(idx)
            .or_insert_with(|| RowFindings::new(rowid, key))
    }

    /// Once users are settled: each prayer's author, or `R-ORPHAN`.
    pub(crate) fn resolve_authors(&mut self, users: &Users) {
        for idx in 0..self.states.len() as u32 {
            let parent = match self.authors[idx as usize] {
                Some(entry) => match users.target(entry) {
                    Some(t) => Parent::Found(t),
                    None => Parent::NotWritten(
                        users.index_key_shown(entry).unwrap_or_else(|| "?".into()),
                    ),
                },
                None => {
                    let v = self.author_refs.get(&idx).cloned().unwrap_or(V1Value::Null);
                    resolve_parent(&users.index, users.kind, &v, |_| None::<u128>)
                }
            };
            match parent {
                Parent::Found(t) => self.states[idx as usize].author = Some(t),
                other => {
                    let rf = self.rf(idx);
                    require_parent(rf, "author", other);
                    self.fates[idx as usize] = PFate::Skipped;
                }
            }
        }
        self.author_refs.clear();
    }

    /// Records activity on a prayer (evidence for an unparseable `created_at`).
    pub(crate) fn note_activity(&mut self, idx: u32, at: NaiveDateTime) {
        if self.fates.get(idx as usize) == Some(&PFate::Pending) {
            let slot = self.min_activity.entry(idx).or_insert(at);
            *slot = (*slot).min(at);
        }
    }

    /// Settles a pending `created_at` with the evidence gathered so far.
    pub(crate) fn settle_pending(&mut self, idx: u32) {
        if self.fates.get(idx as usize) != Some(&PFate::Pending) {
            return;
        }
        let evidence = self.min_activity.get(&idx).copied();
        let raw = self.raw_created.remove(&idx).unwrap_or(V1Value::Null);
        let rf = self.rf(idx);
        let outcome = time_from_evidence(rf, "created_at", &raw, evidence);
        let state = &mut self.states[idx as usize];
        match outcome {
            TimeOutcome::At(t) => {
                state.created_at = Some(t);
                state.updated_at = Some(state.updated_at.map_or(t, |u| u.max(t)));
                self.fates[idx as usize] = PFate::Written;
            }
            _ => self.fates[idx as usize] = PFate::Skipped,
        }
    }

    /// True while prayer `idx`'s `created_at` waits for evidence.
    pub(crate) fn is_pending(&self, idx: u32) -> bool {
        self.fates.get(idx as usize) == Some(&PFate::Pending)
    }

    /// True when prayer `idx` is written (pending counts as not yet).
    pub(crate) fn is_written(&self, idx: u32) -> bool {
        self.fates.get(idx as usize) == Some(&PFate::Written)
    }

    /// Commits every prayer's findings (after marks and attributes settled pending times).
    pub(crate) fn commit(&mut self, ctx: &mut Ctx<'_>) -> Vec<IdMapEntry> {
        let mut id_map = Vec::new();
        for idx in 0..self.states.len() as u32 {
            let rowid = self.rowids[idx as usize];
            self.settle_pending(idx);
            let written = self.is_written(idx);
            self.states[idx as usize].written = written;
            let rf = self
                .rfs
                .remove(&idx)
                .unwrap_or_else(|| RowFindings::new(rowid, String::new()));
            let v2 = hex_id(self.states[idx as usize].v2_id);
            if written && !rf.key.is_empty() && rf.key != v2 {
                id_map.push(IdMapEntry {
                    entity: TABLE,
                    v1_key: rf.key.clone(),
                    v2_id: v2,
                });
            }
            let committed = ctx.sink.commit(TABLE, rf);
            debug_assert_eq!(committed, written);
        }
        id_map
    }
}

impl Users {
    /// The key of entry `idx` as shown in reasons.
    pub(crate) fn index_key_shown(&self, idx: u32) -> Option<String> {
        self.key_of(idx).map(|k| format!("'{k}'"))
    }
}

/// Pass 2: the v2 prayer for a row the plan writes.
pub(crate) fn resolve(
    plan: &Plan,
    state: &PrayerState,
    row: &PrayerRow,
) -> Verdict<ResolvedPrayer> {
    let (Some(author), Some(created_at)) = (state.author, state.created_at) else {
        return Verdict::Skip;
    };
    let answered_at = state.answer_date.or(state.answered);
    let is_answered = answered_at.is_some();
    let flag = (state.flagged_column || state.flag_attr.is_some()).then(|| ResolvedFlag {
        flagged_by_user_id: state.flag_attr.and_then(|f| f.1).map(hex_id),
        flagged_at: state.flag_attr.map_or(created_at, |f| f.0),
        reason: "carried over from v1",
    });
    let _ = plan;
    Verdict::Write(ResolvedPrayer {
        id: hex_id(state.v2_id),
        author_id: hex_id(author),
        text: v2_text(&row.text),
        generated_prayer: lossy(&row.generated_prayer),
        project_tag: lossy(&row.project_tag),
        target_audience: audience(&row.target_audience).0.to_string(),
        created_at,
        updated_at: state.updated_at.unwrap_or(created_at).max(created_at),
        is_archived: state.is_archived,
        is_answered,
        answered_at,
        testimony: if is_answered {
            state.testimony.as_deref().map(str::to_string)
        } else {
            None
        },
        flag,
        v1_archive_path: state.archive_path.as_deref().map(str::to_string),
    })
}
