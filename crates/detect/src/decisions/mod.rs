//! The operator's decisions on quarantined rows (`--decisions FILE`, `docs/decisions.md` §48):
//! the file's vocabulary and parsing ([`Decisions::parse`]), the choices each rule allows, and
//! the editable template that lists every quarantined row of a plan ([`template`]). The
//! detector applies the entries while it decides (one decider): a row an entry carries gets a
//! `repaired` (or `merged`) finding whose reason starts `operator:`.

pub mod template;

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use crate::model::DecisionsError;
use crate::model::{Decision, RuleId};
use crate::text::{is_blank, name_problems};

/// What an operator may decide for a quarantined row (the `choice` of an entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceKind {
    /// Leave the row out of v2 (every entry's default in the template).
    KeepQuarantined,
    /// Write the row, with the operator's value for the field at fault.
    Carry,
    /// Fold the member into another member (`merge_into = "<key>"`).
    MergeInto,
    /// The member is a real one whose name is on the test-account list.
    NotATestAccount,
}

impl ChoiceKind {
    /// The choice as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            ChoiceKind::KeepQuarantined => "keep_quarantined",
            ChoiceKind::Carry => "carry",
            ChoiceKind::MergeInto => "merge_into",
            ChoiceKind::NotATestAccount => "not_a_test_account",
        }
    }

    fn parse(s: &str) -> Option<ChoiceKind> {
        [
            ChoiceKind::KeepQuarantined,
            ChoiceKind::Carry,
            ChoiceKind::MergeInto,
            ChoiceKind::NotATestAccount,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// The field a `carry` of a rule sets: the one at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarryField {
    /// `display_name` (a member whose name is blank).
    DisplayName,
    /// `text` (a prayer whose text is blank or too long).
    Text,
    /// `author`: the display name of a written member (a prayer whose author is missing).
    Author,
    /// `time`: `YYYY-MM-DD HH:MM:SS` UTC (a timestamp no shape fits).
    Time,
}

impl CarryField {
    /// The field's name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            CarryField::DisplayName => "display_name",
            CarryField::Text => "text",
            CarryField::Author => "author",
            CarryField::Time => "time",
        }
    }
}

/// The choices a quarantined row of `table` whose first quarantining rule is `rule` allows,
/// and the field a `carry` sets. `keep_quarantined` is always allowed; a `dependant` (an
/// `R-ORPHAN` row quarantined only with its quarantined parent) allows nothing else: it follows
/// its parent's decision.
pub fn allowed_choices(
    rule: RuleId,
    table: &str,
    dependant: bool,
) -> (Vec<ChoiceKind>, Option<CarryField>) {
    use ChoiceKind::*;
    match (rule, table) {
        _ if dependant => (vec![KeepQuarantined], None),
        (RuleId::UserEmptyName, "user") => (
            vec![KeepQuarantined, Carry, MergeInto],
            Some(CarryField::DisplayName),
        ),
        (RuleId::UserTestAccount, "user") => {
            (vec![KeepQuarantined, NotATestAccount, MergeInto], None)
        }
        (RuleId::UserDuplicate | RuleId::UserUnretrievable | RuleId::UserName, "user") => {
            (vec![KeepQuarantined, MergeInto], None)
        }
        (RuleId::TextLength, "prayer") => (vec![KeepQuarantined, Carry], Some(CarryField::Text)),
        (RuleId::Time, "prayer") => (vec![KeepQuarantined, Carry], Some(CarryField::Time)),
        (RuleId::Orphan, "prayer") => (vec![KeepQuarantined, Carry], Some(CarryField::Author)),
        _ => (vec![KeepQuarantined], None),
    }
}

/// An operator's value for the field at fault, checked as any v2 row's value is.
#[derive(Clone, Debug, PartialEq)]
pub enum CarryValue {
    /// A display name: not blank, at most 100 characters, no control characters, trimmed.
    DisplayName(String),
    /// A prayer text: 1–5000 characters after trimming, no NUL.
    Text(String),
    /// The display name of the member who wrote the prayer.
    Author(String),
    /// A UTC time.
    Time(NaiveDateTime),
}

/// What an entry decides.
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    /// Leave the row quarantined.
    KeepQuarantined,
    /// Write the row with this value.
    Carry(CarryValue),
    /// Fold the member into the member with this v1 key.
    MergeInto(String),
    /// Write the member: not a test account after all.
    NotATestAccount,
}

