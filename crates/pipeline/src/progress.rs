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
    _ticker: Option<Ticker>,
}

/// How often a stage with no row count logs that it is still running.
const TICK_EVERY: Duration = Duration::from_secs(10);

/// A spinner that moves by itself (a stage whose rows are only known at its end: the detection,
/// the commit's key and index builds), with the elapsed time.
fn spinner(name: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} {spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(name.to_string());
    bar.set_message("working");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A thread logging "still running" every [`TICK_EVERY`] until dropped (with the stage).
struct Ticker {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(name: &str) -> Ticker {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let name = name.to_string();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(TICK_EVERY)
            {
                tracing::info!(stage = %name, seconds = started.elapsed().as_secs(), "still running");
            }
        });
        Ticker {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
            if expected == 0 {
                return spinner(name);
            }
            let bar = ProgressBar::new(expected);
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
        let log = self.mode == ProgressMode::Log;
        Stage {
            name: name.to_string(),
            started: Instant::now(),
            rows: 0,
            unshown: 0,
            bar,
            last_log: Instant::now(),
            log,
            // A stage that counts nothing as it goes still says it is alive in a log.
            _ticker: (log && expected == 0).then(|| Ticker::start(name)),
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

#[cfg(test)]
mod ticker_tests {
    use super::*;

    #[test]
    fn a_stage_without_rows_stops_its_ticker_when_it_ends() {
        let mut p = Progress::new(ProgressMode::Log);
        let started = Instant::now();
        let stage = p.start("detect", 0);
        assert!(
            stage._ticker.is_some(),
            "a log-mode stage with no count ticks"
        );
        p.finish(stage);
        assert!(
            started.elapsed() < TICK_EVERY,
            "finishing waits for no tick"
        );
        let counted = p.start("write", 10);
        assert!(
            counted._ticker.is_none(),
            "a counted stage logs by its rows"
        );
        p.finish(counted);
    }

    /// On a terminal a stage with no expected count is a spinner (no length), never a bar stuck
    /// at `0/0 rows` for the whole stage; a counted stage is a bar of that length.
    #[test]
    fn a_stage_without_an_expected_count_is_a_spinner_on_a_terminal() {
        let mut p = Progress::new(ProgressMode::Bars);
        let unknown = p.start("detect", 0);
        let bar = unknown.bar.as_ref().expect("a bar in Bars mode");
        assert_eq!(bar.length(), None, "a spinner has no length");
        p.finish(unknown);
        let counted = p.start("write", 10);
        assert_eq!(counted.bar.as_ref().and_then(|b| b.length()), Some(10));
        p.finish(counted);
    }
}
