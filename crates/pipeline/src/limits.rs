//! The guard rails on quarantine: the operator's ceilings on what a run may leave unwritten.

use std::collections::BTreeMap;
use std::fmt;

use thywill_detect::TableCounts;

/// The operator's ceilings on quarantined rows, checked per carried table once detection has
/// decided every row and before anything is written (no v2 database opened, no archive folder
/// made). A run over a limit fails with [`crate::PipelineError::QuarantineOverLimit`] (exit 1), so
/// a rehearsal that quarantines far more than expected never reaches production. `None` = no
/// limit; the default has none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QuarantineLimits {
    /// A table whose quarantined count exceeds this trips the limit (`--max-quarantined`;
    /// 0: any quarantined row does).
    pub max_rows: Option<u64>,
    /// A table whose quarantined rows exceed this percentage (0 to 100) of its read rows trips
    /// the limit (`--max-quarantined-percent`).
    pub max_percent: Option<f64>,
}

/// One limit of [`QuarantineLimits`], as the operator gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuarantineLimit {
    /// At most this many quarantined rows per table.
    Rows(u64),
    /// At most this percentage of a table's read rows quarantined.
    Percent(f64),
}

impl QuarantineLimit {
    /// True when a table with `counts` quarantined more than this limit allows.
    fn exceeded_by(&self, counts: &TableCounts) -> bool {
        match *self {
            QuarantineLimit::Rows(n) => counts.quarantined > n,
            // Compared without dividing, so an empty table never trips it.
            QuarantineLimit::Percent(p) => {
                counts.quarantined as f64 * 100.0 > p * counts.read as f64
            }
        }
    }
}

impl fmt::Display for QuarantineLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuarantineLimit::Rows(n) => write!(f, "--max-quarantined {n}"),
            QuarantineLimit::Percent(p) => write!(f, "--max-quarantined-percent {p}"),
        }
    }
}

/// A table over a limit: its name and counts.
#[derive(Clone, Debug, PartialEq)]
pub struct TableOverLimit {
    /// The v1 table.
    pub table: String,
    /// Its quarantined rows.
    pub quarantined: u64,
    /// Its rows read.
    pub read: u64,
}

impl fmt::Display for TableOverLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = if self.read == 0 {
            0.0
        } else {
            self.quarantined as f64 * 100.0 / self.read as f64
        };
        write!(
            f,
            "{} {} of {} ({percent:.2}%)",
            self.table, self.quarantined, self.read
        )
    }
}

/// A limit that tripped and every table over it, in table-name order.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitBreach {
    /// The limit.
    pub limit: QuarantineLimit,
    /// The tables over it (never empty).
    pub tables: Vec<TableOverLimit>,
}

impl QuarantineLimits {
    /// The limits that `counts` (the plan's law per table) breaks; empty when the run may go on.
    pub fn breaches(&self, counts: &BTreeMap<String, TableCounts>) -> Vec<LimitBreach> {
        let limits = [
            self.max_rows.map(QuarantineLimit::Rows),
            self.max_percent.map(QuarantineLimit::Percent),
        ];
        limits
            .into_iter()
            .flatten()
            .filter_map(|limit| {
                let tables: Vec<TableOverLimit> = counts
                    .iter()
                    .filter(|(_, c)| limit.exceeded_by(c))
                    .map(|(table, c)| TableOverLimit {
                        table: table.clone(),
                        quarantined: c.quarantined,
                        read: c.read,
                    })
                    .collect();
                (!tables.is_empty()).then_some(LimitBreach { limit, tables })
            })
            .collect()
    }
}

/// The operator's message for a run stopped by `breaches`: `refusing to migrate: quarantined rows
/// over --max-quarantined-percent 1: prayer 12 of 580 (2.07%), …; look at the report …`.
pub(crate) fn refusal(breaches: &[LimitBreach]) -> String {
    let over: Vec<String> = breaches
        .iter()
        .map(|b| {
            let tables: Vec<String> = b.tables.iter().map(ToString::to_string).collect();
            format!("over {}: {}", b.limit, tables.join(", "))
        })
        .collect();
    format!(
        "refusing to migrate: quarantined rows {}; look at the report (thywill-analyze --report-html) and decide, or raise the limit",
        over.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(tables: &[(&str, u64, u64)]) -> BTreeMap<String, TableCounts> {
        tables
            .iter()
            .map(|&(t, read, quarantined)| {
                (
                    t.to_string(),
                    TableCounts {
                        read,
                        written: read - quarantined,
                        quarantined,
                        ..TableCounts::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn no_limit_never_trips() {
        let c = counts(&[("prayer", 10, 10)]);
        assert!(QuarantineLimits::default().breaches(&c).is_empty());
    }

    #[test]
    fn rows_limit_is_per_table_and_exclusive() {
        let c = counts(&[
            ("prayer", 580, 12),
            ("prayermark", 3008, 40),
            ("user", 10, 0),
        ]);
        let at = |n| QuarantineLimits {
            max_rows: Some(n),
            max_percent: None,
        };
        assert!(at(40).breaches(&c).is_empty(), "equal to the limit passes");
        let b = at(12).breaches(&c);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].tables.len(), 1);
        assert_eq!(b[0].tables[0].table, "prayermark");
        assert_eq!(
            at(0).breaches(&c)[0].tables.len(),
            2,
            "0: any quarantined row"
        );
    }

    #[test]
    fn percent_limit_names_each_table_with_its_counts() {
        let c = counts(&[
            ("prayer", 580, 12),
            ("prayermark", 3008, 40),
            ("session", 0, 0),
        ]);
        let limits = QuarantineLimits {
            max_rows: None,
            max_percent: Some(1.0),
        };
        let b = limits.breaches(&c);
        assert_eq!(
            refusal(&b),
            "refusing to migrate: quarantined rows over --max-quarantined-percent 1: \
             prayer 12 of 580 (2.07%), prayermark 40 of 3008 (1.33%); look at the report \
             (thywill-analyze --report-html) and decide, or raise the limit"
        );
        let limits = QuarantineLimits {
            max_rows: None,
            max_percent: Some(0.0),
        };
        assert_eq!(
            limits.breaches(&c)[0].tables.len(),
            2,
            "an empty table never trips"
        );
    }

    #[test]
    fn both_limits_are_named_when_both_trip() {
        let c = counts(&[("prayer", 580, 12), ("user", 100, 5)]);
        let limits = QuarantineLimits {
            max_rows: Some(10),
            max_percent: Some(4.5),
        };
        let msg = refusal(&limits.breaches(&c));
        assert!(
            msg.contains("over --max-quarantined 10: prayer 12 of 580 (2.07%); over --max-quarantined-percent 4.5: user 5 of 100 (5.00%);"),
            "{msg}"
        );
    }
}
