//! The PostgreSQL half of the writer: rows streamed through `COPY … FROM STDIN` (binary for
//! all but `sessions`), and the keys, constraints and indexes read from `pg_catalog`, dropped
//! for the load and re-created at its end.

use std::cell::RefCell;
use std::io::Write;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel::PgConnection;

use super::{Deferred, Fail, RowGuard, RowSink};
use crate::db::{db_error, APP_TABLES};
use crate::error::Result;
use crate::table::{V2Row, COPY_BINARY_HEADER, COPY_BINARY_TRAILER};
use crate::target::Target;

/// The error handed back to diesel's COPY to make it abort.
#[derive(Debug)]
enum CopyAbort {
    Diesel(diesel::result::Error),
    Aborted,
}

impl std::fmt::Display for CopyAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyAbort::Diesel(e) => e.fmt(f),
            CopyAbort::Aborted => f.write_str("load aborted by the writer"),
        }
    }
}

impl std::error::Error for CopyAbort {}

impl From<diesel::result::Error> for CopyAbort {
    fn from(e: diesel::result::Error) -> Self {
        CopyAbort::Diesel(e)
    }
}

const COPY_BUFFER: usize = 1 << 20;

struct PgSink<'w, 'a> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    guard: RowGuard<'a>,
    target: &'a Target,
    count: u64,
    /// COPY binary format (else text).
    binary: bool,
}

impl PgSink<'_, '_> {
    fn send<R: V2Row>(&mut self) -> Result<()> {
        let r = self.out.write_all(&self.buf);
        self.buf.clear();
        r.map_err(|e| db_error(self.target, &format!("COPY {}", R::TABLE), e))
    }
}

impl<R: V2Row> RowSink<R> for PgSink<'_, '_> {
    fn push(&mut self, row: &R) -> Result<()> {
        self.guard.admit(row)?;
        if self.binary {
            row.encode_copy_binary(&mut self.buf);
        } else {
            row.encode_copy(&mut self.buf);
        }
        self.count += 1;
        if self.buf.len() < COPY_BUFFER {
            return Ok(());
        }
        let r = self.send::<R>();
        self.guard.settle(r)
    }
}

pub(super) fn write_pg<R: V2Row, E>(
    c: &mut PgConnection,
    target: &Target,
    run_id: &str,
    f: impl FnOnce(&mut dyn RowSink<R>) -> std::result::Result<(), E>,
) -> std::result::Result<u64, Fail<E>> {
    // diesel's COPY callback is an `Fn`: hand it the caller's `FnOnce` through a cell.
    let f = RefCell::new(Some(f));
    let outcome: RefCell<Option<std::result::Result<u64, Fail<E>>>> = RefCell::new(None);
    let binary = R::BINARY_COPY;
    let res = R::copy_pg::<CopyAbort, _>(c, binary, |out| {
        let Some(f) = f.borrow_mut().take() else {
            return Err(CopyAbort::Aborted);
        };
        let mut sink = PgSink {
            out,
            buf: Vec::with_capacity(COPY_BUFFER + 64 * 1024),
            guard: RowGuard::new(run_id),
            target,
            count: 0,
            binary,
        };
        if binary {
            sink.buf.extend_from_slice(COPY_BINARY_HEADER);
        }
        let r = f(&mut sink);
        let r = match (r, sink.guard.take()) {
            (Err(e), _) => Err(Fail::Caller(e)),
            (Ok(()), Some(e)) => Err(Fail::Writer(e)),
            (Ok(()), None) => {
                if binary {
                    sink.buf.extend_from_slice(COPY_BINARY_TRAILER);
                }
                sink.send::<R>().map(|()| sink.count).map_err(Fail::Writer)
            }
        };
        let ok = r.is_ok();
        *outcome.borrow_mut() = Some(r);
        if ok {
            Ok(())
        } else {
            Err(CopyAbort::Aborted)
        }
    });
    match (res, outcome.into_inner()) {
        (_, Some(Err(e))) => Err(e),
        (Ok(_), Some(Ok(n))) => Ok(n),
        (Err(e), _) => Err(Fail::Writer(db_error(
            target,
            &format!("COPY {}", R::TABLE),
            e,
        ))),
        (Ok(_), None) => Err(Fail::Writer(db_error(
            target,
            &format!("COPY {}", R::TABLE),
            "the row callback was never called",
        ))),
    }
}

