//! The checks. Each is a body for [`crate::run_check`]; [`against_v2`] composes those that need
//! the v2 database, reading v1 and v2 once and sharing the reads.

pub mod archives;
pub mod constraints;
pub mod smoke;

use chrono::NaiveDateTime;
use serde_json::json;
use thywill_v1::V1Database;
use thywill_v2::Target;

use crate::canon::{compare, Canon, CanonTable, Cell, TableDiff};
use crate::error::ValidateError;
use crate::expected::{self, Actual, Ledger};
use crate::marks::{differing_keys, key_hash, MarkSide};
use crate::v2db::{query_error, V2Conn};
use thywill_v2::rows::PrayerMark;
const MAX_RENAMED: usize = 5;
/// Position of `prayer_marks` among the compared tables.
const MARKS: usize = 2;

enum MarkError {
    V1(thywill_v1::V1Error),
    V2(diesel::result::Error),
}

/// The marks' diff: the compact sides are merged; only when they differ are the differing keys
/// read again from both sides in full and compared as every other table is (naming keys and
/// columns).
fn compare_marks(
    v1: &V1Database,
    ledger: &Ledger,
    derived: &expected::Derived,
    actual: &Actual,
    conn: &mut V2Conn,
) -> Result<TableDiff, MarkError> {
    let keys = differing_keys(&derived.marks, &actual.marks);
    let mut d = if keys.is_empty() {
        TableDiff {
            table: PrayerMark::TABLE.into(),
            ..TableDiff::default()
        }
    } else {
        let e =
            expected::expected_marks(v1, ledger, derived, Some(&keys)).map_err(MarkError::V1)?;
        let mut a = CanonTable::of::<PrayerMark>();
        conn.for_each_mark(|m| {
            if keys.contains(&key_hash(&m.prayer_id, &m.user_id, m.marked_at)) {
                a.insert(m.canon_key(), m.cells());
            }
        })
        .map_err(MarkError::V2)?;
        compare(&e, &a)
    };
    d.expected_rows = derived.marks.len();
    d.actual_rows = actual.marks.len();
    d.expected_sha256 = derived.marks.fingerprint();
    d.actual_sha256 = actual.marks.fingerprint();
    Ok(d)
}

use crate::{run_check, CheckResult, Options, Outcome, Policy};

/// v1 soundness: readable, generation recognised, integrity classified. Missing index entries
/// are findings (`R-USER-UNRETRIEVABLE`), not failures; damaged pages are an error (exit 3).
pub(crate) fn v1_soundness(v1: &V1Database) -> Result<Outcome, ValidateError> {
    let integrity = v1.integrity()?;
    let counts = v1.table_counts()?;
    let schema = v1.schema();
    let mut facts: Vec<String> = integrity
        .missing_index_entries
        .iter()
        .map(|m| {
            format!(
                "finding: {} rowid {} missing from index {} (R-USER-UNRETRIEVABLE)",
                m.table, m.rowid, m.index
            )
        })
        .collect();
    facts.extend(
        integrity
            .index_problems
            .iter()
            .map(|p| format!("finding: {p}")),
    );
    facts.extend(
        integrity
            .constraint_problems
            .iter()
            .map(|p| format!("finding: {p}")),
    );
    if !schema.unknown_columns.is_empty() {
        facts.push(format!(
            "unknown columns (ignored): {}",
            schema.unknown_columns.join(", ")
        ));
    }
    let carried: u64 = thywill_v1::CARRIED_TABLES
        .iter()
        .filter_map(|t| counts.get(*t))
        .sum();
    Ok(Outcome {
        summary: format!(
            "generation {}, {} carried rows, {} missing index entr(ies)",
            schema.generation,
            carried,
            integrity.missing_index_entries.len()
        ),
        facts,
        problems: Vec::new(),
        data: json!({ "generation": schema.generation, "tables": counts }),
    })
}

/// The marks read back from v2, compactly.
fn read_marks(conn: &mut V2Conn) -> Result<MarkSide, diesel::result::Error> {
    let mut marks = MarkSide::default();
    conn.for_each_mark(|m| {
        marks.push(key_hash(&m.prayer_id, &m.user_id, m.marked_at), Some(&m.id))
    })?;
    marks.finish();
    Ok(marks)
}

fn run_constraints(conn: &mut V2Conn) -> Result<(usize, Vec<String>), diesel::result::Error> {
    if conn.backend() == thywill_v2::Backend::Postgres {
        // The unique checks group whole tables: let them hash in memory rather than spill.
        conn.batch("SET work_mem = '128MB'")?;
    }
    constraints::run(conn)
}

/// The checks that need v2: law, fidelity, constraints, smoke, archives.
/// The run against the operator's decisions file: the file the run recorded, and every entry's
/// promise kept (the values themselves are compared by `fidelity`, derived with the file).
fn decisions_check(
    file: Option<&crate::decisions::OperatorDecisions>,
    ledger: &Ledger,
    recorded: Option<&str>,
) -> Result<Outcome, ValidateError> {
    let mut o = Outcome::default();
    match file {
        None => o.problems.push(format!(
            "the run applied a decisions file (sha256 {}): validate with --decisions FILE, the same file",
            recorded.unwrap_or_default()
        )),
        Some(d) => {
            o.problems.extend(d.check(ledger, recorded));
            o.summary = format!("{} ({}): every entry's promise holds in v2", d.path, d.sha256);
        }
    }
    Ok(o)
}

