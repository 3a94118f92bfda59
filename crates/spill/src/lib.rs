//! External sort of fixed-size records in bounded memory.
//!
//! The migration meets a few sets that grow with the number of marks (duplicate-mark keys, the
//! marks the archive stage groups by prayer). Spec: memory must not grow with the number of
//! marks. [`ExternalSort`] keeps at most `limit` records in memory; beyond that it sorts them,
//! writes them as a run to an anonymous temporary file, and at the end merges every run (k-way,
//! a binary heap) back into one ordered stream. Below the limit nothing touches the disk. At most
//! [`MAX_FAN_IN`] runs are kept: the next spill first merges them into one, so open files and
//! read buffers stay bounded however many records arrive.
//!
//! Records are `Copy + Ord` values with a fixed-size byte encoding ([`Record`]); the encoding
//! only has to round-trip, the order is the type's `Ord`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// A value [`ExternalSort`] can spill: fixed-size, ordered, and round-tripping through bytes.
pub trait Record: Copy + Ord {
    /// The encoded size in bytes.
    const SIZE: usize;
    /// Writes the record into `out` (exactly [`Self::SIZE`] bytes).
    fn encode(&self, out: &mut [u8]);
    /// Reads a record written by [`Self::encode`].
    fn decode(bytes: &[u8]) -> Self;
}

/// Records held in memory before a run is spilled, for a memory budget of `bytes`.
pub fn records_for_budget<R>(bytes: usize) -> usize {
    (bytes / std::mem::size_of::<R>().max(1)).max(1)
}

/// Runs merged at once (open temporary files, and 64 KiB read buffers during a merge); when
/// that many are on disk they are merged into one before the sort goes on.
pub const MAX_FAN_IN: usize = 64;

/// Read and write buffer of one run's file.
const RUN_BUFFER: usize = 1 << 16;

/// Collects records, then yields them sorted, holding at most `limit` of them in memory.
pub struct ExternalSort<R: Record> {
    buf: Vec<R>,
    limit: usize,
    runs: Vec<File>,
    runs_written: usize,
    len: u64,
}

impl<R: Record> ExternalSort<R> {
    /// A sort that keeps at most `limit` records (at least 1) in memory.
    pub fn with_limit(limit: usize) -> Self {
        ExternalSort {
            buf: Vec::new(),
            limit: limit.max(1),
            runs: Vec::new(),
            runs_written: 0,
            len: 0,
        }
    }

    /// Number of records pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of sorted runs written to temporary files so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs_written
    }

    /// Adds a record; spills a sorted run when the memory limit is reached.
    pub fn push(&mut self, record: R) -> io::Result<()> {
        self.buf.push(record);
        self.len += 1;
        if self.buf.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buf.sort_unstable();
        let run = write_run(self.buf.drain(..).map(Ok))?;
        self.runs.push(run);
        self.runs_written += 1;
        if self.runs.len() >= MAX_FAN_IN {
            let merged = merge::<R>(std::mem::take(&mut self.runs), Vec::new())?;
            self.runs.push(write_run(merged)?);
        }
        Ok(())
    }

    /// Every record pushed, in order (equal records in no particular order).
    pub fn into_sorted(mut self) -> io::Result<Sorted<R>> {
        self.buf.sort_unstable();
        merge(
            std::mem::take(&mut self.runs),
            std::mem::take(&mut self.buf),
        )
    }
}

/// Writes sorted records to a new anonymous temporary file, rewound for reading.
fn write_run<R: Record>(records: impl Iterator<Item = io::Result<R>>) -> io::Result<File> {
    let mut w = BufWriter::with_capacity(RUN_BUFFER, tempfile::tempfile()?);
    let mut bytes = vec![0u8; R::SIZE];
    for r in records {
        r?.encode(&mut bytes);
        w.write_all(&bytes)?;
    }
    let mut file = w.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// The k-way merge of sorted `runs` and the sorted in-memory rest.
fn merge<R: Record>(runs: Vec<File>, memory: Vec<R>) -> io::Result<Sorted<R>> {
    if runs.is_empty() {
        return Ok(Sorted(Inner::Memory(memory.into_iter())));
    }
    let mut sources: Vec<Run<R>> = runs
        .into_iter()
        .map(|file| {
            Run::File(
                BufReader::with_capacity(RUN_BUFFER, file),
                vec![0u8; R::SIZE],
            )
        })
        .collect();
    sources.push(Run::Memory(memory.into_iter()));
    let mut heap = BinaryHeap::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        if let Some(r) = s.next_record()? {
            heap.push(Reverse((r, i)));
        }
    }
    Ok(Sorted(Inner::Merge { sources, heap }))
}

/// The sorted records of an [`ExternalSort`]: an iterator of `io::Result<R>` (a temporary file
/// that cannot be read back ends the stream with its error).
pub struct Sorted<R: Record>(Inner<R>);

