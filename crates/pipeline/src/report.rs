//! The report of `spec/interfaces.md` (`report_version` 1), written by `thywill-analyze` and
//! `thywill-migrate` as JSON, as Markdown for people, and as a short summary on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::progress::StageTiming;
pub use thywill_detect::TableCounts;

/// The whole report. Keys are stable; new keys may be added.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Always 1.
    pub report_version: u32,
    /// `thywill-analyze` or `thywill-migrate`.
    pub tool: String,
    /// The crate version.
    pub tool_version: String,
    /// The run's id (migrate only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End, RFC 3339 UTC.
    pub finished_at: String,
    /// `repair` or `strict`.
    pub policy: String,
    /// True for `--dry-run`.
    pub dry_run: bool,
    /// What happened: `analyzed`, `migrated`, `already_migrated`, `dry_run`, `failed`.
    pub outcome: String,
    /// The v1 source.
    pub source: SourceInfo,
    /// The v2 target (migrate only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetInfo>,
    /// The law per carried table.
    pub tables: BTreeMap<String, TableCounts>,
    /// Number of findings per rule id.
    pub findings_by_rule: BTreeMap<String, u64>,
    /// Every finding (made from the plan's compact store as the report is written).
    pub findings: ReportFindings,
    /// Differences between the v1 database and its v1 archive tree (`R-ARCHIVE-ONLY`,
    /// `R-ARCHIVE-MISSING`, `R-ARCHIVE-MISMATCH`; only with `--archives-v1`). Reported; the
    /// archive-only prayers and marks recovered under `repair` have decision `recovered` (and
    /// count in the law's `recovered`), the rest are not migrated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archive_findings: Vec<ReportFinding>,
    /// What the archive tree adds to v2 (recovered under `repair`; under `strict` what it would
    /// add), when `--archives-v1` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archives_recoverable: Option<Recoverable>,
    /// Archive counts (when archives were handled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archives: Option<ArchiveCounts>,
    /// Stage timings.
    pub stages: Vec<StageTiming>,
    /// Can the migration go ahead, and why not (analyze's verdict; migrate restates it).
    pub feasibility: Feasibility,
    /// The operator's decisions file the run applied (`--decisions`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<ReportDecisions>,
    /// True when the job did what it was asked and the law holds for every table.
    pub ok: bool,
}

/// `decisions` of the report: the operator's decisions file applied.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReportDecisions {
    /// The file as given.
    pub path: String,
    /// The sha256 of its bytes (also in `migration_runs.decisions_sha256`).
    pub sha256: String,
    /// Its entries, every one applied (a run with an entry that cannot be is refused).
    pub entries_applied: u64,
}

/// `archives_recoverable`: the prayers and marks the v1 archive tree holds and the database
/// lost, which `repair` writes to v2 from the archive.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Recoverable {
    /// Archive-only members (registration lines with no user row).
    #[serde(default)]
    pub users: u64,
    /// Archive-only prayers.
    pub prayers: u64,
    /// `prayed this prayer` lines beyond the database's marks (of written and recovered
    /// prayers).
    pub marks: u64,
    /// Damaged prayer values (an empty or not-UTF-8 text, a `created_at` no shape fits, an
    /// author that names no row) whose witness file holds them whole (decisions.md §50).
    #[serde(default)]
    pub values: u64,
}

impl Recoverable {
    /// One line for people, by policy: recovered (`repair`) or only recoverable (`strict`).
    pub fn describe(&self, policy: &str) -> String {
        let members = match self.users {
            0 => String::new(),
            n => format!("{n} members, "),
        };
        let what = format!(
            "{members}{} prayers, {} marks recoverable from the archives, {} values restorable",
            self.prayers, self.marks, self.values
        );
        if policy == "strict" {
            format!("{what} (not recovered nor restored under strict; run with --policy repair)")
        } else {
            format!(
                "{what} (under repair: recovered as R-ARCHIVE-ONLY, decision recovered; restored \
                 as repaired findings naming the file)"
            )
        }
    }
}

