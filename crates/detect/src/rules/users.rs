//! The `user` table: `R-USER-UNRETRIEVABLE`, `R-USER-EMPTY-NAME`, `R-USER-TEST-ACCOUNT`,
//! `R-USER-NAME`, `R-USER-DUPLICATE`, `R-INVITE-TREE`, and `R-TIME`/`R-ENUM`/`R-UTF8`/
//! `R-ARCHIVE-PATH` on user columns.

mod scan;

use std::collections::HashMap;

use chrono::NaiveDateTime;
use thywill_v1::V1Value;

use super::{
    lift, note_respelling, resolve_parent, show, time_from_evidence, Ctx, Parent, RowFindings,
    TimeOutcome,
};
use crate::decisions::{CarryValue, Choice, Ledger};
use crate::ids::{hex_id, user_id_for_name, user_id_for_text_key};
use crate::keys::{KeyIndex, KeyKind, NormKey};
use crate::model::{Decision, DetectError, Policy, RuleId};
use crate::plan::{ResolvedUserParts, UserIdMap, UserStates, UserStatesWriter, UserTargets};
use crate::text::{fold_name, parse_lower_hex32, shown};
use crate::time::{self, PackedTime};

/// The v1 table name.
pub(crate) const TABLE: &str = "user";

/// What becomes of a user row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Written as its own v2 user.
    Written,
    /// Folded into another entry.
    MergedInto(u32),
    /// Not written.
    Quarantined,
}

/// One user row and what the rules made of it.
pub(crate) struct UserEntry {
    rowid: i64,
    /// The stored `invited_by` (settled with the invite tree once every key is known).
    invited_by: StoredRef,
    is_supporter: bool,
    rf: RowFindings,
    norm: Option<NormKey>,
    key_damaged: bool,
    empty_name: bool,
    name: String,
    created: PackedTime,
    pending_time: bool,
    fate: Fate,
    religious: &'static str,
    prayer_style: Option<String>,
    supporter_since: PackedTime,
    supporter_type: Option<String>,
    welcome_dismissed: bool,
    archive_path: Option<String>,
    inviter: Option<u32>,
    v2_id: u128,
}

/// A stored member reference, without a copy of its text when it is a canonical id (lower-case
/// hex, as v1 writes them: the text is that of its value).
enum StoredRef {
    Null,
    Hex([u8; 16]),
    Other(Box<V1Value>),
}

impl StoredRef {
    fn new(v: &V1Value) -> StoredRef {
        match v {
            V1Value::Null => StoredRef::Null,
            V1Value::Text(b) => match parse_lower_hex32(b) {
                Some(h) => StoredRef::Hex(h.to_le_bytes()),
                None => StoredRef::Other(Box::new(v.clone())),
            },
            _ => StoredRef::Other(Box::new(v.clone())),
        }
    }

    /// The stored value, as read.
    fn value(&self) -> V1Value {
        match self {
            StoredRef::Null => V1Value::Null,
            StoredRef::Hex(h) => V1Value::text(&hex_id(u128::from_le_bytes(*h))),
            StoredRef::Other(v) => (**v).clone(),
        }
    }
}

/// Every user row (a small table: held whole), its key set and, after [`Users::finalize`], the
/// fate of each row.
pub(crate) struct Users {
    pub(crate) kind: KeyKind,
    entries: Vec<UserEntry>,
    pub(crate) index: KeyIndex,
    collisions: Vec<(u32, u32)>,
    /// The stored `created_at` of the entries whose time waits for evidence.
    pending_created: HashMap<u32, V1Value>,
    min_activity: HashMap<u32, NaiveDateTime>,
    /// After [`Users::settle`]: each entry's target (the entries are dropped).
    targets: Option<UserTargets>,
    /// After [`Users::settle`]: the v1 key of each entry that ends in no v2 user (named in the
    /// reasons of the rows that point at one).
    unwritten_keys: HashMap<u32, Box<str>>,
    /// After [`Users::settle`]: the written member named exactly `admin`, whom v1 treats as an
    /// admin without a grant row.
    pub(crate) named_admin: Option<NamedAdmin>,
}

