use std::fs;
use std::path::Path;

use super::*;

const PRAYER: &str = "Prayer 0123456789abcdef0123456789abcdef by Mary O'Neil\n\
Submitted June 29 2025 at 19:33\n\
Project: healing\n\
Audience: christians_only\n\
Mood: hopeful\n\
\n\
Please pray for my mother.\n\
\n\
She is in hospital. Activity: none\n\
\n\
Generated Prayer:\n\
Lord, be near her.\n\
\n\
Activity:\n\
June 30 2025 at 08:01 - Bob prayed this prayer\n\
June 30 2025 at 09:00 - Mary O'Neil marked this prayer as answered\n\
June 30 2025 at 09:01 - Mary O'Neil added testimony: She is home!\n\
Thank you all.\n\
July 01 2025 at 10:00 - admin archived this prayer\n\
July 02 2025 at 10:00 - admin restored this prayer\n\
July 03 2025 at 10:00 - Eve flagged this prayer\n\
July 04 2025 at 10:00 - Mary O'Neil set answer_date to '2025-06-30'\n\
July 05 2025 at 10:00 - Mary O'Neil set daily_priority from 'low' to 'high'\n";

const USERS: &str =
    "User Registrations for June 2025\n\nJune 01 2025 at 10:00 - Mary O'Neil joined directly\n\
June 02 2025 at 11:30 - Bob joined on invitation from Mary O'Neil\n";
const ACTIVITY: &str =
    "Activity for June 2025\n\nJune 01 2025\n10:00 - Mary O'Neil joined\n\nJune 29 2025\n\
19:33 - Mary O'Neil submitted a prayer\n";
const MARKS: &str = "Prayer Marks for June 2025\nFormat: timestamp|prayer_id|user_id\n\n\
June 30 2025 at 08:01|0123456789abcdef0123456789abcdef|fedcba9876543210fedcba9876543210\n";
const SKIPS: &str = "Prayer Skips for June 2025\nFormat: timestamp|prayer_id|user_id\n\n\
June 30 2025 at 08:02|0123456789abcdef0123456789abcdef|Bob\n";
const ATTRS: &str = "Prayer Attributes for July 2025\n\
Format: timestamp|prayer_id|attribute_name|attribute_value|user_id\n\n\
July 04 2025 at 10:00|0123456789abcdef0123456789abcdef|answer_testimony|a|b|Mary O'Neil\n";

