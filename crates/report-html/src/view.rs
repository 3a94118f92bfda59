//! The view models: plain serde structs holding exactly what a page shows (numbers, words, chart
//! geometry), built from the reports, so the numbers are checked without any HTML.

use std::collections::BTreeMap;

use serde::Serialize;
use thywill_detect::reconcile::ArchiveRule;
use thywill_detect::{RuleId, TableCounts};
use thywill_ops::cutover::CutoverReport;
use thywill_ops::status::{hms, StepState};
use thywill_pipeline::report::ReportFinding;
use thywill_pipeline::Report;

use crate::Error;
use thywill_ops::mask::mask_emails;

/// Rows per collapsible page of a rule's list: a long list is cut into pages.
pub const PAGE_ROWS: usize = 500;

/// Bytes of HTML the findings' rows may take on a page by default ([`PageOptions::rows_budget`]):
/// with the rest of the page it stays under 5 MB, which a browser opens in well under a second.
pub const ROWS_BUDGET: usize = 4_000_000;

/// Characters of one original v1 value shown before it is cut (with a marker saying how many
/// bytes follow: never silently).
pub const ORIGINAL_CHARS: usize = 120;

/// Bytes of markup around one row's values (`<tr>` and five `<td>`).
const ROW_MARKUP: usize = 30;

/// How a run's page is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOptions {
    /// Bytes of HTML the rows of the findings and of the archive reconciliation may take
    /// together (estimated as escaped). Past it each rule lists its first rows, fairly shared,
    /// and says how many more there are and where they are.
    pub rows_budget: usize,
    /// The file name of the run's JSON report, which holds every row (`--report-json`).
    pub json_report: Option<String>,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            rows_budget: ROWS_BUDGET,
            json_report: None,
        }
    }
}

/// A nonzero bar segment is drawn at least this wide (percent), so a single row stays visible.
const MIN_SEGMENT: f64 = 0.8;

/// The colour a verdict is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    /// Done, or can go ahead.
    Good,
    /// Done with something to look at, or nothing done on purpose.
    Warn,
    /// Failed or must not go ahead.
    Bad,
}

/// The first thing on every page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The headline: `Feasible`, `Migrated`, `Already migrated`, `Failed and rolled back`, …
    pub headline: String,
    /// Its colour.
    pub tone: Tone,
    /// One sentence under the headline.
    pub detail: String,
}

/// One labelled value of a page's facts list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    /// What it is (`source`, `policy`, …).
    pub label: String,
    /// Its value, e-mail addresses masked.
    pub value: String,
}

impl Fact {
    fn new(label: &str, value: impl AsRef<str>) -> Self {
        Fact {
            label: label.into(),
            value: mask_emails(value.as_ref()),
        }
    }
}

/// One part of a horizontal stacked bar, in percent of the bar's width.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// Its name in the legend.
    pub label: String,
    /// The value it stands for (rows, seconds).
    pub value: f64,
    /// The value as printed in the legend.
    pub shown: String,
    /// CSS class of its colour.
    pub class: String,
    /// Left edge, percent.
    pub x: f64,
    /// Width, percent (0 for a zero value).
    pub width: f64,
}

/// A horizontal stacked bar drawn as inline SVG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    /// The parts, left to right (zero ones are kept for the legend, drawn with no width).
    pub segments: Vec<Segment>,
    /// The sum of the values.
    pub total: f64,
}

impl Bar {
    /// A bar of `(label, value, shown, class)` parts; each nonzero part at least
    /// [`MIN_SEGMENT`] percent wide, the widths then scaled to fill exactly 100.
    fn new(parts: Vec<(String, f64, String, String)>) -> Bar {
        let total: f64 = parts.iter().map(|p| p.1.max(0.0)).sum();
        let raw: Vec<f64> = parts
            .iter()
            .map(|p| {
                if total > 0.0 && p.1 > 0.0 {
                    (p.1 / total * 100.0).max(MIN_SEGMENT)
                } else {
                    0.0
                }
            })
            .collect();
        let sum: f64 = raw.iter().sum();
        let scale = if sum > 0.0 { 100.0 / sum } else { 0.0 };
        let mut x = 0.0;
        let segments = parts
            .into_iter()
            .zip(raw)
            .map(|((label, value, shown, class), w)| {
                let width = round2(w * scale);
                let s = Segment {
                    label,
                    value,
                    shown,
                    class,
                    x: round2(x),
                    width,
                };
                x += width;
                s
            })
            .collect();
        Bar { segments, total }
    }

