//! Key normalisation and the hashed key sets that resolve references set-based.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use thywill_v1::V1Value;

use crate::text::{clean_key_text, is_invisible, parse_hex32, parse_lower_hex32};

/// How a table's keys look: hex ids (users in G0/G1, prayers, marks) or display names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// 32-hex ids, compared after trimming, stripping invisible characters and lower-casing.
    Hex,
    /// Display names, compared after trimming and stripping invisible characters.
    Name,
}

/// A normalised key: a 128-bit hex id, or text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum NormKey {
    /// 32 hex digits.
    Hex(u128),
    /// Anything else, cleaned.
    Text(Box<str>),
}

/// Normalises a stored key or reference. `None` for NULL or nothing left after cleaning.
pub(crate) fn normalize(v: &V1Value, kind: KeyKind) -> Option<NormKey> {
    let text: String = match v {
        V1Value::Null => return None,
        V1Value::Integer(i) => i.to_string(),
        V1Value::Real(r) => r.to_string(),
        V1Value::Text(b) => {
            if kind == KeyKind::Hex {
                // Fast path: the canonical shape needs no cleaning.
                if let Some(h) = parse_lower_hex32(b) {
                    return Some(NormKey::Hex(h));
                }
            }
            match std::str::from_utf8(b) {
                Ok(s) => s.to_string(),
                Err(_) if kind == KeyKind::Name => String::from_utf8_lossy(b).into_owned(),
                Err(_) => return Some(NormKey::Text(format!("x'{}'", hex::encode(b)).into())),
            }
        }
        V1Value::Blob(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) if kind == KeyKind::Hex && b.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                return Some(NormKey::Hex(u128::from_be_bytes(a)));
            }
            Err(_) if kind == KeyKind::Name => String::from_utf8_lossy(b).into_owned(),
            Err(_) => return Some(NormKey::Text(format!("x'{}'", hex::encode(b)).into())),
        },
    };
    if kind == KeyKind::Name {
        // Names are compared exactly: whitespace in a name is `R-USER-NAME`'s business, and a
        // reference to ' Mary ' must reach that row (merged or quarantined), not 'Mary'.
        return (!text.is_empty()).then(|| NormKey::Text(text.into()));
    }
    let cleaned = clean_key_text(&text);
    if cleaned.is_empty() {
        return None;
    }
    if kind == KeyKind::Hex {
        if let Some(h) = parse_hex32(&cleaned) {
            return Some(NormKey::Hex(h));
        }
    }
    Some(NormKey::Text(cleaned.into()))
}

/// What makes a stored key unfit for `WHERE key = ?` (empty when it is fine).
pub(crate) fn key_damage(v: &V1Value, kind: KeyKind) -> Vec<&'static str> {
    let mut out = Vec::new();
    match v {
        V1Value::Null => out.push("the key is NULL"),
        V1Value::Integer(_) => out.push("stored as INTEGER, not TEXT"),
        V1Value::Real(_) => out.push("stored as REAL, not TEXT"),
        V1Value::Blob(_) => out.push("stored as a BLOB, not TEXT"),
        V1Value::Text(b) => match std::str::from_utf8(b) {
            Err(_) => out.push("bytes that are not UTF-8"),
            Ok(_) if kind == KeyKind::Name => {}
            Ok(s) => {
                if s.trim() != s {
                    out.push("stray whitespace");
                }
                if s.chars().any(is_invisible) {
                    out.push("zero-width or invisible characters");
                }
                if s.chars().any(|c| c.is_ascii_uppercase()) {
                    let cleaned = clean_key_text(s);
                    if parse_hex32(&cleaned).is_some() {
                        out.push("upper-case hex");
                    }
                }
            }
        },
    }
    out
}

