//! The database side of the reconciliation, read from the v1 snapshot: member references turned
//! into display names (the members are read once, one entry each; prayers and marks stream).
//!
//! The marks of both sides go through an external sort ([`thywill_spill`]) as fixed-size
//! entries, so the memory does not grow with the number of marks. References to members by id
//! are resolved with the detector's own key normaliser ([`crate::keys`]), as every other
//! reference is.

use std::borrow::Cow;
use std::collections::HashMap;

use thywill_spill::{records_for_budget, ExternalSort, Record, Sorted};
use thywill_v1::archive::V1Archive;
use thywill_v1::{
    InviteRow, InviteUsageRow, MarkRow, PrayerRow, RoleRow, UserRefKind, UserRoleRow, UserRow,
    V1Database, V1Error, V1Value,
};

use super::{
    reconcile_with, row_time, ArchiveFinding, DbClaim, DbGrant, DbMark, DbPrayer, DbUser,
    MarkEntry, MarkFn, MarkSort, ReconcileInput, ReconcileOptions, ReconcileRows, RowTime,
};
use crate::keys::{normalize, KeyKind, NormKey};
use crate::model::DetectError;

/// Memory for mark entries before they spill to temporary files.
const MEMORY_BUDGET: usize = 16 << 20;

fn text(v: &V1Value) -> Option<String> {
    v.to_text_lossy().map(Cow::into_owned)
}

/// The database side, read as the reconciliation asks for it: member references turned into
/// display names (the members are read once; prayers and marks stream).
struct DbRows<'a> {
    db: &'a V1Database,
    users: Vec<UserRow>,
    /// Display name by normalised member id (the first member of a key), when marks and
    /// prayers name members by id.
    names: HashMap<NormKey, String>,
}

impl<'a> DbRows<'a> {
    fn new(db: &'a V1Database) -> Result<Self, V1Error> {
        let users = db.read_all::<UserRow>()?;
        let mut names = HashMap::new();
        if db.schema().user_key == UserRefKind::ById {
            for u in &users {
                if let (Some(k), Some(n)) = (normalize(&u.id, KeyKind::Hex), text(&u.display_name))
                {
                    names.entry(k).or_insert(n);
                }
            }
        }
        Ok(DbRows { db, users, names })
    }

    fn name_of(&self, kind: UserRefKind, v: &V1Value) -> Option<String> {
        match kind {
            UserRefKind::ByName => text(v),
            UserRefKind::ById => self.names.get(&normalize(v, KeyKind::Hex)?).cloned(),
        }
    }

    /// The display name of the member `v` names (a display name in G2/G3; in G0/G1 the
    /// member's name, or `v` itself when no member has that id).
    fn member(&self, v: &V1Value) -> String {
        self.name_of(self.db.schema().user_key, v)
            .or_else(|| text(v))
            .unwrap_or_default()
    }

    fn mark_of(&self, m: &MarkRow) -> DbMark {
        DbMark {
            rowid: Some(m.rowid),
            id: m.id.key_text(),
            prayer_id: text(&m.prayer_id).unwrap_or_default(),
            user: self.member(&m.user),
            created_at: text(&m.created_at),
        }
    }
}

