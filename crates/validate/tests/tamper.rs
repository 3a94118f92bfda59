//! Tamper tests: damage a valid v2 database or archive tree in one specific way and see exactly
//! the checks that should fail, fail.

mod common;

use common::{build, failed, Built};
use thywill_validator::{validate, Options, Policy};

fn valid(pg: bool) -> Option<Built> {
    let b = build("g1", Policy::Repair, pg)?;
    let r = b.validate();
    assert!(r.ok, "the untampered build must pass: {:?}", failed(&r));
    Some(b)
}

/// Applies `sql` to a valid build and expects exactly `expect` to fail.
fn tamper_db(pg: bool, sql: &str, expect: &[&str]) {
    let Some(b) = valid(pg) else { return };
    b.exec(sql);
    let r = b.validate();
    assert_eq!(
        failed(&r),
        expect,
        "after `{sql}`:\n{:#?}",
        r.checks.iter().filter(|c| !c.passed).collect::<Vec<_>>()
    );
}

const FIRST_MARK: &str = "(SELECT min(id) FROM prayer_marks)";

#[test]
fn a_deleted_mark_breaks_the_law_and_fidelity() {
    tamper_db(
        false,
        &format!("DELETE FROM prayer_marks WHERE id = {FIRST_MARK}"),
        &["law", "fidelity"],
    );
}

#[test]
fn one_changed_character_of_a_prayer_breaks_fidelity_only() {
    tamper_db(
        false,
        "UPDATE prayers SET text = (CASE WHEN substr(text, 1, 1) = 'X' THEN 'Y' ELSE 'X' END) || substr(text, 2) \
         WHERE id = (SELECT min(id) FROM prayers)",
        &["fidelity"],
    );
}

#[test]
fn a_mark_repointed_to_another_member_breaks_the_law_and_fidelity() {
    tamper_db(
        false,
        &format!(
            "UPDATE prayer_marks SET user_id = (SELECT min(u.id) FROM users u WHERE u.id <> prayer_marks.user_id) \
             WHERE id = {FIRST_MARK}"
        ),
        &["law", "fidelity"],
    );
}

#[test]
fn a_mark_of_a_missing_member_also_breaks_referential_integrity() {
    tamper_db(
        false,
        &format!("UPDATE prayer_marks SET user_id = 'ffffffffffffffffffffffffffffffff' WHERE id = {FIRST_MARK}"),
        &["law", "fidelity", "constraints"],
    );
}

#[test]
fn a_removed_admin_breaks_the_smoke_checks() {
    // g1-s also has a repeated admin grant: deduplicated beside a grant that is gone, it is
    // an exclusion with no cause left (`findings-derived`).
    tamper_db(
        false,
        "DELETE FROM user_roles WHERE role = 'admin'",
        &["law", "fidelity", "findings-derived", "smoke"],
    );
}

#[test]
fn an_expired_session_breaks_the_smoke_checks() {
    tamper_db(
        false,
        "UPDATE sessions SET expires_at = datetime(created_at, '+1 second') WHERE id = (SELECT min(id) FROM sessions)",
        &["fidelity", "smoke"],
    );
}

#[test]
fn an_upper_case_id_breaks_the_id_format_constraint() {
    // A flag's id is not derivable from v1 (fidelity compares flags by prayer), so only the
    // id-format constraint can see this.
    tamper_db(
        false,
        "UPDATE content_flags SET id = upper(id)",
        &["constraints"],
    );
}

#[test]
fn an_invite_expiring_at_creation_breaks_a_check_constraint() {
    tamper_db(
        false,
        "UPDATE invites SET expires_at = created_at WHERE id = (SELECT min(id) FROM invites)",
        &["fidelity", "constraints"],
    );
}

#[test]
fn a_finding_about_no_v1_row_breaks_the_law_only() {
    tamper_db(
        false,
        "INSERT INTO migration_findings (run_id, v1_table, v1_key, rule, decision, reason, original_json, created_at) \
         SELECT run_id, 'user', 'no-such-user', 'R-ORPHAN', 'quarantined', 'x', '{}', created_at \
         FROM migration_findings LIMIT 1",
        &["law"],
    );
}

