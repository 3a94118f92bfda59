//! The resolved rows of the small tables (grants, invites, sessions), kept out of memory between
//! the passes: written as JSON lines to an anonymous temporary file as they are decided, read
//! back in order when pass 2 walks them. Memory does not grow with the number of rows.

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
    error: Option<io::Error>,
    _rows: PhantomData<T>,
}

impl<T: Serialize> RowsWriter<T> {
    /// An empty collector (the file is made at the first row).
    pub(crate) fn new() -> Self {
        RowsWriter {
            out: None,
            len: 0,
            error: None,
            _rows: PhantomData,
        }
    }

    /// Adds one row.
    pub(crate) fn push(&mut self, row: &T) {
        self.len += 1;
        if self.error.is_some() {
            return;
        }
        if self.out.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.out = Some(BufWriter::new(f)),
                Err(e) => return self.error = Some(e),
            }
        }
        if let Some(out) = self.out.as_mut() {
            let written = serde_json::to_writer(&mut *out, row)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written {
                self.error = Some(e);
            }
        }
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
            _rows: PhantomData,
        })
    }
}

/// The resolved rows of one small table, in v1 rowid order, each made when a walk reaches it
/// (read back from the plan's temporary file, hence the `Result`).
pub struct StoredRows<T> {
    file: Option<File>,
    len: usize,
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

impl<T> fmt::Debug for StoredRows<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRows")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Reads a shared file from its own position (positioned reads: walks do not disturb each
/// other).
struct At<'a> {
    file: &'a File,
    pos: u64,
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
}
