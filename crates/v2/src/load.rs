//! The atomic bulk writer: one transaction per run, rows pushed by the caller and streamed straight
//! to the database (PostgreSQL `COPY … FROM STDIN`; SQLite through a scratch database whose tables
//! are copied into the target at commit, see `stage.rs`).
//!
//! Order of a load (see `crates/v2/README.md` for the why):
//!
//! 1. outside the transaction (real runs only): create or upgrade the schema, take the run lock
//!    (PostgreSQL advisory lock; SQLite `BEGIN IMMEDIATE`), mark runs left `running` by a killed
//!    process as `failed`, insert this run's `migration_runs` row as `running` and commit it, so a
//!    run that dies leaves exactly that row behind;
//! 2. `BEGIN`; refuse a target holding data (unless `replace`, which empties the application tables
//!    here, inside the transaction); clear the id map;
//! 3. PostgreSQL: drop the application tables' foreign keys, primary/unique constraints and
//!    secondary indexes (definitions read from `pg_catalog`, kept to re-create them); SQLite: drop
//!    the secondary indexes and load with `foreign_keys = OFF`;
//! 4. the caller streams rows table by table (`COPY`, binary format but for `sessions`), each row
//!    checked in Rust first. SQLite: the first write opens a scratch file in a temporary folder,
//!    attaches it to the target connection and unlinks it; the application tables and the id map
//!    are appended to key-less copies of themselves there (one prepared single-row `INSERT` per
//!    table, fields bound straight from the row); findings go straight into the target
//!    (multi-row `INSERT`);
//! 5. on commit: re-create primary/unique constraints, indexes, then foreign keys (PostgreSQL
//!    validates each with one join). SQLite: the keys are built in the scratch tables by sorting
//!    (a duplicate is refused naming its key), the scratch tables are declared like the target's,
//!    each is copied into its empty target table by SQLite's transfer optimisation (records and
//!    key entries appended in order), then the secondary indexes are re-created and
//!    every foreign key is checked set-based (distinct child values against the parent key);
//!    record the run's rows in `migration_run_rows`; set the run
//!    `succeeded`; `COMMIT` (a dry run rolls back instead, or drops its temporary copy). The
//!    target only changes inside the transaction, so a killed load leaves it as it was.
//!
//! This file holds that lifecycle and what every sink shares (the row guard); each backend's
//! half is its own module: `load/pg.rs` (COPY, the DDL read from `pg_catalog`) and
//! `load/sqlite.rs` (the sinks into the scratch tables and the target, index deferral, the
//! set-based foreign-key check).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::db::{
    alien_error, db_error, dispatch, now_utc, open_sqlite, path_str, state_of, AnyConn,
    TargetState, V2Db, APP_TABLES, RUN_ROW_KEYS,
};
use crate::error::{Error, Result};
use crate::rows::{run_status, MigrationRun};
use crate::schema::migration_runs;
use crate::stage::Stage;
use crate::table::V2Row;
use crate::target::Target;

mod pg;
mod sqlite;

use pg::{defer_pg, pg_ddl, write_pg};
use sqlite::{defer_sqlite, sqlite_foreign_key_problem, staged, write_sqlite, write_staged};

/// Key of the PostgreSQL advisory lock that serialises migration runs on one database.
const PG_RUN_LOCK: i64 = 0x7468_7977_696c_6c32; // "thywill2"

/// How the writer should treat the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Do the whole job and leave no trace (PostgreSQL: roll back; SQLite: a temporary copy).
    pub dry_run: bool,
    /// Empty the application tables (inside the load's transaction) when they hold other data.
    pub replace: bool,
}

/// The facts of a run recorded in `migration_runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// 32-hex run id (random by default).
    pub run_id: String,
    /// Start of the run (UTC, microseconds).
    pub started_at: NaiveDateTime,
    /// The tool's version.
    pub tool_version: String,
    /// The v1 file.
    pub source_path: String,
    /// sha256 (hex) of the v1 file.
    pub source_sha256: String,
    /// v1 schema generation (`G0`..`G3`).
    pub source_generation: String,
}

