//! Key normalisation and the hashed key sets that resolve references set-based.

use std::collections::HashMap;
use std::hash::Hasher;

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
    normalize_str(&text, kind)
}

/// [`normalize`] of a key as text (a TEXT value, or a key the v1 archive tree writes).
pub(crate) fn normalize_str(text: &str, kind: KeyKind) -> Option<NormKey> {
    if kind == KeyKind::Name {
        // Names are compared exactly: whitespace in a name is `R-USER-NAME`'s business, and a
        // reference to ' Mary ' must reach that row (merged or quarantined), not 'Mary'.
        return (!text.is_empty()).then(|| NormKey::Text(text.into()));
    }
    let cleaned = clean_key_text(text);
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
                // An empty key names nobody (`WHERE id = ''` is no key of a v2 row).
                if clean_key_text(s).is_empty() {
                    out.push("the key is empty");
                }
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

/// A hashed set of normalised keys → entry index (one per table, built in one pass).
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    hex: HexTable,
    text: HashMap<Box<str>, u32>,
    /// Name keys as v1's start-up rewrite would leave them, for the keys it changes (`None`:
    /// two keys rewrite alike, so the rewritten name names neither): see
    /// [`KeyIndex::index_rewritten_names`].
    rewritten: HashMap<Box<str>, Option<u32>>,
}

impl KeyIndex {
    /// Adds `key → idx`; when the key is already taken, returns the entry holding it.
    pub(crate) fn insert(&mut self, key: &NormKey, idx: u32) -> Result<(), u32> {
        match key {
            NormKey::Hex(h) => self.hex.insert(*h, idx),
            NormKey::Text(t) => match self.text.entry(t.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => Err(*o.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(idx);
                    Ok(())
                }
            },
        }
    }

    /// Replaces the entry of `key` (used when a better survivor takes a key).
    pub(crate) fn set(&mut self, key: &NormKey, idx: u32) {
        match key {
            NormKey::Hex(h) => self.hex.set(*h, idx),
            NormKey::Text(t) => {
                self.text.insert(t.clone(), idx);
            }
        }
    }

    /// The entry of a normalised key.
    pub(crate) fn get(&self, key: &NormKey) -> Option<u32> {
        match key {
            NormKey::Hex(h) => self.hex.get(*h),
            NormKey::Text(t) => self.text.get(t).copied(),
        }
    }

    /// The hex key recorded for entry `idx` by [`KeyIndex::insert`] or [`KeyIndex::set`] (0 when
    /// the entry has none: only meaningful for an entry whose key is known to be hex).
    pub(crate) fn hex_of(&self, idx: u32) -> u128 {
        self.hex.id(idx)
    }

    /// The entry a stored reference names, after normalisation ([`KeyIndex::get_ref`]).
    pub(crate) fn lookup(&self, v: &V1Value, kind: KeyKind) -> Option<u32> {
        self.get_ref(&normalize(v, kind)?, kind)
    }

    /// The entry a normalised reference names: its own entry, else, for a name, the entry of
    /// the name as v1's start-up rewrite left it ([`KeyIndex::get_respelled`]).
    pub(crate) fn get_ref(&self, key: &NormKey, kind: KeyKind) -> Option<u32> {
        self.get(key)
            .or_else(|| self.get_respelled(key, kind).map(|(idx, _)| idx))
    }

    /// Indexes the name keys as v1's start-up rewrite leaves them (for the few it changes), so
    /// that a reference is compared with each member's name after that same rewriting. Call once
    /// the name keys are in.
    pub(crate) fn index_rewritten_names(&mut self) {
        for (key, &idx) in &self.text {
            if let Some(r) = crate::text::v1_rewritten_name(key) {
                self.rewritten
                    .entry(r.into())
                    .and_modify(|e| *e = None)
                    .or_insert(Some(idx));
            }
        }
    }

    /// True when some name key is one v1's start-up rewrite changes.
    pub(crate) fn has_rewritten_names(&self) -> bool {
        !self.rewritten.is_empty()
    }

