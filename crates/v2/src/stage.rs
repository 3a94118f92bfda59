//! The SQLite load's scratch database: rows land in key-less copies of the target's tables, their
//! keys are built there by sorting, and SQLite's transfer optimisation copies table and key b-trees
//! into the (empty) target tables page by page.
//!
//! Why: a PRIMARY KEY or UNIQUE constraint of a SQLite table is an automatic index maintained row by
//! row, and with random UUID-hex keys each insert lands on a random leaf; once the indexes outgrow
//! the page cache that is where the load spends its time. `INSERT INTO t SELECT * FROM s` of a
//! table `s` declared exactly like `t` (same columns, CHECKs, and for every index of `t` an index
//! of `s` on the same columns with the same conflict action) is instead done by SQLite's "xfer"
//! optimisation: the encoded records and index entries are copied in order, appended, without
//! decoding or checking (the source's own constraints vouch for them).
//!
//! How, per table written through the stage:
//!
//! 1. the target's `CREATE TABLE` text (from `sqlite_master`) is cut into its items; the scratch
//!    table gets the columns and CHECK constraints only (no PRIMARY KEY, UNIQUE, FOREIGN KEY), so
//!    rows are appended in rowid order through one prepared single-row `INSERT`;
//! 2. at commit, for every automatic index of the target (`sqlite_autoindex_<table>_<n>`) a
//!    `CREATE UNIQUE INDEX` on the same columns (collation, order) is built in the scratch table by
//!    SQLite's sorter — a duplicate key is reported here, with its value;
//! 3. the scratch schema is then rewritten (`PRAGMA writable_schema`, on the private scratch file
//!    only, never on the target) so that the table is declared with the target's text minus its
//!    foreign keys and the built indexes carry the automatic index names: the scratch table now
//!    looks exactly like the target's, and its b-trees hold exactly what those declarations
//!    describe (the same columns, built by SQLite itself);
//! 4. the target connection (which attached the scratch file at the start) checks that the scratch
//!    indexes it now sees have the target's definitions, then runs `INSERT INTO main.t SELECT *
//!    FROM thywill_stage.t` inside the load's transaction.
//!
//! Should the transfer optimisation not apply (it needs an empty target table, which a load always
//! has), SQLite runs the same statement row by row with every constraint checked: slower, still
//! correct. The scratch file lives in a temporary folder and is unlinked as soon as both
//! connections have it open, so nothing is left behind even by a killed process.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel::SqliteConnection;

use crate::db::{db_error, path_str};
use crate::error::{Error, Result};
use crate::table::V2Row;
use crate::target::Target;

/// The name the target connection attaches the scratch database under.
pub(crate) const STAGE_SCHEMA: &str = "thywill_stage";

/// The scratch connection's page cache (KiB), which also bounds the sorter's in-memory runs when
/// the keys are built (longer inputs are sorted in runs of that size, spilled to temporary files
/// and merged). The rows themselves are only appended. Measured on M: 4, 16 and 64 MiB cost the
/// same CPU time within the noise of a loaded machine; 16 MiB keeps the peak small.
const STAGE_CACHE_KIB: i64 = 16 * 1024;
/// Helper threads SQLite's sorter may use to build keys and indexes (`PRAGMA threads`): one
/// sorts and merges runs while the connection's thread reads the table. Measured on the marks'
/// three largest indexes: L (5.3 M marks) 12.6 s → 9.4 s, M unchanged, 16 MiB more peak memory
/// (a second sort buffer); a second helper (three threads on two cores): L 9.8 s, 14 MiB more.
pub(crate) const SORTER_HELPER_THREADS: u32 = 1;

/// The tables that may be loaded through the stage: the ones a load always starts empty.
pub(crate) fn stageable(table: &str) -> bool {
    crate::db::APP_TABLES.contains(&table) || table == "migration_id_map"
}

/// One column of an index, as `pragma_index_xinfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
struct IndexColumn {
    #[diesel(sql_type = Integer)]
    seqno: i32,
    #[diesel(sql_type = Integer)]
    cid: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = Integer)]
    desc: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    coll: Option<String>,
    #[diesel(sql_type = Integer)]
    key: i32,
}

