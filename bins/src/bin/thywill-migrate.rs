//! `thywill-migrate`: the whole migration of a v1 database (and archives) into v2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use thywill_cli::{
    common_args, confirm, finish, CliError, CommonArgs, Exit, LogArgs, QuarantineLimitArgs, V2DbArg,
};
use thywill_pipeline::{migrate, MigrateOptions};

/// Migrates a ThyWill v1 database and its text archives into the v2 schema on PostgreSQL or
/// SQLite: creates or upgrades the schema, applies every corruption rule, writes all data in one
/// transaction, writes the v2 archives, records the run, and prints the report. Re-running over
/// the same source is a no-op.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-migrate",
    version,
    after_help = "Examples:\n  thywill-migrate --v1-db thywill.db                       # into ./thywill_v2.db (SQLite)\n  V2_DB_URL=postgresql://thywill@127.0.0.1/thywill_v2 thywill-migrate --v1-db /prod/thywill.db \\\n      --archives-v1 /prod/text_archives --archives-v2 /srv/text_archives_v2 --report-json run.json --report-html run.html\n  thywill-migrate --v1-db thywill.db --dry-run --policy strict\n  thywill-migrate --v1-db thywill.db --max-quarantined-percent 1   # stop (exit 1) if a table quarantines over 1%"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    v2: V2DbArg,
    /// Where to write the v2 text archives (the v1 tree is carried into it too).
    #[arg(long, value_name = "DIR")]
    archives_v2: Option<PathBuf>,
    /// Do the whole job and leave no trace (PostgreSQL rolls back; SQLite works on a copy).
    #[arg(long)]
    dry_run: bool,
    /// Empty a v2 database holding another source's data and start over (asks first on a
    /// terminal; needs --yes otherwise).
    #[arg(long)]
    replace: bool,
    /// Go ahead with --replace without asking (required when stdin is not a terminal).
    #[arg(long, requires = "replace")]
    yes: bool,
    #[command(flatten)]
    limits: QuarantineLimitArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    thywill_pipeline::tune_allocator();
    thywill_pipeline::interrupt::install();
    let cli = Cli::parse();
    cli.log.init();
    finish(run(cli))
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let common = cli.common.to_options(&cli.log)?;
    if cli.replace && !cli.dry_run {
        confirm(
            &format!(
                "thywill-migrate --replace will delete every application row in {} (the data of \
                 another source or run; logged per table) and write {} instead.",
                thywill_v2::redact_url(&cli.v2.url),
                cli.common.v1_db.display()
            ),
            cli.yes,
        )?;
    }
    let opts = MigrateOptions {
        common,
        v2_url: cli.v2.url.clone(),
        archives_v2: cli.archives_v2.clone(),
        dry_run: cli.dry_run,
        replace: cli.replace,
        quarantine_limits: cli.limits.limits(),
    };
    let report = match migrate(&opts) {
        Ok(report) => report,
        Err(e) => {
            // A run stopped by its quarantine limits still writes its report: it says why.
            if let Some(report) = e.report() {
                common_args::emit(report, &cli.common)?;
            }
            return Err(e.into());
        }
    };
    common_args::emit(&report, &cli.common)
}
