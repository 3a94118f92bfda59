//! The definition of done: on every committed fixture and under both policies, the detector's
//! findings (table, rowid, rule, decision) equal the truth file's `expected` entries exactly, and
//! its accounting law equals the truth's `law`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use thywill_detect::{detect, DetectOptions, Policy, TableCounts};
use thywill_fixturegen::read_truth;
use thywill_v1::V1Database;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The run clock of the tests: after the fixtures' past expiries (2025), before their live
/// ones (2099).
fn as_of() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 6, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid date")
}

type Key = (String, i64, String);

fn check(fixture: &str, policy: Policy) -> Result<(), String> {
    let dir = fixtures_root().join(fixture);
    let truth = read_truth(&dir.join("truth.json")).map_err(|e| e.to_string())?;
    let db = V1Database::open(dir.join("v1.db")).map_err(|e| e.to_string())?;
    let plan = detect(&db, &DetectOptions::new(policy, as_of())).map_err(|e| e.to_string())?;

    let mut expected: BTreeMap<Key, (String, String, String)> = BTreeMap::new();
    for f in &truth.expected {
        let decision = match policy {
            Policy::Repair => f.repair,
            Policy::Strict => f.strict,
        };
        let (Some(rowid), Some(d)) = (f.rowid, decision) else {
            continue;
        };
        let d = serde_json::to_value(d).map_err(|e| e.to_string())?;
        expected.insert(
            (f.table.clone(), rowid, f.rule.clone()),
            (
                d.as_str().unwrap_or_default().to_string(),
                f.key.clone(),
                f.why.clone(),
            ),
        );
    }
    let mut got: BTreeMap<Key, (String, String, String)> = BTreeMap::new();
    for f in plan.findings() {
        let f = f.expect("finding read back");
        got.insert(
            (f.v1_table.clone(), f.rowid, f.rule.as_str().to_string()),
            (
                f.decision.as_str().to_string(),
                f.v1_key.clone(),
                f.reason.clone(),
            ),
        );
    }
    let mut diff = Vec::new();
    for (k, (d, key, why)) in &expected {
        match got.get(k) {
            None => diff.push(format!("  MISSED   {} rowid {} {} [{}] {d}: {why}", k.0, k.1, k.2, key)),
            Some((gd, gkey, reason)) if gd != d || gkey != key => diff.push(format!(
                "  WRONG    {} rowid {} {}: expected {d} key [{key}], got {gd} key [{gkey}] ({reason}); truth: {why}",
                k.0, k.1, k.2
            )),
            _ => {}
        }
    }
    for (k, (d, key, reason)) in &got {
        if !expected.contains_key(k) {
            diff.push(format!(
                "  EXTRA    {} rowid {} {} [{}] {d}: {reason}",
                k.0, k.1, k.2, key
            ));
        }
    }
    let truth_law: BTreeMap<String, TableCounts> = truth
        .law
        .get(policy.as_str())
        .map(|t| {
            t.iter()
                .map(|(table, c)| {
                    (
                        table.clone(),
                        TableCounts {
                            read: c.read,
                            written: c.written,
                            repaired: c.repaired,
                            merged: c.merged,
                            deduplicated: c.deduplicated,
                            quarantined: c.quarantined,
                            not_carried: c.not_carried,
                            // the fixtures' truth predates recovery: their laws are the database's
                            recovered: 0,
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if &truth_law != plan.counts() {
        for (table, want) in &truth_law {
            let have = plan.counts().get(table);
            if have != Some(want) {
                diff.push(format!(
                    "  LAW      {table}: expected {want:?}, got {have:?}"
                ));
            }
        }
        for table in plan.counts().keys().filter(|t| !truth_law.contains_key(*t)) {
            diff.push(format!("  LAW      {table}: not in the truth"));
        }
    }
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{fixture} under {policy}: {} differences\n{}",
            diff.len(),
            diff.join("\n")
        ))
    }
}

fn run(fixture: &str) {
    let errors: Vec<String> = [Policy::Repair, Policy::Strict]
        .into_iter()
        .filter_map(|p| check(fixture, p).err())
        .collect();
    assert!(errors.is_empty(), "\n{}", errors.join("\n\n"));
}

#[test]
fn g0_matches_its_truth() {
    run("g0-s");
}

#[test]
fn g1_matches_its_truth() {
    run("g1-s");
}

#[test]
fn g2_matches_its_truth() {
    run("g2-s");
}

#[test]
fn g3_matches_its_truth() {
    run("g3-s");
}