impl ReconcileRows for DbRows<'_> {
    type Error = DetectError;

    fn for_each_prayer(
        &self,
        f: &mut dyn FnMut(&DbPrayer) -> Result<(), DetectError>,
    ) -> Result<(), DetectError> {
        let author = self.db.schema().prayer_author;
        self.db.for_each_ref::<PrayerRow, DetectError, _>(|p| {
            f(&DbPrayer {
                rowid: Some(p.rowid),
                id: text(&p.id).unwrap_or_default(),
                author: self.name_of(author, &p.author),
                created_at: text(&p.created_at),
                text: text(&p.text),
                text_file_path: text(&p.text_file_path),
            })
        })?;
        Ok(())
    }

    fn for_each_user(
        &self,
        f: &mut dyn FnMut(&DbUser) -> Result<(), DetectError>,
    ) -> Result<(), DetectError> {
        let key = self.db.schema().user_key;
        self.users.iter().try_for_each(|u| {
            f(&DbUser {
                rowid: Some(u.rowid),
                name: text(&u.display_name),
                created_at: text(&u.created_at),
                inviter: self
                    .name_of(key, &u.invited_by)
                    .or_else(|| text(&u.invited_by)),
            })
        })
    }

    fn for_each_mark(&self, f: &mut MarkFn<'_, DetectError>) -> Result<(), DetectError> {
        self.db
            .for_each_ref::<MarkRow, DetectError, _>(|m| f(m.rowid as u64, &self.mark_of(m)))?;
        Ok(())
    }

    fn mark(&self, handle: u64) -> Result<DbMark, DetectError> {
        // the handle is the rowid the mark was streamed with; gone means the file changed
        match self.db.row_by_rowid::<MarkRow>(handle as i64)? {
            Some(m) => Ok(self.mark_of(&m)),
            None => Err(DetectError::SourceChanged {
                path: self.db.path().display().to_string(),
            }),
        }
    }

    fn grants(&self) -> Result<Vec<DbGrant>, DetectError> {
        let roles: HashMap<NormKey, String> = self
            .db
            .read_all::<RoleRow>()?
            .iter()
            .filter_map(|r| Some((normalize(&r.id, KeyKind::Hex)?, text(&r.name)?)))
            .collect();
        Ok(self
            .db
            .read_all::<UserRoleRow>()?
            .iter()
            .map(|g| DbGrant {
                rowid: Some(g.rowid),
                id: g.id.key_text(),
                user: self.member(&g.user),
                role: normalize(&g.role_id, KeyKind::Hex).and_then(|k| roles.get(&k).cloned()),
                granted_at: text(&g.granted_at),
            })
            .collect())
    }

    fn claims(&self) -> Result<Vec<DbClaim>, DetectError> {
        let mut expires: HashMap<String, chrono::NaiveDateTime> = HashMap::new();
        self.db.for_each_ref::<InviteRow, DetectError, _>(|t| {
            if let (Some(token), RowTime::At(at)) =
                (text(&t.token), row_time(text(&t.expires_at).as_deref()))
            {
                expires.insert(token, at);
            }
            Ok(())
        })?;
        Ok(self
            .db
            .read_all::<InviteUsageRow>()?
            .iter()
            .map(|c| {
                let token = text(&c.token).unwrap_or_default();
                let claimed_at = text(&c.claimed_at);
                let at = row_time(claimed_at.as_deref());
                DbClaim {
                    rowid: Some(c.rowid),
                    id: c.id.key_text(),
                    backfilled: matches!(at, RowTime::At(t)
                        if crate::rules::small::is_backfilled_claim(t, expires.get(&token).copied())),
                    token,
                    user: self.member(&c.user),
                    claimed_at,
                }
            })
            .collect())
    }
}

/// A [`MarkEntry`] as [`thywill_spill`] sorts it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Spilled(MarkEntry);

impl Record for Spilled {
    const SIZE: usize = MarkEntry::SIZE;

    fn encode(&self, out: &mut [u8]) {
        self.0.encode(out)
    }

    fn decode(bytes: &[u8]) -> Self {
        Spilled(MarkEntry::decode(bytes))
    }
}

/// The external sort the reconciliation's marks go through.
struct SpillSort(ExternalSort<Spilled>);

impl MarkSort for SpillSort {
    type Sorted =
        std::iter::Map<Sorted<Spilled>, fn(std::io::Result<Spilled>) -> std::io::Result<MarkEntry>>;

    fn push(&mut self, entry: MarkEntry) -> std::io::Result<()> {
        self.0.push(Spilled(entry))
    }

    fn sorted(self) -> std::io::Result<Self::Sorted> {
        Ok(self.0.into_sorted()?.map(|r| r.map(|s| s.0)))
    }
}

