//! The SQLite half of the writer: rows appended to key-less scratch copies of the big tables
//! (`crate::stage`) through one prepared `INSERT` each, the others inserted into the target in
//! multi-row statements; the secondary indexes dropped for the load and re-created from
//! `sqlite_master`'s text; the foreign keys checked set-based at the end.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::SqliteConnection;

use super::{Deferred, Fail, RowGuard, RowSink};
use crate::db::{db_error, APP_TABLES, BOOKKEEPING_TABLES, RUN_ROW_KEYS};
use crate::error::Result;
use crate::stage::{quote, stageable, Stage};
use crate::table::V2Row;
use crate::target::Target;

struct SqliteSink<'c, 'a, R> {
    conn: &'c mut SqliteConnection,
    buf: Vec<R>,
    chunk: usize,
    guard: RowGuard<'a>,
    target: &'a Target,
    count: u64,
}

impl<R: V2Row> SqliteSink<'_, '_, R> {
    fn send(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = R::insert_sqlite(self.conn, &self.buf);
        self.buf.clear();
        r.map(drop)
            .map_err(|e| db_error(self.target, &format!("INSERT INTO {}", R::TABLE), e))
    }
}

impl<R: V2Row> RowSink<R> for SqliteSink<'_, '_, R> {
    fn push(&mut self, row: &R) -> Result<()> {
        self.guard.admit(row)?;
        self.buf.push(row.clone());
        self.count += 1;
        if self.buf.len() < self.chunk {
            return Ok(());
        }
        let r = self.send();
        self.guard.settle(r)
    }
}

/// At most this many bound values per statement (SQLite's limit is 32,766).
const SQLITE_MAX_BINDS: usize = 30_000;

pub(super) fn write_sqlite<R: V2Row, E>(
    c: &mut SqliteConnection,
    target: &Target,
    run_id: &str,
    f: impl FnOnce(&mut dyn RowSink<R>) -> std::result::Result<(), E>,
) -> std::result::Result<u64, Fail<E>> {
    let chunk = (SQLITE_MAX_BINDS / R::COLUMNS).clamp(1, 1000);
    let mut sink = SqliteSink::<R> {
        conn: c,
        buf: Vec::with_capacity(chunk),
        chunk,
        guard: RowGuard::new(run_id),
        target,
        count: 0,
    };
    f(&mut sink).map_err(Fail::Caller)?;
    if let Some(e) = sink.guard.take() {
        return Err(Fail::Writer(e));
    }
    sink.send().map_err(Fail::Writer)?;
    Ok(sink.count)
}

/// The load's stage if table `table` goes through it (opening the stage on first use).
pub(super) fn staged<'s>(
    c: &mut SqliteConnection,
    stage: &'s mut Option<Stage>,
    target: &Target,
    table: &'static str,
) -> Result<Option<&'s mut Stage>> {
    if !stageable(table) {
        return Ok(None);
    }
    let s = match stage {
        Some(s) => s,
        None => stage.insert(Stage::open(c, target)?),
    };
    Ok(if s.has_table(c, target, table)? {
        Some(s)
    } else {
        None
    })
}

/// Pushes rows into a scratch table through one prepared single-row `INSERT`, binding each
/// field straight from the row.
struct StageSink<'s, 'a> {
    stmt: &'s mut rusqlite::Statement<'a>,
    guard: RowGuard<'a>,
    target: &'a Target,
    count: u64,
}

impl<R: V2Row> RowSink<R> for StageSink<'_, '_> {
    fn push(&mut self, row: &R) -> Result<()> {
        self.guard.admit(row)?;
        let r = row
            .bind_sqlite(self.stmt)
            .and_then(|()| self.stmt.raw_execute())
            .map(|_| self.count += 1)
            .map_err(|e| db_error(self.target, &format!("INSERT INTO {}", R::TABLE), e));
        self.guard.settle(r)
    }
}

pub(super) fn write_staged<R: V2Row, E>(
    stage: &mut Stage,
    target: &Target,
    run_id: &str,
    f: impl FnOnce(&mut dyn RowSink<R>) -> std::result::Result<(), E>,
) -> std::result::Result<u64, Fail<E>> {
    let (conn, sql) = stage.insert_target::<R>(target).map_err(Fail::Writer)?;
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(|e| Fail::Writer(db_error(target, &format!("INSERT INTO {}", R::TABLE), e)))?;
    let mut sink = StageSink {
        stmt: &mut stmt,
        guard: RowGuard::new(run_id),
        target,
        count: 0,
    };
    f(&mut sink).map_err(Fail::Caller)?;
    match sink.guard.take() {
        Some(e) => Err(Fail::Writer(e)),
        None => Ok(sink.count),
    }
}

#[derive(QueryableByName)]
struct SqliteIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    sql: String,
}

