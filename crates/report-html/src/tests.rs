//! The pages without a browser: escaping, the numbers, no external reference, masking.

use std::collections::BTreeMap;
use std::path::PathBuf;

use thywill_ops::cutover::{CutoverReport, STEPS};
use thywill_ops::status::{StepRecord, StepState};
use thywill_pipeline::report::{Feasibility, ReportFinding, SourceInfo, TableCounts};
use thywill_pipeline::{Report, StageTiming};
use thywill_validator::CheckResult;

use super::*;
use crate::view::{ORIGINAL_CHARS, PAGE_ROWS};

const HOSTILE: &str = "<script>document.title='pwned'</script>";

fn finding(table: &str, key: &str, rule: &str, decision: &str, reason: &str) -> ReportFinding {
    ReportFinding {
        v1_table: table.into(),
        v1_key: key.into(),
        rule: rule.into(),
        decision: decision.into(),
        reason: reason.into(),
        original: None,
    }
}

/// A migrate report with `extra` findings of `R-TIME` besides a hostile and an e-mail one.
fn report(extra: usize) -> Report {
    let mut findings = vec![
        finding(
            "prayer",
            HOSTILE,
            "R-TEXT-LENGTH",
            "quarantined",
            &format!("text {HOSTILE} is empty"),
        ),
        finding(
            "user",
            "u1",
            "R-USER-NAME",
            "repaired",
            "name \"alice.smith@example.org \" trimmed",
        ),
    ];
    findings.extend((0..extra).map(|i| {
        finding(
            "prayermark",
            &format!("m{i}"),
            "R-TIME",
            "repaired",
            "created_at in ISO form",
        )
    }));
    let mut by_rule = BTreeMap::new();
    for f in &findings {
        *by_rule.entry(f.rule.clone()).or_insert(0u64) += 1;
    }
    let mut tables = BTreeMap::new();
    tables.insert(
        "prayer".to_string(),
        TableCounts {
            read: 10,
            written: 9,
            repaired: 0,
            quarantined: 1,
            ..TableCounts::default()
        },
    );
    tables.insert(
        "prayermark".to_string(),
        TableCounts {
            read: 100_000 + extra as u64,
            written: 100_000 + extra as u64,
            repaired: extra as u64,
            ..TableCounts::default()
        },
    );
    tables.insert(
        "user".to_string(),
        TableCounts {
            read: 5,
            written: 4,
            repaired: 1,
            merged: 1,
            ..TableCounts::default()
        },
    );
    Report {
        report_version: 1,
        tool: "thywill-migrate".into(),
        tool_version: "0.1.0".into(),
        run_id: Some("run-1".into()),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: "2026-01-01T00:00:05Z".into(),
        policy: "repair".into(),
        dry_run: false,
        outcome: "migrated".into(),
        source: SourceInfo {
            path: "v1.db".into(),
            sha256: "ab".repeat(32),
            generation: "G1".into(),
            unknown_columns: vec!["prayer.mood".into()],
            not_carried_tables: [("notification_state".to_string(), 7u64)].into(),
            not_carried_columns: [("prayer.safety_score".to_string(), 3u64)].into(),
            clock: Default::default(),
            missing_index_entries: 2,
            email_db: None,
        },
        target: None,
        tables,
        findings_by_rule: by_rule,
        findings: findings.into(),
        archive_findings: vec![finding(
            "prayer",
            "p9",
            "R-ARCHIVE-ONLY",
            "reported",
            "prayers/2025/06/x.txt has no row",
        )],
        archives_recoverable: None,
        archives: None,
        stages: vec![
            StageTiming {
                name: "detect".into(),
                seconds: 1.5,
                rows: 1000,
            },
            StageTiming {
                name: "write".into(),
                seconds: 0.5,
                rows: 1000,
            },
        ],
        feasibility: Feasibility {
            feasible: true,
            notes: vec![],
        },
        decisions: None,
        ok: true,
    }
}

