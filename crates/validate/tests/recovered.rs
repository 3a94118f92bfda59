//! The archive tree as a second witness (#18, decisions.md §47), end to end on real parts: a copy
//! of the committed G1 fixture whose database lost prayers and marks that its v1 archive tree
//! still holds is migrated with `thywill_pipeline::migrate` on both backends; the lost records
//! are recovered under `repair` (and only there), the law balances with `recovered`, a re-run is
//! a no-op, a hostile tree recovers nothing it should not, and `thywill-validate`, deriving the
//! recovered records on its own, passes.

use std::path::{Path, PathBuf};

use thywill_pipeline::report::ReportFinding;
use thywill_pipeline::{
    analyze, migrate, AnalyzeOptions, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode,
    Report,
};
use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, V2Db};
use thywill_validator::{validate, Options, Policy};

/// Prayers of the fixture whose rows (and marks) the damaged copy deletes; their files stay.
const LOST_PRAYERS: [&str; 2] = [
    "fc9c8f55eb644f518981d2297ed9e639",
    "16ffe8e205b041baa8111075783b0ba3",
];
/// The fixture's own archive-only prayer (an injected file without a row).
const ARCHIVE_ONLY: &str = "c2731115688143bb91bff543378b568c";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g1-s")
}

fn as_of() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

