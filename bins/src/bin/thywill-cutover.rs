//! `thywill-cutover`: migration day as one command, with automatic rollback.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use thywill_cli::{
    finish, write_html_report, CliError, Exit, LogArgs, QuarantineLimitArgs, V2DbArg,
};
use thywill_ops::cutover::{cutover, CutoverOptions, Hooks};

/// Runs the migration day: backup → maintenance on → v1 validation → migrate → validate → switch
/// → verify → maintenance off, printing each step's start offset and duration as it ends, then
/// the whole timeline and the total against the one-hour budget. Any failure rolls back
/// automatically (v2 run removed, v1 restored only if it changed, traffic switched back, v1
/// restarted and checked, maintenance off) and exits 1 naming the failed step (4 when the step
/// refused for safety, its migrate or validate child's exit 4 included; 5 when the rollback is
/// incomplete); SIGINT/SIGTERM stop it at the next step (a running step's child gets the signal)
/// and roll back the same way, exit 130/143. Hooks are run with `sh -c`; a non-zero exit fails the step.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-cutover",
    version,
    after_help = "Examples:\n  V1_DB_PATH=/prod/thywill.db V2_DB_URL=postgresql://thywill@127.0.0.1/thywill_v2 BACKUP_DIR=/backups \\\n    thywill-cutover --archives-v1 /prod/text_archives --archives-v2 /srv/text_archives_v2 \\\n      --maintenance-flag /srv/thywill/MAINTENANCE --status-page /srv/www/status.html \\\n      --switch-cmd '/srv/ops/switch --to-v2' --switch-back-cmd '/srv/ops/switch --to-v1' \\\n      --verify-cmd '/srv/ops/smoke-v2' --restart-v1-cmd 'systemctl restart thywill-v1' \\\n      --decisions /srv/ops/decisions.toml\n  thywill-cutover --rehearsal --v1-db /staging/thywill.db --archives-v1 /staging/text_archives --work-dir /tmp/rehearsal"
)]
struct Cli {
    /// The v1 database.
    #[arg(long, env = "V1_DB_PATH", value_name = "FILE")]
    v1_db: PathBuf,
    #[command(flatten)]
    v2: V2DbArg,
    /// The v1 text archive tree.
    #[arg(long, value_name = "DIR")]
    archives_v1: Option<PathBuf>,
    /// The v2 text archive tree to write.
    #[arg(long, value_name = "DIR")]
    archives_v2: Option<PathBuf>,
    /// Corruption policy passed to the migration and the validation.
    #[arg(long, default_value = "repair", value_parser = ["repair", "strict"])]
    policy: String,
    // Passed to the migrate step: over a limit, the day fails there, before anything is
    // written, and rolls back.
    #[command(flatten)]
    limits: QuarantineLimitArgs,
    /// The v1 server's clock, passed to the migration and the validation.
    #[command(flatten)]
    clock: thywill_cli::common_args::V1ServerArgs,
    /// v1's e-mail database and its key: backed up, migrated and validated.
    #[command(flatten)]
    email: thywill_cli::common_args::EmailArgs,
    /// The operator's decisions on quarantined rows: applied by the migration, derived again
    /// by the validation.
    #[command(flatten)]
    decisions: thywill_cli::common_args::DecisionsArg,
    /// The backup folder (a rehearsal backs up into its work folder instead).
    #[arg(
        long,
        env = "BACKUP_DIR",
        value_name = "DIR",
        required_unless_present = "rehearsal"
    )]
    backup_dir: Option<PathBuf>,
    /// Reports, the timeline (and a rehearsal's copies); default BACKUP_DIR/thywill_cutover_<time>.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Hook: turn the maintenance page on.
    #[arg(long, value_name = "CMD")]
    maintenance_on: Option<String>,
    /// Hook: turn the maintenance page off.
    #[arg(long, value_name = "CMD")]
    maintenance_off: Option<String>,
    /// Hook: switch traffic to v2.
    #[arg(long, value_name = "CMD")]
    switch_cmd: Option<String>,
    /// Hook: switch traffic back to v1 (rollback).
    #[arg(long, value_name = "CMD")]
    switch_back_cmd: Option<String>,
    /// Hook: verify v2 works once it receives traffic.
    #[arg(long, value_name = "CMD")]
    verify_cmd: Option<String>,
    /// Hook: restart v1 (rollback).
    #[arg(long, value_name = "CMD")]
    restart_v1_cmd: Option<String>,
    /// Built-in maintenance switch: this flag file exists while maintenance is on.
    #[arg(long, value_name = "PATH")]
    maintenance_flag: Option<PathBuf>,
    /// Static HTML status page for the community, rewritten at every step.
    #[arg(long, value_name = "PATH")]
    status_page: Option<PathBuf>,
    /// Staging rehearsal: the whole day on copies (v1 via the backup API, a scratch v2).
    #[arg(long)]
    rehearsal: bool,
    /// The rehearsal's scratch v2 database (default: a SQLite file in the work folder); a
    /// rehearsal never uses --v2-db / V2_DB_URL.
    #[arg(long, value_name = "URL", requires = "rehearsal")]
    rehearsal_v2_db: Option<String>,
    /// The thywill-migrate binary (default: next to this one).
    #[arg(long, value_name = "FILE")]
    migrate_bin: Option<PathBuf>,
    /// The thywill-validate binary (default: next to this one).
    #[arg(long, value_name = "FILE")]
    validate_bin: Option<PathBuf>,
    /// Write the cut-over's timeline as one self-contained HTML page (steps against the budget),
    /// whether the day succeeded or rolled back.
    #[arg(long, value_name = "FILE")]
    report_html: Option<PathBuf>,
    /// The downtime budget in minutes.
    #[arg(long, default_value_t = 60)]
    budget_minutes: u64,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    thywill_pipeline::tune_allocator();
    // SIGINT/SIGTERM stop the day at the next step and roll back (exit 130/143).
    thywill_pipeline::interrupt::install();
    let cli = Cli::parse();
    cli.log.init();
    finish(run(cli))
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The work folder: `--work-dir`, else a new folder named after `stamp` (here for a rehearsal,
/// in the backup folder for the real day). Without either folder it is a usage error that says
/// what to give (clap's `required_unless_present` normally catches it first).
fn work_dir(cli: &Cli, stamp: &str) -> Result<PathBuf, CliError> {
    match (&cli.work_dir, &cli.backup_dir, cli.rehearsal) {
        (Some(w), _, _) => Ok(w.clone()),
        (None, _, true) => Ok(PathBuf::from(format!("thywill_rehearsal_{stamp}"))),
        (None, Some(b), false) => Ok(b.join(format!("thywill_cutover_{stamp}"))),
        (None, None, false) => Err(CliError::new(
            Exit::Usage,
            "give the backup folder with --backup-dir DIR (or BACKUP_DIR), or --rehearsal",
        )),
    }
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let stamp = thywill_ops::backup::timestamp();
    let work_dir = work_dir(&cli, &stamp)?;
    let opts = CutoverOptions {
        v1_db: cli.v1_db,
        v2_db: cli.v2.url,
        archives_v1: cli.archives_v1,
        archives_v2: cli.archives_v2,
        policy: cli.policy,
        // Checked now, before any step runs; the steps get them as flags.
        v1_args: {
            cli.clock.to_clock()?;
            // The decisions file is read and checked now (exit 2), not at the migrate step;
            // the steps get it by its absolute path.
            cli.decisions.read()?;
            let decisions = thywill_cli::common_args::DecisionsArg {
                decisions: cli
                    .decisions
                    .decisions
                    .as_deref()
                    .map(std::path::absolute)
                    .transpose()
                    .map_err(|e| CliError::new(Exit::Usage, format!("--decisions: {e}")))?,
            };
            [cli.clock.to_args(), decisions.to_args()].concat()
        },
        email_db: {
            // The key is checked now (exit 2), not an hour into the day.
            cli.email.resolve()?;
            cli.email.v1_email_db.clone()
        },
        email_key_file: cli.email.v1_email_key_file.clone(),
        max_quarantined: cli.limits.max_quarantined,
        max_quarantined_percent: cli.limits.max_quarantined_percent,
        backup_dir: cli.backup_dir.unwrap_or_else(|| work_dir.join("backups")),
        work_dir,
        hooks: Hooks {
            maintenance_on: cli.maintenance_on,
            maintenance_off: cli.maintenance_off,
            switch: cli.switch_cmd,
            switch_back: cli.switch_back_cmd,
            verify: cli.verify_cmd,
            restart_v1: cli.restart_v1_cmd,
        },
        maintenance_flag: cli.maintenance_flag,
        status_page: cli.status_page,
        rehearsal: cli.rehearsal,
        rehearsal_v2_db: cli.rehearsal_v2_db,
        migrate_bin: cli
            .migrate_bin
            .unwrap_or_else(|| sibling("thywill-migrate")),
        validate_bin: cli
            .validate_bin
            .unwrap_or_else(|| sibling("thywill-validate")),
        budget: Duration::from_secs(cli.budget_minutes.max(1) * 60),
        print_steps: true,
    };
    // The heading and each step's line are printed as they happen; the summary follows.
    let run = cutover(&opts);
    let r = &run.report;
    println!("summary:");
    print!("{}", r.timeline());
    if let Some(rb) = &r.rollback {
        println!("{rb}");
    }
    if let Some(b) = &r.backup_set {
        println!("backup set: {}", b.display());
    }
    println!("reports and timeline: {}", r.work_dir.display());
    // The page is written on a failed day too (it shows the rollback); the day's own error
    // comes first.
    let html = match &cli.report_html {
        Some(path) => write_html_report(path, || thywill_report_html::render_cutover(r)),
        None => Ok(()),
    };
    if let (Err(e), Err(_)) = (&html, &run.result) {
        eprintln!("error: {}", e.message);
    }
    run.result?;
    html?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_backup_folder_outside_a_rehearsal_is_a_usage_error_that_says_so() {
        let mut cli =
            Cli::try_parse_from(["thywill-cutover", "--v1-db", "v1.db", "--backup-dir", "b"])
                .unwrap();
        assert!(work_dir(&cli, "x").unwrap().starts_with("b"));
        cli.backup_dir = None;
        let e = work_dir(&cli, "x").unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains("--backup-dir"), "{}", e.message);
    }
}