#[test]
fn a_lost_quarantine_record_breaks_the_law() {
    // Without its finding, the quarantined row is unaccounted for (and expected in v2).
    tamper_db(
        false,
        "DELETE FROM migration_findings WHERE v1_table = 'session' AND decision = 'not_carried' \
         AND id = (SELECT min(id) FROM migration_findings WHERE v1_table = 'session')",
        &["law", "fidelity"],
    );
}

#[test]
fn one_changed_character_on_postgres_breaks_fidelity_only() {
    tamper_db(
        true,
        "UPDATE prayers SET text = (CASE WHEN substr(text, 1, 1) = 'X' THEN 'Y' ELSE 'X' END) || substr(text, 2) \
         WHERE id = (SELECT min(id) FROM prayers)",
        &["fidelity"],
    );
}

#[test]
fn a_dangling_mark_and_a_removed_admin_on_postgres() {
    // PostgreSQL enforces foreign keys: drop the constraint first, as a damaged load might have.
    tamper_db(
        true,
        &format!(
            "ALTER TABLE prayer_marks DROP CONSTRAINT prayer_marks_user_id_fkey; \
             UPDATE prayer_marks SET user_id = 'ffffffffffffffffffffffffffffffff' WHERE id = {FIRST_MARK}; \
             DELETE FROM user_roles WHERE role = 'admin'"
        ),
        &["law", "fidelity", "findings-derived", "constraints", "smoke"],
    );
}

/// Damages the v2 archive tree and expects exactly the archive check to fail.
fn tamper_archive(damage: impl FnOnce(&std::path::Path)) {
    let Some(b) = valid(false) else { return };
    damage(&b.archives_v2);
    let r = b.validate();
    assert_eq!(failed(&r), ["archives"], "{:#?}", r.check("archives"));
}

fn first_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.remove(0)
}

#[test]
fn a_dropped_user_archive_file_fails_archives() {
    tamper_archive(|root| std::fs::remove_file(first_file(&root.join("users"))).unwrap());
}

#[test]
fn a_flipped_byte_in_a_prayer_archive_fails_archives() {
    tamper_archive(|root| {
        let p = first_file(&root.join("prayers"));
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[0] ^= 0x01;
        std::fs::write(&p, bytes).unwrap();
    });
}

#[test]
fn an_unlisted_file_fails_archives() {
    tamper_archive(|root| std::fs::write(root.join("users/stray.txt"), b"stray").unwrap());
}

#[test]
fn a_v1_file_not_carried_fails_archives() {
    tamper_archive(|root| {
        let manifest = std::fs::read_to_string(root.join("MANIFEST.sha256")).unwrap();
        let victim = manifest
            .lines()
            .map(|l| l.split_once("  ").unwrap().1)
            .find(|p| p.contains("_users.txt"))
            .unwrap()
            .to_string();
        std::fs::remove_file(root.join(&victim)).unwrap();
        let kept: String = manifest
            .lines()
            .filter(|l| !l.ends_with(&victim))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(root.join("MANIFEST.sha256"), kept).unwrap();
    });
}

#[test]
fn v1_only_checks_a_sound_file_and_refuses_a_truncated_one() {
    let v1 = common::fixture("g1").join("v1.db");
    let r = validate(&Options {
        v1_only: true,
        ..Options::new(&v1, "sqlite://unused.db")
    })
    .unwrap();
    assert!(r.ok && r.checks.len() == 1, "{:?}", r.checks);
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.db");
    let bytes = std::fs::read(&v1).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = validate(&Options {
        v1_only: true,
        ..Options::new(&cut, "sqlite://unused.db")
    })
    .unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.to_string().contains("cut.db"), "{e}");
}

