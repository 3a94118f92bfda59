//! The `prayer` table: `R-ORPHAN` (author), `R-TEXT-LENGTH`, `R-ENUM` (audience), `R-UTF8`,
//! `R-TIME`, `R-ARCHIVE-PATH`; and the pass-2 resolution of a prayer row.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use thywill_v1::{PrayerRow, V1Value};

use super::archive::{check_archive_path, RecordArchive};
use super::users::Users;
use super::{
    check_local_time, check_utf8_only, key_text, lift, note_respelling, require_parent,
    resolve_parent, show, time_from_evidence, Ctx, NoShape, Parent, RowFindings, TimeOutcome,
};
use crate::clock::{Clock, LocalColumn};
use crate::decisions::{CarryValue, Choice, Ledger};
use crate::ids::{hex_id, v5};
use crate::keys::{normalize, KeyKind, NormKey, RowidIndex};
use crate::model::ArchiveFiles;
use crate::model::{Decision, DetectError, Policy, RuleId};
use crate::plan::state::{
    OperatorPrayer, PFate, PrayerStates, FLAGGED_COLUMN, NO_ENTRY, PATH_REPAIRED,
};
use crate::reconcile::Witnesses;
use crate::text::{parse_lower_hex32, shown};

/// The v1 table name.
pub(crate) const TABLE: &str = "prayer";

/// Text bounds of v2 (`length(trim(text)) >= 1 and length(text) <= 5000`): a short text is
/// no finding (spec/rules.md `R-TEXT-LENGTH`: real members ask in a few words).
const MIN_TEXT: usize = 1;
const MAX_TEXT: usize = 5000;

/// Compact state of every prayer between the passes, and what pass 1 alone needs.
pub(crate) struct Prayers {
    pub(crate) states: PrayerStates,
    rowids: RowidIndex,
    author_refs: HashMap<u32, V1Value>,
    rfs: HashMap<u32, RowFindings>,
    /// Committed prayers written under a v2 id that differs from their v1 key text.
    renames: Vec<(Box<str>, u128)>,
    /// The prayers [`Prayers::commit_settled`] left for [`Prayers::commit`] (pending then).
    uncommitted: Vec<u32>,
    raw_created: HashMap<u32, V1Value>,
    pub(crate) min_activity: HashMap<u32, NaiveDateTime>,
    /// The prayers whose author is unknown, with their witness file and the author it names
    /// (an author restore under `repair`, decisions.md §50).
    witness_authors: HashMap<u32, (String, String)>,
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

pub(crate) fn lossy(v: &V1Value) -> Option<String> {
    crate::text::storable_text(v).filter(|s| !s.is_empty())
}

/// The v2 text: as stored (decoded), trimmed only when that alone brings it within bounds.
pub(crate) fn v2_text(v: &V1Value) -> String {
    let t = crate::text::storable_text(v).unwrap_or_default();
    let n = t.chars().count();
    if (MIN_TEXT..=MAX_TEXT).contains(&n) {
        t
    } else {
        t.trim().to_string()
    }
}

/// `R-TEXT-LENGTH` on a prayer's text of `len` characters after trimming: quarantined outside
/// v2's bounds, unless its witness restores it (`restore`, under `repair`). Returns the
/// restored text.
fn text_length(
    rf: &mut RowFindings,
    restore: Option<&Restore>,
    row: &PrayerRow,
    len: usize,
) -> Option<String> {
    let restored = restore.and_then(|r| r.note_text(rf, row, len));
    if !(MIN_TEXT..=MAX_TEXT).contains(&len) && restored.is_none() {
        rf.push(
            RuleId::TextLength,
            Decision::Quarantined,
            format!(
                "text is {len} characters after trimming (v2 needs {MIN_TEXT}–{MAX_TEXT} after trimming); quarantined for the operator to decide"
            ),
        );
    }
    restored
}

/// `R-ENUM` on a prayer's `target_audience`.
fn check_audience(rf: &mut RowFindings, v: &V1Value) {
    let (value, changed) = audience(v);
    if changed {
        rf.push(
            RuleId::Enum,
            Decision::Repaired,
            format!(
                "target_audience {} is outside the v2 domain; set to '{value}'",
                show(v)
            ),
        );
    }
}

/// What a prayer's witness file restores of its damaged values (decisions.md §50): each only
/// where the row's value is damaged and the file holds it whole.
struct Restore {
    /// The witness file.
    path: String,
    /// The request text, for an empty or not-UTF-8 text.
    text: Option<String>,
    /// `Submitted` through the clock (UTC) and as written, for a `created_at` no shape fits.
    created_at: Option<(NaiveDateTime, NaiveDateTime)>,
    /// The author's display name, for an author that names no row (resolved once the members
    /// are settled).
    author: Option<String>,
}

impl Restore {
    /// The witness file's values for the damaged values of `row` (`len`: its text's characters
    /// after trimming; `author_known`: its author names a user row). Reads the file only for a
    /// damaged row.
    fn of(
        witnesses: Option<crate::reconcile::Witnesses<'_>>,
        clock: &Clock,
        row: &PrayerRow,
        len: usize,
        author_known: bool,
    ) -> Option<Restore> {
        // Without a tree nothing is parsed twice.
        let witnesses = witnesses?;
        let text = len == 0 || crate::text::needs_utf8_repair(&row.text);
        let time = clock.parse(&row.created_at, LocalColumn::Local).is_none();
        if !(text || time || !author_known) {
            return None;
        }
        let w = witnesses.of(&row.id, &row.text_file_path)?;
        let submitted = w.submitted.format("%Y-%m-%d %H:%M:%S").to_string();
        let created_at = clock
            .parse_str(&submitted, LocalColumn::Local)
            .map(|l| (l.parsed.at, w.submitted));
        Some(Restore {
            text: w.text.filter(|_| text),
            created_at: created_at.filter(|_| time),
            author: (!author_known && !w.author.is_empty()).then_some(w.author),
            path: w.path,
        })
    }

