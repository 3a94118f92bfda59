//! Bounded memory for the marks' duplicate keys: sorted in memory up to a limit, beyond it in
//! sorted runs spilled to temporary files and merged back (k-way) in key order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// A still-written mark's identity hash and rowid (16 bytes per mark).
pub(crate) type DupKey = (u64, i64);

/// Keys held in memory before a sorted run is spilled: 16 MiB. The M dataset (~534k marks)
/// stays in memory; memory stays the same however many marks a file has.
pub(crate) const SPILL_AT: usize = 1 << 20;

/// The duplicate keys of a scan, bounded in memory (see the module doc).
pub(crate) struct DupKeys {
    buf: Vec<DupKey>,
    limit: usize,
    runs: Vec<File>,
    len: usize,
}

impl DupKeys {
    /// Keys kept in memory up to `limit` (at least 1), spilled beyond.
    pub(crate) fn with_limit(limit: usize) -> Self {
        DupKeys {
            buf: Vec::new(),
            limit: limit.max(1),
            runs: Vec::new(),
            len: 0,
        }
    }

    /// Number of keys pushed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Number of sorted runs spilled to temporary files so far.
    pub(crate) fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds a key; spills a sorted run when the memory limit is reached.
    pub(crate) fn push(&mut self, key: DupKey) -> io::Result<()> {
        self.buf.push(key);
        self.len += 1;
        if self.buf.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buf.sort_unstable();
        let mut w = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for &(hash, rowid) in &self.buf {
            w.write_all(&hash.to_le_bytes())?;
            w.write_all(&rowid.to_le_bytes())?;
        }
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.buf.clear();
        Ok(())
    }

    /// Calls `f` with every run of two or more keys of equal hash, in key order (each run
    /// sorted by rowid).
    pub(crate) fn for_each_equal_run<E: From<io::Error>>(
        mut self,
        mut f: impl FnMut(&[DupKey]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.buf.sort_unstable();
        if self.runs.is_empty() {
            for run in self.buf.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
                f(run)?;
            }
            return Ok(());
        }
        let mut sources: Vec<Source> = self
            .runs
            .drain(..)
            .map(|file| Source::File(BufReader::with_capacity(1 << 16, file)))
            .collect();
        sources.push(Source::Memory(std::mem::take(&mut self.buf).into_iter()));
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(k) = s.next_key()? {
                heap.push(Reverse((k, i)));
            }
        }
        let mut run: Vec<DupKey> = Vec::new();
        while let Some(Reverse((key, i))) = heap.pop() {
            if let Some(k) = sources[i].next_key()? {
                heap.push(Reverse((k, i)));
            }
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

/// One sorted run being merged.
enum Source {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<DupKey>),
}

impl Source {
    fn next_key(&mut self) -> io::Result<Option<DupKey>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::File(r) => {
                let mut b = [0u8; 16];
                match r.read_exact(&mut b) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let (hash, rowid) = b.split_at(8);
                Ok(Some((
                    u64::from_le_bytes(hash.try_into().unwrap_or_default()),
                    i64::from_le_bytes(rowid.try_into().unwrap_or_default()),
                )))
            }
        }
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
        assert_eq!(d.len(), keys.len());
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
    fn spilled_runs_merge_to_the_in_memory_result() {
        // Pseudo-random hashes over a small range so that many collide; rowids unique.
        let mut x: u64 = 0x1234_5678;
        let keys: Vec<DupKey> = (0..10_000i64)
            .map(|rowid| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 3_000, rowid)
            })
            .collect();
        let (in_memory, none) = runs(&keys, usize::MAX);
        assert_eq!(none, 0);
        assert!(!in_memory.is_empty());
        for limit in [1, 7, 1000, 4096, 9_999, 10_000] {
            let (merged, spilled) = runs(&keys, limit);
            assert_eq!(spilled, 10_000 / limit, "limit {limit}");
            assert_eq!(merged, in_memory, "limit {limit}");
        }
    }
}
