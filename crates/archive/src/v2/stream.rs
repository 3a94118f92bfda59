//! The full, streaming writer of a v2 archive tree.
//!
//! Memory design for the activity months: a mark costs 28 bytes in memory (whole-second time,
//! prayer id as `u128`, an index into the table of display names), kept per month. When more than
//! [`V2WriteOptions::marks_in_memory`] marks are held, every month's records are appended to a
//! per-month spill file in a temporary folder outside the archive root and the memory is freed.
//! At [`V2ArchiveWriter::finish`] each month is loaded, sorted and written in turn, so peak memory
//! is the in-memory budget plus the largest month, whatever the total number of marks. Users and
//! prayers are rendered and written as they arrive; the community timeline keeps a compact record
//! per user, prayer and answer.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime};
use sha2::{Digest, Sha256};

use super::logs::{
    activity_path, community_path, push_activity_block, push_community_line, CommunityKind,
};
use super::{prayer_path, render_prayer, render_user, user_path, ArchivePrayer, ArchiveUser, Rec};
use crate::carry::{carry_into, CarryReport};
use crate::error::{ArchiveError, Result};
use crate::manifest::{render_manifest, scan_manifest, MANIFEST_NAME};
use crate::safety::{whole_seconds, YearMonth};
use crate::writer::{remove_stale_temps, AtomicWriter, Durability, Outcome};

/// Options of a full write.
#[derive(Debug, Clone)]
pub struct V2WriteOptions {
    /// How files are made durable (default [`Durability::Batched`]).
    pub durability: Durability,
    /// Files staged per batch before a sync, the renames and the folder fsyncs (default 4096).
    pub batch_files: usize,
    /// Marks held in memory before they are spilled to disk (default 1,048,576 ≈ 28 MiB).
    pub marks_in_memory: usize,
    /// Where spill files go (default: the system temp folder). Never inside the archive root.
    pub spill_dir: Option<PathBuf>,
}

impl Default for V2WriteOptions {
    fn default() -> Self {
        V2WriteOptions {
            durability: Durability::Batched,
            batch_files: 4096,
            marks_in_memory: 1 << 20,
            spill_dir: None,
        }
    }
}

/// What a full write did to the v2 files (carried v1 files are counted in [`CarryReport`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct V2WriteReport {
    /// v2 files (and the manifest) that did not exist.
    pub created: u64,
    /// v2 files that existed with other bytes.
    pub updated: u64,
    /// v2 files whose bytes were already right.
    pub unchanged: u64,
    /// Lines of the manifest (every file under the root but the manifest).
    pub manifest_files: usize,
    /// sha256 of `MANIFEST.sha256`, lower-case hex.
    pub manifest_sha256: String,
    /// Marks written to the activity months.
    pub marks: u64,
    /// Whether marks were spilled to disk (memory budget exceeded).
    pub spilled: bool,
}

#[derive(Clone, Copy)]
struct CompactMark {
    secs: i64,
    prayer: u128,
    name: u32,
}

const RECORD: usize = 28;

impl CompactMark {
    fn encode(&self, out: &mut [u8; RECORD]) {
        out[..8].copy_from_slice(&self.secs.to_le_bytes());
        out[8..24].copy_from_slice(&self.prayer.to_le_bytes());
        out[24..].copy_from_slice(&self.name.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        CompactMark {
            secs: i64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
            prayer: u128::from_le_bytes(b[8..24].try_into().unwrap_or_default()),
            name: u32::from_le_bytes(b[24..28].try_into().unwrap_or_default()),
        }
    }
}

#[derive(Default)]
struct Names {
    index: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), i);
        i
    }

    fn get(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
}

#[derive(Default)]
struct Month {
    marks: Vec<CompactMark>,
    spilled: bool,
}

/// Writes a whole v2 archive tree: feed users, then prayers (each with its marks), optionally
/// carry a v1 tree, then [`finish`](Self::finish) writes the monthly files and the manifest.
pub struct V2ArchiveWriter {
    writer: AtomicWriter,
    options: V2WriteOptions,
    report: V2WriteReport,
    names: Names,
    months: BTreeMap<YearMonth, Month>,
    in_memory: usize,
    spill: Option<tempfile::TempDir>,
    community: BTreeMap<YearMonth, Vec<(i64, CommunityKind, u32)>>,
}

