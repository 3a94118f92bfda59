//! The small tables, read whole: `role`, `user_roles` (`R-ROLE`), `invitetoken`, `session`
//! (`R-SESSION`), with `R-ORPHAN`, `R-TIME` and `R-UTF8` on their columns.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use thywill_v1::{InviteRow, InviteUsageRow, RoleRow, SessionRow, UserRoleRow, UserRow, V1Value};

use super::users::{NamedAdmin, Users};
use super::{
    check_time, check_utf8, key_text, note_respelling, require_parent, resolve_parent, show, Ctx,
    NoShape, Parent, RowFindings, TimeOutcome,
};
use crate::ids::{hex_id, v5};
use crate::keys::{normalize, KeyIndex, KeyKind};
use crate::model::{Decision, DetectError, Policy, RuleId};
use crate::plan::{ResolvedInvite, ResolvedRoleGrant, ResolvedSession};
use crate::stored::{RowsWriter, StoredRows};
use crate::time;

/// What a v1 role name is in v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoleKind {
    /// A role v2 has (`admin`, `moderator`): its grants become `user_roles` rows.
    Carried(&'static str),
    /// v1's `deactivated` role: not a role but a state, `users.is_active = false`.
    Deactivated,
    /// Anything else (the implicit `user` role, custom roles): no v2 home.
    Other,
}

/// The v2 meaning of role name `name`.
fn role_kind(name: &V1Value) -> RoleKind {
    match name
        .to_text_lossy()
        .map(|n| n.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("admin") => RoleKind::Carried("admin"),
        Some("moderator") => RoleKind::Carried("moderator"),
        Some("deactivated") => RoleKind::Deactivated,
        _ => RoleKind::Other,
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
    /// v2 ids of the members a written `deactivated` grant makes inactive, sorted.
    pub(crate) deactivated: Vec<u128>,
    /// Grants v2 gets with no `user_roles` row behind them (the member named `admin`).
    pub(crate) implicit_grants: u64,
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

/// [`member`], with the `R-ORPHAN` repair of a reference that resolves only through v1's
/// start-up rewrite of names ([`note_respelling`]).
fn noted_member(rf: &mut RowFindings, what: &str, users: &Users, v: &V1Value) -> Parent<u128> {
    note_respelling(rf, what, &users.index, users.kind, v);
    member(users, v)
}

/// [`optional_member`] with [`note_respelling`].
fn noted_optional_member(
    rf: &mut RowFindings,
    what: &str,
    users: &Users,
    v: &V1Value,
) -> Option<u128> {
    note_respelling(rf, what, &users.index, users.kind, v);
    optional_member(users, v)
}

/// Roles, grants, invites and sessions.
pub(crate) fn run(ctx: &mut Ctx<'_>, users: &Users) -> Result<Small, DetectError> {
    let roles = roles(ctx)?;
    let (grants, deactivated, implicit_grants) = grants(ctx, users, &roles)?;
    let invites = invites(ctx, users)?;
    let sessions = sessions(ctx, users, &deactivated)?;
    Ok(Small {
        grants,
        deactivated,
        implicit_grants,
        invites,
        sessions,
    })
}

/// The role key set and each role's [`RoleKind`], by index.
type Roles = (KeyIndex, Vec<RoleKind>);

/// `role` rows: `admin`/`moderator` are written (the domain of `user_roles.role`), the rest not
/// carried. Returns the role key set and each role's kind.
fn roles(ctx: &mut Ctx<'_>) -> Result<Roles, DetectError> {
    let rows: Vec<RoleRow> = ctx.db.read_all()?;
    ctx.sink.count_read("role", rows.len() as u64);
    let mut index = KeyIndex::default();
    let mut names = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(k) = normalize(&row.id, KeyKind::Hex) {
            let _ = index.insert(&k, names.len() as u32);
        }
        let kind = role_kind(&row.name);
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        let reason = match kind {
            RoleKind::Carried(_) => None,
            RoleKind::Deactivated => Some(format!(
                "role {} is not carried: in v2 deactivation is a member's state (users.is_active = false), not a role",
                show(&row.name)
            )),
            RoleKind::Other => Some(format!(
                "role {} is not carried: v2 knows only admin and moderator (every account is a user)",
                show(&row.name)
            )),
        };
        if let Some(reason) = reason {
            rf.push(RuleId::Role, Decision::NotCarried, reason);
        }
        ctx.sink.commit("role", &rf);
        names.push(kind);
    }
    Ok((index, names))
}

/// A grant that reaches v2: a `user_roles` row, or a deactivation folded into its member's row.
enum Grant {
    /// The member's id and the `user_roles` row.
    Row(u128, ResolvedRoleGrant),
    Deactivates(u128),
}

impl Grant {
    /// The (member, role) a repeated grant repeats.
    fn repeats(&self) -> (u128, &str) {
        match self {
            Grant::Row(u, g) => (*u, g.role.as_str()),
            Grant::Deactivates(u) => (*u, "deactivated"),
        }
    }
}

/// `user_roles` rows: grants of `admin`/`moderator` become `user_roles` rows, an unexpired
/// grant of `deactivated` makes its member inactive (the grant is folded into the user row,
/// with its finding), the rest is not carried; the member named exactly `admin` gets the admin
/// grant v1 gives that name. Returns the carried grants, the deactivated members (sorted) and
/// the number of grants with no v1 row behind them.
fn grants(
    ctx: &mut Ctx<'_>,
    users: &Users,
    roles: &Roles,
) -> Result<(StoredRows<ResolvedRoleGrant>, Vec<u128>, u64), DetectError> {
    let scan = GrantScan {
        users,
        roles,
        policy: ctx.policy,
        as_of: ctx.opts.as_of,
    };
    // Streamed: a row that carries no grant is committed at once; only the carried grants
    // (admins, moderators, deactivations: few) wait for the duplicate check.
    let mut pending: Vec<(RowFindings, Option<Grant>)> = Vec::new();
    let db = ctx.db;
    let read = db.for_each::<UserRoleRow, DetectError, _>(|row| {
        let (rf, grant) = scan.grant(&row);
        if grant.is_some() {
            pending.push((rf, grant));
        } else {
            ctx.sink.commit(GRANTS, &rf);
        }
        Ok(())
    })?;
    ctx.sink.count_read(GRANTS, read);
    dedupe_grants(&mut pending);
    let mut out = RowsWriter::new();
    let implicit = implicit_admin(users, &pending);
    if let Some(admin) = implicit {
        grant_implicit_admin(ctx, admin, &mut out);
    }
    let deactivated = commit_grants(ctx, pending, &mut out);
    Ok((out.finish()?, deactivated, u64::from(implicit.is_some())))
}

/// The v1 table of role grants.
const GRANTS: &str = "user_roles";

/// What the rules on one `user_roles` row need: the members, the roles, the policy and the
/// run's clock.
struct GrantScan<'a> {
    users: &'a Users,
    roles: &'a Roles,
    policy: Policy,
    as_of: NaiveDateTime,
}

