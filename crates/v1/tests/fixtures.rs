//! Every committed fixture generation reads correctly: generation label, full-scan counts of every
//! table equal the generator's truth, every carried table streams every row, and the row the
//! generator hid from the user key index is reported by the integrity check.

use std::path::PathBuf;

use thywill_v1::{
    AttributeRow, InviteRow, MarkRow, PrayerRow, RoleRow, SessionRow, UserRoleRow, UserRow,
    V1Database, V1Error, V1Row,
};

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn count<R: V1Row>(db: &V1Database) -> u64 {
    db.for_each::<R, V1Error, _>(|_| Ok(())).unwrap()
}

/// `for_each_ref` (one row refilled in place) hands exactly the rows `for_each` gives.
fn same_by_ref<R: V1Row + Clone + PartialEq + std::fmt::Debug>(db: &V1Database, dir: &str) {
    let owned: Vec<R> = db.read_all().unwrap();
    let mut by_ref: Vec<R> = Vec::new();
    let n = db
        .for_each_ref::<R, V1Error, _>(|r| {
            by_ref.push(r.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(n as usize, owned.len(), "{dir} {}", R::TABLE);
    for (a, b) in owned.iter().zip(&by_ref) {
        // Compare the bit patterns of REAL values too (NaN != NaN).
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{dir} {}", R::TABLE);
    }
}

#[test]
fn every_generation_reads_as_the_truth_says() {
    for (dir, label) in [
        ("g0-s", "G0"),
        ("g1-s", "G1"),
        ("g2-s", "G2"),
        ("g3-s", "G3"),
    ] {
        let base = fixture_dir(dir);
        let truth: serde_json::Value = serde_json::from_slice(
            &std::fs::read(base.join("truth.json"))
                .unwrap_or_else(|e| panic!("{dir}/truth.json: {e}")),
        )
        .unwrap();
        let db = V1Database::open(base.join("v1.db")).unwrap();
        assert_eq!(db.schema().generation.to_string(), label, "{dir}");
        assert_eq!(truth["generation"], label, "{dir}");
        assert!(
            db.schema().unknown_columns.is_empty(),
            "{dir}: {:?}",
            db.schema().unknown_columns
        );

        let counts = db.table_counts().unwrap();
        let expected = truth["tables"].as_object().unwrap();
        for (table, n) in expected {
            assert_eq!(
                counts.get(table).copied(),
                n.as_u64(),
                "{dir}: rows of {table}"
            );
        }
        let streamed = [
            ("user", count::<UserRow>(&db)),
            ("prayer", count::<PrayerRow>(&db)),
            ("prayermark", count::<MarkRow>(&db)),
            ("prayer_attributes", count::<AttributeRow>(&db)),
            ("role", count::<RoleRow>(&db)),
            ("user_roles", count::<UserRoleRow>(&db)),
            ("invitetoken", count::<InviteRow>(&db)),
            ("session", count::<SessionRow>(&db)),
        ];
        for (table, n) in streamed {
            let want = expected.get(table).and_then(|v| v.as_u64()).unwrap_or(0);
            assert_eq!(n, want, "{dir}: streamed rows of {table}");
        }
        same_by_ref::<UserRow>(&db, dir);
        same_by_ref::<PrayerRow>(&db, dir);
        same_by_ref::<MarkRow>(&db, dir);
        same_by_ref::<AttributeRow>(&db, dir);
        same_by_ref::<RoleRow>(&db, dir);
        same_by_ref::<UserRoleRow>(&db, dir);
        same_by_ref::<InviteRow>(&db, dir);
        same_by_ref::<SessionRow>(&db, dir);
        let by_prayer = db
            .for_each_mark_by_prayer::<V1Error, _>(|_| Ok(()))
            .unwrap();
        assert_eq!(
            by_prayer,
            counts.get("prayermark").copied().unwrap_or(0),
            "{dir}"
        );

        // The generator hides at least one user from the key index; integrity must name it.
        let report = db.integrity().unwrap();
        let visible = db
            .pk_index_rowids("user")
            .unwrap()
            .expect("user has a key index");
        let hidden: Vec<i64> = db
            .read_all::<UserRow>()
            .unwrap()
            .iter()
            .map(|u| u.rowid)
            .filter(|r| !visible.contains(r))
            .collect();
        assert!(
            !hidden.is_empty(),
            "{dir}: the fixture should hide a user from the key index"
        );
        for rowid in &hidden {
            assert!(
                report
                    .missing_index_entries
                    .iter()
                    .any(|e| e.table == "user" && e.rowid == *rowid),
                "{dir}: rowid {rowid} not in {:?}",
                report.missing_index_entries
            );
        }
    }
}
