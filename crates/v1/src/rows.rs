//! Raw typed rows of the carried tables.
//!
//! Every field is the [`V1Value`] exactly as stored; a column the file does not have reads as
//! `Null`. Fields that v1 spelled differently across generations (`author_id`/`author_username`)
//! have one field here, filled from whichever column the file has (see [`Schema`]).

use crate::schema::Schema;
use crate::value::V1Value;

/// A row type of one carried v1 table.
pub trait V1Row: Sized {
    /// The v1 table name.
    const TABLE: &'static str;
    /// Per field, the candidate column names in order of preference.
    const FIELDS: &'static [&'static [&'static str]];
    /// Builds the row from its rowid and one value per field (in `FIELDS` order).
    fn from_values(rowid: i64, values: Vec<V1Value>) -> Self;
    /// The values per field, in `FIELDS` order.
    fn field_values(&self) -> Vec<&V1Value>;
    /// SQLite's rowid of the row (addresses findings; stable within one snapshot).
    fn rowid(&self) -> i64;
    /// The rowid and the value of field `i` (in `FIELDS` order) to overwrite, so a stream can
    /// refill one row in place ([`crate::V1Database::for_each_ref`]). `None` (the default) when
    /// the type does not support it: such rows are rebuilt with [`V1Row::from_values`].
    fn refill_slot(&mut self, i: usize) -> Option<(&mut i64, &mut V1Value)> {
        let _ = i;
        None
    }
}

/// The first candidate column the table has in this file.
pub(crate) fn chosen_column<'a>(
    schema: &Schema,
    table: &str,
    cands: &[&'a str],
) -> Option<&'a str> {
    cands.iter().copied().find(|c| schema.has_column(table, c))
}