/// Every `src=`/`href=` of the page is a fragment, and no address of the web appears.
fn assert_self_contained(html: &str) {
    assert!(!html.contains("http://") && !html.contains("https://"));
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let value = &html[i + attr.len()..];
            assert!(
                value.starts_with("\"#"),
                "{attr} pointing outside: {}",
                &value[..value.len().min(60)]
            );
        }
    }
    assert!(!html.contains("url("), "CSS url() fetches");
    assert!(!html.contains("@import"));
}

#[test]
fn hostile_v1_text_is_escaped_everywhere() {
    let html = render_run(&report(0)).unwrap();
    assert!(!html.contains("<script"), "a script tag reached the page");
    assert!(html.contains("&lt;script&gt;document.title="));
    assert!(html.contains("<title>thywill-migrate — Migrated</title>"));
}

#[test]
fn templates_never_mark_anything_safe() {
    for (name, source) in TEMPLATES {
        assert!(!source.contains("|safe"), "{name} turns escaping off");
        assert!(!source.contains("autoescape"), "{name} turns escaping off");
    }
}

#[test]
fn the_view_has_the_reports_numbers() {
    let r = report(1234);
    let v = RunView::new(&r).unwrap();
    assert_eq!(v.verdict.headline, "Migrated");
    assert_eq!(v.tables.len(), r.tables.len());
    for t in &v.tables {
        assert_eq!(&t.counts, &r.tables[&t.name]);
        assert!(t.balances);
        let written: f64 = t.bar.segments[..2].iter().map(|s| s.value).sum();
        assert_eq!(written, t.counts.written as f64);
        let widths: f64 = t.bar.segments.iter().map(|s| s.width).sum();
        assert!((widths - 100.0).abs() < 0.1, "{}: {widths}", t.name);
        for s in &t.bar.segments {
            assert_eq!(s.width > 0.0, s.value > 0.0, "{}: {}", t.name, s.label);
        }
    }
    assert_eq!(v.findings_total, 1236);
    assert_eq!(v.rules.len(), r.findings_by_rule.len());
    for rule in &v.rules {
        assert_eq!(rule.count, r.findings_by_rule[&rule.rule]);
        assert_eq!(rule.listed as u64, rule.count);
        let paged: usize = rule.pages.iter().map(|p| p.rows.len()).sum();
        assert_eq!(paged, rule.listed);
        assert!(rule.pages.iter().all(|p| p.rows.len() <= PAGE_ROWS));
    }
    let time = v.rules.iter().find(|r| r.rule == "R-TIME").unwrap();
    assert_eq!(
        time.pages
            .iter()
            .map(|p| (p.first, p.last))
            .collect::<Vec<_>>(),
        [(1, 500), (501, 1000), (1001, 1234)]
    );
    assert_eq!(
        time.meaning,
        "A timestamp column not in the canonical shape."
    );
    assert_eq!(v.archive_total, 1);
    assert_eq!(v.archive_rules[0].rule, "R-ARCHIVE-ONLY");
    assert_eq!(v.not_carried_tables[0].value, "7");
    assert_eq!(v.unknown_columns, ["prayer.mood"]);
    assert_eq!(v.not_carried_columns[0].label, "prayer.safety_score");
    assert_eq!(v.stages[0].rate, 666);

    // Every row is on the page, none silently left out.
    let html = render_run(&r).unwrap();
    for i in [0, 499, 500, 1233] {
        assert!(html.contains(&format!("<td>m{i}<td>")), "m{i}");
    }
    assert!(html.contains("rows 1,001–1,234"));
    assert!(html.contains("101,234"));
}

#[test]
fn a_report_that_disagrees_with_itself_says_so() {
    let mut r = report(3);
    r.findings_by_rule.insert("R-TIME".into(), 5);
    let html = render_run(&r).unwrap();
    assert!(html.contains("counts 5 finding(s) of this rule but lists 3"));
}

#[test]
fn verdicts_of_each_outcome() {
    let mut r = report(0);
    for (outcome, feasible, want) in [
        ("analyzed", true, "Feasible"),
        ("analyzed", false, "Not feasible as is"),
        ("migrated", true, "Migrated"),
        ("already_migrated", true, "Already migrated"),
        ("dry_run", true, "Dry run: would migrate"),
        ("failed", true, "Failed and rolled back"),
    ] {
        r.outcome = outcome.into();
        r.feasibility.feasible = feasible;
        assert_eq!(RunView::new(&r).unwrap().verdict.headline, want);
    }
}