/// A hasher for 128-bit ids (one folded multiply instead of SipHash: every mark looks up two
/// of them). Ids are uuids or normalised hex; collisions only cost a probe, never a decision.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.write_u128(u128::from(x) ^ (u128::from(self.0) << 64));
    }

    fn write_u128(&mut self, x: u128) {
        let lo = (x as u64) ^ 0x243f_6a88_85a3_08d3 ^ self.0;
        let hi = ((x >> 64) as u64) ^ 0x1319_8a2e_0370_7344;
        let m = u128::from(lo).wrapping_mul(u128::from(hi) | 1);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// `HashMap` keyed by 128-bit ids.
pub(crate) type IdMap<V> = HashMap<u128, V, BuildHasherDefault<IdHasher>>;

/// A hashed set of normalised keys → entry index (one per table, built in one pass).
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    hex: IdMap<u32>,
    text: HashMap<Box<str>, u32>,
}

impl KeyIndex {
    /// Adds `key → idx`; when the key is already taken, returns the entry holding it.
    pub(crate) fn insert(&mut self, key: &NormKey, idx: u32) -> Result<(), u32> {
        let slot = match key {
            NormKey::Hex(h) => self.hex.entry(*h),
            NormKey::Text(t) => {
                return match self.text.entry(t.clone()) {
                    std::collections::hash_map::Entry::Occupied(o) => Err(*o.get()),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(idx);
                        Ok(())
                    }
                }
            }
        };
        match slot {
            std::collections::hash_map::Entry::Occupied(o) => Err(*o.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(idx);
                Ok(())
            }
        }
    }

    /// Replaces the entry of `key` (used when a better survivor takes a key).
    pub(crate) fn set(&mut self, key: &NormKey, idx: u32) {
        match key {
            NormKey::Hex(h) => {
                self.hex.insert(*h, idx);
            }
            NormKey::Text(t) => {
                self.text.insert(t.clone(), idx);
            }
        }
    }

    /// The entry of a normalised key.
    pub(crate) fn get(&self, key: &NormKey) -> Option<u32> {
        match key {
            NormKey::Hex(h) => self.hex.get(h).copied(),
            NormKey::Text(t) => self.text.get(t).copied(),
        }
    }

    /// The entry a stored reference names, after normalisation.
    pub(crate) fn lookup(&self, v: &V1Value, kind: KeyKind) -> Option<u32> {
        self.get(&normalize(v, kind)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_keys_normalise_to_the_clean_key() {
        let clean = normalize(
            &V1Value::text("0123456789abcdef0123456789abcdef"),
            KeyKind::Hex,
        );
        for v in [
            V1Value::text(" 0123456789ABCDEF0123456789abcdef"),
            V1Value::text("0123456789abcdef\u{200B}0123456789abcdef"),
            V1Value::Blob(b"0123456789abcdef0123456789abcdef".to_vec()),
            V1Value::Blob(
                0x0123456789abcdef0123456789abcdef_u128
                    .to_be_bytes()
                    .to_vec(),
            ),
        ] {
            assert_eq!(normalize(&v, KeyKind::Hex), clean, "{v:?}");
            assert!(!key_damage(&v, KeyKind::Hex).is_empty(), "{v:?}");
        }
        assert!(key_damage(
            &V1Value::text("0123456789abcdef0123456789abcdef"),
            KeyKind::Hex
        )
        .is_empty());
        assert!(key_damage(&V1Value::text("Mary"), KeyKind::Name).is_empty());
        assert!(key_damage(&V1Value::text(" Mary "), KeyKind::Name).is_empty());
        assert!(!key_damage(&V1Value::Blob(b"Mary".to_vec()), KeyKind::Name).is_empty());
        assert_eq!(
            normalize(&V1Value::Blob(b"Mary".to_vec()), KeyKind::Name),
            normalize(&V1Value::text("Mary"), KeyKind::Name)
        );
        assert_eq!(normalize(&V1Value::Null, KeyKind::Hex), None);
        assert_eq!(
            normalize(&V1Value::text("None"), KeyKind::Hex),
            Some(NormKey::Text("None".into()))
        );
    }
}