    /// One segment per `(name, seconds)`, coloured in turn.
    fn of_seconds<'a>(items: impl Iterator<Item = (&'a str, f64)>) -> Bar {
        Bar::new(
            items
                .enumerate()
                .map(|(i, (name, s))| {
                    (
                        name.to_string(),
                        s,
                        format!("{s:.2} s"),
                        format!("c{}", i % 8),
                    )
                })
                .collect(),
        )
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The accounting law of one carried table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableView {
    /// The v1 table.
    pub name: String,
    /// The counts as the report has them.
    pub counts: TableCounts,
    /// True when the law holds.
    pub balances: bool,
    /// Where the rows read went: written as is, repaired, merged, deduplicated, quarantined, not
    /// carried.
    pub bar: Bar,
}

impl TableView {
    fn new(name: &str, c: &TableCounts) -> TableView {
        let part = |label: &str, v: u64, class: &str| {
            (
                label.to_string(),
                v as f64,
                crate::thousands(v),
                class.to_string(),
            )
        };
        TableView {
            name: name.into(),
            counts: *c,
            balances: c.balances(),
            bar: Bar::new(vec![
                part(
                    "written as is",
                    c.written.saturating_sub(c.repaired + c.recovered),
                    "written",
                ),
                part("repaired", c.repaired, "repaired"),
                part("recovered from the archives", c.recovered, "recovered"),
                part("merged", c.merged, "merged"),
                part("deduplicated", c.deduplicated, "deduplicated"),
                part("quarantined", c.quarantined, "quarantined"),
                part("not carried", c.not_carried, "not-carried"),
            ]),
        }
    }
}

/// One finding as listed (every v1 value e-mail-masked; the template escapes it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The v1 table.
    pub table: String,
    /// The v1 key.
    pub key: String,
    /// What was done.
    pub decision: String,
    /// Why, for an operator.
    pub reason: String,
    /// The original v1 row, one `column=value` a line ([`original_text`]), empty when the report
    /// has none.
    pub original: String,
}

impl From<ReportFinding> for Row {
    fn from(f: ReportFinding) -> Row {
        Row {
            table: f.v1_table,
            key: mask_emails(&f.v1_key),
            decision: f.decision,
            reason: mask_emails(&f.reason),
            original: f
                .original
                .as_ref()
                .map(|o| mask_emails(&original_text(o)))
                .unwrap_or_default(),
        }
    }
}

impl Row {
    /// Bytes the row takes on the page: its values as escaped, and the markup around them.
    fn weight(&self) -> usize {
        [
            &self.table,
            &self.key,
            &self.decision,
            &self.reason,
            &self.original,
        ]
        .iter()
        .map(|v| escaped_len(v))
        .sum::<usize>()
            + ROW_MARKUP
    }
}

/// Length of `s` once HTML-escaped as the templates escape it (`<`, `>`, `&`, `"`, `'`, `/`).
fn escaped_len(s: &str) -> usize {
    s.len()
        + s.bytes()
            .map(|b| match b {
                b'<' | b'>' => 3,
                b'&' => 4,
                b'"' | b'\'' | b'/' => 5,
                _ => 0,
            })
            .sum::<usize>()
}

/// An original v1 row as people read it: one `column=value` per line, by column name (the order
/// of the JSON report's object). A NULL is `NULL`; a text is shown bare unless it would mislead
/// bare (empty, reading `NULL`, with surrounding whitespace or a control character such as a
/// line break), then as a JSON string; bytes that are not UTF-8 as their JSON (`{"hex":…}`). A
/// value longer than [`ORIGINAL_CHARS`] is cut there, followed by `…(N more bytes)`. Anything
/// but a row object is shown as a value.
pub fn original_text(row: &serde_json::Value) -> String {
    match row {
        serde_json::Value::Object(columns) => columns
            .iter()
            .map(|(column, v)| format!("{column}={}", original_value(v)))
            .collect::<Vec<_>>()
            .join("\n"),
        other => original_value(other),
    }
}

