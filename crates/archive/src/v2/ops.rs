//! The v2 application's incremental operations. Each rewrites only the files an event touches
//! (the record's own file, one activity or community month, the manifest), atomically, and the
//! result is byte-identical to a full render of the same data.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::logs::{
    activity_path, community_path, parse_activity, parse_community, render_activity,
    render_community, ActivityEntry, CommunityEntry, CommunityKind,
};
use super::{
    prayer_path, render_prayer, render_user, ArchiveMark, ArchivePrayer, ArchiveUser, Rec,
};
use crate::error::{ArchiveError, Result};
use crate::manifest::{parse_manifest, render_manifest, scan_manifest, MANIFEST_NAME};
use crate::safety::{safe_join, whole_seconds, YearMonth};
use crate::writer::{AtomicWriter, Durability};

/// An existing (or new) v2 archive tree that the v2 application keeps up to date.
#[derive(Debug, Clone)]
pub struct V2Archive {
    root: PathBuf,
}

/// One pending change of an operation.
struct Change {
    files: Vec<(String, Vec<u8>)>,
}

impl V2Archive {
    /// Opens the tree under `root` (created when missing on the first write).
    pub fn open(root: &Path) -> Self {
        V2Archive {
            root: root.to_path_buf(),
        }
    }

    /// The archive root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new member: writes `users/<id>.txt` and the join line of its community month.
    /// Returns the user file's path relative to the root.
    pub fn register_user(&self, user: &ArchiveUser) -> Result<String> {
        let bytes = render_user(user)?;
        let rec = Rec("user", &user.id);
        let rel = super::user_path(&user.id);
        let mut change = Change {
            files: vec![(rel.clone(), bytes)],
        };
        self.community(
            &mut change,
            &rec,
            &user.created_at,
            CommunityKind::Joined,
            &user.display_name,
        )?;
        self.apply(change)?;
        Ok(rel)
    }

    /// A new prayer: writes `prayers/<id>.txt`, its request line (and answer line, and activity
    /// blocks for marks it already has). Returns the prayer file's path relative to the root.
    pub fn new_prayer(&self, prayer: &ArchivePrayer) -> Result<String> {
        let rec = Rec("prayer", &prayer.id);
        let (rel, mut change) = self.prayer_change(prayer)?;
        self.community(
            &mut change,
            &rec,
            &prayer.created_at,
            CommunityKind::Requested,
            &prayer.author_name,
        )?;
        if let Some(answer) = &prayer.answer {
            self.community(
                &mut change,
                &rec,
                &answer.answered_at,
                CommunityKind::Answered,
                &prayer.author_name,
            )?;
        }
        let marks: Vec<&ArchiveMark> = prayer.marks.iter().collect();
        self.activity(&mut change, &rec, &prayer.id, &marks)?;
        self.apply(change)?;
        Ok(rel)
    }

    /// A member prayed: `prayer` is the prayer as it is now (its `marks` include `mark`).
    /// Rewrites the prayer file and inserts the block into its activity month.
    pub fn mark_prayer(&self, prayer: &ArchivePrayer, mark: &ArchiveMark) -> Result<String> {
        let rec = Rec("prayer", &prayer.id);
        if !prayer.marks.contains(mark) {
            return Err(ArchiveError::InvalidRecord {
                record: rec.to_string(),
                message: "mark_prayer: the prayer's marks do not include the new mark".into(),
            });
        }
        let (rel, mut change) = self.prayer_change(prayer)?;
        self.activity(&mut change, &rec, &prayer.id, &[mark])?;
        self.apply(change)?;
        Ok(rel)
    }

