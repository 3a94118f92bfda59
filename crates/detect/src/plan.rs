//! The resolution plan: what pass 2 writes for every v1 row, decided once in pass 1.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use thywill_v1::{Generation, MarkRow, PrayerRow};

use crate::findings::Findings;
use crate::ids::hex_id;
use crate::keys::{KeyIndex, KeyKind, NormKey, RowidIndex};
use crate::model::{DetectError, Policy, TableCounts};
use crate::rules::prayers::PFate;
use crate::rules::{marks, prayers};
use crate::stored::{ByEntryWriter, StoredByEntry, StoredRows};
use crate::time::PackedTime;

/// What to do with one row in pass 2.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict<T> {
    /// Write these values.
    Write(T),
    /// Do not write the row; its disposition is recorded by a finding.
    Skip,
}

impl<T> Verdict<T> {
    /// The values to write, if any.
    pub fn into_option(self) -> Option<T> {
        match self {
            Verdict::Write(t) => Some(t),
            Verdict::Skip => None,
        }
    }
}

/// A v2 `users` row (without `text_archive_path`, which the archive stage fills).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedUser {
    /// The v1 row's rowid.
    pub rowid: i64,
    /// The v1 key as text (hex id, or display name for name-keyed files).
    pub v1_key: String,
    /// v2 id: the normalised hex id (G0/G1) or UUID v5 of `user:<display name>` (G2/G3).
    pub id: String,
    /// The display name after `R-USER-NAME`/`R-UTF8` repairs.
    pub display_name: String,
    /// `created_at` after `R-TIME` (also `updated_at`).
    pub created_at: NaiveDateTime,
    /// `christian`, `unspecified` or `other` after `R-ENUM`.
    pub religious_preference: String,
    /// `prayer_style`, as text.
    pub prayer_style: Option<String>,
    /// The resolved inviter's v2 id after `R-INVITE-TREE` (merged inviters point at the survivor).
    pub invited_by_user_id: Option<String>,
    /// `is_supporter` (G3; false elsewhere).
    pub is_supporter: bool,
    /// `supporter_since` (G3).
    pub supporter_since: Option<NaiveDateTime>,
    /// `supporter_type` (G3): v1's comma-separated badge keys.
    pub supporter_type: Option<String>,
    /// `welcome_message_dismissed`.
    pub welcome_dismissed: bool,
    /// False when the member holds a written (unexpired) grant of v1's `deactivated` role.
    pub is_active: bool,
    /// v1 `text_file_path` after `R-ARCHIVE-PATH` (relative to the archive root's parent as v1
    /// wrote it, or re-pointed, or `None`).
    pub v1_archive_path: Option<String>,
    /// The member's verified address from v1's e-mail database (`R-EMAIL`: lower-cased and
    /// trimmed), when the run has one and it is carried. Never log it: mask it first.
    #[serde(default)]
    pub email: Option<String>,
    /// When the member verified [`ResolvedUser::email`].
    #[serde(default)]
    pub email_verified_at: Option<NaiveDateTime>,
}

/// A v2 `content_flags` row carried over from v1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedFlag {
    /// The flag's v2 id: UUID v5 of `flag:<prayer id>`, so a re-run gives the same row.
    pub id: String,
    /// The flagger's v2 id when v1 recorded one that resolves, else `None`.
    pub flagged_by_user_id: Option<String>,
    /// The `flagged` attribute's time, else the prayer's `created_at`.
    pub flagged_at: NaiveDateTime,
    /// Always `carried over from v1`.
    pub reason: &'static str,
}

