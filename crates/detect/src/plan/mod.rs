//! The resolution plan: what pass 2 writes for every v1 row, decided once in pass 1.

use std::collections::BTreeMap;

use thywill_v1::{Generation, MarkRow, PrayerRow};

use crate::findings::Findings;
use crate::ids::hex_id;
use crate::keys::{KeyIndex, KeyKind, RowidIndex};
use crate::model::{DetectError, Policy, TableCounts};
use crate::rules::{marks, prayers};
use crate::stored::StoredRows;

mod resolve;
pub(crate) mod state;

pub use state::*;

/// Everything pass 2 needs, decided by [`crate::detect`]: findings, per-row verdicts, the id
/// map and the accounting law.
#[derive(Debug)]
pub struct Plan {
    pub(crate) policy: Policy,
    /// The v1 server's clock the plan was decided with (pass 2 reads local times through it).
    pub(crate) clock: crate::clock::Clock,
    pub(crate) generation: Generation,
    pub(crate) user_kind: KeyKind,
    pub(crate) users: UserStates,
    pub(crate) user_keys: KeyIndex,
    /// Per user entry (index of `user_keys`): the v2 id of the account it ends in, if written.
    pub(crate) user_target: UserTargets,
    pub(crate) prayers: PrayerStates,
    pub(crate) prayer_rowids: RowidIndex,
    /// Rowids of the marks not written, sorted.
    pub(crate) mark_skips: Vec<i64>,
    /// Rowids of the marks re-keyed by `R-MARK-KEY` (sorted).
    pub(crate) mark_rekeyed: Vec<i64>,
    pub(crate) grants: StoredRows<ResolvedRoleGrant>,
    pub(crate) invites: StoredRows<ResolvedInvite>,
    pub(crate) sessions: StoredRows<ResolvedSession>,
    /// v2 ids of the members a written `deactivated` grant makes inactive, sorted.
    pub(crate) deactivated: Vec<u128>,
    /// Grants with no `user_roles` row behind them (the member named `admin`).
    pub(crate) implicit_grants: u64,
    /// Prayers written under a v2 id that differs from their v1 key text: (v1 key, v2 id),
    /// sorted.
    pub(crate) prayer_renames: Vec<(Box<str>, u128)>,
    pub(crate) user_id_map: UserIdMap,
    /// The carried address of each member that has one (by v2 id), from `R-EMAIL`.
    pub(crate) emails: BTreeMap<u128, crate::rules::email::PlannedEmail>,
    pub(crate) findings: Findings,
    pub(crate) counts: BTreeMap<String, TableCounts>,
    /// The entries of the run's decisions file applied (all of them), when it has one.
    pub(crate) decisions_applied: Option<u64>,
    /// What the archive tree adds ([`Plan::apply_recovery`]; empty otherwise).
    pub(crate) recovery: crate::reconcile::Recovery,
}

impl Plan {
    /// The policy the plan was made under.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The v1 schema generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The damaged prayer values (text, `created_at`, author) the archive tree holds whole:
    /// restored under `repair`, only reported under `strict` (decisions.md §50).
    pub fn restorable_values(&self) -> u64 {
        self.prayers.restorable
    }

    /// The number of entries of the run's decisions file applied (`None` without one).
    pub fn decisions_applied(&self) -> Option<u64> {
        self.decisions_applied
    }

    /// The v2 user written for v1 `user` row `rowid`; `None` when it is merged or quarantined.
    /// Fails only when the plan's temporary file cannot be read back.
    pub fn user(&self, rowid: i64) -> Result<Option<ResolvedUser>, DetectError> {
        Ok(self.users.by_rowid(rowid)?.map(|u| self.settle_active(u)))
    }

