use std::fs;
use std::path::Path;

use super::*;

const P1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const P2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const P3: &str = "cccccccccccccccccccccccccccccccc";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A tree with two prayer files (P1 by Mary with its marks, P3 nowhere in the rows) and a users
/// file.
fn tree() -> (tempfile::TempDir, V1Archive) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "prayers/2025/06/2025_06_29_prayer_at_1933.txt",
        &format!(
            "Prayer {P1} by Mary\nSubmitted June 29 2025 at 19:33\nAudience: all\n\n\
             Please pray for my caf\u{e9}.\n\nActivity:\n\
             June 30 2025 at 08:00 - John prayed this prayer\n\
             June 30 2025 at 09:00 - John prayed this prayer\n\
             June 30 2025 at 10:00 - John prayed this prayer\n\
             June 30 2025 at 11:00 - Mary prayed this prayer\n"
        ),
    );
    write(
        root,
        "prayers/2025/06/2025_06_29_prayer_at_1933_2.txt",
        &format!("Prayer {P3} by John\nSubmitted June 29 2025 at 19:33\n\nLost row.\n"),
    );
    write(
        root,
        "users/2025_06_users.txt",
        "User Registrations for June 2025\n\n\
         June 01 2025 at 10:40 - Mary joined directly\n\
         June 02 2025 at 13:20 - John joined on invitation from Mary\n\
         June 03 2025 at 16:00 - Ghost joined directly\n",
    );
    let archive = scan_v1_tree(root).unwrap();
    assert!(archive.problems.is_empty(), "{:?}", archive.problems);
    (dir, archive)
}

fn input() -> ReconcileInput {
    ReconcileInput {
        prayers: vec![
            DbPrayer {
                rowid: Some(1),
                id: P1.to_uppercase(),
                author: Some("Mary".into()),
                created_at: Some("2025-06-29 19:33:59.999999".into()),
                text: Some("Please pray for my caf\u{fffd}.".into()),
                text_file_path: Some(
                    "text_archives/prayers/2025/06/2025_06_29_prayer_at_1933.txt".into(),
                ),
            },
            DbPrayer {
                rowid: Some(2),
                id: P2.into(),
                author: Some("Mary".into()),
                created_at: Some("2025-06-29 20:00:00".into()),
                text: Some("No file.".into()),
                text_file_path: None,
            },
        ],
        users: vec![
            DbUser {
                rowid: Some(1),
                name: Some("Mary".into()),
                created_at: Some("2025-06-01T10:40:30Z".into()),
                inviter: None,
            },
            DbUser {
                rowid: Some(2),
                name: Some("John".into()),
                created_at: Some("2025-06-02 13:20:00".into()),
                inviter: Some("Mary".into()),
            },
            DbUser {
                rowid: Some(3),
                name: Some("Unlogged".into()),
                created_at: Some("2025-06-04 00:00:00".into()),
                inviter: None,
            },
        ],
        grants: Vec::new(),
        claims: Vec::new(),
        marks: vec![
            mark(1, P1, "John", "2025-06-30 08:00:10"),
            mark(2, P1, "John", "1751274000"), // 2025-06-30 09:00:00 UTC, epoch seconds
            mark(3, P1, "John", "2025-06-30"), // date only: any line of that day
            mark(4, P1, "Mary", "2025-06-30 11:00:00"),
        ],
    }
}

fn mark(rowid: i64, prayer: &str, user: &str, at: &str) -> DbMark {
    DbMark {
        rowid: Some(rowid),
        id: Some(format!("m{rowid}")),
        prayer_id: prayer.into(),
        user: user.into(),
        created_at: Some(at.into()),
    }
}

fn brief(findings: &[ArchiveFinding]) -> Vec<(&'static str, RecordKind, String)> {
    findings
        .iter()
        .map(|f| (f.rule.id(), f.kind, f.key.clone()))
        .collect()
}

