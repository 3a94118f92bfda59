//! The migration's report over a committed fixture whose v1 tree was damaged: the detector's
//! reconciliation (`thywill_detect::reconcile`, tested on its own in thywill-detect) reaches the
//! report through the pipeline.

use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// One line of `users/YYYY_MM_users.txt` in no shape v1 writes is a finding of its own
/// (`R-ARCHIVE-UNREADABLE`: file, line number, the line) in the migration's report, and the rest
/// of the reconciliation still runs: an extra registration in the same file is still found.
#[test]
fn an_unreadable_archive_line_is_a_finding_and_the_rest_is_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("text_archives");
    copy_tree(&fixture("g1-s").join("text_archives"), &tree);
    let users = tree.join("users/2025_05_users.txt");
    let mut text = std::fs::read_to_string(&users).unwrap();
    let bad_line = text.lines().count() + 1;
    text.push_str("May 31 2025 at 23:59 Zed -- who knows what this is\n");
    text.push_str("May 31 2025 at 23:59 - Zed Unknown joined directly\n");
    std::fs::write(&users, text).unwrap();

    let v2 = dir.path().join("v2.db");
    let opts = thywill_pipeline::MigrateOptions {
        common: thywill_pipeline::CommonOptions {
            v1_db: fixture("g1-s").join("v1.db"),
            archives_v1: Some(tree),
            policy: thywill_pipeline::Policy::Repair,
            as_of: Some(
                thywill_pipeline::NaiveDateTime::parse_from_str(
                    "2026-01-01 00:00:00",
                    "%Y-%m-%d %H:%M:%S",
                )
                .unwrap(),
            ),
            test_account_names: Vec::new(),
            clock: Default::default(),
            invite_hours: None,
            progress: thywill_pipeline::ProgressMode::Silent,
            ..Default::default()
        },
        v2_url: format!("sqlite://{}", v2.display()),
        archives_v2: None,
        dry_run: true,
        replace: false,
        ..Default::default()
    };
    let report = thywill_pipeline::migrate(&opts).unwrap();
    let found = |rule: &str, needle: &str| {
        report
            .archive_findings
            .iter()
            .any(|f| f.rule == rule && f.reason.contains(needle))
    };
    assert!(
        found(
            "R-ARCHIVE-UNREADABLE",
            &format!("line {bad_line}: `May 31 2025 at 23:59 Zed -- who knows what this is`")
        ),
        "{:#?}",
        report.archive_findings
    );
    assert!(report
        .archive_findings
        .iter()
        .any(|f| f.rule == "R-ARCHIVE-UNREADABLE" && f.reason.contains("users/2025_05_users.txt")));
    assert!(
        found("R-ARCHIVE-ONLY", "has no user row"),
        "the rest of the reconciliation ran"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}
