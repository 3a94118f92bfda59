//! Bounded memory for the marks' duplicate keys: an external sort ([`thywill_spill`]) of the
//! 16-byte keys, read back as runs of equal hash.

use std::io;

use thywill_spill::{ExternalSort, Sorted};

/// A still-written mark's identity hash and rowid (16 bytes per mark).
pub(crate) type DupKey = (u64, i64);

/// Keys held in memory before a sorted run is spilled: 8 MiB. Memory stays the same however
/// many marks a file has; M (~532k keys) spills one run, L (5.3 M) ten. At 16 MiB M spilled
/// none, but L held 8 MiB more at its peak for no gain in time (`crates/detect/README.md`).
pub(crate) const SPILL_AT: usize = 1 << 19;

/// The duplicate keys of a scan, bounded in memory (see the module doc).
pub(crate) struct DupKeys(ExternalSort<DupKey>);

impl DupKeys {
    /// Keys kept in memory up to `limit` (at least 1), spilled beyond.
    pub(crate) fn with_limit(limit: usize) -> Self {
        DupKeys(ExternalSort::with_limit(limit))
    }

    /// Number of keys pushed.
    pub(crate) fn len(&self) -> u64 {
        self.0.len()
    }

    /// Number of sorted runs spilled to temporary files so far.
    pub(crate) fn spilled_runs(&self) -> usize {
        self.0.spilled_runs()
    }

    /// Adds a key; spills a sorted run when the memory limit is reached.
    pub(crate) fn push(&mut self, key: DupKey) -> io::Result<()> {
        self.0.push(key)
    }

    /// Calls `f` with every run of two or more keys of equal hash, in key order (each run
    /// sorted by rowid).
    pub(crate) fn for_each_equal_run<E: From<io::Error>>(
        self,
        mut f: impl FnMut(&[DupKey]) -> Result<(), E>,
    ) -> Result<(), E> {
        let sorted: Sorted<DupKey> = self.0.into_sorted()?;
        let mut run: Vec<DupKey> = Vec::new();
        for key in sorted {
            let key = key?;
            if run.last().is_some_and(|last| last.0 != key.0) {
                if run.len() > 1 {
                    f(&run)?;
                }
                run.clear();
            }
            run.push(key);
        }
        if run.len() > 1 {
            f(&run)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(keys: &[DupKey], limit: usize) -> (Vec<Vec<DupKey>>, usize) {
        let mut d = DupKeys::with_limit(limit);
        for &k in keys {
            d.push(k).unwrap();
        }
        assert_eq!(d.len(), keys.len() as u64);
        let spilled = d.spilled_runs();
        let mut out = Vec::new();
        d.for_each_equal_run::<io::Error>(|r| {
            out.push(r.to_vec());
            Ok(())
        })
        .unwrap();
        (out, spilled)
    }

    #[test]
    fn spilled_runs_group_like_the_in_memory_result() {
        // Hashes scattered over a small range so that many collide; rowids unique.
        let keys: Vec<DupKey> = (0..10_000i64)
            .map(|rowid| ((rowid as u64).wrapping_mul(7_919) % 3_000, rowid))
            .collect();
        let (in_memory, none) = runs(&keys, usize::MAX);
        assert_eq!(none, 0);
        assert!(!in_memory.is_empty());
        assert!(in_memory
            .iter()
            .all(|r| r.len() > 1 && r.windows(2).all(|w| w[0] < w[1])));
        for limit in [1, 7, 1000, 10_000] {
            let (merged, spilled) = runs(&keys, limit);
            assert_eq!(spilled, 10_000 / limit, "limit {limit}");
            assert_eq!(merged, in_memory, "limit {limit}");
        }
    }
}