#[test]
fn consistent_records_give_only_the_real_differences() {
    let (_dir, archive) = tree();
    let f =
        reconcile(&archive, &input(), &ReconcileOptions::default()).expect("the tree is readable");
    assert_eq!(
        brief(&f),
        vec![
            ("R-ARCHIVE-ONLY", RecordKind::Prayer, P3.to_string()),
            ("R-ARCHIVE-MISSING", RecordKind::Prayer, P2.to_string()),
            ("R-ARCHIVE-ONLY", RecordKind::User, "Ghost".to_string()),
        ],
        "{f:#?}"
    );
    assert_eq!(
        f[0].path.as_deref(),
        Some("prayers/2025/06/2025_06_29_prayer_at_1933_2.txt")
    );
    assert_eq!((f[1].rowid, f[1].path.as_deref()), (Some(2), None));
    let json = serde_json::to_value(&f[2]).unwrap();
    assert_eq!(json["rule"], "R-ARCHIVE-ONLY");
    assert_eq!(json["kind"], "user");
}

#[test]
fn rows_without_a_log_line_are_reported_on_request() {
    let (_dir, archive) = tree();
    let opts = ReconcileOptions {
        rows_without_log_line: true,
        ..ReconcileOptions::default()
    };
    let f = reconcile(&archive, &input(), &opts).expect("the tree is readable");
    assert!(brief(&f).contains(&("R-ARCHIVE-MISSING", RecordKind::User, "Unlogged".into())));
    let mut db = input();
    db.marks.pop();
    let f = reconcile(&archive, &db, &opts).expect("the tree is readable");
    // Mary's line now has no row: only in the archives
    assert!(brief(&f).contains(&("R-ARCHIVE-ONLY", RecordKind::Mark, format!("{P1}|Mary"))));
    db.marks.push(mark(5, P1, "Mary", "2025-06-30 11:00:00"));
    db.marks.push(mark(6, P1, "Mary", "2025-07-01 11:00:00"));
    let f = reconcile(&archive, &db, &opts).expect("the tree is readable");
    assert_eq!(
        brief(&f)
            .into_iter()
            .filter(|b| b.1 == RecordKind::Mark)
            .collect::<Vec<_>>(),
        vec![("R-ARCHIVE-MISSING", RecordKind::Mark, "m6".to_string())]
    );
}

#[test]
fn differences_are_mismatches_naming_both_values() {
    let (_dir, archive) = tree();
    let mut db = input();
    db.prayers[0].author = Some("Mary Ann".into());
    db.prayers[0].created_at = Some("2025-06-29 19:34:00".into());
    db.prayers[0].text = Some("Please pray for my cafe!".into());
    db.users[1].inviter = None;
    db.marks[0].created_at = Some("2025-06-30 08:05:00".into());
    let f = reconcile(&archive, &db, &ReconcileOptions::default()).expect("the tree is readable");
    let mismatches: Vec<&ArchiveFinding> = f
        .iter()
        .filter(|f| f.rule == ArchiveRule::Mismatch)
        .collect();
    assert_eq!(mismatches.len(), 3, "{f:#?}");
    let prayer = mismatches[0];
    assert_eq!(
        (prayer.kind, prayer.key.as_str()),
        (RecordKind::Prayer, &*P1.to_uppercase())
    );
    for part in ["author: file `Mary`, row `Mary Ann`", "submitted:", "text:"] {
        assert!(prayer.detail.contains(part), "{}", prayer.detail);
    }
    assert_eq!(
        (mismatches[1].kind, mismatches[1].key.as_str()),
        (RecordKind::User, "John")
    );
    assert!(mismatches[1]
        .detail
        .contains("inviter: archive `Mary`, row NULL"));
    // the 08:05 row pairs with the line of its group no other row took (the date-only row m3
    // took the first line of its day)
    assert_eq!(
        (mismatches[2].kind, mismatches[2].key.as_str()),
        (RecordKind::Mark, "m1")
    );
    assert!(
        mismatches[2].detail.contains("`2025-06-30 08:05:00`"),
        "{}",
        mismatches[2].detail
    );
}

