//! `R-EMAIL`: v1's separate e-mail database (`user_email`, rules.md "E-mail addresses"). Each
//! row is decrypted with v1's Fernet key and decided: a verified address of a carried member
//! becomes its `users.email` (lower-cased and trimmed) with `email_verified_at`; an unverified one
//! is not carried; one that does not decrypt, or is not an address, is quarantined; an address
//! of several members goes to the one who verified it first; the row of a member who is not
//! carried follows its member. The plaintext never leaves this module but as the plan's value:
//! every reason shows it masked ([`thywill_v1::mask::mask_address`]).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use thywill_v1::mask::mask_address;
use thywill_v1::{EmailKey, EmailRow, V1EmailDb};

use super::users::Users;
use super::{key_text, resolve_parent, show, Ctx, Parent, RowFindings};
use crate::ids::hex_id;
use crate::model::{Decision, DetectError, RuleId};
use crate::time;

/// The table of `email.db` the rule reads.
pub(crate) const TABLE: &str = thywill_v1::email::EMAIL_TABLE;

/// The e-mail side of a run: v1's `email.db` and the key it was encrypted with.
#[derive(Clone, Copy, Debug)]
pub struct EmailInput<'a> {
    /// The opened `email.db`.
    pub db: &'a V1EmailDb,
    /// v1's `EMAIL_ENCRYPTION_KEY`.
    pub key: &'a EmailKey,
}

/// The address a written member gets in v2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlannedEmail {
    pub(crate) address: String,
    pub(crate) verified_at: Option<NaiveDateTime>,
}

/// Whether `key` is a Fernet key (32 bytes, url-safe base64): the binaries ask before anything
/// is read, so a wrong key is a usage error, not 100 % quarantined rows.
pub fn key_is_usable(key: &EmailKey) -> bool {
    fernet::Fernet::new(key.expose()).is_some()
}

/// Decrypts one stored token with no time-to-live and no clock-skew limit (the stored data is
/// read as v1 wrote it, whatever the clock of v1's server then): the plaintext bytes, or `None`.
fn decrypt(f: &fernet::Fernet, token: &str) -> Option<Vec<u8>> {
    f.decrypt_at_time(token.trim(), None, u64::MAX / 2).ok()
}

/// True when `s` (lower-cased and trimmed) has the shape of an address: one `@`, a local part
/// of 1–64 characters, a domain of dot-separated labels (letters, digits, `-`, not at a label's
/// ends; the last at least two characters), no space, control or quoting character, at most 255
/// characters in all (v2's `users.email`).
pub(crate) fn is_address(s: &str) -> bool {
    if s.is_empty() || s.chars().count() > 255 {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    if local.is_empty() || local.chars().count() > 64 || local.chars().any(bad) {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|l| l.chars().count() >= 2)
}

/// A row whose address may be carried, waiting for the choices that need every row.
struct Candidate {
    row: usize,
    member: u128,
    address: String,
    /// `verified_at`, else `added_at` (see `docs/decisions.md`).
    verified_at: Option<NaiveDateTime>,
}

/// "Verified first" order: the earliest time, a row with no time after every timed one, then
/// the smaller rowid.
fn first_key(c: &Candidate, rowid: i64) -> (bool, Option<NaiveDateTime>, i64) {
    (c.verified_at.is_none(), c.verified_at, rowid)
}

/// Decides every `user_email` row; returns the address of each member that gets one (by v2 id).
pub(crate) fn run(
    ctx: &mut Ctx<'_>,
    users: &Users,
    input: &EmailInput<'_>,
) -> Result<BTreeMap<u128, PlannedEmail>, DetectError> {
    let rows: Vec<EmailRow> = input.db.rows()?;
    ctx.sink.count_read(TABLE, rows.len() as u64);
    // Checked by the binaries first; a key that is not one quarantines nothing silently here.
    let fernet = fernet::Fernet::new(input.key.expose()).ok_or(DetectError::EmailKey)?;
    let mut rfs: Vec<RowFindings> = rows
        .iter()
        .map(|r| RowFindings::new(r.rowid, key_text(&r.id, r.rowid)))
        .collect();
    let mut candidates = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(c) = candidate(&mut rfs[i], users, &fernet, i, row) {
            candidates.push(c);
        }
    }
    let rowid = |c: &Candidate| rows[c.row].rowid;
    let (by_member, mut beaten) = one_address_per_member(&candidates, &rfs, rowid);
    let by_address = one_member_per_address(&candidates, &rfs, rowid, &by_member, &mut beaten);
    for (ci, reason) in beaten {
        rfs[candidates[ci].row].push(RuleId::Email, Decision::NotCarried, reason);
    }
    let mut planned = BTreeMap::new();
    for &ci in by_address.values() {
        let c = &candidates[ci];
        planned.insert(
            c.member,
            PlannedEmail {
                address: c.address.clone(),
                verified_at: c.verified_at,
            },
        );
    }
    for rf in &rfs {
        ctx.sink.commit(TABLE, rf);
    }
    Ok(planned)
}