/// One entry of the file, checked: it names one quarantined row and what to do with it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionEntry {
    /// 1-based position in the file (named in every error about it).
    pub index: usize,
    /// The rule that quarantined the row.
    pub rule: RuleId,
    /// The v1 table.
    pub table: String,
    /// The row's v1 key as the report writes it.
    pub key: String,
    /// SQLite's rowid, when the file gives it (it tells apart rows sharing a key text).
    pub rowid: Option<i64>,
    /// The decision.
    pub choice: Choice,
    /// The operator's words, carried into the finding's reason.
    pub note: String,
}

impl DecisionEntry {
    /// How errors name the entry: `entry 3 (user '…', R-USER-EMPTY-NAME)`.
    pub fn label(&self) -> String {
        entry_label(self.index, &self.table, &self.key, self.rule.as_str())
    }

    /// The reason of the finding the entry makes: `operator: <note>; <what was done>`.
    pub fn reason(&self, done: &str) -> String {
        let note = if self.note.trim().is_empty() {
            "(no note)"
        } else {
            self.note.trim()
        };
        format!("operator: {note}; {done} (decisions entry {})", self.index)
    }
}

/// A decisions file, read and checked: its entries and its fingerprint.
#[derive(Clone, Debug, PartialEq)]
pub struct Decisions {
    /// Where it was read from.
    pub path: String,
    /// The sha256 of its bytes (recorded in the run and the report).
    pub sha256: String,
    /// The entries, in file order.
    pub entries: Vec<DecisionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    decision: Vec<EntryDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    rule: String,
    table: String,
    key: String,
    rowid: Option<i64>,
    choice: String,
    #[serde(default)]
    note: String,
    display_name: Option<String>,
    text: Option<String>,
    author: Option<String>,
    time: Option<String>,
    merge_into: Option<String>,
}

impl Decisions {
    /// Reads and checks the file at `path` ([`Decisions::parse`]).
    pub fn read(path: &std::path::Path) -> Result<Decisions, DecisionsError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| DecisionsError::Read {
            path: shown.clone(),
            source,
        })?;
        Decisions::parse(&shown, &bytes)
    }

    /// Parses the file's bytes: every entry must name a rule, a table and a key, a choice its
    /// rule allows, and the value that choice needs, which must pass v2's checks. Whether the
    /// key still names a quarantined row is checked when the entries are applied.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Decisions, DecisionsError> {
        let syntax = |message: String| DecisionsError::Syntax {
            path: path.to_string(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| syntax(format!("not UTF-8: {e}")))?;
        let doc: FileDoc = toml::from_str(text).map_err(|e| syntax(e.to_string()))?;
        let mut entries: Vec<DecisionEntry> = Vec::with_capacity(doc.decision.len());
        for (i, e) in doc.decision.into_iter().enumerate() {
            let entry = check_entry(path, i + 1, e)?;
            if let Some(other) = entries.iter().find(|o| o.same_row(&entry)) {
                return Err(entry_error(
                    path,
                    &entry.label(),
                    format!("the row is already decided by entry {}", other.index),
                ));
            }
            entries.push(entry);
        }
        Ok(Decisions {
            path: path.to_string(),
            sha256: hex::encode(Sha256::digest(bytes)),
            entries,
        })
    }

    /// An error about `entry`, naming the file and the entry.
    pub fn error(&self, entry: &DecisionEntry, message: impl Into<String>) -> DecisionsError {
        entry_error(&self.path, &entry.label(), message.into())
    }
}

impl DecisionEntry {
    fn same_row(&self, other: &DecisionEntry) -> bool {
        self.table == other.table
            && self.key == other.key
            && (self.rowid.is_none() || other.rowid.is_none() || self.rowid == other.rowid)
    }

    /// True when the entry names the row `rowid` of `table` whose key is `key`.
    pub fn names(&self, table: &str, key: &str, rowid: i64) -> bool {
        self.table == table && self.key == key && self.rowid.is_none_or(|r| r == rowid)
    }
}

fn entry_label(index: usize, table: &str, key: &str, rule: &str) -> String {
    format!("entry {index} ({table} {key:?}, {rule})")
}

fn entry_error(path: &str, entry: &str, message: String) -> DecisionsError {
    DecisionsError::Entry {
        path: path.to_string(),
        entry: entry.to_string(),
        message,
    }
}