    /// The text and time it restores (the author is counted once it resolves).
    fn count(&self) -> u64 {
        u64::from(self.text.is_some()) + u64::from(self.created_at.is_some())
    }

    /// The restored text, with its `repaired` finding: `R-TEXT-LENGTH` for an empty text,
    /// `R-UTF8` (beside the bytes' finding) for a text that is not UTF-8.
    fn note_text(&self, rf: &mut RowFindings, row: &PrayerRow, len: usize) -> Option<String> {
        let text = self.text.clone()?;
        let n = text.chars().count();
        let path = &self.path;
        let (rule, why) = if len == 0 {
            (
                RuleId::TextLength,
                format!(
                    "text is 0 characters after trimming (v2 needs {MIN_TEXT}–{MAX_TEXT}); \
                     restored from the archive file {path} ({n} characters)"
                ),
            )
        } else {
            debug_assert!(crate::text::needs_utf8_repair(&row.text));
            (
                RuleId::Utf8,
                format!("text restored from the archive file {path} instead ({n} characters)"),
            )
        };
        rf.push(rule, Decision::Repaired, why);
        Some(text)
    }

    /// The restored `created_at` (the file's `Submitted`, preferred over every other
    /// evidence), with its `R-TIME` finding.
    fn note_time(&self, rf: &mut RowFindings, row: &PrayerRow) -> Option<NaiveDateTime> {
        let (at, local) = self.created_at?;
        rf.push(
            RuleId::Time,
            Decision::Repaired,
            format!(
                "created_at {} fits no timestamp shape; restored from the archive file {} \
                 (Submitted {}): {} UTC",
                show(&row.created_at),
                self.path,
                local.format("%Y-%m-%d %H:%M"),
                crate::time::canonical(at)
            ),
        );
        Some(at)
    }
}

/// `R-TIME` on a prayer's `created_at` (a date in its archive path is the evidence for a value
/// of no known shape; without one the value waits for the prayer's activity).
fn created_at(rf: &mut RowFindings, policy: Policy, clock: &Clock, row: &PrayerRow) -> TimeOutcome {
    let no_shape = NoShape::path_date_or_pending(&row.text_file_path);
    check_local_time(rf, policy, clock, "created_at", &row.created_at, no_shape)
}

/// Before users are settled, when some user's `created_at` needs evidence: each author's
/// earliest prayer, as pass 1 over `prayer` will resolve its `created_at` (one extra streamed
/// pass, only then).
pub(crate) fn user_activity(ctx: &Ctx<'_>, users: &mut Users) -> Result<(), DetectError> {
    ctx.db.for_each_ref::<PrayerRow, DetectError, _>(|row| {
        if let Some(author) = users.entry_of(&row.author) {
            let mut scratch = RowFindings::new(row.rowid, String::new());
            if let TimeOutcome::At(t) = created_at(&mut scratch, ctx.policy, &ctx.opts.clock, row) {
                users.note_activity(author, t);
            }
        }
        Ok(())
    })?;
    Ok(())
}

impl Prayers {
    /// Pass 1 over `prayer` (streamed): per-row rules, the key set and compact state.
    pub(crate) fn read(ctx: &mut Ctx<'_>, users: &Users) -> Result<Prayers, DetectError> {
        let mut p = Prayers {
            states: PrayerStates::default(),
            rowids: RowidIndex::new(Vec::new()),
            author_refs: HashMap::new(),
            rfs: HashMap::new(),
            renames: Vec::new(),
            uncommitted: Vec::new(),
            raw_created: HashMap::new(),
            min_activity: HashMap::new(),
            witness_authors: HashMap::new(),
        };
        let scan = PrayerScan {
            policy: ctx.policy,
            clock: ctx.opts.clock,
            files: ctx.opts.archive_files,
            witnesses: ctx.opts.witnesses,
            has_audience: ctx.db.schema().has_column(TABLE, "target_audience"),
            users,
        };
        let mut rowids = Vec::new();
        let n = ctx.db.for_each_ref::<PrayerRow, DetectError, _>(|row| {
            scan.row(&mut p, row);
            rowids.push(row.rowid);
            Ok(())
        })?;
        p.rowids = RowidIndex::new(rowids);
        ctx.sink.count_read(TABLE, n);
        Ok(p)
    }