impl RunInfo {
    /// A run starting now with a fresh random id.
    pub fn new(
        source_path: impl Into<String>,
        source_sha256: impl Into<String>,
        source_generation: impl Into<String>,
        tool_version: impl Into<String>,
    ) -> RunInfo {
        RunInfo {
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            started_at: now_utc(),
            tool_version: tool_version.into(),
            source_path: source_path.into(),
            source_sha256: source_sha256.into(),
            source_generation: source_generation.into(),
        }
    }
}

/// Where the caller pushes the rows of one table. A row failing [`V2Row::check`] is refused with
/// [`Error::InvalidRow`] naming its table and key; after any error the sink refuses every push and
/// the load can only be rolled back.
pub trait RowSink<R: V2Row> {
    /// Checks `row` and sends it on (buffered; nothing is kept once it is sent).
    fn push(&mut self, row: &R) -> Result<()>;
}

/// What a committed (or dry-run) load wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// Whether it was a dry run (nothing kept).
    pub dry_run: bool,
    /// Rows written per table.
    pub rows: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Active,
    Poisoned,
    Done,
}

/// DDL taken down for the load and put back before commit (PostgreSQL: constraints and indexes;
/// SQLite: secondary indexes).
#[derive(Debug, Default)]
struct Deferred {
    /// Primary keys and unique constraints, then secondary indexes: built after the data.
    build: Vec<(String, String)>,
    /// Foreign keys: added (and validated) last.
    foreign_keys: Vec<(String, String)>,
}

/// One run's load, inside one transaction. Push rows with [`Load::write`], then
/// [`Load::commit`]; [`Load::rollback`] or dropping it rolls everything back.
pub struct Load<'db> {
    db: &'db mut V2Db,
    /// A SQLite dry run's temporary copy (the directory is removed on drop).
    temp: Option<(tempfile::TempDir, AnyConn)>,
    run: MigrationRun,
    opts: LoadOptions,
    rows: BTreeMap<&'static str, u64>,
    deferred: Deferred,
    phase: Phase,
    locked: bool,
    /// SQLite: the scratch database the tables are staged in (attached to the connection).
    stage: Option<Stage>,
}

impl std::fmt::Debug for Load<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Load")
            .field("target", &self.db.target)
            .field("run_id", &self.run.run_id)
            .field("opts", &self.opts)
            .field("rows", &self.rows)
            .finish()
    }
}

impl V2Db {
    /// Starts the load of a run: prepares the target (see the module documentation for the
    /// order) and opens the run's transaction. Refuses a target holding application data with
    /// [`Error::AlreadyMigrated`] (same source) or [`Error::ForeignData`] (exit 4) unless
    /// `opts.replace` is set.
    pub fn begin_load(&mut self, info: RunInfo, opts: LoadOptions) -> Result<Load<'_>> {
        Load::begin(self, info, opts)
    }
}

