//! The small logs, reconciled in memory (one or two lines a member): the `deactivated`
//! assignments of `roles/*_role_assignments.txt` against the `user_roles` rows of that role, and
//! the claim lines of `system/*_invite_usage.txt` against the `invite_token_usage` rows.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use thywill_v1::archive::Located;

use super::{
    match_group, row_time, shown, ArchiveFinding, ArchiveRule, DbClaim, DbGrant, ReconcileOptions,
    RecordKind, RowTime,
};

/// What one log's reconciliation needs to know of its rows.
struct Side<'a> {
    /// The kind of record.
    kind: RecordKind,
    /// The group (the member; the token and member) of each row and each line.
    rows: Vec<(String, Row<'a>)>,
    lines: Vec<(String, Line<'a>)>,
    /// The offsets through which a row's UTC time is compared with a line's.
    offsets: Vec<i32>,
    /// What a line records, for people (`deactivation`, `invite claim`).
    what: &'static str,
    /// The table its rows come from.
    table: &'static str,
}

/// A row of a small log's table: rowid, finding key and raw time.
struct Row<'a> {
    rowid: Option<i64>,
    key: String,
    time: Option<&'a str>,
}

/// A line of a small log: where it is and its time.
struct Line<'a> {
    path: &'a str,
    line: usize,
    raw: &'a str,
    at: NaiveDateTime,
}

impl<'a> Line<'a> {
    fn of<R>(l: &'a Located<R>, time: &'a thywill_v1::archive::V1Time) -> Self {
        Line {
            path: &l.path,
            line: l.line,
            raw: &time.raw,
            at: time.at,
        }
    }
}

/// Whether a row time lies within a minute of a line's time, for one of `offsets` (minutes the
/// line's clock is ahead of UTC). The two are written by separate clock reads, so they may
/// differ by moments, across a minute's boundary. A date-only row matches a line on that day; a
/// row time no shape fits is not compared.
fn near(row: RowTime, line: NaiveDateTime, offsets: &[i32]) -> bool {
    offsets.iter().any(|o| {
        let utc = line - Duration::minutes(i64::from(*o));
        match row {
            RowTime::Unknown => true,
            RowTime::Day(d) => utc.date() == d,
            RowTime::At(t) => (t - utc).abs() <= Duration::minutes(1),
        }
    })
}

impl Side<'_> {
    fn reconcile(self, opts: &ReconcileOptions, out: &mut Vec<ArchiveFinding>) {
        type Group<'g, 'a> = (Vec<&'g Row<'a>>, Vec<&'g Line<'a>>);
        let mut groups: BTreeMap<&str, Group<'_, '_>> = BTreeMap::new();
        for (g, r) in &self.rows {
            groups.entry(g).or_default().0.push(r);
        }
        for (g, l) in &self.lines {
            groups.entry(g).or_default().1.push(l);
        }
        let time = |r: &Row<'_>| row_time(r.time);
        for (group, (mut rows, mut lines)) in groups {
            rows.sort_by_key(|r| (time(r).sort_key(), r.rowid));
            lines.sort_by_key(|l| (l.at, l.path, l.line));
            let (pairs, left_rows, left_lines) =
                match_group(&rows, &lines, |r, l| near(time(r), l.at, &self.offsets));
            for (r, l) in pairs {
                out.push(ArchiveFinding {
                    line: None,
                    rule: ArchiveRule::Mismatch,
                    kind: self.kind,
                    key: r.key.clone(),
                    rowid: r.rowid,
                    path: Some(l.path.to_string()),
                    detail: format!(
                        "line {}: {} of {group} at `{}`, row at {}",
                        l.line,
                        self.what,
                        l.raw,
                        shown(r.time)
                    ),
                });
            }
            for r in left_rows.into_iter().filter(|_| opts.rows_without_log_line) {
                out.push(ArchiveFinding {
                    line: None,
                    rule: ArchiveRule::Missing,
                    kind: self.kind,
                    key: r.key.clone(),
                    rowid: r.rowid,
                    path: None,
                    detail: format!("no {} line for this row of {group}", self.what),
                });
            }
            for l in left_lines {
                out.push(ArchiveFinding {
                    line: None,
                    rule: ArchiveRule::Only,
                    kind: self.kind,
                    key: group.to_string(),
                    rowid: None,
                    path: Some(l.path.to_string()),
                    detail: format!(
                        "line {}: {} at `{}` has no {} row",
                        l.line, self.what, l.raw, self.table
                    ),
                });
            }
        }
    }
}

/// The key of a finding about a row: its id, else its group.
fn row_key(id: &Option<String>, group: &str) -> String {
    id.clone().unwrap_or_else(|| group.to_string())
}

/// The `deactivated … assigned` lines against the grants of the role `deactivated`, by member.
/// Both clocks are UTC (`utcnow()`), so no offset applies.
pub(super) fn reconcile_grants(
    archive: &thywill_v1::archive::V1Archive,
    grants: &[DbGrant],
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) {
    const ROLE: &str = "deactivated";
    Side {
        kind: RecordKind::Grant,
        rows: grants
            .iter()
            .filter(|g| g.role.as_deref() == Some(ROLE))
            .map(|g| {
                let row = Row {
                    rowid: g.rowid,
                    key: row_key(&g.id, &g.user),
                    time: g.granted_at.as_deref(),
                };
                (g.user.clone(), row)
            })
            .collect(),
        lines: archive
            .role_assignments
            .iter()
            .filter(|l| l.record.role == ROLE && l.record.action == "assigned")
            .map(|l| (l.record.user.clone(), Line::of(l, &l.record.at)))
            .collect(),
        offsets: vec![0],
        what: "deactivation",
        table: "user_roles",
    }
    .reconcile(opts, out);
}

/// The claim lines of the invite-usage logs against the `invite_token_usage` rows, by token and
/// member. The lines are in the server's local time, the rows in UTC: each line is compared at
/// the UTC instant the server's clock gives it (the earlier one in a fall-back hour, within
/// the minute's tolerance of the later one only across that hour's boundary).
pub(super) fn reconcile_claims(
    archive: &thywill_v1::archive::V1Archive,
    claims: &[DbClaim],
    opts: &ReconcileOptions,
    out: &mut Vec<ArchiveFinding>,
) {
    let group = |token: &str, user: &str| format!("{token}|{user}");
    Side {
        kind: RecordKind::Claim,
        rows: claims
            .iter()
            .map(|c| {
                let g = group(&c.token, &c.user);
                let row = Row {
                    rowid: c.rowid,
                    key: row_key(&c.id, &g),
                    // a backfilled row's time is the token's expiry: not the claim's moment
                    time: c.claimed_at.as_deref().filter(|_| !c.backfilled),
                };
                (g, row)
            })
            .collect(),
        lines: archive
            .invite_claims
            .iter()
            .map(|l| {
                let g = group(&l.record.token, &l.record.used_by);
                let mut line = Line::of(l, &l.record.at);
                line.at = opts.clock.to_utc(line.at).0;
                (g, line)
            })
            .collect(),
        offsets: vec![0],
        what: "invite claim",
        table: "invite_token_usage",
    }
    .reconcile(opts, out);
}
