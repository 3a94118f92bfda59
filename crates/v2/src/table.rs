//! What the writer knows about each row type: its table, key, constraint checks (in Rust, before
//! anything is written), its COPY text encoding (PostgreSQL) and its batched insert (SQLite). One
//! macro generates the backend plumbing for every table, so no table's code is written twice.

use std::io::Write;

use chrono::{Datelike, NaiveDateTime, Timelike};
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

use crate::db::{dispatch, AnyConn};
use crate::rows::*;
use crate::schema;

mod sealed {
    pub trait Sealed {}
}

/// A row type the writer can write: one per v2 application table, plus the bookkeeping rows a load
/// carries ([`IdMapEntry`], [`Finding`]). Sealed: implemented for the types of [`crate::rows`].
pub trait V2Row: sealed::Sealed + Clone + std::fmt::Debug + Send + 'static {
    /// The v2 table's name.
    const TABLE: &'static str;
    /// Number of columns written.
    #[doc(hidden)]
    const COLUMNS: usize;

    /// The row's key as text (`user_id/role` for a role), for messages.
    fn key(&self) -> String;

    /// Checks the row against the v2 constraints that can be judged on the row alone (ids, lengths,
    /// enums, text limits, timestamp consistency, no NUL bytes, microsecond timestamps). Returns
    /// the broken constraint in words.
    fn check(&self) -> Result<(), String>;

    /// The run id a bookkeeping row carries (it must be the load's).
    #[doc(hidden)]
    fn run_id(&self) -> Option<&str>;

    /// Whether PostgreSQL receives this table in COPY's binary format (every column's type has a
    /// simple binary form; `sessions.ip_address` is `inet`, so sessions stay on the text format).
    #[doc(hidden)]
    const BINARY_COPY: bool;

    /// Appends the row as one line of PostgreSQL COPY text format.
    #[doc(hidden)]
    fn encode_copy(&self, buf: &mut Vec<u8>);

    /// Appends the row as one tuple of PostgreSQL COPY binary format (field count, then per field
    /// its length and bytes, `-1` for NULL).
    #[doc(hidden)]
    fn encode_copy_binary(&self, buf: &mut Vec<u8>);

    /// Runs `COPY table (columns) FROM STDIN` (binary format when `binary`) with the data written
    /// by `data`.
    #[doc(hidden)]
    fn copy_pg<E, F>(conn: &mut PgConnection, binary: bool, data: F) -> Result<usize, E>
    where
        E: From<diesel::result::Error> + std::error::Error,
        F: Fn(&mut dyn Write) -> Result<(), E>;

    /// Inserts `rows` with one multi-row statement.
    #[doc(hidden)]
    fn insert_sqlite(conn: &mut SqliteConnection, rows: &[Self]) -> QueryResult<usize>;

    /// The columns written, in the order [`V2Row::bind_sqlite`] binds them.
    #[doc(hidden)]
    const COLUMN_NAMES: &'static [&'static str];

    /// Binds the row's values to parameters 1..=COLUMNS of `stmt` (an `INSERT … VALUES (?, …)` in
    /// [`V2Row::COLUMN_NAMES`] order), stored exactly as diesel stores them on SQLite.
    #[doc(hidden)]
    fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()>;
}

/// One column value: its COPY text encoding and the per-value checks every column shares.
pub(crate) trait Field {
    fn encode(&self, buf: &mut Vec<u8>);
    /// The value in COPY binary format: 32-bit big-endian length, then the bytes (`-1`: NULL).
    fn encode_binary(&self, buf: &mut Vec<u8>);
    /// A reason if the value cannot be stored faithfully on both backends.
    fn problem(&self) -> Option<&'static str>;
    /// Binds the value to parameter `i` of a SQLite statement as diesel would store it: text as
    /// TEXT, `bool` and `i32` as INTEGER, timestamps as diesel's chrono TEXT (`%F %T%.f`), `None`
    /// as NULL.
    fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()>;
}

