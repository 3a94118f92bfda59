//! The operator's decisions (#19): the template lists exactly the quarantined rows of each
//! committed fixture, and reads back as a decisions file that changes nothing.

mod support;

use std::collections::BTreeSet;

use support::{as_of, fixture, FIXTURES};
use thywill_detect::decisions::{Choice, Decisions};
use thywill_pipeline::{analyze_with_template, AnalyzeOptions, CommonOptions, ProgressMode};

/// Analyze options of a committed fixture.
fn analyze_opts(name: &str) -> AnalyzeOptions {
    AnalyzeOptions {
        common: CommonOptions {
            v1_db: fixture(name).join("v1.db"),
            as_of: Some(as_of()),
            progress: ProgressMode::Silent,
            ..Default::default()
        },
    }
}

#[test]
fn the_template_lists_exactly_the_quarantined_rows_of_each_fixture() {
    for name in FIXTURES {
        let (report, template) = analyze_with_template(&analyze_opts(name)).unwrap();
        let want: BTreeSet<(String, String)> = report
            .findings
            .iter()
            .map(Result::unwrap)
            .filter(|f| f.decision == "quarantined")
            .map(|f| (f.v1_table, f.v1_key))
            .collect();
        assert!(!want.is_empty(), "{name}: the fixture quarantines nothing");
        let parsed = Decisions::parse("template.toml", template.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: the template does not read back: {e}"));
        let got: BTreeSet<(String, String)> = parsed
            .entries
            .iter()
            .map(|e| (e.table.clone(), e.key.clone()))
            .collect();
        assert_eq!(got, want, "{name}: the template's rows");
        assert_eq!(
            parsed.entries.len(),
            want.len(),
            "{name}: one entry per row"
        );
        assert!(
            parsed
                .entries
                .iter()
                .all(|e| e.choice == Choice::KeepQuarantined && e.rowid.is_some()),
            "{name}: every entry starts as keep_quarantined, with its rowid"
        );
        assert!(
            template.contains("# original: {"),
            "{name}: original values"
        );
        assert!(template.contains("# choices:"), "{name}: the choices");
    }
}
