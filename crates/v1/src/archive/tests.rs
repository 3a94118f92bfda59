use std::fs;
use std::path::Path;

use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef";

const PRAYER: &str = "Prayer 0123456789abcdef0123456789abcdef by Mary O'Neil\n\
Submitted June 29 2025 at 19:33\n\
Project: healing\n\
Audience: christians_only\n\
\n\
Please pray for my mother.\n\
\n\
She is in hospital. Activity: none\n\
\n\
Generated Prayer:\n\
Lord, be near her.\n\
\n\
Activity:\n\
June 30 2025 at 08:01 - Pastor Dave prayed this prayer\n\
June 30 2025 at 08:01 - Pastor Dave prayed this prayer\n\
June 30 2025 at 08:02 - Anne - Marie prayed this prayer\n\
June 30 2025 at 09:00 - Mary O'Neil marked this prayer as answered\n\
June 30 2025 at 09:01 - Mary O'Neil added testimony: She is home!\r\n\
Thank you all.\n\
\n\
God is good.\n\
July 01 2025 at 10:00 - admin archived this prayer\n\
July 02 2025 at 10:00 - admin restored this prayer\n\
July 03 2025 at 10:00 - Eve flagged this prayer\n\
July 04 2025 at 10:00 - Mary O'Neil set answer_date to '2025-06-30'\n\
July 05 2025 at 10:00 - Mary O'Neil set daily_priority from 'low' to 'high'\n\
July 06 2025 at 10:00 - Mary O'Neil removed archived (was 'true')\n\
July 07 2025 at 10:00 - system did something odd\n";

const USERS: &str = "User Registrations for June 2025\n\n\
June 01 2025 at 10:00 - Mary O'Neil joined directly\n\
June 02 2025 at 11:30 - Anne - Marie joined on invitation from Mary O'Neil\n";
const ACTIVITY: &str = "Activity for June 2025\n\n\nJune 01 2025\n\
10:00 - Mary O'Neil registered directly\n\nJune 29 2025\n\
19:33 - Mary O'Neil submitted prayer 0123456789abcdef0123456789abcdef (healing)\n";
const SESSIONS: &str = "Sessions for July 2025 (exported July 31 2025 at 10:00)\n\
Format: created_at|session_id|username|expires_at|device_info|ip_address|is_fully_authenticated\n\n\
July 16 2025 at 08:59|s1|Pastor Dave|July 30 2025 at 08:59|Mozilla/5.0 (X11_ Linux)|203.0.113.9|yes\n\
July 16 2025 at 09:00|s2|Anne - Marie|July 30 2025 at 09:00|||no\n";
const ROLES: &str = "Role Assignments for August 2025\n\
Format: timestamp|user_id|role_name|action|granted_by|expires_at|details\n\n\
2025-08-02T10:00:00.123456|Pastor Dave|deactivated|assigned|admin||Deactivated by admin admin\n\
2025-08-03T10:00:00.5|Pastor Dave|user|assigned|admin||User reactivated by admin\n";
const INVITES: &str = "Invite Token Usage for August 2025\n\
Format: timestamp|token|used_by_user|created_by_user|action\n\n\
2025-08-01T09:00:00.000001|tok1||Mary O'Neil|token_used\n\
2025-08-01T10:00:00.000001|tok1|Anne - Marie|Mary O'Neil|token_used\n";
const EXPORT_MARKS: &str = "Prayer Marks (exported August 26 2025 at 12:00)\n\
Format: id|created_at|prayer_id|username\n\n\n\
m1|June 30 2025 at 08:01|0123456789abcdef0123456789abcdef|Pastor Dave\n\
m2|June 30 2025 at 08:02|0123456789abcdef0123456789abcdef|Anne - Marie";
const EXPORT_TOKENS: &str = "Invite Tokens (exported August 26 2025 at 12:00)\n\
Format: token|created_by_user|usage_count|max_uses|expires_at|used_by_user_id\n\n\n\
tok1|Mary O'Neil|1|unlimited|August 01 2025 at 21:00|none";
const EXPORT_USAGE: &str = "Invite Token Usage (exported August 26 2025 at 12:00)\n\
Format: claimed_at|invite_token_id|user_id|ip_address\n\n\n\
August 01 2025 at 15:00|tok1|Anne - Marie|203.0.113.4";
const USER_ATTRS: &str = "User Attributes\n\n\
username: Anne - Marie\nis_supporter: true\nsupporter_since: 2025-07-01\nwelcome_message_dismissed: false\n\n\
username: Mary O'Neil\nis_supporter: false\nwelcome_message_dismissed: true\n\n";

