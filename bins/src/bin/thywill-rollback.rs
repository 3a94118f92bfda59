//! `thywill-rollback`: back to v1 from a verified backup set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use thywill_cli::{confirm, finish, CliError, Exit, LogArgs, V2DbArg};
use thywill_ops::backup::latest_set;
use thywill_ops::rollback::{rollback, RestorePolicy, RollbackOptions};
use thywill_ops::v2runs::RunSelection;
use thywill_ops::OpsError;

/// Rolls ThyWill back to v1: verifies the backup set (refusing one that does not verify), runs
/// --switch-back-cmd, removes the v2 application data of the migration run and marks it
/// rolled_back (nothing else in v2 is touched), restores the v1 database (and missing or changed
/// archive files) from the backup, runs --restart-v1-cmd, and checks v1 is readable.
/// Running it twice is harmless.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-rollback",
    version,
    after_help = "Examples:\n  thywill-rollback --v1-db /prod/thywill.db --backup-dir /backups \\\n      --v2-db postgresql://thywill@127.0.0.1/thywill_v2 \\\n      --switch-back-cmd 'systemctl reload nginx-v1' --restart-v1-cmd 'systemctl restart thywill-v1'\n  thywill-rollback --v1-db thywill.db --backup /backups/thywill_v1_backup_20250705_014500 --run-id 3f2a…"
)]
struct Cli {
    /// The v1 database to restore.
    #[arg(long, env = "V1_DB_PATH", value_name = "FILE")]
    v1_db: PathBuf,
    /// The backup set folder to restore from.
    #[arg(long, value_name = "SET_DIR")]
    backup: Option<PathBuf>,
    /// The backup folder: the newest set in it is used unless --backup is given.
    #[arg(
        long,
        env = "BACKUP_DIR",
        value_name = "DIR",
        required_unless_present = "backup"
    )]
    backup_dir: Option<PathBuf>,
    /// v1's separate e-mail database: restored from the set's copy together with v1 (the set
    /// must hold one: `thywill-backup --v1-email-db`).
    #[arg(long, value_name = "FILE")]
    v1_email_db: Option<PathBuf>,
    /// The v1 archive tree: files missing or changed there are restored from the set.
    #[arg(long, value_name = "DIR")]
    archives_v1: Option<PathBuf>,
    #[command(flatten)]
    v2: V2DbArg,
    /// The run to undo (repeatable); default: the latest run not yet rolled back.
    #[arg(long, value_name = "RUN_ID")]
    run_id: Vec<String>,
    /// Leave v2 alone (only restore v1).
    #[arg(long)]
    keep_v2: bool,
    /// Go ahead without asking (required when stdin is not a terminal: a rollback overwrites v1).
    #[arg(long)]
    yes: bool,
    /// Hook run with `sh -c` to send traffic back to v1.
    #[arg(long, value_name = "CMD")]
    switch_back_cmd: Option<String>,
    /// Hook run with `sh -c` to restart the v1 services after the restore.
    #[arg(long, value_name = "CMD")]
    restart_v1_cmd: Option<String>,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    finish(run(cli))
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let backup = match (cli.backup, &cli.backup_dir) {
        (Some(set), _) => set,
        // A folder without a set is a refusal before touching anything (4, docs/runbook.md); a
        // folder that cannot be read at all stays unusable input (3).
        (None, Some(dir)) => latest_set(dir)?.ok_or_else(|| OpsError::RollbackRefused {
            reason: format!(
                "backup folder {} holds no backup set (thywill_v1_backup_*); give one with --backup; nothing was touched",
                dir.display()
            ),
        })?,
        (None, None) => {
            return Err(CliError::new(
                Exit::Usage,
                "give the backup set with --backup SET_DIR, or its folder with --backup-dir DIR (or BACKUP_DIR)",
            ))
        }
    };
    let opts = RollbackOptions {
        v1_db: cli.v1_db,
        backup: Some(backup.clone()),
        email_db: cli.v1_email_db,
        archives_v1: cli.archives_v1,
        v2_db: (!cli.keep_v2).then_some(cli.v2.url),
        runs: if cli.run_id.is_empty() {
            RunSelection::Latest
        } else {
            RunSelection::Ids(cli.run_id)
        },
        restore: RestorePolicy::Always,
        switch_back_cmd: cli.switch_back_cmd,
        restart_v1_cmd: cli.restart_v1_cmd,
        best_effort: false,
    };
    confirm(
        &format!(
            "thywill-rollback will restore {}{} from {}{}.",
            opts.v1_db.display(),
            match &opts.email_db {
                Some(e) => format!(" and {}", e.display()),
                None => String::new(),
            },
            backup.display(),
            match &opts.v2_db {
                Some(url) => format!(
                    " and remove the v2 data of {} in {}",
                    runs_text(&opts.runs),
                    thywill_v2::redact_url(url)
                ),
                None => String::new(),
            }
        ),
        cli.yes,
    )?;
    let report = rollback(&opts)?;
    println!(
        "rolled back from {}: {}",
        backup.display(),
        report.summary()
    );
    println!("v1 is readable (integrity checked)");
    Ok(Exit::Ok)
}

/// The runs asked for, as words.
fn runs_text(runs: &RunSelection) -> String {
    match runs {
        RunSelection::Ids(ids) => format!("run {}", ids.join(", ")),
        _ => "the latest run".to_string(),
    }
}
