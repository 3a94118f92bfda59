//! The v1 side of both jobs: open the snapshot, fingerprint it, check its integrity, list the
//! v1 archive tree, run the detector, and start the report.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use thywill_detect::reconcile::{ArchiveRule, RecordKind, Recovery};
use thywill_detect::{detect, DetectOptions, Plan};
use thywill_v1::{source_sha256, IntegrityReport, V1Database, CARRIED_TABLES};

use crate::error::PipelineError;
use crate::progress::Progress;
use crate::report::{
    Feasibility, Recoverable, Report, ReportDecisions, ReportFinding, ReportFindings, SourceClock,
    SourceEmailDb, SourceInfo,
};
use crate::{CommonOptions, TOOL_VERSION};

/// The analysed v1 source, shared by `analyze` and `migrate`.
pub(crate) struct Source {
    pub(crate) db: V1Database,
    pub(crate) sha256: String,
    pub(crate) integrity: IntegrityReport,
    pub(crate) table_counts: BTreeMap<String, u64>,
    /// `table.column` of the carried tables with no v2 home → non-NULL values.
    pub(crate) not_carried_columns: BTreeMap<String, u64>,
    pub(crate) plan: Plan,
    pub(crate) archive_findings: Vec<crate::report::ReportFinding>,
    /// What the archive tree adds (`--archives-v1`).
    pub(crate) recoverable: Option<Recoverable>,
    /// The data's evidence against the zone given (`--v1-timezone`), when it has some.
    pub(crate) clock_warning: Option<String>,
    /// v1's e-mail database (`--v1-email-db`), open for the findings' original rows.
    pub(crate) email_db: Option<thywill_v1::V1EmailDb>,
    /// `source.email_db` of the report.
    pub(crate) email_info: Option<SourceEmailDb>,
}

/// Opens and analyses the source (stage `detect`).
pub(crate) fn prepare(
    common: &CommonOptions,
    progress: &mut Progress,
) -> Result<Source, PipelineError> {
    let stage = progress.start("detect", 0);
    let before = SourceStamp::read(&common.v1_db)?;
    let email_before = common
        .email_db
        .as_deref()
        .map(SourceStamp::read)
        .transpose()?;
    let db = V1Database::open(&common.v1_db)?;
    let (email_db, email_info) = match &common.email_db {
        Some(path) => {
            let e = thywill_v1::V1EmailDb::open(path)?;
            let info = SourceEmailDb {
                path: path.display().to_string(),
                sha256: source_sha256(path)?,
                rows: e.rows()?.len() as u64,
            };
            (Some(e), Some(info))
        }
        None => (None, None),
    };
    // Three independent reads of the source share the cores: hashing the file, the integrity
    // check (on a second read-only connection: `PRAGMA quick_check` holds its connection for the
    // whole check) and the analysis. The file must not change meanwhile: checked below.
    let (sha256, integrity, analysed) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| source_sha256(&common.v1_db));
        let checking =
            scope.spawn(|| V1Database::open(&common.v1_db).and_then(|second| second.integrity()));
        let analysed = analyse(&db, email_db.as_ref(), common);
        let lost = |what: &str| thywill_v1::V1Error::Io {
            path: common.v1_db.clone(),
            source: std::io::Error::other(format!("the {what} thread panicked")),
        };
        let sha256 = hashing.join().unwrap_or_else(|_| Err(lost("hashing")));
        let integrity = checking.join().unwrap_or_else(|_| Err(lost("integrity")));
        (sha256, integrity, analysed)
    });
    // A damaged file makes the analysis fail too: the integrity error names the damage.
    let integrity = integrity?;
    let analysed = analysed?;
    let sha256 = sha256?;
    if SourceStamp::read(&common.v1_db)? != before {
        return Err(PipelineError::SourceChanged {
            what: "database",
            path: common.v1_db.display().to_string(),
        });
    }
    // The e-mail database's hash is read outside its snapshot too.
    if let (Some(path), Some(before)) = (&common.email_db, email_before) {
        if SourceStamp::read(path)? != before {
            return Err(PipelineError::SourceChanged {
                what: "e-mail database",
                path: path.display().to_string(),
            });
        }
    }
    let Analysed {
        table_counts,
        plan,
        archive_findings,
        recoverable,
        clock_warning,
    } = analysed;
    let mut stage = stage;
    stage.inc(
        CARRIED_TABLES
            .iter()
            .map(|t| table_counts.get(*t).copied().unwrap_or(0))
            .sum(),
    );
    let not_carried_columns = crate::columns::not_carried_columns(&db)?;
    progress.finish(stage);
    Ok(Source {
        db,
        sha256,
        integrity,
        table_counts,
        not_carried_columns,
        plan,
        archive_findings,
        recoverable,
        clock_warning,
        email_db,
        email_info,
    })
}

