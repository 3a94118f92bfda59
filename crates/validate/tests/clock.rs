//! The v1 server's clock and settings, end to end. The clock (rules.md "Clocks"), on both
//! backends: a G3 file written by a server in America/Chicago (members', prayers' and online
//! marks' times in local wall-clock time, an offline mark in UTC, one time in the fall-back hour
//! and one in the spring-forward gap) is migrated with `--v1-timezone America/Chicago`; every
//! converted time is its UTC instant, the two ambiguous ones have their `R-TIME` finding, and
//! the validator, given the same zone, passes it. Given no zone, it fails it: the zone is
//! derived, not trusted. Then the invitations' lifetime (`--v1-invite-hours`) and claims
//! (rules.md, invites).

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use thywill_pipeline::{
    migrate, Clock, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode, Report,
};
use thywill_v2::rows::{Prayer, PrayerMark, User};
use thywill_v2::testing::TempPgDb;
use thywill_v2::{Target, V2Db};
use thywill_validator::clock::V1Clock;
use thywill_validator::{validate, Options, Policy};

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn chicago() -> Clock {
    Clock::new(
        chrono_tz::America::Chicago,
        thywill_pipeline::clock_default_local_since(),
    )
}

const PRAYER: &str = "c10c0000000000000000000000000001";
const ONLINE: &str = "c10c0000000000000000000000000002";
const OFFLINE: &str = "c10c0000000000000000000000000003";
const IN_GAP: &str = "c10c0000000000000000000000000004";

/// Rows as the Chicago server wrote them, into a copy of g3-s.
const CHICAGO_ROWS: &str = "
    INSERT INTO user (display_name, created_at, welcome_message_dismissed, is_supporter)
        VALUES ('Pastor Zed Clockwise', '2026-07-04 03:59:13.417000', 0, 0),
               ('Nocturne Owlsworth', '2025-11-02 01:30:00.250000', 0, 0),
               ('Dawn Larkspur', '2025-06-10 09:30:00.000000', 0, 0);
    INSERT INTO prayer (id, author_username, text, created_at, flagged, safety_score,
            safety_flags, categorization_method, specificity_type, specificity_confidence,
            subject_category)
        VALUES ('c10c0000000000000000000000000001', 'Pastor Zed Clockwise', 'For the storm-hit families',
            '2026-07-04 04:10:00.123456', 0, 1.0, '[]', 'keyword', 'general', 0.5, 'general');
    INSERT INTO prayermark (id, username, prayer_id, created_at) VALUES
        ('c10c0000000000000000000000000002', 'Nocturne Owlsworth', 'c10c0000000000000000000000000001',
            '2026-07-04 05:00:00.654321'),
        ('c10c0000000000000000000000000003', 'Dawn Larkspur', 'c10c0000000000000000000000000001',
            '2026-07-05 14:03:27.123000'),
        ('c10c0000000000000000000000000004', 'Dawn Larkspur', 'c10c0000000000000000000000000001',
            '2027-03-14 02:30:00.111111');
";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g3-s/v1.db")
}

fn run_clock() -> NaiveDateTime {
    at("2027-06-01 00:00:00")
}

