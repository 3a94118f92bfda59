//! A correctly populated v2 database passes every check, and the recomputed law equals the
//! fixture's truth; every committed fixture, both policies, both backends.

mod common;

use common::{build, failed};
use thywill_validator::expected::LawTally;
use thywill_validator::Policy;

fn check_build(gen: &str, policy: Policy, pg: bool) {
    let Some(b) = build(gen, policy, pg) else {
        return;
    };
    let r = b.validate();
    assert!(
        r.ok,
        "{gen} {policy:?} pg={pg}: failed {:?}\n{:#?}",
        failed(&r),
        r.checks
    );
    // The law recomputed by the validator equals the generator's truth, table by table.
    let law: Vec<LawTally> =
        serde_json::from_value(r.check("law").unwrap().data.clone()).unwrap_or_default();
    let p = if policy == Policy::Repair {
        "repair"
    } else {
        "strict"
    };
    let truth = &b.truth["law"][p];
    for t in &law {
        let want = &truth[&t.table];
        for (field, got) in [
            ("read", t.read),
            // the truth predates recovery (decisions.md §47): its law is the database's
            ("written", t.written - t.recovered),
            ("merged", t.merged),
            ("deduplicated", t.deduplicated),
            ("quarantined", t.quarantined),
            ("not_carried", t.not_carried),
        ] {
            assert_eq!(
                want[field].as_u64().unwrap_or(0),
                got,
                "{gen} {p} {}.{field}",
                t.table
            );
        }
    }
}

#[test]
fn every_fixture_passes_on_sqlite() {
    for gen in ["g0", "g1", "g2", "g3"] {
        for policy in [Policy::Repair, Policy::Strict] {
            check_build(gen, policy, false);
        }
    }
}

#[test]
fn every_fixture_passes_on_postgres() {
    for gen in ["g0", "g1", "g2", "g3"] {
        for policy in [Policy::Repair, Policy::Strict] {
            check_build(gen, policy, true);
        }
    }
}
