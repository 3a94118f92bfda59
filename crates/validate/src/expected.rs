//! The validator's own derivation of what v2 must contain, from the v1 rows (full scans through
//! `thywill-v1`) and the run's record of *which* rows were not plainly written
//! (`migration_findings`) and *which account* a merged duplicate became (`migration_id_map`).
//! Every value is recomputed here from `spec/rules.md`; nothing is taken from the migration's
//! own mapping. In the same pass, each v1 row is traced to its place for the law.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDateTime, Timelike};
use serde::Serialize;
use thywill_v1::{
    AttributeRow, InviteRow, InviteUsageRow, MarkRow, PrayerRow, RoleRow, SessionRow, UserRefKind,
    UserRoleRow, UserRow, V1Database, V1Error, V1Row, V1Value,
};
use thywill_v2::rows::{
    canonical_ip, ContentFlag, Invite, Prayer, PrayerMark, Session, User, UserRole,
};

use crate::canon::{mark_key, os, ot, s, CanonTable, Cell};
use crate::marks::{key_hash, KeyHash, MarkSide};
use crate::recovered::{PrayerRef, Recovery, TreeMembers};
use crate::restored::Restored;
use crate::rules::{self, text};
use crate::v2db::{FindingRow, V2Data};

/// v2's bounds on a prayer text's length in characters: a text within them is carried as it is
/// (its whitespace is v1's); one outside them is stored trimmed (`R-TEXT-LENGTH` is judged after
/// trimming).
const PRAYER_TEXT_CHARS: std::ops::RangeInclusive<usize> = 1..=5000;
/// v1's default `INVITE_TOKEN_EXPIRATION_HOURS`.
pub const DEFAULT_INVITE_HOURS: u32 = 12;
/// The reason of a flag carried over from v1.
pub const CARRIED_FLAG_REASON: &str = "carried over from v1";

/// A non-written decision of `migration_findings`, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Not written: needs a human.
    Quarantined,
    /// Folded into another row.
    Merged,
    /// An exact redundancy dropped.
    Deduplicated,
    /// Left in v1 by design.
    NotCarried,
}

impl Disposition {
    fn parse(decision: &str) -> Option<Self> {
        Some(match decision {
            "quarantined" => Disposition::Quarantined,
            "merged" => Disposition::Merged,
            "deduplicated" => Disposition::Deduplicated,
            "not_carried" => Disposition::NotCarried,
            _ => return None,
        })
    }
}

/// What the run recorded: non-written decisions and repairs by (v1 table, v1 key), and the id map.
#[derive(Debug, Default)]
pub struct Ledger {
    /// By v1 table, then v1 key (looked up with borrowed keys, no allocation per row).
    excluded: HashMap<String, HashMap<String, Disposition>>,
    repaired: HashMap<String, HashSet<String>>,
    id_map: HashMap<(String, String), String>,
    /// Every (table, key) a finding names, to find findings about rows v1 does not have.
    named: HashMap<String, HashSet<String>>,
    /// The keys of the records the run recovered from the v1 archive tree, by v1 table.
    recovered: HashMap<String, HashSet<String>>,
    /// The v1 archive tree the run recovered records from (`repair` with `--archives-v1`):
    /// derived again here (`crate::recovered`). `None`: nothing may be recovered.
    pub recover_from: Option<std::path::PathBuf>,
    /// Decisions that are not one of the five (each is a problem).
    pub bad_decisions: Vec<String>,
    /// Number of findings with decision `merged`.
    pub merged_findings: usize,
    /// Derive exclusions instead of taking them on trust where the validator can (policy
    /// `repair`; under `strict` any repair also excludes, which the clean-row test below does
    /// not model).
    pub derive_exclusions: bool,
    /// The run's clock (its `started_at`): a grant or session that expires after it is live.
    /// `None` (no run): expiries are not derived.
    pub as_of: Option<NaiveDateTime>,
    /// The exact test-account names the run was given (`R-USER-TEST-ACCOUNT`); empty: the
    /// defaults of `spec/rules.md`.
    pub test_accounts: Vec<String>,
    /// The v1 server's clock the run was given: local values are compared as UTC through it.
    pub clock: crate::clock::V1Clock,
    /// v1's `INVITE_TOKEN_EXPIRATION_HOURS` the run was given (`created_at = expires_at - it`).
    pub invite_hours: u32,
    /// v1's e-mail database and key the run was given (`--v1-email-db`), when it had them.
    pub email: Option<crate::email::EmailSource>,
    /// The operator's decisions file the run was given (`--decisions`), read here again.
    pub decisions: Option<crate::decisions::OperatorDecisions>,
}

impl Ledger {
    /// Builds the ledger from the run's findings and the id map.
    pub fn new(findings: &[FindingRow], id_map: &[thywill_v2::rows::IdMapEntry]) -> Self {
        let mut l = Ledger {
            invite_hours: DEFAULT_INVITE_HOURS,
            ..Ledger::default()
        };
        for f in findings {
            l.named
                .entry(f.v1_table.clone())
                .or_default()
                .insert(f.v1_key.clone());
            if f.decision == "recovered" {
                l.recovered
                    .entry(f.v1_table.clone())
                    .or_default()
                    .insert(f.v1_key.clone());
            } else if f.decision == "repaired" {
                l.repaired
                    .entry(f.v1_table.clone())
                    .or_default()
                    .insert(f.v1_key.clone());
            } else if let Some(d) = Disposition::parse(&f.decision) {
                if d == Disposition::Merged {
                    l.merged_findings += 1;
                }
                let e = l
                    .excluded
                    .entry(f.v1_table.clone())
                    .or_default()
                    .entry(f.v1_key.clone())
                    .or_insert(d);
                *e = (*e).min(d);
            } else {
                l.bad_decisions.push(format!(
                    "{} {} {}: unknown decision '{}'",
                    f.v1_table, f.v1_key, f.rule, f.decision
                ));
            }
        }
        for e in id_map {
            l.id_map
                .insert((e.entity.clone(), e.v1_key.clone()), e.v2_id.clone());
        }
        l
    }

    pub(crate) fn excluded_in(&self, table: &str, key: &str) -> Option<Disposition> {
        self.excluded(table, key)
    }

    pub(crate) fn is_repaired_in(&self, table: &str, key: &str) -> bool {
        self.is_repaired(table, key)
    }

    /// The v2 account the run's id map gives member `key` (every carried member has a row).
    pub(crate) fn user_v2_id(&self, key: &str) -> Option<&str> {
        self.mapped(&["user", "users"], key).map(String::as_str)
    }

    fn excluded(&self, table: &str, key: &str) -> Option<Disposition> {
        self.excluded.get(table)?.get(key).copied()
    }

    fn is_repaired(&self, table: &str, key: &str) -> bool {
        self.repaired.get(table).is_some_and(|k| k.contains(key))
    }

    /// The keys the run's `recovered` findings name in `table`.
    pub fn recovered_in(&self, table: &str) -> Option<&HashSet<String>> {
        self.recovered.get(table)
    }

    fn names(&self, table: &str, key: &str) -> bool {
        self.named.get(table).is_some_and(|k| k.contains(key))
    }

    fn mapped(&self, entities: &[&str], key: &str) -> Option<&String> {
        entities
            .iter()
            .find_map(|e| self.id_map.get(&(e.to_string(), key.to_string())))
    }

    /// The v2 id of a prayer key, whether a prayer's own id or a reference to one (a mark's or an
    /// attribute's `prayer_id`): the hex id, else the id the run mapped that key to. A prayer
    /// with a non-hex key and the rows pointing at it must end under the same id.
    fn prayer_id(&self, v: &V1Value) -> Option<String> {
        // An empty reference names no prayer, even beside a prayer keyed '' (decisions.md §29).
        rules::normalise_key(v)?;
        rules::hex_key(v).or_else(|| self.mapped(&["prayer"], &v.key_text()?).cloned())
    }
}

/// The law for one carried v1 table, recomputed: where each row read ended.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct LawTally {
    /// The v1 table.
    pub table: String,
    /// Rows read by full scan.
    pub read: u64,
    /// Rows found in v2 as written (traced through their ids).
    pub written: u64,
    /// Written rows with a `repaired` finding.
    pub repaired: u64,
    /// Rows accounted as merged.
    pub merged: u64,
    /// Rows accounted as deduplicated.
    pub deduplicated: u64,
    /// Rows accounted as quarantined.
    pub quarantined: u64,
    /// Rows accounted as not carried.
    pub not_carried: u64,
    /// Records the v1 archive tree gives v2 (derived; counted in `written` when found in v2).
    #[serde(default)]
    pub recovered: u64,
    /// Rows in no place or in two (each a violation of the law).
    pub violations: u64,
    /// The first violations, for the operator.
    pub examples: Vec<String>,
}

impl LawTally {
    pub(crate) fn new(table: &str) -> Self {
        LawTally {
            table: table.into(),
            ..Default::default()
        }
    }

    /// True when `read + recovered = written + merged + deduplicated + quarantined +
    /// not_carried` and every row is in exactly one place.
    pub fn holds(&self) -> bool {
        self.violations == 0
            && self.read + self.recovered
                == self.written
                    + self.merged
                    + self.deduplicated
                    + self.quarantined
                    + self.not_carried
    }

    pub(crate) fn account(&mut self, d: Disposition) {
        match d {
            Disposition::Quarantined => self.quarantined += 1,
            Disposition::Merged => self.merged += 1,
            Disposition::Deduplicated => self.deduplicated += 1,
            Disposition::NotCarried => self.not_carried += 1,
        }
    }

    pub(crate) fn violation(&mut self, msg: String) {
        self.violations += 1;
        if self.examples.len() < MAX_LAW_EXAMPLES {
            self.examples.push(format!("{} {msg}", self.table));
        }
    }

    /// A written row: found in v2 or a violation.
    fn written(&mut self, ledger: &Ledger, key: &str, found: bool, v2: &str) {
        self.written_with(ledger, key, found, || v2.to_string());
    }

    /// [`Self::written_with`], for the e-mail derivation.
    pub(crate) fn written_in(
        &mut self,
        ledger: &Ledger,
        key: &str,
        found: bool,
        v2: impl FnOnce() -> String,
    ) {
        self.written_with(ledger, key, found, v2);
    }

