//! The archive tree as a second witness (`spec/rules.md`, decisions.md §47): the prayers and
//! prayer marks the v1 archive tree holds and the database lost, as v2 rows to write
//! (`R-ARCHIVE-ONLY`, decision `recovered`, under `repair` only: [`crate::Plan::apply_recovery`]).
//!
//! - **The witness** of a prayer id is one file: of the prayer files holding the id, the one
//!   the id's first prayer row names in `text_file_path`, else the newest (latest `Submitted`,
//!   then the greatest path: a `heal-archives` copy `_2` after its original). Only the witness
//!   speaks: another file claiming the id adds nothing.
//! - **A prayer** is recovered when no prayer row has its id and its witness is whole: a
//!   32-hex-digit id, an author who is a written v2 member of exactly that display name, a
//!   request text of 1–5000 characters after trimming, no NUL. Values: `created_at` from
//!   `Submitted`, the request and generated texts, `Project`/`Audience`, answered (the last
//!   `marked this prayer as answered` line, else the last testimony line), the last testimony,
//!   archived when the last archived/restored line says archived; every local time through the
//!   v1 server's clock.
//! - **Marks**: for each prayer that ends in v2 (written or recovered), the witness's `prayed
//!   this prayer` lines are grouped by (member, minute as written); the member is all of the
//!   text between ` - ` and ` prayed this prayer` and must be a written v2 member of exactly
//!   that name. In a group of `L` lines where v2 gets `W` marks of that prayer and member whose
//!   `created_at` as stored (local when made online, UTC offline: as v1 wrote the line) lies in
//!   that minute, the lines `W..L` (in file order, 0-based `n`) are recovered: `marked_at` = the
//!   minute through the clock plus `n` microseconds (each same-minute line is its own act, and
//!   v2 keeps one mark per
//!   instant), id UUID v5 of `mark:<prayer>:<user>:<YYYY-MM-DD HH:MM>:<n>`. A line whose
//!   instant a written mark already holds is not recovered.
//!
//! - **A member**: a registration line whose name no user row holds exactly, when the name is
//!   clean, not `admin`, no test account and no written member's after folding; id UUID v5 of
//!   `user:<name>`, joined at the line's time, invited by the member the line names. Members
//!   come first, so the prayers and marks of a recovered member resolve.
//!
//! Everything not recovered stays a reported archive finding. The result is sorted, so a run
//! gives the same rows every time.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDateTime};
use thywill_spill::{records_for_budget, ExternalSort, Record};
use thywill_v1::archive::{Key, V1Action, V1Archive, V1PrayerFile};
use thywill_v1::{MarkRow, PrayerRow, UserRow, V1Database};

use crate::clock::LocalColumn;
use crate::ids::{hex_id, user_id_for_name, v5};
use crate::model::DetectError;
use crate::plan::{Plan, ResolvedMark, ResolvedPrayer, ResolvedUser, Verdict};
use crate::text::fold_name;

/// v2's longest prayer text, in characters.
const MAX_TEXT_CHARS: usize = 5000;
/// v2's longest project tag, in characters.
const MAX_TAG_CHARS: usize = 100;

/// A prayer written to v2 from its archive file.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveredPrayer {
    /// The v2 row's values.
    pub prayer: ResolvedPrayer,
    /// The witness file (relative to the v1 root).
    pub path: String,
    /// The author's display name as the file writes it.
    pub author: String,
    /// The `Submitted` line's time as written.
    pub submitted: String,
}

/// A prayer mark written to v2 from a `prayed this prayer` line.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveredMark {
    /// The v2 row's values.
    pub mark: ResolvedMark,
    /// The witness file (relative to the v1 root).
    pub path: String,
    /// The line's 1-based number in it.
    pub line: u32,
    /// The member as the line names them.
    pub member: String,
    /// The line's time as written.
    pub at: String,
    /// The marks v2 gets from the database for this prayer, member and minute.
    pub held: u32,
}

