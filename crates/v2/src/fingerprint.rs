//! A content fingerprint of the v2 application tables: the same data gives the same digest on
//! either backend, so two migrations (or a migration and its re-run) can be compared exactly.

use sha2::{Digest, Sha256};

use crate::db::V2Db;
use crate::error::{Error, Result};
use crate::rows::{ContentFlag, Invite, Prayer, PrayerMark, Session, User, UserRole};
use crate::table::AppRow;

/// The digest of every application table read back in key order, and the rows per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// sha256 (hex) over the canonical JSON of every row, table by table.
    pub sha256: String,
    /// Rows per application table, in the order users, prayers, prayer_marks, user_roles,
    /// invites, sessions, content_flags.
    pub rows: Vec<(&'static str, u64)>,
}

impl V2Db {
    /// Reads every application table in key order and digests it (see [`Fingerprint`]).
    pub fn content_fingerprint(&mut self) -> Result<Fingerprint> {
        let mut hasher = Sha256::new();
        let rows = vec![
            digest::<User>(self, &mut hasher)?,
            digest::<Prayer>(self, &mut hasher)?,
            digest::<PrayerMark>(self, &mut hasher)?,
            digest::<UserRole>(self, &mut hasher)?,
            digest::<Invite>(self, &mut hasher)?,
            digest::<Session>(self, &mut hasher)?,
            digest::<ContentFlag>(self, &mut hasher)?,
        ];
        Ok(Fingerprint {
            sha256: hex::encode(hasher.finalize()),
            rows,
        })
    }
}

fn digest<R: AppRow + serde::Serialize>(
    db: &mut V2Db,
    hasher: &mut Sha256,
) -> Result<(&'static str, u64)> {
    hasher.update(R::TABLE.as_bytes());
    hasher.update(b"\n");
    let n = db.read_table::<R, Error, _>(|row| {
        let json = serde_json::to_vec(&row).map_err(|e| Error::InvalidRow {
            table: R::TABLE,
            key: row.key(),
            reason: format!("cannot serialise: {e}"),
        })?;
        hasher.update(&json);
        hasher.update(b"\n");
        Ok(())
    })?;
    Ok((R::TABLE, n))
}