fn write_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("prayers/2025/06/2025_06_29_prayer_at_1933.txt", PRAYER),
        ("users/2025_06_users.txt", USERS),
        ("activity/activity_2025_06.txt", ACTIVITY),
        ("prayers/marks/2025_06_marks.txt", MARKS),
        ("prayers/skips/2025_06_skips.txt", SKIPS),
        ("prayers/attributes/2025_07_attributes.txt", ATTRS),
        ("README.txt", "not a v1 format\n"),
    ];
    for (rel, text) in files {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn prayer_file_parses_into_typed_records() {
    let p = V1PrayerFile::parse(Path::new("p.txt"), PRAYER.as_bytes()).unwrap();
    assert_eq!(p.id, "0123456789abcdef0123456789abcdef");
    assert_eq!(p.author, "Mary O'Neil");
    assert_eq!(p.submitted.at.to_string(), "2025-06-29 19:33:00");
    assert_eq!(p.meta("Project"), Some("healing"));
    assert_eq!(p.meta("Audience"), Some("christians_only"));
    assert_eq!(
        p.text,
        "Please pray for my mother.\n\nShe is in hospital. Activity: none"
    );
    assert_eq!(p.generated_prayer.as_deref(), Some("Lord, be near her."));
    let act = p.activity.as_ref().unwrap();
    let actions: Vec<&V1Action> = act.iter().map(|a| &a.action).collect();
    assert_eq!(actions[0], &V1Action::Prayed);
    assert_eq!(act[0].name, "Bob");
    assert_eq!(actions[1], &V1Action::MarkedAnswered);
    assert_eq!(
        actions[2],
        &V1Action::Testimony("She is home!\nThank you all.".into())
    );
    assert_eq!(actions[3], &V1Action::Archived);
    assert_eq!(actions[4], &V1Action::Restored);
    assert_eq!(actions[5], &V1Action::Flagged);
    assert_eq!(
        actions[6],
        &V1Action::SetAttribute {
            name: "answer_date".into(),
            old: None,
            value: "2025-06-30".into()
        }
    );
    assert_eq!(
        actions[7],
        &V1Action::SetAttribute {
            name: "daily_priority".into(),
            old: Some("low".into()),
            value: "high".into()
        }
    );
    assert_eq!(act[7].name, "Mary O'Neil");
    assert_eq!(p.render(), PRAYER.as_bytes());
}

#[test]
fn prayer_file_variants_round_trip() {
    let variants = [
        "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\nText\n\nActivity:\n",
        "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\nText only\n",
        "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\n\n\nActivity:\n",
        "Prayer a by b c\nSubmitted June 29 2025 at 19:33\nAudience: all\n\nT\n\nGenerated Prayer:\nG\n\nActivity:\nJune 29 2025 at 19:34 - b c prayed this prayer\n",
    ];
    for v in variants {
        let p = V1PrayerFile::parse(Path::new("p.txt"), v.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(p.render()).unwrap(), v);
    }
}

#[test]
fn monthly_logs_parse_with_one_parser() {
    let users = V1MonthlyLog::<Registrations>::parse(Path::new("u"), USERS.as_bytes()).unwrap();
    assert_eq!(users.month, (2025, 6));
    let regs: Vec<_> = users.records().collect();
    assert_eq!(regs[0].inviter, None);
    assert_eq!(regs[1].inviter.as_deref(), Some("Mary O'Neil"));
    assert_eq!(regs[1].name, "Bob");
    let act = V1MonthlyLog::<ActivityLog>::parse(Path::new("a"), ACTIVITY.as_bytes()).unwrap();
    let entries: Vec<_> = act.records().collect();
    assert_eq!(entries[1].at.unwrap().to_string(), "2025-06-29 19:33:00");
    assert_eq!(entries[1].text, "Mary O'Neil submitted a prayer");
    let attrs = V1MonthlyLog::<AttributeLog>::parse(Path::new("t"), ATTRS.as_bytes()).unwrap();
    let a = attrs.records().next().unwrap();
    assert_eq!(
        (a.name.as_str(), a.value.as_str(), a.user.as_str()),
        ("answer_testimony", "a|b", "Mary O'Neil")
    );
}

#[test]
fn written_tree_round_trips_and_scans() {
    let dir = write_tree();
    let archive = scan_v1_tree(dir.path()).unwrap();
    assert!(archive.problems.is_empty(), "{:?}", archive.problems);
    assert_eq!(archive.files.len(), 7);
    assert_eq!(archive.prayers.len(), 1);
    assert_eq!(archive.registrations.len(), 2);
    assert_eq!(archive.registrations[1].line, 4);
    let mut marks = Vec::new();
    archive
        .for_each_mark_line(|pos, record| {
            marks.push((pos, record));
            Ok(())
        })
        .unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].0.at.line, 4);
    let (path, again) = archive.mark_line(marks[0].0).unwrap();
    assert_eq!(path, "prayers/marks/2025_06_marks.txt");
    assert_eq!(again, marks[0].1);
    assert_eq!(MarkLog::render(&again), MARKS.lines().nth(3).unwrap());
    assert_eq!(
        archive.prayers.paths().collect::<Vec<_>>(),
        vec!["prayers/2025/06/2025_06_29_prayer_at_1933.txt"]
    );
    assert_eq!(
        archive.prayer_paths("0123456789abcdef0123456789abcdef"),
        vec!["prayers/2025/06/2025_06_29_prayer_at_1933.txt"]
    );
    assert_eq!(
        archive.resolve_db_path("text_archives/prayers/2025/06/2025_06_29_prayer_at_1933.txt"),
        Some("prayers/2025/06/2025_06_29_prayer_at_1933.txt")
    );
    assert_eq!(archive.resolve_db_path("../../etc/passwd"), None);
    assert_eq!(
        archive.resolve_db_path("/tmp/tmpab12/complete_site_archive/prayers/x.txt"),
        None
    );
    assert_eq!(round_trip_tree(dir.path()), 6);
}

/// Parses and re-renders every v1-format file of a tree; returns how many were checked.
fn round_trip_tree(root: &Path) -> usize {
    let mut checked = 0;
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let Some(kind) = V1FileKind::of(&rel) else {
            continue;
        };
        let bytes = fs::read(entry.path()).unwrap();
        let parsed = V1File::parse(kind, Path::new(&rel), &bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8_lossy(&parsed.render()),
            String::from_utf8_lossy(&bytes),
            "{rel}"
        );
        checked += 1;
    }
    checked
}

