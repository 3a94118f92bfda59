//! # thywill-detect: the corruption detector
//!
//! Every rule of `spec/rules.md` (and `R-ATTR-UNMAPPED` of `docs/decisions.md`) under both
//! policies, as a pure function of a v1 snapshot (plus, optionally, the file list of a v1
//! archive tree) and a run clock. The result is a [`Plan`]: every [`Finding`], the verdict for
//! every v1 row that pass 2 applies without re-deciding, the `migration_id_map`, and the
//! accounting law per carried table (checked to balance before anything is written).
//!
//! It also decides the findings of the v1 archive tree against the database ([`reconcile`]:
//! `R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING`, `R-ARCHIVE-MISMATCH`, `R-ARCHIVE-UNREADABLE`), on a
//! tree `thywill-v1` scanned, with the same timestamp parser and key normaliser as the rules.
//!
//! Detection is set-based: whole-table scans into hashed key sets; marks in one plain scan that
//! keeps a 16-byte duplicate key per mark (spilled to sorted runs in temporary files past 2^19),
//! never the rows. See `README.md` for the contract, the
//! interpretations chosen and the performance figures.
//!
//! ```no_run
//! use thywill_detect::{detect, DetectOptions, Policy};
//! let db = thywill_v1::V1Database::open("thywill.db")?;
//! let as_of = chrono::Utc::now().naive_utc();
//! let plan = detect(&db, &DetectOptions::new(Policy::Repair, as_of))?;
//! for f in plan.findings() {
//!     let f = f?;
//!     println!("{} {} {} {}: {}", f.v1_table, f.v1_key, f.rule, f.decision, f.reason);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod clock;
pub mod decisions;
mod findings;
mod ids;
mod keys;
mod model;
mod options;
mod originals;
mod plan;
pub mod reconcile;
mod rules;
mod spill;
mod stored;
pub mod text;
pub mod time;

use std::collections::BTreeMap;
use std::time::Instant;

use thywill_v1::{V1Database, CARRIED_TABLES};

pub use findings::{Findings, FindingsIter};
pub use ids::{hex_id, user_id_for_name, user_id_for_text_key, v5, ID_NAMESPACE};
pub use model::{
    ArchiveFiles, Decision, DetectError, Finding, Policy, RuleId, TableCounts,
    DEFAULT_INVITE_HOURS, DEFAULT_TEST_ACCOUNT_NAMES, KNOWN_CORRUPTED_USER_ID,
};
pub use options::DetectOptions;
pub use originals::{OriginalRows, RowSource};
pub use plan::{
    IdMapEntry, Plan, ResolvedFlag, ResolvedInvite, ResolvedMark, ResolvedPrayer,
    ResolvedRoleGrant, ResolvedSession, ResolvedUser, Verdict,
};
pub use rules::email::{key_is_usable, EmailInput};
pub use stored::StoredRows;

use rules::prayers::{self, Prayers};
use rules::users::Users;
use rules::{attributes, email, marks, small, Ctx, Sink};

/// Runs every rule over the snapshot `db` and returns the plan. Reads `db` only (full scans, the
/// primary-key index of `user`, and candidate duplicate marks by rowid); writes nothing. The
/// plan keeps no original rows: [`OriginalRows`] fetches them while the findings are streamed.
///
/// The phases run in the one order the rules allow, and each consumes what the one before it
/// made, so another order does not compile: the members settle first (a prayer's author and a
/// mark's member resolve against them), then the prayers and their attributes, then the marks
/// (which settle the prayers whose `created_at` waited for their activity), then the small
/// tables and the e-mail addresses, and last the law over every finding.
pub fn detect(db: &V1Database, opts: &DetectOptions<'_>) -> Result<Plan, DetectError> {
    let mut ctx = Ctx {
        db,
        opts,
        policy: opts.policy,
        sink: Sink {
            decisions: opts.decisions.map(decisions::Ledger::new),
            ..Sink::default()
        },
    };
    let mut clock = PhaseClock::new();
    let members = settle_members(&mut ctx, &mut clock)?;
    let read = read_prayers(&mut ctx, &members, &mut clock)?;
    let marked = stream_marks(&mut ctx, &members, read, &mut clock)?;
    let small = small::run(&mut ctx, &members.users)?;
    clock.lap("prayer commit, small tables");
    let emails = match &opts.email {
        Some(input) => {
            let emails = email::run(&mut ctx, &members.users, input)?;
            clock.lap("e-mail addresses");
            emails
        }
        None => BTreeMap::new(),
    };
    let plan = assemble(ctx, members, marked, small, emails)?;
    release_freed_memory();
    clock.lap("law");
    Ok(plan)
}