/// An automatic index of a target table (its PRIMARY KEY or a UNIQUE constraint).
#[derive(Debug)]
struct AutoIndex {
    /// `sqlite_autoindex_<table>_<n>`.
    name: String,
    /// `pk` or `u`.
    origin: String,
    /// Its columns (key columns and the trailing rowid), as the target describes them.
    columns: Vec<IndexColumn>,
}

impl AutoIndex {
    fn key_columns(&self) -> impl Iterator<Item = &IndexColumn> {
        self.columns.iter().filter(|c| c.key != 0)
    }

    /// `"a" COLLATE "BINARY", "b" COLLATE "NOCASE" DESC`: the key columns as an index column list.
    fn column_sql(&self) -> Option<String> {
        let cols: Option<Vec<String>> = self
            .key_columns()
            .map(|c| {
                let name = c.name.as_deref()?;
                let coll = c.coll.as_deref().unwrap_or("BINARY");
                Some(format!(
                    "{} COLLATE {}{}",
                    quote(name),
                    quote(coll),
                    if c.desc != 0 { " DESC" } else { "" }
                ))
            })
            .collect();
        cols.filter(|c| !c.is_empty()).map(|c| c.join(", "))
    }

    /// `primary key (id)` / `unique (prayer_id, user_id, marked_at)`, for messages.
    fn describe(&self) -> String {
        let cols: Vec<&str> = self
            .key_columns()
            .map(|c| c.name.as_deref().unwrap_or("?"))
            .collect();
        let kind = if self.origin == "pk" {
            "primary key"
        } else {
            "unique"
        };
        format!("{kind} ({})", cols.join(", "))
    }
}

/// A table being loaded through the stage.
#[derive(Debug)]
struct StagedTable {
    name: &'static str,
    /// The target's `CREATE TABLE` minus its foreign keys: the scratch table's final declaration.
    final_sql: String,
    /// The target's automatic indexes.
    keys: Vec<AutoIndex>,
}

/// The scratch database of one SQLite load (see the module documentation).
pub(crate) struct Stage {
    /// The scratch connection (closed once the keys are built).
    conn: Option<rusqlite::Connection>,
    /// The temporary folder, if it could not be removed at once (removed when the load ends).
    _dir: Option<tempfile::TempDir>,
    tables: Vec<StagedTable>,
    /// Tables whose declaration the stage cannot reproduce: written straight into the target.
    direct: Vec<&'static str>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("tables", &self.tables)
            .field("direct", &self.direct)
            .finish()
    }
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn scratch_err(target: &Target, context: &str, e: impl std::fmt::Display) -> Error {
    db_error(target, &format!("scratch database: {context}"), e)
}

#[derive(QueryableByName)]
struct SqlText {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    sql: Option<String>,
}

#[derive(QueryableByName)]
struct IndexListRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    origin: String,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Integer)]
    n: i32,
}

fn index_columns(
    c: &mut SqliteConnection,
    index: &str,
    schema: &str,
) -> QueryResult<Vec<IndexColumn>> {
    diesel::sql_query(
        "SELECT seqno, cid, name, \"desc\", coll, key FROM pragma_index_xinfo(?, ?) ORDER BY seqno",
    )
    .bind::<Text, _>(index)
    .bind::<Text, _>(schema)
    .load(c)
}

