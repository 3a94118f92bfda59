//! No e-mail address is ever printed (rules.md "E-mail addresses"): the real `thywill-migrate`,
//! `thywill-analyze` and `thywill-validate` on a copy of fixtures/g3-s with an `email.db` of every `R-EMAIL` case,
//! with `-vv` logs (text and JSON), the JSON, Markdown and HTML reports and `--archives-v2`;
//! then every file they produced, their stdout and their stderr are searched for each plaintext
//! address (and for the key): none may appear. The v2 database itself is the one place the
//! carried addresses belong, and is checked to hold them (so the search is not vacuous).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use thywill_fixturegen::email::{secrets, standard_rows, write_email_db, TEST_KEY};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(bin: &str, dir: &Path, args: &[&str], env_key: bool) -> Output {
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .args(args)
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("RUST_LOG")
        .env_remove("EMAIL_ENCRYPTION_KEY");
    if env_key {
        c.env("EMAIL_ENCRYPTION_KEY", TEST_KEY);
    }
    c.output().unwrap()
}

/// Every secret found in `what` (named by `name`).
fn leaks(name: &str, what: &[u8], secrets: &[String]) -> Vec<String> {
    let text = String::from_utf8_lossy(what).to_lowercase();
    secrets
        .iter()
        .filter(|s| text.contains(&s.to_lowercase()))
        .map(|s| format!("{name}: {s}"))
        .collect()
}

#[test]
fn no_address_appears_in_any_log_report_or_archive_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = root().join("fixtures/g3-s");
    std::fs::copy(fixture.join("v1.db"), d.join("v1.db")).unwrap();
    let rows = standard_rows();
    write_email_db(&d.join("email.db"), TEST_KEY, &rows).unwrap();
    std::fs::write(d.join("email.key"), format!("{TEST_KEY}\n")).unwrap();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let mut secrets = secrets(&rows);
    secrets.push(TEST_KEY.to_string());
    let v1_tree = fixture.join("text_archives").display().to_string();

    // The v1 side, the target and the trees, as migrate and validate both take them.
    let both = [
        "--v1-db",
        "v1.db",
        "--v2-db",
        "sqlite://v2.db",
        "--archives-v1",
        &v1_tree,
        "--archives-v2",
        "out/text_archives_v2",
        "--v1-email-db",
        "email.db",
        "--v1-email-key-file",
        "email.key",
    ];
    let mut outputs = Vec::new();
    // migrate with the key file, text logs at -vv.
    let migrate = run(
        env!("CARGO_BIN_EXE_thywill-migrate"),
        d,
        &[
            &both[..],
            &[
                "--as-of",
                "2026-01-01 00:00:00",
                "--report-json",
                "out/migrate.json",
                "--report-md",
                "out/migrate.md",
                "--report-html",
                "out/migrate.html",
                "-vv",
            ],
        ]
        .concat(),
        false,
    );
    assert!(
        migrate.status.success(),
        "{}{}",
        String::from_utf8_lossy(&migrate.stdout),
        String::from_utf8_lossy(&migrate.stderr)
    );
    outputs.push(("migrate", migrate));
    // analyze with the key from the environment, JSON logs at -vv.
    let analyze = run(
        env!("CARGO_BIN_EXE_thywill-analyze"),
        d,
        &[
            "--v1-db",
            "v1.db",
            "--v1-email-db",
            "email.db",
            "--as-of",
            "2026-01-01 00:00:00",
            "--report-json",
            "out/analyze.json",
            "--report-md",
            "out/analyze.md",
            "--report-html",
            "out/analyze.html",
            "--log-format",
            "json",
            "-vv",
        ],
        true,
    );
    assert!(
        analyze.status.success(),
        "{}",
        String::from_utf8_lossy(&analyze.stderr)
    );
    outputs.push(("analyze", analyze));
    // validate, decrypting on its own, key from the file.
    let validate = run(
        env!("CARGO_BIN_EXE_thywill-validate"),
        d,
        &[
            &both[..],
            &[
                "--report-json",
                "out/validate.json",
                "--report-html",
                "out/validate.html",
                "-vv",
            ],
        ]
        .concat(),
        false,
    );
    assert!(
        validate.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validate.stdout),
        String::from_utf8_lossy(&validate.stderr)
    );
    outputs.push(("validate", validate));

    let mut found = Vec::new();
    for (name, o) in &outputs {
        assert!(!o.stderr.is_empty(), "{name}: -vv logged nothing");
        found.extend(leaks(&format!("{name} stdout"), &o.stdout, &secrets));
        found.extend(leaks(&format!("{name} stderr"), &o.stderr, &secrets));
    }
    let mut files = 0;
    for e in walkdir::WalkDir::new(&out) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            files += 1;
            let bytes = std::fs::read(e.path()).unwrap();
            found.extend(leaks(&e.path().display().to_string(), &bytes, &secrets));
        }
    }
    assert!(
        files > 100,
        "the archives and reports were written ({files} files)"
    );
    assert!(found.is_empty(), "addresses printed:\n{}", found.join("\n"));

    // The reports do speak of the rows, masked.
    let md = std::fs::read_to_string(out.join("migrate.md")).unwrap();
    assert!(md.contains("R-EMAIL"), "the findings are in the report");
    let json = std::fs::read_to_string(out.join("migrate.json")).unwrap();
    assert!(json.contains("\"email_db\""), "source.email_db");
    assert!(json.contains("a•••@example.org"), "masked in the findings");
    // The archive says the address is on file.
    let on_file = walkdir::WalkDir::new(out.join("text_archives_v2"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("Email: on file")));
    assert!(on_file, "a member's archive file says Email: on file");
    // Not vacuous: v2 holds the carried addresses, found by the same search.
    let v2 = std::fs::read(d.join("v2.db")).unwrap();
    assert!(
        !leaks("v2.db", &v2, &["abigail.afolabi@example.org".to_string()]).is_empty(),
        "v2.db holds the carried address"
    );
}

#[test]
fn the_key_is_never_a_command_line_value_and_a_bad_one_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(root().join("fixtures/g3-s/v1.db"), d.join("v1.db")).unwrap();
    write_email_db(&d.join("email.db"), TEST_KEY, &standard_rows()).unwrap();
    let bin = env!("CARGO_BIN_EXE_thywill-analyze");
    let base = ["--v1-db", "v1.db", "--v1-email-db", "email.db"];
    // No key at all.
    let o = run(bin, d, &base, false);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("EMAIL_ENCRYPTION_KEY"));
    // A key file that holds no Fernet key.
    std::fs::write(d.join("bad.key"), "not-a-key\n").unwrap();
    let mut args = base.to_vec();
    args.extend(["--v1-email-key-file", "bad.key"]);
    let o = run(bin, d, &args, false);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.key") && !err.contains("not-a-key"),
        "{err}"
    );
    // There is no flag taking the key's value.
    let mut args = base.to_vec();
    args.extend(["--v1-email-key", TEST_KEY]);
    let o = run(bin, d, &args, false);
    assert_eq!(o.status.code(), Some(2), "clap refuses an unknown flag");
    // A missing e-mail database: exit 3 naming it.
    let o = run(
        bin,
        d,
        &["--v1-db", "v1.db", "--v1-email-db", "gone.db"],
        true,
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("gone.db"));
}