/// A member written to v2 from a registration line of `users/YYYY_MM_users.txt`.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveredUser {
    /// The v2 row's values.
    pub user: ResolvedUser,
    /// The registrations file (relative to the v1 root).
    pub path: String,
    /// The line's 1-based number in it.
    pub line: u32,
    /// The line's time as written.
    pub at: String,
}

/// What the archive tree adds to v2: recovered members (by registration), prayers (by id) and
/// marks (by prayer, member, minute, line).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovery {
    /// The recovered members.
    pub users: Vec<RecoveredUser>,
    /// The recovered prayers.
    pub prayers: Vec<RecoveredPrayer>,
    /// The recovered marks (of written and of recovered prayers).
    pub marks: Vec<RecoveredMark>,
}

impl Recovery {
    /// True when nothing is recovered.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.prayers.is_empty() && self.marks.is_empty()
    }
}

/// The witnesses of the tree's prayer ids and what the database says about them.
struct Witnesses {
    /// Files by prayer id key, in path order.
    files: BTreeMap<Key, Vec<usize>>,
    /// Keys some prayer row holds.
    with_row: HashSet<Key>,
    /// The file the first row of a key names in `text_file_path`.
    named: HashMap<Key, usize>,
    /// The v2 id of each key's written prayer.
    written: HashMap<Key, String>,
}

/// What the tree adds under `plan` (the policy is not consulted: `thywill-analyze` reports
/// it under `strict` too; only [`Plan::apply_recovery`] writes it). Reads the prayer and
/// mark rows once each and every witness file once.
pub fn recover(
    db: &V1Database,
    archive: &V1Archive,
    plan: &Plan,
    test_account_names: &[String],
) -> Result<Recovery, DetectError> {
    let mut names: HashMap<String, String> = HashMap::new();
    for u in plan.users() {
        let u = u?;
        names.insert(u.display_name, u.id);
    }
    let mut out = Recovery {
        users: recover_users(db, archive, plan, test_account_names, &mut names)?,
        ..Recovery::default()
    };
    let w = witnesses(db, archive, plan)?;
    // (prayer v2 id, witness file)
    let mut targets: Vec<(String, usize)> = Vec::new();
    for (key, files) in &w.files {
        let i = match w.named.get(key) {
            Some(i) => *i,
            None => newest(archive, files),
        };
        if let Some(id) = w.written.get(key) {
            targets.push((id.clone(), i));
        } else if !w.with_row.contains(key) {
            let file = archive.prayers.read(&archive.root, i)?;
            if let Some(p) = recover_prayer(plan, &names, &file, archive.prayers.path(i)) {
                targets.push((p.prayer.id.clone(), i));
                out.prayers.push(p);
            }
        }
    }
    out.prayers.sort_by(|a, b| a.prayer.id.cmp(&b.prayer.id));
    out.marks = recover_marks(db, archive, plan, &names, &targets)?;
    Ok(out)
}

/// True for a name v2 takes as it is and nobody could take for another's: trimmed, 1–100
/// characters, no control character, at least one letter or digit, not `admin`.
fn clean_name(name: &str) -> bool {
    name.trim() == name
        && (1..=100).contains(&name.chars().count())
        && !name.chars().any(char::is_control)
        && name.chars().any(char::is_alphanumeric)
        // v1 makes a member named exactly `admin` an admin: not from a line
        && name != "admin"
}

