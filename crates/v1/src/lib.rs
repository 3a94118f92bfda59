//! # thywill-v1: the v1 reader
//!
//! Opens a ThyWill v1 SQLite file read-only, inside one read transaction (one consistent snapshot
//! even of a live WAL-mode file), decides its schema generation by introspection, classifies
//! SQLite's integrity check, and streams raw typed rows of the carried tables by full table scans
//! (rows missing from an index are still read). Values are kept exactly as stored: keys with their
//! storage class, timestamps as raw text, bytes that are not UTF-8. No rule is applied here.
//!
//! It also reads the other v1 input, the text-archive tree ([`archive`]): every v1 archive format
//! parsed into typed records and re-rendered byte for byte, and a whole tree scanned into a
//! compact index ([`archive::scan_v1_tree`]). Comparing the tree with the database is
//! `thywill-detect`'s reconciliation.
//!
//! ```no_run
//! use thywill_v1::{V1Database, UserRow};
//! let db = V1Database::open("thywill.db")?;
//! println!("generation {}", db.schema().generation);
//! let users: Vec<UserRow> = db.read_all()?;
//! # Ok::<(), thywill_v1::V1Error>(())
//! ```

pub mod archive;
mod database;
pub mod email;
mod error;
pub mod mask;
mod rows;
mod schema;
mod value;

pub use database::{
    source_sha256, wal_path, IntegrityReport, MissingIndexEntry, OpenOptions, V1Database,
};
pub use email::{EmailKey, EmailRow, V1EmailDb};
pub use error::V1Error;
pub use rows::{
    AttributeRow, InviteRow, InviteUsageRow, MarkRow, PrayerRow, RoleRow, SessionRow, UserRoleRow,
    UserRow, V1Row,
};
pub use schema::{Generation, Schema, UserRefKind, CARRIED_TABLES, NOT_CARRIED_TABLES};
pub use value::{StorageClass, V1Value};
