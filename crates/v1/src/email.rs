//! v1's separate e-mail database (`email.db`, `spec/v1-real.md` §7): the `user_email` rows as
//! stored (the address Fernet-encrypted), and the key v1 encrypted them with. Read-only, one
//! snapshot, like the main database; nothing is decrypted or decided here.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::V1Error;
use crate::value::V1Value;

/// The table v1 keeps the addresses in.
pub const EMAIL_TABLE: &str = "user_email";

/// The columns of `user_email` the migration reads, in this order.
pub const EMAIL_COLUMNS: [&str; 7] = [
    "id",
    "user_id",
    "email_encrypted",
    "email_verified",
    "verification_token",
    "added_at",
    "verified_at",
];

/// One `user_email` row as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailRow {
    /// SQLite's rowid.
    pub rowid: i64,
    /// `id` (uuid hex).
    pub id: V1Value,
    /// `user_id`: the member's display name (no foreign key).
    pub user_id: V1Value,
    /// `email_encrypted`: the Fernet token text.
    pub email_encrypted: V1Value,
    /// `email_verified` (bool).
    pub email_verified: V1Value,
    /// `verification_token` (NULL once verified).
    pub verification_token: V1Value,
    /// `added_at` (utcnow).
    pub added_at: V1Value,
    /// `verified_at` (utcnow).
    pub verified_at: V1Value,
}

/// v1's `EMAIL_ENCRYPTION_KEY`: the key text (never shown: its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct EmailKey(String);

impl fmt::Debug for EmailKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailKey(<redacted>)")
    }
}

impl EmailKey {
    /// The key from its text, trimmed as v1 strips it; `None` when nothing is left.
    pub fn new(text: &str) -> Option<EmailKey> {
        let t = text.trim();
        (!t.is_empty()).then(|| EmailKey(t.to_string()))
    }

    /// The key held in `path` (the key text, trimmed). A missing, unreadable or empty file is
    /// an error naming the file.
    pub fn from_file(path: &Path) -> Result<EmailKey, V1Error> {
        let text = std::fs::read_to_string(path).map_err(|source| V1Error::EmailKey {
            path: path.to_path_buf(),
            detail: source.to_string(),
        })?;
        EmailKey::new(&text).ok_or_else(|| V1Error::EmailKey {
            path: path.to_path_buf(),
            detail: "the file is empty".to_string(),
        })
    }