impl GrantScan<'_> {
    /// Every rule on one grant row, in order: its member and role (`R-ORPHAN`), `R-TIME` of its
    /// times, `R-ROLE` (a role v2 has not, an expired grant); the row's findings and the grant
    /// it carries, if any.
    fn grant(&self, row: &UserRoleRow) -> (RowFindings, Option<Grant>) {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        let user = {
            let m = noted_member(&mut rf, "member", self.users, &row.user);
            require_parent(&mut rf, "member", m)
        };
        let role = require_parent(
            &mut rf,
            "role_id",
            resolve_parent(&self.roles.0, KeyKind::Hex, &row.role_id, Some),
        );
        let kind = role.and_then(|r| self.roles.1.get(r as usize).copied());
        let (granted_at, expires) = self.grant_times(&mut rf, row, kind);
        if kind == Some(RoleKind::Other) {
            rf.push(
                RuleId::Role,
                Decision::NotCarried,
                format!(
                    "grant of role {} (not admin or moderator: v2 has no such role); not carried",
                    show(&row.role_id)
                ),
            );
        }
        self.grant_expired(&mut rf, expires);
        let grant = match (user, kind, rf.written()) {
            (Some(u), Some(RoleKind::Carried(r)), true) => granted_at.map(|g| {
                Grant::Row(
                    u,
                    ResolvedRoleGrant {
                        rowid: row.rowid,
                        user_id: hex_id(u),
                        role: r.to_string(),
                        granted_at: g,
                        granted_by_user_id: noted_optional_member(
                            &mut rf,
                            "granted_by",
                            self.users,
                            &row.granted_by,
                        )
                        .map(hex_id),
                    },
                )
            }),
            (Some(u), Some(RoleKind::Deactivated), true) => Some(Grant::Deactivates(u)),
            _ => None,
        };
        (rf, grant)
    }

    /// `R-TIME` of `granted_at` (not of a deactivation: v2 keeps no grant time of it, so it
    /// decides nothing) and of the nullable `expires_at`.
    fn grant_times(
        &self,
        rf: &mut RowFindings,
        row: &UserRoleRow,
        kind: Option<RoleKind>,
    ) -> (Option<NaiveDateTime>, TimeOutcome) {
        let granted_at = if kind == Some(RoleKind::Deactivated) {
            None
        } else {
            at(check_time(
                rf,
                self.policy,
                "granted_at",
                &row.granted_at,
                false,
                NoShape::Quarantine,
            ))
        };
        let expires = check_time(
            rf,
            self.policy,
            "expires_at",
            &row.expires_at,
            true,
            NoShape::Quarantine,
        );
        (granted_at, expires)
    }

    /// `R-ROLE`: a grant that expired before the run is not carried.
    fn grant_expired(&self, rf: &mut RowFindings, expires: TimeOutcome) {
        if let TimeOutcome::At(e) = expires {
            if e <= self.as_of {
                rf.push(
                    RuleId::Role,
                    Decision::NotCarried,
                    format!(
                        "grant expired at {} before the run ({}); not carried",
                        time::canonical(e),
                        time::canonical(self.as_of)
                    ),
                );
            }
        }
    }
}