/// A second file of the same prayer (a heal copy), named like a clash file.
const HEAL_COPY: &str = "Prayer 0123456789abcdef0123456789abcdef by Mary O'Neil\n\
Submitted June 29 2025 at 19:33\n\nPlease pray for my mother.\n\nActivity:\n\
June 30 2025 at 08:01 - Pastor Dave prayed this prayer\n";

fn write_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("prayers/2025/06/2025_06_29_prayer_at_1933.txt", PRAYER),
        ("prayers/2025/06/2025_06_29_prayer_at_1933_2.txt", HEAL_COPY),
        ("users/2025_06_users.txt", USERS),
        ("activity/activity_2025_06.txt", ACTIVITY),
        ("sessions/2025_07_sessions.txt", SESSIONS),
        ("roles/2025_08_role_assignments.txt", ROLES),
        ("system/2025_08_invite_usage.txt", INVITES),
        ("prayers/prayer_marks.txt", EXPORT_MARKS),
        ("invites/invite_tokens.txt", EXPORT_TOKENS),
        ("invites/invite_token_usage.txt", EXPORT_USAGE),
        ("users/user_attributes.txt", USER_ATTRS),
        // never written by v1: not a v1 format, not read
        (
            "prayers/marks/2025_06_marks.txt",
            "Prayer Marks for June 2025\n",
        ),
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
fn prayer_file_parses_every_wording() {
    let p = V1PrayerFile::parse(Path::new("p.txt"), PRAYER.as_bytes()).unwrap();
    assert_eq!(p.id, ID);
    assert_eq!(p.author, "Mary O'Neil");
    assert_eq!(p.submitted.at.to_string(), "2025-06-29 19:33:00");
    assert_eq!(p.meta("Project"), Some("healing"));
    assert_eq!(p.meta("Audience"), Some("christians_only"));
    assert_eq!(
        p.text,
        "Please pray for my mother.\n\nShe is in hospital. Activity: none"
    );
    assert_eq!(p.generated_prayer.as_deref(), Some("Lord, be near her."));
    assert!(p.unreadable.is_empty(), "{:?}", p.unreadable);
    let act = p.activity.as_ref().unwrap();
    let actions: Vec<&V1Action> = act.iter().map(|a| &a.action).collect();
    // same-minute repeats are two acts; a name with spaces and ` - ` is whole
    let prayed: Vec<(&str, usize)> = p.prayed().map(|a| (a.name.as_str(), a.line)).collect();
    assert_eq!(
        prayed,
        vec![
            ("Pastor Dave", 14),
            ("Pastor Dave", 15),
            ("Anne - Marie", 16)
        ]
    );
    assert_eq!(actions[3], &V1Action::MarkedAnswered);
    // the `\r` v1 left in a multi-line testimony is kept, and so are its blank lines
    assert_eq!(
        actions[4],
        &V1Action::Testimony("She is home!\r\nThank you all.\n\nGod is good.".into())
    );
    assert_eq!(act[4].line, 18);
    assert_eq!(actions[5], &V1Action::Archived);
    assert_eq!(act[5].line, 22);
    assert_eq!(actions[6], &V1Action::Restored);
    assert_eq!(actions[7], &V1Action::Flagged);
    assert_eq!(
        actions[8],
        &V1Action::SetAttribute {
            name: "answer_date".into(),
            old: None,
            value: "2025-06-30".into()
        }
    );
    assert_eq!(
        actions[9],
        &V1Action::SetAttribute {
            name: "daily_priority".into(),
            old: Some("low".into()),
            value: "high".into()
        }
    );
    assert_eq!(
        actions[10],
        &V1Action::Removed {
            name: "archived".into(),
            old: "true".into()
        }
    );
    assert_eq!(act[10].name, "Mary O'Neil");
    assert_eq!(
        actions[11],
        &V1Action::Other("system did something odd".into())
    );
    assert_eq!(p.render(), PRAYER.as_bytes());
}

