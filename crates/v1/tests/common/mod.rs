//! Small hand-made v1 files for the reader's own tests (the full fixtures come from thywill-fixturegen).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// A minimal G0-shaped file: `user`, `prayer`, `prayermark` with `rows` users.
pub fn minimal_g0(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join("v1.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE user (id VARCHAR NOT NULL, display_name VARCHAR NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id));
         CREATE TABLE prayer (id VARCHAR NOT NULL, author_id VARCHAR NOT NULL, text VARCHAR NOT NULL, project_tag VARCHAR,
             created_at DATETIME NOT NULL, flagged BOOLEAN NOT NULL, generated_prayer TEXT, PRIMARY KEY (id));
         CREATE TABLE prayermark (id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, prayer_id VARCHAR NOT NULL,
             created_at DATETIME NOT NULL, PRIMARY KEY (id));",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute(
            "INSERT INTO user VALUES (?1, ?2, '2025-06-29 19:33:00.000000')",
            rusqlite::params![
                format!("{:032x}", i + 1),
                format!("Member {i} with a long enough name to fill pages")
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    path
}

/// Inserts a user that the `user` table holds but its primary-key index does not, as real v1
/// files have it: the index is hidden from the schema while the row is inserted, then restored.
pub fn insert_user_missing_from_index(path: &Path, id: &str, name: &str) -> i64 {
    let conn = Connection::open(path).unwrap();
    let (table_sql, idx_root): (String, i64) = conn
        .query_row(
            "SELECT (SELECT sql FROM sqlite_master WHERE name='user'),
                    (SELECT rootpage FROM sqlite_master WHERE name='sqlite_autoindex_user_1')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let keyless = table_sql
        .replace(", \n\tPRIMARY KEY (id)", "")
        .replace(", PRIMARY KEY (id)", "");
    conn.execute_batch("PRAGMA writable_schema=ON").unwrap();
    conn.execute(
        "UPDATE sqlite_master SET sql=?1 WHERE name='user'",
        [&keyless],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM sqlite_master WHERE name='sqlite_autoindex_user_1'",
        [],
    )
    .unwrap();
    drop(conn);
    let conn = Connection::open(path).unwrap();
    conn.execute("INSERT INTO user (id, display_name, created_at) VALUES (?1, ?2, '2025-07-01 08:00:00.000000')", [id, name])
        .unwrap();
    let rowid = conn.last_insert_rowid();
    conn.execute_batch("PRAGMA writable_schema=ON").unwrap();
    conn.execute(
        "UPDATE sqlite_master SET sql=?1 WHERE name='user'",
        [&table_sql],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('index', 'sqlite_autoindex_user_1', 'user', ?1, NULL)",
        [idx_root],
    )
    .unwrap();
    drop(conn);
    rowid
}
