//! Shared command-line plumbing for the thywill binaries: logging flags, exit codes, and the one
//! place where an error becomes a message and an exit code. Binaries stay thin: parse arguments,
//! call a crate, map the outcome with [`finish`].

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

pub mod common_args;
pub use common_args::CommonArgs;

/// The exit codes of `spec/interfaces.md`, shared by every binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; for validate, every check passed.
    Ok = 0,
    /// 1: the job ran and failed (validation failed, migration failed and was rolled back).
    Failed = 1,
    /// 2: usage (clap uses it for unknown flags and missing values).
    Usage = 2,
    /// 3: unusable input (v1 file, v2 target, archive folder).
    Unusable = 3,
    /// 4: refused for safety (foreign data in v2, foreign files in the archive folder, …).
    Refused = 4,
    /// 5: a rollback acted but could not do everything (each problem is printed); see
    /// docs/runbook.md. A rollback that refused before acting exits 4.
    Incomplete = 5,
    /// 130: stopped cleanly by SIGINT (128 + 2).
    Sigint = 130,
    /// 143: stopped cleanly by SIGTERM (128 + 15).
    Sigterm = 143,
}

impl Exit {
    /// The exit for a numeric code as the crates' errors give it (`exit_code()`): 2 usage,
    /// 3 unusable input, 4 refused for safety, anything else a failure.
    pub fn from_code(code: u8) -> Exit {
        match code {
            0 => Exit::Ok,
            2 => Exit::Usage,
            3 => Exit::Unusable,
            4 => Exit::Refused,
            5 => Exit::Incomplete,
            130 => Exit::Sigint,
            143 => Exit::Sigterm,
            _ => Exit::Failed,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// An error on its way out of a binary: the message for the operator and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// The exit code to return.
    pub exit: Exit,
    /// The whole message (it names the culprit and what to do).
    pub message: String,
}

impl CliError {
    /// An error whose exit code is the crate error's own `exit_code()`.
    pub fn coded(code: u8, message: impl std::fmt::Display) -> Self {
        CliError::new(Exit::from_code(code), message)
    }

    /// An error with an explicit exit code.
    pub fn new(exit: Exit, message: impl std::fmt::Display) -> Self {
        CliError {
            exit,
            message: message.to_string(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// The logging flags every binary has.
#[derive(Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// Debug logs (repeat for trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr, no progress bars; the final summary or verdict (analyze and
    /// migrate's summary, validate's PASS/FAIL lines, backup's, rollback's and cutover's
    /// result) is still printed on stdout, for every binary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Installs the tracing subscriber: stderr, level from the flags unless `RUST_LOG` is set,
    /// colour only on a terminal and never with `NO_COLOR` (see [`ansi_wanted`]).
    pub fn init(&self) {
        use std::io::IsTerminal;
        use tracing_subscriber::EnvFilter;
        let default = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ));
        let _ = match self.log_format {
            LogFormat::Text => builder.with_target(false).try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
    }

    /// True when progress bars may be drawn (not quiet, stderr is a terminal).
    pub fn progress_enabled(&self) -> bool {
        use std::io::IsTerminal;
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// How progress is shown: nothing with `--quiet`, bars on a terminal, log lines otherwise.
    pub fn progress_mode(&self) -> thywill_pipeline::ProgressMode {
        use thywill_pipeline::ProgressMode;
        if self.quiet {
            ProgressMode::Silent
        } else if self.progress_enabled() {
            ProgressMode::Bars
        } else {
            ProgressMode::Log
        }
    }

    /// Runs `step` (a long step with no row count, like validate's checks or a backup's copy
    /// and verification) showing that it is alive: a spinner with the elapsed time on a
    /// terminal, a "still running" line every 10 s in a log, nothing with `--quiet`.
    pub fn while_busy<T>(&self, name: &str, step: impl FnOnce() -> T) -> T {
        let mut progress = thywill_pipeline::Progress::new(self.progress_mode());
        let stage = progress.start(name, 0);
        tracing::info!("{name}: started");
        let out = step();
        progress.finish(stage);
        out
    }
}

/// Whether log lines may carry ANSI colour codes: only when stderr is a terminal and `NO_COLOR`
/// is unset or empty (<https://no-color.org>). Log files, pipes and the cut-over's relay of its
/// children's output get plain text.
pub fn ansi_wanted(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The `--v2-db` flag of every binary that opens the v2 database (`V2_DB_URL` by default).
#[derive(Args, Clone, Debug)]
pub struct V2DbArg {
    /// The v2 database: postgresql://…, postgres://…, sqlite://PATH or sqlite://:memory:.
    #[arg(
        long = "v2-db",
        env = "V2_DB_URL",
        default_value = "sqlite://thywill_v2.db",
        value_name = "URL",
        hide_env_values = true
    )]
    pub url: String,
}

/// The quarantine guard rails of `thywill-migrate`, and of `thywill-cutover`, which passes them
/// to its migrate child: a run over a limit stops after detection, before anything is written
/// (exit 1, naming each table over it).
#[derive(Args, Clone, Debug, Default)]
pub struct QuarantineLimitArgs {
    /// Refuse to migrate (exit 1, nothing written) when a table quarantines more than N rows.
    #[arg(long, value_name = "N")]
    pub max_quarantined: Option<u64>,
    /// Refuse to migrate (exit 1, nothing written) when a table quarantines more than P percent
    /// (0 to 100) of the rows read from it.
    #[arg(long, value_name = "P", value_parser = parse_percent)]
    pub max_quarantined_percent: Option<f64>,
}

impl QuarantineLimitArgs {
    /// The pipeline's limits from the flags.
    pub fn limits(&self) -> thywill_pipeline::QuarantineLimits {
        thywill_pipeline::QuarantineLimits {
            max_rows: self.max_quarantined,
            max_percent: self.max_quarantined_percent,
        }
    }
}

/// Parses a percentage: a finite number from 0 to 100.
fn parse_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

macro_rules! coded_errors {
    ($($ty:ty),*) => {$(
        impl From<$ty> for CliError {
            fn from(e: $ty) -> Self {
                CliError::coded(e.exit_code(), e)
            }
        }
    )*};
}

coded_errors!(
    thywill_pipeline::PipelineError,
    thywill_validator::ValidateError,
    thywill_ops::OpsError
);

/// Writes the `--report-html` page at `path`: rendered whole first, then written through the
/// one atomic-write helper of the other reports, so a page under its name is always complete.
pub fn write_html_report(
    path: &Path,
    render: impl FnOnce() -> Result<String, thywill_report_html::Error>,
) -> Result<(), CliError> {
    let cannot = |e: &dyn std::fmt::Display| {
        CliError::new(
            Exit::Failed,
            format!("cannot write the HTML report {}: {e}", path.display()),
        )
    };
    let html = render().map_err(|e| cannot(&e))?;
    thywill_ops::fsutil::write_atomic_with(path, |w| w.write_all(html.as_bytes()))
        .map_err(|e| cannot(&e))
}

/// Checks, before any work, that a report can be written at `path` (given with `flag`): its
/// folder exists and accepts a new file. A report that cannot be written is unusable input
/// (exit 3) found at the start, not a failure after the migration committed.
pub fn check_report_path(flag: &str, path: Option<&std::path::Path>) -> Result<(), CliError> {
    let Some(path) = path else { return Ok(()) };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    match thywill_archive::target::writable_folder(&dir) {
        Ok(()) => Ok(()),
        Err(e) => Err(CliError::new(
            Exit::Unusable,
            format!(
                "{flag} {}: cannot write in {}: {e} (create the folder or choose another path)",
                path.display(),
                dir.display()
            ),
        )),
    }
}

/// Asks before a destructive step. With `yes` (`--yes`) it goes ahead; on a terminal it prints
/// `what` and goes ahead only when the operator types `yes`; otherwise (a script, a pipe) it
/// refuses with exit 4 asking for `--yes`, so nothing destructive happens unconfirmed.
pub fn confirm(what: &str, yes: bool) -> Result<(), CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::new(
            Exit::Refused,
            format!("{what}\nnot confirmed: stdin is not a terminal; pass --yes to go ahead"),
        ));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{what}\nType yes to go ahead: ");
    let _ = err.flush();
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::new(
            Exit::Refused,
            "not confirmed; nothing was touched",
        ))
    }
}

