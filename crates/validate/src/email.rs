//! The validator's own reading of v1's e-mail database (rules.md "E-mail addresses"): every
//! `user_email` row read through `thywill-v1`, decrypted here with the key the migration was
//! given (Fernet, its own call), and decided from the spec again, without the detector: which
//! member's `users.email` and `email_verified_at` v2 must hold, and where each row must end
//! for the law. A row the run decided otherwise, or a finding the derivation says must exist
//! but the run does not have, is a violation. No address is ever put in a message: each is
//! masked ([`thywill_v1::mask::mask_address`]).

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::NaiveDateTime;
use thywill_v1::mask::mask_address;
use thywill_v1::{EmailKey, V1EmailDb, V1Error, V1Value};

use crate::canon::{CanonTable, Cell};
use crate::expected::{Disposition, LawTally, Ledger};

/// The v1 table.
pub const TABLE: &str = "user_email";

/// v1's e-mail database and the key the migration was given (`--v1-email-db`).
#[derive(Debug, Clone)]
pub struct EmailSource {
    /// `email.db`.
    pub db: PathBuf,
    /// v1's `EMAIL_ENCRYPTION_KEY`.
    pub key: EmailKey,
}

/// What one row must become.
#[derive(Debug, Clone, PartialEq)]
enum Fate {
    /// Member `0` gets address `1`, verified at `2`.
    Carried(String, String, Option<NaiveDateTime>),
    /// Kept out of v2 for this reason.
    Out(Disposition, &'static str),
}

/// An address: one `@` with a local part and a domain of at least two dot-separated labels of
/// letters, digits and inner hyphens, no space or control or quoting character, ≤ 255 chars.
fn looks_like_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c == '-' || c.is_alphanumeric())
    };
    let labels: Vec<&str> = domain.split('.').collect();
    s.chars().count() <= 255
        && !local.is_empty()
        && local.chars().count() <= 64
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c))
        && labels.len() > 1
        && labels.iter().all(|l| label_ok(l))
        && labels.last().is_some_and(|l| l.chars().count() > 1)
}

/// The stored time as a timestamp: `verified_at`, else `added_at` (decisions.md).
fn when(verified_at: &V1Value, added_at: &V1Value) -> Option<NaiveDateTime> {
    crate::rules::parse_time(verified_at).or_else(|| crate::rules::parse_time(added_at))
}