/// Drops the application tables' secondary indexes (re-created from `sqlite_master`'s text after
/// the load) and sets the page cache for the load: 16 MiB, which also bounds the sorter's
/// in-memory runs when the indexes are built (64 MiB measured no faster on M, with 85 MiB more
/// peak memory: the big tables arrive through the scratch database, not through this cache),
/// and lets the sorter use a helper thread ([`crate::stage::SORTER_HELPER_THREADS`]).
pub(super) fn defer_sqlite(c: &mut SqliteConnection) -> QueryResult<Deferred> {
    c.batch_execute(&format!(
        "PRAGMA cache_size = -16384; PRAGMA threads = {}",
        crate::stage::SORTER_HELPER_THREADS
    ))?;
    let placeholders = vec!["?"; APP_TABLES.len()].join(", ");
    let sql = format!(
        "SELECT name, sql FROM sqlite_master \
         WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({placeholders}) ORDER BY name"
    );
    let mut q = diesel::sql_query(sql).into_boxed();
    for t in APP_TABLES {
        q = q.bind::<Text, _>(t);
    }
    let rows: Vec<SqliteIndex> = q.load(c)?;
    let drops: Vec<String> = rows
        .iter()
        .map(|r| format!("DROP INDEX {}", quote(&r.name)))
        .collect();
    c.batch_execute(&drops.join(";\n"))?;
    Ok(Deferred {
        build: rows.into_iter().map(|r| (r.name, r.sql)).collect(),
        foreign_keys: Vec::new(),
    })
}

#[derive(QueryableByName)]
struct FkProblem {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Nullable<diesel::sql_types::BigInt>)]
    rid: Option<i64>,
    #[diesel(sql_type = Text)]
    parent: String,
}

/// One foreign key of `pragma_foreign_key_list` (its first column; `width` columns in all).
#[derive(QueryableByName)]
struct SqliteForeignKey {
    #[diesel(sql_type = Text)]
    tbl: String,
    #[diesel(sql_type = Text)]
    col: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Nullable<Text>)]
    parent_col: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    width: i64,
}

/// `text` as an SQL string literal.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[derive(QueryableByName)]
struct KeyText {
    #[diesel(sql_type = Text)]
    k: String,
}

/// The first row breaking a foreign key, as (table, key, reason).
///
/// Set-based rather than `PRAGMA foreign_key_check`, which probes the parent once per child row:
/// each single-column foreign key compares the child column's distinct values (read off an
/// index on it when there is one) with the parent key, and only a missing value's first row is
/// fetched. On L's 5.3 M marks: 1.9 s instead of 4–8 s for the marks' two keys. A foreign key of
/// several columns, or naming no parent column, falls back to the pragma for its table.
pub(super) fn sqlite_foreign_key_problem(
    c: &mut SqliteConnection,
) -> QueryResult<Option<(&'static str, String, String)>> {
    let keys: Vec<SqliteForeignKey> = diesel::sql_query(
        "SELECT m.name AS tbl, min(f.\"from\") AS col, f.\"table\" AS parent, \
                min(f.\"to\") AS parent_col, count(*) AS width \
           FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
          WHERE m.type = 'table' GROUP BY m.name, f.id ORDER BY m.name, f.id",
    )
    .load(c)?;
    let mut p: Option<FkProblem> = None;
    for k in &keys {
        p = match (&k.parent_col, k.width) {
            (Some(parent_col), 1) => {
                let (child, col) = (quote(&k.tbl), quote(&k.col));
                let missing = format!(
                    "SELECT v FROM (SELECT DISTINCT {col} AS v FROM {child} WHERE {col} IS NOT NULL) \
                      WHERE NOT EXISTS (SELECT 1 FROM {} p WHERE p.{} = v) LIMIT 1",
                    quote(&k.parent),
                    quote(parent_col)
                );
                let found: Option<KeyText> =
                    diesel::sql_query(format!("SELECT CAST(v AS TEXT) AS k FROM ({missing})"))
                        .get_result(c)
                        .optional()?;
                match found {
                    // Only then the row: a second scan of a table without an index on `col`.
                    Some(_) => diesel::sql_query(format!(
                        "SELECT {} AS tbl, rowid AS rid, {} AS parent FROM {child} \
                          WHERE {col} = ({missing}) LIMIT 1",
                        quote_literal(&k.tbl),
                        quote_literal(&k.parent),
                    ))
                    .get_result(c)
                    .optional()?,
                    None => None,
                }
            }
            _ => diesel::sql_query(
                "SELECT \"table\" AS tbl, \"rowid\" AS rid, \"parent\" AS parent \
                 FROM pragma_foreign_key_check(?) LIMIT 1",
            )
            .bind::<Text, _>(&k.tbl)
            .get_result(c)
            .optional()?,
        };
        if p.is_some() {
            break;
        }
    }
    let Some(p) = p else { return Ok(None) };
    let reason = format!("references a missing {} row (foreign key check)", p.parent);
    let rowid = || format!("rowid {}", p.rid.unwrap_or(-1));
    let Some((table, key)) = RUN_ROW_KEYS
        .iter()
        .find(|(t, _)| *t == p.tbl)
        .map(|(t, k)| (*t, k.unwrap_or("id")))
    else {
        let table = BOOKKEEPING_TABLES
            .iter()
            .find(|t| **t == p.tbl)
            .copied()
            .unwrap_or("(a table outside the v2 schema)");
        return Ok(Some((table, rowid(), reason)));
    };
    let key = match p.rid {
        Some(rid) => diesel::sql_query(format!("SELECT {key} AS k FROM {table} WHERE rowid = ?"))
            .bind::<diesel::sql_types::BigInt, _>(rid)
            .get_result::<KeyText>(c)
            .map(|k| k.k)
            .unwrap_or_else(|_| rowid()),
        None => "?".into(),
    };
    Ok(Some((table, key, reason)))
}
