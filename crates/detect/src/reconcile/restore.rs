//! Values the database holds damaged and the archive tree holds whole (`spec/rules.md`, "The
//! archive tree as a second witness"; decisions.md §50): a prayer's witness file (the file its
//! row's `text_file_path` names, else the newest file of its id, as recovery chooses) gives
//! the request text, the `Submitted` time and the author's display name. The rules of the
//! `prayer` table consult it for a damaged value only, so a file is read for a damaged row only.

use chrono::NaiveDateTime;
use thywill_v1::archive::V1Archive;
use thywill_v1::V1Value;

use super::recover::{newest, whole_text};

/// A prayer's witness file as a restore reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct WitnessValues {
    /// The file (relative to the v1 root).
    pub path: String,
    /// The request text, when v2 takes it as it is (1–5000 characters after trimming, no NUL).
    pub text: Option<String>,
    /// The `Submitted` time as written (the v1 server's local time).
    pub submitted: NaiveDateTime,
    /// The author's display name as the file writes it.
    pub author: String,
}

/// The witness files of the tree's prayer ids (a view of a scanned tree).
#[derive(Clone, Copy)]
pub struct Witnesses<'a> {
    archive: &'a V1Archive,
}

impl<'a> Witnesses<'a> {
    /// The witnesses of the scanned tree `archive`.
    pub fn new(archive: &'a V1Archive) -> Self {
        Witnesses { archive }
    }

    /// The witness of the prayer row with `id` and `text_file_path`: the file the path names
    /// among the files of the id, else the newest of them. `None` when the tree holds no file
    /// of the id, or the file can no longer be read (the reconciliation reports it).
    pub fn of(&self, id: &V1Value, text_file_path: &V1Value) -> Option<WitnessValues> {
        let a = self.archive;
        let id = id.to_text_lossy()?;
        let files: Vec<usize> = a.prayers.with_id(a.prayer_key(&id)).collect();
        if files.is_empty() {
            return None;
        }
        let named = text_file_path
            .to_text_lossy()
            .and_then(|p| a.resolve_db_path(&p).map(str::to_string))
            .and_then(|rel| files.iter().copied().find(|i| a.prayers.path(*i) == rel));
        let i = named.unwrap_or_else(|| newest(a, &files));
        let file = a.prayers.read(&a.root, i).ok()?;
        Some(WitnessValues {
            path: a.prayers.path(i).to_string(),
            text: whole_text(&file.text).then(|| file.text.clone()),
            submitted: file.submitted.at,
            author: file.author,
        })
    }
}
