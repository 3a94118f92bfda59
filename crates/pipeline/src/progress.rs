//! Progress for long stages: a bar per stage on a terminal, periodic log lines otherwise, and
//! the stage timings that end up in the report.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// How progress is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars on stderr (a terminal).
    Bars,
    /// A log line every few seconds (not a terminal).
    #[default]
    Log,
    /// Nothing (`--quiet`, tests).
    Silent,
}

/// One finished stage, as reported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StageTiming {
    /// Stage name (`detect`, `write`, `archives`, …).
    pub name: String,
    /// Wall seconds.
    pub seconds: f64,
    /// Rows (or files) the stage handled.
    pub rows: u64,
}

/// Rows counted between two looks at the bar or the log clock (reading the clock per row cost
/// 2–3% of the write stage).
const SHOW_EVERY: u64 = 1024;

/// Collects stage timings and shows progress.
#[derive(Debug, Default)]
pub struct Progress {
    mode: ProgressMode,
    stages: Vec<StageTiming>,
}

/// A running stage; call [`Stage::inc`] as rows pass and [`Progress::finish`] at the end.
pub struct Stage {
    name: String,
    started: Instant,
    rows: u64,
    /// Rows counted but not yet shown: the bar and the log clock are looked at once per
    /// [`SHOW_EVERY`] rows, not once per row.
    unshown: u64,
    bar: Option<ProgressBar>,
    last_log: Instant,
    log: bool,
}

impl Progress {
    /// A collector showing progress in `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        Progress {
            mode,
            stages: Vec::new(),
        }
    }

    /// Starts a stage expected to handle about `expected` rows (0 when unknown).
    pub fn start(&self, name: &str, expected: u64) -> Stage {
        let bar = (self.mode == ProgressMode::Bars).then(|| {
            let bar = if expected > 0 {
                ProgressBar::new(expected)
            } else {
                ProgressBar::new_spinner()
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>9} [{bar:30}] {human_pos}/{human_len} rows {rate} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} rows/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        });
        tracing::debug!(stage = name, expected, "stage started");
        Stage {
            name: name.to_string(),
            started: Instant::now(),
            rows: 0,
            unshown: 0,
            bar,
            last_log: Instant::now(),
            log: self.mode == ProgressMode::Log,
        }
    }

    /// Ends a stage and records its timing.
    pub fn finish(&mut self, mut stage: Stage) -> &StageTiming {
        stage.show();
        if let Some(bar) = &stage.bar {
            bar.finish_and_clear();
        }
        let seconds = stage.started.elapsed().as_secs_f64();
        tracing::info!(stage = %stage.name, rows = stage.rows, seconds = format!("{seconds:.3}"), "stage done");
        self.stages.push(StageTiming {
            name: stage.name,
            seconds,
            rows: stage.rows,
        });
        self.stages.last().expect("just pushed")
    }

    /// The finished stages in order.
    pub fn timings(&self) -> &[StageTiming] {
        &self.stages
    }
}

impl Stage {
    /// Counts `n` more rows; draws the bar or, every 5 s, logs a line.
    pub fn inc(&mut self, n: u64) {
        self.rows += n;
        self.unshown += n;
        if self.unshown >= SHOW_EVERY {
            self.show();
        }
    }

    fn show(&mut self) {
        let n = std::mem::take(&mut self.unshown);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.log && self.last_log.elapsed() >= Duration::from_secs(5) {
            self.last_log = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(stage = %self.name, rows = self.rows, rate = format!("{:.0} rows/s", self.rows as f64 / secs), "progress");
        }
    }

    /// Rows counted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}
