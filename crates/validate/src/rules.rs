//! The validator's own reading of the documented repairs of `spec/rules.md`: key normalisation,
//! name repair, timestamp shapes, enum domains, deterministic ids. Written from the spec, not
//! from the detector, so that a bug there shows up as a difference here.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};
use thywill_v1::V1Value;

/// The fixed namespace of the UUID v5 ids (`spec/v2.md`, "Deterministic ids"), as the project
/// documents it: `6a1f3c52-8e0b-5d47-9b3e-74687977696c` (ends in the bytes of "thywil"). The value
/// is copied, not imported, so the validator shares no code with the migration. `None` would make
/// name-derived ids traced through `migration_id_map` instead.
pub const ID_NAMESPACE: Option<uuid::Uuid> = Some(uuid::Uuid::from_u128(
    0x6a1f_3c52_8e0b_5d47_9b3e_7468_7977_696c,
));

/// UUID v5 of `name` in [`ID_NAMESPACE`], as 32 lower-case hex (`None` without a namespace).
pub fn v5_id(name: &str) -> Option<String> {
    ID_NAMESPACE.map(|ns| {
        uuid::Uuid::new_v5(&ns, name.as_bytes())
            .simple()
            .to_string()
    })
}

/// True for a 32-character lower-case hex id.
pub fn is_hex_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A value as text, bytes that are not UTF-8 and NUL characters (which v2 cannot store)
/// replaced by U+FFFD (`R-UTF8`); `None` for NULL.
pub fn text(v: &V1Value) -> Option<String> {
    v.to_text_lossy().map(|c| c.replace('\0', "\u{FFFD}"))
}

/// True when [`text`] is not the value's bytes as stored (`R-UTF8` must say so): TEXT or BLOB
/// bytes that are not UTF-8, or a NUL.
pub fn text_changes(v: &V1Value) -> bool {
    match v {
        V1Value::Text(b) | V1Value::Blob(b) => b.contains(&0) || std::str::from_utf8(b).is_err(),
        _ => false,
    }
}

/// The v2 id of a G0/G1 member whose key is valid TEXT but not a hex id (`spec/v2.md`: the real
/// first-week database has a member keyed `admin`): UUID v5 of `user-id:<key as stored>`.
pub fn text_key_id(v: &V1Value) -> Option<String> {
    let key = v.as_str()?;
    if key.is_empty() || hex_key(v).is_some() {
        return None;
    }
    v5_id(&format!("user-id:{key}"))
}

/// Characters that render as nothing: zero-width spaces and joiners, direction marks and
/// embeddings, word joiners, the BOM, the soft hyphen, fillers.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}')
}

/// A damaged key's text repaired (`R-USER-UNRETRIEVABLE`): trimmed, the characters that render
/// as nothing stripped, trimmed again. Whitespace inside is kept: `WHERE id = ?` in v1 tells
/// `a  b` from `a b`, and so does the repair.
fn clean_key(raw: &str) -> String {
    let s: String = raw.trim().chars().filter(|c| !invisible(*c)).collect();
    s.trim().to_string()
}

/// Whether `name` shows anything: some character that is not whitespace, a control character
/// or one that renders as nothing (a broad set: zero-width, joiners, bidirectional controls,
/// variation selectors, fillers, tags). A name without one is empty to a person, whatever its
/// bytes, so the migration may quarantine it (`R-USER-EMPTY-NAME`).
pub(crate) fn shows_something(name: &str) -> bool {
    name.chars().any(|c| {
        let unseen = matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}');
        !(c.is_whitespace() || c.is_control() || invisible(c) || unseen)
    })
}

/// `R-USER-UNRETRIEVABLE` key repair: as text, [`clean_key`], lower-cased.
pub fn normalise_key(v: &V1Value) -> Option<String> {
    let raw = match v {
        V1Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        other => text(other)?,
    };
    let s = clean_key(&raw).to_lowercase();
    (!s.is_empty()).then_some(s)
}

/// A G0/G1 member key or reference as references are matched: the normalised hex id when it is
/// one ([`hex_key`]); any other text [`clean_key`]ed but its case kept (v1
/// compares text keys case-sensitively: `ADMIN` does not name the member keyed `admin`).
pub fn reference_key(v: &V1Value) -> Option<String> {
    if let Some(h) = hex_key(v) {
        return Some(h);
    }
    let raw = match v {
        V1Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        other => text(other)?,
    };
    let s = clean_key(&raw);
    (!s.is_empty()).then_some(s)
}

