//! Read-back access to the v2 database on both backends, written here with diesel (the
//! validator reads v2 on its own rather than through the writer's code paths).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{PgConnection, SqliteConnection};
use thywill_v2::rows::{
    ContentFlag, IdMapEntry, Invite, Prayer, PrayerMark, Session, User, UserRole,
};
use thywill_v2::schema::*;
use thywill_v2::{Backend, Target};

use crate::error::ValidateError;

/// An open v2 database of either backend.
pub enum V2Conn {
    /// PostgreSQL.
    Pg(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// Runs the same diesel expression on whichever backend the connection is.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::v2db::V2Conn::Pg($c) => $body,
            $crate::v2db::V2Conn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_conn;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct OneText {
    #[diesel(sql_type = Text)]
    s: String,
}

/// One finding row as the validator needs it.
#[derive(Debug, Clone, Queryable)]
pub struct FindingRow {
    /// v1 table.
    pub v1_table: String,
    /// v1 key as text.
    pub v1_key: String,
    /// Rule id.
    pub rule: String,
    /// Decision.
    pub decision: String,
}

/// The latest successful run's bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The run id.
    pub run_id: String,
    /// The source sha256 the run recorded.
    pub source_sha256: String,
    /// The run's start, the clock of its expiry decisions.
    pub started_at: Option<chrono::NaiveDateTime>,
    /// The sha256 of the operator's decisions file the run recorded, if it applied one.
    pub decisions_sha256: Option<String>,
}

/// Everything read back from the v2 application tables, each sorted by primary key.
#[derive(Debug, Default)]
pub struct V2Data {
    /// `users`.
    pub users: Vec<User>,
    /// `prayers`.
    pub prayers: Vec<Prayer>,
    /// `prayer_marks` is not read here: it is streamed ([`V2Conn::for_each_mark`]).
    /// `user_roles`.
    pub roles: Vec<UserRole>,
    /// `invites`.
    pub invites: Vec<Invite>,
    /// `sessions`.
    pub sessions: Vec<Session>,
    /// `content_flags`.
    pub flags: Vec<ContentFlag>,
}

impl V2Conn {
    /// Opens the target; a failure is unusable input (exit 3).
    pub fn open(target: &Target) -> Result<Self, ValidateError> {
        let fail = |e: diesel::ConnectionError| ValidateError::V2Connect {
            url: target.redacted(),
            message: target.scrub(&e.to_string()),
        };
        match target {
            Target::Postgres { url, .. } => {
                PgConnection::establish(url).map(V2Conn::Pg).map_err(fail)
            }
            Target::SqliteFile(path) => {
                if !path.is_file() {
                    return Err(ValidateError::V2Connect {
                        url: target.redacted(),
                        message: "no such file (a validation needs a migrated v2 database)".into(),
                    });
                }
                let mut c = SqliteConnection::establish(&path.to_string_lossy()).map_err(fail)?;
                c.batch_execute("PRAGMA foreign_keys = OFF; PRAGMA busy_timeout = 5000;")
                    .map_err(|e| ValidateError::V2Connect {
                        url: target.redacted(),
                        message: e.to_string(),
                    })?;
                Ok(V2Conn::Sqlite(c))
            }
            Target::SqliteMemory => SqliteConnection::establish(":memory:")
                .map(V2Conn::Sqlite)
                .map_err(fail),
        }
    }

