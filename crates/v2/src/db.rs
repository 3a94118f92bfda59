//! An open v2 database: connection, schema, target state, reading back, and removing a run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{Error, Result};
use crate::rows::{run_status, Finding, IdMapEntry, MigrationRun};
use crate::schema::{migration_findings, migration_id_map, migration_runs};
use crate::target::Target;

/// The PostgreSQL migrations, embedded (`crates/v2/migrations/postgres`).
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// The SQLite migrations, embedded (`crates/v2/migrations/sqlite`).
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The application tables of v2, parents before children.
pub const APP_TABLES: [&str; 7] = [
    "users",
    "prayers",
    "prayer_marks",
    "user_roles",
    "invites",
    "sessions",
    "content_flags",
];

/// The migration's bookkeeping tables.
pub const BOOKKEEPING_TABLES: [&str; 4] = [
    "migration_runs",
    "migration_id_map",
    "migration_findings",
    "migration_run_rows",
];

/// The SQL expression giving the key recorded in `migration_run_rows` for each application table
/// (`None`: not recorded, the rows go with their parents). Same text on both backends.
pub(crate) const RUN_ROW_KEYS: [(&str, Option<&str>); 7] = [
    ("users", Some("id")),
    ("prayers", Some("id")),
    ("prayer_marks", None),
    ("user_roles", Some("user_id || '/' || role")),
    ("invites", Some("id")),
    ("sessions", Some("id")),
    ("content_flags", Some("id")),
];

/// A connection to either backend. Hidden: an implementation detail shared with the row traits.
#[doc(hidden)]
pub enum AnyConn {
    /// PostgreSQL.
    Pg(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// Runs the same code on whichever connection `$conn` holds (`$c` is the concrete connection).
macro_rules! dispatch {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::AnyConn::Pg($c) => $body,
            $crate::db::AnyConn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use dispatch;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl AnyConn {
    pub(crate) fn batch(&mut self, sql: &str) -> QueryResult<()> {
        dispatch!(self, c => c.batch_execute(sql))
    }

    /// Executes `sql` (written with `$1`) with one text bind; returns the affected row count.
    pub(crate) fn exec1(&mut self, sql: &str, bind: &str) -> QueryResult<usize> {
        match self {
            AnyConn::Pg(c) => diesel::sql_query(sql).bind::<Text, _>(bind).execute(c),
            AnyConn::Sqlite(c) => diesel::sql_query(sql.replace("$1", "?"))
                .bind::<Text, _>(bind)
                .execute(c),
        }
    }

    /// Begins a transaction (SQLite: `BEGIN IMMEDIATE`, taking the write lock at once).
    pub(crate) fn begin(&mut self) -> QueryResult<()> {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        match self {
            AnyConn::Pg(c) => AnsiTransactionManager::begin_transaction(c),
            AnyConn::Sqlite(c) => {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
            }
        }
    }

    /// Commits the transaction begun by [`AnyConn::begin`].
    pub(crate) fn commit(&mut self) -> QueryResult<()> {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        dispatch!(self, c => AnsiTransactionManager::commit_transaction(c))
    }

    /// Rolls back the transaction begun by [`AnyConn::begin`].
    pub(crate) fn rollback(&mut self) -> QueryResult<()> {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        dispatch!(self, c => AnsiTransactionManager::rollback_transaction(c))
    }

    /// Runs `f` in a transaction, committed if it succeeds.
    pub(crate) fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&mut AnyConn) -> QueryResult<T>,
    ) -> QueryResult<T> {
        self.begin()?;
        match f(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }

    /// The number of rows in `table` (an application table's name, never user input).
    pub(crate) fn count_rows(&mut self, table: &str) -> QueryResult<i64> {
        let sql = format!("SELECT count(*) AS n FROM {table}");
        dispatch!(self, c => diesel::sql_query(&sql).get_result::<Count>(c)).map(|r| r.n)
    }

    /// The names of every table in the target's schema, read in one statement: one snapshot,
    /// so a concurrent run committing its schema between two lookups cannot make the target
    /// look half-made (another application's).
    pub(crate) fn table_names(&mut self) -> QueryResult<std::collections::BTreeSet<String>> {
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = Text)]
            name: String,
        }
        let rows: Vec<Name> = match self {
            AnyConn::Pg(c) => diesel::sql_query(
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema()",
            )
            .load(c)?,
            AnyConn::Sqlite(c) => {
                diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'").load(c)?
            }
        };
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    /// Whether the target's schema has table `name` ([`AnyConn::table_names`]: one catalog query
    /// for both uses).
    pub(crate) fn has_table(&mut self, name: &str) -> QueryResult<bool> {
        Ok(self.table_names()?.contains(name))
    }

