//! The small tables, read whole: `role`, `user_roles` (`R-ROLE`), `invitetoken`, `session`
//! (`R-SESSION`), with `R-ORPHAN`, `R-TIME` and `R-UTF8` on their columns.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use thywill_v1::{InviteRow, RoleRow, SessionRow, UserRoleRow, V1Value};

use super::users::Users;
use super::{
    check_time, check_utf8, key_text, require_parent, resolve_parent, show, Ctx, NoShape, Parent,
    RowFindings, TimeOutcome,
};
use crate::ids::{hex_id, v5};
use crate::keys::{normalize, KeyIndex, KeyKind};
use crate::model::{Decision, DetectError, RuleId};
use crate::plan::{ResolvedInvite, ResolvedRoleGrant, ResolvedSession};
use crate::stored::{RowsWriter, StoredRows};
use crate::time;

/// v1's default invite-token lifetime (`created_at = expires_at − 12 h`).
const INVITE_LIFETIME_HOURS: i64 = 12;

/// The v2 role a v1 role name maps to (`admin`, `moderator`), if any.
fn carried_role(name: &V1Value) -> Option<&'static str> {
    match name.to_text_lossy()?.trim().to_ascii_lowercase().as_str() {
        "admin" => Some("admin"),
        "moderator" => Some("moderator"),
        _ => None,
    }
}

fn at(o: TimeOutcome) -> Option<NaiveDateTime> {
    match o {
        TimeOutcome::At(t) => Some(t),
        _ => None,
    }
}

/// An IP address in the one text form both v2 backends read back alike (PostgreSQL's `inet`
/// output: the address alone for a single host, `addr/prefix` otherwise); `None` when `s` is not
/// an address.
fn canonical_ip(s: &str) -> Option<String> {
    let s = s.trim();
    let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
    let ip: std::net::IpAddr = addr.parse().ok()?;
    let host_bits: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix {
        None => host_bits,
        Some(p) => p.trim().parse().ok().filter(|p| *p <= host_bits)?,
    };
    Some(if prefix == host_bits {
        ip.to_string()
    } else {
        format!("{ip}/{prefix}")
    })
}

/// The resolved small tables.
pub(crate) struct Small {
    pub(crate) grants: StoredRows<ResolvedRoleGrant>,
    pub(crate) invites: StoredRows<ResolvedInvite>,
    pub(crate) sessions: StoredRows<ResolvedSession>,
}

fn member(users: &Users, v: &V1Value) -> Parent<u128> {
    resolve_parent(&users.index, users.kind, v, |i| users.target(i))
}

fn optional_member(users: &Users, v: &V1Value) -> Option<u128> {
    match member(users, v) {
        Parent::Found(t) => Some(t),
        _ => None,
    }
}

/// Roles, grants, invites and sessions.
pub(crate) fn run(ctx: &mut Ctx<'_>, users: &Users) -> Result<Small, DetectError> {
    let roles = roles(ctx)?;
    let grants = grants(ctx, users, &roles)?;
    let invites = invites(ctx, users)?;
    let sessions = sessions(ctx, users)?;
    Ok(Small {
        grants,
        invites,
        sessions,
    })
}

/// `role` rows: `admin`/`moderator` are written (the domain of `user_roles.role`), the rest not
/// carried. Returns the role key set and each role's carried name.
fn roles(ctx: &mut Ctx<'_>) -> Result<(KeyIndex, Vec<Option<&'static str>>), DetectError> {
    let rows: Vec<RoleRow> = ctx.db.read_all()?;
    ctx.sink.count_read("role", rows.len() as u64);
    let mut index = KeyIndex::default();
    let mut names = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(k) = normalize(&row.id, KeyKind::Hex) {
            let _ = index.insert(&k, names.len() as u32);
        }
        let name = carried_role(&row.name);
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        if name.is_none() {
            rf.push(
                RuleId::Role,
                Decision::NotCarried,
                format!(
                    "role {} is not carried: v2 knows only admin and moderator (every account is a user)",
                    show(&row.name)
                ),
            );
        }
        ctx.sink.commit("role", &rf);
        names.push(name);
    }
    Ok((index, names))
}