impl Stage {
    /// Creates the scratch database in a new temporary folder, attaches it to the target
    /// connection `dest` (inside the load's transaction) and unlinks it.
    pub(crate) fn open(dest: &mut SqliteConnection, target: &Target) -> Result<Stage> {
        let dir = tempfile::Builder::new()
            .prefix("thywill-stage-")
            .tempdir()
            .map_err(|e| Error::Io {
                path: std::env::temp_dir().display().to_string(),
                source: e,
            })?;
        let path = dir.path().join("stage.db");
        let path_s = path_str(&path)
            .map_err(|m| scratch_err(target, "path", m))?
            .to_string();
        let conn = rusqlite::Connection::open(&path).map_err(|e| scratch_err(target, "open", e))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF; \
             PRAGMA cache_size = -{STAGE_CACHE_KIB}; PRAGMA threads = {SORTER_HELPER_THREADS}; BEGIN;"
        ))
        .map_err(|e| scratch_err(target, "setup", e))?;
        diesel::sql_query(format!("ATTACH DATABASE ? AS {STAGE_SCHEMA}"))
            .bind::<Text, _>(&path_s)
            .execute(dest)
            .map_err(|e| scratch_err(target, "ATTACH", e))?;
        // Both connections hold the file open now: its name (and folder) are no longer needed, so
        // that not even a killed process leaves anything behind. Where an open file cannot be
        // removed, the folder goes when the load ends.
        let dir = match std::fs::remove_file(&path) {
            Ok(()) => {
                if let Err(e) = dir.close() {
                    tracing::debug!(error = %e, "could not remove the scratch folder");
                }
                None
            }
            Err(_) => Some(dir),
        };
        Ok(Stage {
            conn: Some(conn),
            _dir: dir,
            tables: Vec::new(),
            direct: Vec::new(),
        })
    }

    /// Whether `table` goes through the stage, preparing its scratch table the first time.
    /// `false`: the stage cannot reproduce the table's declaration; write it straight.
    pub(crate) fn has_table(
        &mut self,
        dest: &mut SqliteConnection,
        target: &Target,
        table: &'static str,
    ) -> Result<bool> {
        if self.tables.iter().any(|t| t.name == table) {
            return Ok(true);
        }
        if self.direct.contains(&table) {
            return Ok(false);
        }
        let read = |e: diesel::result::Error| {
            db_error(target, &format!("reading the declaration of {table}"), e)
        };
        let plan = plan_table(dest, table).map_err(read)?;
        let Some((create, final_sql, keys)) = plan else {
            tracing::debug!(table, "not staged: declaration not reproducible");
            self.direct.push(table);
            return Ok(false);
        };
        let conn = self.conn(target)?;
        conn.execute_batch(&create)
            .map_err(|e| scratch_err(target, &format!("creating {table}"), e))?;
        self.tables.push(StagedTable {
            name: table,
            final_sql,
            keys,
        });
        Ok(true)
    }

    fn conn(&self, target: &Target) -> Result<&rusqlite::Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| scratch_err(target, "write", "already closed"))
    }

    /// The scratch connection and the single-row insert of `R` (columns in
    /// [`V2Row::COLUMN_NAMES`] order).
    pub(crate) fn insert_target<R: V2Row>(
        &self,
        target: &Target,
    ) -> Result<(&rusqlite::Connection, String)> {
        let cols: Vec<String> = R::COLUMN_NAMES.iter().map(|c| quote(c)).collect();
        let params: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(R::TABLE),
            cols.join(", "),
            params.join(", ")
        );
        Ok((self.conn(target)?, sql))
    }

    /// Builds the keys in the scratch tables, gives them the target's declarations, and copies
    /// every staged table into the target (see the module documentation).
    pub(crate) fn finish(&mut self, dest: &mut SqliteConnection, target: &Target) -> Result<()> {
        let Some(conn) = self.conn.take() else {
            return Err(scratch_err(target, "finish", "already finished"));
        };
        for t in &self.tables {
            for (n, k) in t.keys.iter().enumerate() {
                let started = std::time::Instant::now();
                let Some(cols) = k.column_sql() else {
                    return Err(scratch_err(target, &k.name, "index without named columns"));
                };
                let sql = format!(
                    "CREATE UNIQUE INDEX {} ON {} ({cols})",
                    quote(&format!("thywill_key_{}_{n}", t.name)),
                    quote(t.name)
                );
                if let Err(e) = conn.execute_batch(&sql) {
                    return Err(duplicate(&conn, target, t.name, k).unwrap_or_else(|| {
                        scratch_err(target, &format!("building {}", k.name), e)
                    }));
                }
                tracing::debug!(what = %k.name, seconds = started.elapsed().as_secs_f64(), "key built in the scratch database");
            }
        }
        let started = std::time::Instant::now();
        self.redeclare(&conn)
            .map_err(|e| scratch_err(target, "declaring the keys", e))?;
        conn.close()
            .map_err(|(_, e)| scratch_err(target, "close", e))?;
        // The target connection read the scratch schema when it attached the file: make it read
        // the new one, then check that what it sees is what the target declares.
        let fresh = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {STAGE_SCHEMA}.sqlite_master"
        ))
        .get_result::<Flag>(dest);
        fresh.map_err(|e| scratch_err(target, "reading its schema", e))?;
        for t in &self.tables {
            for k in &t.keys {
                let seen = index_columns(dest, &k.name, STAGE_SCHEMA)
                    .map_err(|e| scratch_err(target, "reading its schema", e))?;
                if seen != k.columns {
                    return Err(scratch_err(
                        target,
                        &k.name,
                        format!("declares {seen:?}, the target {:?}", k.columns),
                    ));
                }
            }
        }
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "scratch keys declared"
        );
        for t in &self.tables {
            let started = std::time::Instant::now();
            let sql = format!(
                "INSERT INTO main.{0} SELECT * FROM {STAGE_SCHEMA}.{0}",
                quote(t.name)
            );
            dest.batch_execute(&sql).map_err(|e| {
                db_error(
                    target,
                    &format!("copying {} from the scratch database", t.name),
                    e,
                )
            })?;
            tracing::debug!(
                table = t.name,
                seconds = started.elapsed().as_secs_f64(),
                "copied from the scratch database"
            );
        }
        Ok(())
    }

    /// Commits the scratch rows and keys, then declares each table as the target does (minus
    /// foreign keys) with its key indexes under the automatic index names, and bumps the schema
    /// cookie so that every connection re-reads the schema.
    fn redeclare(&self, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        conn.execute_batch("COMMIT; BEGIN; PRAGMA writable_schema = ON;")?;
        for t in &self.tables {
            conn.execute(
                "UPDATE sqlite_master SET sql = ?1 WHERE type = 'table' AND name = ?2",
                (&t.final_sql, t.name),
            )?;
            for (n, k) in t.keys.iter().enumerate() {
                conn.execute(
                    "UPDATE sqlite_master SET name = ?1, sql = NULL WHERE type = 'index' AND name = ?2",
                    (&k.name, format!("thywill_key_{}_{n}", t.name)),
                )?;
            }
        }
        let version: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        conn.execute_batch(&format!(
            "PRAGMA schema_version = {}; PRAGMA writable_schema = OFF; COMMIT;",
            version + 1
        ))
    }

    /// Detaches the scratch database from the target connection (after the load's transaction).
    pub(crate) fn detach(dest: &mut SqliteConnection) {
        let _ = dest.batch_execute(&format!("DETACH DATABASE {STAGE_SCHEMA}"));
    }
}