/// The written member named exactly [`ADMIN_NAME`].
#[derive(Clone, Debug)]
pub(crate) struct NamedAdmin {
    pub(crate) rowid: i64,
    pub(crate) key: Box<str>,
    pub(crate) id: u128,
    pub(crate) created_at: NaiveDateTime,
}

/// The display name v1 makes an admin by itself (v1-real.md §4).
const ADMIN_NAME: &str = "admin";

impl Users {
    /// A table of no rows yet, keyed by `kind`.
    fn empty(kind: KeyKind) -> Users {
        Users {
            kind,
            entries: Vec::new(),
            index: KeyIndex::default(),
            collisions: Vec::new(),
            pending_created: HashMap::new(),
            min_activity: HashMap::new(),
            targets: None,
            unwritten_keys: HashMap::new(),
            named_admin: None,
        }
    }

    /// Adds the entry of the next row: its key joins the key set (a key already held is a
    /// collision, settled by [`Users::finalize`]) and a `created_at` waiting for evidence is kept.
    fn add(&mut self, entry: UserEntry, created_at: V1Value) {
        let idx = self.entries.len() as u32;
        if let Some(n) = &entry.norm {
            if let Err(holder) = self.index.insert(n, idx) {
                self.collisions.push((holder, idx));
            }
        }
        if entry.pending_time {
            self.pending_created.insert(idx, created_at);
        }
        self.entries.push(entry);
    }

    /// The v1 key text of entry `idx` (after [`Users::settle`]: only of an entry that ends in
    /// no v2 user).
    pub(crate) fn key_of(&self, idx: u32) -> Option<&str> {
        match self.entries.get(idx as usize) {
            Some(e) => Some(e.rf.key.as_str()),
            None => self.unwritten_keys.get(&idx).map(|k| &**k),
        }
    }

    /// True when some user's `created_at` waits for evidence from related activity.
    pub(crate) fn has_pending_times(&self) -> bool {
        self.entries.iter().any(|e| e.pending_time)
    }

    /// The entry a stored member reference names (before merges), if any.
    pub(crate) fn entry_of(&self, reference: &V1Value) -> Option<u32> {
        self.index.lookup(reference, self.kind)
    }

    /// Records activity of entry `idx` at `at` (evidence for an unparseable `created_at`; a
    /// no-op once the users are settled).
    pub(crate) fn note_activity(&mut self, idx: u32, at: NaiveDateTime) {
        if self
            .entries
            .get(idx as usize)
            .is_some_and(|e| e.pending_time)
        {
            let slot = self.min_activity.entry(idx).or_insert(at);
            *slot = (*slot).min(at);
        }
    }

    /// The written entry an entry ends in (following merges), if any.
    pub(crate) fn final_entry(&self, idx: u32) -> Option<u32> {
        let mut cur = idx;
        for _ in 0..=self.entries.len() {
            match self.entries.get(cur as usize)?.fate {
                Fate::Written => return Some(cur),
                Fate::MergedInto(next) => cur = next,
                Fate::Quarantined => return None,
            }
        }
        None
    }

    /// The v2 id an entry ends in, if written (valid after [`Users::finalize`]).
    pub(crate) fn target(&self, idx: u32) -> Option<u128> {
        if let Some(targets) = &self.targets {
            return targets.get(idx);
        }
        self.final_entry(idx)
            .map(|i| self.entries[i as usize].v2_id)
    }

    /// The resolved `created_at` of the written user with v2 id `id` (after [`Users::settle`]).
    pub(crate) fn created_of(&self, id: u128) -> Option<NaiveDateTime> {
        self.targets.as_ref().and_then(|t| t.created_of(id))
    }

