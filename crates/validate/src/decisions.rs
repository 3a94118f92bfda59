//! The operator's decisions file (`--decisions FILE`), read again here with the validator's own
//! parser (independence: never the detector's). The derivation takes the values it promises
//! (a carried member's name, a carried prayer's text or author), and [`OperatorDecisions::check`]
//! holds the run to each entry: a row kept quarantined is quarantined, a carried one is written
//! with its repair recorded, a merged member points at the member it names.

use std::collections::HashMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::expected::{Disposition, Ledger};

/// One entry as the file says it (only what the validator needs).
#[derive(Clone, Debug, Deserialize)]
struct Entry {
    rule: String,
    table: String,
    key: String,
    choice: String,
    display_name: Option<String>,
    text: Option<String>,
    author: Option<String>,
    time: Option<String>,
    merge_into: Option<String>,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    decision: Vec<Entry>,
}

/// The file's entries by (table, key), and its fingerprint.
#[derive(Clone, Debug, Default)]
pub struct OperatorDecisions {
    /// The file as given.
    pub path: String,
    /// The sha256 of its bytes (the run must have recorded the same).
    pub sha256: String,
    entries: Vec<Entry>,
    by_row: HashMap<(String, String), usize>,
}

impl OperatorDecisions {
    /// Reads the file; an unreadable or malformed one is an error naming it.
    pub fn read(path: &std::path::Path) -> Result<OperatorDecisions, String> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("{shown}: not UTF-8: {e}"))?;
        let file: File =
            toml::from_str(text).map_err(|e| format!("{shown}: not a decisions file: {e}"))?;
        let by_row = file
            .decision
            .iter()
            .enumerate()
            .map(|(i, e)| ((e.table.clone(), e.key.clone()), i))
            .collect();
        Ok(OperatorDecisions {
            path: shown,
            sha256: hex::encode(Sha256::digest(&bytes)),
            entries: file.decision,
            by_row,
        })
    }

    fn carried(&self, table: &str, key: &str) -> Option<&Entry> {
        let i = *self.by_row.get(&(table.to_string(), key.to_string()))?;
        Some(&self.entries[i]).filter(|e| e.choice == "carry")
    }

    /// The display name a `carry` gives member `key`.
    pub(crate) fn display_name(&self, key: &str) -> Option<&str> {
        self.carried("user", key)?.display_name.as_deref()
    }

    /// The text a `carry` gives prayer `key`.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.carried("prayer", key)?.text.as_deref()
    }

    /// The author (a display name) a `carry` gives prayer `key`.
    pub(crate) fn author(&self, key: &str) -> Option<&str> {
        self.carried("prayer", key)?.author.as_deref()
    }

    /// The `created_at` a `carry` gives prayer `key` (UTC, `YYYY-MM-DD HH:MM:SS[.f]`).
    pub(crate) fn time(&self, key: &str) -> Option<chrono::NaiveDateTime> {
        let t = self.carried("prayer", key)?.time.as_deref()?;
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").ok()
    }

    /// What the run did against what each entry promises; one line per broken promise.
    pub(crate) fn check(&self, ledger: &Ledger, recorded: Option<&str>) -> Vec<String> {
        let mut problems = Vec::new();
        if recorded != Some(self.sha256.as_str()) {
            problems.push(format!(
                "the run recorded decisions file sha256 {}, {} is {}",
                recorded.unwrap_or("none"),
                self.path,
                self.sha256
            ));
        }
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(p) = broken_promise(e, ledger) {
                problems.push(format!(
                    "decisions entry {} ({} {:?}, {}, {}): {p}",
                    i + 1,
                    e.table,
                    e.key,
                    e.rule,
                    e.choice
                ));
            }
        }
        problems
    }
}

/// How the run broke entry `e`'s promise, if it did.
fn broken_promise(e: &Entry, ledger: &Ledger) -> Option<String> {
    let got = ledger.excluded_in(&e.table, &e.key);
    match e.choice.as_str() {
        // A dependant whose parent the file carries follows the parent (decisions.md §48).
        "keep_quarantined" if e.rule == "R-ORPHAN" && got.is_none() => None,
        "keep_quarantined" => (got != Some(Disposition::Quarantined))
            .then(|| format!("the row is {}, not quarantined", shown(got))),
        "carry" | "not_a_test_account" => {
            if got.is_some() {
                Some(format!("the row is {}, not written", shown(got)))
            } else if !ledger.is_repaired_in(&e.table, &e.key) {
                Some("the row is written with no finding recording the operator's repair".into())
            } else {
                None
            }
        }
        "merge_into" => {
            let target = e.merge_into.as_deref().unwrap_or_default();
            let into = ledger.user_v2_id(target);
            let mapped = ledger.user_v2_id(&e.key);
            if got != Some(Disposition::Merged) {
                Some(format!("the row is {}, not merged", shown(got)))
            } else if into.is_none() || mapped != into {
                Some(format!(
                    "migration_id_map points it at {}, not at {target}'s account",
                    mapped.unwrap_or("nothing")
                ))
            } else {
                None
            }
        }
        other => Some(format!("no such choice {other:?}")),
    }
}

fn shown(d: Option<Disposition>) -> String {
    match d {
        None => "written".into(),
        Some(d) => format!("{d:?}").to_lowercase(),
    }
}