impl<'db> Load<'db> {
    fn begin(db: &'db mut V2Db, info: RunInfo, opts: LoadOptions) -> Result<Load<'db>> {
        let is_pg = matches!(db.conn, AnyConn::Pg(_));
        let mut temp = None;
        if !is_pg && opts.dry_run {
            if let Target::SqliteFile(_) = db.target {
                let dir = tempfile::tempdir().map_err(|e| Error::Io {
                    path: std::env::temp_dir().display().to_string(),
                    source: e,
                })?;
                let copy = dir.path().join("dry-run.db");
                let copy_s = path_str(&copy).map_err(|m| db.connect_err(&m))?.to_string();
                if db.missing_file.is_none() {
                    db.conn
                        .exec1("VACUUM INTO $1", &copy_s)
                        .map_err(|e| db.db_err("copying the database for a dry run", e))?;
                }
                let c = open_sqlite(&copy_s).map_err(|m| db.connect_err(&m))?;
                temp = Some((dir, AnyConn::Sqlite(c)));
            }
        }
        if !opts.dry_run {
            db.materialise()?;
        }
        let run = MigrationRun {
            run_id: info.run_id,
            started_at: info.started_at,
            finished_at: None,
            status: run_status::RUNNING.into(),
            tool_version: info.tool_version,
            source_path: info.source_path,
            source_sha256: info.source_sha256,
            source_generation: info.source_generation,
            dry_run: opts.dry_run,
            counts_json: "{}".into(),
        };
        let mut load = Load {
            db,
            temp,
            run,
            opts,
            rows: BTreeMap::new(),
            deferred: Deferred::default(),
            phase: Phase::Active,
            locked: false,
            stage: None,
        };
        if let Err(e) = load.prepare() {
            load.abort();
            return Err(e);
        }
        Ok(load)
    }

    /// The run's id (bookkeeping rows must carry it).
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// Rows written so far, per table.
    pub fn rows_written(&self) -> &BTreeMap<&'static str, u64> {
        &self.rows
    }

    fn conn(&mut self) -> &mut AnyConn {
        conn_of(&mut self.temp, &mut self.db.conn)
    }

    /// Whether this dry run works in place, inside a transaction rolled back at the end.
    fn in_place_dry_run(&self) -> bool {
        self.opts.dry_run && self.temp.is_none()
    }

    fn err(&self, context: &str, e: impl std::fmt::Display) -> Error {
        db_error(&self.db.target, context, e)
    }

    fn prepare(&mut self) -> Result<()> {
        let schema_err = |t: &Target, m: String| Error::Schema {
            url: t.redacted(),
            message: t.scrub(&m),
        };
        // The lock comes first: two runs starting together must not both create the schema
        // (PostgreSQL's catalog refuses the second CREATE TABLE with a raw duplicate-key error).
        if matches!(self.conn(), AnyConn::Pg(_)) {
            let r = self
                .conn()
                .batch(&format!("SELECT pg_advisory_lock({PG_RUN_LOCK})"));
            r.map_err(|e| self.err("taking the migration run lock", e))?;
            self.locked = true;
        }
        if !self.in_place_dry_run() {
            let r = self.conn().run_migrations();
            r.map_err(|m| schema_err(&self.db.target, m))?;
        }
        if !self.opts.dry_run {
            // Refuse before recording anything, then record the run outside the transaction.
            self.check_state()?;
            let run = self.run.clone();
            let now = now_utc();
            let r = dispatch!(self.conn(), c => {
                diesel::update(migration_runs::table.filter(migration_runs::status.eq(run_status::RUNNING)))
                    .set((migration_runs::status.eq(run_status::FAILED), migration_runs::finished_at.eq(now)))
                    .execute(c)
                    .and_then(|_| diesel::insert_into(migration_runs::table).values(&run).execute(c))
            });
            r.map_err(|e| self.err("recording the run in migration_runs", e))?;
        }
        if matches!(self.conn(), AnyConn::Sqlite(_)) {
            let r = self.conn().batch("PRAGMA foreign_keys = OFF");
            r.map_err(|e| self.err("PRAGMA foreign_keys", e))?;
        }
        let r = self.conn().begin();
        r.map_err(|e| self.err("BEGIN", e))?;
        if self.in_place_dry_run() {
            let r = self.conn().run_migrations();
            r.map_err(|m| schema_err(&self.db.target, m))?;
        }
        self.check_state()?;
        if self.opts.dry_run {
            let run = self.run.clone();
            let r = dispatch!(self.conn(), c =>
                diesel::insert_into(migration_runs::table).values(&run).execute(c));
            r.map_err(|e| self.err("recording the run in migration_runs", e))?;
        }
        self.clear()?;
        let r = match self.conn() {
            AnyConn::Pg(c) => defer_pg(c),
            AnyConn::Sqlite(c) => defer_sqlite(c),
        };
        self.deferred = r.map_err(|e| self.err("setting up the bulk load", e))?;
        Ok(())
    }