#[test]
fn bad_targets_get_their_exit_codes_without_leaking_passwords() {
    let v1 = common::fixture("g1").join("v1.db");
    let e = validate(&Options::new(&v1, "mysql://u:hunter2@h/db")).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = validate(&Options::new(&v1, "postgresql://u:hunter2@127.0.0.1:1/db")).unwrap_err();
    assert_eq!(e.exit_code(), 3);
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = validate(&Options::new(&v1, "sqlite:///nonexistent/v2.db")).unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
}

/// A repair whose finding is gone is a silent change: `no-silent-change` names the row.
#[test]
fn a_deleted_utf8_finding_is_a_silent_change() {
    for pg in [false, true] {
        tamper_db(
            pg,
            "DELETE FROM migration_findings WHERE rule = 'R-UTF8' AND decision = 'repaired'",
            &["no-silent-change"],
        );
    }
}

/// Likewise a deleted time repair (`R-TIME`): the value's shape changed with nothing saying so.
#[test]
fn a_deleted_time_finding_is_a_silent_change() {
    tamper_db(
        false,
        "DELETE FROM migration_findings WHERE rule = 'R-TIME' AND decision = 'repaired'",
        &["no-silent-change"],
    );
}

/// A legitimate invite deleted from v2 and hidden behind a fake finding: the law balances (the
/// finding accounts for the row), so only a validator that derives exclusions from v1 sees it.
#[test]
fn a_fake_finding_hiding_a_deleted_invite_is_not_derived() {
    let victim = "(SELECT min(token) FROM invites WHERE token NOT IN \
                  (SELECT v1_key FROM migration_findings WHERE v1_table = 'invitetoken'))";
    for pg in [false, true] {
        tamper_db(
            pg,
            &format!(
                "INSERT INTO migration_findings \
                   (run_id, v1_table, v1_key, rule, decision, reason, original_json, created_at) \
                 SELECT run_id, 'invitetoken', {victim}, 'R-ORPHAN', 'quarantined', 'tampered', \
                        '{{}}', started_at FROM migration_runs WHERE status = 'succeeded'; \
                 DELETE FROM invites WHERE token = \
                   (SELECT v1_key FROM migration_findings WHERE reason = 'tampered');"
            ),
            &["findings-derived"],
        );
    }
}

/// The same for a prayer deleted behind a fake `R-TEXT-LENGTH` quarantine: its marks stay behind
/// (the other checks fail on them too), and `findings-derived` names the prayer itself.
#[test]
fn a_fake_finding_hiding_a_deleted_prayer_is_not_derived() {
    let Some(b) = valid(false) else { return };
    let victim = "(SELECT min(id) FROM prayers WHERE id NOT IN \
                  (SELECT v1_key FROM migration_findings WHERE v1_table = 'prayer'))";
    b.exec(&format!(
        "INSERT INTO migration_findings \
           (run_id, v1_table, v1_key, rule, decision, reason, original_json, created_at) \
         SELECT run_id, 'prayer', {victim}, 'R-TEXT-LENGTH', 'quarantined', 'tampered', '{{}}', \
                started_at FROM migration_runs WHERE status = 'succeeded'; \
         DELETE FROM prayers WHERE id = \
           (SELECT v1_key FROM migration_findings WHERE reason = 'tampered');"
    ));
    let r = b.validate();
    let check = r
        .checks
        .iter()
        .find(|c| c.name == "findings-derived")
        .unwrap();
    assert!(!check.passed, "{check:#?}");
    assert!(
        check
            .details
            .iter()
            .any(|d| d.starts_with("prayer ") && d.contains("Quarantined")),
        "{check:#?}"
    );
}

/// A decision flipped: a repaired prayer's finding rewritten to `quarantined` while the row is
/// in v2. The law balances (the finding accounts for the row), but the row is in v2 where no row
/// should be (fidelity) and the validator finds nothing in v1 that would keep it out
/// (findings-derived).
#[test]
fn a_flipped_decision_is_caught() {
    tamper_db(
        false,
        "UPDATE migration_findings SET decision = 'quarantined' WHERE id = \
           (SELECT min(id) FROM migration_findings WHERE decision = 'repaired' AND v1_table = 'prayer' \
              AND rule IN ('R-ENUM', 'R-ARCHIVE-PATH'))",
        &["fidelity", "findings-derived"],
    );
}

