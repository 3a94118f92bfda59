//! Flags shared by `thywill-analyze` and `thywill-migrate`: the v1 side, the policy, the reports
//! ([`CommonArgs`]), and writing those reports once the job is done ([`emit`]).

use std::path::PathBuf;

use crate::{check_report_path, write_html_report, CliError, Exit, LogArgs};
use clap::{Args, ValueEnum};
use thywill_ops::fsutil::write_atomic_with;
use thywill_pipeline::{Clock, CommonOptions, Policy, Report};

/// The policy flag's values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PolicyArg {
    /// Fix what a documented rule can fix, quarantine the rest (default).
    Repair,
    /// The seed's literal behaviour: skip every corrupted record.
    Strict,
}

/// How the v1 server ran: its clock (rules.md "Clocks") and its invite lifetime. Shared by
/// analyze, migrate, validate and cutover, which passes them on to its migrate and validate
/// steps.
#[derive(Args, Debug, Clone, Default)]
pub struct V1ServerArgs {
    /// The IANA time zone the v1 server ran in (`America/Chicago`); from --v1-local-since on, v1
    /// wrote members' and prayers' creation times, online marks and answer dates in it.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub v1_timezone: String,
    /// When v1 started writing local times (`YYYY-MM-DD HH:MM:SS`, wall clock of the zone;
    /// default 2025-06-14 00:00:00, the release that switched them).
    #[arg(long, value_name = "TIME")]
    pub v1_local_since: Option<String>,
    /// v1's INVITE_TOKEN_EXPIRATION_HOURS, when the server ran with another than 12: an
    /// invitation's creation is its expiry less this.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=87_600))]
    pub v1_invite_hours: Option<u32>,
}

impl V1ServerArgs {
    /// The zone and the switch, checked (a bad value is a usage error naming the flag).
    pub fn to_clock(&self) -> Result<Clock, CliError> {
        let zone = Clock::parse_zone(&self.v1_timezone)
            .map_err(|e| CliError::new(Exit::Usage, format!("--v1-timezone: {e}")))?;
        let since = match &self.v1_local_since {
            None => thywill_pipeline::clock_default_local_since(),
            Some(s) => chrono_parse(s).ok_or_else(|| {
                CliError::new(
                    Exit::Usage,
                    format!("--v1-local-since {s:?}: expected YYYY-MM-DD HH:MM:SS"),
                )
            })?,
        };
        Ok(Clock::new(zone, since))
    }

    /// The same flags for a child process (the cut-over's migrate and validate steps).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--v1-timezone".to_string(), self.v1_timezone.clone()];
        if let Some(s) = &self.v1_local_since {
            args.extend(["--v1-local-since".to_string(), s.clone()]);
        }
        if let Some(h) = self.v1_invite_hours {
            args.extend(["--v1-invite-hours".to_string(), h.to_string()]);
        }
        args
    }
}

/// v1's separate e-mail database and its key (rules.md "E-mail addresses"): shared by analyze,
/// migrate, validate, backup and cutover. The key is never a command-line value: a file, or the
/// `EMAIL_ENCRYPTION_KEY` environment variable as v1 itself reads it.
#[derive(Args, Debug, Clone, Default)]
pub struct EmailArgs {
    /// v1's separate e-mail database (`email.db`, read-only): members' verified addresses become
    /// `users.email`. Without it no address is carried.
    #[arg(long, value_name = "FILE")]
    pub v1_email_db: Option<PathBuf>,
    /// The file holding v1's EMAIL_ENCRYPTION_KEY (the key text, trimmed); without it the
    /// EMAIL_ENCRYPTION_KEY environment variable.
    #[arg(long, value_name = "FILE", requires = "v1_email_db")]
    pub v1_email_key_file: Option<PathBuf>,
}

/// The environment variable v1 reads its e-mail key from.
pub const EMAIL_KEY_ENV: &str = "EMAIL_ENCRYPTION_KEY";

impl EmailArgs {
    /// The e-mail database and its key, checked before anything is read: no key, an unreadable
    /// key file or a key that is not a Fernet key is a usage error (exit 2) naming where it came
    /// from (never the key itself).
    pub fn resolve(&self) -> Result<Option<(PathBuf, thywill_pipeline::EmailKey)>, CliError> {
        let Some(db) = &self.v1_email_db else {
            return Ok(None);
        };
        let (key, from) = match &self.v1_email_key_file {
            Some(file) => (
                thywill_pipeline::EmailKey::from_file(file)
                    .map_err(|e| CliError::new(Exit::Usage, e))?,
                format!("--v1-email-key-file {}", file.display()),
            ),
            None => {
                let text = std::env::var(EMAIL_KEY_ENV).unwrap_or_default();
                let key = thywill_pipeline::EmailKey::new(&text).ok_or_else(|| {
                    CliError::new(
                        Exit::Usage,
                        format!("--v1-email-db needs v1's key: set {EMAIL_KEY_ENV} or give --v1-email-key-file FILE"),
                    )
                })?;
                (key, EMAIL_KEY_ENV.to_string())
            }
        };
        if !thywill_pipeline::email_key_is_usable(&key) {
            return Err(CliError::new(
                Exit::Usage,
                format!("{from}: not a Fernet key (32 bytes in url-safe base64, 44 characters)"),
            ));
        }
        Ok(Some((db.clone(), key)))
    }

