//! Plain row types of the v2 tables: what the pipeline builds, the writer writes and the validator
//! reads back. Ids are 32-character lower-case hex `String`s, timestamps are UTC
//! [`chrono::NaiveDateTime`], nullable columns are `Option`s.
//!
//! Each type implements [`V2Row`], whose [`V2Row::check`] holds the v2 constraints in Rust: the
//! writer refuses a row that fails it (naming the table and key) before anything reaches the
//! database.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schema::*;

/// A v2 user (`users`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub struct User {
    /// 32-hex id.
    pub id: String,
    /// Unique login name, 1..=100 characters, not blank.
    pub display_name: String,
    /// Unique e-mail (v1 has none).
    pub email: Option<String>,
    /// `christian`, `unspecified` or `other`.
    pub religious_preference: String,
    /// Free-form prayer style.
    pub prayer_style: Option<String>,
    /// The inviting member.
    pub invited_by_user_id: Option<String>,
    /// Registration time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// Active account.
    pub is_active: bool,
    /// Supporter flag.
    pub is_supporter: bool,
    /// Supporter since (UTC).
    pub supporter_since: Option<NaiveDateTime>,
    /// Relative path of the member's v2 archive file.
    pub text_archive_path: Option<String>,
    /// v1's supporter badges: comma-separated badge keys (`supporter`, `financial`, …).
    pub supporter_type: Option<String>,
    /// The member dismissed the welcome message.
    pub welcome_dismissed: bool,
    /// When the member's e-mail address was verified (UTC).
    pub email_verified_at: Option<NaiveDateTime>,
}

/// A v2 prayer request (`prayers`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = prayers, treat_none_as_default_value = false)]
pub struct Prayer {
    /// 32-hex id.
    pub id: String,
    /// The author (a user id).
    pub author_id: String,
    /// The request: not blank, at most 5000 characters.
    pub text: String,
    /// The generated community prayer.
    pub generated_prayer: Option<String>,
    /// Project tag.
    pub project_tag: Option<String>,
    /// `all` or `christians_only`.
    pub target_audience: String,
    /// Submission time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// Archived by its author.
    pub is_archived: bool,
    /// Answered; then `answered_at` is set.
    pub is_answered: bool,
    /// When it was answered.
    pub answered_at: Option<NaiveDateTime>,
    /// The answer's testimony (only on an answered prayer).
    pub testimony: Option<String>,
    /// Relative path of the prayer's v2 archive file.
    pub text_archive_path: Option<String>,
}

/// One act of prayer (`prayer_marks`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = prayer_marks, treat_none_as_default_value = false)]
pub struct PrayerMark {
    /// 32-hex id.
    pub id: String,
    /// The prayer prayed for.
    pub prayer_id: String,
    /// The member who prayed.
    pub user_id: String,
    /// When (UTC).
    pub marked_at: NaiveDateTime,
}

/// A role grant (`user_roles`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = user_roles, treat_none_as_default_value = false)]
pub struct UserRole {
    /// The member.
    pub user_id: String,
    /// `admin` or `moderator`.
    pub role: String,
    /// Grant time (UTC).
    pub granted_at: NaiveDateTime,
    /// The granting member.
    pub granted_by_user_id: Option<String>,
}

/// An invitation token (`invites`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = invites, treat_none_as_default_value = false)]
pub struct Invite {
    /// 32-hex id.
    pub id: String,
    /// The token, 1..=64 characters, unique.
    pub token: String,
    /// The inviting member.
    pub created_by_user_id: Option<String>,
    /// Name the invite was made out to.
    pub invited_display_name: Option<String>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Expiry (UTC), later than `created_at`.
    pub expires_at: NaiveDateTime,
    /// Maximum number of uses (NULL: unlimited).
    pub max_uses: Option<i32>,
    /// Uses so far (>= 0).
    pub use_count: i32,
    /// Last use (UTC).
    pub used_at: Option<NaiveDateTime>,
    /// The member who used it.
    pub used_by_user_id: Option<String>,
    /// Admin token.
    pub is_admin_token: bool,
}

/// A live login session (`sessions`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
pub struct Session {
    /// Session id, 1..=64 printable ASCII characters.
    pub id: String,
    /// The member.
    pub user_id: String,
    /// Login time (UTC).
    pub created_at: NaiveDateTime,
    /// Expiry (UTC), later than `created_at`.
    pub expires_at: NaiveDateTime,
    /// Last activity (UTC).
    pub last_seen_at: NaiveDateTime,
    /// Browser user agent.
    pub user_agent: Option<String>,
    /// Client IP address in canonical form (see [`canonical_ip`]).
    pub ip_address: Option<String>,
}