    pub(crate) fn run_migrations(&mut self) -> std::result::Result<(), String> {
        match self {
            AnyConn::Pg(c) => pg_migrations_atomic(c),
            AnyConn::Sqlite(c) => sqlite_migrations_locked(c),
        }
    }

    /// Whether any application table holds a row (tables must exist).
    pub(crate) fn has_app_data(&mut self) -> QueryResult<bool> {
        let exists: Vec<String> = APP_TABLES
            .iter()
            .map(|t| format!("(SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1) x)"))
            .collect();
        let sql = format!("SELECT {} AS n", exists.join(" + "));
        Ok(dispatch!(self, c => diesel::sql_query(&sql).get_result::<Count>(c))?.n > 0)
    }

    /// The sha256 of the decisions file run `run_id` applied: `None` when it applied none, or
    /// when the target's schema predates the column (a run of an older tool applied none).
    pub(crate) fn run_decisions(&mut self, run_id: &str) -> Option<String> {
        let r: QueryResult<Option<String>> = dispatch!(self, c => migration_runs::table
            .find(run_id)
            .select(migration_runs::decisions_sha256)
            .first(c));
        r.ok().flatten()
    }

    /// The run owning the application data: the latest succeeded real run.
    pub(crate) fn owner_run(&mut self) -> QueryResult<Option<MigrationRun>> {
        dispatch!(self, c => migration_runs::table
            .filter(migration_runs::status.eq(run_status::SUCCEEDED))
            .filter(migration_runs::dry_run.eq(false))
            .order((migration_runs::finished_at.desc(), migration_runs::run_id.desc()))
            .select(MigrationRun::as_select())
            .first(c)
            .optional())
    }
}

/// What a target holds, judged against a source fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// No application data (and possibly no schema yet).
    Empty,
    /// Application data written by a succeeded run from the same source.
    AlreadyMigrated {
        /// That run.
        run_id: String,
    },
    /// A database of another application: some of v2's table names exist, others do not (an
    /// application of its own with a `users` table). Refused even with `--replace`.
    Alien {
        /// A v2 table name that exists.
        present: String,
        /// A v2 table that does not.
        missing: String,
    },
    /// Application data from another source, or from no recorded run.
    Foreign {
        /// The run that wrote it, if one is recorded.
        run_id: Option<String>,
        /// Its source fingerprint, if recorded.
        source_sha256: Option<String>,
    },
}

/// What [`V2Db::remove_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The run's rows were removed (rows deleted per table, cascades included on PostgreSQL's
    /// count only for the tables listed) and the run marked `rolled_back`.
    Removed {
        /// Rows deleted per application table.
        deleted: BTreeMap<&'static str, u64>,
    },
    /// The run was already `rolled_back`: nothing done.
    AlreadyRolledBack,
}

/// An open v2 database (either backend).
pub struct V2Db {
    pub(crate) target: Target,
    pub(crate) conn: AnyConn,
    /// A SQLite file that does not exist yet: created only by a real (not dry) load.
    pub(crate) missing_file: Option<PathBuf>,
}

impl std::fmt::Debug for V2Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V2Db({})", self.target)
    }
}

impl V2Db {
    /// Connects to `target` without changing it (a missing SQLite file is not created until a
    /// real load). Unreachable servers, refused credentials and files that are not SQLite give
    /// [`Error::Connect`] (exit code 3), naming the URL without its password.
    pub fn open(target: &Target) -> Result<V2Db> {
        let connect_err = |m: &str| Error::Connect {
            url: target.redacted(),
            message: target.scrub(m),
        };
        match target {
            Target::Postgres { url, .. } => {
                let mut c =
                    PgConnection::establish(url).map_err(|e| connect_err(&e.to_string()))?;
                c.batch_execute("SET client_min_messages = warning")
                    .map_err(|e| connect_err(&e.to_string()))?;
                Ok(V2Db {
                    target: target.clone(),
                    conn: AnyConn::Pg(c),
                    missing_file: None,
                })
            }
            Target::SqliteMemory => Ok(V2Db {
                target: target.clone(),
                conn: AnyConn::Sqlite(open_sqlite(":memory:").map_err(|m| connect_err(&m))?),
                missing_file: None,
            }),
            Target::SqliteFile(path) => {
                if path.is_dir() {
                    return Err(connect_err("is a directory, not a SQLite file"));
                }
                if !path.exists() {
                    return Ok(V2Db {
                        target: target.clone(),
                        conn: AnyConn::Sqlite(
                            open_sqlite(":memory:").map_err(|m| connect_err(&m))?,
                        ),
                        missing_file: Some(path.clone()),
                    });
                }
                let p = path_str(path).map_err(|m| connect_err(&m))?;
                Ok(V2Db {
                    target: target.clone(),
                    conn: AnyConn::Sqlite(open_sqlite(p).map_err(|m| connect_err(&m))?),
                    missing_file: None,
                })
            }
        }
    }

