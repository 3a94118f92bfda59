//! The records the v1 archive tree gives v2 under `repair` (rules.md "The archive tree as a
//! second witness", decisions.md §47), derived here on the validator's own reading: the tree is
//! parsed by `thywill-v1`'s parsers (which only parse), keyed with this crate's own key
//! normaliser, and every decision is taken here, apart from the detector's.
//!
//! The witness of a prayer id is the file its first row names in `text_file_path`, else the
//! newest (latest `Submitted`, then the greatest path). An id no prayer row has is a recovered
//! prayer when its witness has a 32-hex-digit id, an author who is a written member of exactly
//! that display name, and a text of 1–5000 characters after trimming with no NUL. The
//! `prayed this prayer` lines of each witness of a prayer in v2 are grouped by (member, minute
//! as written); of `L` lines where `W` written marks were stored in that minute (`created_at`
//! as stored: local when made online, UTC offline, as the line shows it), lines `W..L` are
//! recovered at the minute (through the clock) plus `n` microseconds (`n` their 0-based place), ids UUID v5 of
//! `mark:<prayer>:<user>:<YYYY-MM-DD HH:MM>:<n>`, unless a written mark holds that instant.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Duration, NaiveDateTime, Timelike};
use thywill_v1::archive::{key_of, Key, V1Action, V1Archive, V1PrayerFile};
use thywill_v1::{V1Error, V1Value};

use crate::canon::{os, s, CanonTable, Cell};
use crate::clock::V1Clock;
use crate::marks::{key_hash, KeyHash};
use crate::rules;

/// A prayer row as the recovery needs it.
pub(crate) struct PrayerRef {
    /// The row's id as stored.
    pub(crate) id: V1Value,
    /// `text_file_path` as text.
    pub(crate) path: Option<String>,
    /// The v2 id when the row is written.
    pub(crate) written: Option<String>,
}

/// One (prayer, member, minute as v1 wrote it) group of witness lines: the ids as numbers, the written
/// marks' instants only when there are some (one entry a line, not a string).
struct Group {
    prayer: u128,
    user: u128,
    /// The lines' minute as written (local, or UTC for an offline mark).
    minute: NaiveDateTime,
    lines: u32,
    /// The instants of the written marks in the group.
    written: Vec<NaiveDateTime>,
}

/// A v2 id (32 lower-case hex digits) as a number, and back.
fn id_number(id: &str) -> Option<u128> {
    u128::from_str_radix(id, 16).ok()
}

fn id_text(id: u128) -> String {
    format!("{id:032x}")
}

/// What the tree gives v2: the recovered prayers (v2 cells by id) and the groups of lines whose
/// marks are settled once the written marks are known ([`Recovery::note_written`]).
#[derive(Default)]
pub(crate) struct Recovery {
    /// (v2 id, expected `prayers` cells, witness file).
    pub(crate) prayers: Vec<(String, Vec<Cell>, String)>,
    /// The v2 ids of the members recovered from registration lines (in `users` already).
    pub(crate) users: Vec<String>,
    groups: HashMap<KeyHash, Group>,
    clock: V1Clock,
}

/// A prayer id as this crate keys it: normalised ([`rules::normalise_key`]), hashed.
pub(crate) fn id_key(id: &str) -> Key {
    let norm = rules::normalise_key(&V1Value::Text(id.as_bytes().to_vec()));
    key_of(norm.as_deref().unwrap_or(""))
}

/// Request texts are not compared here.
pub(crate) fn no_text_key(_: &str) -> u64 {
    0
}