/// The members of the registration lines no user row holds by exact name (earliest line of a
/// name first), when the name is clean, no test account, and no written or recovered member's
/// after folding (`R-USER-DUPLICATE`); `names` gains them, so their prayers and marks resolve.
fn recover_users(
    db: &V1Database,
    archive: &V1Archive,
    plan: &Plan,
    test_account_names: &[String],
    names: &mut HashMap<String, String>,
) -> Result<Vec<RecoveredUser>, DetectError> {
    if archive.registrations.is_empty() {
        return Ok(Vec::new());
    }
    let rows: HashSet<String> = db
        .read_all::<UserRow>()?
        .iter()
        .filter_map(|u| u.display_name.to_text_lossy().map(|n| n.into_owned()))
        .collect();
    let mut folded: HashSet<String> = names.keys().map(|n| fold_name(n)).collect();
    let mut lines: Vec<_> = archive.registrations.iter().collect();
    lines.sort_by(|a, b| (a.record.at.at, &a.path, a.line).cmp(&(b.record.at.at, &b.path, b.line)));
    let mut out = Vec::new();
    for l in lines {
        let name = &l.record.name;
        let test = test_account_names.iter().any(|t| t == name);
        if rows.contains(name) || test || !clean_name(name) || folded.contains(&fold_name(name)) {
            continue;
        }
        let Some(created_at) = utc(plan, l.record.at.at) else {
            continue;
        };
        let inviter = l
            .record
            .inviter
            .as_ref()
            .and_then(|i| names.get(i))
            .cloned();
        let id = hex_id(user_id_for_name(name));
        folded.insert(fold_name(name));
        names.insert(name.clone(), id.clone());
        out.push(RecoveredUser {
            user: recovered_user(id, name, created_at, inviter),
            path: l.path.clone(),
            line: l.line as u32,
            at: l.record.at.raw.clone(),
        });
    }
    Ok(out)
}

/// A member's v2 values from a registration line: v1's defaults for everything it does not say.
fn recovered_user(
    id: String,
    name: &str,
    created_at: NaiveDateTime,
    inviter: Option<String>,
) -> ResolvedUser {
    ResolvedUser {
        rowid: 0,
        v1_key: name.to_string(),
        id,
        display_name: name.to_string(),
        created_at,
        religious_preference: "unspecified".into(),
        prayer_style: None,
        invited_by_user_id: inviter,
        is_supporter: false,
        supporter_since: None,
        supporter_type: None,
        welcome_dismissed: false,
        is_active: true,
        v1_archive_path: None,
        email: None,
        email_verified_at: None,
    }
}

/// Groups the prayer files by id and reads the prayer rows: which ids have a row, which file a
/// row names, which prayers are written.
fn witnesses(db: &V1Database, archive: &V1Archive, plan: &Plan) -> Result<Witnesses, DetectError> {
    let index = &archive.prayers;
    let mut w = Witnesses {
        files: BTreeMap::new(),
        with_row: HashSet::new(),
        named: HashMap::new(),
        written: HashMap::new(),
    };
    for i in 0..index.len() {
        w.files.entry(index.entry(i).id).or_default().push(i);
    }
    if w.files.is_empty() {
        return Ok(w);
    }
    db.for_each_ref::<PrayerRow, DetectError, _>(|row| {
        let id = row.id.to_text_lossy().unwrap_or_default();
        let key = archive.prayer_key(&id);
        let Some(files) = w.files.get(&key) else {
            return Ok(());
        };
        if w.with_row.insert(key) {
            let path = row.text_file_path.to_text_lossy();
            let named = path
                .as_deref()
                .and_then(|p| archive.resolve_db_path(p))
                .and_then(|rel| files.iter().find(|i| index.path(**i) == rel));
            if let Some(i) = named {
                w.named.insert(key, *i);
            }
        }
        if let std::collections::hash_map::Entry::Vacant(e) = w.written.entry(key) {
            if let Verdict::Write(p) = plan.resolve_prayer(row)? {
                e.insert(p.id);
            }
        }
        Ok(())
    })?;
    Ok(w)
}

/// The newest of `files`: the latest `Submitted`, then the greatest path.
pub(crate) fn newest(archive: &V1Archive, files: &[usize]) -> usize {
    let index = &archive.prayers;
    files
        .iter()
        .copied()
        .max_by(|a, b| {
            (index.entry(*a).submitted, index.path(*a))
                .cmp(&(index.entry(*b).submitted, index.path(*b)))
        })
        .unwrap_or(0)
}