    /// Keeps what prayer `idx`'s witness restored in pass 1 (its text, its `created_at`) and
    /// the author its file names, for [`Prayers::resolve_authors`].
    fn keep_restored(
        &mut self,
        idx: u32,
        text: Option<String>,
        created_at: Option<NaiveDateTime>,
        restore: Option<Restore>,
    ) {
        if let Some(t) = created_at {
            self.states.keep_created(idx, t);
        }
        if let Some(text) = text {
            self.states.operator.entry(idx).or_default().text = Some(text);
        }
        if let Some(Restore {
            path,
            author: Some(name),
            ..
        }) = restore
        {
            self.witness_authors.insert(idx, (path, name));
        }
    }

    /// The row findings of prayer `idx` (created on demand from its v2 id).
    fn rf(&mut self, idx: u32) -> &mut RowFindings {
        let rowid = self.rowids.rowid_of(idx);
        let key = hex_id(self.states.v2_id(idx));
        self.rfs
            .entry(idx)
            .or_insert_with(|| RowFindings::new(rowid, key))
    }

    /// Once users are settled: each prayer's author, restored from its witness file when it
    /// names no row and the file names a written member (`members`, by display name), else
    /// `R-ORPHAN`.
    /// Under `strict` such an author is only counted.
    pub(crate) fn resolve_authors(
        &mut self,
        users: &Users,
        members: &HashMap<String, u128>,
        policy: Policy,
    ) {
        for idx in 0..self.states.len() as u32 {
            let parent = match Some(self.states.authors[idx as usize]).filter(|&a| a != NO_ENTRY) {
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
                Parent::Found(_) => {}
                Parent::Missing(v) if self.restore_author(idx, &v, members, policy) => {}
                Parent::None if self.restore_author(idx, "(empty)", members, policy) => {}
                other => {
                    let rf = self.rf(idx);
                    require_parent(rf, "author", other);
                    self.states.fates[idx as usize] = PFate::Skipped;
                }
            }
        }
        self.author_refs.clear();
        self.witness_authors = HashMap::new();
        self.states.authors = Vec::new();
    }

    /// Restores prayer `idx`'s author from its witness file when the file names a written
    /// member exactly (`R-ORPHAN`, repaired, naming the file); false when it cannot.
    fn restore_author(
        &mut self,
        idx: u32,
        shown_ref: &str,
        members: &HashMap<String, u128>,
        policy: Policy,
    ) -> bool {
        let Some((path, name)) = self.witness_authors.remove(&idx) else {
            return false;
        };
        let Some(id) = members.get(&name).copied() else {
            return false;
        };
        self.states.restorable += 1;
        if policy != Policy::Repair {
            return false;
        }
        self.rf(idx).push(
            RuleId::Orphan,
            Decision::Repaired,
            format!(
                "author {shown_ref} does not exist; restored from the archive file {path}: '{}' ({})",
                shown(&name, 60),
                hex_id(id)
            ),
        );
        self.states.operator.entry(idx).or_default().author = Some(id);
        true
    }

