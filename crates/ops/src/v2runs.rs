//! The migration runs recorded in a v2 database: listing them (`thywill-runs`), and removing the
//! data of the runs a rollback undoes, through the v2 writer crate (`thywill_v2::V2Db::runs`,
//! `thywill_v2::V2Db::remove_run`).

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use serde::Serialize;
use thywill_v2::rows::{run_status, MigrationRun};
use thywill_v2::{RemoveOutcome, Target, V2Db};

use crate::error::{OpsError, Result};

/// Which runs a rollback undoes.
#[derive(Debug, Clone)]
pub enum RunSelection {
    /// These run ids.
    Ids(Vec<String>),
    /// The most recent run that is not a dry run, not yet rolled back and not replaced.
    Latest,
    /// Every run that started at or after `since` and is not in `known` (the runs recorded
    /// before a cut-over began): exactly the cut-over's own runs.
    NewSince {
        /// The cut-over's start (UTC).
        since: NaiveDateTime,
        /// Run ids present before.
        known: BTreeSet<String>,
    },
}

/// What was done for one run.
#[derive(Debug, Clone)]
pub struct RunRemoval {
    /// The run id.
    pub run_id: String,
    /// Rows deleted per table, or `None` when the run was already rolled back.
    pub deleted: Option<Vec<(String, u64)>>,
}

/// Every run recorded in `db`, oldest first; none when the v2 schema does not exist yet.
fn recorded_runs(db: &mut V2Db) -> Result<Vec<MigrationRun>> {
    match db.runs() {
        Ok(runs) => Ok(runs),
        Err(e) => {
            let text = e.to_string();
            let no_table = text.contains("migration_runs")
                && (text.contains("no such table") || text.contains("does not exist"));
            if no_table {
                Ok(Vec::new())
            } else {
                Err(e.into())
            }
        }
    }
}

/// The ids of the runs recorded in the v2 database at `url` (empty for a fresh target).
pub fn run_ids(url: &str) -> Result<BTreeSet<String>> {
    let target = Target::parse(url)?;
    let mut db = V2Db::open(&target)?;
    Ok(recorded_runs(&mut db)?
        .into_iter()
        .map(|r| r.run_id)
        .collect())
}

/// The runs a rollback will undo, resolved (and the target reached) before anything is touched.
#[derive(Debug, Clone)]
pub struct RunsToUndo {
    target: Target,
    ids: Vec<String>,
}

impl RunsToUndo {
    /// The run ids, in the order they will be undone.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Removes the application data of these runs and marks them `rolled_back` (each in one
    /// transaction, by `thywill_v2`), logging what each removal deleted. Idempotent: a run
    /// already rolled back (or replaced) is left alone.
    pub fn remove(&self) -> Result<Vec<RunRemoval>> {
        let mut db = V2Db::open(&self.target)?;
        let mut out = Vec::new();
        for run_id in &self.ids {
            let deleted = match db.remove_run(run_id)? {
                RemoveOutcome::Removed { deleted } => Some(
                    deleted
                        .into_iter()
                        .map(|(t, n)| (t.to_string(), n))
                        .collect(),
                ),
                RemoveOutcome::AlreadyRolledBack => None,
            };
            tracing::info!(run_id = %run_id, target = %self.target, ?deleted, "v2 run rolled back");
            out.push(RunRemoval {
                run_id: run_id.clone(),
                deleted,
            });
        }
        Ok(out)
    }
}

