//! The v1 columns of the carried tables that have no v2 home, named with their non-NULL counts
//! (`source.not_carried_columns`): nothing leaves v1 without a name.

use std::collections::BTreeMap;

use thywill_v1::{
    AttributeRow, InviteRow, MarkRow, PrayerRow, RoleRow, SessionRow, UserRoleRow, UserRow,
    V1Database, V1Error, V1Row,
};

/// The columns the reader reads, per carried table: every one reaches v2 through the
/// detector's decisions, except [`READ_AS_EVIDENCE`].
const READ: &[(&str, &[&[&str]])] = &[
    (UserRow::TABLE, UserRow::FIELDS),
    (PrayerRow::TABLE, PrayerRow::FIELDS),
    (MarkRow::TABLE, MarkRow::FIELDS),
    (AttributeRow::TABLE, AttributeRow::FIELDS),
    (RoleRow::TABLE, RoleRow::FIELDS),
    (UserRoleRow::TABLE, UserRoleRow::FIELDS),
    (InviteRow::TABLE, InviteRow::FIELDS),
    (SessionRow::TABLE, SessionRow::FIELDS),
];

/// Columns read only as evidence for a decision, whose values have no v2 column.
const READ_AS_EVIDENCE: &[(&str, &str)] = &[
    ("user", "invite_token_used"),
    ("role", "created_at"),
    ("prayermark", "text_file_path"),
    ("prayer_attributes", "text_file_path"),
];

/// `table.column` → non-NULL values, for every column of a carried table that has no v2 home
/// (including columns the reader does not know). Columns holding only NULLs are left out.
pub(crate) fn not_carried_columns(db: &V1Database) -> Result<BTreeMap<String, u64>, V1Error> {
    let schema = db.schema();
    let mut out = BTreeMap::new();
    for (table, fields) in READ {
        let Some(columns) = schema.tables.get(*table) else {
            continue;
        };
        // Of a field's alternative spellings the reader takes the first the file has.
        let read: Vec<&str> = fields
            .iter()
            .filter_map(|alts| {
                alts.iter()
                    .copied()
                    .find(|c| columns.iter().any(|k| k == c))
            })
            .filter(|c| !READ_AS_EVIDENCE.contains(&(table, c)))
            .collect();
        let left: Vec<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|c| !read.contains(c))
            .collect();
        for (column, n) in db.non_null_counts(table, &left)? {
            if n > 0 {
                out.insert(format!("{table}.{column}"), n);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the committed G3 fixture: v1 columns with values and no v2 home are named, carried
    /// ones are not.
    #[test]
    fn the_g3_fixture_names_its_columns_without_a_v2_home() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g3-s/v1.db");
        let db = V1Database::open(&path).unwrap();
        let cols = not_carried_columns(&db).unwrap();
        assert!(cols.contains_key("user.invite_token_used"), "{cols:?}");
        for carried in [
            "prayer.text",
            "user.display_name",
            "user.supporter_type",
            "session.ip_address",
        ] {
            assert!(
                !cols.contains_key(carried),
                "{carried} is carried: {cols:?}"
            );
        }
        assert!(cols.values().all(|n| *n > 0));
    }
}