/// A moderation flag (`content_flags`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = content_flags, treat_none_as_default_value = false)]
pub struct ContentFlag {
    /// 32-hex id.
    pub id: String,
    /// The flagged prayer.
    pub prayer_id: String,
    /// The flagging member (NULL for flags carried over from v1).
    pub flagged_by_user_id: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// When (UTC).
    pub flagged_at: NaiveDateTime,
    /// Resolution time; all three resolution columns are set together or not at all.
    pub resolved_at: Option<NaiveDateTime>,
    /// Resolving moderator.
    pub resolved_by_user_id: Option<String>,
    /// What was done.
    pub resolution_action: Option<String>,
}

/// Status of a migration run (`migration_runs.status`).
pub mod run_status {
    /// The run is in progress (or died: a SIGKILLed run leaves this).
    pub const RUNNING: &str = "running";
    /// The run committed.
    pub const SUCCEEDED: &str = "succeeded";
    /// The run failed and its transaction was rolled back.
    pub const FAILED: &str = "failed";
    /// The run's data was removed by a rollback.
    pub const ROLLED_BACK: &str = "rolled_back";
    /// The run's data was emptied by a later `--replace` run.
    pub const REPLACED: &str = "replaced";
}

/// One migration run (`migration_runs`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = migration_runs, treat_none_as_default_value = false)]
pub struct MigrationRun {
    /// 32-hex run id.
    pub run_id: String,
    /// Start (UTC).
    pub started_at: NaiveDateTime,
    /// End (UTC).
    pub finished_at: Option<NaiveDateTime>,
    /// One of [`run_status`].
    pub status: String,
    /// Version of the tool that ran.
    pub tool_version: String,
    /// The v1 file.
    pub source_path: String,
    /// sha256 (hex) of the v1 file.
    pub source_sha256: String,
    /// v1 schema generation (`G0`..`G3`).
    pub source_generation: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Counts as JSON.
    pub counts_json: String,
    // `decisions_sha256` (migration 2026-12-04-000019) is read and written on its own
    // (`AnyConn::run_decisions`, `Load::record_decisions`): the tools that read runs without
    // upgrading the schema first (rollback, `thywill-runs`) still read an older target.
}

/// One v1 key → v2 id mapping (`migration_id_map`).
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = migration_id_map, treat_none_as_default_value = false)]
pub struct IdMapEntry {
    /// The run that wrote it (the writer sets it to the load's run id).
    pub run_id: String,
    /// Entity (`user`, `prayer`, ...).
    pub entity: String,
    /// v1 key as text.
    pub v1_key: String,
    /// The v2 id it became (32-hex).
    pub v2_id: String,
}

/// Decisions of a finding (`migration_findings.decision`).
pub const DECISIONS: [&str; 6] = [
    "repaired",
    "recovered",
    "merged",
    "deduplicated",
    "quarantined",
    "not_carried",
];

/// One finding (`migration_findings`); the database assigns its integer `id` in write order.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable,
)]
#[diesel(table_name = migration_findings, treat_none_as_default_value = false)]
pub struct Finding {
    /// The run that wrote it (the writer sets it to the load's run id).
    pub run_id: String,
    /// v1 table.
    pub v1_table: String,
    /// v1 key as text.
    pub v1_key: String,
    /// Rule id.
    pub rule: String,
    /// One of [`DECISIONS`].
    pub decision: String,
    /// Words for an operator.
    pub reason: String,
    /// The v1 row as JSON.
    pub original_json: String,
    /// When it was recorded (UTC).
    pub created_at: NaiveDateTime,
}

/// The canonical text of an IP address as PostgreSQL's `inet` prints it (`None` if `s` is not an
/// address, optionally with a `/prefix`). Session rows must hold addresses in this form so that they
/// read back identically on both backends.
pub fn canonical_ip(s: &str) -> Option<String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: std::net::IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix {
        None => Some(ip.to_string()),
        Some(p) => {
            let p: u8 = p.trim().parse().ok()?;
            if p > max {
                None
            } else if p == max {
                Some(ip.to_string())
            } else {
                Some(format!("{ip}/{p}"))
            }
        }
    }
}
