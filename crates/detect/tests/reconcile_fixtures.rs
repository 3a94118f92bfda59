//! Reconciliation of the committed fixtures (`fixtures/g1-s`, `fixtures/g3-s`, and
//! `fixtures/g3-s-chicago`, written by a server in America/Chicago: database + v1 tree) finds exactly the generator's `archive_expected` entries of the rules
//! `R-ARCHIVE-ONLY`, `R-ARCHIVE-MISSING` and `R-ARCHIVE-MISMATCH`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use thywill_detect::clock::{default_local_since, Clock};
use thywill_detect::reconcile::{reconcile, reconcile_input, scan_v1_tree, ReconcileOptions};
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
    check_on(name, Clock::utc());
}

/// [`check`] for a tree written by a server on `clock`.
fn check_on(name: &str, clock: Clock) {
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
    let input = reconcile_input(&db).unwrap();
    let archive = scan_v1_tree(&dir.join("text_archives")).unwrap();
    assert!(archive.problems.is_empty(), "{:?}", archive.problems);
    let opts = ReconcileOptions {
        clock,
        ..ReconcileOptions::default()
    };
    let findings = reconcile(&archive, &input, &opts).expect("the tree is readable");
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

#[test]
fn g3_chicago_reconciliation_matches_the_truth() {
    let zone = Clock::parse_zone("America/Chicago").unwrap();
    check_on("g3-s-chicago", Clock::new(zone, default_local_since()));
}
