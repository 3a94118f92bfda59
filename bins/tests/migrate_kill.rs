//! Atomicity of `thywill-migrate` under SIGKILL: a migration killed at random moments (many
//! trials, both backends) leaves the v2 application tables exactly as before (or, when the kill
//! lands after the commit, complete), never leaves a half-written archive file under its final
//! name, and a re-run then reaches the same content fingerprint and manifest as an
//! uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, TargetState, V2Db};

const TEMP_SUFFIX: &str = thywill_archive::writer::TEMP_SUFFIX;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/g1-s")
}

fn migrate(url: &str, archives: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thywill-migrate"));
    cmd.arg("--v1-db")
        .arg(fixture().join("v1.db"))
        .arg("--archives-v1")
        .arg(fixture().join("text_archives"))
        .arg("--archives-v2")
        .arg(archives)
        .args(["--as-of", "2026-01-01 00:00:00", "--quiet", "--v2-db", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn run_to_end(url: &str, archives: &Path) {
    let out = migrate(url, archives).output().unwrap();
    assert!(
        out.status.success(),
        "migration failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn open(url: &str) -> V2Db {
    V2Db::open(&Target::parse(url).unwrap()).unwrap()
}

/// Every file of an archive tree (relative path → bytes), temp files included.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if root.exists() {
        for e in walkdir_files(root) {
            let rel = e.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read(&e).unwrap()));
        }
    }
    out.sort();
    out
}

fn walkdir_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

/// Paths present in only one tree or with different bytes.
fn tree_diff(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)]) -> Vec<String> {
    let am: std::collections::BTreeMap<_, _> = a.iter().map(|(p, x)| (p, x)).collect();
    let bm: std::collections::BTreeMap<_, _> = b.iter().map(|(p, x)| (p, x)).collect();
    let mut out: Vec<String> = am
        .keys()
        .chain(bm.keys())
        .filter(|p| am.get(*p) != bm.get(*p))
        .map(|p| p.to_string())
        .collect();
    out.dedup();
    out
}

/// A small deterministic PRNG so the kill moments are random but reproducible.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `trials` killed migrations, each on a fresh target made by `fresh`.
fn kill_trials(
    label: &str,
    trials: u32,
    mut fresh: impl FnMut() -> (String, Box<dyn std::any::Any>),
) {
    // The reference: one uninterrupted run.
    let (url, _keep) = fresh();
    let reference_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    run_to_end(&url, reference_dir.path());
    let duration = started.elapsed();
    let reference = open(&url).content_fingerprint().unwrap();
    let reference_tree = tree(reference_dir.path());
    assert!(
        reference.rows.iter().any(|(_, n)| *n > 1000),
        "{label}: reference run wrote too little"
    );

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut before_commit, mut after_commit) = (0, 0);
    for trial in 0..trials {
        let (url, _keep) = fresh();
        // A folder that does not exist yet: the run builds it under a hidden staging name and
        // renames it into place after the commit.
        let parent = tempfile::tempdir().unwrap();
        let archives = parent.path().join("text_archives_v2");
        let delay =
            Duration::from_micros(rng.next() % (duration.as_micros() as u64 * 11 / 10).max(1));
        let mut child = migrate(&url, &archives).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();

        let mut db = open(&url);
        match db.state(&"0".repeat(64)).unwrap() {
            TargetState::Empty => before_commit += 1,
            _ => {
                after_commit += 1;
                assert_eq!(
                    db.content_fingerprint().unwrap(),
                    reference,
                    "{label} trial {trial}: partial data after kill at {delay:?}"
                );
            }
        }
        // No file under a final name is half-written: each equals the reference's file.
        let published = if archives.exists() {
            tree(&archives)
        } else {
            Vec::new()
        };
        for (rel, bytes) in published {
            if rel.ends_with(TEMP_SUFFIX) || rel.contains(TEMP_SUFFIX) {
                continue;
            }
            if rel == "MANIFEST.sha256" {
                continue; // a manifest from before the kill may list an older tree; it is rewritten
            }
            let want = reference_tree.iter().find(|(r, _)| *r == rel);
            assert!(
                want.map(|(_, b)| b) == Some(&bytes),
                "{label} trial {trial}: {rel} is not a complete file"
            );
        }
        drop(db);
        // A re-run completes and reaches the same content and the same archive tree.
        run_to_end(&url, &archives);
        assert_eq!(
            open(&url).content_fingerprint().unwrap(),
            reference,
            "{label} trial {trial}: re-run differs"
        );
        let diff = tree_diff(&tree(&archives), &reference_tree);
        assert!(
            diff.is_empty(),
            "{label} trial {trial}: archive tree differs after re-run: {diff:?}"
        );
        // The killed run's staging folder is gone: only the published folder is left.
        let left: Vec<String> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            vec!["text_archives_v2".to_string()],
            "{label} trial {trial}: a staging folder was left behind"
        );
    }
    println!("{label}: {trials} kills, {before_commit} before the commit, {after_commit} after; run takes {duration:?}");
    assert!(
        before_commit > 0,
        "{label}: no kill landed before the commit; the test proves nothing"
    );
}

#[test]
fn killed_migrations_leave_sqlite_as_it_was() {
    kill_trials("sqlite", 12, || {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("v2.db").display());
        (url, Box::new(dir))
    });
}

#[test]
fn killed_migrations_leave_postgresql_as_it_was() {
    if TempPgDb::create().is_none() {
        return;
    }
    kill_trials("postgresql", 8, || {
        let db = TempPgDb::create().expect("THYWILL_TEST_PG_URL");
        (db.url.clone(), Box::new(db))
    });
}
