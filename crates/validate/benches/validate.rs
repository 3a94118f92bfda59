//! Benchmark: `thywill-validate` on the standard M dataset in PostgreSQL (target ≤ 5 s).
//!
//! `cargo bench -p thywill-validator --bench validate` (needs `THYWILL_TEST_PG_URL`). The v2
//! database is populated by the test harness (v1 rows through `thywill-v2`'s writer, findings from
//! the truth file); the validation then runs in a fresh child process so that its peak resident
//! memory (`VmHWM`) is its own. Set `THYWILL_BENCH_SIZE=S` for a quick run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use thywill_fixturegen::bench::{cache_root, peak_rss_mib, standard_dataset};
use thywill_fixturegen::{Generation, Size};
use thywill_validator::{validate, Options, Policy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], &args[i + 2]);
    }
    let size = match std::env::var("THYWILL_BENCH_SIZE").as_deref() {
        Ok("S") => Size::S,
        Ok("L") => Size::L,
        _ => Size::M,
    };
    let t = Instant::now();
    let dir = standard_dataset(
        &cache_root(env!("CARGO_MANIFEST_DIR")),
        Generation::G1,
        size,
    )
    .expect("standard dataset");
    eprintln!("dataset {size:?}: {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let Some(built) = common::build_from(&dir, Policy::Repair, true) else {
        return;
    };
    eprintln!("v2 populated (harness): {:.1} s", t.elapsed().as_secs_f64());
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args(["--child", &built.v1.display().to_string(), &built.url])
        .output()
        .expect("child runs");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "validation child failed");
}

fn child(v1: &str, url: &str) {
    let t = Instant::now();
    let report = validate(&Options::new(v1, url)).expect("validation runs");
    let secs = t.elapsed().as_secs_f64();
    for c in &report.checks {
        println!(
            "  {:<14} {:>7.3} s  {}",
            c.name,
            c.seconds,
            if c.passed { "PASS" } else { "FAIL" }
        );
    }
    println!(
        "validate (PostgreSQL): {secs:.2} s, peak RSS {:.0} MiB, all passed: {}",
        peak_rss_mib(),
        report.ok
    );
}