/// The admin grant v1 gives the member named exactly `admin` (with its repair noted on the
/// member's row).
fn grant_implicit_admin(
    ctx: &mut Ctx<'_>,
    admin: &NamedAdmin,
    out: &mut RowsWriter<ResolvedRoleGrant>,
) {
    ctx.sink.note_repair(
        "user",
        admin.rowid,
        &admin.key,
        RuleId::Role,
        "a member named exactly 'admin' is an admin in v1 without a grant row; v2 gets the admin grant (granted_at = the member's created_at)",
    );
    out.push(&ResolvedRoleGrant {
        rowid: admin.rowid,
        user_id: hex_id(admin.id),
        role: "admin".to_string(),
        granted_at: admin.created_at,
        granted_by_user_id: None,
    });
}

/// Commits the grants that waited for the duplicate check: a deactivation is folded into its
/// member's row (`R-ROLE` repair), a written grant row joins `out`. Returns the deactivated
/// members, sorted.
fn commit_grants(
    ctx: &mut Ctx<'_>,
    pending: Vec<(RowFindings, Option<Grant>)>,
    out: &mut RowsWriter<ResolvedRoleGrant>,
) -> Vec<u128> {
    let mut deactivated = Vec::new();
    for (mut rf, g) in pending {
        if let Some(Grant::Deactivates(u)) = g {
            rf.push(
                RuleId::Role,
                Decision::Repaired,
                "grant of the deactivated role, which v2 has not: folded into the member's row as is_active = false; the member's sessions are not carried".to_string(),
            );
            deactivated.push(u);
        }
        if let (true, Some(Grant::Row(_, g))) = (ctx.sink.commit(GRANTS, &rf), &g) {
            out.push(g);
        }
    }
    deactivated.sort_unstable();
    deactivated
}

/// The member named exactly `admin`, when no carried grant already makes them an admin: v1
/// treats that name as an admin by itself.
fn implicit_admin<'u>(
    users: &'u Users,
    pending: &[(RowFindings, Option<Grant>)],
) -> Option<&'u NamedAdmin> {
    let admin = users.named_admin.as_ref()?;
    let granted = pending
        .iter()
        .any(|(_, g)| matches!(g, Some(Grant::Row(u, g)) if *u == admin.id && g.role == "admin"));
    (!granted).then_some(admin)
}

