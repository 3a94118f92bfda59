//! Marks, the one table that grows with the community, compared compactly: each side (derived
//! from v1, read back from v2) is held as one 32-byte entry per mark — a 128-bit hash of the
//! comparison key `prayer|user|marked_at` and a 64-bit digest of the only other cell, the mark id
//! — sorted by key hash and merged. The keys where the sides disagree (missing, unexpected,
//! changed, or present twice on one side) are then re-read from both sides in full by a second,
//! targeted pass, and compared by [`crate::canon::compare`], so a difference is still reported by
//! key and column exactly as for every other table.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

/// 128-bit hash of a mark's comparison key (prayer id, user id, `marked_at` to the microsecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyHash(u64, u64);

fn micros(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp_micros()
}

/// The key hash of the mark (`prayer`, `user`, `at`): equal exactly when
/// [`crate::canon::mark_key`] is (up to a 2⁻¹²⁸ collision).
pub fn key_hash(prayer: &str, user: &str, at: NaiveDateTime) -> KeyHash {
    let t = micros(at);
    let h = |seed: u8| {
        let mut h = DefaultHasher::new();
        seed.hash(&mut h);
        prayer.hash(&mut h);
        user.hash(&mut h);
        t.hash(&mut h);
        h.finish()
    };
    KeyHash(h(1), h(2))
}

fn id_digest(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    3u8.hash(&mut h);
    id.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: KeyHash,
    id: u64,
    /// Expected side only: the position of the v1 mark in its scan (for the law's examples).
    seq: u32,
    /// Expected side only: the id is not derivable (any value matches).
    any: bool,
    /// Expected side only: the v1 mark has a `repaired` finding.
    repaired: bool,
}

/// One side of the mark comparison.
#[derive(Debug, Default)]
pub struct MarkSide {
    entries: Vec<Entry>,
}

impl MarkSide {
    /// Adds a mark; `id` `None` means any id matches (expected side only).
    pub fn push(&mut self, key: KeyHash, id: Option<&str>) {
        self.push_traced(key, id, 0, false);
    }

    /// [`Self::push`] for the expected side, with the v1 mark's scan position and whether it
    /// has a `repaired` finding, so the law can be settled once the other side is read.
    pub fn push_traced(&mut self, key: KeyHash, id: Option<&str>, seq: u32, repaired: bool) {
        self.entries.push(Entry {
            key,
            id: id.map_or(0, id_digest),
            seq,
            any: id.is_none(),
            repaired,
        });
    }

    /// Traces this (expected) side in `actual` (both finished): the number of marks found,
    /// how many of those are repaired, and the scan positions of those not found, ascending.
    pub fn trace_in(&self, actual: &MarkSide) -> (u64, u64, Vec<u32>) {
        let a = &actual.entries;
        let (mut found, mut repaired, mut missing) = (0u64, 0u64, Vec::new());
        let mut j = 0;
        for e in &self.entries {
            while j < a.len() && a[j].key < e.key {
                j += 1;
            }
            if j < a.len() && a[j].key == e.key {
                found += 1;
                repaired += u64::from(e.repaired);
            } else {
                missing.push(e.seq);
            }
        }
        missing.sort_unstable();
        (found, repaired, missing)
    }

    /// Lets any id match for the marks pushed at these scan positions (before [`Self::finish`]).
    pub fn any_id_at(&mut self, seqs: &std::collections::HashSet<u32>) {
        for e in &mut self.entries {
            if seqs.contains(&e.seq) {
                e.any = true;
                e.id = 0;
            }
        }
    }

    /// Sorts by key hash (call once, after the last push).
    pub fn finish(&mut self) {
        self.entries.sort_unstable_by_key(|e| (e.key, e.id));
        self.entries.shrink_to_fit();
    }

    /// Number of marks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without marks.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when a mark with this key is present (after [`Self::finish`]).
    pub fn contains(&self, key: KeyHash) -> bool {
        self.entries.binary_search_by_key(&key, |e| e.key).is_ok()
    }

    /// sha256 over the (key hash, id digest) entries in key-hash order; `None` when an id is
    /// not derivable (such a side is compared entry by entry only).
    pub fn fingerprint(&self) -> Option<String> {
        let mut h = Sha256::new();
        for e in &self.entries {
            if e.any {
                return None;
            }
            h.update(e.key.0.to_be_bytes());
            h.update(e.key.1.to_be_bytes());
            h.update(e.id.to_be_bytes());
        }
        Some(hex::encode(h.finalize()))
    }
}

/// The keys where `expected` and `actual` disagree: on one side only, with a different id, or
/// present twice on a side.
pub fn differing_keys(expected: &MarkSide, actual: &MarkSide) -> HashSet<KeyHash> {
    let mut out = HashSet::new();
    for side in [expected, actual] {
        for w in side.entries.windows(2) {
            if w[0].key == w[1].key {
                out.insert(w[0].key);
            }
        }
    }
    let (e, a) = (&expected.entries, &actual.entries);
    let (mut i, mut j) = (0, 0);
    while i < e.len() || j < a.len() {
        match (e.get(i), a.get(j)) {
            (Some(x), Some(y)) if x.key == y.key => {
                if !x.any && x.id != y.id {
                    out.insert(x.key);
                }
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.key < y.key => {
                out.insert(x.key);
                i += 1;
            }
            (Some(x), None) => {
                out.insert(x.key);
                i += 1;
            }
            (_, Some(y)) => {
                out.insert(y.key);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn differences_are_found_by_key() {
        let k1 = key_hash("p1", "u1", t("2025-01-01 00:00:00"));
        let k2 = key_hash("p1", "u1", t("2025-01-01 00:00:00.000001"));
        let k3 = key_hash("p1", "u2", t("2025-01-01 00:00:00"));
        let k4 = key_hash("p2", "u2", t("2025-01-01 00:00:00"));
        assert_ne!(k1, k2);
        assert_ne!(k1, k3);
        let mut e = MarkSide::default();
        let mut a = MarkSide::default();
        e.push(k1, Some("a"));
        e.push(k2, None);
        e.push(k3, Some("c"));
        e.push(k4, Some("d"));
        e.push(k4, Some("d"));
        a.push(k1, Some("a"));
        a.push(k2, Some("whatever"));
        a.push(k3, Some("C"));
        e.finish();
        a.finish();
        assert!(e.fingerprint().is_none() && a.fingerprint().is_some());
        let d = differing_keys(&e, &a);
        assert_eq!(d, HashSet::from([k3, k4]));
        assert!(a.contains(k2) && !a.contains(k4));
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn expected_marks_are_traced_in_the_other_side() {
        let k = |u: &str| key_hash("p", u, t("2025-01-01 00:00:00"));
        let mut e = MarkSide::default();
        let mut a = MarkSide::default();
        e.push_traced(k("u3"), Some("x"), 7, false);
        e.push_traced(k("u1"), Some("x"), 2, true);
        e.push_traced(k("u1"), Some("y"), 3, false);
        e.push_traced(k("u2"), None, 5, true);
        a.push(k("u1"), Some("x"));
        e.finish();
        a.finish();
        assert_eq!(e.trace_in(&a), (2, 1, vec![5, 7]));
    }
}
