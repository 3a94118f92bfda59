//! Opening a v1 file read-only inside one read transaction, and streaming its rows.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde::Serialize;

use crate::error::V1Error;
use crate::rows::{chosen_column, MarkRow, V1Row};
use crate::schema::Schema;
use crate::value::V1Value;

/// How to open a v1 database.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// How long to wait for a writer's lock before giving up with [`V1Error::Locked`].
    pub busy_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A v1 database opened read-only, holding one read transaction: every read sees the same
/// snapshot, even while another process keeps writing to a WAL-mode file.
pub struct V1Database {
    conn: Connection,
    path: PathBuf,
    schema: Schema,
    busy_timeout: Duration,
}

/// One entry `PRAGMA integrity_check` reported as missing from an index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingIndexEntry {
    /// The table the row lives in.
    pub table: String,
    /// The index that lacks it.
    pub index: String,
    /// The row's rowid.
    pub rowid: i64,
}

/// SQLite's integrity check, classified. Damaged table pages are not here: they are an error.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IntegrityReport {
    /// Rows present in their table but missing from an index (the seed's unretrievable users).
    pub missing_index_entries: Vec<MissingIndexEntry>,
    /// Other index-only problems (wrong entry counts, non-unique entries): harmless to full scans.
    pub index_problems: Vec<String>,
    /// Constraint violations the check saw in row data (`NULL value in user.id`, CHECK failures).
    pub constraint_problems: Vec<String>,
}

impl IntegrityReport {
    /// True when SQLite reported nothing at all.
    pub fn is_clean(&self) -> bool {
        self.missing_index_entries.is_empty()
            && self.index_problems.is_empty()
            && self.constraint_problems.is_empty()
    }
}