pub(crate) fn against_v2(
    v1: &V1Database,
    target: &Target,
    opts: &Options,
    now: NaiveDateTime,
    run_id: &mut Option<String>,
) -> Result<Vec<CheckResult>, ValidateError> {
    let mut conn = V2Conn::open(target)?;
    // The law compares the run's recorded source sha256 with this file's: hashed meanwhile.
    let sha_job = {
        let path = v1.path().to_path_buf();
        std::thread::spawn(move || thywill_v1::source_sha256(&path))
    };
    // The constraint queries need nothing the validator derives: on a file or server database
    // they run on a second connection while v1 and v2 are read and compared.
    let background = match target {
        Target::SqliteMemory => None,
        _ => {
            let mut c2 = V2Conn::open(target)?;
            Some(std::thread::spawn(move || {
                let t = std::time::Instant::now();
                let r = run_constraints(&mut c2);
                (r, t.elapsed().as_secs_f64())
            }))
        }
    };
    // Likewise the marks, the largest read back, are read on a connection of their own while
    // v1 is scanned and the derivation runs; the marks' law is settled once both are done.
    let marks_job = match target {
        Target::SqliteMemory => None,
        _ => {
            let mut c3 = V2Conn::open(target)?;
            Some(std::thread::spawn(move || read_marks(&mut c3)))
        }
    };
    let q = |what: &str| {
        let what = what.to_string();
        move |e| query_error(target, &what, e)
    };
    let run = conn.latest_run().map_err(q("migration_runs"))?;
    *run_id = run.as_ref().map(|r| r.run_id.clone());
    let findings = match &run {
        Some(r) => conn.findings(&r.run_id).map_err(q("migration_findings"))?,
        None => Vec::new(),
    };
    let mut ledger = Ledger::new(&findings, &conn.id_map().map_err(q("migration_id_map"))?);
    ledger.derive_exclusions = opts.policy == Policy::Repair;
    ledger.as_of = run.as_ref().and_then(|r| r.started_at);
    ledger.test_accounts = opts.test_account_names.clone();
    ledger.clock = opts.clock;
    ledger.invite_hours = opts.invite_hours;
    ledger.email = opts.email.clone();
    ledger.decisions = opts.decisions.clone();
    // Under `repair` the run recovers what the v1 tree holds and the database lost.
    ledger.recover_from = opts
        .archives_v1
        .clone()
        .filter(|_| opts.policy == Policy::Repair);
    let data = conn.read_all().map_err(q("application tables"))?;
    let mut actual = Actual::new(&data, MarkSide::default());
    drop(data);
    let mut derived = expected::derive(v1, &ledger, &actual)?;
    actual.marks = match marks_job {
        Some(job) => job.join().expect("reading the marks does not panic"),
        None => read_marks(&mut conn),
    }
    .map_err(q("prayer_marks"))?;
    expected::settle_marks(v1, &ledger, &mut derived, &actual.marks)?;

    let mut out = Vec::new();
    out.push(run_check("law", || {
        let mut o = Outcome::default();
        match &run {
            None => o.problems.push("v2 records no succeeded migration run: nothing accounts for the v1 rows".into()),
            Some(r) => {
                let sha = sha_job.join().expect("hashing v1 does not panic")?;
                if sha != r.source_sha256 {
                    o.facts.push(format!("note: run {} recorded source sha256 {}, this v1 file is {sha}", r.run_id, r.source_sha256));
                }
            }
        }
        o.problems.extend(ledger.bad_decisions.iter().cloned());
        let recovered: usize = ["user", "prayer", "prayermark"]
            .iter()
            .filter_map(|t| ledger.recovered_in(t).map(|k| k.len()))
            .sum();
        if recovered > 0 && ledger.recover_from.is_none() {
            o.problems.push(format!(
                "{recovered} finding(s) say recovered, yet {}: give the v1 archive tree the run read (--archives-v1) to derive them",
                if opts.policy == Policy::Strict { "policy strict recovers nothing" } else { "no v1 archive tree was given" }
            ));
        }
        o.problems.extend(derived.orphans.iter().cloned());
        if opts.policy == Policy::Strict && ledger.merged_findings > 0 {
            o.problems.push(format!("policy strict, yet {} finding(s) say merged", ledger.merged_findings));
        }
        for t in &derived.law {
            if !t.holds() {
                o.problems.push(format!(
                    "{}: read {} + recovered {} != written {} + merged {} + deduplicated {} + quarantined {} + not carried {} ({} row(s) in no place or two)",
                    t.table, t.read, t.recovered, t.written, t.merged, t.deduplicated, t.quarantined, t.not_carried, t.violations
                ));
                o.problems.extend(t.examples.iter().cloned());
            }
        }
        let rows: u64 = derived.law.iter().map(|t| t.read).sum();
        o.summary = format!("{} carried tables, {rows} v1 rows each in exactly one place", derived.law.len());
        o.data = json!(derived.law);
        Ok(o)
    })?);
    out.push(run_check("fidelity", || {
        let mut o = Outcome::default();
        let mut diffs: Vec<_> = derived
            .expected
            .iter()
            .zip(&actual.tables)
            .map(|(e, a)| compare(e, a))
            .collect();
        diffs[MARKS] =
            compare_marks(v1, &ledger, &derived, &actual, &mut conn).map_err(|e| match e {
                MarkError::V1(e) => ValidateError::from(e),
                MarkError::V2(e) => query_error(target, "prayer_marks", e),
            })?;
        let rows: usize = diffs.iter().map(|d| d.actual_rows).sum();
        for d in &diffs {
            if !d.is_equal() {
                o.problems.push(format!(
                    "{}: {} missing, {} unexpected, {} changed of {} expected",
                    d.table, d.missing, d.unexpected, d.changed, d.expected_rows
                ));
                o.problems.extend(d.examples.iter().cloned());
            }
        }
        if opts.policy == Policy::Strict {
            for key in derived.renamed.iter().take(MAX_RENAMED) {
                o.problems.push(format!(
                    "user {key}: written with a repaired name under policy strict"
                ));
            }
        }
        o.summary = format!(
            "{} tables, {rows} v2 rows equal to their derivation from v1",
            diffs.len()
        );
        o.data = json!(diffs);
        Ok(o)
    })?);
    out.push(run_check("findings-derived", || {
        let mut o = Outcome::default();
        if derived.underived_count > 0 {
            o.problems.push(format!(
                "{} row(s) kept out of v2 by a finding the validator does not derive from v1",
                derived.underived_count
            ));
            o.problems.extend(derived.underived.iter().cloned());
        }
        o.summary = if ledger.derive_exclusions {
            "every quarantined, merged or dropped member, prayer, mark, invite, grant and session has a cause in v1".into()
        } else {
            "not derived under policy strict (any repair excludes a row there)".into()
        };
        Ok(o)
    })?);
    let recorded = run.as_ref().and_then(|r| r.decisions_sha256.as_deref());
    if opts.decisions.is_some() || recorded.is_some() {
        out.push(run_check("decisions", || {
            decisions_check(opts.decisions.as_ref(), &ledger, recorded)
        })?);
    }
    out.push(run_check("no-silent-change", || {
        let mut o = Outcome::default();
        if derived.silent_count > 0 {
            o.problems.push(format!(
                "{} written row(s) changed from v1 without a finding",
                derived.silent_count
            ));
            o.problems.extend(derived.silent.iter().cloned());
        }
        o.summary = "every v1 value the transform changes has its finding".into();
        Ok(o)
    })?);
    let mut busy = None;
    let mut check = run_check("constraints", || {
        let (n, problems) = match background {
            Some(job) => {
                let (r, secs) = job.join().expect("the constraint queries do not panic");
                busy = Some(secs);
                r
            }
            None => run_constraints(&mut conn),
        }
        .map_err(q("constraint queries"))?;
        Ok(Outcome {
            summary: format!("{n} constraints and foreign keys hold"),
            problems,
            ..Default::default()
        })
    })?;
    // Its own time, not the wait for it.
    check.seconds = busy.unwrap_or(check.seconds);
    out.push(check);
    let members: Vec<(String, String)> = derived
        .expected
        .first()
        .map(|users| {
            users
                .rows
                .iter()
                .filter_map(|(id, cells)| match &cells[1] {
                    Cell::Str(name) => Some((id.clone(), name.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    // An admin grant of a member who is active (a deactivated admin administers nothing).
    let active = |id: &str| {
        derived.expected.first().is_some_and(|users| {
            let c = users.columns.iter().position(|c| *c == "is_active");
            users
                .rows
                .get(id)
                .zip(c)
                .is_some_and(|(row, c)| row[c] == Cell::Bool(true))
        })
    };
    let expect_admin = derived.expected.get(3).is_some_and(|roles| {
        roles
            .rows
            .keys()
            .filter_map(|k| k.strip_suffix("|admin"))
            .any(active)
    });
    out.push(run_check("smoke", || {
        let sm = smoke::run(&mut conn, &members, expect_admin, now).map_err(q("smoke checks"))?;
        Ok(Outcome {
            summary: sm.done.join("; "),
            facts: sm.done,
            problems: sm.problems,
            data: json!(null),
        })
    })?);
    if let Some(v2_root) = &opts.archives_v2 {
        let users: Vec<String> = actual.tables[0].rows.keys().cloned().collect();
        let prayers: Vec<String> = actual.tables[1].rows.keys().cloned().collect();
        out.push(run_check("archives", || {
            let (facts, problems) =
                archives::run(v2_root, opts.archives_v1.as_deref(), &users, &prayers)?;
            Ok(Outcome {
                summary: facts.join("; "),
                facts,
                problems,
                data: json!(null),
            })
        })?);
    }
    Ok(out)
}
