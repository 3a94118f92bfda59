//! Reconciling a v1 database with its v1 archive tree (the tree v1 really writes,
//! `spec/v1-real.md` §2): which records exist only in the archives (`R-ARCHIVE-ONLY`), only in
//! the database (`R-ARCHIVE-MISSING`), or in both but differently (`R-ARCHIVE-MISMATCH`), and the
//! lines the reader could not read (`R-ARCHIVE-UNREADABLE`).
//!
//! A function of a tree scanned by `thywill-v1` ([`V1Archive`]) and rows of the v1 database,
//! either all in memory ([`ReconcileInput`], [`reconcile()`]) or streamed ([`ReconcileRows`],
//! [`reconcile_with`]); [`archive_findings`] reads the rows from a [`V1Database`] itself (marks
//! through `thywill-spill`). The findings are reported, and their decisions are taken here
//! ([`ArchiveFinding::decision`]): the pipeline only calls this module. Under `repair` the
//! archive-only prayers and marks that are whole are also recovered ([`recover()`], written to v2
//! from the tree, decision `recovered`); the rest is not migrated (the v1 tree is carried
//! verbatim).
//!
//! # Sources
//!
//! - **Prayers**: the prayer files `prayers/YYYY/MM/YYYY_MM_DD_prayer_at_HHMM[_N].txt`.
//! - **Marks**: the `<time> - <name> prayed this prayer` lines of the prayer files' `Activity:`
//!   sections, one per act of prayer (v1 wrote no marks log; `prayers/marks/` never existed).
//! - **Users**: the lines of `users/YYYY_MM_users.txt`.
//! - **Grants** (trees from 2025-06-30 on): the `deactivated … assigned` lines of
//!   `roles/YYYY_MM_role_assignments.txt` (v1 logs no other grant).
//! - **Invite claims** (same): the claim lines (a member named) of
//!   `system/YYYY_MM_invite_usage.txt`.
//!
//! The other files (activity/, sessions/, the export-all files, users/user_attributes.txt) are
//! read for their unreadable lines only.
//!
//! # Memory
//!
//! Nothing grows with the number of marks: prayer rows are compared as they stream by against
//! the scan's compact prayer entries (ids as 128-bit keys: the value of 32 hex digits, else a
//! hash; author and text as fingerprints, the file read again when they disagree); members,
//! grants and claims are held, one entry each; every mark row and `prayed this prayer` line
//! becomes a fixed-size [`MarkEntry`] that a [`MarkSort`] (an external sort, in a migration)
//! orders by group, and the groups are compared one at a time. The lines are read from the
//! prayer files again, one file at a time. Words for a finding (a line's text, a row's values)
//! are read again from the tree or fetched from the source by handle.
//!
//! # Comparison rules
//!
//! - **Prayers** are matched by id (trimmed, case-insensitive), the file's id being the one of
//!   its first line `Prayer <id> by <author>`, wherever the file lies. A file whose id has no row
//!   is `R-ARCHIVE-ONLY` (also `Prayer temp by …`, the file of a rewrite that failed). A row that
//!   no file holds is `R-ARCHIVE-MISSING` when its `text_file_path` is empty or NULL; when the
//!   path is set but names no file of the tree, that is `R-ARCHIVE-PATH` (the detector's rule),
//!   not also a missing archive; when it names the file of another prayer,
//!   `R-ARCHIVE-MISMATCH`. A row and each file holding its id (a `heal-archives` copy `_2` holds
//!   the same id) are compared on the author (exact display name; not compared when the caller
//!   could not resolve the author), the `Submitted` time (below) and the request text (line
//!   endings `\r\n` → `\n`, surrounding whitespace trimmed): every difference goes in one
//!   `R-ARCHIVE-MISMATCH`. A U+FFFD in the row's text (a byte that was not UTF-8, decoded with
//!   replacement: the detector's `R-UTF8`) matches any one character of the file.
//! - **Users** are matched by exact display name with the lines of `users/*_users.txt`; a pair
//!   is compared on the registration time and the inviter (`joined on invitation from <name>`
//!   against the resolved inviter's name, `joined directly` against none). Names are not
//!   folded: a line for ` Grace ` is not the row `Grace`.
//! - **Marks** are grouped by (prayer id, member's display name) with the `prayed this prayer`
//!   lines; the member of a line is all of the text between ` - ` and ` prayed this prayer`
//!   (never its first word: names hold spaces and ` - `). In G0/G1 a row's `user_id` is turned
//!   into the member's display name (the files name members by display name). Repeats are
//!   separate acts, so within a group rows and lines are counted per minute: first every row
//!   with a line of the same minute (rows with an instant first, then date-only rows, then rows
//!   of unknown time), then the rest paired in time order as `R-ARCHIVE-MISMATCH` (a time
//!   differs), then what is left over on one side only. When several files hold the prayer (a
//!   heal copy), the lines of a minute count once: those of the file holding the most.
//! - **Grants**: the `deactivated` assignment lines against the `user_roles` rows of the role
//!   named `deactivated`, by member; **claims**: the claim lines against the
//!   `invite_token_usage` rows, by (token, member). A pair whose times are more than a minute
//!   apart is `R-ARCHIVE-MISMATCH`. Role lines are UTC as `granted_at` is; claim lines are local
//!   time while `claimed_at` is UTC: each line is compared at its UTC instant through the v1
//!   server's clock ([`ReconcileOptions::clock`]). A row migration 008 backfilled (dated the
//!   token's `expires_at`) is paired whatever its time.
//! - **A row without a line is not a finding.** Only prayers have one archive file per record;
//!   marks made before 2025-06-14 or while archives were disabled are in no file, admin grants
//!   write no line, so a user, mark, grant or claim row without a line is not reported unless
//!   [`ReconcileOptions::rows_without_log_line`] asks for it. A line without a row
//!   (`R-ARCHIVE-ONLY`) and a line that pairs with a row but differs (`R-ARCHIVE-MISMATCH`) are
//!   always reported.
//! - **Times**: v1 wrote archive times as the server's local time, truncated (not rounded) to the
//!   minute (`%B %d %Y at %H:%M`); the database holds naive UTC (treated so for now: the v1 zone
//!   is a later option). A row time `t` matches an archive time `a` when, for one of the
//!   accepted offsets `o` ([`ReconcileOptions`], default UTC only; give both offsets of a zone
//!   with daylight saving), `t + o` truncated to the minute equals `a`. Row times are read by
//!   the detector's own parser ([`crate::time::parse_str`], the one `R-TIME` uses: every shape
//!   v1 rows hold, epochs from 10^11 up as milliseconds), so a row time means the same instant
//!   here as in the plan. A date-only row (`YYYY-MM-DD`) matches an archive time on that UTC
//!   day. A row time no shape fits is not compared (it is the detector's `R-TIME`).
//!
//! Findings are sorted by kind, rule, key and path, so a run gives the same list every time.