/// After a failed unique index build: the first duplicated key, as an [`Error::InvalidRow`].
fn duplicate(
    conn: &rusqlite::Connection,
    target: &Target,
    table: &'static str,
    k: &AutoIndex,
) -> Option<Error> {
    let cols: Vec<String> = k
        .key_columns()
        .map(|c| {
            let coll = c.coll.as_deref().unwrap_or("BINARY");
            format!(
                "{} COLLATE {}",
                quote(c.name.as_deref().unwrap_or("")),
                quote(coll)
            )
        })
        .collect();
    let not_null: Vec<String> = k
        .key_columns()
        .map(|c| format!("{} IS NOT NULL", quote(c.name.as_deref().unwrap_or(""))))
        .collect();
    let sql = format!(
        "SELECT {cols} FROM {} WHERE {} GROUP BY {cols} HAVING count(*) > 1 LIMIT 1",
        quote(table),
        not_null.join(" AND "),
        cols = cols.join(", "),
    );
    let r = conn.query_row(&sql, [], |row| {
        (0..cols.len())
            .map(|i| {
                row.get_ref(i).map(|v| match v {
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    rusqlite::types::ValueRef::Real(f) => f.to_string(),
                    rusqlite::types::ValueRef::Blob(b) => hex::encode(b),
                    rusqlite::types::ValueRef::Null => "NULL".into(),
                })
            })
            .collect::<rusqlite::Result<Vec<String>>>()
    });
    match r {
        Ok(key) => Some(Error::InvalidRow {
            table,
            key: key.join("/"),
            reason: format!("duplicate {}", k.describe()),
        }),
        Err(e) => {
            tracing::warn!(table, error = %target.scrub(&e.to_string()), "could not name the duplicate key");
            None
        }
    }
}

