//! Shared set-up of the ops binaries' tests: a live v1 (a copy of fixtures/g1-s in WAL mode, held
//! open by a `sqlite3` process so its `-wal` exists), a v2 target with the schema, stand-in
//! migrate/validate scripts that succeed or fail on demand, and PostgreSQL scratch databases.
#![allow(dead_code)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use sha2::{Digest, Sha256};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// sha256 of a file, or "absent".
pub fn sha(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(b) => hex::encode(Sha256::digest(b)),
        Err(_) => "absent".into(),
    }
}

/// sha256 of the v1 file and of its -wal.
pub fn v1_fingerprint(db: &Path) -> (String, String) {
    (
        sha(db),
        sha(&PathBuf::from(format!("{}-wal", db.display()))),
    )
}

/// Runs SQL through the sqlite3 shell and returns its output.
pub fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 shell");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs SQL through psql and returns its output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A live v1 database: WAL mode, a writer connection kept open (idle) with data in its -wal.
pub struct LiveV1 {
    /// The database file.
    pub path: PathBuf,
    holder: Child,
}

impl LiveV1 {
    /// Copies fixtures/g1-s/v1.db to `dir/thywill.db` and holds it open in WAL mode.
    pub fn new(dir: &Path) -> LiveV1 {
        let path = dir.join("thywill.db");
        std::fs::copy(root().join("fixtures/g1-s/v1.db"), &path).unwrap();
        sqlite(&path, "PRAGMA journal_mode=WAL;");
        let mut holder = Command::new("sqlite3")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = holder.stdin.as_mut().unwrap();
        stdin.write_all(b"PRAGMA wal_autocheckpoint=0;\nINSERT INTO securitylog (id, event_type, created_at) VALUES ('0ps0000000000000000000000000test', 'login', '2025-07-05 01:59:00');\nSELECT 'ready';\n").unwrap();
        stdin.flush().unwrap();
        // Wait until the insert has committed (the shell answers the next statement).
        let mut lines = std::io::BufReader::new(holder.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.unwrap() == "ready"));
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 0,
            "the v1 -wal holds data"
        );
        LiveV1 { path, holder }
    }
}