#[test]
fn times_follow_the_server_offset_and_minute_truncation() {
    let (_dir, archive) = tree();
    let mut db = input();
    // the server ran two hours ahead of UTC: the rows are two hours earlier than the files
    db.prayers[0].created_at = Some("2025-06-29T17:33:00+00:00".into());
    let f = reconcile(&archive, &db, &ReconcileOptions::default()).expect("the tree is readable");
    assert!(f
        .iter()
        .any(|f| f.rule == ArchiveRule::Mismatch && f.kind == RecordKind::Prayer));
    let opts = ReconcileOptions {
        utc_offsets_minutes: vec![60, 120],
        ..ReconcileOptions::default()
    };
    let f = reconcile(&archive, &db, &opts).expect("the tree is readable");
    assert!(!f
        .iter()
        .any(|f| f.rule == ArchiveRule::Mismatch && f.kind == RecordKind::Prayer));
    // unparseable times are the detector's R-TIME, not compared here
    db.prayers[0].created_at = Some("n/a".into());
    let f = reconcile(&archive, &db, &ReconcileOptions::default()).expect("the tree is readable");
    assert!(!f
        .iter()
        .any(|f| f.rule == ArchiveRule::Mismatch && f.kind == RecordKind::Prayer));
    // shapes
    let at = |s| row_time(Some(s));
    let t = NaiveDate::from_ymd_opt(2025, 6, 30)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    assert_eq!(at("1751274000"), RowTime::At(t));
    assert_eq!(at("1751274000000"), RowTime::At(t));
    assert_eq!(at("2025-06-30T11:00:00+02:00"), RowTime::At(t));
    assert_eq!(at("2025-06-30T09:00:00Z"), RowTime::At(t));
    assert_eq!(at("2025-06-30 09:00:00.000000"), RowTime::At(t));
    assert_eq!(at("2025-06-30"), RowTime::Day(t.date()));
    assert_eq!(at("yesterday"), RowTime::Unknown);
}

#[test]
fn a_path_to_another_prayers_file_is_a_mismatch_and_a_dangling_path_is_not_missing() {
    let (_dir, archive) = tree();
    let mut db = input();
    db.prayers[1].text_file_path =
        Some("text_archives/prayers/2025/06/2025_06_29_prayer_at_1933.txt".into());
    let f = reconcile(&archive, &db, &ReconcileOptions::default()).expect("the tree is readable");
    let p2: Vec<_> = f.iter().filter(|f| f.key == P2).collect();
    assert_eq!(p2.len(), 1);
    assert_eq!(p2[0].rule, ArchiveRule::Mismatch);
    assert!(p2[0].detail.contains("names the file of prayer"));
    // a path naming no file: R-ARCHIVE-PATH (the detector's), not also missing here
    db.prayers[1].text_file_path = Some("text_archives/prayers/2025/06/nothing.txt".into());
    let f = reconcile(&archive, &db, &ReconcileOptions::default()).expect("the tree is readable");
    assert!(!f.iter().any(|f| f.key == P2));
}

