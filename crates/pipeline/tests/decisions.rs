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

/// g1-s's quarantined members (hex keys): two blank names, a test account by name.
const BLANK: &str = "9cee7513ec5e462eae65e22f06175130";
const BLANK_TOO: &str = "b9af4b19138643e397b6951a1435ed6a";
const TEST_NAMED: &str = "b5dad88502684e1ea8a263bc39e038c6";
/// The prayer of `TEST_NAMED`, quarantined only as its dependant.
const TEST_NAMED_PRAYER: &str = "a9638c11b7e64429b89706dc86151ec0";

/// One `[[decision]]` table.
fn entry(rule: &str, table: &str, key: &str, rest: &str) -> String {
    format!("[[decision]]\nrule = \"{rule}\"\ntable = \"{table}\"\nkey = \"{key}\"\n{rest}\n\n")
}

/// The file of the user choices on g1-s: carry, merge_into, not_a_test_account.
fn user_choices() -> String {
    [
        entry(
            "R-USER-EMPTY-NAME",
            "user",
            BLANK,
            "choice = \"carry\"\ndisplay_name = \"Ruth Quarantine\"\nnote = \"she told us\"",
        ),
        entry(
            "R-USER-EMPTY-NAME",
            "user",
            BLANK_TOO,
            &format!("choice = \"merge_into\"\nmerge_into = \"{BLANK}\"\nnote = \"same person\""),
        ),
        entry(
            "R-USER-TEST-ACCOUNT",
            "user",
            TEST_NAMED,
            "choice = \"not_a_test_account\"\nnote = \"a real member\"",
        ),
    ]
    .concat()
}

/// Migration options of g1-s with this decisions file.
fn with_decisions(url: &str, text: &str) -> thywill_pipeline::MigrateOptions {
    let mut opts = support::options("g1-s", url, thywill_pipeline::Policy::Repair);
    opts.common.decisions = Some(Decisions::parse("decisions.toml", text.as_bytes()).unwrap());
    opts
}

