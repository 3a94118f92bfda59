//! Rows kept out of memory between the passes: written as JSON lines to an anonymous temporary
//! file as they are decided, read back in order when pass 2 walks them ([`StoredRows`]: the
//! resolved rows of the small tables: grants, invites, sessions), or one at a time by entry
//! ([`StoredByEntry`]: the prayers' folded attributes). Memory does not grow with the rows'
//! size.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::DetectError;

/// An append-only anonymous temporary file, made at the first write: where the next bytes go,
/// and the first write error, kept for [`Spool::finish`] (so that appending never fails on its
/// own; after an error nothing more is written). The store under [`RowsWriter`], the findings'
/// texts and the attribute folds' testimonies.
pub(crate) struct Spool {
    out: Option<BufWriter<File>>,
    end: u64,
    error: Option<io::Error>,
}

impl Spool {
    /// Nothing written yet (no file).
    pub(crate) fn new() -> Self {
        Spool {
            out: None,
            end: 0,
            error: None,
        }
    }

    /// Appends `parts` back to back; returns where the first one starts.
    pub(crate) fn append(&mut self, parts: &[&[u8]]) -> u64 {
        let start = self.end;
        self.end += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        if self.error.is_some() {
            return start;
        }
        if self.out.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.out = Some(BufWriter::with_capacity(64 << 10, f)),
                Err(e) => {
                    self.error = Some(e);
                    return start;
                }
            }
        }
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = parts.iter().try_for_each(|p| out.write_all(p)) {
                self.error = Some(e);
            }
        }
        start
    }

    /// Records an error met while preparing bytes to append (reported by [`Spool::finish`]).
    pub(crate) fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
    }

    /// Where the next bytes would start: the size of the finished file.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Flushes; the file (`None` when nothing was written), or the first error.
    pub(crate) fn finish(self) -> io::Result<Option<File>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.out
            .map(|out| out.into_inner().map_err(|e| e.into_error()))
            .transpose()
    }
}

/// Fills `buf` from `offset` of a finished [`Spool`]'s file (an empty `buf` needs no file).
pub(crate) fn read_spooled(file: Option<&File>, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    match file {
        _ if buf.is_empty() => Ok(()),
        Some(file) => file.read_exact_at(buf, offset),
        None => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Collects rows of one kind (see the module doc). A write error is kept and returned by
/// [`RowsWriter::finish`].
pub(crate) struct RowsWriter<T> {
    spool: Spool,
    len: usize,
    line: Vec<u8>,
    _rows: PhantomData<T>,
}

impl<T: Serialize> RowsWriter<T> {
    /// An empty collector (the file is made at the first row).
    pub(crate) fn new() -> Self {
        RowsWriter {
            spool: Spool::new(),
            len: 0,
            line: Vec::new(),
            _rows: PhantomData,
        }
    }

    /// Adds one row; returns where it starts in the file.
    pub(crate) fn push(&mut self, row: &T) -> u64 {
        self.len += 1;
        self.line.clear();
        if let Err(e) = serde_json::to_writer(&mut self.line, row) {
            self.spool.fail(e.into());
        }
        self.line.push(b'\n');
        self.spool.append(&[&self.line])
    }

    /// Flushes the rows.
    pub(crate) fn finish(self) -> Result<StoredRows<T>, DetectError> {
        let end = self.spool.end();
        Ok(StoredRows {
            file: self.spool.finish()?,
            len: self.len,
            end,
            _rows: PhantomData,
        })
    }
}

/// The resolved rows of one small table, in v1 rowid order, each made when a walk reaches it
/// (read back from the plan's temporary file, hence the `Result`).
pub struct StoredRows<T> {
    file: Option<File>,
    len: usize,
    /// Size of the file.
    end: u64,
    _rows: PhantomData<T>,
}

impl<T: DeserializeOwned> StoredRows<T> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Walks the rows in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Result<T, DetectError>> + '_ {
        let mut rows = self.file.as_ref().map(|file| {
            serde_json::Deserializer::from_reader(BufReader::new(At { file, pos: 0 }))
                .into_iter::<T>()
        });
        (0..self.len).map(move |_| match rows.as_mut().and_then(Iterator::next) {
            Some(row) => row.map_err(|e| DetectError::Spill(e.into())),
            None => Err(DetectError::Spill(io::ErrorKind::UnexpectedEof.into())),
        })
    }
}

impl<T: DeserializeOwned> StoredRows<T> {
    /// The row stored at `start .. end` of the file (as [`RowsWriter::push`] placed it).
    fn read_range(&self, start: u64, end: u64) -> Result<T, DetectError> {
        let mut buf = vec![0u8; end.saturating_sub(start) as usize];
        read_spooled(self.file.as_ref(), start, &mut buf)?;
        serde_json::from_slice(&buf).map_err(|e| DetectError::Spill(e.into()))
    }
}

/// Rows of some entries (e.g. prayers) stored by entry: the rows in a temporary file
/// ([`StoredRows`]), and in memory only (entry, where its row starts), 12 bytes a row.
pub(crate) struct StoredByEntry<T> {
    rows: StoredRows<T>,
    starts: Vec<(u32, u64)>,
}

