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

/// Collects rows of one kind (see the module doc). A write error is kept and returned by
/// [`RowsWriter::finish`].
pub(crate) struct RowsWriter<T> {
    out: Option<BufWriter<File>>,
    len: usize,
    /// Bytes written so far (where the next row starts).
    end: u64,
    line: Vec<u8>,
    error: Option<io::Error>,
    _rows: PhantomData<T>,
}

impl<T: Serialize> RowsWriter<T> {
    /// An empty collector (the file is made at the first row).
    pub(crate) fn new() -> Self {
        RowsWriter {
            out: None,
            len: 0,
            end: 0,
            line: Vec::new(),
            error: None,
            _rows: PhantomData,
        }
    }

    /// Adds one row; returns where it starts in the file.
    pub(crate) fn push(&mut self, row: &T) -> u64 {
        let start = self.end;
        self.len += 1;
        if self.error.is_some() {
            return start;
        }
        if self.out.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.out = Some(BufWriter::new(f)),
                Err(e) => {
                    self.error = Some(e);
                    return start;
                }
            }
        }
        if let Some(out) = self.out.as_mut() {
            self.line.clear();
            let written = serde_json::to_writer(&mut self.line, row)
                .map_err(io::Error::from)
                .and_then(|()| {
                    self.line.push(b'\n');
                    out.write_all(&self.line)
                });
            match written {
                Ok(()) => self.end += self.line.len() as u64,
                Err(e) => self.error = Some(e),
            }
        }
        start
    }

    /// Flushes the rows.
    pub(crate) fn finish(self) -> Result<StoredRows<T>, DetectError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        let file = match self.out {
            Some(out) => Some(out.into_inner().map_err(|e| e.into_error())?),
            None => None,
        };
        Ok(StoredRows {
            file,
            len: self.len,
            end: self.end,
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
        let Some(file) = self.file.as_ref() else {
            return Err(DetectError::Spill(io::ErrorKind::UnexpectedEof.into()));
        };
        let mut buf = vec![0u8; end.saturating_sub(start) as usize];
        file.read_exact_at(&mut buf, start)?;
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