impl Field for String {
    fn encode(&self, buf: &mut Vec<u8>) {
        escape_copy_text(self.as_bytes(), buf);
    }
    fn encode_binary(&self, buf: &mut Vec<u8>) {
        // text and varchar: the UTF-8 bytes (a Rust string is valid UTF-8; NUL is refused by
        // the checks; the server still applies the varchar length).
        let len = i32::try_from(self.len()).unwrap_or(i32::MAX);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(self.as_bytes());
    }
    fn problem(&self) -> Option<&'static str> {
        self.contains('\0').then_some("contains a NUL byte")
    }
    fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.raw_bind_parameter(i, self.as_str())
    }
}

impl Field for bool {
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.push(if *self { b't' } else { b'f' });
    }
    fn encode_binary(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&1i32.to_be_bytes());
        buf.push(u8::from(*self));
    }
    fn problem(&self) -> Option<&'static str> {
        None
    }
    fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.raw_bind_parameter(i, i32::from(*self))
    }
}

impl Field for i32 {
    fn encode(&self, buf: &mut Vec<u8>) {
        let _ = write!(buf, "{self}");
    }
    fn encode_binary(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&4i32.to_be_bytes());
        buf.extend_from_slice(&self.to_be_bytes());
    }
    fn problem(&self) -> Option<&'static str> {
        None
    }
    fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.raw_bind_parameter(i, *self)
    }
}

impl Field for NaiveDateTime {
    fn encode(&self, buf: &mut Vec<u8>) {
        let _ = write!(
            buf,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year(),
            self.month(),
            self.day(),
            self.hour(),
            self.minute(),
            self.second()
        );
        let micros = self.nanosecond() / 1000;
        if micros != 0 {
            let _ = write!(buf, ".{micros:06}");
        }
    }
    fn encode_binary(&self, buf: &mut Vec<u8>) {
        // timestamp: microseconds since 2000-01-01 00:00:00 (the checks keep whole microseconds).
        let micros = self.and_utc().timestamp_micros() - PG_EPOCH_UNIX_MICROS;
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&micros.to_be_bytes());
    }
    fn problem(&self) -> Option<&'static str> {
        if !(1..=9999).contains(&self.year()) {
            Some("timestamp outside years 1..=9999")
        } else if !self.nanosecond().is_multiple_of(1000) || self.nanosecond() >= 1_000_000_000 {
            Some("timestamp finer than a microsecond (or a leap second)")
        } else {
            None
        }
    }
    fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        let mut buf = [0u8; 32];
        match sqlite_timestamp(self, &mut buf) {
            Some(text) => stmt.raw_bind_parameter(i, text),
            None => stmt.raw_bind_parameter(i, self.format(DIESEL_SQLITE_TIMESTAMP).to_string()),
        }
    }
}

/// The format diesel's chrono support writes a SQLite `Timestamp` in.
const DIESEL_SQLITE_TIMESTAMP: &str = "%F %T%.f";

/// `t` as chrono formats it with `%F %T%.f` (what diesel stores), written into `buf` without
/// chrono's format parser: `YYYY-MM-DD HH:MM:SS` and, for a non-zero fraction, `.` and 3, 6 or 9
/// digits (the fewest that are exact). `None` outside the years 0..=9999 or for a leap second
/// (the caller then asks chrono).
pub(crate) fn sqlite_timestamp<'b>(t: &NaiveDateTime, buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nano = t.nanosecond();
    if nano >= 1_000_000_000 {
        return None;
    }
    fn put(buf: &mut [u8; 32], n: &mut usize, v: u32, digits: u32) {
        for d in (0..digits).rev() {
            buf[*n] = b'0' + ((v / 10u32.pow(d)) % 10) as u8;
            *n += 1;
        }
    }
    let mut n = 0;
    put(buf, &mut n, year, 4);
    for (sep, v) in [
        (b'-', t.month()),
        (b'-', t.day()),
        (b' ', t.hour()),
        (b':', t.minute()),
        (b':', t.second()),
    ] {
        buf[n] = sep;
        n += 1;
        put(buf, &mut n, v, 2);
    }
    if nano != 0 {
        buf[n] = b'.';
        n += 1;
        if nano.is_multiple_of(1_000_000) {
            put(buf, &mut n, nano / 1_000_000, 3);
        } else if nano.is_multiple_of(1_000) {
            put(buf, &mut n, nano / 1_000, 6);
        } else {
            put(buf, &mut n, nano, 9);
        }
    }
    std::str::from_utf8(&buf[..n]).ok()
}

