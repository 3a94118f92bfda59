//! The `user` table: `R-USER-UNRETRIEVABLE`, `R-USER-EMPTY-NAME`, `R-USER-TEST-ACCOUNT`,
//! `R-USER-NAME`, `R-USER-DUPLICATE`, `R-INVITE-TREE`, and `R-TIME`/`R-ENUM`/`R-UTF8`/
//! `R-ARCHIVE-PATH` on user columns.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use thywill_v1::{UserRefKind, UserRow, V1Value};

use super::archive::{check_archive_path, RecordArchive};
use super::{
    check_local_time, check_time, check_utf8, key_text, note_respelling, resolve_parent, show,
    time_from_evidence, Ctx, NoShape, Parent, RowFindings, TimeOutcome,
};
use crate::ids::{hex_id, user_id_for_name, user_id_for_text_key};
use crate::keys::{key_damage, normalize, KeyIndex, KeyKind, NormKey};
use crate::model::{Decision, DetectError, Policy, RuleId, KNOWN_CORRUPTED_USER_ID};
use crate::plan::{ResolvedUserParts, UserIdMap, UserStates, UserStatesWriter, UserTargets};
use crate::text::{
    fold_name, is_blank, name_problems, parse_hex32, parse_lower_hex32, repair_name, shown,
};
use crate::time::{self, PackedTime};

/// v2's `users.supporter_type` width.
const MAX_SUPPORTER_TYPE: usize = 255;

/// A boolean member flag (`is_supporter`, `welcome_message_dismissed`): NULL is false (v2's
/// default); a value that is not a boolean is written false with its `R-ENUM` finding.
fn flag(rf: &mut RowFindings, column: &str, v: &V1Value) -> bool {
    match (v, v.as_bool()) {
        (_, Some(b)) => b,
        (V1Value::Null, None) => false,
        (v, None) => {
            rf.push(
                RuleId::Enum,
                Decision::Repaired,
                format!("{column} {} is not a boolean; written false", show(v)),
            );
            false
        }
    }
}

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

fn religious(v: &V1Value) -> (&'static str, Option<&'static str>) {
    let raw = v.to_text_lossy();
    let t = raw.as_deref().map(str::trim).unwrap_or("");
    let lower = t.to_lowercase();
    let mapped = match lower.as_str() {
        "" => "unspecified",
        "christian" | "christians" | "christianity" => "christian",
        "unspecified" | "not specified" | "none" | "prefer not to say" => "unspecified",
        "other" => "other",
        _ => "other",
    };
    let exact = raw.as_deref() == Some(mapped);
    (mapped, (!exact).then_some(mapped))
}

