//! Headless Chromium for the page tests: loads a page from disk, dumps its DOM or takes a
//! screenshot. Without `/usr/bin/chromium` the browser checks are skipped with a notice, except
//! in CI (`CI` set), where that fails: `.ci/run` installs Debian's `chromium`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the browser checks can run: true with Chromium; false (after a notice) without it,
/// unless in CI, where a missing Chromium fails the test.
pub fn available() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} is missing in CI: .ci/run installs Debian's chromium"
    );
    eprintln!("NOTICE: {CHROMIUM} not found; the browser checks were skipped");
    false
}

/// Runs headless Chromium with `args` on the page at `page` (a fresh profile each time).
pub fn chromium(args: &[&str], page: &Path) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The DOM of the page as Chromium rendered it.
pub fn dump_dom(page: &Path) -> String {
    String::from_utf8(chromium(&["--dump-dom"], page).stdout).unwrap()
}

/// Screenshots of the page at `size` ("390,1600") into `target/report-html/<name>.png`
/// (kept as a CI artefact), checked to be a real image.
pub fn screenshot(page: &Path, name: &str, size: &str) -> PathBuf {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target/report-html");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join(format!("{name}.png"));
    chromium(
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={size}"),
            "--hide-scrollbars",
        ],
        page,
    );
    assert!(std::fs::metadata(&png).unwrap().len() > 1000, "{png:?}");
    png
}
