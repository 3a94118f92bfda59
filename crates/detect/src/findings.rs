//! The run's findings, stored compactly: a 32-byte entry per finding in memory (table, rowid,
//! rule, decision, where its texts are), the key and reason texts in an unnamed temporary file,
//! read back one finding at a time while a consumer walks them. Memory per finding does not
//! depend on how long its texts are, and no finding is held as `String`s between the passes.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use thywill_v1::CARRIED_TABLES;

use crate::model::{Decision, DetectError, Finding, RuleId};

/// One finding without its texts: they are `key_len + reason_len` bytes at `offset` of the file.
#[derive(Clone, Copy, Debug)]
struct Entry {
    rowid: i64,
    offset: u64,
    key_len: u32,
    reason_len: u32,
    /// Index into the tables seen (`Stored::tables`).
    table: u8,
    rule: RuleId,
    decision: Decision,
}

/// Collects the findings while the rules run (see the module doc). A write error is kept and
/// returned by [`FindingsWriter::finish`], so committing a row never fails on its own.
#[derive(Default)]
pub(crate) struct FindingsWriter {
    entries: Vec<Entry>,
    tables: Vec<&'static str>,
    out: Option<BufWriter<File>>,
    offset: u64,
    error: Option<io::Error>,
}

impl FindingsWriter {
    /// Adds one finding.
    pub(crate) fn push(
        &mut self,
        table: &'static str,
        rowid: i64,
        key: &str,
        rule: RuleId,
        decision: Decision,
        reason: &str,
    ) {
        let table = match self.tables.iter().position(|t| *t == table) {
            Some(i) => i,
            None => {
                self.tables.push(table);
                self.tables.len() - 1
            }
        };
        self.entries.push(Entry {
            rowid,
            offset: self.offset,
            key_len: key.len() as u32,
            reason_len: reason.len() as u32,
            table: table as u8,
            rule,
            decision,
        });
        self.offset += (key.len() + reason.len()) as u64;
        if self.error.is_some() {
            return;
        }
        if self.out.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.out = Some(BufWriter::with_capacity(64 << 10, f)),
                Err(e) => return self.error = Some(e),
            }
        }
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out
                .write_all(key.as_bytes())
                .and_then(|()| out.write_all(reason.as_bytes()))
            {
                self.error = Some(e);
            }
        }
    }

    /// Flushes the texts and sorts the findings by table (in [`CARRIED_TABLES`] order), rowid
    /// and rule (stable: equal findings keep the order they were found in).
    pub(crate) fn finish(self) -> Result<Findings, DetectError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        let file = match self.out {
            Some(out) => Some(out.into_inner().map_err(|e| e.into_error())?),
            None => None,
        };
        let order: Vec<usize> = self.tables.iter().map(|t| table_order(t)).collect();
        let mut entries = self.entries;
        entries.sort_by_key(|e| (order[e.table as usize], e.rowid, e.rule));
        Ok(Findings(Arc::new(Stored {
            entries,
            tables: self.tables,
            file,
        })))
    }
}

fn table_order(t: &str) -> usize {
    CARRIED_TABLES
        .iter()
        .position(|c| *c == t)
        .unwrap_or(CARRIED_TABLES.len())
}

struct Stored {
    entries: Vec<Entry>,
    tables: Vec<&'static str>,
    file: Option<File>,
}

/// Every finding of a plan, sorted by table, rowid and rule (a row's findings are adjacent).
/// Cheap to clone (shared); each [`Finding`] is made when the walk reaches it, its texts read
/// back from the plan's temporary file (hence the `Result`).
#[derive(Clone)]
pub struct Findings(Arc<Stored>);

impl Findings {
    /// Number of findings.
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    /// True when there is no finding.
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// Walks the findings in order, making each one as it is reached.
    pub fn iter(&self) -> FindingsIter<'_> {
        FindingsIter {
            stored: &self.0,
            next: 0,
            buf: Vec::new(),
        }
    }

    /// Number of findings per rule id (no text is read).
    pub fn by_rule(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for e in &self.0.entries {
            *out.entry(e.rule.as_str()).or_insert(0) += 1;
        }
        out
    }

    /// (table, rowid, decision) of every finding, in order, without their texts.
    pub(crate) fn dispositions(&self) -> impl Iterator<Item = (&'static str, i64, Decision)> + '_ {
        self.0
            .entries
            .iter()
            .map(|e| (self.0.tables[e.table as usize], e.rowid, e.decision))
    }
}

impl fmt::Debug for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Findings")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<'a> IntoIterator for &'a Findings {
    type Item = Result<Finding, DetectError>;
    type IntoIter = FindingsIter<'a>;

    fn into_iter(self) -> FindingsIter<'a> {
        self.iter()
    }
}

/// The walk of [`Findings::iter`]: one positioned read of the temporary file per finding.
pub struct FindingsIter<'a> {
    stored: &'a Stored,
    next: usize,
    buf: Vec<u8>,
}

impl FindingsIter<'_> {
    fn read(&mut self, e: &Entry) -> Result<Finding, DetectError> {
        let (k, r) = (e.key_len as usize, e.reason_len as usize);
        self.buf.resize(k + r, 0);
        if let Some(file) = &self.stored.file {
            file.read_exact_at(&mut self.buf, e.offset)?;
        }
        let text = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec())
                .map_err(|err| DetectError::Spill(io::Error::new(io::ErrorKind::InvalidData, err)))
        };
        Ok(Finding {
            v1_table: self.stored.tables[e.table as usize].to_string(),
            v1_key: text(&self.buf[..k])?,
            rowid: e.rowid,
            rule: e.rule,
            decision: e.decision,
            reason: text(&self.buf[k..])?,
        })
    }
}

impl Iterator for FindingsIter<'_> {
    type Item = Result<Finding, DetectError>;

    fn next(&mut self) -> Option<Self::Item> {
        let e = *self.stored.entries.get(self.next)?;
        self.next += 1;
        Some(self.read(&e))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.stored.entries.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for FindingsIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_come_back_sorted_with_their_texts() {
        let mut w = FindingsWriter::default();
        w.push(
            "prayermark",
            9,
            "m9",
            RuleId::MarkDuplicate,
            Decision::Deduplicated,
            "dup",
        );
        w.push(
            "user",
            3,
            "ü3",
            RuleId::UserName,
            Decision::Repaired,
            "name 'ü'",
        );
        w.push("user", 3, "ü3", RuleId::Time, Decision::Repaired, "");
        w.push(
            "prayer",
            1,
            "",
            RuleId::Orphan,
            Decision::Quarantined,
            "orphan",
        );
        let f = w.finish().expect("finish");
        assert_eq!(f.len(), 4);
        let all: Vec<Finding> = f.iter().collect::<Result<_, _>>().expect("read back");
        let short: Vec<(&str, i64, RuleId, &str, &str)> = all
            .iter()
            .map(|f| {
                (
                    f.v1_table.as_str(),
                    f.rowid,
                    f.rule,
                    f.v1_key.as_str(),
                    f.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            short,
            [
                ("user", 3, RuleId::UserName, "ü3", "name 'ü'"),
                ("user", 3, RuleId::Time, "ü3", ""),
                ("prayer", 1, RuleId::Orphan, "", "orphan"),
                ("prayermark", 9, RuleId::MarkDuplicate, "m9", "dup"),
            ]
        );
        assert_eq!(f.by_rule()["R-TIME"], 1);
        assert!(FindingsWriter::default()
            .finish()
            .expect("empty")
            .is_empty());
    }
}
