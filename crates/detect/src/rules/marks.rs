//! The `prayermark` table, one plain scan: `R-ORPHAN`, `R-TIME`, `R-ARCHIVE-PATH`,
//! `R-MARK-DUPLICATE`, `R-MARK-KEY`; and the pass-2 resolution of a mark row.

use chrono::NaiveDateTime;
use thywill_v1::{MarkRow, V1Value};

use super::archive::{CleanPathMemo, RecordArchive};
use super::prayers::Prayers;
use super::users::Users;
use super::{
    check_time_parsed, key_text, lookup, note_respelling, note_shift, parent_of, require_parent,
    Ctx, Lookup, LookupMemo, NoShape, RowFindings, TimeOutcome,
};
use crate::clock::{Clock, LocalColumn, LocalTime};
use crate::ids::{hex_id, v5};
use crate::keys::{normalize, KeyKind, NormKey};
use crate::model::{Decision, DetectError, Policy, RuleId};
use crate::spill::{DupKeys, SPILL_AT};
use crate::time;

/// The v1 table name.
pub(crate) const TABLE: &str = "prayermark";

/// A mark's stored time read through the v1 server's clock (local for marks made online).
fn parse_mark(clock: &Clock, row: &MarkRow) -> Option<LocalTime> {
    clock.parse(&row.created_at, LocalColumn::Mark)
}

/// `R-TIME` of a mark's `created_at` (`local`: the stored value read through the server's clock,
/// [`parse_mark`]): the stored value in any shape (UTC), else (repair) the date in its archive
/// path, else none (the row is quarantined). The one implementation: pass 1 records its findings
/// in `rf`; the duplicate check and pass 2 ([`mark_time`]) discard them.
fn check_mark_time(
    rf: &mut RowFindings,
    policy: Policy,
    local: Option<LocalTime>,
    row: &MarkRow,
) -> Option<NaiveDateTime> {
    // Evidence is looked for only when the stored value fits no shape.
    let path_date = match local {
        Some(_) => None,
        None => row
            .text_file_path
            .to_text_lossy()
            .and_then(|p| time::date_in_archive_path(&p)),
    };
    match check_time_parsed(
        rf,
        policy,
        "created_at",
        &row.created_at,
        local.map(|l| l.parsed),
        NoShape::Evidence(path_date),
    ) {
        TimeOutcome::At(t) => Some(t),
        _ => None,
    }
}

/// A mark's time as [`check_mark_time`] resolves it, without its findings.
pub(crate) fn mark_time(policy: Policy, clock: &Clock, row: &MarkRow) -> Option<NaiveDateTime> {
    let mut discarded = RowFindings::new(row.rowid, String::new());
    check_mark_time(&mut discarded, policy, parse_mark(clock, row), row)
}

