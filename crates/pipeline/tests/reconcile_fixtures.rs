//! Reconciliation of the committed fixtures (`fixtures/g1-s`, `fixtures/g3-s`: database +
//! v1 tree) finds exactly the generator's `archive_expected` entries of the rules
//! `R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING` and `R-ARCHIVE-MISMATCH`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use thywill_archive::{reconcile, scan_v1_tree, ReconcileOptions};
use thywill_v1::V1Database;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

const RULES: [&str; 3] = ["R-ARCHIVE-ONLY", "R-ARCHIVE-MISSING", "R-ARCHIVE-MISMATCH"];

/// (table, rowid, key, rule, path relative to the v1 root)
type Entry = (String, Option<i64>, String, String, Option<String>);

fn check(name: &str) {
    let dir = fixture(name);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let want: BTreeSet<Entry> = truth["archive_expected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| RULES.contains(&e["rule"].as_str().unwrap()))
        .map(|e| {
            (
                e["table"].as_str().unwrap().to_string(),
                e["rowid"].as_i64(),
                e["key"].as_str().unwrap().to_string(),
                e["rule"].as_str().unwrap().to_string(),
                e["path"]
                    .as_str()
                    .map(|p| p.strip_prefix("text_archives/").unwrap_or(p).to_string()),
            )
        })
        .collect();
    assert!(!want.is_empty(), "{name}: no archive findings in the truth");
    let db = V1Database::open(dir.join("v1.db")).unwrap();
    let input = thywill_pipeline::reconcile_input(&db).unwrap();
    let archive = scan_v1_tree(&dir.join("text_archives")).unwrap();
    assert!(archive.problems.is_empty(), "{:?}", archive.problems);
    let findings =
        reconcile(&archive, &input, &ReconcileOptions::default()).expect("the tree is readable");
    let got: BTreeSet<Entry> = findings
        .iter()
        .map(|f| {
            (
                f.kind.table().to_string(),
                f.rowid,
                f.key.clone(),
                f.rule.id().to_string(),
                f.path.clone(),
            )
        })
        .collect();
    for f in &findings {
        eprintln!(
            "{name}: {} {:?} {} {:?}: {}",
            f.rule, f.kind, f.key, f.path, f.detail
        );
    }
    assert_eq!(got.len(), findings.len(), "{name}: a finding repeats");
    assert_eq!(got, want, "{name}: reconciliation differs from the truth");
}

#[test]
fn g1_reconciliation_matches_the_truth() {
    check("g1-s");
}

#[test]
fn g3_reconciliation_matches_the_truth() {
    check("g3-s");
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
            progress: thywill_pipeline::ProgressMode::Silent,
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