/// Derives every row's fate, sets `users.email`/`email_verified_at` of the expected `users`
/// table, and returns the law for `user_email` (each row traced against the run's findings and
/// v2's users). `resolve` maps a stored `user_id` to the written member's v2 id (after merges).
pub(crate) fn derive(
    src: &EmailSource,
    ledger: &Ledger,
    resolve: &dyn Fn(&V1Value) -> Option<String>,
    users: &mut CanonTable,
    actual_users: &CanonTable,
    silent: &mut dyn FnMut(&str),
) -> Result<LawTally, V1Error> {
    let db = V1EmailDb::open(&src.db)?;
    let rows = db.rows()?;
    let fernet = fernet::Fernet::new(src.key.expose());
    let mut law = LawTally::new(TABLE);
    let mut fates: Vec<Fate> = Vec::with_capacity(rows.len());
    let mut changed: Vec<bool> = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut was_changed = false;
        let fate = (|| {
            let Some(member) = resolve(&r.user_id) else {
                return Fate::Out(
                    Disposition::Quarantined,
                    "its member is not a written member",
                );
            };
            let plain = match (&fernet, r.email_encrypted.as_str()) {
                (Some(f), Some(t)) => f.decrypt_at_time(t.trim(), None, u64::MAX / 2).ok(),
                _ => None,
            };
            let Some(plain) = plain else {
                return Fate::Out(Disposition::Quarantined, "the key does not decrypt it");
            };
            let Ok(plain) = String::from_utf8(plain) else {
                return Fate::Out(Disposition::Quarantined, "it decrypts to bytes, not text");
            };
            let address = plain.trim().to_lowercase();
            if !looks_like_address(&address) {
                return Fate::Out(Disposition::Quarantined, "it is not an address");
            }
            if r.email_verified.as_bool() != Some(true) {
                return Fate::Out(Disposition::NotCarried, "it was never verified");
            }
            was_changed = address != plain || crate::rules::parse_time(&r.verified_at).is_none();
            Fate::Carried(member, address, when(&r.verified_at, &r.added_at))
        })();
        fates.push(fate);
        changed.push(was_changed);
    }
    // One address per member, the one verified last; then one member per address, the first to
    // verify it. Candidates are compared by (time, rowid), a missing time counting as the
    // earliest for "last" and the latest for "first".
    let order = |i: usize| -> (Option<NaiveDateTime>, i64) {
        match &fates[i] {
            Fate::Carried(_, _, t) => (*t, rows[i].rowid),
            Fate::Out(..) => (None, rows[i].rowid),
        }
    };
    let mut latest: HashMap<String, usize> = HashMap::new();
    for (i, fate) in fates.iter().enumerate() {
        if let Fate::Carried(member, ..) = fate {
            let keep = match latest.get(member) {
                Some(&j) => order(i) > order(j),
                None => true,
            };
            if keep {
                latest.insert(member.clone(), i);
            }
        }
    }
    let mut first: HashMap<String, usize> = HashMap::new();
    for &i in latest.values() {
        if let Fate::Carried(_, address, _) = &fates[i] {
            let first_key = |k: usize| {
                let (t, rowid) = order(k);
                (t.is_none(), t, rowid)
            };
            let keep = match first.get(address) {
                Some(&j) => first_key(i) < first_key(j),
                None => true,
            };
            if keep {
                first.insert(address.clone(), i);
            }
        }
    }
    let winners: std::collections::HashSet<usize> = first.values().copied().collect();
    let email_col = users.columns.iter().position(|c| *c == "email");
    let verified_col = users.columns.iter().position(|c| *c == "email_verified_at");
    for (i, r) in rows.iter().enumerate() {
        law.read += 1;
        let key =
            r.id.key_text()
                .unwrap_or_else(|| format!("rowid:{}", r.rowid));
        let derived = match &fates[i] {
            Fate::Carried(..) if !winners.contains(&i) => Some(Disposition::NotCarried),
            Fate::Carried(..) => None,
            Fate::Out(d, _) => Some(*d),
        };
        let recorded = ledger.excluded_in(TABLE, &key);
        match (derived, recorded) {
            (None, Some(d)) => {
                law.account(d);
                law.violation(format!(
                    "{key}: a finding says {d:?}, yet the address is verified, decrypts and is its member's first: it belongs in v2"
                ));
            }
            (Some(d), None) => {
                law.violation(format!(
                    "{key}: {} ({d:?}), yet the run has no finding keeping it out of v2",
                    match &fates[i] {
                        Fate::Out(_, why) => *why,
                        Fate::Carried(..) => "the address went to another row",
                    }
                ));
            }
            (Some(d), Some(got)) => {
                law.account(got);
                if d != got {
                    law.violation(format!("{key}: the run says {got:?}, the spec {d:?}"));
                }
            }
            (None, None) => {
                let Fate::Carried(member, address, at) = &fates[i] else {
                    unreachable!("a derived write is a carried fate")
                };
                if changed[i] && !ledger.is_repaired_in(TABLE, &key) {
                    silent(&key);
                }
                let cell = |c: Option<usize>| {
                    c.and_then(|c| actual_users.rows.get(member).map(|row| &row[c]))
                };
                let found = cell(email_col) == Some(&Cell::Str(address.clone()));
                law.written_in(ledger, &key, found, || {
                    format!("{} on user {member}", mask_address(address))
                });
                if let Some(row) = users.rows.get_mut(member) {
                    if let Some(c) = email_col {
                        row[c] = Cell::Str(address.clone());
                    }
                    if let Some(c) = verified_col {
                        row[c] = at.map_or(Cell::Null, Cell::Ts);
                    }
                }
            }
        }
    }
    Ok(law)
}

#[cfg(test)]
mod tests {
    use super::looks_like_address;

    #[test]
    fn addresses() {
        assert!(looks_like_address("a.b+c@mail.example.org"));
        for s in [
            "x",
            "x@y",
            "@y.org",
            "x y@z.org",
            "x@z.o",
            "x@@z.org",
            "x@z..org",
        ] {
            assert!(!looks_like_address(s), "{s}");
        }
    }
}
