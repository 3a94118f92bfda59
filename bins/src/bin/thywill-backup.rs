//! `thywill-backup`: a consistent online backup set of the live v1 database and archive tree.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use thywill_cli::{finish, CliError, Exit, LogArgs};
use thywill_ops::backup::{
    backup, check_v1_email_source, check_v1_source, verify_set, BackupOptions,
};

/// Backs up a live ThyWill v1 database with SQLite's online backup API (never a plain copy of a
/// WAL file), copies the v1 archive tree (regular files; symlinks are not followed), writes
/// MANIFEST.sha256 and verifies all of it: integrity_check, row counts equal to the source at the
/// instant of the backup, checksums. The set lands in BACKUP_DIR/thywill_v1_backup_YYYYmmdd_HHMMSS/.
/// SIGINT/SIGTERM stop it at its next file: the unfinished set is removed, exit 130/143.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-backup",
    version,
    after_help = "Examples:\n  thywill-backup --v1-db /prod/thywill.db --archives-v1 /prod/text_archives --backup-dir /backups\n  V1_DB_PATH=/prod/thywill.db BACKUP_DIR=/backups thywill-backup\n  thywill-backup --verify /backups/thywill_v1_backup_20250705_014500"
)]
struct Cli {
    /// The live v1 database.
    #[arg(
        long,
        env = "V1_DB_PATH",
        value_name = "FILE",
        required_unless_present = "verify"
    )]
    v1_db: Option<PathBuf>,
    /// The v1 text archive tree to copy.
    #[arg(long, value_name = "DIR")]
    archives_v1: Option<PathBuf>,
    /// v1's separate e-mail database (`email.db`): copied into the set with the online backup
    /// API, like the main database (its addresses stay encrypted; no key is needed).
    #[arg(long, value_name = "FILE")]
    v1_email_db: Option<PathBuf>,
    /// The folder that receives the backup set (created if missing).
    #[arg(
        long,
        env = "BACKUP_DIR",
        value_name = "DIR",
        required_unless_present = "verify"
    )]
    backup_dir: Option<PathBuf>,
    /// Only verify an existing backup set folder (checksums, integrity, row counts).
    #[arg(long, value_name = "SET_DIR", conflicts_with_all = ["v1_db", "archives_v1", "v1_email_db"])]
    verify: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    // SIGINT/SIGTERM stop the backup at its next file or phase: the `.partial` set folder is
    // removed and the exit is 130/143.
    thywill_pipeline::interrupt::install();
    let cli = Cli::parse();
    cli.log.init();
    finish(run(cli))
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let set = match (cli.verify, cli.v1_db, cli.backup_dir) {
        (Some(dir), _, _) => cli.log.while_busy("verify", || verify_set(&dir))?,
        (None, Some(v1), Some(dir)) => {
            check_v1_source(&v1)?;
            if let Some(e) = &cli.v1_email_db {
                check_v1_email_source(e)?;
            }
            let mut opts = BackupOptions::new(v1, dir);
            opts.archives_v1 = cli.archives_v1;
            opts.email_db = cli.v1_email_db;
            cli.log.while_busy("backup", || backup(&opts))?
        }
        // clap's `required_unless_present` makes this unreachable; answer as a usage error anyway.
        _ => {
            return Err(CliError::new(
                Exit::Usage,
                "give --v1-db FILE and --backup-dir DIR (or BACKUP_DIR) to take a backup, or --verify SET_DIR",
            ))
        }
    };
    let rows: u64 = set.meta.table_counts.values().sum();
    println!("backup set: {}", set.dir.display());
    println!(
        "database:   {} ({} tables, {rows} rows, integrity ok{})",
        set.meta.db_file,
        set.meta.table_counts.len(),
        if set.meta.integrity_notes.is_empty() {
            String::new()
        } else {
            format!(
                " apart from {} index problem(s) the source has too",
                set.meta.integrity_notes.len()
            )
        }
    );
    if let Some(f) = &set.meta.email_db_file {
        let rows: u64 = set.meta.email_table_counts.values().sum();
        println!("e-mail db:  {f} ({rows} rows, integrity ok)");
    }
    if let (Some(dir), Some(a)) = (&set.meta.files_dir, &set.meta.archives) {
        println!(
            "archives:   {dir} ({} files, {} bytes, {} skipped)",
            a.files,
            a.bytes,
            a.skipped.len()
        );
        for s in &a.skipped {
            println!("  skipped: {s}");
        }
    }
    println!("verified:   MANIFEST.sha256, integrity_check, row counts");
    Ok(Exit::Ok)
}
