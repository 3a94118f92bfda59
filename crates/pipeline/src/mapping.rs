//! The v1 → v2 mapping: the detector's resolved values become v2 rows and archive records.
//! No rule is decided here; every value comes from the plan.

use thywill_archive::{ArchiveAnswer, ArchivePrayer, ArchiveUser, InvitedBy};
use thywill_detect::{
    ResolvedFlag, ResolvedInvite, ResolvedMark, ResolvedPrayer, ResolvedRoleGrant, ResolvedSession,
    ResolvedUser,
};
use thywill_v2::rows::{ContentFlag, Invite, Prayer, PrayerMark, Session, User, UserRole};

/// `users` row; `archive_path` is the member's v2 archive file when archives are written.
pub(crate) fn user(u: &ResolvedUser, archive_path: Option<String>) -> User {
    User {
        id: u.id.clone(),
        display_name: u.display_name.clone(),
        email: u.email.clone(),
        religious_preference: u.religious_preference.clone(),
        prayer_style: u.prayer_style.clone(),
        invited_by_user_id: u.invited_by_user_id.clone(),
        created_at: u.created_at,
        updated_at: u.created_at,
        is_active: u.is_active,
        is_supporter: u.is_supporter,
        supporter_since: u.supporter_since,
        text_archive_path: archive_path,
        supporter_type: u.supporter_type.clone(),
        welcome_dismissed: u.welcome_dismissed,
        email_verified_at: u.email_verified_at,
    }
}

/// `prayers` row (takes the resolved prayer: its texts move into the row, not copied).
pub(crate) fn prayer(p: ResolvedPrayer, archive_path: Option<String>) -> Prayer {
    Prayer {
        id: p.id,
        author_id: p.author_id,
        text: p.text,
        generated_prayer: p.generated_prayer,
        project_tag: p.project_tag,
        target_audience: p.target_audience,
        created_at: p.created_at,
        updated_at: p.updated_at,
        is_archived: p.is_archived,
        is_answered: p.is_answered,
        answered_at: p.answered_at,
        testimony: p.testimony,
        text_archive_path: archive_path,
    }
}

/// `content_flags` row of a prayer v1 had flagged.
pub(crate) fn content_flag(prayer_id: &str, f: &ResolvedFlag) -> ContentFlag {
    ContentFlag {
        id: f.id.clone(),
        prayer_id: prayer_id.to_string(),
        flagged_by_user_id: f.flagged_by_user_id.clone(),
        reason: Some(f.reason.to_string()),
        flagged_at: f.flagged_at,
        resolved_at: None,
        resolved_by_user_id: None,
        resolution_action: None,
    }
}

/// `prayer_marks` row (takes the resolved mark: one per v1 mark, its ids move into the row).
pub(crate) fn mark(m: ResolvedMark) -> PrayerMark {
    PrayerMark {
        id: m.id,
        prayer_id: m.prayer_id,
        user_id: m.user_id,
        marked_at: m.marked_at,
    }
}

/// `user_roles` row.
pub(crate) fn role_grant(g: &ResolvedRoleGrant) -> UserRole {
    UserRole {
        user_id: g.user_id.clone(),
        role: g.role.clone(),
        granted_at: g.granted_at,
        granted_by_user_id: g.granted_by_user_id.clone(),
    }
}

/// `invites` row (the counts are in v2's range: `R-INVITE-COUNT` saw to it).
pub(crate) fn invite(i: &ResolvedInvite) -> Invite {
    Invite {
        id: i.id.clone(),
        token: i.token.clone(),
        created_by_user_id: i.created_by_user_id.clone(),
        invited_display_name: None,
        created_at: i.created_at,
        expires_at: i.expires_at,
        max_uses: i.max_uses,
        use_count: i.use_count,
        used_at: i.used_at,
        used_by_user_id: i.used_by_user_id.clone(),
        is_admin_token: i.is_admin_token,
    }
}

/// `sessions` row (the address is canonical or NULL: `R-SESSION-IP` saw to it).
pub(crate) fn session(s: &ResolvedSession) -> Session {
    Session {
        id: s.id.clone(),
        user_id: s.user_id.clone(),
        created_at: s.created_at,
        expires_at: s.expires_at,
        last_seen_at: s.last_seen_at,
        user_agent: s.user_agent.clone(),
        ip_address: s.ip_address.clone(),
    }
}

/// The archive record of a member. v1 recorded the inviter or nothing.
pub(crate) fn archive_user(u: &ResolvedUser, inviter_name: Option<&str>) -> ArchiveUser {
    ArchiveUser {
        id: u.id.clone(),
        display_name: u.display_name.clone(),
        religious_preference: u.religious_preference.clone(),
        // Rendered `on file`: the address never reaches the tree.
        email: u.email.clone(),
        invited_by: match inviter_name {
            Some(n) => InvitedBy::User(n.to_string()),
            None => InvitedBy::MigratedFromV1,
        },
        created_at: u.created_at,
    }
}

/// The archive record of a prayer (marks are attached by the caller).
pub(crate) fn archive_prayer(p: &ResolvedPrayer, author_name: &str) -> ArchivePrayer {
    ArchivePrayer {
        id: p.id.clone(),
        author_name: author_name.to_string(),
        target_audience: p.target_audience.clone(),
        created_at: p.created_at,
        text: p.text.clone(),
        generated_prayer: p.generated_prayer.clone(),
        marks: Vec::new(),
        answer: match (p.is_answered, p.answered_at) {
            (true, Some(at)) => Some(ArchiveAnswer {
                answered_at: at,
                testimony: p.testimony.clone(),
            }),
            _ => None,
        },
    }
}
