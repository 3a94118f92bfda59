//! The operator's decisions (#19) end to end: a migration of a committed fixture with every
//! choice applied passes validation with the same file (the validator reads it with its own
//! parser and derives what it promises), fails without it or with another file, and the same
//! file twice is "already migrated" while another file is another run's data.

use std::path::{Path, PathBuf};

use thywill_pipeline::{migrate, CommonOptions, Decisions, MigrateOptions, ProgressMode};
use thywill_v2::testing::TempPgDb;
use thywill_validator::decisions::OperatorDecisions;
use thywill_validator::{validate, Options};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .join("v1.db")
}

/// g1-s: every choice on one of its quarantined rows.
const G1_DECISIONS: &str = r#"
[[decision]]
rule = "R-USER-EMPTY-NAME"
table = "user"
key = "9cee7513ec5e462eae65e22f06175130"
choice = "carry"
display_name = "Ruth Quarantine"
note = "she told us"

[[decision]]
rule = "R-USER-EMPTY-NAME"
table = "user"
key = "b9af4b19138643e397b6951a1435ed6a"
choice = "merge_into"
merge_into = "9cee7513ec5e462eae65e22f06175130"

[[decision]]
rule = "R-USER-TEST-ACCOUNT"
table = "user"
key = "b5dad88502684e1ea8a263bc39e038c6"
choice = "not_a_test_account"

[[decision]]
rule = "R-USER-TEST-ACCOUNT"
table = "user"
key = "33024a4cf7a943009eea1a28b39aaf2d"
choice = "keep_quarantined"
note = "really a test"

[[decision]]
rule = "R-TEXT-LENGTH"
table = "prayer"
key = "f5d5a1e7de024e97a82da62cd9b2e510"
choice = "carry"
text = "Please pray for my family"

[[decision]]
rule = "R-ORPHAN"
table = "prayer"
key = "16e18884a0364fab94c49e4ca6390a7f"
choice = "carry"
author = "Ruth Quarantine"

[[decision]]
rule = "R-TIME"
table = "prayer"
key = "35afcd4f021c432a9cee96c10903e842"
choice = "carry"
time = "2025-07-01 09:30:00"
"#;

/// g3-s (members keyed by name): a blank name carried, a test account that is not one.
const G3_DECISIONS: &str = r#"
[[decision]]
rule = "R-USER-EMPTY-NAME"
table = "user"
key = ""
choice = "carry"
display_name = "Naomi Blank"

[[decision]]
rule = "R-USER-TEST-ACCOUNT"
table = "user"
key = "Prayer Test User"
choice = "not_a_test_account"

[[decision]]
rule = "R-ORPHAN"
table = "prayer"
key = "5b37f65f517c4d51a004531e164b9254"
choice = "carry"
author = "Naomi Blank"
"#;

/// A v2 target of its own: a SQLite file, or a PostgreSQL database.
struct Target {
    _dir: tempfile::TempDir,
    _pg: Option<TempPgDb>,
    url: String,
    /// Where the decisions files are written.
    files: PathBuf,
}

fn sqlite_target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let files = dir.path().to_path_buf();
    Target {
        _dir: dir,
        _pg: None,
        url,
        files,
    }
}

fn targets() -> Vec<Target> {
    let sqlite = sqlite_target();
    let mut out = vec![sqlite];
    if let Some(pg) = TempPgDb::create() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().to_path_buf();
        out.push(Target {
            _dir: dir,
            url: pg.url.clone(),
            _pg: Some(pg),
            files,
        });
    }
    out
}

impl Target {
    /// Writes `text` as decisions file `name` and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.files.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn migrate(
        &self,
        v1: &Path,
        decisions: Option<&Path>,
    ) -> Result<thywill_pipeline::Report, thywill_pipeline::PipelineError> {
        migrate(&MigrateOptions {
            common: CommonOptions {
                v1_db: v1.to_path_buf(),
                as_of: Some(clock()),
                progress: ProgressMode::Silent,
                decisions: decisions.map(|p| Decisions::read(p).unwrap()),
                ..Default::default()
            },
            v2_url: self.url.clone(),
            ..Default::default()
        })
    }

    /// The failed checks of a validation with this decisions file (empty: it passed).
    fn failed_checks(&self, v1: &Path, decisions: Option<&Path>) -> Vec<String> {
        let mut opts = Options::new(v1, &self.url);
        opts.now = Some(clock());
        opts.decisions = decisions.map(|p| OperatorDecisions::read(p).unwrap());
        let v = validate(&opts).unwrap();
        v.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.summary))
            .collect()
    }
}