    /// The target (its `Display` is redacted).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Creates the SQLite file if it is missing (a real load or [`V2Db::ensure_schema`]).
    pub(crate) fn materialise(&mut self) -> Result<()> {
        if let Some(path) = self.missing_file.take() {
            let p = path_str(&path).map_err(|m| self.connect_err(&m))?;
            // v2 holds session tokens: the file (and the journals SQLite gives the same mode) is
            // the owner's alone, whatever the umask.
            create_private_file(&path).map_err(|e| self.connect_err(&e.to_string()))?;
            self.conn = AnyConn::Sqlite(open_sqlite(p).map_err(|m| self.connect_err(&m))?);
        }
        Ok(())
    }

    /// Creates or upgrades the v2 schema (idempotent: pending migrations only).
    pub fn ensure_schema(&mut self) -> Result<()> {
        self.materialise()?;
        self.conn.run_migrations().map_err(|m| Error::Schema {
            url: self.target.redacted(),
            message: self.target.scrub(&m),
        })
    }

    /// What the target holds, judged against the source fingerprint `source_sha256`. Does not
    /// create the schema.
    pub fn state(&mut self, source_sha256: &str) -> Result<TargetState> {
        self.state_of_run(source_sha256, None)
    }

    /// [`V2Db::state`] of a run that applies the operator's decisions file with sha256
    /// `decisions_sha256` (`None`: no file): the same source with the same file is already
    /// migrated; with another file, or none, the target holds another run's data.
    pub fn state_of_run(
        &mut self,
        source_sha256: &str,
        decisions_sha256: Option<&str>,
    ) -> Result<TargetState> {
        state_of(&mut self.conn, source_sha256, decisions_sha256)
            .map_err(|e| self.db_err("reading the target state", e))
    }

    /// Every row of application table `R`, in key order, handed to `f` one at a time (read in
    /// pages of 10,000 by key, so memory does not grow with the table). Returns the row count.
    pub fn read_table<R, E, F>(&mut self, mut f: F) -> std::result::Result<u64, E>
    where
        R: crate::AppRow,
        E: From<Error>,
        F: FnMut(R) -> std::result::Result<(), E>,
    {
        const PAGE: i64 = 10_000;
        let mut after: Option<R> = None;
        let mut n = 0u64;
        loop {
            let page = R::read_page(&mut self.conn, after.as_ref(), PAGE)
                .map_err(|e| self.db_err(&format!("reading {}", R::TABLE), e))?;
            let full = page.len() as i64 == PAGE;
            let last = page.last().cloned();
            for row in page {
                n += 1;
                f(row)?;
            }
            if !full {
                return Ok(n);
            }
            after = last;
        }
    }

    /// The sha256 of the decisions file the recorded run `run_id` applied (`None`: none, or a
    /// schema from before the column, whose runs applied none).
    pub fn run_decisions_sha256(&mut self, run_id: &str) -> Option<String> {
        self.conn.run_decisions(run_id)
    }

    /// Every recorded run, oldest first.
    pub fn runs(&mut self) -> Result<Vec<MigrationRun>> {
        dispatch!(&mut self.conn, c => migration_runs::table
            .order((migration_runs::started_at, migration_runs::run_id))
            .select(MigrationRun::as_select())
            .load(c))
        .map_err(|e| self.db_err("reading migration_runs", e))
    }

    /// The findings of a run, in the order they were written.
    pub fn findings(&mut self, run_id: &str) -> Result<Vec<Finding>> {
        dispatch!(&mut self.conn, c => migration_findings::table
            .filter(migration_findings::run_id.eq(run_id))
            .order(migration_findings::id)
            .select(Finding::as_select())
            .load(c))
        .map_err(|e| self.db_err("reading migration_findings", e))
    }

    /// The id map, ordered by (entity, v1_key).
    pub fn id_map(&mut self) -> Result<Vec<IdMapEntry>> {
        dispatch!(&mut self.conn, c => migration_id_map::table
            .order((migration_id_map::entity, migration_id_map::v1_key))
            .select(IdMapEntry::as_select())
            .load(c))
        .map_err(|e| self.db_err("reading migration_id_map", e))
    }

