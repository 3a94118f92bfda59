//! The damaged prayer values the v1 archive tree restores under `repair` (rules.md "The archive
//! tree as a second witness", decisions.md §50), derived here on the validator's own reading of
//! the tree (`thywill-v1`'s parsers only parse; the decisions are taken here): a prayer row's
//! witness is the file its `text_file_path` names among the files of its id, else the newest
//! of them. It restores an empty or not-UTF-8 text (with a text of 1–5000 characters after
//! trimming, no NUL), a `created_at` no shape fits (`Submitted` through the clock), and an
//! author that names no user row (the file's author, a written member of exactly that display
//! name).

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDateTime;
use thywill_v1::archive::V1Archive;
use thywill_v1::{PrayerRow, V1Error};

use crate::clock::V1Clock;
use crate::recovered::{id_key, newest, no_text_key, utc};
use crate::rules::{self, text};

/// What a prayer's witness file restores; each value only where the row's is damaged.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// The request text.
    pub(crate) text: Option<String>,
    /// `Submitted` through the v1 server's clock.
    pub(crate) created_at: Option<NaiveDateTime>,
    /// The v2 id of the member the file names.
    pub(crate) author: Option<String>,
}

impl Restored {
    /// True when it restores nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_none() && self.created_at.is_none() && self.author.is_none()
    }
}

/// The tree's prayer files, by id.
pub(crate) struct Witnesses {
    tree: V1Archive,
}

impl Witnesses {
    /// Scans the tree at `root` (the prayer files' headers; texts are read per damaged row).
    pub(crate) fn open(root: &Path) -> Result<Witnesses, V1Error> {
        let tree = thywill_v1::archive::scan_v1_tree_keyed(root, id_key, no_text_key)?;
        Ok(Witnesses { tree })
    }

    /// The scanned tree (prayer ids keyed by [`id_key`]), which the recovery reads too.
    pub(crate) fn tree(&self) -> &V1Archive {
        &self.tree
    }

    /// What the witness of row `p` restores (`author_resolves`: its author names a user row; `names`: the written members by display name). Reads the file only for a
    /// damaged row; `None` when nothing is restored.
    pub(crate) fn restore(
        &self,
        clock: &V1Clock,
        p: &PrayerRow,
        author_resolves: bool,
        names: &HashMap<String, String>,
    ) -> Option<Restored> {
        let text_bad = p.text.to_text_lossy().is_none_or(|t| t.trim().is_empty())
            || rules::text_changes(&p.text);
        let time_bad = clock.local(&p.created_at).is_none();
        if !(text_bad || time_bad || !author_resolves) {
            return None;
        }
        let tree = &self.tree;
        let id = text(&p.id)?;
        let files: Vec<usize> = tree.prayers.with_id(id_key(&id)).collect();
        let named = text(&p.text_file_path)
            .and_then(|path| tree.resolve_db_path(&path).map(str::to_string))
            .and_then(|rel| files.iter().copied().find(|i| tree.prayers.path(*i) == rel));
        let i = named.or_else(|| (!files.is_empty()).then(|| newest(tree, &files)))?;
        let file = tree.prayers.read(&tree.root, i).ok()?;
        let whole = !file.text.trim().is_empty()
            && file.text.chars().count() <= 5000
            && !file.text.contains('\0');
        let r = Restored {
            text: (text_bad && whole).then(|| file.text.clone()),
            created_at: time_bad.then(|| utc(clock, file.submitted.at)).flatten(),
            author: (!author_resolves)
                .then(|| names.get(&file.author).cloned())
                .flatten(),
        };
        (!r.is_empty()).then_some(r)
    }
}