#[test]
fn malformed_files_name_file_and_line() {
    let bad = "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\nText\n\nActivity:\nJune 30 2025 at 08:01 - Bob waved\n";
    let err = V1PrayerFile::parse(Path::new("prayers/2025/06/x.txt"), bad.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string().split(": ").next().unwrap(),
        "prayers/2025/06/x.txt:7"
    );
    let err = V1PrayerFile::parse(Path::new("p"), b"Hello\n").unwrap_err();
    assert!(err.to_string().starts_with("p:1: "), "{err}");
    let err =
        V1PrayerFile::parse(Path::new("p"), b"Prayer a by b\nSubmitted yesterday\n").unwrap_err();
    assert!(err.to_string().starts_with("p:2: "), "{err}");
    // A line no shape fits is kept as such (R-ARCHIVE-UNREADABLE), and renders back as written.
    let odd = b"Prayer Marks for June 2025\n\nnot a mark\n";
    let log = V1MonthlyLog::<MarkLog>::parse(Path::new("m"), odd).unwrap();
    assert_eq!(log.lines[1], V1LogLine::Unreadable("not a mark".into()));
    assert_eq!(log.render(), odd);
    // bytes that are not UTF-8 still make the file unreadable, naming the line
    let err = V1MonthlyLog::<MarkLog>::parse(
        Path::new("m"),
        b"Prayer Marks for June 2025\n\nnot a mark\n\n\xff\n",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("m:5: "), "{err}");
    let err =
        V1MonthlyLog::<MarkLog>::parse(Path::new("m"), b"Prayer Marks in June\n").unwrap_err();
    assert!(err.to_string().starts_with("m:1: "), "{err}");
    let err = V1PrayerFile::parse(
        Path::new("p"),
        b"Prayer a by b\nSubmitted June 29 2025 at 19:33\n\n\xff\n",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("p:4: "), "{err}");
}

#[test]
fn scan_reports_problems_and_goes_on() {
    let dir = write_tree();
    fs::write(dir.path().join("users/2025_07_users.txt"), "garbage\n").unwrap();
    let june = dir.path().join("users/2025_06_users.txt");
    let mut text = fs::read_to_string(&june).unwrap();
    let before = scan_v1_tree(dir.path()).unwrap().registrations.len();
    text.push_str("this line is in no shape v1 writes\n");
    fs::write(&june, text).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("users/evil_users.txt")).unwrap();
    let archive = scan_v1_tree(dir.path()).unwrap();
    assert_eq!(archive.problems.len(), 2, "{:?}", archive.problems);
    assert!(archive
        .problems
        .iter()
        .any(|p| p.message.contains("2025_07_users.txt:1")));
    // the bad line is noted with its file and number; the file's other lines are still read
    assert_eq!(archive.registrations.len(), before);
    assert_eq!(archive.unreadable.len(), 1, "{:?}", archive.unreadable);
    let (kind, line) = &archive.unreadable[0];
    assert_eq!(*kind, V1FileKind::Registrations);
    assert_eq!(line.path, "users/2025_06_users.txt");
    assert_eq!(line.record, "this line is in no shape v1 writes");
    assert!(!archive.files.contains("users/evil_users.txt"));
    let err = scan_v1_tree(Path::new("/nonexistent/tree")).unwrap_err();
    // unusable input: the pipeline's exit code 3, as for every V1Error
    assert!(
        matches!(err, crate::V1Error::ArchiveUnreadable { .. }),
        "{err}"
    );
}

/// Round trip (parse, re-render, same bytes) over the fixture generator's committed v1 trees, and
/// a scan of each. Skips with a message when a fixture is absent.
#[test]
fn fixture_trees_round_trip() {
    for name in ["g1-s", "g3-s"] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name)
            .join("text_archives");
        if !root.is_dir() {
            eprintln!("SKIPPED: {} is absent", root.display());
            continue;
        }
        assert!(round_trip_tree(&root) > 0, "no v1 files under {name}");
        let archive = scan_v1_tree(&root).unwrap();
        assert!(!archive.prayers.is_empty(), "{name}");
    }
}