    /// Row counts of the application tables (in [`APP_TABLES`] order).
    pub fn table_counts(&mut self) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for t in APP_TABLES {
            let n = self.conn.count_rows(t);
            out.push((t, n.map_err(|e| self.db_err(&format!("counting {t}"), e))?));
        }
        Ok(out)
    }

    /// Removes the application rows run `run_id` wrote (listed in `migration_run_rows`; its marks
    /// go with its prayers) and its id-map rows, and marks the run `rolled_back`, in one
    /// transaction. Idempotent: a run already rolled back is left alone.
    pub fn remove_run(&mut self, run_id: &str) -> Result<RemoveOutcome> {
        if self.missing_file.is_some() || !self.has_table("migration_runs")? {
            return Err(self.unknown_run(run_id));
        }
        let run: Option<MigrationRun> = dispatch!(&mut self.conn, c => migration_runs::table
            .find(run_id)
            .select(MigrationRun::as_select())
            .first(c)
            .optional())
        .map_err(|e| self.db_err("reading migration_runs", e))?;
        let Some(run) = run else {
            return Err(self.unknown_run(run_id));
        };
        if run.status == run_status::ROLLED_BACK || run.status == run_status::REPLACED {
            // A replaced run's rows went with the `--replace` that emptied the tables.
            return Ok(RemoveOutcome::AlreadyRolledBack);
        }
        let deleted = self
            .conn
            .in_transaction(|c| remove_rows(c, run_id))
            .map_err(|e| self.db_err(&format!("removing run {run_id}"), e))?;
        Ok(RemoveOutcome::Removed { deleted })
    }

    fn has_table(&mut self, name: &str) -> Result<bool> {
        self.conn
            .has_table(name)
            .map_err(|e| self.db_err("reading the catalog", e))
    }

    fn unknown_run(&self, run_id: &str) -> Error {
        Error::UnknownRun {
            url: self.target.redacted(),
            run_id: run_id.to_string(),
        }
    }

    pub(crate) fn connect_err(&self, m: &str) -> Error {
        Error::Connect {
            url: self.target.redacted(),
            message: self.target.scrub(m),
        }
    }

    pub(crate) fn db_err(&self, context: &str, e: impl std::fmt::Display) -> Error {
        db_error(&self.target, context, e)
    }
}

/// A [`Error::Database`] naming the redacted URL and scrubbing the message.
pub(crate) fn db_error(target: &Target, context: &str, e: impl std::fmt::Display) -> Error {
    Error::Database {
        url: target.redacted(),
        context: context.to_string(),
        message: target.scrub(&e.to_string()),
    }
}

/// The refusal of a database of another application ([`TargetState::Alien`]): exit 4.
pub fn alien_error(url: String, state: &TargetState) -> Error {
    let what = match state {
        TargetState::Alien { present, missing } => format!(
            "of another application: it has a table `{present}` but no `{missing}`; v2 will not \
             write into it, even with --replace (point --v2-db at an empty database)"
        ),
        _ => "of another application".into(),
    };
    Error::ForeignData { url, what }
}

pub(crate) fn state_of(
    conn: &mut AnyConn,
    sha: &str,
    decisions: Option<&str>,
) -> QueryResult<TargetState> {
    let mut present = None;
    let mut missing = None;
    let tables = conn.table_names()?;
    for t in APP_TABLES {
        let slot = if tables.contains(t) {
            &mut present
        } else {
            &mut missing
        };
        slot.get_or_insert(t);
    }
    match (present, missing) {
        (Some(present), Some(missing)) => {
            return Ok(TargetState::Alien {
                present: present.to_string(),
                missing: missing.to_string(),
            })
        }
        (None, _) => return Ok(TargetState::Empty),
        _ => {}
    }
    let owner = if tables.contains("migration_runs") {
        conn.owner_run()?
    } else {
        None
    };
    let owner_decisions = owner.as_ref().and_then(|r| conn.run_decisions(&r.run_id));
    let same =
        |run: &MigrationRun| run.source_sha256 == sha && owner_decisions.as_deref() == decisions;
    if !conn.has_app_data()? {
        // A run of this source that kept every v1 row out wrote no application row, yet it
        // migrated the source: a re-run must find it, not record a second run.
        return Ok(match owner {
            Some(run) if same(&run) => TargetState::AlreadyMigrated { run_id: run.run_id },
            _ => TargetState::Empty,
        });
    }
    Ok(match owner {
        Some(run) if same(&run) => TargetState::AlreadyMigrated { run_id: run.run_id },
        Some(run) => TargetState::Foreign {
            source_sha256: Some(match (&owner_decisions, run.source_sha256 == sha) {
                (Some(d), _) => format!("{} with decisions file sha256 {d}", run.source_sha256),
                (None, true) => format!("{} without a decisions file", run.source_sha256),
                (None, false) => run.source_sha256,
            }),
            run_id: Some(run.run_id),
        },
        None => TargetState::Foreign {
            run_id: None,
            source_sha256: None,
        },
    })
}