fn minute_of(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

impl Recovery {
    /// Reads the scanned tree `tree` (keyed by [`id_key`]) against the prayer rows `rows` and the written members
    /// `users` (the expected `users` table): the recovered prayers, and the line groups.
    pub(crate) fn derive(
        tree: &V1Archive,
        clock: &V1Clock,
        members: TreeMembers<'_>,
        rows: &[PrayerRef],
    ) -> Result<Recovery, V1Error> {
        let recovered_users = registrations(tree, clock, &members);
        let users = members.users;
        for (id, cells) in &recovered_users {
            users.insert(id.clone(), cells.clone());
        }
        let names = member_names(users);
        let index = &tree.prayers;
        let mut files: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
        for i in 0..index.len() {
            files.entry(index.entry(i).id).or_default().push(i);
        }
        let mut first: HashMap<Key, &PrayerRef> = HashMap::new();
        let mut written: HashMap<Key, &str> = HashMap::new();
        for r in rows {
            let key = id_key(&rules::text(&r.id).unwrap_or_default());
            first.entry(key).or_insert(r);
            if let Some(w) = &r.written {
                written.entry(key).or_insert(w);
            }
        }
        let mut out = Recovery {
            clock: *clock,
            users: recovered_users.into_iter().map(|(id, _)| id).collect(),
            ..Recovery::default()
        };
        for (key, held) in &files {
            let named = first
                .get(key)
                .and_then(|r| r.path.as_deref())
                .and_then(|p| {
                    let rel = tree.resolve_db_path(p)?;
                    held.iter().copied().find(|i| index.path(*i) == rel)
                });
            let witness = named.unwrap_or_else(|| newest(tree, held));
            let file = index.read(&tree.root, witness)?;
            let prayer = match written.get(key) {
                Some(id) => id.to_string(),
                None if first.contains_key(key) => continue,
                None => match prayer_cells(clock, &names, &file) {
                    Some((id, cells)) => {
                        out.prayers
                            .push((id.clone(), cells, index.path(witness).to_string()));
                        id
                    }
                    None => continue,
                },
            };
            out.add_lines(&names, &prayer, &file);
        }
        Ok(out)
    }

    /// Groups the `prayed this prayer` lines of `file`, the witness of `prayer`.
    fn add_lines(&mut self, names: &HashMap<String, String>, prayer: &str, file: &V1PrayerFile) {
        for a in file.activity.iter().flatten() {
            if a.action != V1Action::Prayed {
                continue;
            }
            // the minute as v1 wrote it (local, or UTC for an offline mark), as a stored mark
            // time is
            let Some(user) = names.get(&a.name) else {
                continue;
            };
            let minute = minute_of(a.at.at);
            let (Some(p), Some(u)) = (id_number(prayer), id_number(user)) else {
                continue;
            };
            self.groups
                .entry(key_hash(prayer, user, minute))
                .or_insert_with(|| Group {
                    prayer: p,
                    user: u,
                    minute,
                    lines: 0,
                    written: Vec::new(),
                })
                .lines += 1;
        }
    }

    /// Notes a written mark: prayer, member, its `created_at` as stored (parsed, no clock) and
    /// its instant in v2.
    pub(crate) fn note_written(
        &mut self,
        prayer: &str,
        user: &str,
        stored: Option<NaiveDateTime>,
        at: NaiveDateTime,
    ) {
        let Some(stored) = stored.filter(|_| !self.groups.is_empty()) else {
            return;
        };
        if let Some(g) = self
            .groups
            .get_mut(&key_hash(prayer, user, minute_of(stored)))
        {
            g.written.push(at);
        }
    }

    /// The recovered marks: (prayer, member, `marked_at`, id), sorted.
    pub(crate) fn marks(&self) -> Vec<(String, String, NaiveDateTime, String)> {
        let mut out = Vec::new();
        for g in self.groups.values() {
            let (prayer, user) = (id_text(g.prayer), id_text(g.user));
            let Some(minute) = utc(&self.clock, g.minute) else {
                continue;
            };
            for n in g.written.len()..g.lines as usize {
                let at = minute + Duration::microseconds(n as i64);
                if g.written.contains(&at) {
                    continue;
                }
                let minute = minute.format("%Y-%m-%d %H:%M");
                let id = rules::v5_id(&format!("mark:{prayer}:{user}:{minute}:{n}"));
                out.push((prayer.clone(), user.clone(), at, id.unwrap_or_default()));
            }
        }
        out.sort();
        out
    }
}

/// What the recovery of members needs: the expected `users` (written members; it gains the
/// recovered ones), every v1 user row's name as stored, the test-account names.
pub(crate) struct TreeMembers<'a> {
    pub(crate) users: &'a mut CanonTable,
    pub(crate) v1_names: HashSet<String>,
    pub(crate) test_accounts: Vec<String>,
}

/// A name the validator accepts from a registration line: trimmed, 1–100 characters, no
/// control character, a letter or digit among them, not `admin`.
fn clean_name(name: &str) -> bool {
    let n = name.chars().count();
    name.trim() == name
        && (1..=100).contains(&n)
        && name.chars().all(|c| !c.is_control())
        && name.chars().any(|c| c.is_alphanumeric())
        && name != "admin"
}

/// The members of the registration lines no v1 user row names exactly (earliest first): clean
/// names, no test account, no name a written or earlier recovered member holds after folding.
/// Each with its expected `users` cells (id UUID v5 of `user:<name>`).
fn registrations(
    tree: &V1Archive,
    clock: &V1Clock,
    m: &TreeMembers<'_>,
) -> Vec<(String, Vec<Cell>)> {
    let mut names = member_names(m.users);
    let mut folded: HashSet<String> = names.keys().map(|n| rules::fold_name(n)).collect();
    let mut lines: Vec<_> = tree.registrations.iter().collect();
    lines.sort_by_key(|l| (l.record.at.at, l.path.clone(), l.line));
    let mut out = Vec::new();
    for l in lines {
        let name = l.record.name.as_str();
        let test = if m.test_accounts.is_empty() {
            rules::DEFAULT_TEST_ACCOUNTS.contains(&name)
        } else {
            m.test_accounts.iter().any(|t| t == name)
        };
        if m.v1_names.contains(name) || test || !clean_name(name) {
            continue;
        }
        let fold = rules::fold_name(name);
        let (Some(created), Some(id)) = (
            utc(clock, l.record.at.at),
            rules::v5_id(&format!("user:{name}")),
        ) else {
            continue;
        };
        if !folded.insert(fold) {
            continue;
        }
        let inviter = l
            .record
            .inviter
            .as_ref()
            .and_then(|i| names.get(i))
            .cloned();
        names.insert(name.to_string(), id.clone());
        let cells = vec![
            s(&id),
            s(name),
            Cell::Null,
            s("unspecified"),
            Cell::Null,
            os(inviter.as_deref()),
            Cell::Ts(created),
            Cell::Ts(created),
            Cell::Bool(true),
            Cell::Bool(false),
            Cell::Null,
            Cell::Null,
            Cell::Bool(false),
            Cell::Null,
        ];
        out.push((id, cells));
    }
    out
}

