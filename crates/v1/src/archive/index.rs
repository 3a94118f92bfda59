//! The compact form a scan keeps of a tree's prayer files ([`V1PrayerIndex`]), and the fixed-size
//! keys and fingerprints the reconciliation compares instead of whole strings.
//!
//! A prayer file costs its path plus 48 bytes here, whatever its text; the reconciliation reads
//! the file again when a finding needs its words ([`V1PrayerIndex::read`]).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use chrono::NaiveDateTime;

use super::prayer::V1PrayerFile;
use super::{unreadable, IdKey, Result, TextKey};

/// A fixed-size stand-in for an id or a name: `(0, value)` for 32 lower-case hex digits (exact),
/// else `(1, 128-bit hash of the text)` (equal texts give equal keys; two different texts give
/// the same key with a chance of about 2^-128).
pub type Key = (u8, u128);

/// The [`Key`] of `text` as written (callers normalise first where the rules fold case).
pub fn key_of(text: &str) -> Key {
    let hex = text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match u128::from_str_radix(text, 16) {
        Ok(v) if hex => (0, v),
        _ => (
            1,
            u128::from(fingerprint((0u8, text))) << 64 | u128::from(fingerprint((1u8, text))),
        ),
    }
}

/// A 64-bit fingerprint, for comparing one value with one other (author, text): two different
/// values agree with a chance of about 2^-64.
pub fn fingerprint(value: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// What the reconciliation compares of one prayer file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrayerEntry {
    /// The key of the id, as the scan's [`IdKey`] makes it.
    pub id: Key,
    /// [`fingerprint`] of the author's name.
    pub author: u64,
    /// The request text's fingerprint, as the scan's [`TextKey`] makes it.
    pub text: u64,
    /// The `Submitted` time.
    pub submitted: NaiveDateTime,
}

impl PrayerEntry {
    fn of(file: &V1PrayerFile, id_key: IdKey, text_key: TextKey) -> Self {
        PrayerEntry {
            id: id_key(&file.id),
            author: fingerprint(&file.author),
            text: text_key(&file.text),
            submitted: file.submitted.at,
        }
    }
}

/// The prayer files of a scanned tree, in path order, as the reconciliation needs them: each
/// file's path, id key, `Submitted` time and fingerprints of its author and text. The files
/// themselves are read again when needed ([`V1PrayerIndex::read`]).
#[derive(Debug, Clone, Default)]
pub struct V1PrayerIndex {
    /// Every path, one after the other.
    paths: String,
    /// Where each path ends in `paths`.
    ends: Vec<usize>,
    entries: Vec<PrayerEntry>,
    /// Indices of `entries` ordered by (id key, index).
    by_id: Vec<u32>,
}

impl V1PrayerIndex {
    /// Number of prayer files that parsed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree holds no prayer file that parsed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The prayer files' paths (relative, `/`-separated), in path order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.path(i))
    }

    /// The path of file `i`.
    pub fn path(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.paths[start..self.ends[i]]
    }

    /// What is compared of file `i`.
    pub fn entry(&self, i: usize) -> &PrayerEntry {
        &self.entries[i]
    }

    /// The files whose normalised id has key `id`, in path order.
    pub fn with_id(&self, id: Key) -> impl Iterator<Item = usize> + '_ {
        let start = self
            .by_id
            .partition_point(|i| self.entries[*i as usize].id < id);
        self.by_id[start..]
            .iter()
            .map(|i| *i as usize)
            .take_while(move |i| self.entries[*i].id == id)
    }

    /// The file at `path`, if it is a prayer file that parsed.
    pub fn at_path(&self, path: &str) -> Option<usize> {
        let ix = self.bisect(path);
        (ix < self.len() && self.path(ix) == path).then_some(ix)
    }

    fn bisect(&self, path: &str) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.path(mid) < path {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Reads and parses file `i` again under `root` (for the details of a finding).
    pub fn read(&self, root: &Path, i: usize) -> Result<V1PrayerFile> {
        let rel = self.path(i);
        let path = root.join(rel);
        let bytes = std::fs::read(&path).map_err(|e| unreadable(&path, e))?;
        V1PrayerFile::parse(Path::new(rel), &bytes)
    }

    /// Adds a parsed file. Files come in scan order, which is path order for prayer files (their
    /// folders are `YYYY/MM`, all names of one length); [`Self::finish`] sorts otherwise.
    pub(crate) fn push(
        &mut self,
        rel: &str,
        file: &V1PrayerFile,
        id_key: IdKey,
        text_key: TextKey,
    ) {
        self.paths.push_str(rel);
        self.ends.push(self.paths.len());
        self.entries.push(PrayerEntry::of(file, id_key, text_key));
    }

    /// Builds the id index once every file is in.
    pub(crate) fn finish(&mut self) {
        if !(1..self.len()).all(|i| self.path(i - 1) < self.path(i)) {
            let mut order: Vec<usize> = (0..self.len()).collect();
            order.sort_by(|a, b| self.path(*a).cmp(self.path(*b)));
            let mut sorted = V1PrayerIndex::default();
            for i in order {
                sorted.paths.push_str(self.path(i));
                sorted.ends.push(sorted.paths.len());
                sorted.entries.push(self.entries[i]);
            }
            *self = sorted;
        }
        self.paths.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.by_id = (0..self.len() as u32).collect();
        self.by_id
            .sort_by_key(|i| (self.entries[*i as usize].id, *i));
    }
}
