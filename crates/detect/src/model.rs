//! The detector's public vocabulary: policies, rule ids, decisions, findings, counts, errors.
//! It depends on no other module of the crate: every other one may use it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What to do with what the rules find (`spec/rules.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Fix what a documented, deterministic rule can fix; quarantine the rest (the default).
    #[default]
    Repair,
    /// The seed's literal behaviour: skip every record the seed calls corrupted, repair nothing
    /// that changes identity.
    Strict,
}

impl Policy {
    /// `repair` or `strict`, as in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Repair => "repair",
            Policy::Strict => "strict",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Each variant's doc comment is also its one-line meaning ([`RuleId::meaning`]), so the two
/// cannot drift apart.
macro_rules! rule_ids {
    ($( $(#[doc = $doc:literal])+ $variant:ident => $text:literal ),* $(,)?) => {
        /// A stable rule id of `spec/rules.md` (plus `R-ATTR-UNMAPPED` of `docs/decisions.md`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum RuleId {
            $( $(#[doc = $doc])+ #[serde(rename = $text)] $variant, )*
        }

        impl RuleId {
            /// Every rule id, in the order of `spec/rules.md`.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),*];

            /// The id as written in the spec, reports and `migration_findings.rule`.
            pub fn as_str(self) -> &'static str {
                match self { $(RuleId::$variant => $text,)* }
            }

            /// Parses an id as written in the spec.
            pub fn parse(s: &str) -> Option<RuleId> {
                match s { $($text => Some(RuleId::$variant),)* _ => None }
            }

            /// What the rule finds, in one line for people (the variant's doc comment), e.g.
            /// for reports: "Display name NULL, empty or whitespace only."
            pub fn meaning(self) -> &'static str {
                match self { $(RuleId::$variant => concat!($($doc),+).trim_ascii_start(),)* }
            }
        }
    };
}

rule_ids! {
    /// A user row its own key cannot fetch (index damage or a damaged key).
    UserUnretrievable => "R-USER-UNRETRIEVABLE",
    /// Display name NULL, empty or whitespace only.
    UserEmptyName => "R-USER-EMPTY-NAME",
    /// The known corrupted test id or an exact test-account name.
    UserTestAccount => "R-USER-TEST-ACCOUNT",
    /// Names equal after NFC, trimming and case folding.
    UserDuplicate => "R-USER-DUPLICATE",
    /// A name v2 would reject or that would mislead.
    UserName => "R-USER-NAME",
    /// A parent that cannot be resolved, or the dependant of a quarantined row.
    Orphan => "R-ORPHAN",
    /// Two marks of the same prayer by the same member at the same instant.
    MarkDuplicate => "R-MARK-DUPLICATE",
    /// A timestamp column not in the canonical shape.
    Time => "R-TIME",
    /// A `text_file_path` that is unsafe or names a missing file.
    ArchivePath => "R-ARCHIVE-PATH",
    /// `religious_preference` or `target_audience` outside the v2 domain.
    Enum => "R-ENUM",
    /// Prayer text blank, or longer than 5000 characters.
    TextLength => "R-TEXT-LENGTH",
    /// Bytes that are not UTF-8 in a text column.
    Utf8 => "R-UTF8",
    /// An inviter link to a missing user, to the user itself, or closing a cycle.
    InviteTree => "R-INVITE-TREE",
    /// A role grant v2 does not carry (not admin/moderator, expired, repeated), a role row
    /// other than admin/moderator, or a `deactivated` grant folded into its member's row.
    Role => "R-ROLE",
    /// A session expired before the run, not fully authenticated, or of a deactivated member.
    Session => "R-SESSION",
    /// A `prayer_attributes` row with no v2 home (`daily_priority`, unknown names).
    AttrUnmapped => "R-ATTR-UNMAPPED",
    /// A second row of one attribute name on one prayer (v1 shows the first, smallest rowid).
    AttrDuplicate => "R-ATTR-DUPLICATE",
    /// A mark whose id another carried mark also holds after normalisation (re-keyed).
    MarkKey => "R-MARK-KEY",
    /// A prayer whose id a prayer read before it holds after normalisation (quarantined).
    PrayerKey => "R-PRAYER-KEY",
    /// A session `ip_address` that is not an address (written NULL, the session carried).
    SessionIp => "R-SESSION-IP",
    /// An invite count that is not a non-negative integer below 2^31.
    InviteCount => "R-INVITE-COUNT",
    /// A line of the v1 archive tree that the parser cannot read.
    ArchiveUnreadable => "R-ARCHIVE-UNREADABLE",
    /// An invite token that is not an invitation: a device, login or e-mail verification link.
    InviteKind => "R-INVITE-KIND",
    /// A v1 e-mail row not carried: unverified, undecryptable, not an address, another member's, or its member's.
    Email => "R-EMAIL",
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a row for one finding. Ordered from weakest to strongest: a row's
/// disposition is the strongest decision among its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Written, changed on the way (the finding keeps the original values).
    Repaired,
    /// Written from the v1 archive tree: a record the database lost (`R-ARCHIVE-ONLY` under
    /// `repair`); it has no v1 row.
    Recovered,
    /// Deliberately left in v1 (expired sessions, the implicit `user` role, unmapped attributes).
    NotCarried,
    /// An exact redundancy dropped (a second identical mark, a repeated grant).
    Deduplicated,
    /// Folded into another v2 row (a duplicate account into the surviving one).
    Merged,
    /// Not written: cannot be made valid without a human decision.
    Quarantined,
}

impl Decision {
    /// The decision as written in `migration_findings.decision`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Repaired => "repaired",
            Decision::Recovered => "recovered",
            Decision::NotCarried => "not_carried",
            Decision::Deduplicated => "deduplicated",
            Decision::Merged => "merged",
            Decision::Quarantined => "quarantined",
        }
    }

