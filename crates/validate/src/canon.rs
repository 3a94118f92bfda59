//! The one canonical serialisation of a v2 row and the one table comparison used for every
//! table: rows as `key → cells`, sorted by key, fingerprinted with sha256, compared row by row
//! naming the first differing keys and columns.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thywill_v2::rows::{ContentFlag, Invite, Prayer, PrayerMark, Session, User, UserRole};

/// One column value in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Timestamp (UTC, microseconds).
    Ts(NaiveDateTime),
    /// Expected side only: the validator cannot derive this value on its own (an id from an
    /// undocumented namespace, a timestamp taken from evidence); any value matches.
    Any,
}

impl Cell {
    /// Appends the canonical bytes: a tag and a length-prefixed body, so no two rows collide.
    fn encode(&self, out: &mut Vec<u8>) {
        let body = match self {
            Cell::Null => return out.push(b'N'),
            Cell::Any => return out.push(b'?'),
            Cell::Str(s) => (b'S', s.clone()),
            Cell::Int(i) => (b'I', i.to_string()),
            Cell::Bool(b) => (b'B', u8::from(*b).to_string()),
            Cell::Ts(t) => (b'T', t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
        };
        out.push(body.0);
        out.extend_from_slice(&(body.1.len() as u32).to_be_bytes());
        out.extend_from_slice(body.1.as_bytes());
    }

    /// Short text for messages.
    fn show(&self) -> String {
        let s = match self {
            Cell::Null => "NULL".into(),
            Cell::Any => "(any)".into(),
            Cell::Str(s) => format!("{s:?}"),
            Cell::Int(i) => i.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Ts(t) => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        };
        if s.chars().count() > 80 {
            format!("{}…", s.chars().take(80).collect::<String>())
        } else {
            s
        }
    }

    fn matches(&self, actual: &Cell) -> bool {
        matches!(self, Cell::Any) || self == actual
    }
}

/// Text cell.
pub fn s(v: &str) -> Cell {
    Cell::Str(v.to_string())
}

/// Nullable text cell.
pub fn os(v: Option<&str>) -> Cell {
    v.map_or(Cell::Null, s)
}

/// Nullable timestamp cell.
pub fn ot(v: Option<NaiveDateTime>) -> Cell {
    v.map_or(Cell::Null, Cell::Ts)
}

/// A v2 table as the comparison sees it: its name, its compared columns, and rows by key.
#[derive(Debug, Default)]
pub struct CanonTable {
    /// The v2 table.
    pub table: &'static str,
    /// Compared columns, in cell order.
    pub columns: &'static [&'static str],
    /// Rows by key.
    pub rows: BTreeMap<String, Vec<Cell>>,
    /// Keys two source rows both produced (a derivation conflict; each is a failure).
    pub conflicts: Vec<String>,
}

impl CanonTable {
    /// An empty table of `T`'s layout.
    pub fn of<T: Canon>() -> Self {
        CanonTable {
            table: T::TABLE,
            columns: T::COLUMNS,
            ..Default::default()
        }
    }

    /// Adds a row; a second row with the same key is recorded as a conflict.
    pub fn insert(&mut self, key: String, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        match self.rows.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => self.conflicts.push(e.key().clone()),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(cells);
            }
        }
    }

    /// Builds the table from rows read back from v2 (duplicate keys are conflicts too).
    pub fn from_rows<T: Canon>(rows: &[T]) -> Self {
        let mut t = Self::of::<T>();
        for r in rows {
            t.insert(r.canon_key(), r.cells());
        }
        t
    }

    /// sha256 over the canonical serialisation of every row in key order (`None` when a cell is
    /// [`Cell::Any`]: such a table is compared row by row only).
    pub fn fingerprint(&self) -> Option<String> {
        let mut h = Sha256::new();
        let mut buf = Vec::new();
        for (k, cells) in &self.rows {
            buf.clear();
            Cell::Str(k.clone()).encode(&mut buf);
            for c in cells {
                if matches!(c, Cell::Any) {
                    return None;
                }
                c.encode(&mut buf);
            }
            h.update((buf.len() as u32).to_be_bytes());
            h.update(&buf);
        }
        Some(hex::encode(h.finalize()))
    }
}

/// The outcome of comparing an expected table with the one read back.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableDiff {
    /// The v2 table.
    pub table: String,
    /// Rows expected.
    pub expected_rows: usize,
    /// Rows found.
    pub actual_rows: usize,
    /// Fingerprint of the expected content (when fully derivable).
    pub expected_sha256: Option<String>,
    /// Fingerprint of the content read back.
    pub actual_sha256: Option<String>,
    /// Expected keys missing from v2.
    pub missing: usize,
    /// Keys in v2 that nothing in v1 explains.
    pub unexpected: usize,
    /// Rows present on both sides whose columns differ.
    pub changed: usize,
    /// The first differences, in key order, for the operator.
    pub examples: Vec<String>,
}

