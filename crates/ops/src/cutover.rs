//! Migration day as one command: backup → maintenance on → v1 validation → migrate → validate →
//! switch → verify → maintenance off, each step timed, the status page rewritten at every step,
//! and on any failure the automatic rollback, maintenance off, and the failed step named.
//!
//! The migrate and validate steps run the sibling binaries `thywill-migrate` and
//! `thywill-validate` as child processes, so a crash in a step cannot take the orchestrator down:
//! the rollback always runs.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use crate::backup::{backup, snapshot_copy, BackupOptions, BackupSet};
use crate::command::Child;
use crate::error::{OpsError, Result};
use crate::fsutil::{copy_tree_with, db_fingerprint, write_atomic, Links};
use crate::rollback::{rollback, RestorePolicy, RollbackOptions};
use crate::status::{
    render_page, render_timeline, timeline_line, write_page, Phase, StatusPage, StepRecord,
    StepState,
};
use crate::v2runs::{run_ids, RunSelection};

/// The operator's environment-specific commands, each run with `sh -c`.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// `--maintenance-on`: put v1 behind the maintenance page.
    pub maintenance_on: Option<String>,
    /// `--maintenance-off`: take the maintenance page away.
    pub maintenance_off: Option<String>,
    /// `--switch-cmd`: send traffic to v2.
    pub switch: Option<String>,
    /// `--switch-back-cmd`: send traffic back to v1.
    pub switch_back: Option<String>,
    /// `--verify-cmd`: check v2 works (log in, pray, admin) once traffic reaches it.
    pub verify: Option<String>,
    /// `--restart-v1-cmd`: restart the v1 services after a rollback.
    pub restart_v1: Option<String>,
}

/// Everything the cut-over needs.
#[derive(Debug, Clone)]
pub struct CutoverOptions {
    /// The v1 database.
    pub v1_db: PathBuf,
    /// The v2 target URL.
    pub v2_db: String,
    /// The v1 archive tree.
    pub archives_v1: Option<PathBuf>,
    /// The v2 archive tree to write.
    pub archives_v2: Option<PathBuf>,
    /// `repair` or `strict`.
    pub policy: String,
    /// Flags describing the v1 side (`--v1-timezone`, `--v1-local-since`) for the migrate and
    /// validate steps alike.
    pub v1_args: Vec<String>,
    /// v1's separate e-mail database: in the backup set, and given to the migrate and validate
    /// steps (`--v1-email-db`).
    pub email_db: Option<PathBuf>,
    /// The file holding its key (`--v1-email-key-file`), for those steps; without it they read
    /// `EMAIL_ENCRYPTION_KEY`, which they inherit.
    pub email_key_file: Option<PathBuf>,
    /// `--max-quarantined` for the migrate child: it stops before writing anything when a table
    /// quarantines more rows than this.
    pub max_quarantined: Option<u64>,
    /// `--max-quarantined-percent` for the migrate child: the same as a percentage (0 to 100)
    /// of each table's rows read.
    pub max_quarantined_percent: Option<f64>,
    /// The backup folder.
    pub backup_dir: PathBuf,
    /// Where reports, the timeline and (for a rehearsal) the copies go.
    pub work_dir: PathBuf,
    /// The hook commands.
    pub hooks: Hooks,
    /// The built-in maintenance switch: a flag file the web server checks.
    pub maintenance_flag: Option<PathBuf>,
    /// The status page to keep current.
    pub status_page: Option<PathBuf>,
    /// Run against copies (staging rehearsal).
    pub rehearsal: bool,
    /// The scratch v2 target of a rehearsal (`None`: a SQLite file in the work folder). A
    /// rehearsal never uses [`CutoverOptions::v2_db`].
    pub rehearsal_v2_db: Option<String>,
    /// The `thywill-migrate` binary.
    pub migrate_bin: PathBuf,
    /// The `thywill-validate` binary.
    pub validate_bin: PathBuf,
    /// The downtime budget (one hour).
    pub budget: Duration,
    /// Print the timeline on stdout as the day goes (the start, each step's line as it ends, the
    /// start of a rollback), each line flushed at once: the binary's operator watches it live.
    pub print_steps: bool,
}

