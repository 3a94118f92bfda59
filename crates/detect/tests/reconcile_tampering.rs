//! The reconciliation on real-format trees written to disk by the fixture generator (its
//! independent oracle: written from `spec/v1-real.md`, not from the reader): an untouched clean
//! tree reports nothing, and each kind of tampering with the files is found, or, for a
//! `prayed this prayer` line taken away, rightly not found (rows without lines are fine).

use std::fs;
use std::path::{Path, PathBuf};

use thywill_detect::reconcile::{
    reconcile, reconcile_input, scan_v1_tree, ArchiveFinding, ArchiveRule, ReconcileOptions,
    RecordKind,
};
use thywill_fixturegen::{generate, GenOptions, Generation, Size};
use thywill_v1::V1Database;

/// A clean (corruption 0) generated database and archive tree.
fn clean(g: Generation) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = GenOptions::new(g, Size::S, dir.path());
    opts.corruption_rate = 0.0;
    opts.archives = true;
    generate(&opts).unwrap();
    dir
}

fn tree(dir: &Path) -> PathBuf {
    dir.join("text_archives")
}

fn findings(dir: &Path) -> Vec<ArchiveFinding> {
    let db = V1Database::open(dir.join("v1.db")).unwrap();
    let archive = scan_v1_tree(&tree(dir)).unwrap();
    assert!(archive.problems.is_empty(), "{:?}", archive.problems);
    reconcile(
        &archive,
        &reconcile_input(&db).unwrap(),
        &ReconcileOptions::default(),
    )
    .expect("the tree is readable")
}