fn secs(at: &NaiveDateTime) -> i64 {
    whole_seconds(at).and_utc().timestamp()
}

fn from_secs(secs: i64) -> NaiveDateTime {
    DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .naive_utc()
}

impl V2ArchiveWriter {
    /// Starts a write under `root` (created when missing); removes temp files a killed run left.
    pub fn new(root: &Path, options: V2WriteOptions) -> Result<Self> {
        let writer = AtomicWriter::new(root, options.durability, options.batch_files)?;
        remove_stale_temps(root)?;
        Ok(V2ArchiveWriter {
            writer,
            options,
            report: V2WriteReport::default(),
            names: Names::default(),
            months: BTreeMap::new(),
            in_memory: 0,
            spill: None,
            community: BTreeMap::new(),
        })
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.report.created += 1,
            Outcome::Updated => self.report.updated += 1,
            Outcome::Unchanged => self.report.unchanged += 1,
        }
    }

    fn put(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let outcome = self.writer.put(rel, bytes)?;
        self.count(outcome);
        Ok(())
    }

    fn add_community(
        &mut self,
        rec: &Rec<'_>,
        at: &NaiveDateTime,
        kind: CommunityKind,
        name: &str,
    ) -> Result<()> {
        let month = YearMonth::of(rec, at)?;
        let name = self.names.intern(name);
        self.community
            .entry(month)
            .or_default()
            .push((secs(at), kind, name));
        Ok(())
    }

    /// Writes `users/<id>.txt` and notes the join for the community timeline. Returns the path
    /// relative to the root.
    pub fn add_user(&mut self, user: &ArchiveUser) -> Result<String> {
        let bytes = render_user(user)?;
        let rec = Rec("user", &user.id);
        self.add_community(
            &rec,
            &user.created_at,
            CommunityKind::Joined,
            &user.display_name,
        )?;
        let rel = user_path(&user.id);
        self.put(&rel, &bytes)?;
        Ok(rel)
    }

    /// Writes `prayers/<id>.txt`, queues its marks for the activity months and notes the request
    /// (and answer) for the community timeline. Returns the path relative to the root.
    pub fn add_prayer(&mut self, prayer: &ArchivePrayer) -> Result<String> {
        let bytes = render_prayer(prayer)?;
        let rec = Rec("prayer", &prayer.id);
        let id = u128::from_str_radix(&prayer.id, 16).map_err(|_| ArchiveError::InvalidId {
            record: rec.to_string(),
            value: prayer.id.clone(),
        })?;
        // Check every month first so that a bad mark leaves nothing half-queued.
        let months = prayer
            .marks
            .iter()
            .map(|m| YearMonth::of(&rec, &m.marked_at))
            .collect::<Result<Vec<_>>>()?;
        self.add_community(
            &rec,
            &prayer.created_at,
            CommunityKind::Requested,
            &prayer.author_name,
        )?;
        if let Some(answer) = &prayer.answer {
            self.add_community(
                &rec,
                &answer.answered_at,
                CommunityKind::Answered,
                &prayer.author_name,
            )?;
        }
        for (mark, month) in prayer.marks.iter().zip(months) {
            let name = self.names.intern(&mark.marker_name);
            let compact = CompactMark {
                secs: secs(&mark.marked_at),
                prayer: id,
                name,
            };
            let entry = self.months.entry(month).or_default();
            entry.marks.push(compact);
            self.in_memory += 1;
            self.report.marks += 1;
        }
        if self.in_memory > self.options.marks_in_memory {
            self.spill_all()?;
        }
        let rel = prayer_path(&prayer.id);
        self.put(&rel, &bytes)?;
        Ok(rel)
    }

    /// Copies a v1 tree into the root (see [`crate::carry_v1_tree`]); its files enter the manifest.
    pub fn carry_v1(&mut self, source: &Path) -> Result<CarryReport> {
        carry_into(&mut self.writer, source)
    }

    fn spill_dir(&mut self) -> Result<&Path> {
        if self.spill.is_none() {
            let base = self
                .options
                .spill_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir);
            let dir = tempfile::Builder::new()
                .prefix("thywill-archive-spill")
                .tempdir_in(&base)
                .map_err(|e| ArchiveError::write(&base, e))?;
            self.spill = Some(dir);
        }
        Ok(self
            .spill
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new(".")))
    }

    fn spill_file(dir: &Path, month: YearMonth) -> PathBuf {
        dir.join(format!("{month}.bin"))
    }

    fn spill_all(&mut self) -> Result<()> {
        let dir = self.spill_dir()?.to_path_buf();
        self.report.spilled = true;
        for (month, data) in self.months.iter_mut() {
            if data.marks.is_empty() {
                continue;
            }
            let path = Self::spill_file(&dir, *month);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| ArchiveError::write(&path, e))?;
            let mut out = BufWriter::with_capacity(1 << 16, file);
            let mut buf = [0u8; RECORD];
            for m in &data.marks {
                m.encode(&mut buf);
                out.write_all(&buf)
                    .map_err(|e| ArchiveError::write(&path, e))?;
            }
            out.flush().map_err(|e| ArchiveError::write(&path, e))?;
            data.marks = Vec::new();
            data.spilled = true;
        }
        self.in_memory = 0;
        Ok(())
    }

    fn load_month(&self, month: YearMonth, data: &mut Month) -> Result<Vec<CompactMark>> {
        let mut marks = std::mem::take(&mut data.marks);
        if data.spilled {
            let path = Self::spill_file(
                self.spill
                    .as_ref()
                    .map(|d| d.path())
                    .unwrap_or(Path::new(".")),
                month,
            );
            let mut bytes = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| ArchiveError::write(&path, e))?;
            marks.extend(bytes.chunks_exact(RECORD).map(CompactMark::decode));
            let _ = fs::remove_file(&path);
        }
        Ok(marks)
    }

    fn write_activity(&mut self) -> Result<()> {
        let mut months = std::mem::take(&mut self.months);
        let mut hex = String::with_capacity(32);
        for (month, data) in months.iter_mut() {
            let mut marks = self.load_month(*month, data)?;
            let names = &self.names;
            marks.sort_unstable_by(|a, b| {
                (a.secs, a.prayer)
                    .cmp(&(b.secs, b.prayer))
                    .then_with(|| names.get(a.name).cmp(names.get(b.name)))
            });
            let mut out = Vec::with_capacity(marks.len() * 140);
            for m in &marks {
                hex.clear();
                use std::fmt::Write as _;
                let _ = write!(hex, "{:032x}", m.prayer);
                push_activity_block(&mut out, &from_secs(m.secs), &hex, self.names.get(m.name));
            }
            drop(marks);
            self.put(&activity_path(*month), &out)?;
        }
        Ok(())
    }

    fn write_community(&mut self) -> Result<()> {
        let community = std::mem::take(&mut self.community);
        for (month, mut entries) in community {
            let names = &self.names;
            entries.sort_unstable_by(|a, b| {
                (a.0, a.1)
                    .cmp(&(b.0, b.1))
                    .then_with(|| names.get(a.2).cmp(names.get(b.2)))
            });
            let mut out = Vec::with_capacity(entries.len() * 64);
            for (s, kind, name) in &entries {
                push_community_line(&mut out, &from_secs(*s), *kind, self.names.get(*name));
            }
            self.put(&community_path(month), &out)?;
        }
        Ok(())
    }

    /// Writes the activity and community months and `MANIFEST.sha256`, and flushes everything.
    pub fn finish(mut self) -> Result<V2WriteReport> {
        self.write_activity()?;
        self.write_community()?;
        self.writer.flush()?;
        let entries = scan_manifest(self.writer.root(), self.writer.digests())?;
        let manifest = render_manifest(&entries);
        self.put(MANIFEST_NAME, &manifest)?;
        self.writer.flush()?;
        self.report.manifest_files = entries.len();
        self.report.manifest_sha256 = hex::encode(Sha256::digest(&manifest));
        Ok(self.report)
    }
}