    /// Wraps an already open SQLite connection (tests).
    pub fn from_sqlite(c: SqliteConnection) -> Self {
        V2Conn::Sqlite(c)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        match self {
            V2Conn::Pg(_) => Backend::Postgres,
            V2Conn::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// `SELECT count(*)`-shaped query (its only column named `n`) whose SQL is a constant of the
    /// validator; values come in as bound parameters elsewhere.
    pub fn count(&mut self, sql: &str) -> QueryResult<i64> {
        on_conn!(self, |c| diesel::sql_query(sql).get_result::<Count>(c)).map(|r| r.n)
    }

    /// A one-row query whose only column, named `s`, is text (SQL a constant of the validator).
    pub fn text(&mut self, sql: &str) -> QueryResult<String> {
        on_conn!(self, |c| diesel::sql_query(sql).get_result::<OneText>(c)).map(|r| r.s)
    }

    /// Runs statements without results (transaction control).
    pub fn batch(&mut self, sql: &str) -> QueryResult<()> {
        on_conn!(self, |c| c.batch_execute(sql))
    }

    /// The latest succeeded, non-dry run (`None` if there is none).
    pub fn latest_run(&mut self) -> QueryResult<Option<RunInfo>> {
        use thywill_v2::schema::migration_runs::dsl as r;
        let row: Option<(String, String, chrono::NaiveDateTime)> =
            on_conn!(self, |c| r::migration_runs
                .filter(r::status.eq("succeeded"))
                .filter(r::dry_run.eq(false))
                .order((r::started_at.desc(), r::run_id.desc()))
                .select((r::run_id, r::source_sha256, r::started_at))
                .first(c)
                .optional())?;
        let Some((run_id, source_sha256, started)) = row else {
            return Ok(None);
        };
        // A target whose schema predates the column holds a run that applied no file.
        let decisions: QueryResult<Option<String>> = on_conn!(self, |c| r::migration_runs
            .filter(r::run_id.eq(&run_id))
            .select(r::decisions_sha256)
            .first(c));
        Ok(Some(RunInfo {
            run_id,
            source_sha256,
            started_at: Some(started),
            decisions_sha256: decisions.ok().flatten(),
        }))
    }

    /// The findings of `run_id`.
    pub fn findings(&mut self, run_id: &str) -> QueryResult<Vec<FindingRow>> {
        use thywill_v2::schema::migration_findings::dsl as f;
        on_conn!(self, |c| f::migration_findings
            .filter(f::run_id.eq(run_id))
            .order(f::id)
            .select((f::v1_table, f::v1_key, f::rule, f::decision))
            .load(c))
    }

    /// The whole id map.
    pub fn id_map(&mut self) -> QueryResult<Vec<IdMapEntry>> {
        on_conn!(self, |c| migration_id_map::table
            .select(IdMapEntry::as_select())
            .load(c))
    }

    /// Every mark, handed to `f` one at a time in id order (read in pages by id, so memory
    /// does not grow with the table). Returns the number of marks.
    pub fn for_each_mark(&mut self, mut f: impl FnMut(&PrayerMark)) -> QueryResult<u64> {
        use thywill_v2::schema::prayer_marks::dsl as m;
        const PAGE: i64 = 50_000;
        let mut after: Option<String> = None;
        let mut n = 0u64;
        loop {
            let page: Vec<PrayerMark> = match &after {
                None => on_conn!(self, |c| m::prayer_marks
                    .order(m::id)
                    .limit(PAGE)
                    .select(PrayerMark::as_select())
                    .load(c))?,
                Some(last) => on_conn!(self, |c| m::prayer_marks
                    .filter(m::id.gt(last))
                    .order(m::id)
                    .limit(PAGE)
                    .select(PrayerMark::as_select())
                    .load(c))?,
            };
            for r in &page {
                f(r);
            }
            n += page.len() as u64;
            if (page.len() as i64) < PAGE {
                return Ok(n);
            }
            after = page.last().map(|r| r.id.clone());
        }
    }

    /// Reads every application table but `prayer_marks` back, sorted by key.
    pub fn read_all(&mut self) -> QueryResult<V2Data> {
        let mut d = V2Data {
            users: on_conn!(self, |c| users::table.select(User::as_select()).load(c))?,
            prayers: on_conn!(self, |c| prayers::table.select(Prayer::as_select()).load(c))?,
            roles: on_conn!(self, |c| user_roles::table
                .select(UserRole::as_select())
                .load(c))?,
            invites: on_conn!(self, |c| invites::table.select(Invite::as_select()).load(c))?,
            sessions: self.sessions()?,
            flags: on_conn!(self, |c| content_flags::table
                .select(ContentFlag::as_select())
                .load(c))?,
        };
        d.users.sort_by(|a, b| a.id.cmp(&b.id));
        d.prayers.sort_by(|a, b| a.id.cmp(&b.id));
        d.roles
            .sort_by(|a, b| (&a.user_id, &a.role).cmp(&(&b.user_id, &b.role)));
        d.invites.sort_by(|a, b| a.id.cmp(&b.id));
        d.sessions.sort_by(|a, b| a.id.cmp(&b.id));
        d.flags.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(d)
    }

    /// Sessions; PostgreSQL stores `ip_address` as `inet`, read through `abbrev()`, which is
    /// exactly inet's output text.
    fn sessions(&mut self) -> QueryResult<Vec<Session>> {
        use thywill_v2::schema::sessions::dsl as s;
        type Tuple = (
            String,
            String,
            chrono::NaiveDateTime,
            chrono::NaiveDateTime,
            chrono::NaiveDateTime,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Tuple> = match self {
            V2Conn::Pg(c) => s::sessions
                .select((
                    s::id,
                    s::user_id,
                    s::created_at,
                    s::expires_at,
                    s::last_seen_at,
                    s::user_agent,
                    diesel::dsl::sql::<Nullable<Text>>("abbrev(ip_address)"),
                ))
                .load(c)?,
            V2Conn::Sqlite(c) => s::sessions
                .select((
                    s::id,
                    s::user_id,
                    s::created_at,
                    s::expires_at,
                    s::last_seen_at,
                    s::user_agent,
                    s::ip_address,
                ))
                .load(c)?,
        };
        Ok(rows
            .into_iter()
            .map(
                |(id, user_id, created_at, expires_at, last_seen_at, user_agent, ip_address)| {
                    Session {
                        id,
                        user_id,
                        created_at,
                        expires_at,
                        last_seen_at,
                        user_agent,
                        ip_address,
                    }
                },
            )
            .collect())
    }
}

/// Maps a query error to [`ValidateError::V2Query`].
pub fn query_error(target: &Target, what: &str, e: diesel::result::Error) -> ValidateError {
    ValidateError::V2Query {
        url: target.redacted(),
        what: what.to_string(),
        message: target.scrub(&e.to_string()),
    }
}