mod logs;
mod marks;
mod recover;
mod restore;
mod rows;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use thywill_v1::archive::{
    fingerprint, key_of, Key, Located, V1Archive, V1FileKind, V1PrayerFile, V1Registration,
};
use thywill_v1::V1Error;

use crate::keys::{normalize_str, KeyKind, NormKey};
use crate::model::{Decision, DetectError};
use crate::text::parse_lower_hex32;

pub use marks::{MarkEntry, MarkSort};
pub use recover::{recover, RecoveredMark, RecoveredPrayer, RecoveredUser, Recovery};
pub use restore::{WitnessValues, Witnesses};
pub use rows::{archive_findings, reconcile_input};

/// The rule of an archive finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArchiveRule {
    /// `R-ARCHIVE-ONLY`: a record the archives hold and the database does not.
    Only,
    /// `R-ARCHIVE-MISSING`: a row the archives do not hold.
    Missing,
    /// `R-ARCHIVE-MISMATCH`: a record both hold, differently.
    Mismatch,
    /// `R-ARCHIVE-UNREADABLE`: a line (or a file) of the tree the parser cannot read.
    Unreadable,
}

impl ArchiveRule {
    /// The stable rule id (`R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING`, `R-ARCHIVE-MISMATCH`).
    pub fn id(self) -> &'static str {
        match self {
            ArchiveRule::Only => "R-ARCHIVE-ONLY",
            ArchiveRule::Missing => "R-ARCHIVE-MISSING",
            ArchiveRule::Mismatch => "R-ARCHIVE-MISMATCH",
            ArchiveRule::Unreadable => "R-ARCHIVE-UNREADABLE",
        }
    }

    /// Every archive rule.
    pub const ALL: [ArchiveRule; 4] = [
        ArchiveRule::Only,
        ArchiveRule::Missing,
        ArchiveRule::Mismatch,
        ArchiveRule::Unreadable,
    ];

    /// The rule of an id (`R-ARCHIVE-ONLY` → [`ArchiveRule::Only`]); `None` for any other text.
    pub fn parse(id: &str) -> Option<ArchiveRule> {
        ArchiveRule::ALL.into_iter().find(|r| r.id() == id)
    }

    /// What the rule finds, in one line for people (for reports, like
    /// [`crate::RuleId::meaning`]).
    pub fn meaning(self) -> &'static str {
        match self {
            ArchiveRule::Only => {
                "A record the v1 archives hold and the database does not (recovered under repair when whole, else reported)."
            }
            ArchiveRule::Missing => {
                "A prayer row no archive file holds and whose text_file_path is empty (written; v2 renders its archive)."
            }
            ArchiveRule::Mismatch => {
                "A record the database and the archives both hold, differently (written as the database has it)."
            }
            ArchiveRule::Unreadable => crate::RuleId::ArchiveUnreadable.meaning(),
        }
    }
}

