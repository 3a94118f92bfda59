//! `thywill-cutover`: every failure point ends in a clean rollback (v1 byte-identical, v2 without
//! the run's data, maintenance off, exit 1 naming the step), on SQLite and PostgreSQL; the happy
//! path and the rehearsal.

mod browser;
mod ops_common;

use std::path::{Path, PathBuf};

use ops_common::*;

const BIN: &str = env!("CARGO_BIN_EXE_thywill-cutover");

/// Which v2 backend a case runs against.
enum V2 {
    Sqlite,
    Pg(&'static str),
}

struct Case {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    v1: LiveV1,
    v2_url: String,
    pg: Option<PgDb>,
}

impl Case {
    fn new(v2: V2) -> Option<Case> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let v1 = LiveV1::new(&dir);
        let (v2_url, pg) = match v2 {
            V2::Sqlite => (sqlite_v2(&dir).0, None),
            V2::Pg(tag) => {
                let db = PgDb::new(tag)?;
                (db.url.clone(), Some(db))
            }
        };
        Some(Case {
            _dir: tmp,
            dir,
            v1,
            v2_url,
            pg,
        })
    }

    fn flag(&self) -> PathBuf {
        self.dir.join("MAINTENANCE")
    }

    /// Runs the cut-over with every hook succeeding unless `hooks` overrides it.
    fn run(&self, hooks: &[(&str, &str)], env: &[(&str, &str)]) -> std::process::Output {
        self.command(hooks, env).output().unwrap()
    }

    /// The cut-over's command line, every hook succeeding unless `hooks` overrides it.
    fn command(&self, hooks: &[(&str, &str)], env: &[(&str, &str)]) -> std::process::Command {
        let (migrate, validate) = standins(&self.dir);
        let d = self.dir.display().to_string();
        let owned: Vec<(String, String)> = [
            ("--v1-db", self.v1.path.display().to_string()),
            ("--v2-db", self.v2_url.clone()),
            (
                "--archives-v1",
                root()
                    .join("fixtures/g1-s/text_archives")
                    .display()
                    .to_string(),
            ),
            ("--archives-v2", format!("{d}/archives_v2")),
            ("--backup-dir", format!("{d}/backups")),
            ("--work-dir", format!("{d}/work")),
            ("--maintenance-flag", self.flag().display().to_string()),
            ("--status-page", format!("{d}/status.html")),
            ("--migrate-bin", migrate.display().to_string()),
            ("--validate-bin", validate.display().to_string()),
            ("--maintenance-on", format!("echo on >> {d}/hooks.log")),
            ("--maintenance-off", format!("echo off >> {d}/hooks.log")),
            ("--switch-cmd", format!("echo switch >> {d}/hooks.log")),
            (
                "--switch-back-cmd",
                format!("echo switch-back >> {d}/hooks.log"),
            ),
            ("--verify-cmd", format!("echo verify >> {d}/hooks.log")),
            (
                "--restart-v1-cmd",
                format!("echo restart-v1 >> {d}/hooks.log"),
            ),
        ]
        .into_iter()
        .map(|(flag, default)| {
            let value = hooks
                .iter()
                .find(|(f, _)| *f == flag)
                .map_or(default, |(_, v)| v.to_string());
            (flag.to_string(), value)
        })
        .collect();
        let args: Vec<&str> = owned
            .iter()
            .flat_map(|(f, v)| [f.as_str(), v.as_str()])
            .collect();
        command(BIN, &args, env)
    }