/// A v2 `prayers` row with its folded attributes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedPrayer {
    /// v2 id: the normalised v1 id (or UUID v5 of `prayer:<v1 key>` when it is not hex).
    pub id: String,
    /// The resolved author's v2 id (a merged author's survivor).
    pub author_id: String,
    /// The text after `R-UTF8` (10–5000 characters).
    pub text: String,
    /// `generated_prayer` after `R-UTF8`.
    pub generated_prayer: Option<String>,
    /// `project_tag` after `R-UTF8`.
    pub project_tag: Option<String>,
    /// `all` or `christians_only` after `R-ENUM`.
    pub target_audience: String,
    /// `created_at` after `R-TIME`.
    pub created_at: NaiveDateTime,
    /// The latest of `created_at` and the carried attributes' times.
    pub updated_at: NaiveDateTime,
    /// An `archived` attribute.
    pub is_archived: bool,
    /// An `answered` attribute (or an answer date / testimony).
    pub is_answered: bool,
    /// `answer_date` parsed, else the `answered` attribute's time; `None` unless answered.
    pub answered_at: Option<NaiveDateTime>,
    /// `answer_testimony`; `None` unless answered.
    pub testimony: Option<String>,
    /// The v1 `flagged` column or a `flagged` attribute, as a content flag.
    pub flag: Option<ResolvedFlag>,
    /// v1 `text_file_path` after `R-ARCHIVE-PATH`.
    pub v1_archive_path: Option<String>,
}

/// A v2 `prayer_marks` row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedMark {
    /// v2 id: the v1 mark id when it is valid hex, else UUID v5 of
    /// `mark:<prayer v2 id>:<user v2 id>:<marked_at as YYYY-MM-DD HH:MM:SS.ffffff>`.
    pub id: String,
    /// The prayer's v2 id.
    pub prayer_id: String,
    /// The member's v2 id (a merged member's survivor).
    pub user_id: String,
    /// `created_at` after `R-TIME`.
    pub marked_at: NaiveDateTime,
}

/// A v2 `user_roles` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedRoleGrant {
    /// The v1 `user_roles` rowid.
    pub rowid: i64,
    /// The member's v2 id.
    pub user_id: String,
    /// `admin` or `moderator`.
    pub role: String,
    /// `granted_at` after `R-TIME`.
    pub granted_at: NaiveDateTime,
    /// The granting member's v2 id when it resolves.
    pub granted_by_user_id: Option<String>,
}

/// A v2 `invites` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedInvite {
    /// The v1 `invitetoken` rowid.
    pub rowid: i64,
    /// v2 id: UUID v5 of `invite:<token>`.
    pub id: String,
    /// The token.
    pub token: String,
    /// The creator's v2 id (`None` for `system` or a member that does not resolve).
    pub created_by_user_id: Option<String>,
    /// `expires_at − 12 h`, never later than the first use.
    pub created_at: NaiveDateTime,
    /// `expires_at` after `R-TIME`.
    pub expires_at: NaiveDateTime,
    /// `max_uses` (later files) or 1 (files with `used`), in v2's integer range (`R-INVITE-COUNT`).
    pub max_uses: Option<i32>,
    /// `usage_count` (later files) or `used` as 1/0, in v2's integer range (`R-INVITE-COUNT`).
    pub use_count: i32,
    /// The claimer's `created_at`, when there is a claimer.
    pub used_at: Option<NaiveDateTime>,
    /// The claimer's v2 id.
    pub used_by_user_id: Option<String>,
    /// `token_type = 'admin'`.
    pub is_admin_token: bool,
}

/// A v2 `sessions` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedSession {
    /// The v1 `session` rowid.
    pub rowid: i64,
    /// The session id (kept).
    pub id: String,
    /// The member's v2 id.
    pub user_id: String,
    /// `created_at` after `R-TIME`.
    pub created_at: NaiveDateTime,
    /// `expires_at` after `R-TIME`.
    pub expires_at: NaiveDateTime,
    /// `created_at`.
    pub last_seen_at: NaiveDateTime,
    /// `device_info`.
    pub user_agent: Option<String>,
    /// `ip_address`.
    pub ip_address: Option<String>,
}