    /// [`Self::written`] naming the v2 key only when it is needed.
    fn written_with(
        &mut self,
        ledger: &Ledger,
        key: &str,
        found: bool,
        v2: impl FnOnce() -> String,
    ) {
        if found {
            self.written += 1;
            if ledger.is_repaired(&self.table, key) {
                self.repaired += 1;
            }
        } else {
            let v2 = v2();
            self.violation(format!("{key}: no finding, yet not in v2 (expected {v2})"));
        }
    }
}

/// Everything derived: the expected v2 tables and the law per carried table.
#[derive(Debug, Default)]
pub struct Derived {
    /// Expected content per v2 table.
    pub expected: Vec<CanonTable>,
    /// The law per carried v1 table, in `CARRIED_TABLES` order.
    pub law: Vec<LawTally>,
    /// Expected v2 user ids of written users (for the smoke and archive checks).
    pub user_ids: Vec<String>,
    /// Keys of written users whose name needed `R-USER-NAME` (a repair `strict` forbids).
    pub renamed: Vec<String>,
    /// Expected marks, compactly (`expected[MARKS]` stays empty).
    pub marks: MarkSide,
    /// Findings naming a (table, key) that no v1 row has: they account for nothing.
    pub orphans: Vec<String>,
    /// Written rows whose v1 values the documented transform changes with no `repaired` finding
    /// on the row (the first [`MAX_SILENT`], and how many in all).
    pub silent: Vec<String>,
    /// How many such rows in all.
    pub silent_count: usize,
    /// Rows a finding keeps out of v2 although the validator finds nothing wrong with them in v1
    /// (the first [`MAX_SILENT`]): a finding it does not derive.
    pub underived: Vec<String>,
    /// How many such rows in all.
    pub underived_count: usize,
    /// What the targeted second pass over the marks needs.
    pub(crate) mark_context: Option<MarkContext>,
    /// Scan positions of the marks' law examples recorded during the derivation.
    unresolved_marks: Vec<u32>,
    /// Rowids of the marks re-keyed by `R-MARK-KEY` (their v2 id is checked for format only).
    rekeyed_marks: HashSet<i64>,
    /// The marks recovered from the v1 archive tree: (prayer, member, `marked_at`, id).
    recovered_marks: Vec<(String, String, NaiveDateTime, String)>,
    /// The v2 ids of the prayers recovered from the v1 archive tree.
    recovered_prayers: Vec<String>,
    /// The v2 ids of the members recovered from the v1 archive tree.
    recovered_users: Vec<String>,
}

/// The resolvers the mark derivation uses, kept for the targeted second pass.
pub(crate) struct MarkContext {
    members: Members,
    written_prayers: HashSet<String>,
}

impl std::fmt::Debug for MarkContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarkContext")
            .field("written_prayers", &self.written_prayers.len())
            .finish()
    }
}

/// The rows read back from v2 in canonical form (shared by the law and the comparison).
#[derive(Debug)]
pub struct Actual {
    /// One canonical table per v2 application table, in the same order as `Derived::expected`
    /// (`prayer_marks` empty: marks are in [`Actual::marks`]).
    pub tables: Vec<CanonTable>,
    /// The marks read back, compactly.
    pub marks: MarkSide,
    flagged_prayers: HashSet<String>,
}

impl Actual {
    /// Canonicalises what was read back; `marks` is the compact side of the streamed marks.
    pub fn new(d: &V2Data, marks: MarkSide) -> Self {
        Actual {
            marks,
            tables: vec![
                CanonTable::from_rows(&d.users),
                CanonTable::from_rows(&d.prayers),
                CanonTable::of::<PrayerMark>(),
                CanonTable::from_rows(&d.roles),
                CanonTable::from_rows(&d.invites),
                CanonTable::from_rows(&d.sessions),
                CanonTable::from_rows(&d.flags),
            ],
            flagged_prayers: d.flags.iter().map(|f| f.prayer_id.clone()).collect(),
        }
    }

    fn has(&self, i: usize, key: &str) -> bool {
        self.tables[i].rows.contains_key(key)
    }

    fn cell(&self, i: usize, key: &str, col: &str) -> Option<&Cell> {
        let t = &self.tables[i];
        let c = t.columns.iter().position(|c| *c == col)?;
        t.rows.get(key).map(|r| &r[c])
    }
}

const USERS: usize = 0;
/// Position of the marks in [`Derived::law`].
const MARK_LAW: usize = 2;
/// Violations named per table.
const MAX_LAW_EXAMPLES: usize = 5;
const PRAYERS: usize = 1;
const ROLES: usize = 3;
const INVITES: usize = 4;
const SESSIONS: usize = 5;

/// Silent changes named in the report.
const MAX_SILENT: usize = 20;

