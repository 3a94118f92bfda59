//! # thywill-validator: independent validation of a finished migration
//!
//! Recomputes from the sources and reads v2 back, sharing with the migration only the v1 reader
//! (`thywill-v1`), the v2 schema definitions (`thywill-v2`) and the documented rules. It never
//! calls the detector or the pipeline: a bug there shows up here as a failed check.
//!
//! Checks (one [`CheckResult`] each): `v1-soundness`, `law`, `fidelity`, `constraints`, `smoke`,
//! `archives`.
//!
//! ```no_run
//! use thywill_validator::{validate, Options};
//! let report = validate(&Options::new("thywill.db", "sqlite://thywill_v2.db"))?;
//! for c in &report.checks {
//!     println!("{} {}: {}", if c.passed { "PASS" } else { "FAIL" }, c.name, c.summary);
//! }
//! # Ok::<(), thywill_validator::ValidateError>(())
//! ```

pub mod canon;
pub mod checks;
pub mod clock;
pub mod decisions;
pub mod email;
pub mod error;
pub mod expected;
pub mod marks;
mod recovered;
mod restored;
pub mod rules;
pub mod v2db;

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDateTime;
use serde::Serialize;
use thywill_v1::V1Database;
use thywill_v2::Target;

pub use error::ValidateError;

/// The migration policy the run used (`--policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Fix what a documented rule can fix, quarantine the rest.
    #[default]
    Repair,
    /// Skip every corrupted record, repair nothing that changes identity.
    Strict,
}

/// What to validate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The v1 database the migration read.
    pub v1_db: PathBuf,
    /// The v2 database URL (`postgresql://…`, `sqlite://PATH`).
    pub v2_db: String,
    /// The v1 archive tree, to check it was carried completely.
    pub archives_v1: Option<PathBuf>,
    /// The v2 archive tree.
    pub archives_v2: Option<PathBuf>,
    /// The policy the migration ran with.
    pub policy: Policy,
    /// Only check that the v1 file is sound.
    pub v1_only: bool,
    /// The clock sessions must outlive (default: now, UTC).
    pub now: Option<NaiveDateTime>,
    /// The exact test-account names the migration was given (`--test-account-name`); empty:
    /// the defaults, `Test User` and `Prayer Test User`.
    pub test_account_names: Vec<String>,
    /// The v1 server's clock the migration was given (`--v1-timezone`, `--v1-local-since`).
    pub clock: clock::V1Clock,
    /// v1's `INVITE_TOKEN_EXPIRATION_HOURS` the migration was given (`--v1-invite-hours`, 12).
    pub invite_hours: u32,
    /// v1's e-mail database and its key, when the migration carried addresses
    /// (`--v1-email-db`): decrypted and decided again here.
    pub email: Option<email::EmailSource>,
    /// The operator's decisions file the migration applied (`--decisions`), read again here.
    pub decisions: Option<decisions::OperatorDecisions>,
}