#[test]
fn each_user_choice_gives_the_rows_and_findings_it_promises() {
    for target in support::TestTarget::all() {
        let report = support::run(&with_decisions(target.url(), &user_choices()));
        assert!(report.ok);
        let d = report.decisions.clone().expect("the report names the file");
        assert_eq!((d.entries_applied, d.sha256.len()), (3, 64));
        let mut db = target.open();
        let mut users = std::collections::BTreeMap::new();
        db.read_table::<thywill_v2::rows::User, thywill_v2::Error, _>(|u| {
            users.insert(u.id, u.display_name);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            users.get(BLANK).map(String::as_str),
            Some("Ruth Quarantine")
        );
        assert_eq!(
            users.get(TEST_NAMED).map(String::as_str),
            Some("Prayer Test User")
        );
        assert!(!users.contains_key(BLANK_TOO), "merged, not written");
        let map = db.id_map().unwrap();
        assert!(
            map.iter()
                .any(|m| m.entity == "user" && m.v1_key == BLANK_TOO && m.v2_id == BLANK),
            "the merged member points at the survivor"
        );
        let mut prayers = Vec::new();
        db.read_table::<thywill_v2::rows::Prayer, thywill_v2::Error, _>(|p| {
            prayers.push((p.id, p.author_id));
            Ok(())
        })
        .unwrap();
        assert!(
            prayers.contains(&(TEST_NAMED_PRAYER.to_string(), TEST_NAMED.to_string())),
            "the member's prayer, quarantined only as a dependant, follows them"
        );
        let run = report.run_id.clone().unwrap();
        let findings = db.findings(&run).unwrap();
        let operator = |key: &str| {
            findings
                .iter()
                .find(|f| f.v1_key == key && f.reason.starts_with("operator:"))
                .map(|f| (f.decision.clone(), f.original_json.contains(key)))
        };
        assert_eq!(operator(BLANK), Some(("repaired".into(), true)));
        assert_eq!(operator(BLANK_TOO), Some(("merged".into(), true)));
        assert_eq!(operator(TEST_NAMED), Some(("repaired".into(), true)));
    }
}

/// A migration refused by its decisions file leaves the target as it was, and says which
/// entry is at fault (exit 2).
fn assert_refused(text: &str, words: &str) {
    for target in support::TestTarget::all() {
        let err = match Decisions::parse("decisions.toml", text.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(d) => {
                let mut opts =
                    support::options("g1-s", target.url(), thywill_pipeline::Policy::Repair);
                opts.common.decisions = Some(d);
                let e = thywill_pipeline::migrate(&opts).expect_err("refused");
                assert_eq!(e.exit_code(), 2, "{e}");
                e.to_string()
            }
        };
        assert!(err.contains(words), "{err}");
        let mut db = target.open();
        assert!(
            matches!(db.state("any"), Ok(thywill_v2::TargetState::Empty)),
            "nothing written: {err}"
        );
        assert!(db.runs().unwrap_or_default().is_empty(), "no run recorded");
    }
}

#[test]
fn an_entry_for_a_row_that_is_not_quarantined_is_refused_naming_it() {
    // A written member (the survivor of the merge above is quarantined, this one is not).
    let written = "079eda3c5c4949e88b69bc8690722b9d";
    let text = entry(
        "R-USER-EMPTY-NAME",
        "user",
        written,
        "choice = \"carry\"\ndisplay_name = \"X Y\"",
    );
    assert_refused(
        &text,
        &format!("entry 1 (user \"{written}\", R-USER-EMPTY-NAME)"),
    );
    let text = entry(
        "R-USER-TEST-ACCOUNT",
        "user",
        "nobody",
        "choice = \"keep_quarantined\"",
    );
    assert_refused(&text, "no quarantined row has this key");
}

#[test]
fn a_value_v2_would_refuse_is_refused_before_any_write() {
    let text = entry(
        "R-USER-EMPTY-NAME",
        "user",
        BLANK,
        "choice = \"carry\"\ndisplay_name = \"\\tRuth\"",
    );
    assert_refused(&text, "entry 1 (user \"9cee7513ec5e462eae65e22f06175130\"");
    let text = entry(
        "R-USER-EMPTY-NAME",
        "user",
        BLANK,
        "choice = \"merge_into\"\nmerge_into = \"0000000000000000000000000000dead\"",
    );
    assert_refused(&text, "names no written member");
}

#[test]
fn each_prayer_choice_gives_the_rows_and_findings_it_promises() {
    // g1-s's prayers quarantined for a blank text, a missing author, a time no shape fits.
    let (blank, orphan, timeless) = (
        "f5d5a1e7de024e97a82da62cd9b2e510",
        "16e18884a0364fab94c49e4ca6390a7f",
        "35afcd4f021c432a9cee96c10903e842",
    );
    let text = [
        entry(
            "R-TEXT-LENGTH",
            "prayer",
            blank,
            "choice = \"carry\"\ntext = \"Pray for my family\"",
        ),
        entry(
            "R-ORPHAN",
            "prayer",
            orphan,
            "choice = \"carry\"\nauthor = \"Ruth Mensah\"",
        ),
        entry(
            "R-TIME",
            "prayer",
            timeless,
            "choice = \"carry\"\ntime = \"2025-07-01 09:30:00\"",
        ),
    ]
    .concat();
    for target in support::TestTarget::all() {
        let report = support::run(&with_decisions(target.url(), &text));
        let mut db = target.open();
        let mut prayers = std::collections::BTreeMap::new();
        db.read_table::<thywill_v2::rows::Prayer, thywill_v2::Error, _>(|p| {
            prayers.insert(p.id.clone(), p);
            Ok(())
        })
        .unwrap();
        assert_eq!(prayers[blank].text, "Pray for my family");
        assert_eq!(
            prayers[orphan].author_id,
            "079eda3c5c4949e88b69bc8690722b9d"
        );
        assert_eq!(
            prayers[timeless].created_at.to_string(),
            "2025-07-01 09:30:00"
        );
        let findings = db.findings(report.run_id.as_deref().unwrap()).unwrap();
        for key in [blank, orphan, timeless] {
            assert!(
                findings.iter().any(|f| f.v1_key == key
                    && f.decision == "repaired"
                    && f.reason.starts_with("operator:")),
                "{key}: the operator's finding"
            );
        }
    }
}

/// A target migrated by a tool from before `migration_runs.decisions_sha256`: its runs still
/// read, and the same source without a file is still "already migrated" (the new migration then
/// runs on the next write).
#[test]
fn a_target_from_before_the_decisions_column_still_reads() {
    let target = support::TestTarget::sqlite();
    let first = support::run(&support::options(
        "g1-s",
        target.url(),
        thywill_pipeline::Policy::Repair,
    ));
    let path = target.url().trim_start_matches("sqlite://").to_string();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "ALTER TABLE migration_runs DROP COLUMN decisions_sha256; \
         DELETE FROM __diesel_schema_migrations WHERE version LIKE '20261204000019%';",
    )
    .unwrap();
    drop(c);
    let mut db = target.open();
    assert_eq!(db.runs().unwrap().len(), 1);
    assert!(matches!(
        db.state(&first.source.sha256),
        Ok(thywill_v2::TargetState::AlreadyMigrated { .. })
    ));
    let again = support::run(&support::options(
        "g1-s",
        target.url(),
        thywill_pipeline::Policy::Repair,
    ));
    assert_eq!(again.outcome, "already_migrated");
}