/// A second grant of the same role to the same member: keep the earliest (then the smallest
/// key), deduplicate the others.
fn dedupe_grants(pending: &mut [(RowFindings, Option<Grant>)]) {
    let mut sets: HashMap<(u128, String), Vec<usize>> = HashMap::new();
    for (i, (_, g)) in pending.iter().enumerate() {
        if let Some(g) = g {
            let (u, role) = g.repeats();
            sets.entry((u, role.to_string())).or_default().push(i);
        }
    }
    for members in sets.values().filter(|m| m.len() > 1) {
        let order = |&i: &usize| {
            let (rf, g) = &pending[i];
            let granted = match g {
                Some(Grant::Row(_, g)) => Some(g.granted_at),
                _ => None,
            };
            (granted, rf.key.clone())
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
}

/// The claims of v1's invite tokens (rules.md, invites): `invite_token_usage` rows and the
/// members whose `invite_token_used` names a token, each by the carried member it ends in.
#[derive(Default)]
struct Claims {
    /// Token as stored → (`claimed_at` parsed, member) per usage row.
    usage: HashMap<String, Vec<(Option<NaiveDateTime>, u128)>>,
    /// Token as stored → the members who joined with it.
    joined: HashMap<String, Vec<u128>>,
}

impl Claims {
    fn read(ctx: &Ctx<'_>, users: &Users) -> Result<Claims, DetectError> {
        let mut claims = Claims::default();
        if ctx.db.schema().has_table("invite_token_usage") {
            ctx.db.for_each_ref::<InviteUsageRow, DetectError, _>(|u| {
                if let (Some(token), Some(member)) =
                    (u.token.to_text_lossy(), optional_member(users, &u.user))
                {
                    let at = time::parse_value(&u.claimed_at).map(|p| p.at);
                    claims
                        .usage
                        .entry(token.into_owned())
                        .or_default()
                        .push((at, member));
                }
                Ok(())
            })?;
        }
        if ctx.db.schema().has_column("user", "invite_token_used") {
            // The same scan as the users' pass: the n-th row is entry n. Not looked up by its
            // key: two rows may share one (a name stored once as TEXT, once as a BLOB), and a
            // quarantined row's claim must not be counted for the row that was written.
            let mut entry = 0u32;
            ctx.db.for_each_ref::<UserRow, DetectError, _>(|u| {
                let member = users.target(entry);
                entry += 1;
                if let (Some(token), Some(member)) = (u.invite_token_used.to_text_lossy(), member) {
                    claims
                        .joined
                        .entry(token.into_owned())
                        .or_default()
                        .push(member);
                }
                Ok(())
            })?;
        }
        Ok(claims)
    }

    /// A token's claims, each with its time, from the first source that has any: its usage rows
    /// (one that v1's migration 008 backfilled carries the token's `expires_at` and, like one
    /// whose time does not parse, is dated by its member's `created_at`), the members who joined
    /// with it, else the member `used_by` names; each dated by the member's `created_at`.
    fn of(
        &self,
        users: &Users,
        token: &str,
        expires: Option<NaiveDateTime>,
        used_by: Option<u128>,
    ) -> Vec<(Option<NaiveDateTime>, u128)> {
        if let Some(rows) = self.usage.get(token) {
            return rows
                .iter()
                .map(|&(at, m)| {
                    let at = at.filter(|t| !is_backfilled_claim(*t, expires));
                    (at.or_else(|| users.created_of(m)), m)
                })
                .collect();
        }
        let members = match self.joined.get(token) {
            Some(joined) => joined.clone(),
            None => used_by.into_iter().collect(),
        };
        members
            .into_iter()
            .map(|m| (users.created_of(m), m))
            .collect()
    }
}

/// Whether an `invite_token_usage` row claimed at `claimed_at` is one v1's migration 008
/// backfilled for a claim made before it: dated its token's `expires_at`, not the claim
/// (v1-real.md §5). The one test of it: claims, the reconciliation and the zone evidence ask it.
pub(crate) fn is_backfilled_claim(
    claimed_at: NaiveDateTime,
    expires: Option<NaiveDateTime>,
) -> bool {
    expires == Some(claimed_at)
}

/// v2's `invites.token` width.
const MAX_TOKEN_CHARS: usize = 64;

/// `invitetoken` rows: `R-UTF8`, `R-INVITE-KIND`, `R-TIME`, `R-ORPHAN` and `R-INVITE-COUNT` on
/// each; the written invites, with their claims.
fn invites(ctx: &mut Ctx<'_>, users: &Users) -> Result<StoredRows<ResolvedInvite>, DetectError> {
    let mut scan = InviteScan {
        users,
        claims: Claims::read(ctx, users)?,
        multi_use: ctx.db.schema().has_column(INVITES, "usage_count"),
        policy: ctx.policy,
        invite_hours: ctx.opts.invite_hours,
        tokens: HashMap::new(),
    };
    let mut out = RowsWriter::new();
    // Streamed: the rows are not held (only the written ones, out of memory).
    let db = ctx.db;
    let read = db.for_each::<InviteRow, DetectError, _>(|row| {
        let (rf, invite) = scan.invite(&row);
        let written = ctx.sink.commit(INVITES, &rf);
        if let (true, Some(invite)) = (written, invite) {
            out.push(&invite);
        }
        Ok(())
    })?;
    ctx.sink.count_read(INVITES, read);
    out.finish()
}

/// The v1 table of invite tokens.
const INVITES: &str = "invitetoken";

/// What the rules on one `invitetoken` row need, and the tokens of the invites read so far.
struct InviteScan<'a> {
    users: &'a Users,
    claims: Claims,
    multi_use: bool,
    policy: Policy,
    invite_hours: u32,
    /// Token → the key of the written invite that holds it.
    tokens: HashMap<String, String>,
}

/// How a token was used, from its claims.
struct Usage {
    /// The latest claim: the token's `used_at` and `used_by`.
    used_at: Option<NaiveDateTime>,
    used_by: Option<u128>,
    /// The first claim's time (it bounds the invite's creation).
    first: Option<NaiveDateTime>,
    /// The number of claims.
    count: i32,
}

impl Usage {
    /// The usage `claimed` shows.
    fn of(claimed: &[(Option<NaiveDateTime>, u128)]) -> Usage {
        let latest = claimed.iter().copied().max_by_key(|&(at, m)| (at, m));
        Usage {
            used_at: latest.and_then(|c| c.0),
            used_by: latest.map(|c| c.1),
            first: claimed.iter().filter_map(|c| c.0).min(),
            count: i32::try_from(claimed.len()).unwrap_or(i32::MAX),
        }
    }
}

impl InviteScan<'_> {
    /// Every rule on one invite row, in order; the row's findings and its v2 invite (when its
    /// `expires_at` is a time; written only if the findings let it be).
    fn invite(&mut self, row: &InviteRow) -> (RowFindings, Option<ResolvedInvite>) {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.token, row.rowid));
        let texts = check_utf8(&mut rf, &[("token", &row.token)]);
        token_width(&mut rf, texts[0].as_deref());
        if let Some(kind) = not_an_invitation(&row.token_type) {
            rf.push(
                RuleId::InviteKind,
                Decision::NotCarried,
                format!("token_type {} is {kind}, not an invitation of a new member: v2 has no such links; not carried", show(&row.token_type)),
            );
        }
        let expires = at(check_time(
            &mut rf,
            self.policy,
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
            noted_optional_member(&mut rf, "created_by_user", self.users, &row.created_by)
        };
        let named = noted_optional_member(&mut rf, "used_by", self.users, &row.used_by);
        let stored_token = row.token.to_text_lossy().unwrap_or_default();
        let claimed = self.claims.of(self.users, &stored_token, expires, named);
        let usage = Usage::of(&claimed);
        let (max_uses, column_count) = invite_counts(&mut rf, row, self.multi_use, usage.count);
        let use_count = if claimed.is_empty() {
            column_count
        } else {
            usage.count
        };
        let token = texts[0].clone().unwrap_or_default();
        self.unique_token(&mut rf, &token, expires.is_some());
        let invite = expires.map(|expires_at| {
            let lifetime = Duration::hours(i64::from(self.invite_hours));
            let default_created = expires_at - lifetime;
            let created_at = usage
                .first
                .map_or(default_created, |u| u.min(default_created));
            ResolvedInvite {
                rowid: row.rowid,
                id: hex_id(v5(&format!("invite:{token}"))),
                token,
                created_by_user_id: created_by.map(hex_id),
                created_at,
                expires_at,
                max_uses,
                use_count,
                used_at: usage.used_at,
                used_by_user_id: usage.used_by.map(hex_id),
                // v1 grants admin for an `admin` token and for any token the system made.
                is_admin_token: is_system
                    || row
                        .token_type
                        .to_text_lossy()
                        .is_some_and(|t| t.trim().eq_ignore_ascii_case("admin")),
            }
        });
        (rf, invite)
    }

    /// `R-INVITE-KIND`: v2's tokens are unique, so a token an earlier written invite holds (the
    /// same bytes as text and as a BLOB, say) is that invite's link. Only a row still written
    /// (`expires` parsed, nothing but repairs) claims its token.
    fn unique_token(&mut self, rf: &mut RowFindings, token: &str, expires: bool) {
        let writable = expires && rf.disposition().is_none_or(|d| d == Decision::Repaired);
        if !writable {
            return;
        }
        match self.tokens.get(token) {
            Some(first) => rf.push(
                RuleId::InviteKind,
                Decision::NotCarried,
                format!(
                    "token is also the token of invite {first} (read first): v2 holds its \
                     link once; not carried"
                ),
            ),
            None => {
                self.tokens.insert(token.to_string(), rf.key.clone());
            }
        }
    }
}

