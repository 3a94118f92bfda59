//! Migration day for ThyWill: consistent online backups of the live v1 database and its archive
//! tree ([`backup`]), the rollback to v1 ([`rollback`]), and the whole cut-over as one command
//! with hooks, a status page and automatic rollback ([`cutover`]).
//!
//! The binaries `thywill-backup`, `thywill-rollback` and `thywill-cutover` are thin wrappers
//! around [`backup::backup`], [`rollback::rollback`] and [`cutover::cutover`]; `docs/runbook.md`
//! is the operator's guide.
//!
//! ```no_run
//! # fn main() -> Result<(), thywill_ops::OpsError> {
//! use thywill_ops::backup::{backup, verify_set, BackupOptions};
//! let set = backup(&BackupOptions::new("/prod/thywill.db", "/backups"))?;
//! verify_set(&set.dir)?; // checksums, integrity_check, row counts
//! # Ok(()) }
//! ```

pub mod backup;
pub mod command;
pub mod cutover;
pub mod error;
pub mod fsutil;
pub mod manifest;
pub use thywill_v1::mask;
pub mod rollback;
pub mod status;
pub mod v2runs;

pub use error::{OpsError, Result};
