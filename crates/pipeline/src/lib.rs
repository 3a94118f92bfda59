//! # thywill-pipeline: the jobs
//!
//! Composes the v1 reader, the corruption detector, the v1 → v2 mapping, the v2 writer and the
//! archive service into the two jobs the binaries run: [`analyze()`] (read-only data-quality report)
//! and [`migrate()`] (the whole migration, atomic and idempotent). Rules live in `thywill-detect`;
//! this crate only applies the detector's plan.

mod analyze;
mod archive_marks;
mod columns;
mod error;
pub mod interrupt;
mod limits;
mod mapping;
mod migrate;
mod pipelined;
mod progress;
pub mod report;
mod source;

use std::path::PathBuf;

pub use chrono::NaiveDateTime;
pub use thywill_detect::clock::{default_local_since as clock_default_local_since, Clock};
pub use thywill_detect::decisions::Decisions;
pub use thywill_detect::{key_is_usable as email_key_is_usable, Policy};
pub use thywill_v1::EmailKey;

pub use analyze::{analyze, analyze_with_template};
pub use error::PipelineError;
pub use limits::{LimitBreach, QuarantineLimit, QuarantineLimits, TableOverLimit};
pub use migrate::migrate;
pub use progress::{Progress, ProgressMode, StageTiming};
pub use report::Report;

/// Makes the C allocator hand large freed buffers back to the system at once: every allocation
/// of 256 KiB or more gets its own mapping, unmapped when freed. glibc otherwise raises that
/// threshold as large buffers are freed (up to 32 MiB), after which the per-row state, sort
/// buffers and batches of the stages come from a heap that keeps what they free: on L that
/// was ~18 MiB of peak resident memory that held nothing (`docs/decisions.md` §14). Call it
/// once, first thing in `main`; a no-op where the C library is not glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
        // SAFETY: mallopt only changes allocator parameters; it is called before any thread
        // is started.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused; the allocator keeps its default");
        }
    }
}

/// The tool version written into reports and `migration_runs`.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Options shared by both jobs: the v1 side and the rules.
#[derive(Clone, Debug, Default)]
pub struct CommonOptions {
    /// The v1 database file.
    pub v1_db: PathBuf,
    /// The v1 archive tree, when there is one.
    pub archives_v1: Option<PathBuf>,
    /// The policy.
    pub policy: Policy,
    /// The run's clock (UTC) for expiry rules; `None` = now.
    pub as_of: Option<NaiveDateTime>,
    /// Exact test-account names; empty = the defaults.
    pub test_account_names: Vec<String>,
    /// The v1 server's clock (zone and switch to local times; UTC by default).
    pub clock: thywill_detect::clock::Clock,
    /// v1's `INVITE_TOKEN_EXPIRATION_HOURS`; `None` = v1's default, 12.
    pub invite_hours: Option<u32>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// v1's separate e-mail database (`--v1-email-db`), when its addresses are carried.
    pub email_db: Option<PathBuf>,
    /// The key its addresses are encrypted with (required with `email_db`; never printed).
    pub email_key: Option<thywill_v1::EmailKey>,
    /// The operator's decisions on quarantined rows (`--decisions`), read and checked.
    pub decisions: Option<thywill_detect::decisions::Decisions>,
}

/// Options of [`analyze()`].
#[derive(Clone, Debug, Default)]
pub struct AnalyzeOptions {
    /// The v1 side and the rules.
    pub common: CommonOptions,
}

/// Options of [`migrate()`].
#[derive(Clone, Debug, Default)]
pub struct MigrateOptions {
    /// The v1 side and the rules.
    pub common: CommonOptions,
    /// The v2 database URL.
    pub v2_url: String,
    /// Where to write the v2 archives.
    pub archives_v2: Option<PathBuf>,
    /// Leave no trace.
    pub dry_run: bool,
    /// Empty a target holding another source's data.
    pub replace: bool,
    /// Stop before writing anything when a table quarantines more than this (dry runs too).
    pub quarantine_limits: QuarantineLimits,
}
