//! The member scan of [`Users::read`]: one function per rule a `user` row is checked against,
//! called in the order the findings are recorded (`R-UTF8`, `R-USER-UNRETRIEVABLE`,
//! `R-USER-EMPTY-NAME`, `R-USER-TEST-ACCOUNT`, `R-USER-NAME`, `R-TIME` of `created_at` and
//! `supporter_since`, `R-TEXT-LENGTH`, `R-ENUM` of the flags, `supporter_type` and
//! `religious_preference`, `R-ARCHIVE-PATH`). The table-wide rules (key collisions,
//! `R-USER-DUPLICATE`, `R-INVITE-TREE`) are settled later by [`Users::finalize`].

use std::collections::HashSet;

use chrono::NaiveDateTime;
use thywill_v1::{UserRefKind, UserRow, V1Value};

use super::{norm_text, Fate, StoredRef, UserEntry, Users, TABLE};
use crate::keys::{key_damage, normalize, KeyKind, NormKey};
use crate::model::{Decision, DetectError, Policy, RuleId, KNOWN_CORRUPTED_USER_ID};
use crate::options::DetectOptions;
use crate::rules::archive::{check_archive_path, RecordArchive};
use crate::rules::{
    check_local_time, check_time, check_utf8, key_text, show, Ctx, NoShape, RowFindings,
    TimeOutcome,
};
use crate::text::{is_blank, name_problems, parse_hex32, repair_name, shown};
use crate::time::PackedTime;

/// v2's `users.supporter_type` width.
const MAX_SUPPORTER_TYPE: usize = 255;

/// What the scan knows of the whole table before its first row: the key kind, the schema's
/// columns, the primary-key index and the run's options.
pub(super) struct MemberScan<'a> {
    pub(super) kind: KeyKind,
    policy: Policy,
    opts: &'a DetectOptions<'a>,
    has_religious: bool,
    /// The rowids the primary-key index holds, when the table has one.
    pk: Option<HashSet<i64>>,
    /// Without a primary-key index: the rows `PRAGMA integrity_check` finds missing from one.
    missing_from_index: HashSet<i64>,
    known_id: Option<NormKey>,
}

/// A row's key as the scan reads it.
struct RowKey<'r> {
    value: &'r V1Value,
    norm: Option<NormKey>,
    damage: Vec<&'static str>,
}