/// Migrates `v1` into `url` under `repair` at the run clock, with the server settings `server`
/// sets (the zone, the invite lifetime); the run must succeed.
fn migrate_with(v1: &Path, url: &str, server: impl FnOnce(&mut CommonOptions)) -> Report {
    let mut common = CommonOptions {
        v1_db: v1.to_path_buf(),
        policy: thywill_pipeline::Policy::Repair,
        as_of: Some(run_clock()),
        progress: ProgressMode::Silent,
        ..Default::default()
    };
    server(&mut common);
    let report = migrate(&MigrateOptions {
        common,
        v2_url: url.to_string(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("migrate into {url}: {e}"));
    assert!(report.ok, "{url}: report not ok");
    report
}

fn migrate_chicago(v1: &Path, url: &str) -> Report {
    migrate_with(v1, url, |c| c.clock = chicago())
}

/// Asserts every check of a validation passed, naming the failures.
fn assert_passes(report: &thywill_validator::Report, what: &str) {
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {} {:?}", c.name, c.summary, c.details))
        .collect();
    assert!(report.ok, "{what}: {failed:#?}");
}

fn validated(v1: &Path, url: &str, clock: V1Clock) -> thywill_validator::Report {
    let mut opts = Options::new(v1, url);
    opts.policy = Policy::Repair;
    opts.now = Some(run_clock());
    opts.clock = clock;
    validate(&opts).unwrap_or_else(|e| panic!("validate {url}: {e}"))
}

fn check_backend(url: &str, dir: &Path) {
    let v1 = dir.join("v1.db");
    std::fs::copy(fixture(), &v1).unwrap();
    Connection::open(&v1)
        .unwrap()
        .execute_batch(CHICAGO_ROWS)
        .unwrap();
    let report = migrate_chicago(&v1, url);
    assert_eq!(report.source.clock.zone, "America/Chicago");
    assert!(report
        .source
        .clock
        .converted
        .contains(&"user.created_at".to_string()));

    let mut db = V2Db::open(&Target::parse(url).unwrap()).unwrap();
    let mut users = Vec::new();
    db.read_table::<User, thywill_v2::Error, _>(|u| {
        users.push((u.display_name, u.created_at));
        Ok(())
    })
    .unwrap();
    let user = |name: &str| {
        users
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not in v2"))
            .1
    };
    // CDT is UTC−5: the member's session said 08:59:13.417 UTC (v1-real.md §1).
    assert_eq!(user("Pastor Zed Clockwise"), at("2026-07-04 08:59:13.417"));
    // 01:30 came twice that night: the earlier instant (CDT) is taken.
    assert_eq!(user("Nocturne Owlsworth"), at("2025-11-02 06:30:00.25"));
    // Before the switch v1 wrote UTC.
    assert_eq!(user("Dawn Larkspur"), at("2025-06-10 09:30:00"));

    let mut prayer = None;
    db.read_table::<Prayer, thywill_v2::Error, _>(|p| {
        if p.id == PRAYER {
            prayer = Some(p.created_at);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(prayer, Some(at("2026-07-04 09:10:00.123456")));

    let mut marks = Vec::new();
    db.read_table::<PrayerMark, thywill_v2::Error, _>(|m| {
        marks.push((m.id, m.marked_at));
        Ok(())
    })
    .unwrap();
    let mark = |id: &str| marks.iter().find(|(i, _)| i == id).map(|m| m.1);
    assert_eq!(mark(ONLINE), Some(at("2026-07-04 10:00:00.654321")));
    // Made offline: the client's UTC, whole milliseconds, kept.
    assert_eq!(mark(OFFLINE), Some(at("2026-07-05 14:03:27.123")));
    // 02:30 never happened on 2027-03-14 in Chicago: the earlier reading (CDT).
    assert_eq!(mark(IN_GAP), Some(at("2027-03-14 07:30:00.111111")));

    let run = db.runs().unwrap().pop().unwrap();
    let findings = db.findings(&run.run_id).unwrap();
    let time_finding = |table: &str, key: &str| {
        findings
            .iter()
            .find(|f| f.v1_table == table && f.v1_key == key && f.rule == "R-TIME")
            .map(|f| (f.decision.clone(), f.reason.clone()))
    };
    let (decision, reason) =
        time_finding("user", "Nocturne Owlsworth").expect("the fold's finding");
    assert_eq!(decision, "repaired");
    assert!(reason.contains("America/Chicago"), "{reason}");
    assert!(time_finding("prayermark", IN_GAP).is_some());
    assert!(time_finding("user", "Pastor Zed Clockwise").is_none());

    let chicago_clock = V1Clock {
        zone: chrono_tz::America::Chicago,
        ..V1Clock::default()
    };
    assert_passes(&validated(&v1, url, chicago_clock), url);

    // Told the server ran on UTC, the validator expects other instants and says so.
    let wrong = validated(&v1, url, V1Clock::default());
    let fidelity = wrong.checks.iter().find(|c| c.name == "fidelity").unwrap();
    assert!(
        !fidelity.passed,
        "{url}: fidelity passed with the wrong zone"
    );
}

#[test]
fn a_chicago_server_migrates_to_utc_instants_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    check_backend(&url, dir.path());
}

#[test]
fn a_chicago_server_migrates_to_utc_instants_on_postgresql() {
    let Some(pg) = TempPgDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    check_backend(&pg.url.clone(), dir.path());
}

/// `thywill-analyze` on the Chicago rows with the registrations' sessions: the notes of a run
/// told the wrong zone (the default, UTC).
fn zone_notes(v1: &Path, clock: Clock) -> Vec<String> {
    let report = thywill_pipeline::analyze(&thywill_pipeline::AnalyzeOptions {
        common: CommonOptions {
            v1_db: v1.to_path_buf(),
            as_of: Some(run_clock()),
            clock,
            progress: ProgressMode::Silent,
            ..Default::default()
        },
    })
    .unwrap();
    report
        .feasibility
        .notes
        .into_iter()
        .filter(|n| n.contains("zone looks wrong"))
        .collect()
}

#[test]
fn analyze_warns_when_first_sessions_contradict_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.db");
    std::fs::copy(fixture(), &v1).unwrap();
    // Each registration opens a session in the same request: UTC, five hours after the local
    // created_at in summer. (The base fixture's own sessions and claims, written by a UTC
    // server, are removed: they would say UTC.)
    let sql = format!(
        "{CHICAGO_ROWS}
         DELETE FROM session;
         DELETE FROM invite_token_usage;
         INSERT INTO user (display_name, created_at, welcome_message_dismissed, is_supporter)
             VALUES ('Summer One', '2026-07-10 10:00:00.100000', 0, 0),
                    ('Summer Two', '2026-07-11 11:00:00.200000', 0, 0);
         INSERT INTO session (id, username, created_at, expires_at, is_fully_authenticated) VALUES
             ('s1', 'Pastor Zed Clockwise', '2026-07-04 08:59:13.417000', '2026-07-18 08:59:13', 1),
             ('s2', 'Summer One', '2026-07-10 15:00:00.100000', '2026-07-24 15:00:00', 1),
             ('s3', 'Summer Two', '2026-07-11 16:00:01.200000', '2026-07-25 16:00:00', 1);"
    );
    Connection::open(&v1).unwrap().execute_batch(&sql).unwrap();
    let wrong = zone_notes(&v1, Clock::utc());
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("+5.0 hours"), "{}", wrong[0]);
    assert_eq!(zone_notes(&v1, chicago()), Vec::<String>::new());

    // The committed Chicago community: its claims (UTC) say so when the zone is not given.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g3-s-chicago/v1.db");
    let wrong = zone_notes(&committed, Clock::utc());
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].contains("invitation claim +5.0 hours"),
        "{}",
        wrong[0]
    );
    assert_eq!(zone_notes(&committed, chicago()), Vec::<String>::new());
}