/// (Only `main`'s catalog is read: a query touching the attached scratch database would hold a
/// read lock on it until the load's transaction ends, and the scratch connection could not commit.)
///
/// The scratch `CREATE TABLE`, the final declaration and the automatic indexes of target table
/// `table`; `None` when the stage cannot reproduce it (no declaration, WITHOUT ROWID, an INTEGER
/// PRIMARY KEY, column-level keys or references, generated columns, text it cannot cut).
type Plan = Option<(String, String, Vec<AutoIndex>)>;

fn plan_table(dest: &mut SqliteConnection, table: &str) -> QueryResult<Plan> {
    let sql: Option<SqlText> =
        diesel::sql_query("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?")
            .bind::<Text, _>(table)
            .get_result(dest)
            .optional()?;
    let Some(sql) = sql.and_then(|s| s.sql) else {
        return Ok(None);
    };
    let pk_columns: Flag =
        diesel::sql_query("SELECT count(*) AS n FROM pragma_table_info(?, 'main') WHERE pk > 0")
            .bind::<Text, _>(table)
            .get_result(dest)?;
    let list: Vec<IndexListRow> = diesel::sql_query(
        "SELECT name, origin FROM pragma_index_list(?, 'main') WHERE origin IN ('pk', 'u') ORDER BY name",
    )
    .bind::<Text, _>(table)
    .load(dest)?;
    if pk_columns.n > 0 && !list.iter().any(|i| i.origin == "pk") {
        return Ok(None); // INTEGER PRIMARY KEY: the key is the rowid
    }
    let mut keys = Vec::new();
    for i in list {
        if !i.name.starts_with("sqlite_autoindex_") {
            return Ok(None);
        }
        let columns = index_columns(dest, &i.name, "main")?;
        keys.push(AutoIndex {
            name: i.name,
            origin: i.origin,
            columns,
        });
    }
    let Some((items, tail)) = table_items(&sql) else {
        return Ok(None);
    };
    if top_tokens(tail).iter().any(|w| w == "WITHOUT") {
        return Ok(None);
    }
    let mut scratch = Vec::new();
    let mut declared = Vec::new();
    for item in items {
        match classify(item) {
            Item::Column | Item::Check => {
                scratch.push(item);
                declared.push(item);
            }
            Item::Key => declared.push(item),
            Item::ForeignKey => {}
            Item::Unsupported => return Ok(None),
        }
    }
    // The items keep their own spacing (a trailing `-- comment` keeps the newline ending it).
    let create =
        |items: &[&str]| format!("CREATE TABLE {} ({}){tail}", quote(table), items.join(","));
    Ok(Some((create(&scratch), create(&declared), keys)))
}

/// What one item of a `CREATE TABLE` body declares.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Column,
    Check,
    /// PRIMARY KEY or UNIQUE (an automatic index).
    Key,
    ForeignKey,
    /// A column with its own key, reference or generation rule, or anything unrecognised.
    Unsupported,
}

fn classify(item: &str) -> Item {
    let tokens = top_tokens(item);
    let mut t: &[String] = &tokens;
    if t.first().map(String::as_str) == Some("CONSTRAINT") {
        t = t.get(2..).unwrap_or(&[]);
    }
    match t.first().map(String::as_str) {
        None => Item::Unsupported,
        Some("PRIMARY" | "UNIQUE") => Item::Key,
        Some("FOREIGN") => Item::ForeignKey,
        Some("CHECK") => Item::Check,
        Some(_) if tokens.first().map(String::as_str) == Some("CONSTRAINT") => Item::Unsupported,
        Some(_) => {
            let special = ["PRIMARY", "UNIQUE", "REFERENCES", "GENERATED", "AS"];
            if t[1..].iter().any(|w| special.contains(&w.as_str())) {
                Item::Unsupported
            } else {
                Item::Column
            }
        }
    }
}

