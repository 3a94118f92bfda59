//! Writer benchmark on dataset M's sizes (5,000 users, 50,000 prayers of ~200 characters, 500,000
//! marks), generated on the fly and streamed into the writer:
//!
//! - PostgreSQL (`THYWILL_BENCH_PG_URL`, else `THYWILL_TEST_PG_URL`; a fresh database is created
//!   and dropped), target ≥ 250,000 rows/s;
//! - a new SQLite file, compared with the reference of `spec/quality.md`: the `sqlite3` shell's
//!   `ATTACH` + `INSERT … SELECT` of the same rows, held as plain tables in the attached file,
//!   into a fresh file with the v2 schema (shell defaults, then tuned for a bulk load). The
//!   transfer optimisation (the attached file already holding the finished tables and indexes,
//!   whose pages SQLite then copies without building anything) is printed for orientation.
//!
//! Prints rows/s and the peak resident memory (`VmHWM`). Run:
//! `THYWILL_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/test cargo bench -p thywill-v2 --bench write`
//! (add `RUST_LOG=thywill_v2=debug` for the time of every deferred constraint, index and step).

use std::time::Instant;

use thywill_fixturegen::bench::{peak_rss_mib, sqlite_shell_reference};
use thywill_v2::rows::*;
use thywill_v2::testing::{mark, prayer, user, TempPgDb};
use thywill_v2::{Error, LoadOptions, RowSink, RunInfo, Target, V2Db};

const USERS: u64 = 5_000;
const PRAYERS: u64 = 50_000;
const MARKS: u64 = 500_000;
const TOTAL: u64 = USERS + PRAYERS + MARKS;

/// Creates the schema in `target`, then streams M's rows into it in one load; returns the load's
/// seconds (`begin_load` to `commit`). The schema's creation is timed and printed apart: it is
/// done once per target, and the shell reference's fresh file gets its schema untimed too.
fn write_m(target: &Target) -> Result<f64, Error> {
    let start = Instant::now();
    let mut db = V2Db::open(target)?;
    db.ensure_schema()?;
    let schema_s = start.elapsed().as_secs_f64();
    let t_load = Instant::now();
    let mut load = db.begin_load(
        RunInfo::new("bench.db", "bench", "G1", "bench"),
        LoadOptions::default(),
    )?;
    load.write(|s: &mut dyn RowSink<User>| (0..USERS).try_for_each(|i| s.push(&user(i))))?;
    load.write(|s: &mut dyn RowSink<Prayer>| {
        (0..PRAYERS).try_for_each(|i| s.push(&prayer(i, USERS)))
    })?;
    let t_marks = Instant::now();
    load.write(|s: &mut dyn RowSink<PrayerMark>| {
        (0..MARKS).try_for_each(|i| s.push(&mark(i, PRAYERS, USERS)))
    })?;
    let marks_s = t_marks.elapsed().as_secs_f64();
    let t_commit = Instant::now();
    load.commit(None)?;
    let secs = t_load.elapsed().as_secs_f64();
    println!(
        "  {target}: load {secs:.2} s, {:.0} rows/s (marks stream {marks_s:.2} s, constraints + commit {:.2} s); \
         schema created first in {schema_s:.2} s ({:.0} rows/s counting it); peak RSS {:.1} MiB",
        TOTAL as f64 / secs,
        t_commit.elapsed().as_secs_f64(),
        TOTAL as f64 / (secs + schema_s),
        peak_rss_mib()
    );
    Ok(secs)
}

fn main() -> Result<(), Error> {
    // `cargo test --benches` passes flags; only run when invoked as a benchmark.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return Ok(());
    }
    // `RUST_LOG=thywill_v2=debug` shows how long each deferred constraint and index took.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    println!("thywill-v2 writer, M sizes: {USERS} users, {PRAYERS} prayers, {MARKS} marks = {TOTAL} rows");

    let pg_url = std::env::var("THYWILL_BENCH_PG_URL")
        .or_else(|_| std::env::var(thywill_v2::testing::PG_ENV));
    if pg_url.is_ok() {
        if let Some(pg) = TempPgDb::create() {
            println!("PostgreSQL (COPY, constraints built after the load, one transaction):");
            write_m(&Target::parse(&pg.url)?)?;
        }
    } else {
        println!("PostgreSQL: skipped (set THYWILL_TEST_PG_URL)");
    }

    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        path: "tmp".into(),
        source: e,
    })?;
    let ours = dir.path().join("ours.db");
    println!(
        "SQLite, new file (rows staged in a scratch file, keys sorted there and copied by the \
         transfer optimisation, indexes built after the load, one transaction):"
    );
    let ours_s = write_m(&Target::parse(&format!("sqlite://{}", ours.display()))?)?;

    // The reference of `spec/quality.md` (≈ 4.4 s there; `docs/decisions.md` §13).
    for (label, shell_s) in
        sqlite_shell_reference(&ours, &["users", "prayers", "prayer_marks"], dir.path())
    {
        match shell_s {
            Some(shell_s) => println!(
                "  sqlite3 shell ATTACH + INSERT … SELECT of the same rows, {label}: {shell_s:.2} s, \
                 {:.0} rows/s (writer/shell time ratio {:.2})",
                TOTAL as f64 / shell_s,
                ours_s / shell_s
            ),
            None => println!("  sqlite3 shell comparison ({label}) not run"),
        }
    }
    println!(
        "peak RSS of the benchmark process: {:.1} MiB",
        peak_rss_mib()
    );
    Ok(())
}