    fn hooks_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("hooks.log")).unwrap_or_default()
    }

    fn v2_user(&self, id: &str) -> bool {
        let sql = format!("SELECT count(*) FROM users WHERE id = '{id}'");
        let n = match &self.pg {
            Some(pg) if !pg.exists() => return false,
            Some(_) => psql(&self.v2_url, &sql),
            None => sqlite(Path::new(self.v2_url.trim_start_matches("sqlite://")), &sql),
        };
        n.trim() == "1"
    }

    fn run_status(&self) -> String {
        let sql = format!("SELECT status FROM migration_runs WHERE run_id = '{RUN_ID}'");
        match &self.pg {
            Some(pg) if !pg.exists() => "database gone".into(),
            Some(_) => psql(&self.v2_url, &sql).trim().to_string(),
            None => sqlite(Path::new(self.v2_url.trim_start_matches("sqlite://")), &sql)
                .trim()
                .to_string(),
        }
    }

    /// Runs a failing cut-over and checks the clean rollback (exit 1).
    fn fails_cleanly(&self, step: &str, hooks: &[(&str, &str)], env: &[(&str, &str)]) -> String {
        self.fails_cleanly_with(1, step, hooks, env)
    }

    /// [`Case::fails_cleanly`] expecting exit `code` (4 for a step that refused for safety).
    fn fails_cleanly_with(
        &self,
        code: i32,
        step: &str,
        hooks: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> String {
        let before = v1_fingerprint(&self.v1.path);
        let out = self.run(hooks, env);
        self.rolled_back_cleanly(code, step, &before, &out)
    }

    /// Starts the cut-over, waits until `step_runs()` (a hook or stand-in touches a file while
    /// its step runs), sends `signal`, and checks the clean rollback and the exit 130/143.
    fn stops_cleanly_on_signal(
        &self,
        signal: &str,
        step: &str,
        step_runs: impl Fn() -> bool,
        hooks: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> String {
        let before = v1_fingerprint(&self.v1.path);
        let child = self
            .command(hooks, env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the step to start", step_runs);
        let sent = std::time::Instant::now();
        send_signal(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        let (code, name) = signal_exit(signal);
        let all = self.rolled_back_cleanly(code, step, &before, &out);
        assert!(all.contains(&format!("interrupted by {name}")), "{all}");
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(20),
            "the running step was not stopped (its child kept the day waiting):\n{all}"
        );
        all
    }

    /// Checks a cut-over's output `out`: exit `code` naming `step`, and the clean rollback (v1 as
    /// `before`, the run's data gone, maintenance off, switched back iff switched).
    fn rolled_back_cleanly(
        &self,
        code: i32,
        step: &str,
        before: &(String, String),
        out: &std::process::Output,
    ) -> String {
        let all = text(out);
        assert_eq!(out.status.code(), Some(code), "{all}");
        assert!(
            all.contains(&format!("cut-over failed at step '{step}'")),
            "{all}"
        );
        assert_eq!(
            &v1_fingerprint(&self.v1.path),
            before,
            "v1 byte-identical (file and -wal)\n{all}"
        );
        assert!(!self.flag().exists(), "maintenance flag removed\n{all}");
        assert!(!self.v2_user(RUN_USER), "the run's data removed\n{all}");
        if self.pg.as_ref().is_none_or(|p| p.exists()) {
            assert!(
                self.v2_user("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
                "other v2 data kept\n{all}"
            );
        }
        let status = self.run_status();
        assert!(
            status.is_empty() || status == "rolled_back" || status == "database gone",
            "run status {status}\n{all}"
        );
        let page = std::fs::read_to_string(self.dir.join("status.html")).unwrap();
        let told = page.contains("ThyWill is back on its current system")
            || page.contains("still in maintenance");
        assert!(
            told && page.contains("did not work") && !page.contains("in progress"),
            "{page}"
        );
        let log = self.hooks_log();
        let maintenance_was_on = log.contains("on\n");
        assert_eq!(
            log.ends_with("off\n"),
            maintenance_was_on,
            "maintenance off last when it was on:\n{log}"
        );
        assert_eq!(
            log.contains("switch-back"),
            log.contains("switch\n"),
            "switched back iff switched:\n{log}"
        );
        all
    }
}

#[test]
fn happy_path_times_every_step_and_ends_with_maintenance_off() {
    let c = Case::new(V2::Sqlite).unwrap();
    let before = v1_fingerprint(&c.v1.path);
    let out = c.run(&[], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    for step in [
        "backup",
        "maintenance-on",
        "validate-v1",
        "migrate",
        "validate",
        "switch",
        "verify",
        "maintenance-off",
    ] {
        assert!(
            all.contains(&format!("  {step:<16} done")),
            "{step} in\n{all}"
        );
    }
    assert!(all.contains("of the 01:00:00 budget"), "{all}");
    assert_eq!(v1_fingerprint(&c.v1.path), before);
    assert!(!c.flag().exists());
    assert!(c.v2_user(RUN_USER));
    assert_eq!(c.hooks_log(), "on\nswitch\nverify\noff\n");
    let page = std::fs::read_to_string(c.dir.join("status.html")).unwrap();
    assert!(page.contains("Welcome home"), "{page}");
    assert!(c.dir.join("work/cutover_timeline.json").exists());
    assert!(c.dir.join("work/migration_report.json").exists());
}

#[test]
fn each_step_is_printed_on_stdout_as_it_ends() {
    let c = Case::new(V2::Sqlite).unwrap();
    let d = c.dir.display().to_string();
    // verify waits (at most 60 s) for the test to have read the switch step's line.
    let verify = format!(
        "i=0; while [ ! -e {d}/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo verify >> {d}/hooks.log"
    );
    let mut child = c
        .command(&[("--verify-cmd", &verify)], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains(&format!("  {:<16} done", "switch")) {
            break;
        }
    }
    // The verify hook is still waiting for us: the line came as the switch ended, not at the end.
    assert!(
        !c.hooks_log().contains("verify") && child.try_wait().unwrap().is_none(),
        "the switch line came only after the verify step:\n{}",
        seen.join("\n")
    );
    assert!(seen[0].starts_with("cut-over started "), "{seen:?}");
    let done: Vec<&str> = seen[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        done,
        [
            "backup",
            "maintenance-on",
            "validate-v1",
            "migrate",
            "validate",
            "switch"
        ]
    );
    assert!(seen[1..]
        .iter()
        .all(|l| l.starts_with("T+") && l.contains(" done ")));
    std::fs::write(c.dir.join("go"), "").unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    let verify_at = rest.iter().position(|l| l.contains("  verify ")).unwrap();
    assert!(
        rest[verify_at + 1].contains("  maintenance-off  done"),
        "{rest:?}"
    );
    // Then the summary: the whole timeline and the total.
    assert_eq!(rest[verify_at + 2], "summary:", "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("of the 01:00:00 budget")));
}

/// What the community status page must be at every moment: for a phone, self-contained, no
/// script, nothing technical.
fn check_status_page(page: &str, c: &Case) {
    assert!(page.contains("<meta name=\"viewport\" content=\"width=device-width"));
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    for (what, hidden) in [
        ("a script", "<script"),
        ("a link", "http:"),
        ("a link", "https:"),
        ("a source", " src="),
        ("a link", " href="),
        ("a path", &c.dir.display().to_string()),
        ("a run id", RUN_ID),
        ("a step's machine name", "maintenance-on"),
    ] {
        assert!(!page.contains(hidden), "{what} on the status page:\n{page}");
    }
}

#[test]
fn status_page_tells_members_what_happens_and_reads_on_a_phone() {
    let c = Case::new(V2::Sqlite).unwrap();
    let d = c.dir.display().to_string();
    // The verify hook keeps the page as it stood during that step.
    let verify = format!("cp {d}/status.html {d}/status-verify.html; echo verify >> {d}/hooks.log");
    let out = c.run(&[("--verify-cmd", &verify)], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let during = c.dir.join("status-verify.html");
    let mid = std::fs::read_to_string(&during).unwrap();
    check_status_page(&mid, &c);
    for said in [
        "ThyWill is moving to its new home",
        "Now: Verifying the new system (step 7 of 8).",
        "ThyWill has been closed since ",
        "We expect it to be open again by about ",
        "You don&#39;t need to do anything.",
    ] {
        assert!(mid.contains(said), "{said:?} missing:\n{mid}");
    }
    let done = c.dir.join("status.html");
    let end = std::fs::read_to_string(&done).unwrap();
    check_status_page(&end, &c);
    assert!(
        end.contains("Welcome home!") && !end.contains("in progress"),
        "{end}"
    );

    if !browser::available() {
        return;
    }
    let dom = browser::dump_dom(&during);
    assert!(
        dom.contains("Now: Verifying the new system") && !dom.contains("<script"),
        "{dom}"
    );
    browser::screenshot(&during, "status-phone", "390,1200");
    browser::screenshot(&done, "status-done-phone", "390,1200");
}

#[test]
fn failing_backup_rolls_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    std::fs::write(c.dir.join("file"), "").unwrap();
    let bad = format!("{}/file/backups", c.dir.display());
    // An unwritable backup folder is a refusal for safety: 4, as for thywill-backup.
    let all = c.fails_cleanly_with(4, "backup", &[("--backup-dir", &bad)], &[]);
    assert!(all.contains("not writable"), "{all}");
}

#[test]
fn failing_maintenance_on_hook_rolls_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    let hook = format!("echo on >> {}/hooks.log; exit 5", c.dir.display());
    let all = c.fails_cleanly("maintenance-on", &[("--maintenance-on", &hook)], &[]);
    assert!(all.contains("hook --maintenance-on"), "{all}");
}

#[test]
fn failing_v1_validation_rolls_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    c.fails_cleanly("validate-v1", &[], &[("STANDIN_VALIDATE_V1_EXIT", "3")]);
}

#[test]
fn failing_migrate_rolls_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    let all = c.fails_cleanly("migrate", &[], &[("STANDIN_MIGRATE_EXIT", "1")]);
    assert!(all.contains("exited with code 1"), "{all}");
    assert_eq!(c.run_status(), "rolled_back");
}

/// A migrate child that refuses for safety (foreign v2 data, foreign archive files: it exits 4)
/// makes the cut-over exit 4 once rolled back, as the runbook says (it was 1).
#[test]
fn a_refusing_migrate_child_rolls_back_and_exits_4() {
    let c = Case::new(V2::Sqlite).unwrap();
    let all = c.fails_cleanly_with(4, "migrate", &[], &[("STANDIN_MIGRATE_EXIT", "4")]);
    assert!(all.contains("refused for safety"), "{all}");
    assert_eq!(c.run_status(), "rolled_back");
}

/// The real `thywill-migrate` against a v2 already holding another source's migration (g0-s)
/// refuses (foreign data, exit 4): the cut-over rolls back, leaves that v2 as it was, and exits 4.
#[test]
fn the_real_migrate_refusing_foreign_v2_data_makes_the_cutover_exit_4() {
    let c = Case::new(V2::Sqlite).unwrap();
    let foreign = c.dir.join("foreign_v2.db");
    let url = format!("sqlite://{}", foreign.display());
    let g0 = root().join("fixtures/g0-s/v1.db");
    let out = run(
        env!("CARGO_BIN_EXE_thywill-migrate"),
        &["--v1-db", g0.to_str().unwrap(), "--v2-db", &url, "-q"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let before = sqlite(
        &foreign,
        "SELECT run_id, status FROM migration_runs; SELECT count(*) FROM users;",
    );
    let all = c.fails_cleanly_with(
        4,
        "migrate",
        &[
            ("--v2-db", &url),
            ("--migrate-bin", env!("CARGO_BIN_EXE_thywill-migrate")),
            ("--validate-bin", env!("CARGO_BIN_EXE_thywill-validate")),
        ],
        &[],
    );
    assert!(all.contains("refused for safety"), "{all}");
    assert_eq!(
        sqlite(
            &foreign,
            "SELECT run_id, status FROM migration_runs; SELECT count(*) FROM users;"
        ),
        before,
        "the foreign v2 untouched"
    );
}

/// A hook's exit 4 is the operator's own code, not a refusal: the failed day exits 1.
#[test]
fn a_hook_exiting_4_is_an_ordinary_failure() {
    let c = Case::new(V2::Sqlite).unwrap();
    c.fails_cleanly("verify", &[("--verify-cmd", "exit 4")], &[]);
}

/// SIGTERM while the verify hook runs: the hook (its `sh` and the `sleep` it runs) gets the
/// signal, the day rolls back (switched back, maintenance off) and exits 143; it used to die by
/// the signal with maintenance on and traffic on v2.
#[test]
fn sigterm_during_a_hook_stops_it_rolls_back_and_exits_143() {
    let c = Case::new(V2::Sqlite).unwrap();
    let marker = c.dir.join("verifying");
    let verify = format!("touch {}; sleep 60", marker.display());
    let all = c.stops_cleanly_on_signal(
        "TERM",
        "verify",
        || marker.exists(),
        &[("--verify-cmd", &verify)],
        &[],
    );
    assert!(
        c.hooks_log().contains("switch-back\nrestart-v1\noff\n"),
        "{all}"
    );
    assert_eq!(c.run_status(), "rolled_back");
}

/// SIGINT while the migrate child runs: the child gets it, the day rolls back and exits 130.
#[test]
fn sigint_during_migrate_rolls_back_and_exits_130() {
    let c = Case::new(V2::Sqlite).unwrap();
    let marker = c.dir.join("migrating");
    let m = marker.display().to_string();
    c.stops_cleanly_on_signal(
        "INT",
        "migrate",
        || marker.exists(),
        &[],
        &[("STANDIN_MIGRATE_WAIT", &m)],
    );
    assert_eq!(c.run_status(), "rolled_back");
}

/// A `set -x` verify hook echoing `$V2_DB_URL` and an address, the v2 URL holding a password:
/// neither the password nor the address reaches the cut-over's output or any file it wrote,
/// whether the hook sees the redacted URL (the default) or the real one
/// (THYWILL_HOOKS_SEE_SECRETS=1; then the relay scrubs it).
#[test]
fn pg_hook_output_is_scrubbed_of_the_password_and_addresses() {
    const PASSWORD: &str = "Pa55w0rd!";
    for (tag, env) in [
        ("scrub", &[][..]),
        ("scrubsecret", &[("THYWILL_HOOKS_SEE_SECRETS", "1")][..]),
    ] {
        let Some(c) = Case::new(V2::Pg(tag)) else {
            return;
        };
        let url = c.v2_url.replacen('@', &format!(":{PASSWORD}@"), 1);
        let verify = r#"set -x; echo "$V2_DB_URL" mary@example.org"#;
        let out = c.run(&[("--v2-db", &url), ("--verify-cmd", verify)], env);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{tag}: {all}");
        assert!(
            all.contains(":***@") && all.contains("m•••@example.org"),
            "{tag}: the hook's lines are relayed, masked:\n{all}"
        );
        let files = walkdir::WalkDir::new(c.dir.join("work"))
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .chain([c.dir.join("status.html")])
            .filter(|p| p.is_file());
        let texts = files.map(|p| {
            let content = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            (p.display().to_string(), content)
        });
        for (what, content) in [("output".to_string(), all.clone())]
            .into_iter()
            .chain(texts)
        {
            for secret in [PASSWORD, "mary@example.org"] {
                assert!(!content.contains(secret), "{tag}: {secret} in {what}");
            }
        }
    }
}

/// SIGTERM during the backup step (in the cut-over's own process: no child to pass it to): the
/// copy stops at its next file, the `.partial` set is removed, the day rolls back and exits 143.
#[test]
fn sigterm_during_the_backup_step_rolls_back_and_exits_143() {
    let c = Case::new(V2::Sqlite).unwrap();
    let tree = c.dir.join("big_tree");
    big_tree(&tree, 4000);
    let backups = c.dir.join("backups");
    let partial = || names_in(&backups).iter().any(|n| n.ends_with(".partial"));
    let all = c.stops_cleanly_on_signal(
        "TERM",
        "backup",
        partial,
        &[("--archives-v1", tree.to_str().unwrap())],
        &[],
    );
    assert!(
        names_in(&backups).is_empty(),
        "{:?}\n{all}",
        names_in(&backups)
    );
    assert_eq!(c.hooks_log(), "", "nothing after the backup ran");
}

#[test]
fn failing_validation_rolls_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    c.fails_cleanly("validate", &[], &[("STANDIN_VALIDATE_EXIT", "1")]);
    assert_eq!(c.run_status(), "rolled_back");
}

#[test]
fn failing_switch_hook_rolls_back_and_switches_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    let d = c.dir.display().to_string();
    c.fails_cleanly(
        "switch",
        &[(
            "--switch-cmd",
            &format!("echo switch >> {d}/hooks.log; exit 1"),
        )],
        &[],
    );
    assert!(
        c.hooks_log().contains("switch-back\nrestart-v1\noff\n"),
        "{}",
        c.hooks_log()
    );
}

#[test]
fn failing_verify_hook_rolls_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    c.fails_cleanly("verify", &[("--verify-cmd", "false")], &[]);
    assert_eq!(c.run_status(), "rolled_back");
}

#[test]
fn failing_maintenance_off_hook_rolls_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    let d = c.dir.display().to_string();
    // Fails the first time only, so the rollback's own maintenance-off succeeds.
    let hook = format!("if [ -e {d}/off-once ]; then echo off >> {d}/hooks.log; else touch {d}/off-once; exit 1; fi");
    c.fails_cleanly("maintenance-off", &[("--maintenance-off", &hook)], &[]);
}

