//! The file's parsing and checks.

use super::*;

fn parse(text: &str) -> Result<Decisions, DecisionsError> {
    Decisions::parse("d.toml", text.as_bytes())
}

fn one(rest: &str) -> String {
    format!("[[decision]]\nrule = \"R-USER-EMPTY-NAME\"\ntable = \"user\"\nkey = \"ab\"\n{rest}")
}

#[test]
fn a_carry_with_a_valid_name_parses() {
    let d = parse(&one(
        "choice = \"carry\"\ndisplay_name = \"Ruth\"\nnote = \"asked her\"",
    ))
    .unwrap();
    assert_eq!(d.entries.len(), 1);
    assert_eq!(
        d.entries[0].choice,
        Choice::Carry(CarryValue::DisplayName("Ruth".into()))
    );
    assert_eq!(d.sha256.len(), 64);
}

#[test]
fn values_v2_would_refuse_are_errors_naming_the_entry() {
    for bad in [
        "choice = \"carry\"\ndisplay_name = \"  \"",
        "choice = \"carry\"\ndisplay_name = \" Ruth\"",
        "choice = \"carry\"",
        "choice = \"carry\"\ntext = \"x\"",
        "choice = \"not_a_test_account\"",
        "choice = \"burn\"",
    ] {
        let e = parse(&one(bad)).unwrap_err().to_string();
        assert!(
            e.contains("entry 1 (user \"ab\", R-USER-EMPTY-NAME)"),
            "{bad}: {e}"
        );
    }
    let long = "x".repeat(5001);
    let text = format!(
        "[[decision]]\nrule = \"R-TEXT-LENGTH\"\ntable = \"prayer\"\nkey = \"p\"\nchoice = \"carry\"\ntext = \"{long}\""
    );
    assert!(parse(&text)
        .unwrap_err()
        .to_string()
        .contains("5001 characters"));
}

#[test]
fn a_row_decided_twice_and_unknown_fields_are_refused() {
    let twice = format!(
        "{}\n{}",
        one("choice = \"keep_quarantined\""),
        one("choice = \"keep_quarantined\"")
    );
    assert!(parse(&twice)
        .unwrap_err()
        .to_string()
        .contains("already decided by entry 1"));
    assert!(matches!(
        parse(&one("choice = \"keep_quarantined\"\ncolour = \"red\"")),
        Err(DecisionsError::Syntax { .. })
    ));
}

#[test]
fn times_must_be_canonical_utc() {
    let t = |v: &str| {
        let doc: EntryDoc = toml::from_str(&format!(
            "rule = \"R-TIME\"\ntable = \"prayer\"\nkey = \"p\"\nchoice = \"carry\"\ntime = \"{v}\""
        ))
        .unwrap();
        carry_value(CarryField::Time, &doc)
    };
    assert!(t("2025-06-01 10:00:00").is_ok());
    assert!(t("yesterday").is_err());
}
