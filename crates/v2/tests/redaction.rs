//! The password never appears: Display, Debug, connection errors (unreachable server, unknown
//! database), database errors.

use thywill_v2::{Target, V2Db};

const SECRET: &str = "Sup3rS3cretPw";

fn assert_clean(s: &str) {
    assert!(!s.contains(SECRET), "password leaked: {s}");
    assert!(!s.contains("Sup3rS3cret%50w"), "password leaked: {s}");
}

#[test]
fn display_and_debug_are_redacted() {
    for url in [
        format!("postgresql://thywill:{SECRET}@127.0.0.1:5432/v2"),
        "postgres://thywill:Sup3rS3cret%50w@db.example/v2?sslmode=disable".to_string(),
        format!("postgresql://thywill@127.0.0.1/v2?password={SECRET}"),
    ] {
        let t = Target::parse(&url).unwrap();
        assert_clean(&t.to_string());
        assert_clean(&format!("{t:?}"));
        assert!(t.to_string().contains("***"), "{t}");
    }
    let e = Target::parse(&format!("mysql://u:{SECRET}@h/db")).unwrap_err();
    assert_clean(&e.to_string());
    assert_clean(&format!("{e:?}"));
}

#[test]
fn connection_failures_are_redacted_and_exit_3() {
    let mut urls = vec![
        // Nothing listens on port 1: unreachable.
        format!("postgresql://thywill:{SECRET}@127.0.0.1:1/v2"),
        format!("postgresql://thywill@127.0.0.1:1/v2?password={SECRET}&connect_timeout=2"),
        // libpq reports the host it could not resolve: put the password there too.
        format!(
            "postgresql://thywill:{SECRET}@{}.invalid/v2?connect_timeout=2",
            SECRET.to_lowercase()
        ),
    ];
    if let Some(base) = thywill_v2::testing::pg_admin_url() {
        // A reachable server, a database that does not exist.
        let with_pw = base.replacen("://", &format!("://postgres:{SECRET}@"), 1);
        let with_pw = if base.contains('@') {
            base.replacen("@", &format!(":{SECRET}@"), 1)
        } else {
            with_pw
        };
        urls.push(thywill_v2::testing::with_database(&with_pw, "no_such_db_x"));
    }
    for url in urls {
        let t = Target::parse(&url).unwrap();
        let e = V2Db::open(&t).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert_clean(&e.to_string());
        assert_clean(&format!("{e:?}"));
        assert!(e.to_string().contains("***"), "{e}");
    }
}

#[test]
fn sqlite_open_failures_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text that is long enough",
    )
    .unwrap();
    for p in [text, dir.path().to_path_buf()] {
        let t = Target::parse(&format!("sqlite://{}", p.display())).unwrap();
        let e = V2Db::open(&t).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    }
}
