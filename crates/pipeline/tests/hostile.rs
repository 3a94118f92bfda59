//! Hostile v1 text through the whole migration on both backends: a NUL byte in a prayer, a 1 MB
//! prayer, a member name with a newline, quotes and a right-to-left mark. The run succeeds, each
//! row ends where its rule says, and the archives render.

mod support;

use rusqlite::Connection;
use support::{fixture, options, run, TestTarget};
use thywill_pipeline::Policy;

/// A copy of g1-s made hostile; returns the copy and the id of the prayer given a NUL byte.
fn hostile_copy(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let v1 = dir.join("v1.db");
    std::fs::copy(fixture("g1-s").join("v1.db"), &v1).unwrap();
    let c = Connection::open(&v1).unwrap();
    let (author, prayer): (String, String) = c
        .query_row(
            "SELECT p.author_id, p.id FROM prayer p JOIN user u ON u.id = p.author_id
             WHERE length(p.text) BETWEEN 40 AND 400 AND p.id NOT IN (SELECT prayer_id FROM prayer_attributes)
             ORDER BY p.rowid LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    c.execute("UPDATE prayer SET text = 'Please pray' || char(0) || ' for my family this week' WHERE id = ?1", [&prayer])
        .unwrap();
    c.execute(
        "INSERT INTO prayer (id, author_id, text, generated_prayer, project_tag, created_at, flagged, target_audience, text_file_path)
         VALUES ('00000000000000000000000000000abc', ?1, ?2, NULL, NULL, '2025-07-01 10:00:00.000000', 0, 'all', NULL)",
        rusqlite::params![author, "long prayer ".repeat(90_000)],
    )
    .unwrap();
    c.execute(
        "UPDATE user SET display_name = 'Ann' || char(10) || 'Marie \"Quote\" O''Brien ' || char(8207) WHERE id = ?1",
        [&author],
    )
    .unwrap();
    (v1, prayer)
}

#[test]
fn hostile_text_is_repaired_or_quarantined_never_fatal() {
    for target in TestTarget::all() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, nul_prayer) = hostile_copy(dir.path());
        let mut opts = options("g1-s", target.url(), Policy::Repair);
        opts.common.v1_db = v1;
        opts.archives_v2 = Some(dir.path().join("text_archives_v2"));
        let report = run(&opts);
        assert!(report.ok, "{}", target.url());
        let has = |rule: &str, key: &str| {
            report
                .findings
                .iter()
                .map(Result::unwrap)
                .any(|f| f.rule == rule && f.v1_key == key)
        };
        assert!(
            has("R-TEXT-LENGTH", "00000000000000000000000000000abc"),
            "1 MB prayer not quarantined"
        );
        // That very row's R-UTF8 (the fixture has other R-UTF8 prayers of its own).
        assert!(
            has("R-UTF8", &nul_prayer),
            "NUL in {nul_prayer} not repaired"
        );
        assert!(
            report
                .findings
                .iter()
                .map(Result::unwrap)
                .any(|f| f.rule == "R-USER-NAME" && f.reason.contains("Ann")),
            "name not repaired"
        );

        let mut db = target.open();
        let mut names = Vec::new();
        db.read_table::<thywill_v2::rows::User, thywill_v2::Error, _>(|u| {
            names.push(u.display_name);
            Ok(())
        })
        .unwrap();
        let ann = names
            .iter()
            .find(|n| n.starts_with("Ann"))
            .expect("the repaired member is written");
        assert!(
            !ann.contains('\n') && ann.contains("\"Quote\" O'Brien"),
            "{ann:?}"
        );
        let mut texts = Vec::new();
        db.read_table::<thywill_v2::rows::Prayer, thywill_v2::Error, _>(|p| {
            texts.push(p.text);
            Ok(())
        })
        .unwrap();
        assert!(texts
            .iter()
            .any(|t| t == "Please pray\u{FFFD} for my family this week"));
        assert!(texts
            .iter()
            .all(|t| !t.contains('\0') && t.chars().count() <= 5000));
    }
}
