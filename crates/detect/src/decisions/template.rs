//! The editable decisions template (`thywill-analyze --decisions-template FILE`): one
//! `[[decision]]` table per quarantined row, grouped by the rule that quarantined it, with the
//! row's key, the reason, its original values (e-mail addresses masked) and the choices its rule
//! allows, each commented. Every entry starts as `keep_quarantined`: the file applied unedited
//! changes nothing but the reasons' notes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{allowed_choices, CarryField, ChoiceKind};
use crate::model::{Decision, DetectError, Finding, RuleId};
use crate::originals::{OriginalRows, RowSource};
use crate::plan::Plan;

/// One quarantined row: its findings that quarantine it (the first names its group) and its
/// original row as JSON.
struct QuarantinedRow {
    rules: Vec<Finding>,
    original: serde_json::Value,
}

/// Renders the template of `plan`'s quarantined rows, fetching their original rows from `db`
/// (the snapshot the plan was made from).
pub fn render(plan: &Plan, db: impl RowSource) -> Result<String, DetectError> {
    let rows = quarantined_rows(plan, db)?;
    let mut by_rule: BTreeMap<RuleId, Vec<QuarantinedRow>> = BTreeMap::new();
    for row in rows {
        by_rule.entry(row.rules[0].rule).or_default().push(row);
    }
    let total: usize = by_rule.values().map(Vec::len).sum();
    let mut out = header(total);
    for (rule, rows) in &by_rule {
        let _ = writeln!(
            out,
            "\n# ==== {rule}: {} ({} row{}) ====",
            rule.meaning(),
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        );
        for row in rows {
            entry(&mut out, row);
        }
    }
    Ok(out)
}

/// The quarantined rows of the plan, in the findings' order (table, rowid).
fn quarantined_rows(plan: &Plan, db: impl RowSource) -> Result<Vec<QuarantinedRow>, DetectError> {
    let mut originals = OriginalRows::new(db);
    let mut out: Vec<QuarantinedRow> = Vec::new();
    let mut current: Option<(String, i64, Vec<Finding>)> = None;
    let mut flush = |cur: Option<(String, i64, Vec<Finding>)>,
                     out: &mut Vec<QuarantinedRow>|
     -> Result<(), DetectError> {
        if let Some((_, _, fs)) = cur {
            let rules: Vec<Finding> = fs
                .into_iter()
                .filter(|f| f.decision == Decision::Quarantined)
                .collect();
            if let Some(first) = rules.first() {
                let original = originals.of(first)?.clone();
                out.push(QuarantinedRow { rules, original });
            }
        }
        Ok(())
    };
    for f in plan.findings() {
        let f = f?;
        let same = matches!(&current, Some((t, r, _)) if *t == f.v1_table && *r == f.rowid);
        if !same {
            flush(current.take(), &mut out)?;
            current = Some((f.v1_table.clone(), f.rowid, Vec::new()));
        }
        if let Some((_, _, fs)) = &mut current {
            fs.push(f);
        }
    }
    flush(current, &mut out)?;
    Ok(out)
}

fn header(total: usize) -> String {
    format!(
        "# ThyWill migration: the operator's decisions on quarantined rows ({total} row{s}).\n\
         #\n\
         # Edit `choice` (and the value it needs) of the rows you decide, then preview with\n\
         #   thywill-analyze --v1-db … --decisions THIS_FILE\n\
         # and migrate with --decisions THIS_FILE (validate and cutover take it too).\n\
         # Every entry starts as keep_quarantined: the row stays out of v2, as without this file.\n\
         # An entry whose row is no longer quarantined, or a value v2 would refuse, stops the run\n\
         # before anything is written, naming the entry. `note` is written into the finding.\n\
         # Remove entries you do not decide if you like: a row with no entry stays quarantined.\n",
        s = if total == 1 { "" } else { "s" }
    )
}

