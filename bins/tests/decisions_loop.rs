//! The operator's loop of docs/runbook.md with the real binaries on fixtures/g1-s: analyze
//! writes the template, the operator edits it, analyze previews it, migrate applies it,
//! validate derives it again, and the cut-over's rehearsal passes it to its migrate and
//! validate steps. A bad value is refused (exit 2) before v2 is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/g1-s/v1.db")
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The template with the blank-named member `9cee…` carried under `name`.
fn decide(template: &str, name: &str) -> String {
    let at = template
        .find("key = \"9cee7513ec5e462eae65e22f06175130\"")
        .expect("the template lists the blank-named member");
    let (head, tail) = template.split_at(at);
    let tail = tail.replacen(
        "choice = \"keep_quarantined\"\nnote = \"\"",
        &format!("choice = \"carry\"\ndisplay_name = \"{name}\"\nnote = \"asked her\""),
        1,
    );
    format!("{head}{tail}")
}

#[test]
fn analyze_template_decide_preview_migrate_validate_rehearse() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = fixture();
    let v1 = v1.to_str().unwrap();
    let template = d.join("template.toml");
    let out = run(
        env!("CARGO_BIN_EXE_thywill-analyze"),
        &[
            "--v1-db",
            v1,
            "-q",
            "--decisions-template",
            template.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let decisions = d.join("decisions.toml");
    std::fs::write(
        &decisions,
        decide(
            &std::fs::read_to_string(&template).unwrap(),
            "Ruth Quarantine",
        ),
    )
    .unwrap();
    let decisions = decisions.to_str().unwrap();

    let preview = d.join("preview.json");
    let page = d.join("preview.html");
    let out = run(
        env!("CARGO_BIN_EXE_thywill-analyze"),
        &[
            "--v1-db",
            v1,
            "-q",
            "--decisions",
            decisions,
            "--report-json",
            preview.to_str().unwrap(),
            "--report-html",
            page.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("decisions: "),
        "the summary names the file"
    );
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(page.contains("entries applied"), "the page names the file");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&preview).unwrap()).unwrap();
    assert!(report["decisions"]["entries_applied"].as_u64().unwrap() > 0);

    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        decide(&std::fs::read_to_string(&template).unwrap(), " Ruth"),
    )
    .unwrap();
    let v2_file = d.join("v2.db");
    let v2 = format!("sqlite://{}", v2_file.display());
    let out = run(
        env!("CARGO_BIN_EXE_thywill-migrate"),
        &[
            "--v1-db",
            v1,
            "--v2-db",
            &v2,
            "-q",
            "--decisions",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("(user \"9cee7513ec5e462eae65e22f06175130\", R-USER-EMPTY-NAME)"),
        "{}",
        text(&out)
    );
    assert!(!v2_file.exists(), "the target is untouched");

    let out = run(
        env!("CARGO_BIN_EXE_thywill-migrate"),
        &[
            "--v1-db",
            v1,
            "--v2-db",
            &v2,
            "-q",
            "--decisions",
            decisions,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(
        env!("CARGO_BIN_EXE_thywill-validate"),
        &[
            "--v1-db",
            v1,
            "--v2-db",
            &v2,
            "-q",
            "--decisions",
            decisions,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("PASS decisions:"), "{}", text(&out));
    // thywill-runs names the file each run applied.
    let out = run(
        env!("CARGO_BIN_EXE_thywill-runs"),
        &["--v2-db", &v2, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(decisions).unwrap()))
    };
    assert_eq!(listed[0]["decisions_sha256"], file_sha.as_str());

    let work = d.join("rehearsal");
    let out = run(
        env!("CARGO_BIN_EXE_thywill-cutover"),
        &[
            "--rehearsal",
            "--v1-db",
            v1,
            "-q",
            "--work-dir",
            work.to_str().unwrap(),
            "--decisions",
            decisions,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let validation = std::fs::read_to_string(work.join("validation_report.json")).unwrap();
    assert!(
        validation.contains("\"decisions\""),
        "the rehearsal validated with the file"
    );
}