/// The generator's oracle: a G1 or G3 community written by a server in America/Chicago
/// (`thywill-fixtures --v1-timezone America/Chicago`) migrates with every local value the
/// generator lists in its clock truth at the UTC instant it gives, and the validator, given the
/// zone, passes the run.
fn generated_chicago_community_migrates_to_its_true_instants(g: thywill_fixturegen::Generation) {
    let dir = tempfile::tempdir().unwrap();
    let mut gen =
        thywill_fixturegen::GenOptions::new(g, thywill_fixturegen::Size::S, dir.path().join("gen"));
    gen.zone = Some(chrono_tz::America::Chicago);
    gen.archives = false;
    let made = thywill_fixturegen::generate(&gen).unwrap();
    let truth: thywill_fixturegen::truth::Truth =
        serde_json::from_slice(&std::fs::read(&made.truth_path).unwrap()).unwrap();
    let clock = truth.clock.expect("a clock truth for a zone");
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    migrate_chicago(&made.db_path, &url);

    let v1 = Connection::open(&made.db_path).unwrap();
    let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
    let mut v2: std::collections::HashMap<(String, String), NaiveDateTime> = Default::default();
    db.read_table::<User, thywill_v2::Error, _>(|u| {
        v2.insert(("user".into(), u.id), u.created_at);
        Ok(())
    })
    .unwrap();
    db.read_table::<Prayer, thywill_v2::Error, _>(|p| {
        v2.insert(("prayer".into(), p.id.clone()), p.created_at);
        if let Some(a) = p.answered_at {
            v2.insert(("answer_date".into(), p.id), a);
        }
        Ok(())
    })
    .unwrap();
    db.read_table::<PrayerMark, thywill_v2::Error, _>(|m| {
        v2.insert(("prayermark".into(), m.id), m.marked_at);
        Ok(())
    })
    .unwrap();
    let (mut checked, mut wrong) = (0, Vec::new());
    for v in &clock.values {
        let id = match v.table.as_str() {
            "user" if g.name_keyed() => {
                thywill_validator::rules::v5_id(&format!("user:{}", v.key)).unwrap()
            }
            "prayer_attributes" => v1
                .query_row(
                    "SELECT prayer_id FROM prayer_attributes WHERE rowid = ?1",
                    [v.rowid],
                    |r| r.get::<_, String>(0),
                )
                .unwrap(),
            _ => v.key.clone(),
        };
        let table = match v.table.as_str() {
            "prayer_attributes" => "answer_date",
            t => t,
        };
        let Some(found) = v2.get(&(table.to_string(), id.clone())) else {
            continue; // A row another rule keeps out of v2 (its finding says so).
        };
        checked += 1;
        if *found != at(&v.utc) {
            wrong.push(format!(
                "{} {} {}: stored {}, expected {} UTC, v2 has {found}",
                v.table, v.key, v.column, v.stored, v.utc
            ));
        }
    }
    assert!(wrong.is_empty(), "{g:?}: {wrong:#?}");
    assert!(
        checked * 10 > clock.values.len() * 9,
        "{g:?}: only {checked} of {} values reached v2",
        clock.values.len()
    );
    assert!(clock.values.iter().any(|v| v.fold) && clock.values.iter().any(|v| v.offline));

    let chicago_clock = V1Clock {
        zone: chrono_tz::America::Chicago,
        ..V1Clock::default()
    };
    assert_passes(
        &validated(&made.db_path, &url, chicago_clock),
        &format!("{g:?}"),
    );
}