/// One value of [`original_text`].
fn original_value(v: &serde_json::Value) -> String {
    use serde_json::Value;
    let text = match v {
        Value::Null => return "NULL".into(),
        Value::Bool(_) | Value::Number(_) => return v.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => v.to_string(),
    };
    let (head, more) = match text.char_indices().nth(ORIGINAL_CHARS) {
        Some((at, _)) => (&text[..at], text.len() - at),
        None => (text.as_str(), 0),
    };
    let bare = !matches!(v, Value::String(_))
        || !(head.is_empty()
            || head == "NULL"
            || head.trim() != head
            || head.chars().any(char::is_control));
    let mut shown = if bare {
        head.to_string()
    } else {
        serde_json::Value::String(head.into()).to_string()
    };
    if more > 0 {
        shown.push_str(&format!("…({more} more bytes)"));
    }
    shown
}

/// A page of a rule's rows: rows `first..=last` (1-based).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// Number of the first row on the page (1-based).
    pub first: usize,
    /// Number of the last row on the page.
    pub last: usize,
    /// The rows.
    pub rows: Vec<Row>,
}

/// The findings of one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleView {
    /// The rule id.
    pub rule: String,
    /// What the rule finds, in one line (empty for a rule the detector does not define).
    pub meaning: String,
    /// The report's count for the rule.
    pub count: u64,
    /// Rows listed on the page (with `left_off`, equal to `count` unless the report disagrees
    /// with itself, which the page then says).
    pub listed: usize,
    /// Rows of the rule not listed, the page being at its budget ([`PageOptions::rows_budget`]):
    /// the page says how many and where they are.
    pub left_off: u64,
    /// The rows, in pages of [`PAGE_ROWS`].
    pub pages: Vec<Page>,
}

/// The rows a page lists, by rule, and how many of each rule it leaves off.
#[derive(Debug, Default)]
struct Listing {
    rows: BTreeMap<String, Vec<Row>>,
    left_off: BTreeMap<String, u64>,
}

/// Lists the findings `walk` gives, by rule, within `budget` bytes of rows. A first walk keeps
/// every row while they fit (the usual case: one walk); once they do not, it only weighs each
/// rule's rows, each rule is given a fair share of the budget ([`fair_shares`]) and a second walk
/// keeps each rule's first rows within its share (at least one). So at most about `budget` bytes
/// of rows are held, whatever the run's size.
fn list_rows<I>(walk: impl Fn() -> I, budget: usize) -> Result<Listing, Error>
where
    I: Iterator<Item = Result<ReportFinding, Error>>,
{
    let mut listing = Listing::default();
    let mut weights: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for f in walk() {
        let f = f?;
        let rule = f.rule.clone();
        let row = Row::from(f);
        let w = row.weight();
        total += w;
        *weights.entry(rule.clone()).or_default() += w;
        if total <= budget {
            listing.rows.entry(rule).or_default().push(row);
        } else if !listing.rows.is_empty() {
            listing.rows = BTreeMap::new();
        }
    }
    if total <= budget {
        return Ok(listing);
    }
    let shares = fair_shares(&weights, budget);
    // Per rule: bytes kept, and whether its list has stopped (a rule lists its first rows only).
    let mut kept: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    for f in walk() {
        let f = f?;
        let (rule, share) = shares
            .get_key_value(f.rule.as_str())
            .map(|(r, s)| (r.as_str(), *s))
            .unwrap_or((ORPHAN_RULE, 0));
        let row = Row::from(f);
        let w = row.weight();
        let (used, stopped) = kept.entry(rule).or_default();
        if !*stopped && (*used == 0 || *used + w <= share) {
            *used += w;
            listing.rows.entry(rule.to_string()).or_default().push(row);
        } else {
            *stopped = true;
            *listing.left_off.entry(rule.to_string()).or_default() += 1;
        }
    }
    Ok(listing)
}

/// The rule a second walk finds a finding of that the first did not see (the store changed
/// between walks, which it never does): listed under its own name, so nothing vanishes.
const ORPHAN_RULE: &str = "(unexpected)";