#[test]
fn prayer_file_variants_round_trip() {
    let variants = [
        "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\nText\n\nActivity:\n",
        "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\nText only\n",
        "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\n\n\nActivity:\n",
        "Prayer temp by b\nSubmitted June 29 2025 at 19:33\n\nT\n\nActivity:\n",
        "Prayer a by b c\nSubmitted June 29 2025 at 19:33\nAudience: all\n\nT\n\nGenerated Prayer:\nG\n\nActivity:\nJune 29 2025 at 19:34 - b c prayed this prayer\n",
    ];
    for v in variants {
        let p = V1PrayerFile::parse(Path::new("p.txt"), v.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(p.render()).unwrap(), v);
    }
    let temp = V1PrayerFile::parse(Path::new("p"), variants[3].as_bytes()).unwrap();
    assert_eq!(temp.id, "temp");
}

#[test]
fn crlf_prayer_file_reads_like_its_lf_twin() {
    let crlf = HEAL_COPY.replace('\n', "\r\n");
    let p = V1PrayerFile::parse(Path::new("p"), crlf.as_bytes()).unwrap();
    let lf = V1PrayerFile::parse(Path::new("p"), HEAL_COPY.as_bytes()).unwrap();
    assert!(p.crlf);
    assert_eq!(p.text, lf.text);
    assert_eq!(p.activity, lf.activity);
    assert_eq!(p.render(), crlf.as_bytes());
    // a CRLF monthly log: records read without the `\r`, rendered back with it
    let users = USERS.replace('\n', "\r\n");
    let log = V1MonthlyLog::<Registrations>::parse(Path::new("u"), users.as_bytes()).unwrap();
    assert!(log.crlf);
    let regs: Vec<_> = log.records().collect();
    assert_eq!(regs[0].name, "Mary O'Neil");
    assert_eq!(regs[0].inviter, None);
    assert_eq!(log.render(), users.as_bytes());
}

#[test]
fn monthly_logs_parse_with_one_parser() {
    let users = V1MonthlyLog::<Registrations>::parse(Path::new("u"), USERS.as_bytes()).unwrap();
    assert_eq!(users.month, Some((2025, 6)));
    assert_eq!(users.title, "User Registrations");
    let regs: Vec<_> = users.records().collect();
    assert_eq!(regs[0].inviter, None);
    assert_eq!(regs[1].inviter.as_deref(), Some("Mary O'Neil"));
    assert_eq!(regs[1].name, "Anne - Marie");
    let act = V1MonthlyLog::<ActivityLog>::parse(Path::new("a"), ACTIVITY.as_bytes()).unwrap();
    let entries: Vec<_> = act.records().collect();
    assert_eq!(entries[1].at.unwrap().to_string(), "2025-06-29 19:33:00");
    assert_eq!(
        entries[1].text,
        format!("Mary O'Neil submitted prayer {ID} (healing)")
    );
    assert_eq!(act.render(), ACTIVITY.as_bytes());
}