#[test]
fn a_generated_g3_chicago_community_migrates_to_its_true_instants() {
    generated_chicago_community_migrates_to_its_true_instants(thywill_fixturegen::Generation::G3);
}

#[test]
fn a_generated_g1_chicago_community_migrates_to_its_true_instants() {
    generated_chicago_community_migrates_to_its_true_instants(thywill_fixturegen::Generation::G1);
}

/// `--v1-invite-hours`: a server that ran with INVITE_TOKEN_EXPIRATION_HOURS=48 dates each
/// unclaimed invitation 48 hours before its expiry; the validator, given the same, passes, and
/// given v1's default of 12 fails fidelity.
#[test]
fn invitations_are_dated_by_the_lifetime_the_server_ran_with() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    migrate_with(&fixture(), &url, |c| c.invite_hours = Some(48));
    let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
    let mut unclaimed = 0;
    db.read_table::<thywill_v2::rows::Invite, thywill_v2::Error, _>(|i| {
        if i.used_at.is_none() {
            assert_eq!(
                i.expires_at - i.created_at,
                chrono::Duration::hours(48),
                "{}",
                i.token
            );
            unclaimed += 1;
        }
        Ok(())
    })
    .unwrap();
    assert!(unclaimed > 0);
    let with = |hours| {
        let mut opts = Options::new(fixture(), &url);
        opts.now = Some(run_clock());
        opts.invite_hours = hours;
        validate(&opts).unwrap()
    };
    assert!(with(48).ok);
    let wrong = with(12);
    assert!(
        !wrong
            .checks
            .iter()
            .find(|c| c.name == "fidelity")
            .unwrap()
            .passed
    );
}

/// Claims of invitations on a G3 file: usage rows (one of them a row v1's migration 008
/// backfilled with the token's expiry) and a token claimed only by a member's `invite_token_used`.
const CLAIM_ROWS: &str = "
    INSERT INTO user (display_name, created_at, invite_token_used, welcome_message_dismissed,
            is_supporter)
        VALUES ('Claire Claimant', '2025-06-20 08:00:00.000000', NULL, 0, 0),
               ('Bart Backfill', '2025-06-25 09:00:00.000000', NULL, 0, 0),
               ('Jo Joiner', '2025-06-26 10:00:00.000000', 'c1a1000000000000000000000000000b', 0, 0);
    INSERT INTO invitetoken (token, created_by_user, usage_count, max_uses, expires_at,
            used_by_user_id, token_type) VALUES
        ('c1a1000000000000000000000000000a', 'Pastor Dave', 5, 10, '2025-07-01 12:00:00.000000',
            NULL, 'new_user'),
        ('c1a1000000000000000000000000000b', 'Pastor Dave', 1, 1, '2025-07-02 12:00:00.000000',
            NULL, 'new_user');
    INSERT INTO invite_token_usage (id, invite_token_id, user_id, claimed_at) VALUES
        ('u1', 'c1a1000000000000000000000000000a', 'Claire Claimant', '2025-06-30 07:00:00.000000'),
        ('u2', 'c1a1000000000000000000000000000a', 'Bart Backfill', '2025-07-01 12:00:00.000000');
";

fn invite(db: &mut V2Db, token: &str) -> thywill_v2::rows::Invite {
    let mut found = None;
    db.read_table::<thywill_v2::rows::Invite, thywill_v2::Error, _>(|i| {
        if i.token == token {
            found = Some(i);
        }
        Ok(())
    })
    .unwrap();
    found.unwrap_or_else(|| panic!("{token} not in v2"))
}