/// Size and modification time of the v1 file and its `-wal`: equal before and after the
/// analysis when nothing wrote to the source meanwhile (the hash and the integrity check read
/// the file outside the snapshot's transaction). An empty `-wal` counts as none: opening a WAL
/// database whose log was checkpointed away (v1 stopped cleanly) creates an empty one.
#[derive(PartialEq, Eq)]
struct SourceStamp([Option<(u64, std::time::SystemTime)>; 2]);

impl SourceStamp {
    fn read(path: &std::path::Path) -> Result<SourceStamp, PipelineError> {
        let io = |p: &std::path::Path, source| {
            PipelineError::V1(thywill_v1::V1Error::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let stamp = |p: &std::path::Path| -> Result<_, PipelineError> {
            match std::fs::metadata(p) {
                Ok(m) if m.len() == 0 => Ok(None),
                Ok(m) => Ok(Some((m.len(), m.modified().map_err(|e| io(p, e))?))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(p, e)),
            }
        };
        Ok(SourceStamp([
            stamp(path)?,
            stamp(&thywill_v1::wal_path(path))?,
        ]))
    }
}

/// What `analyse` learns from the snapshot.
struct Analysed {
    table_counts: BTreeMap<String, u64>,
    plan: Plan,
    archive_findings: Vec<crate::report::ReportFinding>,
    recoverable: Option<Recoverable>,
    clock_warning: Option<String>,
}

/// Integrity, counts, the detector's plan and the archive reconciliation of an open snapshot.
fn analyse(
    db: &V1Database,
    email_db: Option<&thywill_v1::V1EmailDb>,
    common: &CommonOptions,
) -> Result<Analysed, PipelineError> {
    let table_counts = db.table_counts()?;
    // One scan of the v1 tree serves both the detector (which files exist, for R-ARCHIVE-PATH)
    // and the reconciliation of the database with the tree.
    let archive = match &common.archives_v1 {
        Some(root) => Some(thywill_detect::reconcile::scan_v1_tree(root)?),
        None => None,
    };
    let as_of = common.as_of.unwrap_or_else(|| Utc::now().naive_utc());
    let mut opts = DetectOptions::new(common.policy, as_of);
    if !common.test_account_names.is_empty() {
        opts.test_account_names = common.test_account_names.clone();
    }
    opts.clock = common.clock;
    opts.decisions = common.decisions.as_ref();
    if let Some(h) = common.invite_hours {
        opts.invite_hours = h;
    }
    opts.archive_files = archive
        .as_ref()
        .map(|a| &a.files as &dyn thywill_detect::ArchiveFiles);
    // A damaged prayer value the tree holds whole is restored from it under `repair` (§50).
    opts.witnesses = archive
        .as_ref()
        .map(thywill_detect::reconcile::Witnesses::new);
    opts.email = match (email_db, &common.email_key) {
        (Some(db), Some(key)) => Some(thywill_detect::EmailInput { db, key }),
        (Some(_), None) => {
            return Err(PipelineError::Detect(thywill_detect::DetectError::EmailKey))
        }
        (None, _) => None,
    };
    let mut plan = detect(db, &opts)?;
    let (archive_findings, recoverable) = match &archive {
        Some(archive) => {
            // The tree as a second witness: what it adds is written under `repair` only.
            let recovery =
                thywill_detect::reconcile::recover(db, archive, &plan, &opts.test_account_names)?;
            let recoverable = Recoverable {
                users: recovery.users.len() as u64,
                prayers: recovery.prayers.len() as u64,
                marks: recovery.marks.len() as u64,
                values: plan.restorable_values(),
            };
            plan.apply_recovery(recovery)?;
            let findings = archive_report_findings(db, archive, &common.clock, plan.recovery())?;
            (findings, Some(recoverable))
        }
        None => (Vec::new(), None),
    };
    let clock_warning = thywill_detect::clock::zone_evidence(db, &common.clock)?;
    if let Some(w) = &clock_warning {
        tracing::warn!("{w}");
    }
    Ok(Analysed {
        table_counts,
        plan,
        archive_findings,
        recoverable,
        clock_warning,
    })
}

/// The detector's reconciliation of `db` with the scanned v1 tree, as report entries (each with
/// the decision the detector gives it): the archive-only prayers and lines the plan recovers
/// (`recovery`) are reported once, as recovered, naming their file (and line).
fn archive_report_findings(
    db: &V1Database,
    archive: &thywill_v1::archive::V1Archive,
    clock: &thywill_detect::clock::Clock,
    recovery: &Recovery,
) -> Result<Vec<crate::report::ReportFinding>, PipelineError> {
    let prayers: HashSet<&str> = recovery.prayers.iter().map(|p| p.path.as_str()).collect();
    let users: HashSet<(&str, &str)> = recovery
        .users
        .iter()
        .map(|u| (u.path.as_str(), u.user.display_name.as_str()))
        .collect();
    let marks: HashSet<(&str, u32)> = recovery
        .marks
        .iter()
        .map(|m| (m.path.as_str(), m.line))
        .collect();
    let recovered = |f: &thywill_detect::reconcile::ArchiveFinding| {
        let path = f.path.as_deref().unwrap_or_default();
        f.rule == ArchiveRule::Only
            && match (f.kind, f.line) {
                (RecordKind::Prayer, _) => prayers.contains(path),
                (RecordKind::User, _) => users.contains(&(path, f.key.as_str())),
                (RecordKind::Mark, Some(line)) => marks.contains(&(path, line)),
                _ => false,
            }
    };
    let mut out: Vec<ReportFinding> =
        thywill_detect::reconcile::archive_findings(db, archive, clock)?
            .into_iter()
            .filter(|f| !recovered(f))
            .map(|f| ReportFinding {
                v1_table: f.kind.table().to_string(),
                v1_key: f.key,
                rule: f.rule.id().to_string(),
                decision: f.rule.decision().as_str().to_string(),
                reason: format!("{} ({})", f.detail, f.path.as_deref().unwrap_or("no file")),
                original: None,
            })
            .collect();
    out.extend(recovered_findings(recovery));
    Ok(out)
}

/// The findings of the recovered records (`R-ARCHIVE-ONLY`, `recovered`), as report entries
/// and `migration_findings` rows: each names its file (and line), its original is the archive's
/// record.
pub(crate) fn recovered_findings(recovery: &Recovery) -> impl Iterator<Item = ReportFinding> + '_ {
    let users = recovery.users.iter().map(|u| ReportFinding {
        v1_table: "user".into(),
        v1_key: u.user.id.clone(),
        rule: ArchiveRule::Only.id().into(),
        decision: thywill_detect::Decision::Recovered.as_str().into(),
        reason: format!(
            "recovered from {} line {}: `{}` registered {} and has no user row",
            u.path, u.line, u.user.display_name, u.at
        ),
        original: Some(serde_json::json!({
            "archive_file": u.path, "line": u.line, "at": u.at, "name": u.user.display_name,
        })),
    });
    let prayers = recovery.prayers.iter().map(|p| ReportFinding {
        v1_table: "prayer".into(),
        v1_key: p.prayer.id.clone(),
        rule: ArchiveRule::Only.id().into(),
        decision: thywill_detect::Decision::Recovered.as_str().into(),
        reason: format!(
            "recovered from the archive file {}: the prayer by `{}` submitted {} has no database row",
            p.path, p.author, p.submitted
        ),
        original: Some(serde_json::json!({
            "archive_file": p.path, "author": p.author, "submitted": p.submitted,
        })),
    });
    let marks = recovery.marks.iter().map(|m| ReportFinding {
        v1_table: "prayermark".into(),
        v1_key: m.mark.id.clone(),
        rule: ArchiveRule::Only.id().into(),
        decision: thywill_detect::Decision::Recovered.as_str().into(),
        reason: format!(
            "recovered from {} line {}: `{} - {} prayed this prayer` of prayer {} is beyond the {} mark(s) the database holds for this prayer, member and minute",
            m.path, m.line, m.at, m.member, m.mark.prayer_id, m.held
        ),
        original: Some(serde_json::json!({
            "archive_file": m.path, "line": m.line, "at": m.at, "member": m.member,
            "prayer_id": m.mark.prayer_id,
        })),
    });
    users.chain(prayers).chain(marks)
}

impl Source {
    /// Every member v2 gets, in the order they are written: the plan's, then those recovered
    /// from the v1 tree.
    pub(crate) fn members(
        &self,
    ) -> impl Iterator<Item = Result<thywill_detect::ResolvedUser, thywill_detect::DetectError>> + '_
    {
        let recovered = self
            .plan
            .recovery()
            .users
            .iter()
            .map(|r| Ok(r.user.clone()));
        self.plan.users().chain(recovered)
    }