/// The per-row steps of `R-EMAIL` on row `i`: its member, its address (decrypted, an address,
/// verified; respelled lower-cased and trimmed) and its time. `None` when the row is decided
/// already (quarantined or not carried, its finding recorded).
fn candidate(
    rf: &mut RowFindings,
    users: &Users,
    fernet: &fernet::Fernet,
    i: usize,
    row: &EmailRow,
) -> Option<Candidate> {
    let member = member_of(rf, users, row)?;
    let (address, text) = decrypted_address(rf, fernet, row)?;
    if !is_verified(rf, row, &address) {
        return None;
    }
    if text.as_deref() != Some(address.as_str()) {
        rf.push(
            RuleId::Email,
            Decision::Repaired,
            format!(
                "address {} stored with surrounding space or capitals: carried lower-cased and trimmed, as v1 does",
                mask_address(&address)
            ),
        );
    }
    let verified_at = verified_time(rf, row);
    Some(Candidate {
        row: i,
        member,
        address,
        verified_at,
    })
}

/// The v2 id of the carried member the row belongs to; else the row is quarantined.
fn member_of(rf: &mut RowFindings, users: &Users, row: &EmailRow) -> Option<u128> {
    let parent = resolve_parent(&users.index, users.kind, &row.user_id, |e| users.target(e));
    let reason = match parent {
        Parent::Found(id) => return Some(id),
        Parent::None => "user_id is empty: the address belongs to no member; quarantined".to_string(),
        Parent::Missing(v) => format!("member {v} does not exist; the address is quarantined"),
        Parent::NotWritten(v) => format!(
            "member {v} is not carried (see its finding); the address follows its member: quarantined"
        ),
    };
    rf.push(RuleId::Email, Decision::Quarantined, reason);
    None
}

/// The row's address (lower-cased and trimmed) and the decrypted text it came from; the row is
/// quarantined when its token does not decrypt or the text is no address.
fn decrypted_address(
    rf: &mut RowFindings,
    fernet: &fernet::Fernet,
    row: &EmailRow,
) -> Option<(String, Option<String>)> {
    let plain = row
        .email_encrypted
        .as_str()
        .and_then(|t| decrypt(fernet, t));
    let Some(plain) = plain else {
        rf.push(
            RuleId::Email,
            Decision::Quarantined,
            "email_encrypted does not decrypt with the key given (not a Fernet token of this key); quarantined",
        );
        return None;
    };
    let text = String::from_utf8(plain).ok();
    let address = text.as_deref().map(|t| t.trim().to_lowercase());
    let Some(address) = address.filter(|a| is_address(a)) else {
        rf.push(
            RuleId::Email,
            Decision::Quarantined,
            format!(
                "email_encrypted decrypts to {} that is not an e-mail address; quarantined",
                match &text {
                    Some(t) => format!("text of {} character(s)", t.chars().count()),
                    None => "bytes that are not UTF-8".to_string(),
                }
            ),
        );
        return None;
    };
    Some((address, text))
}

