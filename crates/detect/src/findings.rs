//! The run's findings, stored out of memory: each finding is a fixed-size entry (table, rowid,
//! rule, decision, where its texts are) and its key and reason texts go to an unnamed temporary
//! file as the rules find them. The entries are sorted in bounded memory (an external sort,
//! [`thywill_spill`]) into a second temporary file; a consumer walks them one at a time. Memory
//! does not grow with the number of findings nor with the length of their texts.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::Arc;

use thywill_spill::{records_for_budget, ExternalSort, Record};
use thywill_v1::CARRIED_TABLES;

use crate::model::{Decision, DetectError, Finding, RuleId};
use crate::stored::{read_spooled, At, Spool};

/// Entries held in memory before a sorted run is spilled (1 MiB: M's findings stay in memory).
const ENTRIES_IN_MEMORY: usize = 1 << 20;

/// The decisions by their position (the encoding of [`Entry::decision`]).
const DECISIONS: [Decision; 6] = [
    Decision::Repaired,
    Decision::NotCarried,
    Decision::Deduplicated,
    Decision::Merged,
    Decision::Quarantined,
    Decision::Recovered,
];

/// One finding without its texts: they are `key_len + reason_len` bytes at `offset` of the
/// texts file. Ordered as the findings are walked: by table (in [`CARRIED_TABLES`] order),
/// rowid and rule, then in the order they were found (`seq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    table_order: u8,
    rowid: i64,
    rule: RuleId,
    seq: u64,
    offset: u64,
    key_len: u32,
    reason_len: u32,
    /// Index into the tables seen (`Stored::tables`).
    table: u8,
    decision: Decision,
}

impl Record for Entry {
    const SIZE: usize = 1 + 8 + 1 + 8 + 8 + 4 + 4 + 1 + 1;

    fn encode(&self, out: &mut [u8]) {
        let rule = RuleId::ALL.iter().position(|r| *r == self.rule);
        // Exhaustive: a new decision must get its place in `DECISIONS`.
        let decision = match self.decision {
            Decision::Repaired => 0,
            Decision::NotCarried => 1,
            Decision::Deduplicated => 2,
            Decision::Merged => 3,
            Decision::Quarantined => 4,
            Decision::Recovered => 5,
        };
        out[0] = self.table_order;
        out[1..9].copy_from_slice(&self.rowid.to_le_bytes());
        out[9] = rule.unwrap_or(0) as u8;
        out[10..18].copy_from_slice(&self.seq.to_le_bytes());
        out[18..26].copy_from_slice(&self.offset.to_le_bytes());
        out[26..30].copy_from_slice(&self.key_len.to_le_bytes());
        out[30..34].copy_from_slice(&self.reason_len.to_le_bytes());
        out[34] = self.table;
        out[35] = decision;
    }

    fn decode(b: &[u8]) -> Self {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        Entry {
            table_order: b[0],
            rowid: u64_at(1) as i64,
            rule: RuleId::ALL[(b[9] as usize).min(RuleId::ALL.len() - 1)],
            seq: u64_at(10),
            offset: u64_at(18),
            key_len: u32_at(26),
            reason_len: u32_at(30),
            table: b[34],
            decision: DECISIONS[(b[35] as usize).min(DECISIONS.len() - 1)],
        }
    }
}

/// Collects the findings while the rules run (see the module doc). A write error is kept and
/// returned by [`FindingsWriter::finish`], so committing a row never fails on its own.
pub(crate) struct FindingsWriter {
    entries: ExternalSort<Entry>,
    tables: Vec<&'static str>,
    by_rule: BTreeMap<&'static str, u64>,
    /// Each finding's key and reason, back to back; also keeps the entries' spill error.
    texts: Spool,
}

impl Default for FindingsWriter {
    fn default() -> Self {
        FindingsWriter {
            entries: ExternalSort::with_limit(records_for_budget::<Entry>(ENTRIES_IN_MEMORY)),
            tables: Vec::new(),
            by_rule: BTreeMap::new(),
            texts: Spool::new(),
        }
    }
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
        *self.by_rule.entry(rule.as_str()).or_insert(0) += 1;
        let entry = Entry {
            table_order: table_order(self.tables[table]),
            rowid,
            rule,
            seq: self.entries.len(),
            offset: self.texts.append(&[key.as_bytes(), reason.as_bytes()]),
            key_len: key.len() as u32,
            reason_len: reason.len() as u32,
            table: table as u8,
            decision,
        };
        if let Err(e) = self.entries.push(entry) {
            self.texts.fail(e);
        }
    }

    /// Flushes the texts and sorts the findings by table (in [`CARRIED_TABLES`] order), rowid
    /// and rule (stable: equal findings keep the order they were found in) into the entries
    /// file.
    pub(crate) fn finish(self) -> Result<Findings, DetectError> {
        let texts = self.texts.finish()?;
        let len = self.entries.len();
        let mut sorted = Spool::new();
        let mut bytes = [0u8; Entry::SIZE];
        for e in self.entries.into_sorted()? {
            e?.encode(&mut bytes);
            sorted.append(&[&bytes]);
        }
        Ok(Findings(Arc::new(Stored {
            len: len as usize,
            entries: sorted.finish()?,
            tables: self.tables,
            by_rule: self.by_rule,
            texts,
        })))
    }
}

fn table_order(t: &str) -> u8 {
    CARRIED_TABLES
        .iter()
        .position(|c| *c == t)
        .unwrap_or(CARRIED_TABLES.len()) as u8
}

