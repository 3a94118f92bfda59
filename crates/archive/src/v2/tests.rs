use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use chrono::NaiveDateTime;

use super::*;
use crate::error::ArchiveError;

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn hexid(n: u32) -> String {
    format!("{n:032x}")
}

fn user(n: u32, at: &str) -> ArchiveUser {
    ArchiveUser {
        id: hexid(n),
        display_name: format!("Member {n}"),
        religious_preference: "christian".into(),
        email: None,
        invited_by: if n == 1 {
            InvitedBy::DirectSignup
        } else {
            InvitedBy::User("Member 1".into())
        },
        created_at: t(at),
    }
}

fn prayer(n: u32, at: &str) -> ArchivePrayer {
    ArchivePrayer {
        id: hexid(1000 + n),
        author_name: "Member 1".into(),
        target_audience: "all".into(),
        created_at: t(at),
        text: format!("Please pray for\nthe family {n}."),
        generated_prayer: n.is_multiple_of(2).then(|| "Lord, hold them.".to_string()),
        marks: Vec::new(),
        answer: None,
    }
}

fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn user_file_matches_the_spec() {
    let mut u = user(2, "2025-06-29 19:33:00");
    u.email = Some("m@example.org".into());
    let text = String::from_utf8(render_user(&u).unwrap()).unwrap();
    assert_eq!(
        text,
        "User Registration\nDate: 2025-06-29T19:33:00\nUser ID: 00000000000000000000000000000002\n\
         Display Name: Member 2\nReligious Preference: christian\nEmail: on file\n\
         Invited By: Member 1\n\nRegistration completed successfully.\n"
    );
    u.email = None;
    u.invited_by = InvitedBy::MigratedFromV1;
    let text = String::from_utf8(render_user(&u).unwrap()).unwrap();
    assert!(text.contains("Email: not provided\nInvited By: migrated from v1\n"));
}

#[test]
fn prayer_file_matches_the_spec() {
    let mut p = prayer(2, "2025-06-29 19:33:00");
    p.marks = vec![
        ArchiveMark {
            marked_at: t("2025-06-30 08:00:00"),
            marker_name: "Zoe".into(),
        },
        ArchiveMark {
            marked_at: t("2025-06-29 20:00:00"),
            marker_name: "Bob".into(),
        },
    ];
    p.answer = Some(ArchiveAnswer {
        answered_at: t("2025-07-01 09:00:00"),
        testimony: Some("He did.".into()),
    });
    let text = String::from_utf8(render_prayer(&p).unwrap()).unwrap();
    assert_eq!(
        text,
        "Prayer Request\nDate: 2025-06-29T19:33:00\nPrayer ID: 000000000000000000000000000003ea\n\
         Author: Member 1\nTarget Audience: all\n\nRequest:\nPlease pray for\nthe family 2.\n\n\
         Generated Community Prayer:\nLord, hold them.\n\nPrayer request submitted successfully.\n\n\
         Prayer Mark - 2025-06-29T20:00:00: Prayed by Bob\n\
         Prayer Mark - 2025-06-30T08:00:00: Prayed by Zoe\n\n\
         PRAYER ANSWERED - 2025-07-01T09:00:00\nTestimony: He did.\nPraise God for answered prayer!\n"
    );
    let bare =
        String::from_utf8(render_prayer(&prayer(1, "2025-06-29 19:33:00")).unwrap()).unwrap();
    assert!(
        bare.ends_with("the family 1.\n\nPrayer request submitted successfully.\n"),
        "{bare}"
    );
}

#[test]
fn line_breaks_in_one_line_fields_are_refused_naming_the_record() {
    let mut u = user(3, "2025-06-29 19:33:00");
    u.display_name = "Eve\nAdmin".into();
    let err = render_user(&u).unwrap_err();
    assert!(matches!(
        err,
        ArchiveError::LineBreak {
            field: "display_name",
            ..
        }
    ));
    assert!(err.to_string().contains(&hexid(3)), "{err}");
    let mut p = prayer(1, "2025-06-29 19:33:00");
    p.marks.push(ArchiveMark {
        marked_at: t("2025-06-29 19:34:00"),
        marker_name: "a\r\nb".into(),
    });
    let err = render_prayer(&p).unwrap_err();
    assert!(
        err.to_string().contains(&hexid(1001)) && err.to_string().contains("marker_name"),
        "{err}"
    );
    let mut p = prayer(1, "2025-06-29 19:33:00");
    p.id = "../../etc/passwd".into();
    assert!(matches!(
        render_prayer(&p).unwrap_err(),
        ArchiveError::InvalidId { .. }
    ));
}

/// A little community history: (users, prayers after all events).
fn history() -> (Vec<ArchiveUser>, Vec<ArchivePrayer>) {
    let users: Vec<ArchiveUser> = (1..=4)
        .map(|n| user(n, &format!("2025-0{}-0{} 10:00:00", 5 + n / 3, n)))
        .collect();
    let mut prayers: Vec<ArchivePrayer> = (1..=5)
        .map(|n| prayer(n, &format!("2025-06-1{n} 12:00:00")))
        .collect();
    for (i, p) in prayers.iter_mut().enumerate() {
        for k in 0..(i * 3) {
            p.marks.push(ArchiveMark {
                // Same instants on purpose (ties), spread over two months.
                marked_at: t(&format!("2025-0{}-2{} 0{}:00:00", 6 + k % 2, k % 3, k % 4)),
                marker_name: format!("Member {}", 1 + (k + i) % 4),
            });
        }
    }
    prayers[3].answer = Some(ArchiveAnswer {
        answered_at: t("2025-07-02 10:00:00"),
        testimony: None,
    });
    prayers[4].answer = Some(ArchiveAnswer {
        answered_at: t("2025-06-15 12:00:00"),
        testimony: Some("Yes!\nTruly.".into()),
    });
    (users, prayers)
}