/// A local time of the tree (minute precision) as UTC, through the plan's clock.
fn utc(plan: &Plan, local: NaiveDateTime) -> Option<NaiveDateTime> {
    let s = local.format("%Y-%m-%d %H:%M:%S").to_string();
    plan.clock
        .parse_str(&s, LocalColumn::Local)
        .map(|l| l.parsed.at)
}

/// The lower-case id of a file's first line when it is 32 hex digits (trimmed).
fn hex32(id: &str) -> Option<String> {
    let id = id.trim();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_lowercase())
}

/// The prayer of an archive-only witness file, when it is whole (see the module doc).
fn recover_prayer(
    plan: &Plan,
    names: &HashMap<String, String>,
    file: &V1PrayerFile,
    path: &str,
) -> Option<RecoveredPrayer> {
    let id = hex32(&file.id)?;
    let author_id = names.get(&file.author)?.clone();
    let nul = |s: &str| s.contains('\0');
    if !whole_text(&file.text) || file.generated_prayer.as_deref().is_some_and(nul) {
        return None;
    }
    let created_at = utc(plan, file.submitted.at)?;
    let state = activity_state(plan, file)?;
    let project_tag = file
        .meta("Project")
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TAG_CHARS && !nul(t))
        .map(str::to_string);
    let target_audience = match file.meta("Audience").map(str::trim) {
        None | Some("") | Some("all") => "all",
        // R-ENUM: a repair may never widen who can see a prayer
        Some(_) => "christians_only",
    };
    let prayer = ResolvedPrayer {
        id,
        author_id,
        text: file.text.clone(),
        generated_prayer: file.generated_prayer.clone(),
        project_tag,
        target_audience: target_audience.to_string(),
        created_at,
        updated_at: state.latest.map_or(created_at, |t| t.max(created_at)),
        is_archived: state.archived,
        is_answered: state.answered_at.is_some(),
        answered_at: state.answered_at,
        testimony: state.testimony,
        flag: None,
        v1_archive_path: None,
    };
    Some(RecoveredPrayer {
        prayer,
        path: path.to_string(),
        author: file.author.clone(),
        submitted: file.submitted.raw.clone(),
    })
}

/// True for a request text v2 takes as it is: 1–5000 characters after trimming, at most 5000
/// in all, no NUL.
pub(crate) fn whole_text(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= MAX_TEXT_CHARS && !text.contains('\0')
}

/// A prayer's state as its activity lines leave it.
struct ActivityState {
    archived: bool,
    answered_at: Option<NaiveDateTime>,
    testimony: Option<String>,
    /// The latest time of a line that changes the state.
    latest: Option<NaiveDateTime>,
}

/// Folds the answered, testimony and archived/restored lines of `file` (in file order); `None`
/// when a time cannot be read through the clock.
fn activity_state(plan: &Plan, file: &V1PrayerFile) -> Option<ActivityState> {
    let mut s = ActivityState {
        archived: false,
        answered_at: None,
        testimony: None,
        latest: None,
    };
    let (mut answered, mut testified) = (None, None);
    for a in file.activity.iter().flatten() {
        let at = || utc(plan, a.at.at);
        match &a.action {
            V1Action::MarkedAnswered => answered = Some(at()?),
            V1Action::Testimony(t) if !t.trim().is_empty() => {
                testified = Some(at()?);
                s.testimony = Some(t.trim().to_string());
            }
            V1Action::Archived => s.archived = true,
            V1Action::Restored => s.archived = false,
            _ => continue,
        }
        let t = at()?;
        s.latest = Some(s.latest.map_or(t, |l| l.max(t)));
    }
    s.answered_at = answered.or(testified);
    Some(s)
}

/// Memory for the marks' sort records before they spill to temporary files.
const MEMORY_BUDGET: usize = 16 << 20;

/// One act of prayer as the marks' recovery sorts it: a written mark (`side` 0, its instant) or
/// a witness line (`side` 1, its file and line), ordered by (prayer, member, UTC minute), the
/// written marks first, the lines in file order. Fixed-size, so the sort spills to temporary
/// files and the memory does not grow with the number of marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Act {
    prayer: u128,
    user: u128,
    /// Unix minutes.
    minute: i64,
    side: u8,
    file: u32,
    line: u32,
    /// A written mark's instant, Unix microseconds.
    micros: i64,
}