fn grants(
    ctx: &mut Ctx<'_>,
    users: &Users,
    roles: &(KeyIndex, Vec<Option<&'static str>>),
) -> Result<StoredRows<ResolvedRoleGrant>, DetectError> {
    const TABLE: &str = "user_roles";
    let policy = ctx.policy;
    // Streamed: a row that carries no grant is committed at once; only the carried grants
    // (admins and moderators: few) wait for the duplicate check.
    let mut pending: Vec<(RowFindings, Option<ResolvedRoleGrant>)> = Vec::new();
    let db = ctx.db;
    let read = db.for_each::<UserRoleRow, DetectError, _>(|row| {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        let user = require_parent(&mut rf, "member", member(users, &row.user));
        let role = require_parent(
            &mut rf,
            "role_id",
            resolve_parent(&roles.0, KeyKind::Hex, &row.role_id, Some),
        );
        let granted_at = at(check_time(
            &mut rf,
            policy,
            "granted_at",
            &row.granted_at,
            false,
            NoShape::Quarantine,
        ));
        let expires = check_time(
            &mut rf,
            policy,
            "expires_at",
            &row.expires_at,
            true,
            NoShape::Quarantine,
        );
        let role_name = role.and_then(|r| roles.1.get(r as usize).copied().flatten());
        if role.is_some() && role_name.is_none() {
            rf.push(
                RuleId::Role,
                Decision::NotCarried,
                format!(
                    "grant of role {} (not admin or moderator: v2 has no such role); not carried",
                    show(&row.role_id)
                ),
            );
        }
        if let TimeOutcome::At(e) = expires {
            if e <= ctx.opts.as_of {
                rf.push(
                    RuleId::Role,
                    Decision::NotCarried,
                    format!(
                        "grant expired at {} before the run ({}); not carried",
                        time::canonical(e),
                        time::canonical(ctx.opts.as_of)
                    ),
                );
            }
        }
        let resolved = match (user, role_name, granted_at, rf.written()) {
            (Some(u), Some(r), Some(g), true) => Some(ResolvedRoleGrant {
                rowid: row.rowid,
                user_id: hex_id(u),
                role: r.to_string(),
                granted_at: g,
                granted_by_user_id: optional_member(users, &row.granted_by).map(hex_id),
            }),
            _ => None,
        };
        if resolved.is_some() {
            pending.push((rf, resolved));
        } else {
            ctx.sink.commit(TABLE, &rf);
        }
        Ok(())
    })?;
    ctx.sink.count_read(TABLE, read);
    // A second grant of the same role to the same member: keep the earliest.
    let mut sets: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, (_, g)) in pending.iter().enumerate() {
        if let Some(g) = g {
            sets.entry((g.user_id.clone(), g.role.clone()))
                .or_default()
                .push(i);
        }
    }
    for members in sets.values().filter(|m| m.len() > 1) {
        let order = |&i: &usize| {
            let (rf, g) = &pending[i];
            (g.as_ref().map(|g| g.granted_at), rf.key.clone())
        };
        let Some(&keep) = members.iter().min_by_key(|i| order(i)) else {
            continue;
        };
        let keep_key = pending[keep].0.key.clone();
        for &d in members.iter().filter(|&&d| d != keep) {
            let (rf, g) = &mut pending[d];
            rf.push(
                RuleId::Role,
                Decision::Deduplicated,
                format!("the same role is granted to the same member by grant {keep_key} (earlier; kept); deduplicated"),
            );
            *g = None;
        }
    }
    let mut out = RowsWriter::new();
    for (rf, g) in pending {
        if let (true, Some(g)) = (ctx.sink.commit(TABLE, &rf), &g) {
            out.push(g);
        }
    }
    out.finish()
}

fn invites(ctx: &mut Ctx<'_>, users: &Users) -> Result<StoredRows<ResolvedInvite>, DetectError> {
    const TABLE: &str = "invitetoken";
    let multi_use = ctx.db.schema().has_column(TABLE, "usage_count");
    let mut out = RowsWriter::new();
    // Streamed: the rows are not held (only the written ones, out of memory).
    let db = ctx.db;
    let read = db.for_each::<InviteRow, DetectError, _>(|row| {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.token, row.rowid));
        let texts = check_utf8(&mut rf, &[("token", &row.token)]);
        let expires = at(check_time(
            &mut rf,
            ctx.policy,
            "expires_at",
            &row.expires_at,
            false,
            NoShape::Quarantine,
        ));
        let is_system = row
            .created_by
            .to_text_lossy()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("system"));
        let created_by = if is_system {
            None
        } else {
            optional_member(users, &row.created_by)
        };
        let used_by = optional_member(users, &row.used_by);
        let used_at = used_by.and_then(|u| users.created_of(u));
        let (max_uses, use_count) = invite_counts(&mut rf, &row, multi_use, used_by.is_some());
        let token = texts[0].clone().unwrap_or_default();
        let written = ctx.sink.commit(TABLE, &rf);
        if let (true, Some(expires_at)) = (written, expires) {
            let default_created = expires_at - Duration::hours(INVITE_LIFETIME_HOURS);
            let created_at = used_at.map_or(default_created, |u| u.min(default_created));
            out.push(&ResolvedInvite {
                rowid: row.rowid,
                id: hex_id(v5(&format!("invite:{token}"))),
                token,
                created_by_user_id: created_by.map(hex_id),
                created_at,
                expires_at,
                max_uses,
                use_count,
                used_at,
                used_by_user_id: used_by.map(hex_id),
                is_admin_token: row
                    .token_type
                    .to_text_lossy()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("admin")),
            });
        }
        Ok(())
    })?;
    ctx.sink.count_read(TABLE, read);
    out.finish()
}

