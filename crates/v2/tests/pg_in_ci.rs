//! The PostgreSQL test helper's one behaviour: without `THYWILL_TEST_PG_URL` a test skips, except
//! in CI (`CI` set), where it fails. Checked by running this test binary again as a child with
//! the environment of each case (changing the environment in-process would race other tests).

use std::process::Command;

/// Asks the helper for the server; the parent runs it as a child in a chosen environment.
#[test]
#[ignore = "run as a child by asking_for_postgresql_without_its_url_fails_only_in_ci"]
fn child_asks_for_the_server() {
    let url = thywill_v2::testing::pg_admin_url();
    println!("child got {url:?}");
}

fn child(ci: bool) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_asks_for_the_server",
        "--ignored",
        "--nocapture",
    ])
    .env_remove(thywill_v2::testing::PG_ENV)
    .env_remove("CI");
    if ci {
        cmd.env("CI", "1");
    }
    cmd.output().unwrap()
}

#[test]
fn asking_for_postgresql_without_its_url_fails_only_in_ci() {
    let skipped = child(false);
    let out = String::from_utf8_lossy(&skipped.stdout);
    assert!(skipped.status.success(), "{out}");
    assert!(
        out.contains("skipped: THYWILL_TEST_PG_URL not set") && out.contains("child got None"),
        "{out}"
    );

    let failed = child(true);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(!failed.status.success(), "{all}");
    assert!(
        all.contains("THYWILL_TEST_PG_URL is not set in CI"),
        "{all}"
    );
}