/// What the documented transform changes in one written row's v1 values (`R-UTF8`,
/// `R-USER-NAME`, `R-TIME`, `R-SESSION-IP`, `R-INVITE-COUNT`): each such row must carry a
/// `repaired` finding, or the change is silent (derived here, not taken from the migration).
#[derive(Default)]
struct Changes(Vec<&'static str>);

impl Changes {
    /// A text column whose bytes are not stored as they are.
    fn text(mut self, column: &'static str, v: &V1Value) -> Self {
        if rules::text_changes(v) {
            self.0.push(column);
        }
        self
    }

    /// A timestamp column not in v1's own shape (NULL is no change).
    fn time(mut self, column: &'static str, v: &V1Value) -> Self {
        if !v.is_null() && !rules::is_canonical_time(v) {
            self.0.push(column);
        }
        self
    }

    /// Any other change the derivation made.
    fn when(mut self, column: &'static str, changed: bool) -> Self {
        if changed {
            self.0.push(column);
        }
        self
    }

    /// Records the row as a silent change when it changed and no finding says so.
    fn settle(self, ledger: &Ledger, table: &str, key: &str, out: &mut Derived) {
        if self.0.is_empty() || ledger.is_repaired(table, key) {
            return;
        }
        out.silent_count += 1;
        if out.silent.len() < MAX_SILENT {
            out.silent.push(format!(
                "{table} {key}: {} changed from v1, yet no finding on the row says so",
                self.0.join(", ")
            ));
        }
    }
}

impl Derived {
    /// The records the v1 archive tree gives v2 (`Ledger::recover_from`): (v1 table, v2 id) of
    /// each recovered prayer and mark.
    pub fn recovered(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        let users = self.recovered_users.iter().map(|id| ("user", id.as_str()));
        let prayers = self
            .recovered_prayers
            .iter()
            .map(|id| ("prayer", id.as_str()));
        let marks = self
            .recovered_marks
            .iter()
            .map(|m| ("prayermark", m.3.as_str()));
        users.chain(prayers).chain(marks)
    }

    /// Records an exclusion the validator does not derive: the row is clean by every rule it
    /// checks, yet a finding keeps it out of v2.
    fn underived(&mut self, table: &str, key: &str, d: Disposition) {
        self.underived_count += 1;
        if self.underived.len() < MAX_SILENT {
            self.underived.push(format!(
                "{table} {key}: a finding says {d:?}, yet the row is sound in v1 (every \
                 reference resolves, every value is v2's as it is); it belongs in v2"
            ));
        }
    }
}

/// True when the zone skipped or repeated a local value's wall-clock time (the migration took the
/// earlier reading and owes the row an `R-TIME` finding).
fn shifted(clock: &crate::clock::V1Clock, v: &V1Value) -> bool {
    clock.local(v).is_some_and(|t| t.shifted)
}

fn row_key(v: &V1Value, rowid: i64) -> String {
    v.key_text().unwrap_or_else(|| format!("rowid:{rowid}"))
}

/// Resolves v1 member references (by hex id or by display name) to v2 user ids.
struct Members {
    kind: UserRefKind,
    by_ref: HashMap<String, String>,
    /// G2/G3: references spelled before v1's rewrite of names.
    respelling: Respelling,
    /// Token as stored → the v2 accounts of the members whose `invite_token_used` it is.
    joined: HashMap<String, Vec<String>>,
    created: HashMap<String, Cell>,
    /// The v1 server's clock (members' and prayers' `created_at`, answer dates).
    clock: crate::clock::V1Clock,
    /// Each written member's display name → v2 id (an operator's `author` names one).
    names: HashMap<String, String>,
    /// Every reference a user row answers to, whatever its fate (an author naming none of
    /// them is one the archive may restore, §50).
    row_refs: HashSet<String>,
}

impl Members {
    /// True when `v` names some user row (written or not), as stored or normalised.
    fn names_a_row(&self, v: &V1Value) -> bool {
        let hit = |r: Option<String>| r.is_some_and(|r| self.row_refs.contains(&r));
        hit(text(v)) || hit(rules::reference_key(v)) || self.resolve(v).is_some()
    }

    fn resolve(&self, v: &V1Value) -> Option<String> {
        let raw = text(v)?;
        if let Some(id) = self.by_ref.get(&raw) {
            return Some(id.clone());
        }
        match self.kind {
            UserRefKind::ById => self.by_ref.get(&rules::reference_key(v)?).cloned(),
            // v1's rewrite sees the name as stored, NULs included.
            UserRefKind::ByName => self.respelling.resolve(&v.to_text_lossy()?),
        }
    }
}

impl Members {
    /// Records the token a carried member joined with (a claim of it).
    fn note_joined(&mut self, u: &UserRow, account: &str) {
        if let Some(token) = u.invite_token_used.to_text_lossy() {
            self.joined
                .entry(token.into_owned())
                .or_default()
                .push(account.to_string());
        }
    }

    /// An invite's claims (rules.md, invites), each as (time, v2 account): its
    /// `invite_token_usage` rows when it has any (a row dated the token's `expires_at` is v1's
    /// migration 008 backfill and, like a time that does not parse, takes the member's
    /// `created_at`), else the members who joined with it, else the member `used_by` names.
    fn claims(
        &self,
        i: &InviteRow,
        expires: Option<NaiveDateTime>,
        usage: &HashMap<String, Vec<(Option<NaiveDateTime>, String)>>,
    ) -> Vec<(Cell, String)> {
        // A member's `created_at` the detector settles from evidence is not derived here (Any).
        let joined_at = |m: &String| self.created.get(m).cloned().unwrap_or(Cell::Any);
        let token = i.token.to_text_lossy().unwrap_or_default().into_owned();
        if let Some(rows) = usage.get(&token) {
            return rows
                .iter()
                .map(|(at, m)| {
                    let at = at.filter(|t| Some(*t) != expires);
                    (at.map_or_else(|| joined_at(m), Cell::Ts), m.clone())
                })
                .collect();
        }
        let members: Vec<String> = match self.joined.get(&token) {
            Some(j) => j.clone(),
            None => self.resolve(&i.used_by).into_iter().collect(),
        };
        members.into_iter().map(|m| (joined_at(&m), m)).collect()
    }
}

/// v1's start-up rewrite of names (rules.md "Names that v1 itself rewrote"): a reference that
/// names no member as stored resolves to the one member row whose name is the reference as the
/// rewrite leaves it, or whose own name the rewrite turns into that; two such rows (even two
/// that end in one account) leave it an orphan.
#[derive(Default)]
struct Respelling {
    /// Each member row's name as stored → its rows (two when a BLOB and a text key spell it).
    stored: HashMap<String, Vec<usize>>,
    /// The names the rewrite changes, rewritten → their row (`None`: several).
    rewritten: HashMap<String, Option<usize>>,
    /// Per row: the v2 account it ends in.
    targets: Vec<Option<String>>,
}

impl Respelling {
    /// Adds a member row by its stored name; returns the row.
    fn add(&mut self, name: &str) -> usize {
        let row = self.targets.len();
        self.targets.push(None);
        self.stored.entry(name.to_string()).or_default().push(row);
        let r = rules::rewrite_name(name);
        // A name the rewrite empties names nobody (NULs, controls only): no match through it.
        if r != name && !r.is_empty() {
            self.rewritten
                .entry(r)
                .and_modify(|e| *e = None)
                .or_insert(Some(row));
        }
        row
    }

    fn resolve(&self, reference: &str) -> Option<String> {
        let r = rules::rewrite_name(reference);
        if r.is_empty() {
            return None;
        }
        // Of rows one name holds, the one written (or merged) is the member it names.
        let as_stored = (r != reference)
            .then(|| self.stored.get(&r))
            .flatten()
            .and_then(|rows| {
                rows.iter()
                    .find(|&&row| self.targets[row].is_some())
                    .or(rows.first())
                    .copied()
            });
        let as_rewritten = self.rewritten.get(&r).copied().flatten();
        let row = match (as_stored, as_rewritten) {
            (Some(a), Some(b)) if a != b => return None,
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        self.targets[row].clone()
    }
}

/// Derives the expected v2 content and traces every v1 row, reading v1 by full scans.
pub fn derive(v1: &V1Database, ledger: &Ledger, actual: &Actual) -> Result<Derived, V1Error> {
    let schema = v1.schema();
    let (prayers_rx, prayers_reader) = read_ahead::<PrayerRow>(v1, BATCH_ROWS / 4);
    let (marks_rx, marks_reader) = read_ahead::<MarkRow>(v1, BATCH_ROWS);
    let mut out = Derived::default();
    let mut users = CanonTable::of::<User>();
    let mut law_users = LawTally::new("user");
    let mut seen = Seen::default();
    let members = derive_users(
        v1,
        ledger,
        actual,
        &mut users,
        &mut law_users,
        &mut out,
        &mut seen,
    )?;
    let law_email = match &ledger.email {
        Some(src) => {
            let mut silent = Vec::new();
            let law = crate::email::derive(
                src,
                ledger,
                &|v| members.resolve(v),
                &mut users,
                &actual.tables[USERS],
                &mut |k| silent.push(k.to_string()),
            )?;
            for key in silent {
                out.silent_count += 1;
                if out.silent.len() < MAX_SILENT {
                    out.silent.push(format!(
                        "{} {key}: the address changed from v1 (trimmed, lower-cased or its time taken from added_at), yet no finding on the row says so",
                        crate::email::TABLE
                    ));
                }
            }
            Some(law)
        }
        None => None,
    };

    // Attributes first: they become columns of their prayer.
    let mut law_attrs = LawTally::new("prayer_attributes");
    let mut attrs: HashMap<String, Vec<AttributeRow>> = HashMap::new();
    let mut written_attrs: Vec<(String, String, String, bool)> = Vec::new();
    for a in v1.read_all::<AttributeRow>()? {
        law_attrs.read += 1;
        let key = row_key(&a.id, a.rowid);
        seen.note(ledger, "prayer_attributes", &key);
        if let Some(d) = ledger.excluded("prayer_attributes", &key) {
            law_attrs.account(d);
            continue;
        }
        let Some(prayer) = ledger.prayer_id(&a.prayer_id) else {
            law_attrs.violation(format!(
                "{key}: no finding, yet its prayer id is not a v2 id"
            ));
            continue;
        };
        let name = text(&a.name).unwrap_or_default().trim().to_string();
        // A row saying false is in v2 as the absence of what it denies.
        let says_true = a.value.as_bool().unwrap_or(true);
        written_attrs.push((key, prayer.clone(), name, says_true));
        attrs.entry(prayer).or_default().push(a);
    }

    let mut prayers = CanonTable::of::<Prayer>();
    let mut flags = CanonTable::of::<ContentFlag>();
    let mut law_prayers = LawTally::new("prayer");
    let mut written_prayers: HashSet<String> = HashSet::new();
    // Hex ids seen so far: a later prayer with one of them cannot be told apart (R-PRAYER-KEY).
    let mut prayer_ids: HashSet<String> = HashSet::new();
    let mut prayer_refs: Vec<PrayerRef> = Vec::new();
    // Under `repair` with the tree, a damaged value its witness holds whole is restored (§50).
    let witnesses = match &ledger.recover_from {
        Some(root) => Some(crate::restored::Witnesses::open(root)?),
        None => None,
    };
    for p in prayers_rx.iter().flatten() {
        law_prayers.read += 1;
        if ledger.recover_from.is_some() {
            prayer_refs.push(PrayerRef {
                id: p.id.clone(),
                path: text(&p.text_file_path),
                written: None,
            });
        }
        let key = row_key(&p.id, p.rowid);
        seen.note(ledger, "prayer", &key);
        let first_holder = rules::hex_key(&p.id).is_none_or(|h| prayer_ids.insert(h));
        // An author naming no user row is damage the tree may restore; one whose row is not
        // written is not: the prayer follows it.
        let resolves = members.names_a_row(&p.author);
        let restored = witnesses
            .as_ref()
            .and_then(|w| w.restore(&ledger.clock, &p, resolves, &members.names));
        if let Some(d) = ledger.excluded("prayer", &key) {
            let sound = prayer_is_sound(&p, &members, restored.as_ref());
            if ledger.derive_exclusions && first_holder && sound {
                out.underived("prayer", &key, d);
            }
            law_prayers.account(d);
            continue;
        }
        let Some(id) = rules::hex_key(&p.id).or_else(|| ledger.mapped(&["prayer"], &key).cloned())
        else {
            law_prayers.violation(format!("{key}: no finding, yet no valid v2 id"));
            continue;
        };
        let operator = ledger.decisions.as_ref();
        let author = match operator.and_then(|d| d.author(&key)) {
            Some(name) => members.names.get(name).cloned(),
            None => members
                .resolve(&p.author)
                .or_else(|| restored.as_ref().and_then(|r| r.author.clone())),
        };
        let Some(author) = author else {
            law_prayers.violation(format!(
                "{key}: no finding, yet its author does not resolve"
            ));
            continue;
        };
        let mine = attrs.remove(&id).unwrap_or_default();
        Changes::default()
            .text("text", &p.text)
            .text("generated_prayer", &p.generated_prayer)
            .text("project_tag", &p.project_tag)
            .when("project_tag", too_wide(&p.project_tag))
            .time("created_at", &p.created_at)
            .when("created_at", shifted(&ledger.clock, &p.created_at))
            .when("text", restored.as_ref().is_some_and(|r| r.text.is_some()))
            .when(
                "author_id",
                restored.as_ref().is_some_and(|r| r.author.is_some()),
            )
            .settle(ledger, "prayer", &key, &mut out);
        let restored_at = restored.as_ref().and_then(|r| r.created_at);
        let cells = prayer_cells(&p, &id, &author, &mine, &members, schema, restored_at);
        let (mut row, flag) = cells;
        if let Some(t) = restored.as_ref().and_then(|r| r.text.as_deref()) {
            row[2] = s(t);
        }
        if let Some(t) = operator.and_then(|d| d.text(&key)) {
            row[2] = s(t);
        }
        if let Some(t) = operator.and_then(|d| d.time(&key)) {
            row[6] = Cell::Ts(t);
        }
        if let Some((fkey, fcells)) = flag {
            flags.insert(fkey, fcells);
        }
        law_prayers.written(ledger, &key, actual.has(PRAYERS, &id), &id);
        if let Some(r) = prayer_refs.last_mut() {
            r.written = Some(id.clone());
        }
        written_prayers.insert(id.clone());
        prayers.insert(id, row);
    }
    prayers_reader
        .join()
        .expect("reading the v1 prayers does not panic")?;
    let mut recovery = match &witnesses {
        Some(witnesses) => {
            let members = TreeMembers {
                users: &mut users,
                v1_names: v1_user_names(v1)?,
                test_accounts: ledger.test_accounts.clone(),
            };
            Some(Recovery::derive(
                witnesses.tree(),
                &ledger.clock,
                members,
                &prayer_refs,
            )?)
        }
        None => None,
    };
    drop(prayer_refs);
    recovered_users(ledger, actual, recovery.as_ref(), &mut law_users, &mut out);
    out.recovered_prayers = recovered_prayers(
        ledger,
        actual,
        recovery.as_ref(),
        &mut prayers,
        &mut law_prayers,
    );
    for (key, prayer, name, says_true) in written_attrs {
        let found = match name.as_str() {
            "archived" | "answered" | "flagged" if !says_true => true,
            "archived" => actual.cell(PRAYERS, &prayer, "is_archived") == Some(&Cell::Bool(true)),
            "answered" => actual.cell(PRAYERS, &prayer, "is_answered") == Some(&Cell::Bool(true)),
            "answer_date" => actual
                .cell(PRAYERS, &prayer, "answered_at")
                .is_some_and(|c| *c != Cell::Null),
            "answer_testimony" => actual
                .cell(PRAYERS, &prayer, "testimony")
                .is_some_and(|c| *c != Cell::Null),
            "flagged" => actual.flagged_prayers.contains(&prayer),
            _ => false,
        };
        law_attrs.written(ledger, &key, found, &format!("{name} on prayer {prayer}"));
    }

    let marks = CanonTable::of::<PrayerMark>();
    let mut mark_side = MarkSide::default();
    let mut law_marks = LawTally::new("prayermark");
    let ctx = MarkContext {
        members,
        written_prayers,
    };
    // Whether a written mark is in v2 is settled later ([`settle_marks`]), so that the marks
    // can be read back from v2 while this scan runs.
    let mut unresolved_seqs: Vec<u32> = Vec::new();
    // Every resolved mark's minute, and the excluded marks that resolve in a canonical time:
    // such a mark alone in its minute has no cause to be kept out of v2.
    let mut minutes: Vec<KeyHash> = Vec::new();
    let mut excluded_sound: Vec<(KeyHash, String, Disposition)> = Vec::new();
    // (hex id, not stored canonically, rowid, scan position) of the written marks with a hex id.
    let mut hex_ids: Vec<(u128, bool, i64, u32)> = Vec::new();
    let mut seq = 0u32;
    let mut scan = |m: MarkRow| {
        law_marks.read += 1;
        let key = row_key(&m.id, m.rowid);
        seen.note(ledger, "prayermark", &key);
        let fate = mark_fate(&m, &key, ledger, &ctx);
        match &fate {
            MarkFate::Written(w) => minutes.push(minute_of(w)),
            MarkFate::Excluded(d) if ledger.derive_exclusions => {
                if let Some(w) = resolve_mark(&m, ledger, &ctx) {
                    minutes.push(minute_of(&w));
                    if rules::is_canonical_time(&m.created_at) {
                        excluded_sound.push((minute_of(&w), key.clone(), *d));
                    }
                }
            }
            _ => {}
        }
        match fate {
            MarkFate::Excluded(d) => law_marks.account(d),
            MarkFate::Unresolved => {
                if law_marks.examples.len() < MAX_LAW_EXAMPLES {
                    unresolved_seqs.push(seq);
                }
                law_marks.violation(format!(
                    "{key}: no finding, yet prayer, member or time does not resolve"
                ));
            }
            MarkFate::Written(w) => {
                if let Some(r) = recovery.as_mut() {
                    r.note_written(&w.prayer, &w.user, rules::parse_time(&m.created_at), w.at);
                }
                let kh = key_hash(&w.prayer, &w.user, w.at);
                let repaired = ledger.is_repaired("prayermark", &key);
                Changes::default().when("created_at", w.shifted).settle(
                    ledger,
                    "prayermark",
                    &key,
                    &mut out,
                );
                mark_side.push_traced(kh, w.id.as_deref(), seq, repaired);
                if let Some(id) =
                    w.id.as_deref()
                        .and_then(|h| u128::from_str_radix(h, 16).ok())
                {
                    let canonical = m.id.as_str() == w.id.as_deref();
                    hex_ids.push((id, !canonical, m.rowid, seq));
                }
            }
        }
        seq += 1;
    };
    for batch in &marks_rx {
        batch.into_iter().for_each(&mut scan);
    }
    marks_reader
        .join()
        .expect("reading the v1 marks does not panic")?;
    rekeyed_marks(v1, ledger, hex_ids, &mut mark_side, &mut out)?;
    out.recovered_marks = recovery.map(|r| r.marks()).unwrap_or_default();
    recovered_marks(ledger, &out.recovered_marks, &mut mark_side, &mut law_marks);
    mark_side.finish();
    minutes.sort_unstable();
    for (minute, key, d) in excluded_sound {
        let start = minutes.partition_point(|m| *m < minute);
        if minutes.get(start + 1) != Some(&minute) {
            out.underived("prayermark", &key, d);
        }
    }
    let members = &ctx.members;

    let mut law_role = LawTally::new("role");
    let mut role_names: HashMap<String, String> = HashMap::new();
    for r in v1.read_all::<RoleRow>()? {
        law_role.read += 1;
        let key = row_key(&r.id, r.rowid);
        seen.note(ledger, "role", &key);
        let name = text(&r.name).unwrap_or_default().trim().to_lowercase();
        role_names.insert(key.clone(), name.clone());
        if let Some(d) = ledger.excluded("role", &key) {
            law_role.account(d);
        } else {
            let domain = matches!(name.as_str(), "admin" | "moderator");
            law_role.written(ledger, &key, domain, "the domain of user_roles.role");
        }
    }

    let mut roles = CanonTable::of::<UserRole>();
    let mut law_grants = LawTally::new("user_roles");
    // Members a written `deactivated` grant makes inactive (`R-ROLE`).
    let mut deactivated: HashSet<String> = HashSet::new();
    for g in v1.read_all::<UserRoleRow>()? {
        law_grants.read += 1;
        let key = row_key(&g.id, g.rowid);
        seen.note(ledger, "user_roles", &key);
        // An empty role id names no role, whatever row holds it.
        let role = g
            .role_id
            .key_text()
            .filter(|k| !rules::is_empty_key(k))
            .and_then(|k| role_names.get(&k).cloned());
        if let Some(d) = ledger.excluded("user_roles", &key) {
            if ledger.derive_exclusions {
                if let Some((user, role)) =
                    grant_is_sound(&g, role.as_deref(), members, ledger.as_of)
                {
                    // A repeat is deduplicated only beside the grant that is kept.
                    let repeat_kept =
                        d == Disposition::Deduplicated && grant_in_v2(actual, &user, role);
                    if !repeat_kept {
                        out.underived("user_roles", &key, d);
                    }
                }
            }
            law_grants.account(d);
            continue;
        }
        let (Some(user), Some(role)) = (members.resolve(&g.user), role) else {
            law_grants.violation(format!(
                "{key}: no finding, yet member or role does not resolve"
            ));
            continue;
        };
        let found = grant_in_v2(actual, &user, &role);
        if role == "deactivated" {
            // Not a role but a state: the member's row is inactive, there is no grant row.
            law_grants.written(ledger, &key, found, &format!("{user} inactive"));
            deactivated.insert(user);
            continue;
        }
        let v2key = format!("{user}|{role}");
        law_grants.written(ledger, &key, found, &v2key);
        let granted = rules::parse_time(&g.granted_at).map_or(Cell::Any, Cell::Ts);
        roles.insert(
            v2key,
            vec![
                s(&user),
                s(&role),
                granted,
                os(members.resolve(&g.granted_by).as_deref()),
            ],
        );
    }

    implicit_admin(&users, &mut roles);
    if let Some(c) = users.columns.iter().position(|c| *c == "is_active") {
        for id in &deactivated {
            if let Some(row) = users.rows.get_mut(id) {
                row[c] = Cell::Bool(false);
            }
        }
    }

    let mut invites = CanonTable::of::<Invite>();
    let mut law_inv = LawTally::new("invitetoken");
    let multi_use = schema.has_column("invitetoken", "usage_count");
    let mut usage: HashMap<String, Vec<(Option<NaiveDateTime>, String)>> = HashMap::new();
    if schema.has_table("invite_token_usage") {
        for u in v1.read_all::<InviteUsageRow>()? {
            if let (Some(token), Some(member)) = (u.token.to_text_lossy(), members.resolve(&u.user))
            {
                usage
                    .entry(token.into_owned())
                    .or_default()
                    .push((rules::parse_time(&u.claimed_at), member));
            }
        }
    }
    // Tokens of the invites written so far: v2 holds each once (a later row with the same
    // token, as text and as a BLOB say, is not carried).
    let mut written_tokens: HashSet<String> = HashSet::new();
    for i in v1.read_all::<InviteRow>()? {
        law_inv.read += 1;
        let key = row_key(&i.token, i.rowid);
        seen.note(ledger, "invitetoken", &key);
        let held = text(&i.token).is_some_and(|t| written_tokens.contains(&t));
        if let Some(d) = ledger.excluded("invitetoken", &key) {
            if ledger.derive_exclusions && !held && invite_is_sound(&i, multi_use, members) {
                out.underived("invitetoken", &key, d);
            }
            law_inv.account(d);
            continue;
        }
        if held {
            law_inv.violation(format!(
                "{key}: an earlier invite holds its token, yet no finding keeps it out of v2"
            ));
            continue;
        }
        if !inviting_kind(&i.token_type) {
            law_inv.violation(format!(
                "{key}: token_type {:?} is not an invitation (R-INVITE-KIND), yet no finding keeps it out of v2",
                text(&i.token_type).unwrap_or_default()
            ));
            continue;
        }
        let token = text(&i.token).unwrap_or_default();
        written_tokens.insert(token.clone());
        law_inv.written(ledger, &key, actual.has(INVITES, &token), &token);
        let claims = members.claims(&i, rules::parse_time(&i.expires_at), &usage);
        let lifetime = Duration::hours(i64::from(ledger.invite_hours));
        let cells = invite_cells(&i, &token, multi_use, members, &claims, lifetime);
        Changes::default()
            .text("token", &i.token)
            .time("expires_at", &i.expires_at)
            .when("usage_count", multi_use && count_is_bad(&i.usage_count))
            .when("max_uses", multi_use && count_is_bad(&i.max_uses))
            .when(
                "used",
                !multi_use && !i.used.is_null() && i.used.as_bool().is_none(),
            )
            .settle(ledger, "invitetoken", &key, &mut out);
        invites.insert(token.clone(), cells);
    }

    let mut sessions = CanonTable::of::<Session>();
    let mut law_sess = LawTally::new("session");
    let has_auth = schema.has_column("session", "is_fully_authenticated");
    for x in v1.read_all::<SessionRow>()? {
        law_sess.read += 1;
        let key = row_key(&x.id, x.rowid);
        seen.note(ledger, "session", &key);
        if let Some(d) = ledger.excluded("session", &key) {
            if ledger.derive_exclusions
                && session_is_sound(&x, has_auth, members, &deactivated, ledger.as_of)
            {
                out.underived("session", &key, d);
            }
            law_sess.account(d);
            continue;
        }
        let id = text(&x.id).unwrap_or_default();
        if !session_id_fits(&id) {
            law_sess.violation(format!(
                "{key}: a session id v2 cannot hold (1 to 64 printable ASCII characters), yet no finding keeps it out"
            ));
            continue;
        }
        let Some(user) = members.resolve(&x.user) else {
            law_sess.violation(format!(
                "{key}: no finding, yet its member does not resolve"
            ));
            continue;
        };
        if !expires_after_creation(&x) {
            law_sess.violation(format!(
                "{key}: it expires before it was created (v2 cannot hold it), yet no finding keeps it out"
            ));
            continue;
        }
        if deactivated.contains(&user) {
            law_sess.violation(format!(
                "{key}: a session of a deactivated member, yet no finding keeps it out of v2"
            ));
            continue;
        }
        law_sess.written(ledger, &key, actual.has(SESSIONS, &id), &id);
        let created = rules::parse_time(&x.created_at).map_or(Cell::Any, Cell::Ts);
        let ip = text(&x.ip_address).and_then(|ip| canonical_ip(&ip));
        Changes::default()
            .text("id", &x.id)
            .text("device_info", &x.device_info)
            .text("ip_address", &x.ip_address)
            .when("ip_address", !x.ip_address.is_null() && ip.is_none())
            .time("created_at", &x.created_at)
            .time("expires_at", &x.expires_at)
            .settle(ledger, "session", &key, &mut out);
        sessions.insert(
            id.clone(),
            vec![
                s(&id),
                s(&user),
                created.clone(),
                rules::parse_time(&x.expires_at).map_or(Cell::Any, Cell::Ts),
                created,
                os(text(&x.device_info).as_deref()),
                os(ip.as_deref()),
            ],
        );
    }

    out.law = vec![
        law_users,
        law_prayers,
        law_marks,
        law_attrs,
        law_role,
        law_grants,
        law_inv,
        law_sess,
    ];
    out.law.extend(law_email);
    out.expected = vec![users, prayers, marks, roles, invites, sessions, flags];
    out.marks = mark_side;
    out.orphans = seen.orphans(ledger);
    out.mark_context = Some(ctx);
    out.unresolved_marks = unresolved_seqs;
    Ok(out)
}

/// Settles the marks' law once `actual` (the marks read back from v2) is known: each written
/// mark is found in v2 or a violation, exactly as for every other table; the examples stay the
/// first violations in v1 scan order (the v1 keys of missing marks are read again, only when
/// there are any).
pub fn settle_marks(
    v1: &V1Database,
    ledger: &Ledger,
    derived: &mut Derived,
    actual: &MarkSide,
) -> Result<(), V1Error> {
    let (found, repaired, missing) = derived.marks.trace_in(actual);
    let Some(law) = derived.law.get_mut(MARK_LAW) else {
        return Ok(());
    };
    law.written += found;
    law.repaired += repaired;
    if missing.is_empty() {
        return Ok(());
    }
    law.violations += missing.len() as u64;
    let mut examples: Vec<(u32, String)> = derived
        .unresolved_marks
        .iter()
        .copied()
        .zip(std::mem::take(&mut law.examples))
        .collect();
    let wanted: Vec<u32> = missing.iter().copied().take(MAX_LAW_EXAMPLES).collect();
    if let Some(ctx) = &derived.mark_context {
        let mut seq = 0u32;
        v1.for_each::<MarkRow, V1Error, _>(|m| {
            if wanted.binary_search(&seq).is_ok() {
                let key = row_key(&m.id, m.rowid);
                if let MarkFate::Written(w) = mark_fate(&m, &key, ledger, ctx) {
                    let v2 = mark_key(&w.prayer, &w.user, w.at);
                    examples.push((
                        seq,
                        format!(
                            "{} {key}: no finding, yet not in v2 (expected {v2})",
                            law.table
                        ),
                    ));
                }
            }
            seq += 1;
            Ok(())
        })?;
    }
    examples.sort_by_key(|(s, _)| *s);
    law.examples = examples
        .into_iter()
        .take(MAX_LAW_EXAMPLES)
        .map(|(_, e)| e)
        .collect();
    Ok(())
}

/// Rows per batch handed from a reading thread to the derivation, and batches read ahead.
const BATCH_ROWS: usize = 4096;
const BATCHES_AHEAD: usize = 2;

type Batches<R> = (
    std::sync::mpsc::Receiver<Vec<R>>,
    std::thread::JoinHandle<Result<u64, V1Error>>,
);

/// Reads `R`'s table (full scan, rowid order) on a thread of its own with a second read-only
/// handle, a few batches ahead of the derivation, which consumes them in the same order.
fn read_ahead<R: V1Row + Send + 'static>(v1: &V1Database, rows: usize) -> Batches<R> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<R>>(BATCHES_AHEAD);
    let path = v1.path().to_path_buf();
    let reader = std::thread::spawn(move || {
        let v1 = V1Database::open(&path)?;
        let mut batch = Vec::with_capacity(rows);
        let mut open = true;
        let n = v1.for_each::<R, V1Error, _>(|r| {
            if open {
                batch.push(r);
                if batch.len() == rows {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(rows));
                    // The derivation stopped (an error): read on without handing rows over.
                    open = tx.send(full).is_ok();
                }
            }
            Ok(())
        })?;
        if open && !batch.is_empty() {
            let _ = tx.send(batch);
        }
        Ok(n)
    });
    (rx, reader)
}

