//! `thywill-analyze`: the data-quality report of a v1 database, read-only.

use std::process::ExitCode;

use clap::Parser;
use thywill_cli::{common_args, finish, CliError, CommonArgs, Exit, LogArgs};
use thywill_pipeline::{analyze, AnalyzeOptions, CommonOptions};

/// Data-quality report of a ThyWill v1 database: generation, table counts, every finding by
/// rule, what the migration would do under the chosen policy, and a feasibility verdict.
/// Never writes to v1.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-analyze",
    version,
    after_help = "Example:\n  thywill-analyze --v1-db /prod/thywill.db --archives-v1 /prod/text_archives \\\n      --report-json analysis.json --report-md analysis.md --report-html analysis.html"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    thywill_pipeline::tune_allocator();
    let cli = Cli::parse();
    cli.log.init();
    finish(run(cli))
}

fn run(cli: Cli) -> Result<Exit, CliError> {
    let common: CommonOptions = cli.common.to_options(&cli.log)?;
    let opts = AnalyzeOptions { common };
    let report = analyze(&opts)?;
    common_args::emit(&report, &cli.common)
}