impl V1Database {
    /// Opens `path` read-only with default options. See [`V1Database::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, V1Error> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// Opens `path` read-only, checks it is a complete SQLite file, starts the read transaction
    /// and introspects the schema. Every way a file can be unusable gives its own error.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Self, V1Error> {
        let path = path.as_ref().to_path_buf();
        check_file(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| classify(&path, "sqlite_master", e, opts.busy_timeout))?;
        conn.busy_timeout(opts.busy_timeout)
            .map_err(|e| classify(&path, "sqlite_master", e, opts.busy_timeout))?;
        // Let SQLite's sorter use the machine's cores (ordered mark scans).
        let threads = std::thread::available_parallelism()
            .map(|n| n.get().min(4))
            .unwrap_or(1);
        conn.execute_batch(&format!("PRAGMA threads = {threads}"))
            .map_err(|e| classify(&path, "sqlite_master", e, opts.busy_timeout))?;
        conn.execute_batch("BEGIN DEFERRED")
            .map_err(|e| classify(&path, "sqlite_master", e, opts.busy_timeout))?;
        let tables = read_tables(&conn)
            .map_err(|e| classify(&path, "sqlite_master", e, opts.busy_timeout))?;
        let schema = Schema::from_tables(tables).map_err(|(what, col)| match col {
            Some(column) => V1Error::MissingColumn {
                path: path.clone(),
                table: what,
                column,
            },
            None => V1Error::UnrecognisedSchema {
                path: path.clone(),
                detail: what,
            },
        })?;
        Ok(V1Database {
            conn,
            path,
            schema,
            busy_timeout: opts.busy_timeout,
        })
    }

    /// The file this database was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The introspected schema (generation, columns, unknown columns).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    fn err(&self, table: &str, e: rusqlite::Error) -> V1Error {
        classify(&self.path, table, e, self.busy_timeout)
    }

    /// Checks the file's integrity quickly and classifies the result: `PRAGMA quick_check` over
    /// the whole file (damaged pages, NOT NULL and CHECK violations), plus the full index check
    /// of the `user` table, whose rows missing from an index are the seed's unretrievable users.
    /// Other tables' index consistency is not checked: every table is read by full scan, so a
    /// row missing from one of their indexes is read all the same (see [`Self::integrity_full`]).
    /// Damaged table pages are [`V1Error::Damaged`].
    pub fn integrity(&self) -> Result<IntegrityReport, V1Error> {
        let mut messages = self.pragma_messages("PRAGMA quick_check(1000000)")?;
        if self.schema.has_table("user") {
            messages.extend(self.pragma_messages("PRAGMA integrity_check(\"user\")")?);
        }
        self.classify_integrity(messages)
    }

    /// Runs the full `PRAGMA integrity_check` (every index of every table; slow on large files:
    /// seconds for dataset M) and classifies it as [`Self::integrity`] does.
    pub fn integrity_full(&self) -> Result<IntegrityReport, V1Error> {
        let messages = self.pragma_messages("PRAGMA integrity_check(1000000)")?;
        self.classify_integrity(messages)
    }

    fn pragma_messages(&self, sql: &str) -> Result<Vec<String>, V1Error> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| self.err("integrity_check", e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("integrity_check", e));
        rows
    }

    fn classify_integrity(&self, messages: Vec<String>) -> Result<IntegrityReport, V1Error> {
        let index_tables: BTreeMap<String, String> = self
            .query_pairs("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")
            .map_err(|e| self.err("sqlite_master", e))?
            .into_iter()
            .collect();
        let mut report = IntegrityReport::default();
        let mut damaged = Vec::new();
        for msg in messages {
            if msg == "ok" {
                continue;
            }
            if let Some(entry) = parse_missing_entry(&msg, &index_tables) {
                report.missing_index_entries.push(entry);
            } else if msg.starts_with("wrong # of entries in index")
                || msg.starts_with("non-unique entry in index")
            {
                report.index_problems.push(msg);
            } else if msg.starts_with("NULL value in") || msg.starts_with("CHECK constraint failed")
            {
                report.constraint_problems.push(msg);
            } else {
                damaged.push(msg);
            }
        }
        if !damaged.is_empty() {
            return Err(V1Error::Damaged {
                path: self.path.clone(),
                errors: damaged,
            });
        }
        Ok(report)
    }

    fn query_pairs(&self, sql: &str) -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    /// Non-NULL values of each of `columns` of `table`, in one full scan.
    pub fn non_null_counts(
        &self,
        table: &str,
        columns: &[&str],
    ) -> Result<BTreeMap<String, u64>, V1Error> {
        if columns.is_empty() {
            return Ok(BTreeMap::new());
        }
        let counts: Vec<String> = columns
            .iter()
            .map(|c| format!("count({})", quote_ident(c)))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} NOT INDEXED",
            counts.join(", "),
            quote_ident(table)
        );
        let values: Vec<i64> = self
            .conn
            .query_row(&sql, [], |r| (0..columns.len()).map(|i| r.get(i)).collect())
            .map_err(|e| self.err(table, e))?;
        Ok(columns
            .iter()
            .zip(values)
            .map(|(c, n)| (c.to_string(), n as u64))
            .collect())
    }

    /// Row counts of every table in the file by full table scan (never through an index, which
    /// may lack rows), keyed by table name.
    pub fn table_counts(&self) -> Result<BTreeMap<String, u64>, V1Error> {
        let mut counts = BTreeMap::new();
        for table in self.schema.tables.keys() {
            let sql = format!("SELECT count(*) FROM {} NOT INDEXED", quote_ident(table));
            let n: i64 = self
                .conn
                .query_row(&sql, [], |r| r.get(0))
                .map_err(|e| self.err(table, e))?;
            counts.insert(table.clone(), n as u64);
        }
        Ok(counts)
    }

    /// Streams every row of `R`'s table by full table scan in rowid order, calling `f` for each.
    /// A table the file does not have yields no rows. Returns the number of rows read.
    pub fn for_each<R, E, F>(&self, f: F) -> Result<u64, E>
    where
        R: V1Row,
        E: From<V1Error>,
        F: FnMut(R) -> Result<(), E>,
    {
        self.stream::<R, E, F>("", f)
    }

    /// [`Self::for_each`] handing each row by reference: one row's buffers are refilled in place
    /// for the next row (no allocation per row once text lengths settle). For hot full scans
    /// whose caller keeps little of each row (clone what must outlive the call).
    pub fn for_each_ref<R, E, F>(&self, mut f: F) -> Result<u64, E>
    where
        R: V1Row,
        E: From<V1Error>,
        F: FnMut(&R) -> Result<(), E>,
    {
        let mut current: Option<R> = None;
        self.query_rows::<R, E, _>("", |rowid, row, width| {
            let refillable = match current.as_mut() {
                Some(r) => width > 0 && r.refill_slot(0).is_some(),
                None => false,
            };
            match current.as_mut() {
                Some(r) if refillable => {
                    for i in 0..width {
                        let v = row.get_ref(i + 1).map_err(|e| self.err(R::TABLE, e))?;
                        if let Some((id, slot)) = r.refill_slot(i) {
                            *id = rowid;
                            slot.set_from_ref(v);
                        }
                    }
                }
                _ => {
                    current = Some(R::from_values(
                        rowid,
                        read_values(self, R::TABLE, row, width)?,
                    ))
                }
            }
            match current.as_ref() {
                Some(r) => f(r),
                None => Ok(()),
            }
        })
    }

    /// Streams every mark ordered by `prayer_id` (then rowid), so a caller can group the marks of
    /// one prayer without holding all marks in memory. The sort is SQLite's external sorter.
    pub fn for_each_mark_by_prayer<E, F>(&self, f: F) -> Result<u64, E>
    where
        E: From<V1Error>,
        F: FnMut(MarkRow) -> Result<(), E>,
    {
        let order = match chosen_column(&self.schema, MarkRow::TABLE, &["prayer_id"]) {
            Some(_) => " ORDER BY \"prayer_id\", rowid",
            None => "",
        };
        self.stream::<MarkRow, E, F>(order, f)
    }

    /// Reads every row of `R`'s table into memory (for the small tables).
    pub fn read_all<R: V1Row>(&self) -> Result<Vec<R>, V1Error> {
        let mut out = Vec::new();
        self.for_each::<R, V1Error, _>(|r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    fn stream<R, E, F>(&self, order: &str, mut f: F) -> Result<u64, E>
    where
        R: V1Row,
        E: From<V1Error>,
        F: FnMut(R) -> Result<(), E>,
    {
        self.query_rows::<R, E, _>(order, |rowid, row, width| {
            f(R::from_values(
                rowid,
                read_values(self, R::TABLE, row, width)?,
            ))
        })
    }

    /// Runs the full-scan query of `R`'s table and calls `each(rowid, row, number of fields)`
    /// per row (field `i` is column `i + 1`).
    fn query_rows<R, E, F>(&self, order: &str, mut each: F) -> Result<u64, E>
    where
        R: V1Row,
        E: From<V1Error>,
        F: FnMut(i64, &rusqlite::Row<'_>, usize) -> Result<(), E>,
    {
        if !self.schema.has_table(R::TABLE) {
            return Ok(0);
        }
        let cols = field_columns::<R>(&self.schema);
        let sql = format!(
            "SELECT rowid, {} FROM {} NOT INDEXED{}",
            cols.join(", "),
            quote_ident(R::TABLE),
            order
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(R::TABLE, e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(R::TABLE, e))?;
        let mut n = 0u64;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => return Err(self.err(R::TABLE, e).into()),
            };
            let rowid: i64 = row.get(0).map_err(|e| self.err(R::TABLE, e))?;
            each(rowid, row, cols.len())?;
            n += 1;
        }
        Ok(n)
    }

    /// The row of `R`'s table with this rowid (a point lookup by rowid, never through a key
    /// index), typed as the streams give it. `None` when the table or the row does not exist.
    /// For callers that keep only rowids of a few rows and need them again.
    pub fn row_by_rowid<R: V1Row>(&self, rowid: i64) -> Result<Option<R>, V1Error> {
        if !self.schema.has_table(R::TABLE) {
            return Ok(None);
        }
        let cols = field_columns::<R>(&self.schema);
        let sql = format!(
            "SELECT {} FROM {} WHERE rowid = ?1",
            cols.join(", "),
            quote_ident(R::TABLE)
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| self.err(R::TABLE, e))?;
        let mut rows = stmt.query([rowid]).map_err(|e| self.err(R::TABLE, e))?;
        let Some(row) = rows.next().map_err(|e| self.err(R::TABLE, e))? else {
            return Ok(None);
        };
        let mut values = Vec::with_capacity(cols.len());
        for i in 0..cols.len() {
            let v = row.get_ref(i).map_err(|e| self.err(R::TABLE, e))?;
            values.push(V1Value::from(v));
        }
        Ok(Some(R::from_values(rowid, values)))
    }

    /// The rowids reachable through `table`'s primary-key index (a full index scan). A row of the
    /// table whose rowid is not in this set cannot be fetched by its key: the index lacks it.
    /// `None` when the table has no separate primary-key index.
    pub fn pk_index_rowids(&self, table: &str) -> Result<Option<HashSet<i64>>, V1Error> {
        if !self.schema.has_table(table) {
            return Ok(None);
        }
        let sql = format!("PRAGMA index_list({})", quote_ident(table));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(table, e))?;
        let pk_index: Option<String> = stmt
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(3)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(table, e))?
            .into_iter()
            .find(|(_, origin)| origin == "pk")
            .map(|(name, _)| name);
        let Some(index) = pk_index else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT rowid FROM {} INDEXED BY {}",
            quote_ident(table),
            quote_ident(&index)
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(table, e))?;
        let set = stmt
            .query_map([], |r| r.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<HashSet<i64>>>())
            .map_err(|e| self.err(table, e))?;
        Ok(Some(set))
    }

    /// The whole row `rowid` of `table` as read, as JSON keyed by the file's column names
    /// (every column, known or not; bytes that are not UTF-8 as hex). `None` if absent.
    pub fn row_json(&self, table: &str, rowid: i64) -> Result<Option<serde_json::Value>, V1Error> {
        let Some(columns) = self.schema.tables.get(table) else {
            return Ok(None);
        };
        let sql = format!("SELECT * FROM {} WHERE rowid = ?1", quote_ident(table));
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(|e| self.err(table, e))?;
        let mut rows = stmt.query([rowid]).map_err(|e| self.err(table, e))?;
        let Some(row) = rows.next().map_err(|e| self.err(table, e))? else {
            return Ok(None);
        };
        let mut map = serde_json::Map::new();
        for (i, col) in columns.iter().enumerate() {
            let v = row.get_ref(i).map_err(|e| self.err(table, e))?;
            map.insert(col.clone(), V1Value::from(v).to_json());
        }
        Ok(Some(serde_json::Value::Object(map)))
    }
}