/// The details of check `name` in `r`, joined.
fn details(r: &thywill_validator::Report, name: &str) -> String {
    r.checks
        .iter()
        .filter(|c| c.name == name)
        .flat_map(|c| c.details.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A member v1 deactivated, active again in v2: the grant's law (it is written only as the
/// member's inactive row) and the member's row both fail, on both backends.
#[test]
fn a_deactivated_member_brought_back_active_is_caught() {
    for pg in [false, true] {
        let Some(b) = valid(pg) else { continue };
        b.exec("UPDATE users SET is_active = true WHERE is_active = false");
        let r = b.validate();
        assert_eq!(failed(&r), ["law", "fidelity"]);
        assert!(
            details(&r, "law").contains("inactive"),
            "{}",
            details(&r, "law")
        );
    }
}

/// A device link (`token_type` `multi_device`) whose `R-INVITE-KIND` finding is gone: the
/// validator derives that it is no invitation instead of expecting it in v2.
#[test]
fn a_link_without_its_invite_kind_finding_is_caught() {
    let Some(b) = build("g3", Policy::Repair, false) else {
        return;
    };
    let r = b.validate();
    assert!(r.ok, "the untampered build must pass: {:?}", failed(&r));
    b.exec(
        "DELETE FROM migration_findings WHERE rule = 'R-INVITE-KIND' AND v1_key = \
           (SELECT min(v1_key) FROM migration_findings WHERE rule = 'R-INVITE-KIND')",
    );
    let r = b.validate();
    assert_eq!(failed(&r), ["law"]);
    assert!(
        details(&r, "law").contains("R-INVITE-KIND"),
        "{}",
        details(&r, "law")
    );
}

/// A live session deleted behind a fake `R-SESSION` finding, and a carried grant deleted
/// behind a fake `R-ROLE` one: each row is sound in v1 (member, times, expiry after the run),
/// so `findings-derived` names it, on both backends.
#[test]
fn fake_findings_hiding_a_deleted_session_or_grant_are_not_derived() {
    let fake = |table: &str, key: &str, rule: &str| {
        format!(
            "INSERT INTO migration_findings \
               (run_id, v1_table, v1_key, rule, decision, reason, original_json, created_at) \
             SELECT run_id, '{table}', {key}, '{rule}', 'not_carried', 'tampered', '{{}}', \
                    started_at FROM migration_runs WHERE status = 'succeeded';"
        )
    };
    let session = "(SELECT min(id) FROM sessions)";
    for pg in [false, true] {
        tamper_db(
            pg,
            &format!(
                "{} DELETE FROM sessions WHERE id = \
                   (SELECT v1_key FROM migration_findings WHERE reason = 'tampered');",
                fake("session", session, "R-SESSION")
            ),
            &["findings-derived"],
        );
    }
    // A carried admin grant: its v1 key (no finding names it) and its v2 row.
    let Some(b) = valid(false) else { return };
    let v1 = rusqlite::Connection::open(&b.v1).unwrap();
    let v2 = rusqlite::Connection::open(b.url.trim_start_matches("sqlite://")).unwrap();
    let named: Vec<String> = v2
        .prepare("SELECT v1_key FROM migration_findings WHERE v1_table = 'user_roles'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let (key, user): (String, String) = v1
        .prepare(
            "SELECT ur.id, ur.user_id FROM user_roles ur JOIN role r ON r.id = ur.role_id \
             WHERE r.name = 'admin' ORDER BY ur.id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .find(|(k, _)| !named.contains(k))
        .expect("g1-s has a carried admin grant");
    let gone = v2
        .execute(
            "DELETE FROM user_roles WHERE role = 'admin' AND user_id = lower(replace(?1, '-', ''))",
            [&user],
        )
        .unwrap();
    assert_eq!(gone, 1, "the grant of {user} is in v2");
    b.exec(&fake("user_roles", &format!("'{key}'"), "R-ROLE"));
    let r = b.validate();
    assert_eq!(failed(&r), ["findings-derived"]);
    assert!(details(&r, "findings-derived").contains(&key));
}

/// A member with nothing attached deleted behind a fake `R-USER-EMPTY-NAME` finding, and a mark
/// alone in its minute deleted behind a fake `R-MARK-DUPLICATE` one: each row is sound in v1
/// (unique name and key, canonical time; a written prayer, a member, no other mark in that
/// minute), so `findings-derived` names it, on both backends.
#[test]
fn fake_findings_hiding_a_deleted_user_or_mark_are_not_derived() {
    let fake = |table: &str, key: &str, rule: &str, decision: &str| {
        format!(
            "INSERT INTO migration_findings \
               (run_id, v1_table, v1_key, rule, decision, reason, original_json, created_at) \
             SELECT run_id, '{table}', {key}, '{rule}', '{decision}', 'tampered', '{{}}', \
                    started_at FROM migration_runs WHERE status = 'succeeded';"
        )
    };
    let user = "(SELECT min(u.id) FROM users u \
         WHERE u.id NOT IN (SELECT v1_key FROM migration_findings) \
           AND NOT EXISTS (SELECT 1 FROM prayers p WHERE p.author_id = u.id) \
           AND NOT EXISTS (SELECT 1 FROM prayer_marks m WHERE m.user_id = u.id) \
           AND NOT EXISTS (SELECT 1 FROM sessions x WHERE x.user_id = u.id) \
           AND NOT EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id OR r.granted_by_user_id = u.id) \
           AND NOT EXISTS (SELECT 1 FROM users i WHERE i.invited_by_user_id = u.id) \
           AND NOT EXISTS (SELECT 1 FROM migration_id_map x WHERE x.v2_id = u.id AND x.v1_key <> u.id) \
           AND NOT EXISTS (SELECT 1 FROM invites v WHERE v.created_by_user_id = u.id OR v.used_by_user_id = u.id) \
           AND NOT EXISTS (SELECT 1 FROM content_flags f WHERE f.flagged_by_user_id = u.id OR f.resolved_by_user_id = u.id))";
    // A mark no finding names, alone in its minute for its prayer and member.
    let mark = "(SELECT min(m.id) FROM prayer_marks m \
         WHERE m.id NOT IN (SELECT v1_key FROM migration_findings) \
           AND (SELECT count(*) FROM prayer_marks o WHERE o.prayer_id = m.prayer_id \
                AND o.user_id = m.user_id \
                AND substr(CAST(o.marked_at AS TEXT), 1, 16) = substr(CAST(m.marked_at AS TEXT), 1, 16)) = 1)";
    // The mark's `prayed this prayer` line is in the fixture's tree: with the mark gone from
    // v2, the tree witnesses an act v2 lacks, which `repair` would have recovered (§47), so the
    // law and fidelity fail as well.
    let witnessed: &[&str] = &["law", "fidelity", "findings-derived"];
    for pg in [false, true] {
        for (table, v2, key, rule, decision, expect) in [
            (
                "user",
                "users",
                user,
                "R-USER-EMPTY-NAME",
                "quarantined",
                &["findings-derived"][..],
            ),
            (
                "prayermark",
                "prayer_marks",
                mark,
                "R-MARK-DUPLICATE",
                "deduplicated",
                witnessed,
            ),
        ] {
            tamper_db(
                pg,
                &format!(
                    "{} DELETE FROM {v2} WHERE id = \
                       (SELECT v1_key FROM migration_findings WHERE reason = 'tampered');",
                    fake(table, key, rule, decision)
                ),
                expect,
            );
        }
    }
}
