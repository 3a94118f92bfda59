//! `thywill-runs`: the migration runs recorded in a v2 database, as a table or as JSON.

use std::process::ExitCode;

use clap::Parser;
use thywill_cli::{finish, CliError, Exit, LogArgs, V2DbArg};
use thywill_ops::v2runs::list_runs;

/// Lists the migration runs recorded in the v2 database (`migration_runs`), oldest first: run id,
/// status, start and end (UTC), the v1 source's generation, whether it was a dry run, the first
/// 12 characters of the source's sha256 and the v1 rows written. Reads only: a missing SQLite
/// file is not created, and a database without the v2 schema has no run (exit 0).
#[derive(Parser, Debug)]
#[command(
    name = "thywill-runs",
    version,
    after_help = "Examples:\n  thywill-runs                                          # ./thywill_v2.db\n  V2_DB_URL=postgresql://thywill@127.0.0.1/thywill_v2 thywill-runs --json\n\nThe run_id column is what thywill-rollback --run-id takes.\nExit codes: 0 listed (also when there is no run), 2 usage, 3 v2 unreachable."
)]
struct Cli {
    #[command(flatten)]
    v2: V2DbArg,
    /// Print the runs as a JSON array (full sha256, times as ISO 8601 UTC) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    finish(run(cli))
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let listing = list_runs(&cli.v2.url)?;
    if cli.json {
        let json = serde_json::to_string_pretty(&listing.runs)
            .map_err(|e| CliError::new(Exit::Failed, format!("cannot print the runs: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", listing.table());
    }
    Ok(Exit::Ok)
}