impl<T: Field> Field for Option<T> {
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Some(v) => v.encode(buf),
            None => buf.extend_from_slice(b"\\N"),
        }
    }
    fn encode_binary(&self, buf: &mut Vec<u8>) {
        match self {
            Some(v) => v.encode_binary(buf),
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    fn problem(&self) -> Option<&'static str> {
        self.as_ref().and_then(Field::problem)
    }
    fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        match self {
            Some(v) => v.bind_sqlite(stmt, i),
            None => stmt.raw_bind_parameter(i, rusqlite::types::Null),
        }
    }
}

/// 2000-01-01 00:00:00 (PostgreSQL's timestamp epoch) in microseconds since the Unix epoch.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// The start of a COPY binary stream: signature, flags (no OIDs), header extension length 0.
pub(crate) const COPY_BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The end of a COPY binary stream: a field count of -1.
pub(crate) const COPY_BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// Escapes text for COPY's text format: backslash, tab, newline and carriage return are written as
/// `\\`, `\t`, `\n`, `\r`; everything else (any UTF-8) as is. NUL is refused earlier by the checks.
pub(crate) fn escape_copy_text(s: &[u8], buf: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buf.extend_from_slice(&s[start..i]);
        buf.extend_from_slice(esc);
        start = i + 1;
    }
    buf.extend_from_slice(&s[start..]);
}

macro_rules! v2_row {
    ($ty:ident, $table:ident, key = |$r:ident| $key:expr, check = $check:path $(, run = $run:ident)?, binary = $binary:literal, [$($field:ident),+ $(,)?]) => {
        impl sealed::Sealed for $ty {}
        impl V2Row for $ty {
            const TABLE: &'static str = stringify!($table);
            const COLUMNS: usize = [$(stringify!($field)),+].len();
            const BINARY_COPY: bool = $binary;

            fn key(&self) -> String {
                let $r = self;
                $key
            }

            fn run_id(&self) -> Option<&str> {
                None $(.or(Some(self.$run.as_str())))?
            }

            fn check(&self) -> Result<(), String> {
                $(
                    if let Some(p) = Field::problem(&self.$field) {
                        return Err(format!("{}: {p}", stringify!($field)));
                    }
                )+
                $check(self)
            }

            fn encode_copy(&self, buf: &mut Vec<u8>) {
                $(
                    Field::encode(&self.$field, buf);
                    buf.push(b'\t');
                )+
                if let Some(last) = buf.last_mut() {
                    *last = b'\n';
                }
            }

            fn encode_copy_binary(&self, buf: &mut Vec<u8>) {
                buf.extend_from_slice(&(Self::COLUMNS as i16).to_be_bytes());
                $(
                    Field::encode_binary(&self.$field, buf);
                )+
            }

            fn copy_pg<E, F>(conn: &mut PgConnection, binary: bool, data: F) -> Result<usize, E>
            where
                E: From<diesel::result::Error> + std::error::Error,
                F: Fn(&mut dyn Write) -> Result<(), E>,
            {
                use diesel::pg::CopyFormat;
                use diesel::prelude::ExecuteCopyFromDsl;
                let format = if binary { CopyFormat::Binary } else { CopyFormat::Text };
                diesel::copy_from(schema::$table::table)
                    .from_raw_data(($(schema::$table::$field,)+), data)
                    .with_format(format)
                    .execute(conn)
            }

            fn insert_sqlite(conn: &mut SqliteConnection, rows: &[Self]) -> QueryResult<usize> {
                diesel::insert_into(schema::$table::table).values(rows).execute(conn)
            }

            const COLUMN_NAMES: &'static [&'static str] = &[$(stringify!($field)),+];

            fn bind_sqlite(&self, stmt: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()> {
                let mut i = 0;
                $(
                    i += 1;
                    Field::bind_sqlite(&self.$field, stmt, i)?;
                )+
                let _ = i;
                Ok(())
            }
        }
    };
}