impl fmt::Display for ArchiveRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl serde::Serialize for ArchiveRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// What kind of record a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A prayer (its file under `prayers/YYYY/MM/`, its `prayer` row).
    Prayer,
    /// A member (a line of `users/*_users.txt`, a `user` row).
    User,
    /// A prayer mark (a `prayed this prayer` line of a prayer file, a `prayermark` row).
    Mark,
    /// A role grant (a line of `roles/*_role_assignments.txt`, a `user_roles` row).
    Grant,
    /// An invite claim (a line of `system/*_invite_usage.txt`, an `invite_token_usage` row).
    Claim,
}

impl ArchiveRule {
    /// The decision of a finding of this rule: an archive-only record or an unreadable line is
    /// `not_carried` (the records [`recover()`] writes are reported apart, as `recovered`); a
    /// row without a file is `repaired` (v2 renders its archive); a mismatch is written as the
    /// database has it (`repaired`).
    pub fn decision(self) -> Decision {
        match self {
            ArchiveRule::Only | ArchiveRule::Unreadable => Decision::NotCarried,
            ArchiveRule::Missing | ArchiveRule::Mismatch => Decision::Repaired,
        }
    }
}

impl RecordKind {
    /// The v1 table of this kind of record.
    pub fn table(self) -> &'static str {
        match self {
            RecordKind::Prayer => "prayer",
            RecordKind::User => "user",
            RecordKind::Mark => "prayermark",
            RecordKind::Grant => "user_roles",
            RecordKind::Claim => "invite_token_usage",
        }
    }
}

/// One difference between the database and the archive tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveFinding {
    /// The rule.
    pub rule: ArchiveRule,
    /// The kind of record.
    pub kind: RecordKind,
    /// The record's key: the prayer id, the user's display name, the mark's id (a mark only in
    /// the archives: `<prayer id>|<member>`).
    pub key: String,
    /// The row's rowid when the finding is about a database row.
    pub rowid: Option<i64>,
    /// The archive file involved (relative to the v1 root, `/`-separated), when there is one.
    pub path: Option<String>,
    /// The line of that file a mark finding is about (1-based), when it is about one line.
    pub line: Option<u32>,
    /// What differs, for people (values on both sides).
    pub detail: String,
}

/// A `prayer` row as the reconciliation needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbPrayer {
    /// SQLite's rowid.
    pub rowid: Option<i64>,
    /// `id` as text.
    pub id: String,
    /// The author's display name (resolved from `author_id` in G0/G1); `None` when it cannot be
    /// resolved (then the author is not compared).
    pub author: Option<String>,
    /// `created_at` as raw text (an INTEGER as its decimal digits).
    pub created_at: Option<String>,
    /// `text` (bytes that are not UTF-8 decoded with U+FFFD); `None`: not compared.
    pub text: Option<String>,
    /// `text_file_path` as stored.
    pub text_file_path: Option<String>,
}

/// A `user` row as the reconciliation needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbUser {
    /// SQLite's rowid.
    pub rowid: Option<i64>,
    /// `display_name`; `None` (NULL) is not reconciled.
    pub name: Option<String>,
    /// `created_at` as raw text.
    pub created_at: Option<String>,
    /// The inviter's display name (resolved from `invited_by_user_id` in G1), `None` when the
    /// row names no inviter. An inviter that cannot be resolved is passed as the raw reference.
    pub inviter: Option<String>,
}

/// A `prayermark` row as the reconciliation needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbMark {
    /// SQLite's rowid.
    pub rowid: Option<i64>,
    /// The mark's `id` as text, when it has one (the finding's key).
    pub id: Option<String>,
    /// `prayer_id`.
    pub prayer_id: String,
    /// The member's display name, as the prayer files write it (`username` in G2/G3; in G0/G1
    /// the display name of the member `user_id` names, or the raw `user_id` when none).
    pub user: String,
    /// `created_at` as raw text.
    pub created_at: Option<String>,
}