/// Writes a [`StoredByEntry`] one row at a time, in ascending entry order.
pub(crate) struct ByEntryWriter<T> {
    rows: RowsWriter<T>,
    starts: Vec<(u32, u64)>,
}

impl<T: Serialize> ByEntryWriter<T> {
    /// An empty store.
    pub(crate) fn new() -> Self {
        ByEntryWriter {
            rows: RowsWriter::new(),
            starts: Vec::new(),
        }
    }

    /// Adds the row of `entry` (greater than every entry pushed before).
    pub(crate) fn push(&mut self, entry: u32, row: &T) {
        debug_assert!(self.starts.last().is_none_or(|s| s.0 < entry));
        self.starts.push((entry, self.rows.push(row)));
    }

    /// Number of rows pushed.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Flushes the rows.
    pub(crate) fn finish(self) -> Result<StoredByEntry<T>, DetectError> {
        Ok(StoredByEntry {
            rows: self.rows.finish()?,
            starts: self.starts,
        })
    }
}

impl<T: Serialize + DeserializeOwned> StoredByEntry<T> {
    /// Number of rows stored.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Every row in entry order (one sequential read).
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = Result<T, DetectError>> + '_ {
        self.rows.iter()
    }

    /// The row of `entry`, if one was stored (one positioned read).
    pub(crate) fn get(&self, entry: u32) -> Result<Option<T>, DetectError> {
        let Ok(i) = self.starts.binary_search_by_key(&entry, |s| s.0) else {
            return Ok(None);
        };
        let end = self.starts.get(i + 1).map_or(self.rows.end, |s| s.1);
        self.rows.read_range(self.starts[i].1, end).map(Some)
    }
}

impl<T> Default for StoredByEntry<T> {
    fn default() -> Self {
        StoredByEntry {
            rows: StoredRows {
                file: None,
                len: 0,
                end: 0,
                _rows: PhantomData,
            },
            starts: Vec::new(),
        }
    }
}

impl<T> fmt::Debug for StoredByEntry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredByEntry")
            .field("len", &self.starts.len())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for StoredRows<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRows")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Reads a shared file from its own position (positioned reads: walks do not disturb each
/// other).
pub(crate) struct At<'a> {
    pub(crate) file: &'a File,
    pub(crate) pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends land back to back where `append` said; nothing written makes no file; an error
    /// met on the way is what `finish` reports.
    #[test]
    fn a_spool_gives_back_what_was_appended_where_it_said() {
        assert!(Spool::new().finish().expect("empty").is_none());
        let mut spool = Spool::new();
        assert_eq!(spool.append(&[b"key", b"reason"]), 0);
        assert_eq!(spool.append(&[]), 9);
        assert_eq!(spool.append(&[b"", "é".as_bytes()]), 9);
        assert_eq!(spool.end(), 11);
        let file = spool.finish().expect("finish");
        let mut buf = [0u8; 6];
        read_spooled(file.as_ref(), 3, &mut buf).expect("read");
        assert_eq!(&buf, b"reason");
        read_spooled(None, 0, &mut []).expect("an empty read needs no file");
        assert!(read_spooled(None, 0, &mut buf).is_err());

        let mut failed = Spool::new();
        failed.append(&[b"before"]);
        failed.fail(io::Error::other("first"));
        failed.fail(io::Error::other("second"));
        assert_eq!(failed.append(&[b"after"]), 6, "offsets still advance");
        assert_eq!(failed.finish().unwrap_err().to_string(), "first");
    }

    #[test]
    fn rows_come_back_in_order() {
        let mut w = RowsWriter::new();
        for i in 0..3u32 {
            w.push(&(i, format!("row {i}\n\"quoted\"")));
        }
        let stored: StoredRows<(u32, String)> = w.finish().expect("finish");
        assert_eq!(stored.len(), 3);
        for _ in 0..2 {
            let rows: Vec<(u32, String)> = stored.iter().collect::<Result<_, _>>().expect("read");
            assert_eq!(rows[2], (2, "row 2\n\"quoted\"".to_string()));
            assert_eq!(rows.len(), 3);
        }
        let empty: StoredRows<u32> = RowsWriter::new().finish().expect("empty");
        assert_eq!(empty.iter().count(), 0);
    }

    #[test]
    fn rows_by_entry_come_back_by_entry() {
        let rows = [
            (9u32, "nine\n".to_string()),
            (2, "two".into()),
            (5, String::new()),
        ];
        let mut sorted = rows.to_vec();
        sorted.sort();
        let mut w = ByEntryWriter::new();
        for (e, row) in &sorted {
            w.push(*e, row);
        }
        let stored = w.finish().expect("store");
        for (e, row) in rows {
            assert_eq!(stored.get(e).expect("read"), Some(row));
        }
        assert_eq!(stored.get(3).expect("read"), None);
        assert_eq!(stored.get(10).expect("read"), None);
        let empty = StoredByEntry::<String>::default();
        assert_eq!(empty.get(0).expect("read"), None);
    }
}