    /// A prayer was answered: `prayer.answer` is set. Rewrites the prayer file and adds the
    /// answer line to its community month. (Answering the same prayer again at another time adds
    /// a second line; v2 answers a prayer once.)
    pub fn answer_prayer(&self, prayer: &ArchivePrayer) -> Result<String> {
        let rec = Rec("prayer", &prayer.id);
        let Some(answer) = &prayer.answer else {
            return Err(ArchiveError::InvalidRecord {
                record: rec.to_string(),
                message: "answer_prayer: the prayer has no answer".into(),
            });
        };
        let (rel, mut change) = self.prayer_change(prayer)?;
        self.community(
            &mut change,
            &rec,
            &answer.answered_at,
            CommunityKind::Answered,
            &prayer.author_name,
        )?;
        self.apply(change)?;
        Ok(rel)
    }

    fn prayer_change(&self, prayer: &ArchivePrayer) -> Result<(String, Change)> {
        let bytes = render_prayer(prayer)?;
        let rel = prayer_path(&prayer.id);
        Ok((
            rel.clone(),
            Change {
                files: vec![(rel, bytes)],
            },
        ))
    }

    fn read_existing(&self, rel: &str) -> Result<Option<(PathBuf, Vec<u8>)>> {
        let path = safe_join(&self.root, rel)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ArchiveError::write(&path, e)),
        }
    }

    /// Inserts entries into a month file, reusing a version already pending in `change`.
    fn update_month<E: Ord>(
        &self,
        change: &mut Change,
        rel: String,
        new: Vec<E>,
        parse: fn(&Path, &[u8]) -> Result<Vec<E>>,
        render: fn(&[E]) -> Vec<u8>,
    ) -> Result<()> {
        let pending = change.files.iter().position(|(r, _)| *r == rel);
        let mut entries = match pending {
            Some(i) => parse(Path::new(&rel), &change.files[i].1)?,
            None => match self.read_existing(&rel)? {
                Some((path, bytes)) => parse(&path, &bytes)?,
                None => Vec::new(),
            },
        };
        entries.extend(new);
        entries.sort();
        let bytes = render(&entries);
        match pending {
            Some(i) => change.files[i].1 = bytes,
            None => change.files.push((rel, bytes)),
        }
        Ok(())
    }

    fn community(
        &self,
        change: &mut Change,
        rec: &Rec<'_>,
        at: &chrono::NaiveDateTime,
        kind: CommunityKind,
        name: &str,
    ) -> Result<()> {
        let month = YearMonth::of(rec, at)?;
        let entry = CommunityEntry {
            at: whole_seconds(at),
            kind,
            name: name.to_string(),
        };
        self.update_month(
            change,
            community_path(month),
            vec![entry],
            parse_community,
            render_community,
        )
    }

    fn activity(
        &self,
        change: &mut Change,
        rec: &Rec<'_>,
        prayer_id: &str,
        marks: &[&ArchiveMark],
    ) -> Result<()> {
        for mark in marks {
            let month = YearMonth::of(rec, &mark.marked_at)?;
            let entry = ActivityEntry {
                at: whole_seconds(&mark.marked_at),
                prayer_id: prayer_id.to_string(),
                name: mark.marker_name.clone(),
            };
            self.update_month(
                change,
                activity_path(month),
                vec![entry],
                parse_activity,
                render_activity,
            )?;
        }
        Ok(())
    }

    /// Writes the change's files, then the manifest with their new digests.
    fn apply(&self, change: Change) -> Result<()> {
        let mut writer = AtomicWriter::new(&self.root, Durability::PerFile, usize::MAX)?;
        for (rel, bytes) in &change.files {
            writer.put(rel, bytes)?;
        }
        writer.flush()?;
        let manifest_path = self.root.join(MANIFEST_NAME);
        let entries = match fs::read(&manifest_path) {
            Ok(bytes) => {
                let mut entries = parse_manifest(&manifest_path, &bytes)?;
                for (rel, bytes) in &change.files {
                    entries.insert(rel.clone(), hex::encode(Sha256::digest(bytes)));
                }
                entries
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                scan_manifest(&self.root, writer.digests())?
            }
            Err(e) => return Err(ArchiveError::write(&manifest_path, e)),
        };
        writer.put(MANIFEST_NAME, &render_manifest(&entries))?;
        writer.flush()
    }
}