/// The steps, in order: (name, words for the community).
pub const STEPS: [(&str, &str); 8] = [
    ("backup", "Safety backup of all data"),
    ("maintenance-on", "Maintenance mode on"),
    ("validate-v1", "Checking the current data"),
    ("migrate", "Moving the data to the new system"),
    ("validate", "Checking the moved data"),
    ("switch", "Switching to the new system"),
    ("verify", "Verifying the new system"),
    ("maintenance-off", "Maintenance mode off"),
];

/// What a cut-over did: the timeline and where its files are.
#[derive(Debug, Clone, Serialize)]
pub struct CutoverReport {
    /// Whether this was a rehearsal on copies.
    pub rehearsal: bool,
    /// Start (UTC).
    pub started_at: chrono::DateTime<Utc>,
    /// Every step.
    pub steps: Vec<StepRecord>,
    /// The rollback, when one ran: its summary or its problems.
    pub rollback: Option<String>,
    /// Total seconds, rollback included.
    pub total_seconds: f64,
    /// The budget in seconds.
    pub budget_seconds: f64,
    /// Seconds spent preparing the rehearsal copies (not part of the day's total).
    pub rehearsal_prepare_seconds: Option<f64>,
    /// The backup set taken.
    pub backup_set: Option<PathBuf>,
    /// The work folder (reports, timeline).
    pub work_dir: PathBuf,
}

impl CutoverReport {
    /// The first lines of the operator's output: `cut-over started …` (or `rehearsal started`)
    /// and, for a rehearsal, the time its copies took.
    pub fn heading(&self) -> String {
        let mut out = format!(
            "{} started {} UTC\n",
            if self.rehearsal {
                "rehearsal"
            } else {
                "cut-over"
            },
            self.started_at.format("%Y-%m-%d %H:%M:%S")
        );
        if let Some(p) = self.rehearsal_prepare_seconds {
            out.push_str(&format!(
                "(rehearsal copies prepared in {p:.2} s, not counted)\n"
            ));
        }
        out
    }

    /// The operator's text timeline.
    pub fn timeline(&self) -> String {
        render_timeline(&self.steps, self.total_seconds, self.budget_seconds)
    }
}

/// The outcome: the report in every case, and the error of a failed cut-over.
#[derive(Debug)]
pub struct CutoverRun {
    /// The timeline.
    pub report: CutoverReport,
    /// `Err` when a step failed (the rollback has run; its outcome is in the message).
    pub result: Result<()>,
}

/// What the steps learn as they go, which the rollback needs.
#[derive(Default)]
struct DayState {
    backup: Option<BackupSet>,
    /// v1's fingerprint once maintenance froze it.
    frozen_v1: Option<String>,
    /// Runs recorded in v2 before the migrate step.
    runs_before: Option<BTreeSet<String>>,
    maintenance_touched: bool,
    switch_touched: bool,
}

/// The one step runner: times every step, logs it, keeps the status page current.
struct Runner<'a> {
    opts: &'a CutoverOptions,
    start: Instant,
    report: CutoverReport,
}

