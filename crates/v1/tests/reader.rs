//! The reader on hand-made files: index damage, bad input, the read-only snapshot guarantee.

mod common;

use rusqlite::Connection;
use thywill_v1::{
    source_sha256, Generation, MarkRow, OpenOptions, SessionRow, UserRow, V1Database, V1Error,
    V1Value,
};

#[test]
fn a_row_missing_from_the_key_index_is_still_read_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::minimal_g0(dir.path(), 20);
    let hidden = "0123456789abcdef0123456789abcdef";
    let rowid = common::insert_user_missing_from_index(&path, hidden, "Hidden Hannah");

    // The way v1 itself looked the row up misses it.
    let conn = Connection::open(&path).unwrap();
    let found: Option<i64> = conn
        .query_row("SELECT rowid FROM user WHERE id = ?1", [hidden], |r| {
            r.get(0)
        })
        .ok();
    assert_eq!(
        found, None,
        "the trick must hide the row from indexed lookups"
    );
    drop(conn);

    let db = V1Database::open(&path).unwrap();
    assert_eq!(db.schema().generation, Generation::G0);
    let users: Vec<UserRow> = db.read_all().unwrap();
    assert_eq!(users.len(), 21);
    assert!(users.iter().any(|u| u.id == V1Value::text(hidden)));
    assert_eq!(db.table_counts().unwrap()["user"], 21);

    let report = db.integrity().unwrap();
    assert_eq!(report.missing_index_entries.len(), 1, "{report:?}");
    let entry = &report.missing_index_entries[0];
    assert_eq!((entry.table.as_str(), entry.rowid), ("user", rowid));

    let visible = db.pk_index_rowids("user").unwrap().unwrap();
    assert_eq!(visible.len(), 20);
    assert!(!visible.contains(&rowid));
}

fn open_err(path: &std::path::Path) -> V1Error {
    match V1Database::open(path) {
        Ok(_) => panic!("{} opened but should not have", path.display()),
        Err(e) => e,
    }
}

#[test]
fn every_bad_file_gets_its_own_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();

    let missing = p.join("nope.db");
    assert!(matches!(open_err(&missing), V1Error::Missing { .. }));
    assert!(open_err(&missing).to_string().contains("nope.db"));

    assert!(matches!(open_err(p), V1Error::IsDirectory { .. }));

    let empty = p.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(open_err(&empty), V1Error::Empty { .. }));

    let text = p.join("notes.txt");
    std::fs::write(&text, "Prayer list for Sunday\nMary, John\n").unwrap();
    let e = open_err(&text);
    assert!(matches!(e, V1Error::NotSqlite { .. }), "{e}");
    assert!(e.to_string().contains("notes.txt"));

    let other = p.join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE recipe (id INTEGER PRIMARY KEY, title TEXT)")
        .unwrap();
    let e = open_err(&other);
    assert!(matches!(e, V1Error::UnrecognisedSchema { .. }), "{e}");
    assert!(e.to_string().contains("recipe"), "{e}");

    let nocol = p.join("nocol.db");
    Connection::open(&nocol)
        .unwrap()
        .execute_batch(
            "CREATE TABLE user (id VARCHAR NOT NULL PRIMARY KEY, display_name VARCHAR NOT NULL);
             CREATE TABLE prayer (id VARCHAR NOT NULL PRIMARY KEY, author_id VARCHAR, text VARCHAR, created_at DATETIME);",
        )
        .unwrap();
    match open_err(&nocol) {
        V1Error::MissingColumn { table, column, .. } => {
            assert_eq!((table.as_str(), column.as_str()), ("user", "created_at"))
        }
        e => panic!("wrong error {e}"),
    }
}

#[test]
fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::minimal_g0(dir.path(), 2000);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    let e = open_err(&path);
    assert!(matches!(e, V1Error::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("truncated"));
}

#[test]
fn damaged_table_pages_are_an_error_not_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::minimal_g0(dir.path(), 2000);
    let page_size: u64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: u64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name='user'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Scribble over the user table's root page (an interior page with 2000 rows).
    let mut bytes = std::fs::read(&path).unwrap();
    let start = ((root - 1) * page_size) as usize;
    for b in &mut bytes[start + 8..start + 200] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let result = V1Database::open(&path).and_then(|db| {
        db.integrity()?;
        db.read_all::<UserRow>().map(|_| ())
    });
    match result {
        Err(V1Error::Damaged { errors, .. }) => assert!(!errors.is_empty()),
        other => panic!("expected Damaged, got {other:?}", other = other.err()),
    }
}