    /// Refuses a target holding application data unless `replace` is set.
    fn check_state(&mut self) -> Result<()> {
        let sha = self.run.source_sha256.clone();
        let state = state_of(self.conn(), &sha);
        let url = self.db.target.redacted();
        match state.map_err(|e| self.err("reading the target state", e))? {
            alien @ TargetState::Alien { .. } => Err(alien_error(url, &alien)),
            _ if self.opts.replace => Ok(()),
            TargetState::Empty => Ok(()),
            TargetState::AlreadyMigrated { run_id } => Err(Error::AlreadyMigrated {
                url,
                sha256: sha,
                run_id,
            }),
            TargetState::Foreign {
                run_id,
                source_sha256,
            } => Err(Error::ForeignData {
                url,
                what: match (run_id, source_sha256) {
                    (Some(r), Some(s)) => format!("written by run {r} from source sha256 {s}"),
                    _ => "that no recorded migration run wrote".into(),
                },
            }),
        }
    }

    /// Empties the application tables (replace) and the id map, inside the transaction. What
    /// `--replace` deletes is logged per table, and the runs whose data it was are marked
    /// `replaced` (so `migration_runs` still says which run's data the tables hold).
    fn clear(&mut self) -> Result<()> {
        let replace = self.opts.replace;
        if replace {
            self.record_replaced()?;
        }
        let sql = match self.conn() {
            AnyConn::Pg(_) if replace => format!(
                "TRUNCATE {}; DELETE FROM migration_id_map; DELETE FROM migration_run_rows;",
                APP_TABLES.join(", ")
            ),
            AnyConn::Sqlite(_) if replace => {
                let mut s: String = APP_TABLES
                    .iter()
                    .rev()
                    .map(|t| format!("DELETE FROM {t}; "))
                    .collect();
                s.push_str("DELETE FROM migration_id_map; DELETE FROM migration_run_rows;");
                s
            }
            _ => "DELETE FROM migration_id_map; DELETE FROM migration_run_rows;".into(),
        };
        let r = self.conn().batch(&sql);
        r.map_err(|e| self.err("emptying the application tables", e))
    }

    /// Logs the rows `--replace` is about to delete and marks the earlier succeeded runs
    /// `replaced` (a dry run does both inside its transaction or copy, which is discarded).
    fn record_replaced(&mut self) -> Result<()> {
        let run_id = self.run.run_id.clone();
        let mut rows = Vec::new();
        for t in APP_TABLES {
            let n = self.conn().count_rows(t);
            rows.push(format!(
                "{t}: {}",
                n.map_err(|e| self.err(&format!("counting {t}"), e))?
            ));
        }
        let sql = "UPDATE migration_runs SET status = 'replaced' \
                   WHERE status = 'succeeded' AND run_id <> $1";
        let r = self.conn().exec1(sql, &run_id);
        let runs = r.map_err(|e| self.err("marking the replaced runs", e))?;
        tracing::warn!(
            target = %self.db.target,
            replaced_runs = runs,
            "--replace: deleting the application rows in the target ({})",
            rows.join(", ")
        );
        Ok(())
    }

    fn ensure_active(&self) -> Result<()> {
        match self.phase {
            Phase::Active => Ok(()),
            _ => Err(Error::Poisoned {
                run_id: self.run.run_id.clone(),
            }),
        }
    }