impl Runner<'_> {
    /// Prints `line` on stdout and flushes it, when the options ask for the live timeline.
    fn say(&self, line: &str) {
        if self.opts.print_steps {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }

    /// Rewrites the community status page (when there is one) for `phase` and the steps as
    /// they stand.
    fn publish(&self, phase: Phase) {
        if let Some(page) = &self.opts.status_page {
            let html = render_page(&StatusPage {
                phase,
                steps: &self.report.steps,
                started_at: self.report.started_at,
                budget_seconds: self.report.budget_seconds,
                now: Utc::now(),
            });
            if let Err(e) = write_page(page, &html) {
                tracing::warn!("status page not updated: {e}");
            }
        }
    }

    fn run(
        &mut self,
        i: usize,
        state: &mut DayState,
        f: impl FnOnce(&CutoverOptions, &mut DayState) -> Result<()>,
    ) -> Result<()> {
        let offset = self.start.elapsed().as_secs_f64();
        let step = &mut self.report.steps[i];
        step.state = StepState::Running;
        step.started_at = Some(Utc::now());
        step.offset_seconds = Some(offset);
        let name = step.name;
        tracing::info!(
            "step {}/{} {name}: started at T+{}",
            i + 1,
            STEPS.len(),
            crate::status::hms(offset)
        );
        self.publish(Phase::Moving);
        let began = Instant::now();
        let result = f(self.opts, state);
        let step = &mut self.report.steps[i];
        step.seconds = Some(began.elapsed().as_secs_f64());
        match &result {
            Ok(()) => {
                step.state = StepState::Done;
                tracing::info!(
                    "step {}/{} {name}: done in {:.2} s",
                    i + 1,
                    STEPS.len(),
                    began.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                step.state = StepState::Failed;
                step.error = Some(e.to_string());
                tracing::error!(
                    "step {}/{} {name}: FAILED after {:.2} s: {e}",
                    i + 1,
                    STEPS.len(),
                    began.elapsed().as_secs_f64()
                );
            }
        }
        self.say(&timeline_line(&self.report.steps[i]));
        result
    }
}

/// Runs the day. Never panics on a failing step: the report is returned in every case.
pub fn cutover(opts: &CutoverOptions) -> CutoverRun {
    let start = Instant::now();
    let started_at = Utc::now();
    let mut report = CutoverReport {
        rehearsal: opts.rehearsal,
        started_at,
        steps: STEPS
            .iter()
            .map(|&(name, label)| StepRecord {
                name,
                label,
                state: StepState::Pending,
                started_at: None,
                offset_seconds: None,
                seconds: None,
                error: None,
            })
            .collect(),
        rollback: None,
        total_seconds: 0.0,
        budget_seconds: opts.budget.as_secs_f64(),
        rehearsal_prepare_seconds: None,
        backup_set: None,
        work_dir: opts.work_dir.clone(),
    };
    // Reports and the timeline name members and the run: the operator's alone (0700).
    if let Err(e) = crate::fsutil::create_private_dir_all(&opts.work_dir) {
        let result = Err(OpsError::io("creating the work folder", &opts.work_dir)(e));
        return CutoverRun { report, result };
    }
    // A rehearsal works on copies made before the clock starts.
    let mut effective = opts.clone();
    if opts.rehearsal {
        let prep = Instant::now();
        match prepare_rehearsal(opts) {
            Ok(copy) => effective = copy,
            Err(e) => {
                return CutoverRun {
                    report,
                    result: Err(e),
                }
            }
        }
        report.rehearsal_prepare_seconds = Some(prep.elapsed().as_secs_f64());
    }
    let opts = &effective;
    let mut runner = Runner {
        opts,
        start: Instant::now(),
        report,
    };
    runner.report.started_at = Utc::now();
    runner.say(&runner.report.heading());
    let day_start = runner.report.started_at.naive_utc();
    let mut state = DayState::default();
    let mut failure: Option<(usize, OpsError)> = None;
    for i in 0..STEPS.len() {
        // SIGINT/SIGTERM: the day stops at the next step (a running step's child gets the
        // signal and ends), then rolls back as for a failed step.
        let outcome = runner.run(i, &mut state, |o, s| {
            OpsError::check_interrupt()?;
            run_step(i, o, s)
        });
        if let Err(e) = outcome {
            failure = Some((i, e));
            break;
        }
    }
    let result = match failure {
        None => {
            runner.publish(Phase::Done);
            Ok(())
        }
        Some((i, e)) => {
            for s in runner
                .report
                .steps
                .iter_mut()
                .filter(|s| s.state == StepState::Pending)
            {
                s.state = StepState::Skipped;
            }
            runner.publish(Phase::RollingBack);
            runner.say(&format!(
                "rolling back after the failed step '{}'\n",
                STEPS[i].0
            ));
            let rb = roll_back(opts, &state, day_start);
            let rollback_text = match &rb {
                Ok(summary) => format!("rolled back: {summary}"),
                Err(e) => format!("ROLLBACK INCOMPLETE: {e}"),
            };
            // A way back that could not finish is 5, like thywill-rollback's; a day stopped by
            // SIGINT/SIGTERM is 130/143 once rolled back; a refusal (4) stays a refusal; any
            // other failure, rolled back, is 1.
            let signal = thywill_pipeline::interrupt::received();
            let exit = match (&rb, signal, e.exit_code()) {
                (Err(_), _, _) => 5,
                (Ok(_), Some(s), _) => crate::error::interrupted_exit(s),
                (Ok(_), None, 4) => 4,
                _ => 1,
            };
            let cause = match (signal, &e) {
                (Some(_), OpsError::Interrupted { .. }) | (None, _) => e.to_string(),
                (Some(s), _) => format!(
                    "interrupted by {}: {e}",
                    thywill_pipeline::interrupt::signal_name(s)
                ),
            };
            runner.report.rollback = Some(rollback_text.clone());
            runner.publish(match rb {
                Ok(_) => Phase::RolledBack,
                Err(_) => Phase::StillInMaintenance,
            });
            Err(OpsError::CutoverFailed {
                step: STEPS[i].0,
                cause,
                rollback: rollback_text,
                exit,
            })
        }
    };
    let mut report = runner.report;
    report.total_seconds =
        start.elapsed().as_secs_f64() - report.rehearsal_prepare_seconds.unwrap_or(0.0);
    report.backup_set = state.backup.as_ref().map(|b| b.dir.clone());
    if report.total_seconds > report.budget_seconds {
        tracing::warn!(
            "the cut-over took {} — over the {} budget",
            crate::status::hms(report.total_seconds),
            crate::status::hms(report.budget_seconds)
        );
    }
    if let Ok(json) = serde_json::to_vec_pretty(&report) {
        if let Err(e) = write_atomic(&opts.work_dir.join("cutover_timeline.json"), &json) {
            tracing::warn!("timeline not written: {e}");
        }
    }
    CutoverRun { report, result }
}

/// A sibling binary's command line. `v1_only`: `thywill-validate --v1-only --v1-db FILE`;
/// otherwise the full set of `spec/interfaces.md` flags, then `extra` (the flags of that binary
/// alone), with the report written to the work folder.
fn child_bin(
    what: &str,
    bin: &Path,
    opts: &CutoverOptions,
    v1_only: bool,
    report: &str,
    extra: Vec<String>,
) -> Child {
    let mut args: Vec<String> = vec!["--v1-db".into(), opts.v1_db.display().to_string()];
    if v1_only {
        args.push("--v1-only".into());
        let shown = format!("{} {}", bin.display(), args.join(" "));
        return Child::program(what, bin.to_path_buf(), args, shown).relaying_signals();
    }
    args.extend(["--policy".into(), opts.policy.clone()]);
    args.extend(opts.v1_args.iter().cloned());
    args.extend(extra);
    for (flag, dir) in [
        ("--archives-v1", &opts.archives_v1),
        ("--archives-v2", &opts.archives_v2),
        ("--v1-email-db", &opts.email_db),
        ("--v1-email-key-file", &opts.email_key_file),
    ] {
        if let Some(d) = dir {
            args.extend([flag.to_string(), d.display().to_string()]);
        }
    }
    // The JSON for machines and its HTML page for the people deciding go or no-go.
    let report = opts.work_dir.join(report);
    args.extend([
        "--report-json".into(),
        report.display().to_string(),
        "--report-html".into(),
        report.with_extension("html").display().to_string(),
    ]);
    let shown = format!(
        "{} {} (V2_DB_URL={})",
        bin.display(),
        args.join(" "),
        thywill_v2::redact_url(&opts.v2_db)
    );
    // The v2 URL travels in the environment, not on the command line (it may hold a password).
    Child::program(what, bin.to_path_buf(), args, shown)
        .with_env("V2_DB_URL", opts.v2_db.clone())
        .relaying_signals()
}

/// The migrate child's quarantine limits, `--max-quarantined N` and
/// `--max-quarantined-percent P`, for those given to the cut-over.
fn quarantine_limit_args(max_rows: Option<u64>, max_percent: Option<f64>) -> Vec<String> {
    [
        ("--max-quarantined", max_rows.map(|n| n.to_string())),
        (
            "--max-quarantined-percent",
            max_percent.map(|p| p.to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(flag, value)| Some([flag.to_string(), value?]))
    .flatten()
    .collect()
}

/// Runs the hook `cmd` (if given) of `step`, with the day's v2 URL as `V2_DB_URL` (redacted
/// unless the operator opts in; its password scrubbed from the relayed output either way); a
/// step's hook gets the cut-over's SIGINT/SIGTERM, the rollback's (`step` "rollback") never does:
/// the way back is not cut short.
fn hook(opts: &CutoverOptions, flag: &str, cmd: &Option<String>, step: &str) -> Result<()> {
    let Some(c) = cmd else { return Ok(()) };
    let child = Child::hook(flag, c)
        .with_env("THYWILL_STEP", step)
        .with_env("V2_DB_URL", opts.v2_db.clone());
    if step == ROLLBACK_STEP {
        child.run()
    } else {
        child.relaying_signals().run()
    }
}

/// The `THYWILL_STEP` of the rollback's hooks.
const ROLLBACK_STEP: &str = "rollback";

fn set_flag(flag: &Option<PathBuf>, on: bool) -> Result<()> {
    let Some(path) = flag else { return Ok(()) };
    if on {
        write_atomic(
            path,
            format!("ThyWill maintenance since {}\n", Utc::now().to_rfc3339()).as_bytes(),
        )
    } else {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OpsError::io("removing the maintenance flag", path)(e)),
        }
    }
}

fn run_step(i: usize, opts: &CutoverOptions, st: &mut DayState) -> Result<()> {
    let name = STEPS[i].0;
    match name {
        "backup" => {
            let mut b = BackupOptions::new(&opts.v1_db, &opts.backup_dir);
            b.archives_v1 = opts.archives_v1.clone();
            b.email_db = opts.email_db.clone();
            st.backup = Some(backup(&b)?);
            Ok(())
        }
        "maintenance-on" => {
            st.maintenance_touched = true;
            set_flag(&opts.maintenance_flag, true)?;
            hook(opts, "--maintenance-on", &opts.hooks.maintenance_on, name)
        }
        "validate-v1" => {
            // v1 is frozen from here on: its fingerprint decides whether a rollback must restore.
            st.frozen_v1 = Some(db_fingerprint(&opts.v1_db)?);
            child_bin(
                "thywill-validate --v1-only",
                &opts.validate_bin,
                opts,
                true,
                "",
                Vec::new(),
            )
            .run()
        }
        "migrate" => {
            st.runs_before = Some(run_ids(&opts.v2_db)?);
            child_bin(
                "thywill-migrate",
                &opts.migrate_bin,
                opts,
                false,
                "migration_report.json",
                quarantine_limit_args(opts.max_quarantined, opts.max_quarantined_percent),
            )
            .run()
        }
        "validate" => child_bin(
            "thywill-validate",
            &opts.validate_bin,
            opts,
            false,
            "validation_report.json",
            Vec::new(),
        )
        .run(),
        "switch" => {
            st.switch_touched = true;
            hook(opts, "--switch-cmd", &opts.hooks.switch, name)
        }
        "verify" => hook(opts, "--verify-cmd", &opts.hooks.verify, name),
        _ => {
            set_flag(&opts.maintenance_flag, false)?;
            hook(opts, "--maintenance-off", &opts.hooks.maintenance_off, name)
        }
    }
}

/// The automatic rollback, then maintenance off whatever happened.
fn roll_back(
    opts: &CutoverOptions,
    st: &DayState,
    day_start: chrono::NaiveDateTime,
) -> std::result::Result<String, String> {
    let mut problems = Vec::new();
    let touched_v1 = st.maintenance_touched || st.switch_touched;
    let rb = RollbackOptions {
        v1_db: opts.v1_db.clone(),
        backup: st.backup.as_ref().map(|b| b.dir.clone()),
        email_db: opts.email_db.clone(),
        archives_v1: None,
        v2_db: st.runs_before.as_ref().map(|_| opts.v2_db.clone()),
        runs: RunSelection::NewSince {
            since: day_start,
            known: st.runs_before.clone().unwrap_or_default(),
        },
        restore: match &st.frozen_v1 {
            Some(fp) => RestorePolicy::UnlessUnchanged(fp.clone()),
            None => RestorePolicy::Never,
        },
        switch_back_cmd: if st.switch_touched {
            opts.hooks.switch_back.clone()
        } else {
            None
        },
        restart_v1_cmd: if touched_v1 {
            opts.hooks.restart_v1.clone()
        } else {
            None
        },
        best_effort: true,
    };
    let summary = match rollback(&rb) {
        Ok(r) => r.summary(),
        Err(e) => {
            problems.push(e.to_string());
            String::new()
        }
    };
    // Maintenance ends off in every case: the flag first (it cannot fail for a missing file), then
    // the hook if maintenance was ever asked for.
    if let Err(e) = set_flag(&opts.maintenance_flag, false) {
        problems.push(e.to_string());
    }
    if st.maintenance_touched {
        if let Err(e) = hook(
            opts,
            "--maintenance-off",
            &opts.hooks.maintenance_off,
            ROLLBACK_STEP,
        ) {
            problems.push(format!("maintenance off: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(problems.join("; "))
    }
}

/// Makes the rehearsal's copies in the work folder: v1 through the backup API, the archive tree,
/// a scratch v2 (SQLite in the work folder unless a scratch URL was given), and points the
/// options at them. The live files are only read.
fn prepare_rehearsal(opts: &CutoverOptions) -> Result<CutoverOptions> {
    let dir = opts.work_dir.join("rehearsal");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(OpsError::io("clearing", &dir))?;
    }
    crate::fsutil::create_private_dir_all(&dir).map_err(OpsError::io("creating", &dir))?;
    let mut o = opts.clone();
    o.v1_db = dir.join("v1.db");
    snapshot_copy(&opts.v1_db, &o.v1_db, Duration::from_secs(10))?;
    if let Some(src) = &opts.email_db {
        let copy = dir.join("email.db");
        snapshot_copy(src, &copy, Duration::from_secs(10))?;
        o.email_db = Some(copy);
    }
    if let Some(src) = &opts.archives_v1 {
        let copy = dir.join("archives_v1");
        // As it is, links included (never followed): a tree that fails the real day fails here.
        copy_tree_with(src, &copy, Links::Recreate)?;
        o.archives_v1 = Some(copy);
    }
    if opts.archives_v2.is_some() || opts.archives_v1.is_some() {
        o.archives_v2 = Some(dir.join("archives_v2"));
    }
    o.v2_db = match &opts.rehearsal_v2_db {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.join("v2.db").display()),
    };
    o.backup_dir = dir.join("backups");
    o.maintenance_flag = opts
        .maintenance_flag
        .clone()
        .or_else(|| Some(dir.join("maintenance.flag")));
    o.status_page = opts
        .status_page
        .clone()
        .or_else(|| Some(dir.join("status.html")));
    tracing::info!(v1 = %o.v1_db.display(), v2 = %thywill_v2::redact_url(&o.v2_db), "rehearsal copies ready");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quarantine_limits_given_reach_the_migrate_child() {
        assert!(quarantine_limit_args(None, None).is_empty());
        assert_eq!(
            quarantine_limit_args(Some(0), Some(1.5)),
            ["--max-quarantined", "0", "--max-quarantined-percent", "1.5"]
        );
        assert_eq!(
            quarantine_limit_args(None, Some(100.0)),
            ["--max-quarantined-percent", "100"]
        );
    }
}