/// Checks one entry of the file against its rule's choices and v2's checks of the value.
fn check_entry(path: &str, index: usize, e: EntryDoc) -> Result<DecisionEntry, DecisionsError> {
    let label = entry_label(index, &e.table, &e.key, &e.rule);
    let fail = |m: String| entry_error(path, &label, m);
    let rule = RuleId::parse(&e.rule).ok_or_else(|| fail(format!("no rule {:?}", e.rule)))?;
    let kind = ChoiceKind::parse(&e.choice).ok_or_else(|| {
        fail(format!(
            "no choice {:?} (keep_quarantined, carry, merge_into, not_a_test_account)",
            e.choice
        ))
    })?;
    let (allowed, field) = allowed_choices(rule, &e.table, false);
    if !allowed.contains(&kind) {
        let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
        return Err(fail(format!(
            "{rule} on {} allows {}, not {}",
            e.table,
            names.join(", "),
            kind.as_str()
        )));
    }
    let given: Vec<&str> = [
        ("display_name", e.display_name.is_some()),
        ("text", e.text.is_some()),
        ("author", e.author.is_some()),
        ("time", e.time.is_some()),
        ("merge_into", e.merge_into.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    let wanted: Option<&str> = match kind {
        ChoiceKind::Carry => field.map(CarryField::as_str),
        ChoiceKind::MergeInto => Some("merge_into"),
        _ => None,
    };
    if let Some(extra) = given.iter().find(|g| Some(**g) != wanted) {
        return Err(fail(format!(
            "{extra} does not belong to choice {}",
            kind.as_str()
        )));
    }
    let choice = match (kind, field) {
        (ChoiceKind::KeepQuarantined, _) => Choice::KeepQuarantined,
        (ChoiceKind::NotATestAccount, _) => Choice::NotATestAccount,
        (ChoiceKind::MergeInto, _) => match e.merge_into {
            Some(k) if !k.is_empty() => Choice::MergeInto(k),
            _ => return Err(fail("merge_into needs the surviving member's key".into())),
        },
        (ChoiceKind::Carry, Some(f)) => Choice::Carry(carry_value(f, &e).map_err(fail)?),
        (ChoiceKind::Carry, None) => return Err(fail("carry needs a value".into())),
    };
    Ok(DecisionEntry {
        index,
        rule,
        table: e.table,
        key: e.key,
        rowid: e.rowid,
        choice,
        note: e.note,
    })
}

/// The most characters of a prayer text v2 takes (after trimming).
const MAX_TEXT: usize = 5000;

/// The operator's value of a `carry`, checked as v2 checks its row.
fn carry_value(field: CarryField, e: &EntryDoc) -> Result<CarryValue, String> {
    let missing = || format!("carry needs {} = \"…\"", field.as_str());
    match field {
        CarryField::DisplayName | CarryField::Author => {
            let name = match field {
                CarryField::DisplayName => e.display_name.as_deref(),
                _ => e.author.as_deref(),
            }
            .ok_or_else(missing)?;
            let problems = name_problems(name);
            if is_blank(name) || !problems.is_empty() {
                let why = if is_blank(name) {
                    "is blank".to_string()
                } else {
                    format!("has {}", problems.join(", "))
                };
                return Err(format!("{} {name:?} {why}", field.as_str()));
            }
            Ok(match field {
                CarryField::DisplayName => CarryValue::DisplayName(name.to_string()),
                _ => CarryValue::Author(name.to_string()),
            })
        }
        CarryField::Text => {
            let text = e.text.as_deref().ok_or_else(missing)?;
            let n = text.trim().chars().count();
            if n == 0 || n > MAX_TEXT || text.contains('\0') {
                return Err(format!(
                    "text is {n} characters after trimming{} (v2 needs 1–{MAX_TEXT}, no NUL)",
                    if text.contains('\0') {
                        " with a NUL"
                    } else {
                        ""
                    }
                ));
            }
            Ok(CarryValue::Text(text.to_string()))
        }
        CarryField::Time => {
            let t = e.time.as_deref().ok_or_else(missing)?;
            NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                .map(CarryValue::Time)
                .map_err(|_| format!("time {t:?} is not YYYY-MM-DD HH:MM:SS (UTC)"))
        }
    }
}

/// The entries of a run's decisions file as the rules meet their rows: which entry names which
/// row, what each row became, and which entries a rule applied. Checked once every table is
/// committed ([`Ledger::finish`]): an entry whose row is not quarantined, or that no rule could
/// apply, is an error naming it, before anything is written.
#[derive(Debug)]
pub(crate) struct Ledger {
    decisions: Decisions,
    /// table → key → entries (positions in `decisions.entries`).
    by_row: HashMap<String, HashMap<String, Vec<usize>>>,
    seen: Vec<Option<Decision>>,
    applied: Vec<bool>,
    /// Why a rule could not apply an entry it met (reported by [`Ledger::finish`]).
    refused: Vec<Option<String>>,
}

impl Ledger {
    /// The ledger of `decisions`, nothing seen yet.
    pub(crate) fn new(decisions: &Decisions) -> Ledger {
        let mut by_row: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        for (i, e) in decisions.entries.iter().enumerate() {
            by_row
                .entry(e.table.clone())
                .or_default()
                .entry(e.key.clone())
                .or_default()
                .push(i);
        }
        let n = decisions.entries.len();
        Ledger {
            decisions: decisions.clone(),
            by_row,
            seen: vec![None; n],
            applied: vec![false; n],
            refused: vec![None; n],
        }
    }

    /// The entry naming row `rowid` of `table` whose key is `key`, if any.
    pub(crate) fn find(&self, table: &str, key: &str, rowid: i64) -> Option<usize> {
        let at = self.by_row.get(table)?.get(key)?;
        at.iter()
            .copied()
            .find(|&i| self.decisions.entries[i].names(table, key, rowid))
    }

    /// Entry `i`.
    pub(crate) fn entry(&self, i: usize) -> &DecisionEntry {
        &self.decisions.entries[i]
    }

    /// Records that a rule applied entry `i`.
    pub(crate) fn mark_applied(&mut self, i: usize) {
        self.applied[i] = true;
    }

    /// Records why entry `i` cannot be applied, for a rule that cannot stop the run there.
    pub(crate) fn refuse(&mut self, i: usize, message: String) {
        self.refused[i].get_or_insert(message);
    }

    /// An error about entry `i`.
    pub(crate) fn error(&self, i: usize, message: impl Into<String>) -> DecisionsError {
        self.decisions.error(&self.decisions.entries[i], message)
    }

    /// Called as a row's findings are committed: records what the row became and, for a
    /// `keep_quarantined` entry, gives the words to add to its quarantining reasons.
    pub(crate) fn on_commit(
        &mut self,
        table: &str,
        key: &str,
        rowid: i64,
        disposition: Option<Decision>,
    ) -> Option<String> {
        let i = self.find(table, key, rowid)?;
        self.seen[i] = Some(disposition.unwrap_or(Decision::Repaired));
        let e = &self.decisions.entries[i];
        (e.choice == Choice::KeepQuarantined && disposition == Some(Decision::Quarantined))
            .then(|| e.reason("kept quarantined"))
    }

    /// Checks every entry met its row and was applied: the file's promises all hold. Gives the
    /// number of entries applied (all of them).
    pub(crate) fn finish(&self) -> Result<u64, DecisionsError> {
        for (i, e) in self.decisions.entries.iter().enumerate() {
            if let Some(why) = &self.refused[i] {
                return Err(self.decisions.error(e, why.clone()));
            }
            // A dependant kept quarantined whose parent the file carries follows its parent.
            let follows = e.rule == RuleId::Orphan && e.choice == Choice::KeepQuarantined;
            let wrong = match (self.seen[i], &e.choice, self.applied[i]) {
                (None | Some(Decision::Repaired), _, _) if follows => None,
                (None, _, _) => Some(
                    "no quarantined row has this key in this table (the row is written, or no \
                     v1 row has it): remove the entry"
                        .to_string(),
                ),
                (Some(Decision::Quarantined), Choice::KeepQuarantined, _) => None,
                (Some(_), _, true) => None,
                (Some(Decision::Quarantined), _, false) => Some(format!(
                    "the row is quarantined, but not by {} alone: decide its other rules' \
                     findings, or keep it quarantined",
                    e.rule
                )),
                (Some(d), _, _) => Some(format!(
                    "the row is not quarantined (it is {}): remove the entry",
                    if d == Decision::Repaired {
                        "written"
                    } else {
                        d.as_str()
                    }
                )),
            };
            if let Some(message) = wrong {
                return Err(self.decisions.error(e, message));
            }
        }
        Ok(self.decisions.entries.len() as u64)
    }
}

#[cfg(test)]
mod tests;