/// The (table, key) pairs findings name that v1 rows have, noted during the scans.
#[derive(Default)]
struct Seen(HashSet<(&'static str, String)>);

impl Seen {
    fn note(&mut self, ledger: &Ledger, table: &'static str, key: &str) {
        if ledger.names(table, key) {
            self.0.insert((table, key.to_string()));
        }
    }

    /// Findings naming a carried (table, key) that no v1 row has, sorted.
    fn orphans(&self, ledger: &Ledger) -> Vec<String> {
        let carried: HashSet<&str> = thywill_v1::CARRIED_TABLES.into_iter().collect();
        let mut out: Vec<String> = ledger
            .named
            .iter()
            .filter(|(t, _)| carried.contains(t.as_str()))
            .flat_map(|(t, keys)| keys.iter().map(move |k| (t, k)))
            .filter(|(t, k)| !self.0.contains(&(t.as_str(), (*k).clone())))
            // a recovered record has no v1 row: checked against the tree instead
            .filter(|(t, k)| !ledger.recovered_in(t).is_some_and(|r| r.contains(*k)))
            .map(|(t, k)| format!("{t} {k}: a finding names a row v1 does not have"))
            .collect();
        out.sort();
        out
    }
}

/// A mark the derivation writes: its v2 key cells and its id (`None`: not derivable).
pub(crate) struct WrittenMark {
    prayer: String,
    user: String,
    at: NaiveDateTime,
    id: Option<String>,
    /// The zone skipped or repeated its wall-clock time (an `R-TIME` repair is owed).
    shifted: bool,
}

pub(crate) enum MarkFate {
    Excluded(Disposition),
    Unresolved,
    Written(WrittenMark),
}

/// Where one v1 mark must end (the one derivation both mark passes use).
fn mark_fate(m: &MarkRow, key: &str, ledger: &Ledger, ctx: &MarkContext) -> MarkFate {
    if let Some(d) = ledger.excluded("prayermark", key) {
        return MarkFate::Excluded(d);
    }
    resolve_mark(m, ledger, ctx).map_or(MarkFate::Unresolved, MarkFate::Written)
}

/// A mark's v2 cells when its prayer is written, its member resolves and its time parses.
fn resolve_mark(m: &MarkRow, ledger: &Ledger, ctx: &MarkContext) -> Option<WrittenMark> {
    let prayer = ledger
        .prayer_id(&m.prayer_id)
        .filter(|p| ctx.written_prayers.contains(p));
    let user = ctx.members.resolve(&m.user);
    let local = ledger.clock.mark(&m.created_at);
    let at = local
        .map(|l| l.at)
        .or_else(|| rules::time_from_archive_path(&m.text_file_path));
    // A non-hex mark id becomes UUID v5 of `mark:<prayer>:<user>:<marked_at>`, but the spec
    // does not fix how `marked_at` is written there: such ids are checked for format only.
    Some(WrittenMark {
        prayer: prayer?,
        user: user?,
        at: at?,
        id: rules::hex_key(&m.id),
        shifted: local.is_some_and(|l| l.shifted),
    })
}

/// `R-MARK-KEY` (decisions.md): of written marks whose hex ids are one, the one stored
/// canonically (else the smallest rowid) keeps it; the others carry a UUID v5 id (checked for
/// format only, like every non-hex mark's) and must have a `repaired` finding.
fn rekeyed_marks(
    v1: &V1Database,
    ledger: &Ledger,
    mut hex_ids: Vec<(u128, bool, i64, u32)>,
    side: &mut MarkSide,
    out: &mut Derived,
) -> Result<(), V1Error> {
    hex_ids.sort_unstable();
    let mut rekeyed = HashSet::new();
    for same in hex_ids.chunk_by(|a, b| a.0 == b.0) {
        for &(_, _, rowid, seq) in &same[1..] {
            rekeyed.insert(seq);
            out.rekeyed_marks.insert(rowid);
            let key = match v1.row_by_rowid::<MarkRow>(rowid)? {
                Some(m) => row_key(&m.id, rowid),
                None => format!("rowid:{rowid}"),
            };
            Changes::default()
                .when("id", true)
                .settle(ledger, "prayermark", &key, out);
        }
    }
    if !rekeyed.is_empty() {
        side.any_id_at(&rekeyed);
    }
    Ok(())
}

/// The act of prayer a mark records, at minute precision: two marks of one prayer and member in
/// one minute may be one act stored twice (`R-MARK-DUPLICATE` (a) and (b)); marks in different
/// minutes never are.
fn minute_of(w: &WrittenMark) -> KeyHash {
    let minute =
        w.at.with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(w.at);
    key_hash(&w.prayer, &w.user, minute)
}

/// The marks of `keys` (all marks for `None`) in full, derived from v1 (the targeted second pass:
/// only when the compact comparison found differences).
pub fn expected_marks(
    v1: &V1Database,
    ledger: &Ledger,
    derived: &Derived,
    keys: Option<&HashSet<KeyHash>>,
) -> Result<CanonTable, V1Error> {
    let mut t = CanonTable::of::<PrayerMark>();
    let Some(ctx) = &derived.mark_context else {
        return Ok(t);
    };
    v1.for_each::<MarkRow, V1Error, _>(|m| {
        let key = row_key(&m.id, m.rowid);
        if let MarkFate::Written(w) = mark_fate(&m, &key, ledger, ctx) {
            if keys.is_none_or(|k| k.contains(&key_hash(&w.prayer, &w.user, w.at))) {
                let id = match w.id {
                    Some(id) if !derived.rekeyed_marks.contains(&m.rowid) => Cell::Str(id),
                    _ => Cell::Any,
                };
                t.insert(
                    mark_key(&w.prayer, &w.user, w.at),
                    vec![id, s(&w.prayer), s(&w.user), Cell::Ts(w.at)],
                );
            }
        }
        Ok(())
    })?;
    for (prayer, user, at, id) in &derived.recovered_marks {
        if keys.is_none_or(|k| k.contains(&key_hash(prayer, user, *at))) {
            t.insert(
                mark_key(prayer, user, *at),
                vec![s(id), s(prayer), s(user), Cell::Ts(*at)],
            );
        }
    }
    Ok(t)
}

/// Every v1 user row's display name as stored (text).
fn v1_user_names(v1: &V1Database) -> Result<HashSet<String>, V1Error> {
    Ok(v1
        .read_all::<UserRow>()?
        .iter()
        .filter_map(|u| u.display_name.to_text_lossy().map(|n| n.into_owned()))
        .collect())
}

/// The members the v1 archive tree gives v2 (already among the expected `users`): in the law as
/// recovered (and written when found), each named by a `recovered` finding and no other.
fn recovered_users(
    ledger: &Ledger,
    actual: &Actual,
    recovery: Option<&Recovery>,
    law: &mut LawTally,
    out: &mut Derived,
) {
    let mut derived = HashSet::new();
    for id in recovery.map(|r| r.users.as_slice()).unwrap_or_default() {
        law.recovered += 1;
        law.written_with(ledger, id, actual.has(USERS, id), || id.clone());
        out.user_ids.push(id.clone());
        derived.insert(id.clone());
    }
    for problem in crate::recovered::unmatched("user", &derived, ledger.recovered_in("user")) {
        law.violation(problem);
    }
    out.recovered_users = derived.into_iter().collect();
    out.recovered_users.sort();
}

/// The prayers the v1 archive tree gives v2: expected in `prayers`, in the law as recovered
/// (and written when found), each named by a `recovered` finding and no other.
fn recovered_prayers(
    ledger: &Ledger,
    actual: &Actual,
    recovery: Option<&Recovery>,
    prayers: &mut CanonTable,
    law: &mut LawTally,
) -> Vec<String> {
    let mut derived = HashSet::new();
    for (id, cells, _) in recovery.map(|r| r.prayers.as_slice()).unwrap_or_default() {
        law.recovered += 1;
        law.written_with(ledger, id, actual.has(PRAYERS, id), || id.clone());
        prayers.insert(id.clone(), cells.clone());
        derived.insert(id.clone());
    }
    for problem in crate::recovered::unmatched("prayer", &derived, ledger.recovered_in("prayer")) {
        law.violation(problem);
    }
    let mut ids: Vec<String> = derived.into_iter().collect();
    ids.sort();
    ids
}

/// The marks the v1 archive tree gives v2: expected among the marks (found in v2 when the
/// marks' law is settled), each named by a `recovered` finding and no other.
fn recovered_marks(
    ledger: &Ledger,
    marks: &[(String, String, NaiveDateTime, String)],
    side: &mut MarkSide,
    law: &mut LawTally,
) {
    let mut derived = HashSet::new();
    for (prayer, user, at, id) in marks {
        law.recovered += 1;
        side.push_traced(key_hash(prayer, user, *at), Some(id), u32::MAX, false);
        derived.insert(id.clone());
    }
    for problem in
        crate::recovered::unmatched("prayermark", &derived, ledger.recovered_in("prayermark"))
    {
        law.violation(problem);
    }
}

/// Users: ids, repaired names, enums, times, the resolved invite tree; returns the member
/// resolver every other table uses.
fn derive_users(
    v1: &V1Database,
    ledger: &Ledger,
    actual: &Actual,
    table: &mut CanonTable,
    law: &mut LawTally,
    out: &mut Derived,
    seen: &mut Seen,
) -> Result<Members, V1Error> {
    let schema = v1.schema();
    let kind = schema.user_key;
    let mut members = Members {
        kind,
        by_ref: HashMap::new(),
        respelling: Respelling::default(),
        joined: HashMap::new(),
        created: HashMap::new(),
        clock: ledger.clock,
        names: HashMap::new(),
        row_refs: HashSet::new(),
    };
    let mut written: Vec<(UserRow, String, String)> = Vec::new();
    let mut excluded_in_v2: Vec<(String, Disposition, String)> = Vec::new();
    let rows = v1.read_all::<UserRow>()?;
    let sound = SoundUsers::new(&rows, kind, &ledger.test_accounts);
    for u in rows {
        law.read += 1;
        let key_v = if kind == UserRefKind::ById {
            &u.id
        } else {
            &u.display_name
        };
        let key = row_key(key_v, u.rowid);
        seen.note(ledger, "user", &key);
        let name = match ledger.decisions.as_ref().and_then(|d| d.display_name(&key)) {
            Some(operator) => operator.to_string(),
            None => rules::repair_name(&text(&u.display_name).unwrap_or_default()),
        };
        let own = match kind {
            UserRefKind::ById => rules::hex_key(&u.id).or_else(|| rules::text_key_id(&u.id)),
            UserRefKind::ByName => rules::v5_id(&format!("user:{name}"))
                .or_else(|| ledger.mapped(&["user", "users"], &key).cloned()),
        };
        // G0/G1 references hold the member's key, G2/G3 ones the name (v1.md), never the other.
        let mut refs = vec![key.clone()];
        let respelled_row = match kind {
            UserRefKind::ById => {
                refs.extend(rules::reference_key(&u.id));
                None
            }
            UserRefKind::ByName => {
                refs.push(name.clone());
                let stored = u.display_name.to_text_lossy().unwrap_or_default();
                Some(members.respelling.add(&stored))
            }
        };
        members.row_refs.extend(refs.iter().cloned());
        match ledger.excluded("user", &key) {
            None => {
                let Some(id) = own else {
                    law.violation(format!("{key}: no finding, yet no v2 id can be derived"));
                    continue;
                };
                law.written(ledger, &key, actual.has(USERS, &id), &id);
                let renamed = text(&u.display_name).as_deref() != Some(name.as_str());
                if renamed {
                    out.renamed.push(key.clone());
                }
                Changes::default()
                    .text("display_name", &u.display_name)
                    .text("prayer_style", &u.prayer_style)
                    .when("prayer_style", too_wide(&u.prayer_style))
                    .when("display_name", renamed)
                    .time("created_at", &u.created_at)
                    .when("created_at", shifted(&ledger.clock, &u.created_at))
                    .time("supporter_since", &u.supporter_since)
                    .text("supporter_type", &u.supporter_type)
                    .when(
                        "supporter_type",
                        supporter_type(&u.supporter_type).is_none()
                            && text(&u.supporter_type).is_some_and(|t| !t.is_empty()),
                    )
                    .when("is_supporter", not_a_flag(&u.is_supporter))
                    .when(
                        "welcome_message_dismissed",
                        not_a_flag(&u.welcome_message_dismissed),
                    )
                    .settle(ledger, "user", &key, out);
                for r in refs {
                    members.by_ref.entry(r).or_insert_with(|| id.clone());
                }
                if let Some(row) = respelled_row {
                    members.respelling.targets[row] = Some(id.clone());
                }
                members.note_joined(&u, &id);
                members.names.insert(name.clone(), id.clone());
                written.push((u, id, name));
            }
            Some(Disposition::Merged) => {
                law.account(Disposition::Merged);
                if ledger.derive_exclusions && own.is_some() && sound.is_sound(&u, kind, &name) {
                    out.underived("user", &key, Disposition::Merged);
                }
                let to = ledger.mapped(&["user", "users"], &key);
                if let Some(to) = to {
                    for r in refs {
                        members.by_ref.entry(r).or_insert_with(|| to.clone());
                    }
                    if let Some(row) = respelled_row {
                        members.respelling.targets[row] = Some(to.clone());
                    }
                    members.note_joined(&u, &to.clone());
                }
                match to {
                    Some(to) if actual.has(USERS, to) => {}
                    to => law.violation(format!(
                        "{key}: merged, but migration_id_map points at {} which is not a v2 user",
                        to.map_or("nothing", |s| s.as_str())
                    )),
                }
            }
            Some(d) => {
                law.account(d);
                if ledger.derive_exclusions && own.is_some() && sound.is_sound(&u, kind, &name) {
                    out.underived("user", &key, d);
                }
                if let Some(id) = own.filter(|id| actual.has(USERS, id)) {
                    excluded_in_v2.push((key.clone(), d, id));
                }
            }
        }
    }
    // Checked once every user is read: a member written later may hold the same id (`…AB` then
    // `…ab`, or a BLOB key spelling a hex id), and then v2 holding it is that member's row.
    for (key, d, id) in excluded_in_v2 {
        if !written.iter().any(|(_, w, _)| *w == id) {
            law.violation(format!("{key}: {d:?}, yet v2 holds its id {id}"));
        }
    }
    // Written users take precedence over merged aliases for their own names and keys.
    for (u, id, name) in &written {
        let own_ref = match kind {
            UserRefKind::ById => u.id.key_text(),
            UserRefKind::ByName => Some(name.clone()),
        };
        if let Some(r) = own_ref {
            members.by_ref.insert(r, id.clone());
        }
    }
    let inviter = invite_tree(&written, &members);
    let has_pref = schema.has_column("user", "religious_preference");
    for ((u, id, name), inv) in written.into_iter().zip(inviter) {
        let created = members
            .clock
            .local(&u.created_at)
            .map_or(Cell::Any, |t| Cell::Ts(t.at));
        members.created.insert(id.clone(), created.clone());
        let pref = if has_pref {
            rules::religious_preference(&u.religious_preference)
        } else {
            "unspecified".into()
        };
        out.user_ids.push(id.clone());
        table.insert(
            id.clone(),
            vec![
                s(&id),
                s(&name),
                Cell::Null,
                s(&pref),
                os(short_text(&u.prayer_style).as_deref()),
                inv,
                created.clone(),
                created,
                Cell::Bool(true),
                Cell::Bool(u.is_supporter.as_bool().unwrap_or(false)),
                ot(rules::parse_time(&u.supporter_since)),
                os(supporter_type(&u.supporter_type).as_deref()),
                Cell::Bool(u.welcome_message_dismissed.as_bool().unwrap_or(false)),
                // v1's e-mail database is not read yet: no address, no verification.
                Cell::Null,
            ],
        );
    }
    Ok(members)
}

/// Which users no rule keeps out of v2 under `repair`: a valid, canonical `created_at`, a name
/// that is not empty once repaired and not a test account's, and neither its folded name nor its
/// normalised key shared with another row (those are `R-USER-DUPLICATE` merges and
/// `R-USER-UNRETRIEVABLE` collisions, whichever row survives). Deliberately coarse: a row it
/// calls sound is one the validator is sure belongs in v2.
struct SoundUsers {
    names: HashMap<String, u32>,
    keys: HashMap<String, u32>,
    test_accounts: Vec<String>,
}

impl SoundUsers {
    fn new(rows: &[UserRow], kind: UserRefKind, test_accounts: &[String]) -> Self {
        let mut names: HashMap<String, u32> = HashMap::new();
        let mut keys: HashMap<String, u32> = HashMap::new();
        for u in rows {
            let name = rules::repair_name(&text(&u.display_name).unwrap_or_default());
            *names.entry(rules::fold_name(&name)).or_default() += 1;
            if kind == UserRefKind::ById {
                if let Some(k) = rules::normalise_key(&u.id) {
                    *keys.entry(k).or_default() += 1;
                }
            }
        }
        let test_accounts = if test_accounts.is_empty() {
            rules::DEFAULT_TEST_ACCOUNTS
                .iter()
                .map(|n| n.to_string())
                .collect()
        } else {
            test_accounts.to_vec()
        };
        SoundUsers {
            names,
            keys,
            test_accounts,
        }
    }

    /// `name`: the row's repaired display name.
    fn is_sound(&self, u: &UserRow, kind: UserRefKind, name: &str) -> bool {
        let raw = text(&u.display_name).unwrap_or_default();
        let key_ok = match kind {
            // A hex id, or a plain text key (`admin`): a damaged text key (invisible or
            // direction characters, spaces) is one the migration may quarantine.
            UserRefKind::ById => {
                let plain = rules::hex_key(&u.id).is_some()
                    || u.id
                        .as_str()
                        .is_some_and(|k| k.bytes().all(|b| b.is_ascii_graphic()));
                plain
                    && rules::normalise_key(&u.id).is_some_and(|k| {
                        self.keys.get(&k) == Some(&1) && k != rules::KNOWN_TEST_ACCOUNT_ID
                    })
            }
            UserRefKind::ByName => true,
        };
        key_ok
            && rules::shows_something(name)
            && !self.test_accounts.iter().any(|t| *t == raw || t == name)
            && self.names.get(&rules::fold_name(name)) == Some(&1)
            && rules::is_canonical_time(&u.created_at)
    }
}

/// An optional text as v2 holds it: an empty one is NULL (both mean none; decisions.md).
fn optional_text(v: &V1Value) -> Option<String> {
    text(v).filter(|t| !t.is_empty())
}

/// A short optional text (`project_tag`, `prayer_style`) as v2's 100-character column holds
/// it: the first 100 characters (`R-TEXT-LENGTH`, repaired).
fn short_text(v: &V1Value) -> Option<String> {
    optional_text(v).map(|t| t.chars().take(SHORT_WIDTH).collect())
}

/// Whether `v` is wider than v2's short text columns (a change its finding must name).
fn too_wide(v: &V1Value) -> bool {
    optional_text(v).is_some_and(|t| t.chars().count() > SHORT_WIDTH)
}

/// Width of `prayers.project_tag` and `users.prayer_style` (v2.md).
const SHORT_WIDTH: usize = 100;

/// v2's `supporter_type`: v1's badge list as text, NULL when empty or wider than v2's 255
/// characters (`R-ENUM`).
fn supporter_type(v: &V1Value) -> Option<String> {
    optional_text(v).filter(|t| t.chars().count() <= 255)
}

/// A member flag that is neither NULL nor a boolean (written false, `R-ENUM`).
fn not_a_flag(v: &V1Value) -> bool {
    !v.is_null() && v.as_bool().is_none()
}

/// `R-INVITE-TREE`: each written user's resolved inviter, without self-links, missing users or
/// cycles (a cycle loses the link of its newest account).
/// The inviter of each written member as v2 must hold it (`R-INVITE-TREE`: a link to a missing
/// user or to the member itself dropped; of a cycle, the link of the newest account). `Cell::Any`
/// where the cycle's newest account cannot be told: a member whose `created_at` fits no shape
/// has it from evidence the validator does not gather (rules.md, `R-TIME`), so it may be the
/// newest; those links, and the newest known one's, are not checked.
fn invite_tree(written: &[(UserRow, String, String)], members: &Members) -> Vec<Cell> {
    let pos: HashMap<&str, usize> = written
        .iter()
        .enumerate()
        .map(|(i, (_, id, _))| (id.as_str(), i))
        .collect();
    let mut link: Vec<Option<usize>> = written
        .iter()
        .enumerate()
        .map(|(i, (u, _, _))| {
            let to = members.resolve(&u.invited_by)?;
            pos.get(to.as_str()).copied().filter(|&j| j != i)
        })
        .collect();
    // Newest by `created_at`, ties by the v1 key (as the survivor of a duplicate is chosen).
    let created: Vec<(Option<NaiveDateTime>, String)> = written
        .iter()
        .map(|(u, _, _)| {
            let key_v = match members.kind {
                UserRefKind::ById => &u.id,
                UserRefKind::ByName => &u.display_name,
            };
            (
                members.clock.local(&u.created_at).map(|t| t.at),
                row_key(key_v, u.rowid),
            )
        })
        .collect();
    // Colour walk: 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; written.len()];
    let mut undecided = vec![false; written.len()];
    for start in 0..written.len() {
        let mut path = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            if state[i] == 2 {
                break;
            }
            if state[i] == 1 {
                let cycle = &path[path.iter().position(|&p| p == i).unwrap_or(0)..];
                if let Some(&newest) = cycle
                    .iter()
                    .max_by_key(|&&c: &&usize| (created[c].0, created[c].1.as_str()))
                {
                    link[newest] = None;
                    let unknown = |c: usize| created[c].0.is_none();
                    if cycle.iter().any(|&c| unknown(c)) {
                        for &c in cycle {
                            undecided[c] |= unknown(c) || c == newest;
                        }
                    }
                }
                break;
            }
            state[i] = 1;
            path.push(i);
            at = link[i];
        }
        for p in path {
            state[p] = 2;
        }
    }
    link.into_iter()
        .zip(undecided)
        .map(|(l, undecided)| match (undecided, l) {
            (true, _) => Cell::Any,
            (false, l) => os(l.map(|j| written[j].1.as_str())),
        })
        .collect()
}

type Flag = Option<(String, Vec<Cell>)>;

/// A prayer's expected cells and its carried flag, from its row and its carried attributes.
fn prayer_cells(
    p: &PrayerRow,
    id: &str,
    author: &str,
    attrs: &[AttributeRow],
    members: &Members,
    schema: &thywill_v1::Schema,
    restored_at: Option<NaiveDateTime>,
) -> (Vec<Cell>, Flag) {
    // A `created_at` no shape fits: the witness file's `Submitted` (§50), else the archive
    // path's date.
    let created = members
        .clock
        .local(&p.created_at)
        .map(|t| t.at)
        .or(restored_at)
        .or_else(|| rules::time_from_archive_path(&p.text_file_path));
    // An attribute's time: its `created_at`, else (R-TIME) the date of its archive path.
    let time_of = |a: &AttributeRow| {
        rules::parse_time(&a.created_at)
            .or_else(|| rules::time_from_archive_path(&a.text_file_path))
    };
    let mut sorted: Vec<&AttributeRow> = attrs.iter().collect();
    sorted.sort_by_key(|a| (time_of(a), a.rowid));
    // Of several rows of one name, v1 shows `.first()`, the smallest rowid (rules.md; the
    // others are `R-ATTR-DUPLICATE` and not among the carried rows here).
    let named = |n: &str| {
        attrs
            .iter()
            .filter(|a| text(&a.name).is_some_and(|x| x.trim() == n))
            .min_by_key(|a| a.rowid)
    };
    let truthy = |a: &AttributeRow| a.value.as_bool().unwrap_or(true);
    let archived = named("archived").is_some_and(truthy);
    let answered = named("answered").filter(|a| truthy(a));
    let answered_at = answered.map(|a| {
        named("answer_date")
            .and_then(|d| members.clock.local(&d.value).map(|t| t.at))
            .or_else(|| time_of(a))
    });
    let testimony = answered
        .and_then(|_| named("answer_testimony"))
        .and_then(|t| text(&t.value));
    let updated = created.map(|c| {
        sorted
            .iter()
            .filter_map(|a| time_of(a))
            .fold(c, |m, t| m.max(t))
    });
    let mut body = text(&p.text).unwrap_or_default();
    if !PRAYER_TEXT_CHARS.contains(&body.chars().count()) {
        body = body.trim().to_string();
    }
    let audience = if schema.has_column("prayer", "target_audience") {
        rules::target_audience(&p.target_audience)
    } else {
        "all".into()
    };
    let row = vec![
        s(id),
        s(author),
        s(&body),
        os(optional_text(&p.generated_prayer).as_deref()),
        os(short_text(&p.project_tag).as_deref()),
        s(&audience),
        created.map_or(Cell::Any, Cell::Ts),
        updated.map_or(Cell::Any, Cell::Ts),
        Cell::Bool(archived),
        Cell::Bool(answered.is_some()),
        match answered_at {
            Some(Some(t)) => Cell::Ts(t),
            Some(None) => Cell::Any,
            None => Cell::Null,
        },
        os(testimony.as_deref()),
    ];
    let flag_attr = named("flagged").filter(|a| truthy(a));
    let flagged = p.flagged.as_bool().unwrap_or(false) || flag_attr.is_some();
    let flag = flagged.then(|| {
        let by = flag_attr.and_then(|a| members.resolve(&a.created_by));
        let at = flag_attr.and_then(time_of).or(created);
        let key = format!("{id}|{}", by.as_deref().unwrap_or(""));
        let cells = vec![
            Cell::Any,
            s(id),
            os(by.as_deref()),
            s(CARRIED_FLAG_REASON),
            at.map_or(Cell::Any, Cell::Ts),
            Cell::Null,
            Cell::Null,
            Cell::Null,
        ];
        (key, cells)
    });
    (row, flag)
}

/// True when an invite count is present but not a non-negative integer below 2^31.
fn count_is_bad(v: &V1Value) -> bool {
    !v.is_null()
        && !v
            .as_i64()
            .is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
}

/// An invite's expected cells.
/// A prayer no rule keeps out of v2 under `repair`: a hex id, an author who is written, a
/// `created_at` in v1's own shape, and a text that is neither empty nor longer than 5000
/// characters after trimming (`R-ORPHAN`, `R-TIME` without evidence, `R-TEXT-LENGTH`; every other
/// rule on a prayer repairs it).
///
/// A value the witness file restores (`restored`, decisions.md §50) counts as sound.
fn prayer_is_sound(p: &PrayerRow, members: &Members, restored: Option<&Restored>) -> bool {
    let chars = text(&p.text).map(|t| t.trim().chars().count());
    let r = restored.unwrap_or(&NOTHING_RESTORED);
    rules::hex_key(&p.id).is_some()
        && (members.resolve(&p.author).is_some() || r.author.is_some())
        && (rules::is_canonical_time(&p.created_at) || r.created_at.is_some())
        && (chars.is_some_and(|n| (1..=5000).contains(&n)) || r.text.is_some())
}

/// What a row without a witness restores.
static NOTHING_RESTORED: Restored = Restored {
    text: None,
    created_at: None,
    author: None,
};

/// An invite no rule keeps out of v2 under `repair`: an unchanged text token, an expiry in v1's
/// own shape, counts v2 can hold, an inviting kind (`R-INVITE-KIND`: none, `new_user`, `admin`),
/// and members that resolve when named.
fn invite_is_sound(i: &InviteRow, multi_use: bool, members: &Members) -> bool {
    let token_ok = text(&i.token).is_some_and(|t| !t.trim().is_empty() && t.chars().count() <= 64)
        && !rules::text_changes(&i.token);
    let kind_ok = inviting_kind(&i.token_type);
    let counts_ok = if multi_use {
        !count_is_bad(&i.usage_count) && !count_is_bad(&i.max_uses)
    } else {
        i.used.is_null() || i.used.as_bool().is_some()
    };
    let named_resolves = |v: &V1Value| v.is_null() || members.resolve(v).is_some();
    let creator_ok = named_resolves(&i.created_by)
        || text(&i.created_by).is_some_and(|t| t.trim().eq_ignore_ascii_case("system"));
    token_ok
        && kind_ok
        && counts_ok
        && creator_ok
        && named_resolves(&i.used_by)
        && rules::is_canonical_time(&i.expires_at)
}

/// v1 treats a member named exactly `admin` as an admin without any grant row: v2 has that
/// grant, at the member's `created_at` and granted by nobody, unless a grant of v1 made it.
fn implicit_admin(users: &CanonTable, roles: &mut CanonTable) {
    let col = |name: &str| users.columns.iter().position(|c| *c == name);
    let (Some(name), Some(created)) = (col("display_name"), col("created_at")) else {
        return;
    };
    let admin = users
        .rows
        .iter()
        .find(|(_, cells)| cells[name] == Cell::Str("admin".into()));
    if let Some((id, cells)) = admin {
        let key = format!("{id}|admin");
        if !roles.rows.contains_key(&key) {
            let row = vec![s(id), s("admin"), cells[created].clone(), Cell::Null];
            roles.insert(key, row);
        }
    }
}

/// A grant no rule keeps out of v2 under `repair`: its member resolves, its role is one v2
/// carries (`admin`, `moderator`) or the `deactivated` state, its grant time is in v1's own
/// shape (a deactivation keeps none), and it has no expiry or one after the run. Returns the
/// member's v2 id and the role, `None` when it is not sound.
fn grant_is_sound<'r>(
    g: &UserRoleRow,
    role: Option<&'r str>,
    members: &Members,
    as_of: Option<NaiveDateTime>,
) -> Option<(String, &'r str)> {
    let role = role.filter(|r| ["admin", "moderator", "deactivated"].contains(r))?;
    let user = members.resolve(&g.user)?;
    let granted_ok = role == "deactivated" || rules::is_canonical_time(&g.granted_at);
    (granted_ok && live_after(&g.expires_at, true, as_of)).then_some((user, role))
}

