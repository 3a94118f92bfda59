//! Detection on the standard M dataset (G1, 2% corruption, seed 7): seconds, rows/s, peak RSS.
//! Run with `cargo bench -p thywill-detect --bench detect` (release). The dataset is generated
//! once by `thywill-fixturegen` and cached (`$THYWILL_BENCH_DIR` or `target/thywill-bench`).
//! Phase timings: `RUST_LOG=thywill_detect::timing=debug`.

use std::time::Instant;

use thywill_detect::{detect, DetectOptions, Policy};
use thywill_fixturegen::bench::{cache_root, peak_rss_mib, size_from_env, standard_dataset};
use thywill_fixturegen::Generation;
use thywill_v1::V1Database;

/// On-CPU time of this thread so far (`/proc/thread-self/schedstat`, ns), in seconds: steadier
/// than wall time on a shared machine. 0 where the file does not exist.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn main() {
    // Phase timings of `detect` are `debug` events: RUST_LOG=thywill_detect::timing=debug.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let size = size_from_env();
    let root = cache_root(env!("CARGO_MANIFEST_DIR"));
    let t = Instant::now();
    let dir = match standard_dataset(&root, Generation::G1, size) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot generate the {size} dataset: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "dataset G1-{size} ready in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 6, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    // THYWILL_BENCH_REPEAT=n runs each policy n times and prints best and median (shared machines).
    let repeat: usize = std::env::var("THYWILL_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    // What `thywill-analyze` adds before detection: opening the file and the integrity check.
    {
        let t = Instant::now();
        let db = V1Database::open(dir.join("v1.db")).and_then(|db| db.integrity().map(|_| db));
        if let Err(e) = db {
            eprintln!("{e}");
            std::process::exit(1);
        }
        println!(
            "open + integrity G1-{size}: {:.3} s (the rest of the analyze budget)",
            t.elapsed().as_secs_f64()
        );
    }
    for policy in [Policy::Repair, Policy::Strict] {
        let mut times = Vec::with_capacity(repeat);
        let mut cpus = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let rss_before = peak_rss_mib();
            let t = Instant::now();
            let cpu = cpu_secs();
            let db = match V1Database::open(dir.join("v1.db")) {
                Ok(db) => db,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            let plan = match detect(&db, &DetectOptions::new(policy, as_of)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            };
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_secs() - cpu;
            times.push(secs);
            cpus.push(cpu);
            let rows: u64 = plan.counts().values().map(|c| c.read).sum();
            println!(
                "detect {policy:<6} G1-{size}: {secs:.3} s (CPU {cpu:.3} s), {rows} carried rows, {:.0} rows/s, {} findings, peak RSS {:.1} MiB (before: {rss_before:.1} MiB)",
                rows as f64 / secs,
                plan.findings().len(),
                peak_rss_mib()
            );
        }
        if repeat > 1 {
            times.sort_by(f64::total_cmp);
            cpus.sort_by(f64::total_cmp);
            println!(
                "detect {policy:<6} G1-{size}: best {:.3} s, median {:.3} s (CPU best {:.3} s, median {:.3} s) over {repeat} runs",
                times[0],
                times[repeat / 2],
                cpus[0],
                cpus[repeat / 2]
            );
        }
    }
}