    /// Every v2 user, in v1 rowid order, each read back from the plan's temporary file when
    /// reached.
    pub fn users(&self) -> impl ExactSizeIterator<Item = Result<ResolvedUser, DetectError>> + '_ {
        self.users.iter().map(|u| u.map(|u| self.settle_active(u)))
    }

    /// `u` with `is_active` as the grants decided it (they are read after the users are
    /// stored).
    fn settle_active(&self, mut u: ResolvedUser) -> ResolvedUser {
        u.is_active = !self.is_deactivated(&u.id);
        if let Some(e) = u128::from_str_radix(&u.id, 16)
            .ok()
            .and_then(|id| self.emails.get(&id))
        {
            u.email = Some(e.address.clone());
            u.email_verified_at = e.verified_at;
        }
        u
    }

    /// Number of members the plan gives an address (`R-EMAIL`'s written rows).
    pub fn emails_carried(&self) -> u64 {
        self.emails.len() as u64
    }

    /// Number of `deactivated` grants folded into their members' rows: written by the law, yet
    /// no `user_roles` row.
    pub fn folded_grants(&self) -> u64 {
        self.deactivated.len() as u64
    }

    /// The v2 rows the plan writes for carried v1 table `table`: its written rows, except for
    /// `user_roles` (see [`Plan::grant_rows`]).
    pub fn v2_rows(&self, table: &str) -> u64 {
        match table {
            "user_roles" => self.grant_rows(),
            t => self.counts.get(t).map_or(0, |c| c.written),
        }
    }

    /// Number of grants v2 gets with no `user_roles` row behind them.
    pub fn implicit_grants(&self) -> u64 {
        self.implicit_grants
    }

    /// The v2 `user_roles` rows the plan writes: the grants the law counts as written, less
    /// those folded into a member's row, plus those v1 implies without a row (the member named
    /// `admin`).
    pub fn grant_rows(&self) -> u64 {
        let written = self.counts.get("user_roles").map_or(0, |c| c.written);
        written - self.folded_grants() + self.implicit_grants
    }

    /// Whether the member of v2 id `id` (hex) is made inactive by a `deactivated` grant.
    pub fn is_deactivated(&self, id: &str) -> bool {
        u128::from_str_radix(id, 16).is_ok_and(|id| self.deactivated.binary_search(&id).is_ok())
    }

    /// The v2 id a stored v1 member reference resolves to (after merges), if it is written.
    pub fn user_v2_id(&self, reference: &thywill_v1::V1Value) -> Option<String> {
        self.user_ref(reference).map(hex_id)
    }

    pub(crate) fn user_ref(&self, reference: &thywill_v1::V1Value) -> Option<u128> {
        let idx = self.user_keys.lookup(reference, self.user_kind)?;
        self.user_target.get(idx)
    }

    /// What to write for a v1 prayer row in pass 2. Fails only when the plan's temporary file
    /// (the folded attributes of the prayers that have some) cannot be read back.
    pub fn resolve_prayer(&self, row: &PrayerRow) -> Result<Verdict<ResolvedPrayer>, DetectError> {
        match self.prayer_rowids.get(row.rowid) {
            Some(i) if self.prayers.written_v2_id(i).is_some() => resolve::prayer(self, i, row),
            _ => Ok(Verdict::Skip),
        }
    }

    /// The v2 `content_flags` rows: the prayer's v2 id and its flag, for every written prayer
    /// v1 flagged (column or attribute), in prayer order. Read from the plan's state, not from
    /// v1; fails only when the plan's temporary file cannot be read back.
    pub fn flags(&self) -> impl Iterator<Item = Result<(String, ResolvedFlag), DetectError>> + '_ {
        (0..self.prayers.len() as u32).filter_map(|idx| resolve::flag(self, idx).transpose())
    }

    /// What to write for a v1 mark row in pass 2 (streamed in any order).
    pub fn resolve_mark(&self, row: &MarkRow) -> Verdict<ResolvedMark> {
        if self.mark_skips.binary_search(&row.rowid).is_ok() {
            return Verdict::Skip;
        }
        resolve::mark(self, row)
    }

    /// The v2 `user_roles` rows (kept out of memory, see [`StoredRows`]).
    pub fn role_grants(&self) -> &StoredRows<ResolvedRoleGrant> {
        &self.grants
    }

    /// The v2 `invites` rows (kept out of memory, see [`StoredRows`]).
    pub fn invites(&self) -> &StoredRows<ResolvedInvite> {
        &self.invites
    }

    /// The v2 `sessions` rows (kept out of memory, see [`StoredRows`]).
    pub fn sessions(&self) -> &StoredRows<ResolvedSession> {
        &self.sessions
    }

    /// The `migration_id_map` rows (users and prayers; merged duplicates point at the survivor),
    /// sorted (entity, v1 key, v2 id), made one at a time from the plan's compact state.
    pub fn id_map(&self) -> impl Iterator<Item = Result<IdMapEntry, DetectError>> + '_ {
        let prayers = self.prayer_renames.iter().map(|(key, id)| {
            Ok(IdMapEntry {
                entity: prayers::TABLE,
                v1_key: key.to_string(),
                v2_id: hex_id(*id),
            })
        });
        let users = self.user_id_map.order.iter().map(|&i| {
            let i = i as usize;
            let (v1_key, v2_id) = match i.checked_sub(self.users.len()) {
                None => {
                    let u = self.users.get(i)?;
                    (u.v1_key, u.id)
                }
                Some(o) => {
                    let (key, id) = &self.user_id_map.others[o];
                    (key.clone(), hex_id(*id))
                }
            };
            Ok(IdMapEntry {
                entity: crate::rules::users::TABLE,
                v1_key,
                v2_id,
            })
        });
        prayers.chain(users)
    }

    /// Every finding, sorted by table, rowid and rule, each made when a walk reaches it (see
    /// [`Findings`]).
    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// The accounting law's counts per carried table the file has (of
    /// [`thywill_v1::CARRIED_TABLES`]). Checked to balance.
    pub fn counts(&self) -> &BTreeMap<String, TableCounts> {
        &self.counts
    }

    /// Number of findings per rule id.
    pub fn findings_by_rule(&self) -> BTreeMap<&'static str, u64> {
        self.findings.by_rule()
    }

    /// The records recovered from the archive tree that the plan writes (empty unless
    /// [`Plan::apply_recovery`] took some).
    pub fn recovery(&self) -> &crate::reconcile::Recovery {
        &self.recovery
    }

    /// Takes what the archive tree adds ([`crate::reconcile::recover`]) into the plan, under
    /// `repair` only (under `strict` nothing is recovered: the differences stay reported): the
    /// prayers and marks join the law of `prayer` and `prayermark` as recovered and written,
    /// and the law is checked again.
    pub fn apply_recovery(
        &mut self,
        recovery: crate::reconcile::Recovery,
    ) -> Result<(), DetectError> {
        if self.policy != Policy::Repair {
            return Ok(());
        }
        for (table, n) in [
            (crate::rules::users::TABLE, recovery.users.len()),
            (prayers::TABLE, recovery.prayers.len()),
            (marks::TABLE, recovery.marks.len()),
        ] {
            let c = self.counts.entry(table.to_string()).or_default();
            c.recovered += n as u64;
            c.written += n as u64;
            if !c.balances() {
                return Err(DetectError::law_broken(table, c));
            }
        }
        self.recovery = recovery;
        Ok(())
    }
}
