//! The `|`-separated v1 logs (`spec/v1-real.md` §2): the live `sessions/`, `roles/` and
//! `system/…_invite_usage.txt` files and the export-all files (`prayers/prayer_marks.txt`,
//! `invites/invite_tokens.txt`, `invites/invite_token_usage.txt`). All share the monthly reader
//! ([`super::V1MonthlyLog`]): a header, a `Format: …` line, blank lines, then one record a line
//! (an export-all file without its final newline). Each format says how one record line reads.
//!
//! Fields are split from the left, the last field keeping any further `|` (a details text, a
//! name), except where v1 left a free text in the middle (a session's device).

use chrono::NaiveDate;

use super::monthly::V1LogFormat;
use super::time::V1Time;

/// The first `n` fields of `line` split at `|`, the last one holding the rest; `None` when the
/// line has fewer.
fn fields(line: &str, n: usize) -> Option<Vec<&str>> {
    let parts: Vec<&str> = line.splitn(n, '|').collect();
    (parts.len() == n).then_some(parts)
}

/// `sessions/YYYY_MM_sessions.txt` lines:
/// `<created>|<session id>|<username>|<expires>|<device>|<ip>|yes|no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1SessionRecord {
    /// Creation time (UTC, `%B %d %Y at %H:%M`).
    pub created: V1Time,
    /// The session id.
    pub session_id: String,
    /// The member's display name.
    pub username: String,
    /// Expiry as written (UTC, usually `%B %d %Y at %H:%M`).
    pub expires: String,
    /// The user agent (`|` in it replaced by `_` live, kept by export-all).
    pub device: String,
    /// The IP address, `''` or `unknown`.
    pub ip: String,
    /// `yes` or `no` as written.
    pub fully_authenticated: String,
}

/// The format of `sessions/YYYY_MM_sessions.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionLog;

impl V1LogFormat for SessionLog {
    type Record = V1SessionRecord;
    const EXPECTED: &'static str =
        "`<created>|<session id>|<username>|<expires>|<device>|<ip>|yes|no`";

    fn parse(line: &str, _: Option<NaiveDate>) -> Option<V1SessionRecord> {
        let head = fields(line, 5)?;
        let created = V1Time::parse_any(head[0])?;
        let (rest, auth) = head[4].rsplit_once('|')?;
        let (device, ip) = rest.rsplit_once('|')?;
        Some(V1SessionRecord {
            created,
            session_id: head[1].into(),
            username: head[2].into(),
            expires: head[3].into(),
            device: device.into(),
            ip: ip.into(),
            fully_authenticated: auth.into(),
        })
    }

    fn render(r: &V1SessionRecord) -> String {
        [
            r.created.raw.as_str(),
            &r.session_id,
            &r.username,
            &r.expires,
            &r.device,
            &r.ip,
            &r.fully_authenticated,
        ]
        .join("|")
    }
}

/// `roles/YYYY_MM_role_assignments.txt` lines:
/// `<ISO UTC>|<user>|<role>|<action>|<granted by>|<expires at>|<details>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1RoleAssignment {
    /// When (UTC, ISO).
    pub at: V1Time,
    /// The member (display name).
    pub user: String,
    /// The role's name (`deactivated` or `user` at HEAD).
    pub role: String,
    /// The action (`assigned`).
    pub action: String,
    /// The admin who did it.
    pub granted_by: String,
    /// Expiry as written (empty at HEAD).
    pub expires_at: String,
    /// Free text (`Deactivated by admin <admin>`, `User reactivated by admin`).
    pub details: String,
}

/// The format of `roles/YYYY_MM_role_assignments.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleAssignmentLog;

impl V1LogFormat for RoleAssignmentLog {
    type Record = V1RoleAssignment;
    const EXPECTED: &'static str =
        "`<timestamp>|<user>|<role>|<action>|<granted by>|<expires at>|<details>`";

    fn parse(line: &str, _: Option<NaiveDate>) -> Option<V1RoleAssignment> {
        let f = fields(line, 7)?;
        Some(V1RoleAssignment {
            at: V1Time::parse_any(f[0])?,
            user: f[1].into(),
            role: f[2].into(),
            action: f[3].into(),
            granted_by: f[4].into(),
            expires_at: f[5].into(),
            details: f[6].into(),
        })
    }

    fn render(r: &V1RoleAssignment) -> String {
        [
            r.at.raw.as_str(),
            &r.user,
            &r.role,
            &r.action,
            &r.granted_by,
            &r.expires_at,
            &r.details,
        ]
        .join("|")
    }
}

/// `system/YYYY_MM_invite_usage.txt` lines:
/// `<ISO local>|<token>|<used by>|<created by>|<action>`; an empty `used by` is a creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1InviteUsage {
    /// When (server local time, ISO).
    pub at: V1Time,
    /// The invite token.
    pub token: String,
    /// Who claimed it (display name); empty for a token's creation.
    pub used_by: String,
    /// The token's creator.
    pub created_by: String,
    /// The action (`token_used`).
    pub action: String,
}