/// `R-INVITE-KIND`: a token no v2 token can hold (outside 1 to [`MAX_TOKEN_CHARS`]
/// characters) is not carried.
fn token_width(rf: &mut RowFindings, token: Option<&str>) {
    let token_chars = token.map_or(0, |t| t.chars().count());
    if !(1..=MAX_TOKEN_CHARS).contains(&token_chars) {
        rf.push(
            RuleId::InviteKind,
            Decision::NotCarried,
            format!(
                "token of {token_chars} characters: v2's tokens have 1 to {MAX_TOKEN_CHARS}, so \
                 no link of it can work in v2; not carried"
            ),
        );
    }
}

/// `R-INVITE-KIND`: what an `invitetoken` row of type `token_type` is when it is not an
/// invitation of a new member (only `new_user` and `admin` invite someone; no type, as in
/// G0–G2, is an invitation).
fn not_an_invitation(token_type: &V1Value) -> Option<&'static str> {
    if token_type.is_null() {
        return None;
    }
    let kind = token_type
        .to_text_lossy()
        .map(|t| t.trim().to_ascii_lowercase());
    match kind.as_deref() {
        Some("new_user" | "admin") => None,
        Some("multi_device") => Some("a device link"),
        Some("user_login") => Some("an admin login link"),
        Some("email_verification") => Some("an e-mail verification link"),
        _ => Some("a type v1 never wrote"),
    }
}

