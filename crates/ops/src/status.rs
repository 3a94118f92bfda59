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

/// Where the day stands, as the community is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A step is running (or about to): the site is closed for the move.
    Moving,
    /// Every step is done: ThyWill runs on its new system.
    Done,
    /// A step failed and the way back is being taken.
    RollingBack,
    /// The way back is done: ThyWill runs on its current system again.
    RolledBack,
    /// The way back could not finish everything: the site stays in maintenance.
    StillInMaintenance,
}

/// What members read for a phase: the headline and the plain-words paragraph under it.
fn phase_words(phase: Phase) -> (&'static str, &'static str) {
    match phase {
        Phase::Moving => (
            "ThyWill is moving to its new home",
            "Your account, your prayers and the prayers you marked all move with us. \
             You don't need to do anything.",
        ),
        Phase::Done => (
            "ThyWill is back, on its new system. Welcome home!",
            "The move is finished and ThyWill is open again. Your account, your prayers and the \
             prayers you marked came along.",
        ),
        Phase::RollingBack => (
            "We hit a problem and are putting ThyWill back as it was",
            "No prayers are lost: everything was saved safely before we started. ThyWill will \
             open again on its current system shortly.",
        ),
        Phase::RolledBack => (
            "ThyWill is back on its current system",
            "The move did not go through this time. Nothing was lost: ThyWill works as before, \
             with all your prayers. We will share a new date for the move.",
        ),
        Phase::StillInMaintenance => (
            "ThyWill is still in maintenance while our team finishes the work",
            "Your prayers are safe: everything was saved before we started. Please check back \
             a little later.",
        ),
    }
}

impl StepState {
    /// The state in members' words (the page); [`StepState::word`] is the operators'.
    fn for_members(self) -> &'static str {
        match self {
            StepState::Pending => "to do",
            StepState::Running => "in progress",
            StepState::Done => "done",
            StepState::Failed => "did not work",
            StepState::Skipped => "not done",
        }
    }
}

/// Everything the community status page shows.
#[derive(Debug, Clone, Copy)]
pub struct StatusPage<'a> {
    /// Where the day stands.
    pub phase: Phase,
    /// The steps, in order (only their labels and states are shown).
    pub steps: &'a [StepRecord],
    /// When the cut-over began (UTC).
    pub started_at: DateTime<Utc>,
    /// The planned downtime in seconds (one hour).
    pub budget_seconds: f64,
    /// The time of this update (UTC).
    pub now: DateTime<Utc>,
}

/// `02:00 UTC` / `02:00 UTC on 5 July 2026`.
fn clock(t: DateTime<Utc>, with_date: bool) -> String {
    if with_date {
        t.format("%H:%M UTC on %-d %B %Y").to_string()
    } else {
        t.format("%H:%M UTC").to_string()
    }
}

