//! `thywill-analyze`: the data-quality report of a v1 database, read-only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use thywill_cli::{check_report_path, common_args, finish, CliError, CommonArgs, Exit, LogArgs};
use thywill_ops::fsutil::write_atomic_with;
use thywill_pipeline::{analyze, analyze_with_template, AnalyzeOptions, CommonOptions};

/// Data-quality report of a ThyWill v1 database: generation, table counts, every finding by
/// rule, what the migration would do under the chosen policy, and a feasibility verdict.
/// Never writes to v1.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-analyze",
    version,
    after_help = "Example:\n  thywill-analyze --v1-db /prod/thywill.db --archives-v1 /prod/text_archives \\\n      --report-json analysis.json --report-md analysis.md --report-html analysis.html \\\n      --decisions-template decisions.toml"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// Write an editable decisions file here: one entry per quarantined row, grouped by rule,
    /// with its original values and the choices its rule allows (all `keep_quarantined`); edit
    /// it and pass it back with --decisions.
    #[arg(long, value_name = "FILE")]
    decisions_template: Option<PathBuf>,
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
    check_report_path("--decisions-template", cli.decisions_template.as_deref())?;
    let common: CommonOptions = cli.common.to_options(&cli.log)?;
    let opts = AnalyzeOptions { common };
    let report = match &cli.decisions_template {
        None => analyze(&opts)?,
        Some(path) => {
            let (report, template) = analyze_with_template(&opts)?;
            // Replaced whole, as the reports are: a half-written template never stands.
            write_atomic_with(path, |w| w.write_all(template.as_bytes())).map_err(|e| {
                CliError::new(
                    Exit::Failed,
                    format!("cannot write the decisions template: {e}"),
                )
            })?;
            report
        }
    };
    common_args::emit(&report, &cli.common)
}
