//! Schema introspection: which generation a file is, and which columns each carried table has.
//!
//! Reading is driven by per-column capabilities, never by the generation label alone, so the
//! intermediate shapes found in production (a column added here, one dropped there) read correctly.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The schema generation label of `spec/v1.md` (for reports; reading uses [`Schema`]'s columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum Generation {
    /// First weeks: `user(id, display_name, created_at)`, no `role` table.
    G0,
    /// Hex user ids, roles, attributes, text archives (the seed's era).
    G1,
    /// Users keyed by display name, `religious_preference` still present.
    G2,
    /// Latest: as G2 without `religious_preference`, with supporters and multi-use invites.
    G3,
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// How a column refers to a member: by v1 hex id or by display name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum UserRefKind {
    /// The value is a `user.id` (G0/G1).
    ById,
    /// The value is a `user.display_name` (G2/G3).
    ByName,
}

/// The tables the migration carries into v2, in the order they are read.
pub const CARRIED_TABLES: [&str; 8] = [
    "user",
    "prayer",
    "prayermark",
    "prayer_attributes",
    "role",
    "user_roles",
    "invitetoken",
    "session",
];

/// Tables the reader knows v2 does not carry; they are counted and named in reports.
pub const NOT_CARRIED_TABLES: [&str; 11] = [
    "authenticationrequest",
    "authapproval",
    "authauditlog",
    "notification_state",
    "securitylog",
    "changelogentry",
    "prayerskip",
    "prayer_activity_log",
    "invite_token_usage",
    "membership_applications",
    "schema_migrations",
];

/// Every column of the carried tables the reader understands, per table.
pub(crate) const KNOWN_COLUMNS: &[(&str, &[&str])] = &[
    (
        "user",
        &[
            "id",
            "display_name",
            "created_at",
            "religious_preference",
            "prayer_style",
            "invited_by_user_id",
            "invited_by_username",
            "invite_token_used",
            "welcome_message_dismissed",
            "text_file_path",
            "is_supporter",
            "supporter_since",
            "supporter_type",
        ],
    ),
    (
        "prayer",
        &[
            "id",
            "author_id",
            "author_username",
            "text",
            "generated_prayer",
            "project_tag",
            "created_at",
            "flagged",
            "target_audience",
            "text_file_path",
            "safety_score",
            "safety_flags",
            "categorization_method",
            "specificity_type",
            "specificity_confidence",
            "subject_category",
            "suggested_archive_date",
            "archive_suggestion_dismissed",
            "is_featured",
            "featured_at",
        ],
    ),
    (
        "prayermark",
        &[
            "id",
            "user_id",
            "username",
            "prayer_id",
            "created_at",
            "text_file_path",
        ],
    ),
    (
        "prayer_attributes",
        &[
            "id",
            "prayer_id",
            "attribute_name",
            "attribute_value",
            "created_at",
            "created_by",
            "text_file_path",
        ],
    ),
    (
        "role",
        &[
            "id",
            "name",
            "description",
            "permissions",
            "created_at",
            "created_by",
            "is_system_role",
        ],
    ),
    (
        "user_roles",
        &[
            "id",
            "user_id",
            "role_id",
            "granted_by",
            "granted_at",
            "expires_at",
        ],
    ),
    (
        "invitetoken",
        &[
            "token",
            "created_by_user",
            "used",
            "usage_count",
            "max_uses",
            "expires_at",
            "used_by_user_id",
            "token_type",
        ],
    ),
    (
        "session",
        &[
            "id",
            "user_id",
            "username",
            "created_at",
            "expires_at",
            "auth_request_id",
            "device_info",
            "ip_address",
            "is_fully_authenticated",
        ],
    ),
];

/// The introspected shape of one v1 file.
#[derive(Clone, Debug, Serialize)]
pub struct Schema {
    /// The generation label for reports.
    pub generation: Generation,
    /// Every table in the file with its columns, in declaration order.
    pub tables: BTreeMap<String, Vec<String>>,
    /// How `user` rows are keyed: `id` (ById) or `display_name` (ByName).
    pub user_key: UserRefKind,
    /// How prayers name their author (`author_id` or `author_username`).
    pub prayer_author: UserRefKind,
    /// How marks name their member (`user_id` or `username`).
    pub mark_user: UserRefKind,
    /// How sessions name their member (`user_id` or `username`), when the table exists.
    pub session_user: UserRefKind,
    /// Columns of carried tables the reader does not know (`table.column`), reported and ignored.
    pub unknown_columns: Vec<String>,
}