/// A v1 hex key as its v2 id, when it is (after normalisation) a valid one.
pub fn hex_key(v: &V1Value) -> Option<String> {
    normalise_key(v).filter(|s| is_hex_id(s))
}

/// The form two names are duplicates in (`R-USER-DUPLICATE`): NFC, trimmed, case-folded (full
/// folding), NFC again.
pub fn fold_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let nfc: String = name.nfc().collect();
    caseless::default_case_fold_str(nfc.trim()).nfc().collect()
}

/// The test-account names of `spec/rules.md` when the run configured none.
pub const DEFAULT_TEST_ACCOUNTS: &[&str] = &["Test User", "Prayer Test User"];

/// The test account's known corrupted id (`R-USER-TEST-ACCOUNT`).
pub const KNOWN_TEST_ACCOUNT_ID: &str = "12232388dbed436bbcc061e60e47ed99";

/// A display name as v2 holds it (`R-USER-NAME`): unchanged unless it is one v2 would reject or
/// that would mislead (longer than 100 characters, control characters or line breaks, leading or
/// trailing whitespace); such a name is [`rewrite_name`]d and cut to 100 characters. A run of
/// spaces inside an otherwise sound name is not a finding and stays.
pub fn repair_name(raw: &str) -> String {
    let breaks = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    let faulty = raw.chars().count() > 100 || raw.chars().any(breaks) || raw.trim() != raw;
    if !faulty {
        return raw.to_string();
    }
    rewrite_name(raw).chars().take(100).collect()
}

/// Control characters stripped, line breaks and whitespace runs turned into one space, trimmed:
/// the `R-USER-NAME` repair before its cut, and the rewriting v1 itself applies to every name at
/// start-up (rules.md, "Names that v1 itself rewrote"), which references may predate.
pub fn rewrite_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
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
    out
}

/// Parses the timestamp shapes of `R-TIME`: v1's own `YYYY-MM-DD HH:MM:SS[.ffffff]`, ISO with `T`
/// (with `Z` or an offset, converted to UTC), date only, epoch seconds or milliseconds. Rounded to
/// whole microseconds. `None` when no shape fits.
pub fn parse_time(v: &V1Value) -> Option<NaiveDateTime> {
    let t = match v {
        V1Value::Integer(i) => epoch(*i as f64),
        V1Value::Real(r) => epoch(*r),
        V1Value::Text(_) | V1Value::Blob(_) => parse_time_str(text(v)?.trim()),
        V1Value::Null => None,
    }?;
    let micros = t.nanosecond() / 1000;
    t.with_nanosecond(micros * 1000)
}

fn epoch(x: f64) -> Option<NaiveDateTime> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    // A whole number of milliseconds exactly (x / 1000 in f64 is off by microseconds).
    if x >= 1e11 && x.fract() == 0.0 && x < 9.0e15 {
        return DateTime::from_timestamp_millis(x as i64).map(|d| d.naive_utc());
    }
    let secs = if x >= 1e11 { x / 1000.0 } else { x };
    let whole = secs.trunc() as i64;
    let nanos = ((secs - secs.trunc()) * 1e9).round() as u32;
    DateTime::from_timestamp(whole, nanos.min(999_999_999)).map(|d| d.naive_utc())
}

/// [`parse_time`] for text.
pub fn parse_time_str(s: &str) -> Option<NaiveDateTime> {
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.len() >= 9 {
        return epoch(s.parse().ok()?);
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.naive_utc());
        }
    }
    if let Some(z) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return parse_time_str(z);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// True when the value is in v1's own timestamp shape (no `R-TIME` finding expected).