impl<'a> MemberScan<'a> {
    /// Reads the schema and the primary-key index of `user`.
    pub(super) fn new(ctx: &Ctx<'a>) -> Result<MemberScan<'a>, DetectError> {
        let schema = ctx.db.schema();
        let kind = match schema.user_key {
            UserRefKind::ById => KeyKind::Hex,
            UserRefKind::ByName => KeyKind::Name,
        };
        let has_religious = schema.has_column(TABLE, "religious_preference");
        let pk = ctx.db.pk_index_rowids(TABLE)?;
        let missing_from_index: HashSet<i64> = match &pk {
            Some(_) => HashSet::new(),
            None => ctx
                .db
                .integrity()?
                .missing_index_entries
                .into_iter()
                .filter(|m| m.table == TABLE)
                .map(|m| m.rowid)
                .collect(),
        };
        Ok(MemberScan {
            kind,
            policy: ctx.policy,
            opts: ctx.opts,
            has_religious,
            pk,
            missing_from_index,
            known_id: parse_hex32(KNOWN_CORRUPTED_USER_ID).map(NormKey::Hex),
        })
    }

    /// Every per-row rule on one row, in order; the entry it makes (fate: written unless a
    /// rule quarantined it).
    pub(super) fn entry(&self, row: &UserRow) -> UserEntry {
        let key = self.row_key(row);
        let mut rf = RowFindings::new(row.rowid, key_text(key.value, row.rowid));
        let texts = check_utf8(
            &mut rf,
            &[
                ("display_name", &row.display_name),
                ("prayer_style", &row.prayer_style),
                ("supporter_type", &row.supporter_type),
            ],
        );
        let raw_name = texts[0].clone().unwrap_or_default();
        let blank = is_blank(&raw_name);
        let key_bad = !(key.damage.is_empty() || self.kind == KeyKind::Name && blank);
        self.unretrievable(&mut rf, row, &key, key_bad);
        empty_name(&mut rf, row, blank);
        self.test_account(&mut rf, row, &raw_name, key.norm.as_ref());
        let name = self.user_name(&mut rf, raw_name, blank);
        let (created, pending_time) = self.created_at(&mut rf, row);
        let supporter_since = self.supporter_since(&mut rf, row);
        prayer_style_width(&mut rf, row);
        let is_supporter = flag(&mut rf, "is_supporter", &row.is_supporter);
        let welcome_dismissed = flag(
            &mut rf,
            "welcome_message_dismissed",
            &row.welcome_message_dismissed,
        );
        let supporter_type = supporter_type(&mut rf, texts[2].clone());
        let religious = self.religious_preference(&mut rf, row);
        let archive_path = check_archive_path(
            &mut rf,
            &row.text_file_path,
            self.opts.archive_files,
            RecordArchive::User(created),
        );
        let fate = if rf.written() {
            Fate::Written
        } else {
            Fate::Quarantined
        };
        UserEntry {
            prayer_style: texts[1]
                .clone()
                .filter(|s| !s.is_empty())
                .map(crate::text::fit_short_text),
            rowid: row.rowid,
            is_supporter,
            invited_by: StoredRef::new(&row.invited_by),
            rf,
            norm: key.norm,
            key_damaged: key_bad,
            empty_name: blank,
            name,
            created: PackedTime::new(created),
            pending_time,
            fate,
            religious,
            supporter_since: PackedTime::new(supporter_since),
            supporter_type,
            welcome_dismissed,
            archive_path,
            inviter: None,
            v2_id: 0,
        }
    }

    /// The row's key column (`id`, or `display_name` where v1 keys members by name), normalised,
    /// and what damage it shows.
    fn row_key<'r>(&self, row: &'r UserRow) -> RowKey<'r> {
        let value = match self.kind {
            KeyKind::Hex => &row.id,
            KeyKind::Name => &row.display_name,
        };
        RowKey {
            value,
            norm: normalize(value, self.kind),
            damage: key_damage(value, self.kind),
        }
    }

    /// True when the row is missing from the primary-key index.
    fn index_damaged(&self, rowid: i64) -> bool {
        match &self.pk {
            Some(set) => !set.contains(&rowid),
            None => self.missing_from_index.contains(&rowid),
        }
    }

    /// `R-USER-UNRETRIEVABLE`: a row its own key cannot fetch (missing from the primary-key
    /// index, or a damaged key), written with its key normalised when a valid key remains.
    fn unretrievable(&self, rf: &mut RowFindings, row: &UserRow, key: &RowKey<'_>, key_bad: bool) {
        let index_damaged = self.index_damaged(row.rowid);
        if !(index_damaged || key_bad) {
            return;
        }
        let key_valid = match (&key.norm, self.kind) {
            (Some(NormKey::Hex(_)), KeyKind::Hex) => true,
            (Some(NormKey::Text(_)), KeyKind::Hex) => !key_bad,
            (Some(NormKey::Text(_)), KeyKind::Name) => true,
            _ => false,
        };
        let mut what = Vec::new();
        if index_damaged {
            what.push("missing from the primary-key index (only a full scan sees it)".to_string());
        }
        if key_bad {
            what.push(format!(
                "key {} is damaged: {}",
                show(key.value),
                key.damage.join(", ")
            ));
        }
        let (decision, done) = match self.policy {
            Policy::Strict => (Decision::Quarantined, "quarantined (strict)".to_string()),
            Policy::Repair if key_bad && !key_valid => (
                Decision::Quarantined,
                "no valid key remains after normalisation; quarantined".to_string(),
            ),
            Policy::Repair if key_bad => (
                Decision::Repaired,
                format!(
                    "key normalised to {}; written",
                    norm_text(key.norm.as_ref())
                ),
            ),
            Policy::Repair => (
                Decision::Repaired,
                "the row's data is intact; written (v2 builds its own indexes)".to_string(),
            ),
        };
        rf.push(
            RuleId::UserUnretrievable,
            decision,
            format!(
                "user cannot be fetched by its own key: {}; {done}",
                what.join("; ")
            ),
        );
    }

    /// `R-USER-TEST-ACCOUNT`: the known corrupted test id, or a name on the test-account list.
    fn test_account(
        &self,
        rf: &mut RowFindings,
        row: &UserRow,
        raw_name: &str,
        norm: Option<&NormKey>,
    ) {
        let test_name = !row.display_name.is_null()
            && self.opts.test_account_names.iter().any(|n| n == raw_name);
        let test_id = self.kind == KeyKind::Hex && norm.is_some() && norm == self.known_id.as_ref();
        if test_name || test_id {
            rf.push(
                RuleId::UserTestAccount,
                Decision::Quarantined,
                if test_id {
                    format!(
                        "the known corrupted test account id {KNOWN_CORRUPTED_USER_ID}; quarantined"
                    )
                } else {
                    format!(
                        "display name '{}' is on the test-account list; quarantined",
                        shown(raw_name, 60)
                    )
                },
            );
        }
    }

    /// `R-USER-NAME`: a name with faults is repaired (quarantined under `strict`); the name v2
    /// gets.
    fn user_name(&self, rf: &mut RowFindings, name: String, blank: bool) -> String {
        let problems = name_problems(&name);
        if blank || problems.is_empty() {
            return name;
        }
        let repaired = repair_name(&name);
        match self.policy {
            Policy::Repair => rf.push(
                RuleId::UserName,
                Decision::Repaired,
                format!(
                    "display name '{}' has {}; repaired to '{}'",
                    shown(&name, 120),
                    problems.join(", "),
                    shown(&repaired, 120)
                ),
            ),
            Policy::Strict => rf.push(
                RuleId::UserName,
                Decision::Quarantined,
                format!(
                    "display name '{}' has {}; quarantined (strict)",
                    shown(&name, 120),
                    problems.join(", ")
                ),
            ),
        }
        repaired
    }

    /// `R-TIME` of `created_at` (the server's local clock): its value, and true when it waits
    /// for evidence from the member's activity.
    fn created_at(&self, rf: &mut RowFindings, row: &UserRow) -> (Option<NaiveDateTime>, bool) {
        let no_shape = NoShape::path_date_or_pending(&row.text_file_path);
        match check_local_time(
            rf,
            self.policy,
            &self.opts.clock,
            "created_at",
            &row.created_at,
            no_shape,
        ) {
            TimeOutcome::At(t) => (Some(t), false),
            TimeOutcome::Pending => (None, true),
            _ => (None, false),
        }
    }

    /// `R-TIME` of the nullable `supporter_since`.
    fn supporter_since(&self, rf: &mut RowFindings, row: &UserRow) -> Option<NaiveDateTime> {
        match check_time(
            rf,
            self.policy,
            "supporter_since",
            &row.supporter_since,
            true,
            NoShape::SetNull,
        ) {
            TimeOutcome::At(t) => Some(t),
            _ => None,
        }
    }

    /// `R-ENUM` of `religious_preference` (mapped onto v2's domain; `unspecified` when v1 has
    /// no such column).
    fn religious_preference(&self, rf: &mut RowFindings, row: &UserRow) -> &'static str {
        if !self.has_religious {
            return "unspecified";
        }
        let (value, changed) = religious(&row.religious_preference);
        if changed.is_some() {
            rf.push(
                RuleId::Enum,
                Decision::Repaired,
                format!(
                    "religious_preference {} is outside the v2 domain; set to '{value}'",
                    show(&row.religious_preference)
                ),
            );
        }
        value
    }
}