v2_row!(
    User,
    users,
    key = |r| r.id.clone(),
    check = check_user,
    binary = true,
    [
        id,
        display_name,
        email,
        religious_preference,
        prayer_style,
        invited_by_user_id,
        created_at,
        updated_at,
        is_active,
        is_supporter,
        supporter_since,
        text_archive_path,
        supporter_type,
        welcome_dismissed,
        email_verified_at,
    ]
);
v2_row!(
    Prayer,
    prayers,
    key = |r| r.id.clone(),
    check = check_prayer,
    binary = true,
    [
        id,
        author_id,
        text,
        generated_prayer,
        project_tag,
        target_audience,
        created_at,
        updated_at,
        is_archived,
        is_answered,
        answered_at,
        testimony,
        text_archive_path,
    ]
);
v2_row!(
    PrayerMark,
    prayer_marks,
    key = |r| r.id.clone(),
    check = check_mark,
    binary = true,
    [id, prayer_id, user_id, marked_at,]
);
v2_row!(
    UserRole,
    user_roles,
    key = |r| format!("{}/{}", r.user_id, r.role),
    check = check_role,
    binary = true,
    [user_id, role, granted_at, granted_by_user_id,]
);
v2_row!(
    Invite,
    invites,
    key = |r| r.id.clone(),
    check = check_invite,
    binary = true,
    [
        id,
        token,
        created_by_user_id,
        invited_display_name,
        created_at,
        expires_at,
        max_uses,
        use_count,
        used_at,
        used_by_user_id,
        is_admin_token,
    ]
);
v2_row!(
    Session,
    sessions,
    key = |r| r.id.clone(),
    check = check_session,
    binary = false,
    [
        id,
        user_id,
        created_at,
        expires_at,
        last_seen_at,
        user_agent,
        ip_address,
    ]
);
v2_row!(
    ContentFlag,
    content_flags,
    key = |r| r.id.clone(),
    check = check_flag,
    binary = true,
    [
        id,
        prayer_id,
        flagged_by_user_id,
        reason,
        flagged_at,
        resolved_at,
        resolved_by_user_id,
        resolution_action,
    ]
);
v2_row!(
    IdMapEntry,
    migration_id_map,
    key = |r| format!("{}/{}", r.entity, r.v1_key),
    check = check_id_map,
    run = run_id,
    binary = true,
    [run_id, entity, v1_key, v2_id,]
);
v2_row!(
    Finding,
    migration_findings,
    key = |r| format!("{}/{}/{}", r.v1_table, r.v1_key, r.rule),
    check = check_finding,
    run = run_id,
    binary = true,
    [
        run_id,
        v1_table,
        v1_key,
        rule,
        decision,
        reason,
        original_json,
        created_at,
    ]
);

/// A row of a v2 application table, which [`crate::V2Db::read_table`] can read back in key order.
pub trait AppRow: V2Row {
    /// Reads up to `limit` rows with keys after `after`'s, in key order.
    #[doc(hidden)]
    fn read_page(conn: &mut AnyConn, after: Option<&Self>, limit: i64) -> QueryResult<Vec<Self>>;
}

macro_rules! app_row_by_id {
    ($ty:ident, $table:ident) => {
        impl AppRow for $ty {
            fn read_page(
                conn: &mut AnyConn,
                after: Option<&Self>,
                limit: i64,
            ) -> QueryResult<Vec<Self>> {
                use schema::$table as t;
                dispatch!(conn, c => {
                    let mut q = t::table.select($ty::as_select()).order(t::id).limit(limit).into_boxed();
                    if let Some(a) = after {
                        q = q.filter(t::id.gt(a.id.clone()));
                    }
                    q.load(c)
                })
            }
        }
    };
}