#[test]
fn pipe_logs_parse_into_typed_records() {
    let s = V1MonthlyLog::<SessionLog>::parse(Path::new("s"), SESSIONS.as_bytes()).unwrap();
    assert_eq!(s.month, Some((2025, 7)));
    assert_eq!(s.title, "Sessions");
    let r: Vec<_> = s.records().collect();
    assert_eq!(r[0].device, "Mozilla/5.0 (X11_ Linux)");
    assert_eq!(r[0].fully_authenticated, "yes");
    assert_eq!(
        (r[1].username.as_str(), r[1].ip.as_str()),
        ("Anne - Marie", "")
    );
    assert_eq!(s.render(), SESSIONS.as_bytes());
    let roles = V1MonthlyLog::<RoleAssignmentLog>::parse(Path::new("r"), ROLES.as_bytes()).unwrap();
    let r: Vec<_> = roles.records().collect();
    assert_eq!(
        (
            r[0].user.as_str(),
            r[0].role.as_str(),
            r[0].granted_by.as_str()
        ),
        ("Pastor Dave", "deactivated", "admin")
    );
    assert_eq!(r[0].at.at.to_string(), "2025-08-02 10:00:00.123456");
    assert_eq!(r[1].details, "User reactivated by admin");
    assert_eq!(roles.render(), ROLES.as_bytes());
    let inv = V1MonthlyLog::<InviteUsageLog>::parse(Path::new("i"), INVITES.as_bytes()).unwrap();
    let r: Vec<_> = inv.records().collect();
    assert!(!r[0].is_claim());
    assert!(r[1].is_claim());
    assert_eq!(r[1].used_by, "Anne - Marie");
    assert_eq!(inv.render(), INVITES.as_bytes());
}

#[test]
fn export_all_files_have_two_blank_lines_and_no_final_newline() {
    let marks =
        V1MonthlyLog::<ExportMarks>::parse(Path::new("m"), EXPORT_MARKS.as_bytes()).unwrap();
    assert_eq!(marks.month, None);
    assert_eq!(marks.title, "Prayer Marks");
    assert!(!marks.final_newline);
    assert_eq!(
        marks.lines[..3],
        [
            V1LogLine::Format("id|created_at|prayer_id|username".into()),
            V1LogLine::Blank,
            V1LogLine::Blank
        ]
    );
    let r: Vec<_> = marks.records().collect();
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[1].id.as_str(), r[1].username.as_str()),
        ("m2", "Anne - Marie")
    );
    assert_eq!(marks.render(), EXPORT_MARKS.as_bytes());
    let tokens =
        V1MonthlyLog::<ExportInviteTokens>::parse(Path::new("t"), EXPORT_TOKENS.as_bytes())
            .unwrap();
    let t = tokens.records().next().unwrap();
    assert_eq!((t.usage_count, t.max_uses.as_str()), (1, "unlimited"));
    assert_eq!(tokens.render(), EXPORT_TOKENS.as_bytes());
    let usage =
        V1MonthlyLog::<ExportInviteUsage>::parse(Path::new("u"), EXPORT_USAGE.as_bytes()).unwrap();
    let u = usage.records().next().unwrap();
    assert_eq!(
        (u.token.as_str(), u.user.as_str()),
        ("tok1", "Anne - Marie")
    );
    assert_eq!(usage.render(), EXPORT_USAGE.as_bytes());
    let attrs = V1UserAttributesFile::parse(Path::new("a"), USER_ATTRS.as_bytes()).unwrap();
    let users = attrs.users();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].username, "Anne - Marie");
    assert_eq!(users[0].get("supporter_since"), Some("2025-07-01"));
    assert_eq!(users[1].get("is_supporter"), Some("false"));
    assert!(attrs.unreadable().is_empty());
    assert_eq!(attrs.render(), USER_ATTRS.as_bytes());
}

