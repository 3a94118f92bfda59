//! Reader benchmark: reads dataset M (G1, seed 7, 2% corruption) completely and prints rows/s and
//! peak memory. Target (issue 2): M in ≤ 0.5 s, memory independent of the number of marks.
//!
//! `cargo bench -p thywill-v1 --bench read` (set `THYWILL_BENCH_SIZE=L` for L). The dataset is
//! generated once in a child process (so its memory does not count) and cached.

use std::time::Instant;

use thywill_fixturegen::bench::{cache_root, peak_rss_mib, size_from_env, standard_dataset};
use thywill_fixturegen::Generation;
use thywill_v1::{
    AttributeRow, InviteRow, MarkRow, PrayerRow, RoleRow, SessionRow, UserRoleRow, UserRow,
    V1Database, V1Error, V1Row,
};

fn count<R: V1Row>(db: &V1Database) -> u64 {
    db.for_each::<R, V1Error, _>(|r| {
        std::hint::black_box(&r);
        Ok(())
    })
    .expect("read")
}

fn main() {
    let size = size_from_env();
    let root = cache_root(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("THYWILL_BENCH_CHILD").is_none() {
        standard_dataset(&root, Generation::G1, size).expect("generate dataset");
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env("THYWILL_BENCH_CHILD", "1")
            .status()
            .expect("run measurement");
        std::process::exit(status.code().unwrap_or(1));
    }
    let dir = standard_dataset(&root, Generation::G1, size).expect("dataset");
    let start = Instant::now();
    let db = V1Database::open(dir.join("v1.db")).expect("open");
    let rows = count::<UserRow>(&db)
        + count::<PrayerRow>(&db)
        + count::<MarkRow>(&db)
        + count::<AttributeRow>(&db)
        + count::<RoleRow>(&db)
        + count::<UserRoleRow>(&db)
        + count::<InviteRow>(&db)
        + count::<SessionRow>(&db);
    let read = start.elapsed().as_secs_f64();
    let sorted_start = Instant::now();
    let marks = db
        .for_each_mark_by_prayer::<V1Error, _>(|_| Ok(()))
        .expect("marks by prayer");
    let sorted = sorted_start.elapsed().as_secs_f64();
    let integrity_start = Instant::now();
    let integrity = db.integrity().expect("integrity");
    let quick = integrity_start.elapsed().as_secs_f64();
    let full = db.integrity_full().expect("full integrity");
    let full_secs = integrity_start.elapsed().as_secs_f64() - quick;
    assert!(full.missing_index_entries.len() >= integrity.missing_index_entries.len() / 3);
    let integrity_secs = quick;
    println!(
        "read {size}: {rows} rows of the carried tables in {read:.3} s = {:.0} rows/s",
        rows as f64 / read
    );
    println!("marks ordered by prayer: {marks} rows in {sorted:.3} s");
    println!("integrity (quick + user table): {integrity_secs:.3} s ({} missing index entries); full check: {full_secs:.3} s", integrity.missing_index_entries.len());
    println!("peak RSS: {:.1} MiB", peak_rss_mib());
}