/// `R-USER-EMPTY-NAME`: a display name NULL, empty or showing nothing.
fn empty_name(rf: &mut RowFindings, row: &UserRow, blank: bool) {
    if blank {
        rf.push(
            RuleId::UserEmptyName,
            Decision::Quarantined,
            format!(
                "display name {} is NULL, empty, or only whitespace and characters that show nothing; quarantined",
                show(&row.display_name)
            ),
        );
    }
}

/// `R-TEXT-LENGTH` of `prayer_style`.
fn prayer_style_width(rf: &mut RowFindings, row: &UserRow) {
    if let Some(why) = crate::text::short_text_too_wide("prayer_style", &row.prayer_style) {
        rf.push(RuleId::TextLength, Decision::Repaired, why);
    }
}

/// A boolean member flag (`is_supporter`, `welcome_message_dismissed`): NULL is false (v2's
/// default); a value that is not a boolean is written false with its `R-ENUM` finding.
fn flag(rf: &mut RowFindings, column: &str, v: &V1Value) -> bool {
    match (v, v.as_bool()) {
        (_, Some(b)) => b,
        (V1Value::Null, None) => false,
        (v, None) => {
            rf.push(
                RuleId::Enum,
                Decision::Repaired,
                format!("{column} {} is not a boolean; written false", show(v)),
            );
            false
        }
    }
}

/// `R-ENUM` of `supporter_type`: empty is NULL, and so (with a finding) is a value wider than
/// v2's column.
fn supporter_type(rf: &mut RowFindings, text: Option<String>) -> Option<String> {
    text.filter(|s| !s.is_empty()).filter(|s| {
        let fits = s.chars().count() <= MAX_SUPPORTER_TYPE;
        if !fits {
            rf.push(
                RuleId::Enum,
                Decision::Repaired,
                format!(
                    "supporter_type '{}' is longer than v2's {MAX_SUPPORTER_TYPE} characters and is no list of v1's badge keys; written NULL",
                    shown(s, 60)
                ),
            );
        }
        fits
    })
}

/// `religious_preference` in v2's domain, and the value when it differs from the stored text.
fn religious(v: &V1Value) -> (&'static str, Option<&'static str>) {
    let raw = v.to_text_lossy();
    let t = raw.as_deref().map(str::trim).unwrap_or("");
    let lower = t.to_lowercase();
    let mapped = match lower.as_str() {
        "" => "unspecified",
        "christian" | "christians" | "christianity" => "christian",
        "unspecified" | "not specified" | "none" | "prefer not to say" => "unspecified",
        "other" => "other",
        _ => "other",
    };
    let exact = raw.as_deref() == Some(mapped);
    (mapped, (!exact).then_some(mapped))
}

impl Users {
    /// Pass 1 over `user`: every per-row rule ([`MemberScan::entry`]), and the key set.
    pub(crate) fn read(ctx: &mut Ctx<'_>) -> Result<Users, DetectError> {
        let scan = MemberScan::new(ctx)?;
        let mut users = Users::empty(scan.kind);
        // Streamed: only each row's entry is kept (the whole rows of a large file are not).
        let n = ctx.db.for_each::<UserRow, DetectError, _>(|row| {
            let entry = scan.entry(&row);
            users.add(entry, row.created_at);
            Ok(())
        })?;
        ctx.sink.count_read(TABLE, n);
        if users.kind == KeyKind::Name {
            users.index.index_rewritten_names();
        }
        Ok(users)
    }
}