/// Whether v2 holds member `user`'s grant of `role`: a `user_roles` row, or for the
/// `deactivated` state the member's inactive row.
fn grant_in_v2(actual: &Actual, user: &str, role: &str) -> bool {
    if role == "deactivated" {
        actual.cell(USERS, user, "is_active") == Some(&Cell::Bool(false))
    } else {
        actual.has(ROLES, &format!("{user}|{role}"))
    }
}

/// A session no rule keeps out of v2 under `repair`: its member resolves and is not
/// deactivated, both times are in v1's own shape and it expires after the run, and it is fully
/// authenticated where v1 records that.
fn session_is_sound(
    x: &SessionRow,
    has_auth: bool,
    members: &Members,
    deactivated: &HashSet<String>,
    as_of: Option<NaiveDateTime>,
) -> bool {
    let member_ok = members
        .resolve(&x.user)
        .is_some_and(|u| !deactivated.contains(&u));
    member_ok
        && text(&x.id).is_some_and(|t| session_id_fits(&t))
        && rules::is_canonical_time(&x.created_at)
        && live_after(&x.expires_at, false, as_of)
        && expires_after_creation(x)
        && (!has_auth || x.is_fully_authenticated.as_bool() == Some(true))
}

/// Whether a session's expiry is after its creation, as v2's check requires (true when either
/// time does not parse: that is another rule's row).
fn expires_after_creation(x: &SessionRow) -> bool {
    match (
        rules::parse_time(&x.created_at),
        rules::parse_time(&x.expires_at),
    ) {
        (Some(c), Some(e)) => e > c,
        _ => true,
    }
}

