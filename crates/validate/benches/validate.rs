//! Benchmark: `thywill-validate` on the standard M dataset (target ≤ 5 s on PostgreSQL, peak
//! resident memory ≤ 256 MiB), end to end: the v2 database is produced by the real migration
//! (`thywill_pipeline::migrate`), then validated in a fresh child process so that its peak
//! resident memory (`VmHWM`) is its own. A failed check is a real disagreement between the
//! migration and the validator: the child prints the details and the benchmark fails.
//!
//! `cargo bench -p thywill-validator --bench validate` (PostgreSQL needs `THYWILL_TEST_PG_URL`).
//! `THYWILL_BENCH_SIZE=S|M|L` (default M), `THYWILL_BENCH_BACKEND=pg|sqlite|both` (default pg),
//! `THYWILL_BENCH_REPEAT=n` validation runs per backend (default 1). `THYWILL_BENCH_V2_URL=URL`
//! migrates into (or, already migrated, reuses) that database instead of a temporary one.

use std::process::Command;
use std::time::Instant;

use thywill_fixturegen::bench::{cache_root, peak_rss_mib, size_from_env, standard_dataset};
use thywill_fixturegen::Generation;
use thywill_pipeline::{migrate, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode};
use thywill_v2::testing::TempPgDb;
use thywill_validator::{validate, Options};

fn clock() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], &args[i + 2]);
    }
    let size = size_from_env();
    let backends: &[&str] = match std::env::var("THYWILL_BENCH_BACKEND").as_deref() {
        Ok("sqlite") => &["sqlite"],
        Ok("both") => &["pg", "sqlite"],
        _ => &["pg"],
    };
    let repeat: usize = std::env::var("THYWILL_BENCH_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let t = Instant::now();
    let dir = standard_dataset(
        &cache_root(env!("CARGO_MANIFEST_DIR")),
        Generation::G1,
        size,
    )
    .expect("standard dataset");
    eprintln!("dataset {size:?}: {:.1} s", t.elapsed().as_secs_f64());
    let v1 = dir.join("v1.db");
    let fixed = std::env::var("THYWILL_BENCH_V2_URL").ok();
    let backends: &[&str] = if fixed.is_some() {
        &["fixed"]
    } else {
        backends
    };
    for backend in backends {
        let tmp = tempfile::tempdir().unwrap();
        let pg = if *backend == "pg" && fixed.is_none() {
            let Some(db) = TempPgDb::create() else {
                eprintln!("THYWILL_TEST_PG_URL not set: skipping PostgreSQL");
                continue;
            };
            Some(db)
        } else {
            None
        };
        let url = match (&pg, &fixed) {
            (_, Some(u)) => u.clone(),
            (Some(db), _) => db.url.clone(),
            (None, None) => format!("sqlite://{}", tmp.path().join("v2.db").display()),
        };
        let t = Instant::now();
        let report = migrate(&MigrateOptions {
            common: CommonOptions {
                v1_db: v1.clone(),
                archives_v1: None,
                policy: thywill_pipeline::Policy::Repair,
                as_of: Some(clock()),
                test_account_names: Vec::new(),
                clock: Default::default(),
                invite_hours: None,
                progress: ProgressMode::Silent,
                ..Default::default()
            },
            v2_url: url.clone(),
            archives_v2: None,
            dry_run: false,
            replace: false,
            ..Default::default()
        })
        .expect("migration runs");
        assert!(report.ok, "migration report not ok");
        eprintln!("migrated ({backend}): {:.1} s", t.elapsed().as_secs_f64());
        for _ in 0..repeat {
            let out = Command::new(std::env::current_exe().expect("own path"))
                .args(["--child", &v1.display().to_string(), &url])
                .output()
                .expect("child runs");
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "validation child failed");
        }
    }
}

fn child(v1: &str, url: &str) {
    let t = Instant::now();
    let mut opts = Options::new(v1, url);
    opts.now = Some(clock());
    let report = validate(&opts).expect("validation runs");
    let secs = t.elapsed().as_secs_f64();
    for c in &report.checks {
        println!(
            "  {:<14} {:>7.3} s  {}",
            c.name,
            c.seconds,
            if c.passed { "PASS" } else { "FAIL" }
        );
        if !c.passed {
            for d in &c.details {
                println!("      {d}");
            }
        }
    }
    let backend = if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    println!(
        "validate ({backend}): {secs:.2} s, peak RSS {:.0} MiB, all passed: {}",
        peak_rss_mib(),
        report.ok
    );
    if !report.ok {
        std::process::exit(1);
    }
}