fn clock() -> thywill_pipeline::NaiveDateTime {
    thywill_pipeline::NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S")
        .unwrap()
}

#[test]
fn every_choice_applied_validates_with_the_same_file_on_both_backends() {
    for (name, text) in [("g1-s", G1_DECISIONS), ("g3-s", G3_DECISIONS)] {
        for t in targets() {
            let v1 = fixture(name);
            let file = t.file("decisions.toml", text);
            let report = t.migrate(&v1, Some(&file)).unwrap();
            assert!(report.ok, "{name} {}", t.url);
            let failed = t.failed_checks(&v1, Some(&file));
            assert!(failed.is_empty(), "{name} {}: {failed:#?}", t.url);
            let again = t.migrate(&v1, Some(&file)).unwrap();
            assert_eq!(
                again.outcome, "already_migrated",
                "{name}: the same file twice"
            );
        }
    }
}

#[test]
fn validation_fails_when_v2_does_not_hold_what_the_file_promises() {
    for t in targets() {
        let v1 = fixture("g1-s");
        let file = t.file("decisions.toml", G1_DECISIONS);
        t.migrate(&v1, Some(&file)).unwrap();
        let without = t.failed_checks(&v1, None);
        assert!(
            without.iter().any(|f| f.starts_with("decisions:")),
            "validated without the file the run applied: {without:#?}"
        );
        let other = t.file(
            "other.toml",
            &G1_DECISIONS.replace("Ruth Quarantine", "Ruth Other"),
        );
        let failed = t.failed_checks(&v1, Some(&other));
        assert!(
            failed.iter().any(|f| f.starts_with("decisions:"))
                && failed.iter().any(|f| f.starts_with("fidelity:")),
            "another file's promises: {failed:#?}"
        );
    }
}

#[test]
fn another_file_or_none_is_another_run() {
    for t in targets() {
        let v1 = fixture("g1-s");
        let file = t.file("decisions.toml", G1_DECISIONS);
        t.migrate(&v1, Some(&file)).unwrap();
        let e = t.migrate(&v1, None).expect_err("no file is another run");
        assert_eq!(e.exit_code(), 4, "{e}");
        assert!(e.to_string().contains("with decisions file sha256"), "{e}");
    }
}

/// The template of each committed fixture under each policy, applied unedited: every row stays
/// quarantined (the notes added), and the run validates with the file.
#[test]
fn each_fixtures_unedited_template_migrates_and_validates_under_both_policies() {
    for name in ["g0-s", "g1-s", "g2-s", "g3-s"] {
        for policy in [
            thywill_pipeline::Policy::Repair,
            thywill_pipeline::Policy::Strict,
        ] {
            let t = &sqlite_target();
            let v1 = fixture(name);
            let common = CommonOptions {
                v1_db: v1.clone(),
                as_of: Some(clock()),
                policy,
                progress: ProgressMode::Silent,
                ..Default::default()
            };
            let opts = thywill_pipeline::AnalyzeOptions { common };
            let (_, template) = thywill_pipeline::analyze_with_template(&opts).unwrap();
            let file = t.file("template.toml", &template);
            let mut m = MigrateOptions {
                common: opts.common.clone(),
                v2_url: t.url.clone(),
                ..Default::default()
            };
            m.common.decisions = Some(Decisions::read(&file).unwrap());
            let report = migrate(&m).unwrap_or_else(|e| panic!("{name} {policy}: {e}"));
            assert!(report.ok, "{name} {policy}");
            let mut v = Options::new(&v1, &t.url);
            v.now = Some(clock());
            v.policy = match policy {
                thywill_pipeline::Policy::Repair => thywill_validator::Policy::Repair,
                thywill_pipeline::Policy::Strict => thywill_validator::Policy::Strict,
            };
            v.decisions = Some(OperatorDecisions::read(&file).unwrap());
            let r = validate(&v).unwrap();
            let failed: Vec<_> = r
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| &c.summary)
                .collect();
            assert!(failed.is_empty(), "{name} {policy}: {failed:#?}");
        }
    }
}
