//! `thywill-validate`: independent validation of a migration (or, with `--v1-only`, of a v1
//! file before a run). Prints one PASS/FAIL line per check and a total.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use thywill_cli::common_args::{DecisionsArg, EmailArgs, V1ServerArgs};
use thywill_cli::{check_report_path, finish, write_html_report, CliError, Exit, LogArgs, V2DbArg};
use thywill_ops::fsutil::write_atomic_with;
use thywill_validator::clock::V1Clock;
use thywill_validator::{validate, Options, Policy};

/// The policy the migration ran with.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum PolicyArg {
    /// Fix what a documented rule can fix, quarantine the rest.
    Repair,
    /// Skip every corrupted record.
    Strict,
}

/// Recomputes the migration's result from v1 and checks v2 against it: the accounting law per
/// table, content fidelity, constraints and foreign keys, smoke checks, and archives.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-validate",
    version,
    after_help = "Example:\n  thywill-validate --v1-db thywill.db --v2-db postgresql://thywill@127.0.0.1/thywill_v2 \\\n      --archives-v1 text_archives --archives-v2 text_archives_v2 --report-json validation.json --report-html validation.html\n\nExit codes: 0 all checks passed, 1 a check failed, 2 usage, 3 unusable input."
)]
struct Cli {
    /// The v1 SQLite database.
    #[arg(long, env = "V1_DB_PATH")]
    v1_db: PathBuf,
    #[command(flatten)]
    v2: V2DbArg,
    /// The v1 text archive tree (checks it was carried completely).
    #[arg(long, value_name = "DIR")]
    archives_v1: Option<PathBuf>,
    /// The v2 text archive tree (file per user and prayer, MANIFEST.sha256).
    #[arg(long, value_name = "DIR")]
    archives_v2: Option<PathBuf>,
    /// The policy the migration ran with.
    #[arg(long, value_enum, default_value_t = PolicyArg::Repair)]
    policy: PolicyArg,
    /// Write the validation report as JSON.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Write the validation report as one self-contained HTML page (the PASS/FAIL table).
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,
    /// An exact display name of a test account, as given to the migration (repeatable; default
    /// `Test User`, `Prayer Test User`).
    #[arg(long = "test-account-name", value_name = "NAME")]
    test_account_names: Vec<String>,
    /// How the v1 server ran (clock, invite lifetime), as given to the migration.
    #[command(flatten)]
    clock: V1ServerArgs,
    /// v1's e-mail database and its key, as given to the migration (decrypted again here).
    #[command(flatten)]
    email: EmailArgs,
    /// The operator's decisions file the migration applied (read again here, by the
    /// validator's own parser).
    #[command(flatten)]
    decisions: DecisionsArg,
    /// Only check that the v1 file is readable and sound.
    #[arg(long)]
    v1_only: bool,
    #[command(flatten)]
    log: LogArgs,
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    check_report_path("--report-json", cli.report_json.as_deref())?;
    check_report_path("--report-html", cli.report_html.as_deref())?;
    let clock = cli.clock.to_clock()?;
    let email = cli
        .email
        .resolve()?
        .map(|(db, key)| thywill_validator::email::EmailSource { db, key });
    let decisions = match &cli.decisions.decisions {
        Some(p) => Some(
            thywill_validator::decisions::OperatorDecisions::read(p)
                .map_err(|e| CliError::new(Exit::Usage, format!("--decisions: {e}")))?,
        ),
        None => None,
    };
    let opts = Options {
        email,
        decisions,
        archives_v1: cli.archives_v1,
        archives_v2: cli.archives_v2,
        policy: match cli.policy {
            PolicyArg::Repair => Policy::Repair,
            PolicyArg::Strict => Policy::Strict,
        },
        v1_only: cli.v1_only,
        test_account_names: cli.test_account_names,
        clock: V1Clock {
            zone: clock.zone(),
            local_since: clock.local_since(),
        },
        invite_hours: cli
            .clock
            .v1_invite_hours
            .unwrap_or(thywill_validator::expected::DEFAULT_INVITE_HOURS),
        ..Options::new(cli.v1_db, cli.v2.url)
    };
    let report = cli.log.while_busy("validate", || validate(&opts))?;
    for c in &report.checks {
        println!(
            "{} {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.summary
        );
        if !c.passed || cli.log.verbose > 0 {
            for d in &c.details {
                println!("    {d}");
            }
        }
    }
    println!(
        "{}: {} of {} checks passed ({:.2} s)",
        if report.ok { "OK" } else { "FAILED" },
        report.passed,
        report.checks.len(),
        report.seconds
    );
    if let Some(path) = &cli.report_json {
        write_atomic_with(path, |w| report.write_json(w))
            .map_err(|e| CliError::new(Exit::Failed, format!("cannot write the report: {e}")))?;
    }
    if let Some(path) = &cli.report_html {
        write_html_report(path, || thywill_report_html::render_validation(&report))?;
    }
    Ok(if report.ok { Exit::Ok } else { Exit::Failed })
}

fn main() -> std::process::ExitCode {
    thywill_pipeline::tune_allocator();
    let cli = Cli::parse();
    cli.log.init();
    finish(run(cli))
}