#[test]
fn written_tree_round_trips_and_scans() {
    let dir = write_tree();
    let archive = scan_v1_tree(dir.path()).unwrap();
    assert!(archive.problems.is_empty(), "{:?}", archive.problems);
    assert!(archive.unreadable.is_empty(), "{:?}", archive.unreadable);
    assert_eq!(archive.files.len(), 13);
    assert_eq!(archive.prayers.len(), 2);
    assert_eq!(archive.registrations.len(), 2);
    assert_eq!(archive.registrations[1].line, 4);
    assert_eq!(archive.role_assignments.len(), 2);
    assert_eq!(archive.invite_claims.len(), 1, "creations are not claims");
    assert_eq!(archive.invite_claims[0].line, 5);
    let mut marks = Vec::new();
    archive
        .for_each_mark_line(|pos, record| {
            marks.push((pos, record));
            Ok(())
        })
        .unwrap();
    // the file's three acts and the heal copy's one, each with the copy's own prayer id
    assert_eq!(marks.len(), 4);
    assert!(marks.iter().all(|(_, m)| m.prayer_id == ID));
    assert_eq!(marks[2].1.user, "Anne - Marie");
    assert_eq!(marks[3].0, MarkLinePos { file: 1, line: 7 });
    let (path, again) = archive.mark_line(marks[2].0).unwrap();
    assert_eq!(path, "prayers/2025/06/2025_06_29_prayer_at_1933.txt");
    assert_eq!(again, marks[2].1);
    // the `_2` file holds the same prayer id: both are its files
    assert_eq!(
        archive.prayer_paths(ID),
        vec![
            "prayers/2025/06/2025_06_29_prayer_at_1933.txt",
            "prayers/2025/06/2025_06_29_prayer_at_1933_2.txt"
        ]
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
    assert_eq!(round_trip_tree(dir.path()), 11);
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
    // a line of the activity section no shape fits is its own problem; the file still reads
    let bad = "Prayer a by b\nSubmitted June 29 2025 at 19:33\n\nText\n\nActivity:\n\
               June 30 2025 at 08:01 - Bob prayed this prayer\nsomething\n\
               June 30 2025 at 08:02 - Bob prayed this prayer\n";
    let p = V1PrayerFile::parse(Path::new("prayers/2025/06/x.txt"), bad.as_bytes()).unwrap();
    assert_eq!(p.unreadable, vec![(8, "something".to_string())]);
    assert_eq!(p.prayed().count(), 2);
    assert_eq!(p.render(), bad.as_bytes());
    let err = V1PrayerFile::parse(Path::new("p"), b"Hello\n").unwrap_err();
    assert!(err.to_string().starts_with("p:1: "), "{err}");
    let err =
        V1PrayerFile::parse(Path::new("p"), b"Prayer a by b\nSubmitted yesterday\n").unwrap_err();
    assert!(err.to_string().starts_with("p:2: "), "{err}");
    // A line no shape fits is kept as such (R-ARCHIVE-UNREADABLE), and renders back as written.
    let odd = b"User Registrations for June 2025\n\nnot a registration\n";
    let log = V1MonthlyLog::<Registrations>::parse(Path::new("m"), odd).unwrap();
    assert_eq!(
        log.lines[1],
        V1LogLine::Unreadable("not a registration".into())
    );
    assert_eq!(log.render(), odd);
    // bytes that are not UTF-8 still make the file unreadable, naming the line
    let err = V1MonthlyLog::<Registrations>::parse(
        Path::new("m"),
        b"User Registrations for June 2025\n\nnot a line\n\n\xff\n",
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("m:5: "), "{err}");
    let err = V1MonthlyLog::<Registrations>::parse(Path::new("m"), b"Registrations in June\n")
        .unwrap_err();
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
    let prayer = dir
        .path()
        .join("prayers/2025/06/2025_06_29_prayer_at_1933_2.txt");
    fs::write(&prayer, format!("{HEAL_COPY}not an activity\n")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("users/evil_users.txt")).unwrap();
    let archive = scan_v1_tree(dir.path()).unwrap();
    assert_eq!(archive.problems.len(), 2, "{:?}", archive.problems);
    assert!(archive
        .problems
        .iter()
        .any(|p| p.message.contains("2025_07_users.txt:1")));
    // the bad lines are noted with their file and number; the files' other lines are still read
    assert_eq!(archive.registrations.len(), before);
    assert_eq!(archive.prayers.len(), 2);
    assert_eq!(archive.unreadable.len(), 2, "{:?}", archive.unreadable);
    let (kind, line) = &archive.unreadable[0];
    assert_eq!(*kind, V1FileKind::Prayer);
    assert_eq!((line.line, line.record.as_str()), (8, "not an activity"));
    let (kind, line) = &archive.unreadable[1];
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
