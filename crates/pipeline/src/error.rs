//! The pipeline's error: which stage failed, on what, and the exit code it means.

/// Everything that can stop an analysis or a migration.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The v1 database cannot be used (exit 3).
    #[error(transparent)]
    V1(#[from] thywill_v1::V1Error),
    /// Detection failed (the law did not hold, or the snapshot could not be read).
    #[error(transparent)]
    Detect(#[from] thywill_detect::DetectError),
    /// The v2 target refused, could not be reached, or a write failed.
    #[error(transparent)]
    V2(#[from] thywill_v2::Error),
    /// An archive folder could not be read or written.
    #[error(transparent)]
    Archive(#[from] thywill_archive::ArchiveError),
    /// A report file could not be written.
    #[error("cannot write the report {path}: {source}")]
    Report {
        /// The report file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A temporary file of an external sort (the archive stage's marks) could not be
    /// written or read back (exit 1).
    #[error(
        "cannot write or read back a temporary sort file (in the system temp folder, TMPDIR): {0}"
    )]
    Spill(#[source] std::io::Error),
    /// Something wrote to the v1 database (or its e-mail database) while it was being read
    /// (exit 3).
    #[error("the v1 {what} {path} changed while it was being read: stop the v1 application (maintenance mode) and run again")]
    SourceChanged {
        /// Which file: `database` or `e-mail database`.
        what: &'static str,
        /// The file.
        path: String,
    },
    /// SIGINT or SIGTERM arrived: the run stopped cleanly (exit 128 + signal).
    #[error("interrupted by {}: the run stopped, its v2 transaction was rolled back and no archive folder was published", crate::interrupt::signal_name(*signal))]
    Interrupted {
        /// The signal number.
        signal: i32,
    },
    /// The migration produced something the mapping cannot express (a bug, named precisely).
    #[error("mapping {table} row {key}: {reason}")]
    Mapping {
        /// The v1 table.
        table: String,
        /// The v1 key.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// Tables quarantined more rows than the run's [`crate::QuarantineLimits`] allow: the run
    /// stopped after detection, before anything was written to v2 or to the archive folder
    /// (exit 1).
    #[error("{}", crate::limits::refusal(breaches))]
    QuarantineOverLimit {
        /// Each limit that tripped, with the tables over it.
        breaches: Vec<crate::limits::LimitBreach>,
        /// The run's report (outcome `failed`, not ok), still worth writing: it says why.
        report: Box<crate::Report>,
    },
}

impl PipelineError {
    /// The exit code of `spec/interfaces.md`: 3 unusable input, 4 refused for safety, 2 usage
    /// (a malformed URL), 1 a job that ran and failed, 128 + the signal for an interrupted run.
    pub fn exit_code(&self) -> u8 {
        match self {
            PipelineError::Interrupted { signal } => u8::try_from(128 + signal).unwrap_or(1),
            PipelineError::V1(e) | PipelineError::Detect(thywill_detect::DetectError::V1(e)) => {
                e.exit_code()
            }
            PipelineError::SourceChanged { .. }
            | PipelineError::Detect(thywill_detect::DetectError::SourceChanged { .. }) => 3,
            // A key that is not a Fernet key, or none given with --v1-email-db: usage.
            PipelineError::Detect(thywill_detect::DetectError::EmailKey) => 2,
            PipelineError::Detect(_) => 1,
            PipelineError::V2(e) => e.exit_code(),
            PipelineError::Archive(e) => e.exit_code(),
            PipelineError::Report { .. }
            | PipelineError::Mapping { .. }
            | PipelineError::Spill(_)
            | PipelineError::QuarantineOverLimit { .. } => 1,
        }
    }

    /// The report of a run that stopped but still has one for the operator to read (a run over
    /// its quarantine limits); `None` for every other error.
    pub fn report(&self) -> Option<&crate::Report> {
        match self {
            PipelineError::QuarantineOverLimit { report, .. } => Some(report),
            _ => None,
        }
    }
}