    /// The same flags for a child process (the cut-over's steps; the environment variable is
    /// inherited).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(db) = &self.v1_email_db {
            args.extend(["--v1-email-db".to_string(), db.display().to_string()]);
        }
        if let Some(f) = &self.v1_email_key_file {
            args.extend(["--v1-email-key-file".to_string(), f.display().to_string()]);
        }
        args
    }
}

/// The operator's decisions on quarantined rows (`--decisions FILE`): analyze previews them,
/// migrate applies them, validate derives them again, cutover passes them on.
#[derive(Args, Debug, Clone, Default)]
pub struct DecisionsArg {
    /// The operator's decisions on quarantined rows (TOML; start from thywill-analyze
    /// --decisions-template). An entry that names no quarantined row, or a value v2 would
    /// refuse, stops the run before anything is written (exit 2).
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<PathBuf>,
}

impl DecisionsArg {
    /// The file read and checked (unreadable, not TOML of the template's shape, or an entry
    /// with a choice or value its rule refuses: a usage error, exit 2, naming the entry).
    pub fn read(&self) -> Result<Option<thywill_pipeline::Decisions>, CliError> {
        self.decisions
            .as_deref()
            .map(|p| {
                thywill_pipeline::Decisions::read(p)
                    .map_err(|e| CliError::new(Exit::Usage, e.to_string()))
            })
            .transpose()
    }

    /// The same flag for a child process (the cut-over's steps).
    pub fn to_args(&self) -> Vec<String> {
        match &self.decisions {
            Some(p) => vec!["--decisions".to_string(), p.display().to_string()],
            None => Vec::new(),
        }
    }
}

/// Flags of the v1 side and the reports.
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// The v1 SQLite database (read-only).
    #[arg(long, env = "V1_DB_PATH", value_name = "FILE")]
    pub v1_db: PathBuf,
    /// The v1 text-archive tree (`text_archives/`), when there is one.
    #[arg(long, value_name = "DIR")]
    pub archives_v1: Option<PathBuf>,
    /// What to do with what the rules find.
    #[arg(long, value_enum, default_value = "repair")]
    pub policy: PolicyArg,
    /// Judge expiry of sessions and role grants at this UTC time instead of now
    /// (`YYYY-MM-DD HH:MM:SS`; for rehearsals and tests).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// An exact display name of a test account (repeatable; default `Test User`, `Prayer Test User`).
    #[arg(long = "test-account-name", value_name = "NAME")]
    pub test_account_names: Vec<String>,
    #[command(flatten)]
    pub clock: V1ServerArgs,
    #[command(flatten)]
    pub email: EmailArgs,
    #[command(flatten)]
    pub decisions: DecisionsArg,
    /// Write the JSON report (report_version 1) here.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub report_md: Option<PathBuf>,
    /// Write the report as one self-contained HTML page here (verdict, law per table, every
    /// finding by rule; no network, no external file).
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
}

impl CommonArgs {
    /// The pipeline's common options from the flags.
    pub fn to_options(&self, log: &LogArgs) -> Result<CommonOptions, CliError> {
        check_report_path("--report-json", self.report_json.as_deref())?;
        check_report_path("--report-md", self.report_md.as_deref())?;
        check_report_path("--report-html", self.report_html.as_deref())?;
        let as_of = match &self.as_of {
            None => None,
            Some(s) => Some(chrono_parse(s).ok_or_else(|| {
                CliError::new(
                    Exit::Usage,
                    format!("--as-of {s:?}: expected YYYY-MM-DD HH:MM:SS (UTC)"),
                )
            })?),
        };
        let email = self.email.resolve()?;
        let decisions = self.decisions.read()?;
        Ok(CommonOptions {
            v1_db: self.v1_db.clone(),
            archives_v1: self.archives_v1.clone(),
            policy: match self.policy {
                PolicyArg::Repair => Policy::Repair,
                PolicyArg::Strict => Policy::Strict,
            },
            as_of,
            test_account_names: self.test_account_names.clone(),
            clock: self.clock.to_clock()?,
            invite_hours: self.clock.v1_invite_hours,
            progress: log.progress_mode(),
            email_db: email.as_ref().map(|(db, _)| db.clone()),
            email_key: email.map(|(_, key)| key),
            decisions,
        })
    }
}

pub(crate) fn chrono_parse(s: &str) -> Option<thywill_pipeline::NaiveDateTime> {
    thywill_pipeline::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .or_else(|| thywill_pipeline::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok())
}

/// Writes the requested reports, prints the summary (with `--quiet` too: it silences logs and
/// progress only), and gives the exit code for the report.
pub fn emit(report: &Report, args: &CommonArgs) -> Result<Exit, CliError> {
    // Each report replaces its file whole (a half-written report never stands under its name).
    let cannot = |e: thywill_ops::OpsError| {
        CliError::new(Exit::Failed, format!("cannot write the report: {e}"))
    };
    if let Some(p) = &args.report_json {
        write_atomic_with(p, |w| report.write_json(w)).map_err(cannot)?;
    }
    if let Some(p) = &args.report_md {
        write_atomic_with(p, |w| w.write_all(report.to_markdown().as_bytes())).map_err(cannot)?;
    }
    if let Some(p) = &args.report_html {
        // A large run's page lists each rule's first rows and names the JSON report for the rest.
        let opts = thywill_report_html::PageOptions {
            json_report: args
                .report_json
                .as_deref()
                .and_then(|j| j.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
            ..thywill_report_html::PageOptions::default()
        };
        write_html_report(p, || thywill_report_html::render_run_with(report, &opts))?;
    }
    print!("{}", report.summary());
    Ok(if report.ok { Exit::Ok } else { Exit::Failed })
}