struct Stored {
    len: usize,
    /// The sorted entries, [`Entry::SIZE`] bytes each.
    entries: Option<File>,
    tables: Vec<&'static str>,
    by_rule: BTreeMap<&'static str, u64>,
    texts: Option<File>,
}

impl Stored {
    /// The sorted entries, read in order from the entries file (each walk its own position).
    fn entries(&self) -> impl Iterator<Item = Result<Entry, DetectError>> + '_ {
        let mut reader = self
            .entries
            .as_ref()
            .map(|file| BufReader::with_capacity(64 << 10, At { file, pos: 0 }));
        let mut bytes = [0u8; Entry::SIZE];
        (0..self.len).map(move |_| {
            let reader = reader
                .as_mut()
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            reader.read_exact(&mut bytes)?;
            Ok(Entry::decode(&bytes))
        })
    }
}

/// Every finding of a plan, sorted by table, rowid and rule (a row's findings are adjacent).
/// Cheap to clone (shared); each [`Finding`] is made when the walk reaches it, read back from
/// the plan's temporary files (hence the `Result`).
#[derive(Clone)]
pub struct Findings(Arc<Stored>);

impl Findings {
    /// Number of findings.
    pub fn len(&self) -> usize {
        self.0.len
    }

    /// True when there is no finding.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Walks the findings in order, making each one as it is reached.
    pub fn iter(&self) -> FindingsIter<'_> {
        FindingsIter {
            stored: &self.0,
            entries: Box::new(self.0.entries()),
            left: self.0.len,
            buf: Vec::new(),
        }
    }

    /// Number of findings per rule id (no file is read).
    pub fn by_rule(&self) -> BTreeMap<&'static str, u64> {
        self.0.by_rule.clone()
    }

    /// (table, rowid, decision) of every finding, in order, without their texts.
    pub(crate) fn dispositions(
        &self,
    ) -> impl Iterator<Item = Result<(&'static str, i64, Decision), DetectError>> + '_ {
        self.0
            .entries()
            .map(|e| e.map(|e| (self.0.tables[e.table as usize], e.rowid, e.decision)))
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

/// The walk of [`Findings::iter`]: the entries read in order, one positioned read of the texts
/// file per finding.
pub struct FindingsIter<'a> {
    stored: &'a Stored,
    entries: Box<dyn Iterator<Item = Result<Entry, DetectError>> + 'a>,
    left: usize,
    buf: Vec<u8>,
}

impl FindingsIter<'_> {
    fn read(&mut self, e: &Entry) -> Result<Finding, DetectError> {
        let (k, r) = (e.key_len as usize, e.reason_len as usize);
        self.buf.resize(k + r, 0);
        read_spooled(self.stored.texts.as_ref(), e.offset, &mut self.buf)?;
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
        let e = self.entries.next()?;
        self.left -= 1;
        Some(e.and_then(|e| self.read(&e)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
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

    #[test]
    fn entries_round_trip_every_rule_and_decision() {
        let mut bytes = [0u8; Entry::SIZE];
        for (i, &rule) in RuleId::ALL.iter().enumerate() {
            for decision in DECISIONS {
                let e = Entry {
                    table_order: 3,
                    rowid: -(i as i64) * 1_000_000_007,
                    rule,
                    seq: u64::MAX - i as u64,
                    offset: 1 << 40,
                    key_len: 7,
                    reason_len: u32::MAX,
                    table: 2,
                    decision,
                };
                e.encode(&mut bytes);
                assert_eq!(Entry::decode(&bytes), e);
            }
        }
    }

    /// Past the in-memory budget the entries are spilled and merged back: the order (stable
    /// for equal table, rowid and rule) and every text survive.
    #[test]
    fn many_findings_spill_and_come_back_in_order() {
        let mut w = FindingsWriter::default();
        let n = 3 * records_for_budget::<Entry>(ENTRIES_IN_MEMORY) as i64;
        for i in 0..n {
            let rowid = (i * 7919) % n;
            w.push(
                "prayer",
                rowid,
                &format!("k{rowid}"),
                RuleId::Time,
                Decision::Repaired,
                "second",
            );
            w.push(
                "prayer",
                rowid,
                &format!("k{rowid}"),
                RuleId::Time,
                Decision::Quarantined,
                "",
            );
            w.push(
                "user",
                rowid,
                "",
                RuleId::Orphan,
                Decision::Merged,
                &format!("r{i}"),
            );
        }
        let f = w.finish().expect("finish");
        assert_eq!(f.len() as i64, 3 * n);
        assert_eq!(f.by_rule()["R-TIME"] as i64, 2 * n);
        let all: Vec<Finding> = f.iter().collect::<Result<_, _>>().expect("read back");
        assert!(all[..n as usize].iter().all(|x| x.v1_table == "user"));
        for (j, pair) in all[n as usize..].chunks(2).enumerate() {
            assert_eq!(pair[0].rowid, j as i64);
            assert_eq!(pair[0].v1_key, format!("k{j}"));
            assert_eq!(
                (pair[0].decision, pair[0].reason.as_str()),
                (Decision::Repaired, "second")
            );
            assert_eq!(
                (pair[1].decision, pair[1].reason.as_str()),
                (Decision::Quarantined, "")
            );
        }
        let dispositions: Vec<_> = f.dispositions().collect::<Result<_, _>>().expect("walk");
        assert_eq!(dispositions.len(), all.len());
    }
}