/// `one hour`, `90 minutes`.
fn duration_words(seconds: f64) -> String {
    let minutes = (seconds / 60.0).round().max(1.0) as u64;
    match minutes {
        60 => "one hour".into(),
        1 => "one minute".into(),
        m if m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// The page's stylesheet: large text on one readable column, no external font or image.
const STATUS_CSS: &str = "\
html{-webkit-text-size-adjust:100%}\
body{margin:0;padding:1.25rem;font:1.25rem/1.55 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#1d1d1b;background:#faf8f3}\
main{max-width:34rem;margin:0 auto}\
h1{font-size:1.75rem;line-height:1.25;margin:.25rem 0 1rem}\
.now{font-size:1.4rem;font-weight:600;margin:1rem 0}\
.expect{background:#fff;border-left:.35rem solid #4a6fa5;padding:.75rem 1rem;margin:1rem 0}\
ol{list-style:none;padding:0;margin:1.5rem 0}\
li{display:flex;justify-content:space-between;gap:1rem;padding:.6rem 0;border-bottom:1px solid #ddd}\
li .state{white-space:nowrap;color:#555}\
li.done .state{color:#1e6b30}li.running{font-weight:700}li.running .state{color:#1d1d1b}\
li.failed .state{color:#a51d1d}\
.small{font-size:1.05rem;color:#555}\
@media (prefers-color-scheme:dark){body{color:#eee;background:#181a1d}.expect{background:#23262b}\
li{border-color:#333}li .state,.small{color:#bbb}li.running .state{color:#eee}\
li.done .state{color:#7fd08f}li.failed .state{color:#f08a8a}}";

/// Renders the community status page: a self-contained page for a phone (viewport, large text,
/// no script, no external request; it reloads itself every 30 s) saying in plain words what is
/// happening, since when, and what members should expect. Nothing technical is shown (no step
/// names, errors, paths, addresses or run ids); every text is escaped.
pub fn render_page(page: &StatusPage) -> String {
    let (headline, words) = phase_words(page.phase);
    let running = page
        .steps
        .iter()
        .position(|s| s.state == StepState::Running);
    let back_by = page.started_at + chrono::Duration::seconds(page.budget_seconds.round() as i64);
    let planned = duration_words(page.budget_seconds);
    let since = clock(page.started_at, true);
    let now_line = match (page.phase, running) {
        (Phase::Moving, Some(i)) => format!(
            "Now: {} (step {} of {}).",
            page.steps[i].label,
            i + 1,
            page.steps.len()
        ),
        (Phase::Moving, None) => "Now: getting ready for the next step.".into(),
        (Phase::Done, _) => format!("Finished at {}.", clock(page.now, false)),
        (Phase::RollingBack, _) => "Now: putting everything back as it was.".into(),
        (Phase::RolledBack, _) => format!("Back as before since {}.", clock(page.now, false)),
        (Phase::StillInMaintenance, _) => "Our team is on it.".into(),
    };
    let expect = match page.phase {
        Phase::Moving if page.now > back_by => format!(
            "ThyWill has been closed since {since}. The move is taking longer than the {planned} \
             we planned; we are still working and will open again as soon as we can."
        ),
        Phase::Moving => format!(
            "ThyWill has been closed since {since}. We expect it to be open again by about {} \
             (the move is planned to take at most {planned}).",
            clock(back_by, false)
        ),
        Phase::Done => format!("The move began at {since}. You can use ThyWill again as usual."),
        Phase::RollingBack | Phase::StillInMaintenance => {
            format!("ThyWill has been closed since {since}.")
        }
        Phase::RolledBack => format!(
            "The move began at {since}. You can use ThyWill again as usual, just as before."
        ),
    };
    let steps: String = page
        .steps
        .iter()
        .map(|s| {
            let class = match s.state {
                StepState::Pending => "pending",
                StepState::Running => "running",
                StepState::Done => "done",
                StepState::Failed => "failed",
                StepState::Skipped => "skipped",
            };
            format!(
                "<li class=\"{class}\"><span>{}</span><span class=\"state\">{}</span></li>\n",
                escape_html(s.label),
                escape_html(s.state.for_members()),
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"color-scheme\" content=\"light dark\">\n\
<meta http-equiv=\"refresh\" content=\"30\">\n\
<title>ThyWill: {title}</title>\n<style>{STATUS_CSS}</style></head><body><main>\n\
<h1>{headline}</h1>\n<p class=\"now\">{now_line}</p>\n<p>{words}</p>\n\
<p class=\"expect\">{expect}</p>\n<ol>\n{steps}</ol>\n\
<p class=\"small\">Last updated at {updated}. This page updates itself every 30 seconds.</p>\n\
<p>Thank you for your patience and your prayers.</p>\n</main></body></html>\n",
        title = escape_html(headline),
        headline = escape_html(headline),
        now_line = escape_html(&now_line),
        words = escape_html(words),
        expect = escape_html(&expect),
        updated = clock(page.now, false),
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

    fn step(label: &'static str, state: StepState, error: Option<&str>) -> StepRecord {
        StepRecord {
            name: "migrate",
            label,
            state,
            started_at: None,
            offset_seconds: Some(3.0),
            seconds: Some(1.5),
            error: error.map(String::from),
        }
    }

    fn at(hms: &str) -> DateTime<Utc> {
        format!("2026-07-05T{hms}Z").parse().unwrap()
    }

    fn page(phase: Phase, steps: &[StepRecord], now: &str) -> String {
        render_page(&StatusPage {
            phase,
            steps,
            started_at: at("02:00:00"),
            budget_seconds: 3600.0,
            now: at(now),
        })
    }

    #[test]
    fn page_is_for_a_phone_and_self_contained() {
        let steps = [
            step("Safety backup of all data", StepState::Done, None),
            step(
                "Moving the data to the new system",
                StepState::Running,
                None,
            ),
            step("Checking the moved data", StepState::Pending, None),
        ];
        let html = page(Phase::Moving, &steps, "02:14:00");
        assert!(html
            .contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(html.contains("font:1.25rem/1.55"), "large text");
        for external in [
            "http:", "https:", "//", " src=", " href=", "url(", "@import",
        ] {
            let outside_doctype = html.replace("<!DOCTYPE html>", "");
            assert!(
                !outside_doctype.contains(external),
                "{external} in the page"
            );
        }
        assert!(!html.contains("<script"));
        assert!(html.contains("Now: Moving the data to the new system (step 2 of 3)."));
        assert!(
            html.contains("closed since 02:00 UTC on 5 July 2026"),
            "{html}"
        );
        assert!(html.contains("open again by about 03:00 UTC"));
        assert!(html.contains("at most one hour"));
        assert!(html.contains("Last updated at 02:14 UTC"));
        let late = page(Phase::Moving, &steps, "03:05:00");
        assert!(late.contains("taking longer than the one hour we planned"));
    }

    #[test]
    fn page_escapes_and_hides_everything_technical() {
        let steps = [step(
            "Moving <data>",
            StepState::Failed,
            Some("<script>secret</script> postgresql://u:pw@h/db /srv/x run 0123abcd"),
        )];
        for phase in [
            Phase::Moving,
            Phase::Done,
            Phase::RollingBack,
            Phase::RolledBack,
            Phase::StillInMaintenance,
        ] {
            let html = page(phase, &steps, "02:30:00");
            assert!(html.contains("Moving &lt;data&gt;"), "{html}");
            for hidden in ["secret", "postgresql", "/srv", "0123abcd", "migrate"] {
                assert!(!html.contains(hidden), "{hidden} shown in {phase:?}");
            }
            assert!(html.contains("did not work"));
        }
        assert!(page(Phase::Done, &[], "02:41:00").contains("Welcome home!"));
        assert!(page(Phase::RolledBack, &[], "02:41:00").contains("Nothing was lost"));
        assert_eq!(
            escape_html("We're \"back\" & <safe>"),
            "We&#39;re &quot;back&quot; &amp; &lt;safe&gt;"
        );
    }

    #[test]
    fn timeline_totals_against_the_budget() {
        let steps = [step("Moving", StepState::Done, None)];
        assert!(render_timeline(&steps, 90.0, 3600.0)
            .contains("total 00:01:30 of the 01:00:00 budget (2.5%)"));
        assert_eq!(duration_words(5400.0), "90 minutes");
        assert_eq!(duration_words(7200.0), "2 hours");
    }
}