fn remove_rows(c: &mut AnyConn, run_id: &str) -> QueryResult<BTreeMap<&'static str, u64>> {
    let mut deleted = BTreeMap::new();
    // Children first; a run's marks are those of its prayers.
    let marks = "DELETE FROM prayer_marks WHERE prayer_id IN \
                 (SELECT row_key FROM migration_run_rows WHERE run_id = $1 AND table_name = 'prayers')";
    deleted.insert("prayer_marks", c.exec1(marks, run_id)? as u64);
    for (table, key) in RUN_ROW_KEYS.iter().rev() {
        let Some(key) = key else { continue };
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT row_key FROM migration_run_rows WHERE run_id = $1 AND table_name = '{table}')"
        );
        deleted.insert(*table, c.exec1(&sql, run_id)? as u64);
    }
    for sql in [
        "DELETE FROM migration_id_map WHERE run_id = $1",
        "DELETE FROM migration_run_rows WHERE run_id = $1",
        "UPDATE migration_runs SET status = 'rolled_back' WHERE run_id = $1",
    ] {
        c.exec1(sql, run_id)?;
    }
    Ok(deleted)
}

/// Runs the pending PostgreSQL migrations in one transaction (each migration's own becomes a
/// savepoint): a concurrent reader sees the schema before or after, never between two migrations.
fn pg_migrations_atomic(c: &mut PgConnection) -> std::result::Result<(), String> {
    let mut failure = None;
    let r = c.transaction(|c| {
        let r = c.run_pending_migrations(PG_MIGRATIONS);
        r.map(drop).map_err(keep(&mut failure))
    });
    migration_outcome(r, failure)
}

/// Keeps a migration's own error (diesel's harness error is not a `diesel::result::Error`) and
/// rolls the transaction back.
fn keep(
    failure: &mut Option<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> diesel::result::Error + '_ {
    |e| {
        *failure = Some(e.to_string());
        diesel::result::Error::RollbackTransaction
    }
}

/// The outcome of a migration transaction: the migration's own error first.
fn migration_outcome(
    r: QueryResult<()>,
    failure: Option<String>,
) -> std::result::Result<(), String> {
    match (r, failure) {
        (_, Some(m)) => Err(m),
        (r, None) => r.map_err(|e| e.to_string()),
    }
}

/// Runs the pending SQLite migrations under the write lock from the start (`BEGIN IMMEDIATE`,
/// waiting up to the busy timeout): two processes must not both find a migration pending and both
/// apply it. Inside an open transaction (an in-memory dry run) the transaction already holds it.
fn sqlite_migrations_locked(c: &mut SqliteConnection) -> std::result::Result<(), String> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let depth = AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()
        .map_err(|e| e.to_string())?;
    if depth.is_some() {
        return c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(drop)
            .map_err(|e| e.to_string());
    }
    let mut failure = None;
    let r = c.immediate_transaction(|c| {
        let r = c.run_pending_migrations(SQLITE_MIGRATIONS);
        r.map(drop).map_err(keep(&mut failure))
    });
    migration_outcome(r, failure)
}

/// Creates an empty file readable and writable by its owner only (0600, whatever the umask),
/// unless a file is there already. SQLite gives a database's journal files its mode.
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

pub(crate) fn open_sqlite(path: &str) -> std::result::Result<SqliteConnection, String> {
    let mut c = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
    // A file that is not SQLite opens fine and fails on its first read: probe now.
    c.batch_execute(
        "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; SELECT count(*) FROM sqlite_master;",
    )
    .map_err(|e| e.to_string())?;
    Ok(c)
}

pub(crate) fn path_str(p: &std::path::Path) -> std::result::Result<&str, String> {
    p.to_str()
        .ok_or_else(|| "the path is not valid UTF-8".to_string())
}

/// Now, UTC, at microsecond precision (what both backends store).
pub(crate) fn now_utc() -> NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    let micros = now.and_utc().timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.naive_utc())
        .unwrap_or(now)
}