#[test]
fn a_migration_that_changed_v1_is_restored_from_the_backup() {
    let c = Case::new(V2::Sqlite).unwrap();
    let marks_before = sqlite(&c.v1.path, "SELECT count(*) FROM prayermark");
    let v1 = c.v1.path.display().to_string();
    let out = c.run(
        &[],
        &[
            ("STANDIN_MIGRATE_TOUCH_V1", &v1),
            ("STANDIN_MIGRATE_EXIT", "1"),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("v1 restored from the backup"), "{all}");
    assert_eq!(
        sqlite(&c.v1.path, "SELECT count(*) FROM prayermark"),
        marks_before
    );
    assert!(!c.flag().exists());
}

#[test]
fn rehearsal_runs_on_copies_and_reports_the_budget() {
    let c = Case::new(V2::Sqlite).unwrap();
    let (migrate, validate) = standins(&c.dir);
    let before = v1_fingerprint(&c.v1.path);
    let work = c.dir.join("rehearsal");
    let scratch_dir = c.dir.join("scratch");
    std::fs::create_dir_all(&scratch_dir).unwrap();
    let (scratch_url, scratch) = sqlite_v2(&scratch_dir);
    let out = run(
        BIN,
        &[
            "--rehearsal",
            "--v1-db",
            c.v1.path.to_str().unwrap(),
            "--archives-v1",
            root().join("fixtures/g1-s/text_archives").to_str().unwrap(),
            "--work-dir",
            work.to_str().unwrap(),
            "--rehearsal-v2-db",
            &scratch_url,
            "--migrate-bin",
            migrate.to_str().unwrap(),
            "--validate-bin",
            validate.to_str().unwrap(),
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("rehearsal started") && all.contains("budget"),
        "{all}"
    );
    assert_eq!(v1_fingerprint(&c.v1.path), before);
    assert!(work.join("rehearsal/v1.db").exists());
    assert!(work.join("rehearsal/status.html").exists());
    assert!(!work.join("rehearsal/maintenance.flag").exists());
    // The scratch v2 got the stand-in's run; the real v2 did not.
    assert_eq!(
        sqlite(
            &scratch,
            &format!("SELECT count(*) FROM users WHERE id = '{RUN_USER}'")
        )
        .trim(),
        "1",
        "{all}"
    );
    assert!(!c.v2_user(RUN_USER));
}

#[test]
fn pg_failing_validation_rolls_back() {
    let Some(c) = Case::new(V2::Pg("validate")) else {
        return;
    };
    c.fails_cleanly("validate", &[], &[("STANDIN_VALIDATE_EXIT", "1")]);
    assert_eq!(c.run_status(), "rolled_back");
}

#[test]
fn pg_failing_verify_hook_rolls_back() {
    let Some(c) = Case::new(V2::Pg("verify")) else {
        return;
    };
    c.fails_cleanly("verify", &[("--verify-cmd", "exit 2")], &[]);
    assert_eq!(c.run_status(), "rolled_back");
}

#[test]
fn pg_unreachable_during_migrate_rolls_back() {
    let Some(c) = Case::new(V2::Pg("migrate3")) else {
        return;
    };
    c.fails_cleanly("migrate", &[], &[("STANDIN_MIGRATE_EXIT", "3")]);
    assert_eq!(c.run_status(), "rolled_back");
}

#[test]
fn pg_dropped_between_steps_still_ends_off_with_v1_intact() {
    let Some(c) = Case::new(V2::Pg("dropped")) else {
        return;
    };
    let pg = c.pg.as_ref().unwrap();
    let (name, admin) = (pg.name.clone(), pg.admin().to_string());
    // The way back could not remove the run's data (the database is gone): incomplete, 5.
    let all = c.fails_cleanly_with(
        5,
        "validate",
        &[],
        &[
            ("STANDIN_DROP_DB", &name),
            ("STANDIN_ADMIN_URL", &admin),
            ("STANDIN_VALIDATE_EXIT", "3"),
        ],
    );
    assert!(!pg.exists());
    assert!(
        all.contains("ROLLBACK INCOMPLETE") && all.contains(&name),
        "the unreachable v2 is named:\n{all}"
    );
}

#[test]
fn rehearsal_with_the_real_migrate_and_validate_on_g1_s() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = root().join("fixtures/g1-s/v1.db");
    let before = v1_fingerprint(&v1);
    let work = tmp.path().join("work");
    // Limits g1-s stays within (14 marks, user_roles 4.44%) reach migrate and let it go on.
    let out = rehearse_for_real(
        &root().join("fixtures/g1-s/text_archives"),
        &work,
        &[
            "--max-quarantined",
            "14",
            "--max-quarantined-percent",
            "4.5",
        ],
    );
    let all = text(&out);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(v1_fingerprint(&v1), before, "the fixture is only read");
    assert!(
        !all.contains('\x1b'),
        "no ANSI codes in the relayed children's output:\n{all:?}"
    );
    assert!(
        all.contains(&format!("  {:<16} done", "migrate")),
        "the real migration ran:\n{all}"
    );
    assert!(!work.join("rehearsal/maintenance.flag").exists());
    assert_eq!(
        out.status.code(),
        Some(0),
        "the rehearsal must succeed end to end:\n{all}"
    );
    assert!(all.contains("of the 01:00:00 budget"), "{all}");
    for step in [
        "backup",
        "maintenance-on",
        "validate-v1",
        "migrate",
        "validate",
        "switch",
        "verify",
        "maintenance-off",
    ] {
        assert!(
            all.contains(&format!("  {step:<16} done"))
                || all.contains(&format!("  {step:<16} skipped")),
            "step {step} did not finish:\n{all}"
        );
    }
}

/// A cut-over rehearsal of g1-s with the real migrate and validate binaries, archives from `tree`,
/// with `extra` flags.
fn rehearse_for_real(tree: &Path, work: &Path, extra: &[&str]) -> std::process::Output {
    rehearse_v1_for_real(&root().join("fixtures/g1-s/v1.db"), tree, work, extra)
}

/// [`rehearse_for_real`] of another v1 database.
fn rehearse_v1_for_real(
    v1: &Path,
    tree: &Path,
    work: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "--rehearsal",
        "--v1-db",
        v1.to_str().unwrap(),
        "--archives-v1",
        tree.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
        "--migrate-bin",
        env!("CARGO_BIN_EXE_thywill-migrate"),
        "--validate-bin",
        env!("CARGO_BIN_EXE_thywill-validate"),
    ];
    args.extend_from_slice(extra);
    run(BIN, &args, &[])
}

