//! Round trip (parse, re-render, same bytes) over the fixture generator's v1 trees, and a carry
//! + v2 render over them. Skips with a message when the fixtures are not generated yet.

use std::fs;
use std::path::{Path, PathBuf};

use thywill_archive::v1::{V1File, V1FileKind};
use thywill_archive::{carry_v1_tree, scan_v1_tree, Durability};

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

fn round_trip(root: &Path) {
    let mut checked = 0;
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let Some(kind) = V1FileKind::of(&rel) else {
            continue;
        };
        let bytes = fs::read(entry.path()).unwrap();
        let parsed = match V1File::parse(kind, Path::new(&rel), &bytes) {
            Ok(p) => p,
            Err(e) => panic!("{}: {e}", root.display()),
        };
        assert!(parsed.render() == bytes, "{rel}: re-rendered bytes differ");
        checked += 1;
    }
    assert!(checked > 0, "no v1 files under {}", root.display());
    let archive = scan_v1_tree(root).unwrap();
    assert!(!archive.prayers.is_empty());
    eprintln!(
        "{}: {checked} files round-tripped, {} problems",
        root.display(),
        archive.problems.len()
    );
}

#[test]
fn g1_fixture_tree_round_trips() {
    if let Some(root) = fixture("g1-s") {
        round_trip(&root);
    }
}

#[test]
fn g3_fixture_tree_round_trips() {
    if let Some(root) = fixture("g3-s") {
        round_trip(&root);
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