#[test]
fn pages_reference_nothing_outside() {
    assert_self_contained(&render_run(&report(600)).unwrap());
    assert_self_contained(&render_validation(&validation()).unwrap());
    assert_self_contained(&render_cutover(&cutover(false)).unwrap());
}

#[test]
fn email_addresses_are_masked() {
    let html = render_run(&report(0)).unwrap();
    assert!(html.contains("a•••@example.org"));
    assert!(!html.contains("alice.smith"));
    let html = render_validation(&validation()).unwrap();
    assert!(html.contains("b•••@example.org") && !html.contains("bob@"));
}

fn validation() -> thywill_validator::Report {
    let check = |name: &str, passed: bool, detail: &str| CheckResult {
        name: name.into(),
        passed,
        summary: format!("{name} summary"),
        details: vec![detail.into()],
        data: serde_json::Value::Null,
        seconds: 0.25,
    };
    thywill_validator::Report {
        tool: "thywill-validate".into(),
        tool_version: "0.1.0".into(),
        v1_db: "v1.db".into(),
        v2_db: Some("sqlite://v2.db".into()),
        policy: thywill_validator::Policy::Repair,
        run_id: Some("run-1".into()),
        checks: vec![
            check("law", true, "user: 5 read"),
            check(
                "fidelity",
                false,
                &format!("prayer {HOSTILE} of bob@example.org differs"),
            ),
        ],
        passed: 1,
        failed: 1,
        ok: false,
        seconds: 0.5,
    }
}

#[test]
fn validation_page_has_the_pass_fail_table() {
    let r = validation();
    let v = ValidationView::new(&r);
    assert_eq!(v.verdict.headline, "Validation FAILED");
    assert_eq!(v.checks.len(), 2);
    let html = render_validation(&r).unwrap();
    assert!(html.contains("<span class=\"pass\">PASS</span></td><td>law</td>"));
    assert!(html.contains("<span class=\"fail\">FAIL</span></td><td>fidelity</td>"));
    assert!(!html.contains("<script"));
}

fn cutover(fail: bool) -> CutoverReport {
    let steps = STEPS
        .iter()
        .enumerate()
        .map(|(i, &(name, label))| {
            let failed = fail && name == "migrate";
            let skipped = fail && i > 3;
            StepRecord {
                name,
                label,
                state: if failed {
                    StepState::Failed
                } else if skipped {
                    StepState::Skipped
                } else {
                    StepState::Done
                },
                started_at: None,
                offset_seconds: (!skipped).then_some(i as f64 * 60.0),
                seconds: (!skipped).then_some(60.0),
                error: failed.then(|| format!("exit 3: {HOSTILE}")),
            }
        })
        .collect();
    CutoverReport {
        rehearsal: true,
        started_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        steps,
        rollback: fail.then(|| "rolled back: v2 run removed".to_string()),
        total_seconds: if fail { 300.0 } else { 480.0 },
        budget_seconds: 3600.0,
        rehearsal_prepare_seconds: Some(1.0),
        backup_set: Some(PathBuf::from("backups/set")),
        work_dir: PathBuf::from("work"),
    }
}

#[test]
fn cutover_page_has_the_timeline_against_the_budget() {
    let v = CutoverView::new(&cutover(false));
    assert_eq!(v.verdict.headline, "Rehearsal done");
    assert_eq!(v.budget, "01:00:00");
    assert_eq!(v.total, "00:08:00");
    assert_eq!(v.steps.len(), STEPS.len());
    assert!((v.steps[1].x - 60.0 / 36.0).abs() < 0.01);
    let ticks: Vec<(f64, &str)> = v.ticks.iter().map(|t| (t.x, t.label.as_str())).collect();
    assert_eq!(
        ticks,
        [
            (0.0, "00:00:00"),
            (25.0, "00:15:00"),
            (50.0, "00:30:00"),
            (75.0, "00:45:00"),
            (100.0, "01:00:00")
        ]
    );

    let failed = cutover(true);
    let v = CutoverView::new(&failed);
    assert_eq!(v.verdict.headline, "Failed and rolled back");
    assert!(v.verdict.detail.contains("`migrate`"));
    let html = render_cutover(&failed).unwrap();
    assert!(html.contains("rolled back: v2 run removed"));
    assert!(!html.contains("<script") && html.contains("&lt;script&gt;"));
}