/// A copy of the fixture's database that lost [`LOST_PRAYERS`] (rows, marks, attributes) and
/// every 50th mark, in `dir`.
fn damaged_db(dir: &Path) -> PathBuf {
    let copy = dir.join("v1.db");
    std::fs::copy(fixture().join("v1.db"), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    for id in LOST_PRAYERS {
        for table in ["prayermark", "prayer_attributes"] {
            conn.execute(&format!("DELETE FROM {table} WHERE prayer_id = ?1"), [id])
                .unwrap();
        }
        conn.execute("DELETE FROM prayer WHERE id = ?1", [id])
            .unwrap();
    }
    conn.execute_batch("DELETE FROM prayermark WHERE rowid % 50 = 0")
        .unwrap();
    copy
}

fn common(v1: &Path, tree: &Path, policy: thywill_pipeline::Policy) -> CommonOptions {
    CommonOptions {
        v1_db: v1.to_path_buf(),
        archives_v1: Some(tree.to_path_buf()),
        policy,
        as_of: Some(as_of()),
        progress: ProgressMode::Silent,
        ..Default::default()
    }
}

/// Migrates `v1` with the tree `tree` into `url` (v2 archives into `out`).
fn run(v1: &Path, tree: &Path, url: &str, out: &Path, policy: Policy) -> Report {
    let policy = match policy {
        Policy::Repair => thywill_pipeline::Policy::Repair,
        Policy::Strict => thywill_pipeline::Policy::Strict,
    };
    migrate(&MigrateOptions {
        common: common(v1, tree, policy),
        v2_url: url.to_string(),
        archives_v2: Some(out.to_path_buf()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("migrating {}: {e}", v1.display()))
}

/// Validates the migration; every check must pass.
fn assert_valid(v1: &Path, tree: &Path, url: &str, out: &Path, policy: Policy) {
    let report = validate(&Options {
        archives_v1: Some(tree.to_path_buf()),
        archives_v2: Some(out.to_path_buf()),
        policy,
        ..Options::new(v1, url)
    })
    .unwrap();
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{url}: {failed:#?}");
}

/// The targets: a SQLite file, and a PostgreSQL database when `THYWILL_TEST_PG_URL` is set.
fn targets(dir: &Path) -> Vec<(String, Option<TempPgDb>)> {
    let mut v = vec![(format!("sqlite://{}", dir.join("v2.db").display()), None)];
    if let Some(db) = TempPgDb::create() {
        v.push((db.url.clone(), Some(db)));
    }
    v
}

fn recovered_findings<'a>(r: &'a Report, table: &str) -> Vec<&'a ReportFinding> {
    r.archive_findings
        .iter()
        .filter(|f| f.decision == "recovered" && f.v1_table == table)
        .collect()
}

/// The lost prayers and marks come back from the tree on both backends, each with its
/// `R-ARCHIVE-ONLY` / `recovered` finding naming its file; the law balances with `recovered`,
/// also in `migration_runs`; a re-run is `already_migrated` with the same content; the validator
/// passes.
#[test]
fn lost_prayers_and_marks_are_recovered_on_both_backends_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = damaged_db(dir.path());
    let tree = fixture().join("text_archives");
    let mut fingerprints = Vec::new();
    for (url, _pg) in targets(dir.path()) {
        let out = tempfile::tempdir().unwrap();
        let v2_tree = out.path().join("v2");
        let report = run(&v1, &tree, &url, &v2_tree, Policy::Repair);
        let (prayers, marks) = (&report.tables["prayer"], &report.tables["prayermark"]);
        assert_eq!(prayers.recovered, 3, "{url}: {prayers:?}");
        assert!(marks.recovered > 50, "{url}: {marks:?}");
        assert!(prayers.balances() && marks.balances());
        let listed = recovered_findings(&report, "prayer");
        for id in LOST_PRAYERS.iter().chain([&ARCHIVE_ONLY]) {
            let f = listed.iter().find(|f| f.v1_key == *id).expect("recovered");
            assert_eq!(f.rule, "R-ARCHIVE-ONLY");
            assert!(f.reason.contains("prayers/2025/"), "{}", f.reason);
        }
        let mark_findings = recovered_findings(&report, "prayermark");
        assert_eq!(mark_findings.len() as u64, marks.recovered);
        assert!(mark_findings.iter().all(|f| f.reason.contains(" line ")));
        let recoverable = report.archives_recoverable.expect("the tree was given");
        assert_eq!(
            (recoverable.prayers, recoverable.marks),
            (3, marks.recovered)
        );

        let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
        let recorded = db.runs().unwrap().pop().expect("the run is recorded");
        let counts: serde_json::Value = serde_json::from_str(&recorded.counts_json).unwrap();
        assert_eq!(counts["prayer"]["recovered"], 3, "{counts}");
        let before = db.content_fingerprint().unwrap();
        drop(db);
        assert_valid(&v1, &tree, &url, &v2_tree, Policy::Repair);

        let manifest = std::fs::read(v2_tree.join("MANIFEST.sha256")).unwrap();
        let again = run(&v1, &tree, &url, &v2_tree, Policy::Repair);
        assert_eq!(again.outcome, "already_migrated");
        let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
        assert_eq!(db.content_fingerprint().unwrap(), before, "{url}");
        assert_eq!(
            std::fs::read(v2_tree.join("MANIFEST.sha256")).unwrap(),
            manifest
        );
        fingerprints.push((before, manifest));
    }
    // A fresh migration gives the same rows (the recovered ids included) and the same archives.
    let fresh = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", fresh.path().join("v2.db").display());
    run(&v1, &tree, &url, &fresh.path().join("v2"), Policy::Repair);
    let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
    let manifest = std::fs::read(fresh.path().join("v2/MANIFEST.sha256")).unwrap();
    assert_eq!(
        fingerprints[0],
        (db.content_fingerprint().unwrap(), manifest)
    );
}

/// The recovered prayer's values come from its file: author, text, generated prayer, the time
/// of its `Submitted` line; its marks are its `prayed this prayer` lines.
#[test]
fn a_recovered_prayer_holds_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = damaged_db(dir.path());
    let tree = fixture().join("text_archives");
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let report = run(&v1, &tree, &url, &dir.path().join("v2"), Policy::Repair);
    assert!(report.ok);
    let v2 = rusqlite::Connection::open(dir.path().join("v2.db")).unwrap();
    let (text, generated, created, author): (String, Option<String>, String, String) = v2
        .query_row(
            "SELECT p.text, p.generated_prayer, p.created_at, u.display_name FROM prayers p
             JOIN users u ON u.id = p.author_id WHERE p.id = ?1",
            [LOST_PRAYERS[0]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(author, "Pastor Dave");
    assert_eq!(text, "Lifting up reconciliation with my brother.");
    assert!(generated.unwrap().starts_with("Heavenly Father"));
    assert!(created.starts_with("2025-05-02 09:43:00"), "{created}");
    let file = std::fs::read_to_string(tree.join("prayers/2025/05/2025_05_02_prayer_at_0943.txt"))
        .unwrap();
    let lines = file.matches(" prayed this prayer").count() as i64;
    let marks: i64 = v2
        .query_row(
            "SELECT count(*) FROM prayer_marks WHERE prayer_id = ?1",
            [LOST_PRAYERS[0]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(marks, lines);
    let recovered: i64 = v2
        .query_row(
            "SELECT count(*) FROM migration_findings WHERE decision = 'recovered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let c = &report.tables;
    assert_eq!(
        recovered as u64,
        c["prayer"].recovered + c["prayermark"].recovered
    );
    // Without the tree, the recovered records cannot be derived: the law says what to give.
    let blind = validate(&Options::new(&v1, &url)).unwrap();
    let law = blind.check("law").unwrap();
    assert!(!law.passed);
    assert!(
        law.details.iter().any(|d| d.contains("--archives-v1")),
        "{:#?}",
        law.details
    );
}

/// Under `strict` nothing is recovered: the same differences are reported as archive findings
/// (not carried), analyze says what `repair` would add, and the validator passes.
#[test]
fn strict_recovers_nothing_and_reports_the_differences() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = damaged_db(dir.path());
    let tree = fixture().join("text_archives");
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let v2_tree = dir.path().join("v2");
    let report = run(&v1, &tree, &url, &v2_tree, Policy::Strict);
    assert!(report
        .tables
        .values()
        .all(|c| c.recovered == 0 && c.balances()));
    assert!(recovered_findings(&report, "prayer").is_empty());
    for id in LOST_PRAYERS {
        assert!(
            report.archive_findings.iter().any(|f| f.v1_key == id
                && f.rule == "R-ARCHIVE-ONLY"
                && f.decision == "not_carried"),
            "{id} reported"
        );
    }
    assert!(report.archives_recoverable.is_some_and(|r| r.prayers == 3));
    assert_valid(&v1, &tree, &url, &v2_tree, Policy::Strict);

    let analysed = analyze(&AnalyzeOptions {
        common: common(&v1, &tree, thywill_pipeline::Policy::Strict),
    })
    .unwrap();
    assert!(
        analysed.summary().contains("3 prayers, "),
        "{}",
        analysed.summary()
    );
    assert!(analysed
        .to_markdown()
        .contains("recoverable from the archives"));
}

/// Copies the fixture's tree into `to`.
fn copy_tree(to: &Path) {
    let from = fixture().join("text_archives");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(&from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A hostile tree over the untouched database: a newer file claiming an existing prayer's id
/// (its row names the original) with extra lines, a second, newer file of the archive-only id,
/// and files naming no member or a first word of a name: only the witnesses speak, nothing is
/// credited to a non-member, and the validator agrees.
#[test]
fn a_hostile_tree_recovers_nothing_it_should_not() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("text_archives");
    copy_tree(&tree);
    let month = tree.join("prayers/2025/05");
    let forged = format!(
        "Prayer {} by Pastor Dave\nSubmitted May 09 2025 at 10:00\n\nForged text.\n\nActivity:\n\
         May 09 2025 at 10:01 - Pastor Dave prayed this prayer\n\
         May 09 2025 at 10:01 - Pastor Dave prayed this prayer\n",
        LOST_PRAYERS[0]
    );
    std::fs::write(month.join("2025_05_02_prayer_at_0943_2.txt"), forged).unwrap();
    let only = tree.join("prayers/2025/07/2025_07_27_prayer_at_2117.txt");
    let newer = std::fs::read_to_string(&only)
        .unwrap()
        .replace("July 27 2025 at 21:17", "July 28 2025 at 08:00");
    let newer_path = tree.join("prayers/2025/07/2025_07_28_prayer_at_0800.txt");
    std::fs::write(&newer_path, &newer).unwrap();
    std::fs::write(
        month.join("2025_05_20_prayer_at_1200.txt"),
        "Prayer 0123456789abcdef0123456789abcdef by Pastor\nSubmitted May 20 2025 at 12:00\n\n\
         Nobody wrote this.\n\nActivity:\nMay 20 2025 at 12:05 - Pastor prayed this prayer\n",
    )
    .unwrap();
    std::fs::write(
        month.join("2025_05_21_prayer_at_1200.txt"),
        "Prayer temp by Pastor Dave\nSubmitted May 21 2025 at 12:00\n\nA failed rewrite.\n",
    )
    .unwrap();

    let v1 = fixture().join("v1.db");
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let v2_tree = dir.path().join("v2");
    let report = run(&v1, &tree, &url, &v2_tree, Policy::Repair);
    let prayers = recovered_findings(&report, "prayer");
    assert_eq!(prayers.len(), 1, "{prayers:#?}");
    assert_eq!(prayers[0].v1_key, ARCHIVE_ONLY);
    assert!(
        prayers[0].reason.contains("2025_07_28_prayer_at_0800.txt"),
        "the newest file is the witness: {}",
        prayers[0].reason
    );
    assert!(
        recovered_findings(&report, "prayermark").is_empty(),
        "the forged file is no witness: {:#?}",
        recovered_findings(&report, "prayermark")
    );
    let v2 = rusqlite::Connection::open(dir.path().join("v2.db")).unwrap();
    let created: String = v2
        .query_row(
            "SELECT created_at FROM prayers WHERE id = ?1",
            [ARCHIVE_ONLY],
            |r| r.get(0),
        )
        .unwrap();
    assert!(created.starts_with("2025-07-28 08:00:00"), "{created}");
    let strangers: i64 = v2
        .query_row(
            "SELECT count(*) FROM prayers WHERE id = '0123456789abcdef0123456789abcdef'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(strangers, 0, "an author who is no member recovers nothing");
    assert_valid(&v1, &tree, &url, &v2_tree, Policy::Repair);
}

/// Each same-minute `prayed this prayer` line is its own act: two more lines in the minute of
/// a mark the database holds become two marks, at that minute plus one and two microseconds,
/// with the ids of decisions.md §47, on a G1 tree (members by id) and the validator agrees.
#[test]
fn same_minute_lines_beyond_the_database_are_each_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("text_archives");
    copy_tree(&tree);
    let path = tree.join("prayers/2025/05/2025_05_02_prayer_at_0943.txt");
    let line = "May 04 2025 at 10:23 - Pastor Dave prayed this prayer\n";
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(line), "the fixture's line");
    std::fs::write(&path, text.replace(line, &line.repeat(3))).unwrap();

    let v1 = fixture().join("v1.db");
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let v2_tree = dir.path().join("v2");
    let report = run(&v1, &tree, &url, &v2_tree, Policy::Repair);
    assert_eq!(report.tables["prayermark"].recovered, 2);
    let (prayer, user) = (LOST_PRAYERS[0], "31b9e3b6885f46a39b9f7e63cd4a77dc");
    let namespace = uuid::Uuid::from_u128(0x6a1f_3c52_8e0b_5d47_9b3e_7468_7977_696c);
    let v2 = rusqlite::Connection::open(dir.path().join("v2.db")).unwrap();
    for n in [1, 2] {
        let name = format!("mark:{prayer}:{user}:2025-05-04 10:23:{n}");
        let id = uuid::Uuid::new_v5(&namespace, name.as_bytes())
            .simple()
            .to_string();
        let at: String = v2
            .query_row(
                "SELECT marked_at FROM prayer_marks WHERE id = ?1 AND prayer_id = ?2 AND user_id = ?3",
                [&id, prayer, user],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("mark {n} ({id}): {e}"));
        assert_eq!(at, format!("2025-05-04 10:23:00.00000{n}"));
    }
    assert_valid(&v1, &tree, &url, &v2_tree, Policy::Repair);
}

/// On a server in America/Chicago (the committed `g3-s-chicago`, members by name): the tree's
/// times are local, a recovered prayer's `created_at` is its `Submitted` in UTC, lines are met
/// by the marks stored in their minute (local online, UTC offline, as v1 wrote both), and the
/// validator, reading the same clock, agrees.
#[test]
fn recovery_reads_the_tree_through_the_v1_clock() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g3-s-chicago");
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.db");
    std::fs::copy(fx.join("v1.db"), &v1).unwrap();
    let lost = "7f384da4675748dc8420ead104b11f36";
    let conn = rusqlite::Connection::open(&v1).unwrap();
    for sql in [
        "DELETE FROM prayermark WHERE prayer_id = ?1",
        "DELETE FROM prayer_attributes WHERE prayer_id = ?1",
        "DELETE FROM prayer WHERE id = ?1",
    ] {
        conn.execute(sql, [lost]).unwrap();
    }
    conn.execute_batch("DELETE FROM prayermark WHERE rowid % 40 = 0")
        .unwrap();
    drop(conn);
    let tree = fx.join("text_archives");
    let zone = thywill_pipeline::Clock::parse_zone("America/Chicago").unwrap();
    let since = thywill_pipeline::clock_default_local_since();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let v2_tree = dir.path().join("v2");
    let report = migrate(&MigrateOptions {
        common: CommonOptions {
            clock: thywill_pipeline::Clock::new(zone, since),
            ..common(&v1, &tree, thywill_pipeline::Policy::Repair)
        },
        v2_url: url.clone(),
        archives_v2: Some(v2_tree.clone()),
        ..Default::default()
    })
    .unwrap();
    assert!(report.tables["prayer"].recovered >= 1);
    assert!(report.tables["prayermark"].recovered > 0);
    let v2 = rusqlite::Connection::open(dir.path().join("v2.db")).unwrap();
    let created: String = v2
        .query_row(
            "SELECT created_at FROM prayers WHERE id = ?1",
            [lost],
            |r| r.get(0),
        )
        .unwrap();
    assert!(created.starts_with("2025-08-24 09:55:00"), "{created}");
    let report = validate(&Options {
        archives_v1: Some(tree.clone()),
        archives_v2: Some(v2_tree),
        clock: thywill_validator::clock::V1Clock {
            zone,
            local_since: since,
        },
        ..Options::new(&v1, &url)
    })
    .unwrap();
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A registration line with no member is a member the database lost: recovered (id UUID v5 of
/// `user:<name>`, joined at the line's time, invited by the member the line names), and so are
/// the prayer they wrote and their marks; a line for a test account, for a name another member
/// holds after folding, or for `admin` recovers nobody. The validator agrees.
#[test]
fn a_registration_without_a_member_is_recovered_with_what_they_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("text_archives");
    copy_tree(&tree);
    let users = tree.join("users/2025_05_users.txt");
    let mut text = std::fs::read_to_string(&users).unwrap();
    for line in [
        "May 31 2025 at 23:59 - Zed Unknown joined on invitation from Pastor Dave",
        "May 31 2025 at 23:59 - Test User joined directly",
        "May 31 2025 at 23:59 - pastor dave joined directly",
        "May 31 2025 at 23:59 - admin joined directly",
    ] {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&users, text).unwrap();
    let prayer = "0123456789abcdef0123456789abcdef";
    std::fs::write(
        tree.join("prayers/2025/06/2025_06_01_prayer_at_0800.txt"),
        format!(
            "Prayer {prayer} by Zed Unknown\nSubmitted June 01 2025 at 08:00\n\n\
             Please pray for my new job.\n\nActivity:\n\
             June 01 2025 at 09:00 - Zed Unknown prayed this prayer\n\
             June 01 2025 at 09:05 - Pastor Dave prayed this prayer\n"
        ),
    )
    .unwrap();
    let v1 = fixture().join("v1.db");
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let v2_tree = dir.path().join("v2");
    let report = run(&v1, &tree, &url, &v2_tree, Policy::Repair);
    assert_eq!(
        report.tables["user"].recovered, 1,
        "{:?}",
        report.tables["user"]
    );
    assert!(report.tables["user"].balances());
    let found = recovered_findings(&report, "user");
    assert_eq!(found.len(), 1);
    assert!(found[0].reason.contains("users/2025_05_users.txt"));
    let v2 = rusqlite::Connection::open(dir.path().join("v2.db")).unwrap();
    let (id, inviter, created): (String, Option<String>, String) = v2
        .query_row(
            "SELECT id, invited_by_user_id, created_at FROM users WHERE display_name = 'Zed Unknown'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let namespace = uuid::Uuid::from_u128(0x6a1f_3c52_8e0b_5d47_9b3e_7468_7977_696c);
    let want = uuid::Uuid::new_v5(&namespace, b"user:Zed Unknown")
        .simple()
        .to_string();
    assert_eq!(id, want);
    assert_eq!(inviter.as_deref(), Some("31b9e3b6885f46a39b9f7e63cd4a77dc"));
    assert!(created.starts_with("2025-05-31 23:59:00"), "{created}");
    let (author, marks): (String, i64) = v2
        .query_row(
            "SELECT author_id, (SELECT count(*) FROM prayer_marks WHERE prayer_id = p.id)
             FROM prayers p WHERE id = ?1",
            [prayer],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((author, marks), (want, 2));
    for name in ["Test User", "pastor dave", "admin"] {
        let id = uuid::Uuid::new_v5(&namespace, format!("user:{name}").as_bytes())
            .simple()
            .to_string();
        let n: i64 = v2
            .query_row("SELECT count(*) FROM users WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 0, "{name} recovered");
    }
    assert_valid(&v1, &tree, &url, &v2_tree, Policy::Repair);
}
