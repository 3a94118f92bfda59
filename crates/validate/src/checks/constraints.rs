//! Referential integrity and every v2 constraint, checked by query on the v2 database itself
//! (SQLite does not enforce foreign keys by default, and a bulk load may have disabled checks).

use thywill_v2::Backend;

use crate::v2db::V2Conn;

/// A 32-lower-hex violation predicate for `col` in the backend's dialect (on PostgreSQL, an
/// unanchored character-class match is several times faster than the anchored `{32}` pattern).
fn not_hex(b: Backend, col: &str) -> String {
    match b {
        Backend::Postgres => format!("(length({col}) <> 32 OR {col} ~ '[^0-9a-f]')"),
        Backend::Sqlite => format!("(length({col}) <> 32 OR {col} GLOB '*[^0-9a-f]*')"),
    }
}

/// How a constraint is counted.
enum Count {
    /// Its own query counting its violations as `n` (foreign keys, uniques).
    Query(String),
    /// A row predicate of `table`, counted with the table's other predicates in one scan.
    Row(&'static str, String),
}

/// Every constraint as (name, how its violations are counted).
fn constraints(b: Backend) -> Vec<(String, Count)> {
    let mut out: Vec<(String, Count)> = Vec::new();
    let mut add = |name: &str, from_where: String| {
        out.push((
            name.to_string(),
            Count::Query(format!("SELECT count(*) AS n FROM {from_where}")),
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
    let mut row = |name: String, t: &'static str, pred: String| {
        out.push((name, Count::Row(t, pred)));
    };
    let checks: Vec<(&'static str, &str, String)> = vec![
        ("users", "display_name", "length(trim(display_name)) < 1 OR length(display_name) > 100".into()),
        ("users", "religious_preference", "religious_preference NOT IN ('christian', 'unspecified', 'other')".into()),
        ("prayers", "text", "length(trim(text)) < 1 OR length(text) > 5000".into()),
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
        row(format!("check {t}.{what}"), t, pred);
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
        row(
            format!("id format {t}.{c}"),
            t,
            format!("{c} IS NOT NULL AND {}", not_hex(b, c)),
        );
    }
    out
}

/// Runs every constraint query; returns one problem per violated constraint, in the order of
/// [`constraints`]. The row predicates of a table are counted together in one scan of it
/// (`SUM(CASE WHEN … THEN 1 ELSE 0 END)` per predicate); foreign keys are one anti-join each,
/// uniques one grouping each.
pub fn run(conn: &mut V2Conn) -> Result<(usize, Vec<String>), diesel::result::Error> {
    let list = constraints(conn.backend());
    let mut counts: Vec<i64> = vec![0; list.len()];
    let mut tables: Vec<&'static str> = Vec::new();
    for (i, (_, c)) in list.iter().enumerate() {
        match c {
            Count::Query(sql) => counts[i] = conn.count(sql)?,
            Count::Row(t, _) if !tables.contains(t) => tables.push(t),
            Count::Row(..) => {}
        }
    }
    for t in tables {
        let of_t: Vec<(usize, &String)> = list
            .iter()
            .enumerate()
            .filter_map(|(i, (_, c))| match c {
                Count::Row(x, pred) if *x == t => Some((i, pred)),
                _ => None,
            })
            .collect();
        let sums: Vec<String> = of_t
            .iter()
            .map(|(_, p)| {
                format!("CAST(COALESCE(SUM(CASE WHEN {p} THEN 1 ELSE 0 END), 0) AS TEXT)")
            })
            .collect();
        let sql = format!("SELECT {} AS s FROM {t}", sums.join(" || ',' || "));
        let text = conn.text(&sql)?;
        for ((i, _), n) in of_t.iter().zip(text.split(',')) {
            counts[*i] = n.trim().parse().unwrap_or(i64::MAX);
        }
    }
    let problems = list
        .iter()
        .zip(&counts)
        .filter(|(_, n)| **n > 0)
        .map(|((name, _), n)| format!("{name}: {n} violating row(s)"))
        .collect();
    Ok((list.len(), problems))
}
