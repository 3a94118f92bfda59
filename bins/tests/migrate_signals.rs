//! SIGINT and SIGTERM end `thywill-migrate` cleanly: exit 130/143 with a message saying so, the
//! v2 application tables as before, the run marked `failed` (never left `running`), and no
//! archive folder or staging folder left behind; or, when the signal lands after the commit, a
//! complete run. Both backends (PostgreSQL with THYWILL_TEST_PG_URL).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use thywill_v2::rows::run_status;
use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, V2Db};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/g1-s")
}

/// One trial: start a migration into `url` with archives under `dir`, send `signal` after
/// `delay`, check the outcome. Returns true when the run was interrupted (not finished first).
fn trial(url: &str, dir: &Path, signal: &str, delay: Duration) -> bool {
    let archives = dir.join("archives_v2");
    let child = Command::new(env!("CARGO_BIN_EXE_thywill-migrate"))
        .arg("--v1-db")
        .arg(fixture().join("v1.db"))
        .arg("--archives-v1")
        .arg(fixture().join("text_archives"))
        .arg("--archives-v2")
        .arg(&archives)
        .args(["--quiet", "--v2-db", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let sent = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    let what = format!("{signal} after {delay:?} into {url}: exit {code:?}: {stderr}");
    let mut db = V2Db::open(&Target::parse(url).unwrap()).unwrap();
    let runs = db.runs().unwrap_or_default();
    assert!(
        runs.iter().all(|r| r.status != run_status::RUNNING),
        "a run left running: {what}"
    );
    match code {
        Some(0) => {
            assert!(archives.is_dir(), "{what}");
            assert_eq!(runs.last().unwrap().status, run_status::SUCCEEDED, "{what}");
            false
        }
        Some(c) => {
            let (want, name) = if signal == "INT" {
                (130, "SIGINT")
            } else {
                (143, "SIGTERM")
            };
            assert_eq!(c, want, "{what}");
            assert!(stderr.contains(&format!("interrupted by {name}")), "{what}");
            assert!(!stderr.contains("panicked"), "{what}");
            if let Ok(counts) = db.table_counts() {
                assert!(counts.iter().all(|(_, n)| *n == 0), "{what}: {counts:?}");
            }
            if let Some(last) = runs.last() {
                assert_eq!(last.status, run_status::FAILED, "{what}");
            }
            let left: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("archives_v2"))
                .collect();
            assert!(left.is_empty(), "{what}: left {left:?}");
            true
        }
        None => panic!("killed by the signal instead of stopping cleanly: {what}"),
    }
}

fn trials(make_url: &mut dyn FnMut(&Path) -> (String, Option<TempPgDb>)) {
    // Counted per signal: each of SIGINT and SIGTERM must be proven to stop a run on its own.
    let mut interrupted = [("INT", 0), ("TERM", 0)];
    for (i, ms) in [150u64, 300, 450, 600, 800].into_iter().enumerate() {
        for (signal, count) in interrupted.iter_mut() {
            let tmp = tempfile::tempdir().unwrap();
            let (url, _pg) = make_url(tmp.path());
            if trial(
                &url,
                tmp.path(),
                signal,
                Duration::from_millis(ms + i as u64),
            ) {
                *count += 1;
            }
        }
    }
    for (signal, count) in interrupted {
        assert!(
            count > 0,
            "no SIG{signal} trial was interrupted before the commit"
        );
    }
}

#[test]
fn a_signal_stops_a_sqlite_migration_cleanly() {
    trials(&mut |dir| (format!("sqlite://{}", dir.join("v2.db").display()), None));
}

#[test]
fn a_signal_stops_a_postgresql_migration_cleanly() {
    if TempPgDb::create().is_none() {
        return;
    }
    trials(&mut |_| {
        let pg = TempPgDb::create().unwrap();
        (pg.url.clone(), Some(pg))
    });
}