/// `max_uses` and `use_count` of an invite, with `R-INVITE-COUNT` on a count that is not a
/// non-negative integer below 2^31. A bad use count is repaired from the claims (the member who
/// used the token: 1, none: 0 is no evidence) or, with no claim, quarantined; a `max_uses` beyond
/// 2^31 − 1 can never be reached and becomes NULL (unlimited); any other bad `max_uses` is
/// quarantined (a repair may not widen a limit it cannot read). Never an error: a row-level
/// value does not stop a run.
fn invite_counts(
    rf: &mut RowFindings,
    row: &InviteRow,
    multi_use: bool,
    claimed: bool,
) -> (Option<i32>, i32) {
    let claims = i32::from(claimed);
    if !multi_use {
        return match (&row.used, row.used.as_bool()) {
            (V1Value::Null, _) => (Some(1), 0),
            (_, Some(u)) => (Some(1), i32::from(u)),
            (v, None) => {
                bad_count(rf, "used", v, claimed, claims);
                (Some(1), claims)
            }
        };
    }
    let in_range = |v: &V1Value| {
        v.as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
    };
    let use_count = match in_range(&row.usage_count) {
        Some(n) => n,
        None if matches!(row.usage_count, V1Value::Null) => 0,
        None => {
            bad_count(rf, "usage_count", &row.usage_count, claimed, claims);
            claims
        }
    };
    let max_uses = match (&row.max_uses, in_range(&row.max_uses)) {
        (V1Value::Null, _) => None,
        (_, Some(n)) => Some(n),
        (v, None) if v.as_i64().is_some_and(|n| n > i64::from(i32::MAX)) => {
            rf.push(
                RuleId::InviteCount,
                Decision::Repaired,
                format!(
                    "max_uses {} is beyond v2's integer column and can never be reached; written NULL (unlimited)",
                    show(v)
                ),
            );
            None
        }
        (v, None) => {
            rf.push(
                RuleId::InviteCount,
                Decision::Quarantined,
                format!(
                    "max_uses {} is not a non-negative integer; the limit cannot be known",
                    show(v)
                ),
            );
            None
        }
    };
    (max_uses, use_count)
}

/// The finding of a use count that is not a non-negative integer below 2^31.
fn bad_count(rf: &mut RowFindings, column: &str, v: &V1Value, claimed: bool, claims: i32) {
    if claimed {
        rf.push(
            RuleId::InviteCount,
            Decision::Repaired,
            format!(
                "{column} {} is not a non-negative integer below 2^31; repaired from the claims ({claims})",
                show(v)
            ),
        );
    } else {
        rf.push(
            RuleId::InviteCount,
            Decision::Quarantined,
            format!(
                "{column} {} is not a non-negative integer below 2^31, and no claim says how often the token was used",
                show(v)
            ),
        );
    }
}

fn sessions(ctx: &mut Ctx<'_>, users: &Users) -> Result<StoredRows<ResolvedSession>, DetectError> {
    const TABLE: &str = "session";
    let has_auth = ctx.db.schema().has_column(TABLE, "is_fully_authenticated");
    let mut out = RowsWriter::new();
    // Streamed: the rows are not held (only the written ones, out of memory).
    let db = ctx.db;
    let read = db.for_each::<SessionRow, DetectError, _>(|row| {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        let user = require_parent(&mut rf, "member", member(users, &row.user));
        let created = at(check_time(
            &mut rf,
            ctx.policy,
            "created_at",
            &row.created_at,
            false,
            NoShape::Quarantine,
        ));
        let expires = at(check_time(
            &mut rf,
            ctx.policy,
            "expires_at",
            &row.expires_at,
            false,
            NoShape::Quarantine,
        ));
        let texts = check_utf8(
            &mut rf,
            &[
                ("id", &row.id),
                ("device_info", &row.device_info),
                ("ip_address", &row.ip_address),
            ],
        );
        if let Some(e) = expires.filter(|e| *e <= ctx.opts.as_of) {
            rf.push(
                RuleId::Session,
                Decision::NotCarried,
                format!(
                    "session expired at {} before the run ({}); not carried",
                    time::canonical(e),
                    time::canonical(ctx.opts.as_of)
                ),
            );
        }
        if has_auth && row.is_fully_authenticated.as_bool() != Some(true) {
            rf.push(
                RuleId::Session,
                Decision::NotCarried,
                format!(
                    "session is not fully authenticated (is_fully_authenticated {}); not carried",
                    show(&row.is_fully_authenticated)
                ),
            );
        }
        let ip_address = texts[2].as_deref().and_then(|ip| {
            let canonical = canonical_ip(ip);
            if canonical.is_none() {
                rf.push(
                    RuleId::SessionIp,
                    Decision::Repaired,
                    format!(
                        "ip_address {} is not an IP address; written NULL, the session carried",
                        show(&row.ip_address)
                    ),
                );
            }
            canonical
        });
        let written = ctx.sink.commit(TABLE, &rf);
        if let (true, Some(u), Some(c), Some(e)) = (written, user, created, expires) {
            out.push(&ResolvedSession {
                rowid: row.rowid,
                id: texts[0].clone().unwrap_or_default(),
                user_id: hex_id(u),
                created_at: c,
                expires_at: e,
                last_seen_at: c,
                user_agent: texts[1].clone(),
                ip_address,
            });
        }
        Ok(())
    })?;
    ctx.sink.count_read(TABLE, read);
    out.finish()
}