app_row_by_id!(User, users);
app_row_by_id!(Prayer, prayers);
app_row_by_id!(PrayerMark, prayer_marks);
app_row_by_id!(Invite, invites);
app_row_by_id!(ContentFlag, content_flags);

impl AppRow for UserRole {
    fn read_page(conn: &mut AnyConn, after: Option<&Self>, limit: i64) -> QueryResult<Vec<Self>> {
        use schema::user_roles as t;
        dispatch!(conn, c => {
            let mut q = t::table
                .select(UserRole::as_select())
                .order((t::user_id, t::role))
                .limit(limit)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(
                    t::user_id
                        .gt(a.user_id.clone())
                        .or(t::user_id.eq(a.user_id.clone()).and(t::role.gt(a.role.clone()))),
                );
            }
            q.load(c)
        })
    }
}

/// PostgreSQL prints an `inet` without its prefix when it is a single host (as [`canonical_ip`]).
const PG_IP_TEXT: &str = "CASE WHEN masklen(ip_address) = \
     (CASE WHEN family(ip_address) = 4 THEN 32 ELSE 128 END) \
     THEN host(ip_address) ELSE text(ip_address) END";

impl AppRow for Session {
    fn read_page(conn: &mut AnyConn, after: Option<&Self>, limit: i64) -> QueryResult<Vec<Self>> {
        use diesel::dsl::sql;
        use diesel::sql_types::{Nullable, Text};
        use schema::sessions as t;
        let after = after.map(|a| a.id.clone());
        match conn {
            AnyConn::Sqlite(c) => {
                let mut q = t::table
                    .select(Session::as_select())
                    .order(t::id)
                    .limit(limit)
                    .into_boxed();
                if let Some(a) = after {
                    q = q.filter(t::id.gt(a));
                }
                q.load(c)
            }
            AnyConn::Pg(c) => {
                let cols = (
                    t::id,
                    t::user_id,
                    t::created_at,
                    t::expires_at,
                    t::last_seen_at,
                    t::user_agent,
                    sql::<Nullable<Text>>(PG_IP_TEXT),
                );
                let mut q = t::table.select(cols).order(t::id).limit(limit).into_boxed();
                if let Some(a) = after {
                    q = q.filter(t::id.gt(a));
                }
                type R = (
                    String,
                    String,
                    NaiveDateTime,
                    NaiveDateTime,
                    NaiveDateTime,
                    Option<String>,
                    Option<String>,
                );
                let rows: Vec<R> = q.load(c)?;
                Ok(rows
                    .into_iter()
                    .map(|r| Session {
                        id: r.0,
                        user_id: r.1,
                        created_at: r.2,
                        expires_at: r.3,
                        last_seen_at: r.4,
                        user_agent: r.5,
                        ip_address: r.6,
                    })
                    .collect())
            }
        }
    }
}

/// Whether `s` is a 32-character lower-case hex id.
pub fn is_hex_id(s: &str) -> bool {
    // Without short-circuit, so that the 32 bytes are checked in vector registers.
    s.len() == 32
        && s.bytes().fold(true, |ok, b| {
            ok & (b.is_ascii_digit() | (b'a'..=b'f').contains(&b))
        })
}

fn id(field: &str, v: &str) -> Result<(), String> {
    if is_hex_id(v) {
        Ok(())
    } else {
        Err(format!(
            "{field} '{}' is not a 32-character lower-case hex id",
            v.escape_debug()
        ))
    }
}

fn opt_id(field: &str, v: &Option<String>) -> Result<(), String> {
    v.as_deref().map_or(Ok(()), |v| id(field, v))
}

fn max_len(field: &str, v: &str, max: usize) -> Result<(), String> {
    let n = v.chars().count();
    if n <= max {
        Ok(())
    } else {
        Err(format!("{field} has {n} characters, at most {max} allowed"))
    }
}