/// Shares `budget` among the rules by their rows' weights: a rule whose rows fit in an equal
/// share of what is left gets all of them, and what it does not use goes to the others
/// (water-filling: the small rules are listed whole, the big ones share the rest equally).
pub(crate) fn fair_shares(
    weights: &BTreeMap<String, usize>,
    budget: usize,
) -> BTreeMap<String, usize> {
    let mut by_weight: Vec<(&String, usize)> = weights.iter().map(|(r, w)| (r, *w)).collect();
    by_weight.sort_by_key(|&(_, w)| w);
    let mut left = budget;
    let mut rules = by_weight.len();
    let mut shares = BTreeMap::new();
    for (rule, w) in by_weight {
        let share = w.min(left / rules);
        left -= share;
        rules -= 1;
        shares.insert(rule.clone(), share);
    }
    shares
}

/// Groups findings by rule, in rule-id order, with the counts `counts` gives (a rule missing
/// there counts its rows and those left off).
fn rules_view(listing: Listing, counts: &BTreeMap<String, u64>) -> Vec<RuleView> {
    let Listing { rows, mut left_off } = listing;
    let mut by_rule: BTreeMap<String, (Option<u64>, Vec<Row>)> = counts
        .iter()
        .map(|(rule, n)| (rule.clone(), (Some(*n), Vec::new())))
        .collect();
    for (rule, list) in rows {
        by_rule.entry(rule).or_default().1 = list;
    }
    by_rule
        .into_iter()
        .map(|(rule, (count, all))| {
            let listed = all.len();
            let left_off = left_off.remove(&rule).unwrap_or(0);
            let mut pages = Vec::with_capacity(listed.div_ceil(PAGE_ROWS));
            let mut it = all.into_iter().peekable();
            let mut first = 1;
            while it.peek().is_some() {
                let chunk: Vec<Row> = it.by_ref().take(PAGE_ROWS).collect();
                let last = first + chunk.len() - 1;
                pages.push(Page {
                    first,
                    last,
                    rows: chunk,
                });
                first = last + 1;
            }
            RuleView {
                // The meanings are doc comments: their code quotes read plainer without backticks.
                meaning: RuleId::parse(&rule)
                    .map(RuleId::meaning)
                    .or_else(|| ArchiveRule::parse(&rule).map(ArchiveRule::meaning))
                    .unwrap_or_default()
                    .replace('`', ""),
                rule,
                count: count.unwrap_or(listed as u64 + left_off),
                listed,
                left_off,
                pages,
            }
        })
        .collect()
}

/// One stage's timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageView {
    /// The stage.
    pub name: String,
    /// Wall seconds.
    pub seconds: f64,
    /// Rows (or files) it handled.
    pub rows: u64,
    /// Rows per second.
    pub rate: u64,
}

/// The page of an analyze or migrate run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    /// The page title.
    pub title: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Source, target, policy, times, run id.
    pub facts: Vec<Fact>,
    /// The law per carried table.
    pub tables: Vec<TableView>,
    /// Number of findings.
    pub findings_total: u64,
    /// The findings by rule.
    pub rules: Vec<RuleView>,
    /// True when some rule's rows are not all listed (the page is at its rows budget).
    pub rows_left_off: bool,
    /// Where the rows a page leaves off are: `the JSON report run.json`, or how to get it.
    pub left_off_where: String,
    /// Number of archive reconciliation findings.
    pub archive_total: u64,
    /// The archive reconciliation's findings by rule.
    pub archive_rules: Vec<RuleView>,
    /// The v2 archive counts, when archives were written.
    pub archives: Vec<Fact>,
    /// Tables v2 does not carry, with their row counts.
    pub not_carried_tables: Vec<Fact>,
    /// Columns of the carried tables v2 has no home for, with their non-NULL values.
    pub not_carried_columns: Vec<Fact>,
    /// `table.column`s the reader did not know.
    pub unknown_columns: Vec<String>,
    /// Rows missing from an index (read by full scan anyway).
    pub missing_index_entries: u64,
    /// Feasibility notes.
    pub notes: Vec<String>,
    /// The stage timings as a bar.
    pub stage_bar: Bar,
    /// The stage timings as rows.
    pub stages: Vec<StageView>,
}