impl Drop for LiveV1 {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

/// The v2 schema's SQL for a backend folder (`sqlite` or `postgres`).
pub fn v2_schema(backend: &str) -> PathBuf {
    let dir = root().join("crates/v2/migrations").join(backend);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.remove(0).join("up.sql")
}

/// A SQLite v2 target with the schema and one application row that no run wrote (it must survive
/// every rollback). Returns the URL.
pub fn sqlite_v2(dir: &Path) -> (String, PathBuf) {
    let path = dir.join("v2.db");
    sqlite(&path, &format!(".read {}", v2_schema("sqlite").display()));
    sqlite(&path, "INSERT INTO users (id, display_name, created_at, updated_at) VALUES ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'Keep Me', '2025-01-01 00:00:00', '2025-01-01 00:00:00');");
    (format!("sqlite://{}", path.display()), path)
}

/// A scratch PostgreSQL database with the v2 schema and the row that must survive, or None (and
/// a printed skip) without THYWILL_TEST_PG_URL (a failure in CI).
pub struct PgDb {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
    admin: String,
}

impl PgDb {
    /// Creates the database (named after `tag` and the process id).
    pub fn new(tag: &str) -> Option<PgDb> {
        let admin = thywill_v2::testing::pg_admin_url()?;
        let name = format!("thywill_ops_{tag}_{}", std::process::id());
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let (base, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        let out = Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", &url, "-f"])
            .arg(v2_schema("postgres"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        psql(&url, "INSERT INTO users (id, display_name, created_at, updated_at) VALUES ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'Keep Me', now(), now())");
        Some(PgDb { url, name, admin })
    }

    /// Whether the database still exists.
    pub fn exists(&self) -> bool {
        psql(
            &self.admin,
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}'",
                self.name
            ),
        )
        .trim()
            == "1"
    }

    /// The admin URL (to drop this database from a stand-in).
    pub fn admin(&self) -> &str {
        &self.admin
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-q",
                &self.admin,
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// The stand-in run id and its user.
pub const RUN_ID: &str = "0123456789abcdef0123456789abcdef";
/// The user the stand-in migration writes.
pub const RUN_USER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Writes the stand-in `thywill-migrate` and `thywill-validate` scripts into `dir`.
/// migrate: records run RUN_ID with user RUN_USER in $V2_DB_URL, then exits $STANDIN_MIGRATE_EXIT
/// (with $STANDIN_MIGRATE_WAIT set, it first touches that file and sleeps a minute);
/// with $STANDIN_MIGRATE_TOUCH_V1 set it also deletes v1's marks (a migration gone wrong).
/// validate: `--v1-only` exits $STANDIN_VALIDATE_V1_EXIT; otherwise, with $STANDIN_DROP_DB set,
/// drops that PostgreSQL database (via $STANDIN_ADMIN_URL) first, then exits $STANDIN_VALIDATE_EXIT.
pub fn standins(dir: &Path) -> (PathBuf, PathBuf) {
    let migrate = dir.join("standin-migrate");
    let validate = dir.join("standin-validate");
    let now_sqlite = "strftime('%Y-%m-%d %H:%M:%f','now')";
    let now_pg = "(now() at time zone 'utc')";
    let sql = format!(
        "INSERT INTO migration_runs (run_id, started_at, status, tool_version, source_path, source_sha256, source_generation, dry_run, counts_json) VALUES ('{RUN_ID}', NOW, 'succeeded', 'standin', 'v1.db', 'x', 'G1', FALSE, '{{}}');
INSERT INTO users (id, display_name, created_at, updated_at) VALUES ('{RUN_USER}', 'Migrated Mary', NOW, NOW);
INSERT INTO migration_run_rows (run_id, table_name, row_key) VALUES ('{RUN_ID}', 'users', '{RUN_USER}');"
    );
    let script = format!(
        r#"#!/bin/sh
set -e
report=""
while [ $# -gt 0 ]; do case "$1" in --report-json) report="$2"; shift 2;; *) shift;; esac; done
case "$V2_DB_URL" in
  sqlite://*) sqlite3 "${{V2_DB_URL#sqlite://}}" "{sqlite_sql}";;
  postgres*) psql -q -v ON_ERROR_STOP=1 "$V2_DB_URL" -c "{pg_sql}";;
esac
if [ -n "$report" ]; then printf '{{"run_id":"{RUN_ID}","ok":true}}\n' > "$report"; fi
if [ -n "$STANDIN_MIGRATE_TOUCH_V1" ]; then sqlite3 "$STANDIN_MIGRATE_TOUCH_V1" "DELETE FROM prayermark;"; fi
if [ -n "$STANDIN_MIGRATE_WAIT" ]; then touch "$STANDIN_MIGRATE_WAIT"; sleep 60; fi
echo "stand-in migrate done"
exit ${{STANDIN_MIGRATE_EXIT:-0}}
"#,
        sqlite_sql = sql.replace("NOW", now_sqlite),
        pg_sql = sql.replace("NOW", now_pg),
    );
    std::fs::write(&migrate, script).unwrap();
    std::fs::write(
        &validate,
        r#"#!/bin/sh
for a in "$@"; do if [ "$a" = --v1-only ]; then exit ${STANDIN_VALIDATE_V1_EXIT:-0}; fi; done
if [ -n "$STANDIN_DROP_DB" ]; then psql -q "$STANDIN_ADMIN_URL" -c "DROP DATABASE $STANDIN_DROP_DB WITH (FORCE)"; fi
echo "PASS stand-in check"
exit ${STANDIN_VALIDATE_EXIT:-0}
"#,
    )
    .unwrap();
    for p in [&migrate, &validate] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (migrate, validate)
}

/// A binary with arguments and extra environment (V1_DB_PATH etc. cleared), not started.
pub fn command(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("BACKUP_DIR")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a binary with arguments and extra environment (V1_DB_PATH etc. cleared).
pub fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(bin, args, env).output().unwrap()
}

/// stdout + stderr as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sends `signal` (`INT`, `TERM`) to the process `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -s {signal} {pid}");
}

/// Waits until `ready()` holds, polling every millisecond; panics after 60 s naming `what`.
pub fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "waited 60 s for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The exit code and the name a clean stop by `signal` (`INT`, `TERM`) reports.
pub fn signal_exit(signal: &str) -> (i32, &'static str) {
    match signal {
        "INT" => (130, "SIGINT"),
        _ => (143, "SIGTERM"),
    }
}

/// Writes to `dest` a copy of the database `src` whose fourth page is overwritten (not a
/// truncation: the header is intact, the pages are not): a v1 file with damaged pages.
pub fn damaged_copy(src: &Path, dest: &Path) {
    let mut bytes = std::fs::read(src).unwrap();
    let page = 4096;
    for b in &mut bytes[3 * page + 8..3 * page + 600] {
        *b = 0x5A;
    }
    std::fs::write(dest, &bytes).unwrap();
}

/// Whether util-linux `script` is there to make a terminal with (a printed skip otherwise; under
/// CI its absence is a failure).
pub fn can_make_a_terminal() -> bool {
    if Command::new("script").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "util-linux `script` is needed under CI"
    );
    println!("skipped: no `script` to make a terminal with");
    false
}

/// Runs the shell command line `line` in `dir` under a real pseudo-terminal (util-linux
/// `script -qec LINE /dev/null`, see [`can_make_a_terminal`]), typing `answer` on it; stdout
/// holds what the terminal showed.
pub fn on_a_terminal(line: &str, dir: &Path, answer: &str) -> Output {
    let mut child = Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .current_dir(dir)
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("BACKUP_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Writes an archive tree of `files` 4 KiB files in 40 folders under `dir`: big enough that a
/// backup's copy of it is still running when a test's signal lands.
pub fn big_tree(dir: &Path, files: usize) {
    for i in 0..files {
        let folder = dir.join(format!("f{}", i % 40));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{i}.txt")), [b'x'; 4096]).unwrap();
    }
}

/// The names in the folder `dir` (none when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Copies the folder `src` to `dest` as `cp -r` does (symlinks kept as links).
pub fn copy_tree(src: &Path, dest: &Path) {
    let copied = Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(dest)
        .status()
        .unwrap();
    assert!(
        copied.success(),
        "cp -r {} {}",
        src.display(),
        dest.display()
    );
}

/// A copy at `dest` of fixtures/g1-s's archive tree holding two symlinks, one out of the tree
/// (`users/outside.txt` → `/etc/hostname`) and one dangling (`dangling.txt`).
pub fn g1s_tree_with_symlinks(dest: &Path) {
    copy_tree(&root().join("fixtures/g1-s/text_archives"), dest);
    std::os::unix::fs::symlink("/etc/hostname", dest.join("users/outside.txt")).unwrap();
    std::os::unix::fs::symlink("missing.txt", dest.join("dangling.txt")).unwrap();
}