    /// The key text (the Fernet key, url-safe base64).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `email.db` opened read-only inside one read transaction.
pub struct V1EmailDb {
    conn: Connection,
    path: PathBuf,
    /// Every column of `user_email` in the file, in order (for [`V1EmailDb::row_json`]).
    columns: Vec<String>,
}

impl fmt::Debug for V1EmailDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1EmailDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl V1EmailDb {
    /// Opens `path` read-only. A missing file, a file that is not SQLite or one without the
    /// `user_email` table (or one of [`EMAIL_COLUMNS`]) is an error naming the file (exit 3).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, V1Error> {
        let path = path.as_ref().to_path_buf();
        let bad = |detail: String| V1Error::EmailDb {
            path: path.clone(),
            detail,
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => return Err(bad("is a folder, not a SQLite file".into())),
            Ok(m) if m.len() == 0 => return Err(bad("the file is empty (0 bytes)".into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad("no such file".into()))
            }
            Err(e) => return Err(bad(e.to_string())),
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let sql_err = |e: rusqlite::Error| bad(e.to_string());
        let conn = Connection::open_with_flags(&path, flags).map_err(sql_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql_err)?;
        conn.execute_batch("BEGIN DEFERRED").map_err(sql_err)?;
        let columns: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .map_err(sql_err)?;
            let rows = stmt
                .query_map([EMAIL_TABLE], |r| r.get::<_, String>(0))
                .map_err(sql_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
        };
        if columns.is_empty() {
            return Err(bad(format!("has no table {EMAIL_TABLE}")));
        }
        if let Some(c) = EMAIL_COLUMNS
            .iter()
            .find(|c| !columns.iter().any(|x| x == *c))
        {
            return Err(bad(format!("table {EMAIL_TABLE} has no column {c}")));
        }
        Ok(V1EmailDb {
            conn,
            path,
            columns,
        })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every `user_email` row by full table scan, in rowid order.
    pub fn rows(&self) -> Result<Vec<EmailRow>, V1Error> {
        let sql = format!(
            "SELECT rowid, {} FROM {EMAIL_TABLE} NOT INDEXED ORDER BY rowid",
            EMAIL_COLUMNS
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let err = |e: rusqlite::Error| V1Error::EmailDb {
            path: self.path.clone(),
            detail: format!("reading {EMAIL_TABLE}: {e}"),
        };
        let mut stmt = self.conn.prepare(&sql).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let v = |i: usize| r.get_ref(i).map(V1Value::from);
            out.push(EmailRow {
                rowid: r.get(0).map_err(err)?,
                id: v(1).map_err(err)?,
                user_id: v(2).map_err(err)?,
                email_encrypted: v(3).map_err(err)?,
                email_verified: v(4).map_err(err)?,
                verification_token: v(5).map_err(err)?,
                added_at: v(6).map_err(err)?,
                verified_at: v(7).map_err(err)?,
            });
        }
        Ok(out)
    }

    /// The whole row `rowid` of `user_email` as stored, as JSON keyed by column (the address
    /// as its ciphertext, as v1 stored it). `None` if absent.
    pub fn row_json(&self, rowid: i64) -> Result<Option<serde_json::Value>, V1Error> {
        let err = |e: rusqlite::Error| V1Error::EmailDb {
            path: self.path.clone(),
            detail: format!("reading {EMAIL_TABLE}: {e}"),
        };
        let sql = format!("SELECT * FROM {EMAIL_TABLE} WHERE rowid = ?1");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(err)?;
        let mut rows = stmt.query([rowid]).map_err(err)?;
        let Some(row) = rows.next().map_err(err)? else {
            return Ok(None);
        };
        let mut map = serde_json::Map::new();
        for (i, col) in self.columns.iter().enumerate() {
            let v = row.get_ref(i).map_err(err)?;
            map.insert(col.clone(), V1Value::from(v).to_json());
        }
        Ok(Some(serde_json::Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email_db(dir: &Path, ddl: &str) -> PathBuf {
        let p = dir.join("email.db");
        let c = Connection::open(&p).expect("create");
        c.execute_batch(ddl).expect("ddl");
        p
    }

    #[test]
    fn rows_are_read_as_stored_and_file_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.db");
        let e = V1EmailDb::open(&missing).expect_err("missing");
        assert!(e.to_string().contains("nope.db"), "{e}");
        assert_eq!(e.exit_code(), 3);
        let other = email_db(dir.path(), "CREATE TABLE x (a)");
        let e = V1EmailDb::open(&other).expect_err("no table");
        assert!(e.to_string().contains("no table user_email"), "{e}");
        std::fs::remove_file(&other).expect("rm");
        let p = email_db(
            dir.path(),
            "CREATE TABLE user_email (id TEXT, user_id TEXT, email_encrypted TEXT, \
             email_verified BOOLEAN, verification_token TEXT, added_at DATETIME, verified_at DATETIME);
             INSERT INTO user_email VALUES ('a1', 'Ann', 'gAAAA', 1, NULL, '2025-08-07 10:00:00', '2025-08-07 10:05:00');",
        );
        let db = V1EmailDb::open(&p).expect("open");
        let rows = db.rows().expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].user_id, V1Value::text("Ann"));
        assert_eq!(rows[0].email_verified.as_bool(), Some(true));
        let j = db.row_json(rows[0].rowid).expect("json").expect("row");
        assert_eq!(j["email_encrypted"], "gAAAA");
    }

    #[test]
    fn the_key_is_trimmed_and_never_shown() {
        let k = EmailKey::new("  abc\n").expect("key");
        assert_eq!(k.expose(), "abc");
        assert!(!format!("{k:?}").contains("abc"));
        assert!(EmailKey::new(" \n").is_none());
    }
}