/// A `user_roles` row as the reconciliation needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbGrant {
    /// SQLite's rowid.
    pub rowid: Option<i64>,
    /// The grant's `id` as text, when it has one.
    pub id: Option<String>,
    /// The member's display name (resolved like a mark's member).
    pub user: String,
    /// The role's name (`deactivated`, `admin` …); `None` when `role_id` names no role.
    pub role: Option<String>,
    /// `granted_at` as raw text.
    pub granted_at: Option<String>,
}

/// An `invite_token_usage` row as the reconciliation needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbClaim {
    /// SQLite's rowid.
    pub rowid: Option<i64>,
    /// The row's `id` as text, when it has one.
    pub id: Option<String>,
    /// `invite_token_id`.
    pub token: String,
    /// The member's display name (resolved like a mark's member).
    pub user: String,
    /// `claimed_at` as raw text.
    pub claimed_at: Option<String>,
    /// The row v1's migration 008 backfilled for a claim made before it: its `claimed_at` is the
    /// token's `expires_at`, not the claim's moment, so its time is not compared with a line's.
    pub backfilled: bool,
}

/// The database side of a reconciliation, all in memory (small databases and tests; a
/// migration streams its rows through [`ReconcileRows`] instead).
#[derive(Debug, Clone, Default)]
pub struct ReconcileInput {
    /// Every prayer row.
    pub prayers: Vec<DbPrayer>,
    /// Every user row.
    pub users: Vec<DbUser>,
    /// Every mark row.
    pub marks: Vec<DbMark>,
    /// Every role grant.
    pub grants: Vec<DbGrant>,
    /// Every invite claim.
    pub claims: Vec<DbClaim>,
}

/// The database side of a reconciliation, streamed: rows are handed over one at a time and
/// only compact keys of the marks are kept (sorted through a [`MarkSort`]), so the memory does
/// not grow with the number of marks. A mark row that takes part in a finding is fetched again
/// by the handle it was streamed with.
pub trait ReconcileRows {
    /// The source's error; it holds the v1 reader's errors (a log of the tree that can no
    /// longer be read) and i/o errors (a temporary file of the sort that cannot be written).
    type Error: From<V1Error> + From<std::io::Error>;
    /// Calls `f` with every prayer row.
    fn for_each_prayer(
        &self,
        f: &mut dyn FnMut(&DbPrayer) -> Result<(), Self::Error>,
    ) -> Result<(), Self::Error>;
    /// Calls `f` with every user row.
    fn for_each_user(
        &self,
        f: &mut dyn FnMut(&DbUser) -> Result<(), Self::Error>,
    ) -> Result<(), Self::Error>;
    /// Calls `f` with every mark row and a handle that [`Self::mark`] takes back.
    fn for_each_mark(&self, f: &mut MarkFn<'_, Self::Error>) -> Result<(), Self::Error>;
    /// The mark row streamed with `handle`.
    fn mark(&self, handle: u64) -> Result<DbMark, Self::Error>;
    /// Every role grant (one or two a member: held in memory). None by default.
    fn grants(&self) -> Result<Vec<DbGrant>, Self::Error> {
        Ok(Vec::new())
    }
    /// Every invite claim (one a member: held in memory). None by default.
    fn claims(&self) -> Result<Vec<DbClaim>, Self::Error> {
        Ok(Vec::new())
    }
}

/// What [`ReconcileRows::for_each_mark`] calls: a mark row with its handle.
pub type MarkFn<'f, E> = dyn FnMut(u64, &DbMark) -> Result<(), E> + 'f;

impl ReconcileRows for ReconcileInput {
    type Error = DetectError;

    fn for_each_prayer(
        &self,
        f: &mut dyn FnMut(&DbPrayer) -> Result<(), DetectError>,
    ) -> Result<(), DetectError> {
        self.prayers.iter().try_for_each(f)
    }

    fn for_each_user(
        &self,
        f: &mut dyn FnMut(&DbUser) -> Result<(), DetectError>,
    ) -> Result<(), DetectError> {
        self.users.iter().try_for_each(f)
    }

    fn for_each_mark(&self, f: &mut MarkFn<'_, DetectError>) -> Result<(), DetectError> {
        (0u64..).zip(&self.marks).try_for_each(|(i, m)| f(i, m))
    }

    fn mark(&self, handle: u64) -> Result<DbMark, DetectError> {
        Ok(self.marks[handle as usize].clone())
    }

    fn grants(&self) -> Result<Vec<DbGrant>, DetectError> {
        Ok(self.grants.clone())
    }