enum Inner<R: Record> {
    /// Nothing was spilled: the sorted in-memory records.
    Memory(std::vec::IntoIter<R>),
    /// A k-way merge of the spilled runs and the in-memory rest; the heap holds the next record
    /// of each source, smallest first.
    Merge {
        sources: Vec<Run<R>>,
        heap: BinaryHeap<Reverse<(R, usize)>>,
    },
}

impl<R: Record> Iterator for Sorted<R> {
    type Item = io::Result<R>;

    fn next(&mut self) -> Option<io::Result<R>> {
        match &mut self.0 {
            Inner::Memory(it) => it.next().map(Ok),
            Inner::Merge { sources, heap } => {
                let Reverse((record, i)) = heap.pop()?;
                match sources[i].next_record() {
                    Ok(Some(next)) => heap.push(Reverse((next, i))),
                    Ok(None) => {}
                    Err(e) => {
                        heap.clear();
                        return Some(Err(e));
                    }
                }
                Some(Ok(record))
            }
        }
    }
}

/// One sorted run being merged.
enum Run<R: Record> {
    /// A spilled run and its read buffer.
    File(BufReader<File>, Vec<u8>),
    /// The records still in memory.
    Memory(std::vec::IntoIter<R>),
}

impl<R: Record> Run<R> {
    fn next_record(&mut self) -> io::Result<Option<R>> {
        match self {
            Run::Memory(it) => Ok(it.next()),
            Run::File(r, bytes) => match r.read_exact(bytes) {
                Ok(()) => Ok(Some(R::decode(bytes))),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
                Err(e) => Err(e),
            },
        }
    }
}

/// `(u64, i64)` pairs (a hash and a rowid, say), 16 bytes little-endian.
impl Record for (u64, i64) {
    const SIZE: usize = 16;

    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.1.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&bytes[..8]);
        b.copy_from_slice(&bytes[8..16]);
        (u64::from_le_bytes(a), i64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted(records: &[(u64, i64)], limit: usize) -> (Vec<(u64, i64)>, usize) {
        let mut s = ExternalSort::with_limit(limit);
        for &r in records {
            s.push(r).expect("push");
        }
        assert_eq!(s.len(), records.len() as u64);
        let spilled = s.spilled_runs();
        let out = s
            .into_sorted()
            .expect("sorted")
            .collect::<io::Result<Vec<_>>>();
        (out.expect("read back"), spilled)
    }

    #[test]
    fn below_the_limit_nothing_is_spilled() {
        let (out, spilled) = sorted(&[(3, 1), (1, 2), (2, 3)], 10);
        assert_eq!(out, vec![(1, 2), (2, 3), (3, 1)]);
        assert_eq!(spilled, 0);
        let (out, spilled) = sorted(&[], 10);
        assert!(out.is_empty());
        assert_eq!(spilled, 0);
    }

    #[test]
    fn every_limit_gives_the_same_order() {
        let mut x: u64 = 0x1234_5678;
        let records: Vec<(u64, i64)> = (0..10_000i64)
            .map(|rowid| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 3_000, rowid)
            })
            .collect();
        let mut expected = records.clone();
        expected.sort_unstable();
        for limit in [1, 7, 1000, 4096, 9_999, 10_000, 20_000] {
            let (out, spilled) = sorted(&records, limit);
            assert_eq!(spilled, 10_000 / limit, "limit {limit}");
            assert_eq!(out, expected, "limit {limit}");
        }
    }

    #[test]
    fn open_runs_stay_bounded_however_many_spill() {
        let mut s = ExternalSort::with_limit(1);
        for i in 0..(3 * MAX_FAN_IN as i64 + 5) {
            s.push(((i * 7919) as u64 % 101, i)).expect("push");
            assert!(s.runs.len() < MAX_FAN_IN, "{} open runs", s.runs.len());
        }
        assert_eq!(s.spilled_runs(), 3 * MAX_FAN_IN + 5);
        let out: Vec<_> = s
            .into_sorted()
            .expect("sorted")
            .map(|r| r.expect("read"))
            .collect();
        assert_eq!(out.len(), 3 * MAX_FAN_IN + 5);
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_budget_counts_records_in_memory() {
        assert_eq!(records_for_budget::<(u64, i64)>(16 << 20), 1 << 20);
        assert_eq!(records_for_budget::<(u64, i64)>(0), 1);
    }

    proptest! {
        #[test]
        fn spilled_or_not_the_output_is_the_sorted_input(
            records in proptest::collection::vec((0u64..50, any::<i64>()), 0..400),
            limit in 1usize..64,
        ) {
            let mut expected = records.clone();
            expected.sort_unstable();
            let (out, _) = sorted(&records, limit);
            prop_assert_eq!(out, expected);
        }
    }
}