    /// The report's common part: source, law, findings, feasibility.
    pub(crate) fn report(
        &self,
        tool: &str,
        common: &CommonOptions,
        started: &str,
        outcome: &str,
    ) -> Report {
        let schema = self.db.schema();
        let not_carried_tables = schema
            .not_carried_tables()
            .into_iter()
            .map(|t| {
                let n = self.table_counts.get(&t).copied().unwrap_or(0);
                (t, n)
            })
            .collect();
        let tables = self.plan.counts().clone();
        let law_holds = tables.values().all(|c| c.balances());
        let findings = ReportFindings::from(self.plan.findings().clone());
        let findings_by_rule = self
            .plan
            .findings_by_rule()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Report {
            report_version: 1,
            tool: tool.to_string(),
            tool_version: TOOL_VERSION.to_string(),
            run_id: None,
            started_at: started.to_string(),
            finished_at: now_rfc3339(),
            policy: common.policy.as_str().to_string(),
            dry_run: false,
            outcome: outcome.to_string(),
            source: SourceInfo {
                path: common.v1_db.display().to_string(),
                sha256: self.sha256.clone(),
                generation: schema.generation.to_string(),
                unknown_columns: schema.unknown_columns.clone(),
                not_carried_tables,
                not_carried_columns: self.not_carried_columns.clone(),
                clock: SourceClock::of(&common.clock),
                missing_index_entries: self.integrity.missing_index_entries.len() as u64,
                email_db: self.email_info.clone(),
            },
            target: None,
            feasibility: self.feasibility(law_holds),
            decisions: common.decisions.as_ref().map(|d| ReportDecisions {
                path: d.path.clone(),
                sha256: d.sha256.clone(),
                entries_applied: self.plan.decisions_applied().unwrap_or(0),
            }),
            tables,
            findings_by_rule,
            findings,
            archive_findings: self.archive_findings.clone(),
            archives_recoverable: self.recoverable,
            archives: None,
            stages: Vec::new(),
            ok: law_holds,
        }
    }

