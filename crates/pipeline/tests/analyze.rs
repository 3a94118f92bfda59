//! `analyze` with a v1 archive tree: the reconciliation findings of the report are exactly the
//! generator's `archive_expected`, and the law is the same as without the tree apart from
//! `R-ARCHIVE-PATH` existence checks.

mod support;

use std::collections::BTreeSet;

use support::{as_of, fixture};
use thywill_pipeline::{analyze, AnalyzeOptions, CommonOptions, Policy, ProgressMode};

#[test]
fn archive_reconciliation_matches_the_truth() {
    for name in ["g1-s", "g3-s"] {
        let truth = thywill_fixturegen::read_truth(&fixture(name).join("truth.json")).unwrap();
        let report = analyze(&AnalyzeOptions {
            common: CommonOptions {
                v1_db: fixture(name).join("v1.db"),
                archives_v1: Some(fixture(name).join("text_archives")),
                policy: Policy::Repair,
                as_of: Some(as_of()),
                test_account_names: Vec::new(),
                clock: Default::default(),
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