    fn claims(&self) -> Result<Vec<DbClaim>, DetectError> {
        Ok(self.claims.clone())
    }
}

/// How times are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// The v1 server's offsets from UTC, in minutes (archive time = UTC + offset). Default `[0]`.
    /// A zone with daylight saving gives both (e.g. `[-300, -240]` for US Eastern).
    pub utc_offsets_minutes: Vec<i32>,
    /// Also report `R-ARCHIVE-MISSING` for a user, mark, grant or claim row that no line holds.
    /// Off by default: only prayers have their own file; marks before 2025-06-14 or made while
    /// archives were disabled are in no file, and admin grants write no line, so a row without
    /// a line is not evidence of loss.
    pub rows_without_log_line: bool,
    /// The v1 server's clock: the lines of the logs v1 writes in local time while the matching
    /// column is UTC (the invite-claim log against `claimed_at`) are compared at their UTC
    /// instant.
    pub clock: crate::clock::Clock,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            utc_offsets_minutes: vec![0],
            rows_without_log_line: false,
            clock: crate::clock::Clock::utc(),
        }
    }
}

/// A row time as far as it can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowTime {
    At(NaiveDateTime),
    Day(NaiveDate),
    Unknown,
}

fn row_time(raw: Option<&str>) -> RowTime {
    let Some(s) = raw else {
        return RowTime::Unknown;
    };
    match crate::time::parse_str(s) {
        None => RowTime::Unknown,
        // the date-only shape (`YYYY-MM-DD`, read as its midnight): a day, not an instant
        Some(p) if is_date_only(s.trim()) && p.at.time() == NaiveTime::MIN => {
            RowTime::Day(p.at.date())
        }
        Some(p) => RowTime::At(p.at),
    }
}

/// True for the shape `YYYY-MM-DD` (ten characters, dashes at 4 and 7; an epoch has none).
fn is_date_only(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-'
}

fn truncate_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

impl ReconcileOptions {
    fn time_matches(&self, row: RowTime, archive: NaiveDateTime) -> bool {
        let offsets = self
            .utc_offsets_minutes
            .iter()
            .map(|o| Duration::minutes(*o as i64));
        match row {
            RowTime::Unknown => true,
            RowTime::At(t) => offsets.clone().any(|o| truncate_minute(t + o) == archive),
            RowTime::Day(d) => offsets.clone().any(|o| (archive - o).date() == d),
        }
    }
}

fn shown(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("`{s}`"),
        None => "NULL".into(),
    }
}

/// Row text against file text, both normalised; a U+FFFD of the row (a byte that was not UTF-8,
/// decoded with replacement) stands for any one character of the file.
fn same_text(row: &str, file: &str) -> bool {
    let (row, file) = (norm_text(row), norm_text(file));
    if !row.contains('\u{FFFD}') {
        return row == file;
    }
    let mut f = file.chars();
    for c in row.chars() {
        match f.next() {
            Some(d) if d == c || c == '\u{FFFD}' => {}
            _ => return false,
        }
    }
    f.next().is_none()
}

/// The key of a prayer id as the reconciliation compares it: the detector's key normaliser
/// ([`crate::keys`], the reference resolver's: trimmed, invisible characters stripped, hex in any
/// case), so a file, a row and a mark name one prayer when the rules say they do.
fn prayer_id_key(id: &str) -> Key {
    // the canonical shape needs no cleaning (every well-formed id, the common case)
    if let Some(h) = parse_lower_hex32(id.as_bytes()) {
        return (0, h);
    }
    match normalize_str(id, KeyKind::Hex) {
        Some(NormKey::Hex(h)) => (0, h),
        Some(NormKey::Text(t)) => key_of(&t),
        None => key_of(""),
    }
}

/// Scans the v1 tree at `root` (`thywill-v1`'s reader) with prayer ids keyed as the
/// reconciliation compares them: the tree to give [`reconcile()`] and [`archive_findings`].
pub fn scan_v1_tree(root: &std::path::Path) -> Result<V1Archive, V1Error> {
    thywill_v1::archive::scan_v1_tree_keyed(root, prayer_id_key, text_key)
}

/// Request text as the reconciliation compares it: `\r\n` → `\n`, surrounding whitespace
/// trimmed.
pub fn norm_text(s: &str) -> String {
    s.replace("\r\n", "\n").trim().to_string()
}

/// The fingerprint the scan keeps of a file's request text: of its [`norm_text`].
fn text_key(text: &str) -> u64 {
    fingerprint(norm_text(text).as_str())
}

/// Reconciles the database rows `db` with the scanned tree `archive` (see the module's
/// comparison rules), sorting the marks in memory. Files the scan could not parse
/// (`archive.problems`) take no part. The tree is read again (the prayer files' marks, and the words of a
/// finding): an error if it can no longer be read (it changed since the scan).
pub fn reconcile(
    archive: &V1Archive,
    db: &ReconcileInput,
    opts: &ReconcileOptions,
) -> Result<Vec<ArchiveFinding>, DetectError> {
    reconcile_with(archive, db, Vec::new(), opts)
}

