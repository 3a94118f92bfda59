//! A carry of the fixture generator's v1 trees. Skips with a message when the fixtures are not
//! generated yet.

use std::path::{Path, PathBuf};

use thywill_archive::{carry_v1_tree, Durability};

fn fixture(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .join("text_archives");
    if root.is_dir() {
        Some(root)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (run the fixture generator first)",
            root.display()
        );
        None
    }
}

#[test]
fn g1_fixture_tree_carries_verbatim() {
    let Some(root) = fixture("g1-s") else { return };
    let dst = tempfile::tempdir().unwrap();
    let report = carry_v1_tree(&root, dst.path(), Durability::Batched).unwrap();
    assert!(report.v1_files_copied > 0);
    let again = carry_v1_tree(&root, dst.path(), Durability::Batched).unwrap();
    assert_eq!(
        (again.v1_files_copied, again.unchanged),
        (0, report.v1_files_copied)
    );
}