fn opt_max_len(field: &str, v: &Option<String>, max: usize) -> Result<(), String> {
    v.as_deref().map_or(Ok(()), |v| max_len(field, v, max))
}

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "{field} '{}' is not one of {allowed:?}",
            v.escape_debug()
        ))
    }
}

fn later(what: &str, later: NaiveDateTime, earlier: NaiveDateTime) -> Result<(), String> {
    if later > earlier {
        Ok(())
    } else {
        Err(format!(
            "{what} ({later}) is not later than created_at ({earlier})"
        ))
    }
}

fn check_user(r: &User) -> Result<(), String> {
    id("id", &r.id)?;
    max_len("display_name", &r.display_name, 100)?;
    if r.display_name.trim().is_empty() {
        return Err("display_name is blank".into());
    }
    opt_max_len("email", &r.email, 255)?;
    one_of(
        "religious_preference",
        &r.religious_preference,
        &["christian", "unspecified", "other"],
    )?;
    opt_max_len("prayer_style", &r.prayer_style, 100)?;
    opt_id("invited_by_user_id", &r.invited_by_user_id)?;
    opt_max_len("supporter_type", &r.supporter_type, 255)?;
    opt_max_len("text_archive_path", &r.text_archive_path, 500)
}

fn check_prayer(r: &Prayer) -> Result<(), String> {
    id("id", &r.id)?;
    id("author_id", &r.author_id)?;
    let n = r.text.chars().count();
    if r.text.trim().is_empty() || n > 5000 {
        return Err(format!(
            "text has {n} characters ({} after trimming); 1..=5000 non-blank allowed",
            r.text.trim().chars().count()
        ));
    }
    opt_max_len("project_tag", &r.project_tag, 100)?;
    one_of(
        "target_audience",
        &r.target_audience,
        &["all", "christians_only"],
    )?;
    match (
        r.is_answered,
        r.answered_at.is_some(),
        r.testimony.is_some(),
    ) {
        (false, false, false) | (true, true, _) => {}
        (false, _, _) => return Err("not answered but answered_at or testimony is set".into()),
        (true, false, _) => return Err("answered without answered_at".into()),
    }
    opt_max_len("text_archive_path", &r.text_archive_path, 500)
}

fn check_mark(r: &PrayerMark) -> Result<(), String> {
    id("id", &r.id)?;
    id("prayer_id", &r.prayer_id)?;
    id("user_id", &r.user_id)
}

fn check_role(r: &UserRole) -> Result<(), String> {
    id("user_id", &r.user_id)?;
    one_of("role", &r.role, &["admin", "moderator"])?;
    opt_id("granted_by_user_id", &r.granted_by_user_id)
}

fn check_invite(r: &Invite) -> Result<(), String> {
    id("id", &r.id)?;
    if r.token.is_empty() {
        return Err("token is empty".into());
    }
    max_len("token", &r.token, 64)?;
    opt_id("created_by_user_id", &r.created_by_user_id)?;
    opt_max_len("invited_display_name", &r.invited_display_name, 100)?;
    later("expires_at", r.expires_at, r.created_at)?;
    if r.use_count < 0 || r.max_uses.is_some_and(|m| m < 0) {
        return Err("use_count or max_uses is negative".into());
    }
    opt_id("used_by_user_id", &r.used_by_user_id)
}

fn check_session(r: &Session) -> Result<(), String> {
    if r.id.is_empty() || r.id.len() > 64 || !r.id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("id is not 1..=64 printable ASCII characters".into());
    }
    id("user_id", &r.user_id)?;
    later("expires_at", r.expires_at, r.created_at)?;
    match &r.ip_address {
        Some(ip) if canonical_ip(ip).as_deref() != Some(ip.as_str()) => Err(format!(
            "ip_address '{}' is not an IP address in canonical form",
            ip.escape_debug()
        )),
        _ => Ok(()),
    }
}