#[derive(QueryableByName)]
pub(super) struct DdlRow {
    #[diesel(sql_type = Text)]
    pub(super) what: String,
    #[diesel(sql_type = Text)]
    pub(super) drop_sql: String,
    #[diesel(sql_type = Text)]
    pub(super) create_sql: String,
    #[diesel(sql_type = Text)]
    pub(super) kind: String,
}

/// The keys, unique constraints (`p`, `u`), foreign keys (`f`) and secondary indexes (`i`) of
/// `tables`, of the kinds in `kinds`, read from `pg_catalog` with the statements dropping and
/// re-creating them.
pub(super) fn pg_ddl(
    c: &mut PgConnection,
    tables: &[&str],
    kinds: &[&str],
) -> QueryResult<Vec<DdlRow>> {
    let sql = "
        SELECT * FROM (
        SELECT c.conname::text AS what,
               format('ALTER TABLE %I DROP CONSTRAINT %I', t.relname, c.conname) AS drop_sql,
               format('ALTER TABLE %I ADD CONSTRAINT %I %s', t.relname, c.conname,
                      pg_get_constraintdef(c.oid)) AS create_sql,
               c.contype::text AS kind
          FROM pg_constraint c
          JOIN pg_class t ON t.oid = c.conrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = current_schema() AND t.relname = ANY($1) AND c.contype IN ('p', 'u', 'f')
        UNION ALL
        SELECT ic.relname::text, format('DROP INDEX %I', ic.relname), pg_get_indexdef(i.indexrelid), 'i'
          FROM pg_index i
          JOIN pg_class ic ON ic.oid = i.indexrelid
          JOIN pg_class t ON t.oid = i.indrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = current_schema() AND t.relname = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                            WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
        ) d WHERE d.kind = ANY($2)
         ORDER BY 1";
    diesel::sql_query(sql)
        .bind::<Array<Text>, _>(tables)
        .bind::<Array<Text>, _>(kinds)
        .load(c)
}

/// Reads the application tables' keys, unique constraints, foreign keys and secondary indexes
/// from `pg_catalog`, drops them, and returns the statements that re-create them.
pub(super) fn defer_pg(c: &mut PgConnection) -> QueryResult<Deferred> {
    // Sorts in memory: index builds (maintenance_work_mem) and the sorted inserts of the run's
    // row keys (work_mem; at the 4 MB default they spill to disk: 3.1 s instead of 0.9 s for
    // 500,000 prayers).
    c.batch_execute(
        "SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL work_mem = '256MB'; \
         SET LOCAL max_parallel_maintenance_workers = 2",
    )?;
    let rows = pg_ddl(c, &APP_TABLES, &["p", "u", "f", "i"])?;
    let of = |k: &'static str| rows.iter().filter(move |r| r.kind == k);
    // Drop foreign keys first (they depend on the referenced keys), then keys, then indexes.
    let drops: Vec<&str> = of("f")
        .chain(of("u"))
        .chain(of("p"))
        .chain(of("i"))
        .map(|r| r.drop_sql.as_str())
        .collect();
    c.batch_execute(&drops.join(";\n"))?;
    let pair = |r: &DdlRow| (r.what.clone(), r.create_sql.clone());
    Ok(Deferred {
        build: of("p").chain(of("u")).chain(of("i")).map(pair).collect(),
        foreign_keys: of("f").map(pair).collect(),
    })
}
