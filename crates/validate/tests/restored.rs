//! Damaged values restored from the archive tree (#18 step 6, decisions.md §50), end to end on
//! real parts: a copy of the committed G1 fixture whose rows of four prayers are damaged with
//! rusqlite (an empty text, a text of non-UTF-8 bytes stored as a BLOB, a `created_at` of
//! `garbage`, an author naming nobody) is migrated with its real v1 tree on both backends.
//! Under `repair` v2 holds each witness file's value with a `repaired` finding naming the file,
//! the law balances, a re-run is "already migrated" and `thywill-validate` (deriving the
//! restorations on its own) passes, and fails once v2 holds the damaged value instead; under
//! `strict` nothing is restored; a decisions entry on a restored row is refused; and a G3
//! copy (authors by name) is restored the same way.

use std::path::{Path, PathBuf};

use thywill_pipeline::{
    analyze, migrate, AnalyzeOptions, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode,
    Report,
};
use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, V2Db};
use thywill_validator::v2db::V2Conn;
use thywill_validator::{validate, Options, Policy};

/// The prayer whose text the copy empties (its file: `…/2025_05_03_prayer_at_0458.txt`).
const EMPTY_TEXT: &str = "917e61fbc29a41f691d89fa4920c8d51";
/// The prayer whose text the copy stores as non-UTF-8 BLOB bytes.
const BAD_BYTES: &str = "e38633e216cd4f6c8cf3e01c09723b5b";
/// The prayer whose `created_at` the copy makes `garbage` (Submitted May 04 2025 at 09:14).
const BAD_TIME: &str = "dfee763081324238bf530aae5e727536";
/// The prayer whose author the copy points at nobody (its file names Pastor Dave).
const NO_AUTHOR: &str = "cb2c8888c79b4225895712c2af1ab5b1";
/// Pastor Dave's v2 id.
const PASTOR_DAVE: &str = "31b9e3b6885f46a39b9f7e63cd4a77dc";

fn fixture() -> PathBuf {
    g("g1-s")
}