impl Users {
    /// Pass 1 over `user`: every per-row rule, and the key set.
    pub(crate) fn read(ctx: &mut Ctx<'_>) -> Result<Users, DetectError> {
        let schema = ctx.db.schema();
        let kind = match schema.user_key {
            UserRefKind::ById => KeyKind::Hex,
            UserRefKind::ByName => KeyKind::Name,
        };
        let has_religious = schema.has_column(TABLE, "religious_preference");
        let pk = ctx.db.pk_index_rowids(TABLE)?;
        let missing_from_index: HashSet<i64> = match &pk {
            Some(_) => HashSet::new(),
            None => ctx
                .db
                .integrity()?
                .missing_index_entries
                .into_iter()
                .filter(|m| m.table == TABLE)
                .map(|m| m.rowid)
                .collect(),
        };
        let mut users = Users {
            kind,
            entries: Vec::new(),
            index: KeyIndex::default(),
            collisions: Vec::new(),
            pending_created: HashMap::new(),
            min_activity: HashMap::new(),
            targets: None,
            unwritten_keys: HashMap::new(),
            named_admin: None,
        };
        let known_id = parse_hex32(KNOWN_CORRUPTED_USER_ID).map(NormKey::Hex);
        // Streamed: only each row's entry is kept (the whole rows of a large file are not).
        let db = ctx.db;
        let n = db.for_each::<UserRow, DetectError, _>(|row| {
            let idx = users.entries.len() as u32;
            let key_val = match kind {
                KeyKind::Hex => &row.id,
                KeyKind::Name => &row.display_name,
            };
            let mut rf = RowFindings::new(row.rowid, key_text(key_val, row.rowid));
            let norm = normalize(key_val, kind);
            let damage = key_damage(key_val, kind);
            let index_damaged = match &pk {
                Some(set) => !set.contains(&row.rowid),
                None => missing_from_index.contains(&row.rowid),
            };
            let texts = check_utf8(
                &mut rf,
                &[
                    ("display_name", &row.display_name),
                    ("prayer_style", &row.prayer_style),
                    ("supporter_type", &row.supporter_type),
                ],
            );
            let raw_name = texts[0].clone().unwrap_or_default();
            let blank = is_blank(&raw_name);
            let key_bad = !(damage.is_empty() || kind == KeyKind::Name && blank);
            let key_valid = match (&norm, kind) {
                (Some(NormKey::Hex(_)), KeyKind::Hex) => true,
                (Some(NormKey::Text(_)), KeyKind::Hex) => !key_bad,
                (Some(NormKey::Text(_)), KeyKind::Name) => true,
                _ => false,
            };
            if index_damaged || key_bad {
                let mut what = Vec::new();
                if index_damaged {
                    what.push(
                        "missing from the primary-key index (only a full scan sees it)".to_string(),
                    );
                }
                if key_bad {
                    what.push(format!(
                        "key {} is damaged: {}",
                        show(key_val),
                        damage.join(", ")
                    ));
                }
                let (decision, done) = match ctx.policy {
                    Policy::Strict => (Decision::Quarantined, "quarantined (strict)".to_string()),
                    Policy::Repair if key_bad && !key_valid => (
                        Decision::Quarantined,
                        "no valid key remains after normalisation; quarantined".to_string(),
                    ),
                    Policy::Repair if key_bad => (
                        Decision::Repaired,
                        format!("key normalised to {}; written", norm_text(norm.as_ref())),
                    ),
                    Policy::Repair => (
                        Decision::Repaired,
                        "the row's data is intact; written (v2 builds its own indexes)".to_string(),
                    ),
                };
                rf.push(
                    RuleId::UserUnretrievable,
                    decision,
                    format!(
                        "user cannot be fetched by its own key: {}; {done}",
                        what.join("; ")
                    ),
                );
            }
            let name_base = raw_name.clone();
            if blank {
                rf.push(
                    RuleId::UserEmptyName,
                    Decision::Quarantined,
                    format!(
                        "display name {} is NULL, empty, or only whitespace and characters that show nothing; quarantined",
                        show(&row.display_name)
                    ),
                );
            }
            let test_name =
                !row.display_name.is_null() && ctx.opts.test_account_names.contains(&raw_name);
            let test_id = kind == KeyKind::Hex && norm.is_some() && norm == known_id;
            if test_name || test_id {
                rf.push(
                    RuleId::UserTestAccount,
                    Decision::Quarantined,
                    if test_id {
                        format!("the known corrupted test account id {KNOWN_CORRUPTED_USER_ID}; quarantined")
                    } else {
                        format!("display name '{}' is on the test-account list; quarantined", shown(&raw_name, 60))
                    },
                );
            }
            let problems = name_problems(&name_base);
            let name = if blank || problems.is_empty() {
                name_base
            } else {
                let repaired = repair_name(&name_base);
                match ctx.policy {
                    Policy::Repair => rf.push(
                        RuleId::UserName,
                        Decision::Repaired,
                        format!(
                            "display name '{}' has {}; repaired to '{}'",
                            shown(&name_base, 120),
                            problems.join(", "),
                            shown(&repaired, 120)
                        ),
                    ),
                    Policy::Strict => rf.push(
                        RuleId::UserName,
                        Decision::Quarantined,
                        format!(
                            "display name '{}' has {}; quarantined (strict)",
                            shown(&name_base, 120),
                            problems.join(", ")
                        ),
                    ),
                }
                repaired
            };
            let no_shape = NoShape::path_date_or_pending(&row.text_file_path);
            let (created, pending_time) = match check_local_time(
                &mut rf,
                ctx.policy,
                &ctx.opts.clock,
                "created_at",
                &row.created_at,
                no_shape,
            ) {
                TimeOutcome::At(t) => (Some(t), false),
                TimeOutcome::Pending => (None, true),
                _ => (None, false),
            };
            let supporter_since = match check_time(
                &mut rf,
                ctx.policy,
                "supporter_since",
                &row.supporter_since,
                true,
                NoShape::SetNull,
            ) {
                TimeOutcome::At(t) => Some(t),
                _ => None,
            };
            if let Some(why) = crate::text::short_text_too_wide("prayer_style", &row.prayer_style)
            {
                rf.push(RuleId::TextLength, Decision::Repaired, why);
            }
            let is_supporter = flag(&mut rf, "is_supporter", &row.is_supporter);
            let welcome_dismissed = flag(
                &mut rf,
                "welcome_message_dismissed",
                &row.welcome_message_dismissed,
            );
            let supporter_type = texts[2].clone().filter(|s| !s.is_empty()).filter(|s| {
                let fits = s.chars().count() <= MAX_SUPPORTER_TYPE;
                if !fits {
                    rf.push(
                        RuleId::Enum,
                        Decision::Repaired,
                        format!(
                            "supporter_type '{}' is longer than v2's {MAX_SUPPORTER_TYPE} characters and is no list of v1's badge keys; written NULL",
                            shown(s, 60)
                        ),
                    );
                }
                fits
            });
            let religious = if has_religious {
                let (value, changed) = religious(&row.religious_preference);
                if changed.is_some() {
                    rf.push(
                        RuleId::Enum,
                        Decision::Repaired,
                        format!(
                            "religious_preference {} is outside the v2 domain; set to '{value}'",
                            show(&row.religious_preference)
                        ),
                    );
                }
                value
            } else {
                "unspecified"
            };
            let archive_path = check_archive_path(
                &mut rf,
                &row.text_file_path,
                ctx.opts.archive_files,
                RecordArchive::User(created),
            );
            let fate = if rf.written() {
                Fate::Written
            } else {
                Fate::Quarantined
            };
            if let Some(n) = &norm {
                if let Err(holder) = users.index.insert(n, idx) {
                    users.collisions.push((holder, idx));
                }
            }
            if pending_time {
                users.pending_created.insert(idx, row.created_at.clone());
            }
            users.entries.push(UserEntry {
                prayer_style: texts[1]
                    .clone()
                    .filter(|s| !s.is_empty())
                    .map(crate::text::fit_short_text),
                rowid: row.rowid,
                is_supporter,
                invited_by: StoredRef::new(&row.invited_by),
                rf,
                norm,
                key_damaged: key_bad,
                empty_name: blank,
                name,
                created: PackedTime::new(created),
                pending_time,
                fate,
                religious,
                supporter_since: PackedTime::new(supporter_since),
                supporter_type,
                welcome_dismissed,
                archive_path,
                inviter: None,
                v2_id: 0,
            });
            Ok(())
        })?;
        ctx.sink.count_read(TABLE, n);
        if users.kind == KeyKind::Name {
            users.index.index_rewritten_names();
        }
        Ok(users)
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

    /// Settles every decision that needs the whole table: pending times, key collisions,
    /// duplicates, v2 ids and the invite tree.
    pub(crate) fn finalize(&mut self, policy: Policy) {
        self.settle_times();
        self.settle_key_collisions(policy);
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