/// NUL bytes in v1 (a prayer text, a member's name, a testimony): migrate replaces each with
/// U+FFFD and an `R-UTF8` finding, validate derives the same, so the cut-over does not roll back
/// (on `98e3280` validate expected the NUL kept in texts and every cut-over of such a v1 failed).
#[test]
fn a_v1_holding_nul_bytes_cuts_over_without_rolling_back() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = tmp.path().join("v1.db");
    std::fs::copy(root().join("fixtures/g1-s/v1.db"), &v1).unwrap();
    let db = rusqlite::Connection::open(&v1).unwrap();
    let (prayer, original): (String, String) = db
        .query_row(
            "SELECT id, text FROM prayer WHERE id NOT LIKE '%-%' AND length(text) > 20 ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    db.execute_batch(&format!(
        "UPDATE prayer SET text = 'Please pray' || char(0) || ' for ' || text WHERE id = '{prayer}';
         UPDATE user SET display_name = display_name || char(0) || 'x'
             WHERE rowid = (SELECT max(rowid) FROM user);
         UPDATE prayer_attributes SET attribute_value = 'Healed' || char(0) || '!'
             WHERE rowid = (SELECT min(rowid) FROM prayer_attributes
                            WHERE attribute_name = 'answer_testimony');"
    ))
    .unwrap();
    drop(db);
    let work = tmp.path().join("work");
    let out = rehearse_v1_for_real(
        &v1,
        &root().join("fixtures/g1-s/text_archives"),
        &work,
        &["--max-quarantined-percent", "100"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "no roll back:\n{all}");
    for step in ["migrate", "validate"] {
        assert!(
            all.contains(&format!("  {step:<16} done")),
            "{step}:\n{all}"
        );
    }
    // Each NUL is an R-UTF8 repair of its row: U+FFFD in its place, except in the prayer's
    // text, which its archive file holds whole and which is restored from it (decisions §50).
    let v2 = rusqlite::Connection::open(work.join("rehearsal/v2.db")).unwrap();
    let repaired = |table: &str| -> i64 {
        v2.query_row(
            "SELECT count(*) FROM migration_findings WHERE rule = 'R-UTF8' AND v1_table = ?1 \
             AND original_json LIKE '%00%'",
            [table],
            |r| r.get(0),
        )
        .unwrap()
    };
    for table in ["prayer", "user", "prayer_attributes"] {
        assert!(repaired(table) >= 1, "an R-UTF8 finding on {table}");
    }
    let text: String = v2
        .query_row("SELECT text FROM prayers WHERE id = ?1", [&prayer], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(text, original, "restored from the archive file");
}

/// Symlinks in the v1 archive tree: the rehearsal's copy keeps them as links (never followed), so
/// it rehearses the real tree; migrate skips them with a finding in the report, and validate
/// agrees (a fact, not a failure), so the rehearsal and the real day end alike.
#[test]
fn rehearsal_copies_symlinks_and_migrate_and_validate_agree_on_them() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("text_archives");
    ops_common::g1s_tree_with_symlinks(&tree);
    let work = tmp.path().join("work");
    let out = rehearse_for_real(&tree, &work, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let copy = work.join("rehearsal/archives_v1");
    for link in ["users/outside.txt", "dangling.txt"] {
        let meta = std::fs::symlink_metadata(copy.join(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "{link} copied as a link");
    }
    let report = std::fs::read_to_string(work.join("migration_report.json")).unwrap();
    assert!(
        report.contains("outside.txt") && report.contains("dangling.txt"),
        "the skipped links are findings in the report"
    );
}

/// The real day (not a rehearsal) with the real migrate and validate binaries on a v1 archive
/// tree holding symlinks: migrate skips them with findings, validate agrees, so the day ends 0
/// without rolling back (on `98e3280` the real cut-over failed at validate and rolled back).
#[test]
fn a_real_cutover_on_a_tree_holding_symlinks_does_not_roll_back() {
    let c = Case::new(V2::Sqlite).unwrap();
    let tree = c.dir.join("text_archives");
    ops_common::g1s_tree_with_symlinks(&tree);
    // A fresh v2 (the case's own holds a row no run wrote, which the real migrate refuses).
    let v2 = c.dir.join("fresh_v2.db");
    let url = format!("sqlite://{}", v2.display());
    let out = c.run(
        &[
            ("--v2-db", &url),
            ("--archives-v1", tree.to_str().unwrap()),
            ("--migrate-bin", env!("CARGO_BIN_EXE_thywill-migrate")),
            ("--validate-bin", env!("CARGO_BIN_EXE_thywill-validate")),
        ],
        &[],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        !all.contains("rolling back after") && !all.contains("cut-over failed"),
        "{all}"
    );
    assert_eq!(c.hooks_log(), "on\nswitch\nverify\noff\n");
    let report = std::fs::read_to_string(c.dir.join("work/migration_report.json")).unwrap();
    assert!(
        report.contains("outside.txt") && report.contains("dangling.txt"),
        "the skipped links are findings in the report"
    );
    let users = sqlite(&v2, "SELECT count(*) FROM users");
    assert!(
        users.trim().parse::<u64>().unwrap() > 0,
        "the real migration wrote v2"
    );
}

#[test]
fn a_rehearsal_over_its_quarantine_limit_fails_at_migrate_and_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = root().join("fixtures/g1-s/v1.db");
    let before = v1_fingerprint(&v1);
    let work = tmp.path().join("work");
    let out = rehearse_for_real(
        &root().join("fixtures/g1-s/text_archives"),
        &work,
        &["--max-quarantined-percent", "4"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("cut-over failed at step 'migrate'"),
        "the day stops at migrate:\n{all}"
    );
    assert!(
        all.contains("refusing to migrate: quarantined rows over --max-quarantined-percent 4: user 5 of 124 (4.03%)"),
        "the child's refusal reaches the operator:\n{all}"
    );
    assert!(
        all.contains(&format!("  {:<16} not run", "validate")),
        "nothing after migrate ran:\n{all}"
    );
    assert_eq!(v1_fingerprint(&v1), before, "the fixture is only read");
    assert!(!work.join("rehearsal/maintenance.flag").exists());
    assert!(
        !work.join("rehearsal/archives_v2").exists(),
        "no archive folder written"
    );
    let v2 = work.join("rehearsal/v2.db");
    assert!(
        !v2.exists() || sqlite(&v2, "SELECT count(*) FROM sqlite_master").trim() == "0",
        "nothing written to the scratch v2:\n{all}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("migration_report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["outcome"], "failed",
        "the refused run's report is kept"
    );
}