    /// True when the record is written (`Repaired`, `Recovered`).
    pub fn is_written(self) -> bool {
        matches!(self, Decision::Repaired | Decision::Recovered)
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: a row of `migration_findings` (without the run id and time, which the pipeline
/// adds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The v1 table (`user`, `prayer`, `prayermark`, …).
    pub v1_table: String,
    /// The row's key as text (`spec/interfaces.md`): the id; the display name for name-keyed
    /// users; the token for invites; `x'<hex>'` for a BLOB or non-UTF-8 key; `rowid:<n>` for NULL.
    pub v1_key: String,
    /// SQLite's rowid of the row in the snapshot (addresses rows whose key is unusable).
    pub rowid: i64,
    /// The rule that found it.
    pub rule: RuleId,
    /// What is done with the row for this rule under the run's policy.
    pub decision: Decision,
    /// Words for an operator: the bad value, the other row involved, what was done.
    pub reason: String,
}

/// The accounting law's counts of one carried table.
///
/// `read + recovered = written + merged + deduplicated + quarantined + not_carried`;
/// `repaired ⊂ written`, `recovered ⊂ written`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Rows read by full table scan.
    pub read: u64,
    /// Rows that became their own v2 row (repaired ones included).
    pub written: u64,
    /// Written rows changed on the way (a subset of `written`).
    pub repaired: u64,
    /// Rows folded into another v2 row.
    pub merged: u64,
    /// Exact redundancies dropped.
    pub deduplicated: u64,
    /// Rows not written, awaiting a human decision.
    pub quarantined: u64,
    /// Rows left in v1 by design.
    pub not_carried: u64,
    /// Records the v1 archive tree holds and the database lost, written from the archive
    /// (`repair` with `--archives-v1`; a subset of `written`, none read).
    #[serde(default)]
    pub recovered: u64,
}

impl TableCounts {
    /// True when the law holds: `read + recovered = written + merged + deduplicated +
    /// quarantined + not_carried`, `repaired + recovered <= written`.
    pub fn balances(&self) -> bool {
        self.read + self.recovered
            == self.written + self.merged + self.deduplicated + self.quarantined + self.not_carried
            && self.repaired + self.recovered <= self.written
    }
}

/// The relative file paths of a v1 archive tree (relative to its root, `/`-separated, e.g.
/// `prayers/2025/06/2025_06_29_prayer_at_1933.txt`). Implemented for `BTreeSet<String>` and
/// `HashSet<String>`; the archive crate can implement it for its own tree listing.
pub trait ArchiveFiles {
    /// True when the tree holds a regular file at `relative`.
    fn contains_file(&self, relative: &str) -> bool;
}

impl ArchiveFiles for BTreeSet<String> {
    fn contains_file(&self, relative: &str) -> bool {
        self.contains(relative)
    }
}

impl ArchiveFiles for std::collections::HashSet<String> {
    fn contains_file(&self, relative: &str) -> bool {
        self.contains(relative)
    }
}

/// The test-account names of `R-USER-TEST-ACCOUNT` when none are configured.
pub const DEFAULT_TEST_ACCOUNT_NAMES: [&str; 2] = ["Test User", "Prayer Test User"];

/// v1's default `INVITE_TOKEN_EXPIRATION_HOURS`.
pub const DEFAULT_INVITE_HOURS: u32 = 12;

/// The known corrupted user id of `R-USER-TEST-ACCOUNT`.
pub const KNOWN_CORRUPTED_USER_ID: &str = "12232388dbed436bbcc061e60e47ed99";

/// Why a detection run could not produce a plan.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// Reading the v1 snapshot failed (the error names the file and table).
    #[error(transparent)]
    V1(#[from] thywill_v1::V1Error),
    /// A temporary file of the detector (the findings' texts, the small tables' resolved rows,
    /// the marks' spilled duplicate keys) could not be written or read back.
    #[error("cannot write or read back a temporary file of the detector (in the system temp folder, TMPDIR): {0}")]
    Spill(#[from] std::io::Error),
    /// The accounting law does not balance for a table: a bug in the detector, never bad input.
    #[error("accounting law broken for v1 table `{table}`: read {read} + recovered {recovered} != written {written} + merged {merged} + deduplicated {deduplicated} + quarantined {quarantined} + not carried {not_carried} (repaired {repaired}); this is a detector bug, please report it")]
    LawBroken {
        /// The v1 table.
        table: String,
        /// Rows read.
        read: u64,
        /// Records recovered from the archive tree.
        recovered: u64,
        /// Rows the plan writes.
        written: u64,
        /// Rows repaired.
        repaired: u64,
        /// Rows merged.
        merged: u64,
        /// Rows deduplicated.
        deduplicated: u64,
        /// Rows quarantined.
        quarantined: u64,
        /// Rows not carried.
        not_carried: u64,
    },
    /// The e-mail key is not a Fernet key (32 bytes, url-safe base64): a usage error (exit 2),
    /// which the binaries check before anything is read.
    #[error("the e-mail key (EMAIL_ENCRYPTION_KEY or --v1-email-key-file) is not a Fernet key: 32 bytes in url-safe base64 (44 characters)")]
    EmailKey,
    /// The operator's decisions file cannot be applied (an entry names no quarantined row, or a
    /// value v2 would refuse): a usage error (exit 2), before anything is written.
    #[error(transparent)]
    Decisions(#[from] DecisionsError),
    /// Something wrote to the v1 database while it was being read (a row streamed a moment ago
    /// is gone): exit 3.
    #[error("the v1 database {path} changed while it was being read: stop the v1 application (maintenance mode) and run again")]
    SourceChanged {
        /// The v1 file.
        path: String,
    },
}

impl DetectError {
    /// The error of a table whose counts `c` do not balance.
    pub(crate) fn law_broken(table: &str, c: &TableCounts) -> Self {
        DetectError::LawBroken {
            table: table.to_string(),
            read: c.read,
            recovered: c.recovered,
            written: c.written,
            repaired: c.repaired,
            merged: c.merged,
            deduplicated: c.deduplicated,
            quarantined: c.quarantined,
            not_carried: c.not_carried,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RuleId;

    #[test]
    fn every_rule_has_a_one_line_meaning() {
        for r in RuleId::ALL {
            let m = r.meaning();
            assert!(!m.is_empty() && !m.starts_with(' '), "{r}: {m:?}");
            assert!(!m.contains('\n') && !m.contains("  "), "{r}: {m:?}");
        }
        assert_eq!(
            RuleId::Role.meaning(),
            "A role grant v2 does not carry (not admin/moderator, expired, repeated), a role row other than admin/moderator, or a `deactivated` grant folded into its member's row."
        );
    }
}

/// Why a decisions file cannot be used. Always before anything is written: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum DecisionsError {
    /// The file cannot be read.
    #[error("cannot read the decisions file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not TOML of the template's shape.
    #[error("the decisions file {path} is not a decisions file: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's words (line and column).
        message: String,
    },
    /// An entry cannot be applied.
    #[error("the decisions file {path}, {entry}: {message}; fix or remove the entry (thywill-analyze --decisions-template writes a fresh one)")]
    Entry {
        /// The file.
        path: String,
        /// The entry's label (`DecisionEntry::label`, or its position when it has none).
        entry: String,
        /// What is wrong.
        message: String,
    },
}