/// One `[[decision]]` table.
fn entry(out: &mut String, row: &QuarantinedRow) {
    let first = &row.rules[0];
    let _ = writeln!(out, "\n[[decision]]");
    let _ = writeln!(out, "rule = {}", toml_str(first.rule.as_str()));
    let _ = writeln!(out, "table = {}", toml_str(&first.v1_table));
    let _ = writeln!(out, "key = {}", toml_str(&first.v1_key));
    let _ = writeln!(out, "rowid = {}", first.rowid);
    for f in &row.rules {
        let _ = writeln!(out, "# {}: {}", f.rule, comment_text(&f.reason));
    }
    let _ = writeln!(
        out,
        "# original: {}",
        comment_text(&original_text(&row.original))
    );
    let dependant = first.rule == RuleId::Orphan
        && first
            .reason
            .contains(crate::rules::DEPENDANT_OF_QUARANTINED);
    let (choices, field) = allowed_choices(first.rule, &first.v1_table, dependant);
    let _ = writeln!(out, "# choices:");
    if dependant {
        let _ = writeln!(
            out,
            "#   (it follows its parent: decide the parent's entry)"
        );
    }
    for c in choices {
        let _ = writeln!(out, "#   {}", choice_line(c, field));
    }
    let _ = writeln!(out, "choice = \"keep_quarantined\"");
    let _ = writeln!(out, "note = \"\"");
}

/// The commented line that explains one choice.
fn choice_line(choice: ChoiceKind, field: Option<CarryField>) -> String {
    match (choice, field) {
        (ChoiceKind::KeepQuarantined, _) => {
            "choice = \"keep_quarantined\"   # leave the row out of v2 (the default)".into()
        }
        (ChoiceKind::NotATestAccount, _) => {
            "choice = \"not_a_test_account\" # a real member: write them and what they wrote".into()
        }
        (ChoiceKind::MergeInto, _) => {
            "choice = \"merge_into\"  and  merge_into = \"<v1 key of the member to keep>\"   # fold into that member".into()
        }
        (ChoiceKind::Carry, Some(CarryField::DisplayName)) => {
            "choice = \"carry\"  and  display_name = \"…\"   # write the member under this name".into()
        }
        (ChoiceKind::Carry, Some(CarryField::Text)) => {
            "choice = \"carry\"  and  text = \"…\"   # write the prayer with this text (1–5000 characters)".into()
        }
        (ChoiceKind::Carry, Some(CarryField::Author)) => {
            "choice = \"carry\"  and  author = \"<display name of a member>\"   # write the prayer as theirs".into()
        }
        (ChoiceKind::Carry, Some(CarryField::Time)) => {
            "choice = \"carry\"  and  time = \"YYYY-MM-DD HH:MM:SS\"   # write the row at this UTC time".into()
        }
        (ChoiceKind::Carry, None) => "choice = \"carry\"".into(),
    }
}

/// The longest a text value is shown in the template's `original` line.
const SHOWN_VALUE: usize = 200;

/// The original row as one JSON line: long texts shortened (their length named), e-mail
/// addresses masked.
fn original_text(original: &serde_json::Value) -> String {
    let shortened = match original {
        serde_json::Value::Object(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), shorten(v))).collect())
        }
        other => other.clone(),
    };
    thywill_v1::mask::mask_emails(&shortened.to_string())
}

fn shorten(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::String(s) if s.chars().count() > SHOWN_VALUE => {
            let head: String = s.chars().take(SHOWN_VALUE).collect();
            serde_json::Value::String(format!("{head}… ({} characters)", s.chars().count()))
        }
        other => other.clone(),
    }
}

/// A text safe inside a TOML comment: one line, no control character (TOML forbids them there).
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

/// A TOML basic string (JSON's escaping is a subset TOML reads, except DEL, escaped here).
fn toml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string())
        .to_string()
        .replace('\u{7f}', "\\u007F")
}
