//! Files the tools write for the operator (the v2 SQLite file with its session tokens, reports,
//! backup sets) are the owner's alone whatever the umask; archives stay 0644 (the v2 application
//! reads them); the status page stays readable by the web server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
        .display()
        .to_string()
}

/// Runs `bin args…` under `umask 000` (the worst case) in `dir`.
fn under_umask_000(dir: &Path, bin: &str, args: &[&str]) {
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("BACKUP_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn private_files_are_0600_and_archives_0644_under_umask_000() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    under_umask_000(
        d,
        env!("CARGO_BIN_EXE_thywill-migrate"),
        &[
            "--v1-db",
            &fixture("g1-s/v1.db"),
            "--archives-v1",
            &fixture("g1-s/text_archives"),
            "--archives-v2",
            "archives_v2",
            "--report-json",
            "report.json",
            "--report-md",
            "report.md",
            "-q",
        ],
    );
    assert_eq!(mode(&d.join("thywill_v2.db")), 0o600, "v2 database");
    assert_eq!(mode(&d.join("report.json")), 0o600, "JSON report");
    assert_eq!(mode(&d.join("report.md")), 0o600, "Markdown report");
    let archive = walkdir::WalkDir::new(d.join("archives_v2"))
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_type().is_file())
        .expect("an archive file");
    assert_eq!(mode(archive.path()), 0o644, "{}", archive.path().display());

    under_umask_000(
        d,
        env!("CARGO_BIN_EXE_thywill-backup"),
        &["--v1-db", &fixture("g1-s/v1.db"), "--backup-dir", "backups"],
    );
    let set = std::fs::read_dir(d.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a backup set");
    assert_eq!(mode(&set), 0o700, "backup set folder");
    for entry in std::fs::read_dir(&set).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() && p.extension().is_some_and(|e| e == "db") {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

/// thywill-validate's reports and a cut-over rehearsal's work folder (0700) with its reports and
/// timeline (0600), under `umask 000`.
#[test]
fn validate_reports_and_the_rehearsal_work_folder_are_private_under_umask_000() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let archives = ["--archives-v1", &fixture("g1-s/text_archives")];
    let v1 = ["--v1-db", &fixture("g1-s/v1.db")];
    under_umask_000(
        d,
        env!("CARGO_BIN_EXE_thywill-migrate"),
        &[
            &v1[..],
            &archives[..],
            &["--archives-v2", "archives_v2", "-q"],
        ]
        .concat(),
    );
    under_umask_000(
        d,
        env!("CARGO_BIN_EXE_thywill-validate"),
        &[
            &v1[..],
            &archives[..],
            &[
                "--archives-v2",
                "archives_v2",
                "--report-json",
                "validation.json",
                "--report-html",
                "validation.html",
                "-q",
            ],
        ]
        .concat(),
    );
    assert_eq!(mode(&d.join("validation.json")), 0o600, "validate JSON");
    assert_eq!(mode(&d.join("validation.html")), 0o600, "validate HTML");

    under_umask_000(
        d,
        env!("CARGO_BIN_EXE_thywill-cutover"),
        &[
            &["--rehearsal", "--work-dir", "work", "-q"][..],
            &v1[..],
            &archives[..],
        ]
        .concat(),
    );
    let work = d.join("work");
    assert_eq!(mode(&work), 0o700, "work folder");
    for report in [
        "cutover_timeline.json",
        "migration_report.json",
        "migration_report.html",
        "validation_report.json",
        "validation_report.html",
    ] {
        assert_eq!(mode(&work.join(report)), 0o600, "{report}");
    }
}