#[test]
fn invitations_are_dated_and_counted_by_their_claims() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.db");
    std::fs::copy(fixture(), &v1).unwrap();
    Connection::open(&v1)
        .unwrap()
        .execute_batch(CLAIM_ROWS)
        .unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    migrate_with(&v1, &url, |_| {});
    let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
    let claire = thywill_validator::rules::v5_id("user:Claire Claimant").unwrap();
    let bart = thywill_validator::rules::v5_id("user:Bart Backfill").unwrap();
    let jo = thywill_validator::rules::v5_id("user:Jo Joiner").unwrap();

    // Two usage rows: Claire's at its claimed_at, Bart's a 008 backfill (claimed_at equals
    // the expiry), so dated by his joining, 06-25. The latest claim is Claire's; two claims, not
    // the stored usage_count of 5.
    let a = invite(&mut db, "c1a1000000000000000000000000000a");
    assert_eq!(a.use_count, 2);
    assert_eq!(a.used_by_user_id.as_deref(), Some(claire.as_str()));
    assert_eq!(a.used_at, Some(at("2025-06-30 07:00:00")));
    // Created 12 hours before expiry, unless a claim came earlier: Bart's, read as 06-25.
    assert_eq!(a.created_at, at("2025-06-25 09:00:00"));
    assert_ne!(
        a.used_at,
        Some(at("2025-07-01 12:00:00")),
        "{bart}: the backfill's time"
    );

    // No usage row: Jo joined with it (invite_token_used).
    let b = invite(&mut db, "c1a1000000000000000000000000000b");
    assert_eq!(b.use_count, 1);
    assert_eq!(b.used_by_user_id.as_deref(), Some(jo.as_str()));
    assert_eq!(b.used_at, Some(at("2025-06-26 10:00:00")));
    assert_eq!(b.created_at, at("2025-06-26 10:00:00"));

    assert_passes(&validated(&v1, &url, V1Clock::default()), "claims");
}

/// The committed fixture of a community on a server in America/Chicago
/// (`fixtures/g3-s-chicago`, database and real-format archive tree): migrated with its zone and
/// its tree, the run reports exactly the reconciliation findings the generator planted (the
/// claim log's local times meet their UTC rows), carries the tree, and the validator, given the
/// zone and both trees, passes.
fn committed_chicago_fixture_on(url: &str, dir: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g3-s-chicago");
    let truth = thywill_fixturegen::read_truth(&fixture.join("truth.json")).unwrap();
    let v2_tree = dir.join("text_archives_v2");
    let mut common = CommonOptions {
        v1_db: fixture.join("v1.db"),
        archives_v1: Some(fixture.join("text_archives")),
        policy: thywill_pipeline::Policy::Repair,
        as_of: Some(run_clock()),
        progress: ProgressMode::Silent,
        ..Default::default()
    };
    common.clock = chicago();
    let report = migrate(&MigrateOptions {
        common,
        v2_url: url.to_string(),
        archives_v2: Some(v2_tree.clone()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("migrate into {url}: {e}"));
    assert!(report.ok, "{url}");
    let got: std::collections::BTreeSet<(String, String)> = report
        .archive_findings
        .iter()
        .map(|f| (f.rule.clone(), f.v1_key.clone()))
        .collect();
    let want: std::collections::BTreeSet<(String, String)> = truth
        .archive_expected
        .iter()
        .filter(|f| f.rule.starts_with("R-ARCHIVE-") && f.rule != "R-ARCHIVE-PATH")
        .map(|f| (f.rule.clone(), f.key.clone()))
        .collect();
    assert_eq!(got, want, "{url}: reconciliation findings");
    let mut opts = Options::new(fixture.join("v1.db"), url);
    opts.policy = Policy::Repair;
    opts.now = Some(run_clock());
    opts.clock = V1Clock {
        zone: chrono_tz::America::Chicago,
        ..V1Clock::default()
    };
    opts.archives_v1 = Some(fixture.join("text_archives"));
    opts.archives_v2 = Some(v2_tree);
    let validation = validate(&opts).unwrap_or_else(|e| panic!("validate {url}: {e}"));
    assert_passes(&validation, url);
}

#[test]
fn the_committed_chicago_fixture_migrates_and_validates_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    committed_chicago_fixture_on(&url, dir.path());
}

#[test]
fn the_committed_chicago_fixture_migrates_and_validates_on_postgresql() {
    let Some(pg) = thywill_v2::testing::TempPgDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    committed_chicago_fixture_on(&pg.url, dir.path());
}
