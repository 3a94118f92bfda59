//! Text helpers: name folding and repair, key normalisation, invisible characters.

use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing (zero-width, joiners, bidirectional controls, BOM, soft
/// hyphen, fillers). Stripped from damaged keys (`R-USER-UNRETRIEVABLE`).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}')
}

/// The folded form of a display name for `R-USER-DUPLICATE`: NFC, trimmed, Unicode case folded
/// (full folding, `caseless`), NFC again.
pub fn fold_name(name: &str) -> String {
    let nfc: String = name.nfc().collect();
    caseless::default_case_fold_str(nfc.trim()).nfc().collect()
}

/// True for a line break (turned into a space by the name repair).
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Maximum display-name length of v2, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// What is wrong with a display name for `R-USER-NAME` (empty when nothing is).
pub fn name_problems(name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if name.chars().count() > MAX_NAME_CHARS {
        out.push("longer than 100 characters");
    }
    if name.chars().any(is_line_break) {
        out.push("line breaks");
    }
    if name.chars().any(|c| c.is_control() && !is_line_break(c)) {
        out.push("control characters");
    }
    if name.trim() != name {
        out.push("leading or trailing whitespace");
    }
    out
}

/// The `R-USER-NAME` repair: line breaks and runs of whitespace become one space, other control
/// characters are dropped, the result is trimmed and cut to 100 characters on a character
/// boundary (then trimmed again).
pub fn repair_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in name.chars() {
        if is_line_break(c) || c.is_whitespace() {
            pending_space = true;
        } else if c.is_control() {
            continue;
        } else {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    let cut: String = out.chars().take(MAX_NAME_CHARS).collect();
    cut.trim_end().to_string()
}

/// A name as v1's start-up rewrite leaves it (strip, collapse whitespace, drop control
/// characters: `normalize_existing_usernames`), or `None` when the rewrite leaves it as it is.
/// Allocates only for a name it changes.
pub fn v1_rewritten_name(name: &str) -> Option<String> {
    let mut prev_space = true;
    let untouched = name.chars().all(|c| {
        let ok = !c.is_control() && !(c.is_whitespace() && (prev_space || c != ' '));
        prev_space = c.is_whitespace();
        ok
    }) && !name.ends_with(char::is_whitespace);
    if untouched {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in name.chars() {
        if c.is_whitespace() {
            pending_space = true;
        } else if !c.is_control() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    (out != name && !out.is_empty()).then_some(out)
}

/// True when nothing visible is left once whitespace, control and invisible characters go.
pub fn is_blank(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
}

/// Trims and strips invisible characters (the key repair of `R-USER-UNRETRIEVABLE`).
pub fn clean_key_text(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !is_invisible(*c))
        .collect::<String>()
        .trim()
        .to_string()
}

/// Parses exactly 32 lower- or upper-case hex digits.
pub fn parse_hex32(s: &str) -> Option<u128> {
    hex32(s.as_bytes(), &HEX_ANY_CASE)
}

/// [`parse_hex32`] of the canonical shape only: exactly 32 lower-case hex digits.
pub(crate) fn parse_lower_hex32(b: &[u8]) -> Option<u128> {
    hex32(b, &HEX_LOWER)
}

/// Digit values by byte; `INVALID` for a byte that is not a digit.
const INVALID: u8 = 0xff;
const HEX_ANY_CASE: [u8; 256] = hex_table(true);
const HEX_LOWER: [u8; 256] = hex_table(false);

const fn hex_table(upper: bool) -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        if upper {
            t[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    t
}

/// 32 digits → u128, in two 64-bit halves (one table load per digit, one check at the end).
fn hex32(b: &[u8], table: &[u8; 256]) -> Option<u128> {
    let b: &[u8; 32] = b.try_into().ok()?;
    let mut bad = 0u8;
    let mut half = |digits: &[u8]| {
        let mut v = 0u64;
        for &c in digits {
            let d = table[c as usize];
            bad |= d;
            v = (v << 4) | u64::from(d & 0x0f);
        }
        v
    };
    let hi = half(&b[..16]);
    let lo = half(&b[16..]);
    (bad & 0xf0 == 0).then_some((u128::from(hi) << 64) | u128::from(lo))
}

/// Shortens a value for a reason text (at most `max` characters, `…` when cut), with control
/// characters escaped so the reason stays on one line.
pub fn shown(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// True when [`storable_text`] changes the value (`R-UTF8`): bytes that are not UTF-8 or a NUL,
/// whether stored as TEXT or as a BLOB (a BLOB in a text column is text whose bytes are checked,
/// not an opaque value).
pub fn needs_utf8_repair(v: &thywill_v1::V1Value) -> bool {
    match v {
        thywill_v1::V1Value::Text(b) | thywill_v1::V1Value::Blob(b) => {
            b.contains(&0) || std::str::from_utf8(b).is_err()
        }
        _ => false,
    }
}

/// A v1 text value as v2 can store it: decoded (U+FFFD for bytes that are not UTF-8) and with
/// NUL characters, which no v2 text column can hold, replaced by U+FFFD too (`R-UTF8`).
/// `None` for NULL.
pub fn storable_text(v: &thywill_v1::V1Value) -> Option<String> {
    v.to_text_lossy().map(|c| {
        if c.contains('\0') {
            c.replace('\0', "\u{FFFD}")
        } else {
            c.into_owned()
        }
    })
}

/// Width of v2's short optional texts (`prayers.project_tag`, `users.prayer_style`).
pub const SHORT_TEXT_WIDTH: usize = 100;

/// `s` cut to [`SHORT_TEXT_WIDTH`] characters on a character boundary, when it is wider.
pub fn fit_short_text(s: String) -> String {
    match s.char_indices().nth(SHORT_TEXT_WIDTH) {
        Some((cut, _)) => s[..cut].to_string(),
        None => s,
    }
}

/// The `R-TEXT-LENGTH` finding of a short optional text wider than v2's column, if `v` is one.
pub(crate) fn short_text_too_wide(column: &str, v: &thywill_v1::V1Value) -> Option<String> {
    let n = storable_text(v)?.chars().count();
    (n > SHORT_TEXT_WIDTH).then(|| {
        format!(
            "{column} has {n} characters, more than v2's {SHORT_TEXT_WIDTH}; cut to the first {SHORT_TEXT_WIDTH} (the original is in the finding)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1s_rewrite_collapses_whitespace_and_drops_controls() {
        assert_eq!(v1_rewritten_name("Ann"), None);
        assert_eq!(v1_rewritten_name("Pastor Dave"), None);
        assert_eq!(v1_rewritten_name("Ann ").as_deref(), Some("Ann"));
        assert_eq!(v1_rewritten_name(" Ann").as_deref(), Some("Ann"));
        assert_eq!(
            v1_rewritten_name("Pastor  Dave").as_deref(),
            Some("Pastor Dave")
        );
        assert_eq!(
            v1_rewritten_name("Pastor\tDave").as_deref(),
            Some("Pastor Dave")
        );
        assert_eq!(v1_rewritten_name("An\u{7}n").as_deref(), Some("Ann"));
        assert_eq!(
            v1_rewritten_name("  "),
            None,
            "nothing left: no member to name"
        );
    }

    #[test]
    fn folding_merges_case_space_and_normal_forms() {
        assert_eq!(fold_name(" Mary "), fold_name("mary"));
        assert_eq!(fold_name("MARÍA"), fold_name("mari\u{301}a"));
        assert_eq!(fold_name("Straße"), fold_name("STRASSE"));
        assert_ne!(fold_name("Mary"), fold_name("Marie"));
    }

    #[test]
    fn name_repair_keeps_one_letter_names_and_cuts_long_ones() {
        assert!(name_problems("J").is_empty());
        assert_eq!(repair_name("  Anna\n  Lee\t"), "Anna Lee");
        assert_eq!(repair_name("Bo\u{7}b"), "Bob");
        let long = "é".repeat(150);
        assert_eq!(repair_name(&long).chars().count(), 100);
        assert_eq!(name_problems(&long), vec!["longer than 100 characters"]);
        assert!(is_blank(" \u{200B}\t"));
        assert!(!is_blank("a"));
    }

    #[test]
    fn keys_are_cleaned() {
        assert_eq!(clean_key_text(" ab\u{200B}cd\u{FEFF} "), "abcd");
        assert!(parse_hex32("0123456789abcdefABCDEF0123456789").is_some());
        assert!(parse_hex32("0123").is_none());
        let lower = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_hex32(lower), Some(0x0123456789abcdef0123456789abcdef));
        assert_eq!(parse_lower_hex32(lower.as_bytes()), parse_hex32(lower));
        assert_eq!(
            parse_hex32("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"),
            Some(u128::MAX)
        );
        assert!(parse_lower_hex32(b"0123456789ABCDEF0123456789abcdef").is_none());
        for bad in [
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcde ",
            "+123456789abcdef0123456789abcdef",
        ] {
            assert!(parse_hex32(bad).is_none(), "{bad}");
            assert!(parse_lower_hex32(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(parse_hex32("ééééééééééééééééé").is_none());
    }
}
