//! Referential integrity and every v2 constraint, checked by query on the v2 database itself
//! (SQLite does not enforce foreign keys by default, and a bulk load may have disabled checks).

use thywill_v2::Backend;

use crate::v2db::V2Conn;

/// A 32-lower-hex violation predicate for `col` in the backend's dialect.
fn not_hex(b: Backend, col: &str) -> String {
    match b {
        Backend::Postgres => format!("{col} !~ '^[0-9a-f]{{32}}$'"),
        Backend::Sqlite => format!("(length({col}) <> 32 OR {col} GLOB '*[^0-9a-f]*')"),
    }
}

/// Every constraint as (name, query counting its violations as `n`).
fn constraints(b: Backend) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, from_where: String| {
        out.push((
            name.to_string(),
            format!("SELECT count(*) AS n FROM {from_where}"),
        ));
    };
    // Foreign keys: (child table, column, parent table, nullable).
    for (t, c, p) in [
        ("users", "invited_by_user_id", "users"),
        ("prayers", "author_id", "users"),
        ("prayer_marks", "prayer_id", "prayers"),
        ("prayer_marks", "user_id", "users"),
        ("user_roles", "user_id", "users"),
        ("user_roles", "granted_by_user_id", "users"),
        ("invites", "created_by_user_id", "users"),
        ("invites", "used_by_user_id", "users"),
        ("sessions", "user_id", "users"),
        ("content_flags", "prayer_id", "prayers"),
        ("content_flags", "flagged_by_user_id", "users"),
        ("content_flags", "resolved_by_user_id", "users"),
    ] {
        add(
            &format!("fk {t}.{c} -> {p}"),
            format!("{t} x WHERE x.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} y WHERE y.id = x.{c})"),
        );
    }
    // Uniques and primary keys (duplicates among non-NULL values).
    for (t, cols) in [
        ("users", "id"),
        ("users", "display_name"),
        ("users", "email"),
        ("prayers", "id"),
        ("prayer_marks", "id"),
        ("prayer_marks", "prayer_id, user_id, marked_at"),
        ("user_roles", "user_id, role"),
        ("invites", "id"),
        ("invites", "token"),
        ("sessions", "id"),
        ("content_flags", "id"),
        ("content_flags", "prayer_id, flagged_by_user_id"),
    ] {
        let not_null = cols
            .split(", ")
            .map(|c| format!("{c} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        add(
            &format!("unique {t}({cols})"),
            format!(
                "(SELECT {cols} FROM {t} WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1) d"
            ),
        );
    }
    // Checks.
    let checks: Vec<(&str, &str, String)> = vec![
        ("users", "display_name", "length(trim(display_name)) < 1 OR length(display_name) > 100".into()),
        ("users", "religious_preference", "religious_preference NOT IN ('christian', 'unspecified', 'other')".into()),
        ("prayers", "text", "length(text) < 10 OR length(text) > 5000".into()),
        ("prayers", "target_audience", "target_audience NOT IN ('all', 'christians_only')".into()),
        (
            "prayers",
            "answered",
            "NOT ((NOT is_answered AND answered_at IS NULL AND testimony IS NULL) OR (is_answered AND answered_at IS NOT NULL))".into(),
        ),
        ("user_roles", "role", "role NOT IN ('admin', 'moderator')".into()),
        ("invites", "expires", "expires_at <= created_at".into()),
        ("invites", "use_count", "use_count < 0 OR length(token) < 1 OR length(token) > 64".into()),
        ("sessions", "expires", "expires_at <= created_at".into()),
        (
            "content_flags",
            "resolution",
            "NOT ((resolved_at IS NULL AND resolved_by_user_id IS NULL AND resolution_action IS NULL) OR (resolved_at IS NOT NULL AND resolution_action IS NOT NULL))".into(),
        ),
    ];
    for (t, what, pred) in checks {
        add(&format!("check {t}.{what}"), format!("{t} WHERE {pred}"));
    }
    // Id format: every id column holds 32 lower-case hex.
    for (t, c) in [
        ("users", "id"),
        ("users", "invited_by_user_id"),
        ("prayers", "id"),
        ("prayers", "author_id"),
        ("prayer_marks", "id"),
        ("prayer_marks", "prayer_id"),
        ("prayer_marks", "user_id"),
        ("user_roles", "user_id"),
        ("user_roles", "granted_by_user_id"),
        ("invites", "id"),
        ("invites", "created_by_user_id"),
        ("invites", "used_by_user_id"),
        ("sessions", "user_id"),
        ("content_flags", "id"),
        ("content_flags", "prayer_id"),
        ("content_flags", "flagged_by_user_id"),
    ] {
        add(
            &format!("id format {t}.{c}"),
            format!("{t} WHERE {c} IS NOT NULL AND {}", not_hex(b, c)),
        );
    }
    out
}

/// Runs every constraint query; returns one problem per violated constraint.
pub fn run(conn: &mut V2Conn) -> Result<(usize, Vec<String>), diesel::result::Error> {
    let list = constraints(conn.backend());
    let mut problems = Vec::new();
    for (name, sql) in &list {
        let n = conn.count(sql)?;
        if n > 0 {
            problems.push(format!("{name}: {n} violating row(s)"));
        }
    }
    Ok((list.len(), problems))
}