fn g(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn tree() -> PathBuf {
    fixture().join("text_archives")
}

/// A copy of the fixture's database with the four prayers' rows damaged, in `dir`.
fn damaged_db(dir: &Path) -> PathBuf {
    let copy = dir.join("v1.db");
    std::fs::copy(fixture().join("v1.db"), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let set = |sql: &str, value: &dyn rusqlite::ToSql, id: &str| {
        let n = conn
            .execute(
                &format!("UPDATE prayer SET {sql} WHERE id = ?2"),
                rusqlite::params![value, id],
            )
            .unwrap();
        assert_eq!(n, 1, "{id}");
    };
    set("text = ?1", &"", EMPTY_TEXT);
    set("text = ?1", &b"I as\xb6\xff pray".to_vec(), BAD_BYTES);
    set("created_at = ?1", &"garbage", BAD_TIME);
    set(
        "author_id = ?1",
        &"00000000000000000000000000000bad",
        NO_AUTHOR,
    );
    copy
}

/// The request text of a prayer file of the fixture's tree (the lines after the header's
/// blank line, up to the next blank line).
fn file_text(rel: &str) -> String {
    file_text_in(&tree(), rel)
}

/// [`file_text`] of the tree at `root`.
fn file_text_in(root: &Path, rel: &str) -> String {
    let file = std::fs::read_to_string(root.join(rel)).unwrap();
    let body = file.split("\n\n").nth(1).unwrap();
    body.trim_end().to_string()
}

fn as_of() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

fn common(v1: &Path, policy: thywill_pipeline::Policy) -> CommonOptions {
    CommonOptions {
        v1_db: v1.to_path_buf(),
        archives_v1: Some(tree()),
        policy,
        as_of: Some(as_of()),
        progress: ProgressMode::Silent,
        ..Default::default()
    }
}

fn pipeline_policy(policy: Policy) -> thywill_pipeline::Policy {
    match policy {
        Policy::Repair => thywill_pipeline::Policy::Repair,
        Policy::Strict => thywill_pipeline::Policy::Strict,
    }
}

fn run(v1: &Path, url: &str, out: &Path, policy: Policy) -> Report {
    migrate(&MigrateOptions {
        common: common(v1, pipeline_policy(policy)),
        v2_url: url.to_string(),
        archives_v2: Some(out.to_path_buf()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("migrating {}: {e}", v1.display()))
}

/// The names of the validator's failed checks.
fn failed_checks(v1: &Path, url: &str, out: &Path, policy: Policy) -> Vec<String> {
    let report = validate(&Options {
        archives_v1: Some(tree()),
        archives_v2: Some(out.to_path_buf()),
        policy,
        ..Options::new(v1, url)
    })
    .unwrap();
    report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {:?}", c.name, c.details))
        .collect()
}

fn targets(dir: &Path) -> Vec<(String, Option<TempPgDb>)> {
    let mut v = vec![(format!("sqlite://{}", dir.join("v2.db").display()), None)];
    if let Some(db) = TempPgDb::create() {
        v.push((db.url.clone(), Some(db)));
    }
    v
}

/// The v2 prayer `id`, read back on either backend.
fn prayer(url: &str, id: &str) -> Option<thywill_v2::rows::Prayer> {
    let mut conn = V2Conn::open(&Target::parse(url).unwrap()).unwrap();
    let data = conn.read_all().unwrap();
    data.prayers.into_iter().find(|p| p.id == id)
}

/// The findings of the target's latest run on prayer `id`: (rule, decision, reason).
fn findings_on(url: &str, id: &str) -> Vec<(String, String, String)> {
    let mut db = V2Db::open(&Target::parse(url).unwrap()).unwrap();
    let run = db.runs().unwrap().pop().expect("a run");
    db.findings(&run.run_id)
        .unwrap()
        .into_iter()
        .filter(|f| f.v1_table == "prayer" && f.v1_key == id)
        .map(|f| (f.rule, f.decision, f.reason))
        .collect()
}

/// Asserts that prayer `id` has a `repaired` finding of `rule` naming `file`.
fn assert_restored(url: &str, id: &str, rule: &str, file: &str) {
    let all = findings_on(url, id);
    assert!(
        all.iter().any(|(r, d, why)| r == rule
            && d == "repaired"
            && why.contains(&format!("restored from the archive file {file}"))),
        "{url} {id}: {all:#?}"
    );
    assert!(all.iter().all(|(_, d, _)| d == "repaired"), "{all:#?}");
}

/// Under `repair` each damaged value comes back from its witness file on both backends, with
/// a `repaired` finding naming the file; the law balances (also in `migration_runs`); a re-run
/// is "already migrated"; the validator passes, and fails once v2 holds the damaged value.
#[test]
fn damaged_values_are_restored_from_the_archive_on_both_backends_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = damaged_db(dir.path());
    for (url, _pg) in targets(dir.path()) {
        let out = tempfile::tempdir().unwrap();
        let v2_tree = out.path().join("v2");
        let report = run(&v1, &url, &v2_tree, Policy::Repair);
        assert!(report.ok, "{url}");
        assert!(report.tables.values().all(|c| c.balances()), "{url}");
        let f = "prayers/2025/05/2025_05_03_prayer_at_0458.txt";
        assert_eq!(prayer(&url, EMPTY_TEXT).unwrap().text, file_text(f));
        assert_restored(&url, EMPTY_TEXT, "R-TEXT-LENGTH", f);
        let f = "prayers/2025/05/2025_05_03_prayer_at_1402.txt";
        assert_eq!(prayer(&url, BAD_BYTES).unwrap().text, file_text(f));
        assert_restored(&url, BAD_BYTES, "R-UTF8", f);
        let f = "prayers/2025/05/2025_05_04_prayer_at_0914.txt";
        let at = prayer(&url, BAD_TIME).unwrap().created_at;
        assert_eq!(at.to_string(), "2025-05-04 09:14:00", "{url}");
        assert_restored(&url, BAD_TIME, "R-TIME", f);
        let f = "prayers/2025/05/2025_05_05_prayer_at_0534.txt";
        assert_eq!(prayer(&url, NO_AUTHOR).unwrap().author_id, PASTOR_DAVE);
        assert_restored(&url, NO_AUTHOR, "R-ORPHAN", f);
        // the law of migration_runs counts them written
        let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
        let recorded = db.runs().unwrap().pop().unwrap();
        let counts: serde_json::Value = serde_json::from_str(&recorded.counts_json).unwrap();
        assert_eq!(
            counts["prayer"]["written"], report.tables["prayer"].written,
            "{counts}"
        );
        let before = db.content_fingerprint().unwrap();
        drop(db);
        assert_eq!(
            failed_checks(&v1, &url, &v2_tree, Policy::Repair),
            Vec::<String>::new()
        );

        let again = run(&v1, &url, &v2_tree, Policy::Repair);
        assert_eq!(again.outcome, "already_migrated", "{url}");
        let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
        assert_eq!(db.content_fingerprint().unwrap(), before, "{url}");
        drop(db);

        // v2 holding the damaged value (the U+FFFD text) instead fails the validation
        let mut conn = V2Conn::open(&Target::parse(&url).unwrap()).unwrap();
        conn.batch(&format!(
            "UPDATE prayers SET text = 'I as\u{FFFD}\u{FFFD} pray' WHERE id = '{BAD_BYTES}'"
        ))
        .unwrap();
        drop(conn);
        let failed = failed_checks(&v1, &url, &v2_tree, Policy::Repair);
        assert!(
            failed.iter().any(|c| c.starts_with("fidelity")),
            "{url}: {failed:#?}"
        );
    }
}

/// More of the fixture's tree than the four rows: the restorations the fixture itself holds
/// (a not-UTF-8 text, a time of no shape) are counted too, and `analyze` says so under either
/// policy.
#[test]
fn analyze_says_how_many_values_are_restorable() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = damaged_db(dir.path());
    for policy in [
        thywill_pipeline::Policy::Repair,
        thywill_pipeline::Policy::Strict,
    ] {
        let analysed = analyze(&AnalyzeOptions {
            common: common(&v1, policy),
        })
        .unwrap();
        let n = analysed.archives_recoverable.unwrap().values;
        // the four damaged rows and the fixture's own two
        assert_eq!(n, 6, "{policy:?}");
        assert!(
            analysed.summary().contains("6 values restorable"),
            "{}",
            analysed.summary()
        );
    }
}

/// Under `strict` nothing is restored: the empty text, the time and the author stay
/// quarantined as without the tree, the non-UTF-8 text is v2's U+FFFD repair, and the validator
/// passes.
#[test]
fn strict_restores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = damaged_db(dir.path());
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let v2_tree = dir.path().join("v2");
    let report = run(&v1, &url, &v2_tree, Policy::Strict);
    assert!(report.tables.values().all(|c| c.balances()));
    for id in [EMPTY_TEXT, BAD_TIME, NO_AUTHOR] {
        assert!(prayer(&url, id).is_none(), "{id} is quarantined");
        assert!(findings_on(&url, id)
            .iter()
            .any(|(_, d, _)| d == "quarantined"));
    }
    let text = prayer(&url, BAD_BYTES).unwrap().text;
    assert!(text.contains('\u{FFFD}'), "{text}");
    let none = |id| {
        findings_on(&url, id)
            .iter()
            .all(|(_, _, why)| !why.contains("restored"))
    };
    assert!([EMPTY_TEXT, BAD_BYTES, BAD_TIME, NO_AUTHOR]
        .into_iter()
        .all(none));
    assert_eq!(
        failed_checks(&v1, &url, &v2_tree, Policy::Strict),
        Vec::<String>::new()
    );
}

/// A decisions entry (§48) carrying the text of a row the tree restored is refused before
/// anything is written, as any entry on a row that is not quarantined: the tree settled it
/// (decisions.md §50.5). Without the tree the same entry applies.
#[test]
fn a_decision_on_a_restored_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = damaged_db(dir.path());
    let entry = format!(
        "[[decision]]\nrule = \"R-TEXT-LENGTH\"\ntable = \"prayer\"\nkey = \"{EMPTY_TEXT}\"\n\
         choice = \"carry\"\nnote = \"the member's words\"\ntext = \"Please pray for us.\"\n"
    );
    let decisions = thywill_pipeline::Decisions::parse("d.toml", entry.as_bytes()).unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let mut opts = MigrateOptions {
        common: common(&v1, thywill_pipeline::Policy::Repair),
        v2_url: url.clone(),
        ..Default::default()
    };
    opts.common.decisions = Some(decisions);
    let err = migrate(&opts).expect_err("the row is not quarantined");
    assert!(err.to_string().contains("not quarantined"), "{err}");
    assert!(!dir.path().join("v2.db").exists() || prayer(&url, EMPTY_TEXT).is_none());

    opts.common.archives_v1 = None;
    let report = migrate(&opts).unwrap();
    assert!(report.ok);
    assert_eq!(
        prayer(&url, EMPTY_TEXT).unwrap().text,
        "Please pray for us."
    );
}