#[test]
fn a_file_locked_by_a_writer_is_reported_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::minimal_g0(dir.path(), 5);
    let writer = Connection::open(&path).unwrap();
    writer.execute_batch("PRAGMA journal_mode=DELETE; BEGIN EXCLUSIVE; INSERT INTO user VALUES ('ff', 'x', 'y');").unwrap();
    let opts = OpenOptions {
        busy_timeout: std::time::Duration::from_millis(200),
    };
    let e = match V1Database::open_with(&path, &opts).and_then(|db| db.read_all::<UserRow>()) {
        Err(e) => e,
        Ok(_) => panic!("read through an exclusive lock"),
    };
    assert!(matches!(e, V1Error::Locked { .. }), "{e}");
    assert!(e.to_string().contains("locked"));
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_live_wal_database_is_read_as_one_snapshot_and_never_modified() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::minimal_g0(dir.path(), 50);
    let writer = Connection::open(&path).unwrap();
    writer
        .execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    writer
        .execute(
            "INSERT INTO user VALUES ('aa01', 'Before', '2025-01-01 00:00:00')",
            [],
        )
        .unwrap();

    let wal = path.with_file_name("v1.db-wal");
    let db = V1Database::open(&path).unwrap();
    let first: Vec<UserRow> = db.read_all().unwrap();
    let before = (sha(&path), sha(&wal));

    // Another process keeps writing; the reader's snapshot must not move.
    for i in 0..20 {
        writer
            .execute(
                "INSERT INTO user VALUES (?1, 'During', '2025-01-01 00:00:00')",
                [format!("bb{i:02}")],
            )
            .unwrap();
        let again: Vec<UserRow> = db.read_all().unwrap();
        assert_eq!(again.len(), first.len(), "snapshot moved after write {i}");
    }
    assert_eq!(db.table_counts().unwrap()["user"], 51);
    drop(db);
    let after_db = sha(&path);
    assert_eq!(before.0, after_db, "the reader changed the main file");
    // The -wal grew only by the writer's own frames: replay the comparison without the writer.
    let wal_before_reader = sha(&wal);
    let db = V1Database::open(&path).unwrap();
    let _ = db.read_all::<UserRow>().unwrap();
    let _ = db.integrity().unwrap();
    drop(db);
    assert_eq!(sha(&wal), wal_before_reader, "the reader changed the -wal");
    assert_eq!(sha(&path), after_db);
    assert!(source_sha256(&path).unwrap().len() == 64);
}

fn sha(p: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn non_utf8_text_and_blob_keys_are_kept_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::minimal_g0(dir.path(), 1);
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO user VALUES (?1, CAST(?2 AS TEXT), '2025-06-29 19:33:00')",
        rusqlite::params![vec![0xabu8, 0xcd], vec![0x4du8, 0xff, 0x61]],
    )
    .unwrap();
    drop(conn);
    let db = V1Database::open(&path).unwrap();
    let users: Vec<UserRow> = db.read_all().unwrap();
    let odd = users
        .iter()
        .find(|u| matches!(u.id, V1Value::Blob(_)))
        .unwrap();
    assert_eq!(odd.id.key_text().unwrap(), "x'abcd'");
    assert!(
        odd.display_name.is_invalid_utf8_text(),
        "{:?}",
        odd.display_name
    );
    let json = db.row_json("user", odd.rowid).unwrap().unwrap();
    assert_eq!(json["id"]["hex"], "abcd");
}

#[test]
fn a_row_fetched_by_rowid_equals_the_streamed_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::minimal_g0(dir.path(), 5);
    let hidden = "0123456789abcdef0123456789abcdef";
    let rowid = common::insert_user_missing_from_index(&path, hidden, "Hidden Hannah");
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO prayermark VALUES ('m1', ?1, 'p1', '2025-06-29 19:33:00')",
        [hidden],
    )
    .unwrap();
    drop(conn);
    let db = V1Database::open(&path).unwrap();
    let users: Vec<UserRow> = db.read_all().unwrap();
    for u in &users {
        assert_eq!(
            db.row_by_rowid::<UserRow>(u.rowid).unwrap().as_ref(),
            Some(u)
        );
    }
    let hidden_row = db.row_by_rowid::<UserRow>(rowid).unwrap().unwrap();
    assert_eq!(
        hidden_row.id,
        V1Value::text(hidden),
        "reached without the key index"
    );
    assert_eq!(db.row_by_rowid::<UserRow>(rowid + 1000).unwrap(), None);
    let marks: Vec<MarkRow> = db.read_all().unwrap();
    assert_eq!(marks.len(), 1);
    let mark = db.row_by_rowid::<MarkRow>(marks[0].rowid).unwrap().unwrap();
    assert_eq!(mark, marks[0]);
    assert_eq!(
        mark.text_file_path,
        V1Value::Null,
        "a column the file lacks reads as NULL"
    );
    assert_eq!(
        db.row_by_rowid::<SessionRow>(1).unwrap(),
        None,
        "no such table"
    );
}