/// Reconciles the rows of `rows` with the scanned tree `archive` (see the module's comparison
/// rules) in memory that does not grow with the number of marks: prayers are compared as their
/// rows stream by, users in memory (one entry per member), marks as fixed-size entries sorted by
/// `sort` (give an external sort for a large community) and compared one group at a time.
/// Errors: the source's, and a tree or temporary file that can no longer be read.
pub fn reconcile_with<R: ReconcileRows, S: MarkSort>(
    archive: &V1Archive,
    rows: &R,
    sort: S,
    opts: &ReconcileOptions,
) -> Result<Vec<ArchiveFinding>, R::Error> {
    let mut out = Vec::new();
    reconcile_prayers(archive, rows, opts, &mut out)?;
    let mut users = Vec::new();
    rows.for_each_user(&mut |u| {
        users.push(u.clone());
        Ok(())
    })?;
    reconcile_users(archive, &users, opts, &mut out);
    logs::reconcile_grants(archive, &rows.grants()?, opts, &mut out);
    logs::reconcile_claims(archive, &rows.claims()?, opts, &mut out);
    marks::reconcile_marks(archive, rows, sort, opts, &mut out)?;
    unreadable(archive, &mut out);
    out.sort_by(|a, b| {
        (a.kind, a.rule, &a.key, &a.path, a.rowid).cmp(&(b.kind, b.rule, &b.key, &b.path, b.rowid))
    });
    Ok(out)
}

/// `R-ARCHIVE-UNREADABLE`: every line no shape fits (file, line number, the line) and every
/// file the scan could not read; the rest of the tree was read and reconciled all the same.
fn unreadable(archive: &V1Archive, out: &mut Vec<ArchiveFinding>) {
    use V1FileKind as K;
    let kind_of = |k: Option<V1FileKind>| match k {
        Some(K::Registrations | K::Sessions | K::UserAttributes) => RecordKind::User,
        Some(K::Activity | K::ExportMarks) => RecordKind::Mark,
        Some(K::RoleAssignments) => RecordKind::Grant,
        Some(K::InviteUsage | K::ExportInviteTokens | K::ExportInviteUsage) => RecordKind::Claim,
        Some(K::Prayer) | None => RecordKind::Prayer,
    };
    for (kind, l) in &archive.unreadable {
        out.push(ArchiveFinding {
            line: None,
            rule: ArchiveRule::Unreadable,
            kind: kind_of(Some(*kind)),
            key: format!("{}:{}", l.path, l.line),
            rowid: None,
            path: Some(l.path.clone()),
            detail: format!(
                "line {}: {} is in no shape v1 writes; not read (the file is carried as it is)",
                l.line,
                shown(Some(&l.record))
            ),
        });
    }
    for p in &archive.problems {
        out.push(ArchiveFinding {
            line: None,
            rule: ArchiveRule::Unreadable,
            kind: kind_of(V1FileKind::of(&p.path)),
            key: p.path.clone(),
            rowid: None,
            path: Some(p.path.clone()),
            detail: format!("{}; not read", p.message),
        });
    }
}

fn reconcile_prayers<R: ReconcileRows>(
    archive: &V1Archive,
    rows: &R,
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) -> Result<(), R::Error> {
    let index = &archive.prayers;
    let mut held = vec![false; index.len()];
    rows.for_each_prayer(&mut |row| {
        let files: Vec<usize> = index.with_id(archive.prayer_key(&row.id)).collect();
        for i in &files {
            held[*i] = true;
        }
        compare_prayer(archive, row, &files, opts, out).map_err(R::Error::from)
    })?;
    for i in (0..index.len()).filter(|i| !held[*i]) {
        let file = index.read(&archive.root, i)?;
        out.push(ArchiveFinding {
            line: None,
            rule: ArchiveRule::Only,
            kind: RecordKind::Prayer,
            key: file.id,
            rowid: None,
            path: Some(index.path(i).to_string()),
            detail: format!(
                "prayer file by `{}` submitted {} has no database row",
                file.author, file.submitted.raw
            ),
        });
    }
    Ok(())
}

