//! Rows written read back equal, on both backends; refusal, replace, dry run, remove_run.

mod common;

use common::*;
use thywill_v2::rows::*;
use thywill_v2::{Error, LoadOptions, RemoveOutcome, TargetState, V2Db};

#[test]
fn written_rows_read_back_equal() {
    for t in targets() {
        let mut db = V2Db::open(&t.target).unwrap();
        let s = sample(1);
        let summary = load_sample(&mut db, &s, "sha-a", LoadOptions::default()).unwrap();
        assert_eq!(summary.rows["prayer_marks"], 20, "{}", t.label);

        let mut users = Vec::new();
        db.read_table::<User, Error, _>(|u| {
            users.push(u);
            Ok(())
        })
        .unwrap();
        assert_eq!(users, sorted(&s.users, |u| u.id.clone()), "{}", t.label);
        let mut prayers = Vec::new();
        db.read_table::<Prayer, Error, _>(|p| {
            prayers.push(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(prayers, sorted(&s.prayers, |p| p.id.clone()), "{}", t.label);
        let mut marks = Vec::new();
        db.read_table::<PrayerMark, Error, _>(|m| {
            marks.push(m);
            Ok(())
        })
        .unwrap();
        assert_eq!(marks, sorted(&s.marks, |m| m.id.clone()), "{}", t.label);
        let mut roles = Vec::new();
        db.read_table::<UserRole, Error, _>(|r| {
            roles.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(roles, s.roles, "{}", t.label);
        let mut sessions = Vec::new();
        db.read_table::<Session, Error, _>(|r| {
            sessions.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            sessions,
            sorted(&s.sessions, |x| x.id.clone()),
            "{}",
            t.label
        );
        let dump1 = dump(&mut db);
        assert!(dump1.contains("Invite"), "{}", t.label);

        let runs = db.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, run_status::SUCCEEDED);
        let findings = db.findings(&runs[0].run_id).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].reason, TRICKY, "{}", t.label);
        assert_eq!(db.id_map().unwrap().len(), 1);
        assert_eq!(
            db.state("sha-a").unwrap(),
            TargetState::AlreadyMigrated {
                run_id: runs[0].run_id.clone()
            }
        );
        // The same data again through a fresh connection: identical.
        let mut db2 = V2Db::open(&t.target).unwrap();
        assert_eq!(dump(&mut db2), dump1, "{}", t.label);
    }
}

#[test]
fn foreign_data_is_refused_and_replace_works() {
    for t in targets() {
        let mut db = V2Db::open(&t.target).unwrap();
        load_sample(&mut db, &sample(1), "sha-a", LoadOptions::default()).unwrap();
        let before = dump(&mut db);
        // Same source again: already migrated.
        let e = load_sample(&mut db, &sample(1), "sha-a", LoadOptions::default()).unwrap_err();
        assert!(
            matches!(e, Error::AlreadyMigrated { .. }),
            "{}: {e}",
            t.label
        );
        // Another source: refused with exit code 4, nothing changed, no run recorded.
        let e = load_sample(&mut db, &sample(2), "sha-b", LoadOptions::default()).unwrap_err();
        assert_eq!(e.exit_code(), 4, "{}: {e}", t.label);
        assert!(e.to_string().contains("--replace"), "{e}");
        assert_eq!(dump(&mut db), before);
        assert_eq!(db.runs().unwrap().len(), 1);
        // Replace: the other source's data only.
        let opts = LoadOptions {
            replace: true,
            ..Default::default()
        };
        load_sample(&mut db, &sample(2), "sha-b", opts).unwrap();
        let mut fresh = V2Db::open(&t.target).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let other =
            thywill_v2::Target::parse(&format!("sqlite://{}", dir.path().join("x.db").display()))
                .unwrap();
        let mut only_b = V2Db::open(&other).unwrap();
        load_sample(&mut only_b, &sample(2), "sha-b", LoadOptions::default()).unwrap();
        assert_eq!(dump(&mut fresh), dump(&mut only_b), "{}", t.label);
        assert!(matches!(
            db.state("sha-b").unwrap(),
            TargetState::AlreadyMigrated { .. }
        ));
        assert!(matches!(
            db.state("sha-a").unwrap(),
            TargetState::Foreign { .. }
        ));
        // The replaced run says so (it is no longer the run whose data the tables hold), and
        // undoing it removes nothing of the run that replaced it.
        let runs = db.runs().unwrap();
        let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(
            statuses,
            [run_status::REPLACED, run_status::SUCCEEDED],
            "{}",
            t.label
        );
        let after = dump(&mut db);
        assert!(matches!(
            db.remove_run(&runs[0].run_id).unwrap(),
            RemoveOutcome::AlreadyRolledBack
        ));
        assert_eq!(dump(&mut db), after, "{}", t.label);
    }
}

#[test]
fn dry_run_leaves_nothing() {
    for t in targets() {
        let dry = LoadOptions {
            dry_run: true,
            ..Default::default()
        };
        // On an empty target (SQLite: no file yet; PostgreSQL: no schema yet).
        let mut db = V2Db::open(&t.target).unwrap();
        let summary = load_sample(&mut db, &sample(1), "sha-a", dry).unwrap();
        assert!(summary.dry_run);
        if let thywill_v2::Target::SqliteFile(p) = &t.target {
            assert!(!p.exists(), "dry run created {}", p.display());
        } else {
            assert!(!has_schema(&mut db), "{}", t.label);
        }
        // On a migrated target with replace: nothing changes.
        load_sample(&mut db, &sample(1), "sha-a", LoadOptions::default()).unwrap();
        let before = dump(&mut db);
        let runs = db.runs().unwrap();
        let dry_replace = LoadOptions {
            dry_run: true,
            replace: true,
        };
        load_sample(&mut db, &sample(2), "sha-b", dry_replace).unwrap();
        assert_eq!(dump(&mut db), before, "{}", t.label);
        assert_eq!(db.runs().unwrap(), runs, "{}", t.label);
        // And the indexes and constraints are all still there.
        let e = load_sample(&mut db, &sample(3), "sha-c", LoadOptions::default()).unwrap_err();
        assert_eq!(e.exit_code(), 4);
    }
}

fn has_schema(db: &mut V2Db) -> bool {
    db.table_counts().is_ok()
}

#[test]
fn remove_run_removes_exactly_its_rows() {
    for t in targets() {
        let mut db = V2Db::open(&t.target).unwrap();
        load_sample(&mut db, &sample(1), "sha-a", LoadOptions::default()).unwrap();
        let run_id = db.runs().unwrap()[0].run_id.clone();
        let out = db.remove_run(&run_id).unwrap();
        let RemoveOutcome::Removed { deleted } = out else {
            panic!("{out:?}")
        };
        assert_eq!(deleted["users"], 5);
        assert_eq!(deleted["prayer_marks"], 20);
        assert!(
            db.table_counts().unwrap().iter().all(|(_, n)| *n == 0),
            "{}",
            t.label
        );
        assert_eq!(db.runs().unwrap()[0].status, run_status::ROLLED_BACK);
        assert_eq!(
            db.remove_run(&run_id).unwrap(),
            RemoveOutcome::AlreadyRolledBack
        );
        assert!(matches!(
            db.remove_run("nope"),
            Err(Error::UnknownRun { .. })
        ));
        // The target is empty again: a new run loads.
        assert_eq!(db.state("sha-a").unwrap(), TargetState::Empty);
        load_sample(&mut db, &sample(1), "sha-a", LoadOptions::default()).unwrap();
    }
}

#[test]
fn bad_rows_are_refused_naming_table_and_key() {
    for t in targets() {
        let mut db = V2Db::open(&t.target).unwrap();
        let mut s = sample(1);
        s.prayers[1].text = "   ".into();
        let e = load_sample(&mut db, &s, "sha-a", LoadOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("prayers") && msg.contains(&s.prayers[1].id),
            "{msg}"
        );
        let mut s = sample(1);
        s.users[2].display_name = "nul\0byte".into();
        let e = load_sample(&mut db, &s, "sha-a", LoadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        // Nothing was written; the failed runs are recorded as failed.
        assert!(db.table_counts().unwrap().iter().all(|(_, n)| *n == 0));
        let runs = db.runs().unwrap();
        assert!(
            runs.iter().all(|r| r.status == run_status::FAILED),
            "{runs:?}"
        );
        // A dangling reference is caught before commit (foreign key check), on either foreign
        // key of a table, naming the table (and on SQLite the row's key and the parent).
        for (field, table) in [("user_id", "users"), ("prayer_id", "prayers")] {
            let mut s = sample(1);
            let dangling = thywill_v2::testing::hex_id(9, 9);
            match field {
                "user_id" => s.marks[1].user_id = dangling,
                _ => s.marks[1].prayer_id = dangling,
            }
            let e = load_sample(&mut db, &s, "sha-a", LoadOptions::default()).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("prayer_marks"), "{}: {msg}", t.label);
            if t.label == "sqlite" {
                assert!(
                    msg.contains(&s.marks[1].id) && msg.contains(&format!("missing {table} row")),
                    "{msg}"
                );
            }
            assert!(db.table_counts().unwrap().iter().all(|(_, n)| *n == 0));
        }
        let mut s = sample(1);
        s.prayers[2].author_id = thywill_v2::testing::hex_id(9, 8);
        let e = load_sample(&mut db, &s, "sha-a", LoadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("prayers"), "{}: {e}", t.label);
        assert!(db.table_counts().unwrap().iter().all(|(_, n)| *n == 0));
        // A caller's own error passes through and aborts the load.
        let mut load = db
            .begin_load(run_info("sha-a"), LoadOptions::default())
            .unwrap();
        let r = load.write(|sink: &mut dyn thywill_v2::RowSink<User>| {
            sink.push(&s.users[0])?;
            Err::<(), Error>(Error::Poisoned {
                run_id: "caller".into(),
            })
        });
        assert!(matches!(r, Err(Error::Poisoned { ref run_id }) if run_id == "caller"));
        assert!(load.write_all(&s.users).is_err());
        drop(load);
        assert!(db.table_counts().unwrap().iter().all(|(_, n)| *n == 0));
        load_sample(&mut db, &sample(1), "sha-a", LoadOptions::default()).unwrap();
    }
}