    fn feasibility(&self, law_holds: bool) -> Feasibility {
        let mut notes = Vec::new();
        if !law_holds {
            notes.push(
                "the accounting law does not balance: do not migrate; report this as a bug"
                    .to_string(),
            );
        }
        for (table, c) in self.plan.counts() {
            if c.quarantined > 0 {
                notes.push(format!(
                    "{table}: {} row(s) will be quarantined (kept in migration_findings, not written): review them before migration day",
                    c.quarantined
                ));
            }
        }
        let missing = self.integrity.missing_index_entries.len();
        if missing > 0 {
            notes.push(format!("{missing} row(s) are missing from an index: they are read by full table scan and handled by R-USER-UNRETRIEVABLE"));
        }
        notes.extend(self.clock_warning.clone());
        let unknown = &self.db.schema().unknown_columns;
        if !unknown.is_empty() {
            notes.push(format!(
                "columns not known to the migration are ignored: {}",
                unknown.join(", ")
            ));
        }
        Feasibility {
            feasible: law_holds,
            notes,
        }
    }
}

/// Now as RFC 3339 UTC with seconds.
pub(crate) fn now_rfc3339() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::SourceStamp;

    #[test]
    fn a_write_to_the_file_or_its_wal_changes_the_stamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("v1.db");
        std::fs::write(&db, b"first").expect("write");
        let before = SourceStamp::read(&db).expect("stamp");
        assert!(
            SourceStamp::read(&db).expect("stamp") == before,
            "nothing changed"
        );
        std::fs::write(dir.path().join("v1.db-wal"), b"frame").expect("wal");
        let with_wal = SourceStamp::read(&db).expect("stamp");
        assert!(with_wal != before, "a new -wal file is a change");
        std::fs::write(&db, b"second, longer").expect("rewrite");
        assert!(
            SourceStamp::read(&db).expect("stamp") != with_wal,
            "a rewrite is a change"
        );
    }

    #[test]
    fn an_empty_wal_is_no_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("v1.db");
        std::fs::write(&db, b"first").expect("write");
        let before = SourceStamp::read(&db).expect("stamp");
        std::fs::write(dir.path().join("v1.db-wal"), b"").expect("wal");
        assert!(
            SourceStamp::read(&db).expect("stamp") == before,
            "SQLite creates an empty -wal when it opens a WAL database"
        );
    }
}