/// Fields `1..=width` of a streamed row as owned values.
fn read_values(
    db: &V1Database,
    table: &str,
    row: &rusqlite::Row<'_>,
    width: usize,
) -> Result<Vec<V1Value>, V1Error> {
    let mut values = Vec::with_capacity(width);
    for i in 0..width {
        let v = row.get_ref(i + 1).map_err(|e| db.err(table, e))?;
        values.push(V1Value::from(v));
    }
    Ok(values)
}

/// The selected column per field of `R` (`NULL` for a field the file does not have), quoted.
fn field_columns<R: V1Row>(schema: &Schema) -> Vec<String> {
    R::FIELDS
        .iter()
        .map(|cands| match chosen_column(schema, R::TABLE, cands) {
            Some(c) => quote_ident(c),
            None => "NULL".to_string(),
        })
        .collect()
}

/// `"name"` with embedded quotes doubled: identifiers come from `sqlite_master`, never from users,
/// but are quoted all the same.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn read_tables(conn: &Connection) -> rusqlite::Result<BTreeMap<String, Vec<String>>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut tables = BTreeMap::new();
    for name in names {
        let mut info = conn.prepare(&format!("PRAGMA table_info({})", quote_ident(&name)))?;
        let cols: Vec<String> = info
            .query_map([], |r| r.get(1))?
            .collect::<rusqlite::Result<_>>()?;
        tables.insert(name, cols);
    }
    Ok(tables)
}