impl Record for Act {
    const SIZE: usize = 16 + 16 + 8 + 1 + 4 + 4 + 8;

    fn encode(&self, out: &mut [u8]) {
        out[..16].copy_from_slice(&self.prayer.to_be_bytes());
        out[16..32].copy_from_slice(&self.user.to_be_bytes());
        out[32..40].copy_from_slice(&self.minute.to_le_bytes());
        out[40] = self.side;
        out[41..45].copy_from_slice(&self.file.to_le_bytes());
        out[45..49].copy_from_slice(&self.line.to_le_bytes());
        out[49..57].copy_from_slice(&self.micros.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        let take = |r: std::ops::Range<usize>| -> [u8; 16] {
            let mut x = [0u8; 16];
            x[..r.len()].copy_from_slice(&b[r]);
            x
        };
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let i64_at =
            |i: usize| i64::from_le_bytes(take(i..i + 8)[..8].try_into().unwrap_or_default());
        Act {
            prayer: u128::from_be_bytes(take(0..16)),
            user: u128::from_be_bytes(take(16..32)),
            minute: i64_at(32),
            side: b[40],
            file: u32_at(41),
            line: u32_at(45),
            micros: i64_at(49),
        }
    }
}

impl Act {
    fn group(&self) -> (u128, u128, i64) {
        (self.prayer, self.user, self.minute)
    }
}

fn hex128(id: &str) -> Option<u128> {
    u128::from_str_radix(id, 16).ok()
}

fn unix_minute(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp().div_euclid(60)
}

/// The marks of the witness lines beyond what v2 gets from the database (module doc): the
/// witness lines and the written marks of their prayers go through an external sort, and the
/// groups are settled one at a time.
fn recover_marks(
    db: &V1Database,
    archive: &V1Archive,
    plan: &Plan,
    names: &HashMap<String, String>,
    targets: &[(String, usize)],
) -> Result<Vec<RecoveredMark>, DetectError> {
    let mut sort = ExternalSort::<Act>::with_limit(records_for_budget::<Act>(MEMORY_BUDGET));
    let mut prayers: HashSet<u128> = HashSet::new();
    for (prayer, i) in targets {
        let Some(p) = hex128(prayer) else { continue };
        let file = archive.prayers.read(&archive.root, *i)?;
        for a in file.prayed() {
            let Some(user) = names.get(&a.name).and_then(|u| hex128(u)) else {
                continue;
            };
            prayers.insert(p);
            sort.push(Act {
                prayer: p,
                user,
                // the line's minute as v1 wrote it: local, or UTC for an offline mark
                minute: unix_minute(a.at.at),
                side: 1,
                file: *i as u32,
                line: a.line as u32,
                micros: 0,
            })?;
        }
    }
    if prayers.is_empty() {
        return Ok(Vec::new());
    }
    db.for_each_ref::<MarkRow, DetectError, _>(|row| {
        // A mark's minute as v1 stored it (local when made online, UTC offline), as the line
        // that v1 wrote for it shows it; a time no shape fits has no line to meet.
        let Some(stored) = crate::time::parse_value(&row.created_at) else {
            return Ok(());
        };
        if let Verdict::Write(m) = plan.resolve_mark(row) {
            if let (Some(p), Some(u)) = (hex128(&m.prayer_id), hex128(&m.user_id)) {
                if prayers.contains(&p) {
                    sort.push(Act {
                        prayer: p,
                        user: u,
                        minute: unix_minute(stored.at),
                        side: 0,
                        file: 0,
                        line: 0,
                        micros: m.marked_at.and_utc().timestamp_micros(),
                    })?;
                }
            }
        }
        Ok(())
    })?;
    let mut settle = Settle {
        plan,
        archive,
        file: None,
        out: Vec::new(),
    };
    let mut group: Vec<Act> = Vec::new();
    for act in sort.into_sorted()? {
        let act = act?;
        if group.first().is_some_and(|g| g.group() != act.group()) {
            settle.group(&group)?;
            group.clear();
        }
        group.push(act);
    }
    settle.group(&group)?;
    Ok(settle.out)
}

/// Settles the sorted groups into recovered marks, re-reading a witness file (the last one
/// kept) for the words of its lines.
struct Settle<'a> {
    plan: &'a Plan,
    archive: &'a V1Archive,
    file: Option<(u32, V1PrayerFile)>,
    out: Vec<RecoveredMark>,
}

