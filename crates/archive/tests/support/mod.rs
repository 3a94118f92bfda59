//! Test support: the database side of a reconciliation, read with `thywill-v1`. The pipeline
//! should own this conversion (the archive crate never reads a database); it lives here until the
//! pipeline gets it.

use std::borrow::Cow;
use std::collections::HashMap;

use thywill_archive::{DbMark, DbPrayer, DbUser, ReconcileInput};
use thywill_v1::{MarkRow, PrayerRow, UserRefKind, UserRow, V1Database, V1Error, V1Value};

/// Reads every `user`, `prayer` and `prayermark` row of `db` into the plain structs of
/// [`thywill_archive::reconcile()`]: member references resolved to display names (the archives
/// write names; an unresolvable inviter is passed as written, an unresolvable author as `None`),
/// texts decoded lossily, times as raw text.
pub fn reconcile_input_from_v1(db: &V1Database) -> Result<ReconcileInput, V1Error> {
    fn text(v: &V1Value) -> Option<String> {
        v.to_text_lossy().map(Cow::into_owned)
    }
    let users = db.read_all::<UserRow>()?;
    let schema = db.schema();
    // member reference (as stored, and trimmed lower-case for damaged hex ids) -> display name
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
    db.for_each::<MarkRow, V1Error, _>(|m| {
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