/// The members once settled: the rules' state (the key set, each entry's target) and the
/// written members' rows, with the id map's user part.
struct SettledMembers {
    users: Users,
    resolved: plan::UserStates,
    id_map: plan::UserIdMap,
}

/// The prayers read and their attributes folded, waiting for the marks.
struct ReadPrayers {
    prayers: Prayers,
    deferred: Vec<attributes::Deferred>,
}

/// The prayers settled by their marks, and what pass 2 needs of the marks.
struct MarkedPrayers {
    prayers: Prayers,
    mark_skips: Vec<i64>,
    mark_rekeyed: Vec<i64>,
    renames: Vec<(Box<str>, u128)>,
}

/// Phase 1: the `user` table's rules, a member's `created_at` from their activity when it
/// waits for evidence, then every member settled (merges, targets).
fn settle_members(
    ctx: &mut Ctx<'_>,
    clock: &mut PhaseClock,
) -> Result<SettledMembers, DetectError> {
    let mut users = Users::read(ctx)?;
    clock.lap("users");
    if users.has_pending_times() {
        prayers::user_activity(ctx, &mut users)?;
        marks::user_activity(ctx, &mut users)?;
        clock.lap("user activity (prayer and marks scans)");
    }
    users.finalize(ctx.policy, ctx.sink.decisions.as_mut())?;
    // From here on only the key set and each entry's target are kept of the user rows.
    let (resolved, id_map) = users.settle(ctx)?;
    release_freed_memory();
    clock.lap("users settled");
    Ok(SettledMembers {
        users,
        resolved,
        id_map,
    })
}

/// Phase 2: the `prayer` table's rules, authors (restored or named by the operator), the
/// decisions file's prayer entries, then the attributes folded into their prayers.
fn read_prayers(
    ctx: &mut Ctx<'_>,
    members: &SettledMembers,
    clock: &mut PhaseClock,
) -> Result<ReadPrayers, DetectError> {
    let users = &members.users;
    let mut prayers = Prayers::read(ctx, users)?;
    // The written members by display name: for an author a witness file or a decisions entry
    // names.
    let by_name = if ctx.opts.witnesses.is_some() || ctx.sink.decisions.is_some() {
        members_by_name(&members.resolved)?
    } else {
        std::collections::HashMap::new()
    };
    prayers.resolve_authors(users, &by_name, ctx.policy);
    if let Some(ledger) = ctx.sink.decisions.as_mut() {
        prayers.apply_decisions(ledger, &by_name)?;
    }
    prayers.commit_settled(ctx);
    clock.lap("prayers, authors");
    let (deferred, folds) = attributes::read(ctx, users, &mut prayers)?;
    attributes::store(&mut prayers, folds)?;
    release_freed_memory();
    clock.lap("attributes");
    Ok(ReadPrayers { prayers, deferred })
}

/// Phase 3: the `prayermark` table's rules in one scan, then the prayers that waited for
/// their activity settled and every prayer's findings committed.
fn stream_marks(
    ctx: &mut Ctx<'_>,
    members: &SettledMembers,
    read: ReadPrayers,
    clock: &mut PhaseClock,
) -> Result<MarkedPrayers, DetectError> {
    let ReadPrayers {
        mut prayers,
        deferred,
    } = read;
    let (mark_skips, mark_rekeyed) = marks::stream(ctx, &members.users, &mut prayers)?;
    release_freed_memory();
    clock.lap("marks");
    let renames = prayers.commit(ctx);
    attributes::finish(ctx, &mut prayers, deferred);
    Ok(MarkedPrayers {
        prayers,
        mark_skips,
        mark_rekeyed,
        renames,
    })
}