/// The tokens of `item` outside parentheses: words upper-cased, quoted names and strings kept as
/// written; comments skipped.
fn top_tokens(item: &str) -> Vec<String> {
    let b = item.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(end) = skip_quoted_or_comment(b, i) {
            if depth == 0 && !matches!(c, b'-' | b'/') {
                out.push(item[i..end].to_string());
            }
            i = end;
            continue;
        }
        match c {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                if depth == 0 {
                    out.push(item[start..i].to_ascii_uppercase());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// If a quoted name, string or comment starts at `i`, the index just past it (or the end).
fn skip_quoted_or_comment(b: &[u8], i: usize) -> Option<usize> {
    let find = |from: usize, pat: &[u8]| {
        b[from..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map_or(b.len(), |p| from + p + pat.len())
    };
    match b[i] {
        q @ (b'\'' | b'"' | b'`') => {
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == q {
                    if b.get(j + 1) == Some(&q) {
                        j += 2;
                        continue;
                    }
                    return Some(j + 1);
                }
                j += 1;
            }
            Some(b.len())
        }
        b'[' => Some(find(i + 1, b"]")),
        b'-' if b.get(i + 1) == Some(&b'-') => Some(find(i + 2, b"\n")),
        b'/' if b.get(i + 1) == Some(&b'*') => Some(find(i + 2, b"*/")),
        _ => None,
    }
}

/// Cuts `CREATE TABLE name (item, item, …) tail` into its items and the tail; `None` if the text
/// does not have that shape.
fn table_items(sql: &str) -> Option<(Vec<&str>, &str)> {
    let b = sql.as_bytes();
    let mut depth = 0usize;
    let mut start = None;
    let mut items = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = skip_quoted_or_comment(b, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'(' => {
                depth += 1;
                if depth == 1 {
                    start = Some(i + 1);
                }
            }
            b')' => {
                if depth == 1 {
                    items.push(sql.get(start?..i)?);
                    return Some((items, sql.get(i + 1..)?));
                }
                depth = depth.checked_sub(1)?;
            }
            b',' if depth == 1 => {
                items.push(sql.get(start?..i)?);
                start = Some(i + 1);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_classifies_a_create_table() {
        let sql = "CREATE TABLE \"t(x\" (\n  id VARCHAR(32) NOT NULL, -- a, comment (\n  \
                   n DECIMAL(10, 2) DEFAULT ('a,b)'),\n  \
                   CONSTRAINT t_pkey PRIMARY KEY (id),\n  UNIQUE (n, id),\n  \
                   CONSTRAINT \"c,k\" CHECK (n > 0 AND id <> ')'),\n  \
                   CONSTRAINT fk FOREIGN KEY (id) REFERENCES u (id) ON DELETE CASCADE\n) STRICT";
        let (items, tail) = table_items(sql).unwrap();
        assert_eq!(tail, " STRICT");
        let kinds: Vec<Item> = items.iter().map(|i| classify(i)).collect();
        assert_eq!(
            kinds,
            [
                Item::Column,
                Item::Column,
                Item::Key,
                Item::Key,
                Item::Check,
                Item::ForeignKey
            ]
        );
        assert!(items[1].contains("-- a, comment ("));
        for unsupported in [
            "id INTEGER PRIMARY KEY",
            "id TEXT UNIQUE",
            "p TEXT REFERENCES prayers (id)",
            "n INT GENERATED ALWAYS AS (1)",
            "n INT AS (1)",
            "CONSTRAINT x",
            "",
        ] {
            assert_eq!(classify(unsupported), Item::Unsupported, "{unsupported}");
        }
        assert_eq!(classify("\"unique\" TEXT NOT NULL"), Item::Column);
        assert_eq!(classify("unique_key TEXT DEFAULT 'PRIMARY'"), Item::Column);
        assert_eq!(table_items("CREATE TABLE t (a, b"), None);
        assert_eq!(table_items("CREATE TABLE t a, b)"), None);
    }
}

#[cfg(test)]
mod load_tests {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    use diesel_migrations::MigrationHarness;

    use super::*;
    use crate::rows::{PrayerMark, User};
    use crate::testing::{mark, user};

    #[derive(QueryableByName)]
    struct Opcode {
        #[diesel(sql_type = Text)]
        opcode: String,
    }

    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }

    fn dest() -> (tempfile::TempDir, SqliteConnection, Target) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.run_pending_migrations(crate::db::SQLITE_MIGRATIONS)
            .unwrap();
        c.batch_execute("PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE")
            .unwrap();
        // As a load does: the secondary indexes are dropped, to be rebuilt after the copy.
        let indexes: Vec<Opcode> = diesel::sql_query(
            "SELECT name AS opcode FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )
        .load(&mut c)
        .unwrap();
        for i in indexes {
            c.batch_execute(&format!("DROP INDEX {}", i.opcode))
                .unwrap();
        }
        let target = Target::SqliteFile(path);
        (dir, c, target)
    }

    fn push<R: V2Row>(stage: &Stage, target: &Target, rows: &[R]) {
        let (conn, sql) = stage.insert_target::<R>(target).unwrap();
        let mut stmt = conn.prepare_cached(&sql).unwrap();
        for r in rows {
            r.bind_sqlite(&mut stmt).unwrap();
            stmt.raw_execute().unwrap();
        }
    }

    /// Every table a load stages is declared so that SQLite copies it with the transfer
    /// optimisation (the plan holds `RowData`, which only that path uses), and the copy is sound.
    #[test]
    fn every_staged_table_is_copied_by_the_transfer_optimisation() {
        let (_dir, mut c, target) = dest();
        let mut stage = Stage::open(&mut c, &target).unwrap();
        let tables = crate::db::APP_TABLES
            .iter()
            .copied()
            .chain(["migration_id_map"]);
        for t in tables.clone() {
            assert!(stage.has_table(&mut c, &target, t).unwrap(), "{t}");
        }
        assert!(!stageable("migration_findings"));
        let users: Vec<User> = (0..50).map(user).collect();
        let marks: Vec<PrayerMark> = (0..500).map(|i| mark(i, 7, 50)).collect();
        push(&stage, &target, &users);
        push(&stage, &target, &marks);
        stage.finish(&mut c, &target).unwrap();
        for t in tables {
            let plan: Vec<Opcode> = diesel::sql_query(format!(
                "EXPLAIN INSERT INTO main.{t} SELECT * FROM {STAGE_SCHEMA}.{t}"
            ))
            .load(&mut c)
            .unwrap();
            assert!(plan.iter().any(|o| o.opcode == "RowData"), "{t}");
        }
        let check: Vec<Check> = diesel::sql_query("PRAGMA main.integrity_check")
            .load(&mut c)
            .unwrap();
        assert_eq!(check.len(), 1);
        assert_eq!(check[0].integrity_check, "ok");
        c.batch_execute("COMMIT").unwrap();
        Stage::detach(&mut c);
        let n: Vec<Opcode> = diesel::sql_query(
            "SELECT group_concat(n) AS opcode FROM (SELECT count(*) AS n FROM users \
             UNION ALL SELECT count(*) FROM prayer_marks)",
        )
        .load(&mut c)
        .unwrap();
        assert_eq!(n[0].opcode, "50,500");
    }

    #[test]
    fn a_duplicate_key_is_named() {
        let (_dir, mut c, target) = dest();
        let mut stage = Stage::open(&mut c, &target).unwrap();
        assert!(stage.has_table(&mut c, &target, "prayer_marks").unwrap());
        let mut marks: Vec<PrayerMark> = (0..20).map(|i| mark(i, 7, 50)).collect();
        marks[13].id = marks[4].id.clone();
        push(&stage, &target, &marks);
        match stage.finish(&mut c, &target) {
            Err(Error::InvalidRow { table, key, reason }) => {
                assert_eq!(table, "prayer_marks");
                assert_eq!(key, marks[4].id);
                assert_eq!(reason, "duplicate primary key (id)");
            }
            other => panic!("{other:?}"),
        }
    }
}