#[test]
fn epoch_row_times_are_read_as_the_detector_reads_them() {
    let at = |s: &str| match row_time(Some(s)) {
        RowTime::At(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        other => format!("{other:?}"),
    };
    // 10 digits: seconds; 13 digits: milliseconds (as before).
    assert_eq!(at("1751328000"), "2025-07-01 00:00:00.000");
    assert_eq!(at("1751328000123"), "2025-07-01 00:00:00.123");
    // 12 digits: milliseconds from 10^11 up, as thywill_detect::time decides (it was seconds,
    // which put the row in the year 5000-something and could never match its archive line).
    assert_eq!(at("978307200000"), "2001-01-01 00:00:00.000");
    assert_eq!(at("99999999999"), "5138-11-16 09:46:39.000");
}

/// Prayer ids are keyed by the detector's key normaliser on both sides: an id with a zero-width
/// character or in upper case, in a row or in a marks line, names the prayer the rules resolve
/// it to; a non-hex id is not case-folded, as the rules do not fold it.
#[test]
fn prayer_ids_are_keyed_by_the_detectors_normaliser() {
    let (_dir, archive) = tree();
    let hidden = format!("\u{200b}{}\u{feff} ", P1.to_uppercase());
    assert_eq!(
        archive.prayer_paths(&hidden),
        vec!["prayers/2025/06/2025_06_29_prayer_at_1933.txt"]
    );
    assert_eq!(archive.prayer_key(&hidden), archive.prayer_key(P1));
    assert_ne!(archive.prayer_key("Admin"), archive.prayer_key("admin"));
    let mut db = input();
    db.prayers[0].id = hidden;
    db.marks[0].prayer_id = format!(" {}\u{200b}", P1.to_uppercase());
    let f = reconcile(&archive, &db, &ReconcileOptions::default()).expect("the tree is readable");
    assert_eq!(
        brief(&f),
        brief(&reconcile(&archive, &input(), &ReconcileOptions::default()).unwrap()),
        "{f:#?}"
    );
}

/// Every row time the detector reads is compared (the same instant as in the plan), and a
/// date-only row is still a day.
#[test]
fn row_times_are_the_detectors_instants() {
    for s in [
        "2025-06-29 19:33:00",
        " 2025-06-29T19:33:00Z",
        "2025-06-29T21:33:00+02:00",
        "1751225580",
        "1751225580.0",
        "1751225580000",
    ] {
        assert_eq!(
            row_time(Some(s)),
            RowTime::At(crate::time::parse_str(s).unwrap().at),
            "{s}"
        );
    }
    assert_eq!(
        row_time(Some("2025-06-29")),
        RowTime::Day(NaiveDate::from_ymd_opt(2025, 6, 29).unwrap())
    );
    assert_eq!(row_time(Some("never")), RowTime::Unknown);
    assert_eq!(row_time(None), RowTime::Unknown);
}

/// The member of a `prayed this prayer` line is all of the text between ` - ` and the wording,
/// spaces and ` - ` included; same-minute lines are separate acts, counted against the rows of
/// that minute.
#[test]
fn a_marks_member_is_the_whole_name_and_repeats_count() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prayers/2025/06/2025_06_29_prayer_at_1933.txt",
        &format!(
            "Prayer {P1} by Mary\nSubmitted June 29 2025 at 19:33\n\nA request.\n\nActivity:\n\
             June 30 2025 at 12:00 - Pastor Dave - Jr prayed this prayer\n\
             June 30 2025 at 12:00 - Pastor Dave - Jr prayed this prayer\n"
        ),
    );
    let archive = scan_v1_tree(dir.path()).unwrap();
    let db = ReconcileInput {
        prayers: vec![DbPrayer {
            rowid: Some(1),
            id: P1.into(),
            author: Some("Mary".into()),
            created_at: Some("2025-06-29 19:33:10".into()),
            text: Some("A request.".into()),
            text_file_path: None,
        }],
        marks: vec![
            mark(1, P1, "Pastor Dave - Jr", "2025-06-30 12:00:41.5"),
            mark(2, P1, "Pastor", "2025-06-30 12:00:41.5"),
        ],
        ..ReconcileInput::default()
    };
    let f = reconcile(&archive, &db, &ReconcileOptions::default()).unwrap();
    // one of the two acts has its row; the row credited to the first word has no line (no
    // finding), and no line is read as `Pastor`'s
    assert_eq!(
        brief(&f),
        vec![(
            "R-ARCHIVE-ONLY",
            RecordKind::Mark,
            format!("{P1}|Pastor Dave - Jr")
        )],
        "{f:#?}"
    );
}

#[test]
fn each_archive_rule_parses_from_its_id_and_has_its_own_meaning() {
    let mut meanings = std::collections::BTreeSet::new();
    for rule in ArchiveRule::ALL {
        assert_eq!(ArchiveRule::parse(rule.id()), Some(rule));
        assert!(rule.meaning().ends_with('.'), "{rule}: {}", rule.meaning());
        meanings.insert(rule.meaning());
    }
    assert_eq!(
        meanings.len(),
        ArchiveRule::ALL.len(),
        "two rules share a meaning"
    );
    assert_eq!(ArchiveRule::parse("R-ARCHIVE-PATH"), None);
}
