//! The plan's state: the public row types pass 2 hands out and the compact per-entity state
//! pass 1 builds (prayers, users), written by the rules and read by [`super::resolve`].

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::ids::hex_id;
use crate::keys::{KeyIndex, NormKey};
use crate::model::DetectError;
use crate::stored::{ByEntryWriter, StoredByEntry};
use crate::time::PackedTime;

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
    /// Each prayer's resolved `created_at` (NONE while pending, or when it has none): what
    /// `R-TIME` made of its row, its witness file's, the evidence's or the operator's. Pass 2
    /// reads it here instead of deciding again (8 bytes a prayer).
    created: Vec<PackedTime>,
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
        self.created.push(PackedTime::new(created));
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

    /// The resolved `created_at` of prayer `idx` (see [`PrayerStates::created`]).
    pub(crate) fn created(&self, idx: u32) -> Option<NaiveDateTime> {
        self.created[idx as usize].get()
    }

    /// Keeps the `created_at` prayer `idx` settles to (from evidence, its witness file or the
    /// operator).
    pub(crate) fn keep_created(&mut self, idx: u32, at: NaiveDateTime) {
        self.created[idx as usize] = PackedTime::new(Some(at));
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
    pub(super) fn by_rowid(&self, rowid: i64) -> Result<Option<ResolvedUser>, DetectError> {
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
