//! The cut-over's timeline: one record per step, the static HTML status page the maintenance page
//! shows the community (rewritten atomically at every step), and the text timeline for operators.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::fsutil::write_atomic_public;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// Running now.
    Running,
    /// Finished successfully.
    Done,
    /// Failed (the rollback follows).
    Failed,
    /// Not run because an earlier step failed.
    Skipped,
}

impl StepState {
    fn word(self) -> &'static str {
        match self {
            StepState::Pending => "waiting",
            StepState::Running => "in progress",
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::Skipped => "not run",
        }
    }
}

/// One step of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Machine name (`migrate`).
    pub name: &'static str,
    /// Words for the community (`Moving the data to the new system`).
    pub label: &'static str,
    /// Where it stands.
    pub state: StepState,
    /// When it started (UTC).
    pub started_at: Option<DateTime<Utc>>,
    /// Seconds since the cut-over began, at the step's start.
    pub offset_seconds: Option<f64>,
    /// How long it took.
    pub seconds: Option<f64>,
    /// What went wrong, for a failed step (operators only: never shown on the status page).
    pub error: Option<String>,
}

/// `HH:MM:SS` of a number of seconds.
pub fn hms(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the status page: the headline, every step with its state and time, the elapsed time.
/// Error details are for operators and are not shown; every text is escaped.
pub fn render_page(
    headline: &str,
    steps: &[StepRecord],
    elapsed_seconds: f64,
    now: DateTime<Utc>,
) -> String {
    let rows: String = steps
        .iter()
        .map(|s| {
            let time = s.seconds.map(hms).unwrap_or_default();
            format!(
                "<tr class=\"{cls}\"><td>{label}</td><td>{state}</td><td>{time}</td></tr>\n",
                cls = escape_html(s.state.word()).replace(' ', "-"),
                label = escape_html(s.label),
                state = escape_html(s.state.word()),
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta http-equiv=\"refresh\" content=\"30\">\n<title>ThyWill maintenance</title>\n\
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}td{{padding:.2em .8em}}\
.done{{color:#060}}.in-progress{{font-weight:bold}}.failed{{color:#900}}</style></head><body>\n\
<h1>ThyWill is moving to its new home</h1>\n<p>{headline}</p>\n\
<table><tr><th>Step</th><th>Status</th><th>Time</th></tr>\n{rows}</table>\n\
<p>Elapsed: {elapsed} of the planned hour. Last update: {now} UTC. This page refreshes itself.</p>\n\
<p>Thank you for your patience and your prayers.</p>\n</body></html>\n",
        headline = escape_html(headline),
        elapsed = hms(elapsed_seconds),
        now = now.format("%Y-%m-%d %H:%M:%S"),
    )
}

/// Writes the page to `path` atomically.
pub fn write_page(path: &Path, html: &str) -> Result<()> {
    write_atomic_public(path, html.as_bytes())
}

/// One step's line of the operator's timeline (`T+HH:MM:SS  name  state  seconds`, newline
/// included): printed as the step ends, and again in the whole timeline at the end.
pub fn timeline_line(s: &StepRecord) -> String {
    format!(
        "T+{}  {:<16} {:<12} {:>9}\n",
        s.offset_seconds
            .map(hms)
            .unwrap_or_else(|| "--:--:--".into()),
        s.name,
        s.state.word(),
        s.seconds.map(|x| format!("{x:.2} s")).unwrap_or_default(),
    )
}

/// The operator's timeline: one line per step with its start offset and duration, and the total
/// against the budget.
pub fn render_timeline(steps: &[StepRecord], total_seconds: f64, budget_seconds: f64) -> String {
    let mut out: String = steps.iter().map(timeline_line).collect();
    out.push_str(&format!(
        "total {} of the {} budget ({:.1}%)\n",
        hms(total_seconds),
        hms(budget_seconds),
        100.0 * total_seconds / budget_seconds.max(1.0)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_and_hides_errors() {
        let steps = vec![StepRecord {
            name: "migrate",
            label: "Moving <data>",
            state: StepState::Failed,
            started_at: None,
            offset_seconds: Some(3.0),
            seconds: Some(1.5),
            error: Some("<script>secret</script>".into()),
        }];
        let html = render_page("We're \"back\" & safe", &steps, 75.0, Utc::now());
        assert!(html.contains("Moving &lt;data&gt;"));
        assert!(html.contains("We&#39;re &quot;back&quot; &amp; safe"));
        assert!(!html.contains("secret"));
        assert!(html.contains("00:01:15"));
        assert!(render_timeline(&steps, 90.0, 3600.0)
            .contains("total 00:01:30 of the 01:00:00 budget (2.5%)"));
    }
}
