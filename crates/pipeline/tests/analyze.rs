//! `analyze` with a v1 archive tree: the reconciliation findings of the report are exactly the
//! generator's `archive_expected`, and the law is the same as without the tree apart from
//! `R-ARCHIVE-PATH` existence checks.

mod support;

use std::collections::BTreeSet;

use support::{as_of, fixture};
use thywill_pipeline::{analyze, AnalyzeOptions, CommonOptions, Policy, ProgressMode};

#[test]
fn archive_reconciliation_matches_the_truth() {
    let chicago = thywill_detect::clock::Clock::new(
        thywill_detect::clock::Clock::parse_zone("America/Chicago").unwrap(),
        thywill_detect::clock::default_local_since(),
    );
    for (name, clock) in [
        ("g1-s", Default::default()),
        ("g3-s", Default::default()),
        ("g3-s-chicago", chicago),
    ] {
        let truth = thywill_fixturegen::read_truth(&fixture(name).join("truth.json")).unwrap();
        let report = analyze(&AnalyzeOptions {
            common: CommonOptions {
                v1_db: fixture(name).join("v1.db"),
                archives_v1: Some(fixture(name).join("text_archives")),
                policy: Policy::Repair,
                as_of: Some(as_of()),
                test_account_names: Vec::new(),
                clock,
                invite_hours: None,
                progress: ProgressMode::Silent,
                ..Default::default()
            },
        })
        .unwrap();
        assert!(report.ok, "{name}");
        let got: BTreeSet<(String, String)> = report
            .archive_findings
            .iter()
            .map(|f| (f.rule.clone(), f.v1_key.clone()))
            .collect();
        let want: BTreeSet<(String, String)> = truth
            .archive_expected
            .iter()
            .filter(|f| f.rule.starts_with("R-ARCHIVE-") && f.rule != "R-ARCHIVE-PATH")
            .map(|f| (f.rule.clone(), f.key.clone()))
            .collect();
        assert!(
            !want.is_empty(),
            "{name}: the truth lists no archive reconciliation case"
        );
        assert_eq!(got, want, "{name}: reconciliation findings");
    }
}

/// Every finding of the report carries its whole original v1 row (the row its key names), the
/// JSON report has it under `original`, reads back equal, and a report written before the key
/// existed still reads.
#[test]
fn each_finding_carries_its_original_row() {
    let report = analyze(&AnalyzeOptions {
        common: CommonOptions {
            v1_db: fixture("g1-s").join("v1.db"),
            archives_v1: None,
            policy: Policy::Repair,
            as_of: Some(as_of()),
            test_account_names: Vec::new(),
            progress: ProgressMode::Silent,
            ..Default::default()
        },
    })
    .unwrap();
    let findings: Vec<_> = report.findings.iter().map(Result::unwrap).collect();
    assert!(!findings.is_empty());
    let mut keyed = 0;
    for f in &findings {
        let original = f.original.as_ref().expect("an original row");
        let row = original.as_object().expect("a row object");
        if f.v1_table == "prayer" && f.v1_key.len() == 32 {
            assert_eq!(row["id"].as_str(), Some(f.v1_key.as_str()), "{f:?}");
            keyed += 1;
        }
    }
    assert!(keyed > 0, "no prayer finding by id");

    let mut json = Vec::new();
    report.write_json(&mut json).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let listed = value["findings"].as_array().unwrap();
    assert!(listed.iter().all(|f| f["original"].is_object()));
    let back: thywill_pipeline::Report = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        back, report,
        "the JSON report reads back with its originals"
    );

    let mut old = value.clone();
    for f in old["findings"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("original");
    }
    let old: thywill_pipeline::Report = serde_json::from_value(old).unwrap();
    assert!(old.findings.iter().all(|f| f.unwrap().original.is_none()));
}