/// Display name → v2 id of the written members.
fn member_names(users: &CanonTable) -> HashMap<String, String> {
    let Some(c) = users.columns.iter().position(|c| *c == "display_name") else {
        return HashMap::new();
    };
    users
        .rows
        .iter()
        .filter_map(|(id, row)| match &row[c] {
            Cell::Str(name) => Some((name.clone(), id.clone())),
            _ => None,
        })
        .collect()
}

/// The newest of `files`: latest `Submitted`, then greatest path.
pub(crate) fn newest(tree: &V1Archive, files: &[usize]) -> usize {
    let index = &tree.prayers;
    let order = |i: &usize| (index.entry(*i).submitted, index.path(*i).to_string());
    files.iter().copied().max_by_key(order).unwrap_or(0)
}

/// A local time of the tree as UTC through the v1 server's clock.
pub(crate) fn utc(clock: &V1Clock, local: NaiveDateTime) -> Option<NaiveDateTime> {
    let v = V1Value::Text(local.format("%Y-%m-%d %H:%M:%S").to_string().into_bytes());
    clock.local(&v).map(|u| u.at)
}

/// The expected `prayers` cells of an archive-only witness, when it is whole.
fn prayer_cells(
    clock: &V1Clock,
    names: &HashMap<String, String>,
    file: &V1PrayerFile,
) -> Option<(String, Vec<Cell>)> {
    let id = file.id.trim().to_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let author = names.get(&file.author)?;
    let has_nul = |t: &str| t.contains('\0');
    let length = file.text.chars().count();
    if file.text.trim().is_empty()
        || length > 5000
        || has_nul(&file.text)
        || file.generated_prayer.as_deref().is_some_and(has_nul)
    {
        return None;
    }
    let created = utc(clock, file.submitted.at)?;
    let (mut archived, mut answered, mut testified, mut testimony) = (false, None, None, None);
    let mut updated = created;
    for a in file.activity.iter().flatten() {
        let changes_state = match &a.action {
            V1Action::Archived | V1Action::Restored | V1Action::MarkedAnswered => true,
            V1Action::Testimony(t) => !t.trim().is_empty(),
            _ => false,
        };
        if !changes_state {
            continue;
        }
        let at = utc(clock, a.at.at)?;
        match &a.action {
            V1Action::Archived => archived = true,
            V1Action::Restored => archived = false,
            V1Action::MarkedAnswered => answered = Some(at),
            V1Action::Testimony(t) if !t.trim().is_empty() => {
                testimony = Some(t.trim().to_string());
                testified = Some(at);
            }
            _ => continue,
        }
        updated = updated.max(at);
    }
    let answered_at = answered.or(testified);
    let tag = file
        .meta("Project")
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.chars().count() <= 100 && !has_nul(t));
    let audience = match file.meta("Audience").map(str::trim).unwrap_or("") {
        "" | "all" => "all",
        _ => "christians_only",
    };
    let cells = vec![
        s(&id),
        s(author),
        s(&file.text),
        os(file.generated_prayer.as_deref()),
        os(tag),
        s(audience),
        Cell::Ts(created),
        Cell::Ts(updated),
        Cell::Bool(archived),
        Cell::Bool(answered_at.is_some()),
        answered_at.map_or(Cell::Null, Cell::Ts),
        os(testimony.as_deref()),
    ];
    Some((id, cells))
}

/// The keys of `table` a run's `recovered` findings name and the derivation does not, and the
/// derived keys no such finding names (each a problem of the law).
pub(crate) fn unmatched(
    table: &str,
    derived: &HashSet<String>,
    recorded: Option<&HashSet<String>>,
) -> Vec<String> {
    let empty = HashSet::new();
    let recorded = recorded.unwrap_or(&empty);
    let mut out: Vec<String> = derived
        .difference(recorded)
        .map(|k| format!("{table} {k}: the v1 archive tree gives it, yet no recovered finding names it"))
        .chain(recorded.difference(derived).map(|k| {
            format!("{table} {k}: a recovered finding names it, yet the v1 archive tree does not give it")
        }))
        .collect();
    out.sort();
    out
}