/// Reaches the v2 database at `url` and resolves `selection` to run ids, touching nothing. A run
/// id the database does not record is refused ([`OpsError::RollbackRefused`], exit 4) naming the
/// runs it does record, so that a typo cannot lead to a restore of v1.
pub fn resolve_runs(url: &str, selection: &RunSelection) -> Result<RunsToUndo> {
    let target = Target::parse(url)?;
    let mut db = V2Db::open(&target)?;
    let runs = recorded_runs(&mut db)?;
    let ids: Vec<String> = match selection {
        RunSelection::Ids(ids) => {
            if let Some(unknown) = ids.iter().find(|id| !runs.iter().any(|r| &r.run_id == *id)) {
                let known: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
                return Err(OpsError::RollbackRefused {
                    reason: format!(
                        "the v2 database {target} has no migration run {unknown} (it records: {}); \
                         nothing was touched",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
            ids.clone()
        }
        RunSelection::Latest => runs
            .iter()
            .rev()
            .find(|r| {
                !r.dry_run
                    && r.status != run_status::ROLLED_BACK
                    && r.status != run_status::REPLACED
            })
            .map(|r| r.run_id.clone())
            .into_iter()
            .collect(),
        RunSelection::NewSince { since, known } => runs
            .iter()
            .filter(|r| r.started_at >= *since && !known.contains(&r.run_id))
            .map(|r| r.run_id.clone())
            .collect(),
    };
    Ok(RunsToUndo { target, ids })
}

/// One recorded run as `thywill-runs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The run id (what `thywill-rollback --run-id` takes).
    pub run_id: String,
    /// One of `thywill_v2::rows::run_status`.
    pub status: String,
    /// Start (UTC).
    pub started_at: NaiveDateTime,
    /// End (UTC), if it ended.
    pub finished_at: Option<NaiveDateTime>,
    /// The v1 schema generation (`G0`..`G3`).
    pub source_generation: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// sha256 (hex) of the v1 source.
    pub source_sha256: String,
    /// v1 rows written (the law's `written`, summed over the tables), when the run's
    /// `counts_json` can be read.
    pub rows_written: Option<u64>,
    /// sha256 (hex) of the operator's decisions file the run applied, if any (`--decisions`).
    pub decisions_sha256: Option<String>,
}

impl From<MigrationRun> for RunSummary {
    fn from(r: MigrationRun) -> Self {
        RunSummary {
            rows_written: rows_written(&r.counts_json),
            run_id: r.run_id,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
            source_generation: r.source_generation,
            dry_run: r.dry_run,
            source_sha256: r.source_sha256,
            decisions_sha256: None,
        }
    }
}

/// The sum of `written` over the tables of a run's `counts_json` (`{"user": {"written": 3, …},
/// …}`); `None` when it is not that shape.
fn rows_written(counts_json: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(counts_json).ok()?;
    let tables = value.as_object().filter(|t| !t.is_empty())?;
    tables.values().map(|c| c.get("written")?.as_u64()).sum()
}

/// The runs recorded in a v2 database, oldest first, and the database they were read from.
#[derive(Debug, Clone)]
pub struct RunListing {
    /// The target's URL, password redacted.
    pub target: String,
    /// The runs, oldest first (empty for a fresh target or one without the v2 schema).
    pub runs: Vec<RunSummary>,
}

impl RunListing {
    /// The runs as an aligned text table (the sha256s shortened to 12 characters), or a line saying
    /// there is none.
    pub fn table(&self) -> String {
        if self.runs.is_empty() {
            return format!("no migration runs recorded in {}\n", self.target);
        }
        let time = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
        let header = [
            "run_id",
            "status",
            "started_at",
            "finished_at",
            "generation",
            "dry_run",
            "source sha256",
            "decisions",
            "rows written",
        ]
        .map(String::from);
        let short = |sha: &str| sha.chars().take(12).collect::<String>();
        let rows: Vec<[String; 9]> = self
            .runs
            .iter()
            .map(|r| {
                [
                    r.run_id.clone(),
                    r.status.clone(),
                    time(&r.started_at),
                    r.finished_at.as_ref().map_or_else(|| "-".into(), time),
                    r.source_generation.clone(),
                    if r.dry_run { "yes" } else { "no" }.into(),
                    short(&r.source_sha256),
                    r.decisions_sha256
                        .as_deref()
                        .map_or_else(|| "-".into(), short),
                    r.rows_written.map_or_else(|| "-".into(), |n| n.to_string()),
                ]
            })
            .collect();
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (cell, w))| match i {
                    // The count is right-aligned, as numbers are read.
                    8 => format!("{cell:>w$}"),
                    _ => format!("{cell:<w$}"),
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "{} run(s) recorded in {}\n",
            self.runs.len(),
            self.target
        ));
        out
    }
}

/// Reads the runs recorded in the v2 database at `url`, changing nothing (a missing SQLite file
/// is not created; a database without the v2 schema has no run).
pub fn list_runs(url: &str) -> Result<RunListing> {
    let target = Target::parse(url)?;
    let mut db = V2Db::open(&target)?;
    let runs = recorded_runs(&mut db)?
        .into_iter()
        .map(|r| {
            let decisions = db.run_decisions_sha256(&r.run_id);
            RunSummary {
                decisions_sha256: decisions,
                ..RunSummary::from(r)
            }
        })
        .collect();
    Ok(RunListing {
        target: target.redacted(),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, counts: &str) -> RunSummary {
        RunSummary {
            run_id: id.into(),
            status: "succeeded".into(),
            started_at: NaiveDateTime::parse_from_str("2026-12-03 02:00:00", "%Y-%m-%d %H:%M:%S")
                .unwrap(),
            finished_at: None,
            source_generation: "G1".into(),
            dry_run: false,
            source_sha256: "0123456789abcdef0123".into(),
            rows_written: rows_written(counts),
            decisions_sha256: None,
        }
    }

    #[test]
    fn rows_written_sums_the_law_or_says_nothing() {
        let counts = r#"{"user":{"read":5,"written":4},"prayer":{"written":10}}"#;
        assert_eq!(rows_written(counts), Some(14));
        assert_eq!(rows_written("{}"), None);
        assert_eq!(rows_written("not json"), None);
        assert_eq!(rows_written(r#"{"user":{"read":5}}"#), None);
    }

    #[test]
    fn table_is_aligned_and_shortens_the_hash() {
        let listing = RunListing {
            target: "postgresql://u:***@h/db".into(),
            runs: vec![run("aa", r#"{"user":{"written":1234}}"#), run("bbbb", "x")],
        };
        let table = listing.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let col = |l: &str| l.find("succeeded").or_else(|| l.find("status")).unwrap();
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
        assert!(lines[1].contains("0123456789ab ") && !table.contains("0123456789abc"));
        assert!(
            lines[1].ends_with("1234") && lines[2].ends_with("   -"),
            "{table}"
        );
        assert_eq!(lines[3], "2 run(s) recorded in postgresql://u:***@h/db");
        let empty = RunListing {
            target: "sqlite://v2.db".into(),
            runs: vec![],
        };
        assert_eq!(
            empty.table(),
            "no migration runs recorded in sqlite://v2.db\n"
        );
    }
}