    /// Settles every decision that needs the whole table: pending times, key collisions, the
    /// operator's decisions (before duplicates: a carried name that folds onto another
    /// member's is `R-USER-DUPLICATE` like any other), duplicates, v2 ids and the invite tree.
    pub(crate) fn finalize(
        &mut self,
        policy: Policy,
        decisions: Option<&mut Ledger>,
    ) -> Result<(), DetectError> {
        self.settle_times();
        self.settle_key_collisions(policy);
        if let Some(ledger) = decisions {
            self.apply_decisions(ledger)?;
        }
        self.settle_duplicates(policy);
        for e in &mut self.entries {
            e.v2_id = match (&e.norm, self.kind) {
                (Some(NormKey::Hex(h)), KeyKind::Hex) => *h,
                // A valid text key that is not a hex id (the real first-week database has a
                // member keyed `admin`) is not damage: `spec/v2.md` gives it this id.
                (Some(NormKey::Text(t)), KeyKind::Hex) => user_id_for_text_key(t),
                _ => user_id_for_name(&e.name),
            };
        }
        self.settle_invite_tree();
        Ok(())
    }

    /// Applies the operator's entries that name a quarantined member: `not_a_test_account`,
    /// `carry` with a display name, `merge_into` another member (the `R-USER-DUPLICATE`
    /// machinery: the member's rows follow the survivor). `keep_quarantined` is the sink's.
    fn apply_decisions(&mut self, ledger: &mut Ledger) -> Result<(), DetectError> {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.fate != Fate::Quarantined {
                continue;
            }
            let Some(d) = ledger.find(TABLE, &e.rf.key, e.rowid) else {
                continue;
            };
            let entry = ledger.entry(d).clone();
            let (decision, done, fate) = match &entry.choice {
                Choice::NotATestAccount => (
                    Decision::Repaired,
                    "not a test account; written".to_string(),
                    Fate::Written,
                ),
                Choice::Carry(CarryValue::DisplayName(name)) => {
                    let done = format!("display name set to '{}'; written", shown(name, 60));
                    let e = &mut self.entries[i];
                    e.name = name.clone();
                    e.empty_name = false;
                    (Decision::Repaired, done, Fate::Written)
                }
                Choice::MergeInto(key) => {
                    let w = self.written_entry(key).ok_or_else(|| {
                        ledger.error(d, format!("merge_into {key:?} names no written member"))
                    })?;
                    (
                        Decision::Merged,
                        format!("merged into row {key}"),
                        Fate::MergedInto(w),
                    )
                }
                Choice::KeepQuarantined | Choice::Carry(_) => continue,
            };
            let e = &mut self.entries[i];
            lift(&mut e.rf, &entry, decision, &done).map_err(|m| ledger.error(d, m))?;
            e.fate = fate;
            ledger.mark_applied(d);
        }
        Ok(())
    }

    /// The written entry whose v1 key text is `key`.
    fn written_entry(&self, key: &str) -> Option<u32> {
        let i = self.entries.iter().position(|e| e.rf.key == key)? as u32;
        self.final_entry(i)
    }

    fn settle_times(&mut self) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            if !e.pending_time {
                continue;
            }
            e.pending_time = false;
            let evidence = self.min_activity.get(&(i as u32)).copied();
            let raw = self
                .pending_created
                .remove(&(i as u32))
                .unwrap_or(V1Value::Null);
            if let TimeOutcome::At(t) = time_from_evidence(&mut e.rf, "created_at", &raw, evidence)
            {
                e.created = PackedTime::new(Some(t));
            }
            if !e.rf.written() {
                e.fate = Fate::Quarantined;
            }
        }
    }

    /// Orders survivors: earliest created, then smallest key.
    fn survivor_order(&self, i: u32) -> (Option<NaiveDateTime>, &str) {
        let e = &self.entries[i as usize];
        (e.created.get(), e.rf.key.as_str())
    }

    fn fold_into(&mut self, loser: u32, winner: u32, policy: Policy, rule: RuleId, why: String) {
        let w = &self.entries[winner as usize];
        let wkey = w.rf.key.clone();
        let done = match policy {
            Policy::Repair => format!("merged into row {wkey}"),
            Policy::Strict => format!("quarantined (strict keeps only {wkey})"),
        };
        let e = &mut self.entries[loser as usize];
        match policy {
            Policy::Repair => {
                e.rf.push(rule, Decision::Merged, format!("{why}; {done}"));
                e.fate = Fate::MergedInto(winner);
            }
            Policy::Strict => {
                e.rf.push(rule, Decision::Quarantined, format!("{why}; {done}"));
                e.fate = Fate::Quarantined;
            }
        }
    }

    fn settle_key_collisions(&mut self, policy: Policy) {
        let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(holder, newcomer) in &self.collisions {
            groups
                .entry(holder)
                .or_insert_with(|| vec![holder])
                .push(newcomer);
        }
        let mut holders: Vec<u32> = groups.keys().copied().collect();
        holders.sort_unstable();
        for holder in holders {
            let members: Vec<u32> = groups[&holder]
                .iter()
                .copied()
                .filter(|&i| self.entries[i as usize].fate == Fate::Written)
                .collect();
            let Some(&winner) = members.iter().min_by(|&&a, &&b| {
                let ka = (self.entries[a as usize].key_damaged, self.survivor_order(a));
                let kb = (self.entries[b as usize].key_damaged, self.survivor_order(b));
                ka.cmp(&kb)
            }) else {
                continue;
            };
            if let Some(n) = self.entries[winner as usize].norm.clone() {
                self.index.set(&n, winner);
            }
            for &m in &members {
                if m == winner {
                    continue;
                }
                let rule = if self.entries[m as usize].key_damaged {
                    RuleId::UserUnretrievable
                } else {
                    RuleId::UserDuplicate
                };
                let why = format!(
                    "normalised key {} is also the key of row {}",
                    norm_text(self.entries[m as usize].norm.as_ref()),
                    self.entries[winner as usize].rf.key
                );
                self.fold_into(m, winner, policy, rule, why);
            }
        }
    }

    /// `R-USER-DUPLICATE` over every named account not already folded by key: each rule is its
    /// own finding, so an account quarantined for another reason (e.g. its name under `strict`)
    /// still gets its duplicate finding. The survivor is the earliest written account (ties:
    /// smallest key).
    fn settle_duplicates(&mut self, policy: Policy) {
        let mut groups: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !e.empty_name && !matches!(e.fate, Fate::MergedInto(_)) {
                // `name` is the name v2 gets (repaired only when R-USER-NAME found a fault): a
                // run of spaces inside a sound name stays, so it is not folded away here either.
                groups.entry(fold_name(&e.name)).or_default().push(i as u32);
            }
        }
        let mut dups: Vec<Vec<u32>> = groups.into_values().filter(|g| g.len() > 1).collect();
        dups.sort();
        for group in dups {
            let Some(&winner) = group.iter().min_by(|&&a, &&b| {
                let ka = (
                    self.entries[a as usize].fate != Fate::Written,
                    self.survivor_order(a),
                );
                let kb = (
                    self.entries[b as usize].fate != Fate::Written,
                    self.survivor_order(b),
                );
                ka.cmp(&kb)
            }) else {
                continue;
            };
            for &m in &group {
                if m == winner {
                    continue;
                }
                let w = &self.entries[winner as usize];
                let why = format!(
                    "name '{}' is the same as '{}' (row {}, created {}) after NFC, trimming and case folding",
                    shown(&self.entries[m as usize].name, 60),
                    shown(&w.name, 60),
                    w.rf.key,
                    w.created.get().map(time::canonical).unwrap_or_default()
                );
                if self.entries[m as usize].fate == Fate::Written
                    && self.entries[winner as usize].fate == Fate::Written
                {
                    self.fold_into(m, winner, policy, RuleId::UserDuplicate, why);
                } else {
                    let decision = match policy {
                        Policy::Repair => Decision::Merged,
                        Policy::Strict => Decision::Quarantined,
                    };
                    let e = &mut self.entries[m as usize];
                    e.rf.push(
                        RuleId::UserDuplicate,
                        decision,
                        format!("{why}; the account is not written (see its other findings)"),
                    );
                    if e.fate == Fate::Written {
                        e.fate = Fate::Quarantined;
                    }
                }
            }
        }
    }

    fn settle_invite_tree(&mut self) {
        let n = self.entries.len();
        for i in 0..n {
            if self.entries[i].fate != Fate::Written {
                continue;
            }
            let value = self.entries[i].invited_by.value();
            if value.to_text_lossy().is_some_and(|t| t.trim().is_empty()) {
                continue;
            }
            let parent = resolve_parent(&self.index, self.kind, &value, |j| self.final_entry(j));
            note_respelling(
                &mut self.entries[i].rf,
                "invited_by",
                &self.index,
                self.kind,
                &value,
            );
            let drop_why = match parent {
                Parent::None => continue,
                Parent::Found(j) if j as usize == i => {
                    format!("invited_by {} points at the user itself", show(&value))
                }
                Parent::Found(j) => {
                    self.entries[i].inviter = Some(j);
                    continue;
                }
                Parent::Missing(v) => format!("invited_by {v} names no user"),
                Parent::NotWritten(v) => format!("invited_by {v} names a user that is quarantined"),
            };
            self.entries[i].rf.push(
                RuleId::InviteTree,
                Decision::Repaired,
                format!("{drop_why}; link dropped"),
            );
        }
        // Cycles: follow links; each cycle loses the link of its newest account.
        let mut state = vec![0u8; n]; // 0 new, 1 on the current walk, 2 done
        for start in 0..n {
            let mut path = Vec::new();
            let mut cur = Some(start as u32);
            while let Some(c) = cur {
                match state[c as usize] {
                    2 => break,
                    1 => {
                        let at = path.iter().position(|&p| p == c).unwrap_or(0);
                        let cycle: Vec<u32> = path[at..].to_vec();
                        self.break_cycle(&cycle);
                        break;
                    }
                    _ => {
                        state[c as usize] = 1;
                        path.push(c);
                        cur = self.entries[c as usize].inviter;
                    }
                }
            }
            for p in path {
                state[p as usize] = 2;
            }
        }
    }

    fn break_cycle(&mut self, cycle: &[u32]) {
        let Some(&newest) = cycle
            .iter()
            .max_by(|&&a, &&b| self.survivor_order(a).cmp(&self.survivor_order(b)))
        else {
            return;
        };
        let names: Vec<String> = cycle
            .iter()
            .map(|&c| format!("'{}'", shown(&self.entries[c as usize].name, 40)))
            .collect();
        let e = &mut self.entries[newest as usize];
        e.inviter = None;
        e.rf.push(
            RuleId::InviteTree,
            Decision::Repaired,
            format!(
                "invited_by closes a cycle ({} → back); the link of the newest account, '{}', dropped",
                names.join(" → "),
                shown(&e.name, 40)
            ),
        );
    }

    /// Once every user decision is made (after [`Users::finalize`]; before the prayers are
    /// read, so the user rows and the prayers' state are never in memory together): commits the
    /// findings, produces the v2 users and the id map's user rows, and drops the entries. From
    /// then on only the key set, each entry's target, the written users' `created_at` and the
    /// keys of the unwritten entries are kept ([`Users::target`], [`Users::created_of`],
    /// [`Users::key_of`]).
    pub(crate) fn settle(
        &mut self,
        ctx: &mut Ctx<'_>,
    ) -> Result<(UserStates, UserIdMap), DetectError> {
        let written = self.entries.iter().filter(|e| e.fate == Fate::Written);
        let targets = UserTargets::new(
            self.entries.len() as u32,
            |i| self.target(i),
            written.map(|e| (e.v2_id, e.created.get())),
        );
        self.unwritten_keys = (0..self.entries.len() as u32)
            .filter(|&i| targets.get(i).is_none())
            .map(|i| (i, self.entries[i as usize].rf.key.as_str().into()))
            .collect();
        let mut out = UserStatesWriter::new();
        // Id-map rows as (entry, row): `Ok(i)` is written user `out[i]`, `Err(j)` is `others[j]`.
        let mut rows: Vec<(u32, Result<u32, u32>)> = Vec::new();
        let mut others = Vec::new();
        let mut named_admin = None;
        for (i, e) in self.entries.iter().enumerate() {
            let inviter = e.inviter.map(|j| self.entries[j as usize].v2_id);
            let written = ctx.sink.commit(TABLE, &e.rf);
            if let Some(t) = targets.get(i as u32) {
                let row = if written && t == e.v2_id {
                    Ok(out.len())
                } else {
                    others.push((e.rf.key.clone(), t));
                    Err(others.len() as u32 - 1)
                };
                rows.push((i as u32, row));
            }
            if written && e.name == ADMIN_NAME {
                named_admin = Some(NamedAdmin {
                    rowid: e.rowid,
                    key: e.rf.key.as_str().into(),
                    id: e.v2_id,
                    created_at: e.created.get().unwrap_or_default(),
                });
            }
            if written {
                out.push(ResolvedUserParts {
                    rowid: e.rowid,
                    v1_key: &e.rf.key,
                    id: e.v2_id,
                    display_name: &e.name,
                    created_at: e.created.get().unwrap_or_default(),
                    religious: e.religious,
                    prayer_style: e.prayer_style.as_deref(),
                    inviter,
                    is_supporter: e.is_supporter,
                    supporter_since: e.supporter_since.get(),
                    supporter_type: e.supporter_type.as_deref(),
                    welcome_dismissed: e.welcome_dismissed,
                    v1_archive_path: e.archive_path.as_deref(),
                });
            }
        }
        // The id map's order: v1 key, then v2 id (fixed-width lower-case hex sorts as the number).
        rows.sort_by(|a, b| {
            let key = |(i, _): &(u32, Result<u32, u32>)| {
                (self.entries[*i as usize].rf.key.as_str(), targets.get(*i))
            };
            key(a).cmp(&key(b))
        });
        let n = out.len();
        let order = rows
            .into_iter()
            .map(|(_, row)| match row {
                Ok(w) => w,
                Err(o) => n + o,
            })
            .collect();
        self.targets = Some(targets);
        self.named_admin = named_admin;
        self.entries = Vec::new();
        self.min_activity = HashMap::new();
        self.pending_created = HashMap::new();
        Ok((out.finish()?, UserIdMap { others, order }))
    }

    /// The entry → v2 id targets and the key set, for the plan (after [`Users::settle`]).
    pub(crate) fn into_parts(self) -> (UserTargets, KeyIndex) {
        (self.targets.unwrap_or_default(), self.index)
    }
}

fn norm_text(n: Option<&NormKey>) -> String {
    match n {
        Some(NormKey::Hex(h)) => hex_id(*h),
        Some(NormKey::Text(t)) => format!("'{}'", shown(t, 60)),
        None => "nothing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored reference gives back exactly the value read, compact or not.
    #[test]
    fn stored_refs_give_back_the_value_read() {
        let canonical = "0123456789abcdef0123456789abcdef";
        for v in [
            V1Value::Null,
            V1Value::text(canonical),
            V1Value::text(&canonical.to_uppercase()),
            V1Value::text(&format!(" {canonical}")),
            V1Value::text("None"),
            V1Value::Integer(42),
            V1Value::Text(vec![0xff, 0x00]),
        ] {
            assert_eq!(StoredRef::new(&v).value(), v);
        }
        assert!(matches!(
            StoredRef::new(&V1Value::text(canonical)),
            StoredRef::Hex(_)
        ));
    }
}
