//! `analyze`: the read-only data-quality report (and, when asked, the decisions template).

use crate::error::PipelineError;
use crate::progress::Progress;
use crate::report::Report;
use crate::source::{now_rfc3339, prepare};
use crate::AnalyzeOptions;

/// Analyses a v1 database (and archive tree) without writing anything: generation, counts,
/// every finding, what migration would do under the policy, feasibility.
pub fn analyze(opts: &AnalyzeOptions) -> Result<Report, PipelineError> {
    run(opts, false).map(|(report, _)| report)
}

/// [`analyze()`], and the editable decisions template of its quarantined rows
/// (`thywill_detect::decisions::template`), for `--decisions-template`.
pub fn analyze_with_template(opts: &AnalyzeOptions) -> Result<(Report, String), PipelineError> {
    run(opts, true).map(|(report, template)| (report, template.unwrap_or_default()))
}

fn run(opts: &AnalyzeOptions, template: bool) -> Result<(Report, Option<String>), PipelineError> {
    let started = now_rfc3339();
    let mut progress = Progress::new(opts.common.progress);
    let source = prepare(&opts.common, &mut progress)?;
    let mut report = source.report("thywill-analyze", &opts.common, &started, "analyzed");
    let template = match template {
        true => Some(thywill_detect::decisions::template::render(
            &source.plan,
            &source.db,
        )?),
        false => None,
    };
    report.findings.keep_originals(source.db);
    report.stages = progress.timings().to_vec();
    Ok((report, template))
}