pub fn is_canonical_time(v: &V1Value) -> bool {
    v.as_str()
        .is_some_and(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").is_ok())
}

fn spelling(v: &V1Value) -> Option<String> {
    let s = text(v)?;
    let s: String = s
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    (!s.is_empty()).then_some(s)
}

/// `R-ENUM` for `religious_preference`: empty → `unspecified`, known spellings (any case, trimmed;
/// the synonyms of decisions.md §49 (f), `None` among them) → their value, anything else → `other`.
pub fn religious_preference(v: &V1Value) -> String {
    let spelled = text(v).map(|s| s.trim().to_lowercase()).unwrap_or_default();
    match spelled.as_str() {
        "" | "unspecified" | "not specified" | "none" | "prefer not to say" => "unspecified",
        "christian" | "christians" | "christianity" => "christian",
        _ => "other",
    }
    .into()
}

/// Whether a stored key is empty once trimmed and stripped of what renders as nothing: such a
/// key names no row, whatever row holds it.
pub fn is_empty_key(key: &str) -> bool {
    clean_key(key).is_empty()
}

/// `R-ENUM` for `target_audience`: empty → `all`, known spellings → their value, anything else →
/// `christians_only` (a repair never widens who can see a prayer).
pub fn target_audience(v: &V1Value) -> String {
    match spelling(v).as_deref() {
        None => "all".into(),
        Some(s @ ("all" | "christians_only")) => s.into(),
        Some(_) => "christians_only".into(),
    }
}

/// The date and time a v1 archive path names (`…/YYYY_MM_DD_prayer_at_HHMM.txt`; any other name
/// holding a `YYYY_MM_DD` gives that day's midnight), the evidence `R-TIME` uses for an
/// unparseable timestamp.
pub fn time_from_archive_path(v: &V1Value) -> Option<NaiveDateTime> {
    let p = text(v)?;
    let name = p.rsplit(['/', '\\']).next()?;
    // The first `YYYY_MM_DD` of the file name not glued to a digit before it; then `_at_HHMM`
    // after it gives the time, else midnight (decisions.md 42).
    let chars: Vec<char> = name.chars().collect();
    (0..chars.len()).find_map(|i| {
        if i > 0 && chars[i - 1].is_ascii_digit() {
            return None;
        }
        let window: String = chars.get(i..i + 10)?.iter().collect();
        let d = NaiveDate::parse_from_str(&window, "%Y_%m_%d").ok()?;
        let digits_at = |r: std::ops::Range<usize>| {
            window
                .get(r)
                .is_some_and(|x| x.bytes().all(|b| b.is_ascii_digit()))
        };
        if !(digits_at(0..4) && digits_at(5..7) && digits_at(8..10)) {
            return None;
        }
        let rest: String = chars[i + 10..].iter().collect();
        let hhmm = rest.split_once("_at_").and_then(|(_, t)| t.get(0..4));
        let time = hhmm
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| {
                let h: u32 = t.get(0..2)?.parse().ok()?;
                let m: u32 = t.get(2..4)?.parse().ok()?;
                d.and_hms_opt(h, m, 0)
            });
        time.or_else(|| d.and_hms_opt(0, 0, 0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn times_of_every_documented_shape() {
        let t = |s: &str| parse_time(&V1Value::text(s));
        assert_eq!(
            t("2025-06-29 19:33:00.000000"),
            Some(ts("2025-06-29 19:33:00"))
        );
        assert_eq!(t("2025-06-29T19:33:00Z"), Some(ts("2025-06-29 19:33:00")));
        assert_eq!(
            t("2025-06-29T21:33:00+02:00"),
            Some(ts("2025-06-29 19:33:00"))
        );
        assert_eq!(t("2025-06-29"), Some(ts("2025-06-29 00:00:00")));
        assert_eq!(t("1751225580"), Some(ts("2025-06-29 19:33:00")));
        assert_eq!(t("1751225580000"), Some(ts("2025-06-29 19:33:00")));
        assert_eq!(
            parse_time(&V1Value::Integer(1751225580)),
            Some(ts("2025-06-29 19:33:00"))
        );
        assert_eq!(t("yesterday"), None);
    }

    #[test]
    fn names_keys_and_enums() {
        assert_eq!(repair_name("  Mary\n Ann\t\u{7}x  "), "Mary Ann x");
        assert_eq!(
            repair_name("Pastor  Dave"),
            "Pastor  Dave",
            "no fault, no repair"
        );
        assert_eq!(rewrite_name("Pastor  Dave"), "Pastor Dave");
        assert_eq!(repair_name(&"é".repeat(150)).chars().count(), 100);
        assert_eq!(
            hex_key(&V1Value::text(" ABCDEF0123456789abcdef0123456789\u{200B}")).as_deref(),
            Some("abcdef0123456789abcdef0123456789")
        );
        assert_eq!(
            religious_preference(&V1Value::text(" Christian ")),
            "christian"
        );
        assert_eq!(religious_preference(&V1Value::text("buddhist")), "other");
        assert_eq!(target_audience(&V1Value::Null), "all");
        assert_eq!(
            target_audience(&V1Value::text("everyone!")),
            "christians_only"
        );
        assert_eq!(
            time_from_archive_path(&V1Value::text(
                "text_archives/prayers/2025/06/2025_06_29_prayer_at_1933.txt"
            )),
            Some(ts("2025-06-29 19:33:00"))
        );
    }
}
