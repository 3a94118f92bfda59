//! # thywill-report-html: the report people look at
//!
//! One self-contained HTML page per run of `thywill-analyze`, `thywill-migrate`,
//! `thywill-validate` or `thywill-cutover` (`--report-html FILE`): the verdict first, the
//! accounting law per table as a stacked bar, every finding by rule in collapsible pages with its
//! original v1 values (a large run's page keeps to a rows budget and says how many rows of each
//! rule are only in the JSON report: [`PageOptions`]), the archive reconciliation, what is not
//! carried, and the timings. Inline CSS and SVG only: the page
//! makes no request of any kind (its Content-Security-Policy forbids them and scripts too).
//!
//! Every page is rendered from a plain view model ([`view`]) through minijinja with HTML
//! auto-escaping on for every value: v1 text is written by members, and a prayer reading
//! `<script>` shows as text. E-mail addresses are masked ([`mask_emails`]) before they reach a
//! view.
//!
//! ```no_run
//! # fn demo(report: &thywill_pipeline::Report) -> Result<(), thywill_report_html::Error> {
//! let html = thywill_report_html::render_run(report)?;
//! std::fs::write("run.html", html).expect("written");
//! # Ok(()) }
//! ```

pub mod view;

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

pub use thywill_ops::mask::mask_emails;
pub use view::{CutoverView, PageOptions, RunView, ValidationView};

/// Why a page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template failed to render (a bug, never bad input).
    #[error("cannot render the HTML report: {0}")]
    Template(#[from] minijinja::Error),
    /// The plan's temporary findings file could not be read back.
    #[error("cannot read the findings back for the HTML report: {0}")]
    Findings(#[from] thywill_detect::DetectError),
}

/// The templates, embedded: (name, source).
const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("run.html", include_str!("../templates/run.html")),
    (
        "validation.html",
        include_str!("../templates/validation.html"),
    ),
    ("cutover.html", include_str!("../templates/cutover.html")),
];

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn environment() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    // Every template is HTML, whatever its name: every value is escaped.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("num", thousands);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

fn render(template: &str, view: &impl Serialize) -> Result<String, Error> {
    let env = environment()?;
    Ok(env.get_template(template)?.render(view)?)
}

/// The page of an analyze or migrate run (verdict, law per table, findings by rule with their
/// rows and original values, archive reconciliation, what is not carried, stage timings), with
/// the default [`PageOptions`].
pub fn render_run(report: &thywill_pipeline::Report) -> Result<String, Error> {
    render_run_with(report, &PageOptions::default())
}

/// [`render_run`] with `opts`: the rows budget, and the JSON report's name for the rows a large
/// run's page leaves off.
pub fn render_run_with(
    report: &thywill_pipeline::Report,
    opts: &PageOptions,
) -> Result<String, Error> {
    render("run.html", &RunView::with_options(report, opts)?)
}

/// The page of a validation (verdict, the PASS/FAIL table of checks with their details, timings).
pub fn render_validation(report: &thywill_validator::Report) -> Result<String, Error> {
    render("validation.html", &ValidationView::new(report))
}

/// The page of a cut-over or rehearsal (verdict, the steps on a timeline against the budget, the
/// rollback).
pub fn render_cutover(report: &thywill_ops::cutover::CutoverReport) -> Result<String, Error> {
    render("cutover.html", &CutoverView::new(report))
}

#[cfg(test)]
mod tests;