macro_rules! v1_row {
    ($(#[$m:meta])* $name:ident, $table:literal {
        $( $(#[$fm:meta])* $field:ident : [$($col:literal),+] ),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            /// SQLite's rowid of the row.
            pub rowid: i64,
            $( $(#[$fm])* pub $field: V1Value, )*
        }

        impl V1Row for $name {
            const TABLE: &'static str = $table;
            const FIELDS: &'static [&'static [&'static str]] = &[$(&[$($col),+]),*];

            fn from_values(rowid: i64, values: Vec<V1Value>) -> Self {
                let mut it = values.into_iter();
                $name { rowid, $($field: it.next().unwrap_or(V1Value::Null)),* }
            }

            fn field_values(&self) -> Vec<&V1Value> {
                vec![$(&self.$field),*]
            }

            fn rowid(&self) -> i64 {
                self.rowid
            }

            fn refill_slot(&mut self, i: usize) -> Option<(&mut i64, &mut V1Value)> {
                let $name { rowid, $($field),* } = self;
                let slot = [$($field),*].into_iter().nth(i)?;
                Some((rowid, slot))
            }
        }
    };
}

v1_row!(
    /// A `user` row.
    UserRow, "user" {
        /// `id` (G0/G1 hex key); `Null` in name-keyed files.
        id: ["id"],
        /// `display_name` (the key in G2/G3).
        display_name: ["display_name"],
        /// `created_at` as raw text.
        created_at: ["created_at"],
        /// `religious_preference` (G1/G2).
        religious_preference: ["religious_preference"],
        /// `prayer_style` (G1/G2).
        prayer_style: ["prayer_style"],
        /// The inviter: `invited_by_user_id` (G1) or `invited_by_username` (G2/G3).
        invited_by: ["invited_by_user_id", "invited_by_username"],
        /// `invite_token_used`.
        invite_token_used: ["invite_token_used"],
        /// `text_file_path`.
        text_file_path: ["text_file_path"],
        /// `is_supporter` (G3).
        is_supporter: ["is_supporter"],
        /// `supporter_since` (G3).
        supporter_since: ["supporter_since"],
        /// `supporter_type` (G3): comma-separated badge keys.
        supporter_type: ["supporter_type"],
        /// `welcome_message_dismissed` (G1–G3).
        welcome_message_dismissed: ["welcome_message_dismissed"],
    }
);

v1_row!(
    /// A `prayer` row.
    PrayerRow, "prayer" {
        /// `id`.
        id: ["id"],
        /// The author: `author_id` (G0/G1) or `author_username` (G2/G3).
        author: ["author_id", "author_username"],
        /// `text`.
        text: ["text"],
        /// `generated_prayer`.
        generated_prayer: ["generated_prayer"],
        /// `project_tag`.
        project_tag: ["project_tag"],
        /// `created_at` as raw text.
        created_at: ["created_at"],
        /// `flagged` (0/1).
        flagged: ["flagged"],
        /// `target_audience` (G1/G2).
        target_audience: ["target_audience"],
        /// `text_file_path`.
        text_file_path: ["text_file_path"],
    }
);

v1_row!(
    /// A `prayermark` row.
    MarkRow, "prayermark" {
        /// `id`.
        id: ["id"],
        /// The member: `user_id` (G0/G1) or `username` (G2/G3).
        user: ["user_id", "username"],
        /// `prayer_id`.
        prayer_id: ["prayer_id"],
        /// `created_at` as raw text.
        created_at: ["created_at"],
        /// `text_file_path`.
        text_file_path: ["text_file_path"],
    }
);

v1_row!(
    /// A `prayer_attributes` row.
    AttributeRow, "prayer_attributes" {
        /// `id`.
        id: ["id"],
        /// `prayer_id`.
        prayer_id: ["prayer_id"],
        /// `attribute_name`.
        name: ["attribute_name"],
        /// `attribute_value`.
        value: ["attribute_value"],
        /// `created_at` as raw text.
        created_at: ["created_at"],
        /// `created_by` (a member reference, kind as the user key).
        created_by: ["created_by"],
        /// `text_file_path`.
        text_file_path: ["text_file_path"],
    }
);

v1_row!(
    /// A `role` row.
    RoleRow, "role" {
        /// `id`.
        id: ["id"],
        /// `name` (`admin`, `moderator`, `user`, …).
        name: ["name"],
        /// `created_at` as raw text.
        created_at: ["created_at"],
    }
);

v1_row!(
    /// A `user_roles` row (a role grant).
    UserRoleRow, "user_roles" {
        /// `id`.
        id: ["id"],
        /// `user_id` (a member reference, kind as the user key).
        user: ["user_id"],
        /// `role_id`.
        role_id: ["role_id"],
        /// `granted_by` (a member reference, kind as the user key).
        granted_by: ["granted_by"],
        /// `granted_at` as raw text.
        granted_at: ["granted_at"],
        /// `expires_at` as raw text (`Null` = never).
        expires_at: ["expires_at"],
    }
);

v1_row!(
    /// An `invitetoken` row.
    InviteRow, "invitetoken" {
        /// `token` (the key).
        token: ["token"],
        /// `created_by_user` (a member reference or `system`).
        created_by: ["created_by_user"],
        /// `used` (early files, 0/1).
        used: ["used"],
        /// `usage_count` (later files).
        usage_count: ["usage_count"],
        /// `max_uses` (later files).
        max_uses: ["max_uses"],
        /// `expires_at` as raw text.
        expires_at: ["expires_at"],
        /// `used_by_user_id` (a member reference).
        used_by: ["used_by_user_id"],
        /// `token_type` (G3).
        token_type: ["token_type"],
    }
);

v1_row!(
    /// An `invite_token_usage` row (a claim of an invite token, G3).
    InviteUsageRow, "invite_token_usage" {
        /// `id`.
        id: ["id"],
        /// `invite_token_id`.
        token: ["invite_token_id"],
        /// `user_id` (a member reference, kind as the user key).
        user: ["user_id"],
        /// `claimed_at` as raw text.
        claimed_at: ["claimed_at"],
    }
);

v1_row!(
    /// A `session` row.
    SessionRow, "session" {
        /// `id`.
        id: ["id"],
        /// The member: `user_id` (G0/G1) or `username` (G2/G3).
        user: ["user_id", "username"],
        /// `created_at` as raw text.
        created_at: ["created_at"],
        /// `expires_at` as raw text.
        expires_at: ["expires_at"],
        /// `device_info`.
        device_info: ["device_info"],
        /// `ip_address`.
        ip_address: ["ip_address"],
        /// `is_fully_authenticated` (0/1; `Null` in files without the column).
        is_fully_authenticated: ["is_fully_authenticated"],
    }
);