/// One `migration_id_map` row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct IdMapEntry {
    /// `user` or `prayer`.
    pub entity: &'static str,
    /// The v1 key as text.
    pub v1_key: String,
    /// The v2 id (for a merged duplicate: the survivor's).
    pub v2_id: String,
}

/// Compact per-prayer state kept between the passes (never the text, never the marks, nothing
/// pass 2 can re-derive from the row it is given): the key set, whose dense id column holds a
/// hex-keyed prayer's v2 id (its key), dense columns indexed by prayer entry (the scan order),
/// about 38 bytes a prayer in all, and sparse side maps for the few prayers whose key is not hex,
/// with folded attributes or with a repaired archive path.
#[derive(Debug, Default)]
pub(crate) struct PrayerStates {
    /// The prayers' normalised keys → entry (and each hex-keyed entry's v2 id).
    pub(crate) keys: KeyIndex,
    /// The v2 id of each prayer whose key is not hex (UUID v5 of its key text).
    other_ids: HashMap<u32, u128>,
    /// The resolved `created_at` of the prayers pass 2 cannot read again from their row: those
    /// settled from evidence, and those flagged by the v1 column (their flag's time, which
    /// [`Plan::flags`] gives without a row). Every other written prayer's is what `R-TIME`
    /// makes of its row, which pass 2 reads anyway.
    kept_created: HashMap<u32, PackedTime>,
    /// The user entry the author reference names ([`NO_ENTRY`] when it names none); emptied
    /// once the authors are resolved (pass 2 resolves the row's reference again).
    pub(crate) authors: Vec<u32>,
    /// Where each prayer's fate stands.
    pub(crate) fates: Vec<PFate>,
    /// [`FLAGGED_COLUMN`], [`PATH_REPAIRED`] and [`FLAG_ATTRIBUTE`] bits.
    pub(crate) bits: Vec<u8>,
    /// The prayers with more to say (attributes, a re-pointed archive path) whose record may
    /// still change: all of them until [`PrayerStates::take_settled_extras`], the pending ones
    /// after.
    pub(crate) extras: HashMap<u32, Box<PrayerExtras>>,
    /// The others' records, out of memory (pass 2 reads each once).
    stored_extras: StoredByEntry<PrayerExtras>,
    /// The operator's values of the prayers the decisions file carries (`--decisions`).
    pub(crate) operator: HashMap<u32, OperatorPrayer>,
    /// The damaged values (text, `created_at`, author) whose witness file holds them whole:
    /// restored under `repair`, only counted under `strict` (decisions.md §50).
    pub(crate) restorable: u64,
}

/// What a carried prayer gets instead of its row's value: the decisions file's (`--decisions`)
/// or, for a damaged value, its witness file's (decisions.md §50).
#[derive(Clone, Debug, Default)]
pub(crate) struct OperatorPrayer {
    /// The text (`R-TEXT-LENGTH`).
    pub(crate) text: Option<String>,
    /// The author's v2 id (`R-ORPHAN`: the author named by display name).
    pub(crate) author: Option<u128>,
}

/// An author reference that names no user entry.
pub(crate) const NO_ENTRY: u32 = u32::MAX;
/// The v1 `flagged` column is set.
pub(crate) const FLAGGED_COLUMN: u8 = 1;
/// `R-ARCHIVE-PATH` changed the path: the carried one is in [`PrayerExtras::archive_path`] (else
/// pass 2 takes it from the row).
pub(crate) const PATH_REPAIRED: u8 = 2;
/// A `flagged` attribute is folded into the side record ([`PrayerExtras::flag_attr`]).
pub(crate) const FLAG_ATTRIBUTE: u8 = 4;