/// A finding of `report`'s shape with its original row.
fn with_original(mut f: ReportFinding, original: serde_json::Value) -> ReportFinding {
    f.original = Some(original);
    f
}

#[test]
fn original_values_are_shown_escaped_masked_and_cut_visibly() {
    let long = "é".repeat(ORIGINAL_CHARS + 10);
    let mut r = report(0);
    let mut findings: Vec<ReportFinding> = r.findings.iter().map(Result::unwrap).collect();
    findings.push(with_original(
        finding("prayer", "p1", "R-TEXT-LENGTH", "quarantined", "too long"),
        serde_json::json!({
            "id": "p1",
            "text": long,
            "author_id": HOSTILE,
            "project_tag": null,
            "generated_prayer": "",
            "target_audience": "NULL",
            "created_by": "carol@example.org ",
            "flagged": 0,
        }),
    ));
    *r.findings_by_rule.get_mut("R-TEXT-LENGTH").unwrap() += 1;
    r.findings = findings.into();
    let v = RunView::new(&r).unwrap();
    let rows = &v
        .rules
        .iter()
        .find(|x| x.rule == "R-TEXT-LENGTH")
        .unwrap()
        .pages[0]
        .rows;
    let row = rows.iter().find(|x| x.key == "p1").unwrap();
    let cut = format!("text={}…(20 more bytes)", "é".repeat(ORIGINAL_CHARS));
    for part in [
        "id=p1",
        cut.as_str(),
        "project_tag=NULL",
        "generated_prayer=\"\"",
        "target_audience=\"NULL\"",
        "created_by=\"c•••@example.org \"",
        "flagged=0",
    ] {
        assert!(
            row.original.contains(part),
            "{part:?} not in {:?}",
            row.original
        );
    }
    assert_eq!(row.original.lines().count(), 8, "{:?}", row.original);
    assert!(
        rows.iter().any(|x| x.original.is_empty()),
        "a finding without an original"
    );

    let html = render_run(&r).unwrap();
    assert!(
        !html.contains("<script"),
        "an original's script reached the page"
    );
    assert!(html.contains("author_id=&lt;script&gt;document.title="));
    assert!(
        !html.contains("carol@"),
        "an original's address reached the page"
    );
    assert!(html.contains("…(20 more bytes)"));
}

#[test]
fn fair_shares_give_small_rules_all_and_big_ones_the_rest_equally() {
    let weights: BTreeMap<String, usize> = [("a", 10), ("b", 100), ("c", 1000), ("d", 5000)]
        .into_iter()
        .map(|(r, w)| (r.to_string(), w))
        .collect();
    let shares = view::fair_shares(&weights, 1000);
    assert_eq!(shares["a"], 10);
    assert_eq!(shares["b"], 100);
    assert_eq!(shares["c"], 445);
    assert_eq!(shares["d"], 445);
    assert!(shares.values().sum::<usize>() <= 1000);
    // Under the budget every rule has all it weighs.
    let all = view::fair_shares(&weights, 1_000_000);
    assert_eq!(all, weights);
}

/// `report` with `marks` `R-TIME` rows and `users` `R-USER-NAME` rows, each with an original.
fn big_report(marks: usize, users: usize) -> Report {
    let mut r = report(0);
    let mut findings: Vec<ReportFinding> = r.findings.iter().map(Result::unwrap).collect();
    let original = |i: usize| serde_json::json!({ "id": format!("m{i}"), "created_at": "2025-01-01T00:00:00" });
    findings.extend((0..marks).map(|i| {
        with_original(
            finding(
                "prayermark",
                &format!("m{i}"),
                "R-TIME",
                "repaired",
                "created_at in ISO form",
            ),
            original(i),
        )
    }));
    findings.extend((0..users).map(|i| {
        with_original(
            finding(
                "user",
                &format!("u{i}"),
                "R-USER-NAME",
                "repaired",
                "name trimmed",
            ),
            original(i),
        )
    }));
    r.findings_by_rule.insert("R-TIME".into(), marks as u64);
    *r.findings_by_rule.get_mut("R-USER-NAME").unwrap() += users as u64;
    r.findings = findings.into();
    r
}

