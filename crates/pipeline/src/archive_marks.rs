//! The written marks, as the archive stage needs them: grouped by prayer, in time order, in
//! bounded memory. Each mark becomes a 24-byte record (the v1 rowid of its prayer, its time, the
//! index of its member); the records go through an external sort ([`thywill_spill`]), so a
//! community ten times larger does not need ten times the memory. The archive stage then scans
//! the prayers in rowid order and takes each prayer's marks off the front of the sorted stream.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime};
use thywill_detect::{ResolvedMark, ResolvedPrayer, Verdict};
use thywill_spill::{records_for_budget, ExternalSort, Record, Sorted};
use thywill_v1::{MarkRow, PrayerRow};

use crate::error::PipelineError;
use crate::source::Source;

/// Memory for mark records before they spill to temporary files (M's ~531,000 marks fit).
const MEMORY_BUDGET: usize = 32 << 20;

/// One written mark: ordered by prayer (its v1 rowid), time, then member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MarkRecord {
    /// The v1 rowid of the mark's prayer.
    pub(crate) prayer_rowid: i64,
    /// When.
    pub(crate) marked_at: NaiveDateTime,
    /// The member: an index into the plan's users.
    pub(crate) user: u32,
}

impl Record for MarkRecord {
    const SIZE: usize = 24;

    fn encode(&self, out: &mut [u8]) {
        let at = self.marked_at.and_utc();
        out[..8].copy_from_slice(&self.prayer_rowid.to_le_bytes());
        out[8..16].copy_from_slice(&at.timestamp().to_le_bytes());
        out[16..20].copy_from_slice(&at.timestamp_subsec_nanos().to_le_bytes());
        out[20..24].copy_from_slice(&self.user.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        let field = |range: std::ops::Range<usize>| -> [u8; 8] {
            let mut b = [0u8; 8];
            b[..range.len()].copy_from_slice(&bytes[range]);
            b
        };
        let secs = i64::from_le_bytes(field(8..16));
        let nanos = u32::from_le_bytes(field(16..20)[..4].try_into().unwrap_or_default());
        MarkRecord {
            prayer_rowid: i64::from_le_bytes(field(0..8)),
            // The bytes were written by `encode` from a valid time.
            marked_at: DateTime::from_timestamp(secs, nanos)
                .map(|t| t.naive_utc())
                .unwrap_or_default(),
            user: u32::from_le_bytes(field(20..24)[..4].try_into().unwrap_or_default()),
        }
    }
}

/// Collects the written marks while the rows are written (or in one pass of their own).
pub(crate) struct ArchiveMarks {
    users: HashMap<u128, u32>,
    prayer_rowids: HashMap<u128, i64>,
    records: ExternalSort<MarkRecord>,
}

impl ArchiveMarks {
    /// An empty collector for `source`'s plan.
    pub(crate) fn new(source: &Source) -> Result<Self, PipelineError> {
        let mut users = HashMap::new();
        // The plan's members, then those recovered from the v1 tree (the archive stage's order).
        for (i, u) in source.members().enumerate() {
            if let Ok(id) = u128::from_str_radix(&u?.id, 16) {
                users.insert(id, i as u32);
            }
        }
        Ok(ArchiveMarks {
            users,
            prayer_rowids: HashMap::new(),
            records: ExternalSort::with_limit(records_for_budget::<MarkRecord>(MEMORY_BUDGET)),
        })
    }

    /// Notes a written prayer (before its marks).
    pub(crate) fn note_prayer(&mut self, p: &ResolvedPrayer, rowid: i64) {
        if let Ok(id) = u128::from_str_radix(&p.id, 16) {
            self.prayer_rowids.insert(id, rowid);
        }
    }

    /// Notes a written mark.
    pub(crate) fn note_mark(&mut self, m: &ResolvedMark) -> Result<(), PipelineError> {
        let bad = |what: &str| PipelineError::Mapping {
            table: "prayermark".into(),
            key: m.id.clone(),
            reason: what.into(),
        };
        let prayer = u128::from_str_radix(&m.prayer_id, 16)
            .ok()
            .and_then(|id| self.prayer_rowids.get(&id).copied())
            .ok_or_else(|| bad("the mark's prayer is not written"))?;
        let user = u128::from_str_radix(&m.user_id, 16)
            .ok()
            .and_then(|id| self.users.get(&id).copied())
            .ok_or_else(|| bad("the mark's member is not written"))?;
        self.records
            .push(MarkRecord {
                prayer_rowid: prayer,
                marked_at: m.marked_at,
                user,
            })
            .map_err(PipelineError::Spill)
    }

    /// Notes the prayers the plan recovers from the v1 archive tree, under the rowids that
    /// follow every v1 rowid ([`recovered_rowid`]), so the archive stage takes their marks after
    /// the v1 prayers'.
    pub(crate) fn note_recovered_prayers(&mut self, source_plan: &thywill_detect::Plan) {
        for (k, r) in source_plan.recovery().prayers.iter().enumerate() {
            self.note_prayer(&r.prayer, recovered_rowid(k));
        }
    }