/// Prints the error (if any) and turns the outcome into the process exit code.
pub fn finish(result: Result<Exit, CliError>) -> ExitCode {
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.exit.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_is_a_number_from_0_to_100() {
        assert_eq!(parse_percent("0"), Ok(0.0));
        assert_eq!(parse_percent("1.5"), Ok(1.5));
        assert_eq!(parse_percent("100"), Ok(100.0));
        for bad in ["-1", "100.1", "NaN", "inf", "five", ""] {
            assert!(parse_percent(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_v1_error_exits_3_through_every_crate_error() {
        let v1 = || thywill_v1::V1Error::Missing {
            path: "thywill.db".into(),
        };
        let codes = [
            CliError::from(thywill_pipeline::PipelineError::V1(v1())).exit,
            CliError::from(thywill_validator::ValidateError::V1(v1())).exit,
            CliError::from(thywill_ops::OpsError::V1(v1())).exit,
        ];
        assert_eq!(codes, [Exit::Unusable; 3]);
    }

    #[test]
    fn an_interrupted_run_exits_128_plus_the_signal() {
        for (signal, exit) in [(2, Exit::Sigint), (15, Exit::Sigterm)] {
            let e = thywill_pipeline::PipelineError::Interrupted { signal };
            assert_eq!(CliError::from(e).exit, exit);
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(ansi_wanted(true, None));
        assert!(ansi_wanted(true, Some("".into())));
        assert!(!ansi_wanted(true, Some("1".into())));
        assert!(!ansi_wanted(false, None));
        assert!(!ansi_wanted(false, Some("1".into())));
    }
}
