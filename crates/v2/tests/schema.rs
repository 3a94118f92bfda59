//! The schema: both backends describe the same tables, columns, nullability, keys, uniques, checks,
//! foreign keys and indexes; the `table!` definitions list exactly the migrations' columns; schema
//! creation and upgrade are idempotent.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::sqlite::Sqlite;
use thywill_v2::schema::*;
use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, V2Db, APP_TABLES, BOOKKEEPING_TABLES};

/// A backend-neutral description of one table.
#[derive(Debug, Default, PartialEq, Eq)]
struct TableDesc {
    /// name → (declared varchar length or "-", not null, has default)
    columns: BTreeMap<String, (String, bool, bool)>,
    primary_key: Vec<String>,
    uniques: BTreeSet<Vec<String>>,
    checks: BTreeSet<String>,
    /// (columns, referenced table, referenced columns, on delete)
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>, String)>,
    /// name → partial
    indexes: BTreeMap<String, bool>,
}

#[derive(QueryableByName, Debug)]
struct Row4 {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Nullable<Text>)]
    b: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    d: Option<String>,
}

fn split(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

fn describe_pg(c: &mut PgConnection, table: &str) -> TableDesc {
    let mut q = |sql: &str| -> Vec<Row4> {
        diesel::sql_query(sql)
            .bind::<Text, _>(table)
            .load(c)
            .unwrap()
    };
    let mut d = TableDesc::default();
    for r in q(
        "SELECT column_name::text AS a, character_maximum_length::text AS b,
                       is_nullable::text AS c, column_default::text AS d
                  FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1",
    ) {
        let serial = r.d.as_deref().is_some_and(|x| x.starts_with("nextval"));
        d.columns.insert(
            r.a,
            (
                r.b.unwrap_or("-".into()),
                r.c.as_deref() == Some("NO"),
                r.d.is_some() && !serial,
            ),
        );
    }
    let cons = q("SELECT c.conname::text AS a, c.contype::text AS b,
                         (SELECT string_agg(a.attname, ',' ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n) AS c,
                         CASE WHEN c.contype = 'f' THEN
                           (SELECT f.relname::text FROM pg_class f WHERE f.oid = c.confrelid) || ':' ||
                           (SELECT string_agg(a.attname, ',' ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                              JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n) || ':' ||
                           c.confdeltype::text END AS d
                    FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
                   WHERE t.relname = $1");
    for r in cons {
        match r.b.as_deref() {
            Some("p") => d.primary_key = split(&r.c),
            Some("u") => {
                d.uniques.insert(split(&r.c));
            }
            Some("c") => {
                d.checks.insert(r.a);
            }
            Some("f") => {
                let dd = r.d.unwrap();
                let parts: Vec<&str> = dd.split(':').collect();
                let action = match parts[2] {
                    "c" => "CASCADE",
                    "n" => "SET NULL",
                    "a" => "NO ACTION",
                    "r" => "RESTRICT",
                    other => other,
                };
                d.foreign_keys.insert((
                    split(&r.c),
                    parts[0].into(),
                    parts[1].split(',').map(String::from).collect(),
                    action.into(),
                ));
            }
            _ => {}
        }
    }
    for r in q(
        "SELECT i.indexrelid::regclass::text AS a, (i.indpred IS NOT NULL)::text AS b,
                       NULL AS c, NULL AS d
                  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                 WHERE t.relname = $1
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                                   AND k.contype IN ('p', 'u'))",
    ) {
        d.indexes.insert(r.a, r.b.as_deref() == Some("true"));
    }
    d
}

fn describe_sqlite(c: &mut SqliteConnection, table: &str) -> TableDesc {
    let q = |c: &mut SqliteConnection, sql: &str, bind: &str| -> Vec<Row4> {
        diesel::sql_query(sql)
            .bind::<Text, _>(bind)
            .load(c)
            .unwrap()
    };
    let mut d = TableDesc::default();
    let mut pk: Vec<(String, String)> = Vec::new();
    for r in q(
        c,
        "SELECT name AS a, type AS b, CAST(\"notnull\" AS TEXT) AS c,
                          dflt_value AS d FROM pragma_table_info(?)",
        table,
    ) {
        let ty = r.b.unwrap_or_default().to_uppercase();
        let len = ty
            .strip_prefix("VARCHAR(")
            .and_then(|x| x.strip_suffix(')'))
            .map_or("-".to_string(), String::from);
        d.columns.insert(
            r.a.clone(),
            (len, r.c.as_deref() == Some("1"), r.d.is_some()),
        );
    }
    for r in q(
        c,
        "SELECT name AS a, CAST(pk AS TEXT) AS b, NULL AS c, NULL AS d
                     FROM pragma_table_info(?) WHERE pk > 0",
        table,
    ) {
        pk.push((r.b.unwrap(), r.a));
    }
    pk.sort();
    d.primary_key = pk.into_iter().map(|x| x.1).collect();
    for idx in q(
        c,
        "SELECT name AS a, origin AS b, CAST(partial AS TEXT) AS c, NULL AS d
                       FROM pragma_index_list(?)",
        table,
    ) {
        let cols: Vec<String> = q(
            c,
            "SELECT name AS a, NULL AS b, NULL AS c, NULL AS d
                                         FROM pragma_index_info(?) ORDER BY seqno",
            &idx.a,
        )
        .into_iter()
        .map(|r| r.a)
        .collect();
        match idx.b.as_deref() {
            Some("u") => {
                d.uniques.insert(cols);
            }
            Some("c") => {
                d.indexes.insert(idx.a, idx.c.as_deref() == Some("1"));
            }
            _ => {}
        }
    }
    let mut fks: BTreeMap<String, (Vec<String>, String, Vec<String>, String)> = BTreeMap::new();
    for r in q(
        c,
        "SELECT CAST(id AS TEXT) AS a, \"table\" AS b, \"from\" || ':' || \"to\" AS c,
                          on_delete AS d FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        table,
    ) {
        let e = fks.entry(r.a).or_default();
        let cc = r.c.unwrap();
        let (from, to) = cc.split_once(':').unwrap();
        e.0.push(from.into());
        e.1 = r.b.unwrap();
        e.2.push(to.into());
        e.3 = r.d.unwrap();
    }
    d.foreign_keys = fks.into_values().collect();
    let sql: Vec<Row4> = q(
        c,
        "SELECT sql AS a, NULL AS b, NULL AS c, NULL AS d FROM sqlite_master
                                WHERE type = 'table' AND name = ?",
        table,
    );
    let sql = &sql[0].a;
    for part in sql.split("CONSTRAINT ").skip(1) {
        let mut words = part.split_whitespace();
        let name = words.next().unwrap();
        if words.next() == Some("CHECK") {
            d.checks.insert(name.to_string());
        }
    }
    d
}

fn all_tables() -> Vec<&'static str> {
    APP_TABLES
        .iter()
        .chain(BOOKKEEPING_TABLES.iter())
        .copied()
        .collect()
}

fn sqlite_db() -> (tempfile::TempDir, SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = Target::parse(&format!("sqlite://{}", path.display())).unwrap();
    V2Db::open(&t).unwrap().ensure_schema().unwrap();
    let c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    (dir, c)
}

fn table_names_sqlite(c: &mut SqliteConnection) -> BTreeSet<String> {
    diesel::sql_query(
        "SELECT name AS a, NULL AS b, NULL AS c, NULL AS d FROM sqlite_master
          WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?",
    )
    .bind::<Text, _>("__diesel_schema_migrations")
    .load::<Row4>(c)
    .unwrap()
    .into_iter()
    .map(|r| r.a)
    .collect()
}

#[test]
fn both_backends_describe_the_same_schema() {
    let (_dir, mut sc) = sqlite_db();
    let names: BTreeSet<String> = all_tables().into_iter().map(String::from).collect();
    assert_eq!(table_names_sqlite(&mut sc), names);
    let sqlite: BTreeMap<&str, TableDesc> = all_tables()
        .into_iter()
        .map(|t| (t, describe_sqlite(&mut sc, t)))
        .collect();
    // Spot checks of the spec on the SQLite side (the PostgreSQL side must then equal it).
    let users = &sqlite["users"];
    assert_eq!(users.columns["display_name"], ("100".into(), true, false));
    assert_eq!(
        users.columns["religious_preference"],
        ("50".into(), true, true)
    );
    assert!(users.indexes["idx_users_active"]);
    // spec/v2.md: the unique key leads with prayer_id, so there is no separate (prayer_id) index.
    let mark_indexes: Vec<&str> = sqlite["prayer_marks"]
        .indexes
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        mark_indexes,
        [
            "idx_prayer_marks_marked_at",
            "idx_prayer_marks_user_marked_at"
        ]
    );
    assert!(sqlite["prayer_marks"].uniques.contains(&vec![
        "prayer_id".into(),
        "user_id".into(),
        "marked_at".into()
    ]));
    assert_eq!(sqlite["user_roles"].primary_key, vec!["user_id", "role"]);
    assert!(sqlite["prayers"].checks.contains("prayers_answered_check"));
    assert!(sqlite["prayers"].foreign_keys.contains(&(
        vec!["author_id".into()],
        "users".into(),
        vec!["id".into()],
        "CASCADE".into()
    )));

    let Some(pg) = TempPgDb::create() else { return };
    V2Db::open(&Target::parse(&pg.url).unwrap())
        .unwrap()
        .ensure_schema()
        .unwrap();
    let mut pc = PgConnection::establish(&pg.url).unwrap();
    for t in all_tables() {
        assert_eq!(describe_pg(&mut pc, t), sqlite[t], "table {t}");
    }
}

/// The column names diesel's `table!` knows, from the SQL it generates.
fn diesel_columns<T>(q: T) -> BTreeSet<String>
where
    T: diesel::query_builder::QueryFragment<Sqlite>,
{
    let sql = diesel::debug_query::<Sqlite, _>(&q).to_string();
    let cols = sql
        .trim_start_matches("SELECT ")
        .split(" FROM ")
        .next()
        .unwrap()
        .to_string();
    cols.split(", ")
        .map(|c| c.rsplit('.').next().unwrap().trim_matches('`').to_string())
        .collect()
}

#[test]
fn table_definitions_match_the_migrations() {
    let diesel_tables: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "users",
            diesel_columns(users::table.select(users::all_columns)),
        ),
        (
            "prayers",
            diesel_columns(prayers::table.select(prayers::all_columns)),
        ),
        (
            "prayer_marks",
            diesel_columns(prayer_marks::table.select(prayer_marks::all_columns)),
        ),
        (
            "user_roles",
            diesel_columns(user_roles::table.select(user_roles::all_columns)),
        ),
        (
            "invites",
            diesel_columns(invites::table.select(invites::all_columns)),
        ),
        (
            "sessions",
            diesel_columns(sessions::table.select(sessions::all_columns)),
        ),
        (
            "content_flags",
            diesel_columns(content_flags::table.select(content_flags::all_columns)),
        ),
        (
            "migration_runs",
            diesel_columns(migration_runs::table.select(migration_runs::all_columns)),
        ),
        (
            "migration_id_map",
            diesel_columns(migration_id_map::table.select(migration_id_map::all_columns)),
        ),
        (
            "migration_findings",
            diesel_columns(migration_findings::table.select(migration_findings::all_columns)),
        ),
        (
            "migration_run_rows",
            diesel_columns(migration_run_rows::table.select(migration_run_rows::all_columns)),
        ),
    ];
    assert_eq!(diesel_tables.len(), all_tables().len());
    let (_dir, mut sc) = sqlite_db();
    for (t, cols) in &diesel_tables {
        let have: BTreeSet<String> = describe_sqlite(&mut sc, t).columns.into_keys().collect();
        assert_eq!(&have, cols, "sqlite {t}");
    }
    let Some(pg) = TempPgDb::create() else { return };
    V2Db::open(&Target::parse(&pg.url).unwrap())
        .unwrap()
        .ensure_schema()
        .unwrap();
    let mut pc = PgConnection::establish(&pg.url).unwrap();
    for (t, cols) in &diesel_tables {
        let have: BTreeSet<String> = describe_pg(&mut pc, t).columns.into_keys().collect();
        assert_eq!(&have, cols, "postgres {t}");
    }
}

#[test]
fn schema_creation_and_upgrade_are_idempotent() {
    for t in common::targets() {
        let mut db = V2Db::open(&t.target).unwrap();
        db.ensure_schema().unwrap();
        db.ensure_schema().unwrap();
        common::load_sample(&mut db, &common::sample(1), "sha", Default::default()).unwrap();
        let before = common::dump(&mut db);
        let mut again = V2Db::open(&t.target).unwrap();
        again.ensure_schema().unwrap();
        assert_eq!(common::dump(&mut again), before, "{}", t.label);
    }
}