fn run_verdict(r: &Report) -> Verdict {
    let (headline, tone) = match r.outcome.as_str() {
        "analyzed" if r.feasibility.feasible && r.ok => ("Feasible", Tone::Good),
        "analyzed" => ("Not feasible as is", Tone::Bad),
        "migrated" if r.ok => ("Migrated", Tone::Good),
        "already_migrated" => ("Already migrated", Tone::Warn),
        "dry_run" if r.ok => ("Dry run: would migrate", Tone::Good),
        "failed" => ("Failed and rolled back", Tone::Bad),
        _ => ("Not OK", Tone::Bad),
    };
    let tables_off = r.tables.values().filter(|c| !c.balances()).count();
    let detail = match r.outcome.as_str() {
        "failed" => "Nothing was written to v2: the run's one transaction was rolled back.".into(),
        "already_migrated" => {
            "The target already holds this source's migration (same sha256): nothing was written."
                .into()
        }
        _ if tables_off > 0 => {
            format!("The accounting law does not balance for {tables_off} table(s).")
        }
        _ => format!(
            "Every v1 row is accounted for in {} table(s); {} finding(s){}.",
            r.tables.len(),
            r.findings.len(),
            if r.feasibility.notes.is_empty() {
                String::new()
            } else {
                format!(", {} note(s) to read", r.feasibility.notes.len())
            }
        ),
    };
    Verdict {
        headline: headline.into(),
        tone,
        detail,
    }
}

impl RunView {
    /// The view of an analyze or migrate report with the default [`PageOptions`].
    pub fn new(r: &Report) -> Result<RunView, Error> {
        RunView::with_options(r, &PageOptions::default())
    }

    /// The view of an analyze or migrate report. Walks every finding once (twice when the rows
    /// are over the budget); an error means the plan's temporary findings file could not be read
    /// back.
    pub fn with_options(r: &Report, opts: &PageOptions) -> Result<RunView, Error> {
        let mut facts = vec![
            Fact::new("tool", format!("{} {}", r.tool, r.tool_version)),
            Fact::new(
                "source",
                format!("{} ({})", r.source.path, r.source.generation),
            ),
            Fact::new("source sha256", &r.source.sha256),
        ];
        if let Some(t) = &r.target {
            facts.push(Fact::new("target", format!("{} {}", t.backend, t.url)));
        }
        facts.push(Fact::new(
            "policy",
            format!("{}{}", r.policy, if r.dry_run { ", dry run" } else { "" }),
        ));
        if let Some(d) = &r.decisions {
            facts.push(Fact::new(
                "decisions",
                format!(
                    "{} (sha256 {}), {} entries applied",
                    d.path, d.sha256, d.entries_applied
                ),
            ));
        }
        facts.push(Fact::new("started", &r.started_at));
        facts.push(Fact::new("finished", &r.finished_at));
        if let Some(id) = &r.run_id {
            facts.push(Fact::new("run id", id));
        }
        // The archive reconciliation's rows get an eighth of the budget, the findings the rest.
        let archive_budget = opts.rows_budget / 8;
        let rows = list_rows(
            || r.findings.iter().map(|f| f.map_err(Error::from)),
            opts.rows_budget - archive_budget,
        )?;
        let archive_rows = list_rows(
            || r.archive_findings.iter().cloned().map(Ok),
            archive_budget,
        )?;
        let mut archive_counts: BTreeMap<String, u64> = BTreeMap::new();
        for f in &r.archive_findings {
            *archive_counts.entry(f.rule.clone()).or_default() += 1;
        }
        let rows_left_off = !(rows.left_off.is_empty() && archive_rows.left_off.is_empty());
        let archives = r
            .archives
            .iter()
            .flat_map(|a| {
                [
                    Fact::new("v1 files carried", a.v1_files_copied.to_string()),
                    Fact::new("v2 files created", a.created.to_string()),
                    Fact::new("v2 files updated", a.updated.to_string()),
                    Fact::new("v2 files unchanged", a.unchanged.to_string()),
                    Fact::new("MANIFEST.sha256 sha256", &a.manifest_sha256),
                ]
            })
            .collect();
        Ok(RunView {
            title: format!("{} — {}", r.tool, run_verdict(r).headline),
            verdict: run_verdict(r),
            facts,
            tables: r.tables.iter().map(|(n, c)| TableView::new(n, c)).collect(),
            findings_total: r.findings.len() as u64,
            rules: rules_view(rows, &r.findings_by_rule),
            rows_left_off,
            left_off_where: match &opts.json_report {
                Some(name) => format!("the JSON report {}", mask_emails(name)),
                None => "the JSON report (run again with --report-json FILE to have it)".into(),
            },
            archive_total: r.archive_findings.len() as u64,
            archive_rules: rules_view(archive_rows, &archive_counts),
            archives,
            not_carried_tables: r
                .source
                .not_carried_tables
                .iter()
                .map(|(t, n)| Fact::new(t, n.to_string()))
                .collect(),
            not_carried_columns: r
                .source
                .not_carried_columns
                .iter()
                .map(|(c, n)| Fact::new(c, n.to_string()))
                .collect(),
            unknown_columns: r
                .source
                .unknown_columns
                .iter()
                .map(|c| mask_emails(c))
                .collect(),
            missing_index_entries: r.source.missing_index_entries,
            notes: r.feasibility.notes.iter().map(|n| mask_emails(n)).collect(),
            stage_bar: Bar::of_seconds(r.stages.iter().map(|s| (s.name.as_str(), s.seconds))),
            stages: r
                .stages
                .iter()
                .map(|s| StageView {
                    name: s.name.clone(),
                    seconds: s.seconds,
                    rows: s.rows,
                    rate: (s.rows as f64 / s.seconds.max(1e-9)) as u64,
                })
                .collect(),
        })
    }
}