    /// Applies the operator's entries that carry a quarantined prayer: a `text` for
    /// `R-TEXT-LENGTH`, an `author` (a written member's display name) for an `R-ORPHAN` whose
    /// author is missing. Its marks and attributes then follow it like any written prayer's.
    pub(crate) fn apply_decisions(
        &mut self,
        ledger: &mut Ledger,
        members: &HashMap<String, u128>,
    ) -> Result<(), DetectError> {
        let mut decided: Vec<u32> = self
            .rfs
            .iter()
            .filter(|(idx, _)| self.is_skipped(**idx))
            .filter(|(_, rf)| ledger.find(TABLE, &rf.key, rf.rowid).is_some())
            .map(|(idx, _)| *idx)
            .collect();
        decided.sort_unstable();
        for idx in decided {
            let Some(rf) = self.rfs.get_mut(&idx) else {
                continue;
            };
            let Some(d) = ledger.find(TABLE, &rf.key, rf.rowid) else {
                continue;
            };
            let entry = ledger.entry(d).clone();
            let mut op = OperatorPrayer::default();
            let done = match &entry.choice {
                Choice::Carry(CarryValue::Text(t)) => {
                    op.text = Some(t.clone());
                    format!("text set ({} characters); written", t.chars().count())
                }
                Choice::Carry(CarryValue::Author(name)) => {
                    let id = members.get(name).copied().ok_or_else(|| {
                        ledger.error(
                            d,
                            format!("author {name:?} is no written member's display name"),
                        )
                    })?;
                    op.author = Some(id);
                    format!(
                        "author set to '{}' ({}); written",
                        shown(name, 60),
                        hex_id(id)
                    )
                }
                _ => continue,
            };
            lift(rf, &entry, Decision::Repaired, &done).map_err(|m| ledger.error(d, m))?;
            self.states.fates[idx as usize] = PFate::Written;
            self.states.operator.insert(idx, op);
            ledger.mark_applied(d);
        }
        Ok(())
    }

    /// Records activity on a prayer (evidence for an unparseable `created_at`).
    pub(crate) fn note_activity(&mut self, idx: u32, at: NaiveDateTime) {
        if self.is_pending(idx) {
            let slot = self.min_activity.entry(idx).or_insert(at);
            *slot = (*slot).min(at);
        }
    }

    /// Settles a pending `created_at` with the evidence gathered so far; with none, the
    /// operator's `time` when the decisions file carries the prayer (`R-TIME`).
    pub(crate) fn settle_pending(&mut self, idx: u32, ledger: Option<&mut Ledger>) {
        if !self.is_pending(idx) {
            return;
        }
        let evidence = self.min_activity.get(&idx).copied();
        let raw = self.raw_created.remove(&idx).unwrap_or(V1Value::Null);
        let rf = self.rf(idx);
        let mut outcome = time_from_evidence(rf, "created_at", &raw, evidence);
        if let (TimeOutcome::Quarantined, Some(ledger)) = (outcome, ledger) {
            outcome = operator_time(rf, ledger).unwrap_or(outcome);
        }
        match outcome {
            TimeOutcome::At(t) => {
                self.states.keep_created(idx, t);
                self.states.fates[idx as usize] = PFate::Written;
            }
            _ => self.states.fates[idx as usize] = PFate::Skipped,
        }
    }

    /// True while prayer `idx`'s `created_at` waits for evidence.
    pub(crate) fn is_pending(&self, idx: u32) -> bool {
        self.states.fates.get(idx as usize) == Some(&PFate::Pending)
    }

    /// True when prayer `idx` is written (pending counts as not yet).
    pub(crate) fn is_written(&self, idx: u32) -> bool {
        self.states.fates.get(idx as usize) == Some(&PFate::Written)
    }

    /// True when prayer `idx` is not (and will not be) written.
    pub(crate) fn is_skipped(&self, idx: u32) -> bool {
        self.states.fates.get(idx as usize) == Some(&PFate::Skipped)
    }

    /// Commits the findings of every prayer whose fate is settled (all but the pending ones),
    /// once the authors are resolved: nothing later changes them, so their findings need not
    /// stay in memory through the attributes and the marks.
    pub(crate) fn commit_settled(&mut self, ctx: &mut Ctx<'_>) {
        for idx in 0..self.states.len() as u32 {
            if self.is_pending(idx) {
                self.uncommitted.push(idx);
            } else {
                self.commit_one(ctx, idx);
            }
        }
        self.rfs.shrink_to_fit();
    }

