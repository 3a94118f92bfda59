//! A load SIGKILLed at various moments leaves the target exactly as before (or, if the kill came
//! after the commit, holding the complete new run); a re-run then succeeds. The test binary
//! re-invokes itself as the child (`THYWILL_KILL_CHILD` names the target).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use thywill_v2::rows::*;
use thywill_v2::testing::{mark, prayer, user};
use thywill_v2::{Error, LoadOptions, RowSink, Target, V2Db};

const CHILD_ENV: &str = "THYWILL_KILL_CHILD";
const USERS: u64 = 2_000;
const PRAYERS: u64 = 10_000;
const MARKS: u64 = 150_000;

/// The child: a big load replacing whatever the target holds. Prints STARTED once marks flow.
#[test]
fn kill_child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
    let opts = LoadOptions {
        replace: true,
        ..Default::default()
    };
    let mut load = db.begin_load(run_info("sha-big"), opts).unwrap();
    load.write(|s: &mut dyn RowSink<User>| (0..USERS).try_for_each(|i| s.push(&user(i))))
        .unwrap();
    load.write(|s: &mut dyn RowSink<Prayer>| {
        (0..PRAYERS).try_for_each(|i| s.push(&prayer(i, USERS)))
    })
    .unwrap();
    load.write(|s: &mut dyn RowSink<PrayerMark>| {
        for i in 0..MARKS {
            s.push(&mark(i, PRAYERS, USERS))?;
            if i == 1_000 {
                println!("STARTED");
                std::io::stdout().flush().unwrap();
            }
        }
        Ok::<(), Error>(())
    })
    .unwrap();
    load.commit(None).unwrap();
    println!("COMMITTED");
}

#[test]
fn killed_load_leaves_the_target_as_before() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for t in targets() {
        let mut db = V2Db::open(&t.target).unwrap();
        load_sample(&mut db, &sample(1), "sha-a", LoadOptions::default()).unwrap();
        let before = dump(&mut db);
        drop(db);
        let url = match &t.target {
            Target::Postgres { url, .. } => url.clone(),
            other => other.to_string(),
        };
        // Kill moments from "just started" to "probably building indexes or committing".
        for (trial, delay_ms) in [0u64, 40, 150, 400, 900, 1500].into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .args(["kill_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &url)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            while !line.contains("STARTED") {
                line.clear();
                if out.read_line(&mut line).unwrap() == 0 {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(delay_ms));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();

            let mut db = V2Db::open(&t.target).unwrap();
            let after = dump(&mut db);
            let runs = db.runs().unwrap();
            // This trial's run: an earlier trial's committed run was replaced since.
            let last = runs.iter().rev().find(|r| {
                r.source_sha256 == "sha-big"
                    && r.status != run_status::FAILED
                    && r.status != run_status::REPLACED
            });
            if after == before {
                assert!(
                    last.is_none_or(|r| r.status == run_status::RUNNING),
                    "{} trial {trial}: {runs:?}",
                    t.label
                );
            } else {
                // Killed after the commit: the whole new run, nothing less.
                let counts = db.table_counts().unwrap();
                assert_eq!(
                    counts[0],
                    ("users", USERS as i64),
                    "{} trial {trial}",
                    t.label
                );
                assert_eq!(
                    counts[2],
                    ("prayer_marks", MARKS as i64),
                    "{} trial {trial}",
                    t.label
                );
                assert_eq!(last.map(|r| r.status.as_str()), Some(run_status::SUCCEEDED));
                println!("{} trial {trial}: the kill came after the commit", t.label);
                // Put the original data back for the next trial.
                let opts = LoadOptions {
                    replace: true,
                    ..Default::default()
                };
                load_sample(&mut db, &sample(1), "sha-a", opts).unwrap();
                assert_eq!(dump(&mut db), before);
            }
        }
        // A re-run after the kills succeeds, and earlier killed runs are now marked failed.
        let mut db = V2Db::open(&t.target).unwrap();
        let opts = LoadOptions {
            replace: true,
            ..Default::default()
        };
        load_sample(&mut db, &sample(2), "sha-b", opts).unwrap();
        let runs = db.runs().unwrap();
        assert!(
            runs.iter().all(|r| r.status != run_status::RUNNING),
            "{runs:?}"
        );
    }
}