    /// Streams the rows of table `R`: `f` receives a [`RowSink`] and pushes every row, from
    /// inside its own loops or callbacks; nothing is collected. Errors of `f` (any `E` that a
    /// writer [`Error`] converts into) pass through unchanged. Returns the number of rows written.
    /// After any error the load is poisoned: only [`Load::rollback`] (or drop) remains.
    pub fn write<R, E>(
        &mut self,
        f: impl FnOnce(&mut dyn RowSink<R>) -> std::result::Result<(), E>,
    ) -> std::result::Result<u64, E>
    where
        R: V2Row,
        E: From<Error>,
    {
        self.ensure_active()?;
        let run_id = self.run.run_id.clone();
        let target = self.db.target.clone();
        let r = match conn_of(&mut self.temp, &mut self.db.conn) {
            AnyConn::Pg(c) => write_pg::<R, E>(c, &target, &run_id, f),
            AnyConn::Sqlite(c) => match staged(c, &mut self.stage, &target, R::TABLE) {
                Ok(Some(stage)) => write_staged::<R, E>(stage, &target, &run_id, f),
                Ok(None) => write_sqlite::<R, E>(c, &target, &run_id, f),
                Err(e) => Err(Fail::Writer(e)),
            },
        };
        match r {
            Ok(n) => {
                *self.rows.entry(R::TABLE).or_default() += n;
                Ok(n)
            }
            Err(fail) => {
                self.phase = Phase::Poisoned;
                Err(match fail {
                    Fail::Caller(e) => e,
                    Fail::Writer(e) => e.into(),
                })
            }
        }
    }