/// What a prayer's attributes fold into it, and a re-pointed archive path.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PrayerExtras {
    /// The latest folded attribute's time.
    pub(crate) updated_at: Option<NaiveDateTime>,
    pub(crate) is_archived: bool,
    pub(crate) answered: Option<NaiveDateTime>,
    pub(crate) answer_date: Option<NaiveDateTime>,
    pub(crate) testimony: Option<Box<str>>,
    pub(crate) flag_attr: Option<(NaiveDateTime, Option<u128>)>,
    /// The carried path when [`PATH_REPAIRED`] is set.
    pub(crate) archive_path: Option<Box<str>>,
}

impl PrayerStates {
    /// Adds a prayer under its normalised key (`None`: it has none) and v2 id; returns its
    /// entry. A key another prayer already holds keeps pointing at that prayer.
    pub(crate) fn push(
        &mut self,
        key: Option<&NormKey>,
        v2_id: u128,
        created: Option<NaiveDateTime>,
        author: u32,
        fate: PFate,
        bits: u8,
    ) -> u32 {
        let idx = self.fates.len() as u32;
        if let Some(k) = key {
            let _ = self.keys.insert(k, idx);
        }
        match key {
            Some(NormKey::Hex(h)) => debug_assert_eq!(*h, v2_id),
            _ => {
                self.other_ids.insert(idx, v2_id);
            }
        }
        if bits & FLAGGED_COLUMN != 0 {
            self.kept_created.insert(idx, PackedTime::new(created));
        }
        self.authors.push(author);
        self.fates.push(fate);
        self.bits.push(bits);
        idx
    }

    /// Number of prayers.
    pub(crate) fn len(&self) -> usize {
        self.fates.len()
    }

    /// The v2 id of prayer `idx`.
    pub(crate) fn v2_id(&self, idx: u32) -> u128 {
        match self.other_ids.get(&idx) {
            Some(&id) => id,
            None => self.keys.hex_of(idx),
        }
    }

    /// The `created_at` kept for prayer `idx` (see [`PrayerStates::kept_created`]).
    pub(crate) fn kept_created(&self, idx: u32) -> Option<Option<NaiveDateTime>> {
        self.kept_created.get(&idx).map(|t| t.get())
    }

    /// Keeps the `created_at` a pending prayer settles to.
    pub(crate) fn keep_created(&mut self, idx: u32, at: NaiveDateTime) {
        self.kept_created.insert(idx, PackedTime::new(Some(at)));
    }

    /// The side record of prayer `idx`, created on demand (never for a stored one).
    pub(crate) fn extras_mut(&mut self, idx: u32) -> &mut PrayerExtras {
        debug_assert!(
            !matches!(self.stored_extras.get(idx), Ok(Some(_))),
            "prayer {idx}'s record was already stored"
        );
        self.extras.entry(idx).or_default()
    }

    /// Takes the side records of every prayer that is not pending (in entry order): once the
    /// attributes are read, only a pending prayer's record can still change.
    pub(crate) fn take_settled_extras(&mut self) -> Vec<(u32, Box<PrayerExtras>)> {
        let mut settled = Vec::new();
        let mut kept = HashMap::new();
        for (idx, e) in std::mem::take(&mut self.extras) {
            if self.fates[idx as usize] == PFate::Pending {
                kept.insert(idx, e);
            } else {
                settled.push((idx, e));
            }
        }
        self.extras = kept;
        settled.sort_unstable_by_key(|s| s.0);
        settled
    }

    /// Notes that prayer `idx`'s side record holds a folded flag ([`FLAG_ATTRIBUTE`]).
    pub(crate) fn set_flag_attribute(&mut self, idx: u32) {
        self.bits[idx as usize] |= FLAG_ATTRIBUTE;
    }

    /// The settled side records, stored out of memory (see [`Self::take_settled_extras`]).
    pub(crate) fn set_stored_extras(&mut self, stored: StoredByEntry<PrayerExtras>) {
        self.stored_extras = stored;
    }

