//! The v2 schema of ThyWill (diesel migrations for PostgreSQL and SQLite, `table!` definitions,
//! row types) and the fast atomic v2 writer used by the migration.
//!
//! Typical use:
//!
//! ```no_run
//! # fn main() -> Result<(), thywill_v2::Error> {
//! use thywill_v2::{LoadOptions, RunInfo, Target, TargetState, V2Db};
//! let target = Target::parse("sqlite://thywill_v2.db")?;
//! let mut db = V2Db::open(&target)?;
//! let info = RunInfo::new("thywill.db", "ab12…", "G1", env!("CARGO_PKG_VERSION"));
//! if let TargetState::AlreadyMigrated { .. } = db.state(&info.source_sha256)? {
//!     return Ok(());
//! }
//! let mut load = db.begin_load(info, LoadOptions::default())?;
//! load.write::<thywill_v2::rows::User, thywill_v2::Error>(|sink| {
//!     // sink.push(&user)?; for every user, streamed from the caller's own reader
//!     Ok(())
//! })?;
//! load.commit(None)?;
//! # Ok(()) }
//! ```

mod db;
pub mod error;
mod fingerprint;
mod load;
pub mod rows;
pub mod schema;
mod stage;
mod table;
pub mod target;
#[doc(hidden)]
pub mod testing;

pub use db::{
    alien_error, create_private_file, AnyConn, RemoveOutcome, TargetState, V2Db, APP_TABLES,
    BOOKKEEPING_TABLES, PG_MIGRATIONS, SQLITE_MIGRATIONS,
};
pub use error::{Error, Result};
pub use fingerprint::Fingerprint;
pub use load::{Load, LoadOptions, RowSink, RunInfo, RunSummary};
pub use table::{is_hex_id, AppRow, V2Row};
pub use target::{redact_url, Backend, Target};
