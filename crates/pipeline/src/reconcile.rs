//! Reconciling the v1 database with its v1 archive tree (`R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING`,
//! `R-ARCHIVE-MISMATCH`, docs/decisions.md §6): the rows are read here, the comparison is the
//! archive crate's. Reported, never migrated.

use std::borrow::Cow;
use std::collections::HashMap;

use thywill_archive::{
    reconcile, DbMark, DbPrayer, DbUser, ReconcileInput, ReconcileOptions, V1Archive,
};
use thywill_v1::{MarkRow, PrayerRow, UserRefKind, UserRow, V1Database, V1Error, V1Value};

use crate::error::PipelineError;
use crate::report::ReportFinding;

fn text(v: &V1Value) -> Option<String> {
    v.to_text_lossy().map(Cow::into_owned)
}

/// The database side of the reconciliation: users, prayers and marks as the archive crate wants
/// them, member references turned into display names.
pub fn reconcile_input(db: &V1Database) -> Result<ReconcileInput, V1Error> {
    let users = db.read_all::<UserRow>()?;
    let schema = db.schema();
    let mut names: HashMap<String, String> = HashMap::new();
    if schema.user_key == UserRefKind::ById {
        for u in &users {
            if let (Some(k), Some(n)) = (text(&u.id), text(&u.display_name)) {
                names
                    .entry(k.trim().to_ascii_lowercase())
                    .or_insert(n.clone());
                names.insert(k, n);
            }
        }
    }
    let name_of = |kind: UserRefKind, v: &V1Value| -> Option<String> {
        let r = text(v)?;
        match kind {
            UserRefKind::ByName => Some(r),
            UserRefKind::ById => names
                .get(&r)
                .or_else(|| names.get(&r.trim().to_ascii_lowercase()))
                .cloned(),
        }
    };
    let mut input = ReconcileInput::default();
    for u in &users {
        input.users.push(DbUser {
            rowid: Some(u.rowid),
            name: text(&u.display_name),
            created_at: text(&u.created_at),
            inviter: name_of(schema.user_key, &u.invited_by).or_else(|| text(&u.invited_by)),
        });
    }
    for p in db.read_all::<PrayerRow>()? {
        input.prayers.push(DbPrayer {
            rowid: Some(p.rowid),
            id: text(&p.id).unwrap_or_default(),
            author: name_of(schema.prayer_author, &p.author),
            created_at: text(&p.created_at),
            text: text(&p.text),
            text_file_path: text(&p.text_file_path),
        });
    }
    db.for_each_ref::<MarkRow, V1Error, _>(|m| {
        input.marks.push(DbMark {
            rowid: Some(m.rowid),
            id: m.id.key_text(),
            prayer_id: text(&m.prayer_id).unwrap_or_default(),
            user: text(&m.user).unwrap_or_default(),
            created_at: text(&m.created_at),
        });
        Ok(())
    })?;
    Ok(input)
}

/// Every reconciliation finding between `db` and the scanned v1 tree, as report entries.
/// Decisions: archive-only records are `not_carried`; rows without a file are `repaired` (v2
/// renders their archive); mismatches are written as the database has them (`repaired`).
pub(crate) fn reconcile_archives(
    db: &V1Database,
    archive: &V1Archive,
) -> Result<Vec<ReportFinding>, PipelineError> {
    let found = reconcile(archive, &reconcile_input(db)?, &ReconcileOptions::default());
    Ok(found
        .into_iter()
        .map(|f| ReportFinding {
            v1_table: f.kind.table().to_string(),
            v1_key: f.key.clone(),
            rule: f.rule.id().to_string(),
            decision: match f.rule {
                thywill_archive::ArchiveRule::Only => "not_carried",
                _ => "repaired",
            }
            .to_string(),
            reason: format!("{} ({})", f.detail, f.path.as_deref().unwrap_or("no file")),
        })
        .collect())
}
