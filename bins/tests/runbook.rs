//! The runbook's commands as written (docs/runbook.md): every shell line that starts with one of
//! our binaries, continuation lines joined, is run through `bash` with the seed's environment
//! variables set, only the machine's paths moved into a scratch folder (`/prod`, `/staging`,
//! `/srv`, `/backups` → the folder's own) and the site's own commands (`systemctl …`) made
//! harmless. So the flags, the defaults from `V1_DB_PATH`, `V2_DB_URL` and `BACKUP_DIR`, the default
//! work folder and the sibling binaries are those an operator gets. On both backends: the
//! migration-day target is PostgreSQL when `THYWILL_TEST_PG_URL` is set, else a SQLite file.
//! (`just …` lines are checked by `scripts/check-just-commands.sh`: their recipes build release
//! binaries, too slow for CI.)

mod ops_common;

use std::path::Path;
use std::process::Command;

use ops_common::{copy_tree, root, sqlite};

/// Members, prayers and marks of a v1 file, as `u/p/m`.
fn counts_of(db: &Path) -> String {
    sqlite(
        db,
        "SELECT (SELECT count(*) FROM user) || '/' || (SELECT count(*) FROM prayer) || '/' \
         || (SELECT count(*) FROM prayermark)",
    )
}

/// The runbook's command lines for our binaries, continuation lines joined, comments dropped.
fn runbook_commands() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/runbook.md")).unwrap();
    let mut out = Vec::new();
    let mut in_bash = false;
    let mut pending: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("```") {
            in_bash = line.trim() == "```bash";
            continue;
        }
        if !in_bash {
            continue;
        }
        let code = line.split(" # ").next().unwrap_or("").trim_end();
        let (body, continues) = match code.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (code, false),
        };
        let joined = match pending.take() {
            Some(p) => format!("{p} {}", body.trim_start()),
            None if body.trim_start().starts_with("thywill-")
                || body.trim_start().starts_with("df ") =>
            {
                body.trim_start().to_string()
            }
            None => continue,
        };
        if continues {
            pending = Some(joined);
        } else {
            out.push(joined);
        }
    }
    out
}

/// A scratch machine: the runbook's folders under `dir`, the site's hooks as scripts that
/// record their calls, v1 and its tree as copies of fixtures/g1-s.
fn machine(dir: &Path) {
    for d in [
        "prod",
        "staging",
        "srv/ops",
        "srv/thywill",
        "srv/thywill_v2",
        "srv/www",
        "backups/thywill",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for place in ["prod", "staging"] {
        std::fs::copy(
            root().join("fixtures/g1-s/v1.db"),
            dir.join(place).join("thywill.db"),
        )
        .unwrap();
        copy_tree(
            &root().join("fixtures/g1-s/text_archives"),
            &dir.join(place).join("text_archives"),
        );
    }
    for hook in ["maintenance", "switch_dns", "smoke_v2"] {
        let path = dir.join("srv/ops").join(hook);
        let log = dir.join("srv/ops/calls.log");
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"{hook} $*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `cmd` with the machine's paths moved into `dir`, the staging scratch URL replaced by `scratch`
/// and `systemctl` made harmless.
fn localised(cmd: &str, dir: &Path, scratch: &str) -> String {
    let d = dir.display();
    let mut c = cmd.to_string();
    for p in ["/prod/", "/staging/", "/srv/", "/backups/"] {
        c = c.replace(&format!(" {p}"), &format!(" {d}{p}"));
        c = c.replace(&format!("'{p}"), &format!("'{d}{p}"));
    }
    c.replace(
        "postgresql://thywill@staging-db/thywill_v2_scratch",
        scratch,
    )
    .replace("systemctl restart thywill-v1", "true")
}

fn bash(dir: &Path, cmd: &str, v2_url: &str) -> std::process::Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_thywill-cutover"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .args(["-c", cmd])
        .current_dir(dir)
        .env("PATH", path)
        .env("V1_DB_PATH", dir.join("prod/thywill.db"))
        .env("V2_DB_URL", v2_url)
        .env("BACKUP_DIR", dir.join("backups/thywill"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn the_runbooks_commands_run_as_written() {
    let commands = runbook_commands();
    let find = |starts: &str| -> String {
        commands
            .iter()
            .find(|c| c.starts_with(starts))
            .unwrap_or_else(|| panic!("the runbook has no `{starts}` command:\n{commands:#?}"))
            .clone()
    };
    let rehearsal = find("thywill-cutover --rehearsal");
    let preparation = find("df ");
    let cutover = commands
        .iter()
        .find(|c| c.starts_with("thywill-cutover") && !c.contains("--rehearsal"))
        .expect("the runbook shows the day's cut-over")
        .clone();
    let rollback = find("thywill-rollback");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    machine(d);
    let pg = thywill_v2::testing::TempPgDb::create();
    let scratch_pg = thywill_v2::testing::TempPgDb::create();
    let sqlite = format!(
        "sqlite://{}",
        d.join("srv/thywill_v2/thywill_v2.db").display()
    );
    let v2_url = pg.as_ref().map_or(sqlite.clone(), |p| p.url.clone());
    let scratch = scratch_pg.as_ref().map_or_else(
        || format!("sqlite://{}", d.join("staging/scratch.db").display()),
        |p| p.url.clone(),
    );
    let before = counts_of(&d.join("prod/thywill.db"));

    for (what, cmd) in [
        ("rehearsal", &rehearsal),
        ("preparation", &preparation),
        ("cut-over", &cutover),
    ] {
        let line = localised(cmd, d, &scratch);
        let out = bash(d, &line, &v2_url);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{what}: `{line}`:\n{all}");
        if what != "preparation" {
            assert!(all.contains("of the 01:00:00 budget"), "{what}:\n{all}");
            assert!(!all.contains("rolling back"), "{what}:\n{all}");
        }
    }
    let calls = std::fs::read_to_string(d.join("srv/ops/calls.log")).unwrap();
    for hook in [
        "maintenance --enable",
        "switch_dns --to-v2",
        "smoke_v2",
        "maintenance --disable",
    ] {
        assert!(calls.contains(hook), "the day ran `{hook}`:\n{calls}");
    }
    assert!(d.join("srv/www/status.html").exists());
    assert!(d.join("srv/thywill_v2/text_archives_v2").is_dir());
    // The default work folder is under BACKUP_DIR, beside the day's backup set.
    let sets: Vec<String> = std::fs::read_dir(d.join("backups/thywill"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        sets.iter().any(|n| n.starts_with("thywill_cutover_")),
        "{sets:?}"
    );

    // The manual way back, as written: v1 restored from the newest set, the run undone.
    let line = localised(&rollback, d, &scratch);
    let out = bash(d, &line, &v2_url);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "rollback: `{line}`:\n{all}");
    assert!(
        std::fs::read_to_string(d.join("srv/ops/calls.log"))
            .unwrap()
            .contains("switch_dns --to-v1"),
        "the rollback switched back"
    );
    assert_eq!(
        counts_of(&d.join("prod/thywill.db")),
        before,
        "v1 is back as the backup holds it"
    );
}