/// Whether `id` can be a v2 session id (`sessions.id`: 1 to 64 printable ASCII characters).
fn session_id_fits(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether expiry `v` is after the run's clock `as_of`: NULL counts as never when `nullable`;
/// an expiry in another shape, or no clock to compare with, is not derived (false).
fn live_after(v: &V1Value, nullable: bool, as_of: Option<NaiveDateTime>) -> bool {
    if v.is_null() {
        return nullable;
    }
    match (as_of, rules::is_canonical_time(v), rules::parse_time(v)) {
        (Some(now), true, Some(t)) => t > now,
        _ => false,
    }
}

/// Whether `token_type` invites a new member (`R-INVITE-KIND`): none (G0–G2), `new_user` or
/// `admin`.
fn inviting_kind(token_type: &V1Value) -> bool {
    match text(token_type) {
        None => token_type.is_null(),
        Some(t) => ["new_user", "admin"].contains(&t.trim().to_ascii_lowercase().as_str()),
    }
}

fn invite_cells(
    i: &InviteRow,
    token: &str,
    multi_use: bool,
    members: &Members,
    claimed: &[(Cell, String)],
    lifetime: Duration,
) -> Vec<Cell> {
    let expires = rules::parse_time(&i.expires_at);
    // The latest claim is `used_by`/`used_at` (ties: the greater account id); the first bounds
    // the creation. A claim whose time is not derived leaves those open.
    let times: Option<Vec<NaiveDateTime>> = claimed
        .iter()
        .map(|(at, _)| match at {
            Cell::Ts(t) => Some(*t),
            _ => None,
        })
        .collect();
    let (used_by, used_at, first) = match &times {
        Some(times) => {
            let latest = times
                .iter()
                .zip(claimed)
                .max_by(|a, b| (a.0, &a.1 .1).cmp(&(b.0, &b.1 .1)));
            (
                os(latest.map(|l| l.1 .1.as_str())),
                latest.map_or(Cell::Null, |l| Cell::Ts(*l.0)),
                times.iter().min().copied(),
            )
        }
        None if claimed.len() == 1 => (s(&claimed[0].1), Cell::Any, None),
        None => (Cell::Any, Cell::Any, None),
    };
    let created = match (expires, first, &times) {
        (Some(e), Some(u), _) => Cell::Ts((e - lifetime).min(u)),
        (Some(e), None, Some(_)) => Cell::Ts(e - lifetime),
        _ => Cell::Any,
    };
    // `R-INVITE-COUNT`: a count v2's integer cannot hold is repaired from the claims (their
    // number); a `max_uses` beyond 2^31 − 1 can never be reached (NULL). Claims, when there
    // are any, are the use count.
    let claims = claimed.len() as i64;
    let (max_uses, use_count) = if multi_use {
        let max_uses = match i.max_uses.as_i64() {
            Some(n) if !count_is_bad(&i.max_uses) => Cell::Int(n),
            _ => Cell::Null,
        };
        let use_count = match i.usage_count.as_i64() {
            Some(n) if !count_is_bad(&i.usage_count) => n,
            _ if i.usage_count.is_null() => 0,
            _ => claims,
        };
        (max_uses, Cell::Int(use_count))
    } else {
        let used = match (&i.used, i.used.as_bool()) {
            (V1Value::Null, _) => 0,
            (_, Some(u)) => i64::from(u),
            (_, None) => claims,
        };
        (Cell::Int(1), Cell::Int(used))
    };
    let use_count = if claims > 0 {
        Cell::Int(claims)
    } else {
        use_count
    };
    // v1 grants admin for an `admin` token and for any token the system made; a token the
    // system made has no creator in v2, even beside a member named `system` (rules.md).
    let by_system = text(&i.created_by).is_some_and(|t| t.trim().eq_ignore_ascii_case("system"));
    let admin =
        text(&i.token_type).is_some_and(|t| t.trim().eq_ignore_ascii_case("admin")) || by_system;
    let creator = (!by_system)
        .then(|| members.resolve(&i.created_by))
        .flatten();
    vec![
        rules::v5_id(&format!("invite:{token}")).map_or(Cell::Any, Cell::Str),
        s(token),
        os(creator.as_deref()),
        Cell::Null,
        created,
        expires.map_or(Cell::Any, Cell::Ts),
        max_uses,
        use_count,
        used_at,
        used_by,
        Cell::Bool(admin),
    ]
}