/// One check of a validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckView {
    /// The check's name.
    pub name: String,
    /// PASS or FAIL.
    pub passed: bool,
    /// Its one line.
    pub summary: String,
    /// Its problems and facts.
    pub details: Vec<String>,
    /// Wall seconds.
    pub seconds: f64,
}

/// The page of a validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationView {
    /// The page title.
    pub title: String,
    /// The verdict.
    pub verdict: Verdict,
    /// v1, v2, policy, run id, time.
    pub facts: Vec<Fact>,
    /// Every check, in order.
    pub checks: Vec<CheckView>,
    /// The checks' wall times as a bar.
    pub timing: Bar,
}

impl ValidationView {
    /// The view of a validation report.
    pub fn new(r: &thywill_validator::Report) -> ValidationView {
        let verdict = if r.ok {
            Verdict {
                headline: "All checks passed".into(),
                tone: Tone::Good,
                detail: format!("{} of {} checks passed.", r.passed, r.checks.len()),
            }
        } else {
            Verdict {
                headline: "Validation FAILED".into(),
                tone: Tone::Bad,
                detail: format!(
                    "{} of {} checks failed: {}.",
                    r.failed,
                    r.checks.len(),
                    r.checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        };
        let mut facts = vec![
            Fact::new("tool", format!("{} {}", r.tool, r.tool_version)),
            Fact::new("v1", &r.v1_db),
        ];
        if let Some(v2) = &r.v2_db {
            facts.push(Fact::new("v2", v2));
        }
        facts.push(Fact::new(
            "policy",
            match r.policy {
                thywill_validator::Policy::Repair => "repair",
                thywill_validator::Policy::Strict => "strict",
            },
        ));
        if let Some(id) = &r.run_id {
            facts.push(Fact::new("run id", id));
        }
        facts.push(Fact::new("took", format!("{:.2} s", r.seconds)));
        ValidationView {
            title: format!("{} — {}", r.tool, verdict.headline),
            verdict,
            facts,
            checks: r
                .checks
                .iter()
                .map(|c| CheckView {
                    name: c.name.clone(),
                    passed: c.passed,
                    summary: mask_emails(&c.summary),
                    details: c.details.iter().map(|d| mask_emails(d)).collect(),
                    seconds: c.seconds,
                })
                .collect(),
            timing: Bar::of_seconds(r.checks.iter().map(|c| (c.name.as_str(), c.seconds))),
        }
    }
}

/// One step of a cut-over on its timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    /// Machine name.
    pub name: String,
    /// Words for the community.
    pub label: String,
    /// `done`, `failed`, `skipped`, `pending`, `running`.
    pub state: StepState,
    /// `T+HH:MM:SS` of its start, empty when it did not start.
    pub start: String,
    /// Its duration, empty when it did not run.
    pub duration: String,
    /// Its error, when it failed.
    pub error: Option<String>,
    /// Left edge on the timeline, percent of the scale.
    pub x: f64,
    /// Width on the timeline, percent of the scale.
    pub width: f64,
}

/// A labelled mark under the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    /// Where, percent of the scale.
    pub x: f64,
    /// `HH:MM:SS` there.
    pub label: String,
}