    /// Commits the findings of the prayers that were pending at [`Prayers::commit_settled`]
    /// (after marks and attributes settled their times). Returns every prayer written under a
    /// v2 id that differs from its v1 key text, sorted.
    pub(crate) fn commit(&mut self, ctx: &mut Ctx<'_>) -> Vec<(Box<str>, u128)> {
        for idx in std::mem::take(&mut self.uncommitted) {
            self.settle_pending(idx, ctx.sink.decisions.as_mut());
            self.commit_one(ctx, idx);
        }
        let mut renames = std::mem::take(&mut self.renames);
        renames.sort_unstable();
        renames
    }

    fn commit_one(&mut self, ctx: &mut Ctx<'_>, idx: u32) {
        let written = self.is_written(idx);
        // A prayer with no entry here has a hex key that is its v2 id; one keyed by the empty
        // text has an entry whose key is empty, and is renamed like any other non-hex key.
        let (known, rf) = match self.rfs.remove(&idx) {
            Some(rf) => (true, rf),
            None => (
                false,
                RowFindings::new(self.rowids.rowid_of(idx), String::new()),
            ),
        };
        let v2 = self.states.v2_id(idx);
        if written && known && rf.key != hex_id(v2) {
            self.renames.push((rf.key.as_str().into(), v2));
        }
        let committed = ctx.sink.commit(TABLE, &rf);
        debug_assert_eq!(committed, written);
    }

    /// The plan's part: compact states (with the key set) and rowid index.
    pub(crate) fn into_plan_parts(self) -> (PrayerStates, RowidIndex) {
        (self.states, self.rowids)
    }
}

impl Users {
    /// The key of entry `idx` as shown in reasons.
    pub(crate) fn index_key_shown(&self, idx: u32) -> Option<String> {
        self.key_of(idx).map(|k| format!("'{k}'"))
    }
}

/// The operator's `created_at` of a prayer `R-TIME` quarantined, when the decisions file carries
/// it with a `time`: the finding becomes `repaired`. An entry that cannot be applied is recorded
/// in the ledger (refused at its end, naming the entry).
fn operator_time(rf: &mut RowFindings, ledger: &mut Ledger) -> Option<TimeOutcome> {
    let d = ledger.find(TABLE, &rf.key, rf.rowid)?;
    let entry = ledger.entry(d).clone();
    let Choice::Carry(CarryValue::Time(t)) = entry.choice else {
        return None;
    };
    let done = format!("created_at set to {}; written", crate::time::canonical(t));
    match lift(rf, &entry, Decision::Repaired, &done) {
        Ok(()) => {
            ledger.mark_applied(d);
            Some(TimeOutcome::At(t))
        }
        Err(m) => {
            ledger.refuse(d, m);
            None
        }
    }
}

/// What every prayer row's rules read besides the row: the run's options and the settled members.
struct PrayerScan<'a> {
    policy: Policy,
    clock: Clock,
    files: Option<&'a dyn ArchiveFiles>,
    witnesses: Option<Witnesses<'a>>,
    has_audience: bool,
    users: &'a Users,
}

/// A prayer row's entry, key text, findings so far and normalised key.
struct RowStart {
    idx: u32,
    key: String,
    rf: RowFindings,
    norm: Option<NormKey>,
}

/// What a prayer's text and time rules decided, with what its witness file restores.
struct TextAndTime {
    restored_text: Option<String>,
    restored_time: Option<NaiveDateTime>,
    outcome: TimeOutcome,
    restore: Option<Restore>,
    author: Option<u32>,
}