    /// Convenience: writes every row of an iterator.
    pub fn write_all<'a, R: V2Row>(
        &mut self,
        rows: impl IntoIterator<Item = &'a R>,
    ) -> Result<u64> {
        self.write(|sink: &mut dyn RowSink<R>| {
            for r in rows {
                sink.push(r)?;
            }
            Ok(())
        })
    }

    /// Finishes the load: builds the deferred constraints and indexes, checks foreign keys,
    /// records the run's rows and sets it `succeeded` with `counts_json` (default: the rows
    /// written per table), then commits — or, for a dry run, discards everything. On any error
    /// the transaction is rolled back and the run marked `failed`.
    pub fn commit(mut self, counts_json: Option<String>) -> Result<RunSummary> {
        if let Err(e) = self.ensure_active() {
            self.abort();
            return Err(e);
        }
        match self.finish(counts_json) {
            Ok(()) => {
                self.phase = Phase::Done;
                self.release();
                Ok(RunSummary {
                    run_id: self.run.run_id.clone(),
                    dry_run: self.opts.dry_run,
                    rows: self.rows.clone(),
                })
            }
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// Rolls the load back and marks the run `failed`.
    pub fn rollback(mut self) -> Result<()> {
        self.abort();
        Ok(())
    }

    fn finish(&mut self, counts_json: Option<String>) -> Result<()> {
        let mut deferred = std::mem::take(&mut self.deferred);
        if let Some(stage) = &mut self.stage {
            if let AnyConn::Sqlite(c) = conn_of(&mut self.temp, &mut self.db.conn) {
                stage.finish(c, &self.db.target)?;
            }
        }
        self.build(&deferred.build)?;
        self.check_sqlite_foreign_keys()?;
        self.record_run_rows(&mut deferred.foreign_keys)?;
        self.build(&deferred.foreign_keys)?;
        self.record_success(counts_json)
    }

    /// SQLite loads with `foreign_keys = OFF`: the first row breaking one is refused here.
    fn check_sqlite_foreign_keys(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        if let AnyConn::Sqlite(c) = self.conn() {
            let r = sqlite_foreign_key_problem(c);
            if let Some(p) = r.map_err(|e| self.err("checking the foreign keys", e))? {
                return Err(Error::InvalidRow {
                    table: p.0,
                    key: p.1,
                    reason: p.2,
                });
            }
        }
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "foreign_key_check"
        );
        Ok(())
    }

    /// Records the key of every application row this run wrote in `migration_run_rows` (what
    /// a rollback removes). On PostgreSQL its key and foreign key are dropped first and rebuilt
    /// by one sort and one join; the foreign key joins `foreign_keys`, built last.
    fn record_run_rows(&mut self, foreign_keys: &mut Vec<(String, String)>) -> Result<()> {
        let started = std::time::Instant::now();
        let mut run_rows_keys = Vec::new();
        if let AnyConn::Pg(c) = self.conn() {
            // The table was emptied at the start of the load. Checking each recorded key's
            // run_id by a trigger per row, and inserting ~55,000 keys one by one into the primary
            // key, cost more than the inserts themselves: drop both, insert, build the key by one
            // sort and validate the foreign key by one join (here and in the last step).
            let r = pg_ddl(c, &["migration_run_rows"], &["f", "p"]).and_then(|ddl| {
                let drops: Vec<&str> = ddl
                    .iter()
                    .filter(|r| r.kind == "f")
                    .chain(ddl.iter().filter(|r| r.kind == "p"))
                    .map(|r| r.drop_sql.as_str())
                    .collect();
                c.batch_execute(&drops.join(";\n"))?;
                Ok(ddl)
            });
            let ddl = r.map_err(|e| self.err("setting up migration_run_rows", e))?;
            for r in ddl {
                let list = if r.kind == "f" {
                    &mut *foreign_keys
                } else {
                    &mut run_rows_keys
                };
                list.push((r.what, r.create_sql));
            }
        }
        let run_id = self.run.run_id.clone();
        // Inserted in the primary key's order (tables by name, keys sorted), so that the key's
        // build below finds its input already sorted.
        let mut keyed: Vec<(&str, &str)> = RUN_ROW_KEYS
            .iter()
            .filter_map(|(t, k)| k.map(|k| (*t, k)))
            .collect();
        keyed.sort_unstable();
        for (table, key) in keyed {
            let sql = format!(
                "INSERT INTO migration_run_rows (run_id, table_name, row_key) \
                 SELECT $1, '{table}', {key} FROM {table} ORDER BY 3"
            );
            let r = self.conn().exec1(&sql, &run_id);
            r.map_err(|e| self.err("recording the run's rows", e))?;
        }
        self.build(&run_rows_keys)?;
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "migration_run_rows"
        );
        Ok(())
    }

    /// Sets the run `succeeded` with its counts, then commits (a dry run rolls back instead).
    fn record_success(&mut self, counts_json: Option<String>) -> Result<()> {
        let started = std::time::Instant::now();
        let run_id = self.run.run_id.clone();
        let counts = counts_json
            .unwrap_or_else(|| serde_json::to_string(&self.rows).unwrap_or_else(|_| "{}".into()));
        let now = now_utc();
        let r = dispatch!(self.conn(), c => diesel::update(migration_runs::table.find(&run_id))
            .set((
                migration_runs::status.eq(run_status::SUCCEEDED),
                migration_runs::finished_at.eq(now),
                migration_runs::counts_json.eq(&counts),
            ))
            .execute(c));
        r.map_err(|e| self.err("recording the run's success", e))?;
        self.run.status = run_status::SUCCEEDED.into();
        if self.opts.dry_run {
            if self.temp.is_none() {
                let r = self.conn().rollback();
                r.map_err(|e| self.err("ROLLBACK of the dry run", e))?;
            }
        } else {
            let r = self.conn().commit();
            r.map_err(|e| self.err("COMMIT", e))?;
        }
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "run recorded, COMMIT"
        );
        Ok(())
    }

    /// Runs deferred DDL (constraints, indexes) in order, timing each statement.
    fn build(&mut self, ddl: &[(String, String)]) -> Result<()> {
        for (what, sql) in ddl {
            let started = std::time::Instant::now();
            let r = self.conn().batch(sql);
            r.map_err(|e| self.err(&format!("building {what}"), e))?;
            tracing::debug!(what = %what, seconds = started.elapsed().as_secs_f64(), "built");
        }
        Ok(())
    }

    /// Rolls back whatever is open, marks a real run `failed`, releases the run lock.
    fn abort(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        let _ = self.conn().rollback();
        if !self.opts.dry_run {
            let id = self.run.run_id.clone();
            let now = now_utc();
            let r = dispatch!(self.conn(), c => diesel::update(migration_runs::table.find(&id))
                .filter(migration_runs::status.eq(run_status::RUNNING))
                .set((migration_runs::status.eq(run_status::FAILED), migration_runs::finished_at.eq(now)))
                .execute(c));
            if let Err(e) = r {
                tracing::warn!(run_id = %id, error = %self.db.target.scrub(&e.to_string()),
                    "could not mark the run failed");
            }
        }
        self.release();
    }

    fn release(&mut self) {
        if let Some(stage) = self.stage.take() {
            if let AnyConn::Sqlite(c) = self.conn() {
                Stage::detach(c);
            }
            drop(stage);
        }
        if matches!(self.conn(), AnyConn::Sqlite(_)) {
            let _ = self.conn().batch("PRAGMA foreign_keys = ON");
        }
        if self.locked {
            self.locked = false;
            let _ = self
                .conn()
                .batch(&format!("SELECT pg_advisory_unlock({PG_RUN_LOCK})"));
        }
        // A dry run's temporary copy goes with `self.temp` on drop.
    }
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The connection a load works on: the dry run's temporary copy when there is one, else the
/// target's (a free function so that callers can borrow other fields of the load beside it).
fn conn_of<'a>(
    temp: &'a mut Option<(tempfile::TempDir, AnyConn)>,
    conn: &'a mut AnyConn,
) -> &'a mut AnyConn {
    match temp {
        Some((_, c)) => c,
        None => conn,
    }
}

