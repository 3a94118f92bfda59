//! `thywill-fixtures`: generates deterministic v1 fixture databases (see `thywill_fixturegen`).

use std::process::ExitCode;

use clap::Parser;
use thywill_cli::{Exit, LogArgs};
use thywill_fixturegen::cli::{run, FixtureArgs};

/// Generates a deterministic ThyWill v1 fixture database (schema generation G0–G3, size S, M, L
/// or Dense), its truth file (every finding the rules must report) and, for G1 and G3, the v1
/// text-archive tree, into one output folder. The same seed gives the same bytes.
#[derive(Parser, Debug)]
#[command(
    name = "thywill-fixtures",
    version,
    after_help = "Examples:\n  thywill-fixtures --generation G3 --size M --seed 7 --out /tmp/g3-m --archives\n  thywill-fixtures --generation G0 --size S --corruption 0 --out /tmp/g0-clean\n\nExit codes: 0 generated, 1 generation failed, 2 usage."
)]
struct Cli {
    #[command(flatten)]
    fixture: FixtureArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    Exit::from_code(run(&cli.fixture)).into()
}