/// `max_uses` and `use_count` of an invite, with `R-INVITE-COUNT` on a count that is not a
/// non-negative integer below 2^31. A bad use count is repaired from the claims (their number;
/// none is no evidence) or, with no claim, quarantined; a `max_uses` beyond
/// 2^31 − 1 can never be reached and becomes NULL (unlimited); any other bad `max_uses` is
/// quarantined (a repair may not widen a limit it cannot read). Never an error: a row-level
/// value does not stop a run.
fn invite_counts(
    rf: &mut RowFindings,
    row: &InviteRow,
    multi_use: bool,
    claims: i32,
) -> (Option<i32>, i32) {
    let claimed = claims > 0;
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

/// Whether `id` can be a v2 session id: 1 to 64 printable ASCII characters (no space).
fn session_id_fits(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// `session` rows: only unexpired, fully authenticated sessions of active members are carried
/// (`R-SESSION`); `deactivated` lists the inactive members, sorted.
fn sessions(
    ctx: &mut Ctx<'_>,
    users: &Users,
    deactivated: &[u128],
) -> Result<StoredRows<ResolvedSession>, DetectError> {
    let scan = SessionScan {
        users,
        deactivated,
        policy: ctx.policy,
        as_of: ctx.opts.as_of,
        has_auth: ctx
            .db
            .schema()
            .has_column(SESSIONS, "is_fully_authenticated"),
    };
    let mut out = RowsWriter::new();
    // Streamed: the rows are not held (only the written ones, out of memory).
    let db = ctx.db;
    let read = db.for_each::<SessionRow, DetectError, _>(|row| {
        let (rf, session) = scan.session(&row);
        let written = ctx.sink.commit(SESSIONS, &rf);
        if let (true, Some(session)) = (written, session) {
            out.push(&session);
        }
        Ok(())
    })?;
    ctx.sink.count_read(SESSIONS, read);
    out.finish()
}

/// The v1 table of sessions.
const SESSIONS: &str = "session";

/// What the rules on one `session` row need.
struct SessionScan<'a> {
    users: &'a Users,
    /// The inactive members, sorted.
    deactivated: &'a [u128],
    policy: Policy,
    as_of: NaiveDateTime,
    /// Whether v1's table has `is_fully_authenticated`.
    has_auth: bool,
}

impl SessionScan<'_> {
    /// Every rule on one session row, in order: its member (`R-ORPHAN`), `R-TIME` of its times,
    /// `R-UTF8`, `R-SESSION` (expired, expiring before its creation, an id v2 cannot hold, of a
    /// deactivated member, not fully authenticated) and `R-SESSION-IP`; the row's findings and
    /// its v2 session (when its member and times are known; written only if the findings let
    /// it be).
    fn session(&self, row: &SessionRow) -> (RowFindings, Option<ResolvedSession>) {
        let mut rf = RowFindings::new(row.rowid, key_text(&row.id, row.rowid));
        let user = {
            let m = noted_member(&mut rf, "member", self.users, &row.user);
            require_parent(&mut rf, "member", m)
        };
        let created = self.time(&mut rf, "created_at", &row.created_at);
        let expires = self.time(&mut rf, "expires_at", &row.expires_at);
        let mut texts = check_utf8(
            &mut rf,
            &[
                ("id", &row.id),
                ("device_info", &row.device_info),
                ("ip_address", &row.ip_address),
            ],
        );
        self.expired(&mut rf, expires);
        expires_before_created(&mut rf, created, expires);
        if !texts[0].as_deref().is_some_and(session_id_fits) {
            rf.push(
                RuleId::Session,
                Decision::NotCarried,
                format!(
                    "session id {} is not 1 to 64 printable ASCII characters, as v2's session ids are; not carried (the member logs in again)",
                    show(&row.id)
                ),
            );
        }
        self.deactivated_member(&mut rf, user);
        self.not_fully_authenticated(&mut rf, row);
        let ip_address = session_ip(&mut rf, texts[2].as_deref(), row);
        let session = match (user, created, expires) {
            (Some(u), Some(c), Some(e)) => Some(ResolvedSession {
                rowid: row.rowid,
                id: texts[0].take().unwrap_or_default(),
                user_id: hex_id(u),
                created_at: c,
                expires_at: e,
                last_seen_at: c,
                user_agent: texts[1].take(),
                ip_address,
            }),
            _ => None,
        };
        (rf, session)
    }

    /// `R-TIME` of a non-nullable session time.
    fn time(&self, rf: &mut RowFindings, column: &str, v: &V1Value) -> Option<NaiveDateTime> {
        at(check_time(
            rf,
            self.policy,
            column,
            v,
            false,
            NoShape::Quarantine,
        ))
    }

    /// `R-SESSION`: a session that expired before the run is not carried.
    fn expired(&self, rf: &mut RowFindings, expires: Option<NaiveDateTime>) {
        if let Some(e) = expires.filter(|e| *e <= self.as_of) {
            rf.push(
                RuleId::Session,
                Decision::NotCarried,
                format!(
                    "session expired at {} before the run ({}); not carried",
                    time::canonical(e),
                    time::canonical(self.as_of)
                ),
            );
        }
    }

    /// `R-SESSION`: a deactivated member must not come back logged in.
    fn deactivated_member(&self, rf: &mut RowFindings, user: Option<u128>) {
        if user.is_some_and(|u| self.deactivated.binary_search(&u).is_ok()) {
            rf.push(
                RuleId::Session,
                Decision::NotCarried,
                "session of a member deactivated in v1 (an unexpired deactivated grant): a deactivated member must not come back logged in; not carried".to_string(),
            );
        }
    }

    /// `R-SESSION`: a session not fully authenticated is not carried.
    fn not_fully_authenticated(&self, rf: &mut RowFindings, row: &SessionRow) {
        if self.has_auth && row.is_fully_authenticated.as_bool() != Some(true) {
            rf.push(
                RuleId::Session,
                Decision::NotCarried,
                format!(
                    "session is not fully authenticated (is_fully_authenticated {}); not carried",
                    show(&row.is_fully_authenticated)
                ),
            );
        }
    }
}

/// `R-SESSION`: v2 requires a session's expiry after its creation.
fn expires_before_created(
    rf: &mut RowFindings,
    created: Option<NaiveDateTime>,
    expires: Option<NaiveDateTime>,
) {
    if let (Some(c), Some(e)) = (created, expires) {
        if e <= c {
            rf.push(
                RuleId::Session,
                Decision::NotCarried,
                format!(
                    "session expires at {} but was created at {} (v2 requires expiry after creation); not carried (the member logs in again)",
                    time::canonical(e),
                    time::canonical(c)
                ),
            );
        }
    }
}

/// `R-SESSION-IP`: the session's address in canonical form; one that is not an address is
/// written NULL.
fn session_ip(rf: &mut RowFindings, ip: Option<&str>, row: &SessionRow) -> Option<String> {
    ip.and_then(|ip| {
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
    })
}