/// Why a table's write failed: the caller's own error, or the writer's.
enum Fail<E> {
    Caller(E),
    Writer(Error),
}

/// What every sink does around writing a row: refuse every row once one failed (the load is
/// poisoned), check each row before it is written, and keep the first failure for the end of the
/// table (a caller may swallow a push's error; the load must not).
struct RowGuard<'a> {
    run_id: &'a str,
    failed: Option<Error>,
}

impl<'a> RowGuard<'a> {
    fn new(run_id: &'a str) -> Self {
        RowGuard {
            run_id,
            failed: None,
        }
    }

    /// Before writing `row`: why it must not be written, if it must not.
    fn admit<R: V2Row>(&mut self, row: &R) -> Result<()> {
        if self.failed.is_some() {
            return Err(Error::Poisoned {
                run_id: self.run_id.to_string(),
            });
        }
        let r = check_row(row, self.run_id);
        self.settle(r)
    }

    /// After writing: keeps a failure.
    fn settle(&mut self, r: Result<()>) -> Result<()> {
        if let Err(e) = &r {
            self.failed = Some(clone_error(e));
        }
        r
    }

    /// The first failure, taken when the table ends.
    fn take(&mut self) -> Option<Error> {
        self.failed.take()
    }
}

/// Checks a pushed row: its own constraints and, for bookkeeping rows, the run id.
fn check_row<R: V2Row>(row: &R, run_id: &str) -> Result<()> {
    let bad = |reason: String| Error::InvalidRow {
        table: R::TABLE,
        key: row.key(),
        reason,
    };
    row.check().map_err(bad)?;
    match row.run_id() {
        Some(r) if r != run_id => Err(bad(format!("run_id '{r}' is not the load's run {run_id}"))),
        _ => Ok(()),
    }
}

/// The writer's errors are not `Clone`; a sink keeps a copy of the first one for itself.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::InvalidRow { table, key, reason } => Error::InvalidRow {
            table,
            key: key.clone(),
            reason: reason.clone(),
        },
        Error::Database {
            url,
            context,
            message,
        } => Error::Database {
            url: url.clone(),
            context: context.clone(),
            message: message.clone(),
        },
        other => Error::Database {
            url: String::new(),
            context: "load".into(),
            message: other.to_string(),
        },
    }
}