/// True when the address was verified; else it is not carried.
fn is_verified(rf: &mut RowFindings, row: &EmailRow, address: &str) -> bool {
    if row.email_verified.as_bool() == Some(true) {
        return true;
    }
    rf.push(
        RuleId::Email,
        Decision::NotCarried,
        format!(
            "address {} was never verified (email_verified {}): not carried",
            mask_address(address),
            show(&row.email_verified)
        ),
    );
    false
}

/// `email_verified_at`: `verified_at`, else (with a repair) `added_at`, else NULL.
fn verified_time(rf: &mut RowFindings, row: &EmailRow) -> Option<NaiveDateTime> {
    if let Some(p) = time::parse_value(&row.verified_at) {
        return Some(p.at);
    }
    let added = time::parse_value(&row.added_at).map(|p| p.at);
    rf.push(
        RuleId::Email,
        Decision::Repaired,
        format!(
            "verified_at {} is not a time: email_verified_at {}",
            show(&row.verified_at),
            match added {
                Some(a) => format!("taken from added_at, {} UTC", time::canonical(a)),
                None => "left NULL (added_at is not a time either)".to_string(),
            }
        ),
    );
    added
}

/// One address per member: the one verified last (v1 deletes a member's other verified rows
/// when one is verified, so the latest is v1's own). Returns each member's candidate and the
/// beaten candidates with their reasons.
fn one_address_per_member(
    candidates: &[Candidate],
    rfs: &[RowFindings],
    rowid: impl Fn(&Candidate) -> i64,
) -> (HashMap<u128, usize>, Vec<(usize, String)>) {
    let mut by_member: HashMap<u128, usize> = HashMap::new();
    let mut beaten: Vec<(usize, String)> = Vec::new();
    for (ci, c) in candidates.iter().enumerate() {
        match by_member.get(&c.member).copied() {
            None => {
                by_member.insert(c.member, ci);
            }
            Some(prev) => {
                let p = &candidates[prev];
                let later = (c.verified_at.is_some(), c.verified_at, rowid(c))
                    > (p.verified_at.is_some(), p.verified_at, rowid(p));
                let (win, lose) = if later { (ci, prev) } else { (prev, ci) };
                by_member.insert(c.member, win);
                beaten.push((
                    lose,
                    format!(
                        "the member has a later verified address (row {}); v2 keeps one address per member: not carried",
                        rfs[candidates[win].row].key
                    ),
                ));
            }
        }
    }
    (by_member, beaten)
}

/// One member per address: the one who verified it first. Returns each address's candidate;
/// the beaten ones join `beaten`.
fn one_member_per_address<'c>(
    candidates: &'c [Candidate],
    rfs: &[RowFindings],
    rowid: impl Fn(&Candidate) -> i64,
    by_member: &HashMap<u128, usize>,
    beaten: &mut Vec<(usize, String)>,
) -> HashMap<&'c str, usize> {
    let mut by_address: HashMap<&str, usize> = HashMap::new();
    let mut picks: Vec<usize> = by_member.values().copied().collect();
    picks.sort_by_key(|&ci| first_key(&candidates[ci], rowid(&candidates[ci])));
    for ci in picks {
        let c = &candidates[ci];
        match by_address.get(c.address.as_str()) {
            None => {
                by_address.insert(&c.address, ci);
            }
            Some(&first) => beaten.push((
                ci,
                format!(
                    "address {} is also held by member {}, who verified it first (row {}); an address belongs to one member in v2: not carried",
                    mask_address(&c.address),
                    hex_id(candidates[first].member),
                    rfs[candidates[first].row].key
                ),
            )),
        }
    }
    by_address
}

#[cfg(test)]
mod tests {
    use super::is_address;

    #[test]
    fn addresses_and_not_addresses() {
        for a in [
            "mary@example.org",
            "a.b+c@mail.example.co.uk",
            "é@exämple.de",
        ] {
            assert!(is_address(a), "{a}");
        }
        for s in [
            "",
            "mary",
            "mary@",
            "@example.org",
            "mary@localhost",
            "mary@@example.org",
            "ma ry@example.org",
            "mary@example.o",
            "mary@-x.org",
            "mary@example..org",
            "<mary@example.org>",
        ] {
            assert!(!is_address(s), "{s}");
        }
    }
}