fn check_flag(r: &ContentFlag) -> Result<(), String> {
    id("id", &r.id)?;
    id("prayer_id", &r.prayer_id)?;
    opt_id("flagged_by_user_id", &r.flagged_by_user_id)?;
    opt_max_len("reason", &r.reason, 255)?;
    opt_id("resolved_by_user_id", &r.resolved_by_user_id)?;
    opt_max_len("resolution_action", &r.resolution_action, 50)?;
    let set = [
        r.resolved_at.is_some(),
        r.resolved_by_user_id.is_some(),
        r.resolution_action.is_some(),
    ];
    if set.iter().all(|s| *s) || set.iter().all(|s| !*s) {
        Ok(())
    } else {
        Err("resolved_at, resolved_by_user_id and resolution_action must be set together".into())
    }
}

fn check_id_map(r: &IdMapEntry) -> Result<(), String> {
    if r.entity.is_empty() || r.entity.len() > 32 {
        return Err("entity is not 1..=32 characters".into());
    }
    id("v2_id", &r.v2_id)
}

fn check_finding(r: &Finding) -> Result<(), String> {
    max_len("v1_table", &r.v1_table, 64)?;
    max_len("rule", &r.rule, 64)?;
    one_of("decision", &r.decision, &DECISIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_copy_text() {
        let mut b = Vec::new();
        escape_copy_text("a\tb\nc\\d\re \"q\" 'x' é ☃".as_bytes(), &mut b);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "a\\tb\\nc\\\\d\\re \"q\" 'x' é ☃"
        );
    }

    #[test]
    fn sqlite_timestamps_match_diesels_chrono_format() {
        let mut cases = Vec::new();
        for (y, mo, d) in [
            (1, 1, 1),
            (999, 12, 31),
            (2024, 2, 29),
            (9999, 12, 31),
            (0, 1, 1),
        ] {
            for (h, mi, s) in [(0, 0, 0), (23, 59, 59), (9, 5, 7)] {
                for nano in [
                    0,
                    1_000,
                    1_000_000,
                    123_000_000,
                    999_999_000,
                    10_000,
                    500_000_000,
                    1,
                    999_999_999,
                ] {
                    let t = chrono::NaiveDate::from_ymd_opt(y, mo, d)
                        .and_then(|d| d.and_hms_nano_opt(h, mi, s, nano))
                        .unwrap();
                    cases.push(t);
                }
            }
        }
        // Out of the fast path's range: years beyond 9999 and before 0, a leap second.
        let far = chrono::NaiveDate::from_ymd_opt(12345, 6, 7)
            .unwrap()
            .and_hms_opt(1, 2, 3);
        let before = chrono::NaiveDate::from_ymd_opt(-44, 3, 15)
            .unwrap()
            .and_hms_opt(1, 2, 3);
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000);
        let mut buf = [0u8; 32];
        for t in cases {
            assert_eq!(
                sqlite_timestamp(&t, &mut buf),
                Some(t.format(DIESEL_SQLITE_TIMESTAMP).to_string().as_str()),
                "{t:?}"
            );
        }
        for t in [far, before, leap] {
            assert_eq!(sqlite_timestamp(&t.unwrap(), &mut buf), None);
        }
    }

    #[test]
    fn encodes_copy_binary() {
        assert_eq!(COPY_BINARY_HEADER.len(), 19);
        let at = |y, mo, d, h, mi, s, us| {
            chrono::NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|d| d.and_hms_micro_opt(h, mi, s, us))
                .unwrap()
        };
        let mut b = Vec::new();
        at(2000, 1, 1, 0, 0, 0, 0).encode_binary(&mut b);
        at(1999, 12, 31, 23, 59, 59, 999_999).encode_binary(&mut b);
        let mut want = vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8];
        want.extend_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(b, want);
        let mut b = Vec::new();
        Some("é\t".to_string()).encode_binary(&mut b);
        None::<String>.encode_binary(&mut b);
        true.encode_binary(&mut b);
        (-2i32).encode_binary(&mut b);
        assert_eq!(
            b,
            [
                &[0, 0, 0, 3, 0xc3, 0xa9, b'\t'][..],
                &[0xff; 4],
                &[0, 0, 0, 1, 1],
                &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe]
            ]
            .concat()
        );
    }
}