    /// The side record of prayer `idx` (the default when it has none).
    pub(crate) fn extras(&self, idx: u32) -> Result<Cow<'_, PrayerExtras>, DetectError> {
        if let Some(e) = self.extras.get(&idx) {
            return Ok(Cow::Borrowed(&**e));
        }
        Ok(Cow::Owned(self.stored_extras.get(idx)?.unwrap_or_default()))
    }

    /// The v2 id of prayer `idx` when it is written.
    pub(crate) fn written_v2_id(&self, idx: u32) -> Option<u128> {
        (self.fates.get(idx as usize) == Some(&PFate::Written)).then(|| self.v2_id(idx))
    }
}

/// Each user entry's v2 id after merges (`None`: it ends in no v2 user), and the written users'
/// `created_at`: 4 bytes an entry and 24 a written user (an `Option<u128>` alone takes 32 and a
/// hash map by id more).
#[derive(Debug, Default)]
pub(crate) struct UserTargets {
    /// Position in `ids` of each entry's target, or [`NO_TARGET`].
    of_entry: Vec<u32>,
    /// Every target, ascending.
    ids: Vec<u128>,
    /// The `created_at` of `ids[i]`.
    created: Vec<PackedTime>,
}

/// [`UserTargets::of_entry`] of an entry that ends in no v2 user.
const NO_TARGET: u32 = u32::MAX;

impl UserTargets {
    /// From the target of each of `entries` entries and the written users' (v2 id,
    /// `created_at`).
    pub(crate) fn new(
        entries: u32,
        target: impl Fn(u32) -> Option<u128>,
        written: impl Iterator<Item = (u128, Option<NaiveDateTime>)>,
    ) -> Self {
        let mut ids: Vec<u128> = (0..entries).filter_map(&target).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        let mut created = vec![PackedTime::NONE; ids.len()];
        for (id, at) in written {
            if let Ok(p) = ids.binary_search(&id) {
                created[p] = PackedTime::new(at);
            }
        }
        // `target` is asked again rather than its answers kept: a list of them would take 32
        // bytes an entry at the users phase, which is L's peak.
        let of_entry = (0..entries)
            .map(|i| {
                target(i)
                    .and_then(|t| ids.binary_search(&t).ok())
                    .map_or(NO_TARGET, |p| p as u32)
            })
            .collect();
        UserTargets {
            of_entry,
            ids,
            created,
        }
    }

    /// The v2 id entry `idx` ends in.
    pub(crate) fn get(&self, idx: u32) -> Option<u128> {
        let p = *self.of_entry.get(idx as usize)?;
        self.ids.get(p as usize).copied()
    }

    /// The `created_at` of the written user `id`.
    pub(crate) fn created_of(&self, id: u128) -> Option<NaiveDateTime> {
        let p = self.ids.binary_search(&id).ok()?;
        self.created[p].get()
    }
}

/// The written users, out of memory: each [`ResolvedUser`] a JSON line in a temporary file, in
/// v1 rowid order; in memory only where each one starts. Read back one user at a time (hence
/// the `Result`s).
#[derive(Debug, Default)]
pub(crate) struct UserStates(StoredByEntry<ResolvedUser>);

/// Writes the [`UserStates`], one written user at a time in v1 rowid order.
pub(crate) struct UserStatesWriter(ByEntryWriter<ResolvedUser>);

impl UserStatesWriter {
    /// No user yet.
    pub(crate) fn new() -> Self {
        UserStatesWriter(ByEntryWriter::new())
    }

    /// Number of users pushed: the position the next one takes.
    pub(crate) fn len(&self) -> u32 {
        self.0.len() as u32
    }