/// The first prayer file (path order) holding a `prayed this prayer` line, and its text.
fn prayer_with_marks(dir: &Path) -> (PathBuf, String) {
    let mut files: Vec<PathBuf> = walk(&tree(dir).join("prayers"));
    files.sort();
    files
        .into_iter()
        .filter(|p| {
            p.parent()
                .and_then(|d| d.parent())
                .is_some_and(|d| d != tree(dir))
        })
        .find_map(|p| {
            let text = fs::read_to_string(&p).ok()?;
            text.contains(" prayed this prayer\n").then_some((p, text))
        })
        .expect("a prayer file with marks")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The first `prayed this prayer` line of `text`.
fn first_prayed(text: &str) -> &str {
    text.lines()
        .find(|l| l.ends_with(" prayed this prayer"))
        .unwrap()
}

fn brief(f: &[ArchiveFinding]) -> Vec<(ArchiveRule, RecordKind)> {
    f.iter().map(|f| (f.rule, f.kind)).collect()
}

#[test]
fn untouched_clean_trees_report_nothing() {
    for g in [Generation::G1, Generation::G3] {
        let dir = clean(g);
        let f = findings(dir.path());
        assert!(f.is_empty(), "{g}: {f:#?}");
    }
}

#[test]
fn an_extra_prayed_line_is_found_and_a_missing_one_is_not() {
    let dir = clean(Generation::G1);
    let (path, text) = prayer_with_marks(dir.path());
    let line = first_prayed(&text).to_string();
    // a same-minute repeat beyond the rows: a separate act the database lacks
    fs::write(&path, text.replacen(&line, &format!("{line}\n{line}"), 1)).unwrap();
    let f = findings(dir.path());
    assert_eq!(brief(&f), [(ArchiveRule::Only, RecordKind::Mark)], "{f:#?}");
    let member = line
        .split_once(" - ")
        .unwrap()
        .1
        .strip_suffix(" prayed this prayer")
        .unwrap();
    assert!(f[0].key.ends_with(&format!("|{member}")), "{}", f[0].key);
    let rel = path.strip_prefix(tree(dir.path())).unwrap();
    assert_eq!(f[0].path.as_deref(), rel.to_str());
    // the line taken away: the row has no line, which is no finding
    fs::write(&path, text.replacen(&format!("{line}\n"), "", 1)).unwrap();
    let f = findings(dir.path());
    assert!(
        f.is_empty(),
        "a row without a line is not a finding: {f:#?}"
    );
}

#[test]
fn a_retimed_prayed_line_is_a_mismatch() {
    let dir = clean(Generation::G3);
    let (path, text) = prayer_with_marks(dir.path());
    let line = first_prayed(&text).to_string();
    let (time, rest) = line.split_once(" - ").unwrap();
    // the same act a year later
    let later = time.replacen(" 2025 at ", " 2026 at ", 1);
    fs::write(&path, text.replacen(&line, &format!("{later} - {rest}"), 1)).unwrap();
    let f = findings(dir.path());
    assert_eq!(
        brief(&f),
        [(ArchiveRule::Mismatch, RecordKind::Mark)],
        "{f:#?}"
    );
    assert!(f[0].rowid.is_some());
    assert!(f[0].detail.contains(&later), "{}", f[0].detail);
}

#[test]
fn a_changed_request_text_is_a_mismatch() {
    let dir = clean(Generation::G1);
    let (path, text) = prayer_with_marks(dir.path());
    // the request is the paragraph after the header's blank line
    let (head, body) = text.split_once("\n\n").unwrap();
    fs::write(&path, format!("{head}\n\nSomeone else's words.\n{body}")).unwrap();
    let f = findings(dir.path());
    assert_eq!(
        brief(&f),
        [(ArchiveRule::Mismatch, RecordKind::Prayer)],
        "{f:#?}"
    );
    assert!(f[0].detail.contains("text:"), "{}", f[0].detail);
}

#[test]
fn an_extra_registration_line_is_found() {
    let dir = clean(Generation::G3);
    let users = tree(dir.path()).join("users/2025_06_users.txt");
    let mut text = fs::read_to_string(&users).unwrap();
    text.push_str("June 30 2025 at 23:59 - Anne - Marie Nobody joined directly\n");
    fs::write(&users, text).unwrap();
    let f = findings(dir.path());
    assert_eq!(brief(&f), [(ArchiveRule::Only, RecordKind::User)], "{f:#?}");
    assert_eq!(f[0].key, "Anne - Marie Nobody");
}

#[test]
fn g3_deactivation_and_claim_lines_are_reconciled() {
    let dir = clean(Generation::G3);
    let root = tree(dir.path());
    fs::create_dir_all(root.join("roles")).unwrap();
    fs::write(
        root.join("roles/2025_08_role_assignments.txt"),
        "Role Assignments for August 2025\n\
         Format: timestamp|user_id|role_name|action|granted_by|expires_at|details\n\n\
         2025-08-02T10:00:00.123456|Pastor Dave|deactivated|assigned|admin||Deactivated by admin admin\n\
         2025-08-03T10:00:00.123456|Pastor Dave|user|assigned|admin||User reactivated by admin\n",
    )
    .unwrap();
    let f = findings(dir.path());
    assert_eq!(
        brief(&f),
        [(ArchiveRule::Only, RecordKind::Grant)],
        "{f:#?}"
    );
    assert_eq!(f[0].key, "Pastor Dave");
    fs::remove_file(root.join("roles/2025_08_role_assignments.txt")).unwrap();
    // a claim line moved by a day: a mismatch with its row; a claim nobody made: archive-only
    let usage = walk(&root.join("system"))
        .into_iter()
        .find(|p| {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .any(|l| l.ends_with("|token_used") && !l.contains("||"))
        })
        .unwrap();
    let text = fs::read_to_string(&usage).unwrap();
    let claim = text
        .lines()
        .find(|l| l.ends_with("|token_used") && !l.contains("||"))
        .unwrap()
        .to_string();
    let moved = claim.replacen("2025-0", "2024-0", 1);
    let ghost =
        "2025-06-30T10:00:00.000001|feedfacefeedfacefeedfacefeedface|Nobody|Pastor Dave|token_used";
    fs::write(
        &usage,
        format!("{}{ghost}\n", text.replacen(&claim, &moved, 1)),
    )
    .unwrap();
    let mut f = brief(&findings(dir.path()));
    f.sort();
    assert_eq!(
        f,
        [
            (ArchiveRule::Only, RecordKind::Claim),
            (ArchiveRule::Mismatch, RecordKind::Claim)
        ]
    );
}

#[test]
fn a_heal_copy_is_not_counted_twice_and_an_unreadable_line_is_its_own_finding() {
    let dir = clean(Generation::G1);
    let (path, text) = prayer_with_marks(dir.path());
    // heal-archives wrote a `_2` copy holding the same prayer id and the same acts
    let copy = path.with_file_name(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".txt", "_2.txt"),
    );
    fs::write(&copy, &text).unwrap();
    let f = findings(dir.path());
    assert!(f.is_empty(), "{f:#?}");
    // a line of no shape: reported with its file and line; the rest still reconciled
    let line = first_prayed(&text).to_string();
    fs::write(
        &copy,
        text.replacen(&line, &format!("{line}\n~~ torn line ~~"), 1),
    )
    .unwrap();
    let f = findings(dir.path());
    assert_eq!(
        brief(&f),
        [(ArchiveRule::Unreadable, RecordKind::Prayer)],
        "{f:#?}"
    );
    assert!(f[0].detail.contains("~~ torn line ~~"), "{}", f[0].detail);
}