/// Compares prayer row `row` with the files holding its id (`files`, indices into
/// `archive.prayers`). The compact entries settle agreement; a file that may differ is read
/// again and compared in full.
fn compare_prayer(
    archive: &V1Archive,
    row: &DbPrayer,
    files: &[usize],
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) -> Result<(), V1Error> {
    let index = &archive.prayers;
    let named = row
        .text_file_path
        .as_deref()
        .filter(|p| !p.trim().is_empty());
    if files.is_empty() {
        return prayer_without_file(archive, row, named, out);
    }
    if let Some(rel) = named.and_then(|p| archive.resolve_db_path(p)) {
        if !files.iter().any(|i| index.path(*i) == rel) {
            if let Some(other) = index.at_path(rel) {
                out.push(prayer_finding(
                    row,
                    ArchiveRule::Mismatch,
                    Some(rel),
                    format!(
                        "text_file_path names the file of prayer {}; this prayer's file is `{}`",
                        index.read(&archive.root, other)?.id,
                        index.path(files[0])
                    ),
                ));
            }
        }
    }
    let time = row_time(row.created_at.as_deref());
    // The row's text as the entries hold it; `None`: a U+FFFD needs the file's own text.
    let text = row
        .text
        .as_deref()
        .map(|t| (!t.contains('\u{FFFD}')).then(|| fingerprint(norm_text(t).as_str())));
    for &i in files {
        let entry = index.entry(i);
        let agrees = row
            .author
            .as_deref()
            .is_none_or(|a| fingerprint(a) == entry.author)
            && opts.time_matches(time, entry.submitted)
            && text.is_none_or(|t| t == Some(entry.text));
        if agrees {
            continue;
        }
        let file = index.read(&archive.root, i)?;
        let diffs = prayer_differences(row, time, &file, opts);
        if !diffs.is_empty() {
            out.push(prayer_finding(
                row,
                ArchiveRule::Mismatch,
                Some(index.path(i)),
                diffs.join("; "),
            ));
        }
    }
    Ok(())
}

/// A finding on prayer row `row`.
fn prayer_finding(
    row: &DbPrayer,
    rule: ArchiveRule,
    path: Option<&str>,
    detail: String,
) -> ArchiveFinding {
    ArchiveFinding {
        line: None,
        rule,
        kind: RecordKind::Prayer,
        key: row.id.clone(),
        rowid: row.rowid,
        path: path.map(str::to_string),
        detail,
    }
}

/// A prayer row no archive file holds: missing when its `text_file_path` is empty, a mismatch
/// when it names another prayer's file (a path naming no file of the tree is `R-ARCHIVE-PATH`,
/// the detector's, not also missing).
fn prayer_without_file(
    archive: &V1Archive,
    row: &DbPrayer,
    named: Option<&str>,
    out: &mut Vec<ArchiveFinding>,
) -> Result<(), V1Error> {
    let index = &archive.prayers;
    match named.map(|p| (p, archive.resolve_db_path(p))) {
        None => out.push(prayer_finding(
            row,
            ArchiveRule::Missing,
            None,
            "no archive file holds this prayer and text_file_path is empty".into(),
        )),
        Some((p, Some(rel))) => {
            if let Some(other) = index.at_path(rel) {
                out.push(prayer_finding(
                    row,
                    ArchiveRule::Mismatch,
                    Some(rel),
                    format!(
                        "text_file_path `{p}` names the file of prayer {}; no file holds \
                         this prayer",
                        index.read(&archive.root, other)?.id
                    ),
                ));
            }
        }
        Some((_, None)) => {}
    }
    Ok(())
}

/// How prayer row `row` (its time `time`) and one of its files differ: author, submitted time,
/// text; empty when they agree.
fn prayer_differences(
    row: &DbPrayer,
    time: RowTime,
    file: &V1PrayerFile,
    opts: &ReconcileOptions,
) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(author) = &row.author {
        if *author != file.author {
            diffs.push(format!("author: file `{}`, row `{author}`", file.author));
        }
    }
    if !opts.time_matches(time, file.submitted.at) {
        diffs.push(format!(
            "submitted: file `{}`, row created_at {}",
            file.submitted.raw,
            shown(row.created_at.as_deref())
        ));
    }
    if let Some(text) = &row.text {
        if !same_text(text, &file.text) {
            diffs.push(format!(
                "text: file {} chars, row {} chars",
                file.text.chars().count(),
                text.chars().count()
            ));
        }
    }
    diffs
}

/// Matches the rows and archive lines of one group: pairs for which `same` holds first, then
/// the rest in order (`rows` and `lines` sorted by the caller). Returns (differing pairs, rows
/// left, lines left).
#[allow(clippy::type_complexity)]
fn match_group<'a, R, L>(
    rows: &[&'a R],
    lines: &[&'a L],
    same: impl Fn(&R, &L) -> bool,
) -> (Vec<(&'a R, &'a L)>, Vec<&'a R>, Vec<&'a L>) {
    let mut used = vec![false; lines.len()];
    let mut left_rows = Vec::new();
    for r in rows {
        match (0..lines.len()).find(|i| !used[*i] && same(r, lines[*i])) {
            Some(i) => used[i] = true,
            None => left_rows.push(*r),
        }
    }
    let left_lines: Vec<&L> = lines
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(l, _)| *l)
        .collect();
    let n = left_rows.len().min(left_lines.len());
    let pairs = left_rows[..n]
        .iter()
        .copied()
        .zip(left_lines[..n].iter().copied())
        .collect();
    (pairs, left_rows[n..].to_vec(), left_lines[n..].to_vec())
}