/// The source part of the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceInfo {
    /// The v1 file as given.
    pub path: String,
    /// sha256 of the file (and its -wal).
    pub sha256: String,
    /// `G0` … `G3`.
    pub generation: String,
    /// `table.column` the reader did not know (ignored).
    pub unknown_columns: Vec<String>,
    /// Row counts of the tables v2 does not carry (kept in the v1 backup).
    pub not_carried_tables: BTreeMap<String, u64>,
    /// `table.column` of the carried tables with no v2 home → their non-NULL values (left in
    /// the v1 backup).
    #[serde(default)]
    pub not_carried_columns: BTreeMap<String, u64>,
    /// The v1 server's clock the run read local times with (rules.md "Clocks").
    #[serde(default)]
    pub clock: SourceClock,
    /// Rows SQLite's integrity check found missing from an index (read by full scan anyway).
    pub missing_index_entries: u64,
    /// v1's e-mail database, when the run carried its addresses (`--v1-email-db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_db: Option<SourceEmailDb>,
}

/// `source.email_db`: the e-mail database read (`spec/interfaces.md`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceEmailDb {
    /// The file as given.
    pub path: String,
    /// sha256 of the file (and its -wal).
    pub sha256: String,
    /// Rows of `user_email`.
    pub rows: u64,
}

/// `source.clock`: the zone the v1 server ran in, when it started writing local times, and the
/// columns whose values were converted from that zone to UTC (none on a UTC server).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceClock {
    /// The IANA zone (`UTC`, `America/Chicago`).
    pub zone: String,
    /// The switch to local times (`YYYY-MM-DD HH:MM:SS`, a wall-clock time of the zone).
    pub local_since: String,
    /// `table.column` converted (empty when the zone is UTC).
    pub converted: Vec<String>,
}

impl Default for SourceClock {
    fn default() -> Self {
        SourceClock::of(&thywill_detect::clock::Clock::utc())
    }
}

impl SourceClock {
    /// One line for people: the zone, and what was converted from it.
    pub fn describe(&self) -> String {
        if self.converted.is_empty() {
            format!("{} (no time converted)", self.zone)
        } else {
            format!(
                "{}, local times from {} converted to UTC: {}",
                self.zone,
                self.local_since,
                self.converted.join(", ")
            )
        }
    }

    /// The report's view of a clock.
    pub fn of(clock: &thywill_detect::clock::Clock) -> Self {
        SourceClock {
            zone: clock.zone().name().to_string(),
            local_since: clock.local_since().format("%Y-%m-%d %H:%M:%S").to_string(),
            converted: if clock.is_utc() {
                Vec::new()
            } else {
                thywill_detect::clock::LOCAL_COLUMNS
                    .iter()
                    .map(|c| c.to_string())
                    .collect()
            },
        }
    }
}

/// The target part of the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetInfo {
    /// `postgresql` or `sqlite`.
    pub backend: String,
    /// The URL with the password replaced by `***`.
    pub url: String,
}

/// One finding as reported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReportFinding {
    /// The v1 table.
    pub v1_table: String,
    /// The v1 key as text.
    pub v1_key: String,
    /// The rule id.
    pub rule: String,
    /// `repaired`, `merged`, `deduplicated`, `quarantined`, `not_carried`.
    pub decision: String,
    /// Words for an operator.
    pub reason: String,
    /// The whole original v1 row, every column as read (as `migration_findings.original_json`
    /// has it); absent for an archive finding, which is no v1 row, and in reports written before
    /// this key was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<serde_json::Value>,
}

impl ReportFinding {
    /// The report's entry of a detector finding, with its original row when there is one.
    pub fn new(f: thywill_detect::Finding, original: Option<serde_json::Value>) -> Self {
        ReportFinding {
            v1_table: f.v1_table,
            v1_key: f.v1_key,
            rule: f.rule.as_str().to_string(),
            decision: f.decision.as_str().to_string(),
            reason: f.reason,
            original,
        }
    }
}

impl From<thywill_detect::Finding> for ReportFinding {
    /// The entry without its original row.
    fn from(f: thywill_detect::Finding) -> Self {
        ReportFinding::new(f, None)
    }
}