/// G3 (authors by display name): a text of one NUL byte and a `created_at` of `soon` on one
/// prayer, an author name nobody holds on another, come back from their files on both
/// backends, and the validator passes.
#[test]
fn a_g3_prayer_by_name_is_restored_too() {
    const NUL_TEXT: &str = "0bc16b70c51644e49c2b86c592f04d12";
    const NAMELESS: &str = "28a8f43c490d457cb8e95c597abf99aa";
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.db");
    std::fs::copy(g("g3-s").join("v1.db"), &v1).unwrap();
    let conn = rusqlite::Connection::open(&v1).unwrap();
    conn.execute_batch(&format!(
        "UPDATE prayer SET text = x'00', created_at = 'soon' WHERE id = '{NUL_TEXT}';
         UPDATE prayer SET author_username = 'Nobody Atall' WHERE id = '{NAMELESS}';"
    ))
    .unwrap();
    drop(conn);
    let g3_tree = g("g3-s").join("text_archives");
    for (url, _pg) in targets(dir.path()) {
        let out = tempfile::tempdir().unwrap();
        let mut common = common(&v1, thywill_pipeline::Policy::Repair);
        common.archives_v1 = Some(g3_tree.clone());
        let report = migrate(&MigrateOptions {
            common,
            v2_url: url.clone(),
            archives_v2: Some(out.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap();
        assert!(report.tables.values().all(|c| c.balances()), "{url}");
        let f = "prayers/2025/06/2025_06_01_prayer_at_1555.txt";
        let p = prayer(&url, NUL_TEXT).unwrap();
        assert_eq!(p.text, file_text_in(&g3_tree, f));
        assert_eq!(p.created_at.to_string(), "2025-06-01 15:55:00");
        assert_restored(&url, NUL_TEXT, "R-UTF8", f);
        assert_restored(&url, NUL_TEXT, "R-TIME", f);
        let f = "prayers/2025/06/2025_06_01_prayer_at_1150.txt";
        assert_eq!(
            prayer(&url, NAMELESS).unwrap().author_id,
            "b41ea827aad95bdc9903d8f188a489f9",
            "Thomas Chen"
        );
        assert_restored(&url, NAMELESS, "R-ORPHAN", f);
        let report = validate(&Options {
            archives_v1: Some(g3_tree.clone()),
            archives_v2: Some(out.path().to_path_buf()),
            ..Options::new(&v1, &url)
        })
        .unwrap();
        let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
        assert!(failed.is_empty(), "{url}: {failed:#?}");
    }
}