impl TableDiff {
    /// True when the tables are equal.
    pub fn is_equal(&self) -> bool {
        self.missing == 0 && self.unexpected == 0 && self.changed == 0 && self.examples.is_empty()
    }
}

const EXAMPLES: usize = 5;

/// Compares `expected` with `actual` row by row (a merge walk over the two key orders).
pub fn compare(expected: &CanonTable, actual: &CanonTable) -> TableDiff {
    let mut d = TableDiff {
        table: expected.table.to_string(),
        expected_rows: expected.rows.len(),
        actual_rows: actual.rows.len(),
        expected_sha256: expected.fingerprint(),
        actual_sha256: actual.fingerprint(),
        ..TableDiff::default()
    };
    // A difference may name an e-mail address (users.email): never printed (rules.md).
    let note = |d: &mut TableDiff, m: String| {
        if d.examples.len() < EXAMPLES {
            d.examples.push(thywill_v1::mask::mask_emails(&m));
        }
    };
    for k in &expected.conflicts {
        note(
            &mut d,
            format!("{}: two v1 rows map to key {k}", expected.table),
        );
    }
    for k in &actual.conflicts {
        note(
            &mut d,
            format!("{}: key {k} appears twice in v2", actual.table),
        );
    }
    let mut e = expected.rows.iter().peekable();
    let mut a = actual.rows.iter().peekable();
    loop {
        match (e.peek(), a.peek()) {
            (None, None) => break,
            (Some((ek, _)), Some((ak, _))) if ek < ak => {
                d.missing += 1;
                note(
                    &mut d,
                    format!("{} {ek}: expected from v1, missing in v2", expected.table),
                );
                e.next();
            }
            (Some(_), None) => {
                let (ek, _) = e.next().expect("peeked");
                d.missing += 1;
                note(
                    &mut d,
                    format!("{} {ek}: expected from v1, missing in v2", expected.table),
                );
            }
            (Some((ek, _)), Some((ak, _))) if ek == ak => {
                let (k, ec) = e.next().expect("peeked");
                let (_, ac) = a.next().expect("peeked");
                let cols: Vec<String> = expected
                    .columns
                    .iter()
                    .zip(ec.iter().zip(ac.iter()))
                    .filter(|(_, (x, y))| !x.matches(y))
                    .map(|(c, (x, y))| format!("{c}: expected {} found {}", x.show(), y.show()))
                    .collect();
                if !cols.is_empty() {
                    d.changed += 1;
                    note(
                        &mut d,
                        format!("{} {k}: {}", expected.table, cols.join("; ")),
                    );
                }
            }
            (_, Some(_)) => {
                let (ak, _) = a.next().expect("peeked");
                d.unexpected += 1;
                note(
                    &mut d,
                    format!("{} {ak}: in v2, not derivable from v1", actual.table),
                );
            }
        }
    }
    d
}

/// A v2 row type in canonical form: its table, compared columns, comparison key and cells.
pub trait Canon {
    /// The v2 table.
    const TABLE: &'static str;
    /// Compared columns.
    const COLUMNS: &'static [&'static str];
    /// The comparison key (a natural key where the id is derived from an undocumented scheme).
    fn canon_key(&self) -> String;
    /// The cells, in [`Canon::COLUMNS`] order.
    fn cells(&self) -> Vec<Cell>;
}

/// Key of a mark: one row per act of prayer, `prayer|user|marked_at`.
pub fn mark_key(prayer: &str, user: &str, at: NaiveDateTime) -> String {
    format!("{prayer}|{user}|{}", at.format("%Y-%m-%d %H:%M:%S%.6f"))
}

impl Canon for User {
    const TABLE: &'static str = "users";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "display_name",
        "email",
        "religious_preference",
        "prayer_style",
        "invited_by_user_id",
        "created_at",
        "updated_at",
        "is_active",
        "is_supporter",
        "supporter_since",
        "supporter_type",
        "welcome_dismissed",
        "email_verified_at",
    ];
    fn canon_key(&self) -> String {
        self.id.clone()
    }
    fn cells(&self) -> Vec<Cell> {
        vec![
            s(&self.id),
            s(&self.display_name),
            os(self.email.as_deref()),
            s(&self.religious_preference),
            os(self.prayer_style.as_deref()),
            os(self.invited_by_user_id.as_deref()),
            Cell::Ts(self.created_at),
            Cell::Ts(self.updated_at),
            Cell::Bool(self.is_active),
            Cell::Bool(self.is_supporter),
            ot(self.supporter_since),
            os(self.supporter_type.as_deref()),
            Cell::Bool(self.welcome_dismissed),
            ot(self.email_verified_at),
        ]
    }
}