/// Every finding of a report: the plan's compact store ([`thywill_detect::Findings`]), each
/// finding made as the report is walked or written (no finding is held as strings), or, for a
/// report read back from JSON, the list itself. Serialises as the JSON array of
/// [`ReportFinding`]s.
///
/// Once the job is done it hands the report its v1 snapshot ([`ReportFindings::keep_originals`]):
/// each finding's original row is then fetched as the findings are walked, one row at a time.
#[derive(Clone)]
pub struct ReportFindings(FindingsSource);

#[derive(Clone)]
enum FindingsSource {
    Plan(thywill_detect::Findings, Option<Snapshot>),
    Listed(Vec<ReportFinding>),
}

/// The v1 snapshot the plan was made from, shared by the report's clones. Locked for one row's
/// fetch at a time, so two walks of the findings (a comparison, two reports) never wait on each
/// other for longer than that.
#[derive(Clone)]
struct Snapshot(Arc<Mutex<thywill_v1::V1Database>>);

impl thywill_detect::RowSource for Snapshot {
    fn row_json(
        &self,
        table: &str,
        rowid: i64,
    ) -> Result<Option<serde_json::Value>, thywill_v1::V1Error> {
        // A panic elsewhere while holding the lock leaves the connection as it was: read on.
        let db = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        db.row_json(table, rowid)
    }
}

impl ReportFindings {
    /// Number of findings.
    pub fn len(&self) -> usize {
        match &self.0 {
            FindingsSource::Plan(f, _) => f.len(),
            FindingsSource::Listed(l) => l.len(),
        }
    }

    /// True when there is no finding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Walks the findings in order (sorted by table, rowid and rule); an error means the plan's
    /// temporary file could not be read back.
    pub fn iter(
        &self,
    ) -> Box<dyn Iterator<Item = Result<ReportFinding, thywill_detect::DetectError>> + '_> {
        match &self.0 {
            FindingsSource::Plan(f, None) => Box::new(f.iter().map(|f| f.map(ReportFinding::from))),
            FindingsSource::Plan(f, Some(snapshot)) => {
                let mut originals = thywill_detect::OriginalRows::new(snapshot);
                Box::new(f.iter().map(move |f| {
                    let f = f?;
                    let original = originals.of(&f)?.clone();
                    Ok(ReportFinding::new(f, Some(original)))
                }))
            }
            FindingsSource::Listed(l) => Box::new(l.iter().cloned().map(Ok)),
        }
    }

    /// Keeps `db`, the snapshot the plan's findings were made from, so each finding walked
    /// carries its original row ([`ReportFinding::original`]). A no-op for a listed report.
    pub fn keep_originals(&mut self, db: thywill_v1::V1Database) {
        if let FindingsSource::Plan(_, snapshot) = &mut self.0 {
            *snapshot = Some(Snapshot(Arc::new(Mutex::new(db))));
        }
    }
}

impl From<thywill_detect::Findings> for ReportFindings {
    fn from(f: thywill_detect::Findings) -> Self {
        ReportFindings(FindingsSource::Plan(f, None))
    }
}

impl From<Vec<ReportFinding>> for ReportFindings {
    fn from(l: Vec<ReportFinding>) -> Self {
        ReportFindings(FindingsSource::Listed(l))
    }
}

impl std::fmt::Debug for ReportFindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportFindings")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ReportFindings {
    /// Equal when both walks give the same findings (an unreadable finding is never equal).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| matches!((a, b), (Ok(a), Ok(b)) if a == b))
    }
}

impl Serialize for ReportFindings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for f in self.iter() {
            seq.serialize_element(&f.map_err(S::Error::custom)?)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ReportFindings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<ReportFinding>::deserialize(deserializer).map(ReportFindings::from)
    }
}

/// Archive counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ArchiveCounts {
    /// v1 files copied into the v2 tree.
    pub v1_files_copied: u64,
    /// v2 files created.
    pub created: u64,
    /// v2 files rewritten with new content.
    pub updated: u64,
    /// Files already identical.
    pub unchanged: u64,
    /// sha256 of `MANIFEST.sha256`.
    pub manifest_sha256: String,
}

/// The feasibility verdict.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Feasibility {
    /// True when the migration can run unattended.
    pub feasible: bool,
    /// What an operator should look at first.
    pub notes: Vec<String>,
}

