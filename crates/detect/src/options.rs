//! The options of a detection run: everything it depends on besides the v1 snapshot.

use chrono::NaiveDateTime;

use crate::clock::Clock;
use crate::model::{ArchiveFiles, Policy, DEFAULT_INVITE_HOURS, DEFAULT_TEST_ACCOUNT_NAMES};

/// Everything a detection run depends on besides the v1 snapshot.
pub struct DetectOptions<'a> {
    /// The policy (`repair` by default).
    pub policy: Policy,
    /// The run's clock (UTC): sessions and role grants expiring before it are not carried.
    pub as_of: NaiveDateTime,
    /// Exact display names of test accounts (`R-USER-TEST-ACCOUNT`).
    pub test_account_names: Vec<String>,
    /// The v1 archive tree's files, when the run has one (`R-ARCHIVE-PATH` existence checks and
    /// re-pointing).
    pub archive_files: Option<&'a dyn ArchiveFiles>,
    /// The v1 server's clock: the zone its local-clock columns are read in (UTC by default).
    pub clock: Clock,
    /// v1's `INVITE_TOKEN_EXPIRATION_HOURS`: an invite's `created_at` is its `expires_at` less
    /// this (12 by default).
    pub invite_hours: u32,
    /// v1's e-mail database and its key (`--v1-email-db`), when the run has them (`R-EMAIL`).
    pub email: Option<crate::rules::email::EmailInput<'a>>,
    /// The operator's decisions on quarantined rows (`--decisions`), when the run has them.
    pub decisions: Option<&'a crate::decisions::Decisions>,
    /// The v1 archive tree's prayer files (`--archives-v1`), when the run has them: under
    /// `repair` a prayer's damaged text, time or author is restored from its witness file
    /// (decisions.md §50).
    pub witnesses: Option<crate::reconcile::Witnesses<'a>>,
}

impl<'a> DetectOptions<'a> {
    /// Options with the given policy and clock, the default test-account names and no archive
    /// tree.
    pub fn new(policy: Policy, as_of: NaiveDateTime) -> Self {
        DetectOptions {
            policy,
            as_of,
            test_account_names: DEFAULT_TEST_ACCOUNT_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            archive_files: None,
            clock: Clock::utc(),
            invite_hours: DEFAULT_INVITE_HOURS,
            email: None,
            decisions: None,
            witnesses: None,
        }
    }
}
