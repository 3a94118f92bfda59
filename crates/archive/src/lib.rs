//! `thywill-archive`: the ThyWill text archives.
//!
//! - **v2 archives** ([`v2`]): render `users/<id>.txt`, `prayers/<id>.txt`,
//!   `activity/<YYYY-MM>.txt`, `community/<YYYY-MM>.txt` and `MANIFEST.sha256` exactly as
//!   `spec/v2.md` says, write them atomically and only when changed, either all at once
//!   ([`V2ArchiveWriter`], streaming) or one event at a time ([`V2Archive`], for the v2
//!   application).
//! - **carrying v1** ([`carry_v1_tree`]): copy a v1 tree verbatim into the v2 root.
//! - **the target folder's checks** ([`check_target_folder`]): overlap, writable, no foreign
//!   file, before a run reads v1.
//!
//! The v1 side lives elsewhere: the v1 archive parser and tree scan are `thywill-v1`'s
//! (`thywill_v1::archive`, the reader of every v1 input), and the reconciliation of the tree with
//! the database is `thywill-detect`'s (`thywill_detect::reconcile`, the one decider).
//!
//! Paths this crate returns are relative to the archive root and `/`-separated
//! (`users/<id>.txt`); the v2 `text_archive_path` columns store them so.
//!
//! The crate never reads a database: it works on the plain structs it defines.

#![deny(missing_docs)]

pub mod carry;
pub mod error;
pub mod manifest;
pub mod safety;
pub mod target;
pub mod v2;
pub mod writer;

pub use carry::{carry_v1_tree, CarryReport, SkippedEntry};
pub use error::{ArchiveError, Result};
pub use manifest::MANIFEST_NAME;
pub use safety::YearMonth;
pub use target::check_target_folder;
pub use v2::{
    ArchiveAnswer, ArchiveMark, ArchivePrayer, ArchiveUser, InvitedBy, V2Archive, V2ArchiveWriter,
    V2WriteOptions, V2WriteReport,
};
pub use writer::Durability;