    /// When a name reference names no entry as stored but one once both are rewritten as v1
    /// rewrote every name at start-up without updating the references (rules.md, "Names that v1
    /// itself rewrote"): that entry and the rewritten name. Ambiguous ones name nothing.
    pub(crate) fn get_respelled(&self, key: &NormKey, kind: KeyKind) -> Option<(u32, String)> {
        let (KeyKind::Name, NormKey::Text(name)) = (kind, key) else {
            return None;
        };
        let changed = crate::text::v1_rewritten_name(name);
        let rewritten = changed.as_deref().unwrap_or(name);
        let as_stored = changed.as_deref().and_then(|r| self.text.get(r).copied());
        let as_rewritten = self.rewritten.get(rewritten).copied().flatten();
        let idx = match (as_stored, as_rewritten) {
            (Some(a), Some(b)) if a != b => return None,
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        Some((idx, rewritten.to_string()))
    }
}

/// 128-bit ids → entry index, compact: each entry's id in a dense column indexed by entry
/// (`ids[entry]`, 0 for an entry without one) and an open-addressing table (linear probing, at
/// most half full) of the entries that hold their id. About 24 bytes an entry, where a
/// `HashMap<u128, u32>` takes about 56; and the column doubles as the entries' own ids (a
/// prayer's v2 id is its hex key, [`KeyIndex::hex_of`]): the prayers' key set is one of the few
/// things the detector holds per row.
#[derive(Debug, Default)]
struct HexTable {
    slots: Vec<u32>,
    ids: Vec<u128>,
    /// Slots in use.
    held: usize,
}

/// An unused slot of [`HexTable`].
const EMPTY: u32 = u32::MAX;

impl HexTable {
    fn home(key: u128, mask: usize) -> usize {
        let mut h = IdHasher::default();
        h.write_u128(key);
        (h.finish() as usize) & mask
    }

    /// The slot holding `key` (`Ok`), else the empty slot where it would go (`Err`). The table
    /// must have slots.
    fn find(&self, key: u128) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut i = Self::home(key, mask);
        loop {
            let at = self.slots[i];
            if at == EMPTY {
                return Err(i);
            }
            if self.ids[at as usize] == key {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn get(&self, key: u128) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        Some(self.slots[self.find(key).ok()?])
    }

    /// The id recorded for entry `idx` (0 when it has none).
    fn id(&self, idx: u32) -> u128 {
        self.ids.get(idx as usize).copied().unwrap_or(0)
    }

    /// Records `key` as entry `idx`'s id, and indexes it unless another entry holds it (whose
    /// index is returned).
    fn insert(&mut self, key: u128, idx: u32) -> Result<(), u32> {
        let slot = self.place(key, idx);
        match self.slots[slot] {
            EMPTY => {
                self.slots[slot] = idx;
                self.held += 1;
                Ok(())
            }
            holder => Err(holder),
        }
    }

    /// Records `key` as entry `idx`'s id and makes `idx` its holder.
    fn set(&mut self, key: u128, idx: u32) {
        let slot = self.place(key, idx);
        if self.slots[slot] == EMPTY {
            self.held += 1;
        }
        self.slots[slot] = idx;
    }

    /// Stores entry `idx`'s id (growing the table first when it would be more than half full);
    /// returns `key`'s slot, or the empty slot where it would go.
    fn place(&mut self, key: u128, idx: u32) -> usize {
        let at = idx as usize;
        if self.ids.len() <= at {
            self.ids.resize(at + 1, 0);
        }
        if (self.held + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let slot = self.find(key).unwrap_or_else(|empty| empty);
        debug_assert!(
            matches!(self.ids[at], 0) || self.ids[at] == key || self.get(self.ids[at]) != Some(idx),
            "entry {idx} is already indexed under another id"
        );
        self.ids[at] = key;
        slot
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; len]);
        let mask = len - 1;
        for at in old.into_iter().filter(|&at| at != EMPTY) {
            let mut i = Self::home(self.ids[at as usize], mask);
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = at;
        }
    }
}

/// Rowid → entry index of a table read in one rowid-order scan (entry `i` is the `i`-th row
/// read), and back. Nothing is stored when the rowids are one contiguous range (the usual case).
#[derive(Debug)]
pub(crate) enum RowidIndex {
    /// Rowids `first .. first + len`, entry = rowid − first.
    Range {
        /// The first rowid.
        first: i64,
        /// Number of rows.
        len: u32,
    },
    /// Ascending rowids with gaps: entry = position.
    Sorted(Vec<i64>),
    /// Rowids in scan order that are not ascending: never expected (a full scan of a rowid table
    /// comes in rowid order), kept correct rather than fast (`get` searches linearly).
    Unordered(Vec<i64>),
}

impl RowidIndex {
    /// The index of the rowids in scan order (entry `i` = `rowids[i]`).
    pub(crate) fn new(mut rowids: Vec<i64>) -> Self {
        let first = rowids.first().copied().unwrap_or(0);
        let contiguous = rowids
            .iter()
            .enumerate()
            .all(|(i, &r)| r.checked_sub(first) == Some(i as i64));
        if contiguous {
            return RowidIndex::Range {
                first,
                len: rowids.len() as u32,
            };
        }
        rowids.shrink_to_fit();
        if rowids.windows(2).all(|w| w[0] < w[1]) {
            RowidIndex::Sorted(rowids)
        } else {
            RowidIndex::Unordered(rowids)
        }
    }

