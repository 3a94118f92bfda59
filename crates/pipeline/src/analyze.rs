//! `analyze`: the read-only data-quality report.

use crate::error::PipelineError;
use crate::progress::Progress;
use crate::report::Report;
use crate::source::{now_rfc3339, prepare};
use crate::AnalyzeOptions;

/// Analyses a v1 database (and archive tree) without writing anything: generation, counts,
/// every finding, what migration would do under the policy, feasibility.
pub fn analyze(opts: &AnalyzeOptions) -> Result<Report, PipelineError> {
    let started = now_rfc3339();
    let mut progress = Progress::new(opts.common.progress);
    let source = prepare(&opts.common, &mut progress)?;
    let mut report = source.report("thywill-analyze", &opts.common, &started, "analyzed");
    report.findings.keep_originals(source.db);
    report.stages = progress.timings().to_vec();
    Ok(report)
}