    /// Adds the next written user from its resolved values.
    pub(crate) fn push(&mut self, u: ResolvedUserParts<'_>) {
        let position = self.len();
        self.0.push(
            position,
            &ResolvedUser {
                rowid: u.rowid,
                v1_key: u.v1_key.to_string(),
                id: hex_id(u.id),
                display_name: u.display_name.to_string(),
                created_at: u.created_at,
                religious_preference: u.religious.to_string(),
                prayer_style: u.prayer_style.map(str::to_string),
                invited_by_user_id: u.inviter.map(hex_id),
                is_supporter: u.is_supporter,
                supporter_since: u.supporter_since,
                supporter_type: u.supporter_type.map(str::to_string),
                welcome_dismissed: u.welcome_dismissed,
                // Settled by the grants, read after the users: see [`Plan::user`].
                is_active: true,
                v1_archive_path: u.v1_archive_path.map(str::to_string),
                // Settled by `R-EMAIL`, read after the users: see [`Plan::user`].
                email: None,
                email_verified_at: None,
            },
        );
    }

    /// Flushes the users.
    pub(crate) fn finish(self) -> Result<UserStates, DetectError> {
        Ok(UserStates(self.0.finish()?))
    }
}

impl UserStates {
    /// Number of written users.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// User `i` (its position in v1 rowid order).
    pub(crate) fn get(&self, i: usize) -> Result<ResolvedUser, DetectError> {
        self.0
            .get(i as u32)?
            .ok_or(DetectError::Spill(std::io::ErrorKind::UnexpectedEof.into()))
    }

    /// Every user, in v1 rowid order (one sequential read).
    pub(crate) fn iter(
        &self,
    ) -> impl ExactSizeIterator<Item = Result<ResolvedUser, DetectError>> + '_ {
        self.0.iter()
    }

    /// The user of v1 rowid `rowid` (a binary search by positioned reads).
    fn by_rowid(&self, rowid: i64) -> Result<Option<ResolvedUser>, DetectError> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let u = self.get(mid)?;
            match u.rowid.cmp(&rowid) {
                std::cmp::Ordering::Equal => return Ok(Some(u)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }
}

/// A written user's values as the user rules settle them (borrowed), for
/// [`UserStatesWriter::push`].
pub(crate) struct ResolvedUserParts<'a> {
    pub(crate) rowid: i64,
    pub(crate) v1_key: &'a str,
    pub(crate) id: u128,
    pub(crate) display_name: &'a str,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) religious: &'static str,
    pub(crate) prayer_style: Option<&'a str>,
    pub(crate) inviter: Option<u128>,
    pub(crate) is_supporter: bool,
    pub(crate) supporter_since: Option<NaiveDateTime>,
    pub(crate) supporter_type: Option<&'a str>,
    pub(crate) welcome_dismissed: bool,
    pub(crate) v1_archive_path: Option<&'a str>,
}

/// The id map's user rows without their strings: a written user's key and id are in its
/// compact record; the few others (merged into a survivor) are kept aside.
#[derive(Debug, Default)]
pub(crate) struct UserIdMap {
    /// (v1 key, v2 id) of entries whose row is not a written user (merged duplicates).
    pub(crate) others: Vec<(String, u128)>,
    /// The rows in id-map order: `i < users.len()` is `users[i]`, else `others[i − users.len()]`.
    pub(crate) order: Vec<u32>,
}

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
            Some(i) if self.prayers.written_v2_id(i).is_some() => prayers::resolve(self, i, row),
            _ => Ok(Verdict::Skip),
        }
    }

    /// The v2 `content_flags` rows: the prayer's v2 id and its flag, for every written prayer
    /// v1 flagged (column or attribute), in prayer order. Read from the plan's state, not from
    /// v1; fails only when the plan's temporary file cannot be read back.
    pub fn flags(&self) -> impl Iterator<Item = Result<(String, ResolvedFlag), DetectError>> + '_ {
        (0..self.prayers.len() as u32).filter_map(|idx| prayers::flag(self, idx).transpose())
    }

    /// What to write for a v1 mark row in pass 2 (streamed in any order).
    pub fn resolve_mark(&self, row: &MarkRow) -> Verdict<ResolvedMark> {
        if self.mark_skips.binary_search(&row.rowid).is_ok() {
            return Verdict::Skip;
        }
        marks::resolve(self, row)
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