    /// The entry of `rowid`, if it was read.
    pub(crate) fn get(&self, rowid: i64) -> Option<u32> {
        match self {
            RowidIndex::Range { first, len } => {
                let i = rowid.checked_sub(*first)?;
                (0..i64::from(*len)).contains(&i).then_some(i as u32)
            }
            RowidIndex::Sorted(v) => v.binary_search(&rowid).ok().map(|i| i as u32),
            RowidIndex::Unordered(v) => v.iter().position(|&r| r == rowid).map(|i| i as u32),
        }
    }

    /// The rowid of entry `idx` (which must exist).
    pub(crate) fn rowid_of(&self, idx: u32) -> i64 {
        match self {
            RowidIndex::Range { first, .. } => first + i64::from(idx),
            RowidIndex::Sorted(v) | RowidIndex::Unordered(v) => v[idx as usize],
        }
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

    #[test]
    fn the_compact_id_table_keeps_the_first_holder_until_set() {
        let mut idx = KeyIndex::default();
        for i in 0..1000u32 {
            let k =
                NormKey::Hex(u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
            assert_eq!(idx.insert(&k, i), Ok(()));
            assert_eq!(idx.insert(&k, i + 5000), Err(i));
        }
        let k7 = NormKey::Hex(7u128.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        idx.set(&k7, 1042);
        assert_eq!(idx.get(&k7), Some(1042));
        idx.set(&NormKey::Hex(1), 9999);
        assert_eq!(idx.get(&NormKey::Hex(1)), Some(9999));
        assert_eq!(idx.hex_of(9999), 1);
        assert_eq!(
            idx.hex_of(7),
            7u128.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        );
        // Every key stays reachable through the growths.
        for i in 0..1000u32 {
            let k =
                NormKey::Hex(u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
            assert_eq!(idx.get(&k), Some(if i == 7 { 1042 } else { i }));
        }
        assert_eq!(idx.get(&NormKey::Hex(2)), None);
    }

    #[test]
    fn rowid_index_finds_each_entry() {
        for rowids in [vec![3, 4, 5, 6], vec![1, 2, 9, 12], vec![5, 1, 7], vec![]] {
            let index = RowidIndex::new(rowids.clone());
            for (i, &r) in rowids.iter().enumerate() {
                assert_eq!(index.get(r), Some(i as u32), "{rowids:?}");
                assert_eq!(index.rowid_of(i as u32), r, "{rowids:?}");
            }
            assert_eq!(index.get(100), None);
            assert_eq!(index.get(0), None);
        }
    }
}