impl Canon for Prayer {
    const TABLE: &'static str = "prayers";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "author_id",
        "text",
        "generated_prayer",
        "project_tag",
        "target_audience",
        "created_at",
        "updated_at",
        "is_archived",
        "is_answered",
        "answered_at",
        "testimony",
    ];
    fn canon_key(&self) -> String {
        self.id.clone()
    }
    fn cells(&self) -> Vec<Cell> {
        vec![
            s(&self.id),
            s(&self.author_id),
            s(&self.text),
            os(self.generated_prayer.as_deref()),
            os(self.project_tag.as_deref()),
            s(&self.target_audience),
            Cell::Ts(self.created_at),
            Cell::Ts(self.updated_at),
            Cell::Bool(self.is_archived),
            Cell::Bool(self.is_answered),
            ot(self.answered_at),
            os(self.testimony.as_deref()),
        ]
    }
}

impl Canon for PrayerMark {
    const TABLE: &'static str = "prayer_marks";
    const COLUMNS: &'static [&'static str] = &["id", "prayer_id", "user_id", "marked_at"];
    fn canon_key(&self) -> String {
        mark_key(&self.prayer_id, &self.user_id, self.marked_at)
    }
    fn cells(&self) -> Vec<Cell> {
        vec![
            s(&self.id),
            s(&self.prayer_id),
            s(&self.user_id),
            Cell::Ts(self.marked_at),
        ]
    }
}

impl Canon for UserRole {
    const TABLE: &'static str = "user_roles";
    const COLUMNS: &'static [&'static str] =
        &["user_id", "role", "granted_at", "granted_by_user_id"];
    fn canon_key(&self) -> String {
        format!("{}|{}", self.user_id, self.role)
    }
    fn cells(&self) -> Vec<Cell> {
        vec![
            s(&self.user_id),
            s(&self.role),
            Cell::Ts(self.granted_at),
            os(self.granted_by_user_id.as_deref()),
        ]
    }
}

impl Canon for Invite {
    const TABLE: &'static str = "invites";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "token",
        "created_by_user_id",
        "invited_display_name",
        "created_at",
        "expires_at",
        "max_uses",
        "use_count",
        "used_at",
        "used_by_user_id",
        "is_admin_token",
    ];
    fn canon_key(&self) -> String {
        self.token.clone()
    }
    fn cells(&self) -> Vec<Cell> {
        vec![
            s(&self.id),
            s(&self.token),
            os(self.created_by_user_id.as_deref()),
            os(self.invited_display_name.as_deref()),
            Cell::Ts(self.created_at),
            Cell::Ts(self.expires_at),
            self.max_uses.map_or(Cell::Null, |m| Cell::Int(m.into())),
            Cell::Int(self.use_count.into()),
            ot(self.used_at),
            os(self.used_by_user_id.as_deref()),
            Cell::Bool(self.is_admin_token),
        ]
    }
}

impl Canon for Session {
    const TABLE: &'static str = "sessions";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "user_id",
        "created_at",
        "expires_at",
        "last_seen_at",
        "user_agent",
        "ip_address",
    ];
    fn canon_key(&self) -> String {
        self.id.clone()
    }
    fn cells(&self) -> Vec<Cell> {
        vec![
            s(&self.id),
            s(&self.user_id),
            Cell::Ts(self.created_at),
            Cell::Ts(self.expires_at),
            Cell::Ts(self.last_seen_at),
            os(self.user_agent.as_deref()),
            os(self.ip_address.as_deref()),
        ]
    }
}

impl Canon for ContentFlag {
    const TABLE: &'static str = "content_flags";
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "prayer_id",
        "flagged_by_user_id",
        "reason",
        "flagged_at",
        "resolved_at",
        "resolved_by_user_id",
        "resolution_action",
    ];
    fn canon_key(&self) -> String {
        format!(
            "{}|{}",
            self.prayer_id,
            self.flagged_by_user_id.as_deref().unwrap_or("")
        )
    }
    fn cells(&self) -> Vec<Cell> {
        vec![
            s(&self.id),
            s(&self.prayer_id),
            os(self.flagged_by_user_id.as_deref()),
            os(self.reason.as_deref()),
            Cell::Ts(self.flagged_at),
            ot(self.resolved_at),
            os(self.resolved_by_user_id.as_deref()),
            os(self.resolution_action.as_deref()),
        ]
    }
}