impl Options {
    /// Options for a database pair with defaults for the rest.
    pub fn new(v1_db: impl Into<PathBuf>, v2_db: impl Into<String>) -> Self {
        Options {
            v1_db: v1_db.into(),
            v2_db: v2_db.into(),
            archives_v1: None,
            archives_v2: None,
            policy: Policy::Repair,
            v1_only: false,
            now: None,
            test_account_names: Vec::new(),
            clock: clock::V1Clock::default(),
            invite_hours: expected::DEFAULT_INVITE_HOURS,
            email: None,
            decisions: None,
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The check's name (`law`, `fidelity`, …).
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// One line for the PASS/FAIL output.
    pub summary: String,
    /// Every problem found (the first ones, when there are many) and facts worth reporting.
    pub details: Vec<String>,
    /// Structured data (law tallies, table diffs).
    pub data: serde_json::Value,
    /// Wall time of the check.
    pub seconds: f64,
}

/// The whole validation (`--report-json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `thywill-validate`.
    pub tool: String,
    /// The crate version.
    pub tool_version: String,
    /// The v1 file.
    pub v1_db: String,
    /// The v2 URL, password redacted.
    pub v2_db: Option<String>,
    /// The policy validated against.
    pub policy: Policy,
    /// The run whose bookkeeping was used.
    pub run_id: Option<String>,
    /// Every check, in order.
    pub checks: Vec<CheckResult>,
    /// Checks passed.
    pub passed: usize,
    /// Checks failed.
    pub failed: usize,
    /// True when every check passed.
    pub ok: bool,
    /// Total wall time.
    pub seconds: f64,
}

impl Report {
    /// Writes the report as pretty JSON into `w` (the binary writes it atomically, through
    /// `thywill_ops::fsutil::write_atomic_with`, so a half-written report never stands).
    pub fn write_json(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// What a check body returns: facts and problems (none = pass) and structured data.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    summary: String,
    facts: Vec<String>,
    problems: Vec<String>,
    data: serde_json::Value,
}

const MAX_DETAILS: usize = 20;

/// The one check runner: times the body, turns its outcome into a [`CheckResult`] and logs it.
/// An error of the body is unusable input and stops the validation.
pub(crate) fn run_check(
    name: &str,
    body: impl FnOnce() -> Result<Outcome, ValidateError>,
) -> Result<CheckResult, ValidateError> {
    let t = Instant::now();
    let o = body()?;
    let passed = o.problems.is_empty();
    let summary = if passed {
        o.summary
    } else {
        format!("{} problem(s); first: {}", o.problems.len(), o.problems[0])
    };
    let mut details: Vec<String> = o.problems.into_iter().take(MAX_DETAILS).collect();
    details.extend(o.facts);
    let r = CheckResult {
        name: name.into(),
        passed,
        summary,
        details,
        data: o.data,
        seconds: t.elapsed().as_secs_f64(),
    };
    tracing::debug!(check = name, passed, seconds = r.seconds, "check done");
    Ok(r)
}

/// Runs the validation. An `Err` is unusable input (exit 3, or 2 for a malformed URL); failed
/// checks are in the report (`ok == false`, exit 1).
pub fn validate(opts: &Options) -> Result<Report, ValidateError> {
    let start = Instant::now();
    let v1 = V1Database::open(&opts.v1_db)?;
    let mut report = Report {
        tool: "thywill-validate".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        v1_db: opts.v1_db.display().to_string(),
        v2_db: None,
        policy: opts.policy,
        run_id: None,
        checks: Vec::new(),
        passed: 0,
        failed: 0,
        ok: false,
        seconds: 0.0,
    };
    let checks = if opts.v1_only {
        vec![run_check("v1-soundness", || checks::v1_soundness(&v1))?]
    } else {
        // The checks against v2 run on a thread of their own while `v1-soundness` runs here on
        // a second read-only handle; a failure of `v1-soundness` still comes first.
        let target = Target::parse(&opts.v2_db).map_err(ValidateError::V2Url);
        let now = opts.now.unwrap_or_else(|| chrono::Utc::now().naive_utc());
        let (soundness, more) = std::thread::scope(|s| {
            let job = s.spawn(move || {
                let target = target?;
                let mut run_id = None;
                let more = checks::against_v2(&v1, &target, opts, now, &mut run_id)?;
                Ok::<_, ValidateError>((target.redacted(), run_id, more))
            });
            let soundness = V1Database::open(&opts.v1_db)
                .map_err(ValidateError::from)
                .and_then(|v1| run_check("v1-soundness", || checks::v1_soundness(&v1)));
            (
                soundness,
                job.join().expect("the checks against v2 do not panic"),
            )
        });
        let soundness = soundness?;
        let (redacted, run_id, more) = more?;
        report.v2_db = Some(redacted);
        report.run_id = run_id;
        std::iter::once(soundness).chain(more).collect()
    };
    report.passed = checks.iter().filter(|c| c.passed).count();
    report.failed = checks.len() - report.passed;
    report.ok = report.failed == 0;
    report.checks = checks;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
