//! End-to-end benchmark: the whole `migrate` of a standard dataset (G1, seed 7, 2% corruption;
//! M by default, `THYWILL_BENCH_SIZE=L` for L, `=Dense` for M's users and prayers with ten times
//! the marks) into PostgreSQL (`THYWILL_TEST_PG_URL`) and into a new SQLite file, without
//! archives (the `spec/quality.md` measure) and, with `THYWILL_BENCH_ARCHIVES=1`, with them.
//! Prints per stage: seconds, rows, rows/s; the total and the peak resident memory of each run
//! (each run is its own child process). On M it then measures the spec's SQLite reference: the
//! `sqlite3` shell loading the application rows the run wrote (`docs/decisions.md` §13).
//!
//! `THYWILL_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/test cargo bench -p thywill-pipeline --bench migrate`

use std::process::Command;

use thywill_fixturegen::bench::{
    cache_root, peak_rss_mib, size_from_env, sqlite_shell_reference, standard_dataset,
};
use thywill_fixturegen::{Generation, Size};
use thywill_pipeline::{
    migrate, CommonOptions, MigrateOptions, NaiveDateTime, Policy, ProgressMode,
};

fn main() {
    thywill_pipeline::tune_allocator();
    let size = size_from_env();
    let root = cache_root(env!("CARGO_MANIFEST_DIR"));
    let dir = standard_dataset(&root, Generation::G1, size).expect("dataset");
    if let Ok(target) = std::env::var("THYWILL_BENCH_TARGET") {
        return measure(&dir, &target, size);
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut targets = vec![format!(
        "sqlite://{}",
        scratch.path().join("v2.db").display()
    )];
    let pg = thywill_v2::testing::TempPgDb::create();
    if let Some(db) = &pg {
        targets.insert(0, db.url.clone());
    }
    for target in &targets {
        let status = Command::new(std::env::current_exe().expect("exe"))
            .env("THYWILL_BENCH_TARGET", target)
            .status()
            .expect("child");
        assert!(
            status.success(),
            "benchmark run failed for {}",
            thywill_v2::redact_url(target)
        );
    }
    // The M → SQLite reference of `spec/quality.md` (`docs/decisions.md` §13): the sqlite3
    // shell loading the application rows the run wrote.
    // Measured on M (the spec's measure); L and Dense only compare with M.
    if size != Size::M {
        return;
    }
    let written = scratch.path().join("v2.db");
    for (label, seconds) in
        sqlite_shell_reference(&written, &thywill_v2::APP_TABLES, scratch.path())
    {
        match seconds {
            Some(s) => println!(
                "sqlite3 shell ATTACH + INSERT … SELECT of the rows written, {label}: {s:.2} s"
            ),
            None => println!("sqlite3 shell reference ({label}) not run"),
        }
    }
}

fn measure(dir: &std::path::Path, target: &str, size: Size) {
    let archives = std::env::var_os("THYWILL_BENCH_ARCHIVES").is_some();
    let out = tempfile::tempdir().expect("tempdir");
    let opts = MigrateOptions {
        common: CommonOptions {
            v1_db: dir.join("v1.db"),
            archives_v1: archives.then(|| dir.join("text_archives")),
            policy: Policy::Repair,
            as_of: NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").ok(),
            test_account_names: Vec::new(),
            clock: Default::default(),
            invite_hours: None,
            progress: ProgressMode::Silent,
            ..Default::default()
        },
        v2_url: target.to_string(),
        archives_v2: archives.then(|| out.path().join("text_archives_v2")),
        dry_run: false,
        replace: true,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let report = migrate(&opts).expect("migrate");
    let total = started.elapsed().as_secs_f64();
    let carried: u64 = report.tables.values().map(|c| c.read).sum();
    let backend = report
        .target
        .as_ref()
        .map(|t| t.backend.clone())
        .unwrap_or_default();
    println!("migrate {size} -> {backend}{}: {total:.2} s, {:.0} rows/s over {carried} carried rows, peak RSS {:.1} MiB",
        if archives { " with archives" } else { "" }, carried as f64 / total, peak_rss_mib());
    for s in &report.stages {
        println!(
            "  {:<9} {:>7.3} s {:>9} rows {:>10.0} rows/s",
            s.name,
            s.seconds,
            s.rows,
            s.rows as f64 / s.seconds.max(1e-9)
        );
    }
    assert!(
        report.ok && report.outcome == "migrated",
        "{}",
        report.outcome
    );
}