/// Compares the user rows with the archive's registration lines, grouped by name.
fn reconcile_users(
    archive: &V1Archive,
    rows: &[DbUser],
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) {
    let mut groups: BTreeMap<&str, UserGroup<'_>> = BTreeMap::new();
    for row in rows {
        if let Some(name) = row.name.as_deref() {
            groups.entry(name).or_default().0.push(row);
        }
    }
    for line in &archive.registrations {
        groups.entry(&line.record.name).or_default().1.push(line);
    }
    for (name, (rows, lines)) in groups {
        reconcile_user_group(name, rows, lines, opts, out);
    }
}

/// The user rows and registration lines of one name.
type UserGroup<'a> = (Vec<&'a DbUser>, Vec<&'a Located<V1Registration>>);

/// Whether a user row and a registration line name the same inviter.
fn same_inviter(r: &DbUser, l: &Located<V1Registration>) -> bool {
    r.inviter.as_deref() == l.record.inviter.as_deref()
}

/// Matches the rows and lines of name `name` (agreeing pairs first): a mismatch for each pair
/// that differs, a missing line for each row left (when asked for), an only-in-the-archive line
/// for each line left.
fn reconcile_user_group(
    name: &str,
    mut rows: Vec<&DbUser>,
    mut lines: Vec<&Located<V1Registration>>,
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) {
    rows.sort_by_key(|r| (row_time(r.created_at.as_deref()).sort_key(), r.rowid));
    lines.sort_by_key(|l| (l.record.at.at, l.path.clone(), l.line));
    let (pairs, left_rows, left_lines) = match_group(&rows, &lines, |r, l| {
        same_inviter(r, l) && opts.time_matches(row_time(r.created_at.as_deref()), l.record.at.at)
    });
    for (r, l) in pairs {
        out.push(ArchiveFinding {
            line: None,
            rule: ArchiveRule::Mismatch,
            kind: RecordKind::User,
            key: name.to_string(),
            rowid: r.rowid,
            path: Some(l.path.clone()),
            detail: format!(
                "line {}: {}",
                l.line,
                user_differences(r, l, opts).join("; ")
            ),
        });
    }
    for r in left_rows.into_iter().filter(|_| opts.rows_without_log_line) {
        out.push(ArchiveFinding {
            line: None,
            rule: ArchiveRule::Missing,
            kind: RecordKind::User,
            key: name.to_string(),
            rowid: r.rowid,
            path: None,
            detail: format!(
                "no registration line for this member (created_at {})",
                shown(r.created_at.as_deref())
            ),
        });
    }
    for l in left_lines {
        out.push(ArchiveFinding {
            line: None,
            rule: ArchiveRule::Only,
            kind: RecordKind::User,
            key: name.to_string(),
            rowid: None,
            path: Some(l.path.clone()),
            detail: format!(
                "line {}: registration `{}` has no user row",
                l.line, l.record.at.raw
            ),
        });
    }
}

/// How a user row and its registration line differ: joining time, inviter.
fn user_differences(
    r: &DbUser,
    l: &Located<V1Registration>,
    opts: &ReconcileOptions,
) -> Vec<String> {
    let mut diffs = Vec::new();
    if !opts.time_matches(row_time(r.created_at.as_deref()), l.record.at.at) {
        diffs.push(format!(
            "joined: archive `{}`, row created_at {}",
            l.record.at.raw,
            shown(r.created_at.as_deref())
        ));
    }
    if !same_inviter(r, l) {
        diffs.push(format!(
            "inviter: archive {}, row {}",
            shown(l.record.inviter.as_deref()),
            shown(r.inviter.as_deref())
        ));
    }
    diffs
}

impl RowTime {
    /// Rows are matched most specific first (an instant, then a day, then an unknown time), so
    /// a date-only row cannot take the line an exact row needs.
    fn sort_key(self) -> (u8, Option<NaiveDateTime>) {
        match self {
            RowTime::At(t) => (0, Some(t)),
            RowTime::Day(d) => (1, d.and_hms_opt(0, 0, 0)),
            RowTime::Unknown => (2, None),
        }
    }
}

#[cfg(test)]
mod tests;