impl Report {
    /// Writes the JSON report into `out`, streamed: the findings are read from the plan's store
    /// one by one, so L's 41 MB report never sits in memory. The binaries write it through
    /// `thywill_ops::fsutil::write_atomic_with`, so a report under its name is always whole.
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut out = out;
        serde_json::to_writer_pretty(&mut out, self).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    }

    /// The same content for people: a summary table per table, findings grouped by rule, timings.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# {} report\n", self.tool);
        let _ = writeln!(
            md,
            "- outcome: **{}**{}",
            self.outcome,
            if self.ok { "" } else { " (NOT OK)" }
        );
        let _ = writeln!(
            md,
            "- source: `{}` ({}), sha256 `{}`",
            self.source.path, self.source.generation, self.source.sha256
        );
        if let Some(t) = &self.target {
            let _ = writeln!(md, "- target: {} `{}`", t.backend, t.url);
        }
        let _ = writeln!(md, "- v1 clock: {}", self.source.clock.describe());
        if let Some(d) = &self.decisions {
            let _ = writeln!(
                md,
                "- decisions: `{}`, sha256 `{}`, {} entries applied",
                d.path, d.sha256, d.entries_applied
            );
        }
        let _ = writeln!(
            md,
            "- policy: {}{}",
            self.policy,
            if self.dry_run { ", dry run" } else { "" }
        );
        let _ = writeln!(
            md,
            "- started {} — finished {}",
            self.started_at, self.finished_at
        );
        if let Some(id) = &self.run_id {
            let _ = writeln!(md, "- run id: `{id}`");
        }
        let _ = writeln!(md, "\n## Every v1 row in exactly one place\n");
        let _ = writeln!(md, "| table | read | recovered | written | (repaired) | merged | deduplicated | quarantined | not carried | balances |");
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        );
        for (name, c) in &self.tables {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.read,
                c.recovered,
                c.written,
                c.repaired,
                c.merged,
                c.deduplicated,
                c.quarantined,
                c.not_carried,
                if c.balances() { "yes" } else { "**NO**" }
            );
        }
        if !self.source.not_carried_tables.is_empty() {
            let _ = writeln!(md, "\nTables v2 does not carry (kept in the v1 backup):\n");
            for (t, n) in &self.source.not_carried_tables {
                let _ = writeln!(md, "- `{t}`: {n} rows");
            }
        }
        if !self.source.not_carried_columns.is_empty() {
            let _ = writeln!(md, "\nColumns v2 does not carry (kept in the v1 backup):\n");
            for (c, n) in &self.source.not_carried_columns {
                let _ = writeln!(md, "- `{c}`: {n} values");
            }
        }
        let _ = writeln!(md, "\n## Findings by rule\n");
        if self.findings.is_empty() {
            let _ = writeln!(md, "None.");
        }
        // One walk of the findings: the first 20 of each rule.
        let mut shown: BTreeMap<String, Vec<ReportFinding>> = BTreeMap::new();
        for f in self.findings.iter() {
            match f {
                Ok(f) => {
                    let of_rule = shown.entry(f.rule.clone()).or_default();
                    if of_rule.len() < 20 {
                        of_rule.push(f);
                    }
                }
                Err(e) => {
                    let _ = writeln!(md, "(the findings could not be read back: {e})\n");
                    break;
                }
            }
        }
        for (rule, n) in &self.findings_by_rule {
            let _ = writeln!(md, "### {rule} ({n})\n");
            for f in shown.get(rule).into_iter().flatten() {
                let _ = writeln!(
                    md,
                    "- `{}` `{}` — {}: {}",
                    f.v1_table,
                    f.v1_key,
                    f.decision,
                    f.reason.replace('\n', " ")
                );
            }
            if *n > 20 {
                let _ = writeln!(md, "- … and {} more (see the JSON report)", n - 20);
            }
            let _ = writeln!(md);
        }
        if let Some(r) = &self.archives_recoverable {
            let _ = writeln!(md, "\n{}\n", r.describe(&self.policy));
        }
        if !self.archive_findings.is_empty() {
            let _ = writeln!(
                md,
                "## v1 database vs v1 archives ({})\n",
                self.archive_findings.len()
            );
            for f in self.archive_findings.iter().take(50) {
                let _ = writeln!(
                    md,
                    "- {} `{}` `{}` — {}: {}",
                    f.rule,
                    f.v1_table,
                    f.v1_key,
                    f.decision,
                    f.reason.replace('\n', " ")
                );
            }
            let _ = writeln!(md);
        }
        if let Some(a) = &self.archives {
            let _ = writeln!(md, "## Archives\n");
            let _ = writeln!(
                md,
                "v1 files copied {}, created {}, updated {}, unchanged {}; manifest sha256 `{}`\n",
                a.v1_files_copied, a.created, a.updated, a.unchanged, a.manifest_sha256
            );
        }
        let _ = writeln!(
            md,
            "## Feasibility\n\n{}\n",
            if self.feasibility.feasible {
                "Feasible."
            } else {
                "**Not feasible as is.**"
            }
        );
        for n in &self.feasibility.notes {
            let _ = writeln!(md, "- {n}");
        }
        let _ = writeln!(
            md,
            "\n## Stages\n\n| stage | seconds | rows | rows/s |\n| --- | ---: | ---: | ---: |"
        );
        for s in &self.stages {
            let _ = writeln!(
                md,
                "| {} | {:.3} | {} | {:.0} |",
                s.name,
                s.seconds,
                s.rows,
                s.rows as f64 / s.seconds.max(1e-9)
            );
        }
        md
    }

    /// A few lines for stdout: the outcome, the target (password redacted) and the run id with
    /// the command that undoes it, the law per table, findings by rule, archives, the verdict.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {}: {} ({} {}, policy {}{})",
            self.tool,
            self.tool_version,
            self.outcome,
            self.source.path,
            self.source.generation,
            self.policy,
            if self.dry_run { ", dry run" } else { "" }
        );
        if let Some(t) = &self.target {
            let _ = writeln!(s, "  target: {} ({})", t.url, t.backend);
        }
        if let Some(id) = &self.run_id {
            let _ = match self.outcome.as_str() {
                "migrated" | "already_migrated" => writeln!(
                    s,
                    "  run_id: {id} (undo with: thywill-rollback --run-id {id})"
                ),
                "dry_run" => writeln!(s, "  run_id: {id} (dry run: nothing kept, nothing to undo)"),
                _ => writeln!(s, "  run_id: {id}"),
            };
        }
        for (name, c) in &self.tables {
            let recovered = match c.recovered {
                0 => String::new(),
                n => format!(" + recovered {n}"),
            };
            let _ = writeln!(
                s,
                "  {name:<18} read {:>7}{recovered}  written {:>7} (repaired {})  merged {}  dedup {}  quarantined {}  not carried {}{}",
                c.read, c.written, c.repaired, c.merged, c.deduplicated, c.quarantined, c.not_carried,
                if c.balances() { "" } else { "  LAW BROKEN" }
            );
        }
        if let Some(r) = &self.archives_recoverable {
            let _ = writeln!(s, "  {}", r.describe(&self.policy));
        }
        let rules: Vec<String> = self
            .findings_by_rule
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        if !rules.is_empty() {
            let _ = writeln!(s, "  findings: {}", rules.join(", "));
        }
        if let Some(d) = &self.decisions {
            let _ = writeln!(
                s,
                "  decisions: {} (sha256 {}), {} entries applied",
                d.path, d.sha256, d.entries_applied
            );
        }
        if let Some(a) = &self.archives {
            let _ = writeln!(
                s,
                "  archives: {} v1 files carried, {} created, {} updated, {} unchanged",
                a.v1_files_copied, a.created, a.updated, a.unchanged
            );
        }
        let total: f64 = self.stages.iter().map(|x| x.seconds).sum();
        let _ = writeln!(
            s,
            "  {} in {:.2}s — {}",
            if self.ok { "OK" } else { "NOT OK" },
            total,
            if self.feasibility.feasible {
                "feasible"
            } else {
                "see feasibility notes"
            }
        );
        s
    }
}