/// The page of a cut-over (or rehearsal).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CutoverView {
    /// The page title.
    pub title: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Start, total, budget, backup set, work folder.
    pub facts: Vec<Fact>,
    /// The steps.
    pub steps: Vec<StepView>,
    /// Where the budget ends on the timeline, percent of the scale (100 unless over budget).
    pub budget_x: f64,
    /// Where the day ended on the timeline, percent of the scale.
    pub total_x: f64,
    /// Marks at each quarter of the budget.
    pub ticks: Vec<Tick>,
    /// The budget as `HH:MM:SS`.
    pub budget: String,
    /// The total as `HH:MM:SS`.
    pub total: String,
    /// The rollback's outcome, when one ran.
    pub rollback: Option<String>,
}

impl CutoverView {
    /// The view of a cut-over report.
    pub fn new(r: &CutoverReport) -> CutoverView {
        let failed = r.steps.iter().find(|s| s.state == StepState::Failed);
        let what = if r.rehearsal { "Rehearsal" } else { "Cut-over" };
        let within = r.total_seconds <= r.budget_seconds;
        let verdict = match failed {
            Some(s) => Verdict {
                headline: "Failed and rolled back".into(),
                tone: Tone::Bad,
                detail: format!(
                    "{what} failed at step `{}` ({}); the rollback ran.",
                    s.name, s.label
                ),
            },
            None => Verdict {
                headline: format!("{what} done"),
                tone: if within { Tone::Good } else { Tone::Warn },
                detail: format!(
                    "Took {} of the {} budget{}.",
                    hms(r.total_seconds),
                    hms(r.budget_seconds),
                    if within { "" } else { ": OVER BUDGET" }
                ),
            },
        };
        let scale = r.budget_seconds.max(r.total_seconds).max(1e-9);
        let pct = |s: f64| round2((s / scale * 100.0).clamp(0.0, 100.0));
        let mut facts = vec![
            Fact::new(
                "started",
                r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
            Fact::new("total", hms(r.total_seconds)),
            Fact::new("budget", hms(r.budget_seconds)),
        ];
        if let Some(p) = r.rehearsal_prepare_seconds {
            facts.push(Fact::new(
                "rehearsal copies",
                format!("{p:.2} s (not counted)"),
            ));
        }
        if let Some(b) = &r.backup_set {
            facts.push(Fact::new("backup set", b.display().to_string()));
        }
        facts.push(Fact::new("work folder", r.work_dir.display().to_string()));
        CutoverView {
            title: format!("thywill-cutover — {}", verdict.headline),
            verdict,
            facts,
            steps: r
                .steps
                .iter()
                .map(|s| StepView {
                    name: s.name.into(),
                    label: s.label.into(),
                    state: s.state,
                    start: s
                        .offset_seconds
                        .map(|o| format!("T+{}", hms(o)))
                        .unwrap_or_default(),
                    duration: s.seconds.map(|d| format!("{d:.2} s")).unwrap_or_default(),
                    error: s.error.as_deref().map(mask_emails),
                    x: pct(s.offset_seconds.unwrap_or(0.0)),
                    width: match s.seconds {
                        Some(d) => pct(d).max(MIN_SEGMENT / 2.0),
                        None => 0.0,
                    },
                })
                .collect(),
            ticks: (0..=4)
                .map(|q| {
                    let at = r.budget_seconds * f64::from(q) / 4.0;
                    Tick {
                        x: pct(at),
                        label: hms(at),
                    }
                })
                .collect(),
            budget_x: pct(r.budget_seconds),
            total_x: pct(r.total_seconds),
            budget: hms(r.budget_seconds),
            total: hms(r.total_seconds),
            rollback: r.rollback.as_deref().map(mask_emails),
        }
    }
}