impl PrayerScan<'_> {
    /// Every pass-1 rule of one prayer row, in the order the findings are recorded; the prayer
    /// joins `p`'s state.
    fn row(&self, p: &mut Prayers, row: &PrayerRow) {
        let mut start = Self::key_and_bytes(p, row);
        let tt = self.text_and_time(p, &mut start.rf, row);
        self.record(p, start, row, tt);
    }

    /// `R-UTF8` of the text columns, `R-TEXT-LENGTH` of the project tag and `R-PRAYER-KEY` of
    /// a key another prayer already holds.
    fn key_and_bytes(p: &Prayers, row: &PrayerRow) -> RowStart {
        let idx = p.states.len() as u32;
        let key = key_text(&row.id, row.rowid);
        let mut rf = RowFindings::new(row.rowid, key.clone());
        let norm = normalize(&row.id, KeyKind::Hex);
        check_utf8_only(
            &mut rf,
            &[
                ("text", &row.text),
                ("generated_prayer", &row.generated_prayer),
                ("project_tag", &row.project_tag),
            ],
        );
        if let Some(why) = crate::text::short_text_too_wide("project_tag", &row.project_tag) {
            rf.push(RuleId::TextLength, Decision::Repaired, why);
        }
        // Two prayers whose ids are one after normalisation (`…A10D` and `…a10d`): every
        // reference to either reaches the first read, so the later one cannot be told apart.
        if let Some(holder) = norm.as_ref().and_then(|n| p.states.keys.get(n)) {
            rf.push(
                RuleId::PrayerKey,
                Decision::Quarantined,
                format!(
                    "id {key} is, after normalising case and whitespace, the id of the prayer \
                     read before it (entry {holder}); references cannot tell them apart; \
                     quarantined for the operator to decide"
                ),
            );
        }
        RowStart { idx, key, rf, norm }
    }

    /// `R-TEXT-LENGTH` and `R-ENUM` (audience), and `R-TIME` of `created_at`; a damaged text or
    /// time is restored from the witness file under `repair`.
    fn text_and_time(&self, p: &mut Prayers, rf: &mut RowFindings, row: &PrayerRow) -> TextAndTime {
        let (policy, clock, witnesses, users) =
            (self.policy, &self.clock, self.witnesses, self.users);
        // The stored text as v2 gets it (`storable_text`: NUL → U+FFFD, one character for
        // one, neither is whitespace), counted without copying it.
        let len = row
            .text
            .to_text_lossy()
            .map_or(0, |t| t.trim().chars().count());
        let author = users.entry_of(&row.author);
        let restore = Restore::of(witnesses, clock, row, len, author.is_some());
        p.states.restorable += restore.as_ref().map_or(0, Restore::count);
        // Under `strict` nothing is restored: the damage is decided as without the tree.
        let apply = restore.as_ref().filter(|_| policy == Policy::Repair);
        let restored_text = text_length(rf, apply, row, len);
        if self.has_audience {
            check_audience(rf, &row.target_audience);
        }
        let restored_time = apply.and_then(|r| r.note_time(rf, row));
        let outcome = match restored_time {
            Some(t) => TimeOutcome::At(t),
            None => created_at(rf, policy, clock, row),
        };
        TextAndTime {
            restored_text,
            restored_time,
            outcome,
            restore,
            author,
        }
    }

    /// `R-ARCHIVE-PATH`, the author's respelling, then the prayer's fate and state.
    fn record(&self, p: &mut Prayers, start: RowStart, row: &PrayerRow, tt: TextAndTime) {
        let (files, users) = (self.files, self.users);
        let RowStart {
            idx,
            key,
            mut rf,
            norm,
        } = start;
        let TextAndTime {
            restored_text,
            restored_time,
            outcome,
            restore,
            author,
        } = tt;
        let created = match outcome {
            TimeOutcome::At(t) => Some(t),
            _ => None,
        };
        let before = rf.items.len();
        let archive_path = check_archive_path(
            &mut rf,
            &row.text_file_path,
            files,
            RecordArchive::Prayer(created),
        );
        // Pass 2 takes an unchanged path from the row; only a repaired one is kept.
        let path_repaired = rf.items.len() != before;
        note_respelling(&mut rf, "author", &users.index, users.kind, &row.author);
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
        let mut bits = 0;
        if row.flagged.as_bool().unwrap_or(false) {
            bits |= FLAGGED_COLUMN;
        }
        if path_repaired {
            bits |= PATH_REPAIRED;
        }
        let v2_id = prayer_v2_id(norm.as_ref(), &key);
        p.states.push(
            norm.as_ref(),
            v2_id,
            created,
            author.unwrap_or(NO_ENTRY),
            fate,
            bits,
        );
        if path_repaired {
            p.states.extras_mut(idx).archive_path = archive_path.map(Into::into);
        }
        p.keep_restored(idx, restored_text, restored_time, restore);
        // A canonical lower-case hex key is its own v2 id text (no string built to compare).
        let canonical_key = matches!(&row.id, V1Value::Text(b) if parse_lower_hex32(b).is_some());
        if !rf.items.is_empty() || (!canonical_key && key != hex_id(v2_id)) {
            p.rfs.insert(idx, rf);
        }
    }
}
