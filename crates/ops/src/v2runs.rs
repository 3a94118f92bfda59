//! The migration runs recorded in a v2 database, and removing the data of the runs a rollback
//! undoes, through the v2 writer crate (`thywill_v2::V2Db::remove_run`).

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
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