impl Schema {
    /// True when `table` exists in the file.
    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// True when `table` exists and has `column`.
    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|cols| cols.iter().any(|c| c == column))
    }

    /// How columns that hold a member reference without saying which kind (`user_roles.user_id`,
    /// `granted_by`, `created_by`, `invitetoken.created_by_user`, `used_by_user_id`) are to be
    /// read: they follow the `user` table's key.
    pub fn implicit_user_ref(&self) -> UserRefKind {
        self.user_key
    }

    /// Tables present in the file that v2 does not carry (known or not), sorted.
    pub fn not_carried_tables(&self) -> Vec<String> {
        self.tables
            .keys()
            .filter(|t| !CARRIED_TABLES.contains(&t.as_str()) && !t.starts_with("sqlite_"))
            .cloned()
            .collect()
    }

    /// Builds a schema from the table → columns map, or says what makes it unrecognisable.
    /// `Err` carries `(table, Some(column))` for a missing column or `(detail, None)` otherwise.
    pub(crate) fn from_tables(
        tables: BTreeMap<String, Vec<String>>,
    ) -> Result<Schema, (String, Option<String>)> {
        let has = |t: &str, c: &str| tables.get(t).is_some_and(|cs| cs.iter().any(|x| x == c));
        if !tables.contains_key("user") || !tables.contains_key("prayer") {
            let found: Vec<&str> = tables.keys().map(String::as_str).take(8).collect();
            return Err((
                format!(
                    "no `user` and `prayer` tables (found: {})",
                    if found.is_empty() {
                        "no tables".to_string()
                    } else {
                        found.join(", ")
                    }
                ),
                None,
            ));
        }
        let pick = |table: &str,
                    by_id: &str,
                    by_name: &str|
         -> Result<UserRefKind, (String, Option<String>)> {
            if has(table, by_id) {
                Ok(UserRefKind::ById)
            } else if has(table, by_name) {
                Ok(UserRefKind::ByName)
            } else {
                Err((table.to_string(), Some(format!("{by_id} (or {by_name})"))))
            }
        };
        let user_key = if has("user", "id") {
            UserRefKind::ById
        } else {
            UserRefKind::ByName
        };
        let prayer_author = pick("prayer", "author_id", "author_username")?;
        let mark_user = if tables.contains_key("prayermark") {
            pick("prayermark", "user_id", "username")?
        } else {
            user_key
        };
        let session_user = if tables.contains_key("session") {
            pick("session", "user_id", "username")?
        } else {
            user_key
        };
        for (table, required) in REQUIRED_COLUMNS {
            if !tables.contains_key(*table) {
                continue;
            }
            for col in required.iter() {
                if !has(table, col) {
                    return Err((table.to_string(), Some(col.to_string())));
                }
            }
        }
        if tables.contains_key("invitetoken")
            && !has("invitetoken", "used")
            && !has("invitetoken", "usage_count")
        {
            return Err(("invitetoken".into(), Some("used (or usage_count)".into())));
        }
        let mut unknown_columns = Vec::new();
        for (table, known) in KNOWN_COLUMNS {
            if let Some(cols) = tables.get(*table) {
                for c in cols {
                    if !known.contains(&c.as_str()) {
                        unknown_columns.push(format!("{table}.{c}"));
                    }
                }
            }
        }
        let generation = match user_key {
            UserRefKind::ById if !tables.contains_key("role") && !has("user", "text_file_path") => {
                Generation::G0
            }
            UserRefKind::ById => Generation::G1,
            UserRefKind::ByName if has("user", "religious_preference") => Generation::G2,
            UserRefKind::ByName => Generation::G3,
        };
        Ok(Schema {
            generation,
            tables,
            user_key,
            prayer_author,
            mark_user,
            session_user,
            unknown_columns,
        })
    }
}

/// Columns without which a carried table cannot be migrated (checked when the table exists).
const REQUIRED_COLUMNS: &[(&str, &[&str])] = &[
    ("user", &["display_name", "created_at"]),
    ("prayer", &["id", "text", "created_at"]),
    ("prayermark", &["id", "prayer_id", "created_at"]),
    (
        "prayer_attributes",
        &[
            "id",
            "prayer_id",
            "attribute_name",
            "attribute_value",
            "created_at",
        ],
    ),
    ("role", &["id", "name"]),
    ("user_roles", &["id", "user_id", "role_id", "granted_at"]),
    ("invitetoken", &["token", "expires_at"]),
    ("session", &["id", "created_at", "expires_at"]),
];
