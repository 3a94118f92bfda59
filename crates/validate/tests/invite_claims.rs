//! An invitation's claims (rules.md, invites) on a G3 file: `invite_token_usage` rows, one of
//! them a row v1's migration 008 backfilled with the token's `expires_at`; a token claimed only
//! by a member's `invite_token_used`; the migration dates and counts each as the spec says, and
//! the validator, deriving the same on its own, passes the run.

use std::path::Path;

use rusqlite::Connection;
use thywill_pipeline::{migrate, CommonOptions, MigrateOptions, NaiveDateTime, ProgressMode};
use thywill_v2::rows::Invite;
use thywill_v2::{Target, V2Db};
use thywill_validator::{validate, Options};

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

const ROWS: &str = "
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

fn invite(db: &mut V2Db, token: &str) -> Invite {
    let mut found = None;
    db.read_table::<Invite, thywill_v2::Error, _>(|i| {
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
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/g3-s/v1.db"),
        &v1,
    )
    .unwrap();
    Connection::open(&v1).unwrap().execute_batch(ROWS).unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let now = at("2026-01-01 00:00:00");
    let report = migrate(&MigrateOptions {
        common: CommonOptions {
            v1_db: v1.clone(),
            as_of: Some(now),
            progress: ProgressMode::Silent,
            ..Default::default()
        },
        v2_url: url.clone(),
        ..Default::default()
    })
    .unwrap();
    assert!(report.ok);
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

    let mut opts = Options::new(&v1, &url);
    opts.now = Some(now);
    let v = validate(&opts).unwrap();
    let failed: Vec<String> = v
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {} {:?}", c.name, c.summary, c.details))
        .collect();
    assert!(v.ok, "{failed:#?}");
}