#[test]
fn past_the_rows_budget_each_rule_lists_its_first_rows_and_says_where_the_rest_are() {
    let r = big_report(5000, 30);
    let budget = 80_000;
    let opts = PageOptions {
        rows_budget: budget,
        json_report: Some("run.json".into()),
    };
    let v = RunView::with_options(&r, &opts).unwrap();
    assert!(v.rows_left_off);
    for rule in &v.rules {
        assert_eq!(
            rule.listed as u64 + rule.left_off,
            rule.count,
            "{}",
            rule.rule
        );
    }
    let time = v.rules.iter().find(|x| x.rule == "R-TIME").unwrap();
    assert!(
        time.left_off > 0 && time.listed > 0,
        "{} listed",
        time.listed
    );
    // The first rows, in order: m0, m1, … with none skipped.
    let keys: Vec<&str> = time
        .pages
        .iter()
        .flat_map(|p| &p.rows)
        .map(|x| x.key.as_str())
        .collect();
    let want: Vec<String> = (0..time.listed).map(|i| format!("m{i}")).collect();
    assert_eq!(keys, want);
    // The small rules are whole.
    let names = v.rules.iter().find(|x| x.rule == "R-USER-NAME").unwrap();
    assert_eq!((names.listed, names.left_off), (31, 0));

    let html = render_run_with(&r, &opts).unwrap();
    assert!(html.contains(&format!(
        "The first {} rows of this rule are listed here; {} more rows of this rule are in the JSON report run.json.",
        thousands(time.listed as u64),
        thousands(time.left_off)
    )));
    assert!(html.contains("id=\"rows-left-off\""));
    assert!(!html.contains("but lists"), "a cut rule is no disagreement");
    // The rows stay within the budget: the page is the page without rows plus at most that.
    let bare = render_run(&report(0)).unwrap();
    assert!(
        html.len() <= bare.len() + budget,
        "{} bytes for a {budget}-byte budget",
        html.len()
    );

    // Within the budget nothing is left off and the page does not talk of it.
    let v = RunView::with_options(&r, &PageOptions::default()).unwrap();
    assert!(!v.rows_left_off);
    assert!(v
        .rules
        .iter()
        .all(|x| x.left_off == 0 && x.listed as u64 == x.count));
    let html = render_run(&r).unwrap();
    assert!(!html.contains("more rows of this rule are in"));
}

#[test]
fn without_a_json_report_the_page_says_how_to_get_the_rest() {
    let opts = PageOptions {
        rows_budget: 20_000,
        json_report: None,
    };
    let html = render_run_with(&big_report(2000, 0), &opts).unwrap();
    assert!(html.contains("run again with --report-json FILE to have it"));
}

#[test]
fn every_archive_rule_has_its_own_meaning() {
    let mut r = report(0);
    r.archive_findings = [
        "R-ARCHIVE-ONLY",
        "R-ARCHIVE-MISSING",
        "R-ARCHIVE-MISMATCH",
        "R-ARCHIVE-UNREADABLE",
    ]
    .iter()
    .map(|rule| finding("prayer", "p9", rule, "reported", "differs"))
    .collect();
    let v = RunView::new(&r).unwrap();
    assert_eq!(v.archive_rules.len(), 4);
    let meanings: std::collections::BTreeSet<&str> =
        v.archive_rules.iter().map(|x| x.meaning.as_str()).collect();
    assert_eq!(meanings.len(), 4, "{meanings:?}");
    assert!(meanings.iter().all(|m| !m.is_empty()));
    let html = render_run(&r).unwrap();
    for rule in &v.archive_rules {
        assert!(html.contains(&format!("<span class=\"meaning\">{}</span>", rule.meaning)));
    }
}
