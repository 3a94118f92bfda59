//! A disk that fills up while archives are written: simulated with a file-size limit
//! (`RLIMIT_FSIZE`, `SIGXFSZ` ignored so the write returns `EFBIG`) in a child process. The write
//! must fail with a clear error and leave no partial file under a final name and no temp file.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use chrono::NaiveDateTime;
use thywill_archive::{
    ArchiveError, ArchivePrayer, ArchiveUser, InvitedBy, V2ArchiveWriter, V2WriteOptions,
};

const ROOT_VAR: &str = "THYWILL_ARCHIVE_DISK_FULL_ROOT";
const LIMIT: u64 = 256 * 1024;

fn at() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2025-06-29 19:33:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

/// Runs inside the limited child only.
#[test]
#[ignore = "run by disk_full_leaves_no_partial_file in a child process"]
fn disk_full_child() {
    let Ok(root) = std::env::var(ROOT_VAR) else {
        return;
    };
    let mut w = V2ArchiveWriter::new(Path::new(&root), V2WriteOptions::default()).unwrap();
    for n in 0..20u32 {
        let user = ArchiveUser {
            id: format!("{n:032x}"),
            display_name: format!("Member {n}"),
            religious_preference: "unspecified".into(),
            email: None,
            invited_by: InvitedBy::MigratedFromV1,
            created_at: at(),
        };
        w.add_user(&user).unwrap();
    }
    let prayer = ArchivePrayer {
        id: "ab".repeat(16),
        author_name: "Member 1".into(),
        target_audience: "all".into(),
        created_at: at(),
        text: "pray ".repeat(LIMIT as usize), // 1.25 MB: beyond the limit
        generated_prayer: None,
        marks: Vec::new(),
        answer: None,
    };
    let err = w.add_prayer(&prayer).unwrap_err();
    assert!(matches!(err, ArchiveError::NoSpace { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("prayers/{}.txt", prayer.id)),
        "{message}"
    );
    println!("CHILD-OK: {message}");
}

#[test]
fn disk_full_leaves_no_partial_file() {
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "disk_full_child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROOT_VAR, root.path());
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("no space left (or file size limit)"),
        "{stdout}"
    );
    for entry in walkdir::WalkDir::new(root.path()) {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".thywill-tmp"),
            "temp file left: {}",
            entry.path().display()
        );
        if entry.file_type().is_file() {
            // Only complete user files may exist; the prayer never got its final name.
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert!(
                text.ends_with("Registration completed successfully.\n"),
                "{}",
                entry.path().display()
            );
        }
    }
    assert!(!root
        .path()
        .join(format!("prayers/{}.txt", "ab".repeat(16)))
        .exists());
}