fn full_render(root: &Path, options: V2WriteOptions) -> V2WriteReport {
    let (users, prayers) = history();
    let mut w = V2ArchiveWriter::new(root, options).unwrap();
    for u in &users {
        assert_eq!(w.add_user(u).unwrap(), format!("users/{}.txt", u.id));
    }
    for p in &prayers {
        assert_eq!(w.add_prayer(p).unwrap(), format!("prayers/{}.txt", p.id));
    }
    w.finish().unwrap()
}

#[test]
fn incremental_operations_equal_a_full_render() {
    let full = tempfile::tempdir().unwrap();
    full_render(full.path(), V2WriteOptions::default());

    let inc = tempfile::tempdir().unwrap();
    let archive = V2Archive::open(inc.path());
    let (users, prayers) = history();
    for u in users.iter().rev() {
        archive.register_user(u).unwrap();
    }
    for p in &prayers {
        let mut state = p.clone();
        state.marks.clear();
        state.answer = None;
        archive.new_prayer(&state).unwrap();
        // Marks arrive out of order; each insert must land in the right place.
        for mark in p.marks.iter().rev() {
            state.marks.push(mark.clone());
            archive.mark_prayer(&state, mark).unwrap();
        }
        if p.answer.is_some() {
            state.answer = p.answer.clone();
            archive.answer_prayer(&state).unwrap();
        }
    }
    let a = read_tree(full.path());
    let b = read_tree(inc.path());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert_eq!(
            String::from_utf8_lossy(v),
            String::from_utf8_lossy(&b[k]),
            "{k} differs"
        );
    }
    assert!(a.contains_key("activity/2025-07.txt") && a.contains_key("community/2025-06.txt"));
}

#[test]
fn spilling_marks_gives_the_same_bytes_and_reruns_are_unchanged() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = full_render(a.path(), V2WriteOptions::default());
    let spill = tempfile::tempdir().unwrap();
    let options = V2WriteOptions {
        marks_in_memory: 2,
        spill_dir: Some(spill.path().to_path_buf()),
        batch_files: 3,
        ..V2WriteOptions::default()
    };
    let spilled = full_render(b.path(), options.clone());
    assert!(spilled.spilled && !first.spilled);
    assert_eq!(read_tree(a.path()), read_tree(b.path()));
    assert_eq!(first.manifest_sha256, spilled.manifest_sha256);
    assert_eq!(
        fs::read_dir(spill.path()).unwrap().count(),
        0,
        "spill folder cleaned up"
    );
    let again = full_render(b.path(), options);
    assert_eq!((again.created, again.updated), (0, 0));
    assert_eq!(again.unchanged, first.created);
    let manifest = fs::read_to_string(a.path().join("MANIFEST.sha256")).unwrap();
    let paths: Vec<&str> = manifest.lines().map(|l| &l[66..]).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert_eq!(paths.len(), first.manifest_files);
    assert!(!paths.contains(&"MANIFEST.sha256"));
}

#[test]
fn activity_and_community_formats() {
    let root = tempfile::tempdir().unwrap();
    full_render(root.path(), V2WriteOptions::default());
    let act = fs::read_to_string(root.path().join("activity/2025-07.txt")).unwrap();
    assert!(act.starts_with("Prayer Mark\nDate: 2025-07-2"), "{act}");
    assert!(
        act.contains("\nMarked By: Member ")
            && act.ends_with("User marked this prayer as prayed.\n\n")
    );
    let com = fs::read_to_string(root.path().join("community/2025-06.txt")).unwrap();
    assert!(
        com.contains("2025-06-03T10:00:00: User 'Member 3' joined the community\n"),
        "{com}"
    );
    assert!(com.contains("2025-06-15T12:00:00: Prayer request submitted by Member 1\n2025-06-15T12:00:00: Prayer answered - testimony by Member 1\n"), "{com}");
}

#[test]
fn carried_v1_files_enter_the_manifest() {
    let v1 = tempfile::tempdir().unwrap();
    fs::create_dir_all(v1.path().join("users")).unwrap();
    fs::write(
        v1.path().join("users/2025_06_users.txt"),
        "User Registrations for June 2025\n\n",
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut w = V2ArchiveWriter::new(root.path(), V2WriteOptions::default()).unwrap();
    w.add_user(&user(1, "2025-06-01 10:00:00")).unwrap();
    let carried = w.carry_v1(v1.path()).unwrap();
    assert_eq!(carried.v1_files_copied, 1);
    let report = w.finish().unwrap();
    assert_eq!(report.manifest_files, 3);
    let manifest = fs::read_to_string(root.path().join("MANIFEST.sha256")).unwrap();
    assert!(
        manifest.contains("  users/2025_06_users.txt\n"),
        "{manifest}"
    );
}
