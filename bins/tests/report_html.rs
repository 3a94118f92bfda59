//! `--report-html` through the real binaries on the committed fixture g1-s: analyze, migrate
//! (SQLite target), validate and a cut-over rehearsal each write their page, with the verdict
//! and the counts; then headless Chromium loads each page from disk and the rendered DOM is
//! checked (verdict there, a hostile v1 text did not run), with a screenshot of each page at
//! desktop and phone widths under `target/report-html/`.
//!
//! Without `/usr/bin/chromium` the browser part is skipped with a notice, except in CI (`CI`
//! set), where it fails: `.ci/run` installs Debian's `chromium`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;

mod browser;

const HOSTILE: &str = "<script>document.title='pwned'</script>";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fixture(rel: &str) -> String {
    root().join("fixtures/g1-s").join(rel).display().to_string()
}

fn run(bin: &str, dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin)
        .current_dir(dir)
        .args(args)
        .arg("--quiet")
        .env_remove("V1_DB_PATH")
        .env_remove("V2_DB_URL")
        .env_remove("BACKUP_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// g1-s's v1 file with a member whose name is a script and one whose name is an address, both
/// with a trailing space, so `R-USER-NAME` quotes them in its reasons.
fn hostile_v1(dir: &Path) -> PathBuf {
    let db = dir.join("v1.db");
    std::fs::copy(fixture("v1.db"), &db).unwrap();
    let c = Connection::open(&db).unwrap();
    c.execute(
        "UPDATE user SET display_name = ?1 WHERE rowid = (SELECT min(rowid) FROM user)",
        [format!("{HOSTILE} ")],
    )
    .unwrap();
    c.execute(
        "UPDATE user SET display_name = 'alice.smith@example.org ' \
         WHERE rowid = (SELECT max(rowid) FROM user)",
        [],
    )
    .unwrap();
    db
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What every page must be: whole, self-contained, escaped, masked.
fn check_page(html: &str, verdict: &str) {
    assert!(html.ends_with("</html>\n") || html.ends_with("</html>"));
    assert!(html.contains(verdict), "verdict {verdict:?} missing");
    assert!(!html.contains("http://") && !html.contains("https://"));
    for attr in [" src=", " href="] {
        assert!(!html.contains(attr), "{attr} in the page");
    }
    assert!(!html.contains("<script"), "a script reached the page");
    assert!(!html.contains("alice.smith"), "an address reached the page");
}

/// `(name, verdict, page)` of each binary's page.
fn pages(dir: &Path) -> Vec<(&'static str, &'static str, PathBuf)> {
    let v1 = hostile_v1(dir);
    let v1 = v1.to_str().unwrap();
    let archives = fixture("text_archives");
    let html = |name: &str| dir.join(format!("{name}.html"));
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();

    let analyze = html("analyze");
    run(
        env!("CARGO_BIN_EXE_thywill-analyze"),
        dir,
        &[
            "--v1-db",
            v1,
            "--archives-v1",
            &archives,
            "--report-html",
            &s(&analyze),
        ],
    );
    let migrate = html("migrate");
    let json = dir.join("migrate.json");
    run(
        env!("CARGO_BIN_EXE_thywill-migrate"),
        dir,
        &[
            "--v1-db",
            v1,
            "--archives-v1",
            &archives,
            "--archives-v2",
            "av2",
            "--v2-db",
            "sqlite://v2.db",
            "--report-json",
            &s(&json),
            "--report-html",
            &s(&migrate),
        ],
    );
    let validate = html("validate");
    run(
        env!("CARGO_BIN_EXE_thywill-validate"),
        dir,
        &[
            "--v1-db",
            v1,
            "--archives-v1",
            &archives,
            "--archives-v2",
            "av2",
            "--v2-db",
            "sqlite://v2.db",
            "--report-html",
            &s(&validate),
        ],
    );
    let cutover = html("cutover");
    run(
        env!("CARGO_BIN_EXE_thywill-cutover"),
        dir,
        &[
            "--rehearsal",
            "--v1-db",
            v1,
            "--archives-v1",
            &archives,
            "--work-dir",
            "rehearsal",
            "--report-html",
            &s(&cutover),
        ],
    );

    // The cut-over has its children write their pages into its work folder too.
    for (child, verdict) in [
        ("migration_report", "Migrated"),
        ("validation_report", "All checks passed"),
    ] {
        check_page(&read(&dir.join(format!("rehearsal/{child}.html"))), verdict);
    }

    // The migrate page has the JSON report's numbers.
    let report: serde_json::Value = serde_json::from_str(&read(&json)).unwrap();
    let page = read(&migrate);
    for (table, c) in report["tables"].as_object().unwrap() {
        let row = format!("<tr><td>{table}</td><td class=\"n\">");
        assert!(page.contains(&row), "law row of {table}");
        for key in ["read", "written", "quarantined", "not_carried"] {
            let n = c[key].as_u64().unwrap();
            assert!(page.contains(&group(n)), "{table}.{key} = {n}");
        }
    }
    for (rule, n) in report["findings_by_rule"].as_object().unwrap() {
        let n = group(n.as_u64().unwrap());
        assert!(
            page.contains(&format!(
                "<span class=\"rule\">{rule}</span> <span class=\"count\">{n}</span>"
            )),
            "{rule} {n}"
        );
    }
    assert!(page.contains("&lt;script&gt;document.title="));
    assert!(page.contains("a•••@example.org"));
    // Each finding's original v1 row is in the JSON report and, escaped and masked, on the page
    // (g1-s is far under the page's rows budget: every row is listed).
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["original"].is_object()));
    assert!(!page.contains("more rows of this rule are in"));
    for f in findings
        .iter()
        .filter(|f| f["v1_table"] == "prayer")
        .take(20)
    {
        let id = f["original"]["id"].as_str().unwrap();
        assert!(
            page.contains(&format!("\nid={id}\n")),
            "original of prayer {id}"
        );
    }
    assert!(page.contains("display_name=&quot;&lt;script&gt;document.title="));
    assert!(page.contains("display_name=&quot;a•••@example.org &quot;"));

    vec![
        ("analyze", "Feasible", analyze),
        ("migrate", "Migrated", migrate),
        ("validate", "All checks passed", validate),
        ("cutover", "Rehearsal done", cutover),
    ]
}

/// `12345` → `12,345`, as the pages print counts.
fn group(n: u64) -> String {
    let d = n.to_string();
    d.chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = i > 0 && (d.len() - i).is_multiple_of(3);
            sep.then_some(',').into_iter().chain([c])
        })
        .collect()
}

#[test]
fn every_binary_writes_its_page_and_a_browser_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(dir.path());
    for (name, verdict, page) in &pages {
        check_page(&read(page), verdict);
        eprintln!("{name}: {} bytes", std::fs::metadata(page).unwrap().len());
    }

    if !browser::available() {
        return;
    }
    for (name, verdict, page) in &pages {
        let dom = browser::dump_dom(page);
        assert!(dom.contains(verdict), "{name}: verdict not rendered");
        let html = read(page);
        let title = &html[html.find("<title>").unwrap()..html.find("</title>").unwrap() + 8];
        assert!(
            dom.contains(title) && !dom.contains("pwned</title>"),
            "{name}: the title changed: a script ran"
        );
        assert!(!dom.contains("<script"), "{name}: a script element");
        for (width, size) in [("desktop", "1280,2000"), ("phone", "390,1600")] {
            browser::screenshot(page, &format!("{name}-{width}"), size);
        }
    }
}