/// The last step: the accounting law over every finding (checked to balance), and the plan.
fn assemble(
    ctx: Ctx<'_>,
    members: SettledMembers,
    marked: MarkedPrayers,
    small: small::Small,
    emails: BTreeMap<u128, rules::email::PlannedEmail>,
) -> Result<Plan, DetectError> {
    let (db, opts) = (ctx.db, ctx.opts);
    let user_kind = members.users.kind;
    let (user_target, user_keys) = members.users.into_parts();
    let (prayer_states, prayer_rowids) = marked.prayers.into_plan_parts();
    let Sink {
        findings,
        read,
        written,
        decisions,
    } = ctx.sink;
    let decisions_applied = decisions.as_ref().map(|l| l.finish()).transpose()?;
    let findings = findings.finish()?;
    let present: Vec<&str> = CARRIED_TABLES
        .iter()
        .copied()
        .filter(|t| db.schema().has_table(t))
        .chain(opts.email.is_some().then_some(email::TABLE))
        .collect();
    let counts = law(&present, &findings, &read, &written)?;
    Ok(Plan {
        policy: opts.policy,
        clock: opts.clock,
        generation: db.schema().generation,
        user_kind,
        users: members.resolved,
        user_keys,
        user_target,
        prayers: prayer_states,
        prayer_rowids,
        mark_skips: marked.mark_skips,
        mark_rekeyed: marked.mark_rekeyed,
        grants: small.grants,
        invites: small.invites,
        sessions: small.sessions,
        deactivated: small.deactivated,
        implicit_grants: small.implicit_grants,
        prayer_renames: marked.renames,
        user_id_map: members.id_map,
        emails,
        findings,
        counts,
        decisions_applied,
        recovery: reconcile::Recovery::default(),
    })
}

/// The written members by display name (for a decisions entry naming a prayer's author).
fn members_by_name(
    users: &plan::UserStates,
) -> Result<std::collections::HashMap<String, u128>, DetectError> {
    let mut out = std::collections::HashMap::new();
    for u in users.iter() {
        let u = u?;
        if let Some(id) = text::parse_hex32(&u.id) {
            out.insert(u.display_name, id);
        }
    }
    Ok(out)
}

/// Times the phases of a run: one `debug` event per phase (target `thywill_detect::timing`), so a
/// caller can see where the time goes (`RUST_LOG=thywill_detect::timing=debug` in the benchmark).
struct PhaseClock {
    last: Instant,
}

impl PhaseClock {
    fn new() -> Self {
        PhaseClock {
            last: Instant::now(),
        }
    }

    fn lap(&mut self, phase: &str) {
        let now = Instant::now();
        if tracing::enabled!(target: "thywill_detect::timing", tracing::Level::DEBUG) {
            tracing::debug!(
                target: "thywill_detect::timing",
                phase,
                ms = format!("{:.1}", (now - self.last).as_secs_f64() * 1e3),
                rss_mib = format!("{:.1}", status_mib("VmRSS:")),
                peak_mib = format!("{:.1}", status_mib("VmHWM:")),
                "phase done"
            );
        }
        self.last = now;
    }
}

/// Hands the pages of freed small allocations back to the system (glibc `malloc_trim`). Called
/// where many small allocations have just died (the user rows' texts once the users are settled;
/// the pass's scratch state at the end): the allocator would otherwise keep those pages resident
/// for the rest of the run (on L, ~19 MiB through the write stage). A no-op elsewhere.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A memory line of `/proc/self/status` in MiB (0 where the file does not exist).
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The accounting law from the findings (sorted by table and rowid, so a row's findings are
/// adjacent), checked against the rows the rules wrote.
fn law(
    tables: &[&str],
    findings: &Findings,
    read: &BTreeMap<&'static str, u64>,
    written: &BTreeMap<&'static str, u64>,
) -> Result<BTreeMap<String, TableCounts>, DetectError> {
    let mut counts: BTreeMap<&str, TableCounts> = BTreeMap::new();
    let mut rows = findings.dispositions();
    let mut next = rows.next().transpose()?;
    while let Some((table, rowid, first)) = next {
        let mut strongest = first;
        next = rows.next().transpose()?;
        while let Some((_, _, d)) = next.filter(|n| n.0 == table && n.1 == rowid) {
            strongest = strongest.max(d);
            next = rows.next().transpose()?;
        }
        let c = counts.entry(table).or_default();
        match strongest {
            Decision::Repaired => c.repaired += 1,
            Decision::NotCarried => c.not_carried += 1,
            Decision::Deduplicated => c.deduplicated += 1,
            Decision::Merged => c.merged += 1,
            Decision::Quarantined => c.quarantined += 1,
            // a record of the archive tree, never a v1 row's finding (`Plan::apply_recovery`)
            Decision::Recovered => c.recovered += 1,
        }
    }
    let mut out = BTreeMap::new();
    for &table in tables {
        let mut c = counts.get(table).copied().unwrap_or_default();
        c.read = read.get(table).copied().unwrap_or(0);
        c.written = written.get(table).copied().unwrap_or(0);
        if !c.balances() {
            return Err(DetectError::law_broken(table, &c));
        }
        out.insert(table.to_string(), c);
    }
    Ok(out)
}