/// Parses `row N missing from index IDX` into an entry naming the index's table.
fn parse_missing_entry(
    msg: &str,
    index_tables: &BTreeMap<String, String>,
) -> Option<MissingIndexEntry> {
    let rest = msg.strip_prefix("row ")?;
    let (rowid, index) = rest.split_once(" missing from index ")?;
    let index = index.trim().to_string();
    let table = index_tables.get(&index)?.clone();
    Some(MissingIndexEntry {
        table,
        index,
        rowid: rowid.trim().parse().ok()?,
    })
}

/// Checks the file exists, is a regular non-empty file with a SQLite header, and is not shorter
/// than its header says.
fn check_file(path: &Path) -> Result<(), V1Error> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(V1Error::Missing {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(V1Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if meta.is_dir() {
        return Err(V1Error::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if meta.len() == 0 {
        return Err(V1Error::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut header = [0u8; 100];
    let mut file = std::fs::File::open(path).map_err(|source| V1Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let got = read_up_to(&mut file, &mut header).map_err(|source| V1Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !header.starts_with(b"SQLite format 3\0") {
        let printable: String = header[..got.min(24)]
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        return Err(V1Error::NotSqlite {
            path: path.to_path_buf(),
            detail: format!("it starts with {printable:?}"),
        });
    }
    if got < 100 {
        return Err(V1Error::Truncated {
            path: path.to_path_buf(),
            expected: 100,
            actual: meta.len(),
        });
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        n => n as u64,
    };
    let change_counter = u32::from_be_bytes(header[24..28].try_into().unwrap_or_default());
    let page_count = u32::from_be_bytes(header[28..32].try_into().unwrap_or_default()) as u64;
    let valid_for = u32::from_be_bytes(header[92..96].try_into().unwrap_or_default());
    if valid_for == change_counter && page_count > 0 {
        let expected = page_size * page_count;
        if meta.len() < expected {
            return Err(V1Error::Truncated {
                path: path.to_path_buf(),
                expected,
                actual: meta.len(),
            });
        }
    }
    Ok(())
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Maps a SQLite error to the reader's error for `table`.
fn classify(path: &Path, table: &str, e: rusqlite::Error, waited: Duration) -> V1Error {
    let path = path.to_path_buf();
    if let rusqlite::Error::SqliteFailure(code, ref msg) = e {
        match code.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return V1Error::Locked {
                    path,
                    waited_ms: waited.as_millis() as u64,
                }
            }
            ErrorCode::NotADatabase => {
                return V1Error::NotSqlite {
                    path,
                    detail: msg
                        .clone()
                        .unwrap_or_else(|| "file is not a database".into()),
                }
            }
            ErrorCode::DatabaseCorrupt => {
                return V1Error::Damaged {
                    path,
                    errors: vec![format!(
                        "reading {table}: {}",
                        msg.clone()
                            .unwrap_or_else(|| "database disk image is malformed".into())
                    )],
                }
            }
            _ => {}
        }
    }
    V1Error::Sqlite {
        path,
        table: table.to_string(),
        source: e,
    }
}

/// The write-ahead log beside a SQLite file: `<db>-wal`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// The sha256 of the source as it stands: the database file followed by its `-wal` file when one
/// exists, hex-encoded. Used as the source fingerprint of a migration run.
pub fn source_sha256(path: &Path) -> Result<String, V1Error> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (i, p) in [path.to_path_buf(), wal_path(path)].iter().enumerate() {
        let mut file = match std::fs::File::open(p) {
            Ok(f) => f,
            Err(e) if i == 1 && e.kind() == std::io::ErrorKind::NotFound => break,
            Err(source) => {
                return Err(V1Error::Io {
                    path: p.clone(),
                    source,
                })
            }
        };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(|source| V1Error::Io {
                path: p.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}