    /// Notes the marks the plan recovers from the v1 archive tree (after every prayer).
    pub(crate) fn note_recovered_marks(
        &mut self,
        source_plan: &thywill_detect::Plan,
    ) -> Result<(), PipelineError> {
        for r in &source_plan.recovery().marks {
            self.note_mark(&r.mark)?;
        }
        Ok(())
    }

    /// Every written prayer and mark of `source`, for a run that writes archives but no rows
    /// (the target already holds this migration).
    pub(crate) fn collect(source: &Source) -> Result<Self, PipelineError> {
        let mut out = ArchiveMarks::new(source)?;
        source
            .db
            .for_each_ref::<PrayerRow, PipelineError, _>(|row| {
                if let Verdict::Write(p) = source.plan.resolve_prayer(row)? {
                    out.note_prayer(&p, row.rowid);
                }
                Ok(())
            })?;
        out.note_recovered_prayers(&source.plan);
        source.db.for_each_ref::<MarkRow, PipelineError, _>(|row| {
            if let Verdict::Write(m) = source.plan.resolve_mark(row) {
                out.note_mark(&m)?;
            }
            Ok(())
        })?;
        out.note_recovered_marks(&source.plan)?;
        Ok(out)
    }

    /// The marks in prayer-rowid order, to be taken prayer by prayer.
    pub(crate) fn into_by_prayer(self) -> Result<MarksByPrayer, PipelineError> {
        tracing::debug!(
            marks = self.records.len(),
            spilled_runs = self.records.spilled_runs(),
            "archive marks sorted"
        );
        MarksByPrayer::new(self.records)
    }
}

/// The rowid the archive stage gives the `k`-th prayer recovered from the v1 archive tree: past
/// every v1 rowid (SQLite's are below 2^63 − 2^32), in recovery order.
pub(crate) fn recovered_rowid(k: usize) -> i64 {
    i64::MAX - (1 << 32) + k as i64
}

/// The sorted marks, consumed in prayer-rowid order.
pub(crate) struct MarksByPrayer {
    sorted: Sorted<MarkRecord>,
    next: Option<MarkRecord>,
}

impl MarksByPrayer {
    fn new(records: ExternalSort<MarkRecord>) -> Result<Self, PipelineError> {
        let mut sorted = records.into_sorted().map_err(PipelineError::Spill)?;
        let next = sorted.next().transpose().map_err(PipelineError::Spill)?;
        Ok(MarksByPrayer { sorted, next })
    }

    /// Calls `f` with each mark of the prayer at `rowid`, in time order. Prayers must be asked
    /// for in increasing rowid order; the marks of rowids skipped over are dropped.
    pub(crate) fn take(
        &mut self,
        rowid: i64,
        mut f: impl FnMut(&MarkRecord),
    ) -> Result<(), PipelineError> {
        while let Some(m) = self.next {
            if m.prayer_rowid > rowid {
                break;
            }
            if m.prayer_rowid == rowid {
                f(&m);
            }
            self.next = self
                .sorted
                .next()
                .transpose()
                .map_err(PipelineError::Spill)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_bytes() {
        let at =
            NaiveDateTime::parse_from_str("2024-02-29 23:59:58.123456789", "%Y-%m-%d %H:%M:%S%.f")
                .expect("time");
        for r in [
            MarkRecord {
                prayer_rowid: 42,
                marked_at: at,
                user: 7,
            },
            MarkRecord {
                prayer_rowid: i64::MAX,
                marked_at: NaiveDateTime::default(),
                user: u32::MAX,
            },
        ] {
            let mut bytes = [0u8; MarkRecord::SIZE];
            r.encode(&mut bytes);
            assert!(MarkRecord::decode(&bytes) == r);
        }
    }

    #[test]
    fn each_prayer_gets_its_marks_in_time_order_spilled_or_not() {
        let at = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                .and_then(|d| d.and_hms_opt(h, 0, 0))
                .expect("time")
        };
        let marks = [
            (5, 3, 1),
            (2, 9, 0),
            (5, 1, 2),
            (9, 4, 0),
            (2, 2, 1),
            (5, 1, 0),
        ];
        for limit in [1, 2, 100] {
            let mut sort = ExternalSort::with_limit(limit);
            for &(prayer_rowid, hour, user) in &marks {
                sort.push(MarkRecord {
                    prayer_rowid,
                    marked_at: at(hour),
                    user,
                })
                .expect("push");
            }
            let mut by_prayer = MarksByPrayer::new(sort).expect("sorted");
            let mut seen = Vec::new();
            // Rowid 9 is never asked for (its prayer is not written): its mark is dropped.
            for rowid in [1, 2, 5, 7] {
                by_prayer
                    .take(rowid, |m| seen.push((rowid, m.marked_at, m.user)))
                    .expect("take");
            }
            assert!(
                seen == vec![
                    (2, at(2), 1),
                    (2, at(9), 0),
                    (5, at(1), 0),
                    (5, at(1), 2),
                    (5, at(3), 1),
                ],
                "limit {limit}"
            );
        }
    }
}