/// The v2 id of a mark: its hex id, else (not hex, or re-keyed by `R-MARK-KEY`) the UUID v5.
pub(crate) fn mark_v2_id(
    id: &V1Value,
    rekeyed: bool,
    prayer: u128,
    user: u128,
    at: NaiveDateTime,
) -> u128 {
    match normalize(id, KeyKind::Hex) {
        Some(NormKey::Hex(h)) if !rekeyed => h,
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
    ctx.db.for_each_ref::<MarkRow, DetectError, _>(|m| {
        if let (Some(e), Some(t)) = (users.entry_of(&m.user), parse_mark(&ctx.opts.clock, m)) {
            users.note_activity(e, t.parsed.at);
        }
        Ok(())
    })?;
    Ok(())
}

/// Pass 1 over `prayermark`: one plain rowid-order scan (no sort). Per-row rules are decided as
/// each mark is read, except for marks of a prayer whose `created_at` still waits for evidence
/// (held until the scan has seen all its marks; few). Every still-written mark leaves a 16-byte
/// duplicate key (hash of resolved prayer, member, instant; rowid), held in memory up to
/// [`SPILL_AT`] keys and in sorted runs in temporary files beyond; after the scan the keys are
/// sorted (merged) and only equal-hash runs are fetched again by rowid and confirmed exactly.
/// Every still-written mark with a hex id also leaves a 16-byte id key, so that two marks whose
/// ids are one after normalisation (`R-MARK-KEY`) are found the same way.
/// Returns the rowids pass 2 must skip and those it must re-key, both sorted.
pub(crate) fn stream(
    ctx: &mut Ctx<'_>,
    users: &Users,
    prayers: &mut Prayers,
) -> Result<(Vec<i64>, Vec<i64>), DetectError> {
    let mut skips = Vec::new();
    let mut keys = MarkKeys {
        acts: DupKeys::with_limit(SPILL_AT),
        ids: DupKeys::with_limit(SPILL_AT),
    };
    let mut deferred: Vec<MarkRow> = Vec::new();
    let db = ctx.db;
    let clock = ctx.opts.clock;
    let started = std::time::Instant::now();
    let (mut prayer_memo, mut user_memo) = (LookupMemo::default(), LookupMemo::default());
    let mut paths = CleanPathMemo::default();
    let n = db.for_each_ref::<MarkRow, DetectError, _>(|m| {
        let seen = Seen {
            prayer: prayer_memo.lookup(&prayers.states.keys, KeyKind::Hex, &m.prayer_id),
            user: user_memo.lookup(&users.index, users.kind, &m.user),
            local: parse_mark(&clock, m),
        };
        if let Some(Some(p)) = seen.prayer {
            if let Some(t) = seen.local {
                prayers.note_activity(p, t.parsed.at);
            }
            if prayers.is_pending(p) {
                deferred.push(m.clone());
                return Ok(());
            }
        }
        check_mark(
            ctx, users, prayers, m, seen, &mut paths, &mut keys, &mut skips,
        )
    })?;
    // Every mark has been seen: the pending prayers they belong to can be settled now.
    for m in &deferred {
        if let Some(p) = prayers.states.keys.lookup(&m.prayer_id, KeyKind::Hex) {
            prayers.settle_pending(p, ctx.sink.decisions.as_mut());
        }
    }
    for m in &deferred {
        let seen = Seen {
            prayer: lookup(&prayers.states.keys, KeyKind::Hex, &m.prayer_id),
            user: lookup(&users.index, users.kind, &m.user),
            local: parse_mark(&clock, m),
        };
        check_mark(
            ctx, users, prayers, m, seen, &mut paths, &mut keys, &mut skips,
        )?;
    }
    tracing::debug!(
        target: "thywill_detect::timing",
        marks = n,
        deferred = deferred.len(),
        keys = keys.acts.len(),
        spilled_runs = keys.acts.spilled_runs(),
        ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
        "marks scanned"
    );
    drop(deferred);
    deduplicate(ctx, users, prayers, keys.acts, &mut skips)?;
    // Sorted (8 bytes a skipped mark): pass 2 looks each mark up by binary search.
    skips.sort_unstable();
    skips.dedup();
    skips.shrink_to_fit();
    let (rekeyed, quarantined) = rekey_colliding_ids(ctx, keys.ids, &skips)?;
    if !quarantined.is_empty() {
        skips.extend(quarantined);
        skips.sort_unstable();
    }
    ctx.sink.count_read(TABLE, n);
    Ok((skips, rekeyed))
}

/// The two external sorts of the mark scan: acts (for `R-MARK-DUPLICATE`) and ids (for
/// `R-MARK-KEY`).
struct MarkKeys {
    acts: DupKeys,
    ids: DupKeys,
}

/// A 64-bit hash of a normalised hex mark id (equal-hash runs are confirmed exactly).
fn id_hash(id: u128) -> u64 {
    (id as u64) ^ ((id >> 64) as u64).rotate_left(29)
}

/// `R-MARK-KEY`: marks still written whose ids are one after normalisation (case, whitespace,
/// invisible characters: v1's text primary key let `…B01` and `…b01` both in, or a damaged
/// index let one id in twice). They are different acts (one act stored twice is
/// `R-MARK-DUPLICATE`, already settled), so each is carried: the mark whose stored id is already
/// canonical keeps it (else the smallest rowid), every other is re-keyed to the UUID v5 of
/// `mark:<prayer>:<user>:<marked_at>`, with a `repaired` finding (under `strict`, quarantined).
/// Returns the rowids re-keyed, sorted, and those quarantined.
fn rekey_colliding_ids(
    ctx: &mut Ctx<'_>,
    ids: DupKeys,
    skips: &[i64],
) -> Result<(Vec<i64>, Vec<i64>), DetectError> {
    let mut rekeyed = Vec::new();
    let mut quarantined = Vec::new();
    let mut rows: Vec<(u128, bool, i64, String)> = Vec::new();
    ids.for_each_equal_run::<DetectError>(|run| {
        rows.clear();
        for &(_, rowid) in run {
            if skips.binary_search(&rowid).is_ok() {
                continue;
            }
            let Some(row) = ctx.db.row_by_rowid::<MarkRow>(rowid)? else {
                continue;
            };
            if let Some(NormKey::Hex(h)) = normalize(&row.id, KeyKind::Hex) {
                let canonical = row.id.as_str().is_some_and(|s| s == hex_id(h));
                rows.push((h, !canonical, rowid, key_text(&row.id, rowid)));
            }
        }
        rows.sort_unstable();
        for same in rows.chunk_by(|a, b| a.0 == b.0) {
            let keeper = &same[0];
            for (_, _, rowid, key) in &same[1..] {
                let why = format!(
                    "id {key} is, after normalising case and whitespace, the id of mark {} too \
                     (v1's text key let both in)",
                    keeper.3
                );
                match ctx.policy {
                    Policy::Repair => {
                        let reason = format!(
                            "{why}; a different act, so it is carried under the UUID v5 of \
                             mark:<prayer>:<user>:<marked_at>"
                        );
                        ctx.sink
                            .note_repair(TABLE, *rowid, key, RuleId::MarkKey, &reason);
                        rekeyed.push(*rowid);
                    }
                    // Strict changes no identity: the second holder of the id stays in v1.
                    Policy::Strict => {
                        ctx.sink.demote(
                            TABLE,
                            *rowid,
                            key,
                            RuleId::MarkKey,
                            Decision::Quarantined,
                            &format!("{why}; quarantined (strict re-keys nothing)"),
                        );
                        quarantined.push(*rowid);
                    }
                }
            }
        }
        Ok(())
    })?;
    rekeyed.sort_unstable();
    Ok((rekeyed, quarantined))
}

/// What makes two marks the same mark: resolved prayer entry, final member's v2 id, instant.
type Identity = (u32, u128, NaiveDateTime);

/// The identity of a mark that passed every per-row rule, computed from the row alone (the same
/// values [`check_mark`] resolved): used to confirm hash-equal candidates exactly.
fn identity(
    policy: Policy,
    clock: &Clock,
    users: &Users,
    prayers: &Prayers,
    row: &MarkRow,
) -> Option<Identity> {
    let p = prayers.states.keys.lookup(&row.prayer_id, KeyKind::Hex)?;
    let u = users.entry_of(&row.user).and_then(|e| users.target(e))?;
    Some((p, u, mark_time(policy, clock, row)?))
}

/// A 64-bit hash of an identity (splitmix64 steps; collisions only cost a confirmation lookup).
/// The minute of a mark's time (seconds and fraction dropped): both shapes of `R-MARK-DUPLICATE`
/// are found among the marks of one prayer, member and minute.
fn minute_of(at: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    at.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(at)
}

/// A time of exactly `HH:MM:00.000000`: what v1's minute-precision archive importer wrote.
fn is_minute_precision(at: NaiveDateTime) -> bool {
    minute_of(at) == at
}

/// The spill key of a mark: its prayer, member and **minute** (so a minute-precision copy meets
/// the full-precision mark it copies in one run).
fn identity_hash((p, u, at): Identity) -> u64 {
    let at = minute_of(at);
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let micros = at.and_utc().timestamp_micros() as u64;
    let mut h = mix(p as u64);
    h = mix(h ^ (u as u64));
    h = mix(h ^ ((u >> 64) as u64));
    mix(h ^ micros)
}

/// The per-row rules of one mark (`R-ORPHAN`, `R-TIME`, `R-ARCHIVE-PATH`), committed at once; a
/// mark still written leaves its duplicate key.
/// What the scan already knows of a mark (each made once per row).
#[derive(Clone, Copy)]
struct Seen {
    /// The lookup of `prayer_id` in the prayers' key set.
    prayer: Lookup,
    /// The lookup of the member reference in the users' key set.
    user: Lookup,
    /// `created_at` read through the server's clock ([`parse_mark`]).
    local: Option<LocalTime>,
}

#[allow(clippy::too_many_arguments)]
fn check_mark(
    ctx: &mut Ctx<'_>,
    users: &Users,
    prayers: &Prayers,
    m: &MarkRow,
    seen: Seen,
    paths: &mut CleanPathMemo,
    keys: &mut MarkKeys,
    skips: &mut Vec<i64>,
) -> Result<(), DetectError> {
    let policy = ctx.policy;
    // The key text is built only when the row has a finding.
    let mut rf = RowFindings::new(m.rowid, String::new());
    let parent = parent_of(seen.prayer, &m.prayer_id, |i| {
        prayers.is_written(i).then_some(i)
    });
    let prayer = require_parent(&mut rf, "prayer", parent);
    note_respelling(&mut rf, "member", &users.index, users.kind, &m.user);
    let user = require_parent(
        &mut rf,
        "member",
        parent_of(seen.user, &m.user, |i| users.target(i)),
    );
    note_shift(
        &mut rf,
        &ctx.opts.clock,
        "created_at",
        &m.created_at,
        seen.local,
    );
    let at = check_mark_time(&mut rf, policy, seen.local, m);
    paths.check(
        &mut rf,
        &m.text_file_path,
        ctx.opts.archive_files,
        RecordArchive::Mark(at),
    );
    if let (Some(p), Some(u), Some(t), true) = (prayer, user, at, rf.written()) {
        keys.acts
            .push((identity_hash((p, u, t)), m.rowid))
            .map_err(DetectError::Spill)?;
        if let Some(NormKey::Hex(h)) = normalize(&m.id, KeyKind::Hex) {
            keys.ids
                .push((id_hash(h), m.rowid))
                .map_err(DetectError::Spill)?;
        }
    }
    if !rf.items.is_empty() {
        rf.key = key_text(&m.id, m.rowid);
    }
    if !ctx.sink.commit(TABLE, &rf) {
        skips.push(m.rowid);
    }
    Ok(())
}

/// `R-MARK-DUPLICATE` over the still-written marks: sort (merge) the keys (prayer, member,
/// minute), fetch the rows of equal-hash runs by rowid, group them by prayer, member and minute.
/// (a) Marks of one exact instant: the smallest key is kept (ties: smallest rowid), every other is
/// deduplicated. (b) When the minute holds a full-precision mark, every mark at exactly
/// `HH:MM:00.000000` left after (a) is a minute-precision copy of it and is deduplicated; a
/// full-precision mark is never deduplicated against a minute-precision one.
fn deduplicate(
    ctx: &mut Ctx<'_>,
    users: &Users,
    prayers: &Prayers,
    keys: DupKeys,
    skips: &mut Vec<i64>,
) -> Result<(), DetectError> {
    let started = std::time::Instant::now();
    let mut fetched = 0usize;
    let policy = ctx.policy;
    let clock = ctx.opts.clock;
    let mut members: Vec<(Identity, String, i64)> = Vec::new();
    keys.for_each_equal_run::<DetectError>(|run| {
        members.clear();
        for &(_, rowid) in run {
            fetched += 1;
            let Some(row) = ctx.db.row_by_rowid::<MarkRow>(rowid)? else {
                continue;
            };
            if let Some(id) = identity(policy, &clock, users, prayers, &row) {
                members.push((id, key_text(&row.id, rowid), rowid));
            }
        }
        // Exact identity first, then the keeper order: smallest key, then smallest rowid.
        members.sort_unstable();
        let same_minute = |a: &(Identity, String, i64), b: &(Identity, String, i64)| {
            (a.0 .0, a.0 .1, minute_of(a.0 .2)) == (b.0 .0, b.0 .1, minute_of(b.0 .2))
        };
        for minute in members.chunk_by(same_minute) {
            let full = minute.iter().find(|m| !is_minute_precision(m.0 .2));
            for group in minute.chunk_by(|a, b| a.0 == b.0) {
                let keeper = &group[0];
                for (_, key, rowid) in &group[1..] {
                    let reason = format!(
                        "same prayer, same member and same instant as mark {} (kept: smallest key); deduplicated",
                        keeper.1
                    );
                    demote_duplicate(ctx, *rowid, key, &reason, skips);
                }
                if let (Some(full), true) = (full, is_minute_precision(keeper.0 .2)) {
                    let reason = format!(
                        "a minute-precision copy ({}) of mark {} at {} (v1's archive importer added it again); deduplicated",
                        time::canonical(keeper.0 .2),
                        full.1,
                        time::canonical(full.0 .2)
                    );
                    demote_duplicate(ctx, keeper.2, &keeper.1, &reason, skips);
                }
            }
        }
        Ok(())
    })?;
    tracing::debug!(
        target: "thywill_detect::timing",
        fetched,
        ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
        "mark duplicates confirmed"
    );
    Ok(())
}

/// Records one deduplicated mark (`R-MARK-DUPLICATE`) and leaves it out of the write.
fn demote_duplicate(ctx: &mut Ctx<'_>, rowid: i64, key: &str, reason: &str, skips: &mut Vec<i64>) {
    ctx.sink.demote(
        TABLE,
        rowid,
        key,
        RuleId::MarkDuplicate,
        Decision::Deduplicated,
        reason,
    );
    skips.push(rowid);
}