/// The database side of the reconciliation, all in memory (for tests and small databases; a
/// migration streams it through [`archive_findings`]): users, prayers, marks, grants and claims
/// as the
/// reconciliation wants them, member references turned into display names.
pub fn reconcile_input(db: &V1Database) -> Result<ReconcileInput, DetectError> {
    let rows = DbRows::new(db)?;
    let mut input = ReconcileInput::default();
    rows.for_each_user(&mut |u| {
        input.users.push(u.clone());
        Ok(())
    })?;
    rows.for_each_prayer(&mut |p| {
        input.prayers.push(p.clone());
        Ok(())
    })?;
    rows.for_each_mark(&mut |_, m| {
        input.marks.push(m.clone());
        Ok(())
    })?;
    input.grants = rows.grants()?;
    input.claims = rows.claims()?;
    Ok(input)
}

/// Every reconciliation finding between the snapshot `db` and the scanned v1 tree `archive`
/// written by a server on `clock`, streamed: at most 16 MiB of mark entries in memory, the rest
/// in sorted runs in temporary files. Each finding's decision is [`ArchiveFinding::decision`].
pub fn archive_findings(
    db: &V1Database,
    archive: &V1Archive,
    clock: &crate::clock::Clock,
) -> Result<Vec<ArchiveFinding>, DetectError> {
    archive_findings_within(db, archive, clock, MEMORY_BUDGET)
}

/// [`archive_findings`] with at most `budget` bytes of mark entries in memory.
pub(crate) fn archive_findings_within(
    db: &V1Database,
    archive: &V1Archive,
    clock: &crate::clock::Clock,
    budget: usize,
) -> Result<Vec<ArchiveFinding>, DetectError> {
    let limit = records_for_budget::<Spilled>(budget);
    let opts = ReconcileOptions {
        clock: *clock,
        ..ReconcileOptions::default()
    };
    reconcile_with(
        archive,
        &DbRows::new(db)?,
        SpillSort(ExternalSort::with_limit(limit)),
        &opts,
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::reconcile::{reconcile, scan_v1_tree, ArchiveRule, RecordKind};

    /// The streamed reconciliation (marks spilled to temporary files every 64 entries) finds
    /// what the in-memory one finds, on a fixture whose marks and members were made to differ
    /// from its logs.
    #[test]
    fn streamed_marks_find_what_the_in_memory_reconciliation_finds() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g1-s");
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("v1.db");
        std::fs::copy(fixture.join("v1.db"), &copy).unwrap();
        let conn = rusqlite::Connection::open(&copy).unwrap();
        conn.execute_batch(
            "DELETE FROM prayermark WHERE rowid % 97 = 0;
             UPDATE prayermark SET created_at = '2001-01-01 00:00:00' WHERE rowid % 89 = 0;
             UPDATE prayermark SET created_at = substr(created_at, 1, 10) WHERE rowid % 83 = 0;
             UPDATE prayermark SET created_at = 'never' WHERE rowid % 79 = 0;
             UPDATE prayermark SET prayer_id = ' ' || upper(prayer_id) WHERE rowid % 73 = 0;
             UPDATE prayermark SET user_id = upper(user_id) WHERE rowid % 71 = 0;
             UPDATE user SET created_at = '2001-01-01 00:00:00' WHERE rowid % 7 = 0;",
        )
        .unwrap();
        drop(conn);
        let db = V1Database::open(&copy).unwrap();
        let archive = scan_v1_tree(&fixture.join("text_archives")).unwrap();
        let streamed = archive_findings_within(
            &db,
            &archive,
            &crate::clock::Clock::utc(),
            64 * MarkEntry::SIZE,
        )
        .unwrap();
        let in_memory = reconcile(
            &archive,
            &reconcile_input(&db).unwrap(),
            &ReconcileOptions::default(),
        )
        .expect("the tree is readable");
        assert_eq!(streamed, in_memory);
        for rule in [ArchiveRule::Only, ArchiveRule::Mismatch] {
            assert!(
                streamed
                    .iter()
                    .any(|f| f.kind == RecordKind::Mark && f.rule == rule),
                "no mark finding {rule}"
            );
        }
        assert!(streamed.iter().any(|f| f.kind == RecordKind::User));
    }
}
