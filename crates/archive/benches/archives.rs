//! Archives for dataset M (5,000 users, 50,000 prayers, 500,000 marks), synthetic, written to a
//! temp folder: prints seconds, files/s and peak RSS, then a second run over the same tree (all
//! unchanged). Target: ≤ 6 s in release mode (`cargo bench -p thywill-archive --bench archives`).
//! `THYWILL_BENCH_SCALE=10` runs L's sizes.

use std::time::Instant;

use chrono::{Duration, NaiveDateTime};
use thywill_archive::{
    ArchiveAnswer, ArchiveMark, ArchivePrayer, ArchiveUser, InvitedBy, V2ArchiveWriter,
    V2WriteOptions, V2WriteReport,
};
use thywill_fixturegen::bench::peak_rss_mib;

/// A cheap deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn run(
    root: &std::path::Path,
    users: usize,
    prayers: usize,
    marks_per_prayer: usize,
) -> V2WriteReport {
    let start = NaiveDateTime::parse_from_str("2023-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let span = 2 * 365 * 24 * 3600; // two years of history
    let mut rng = Rng(7);
    let name = |i: usize| format!("Member {i}");
    let mut w = V2ArchiveWriter::new(root, V2WriteOptions::default()).unwrap();
    for i in 0..users {
        let user = ArchiveUser {
            id: format!("{:032x}", 0x1000_0000_0000u128 + i as u128),
            display_name: name(i),
            religious_preference: "unspecified".into(),
            email: None,
            invited_by: if i == 0 {
                InvitedBy::DirectSignup
            } else {
                InvitedBy::User(name(i / 2))
            },
            created_at: start + Duration::seconds((i * span / users / 4) as i64),
        };
        w.add_user(&user).unwrap();
    }
    for p in 0..prayers {
        let created = start + Duration::seconds((span / 4 + p * span / 2 / prayers) as i64);
        let marks = (0..marks_per_prayer)
            .map(|_| ArchiveMark {
                marked_at: created + Duration::seconds((rng.next() % (span as u64 / 4)) as i64),
                marker_name: name(rng.next() as usize % users),
            })
            .collect();
        let prayer = ArchivePrayer {
            id: format!("{:032x}", 0x2000_0000_0000u128 + p as u128),
            author_name: name(p % users),
            target_audience: "all".into(),
            created_at: created,
            text: format!("Please pray for the family of member {p}: they are going through a hard season and need strength."),
            generated_prayer: (p % 3 == 0).then(|| "Lord, hold this family close and give them peace.".to_string()),
            marks,
            answer: (p % 10 == 0).then(|| ArchiveAnswer {
                answered_at: created + Duration::days(30),
                testimony: Some("God answered, thank you all for praying.".into()),
            }),
        };
        w.add_prayer(&prayer).unwrap();
    }
    w.finish().unwrap()
}

fn main() {
    let scale: usize = std::env::var("THYWILL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (users, prayers, marks_per_prayer) = (5_000 * scale, 50_000 * scale, 10);
    let dir = tempfile::tempdir().unwrap();
    println!(
        "archives bench: {users} users, {prayers} prayers, {} marks -> {}",
        prayers * marks_per_prayer,
        dir.path().display()
    );
    for label in ["first run (all created)", "second run (all unchanged)"] {
        let t = Instant::now();
        let report = run(dir.path(), users, prayers, marks_per_prayer);
        let secs = t.elapsed().as_secs_f64();
        let files = report.created + report.updated + report.unchanged;
        println!(
            "{label}: {secs:.2} s, {files} files ({:.0} files/s), created {} updated {} unchanged {}, \
             spilled {}, peak RSS {:.1} MiB, manifest {}",
            files as f64 / secs,
            report.created,
            report.updated,
            report.unchanged,
            report.spilled,
            peak_rss_mib(),
            &report.manifest_sha256[..16],
        );
    }
}