impl V1InviteUsage {
    /// Whether the line records a claim (a member named), not a token's creation.
    pub fn is_claim(&self) -> bool {
        !self.used_by.is_empty()
    }
}

/// The format of `system/YYYY_MM_invite_usage.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct InviteUsageLog;

impl V1LogFormat for InviteUsageLog {
    type Record = V1InviteUsage;
    const EXPECTED: &'static str = "`<timestamp>|<token>|<used by>|<created by>|<action>`";

    fn parse(line: &str, _: Option<NaiveDate>) -> Option<V1InviteUsage> {
        let f = fields(line, 5)?;
        Some(V1InviteUsage {
            at: V1Time::parse_any(f[0])?,
            token: f[1].into(),
            used_by: f[2].into(),
            created_by: f[3].into(),
            action: f[4].into(),
        })
    }

    fn render(r: &V1InviteUsage) -> String {
        [
            r.at.raw.as_str(),
            &r.token,
            &r.used_by,
            &r.created_by,
            &r.action,
        ]
        .join("|")
    }
}

/// export-all's `prayers/prayer_marks.txt` lines: `<id>|<created at>|<prayer id>|<username>`,
/// the only archive that carries mark ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ExportMark {
    /// The mark's id.
    pub id: String,
    /// The row's created_at truncated to the minute (its own clock).
    pub created: V1Time,
    /// The prayer id.
    pub prayer_id: String,
    /// The member.
    pub username: String,
}

/// The format of `prayers/prayer_marks.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportMarks;

impl V1LogFormat for ExportMarks {
    type Record = V1ExportMark;
    const EXPECTED: &'static str = "`<id>|<created at>|<prayer id>|<username>`";

    fn parse(line: &str, _: Option<NaiveDate>) -> Option<V1ExportMark> {
        let f = fields(line, 4)?;
        Some(V1ExportMark {
            id: f[0].into(),
            created: V1Time::parse_any(f[1])?,
            prayer_id: f[2].into(),
            username: f[3].into(),
        })
    }

    fn render(r: &V1ExportMark) -> String {
        [r.id.as_str(), &r.created.raw, &r.prayer_id, &r.username].join("|")
    }
}

/// export-all's `invites/invite_tokens.txt` lines:
/// `<token>|<created by>|<usage count>|<max uses or unlimited>|<expires at>|<used by or none>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ExportInviteToken {
    /// The token.
    pub token: String,
    /// Its creator.
    pub created_by: String,
    /// How many times it was used.
    pub usage_count: u64,
    /// The limit as written (a number or `unlimited`).
    pub max_uses: String,
    /// Expiry as written.
    pub expires_at: String,
    /// The member it was used by, or `none`.
    pub used_by: String,
}

/// The format of `invites/invite_tokens.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportInviteTokens;

impl V1LogFormat for ExportInviteTokens {
    type Record = V1ExportInviteToken;
    const EXPECTED: &'static str =
        "`<token>|<created by>|<usage count>|<max uses>|<expires at>|<used by>`";

    fn parse(line: &str, _: Option<NaiveDate>) -> Option<V1ExportInviteToken> {
        let f = fields(line, 6)?;
        let usage = f[2];
        if usage.is_empty() || !usage.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(V1ExportInviteToken {
            token: f[0].into(),
            created_by: f[1].into(),
            usage_count: usage.parse().ok()?,
            max_uses: f[3].into(),
            expires_at: f[4].into(),
            used_by: f[5].into(),
        })
    }

    fn render(r: &V1ExportInviteToken) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            r.token, r.created_by, r.usage_count, r.max_uses, r.expires_at, r.used_by
        )
    }
}

/// export-all's `invites/invite_token_usage.txt` lines:
/// `<claimed at>|<token>|<user id>|<ip address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ExportInviteUsage {
    /// When (UTC, the row's clock).
    pub claimed: V1Time,
    /// The token.
    pub token: String,
    /// The member.
    pub user: String,
    /// The IP address as written.
    pub ip: String,
}

/// The format of `invites/invite_token_usage.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportInviteUsage;

impl V1LogFormat for ExportInviteUsage {
    type Record = V1ExportInviteUsage;
    const EXPECTED: &'static str = "`<claimed at>|<token>|<user id>|<ip address>`";

    fn parse(line: &str, _: Option<NaiveDate>) -> Option<V1ExportInviteUsage> {
        let f = fields(line, 4)?;
        Some(V1ExportInviteUsage {
            claimed: V1Time::parse_any(f[0])?,
            token: f[1].into(),
            user: f[2].into(),
            ip: f[3].into(),
        })
    }

    fn render(r: &V1ExportInviteUsage) -> String {
        [r.claimed.raw.as_str(), &r.token, &r.user, &r.ip].join("|")
    }
}