impl Settle<'_> {
    /// One (prayer, member, minute) group: written marks first, then the lines in file order.
    fn group(&mut self, group: &[Act]) -> Result<(), DetectError> {
        let split = group.partition_point(|a| a.side == 0);
        let (written, lines) = group.split_at(split);
        let Some(first) = lines.first() else {
            return Ok(());
        };
        let wall = DateTime::from_timestamp(first.minute * 60, 0).map(|t| t.naive_utc());
        let Some(minute) = wall.and_then(|w| utc(self.plan, w)) else {
            return Ok(());
        };
        let (prayer, user) = (hex_id(first.prayer), hex_id(first.user));
        for (n, act) in lines.iter().enumerate().skip(written.len()) {
            let marked_at = minute + Duration::microseconds(n as i64);
            let micros = marked_at.and_utc().timestamp_micros();
            if written.iter().any(|w| w.micros == micros) {
                continue;
            }
            let (path, member, at) = self.words(act)?;
            let name = format!(
                "mark:{prayer}:{user}:{}:{n}",
                minute.format("%Y-%m-%d %H:%M")
            );
            self.out.push(RecoveredMark {
                mark: ResolvedMark {
                    id: hex_id(v5(&name)),
                    prayer_id: prayer.clone(),
                    user_id: user.clone(),
                    marked_at,
                },
                path,
                line: act.line,
                member,
                at,
                held: written.len() as u32,
            });
        }
        Ok(())
    }

    /// The file, member and time as written of the line of `act`.
    fn words(&mut self, act: &Act) -> Result<(String, String, String), DetectError> {
        let index = &self.archive.prayers;
        if self.file.as_ref().is_none_or(|(i, _)| *i != act.file) {
            let file = index.read(&self.archive.root, act.file as usize)?;
            self.file = Some((act.file, file));
        }
        let path = index.path(act.file as usize).to_string();
        let line = self.file.as_ref().and_then(|(_, f)| {
            f.prayed()
                .find(|a| a.line == act.line as usize)
                .map(|a| (a.name.clone(), a.at.raw.clone()))
        });
        let (member, at) = line.unwrap_or_default();
        Ok((path, member, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sort record reads back as written, so a spilled sort orders what an in-memory one does.
    #[test]
    fn acts_round_trip_through_bytes() {
        for act in [
            Act {
                prayer: u128::MAX,
                user: 1,
                minute: -5,
                side: 1,
                file: u32::MAX,
                line: 7,
                micros: i64::MIN,
            },
            Act {
                prayer: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
                user: u128::MAX - 1,
                minute: 29_000_000,
                side: 0,
                file: 0,
                line: 0,
                micros: 1_746_354_238_137_709,
            },
        ] {
            let mut bytes = [0u8; Act::SIZE];
            act.encode(&mut bytes);
            assert_eq!(Act::decode(&bytes), act);
        }
    }

    #[test]
    fn only_32_hex_digits_are_a_recoverable_id() {
        assert_eq!(
            hex32(" FC9C8F55EB644F518981D2297ED9E639 ").as_deref(),
            Some("fc9c8f55eb644f518981d2297ed9e639")
        );
        assert_eq!(hex32("temp"), None);
        assert_eq!(hex32("fc9c8f55eb644f518981d2297ed9e63g"), None);
    }
}
