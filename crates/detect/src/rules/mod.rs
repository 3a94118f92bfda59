//! The rules, one module per carried table, over a shared context. Each pass is a whole-table
//! scan; references are resolved through hashed key sets ([`crate::keys::KeyIndex`]) by the one
//! generic resolver [`resolve_parent`].

pub(crate) mod archive;
pub(crate) mod attributes;
pub(crate) mod email;
pub(crate) mod marks;
pub(crate) mod prayers;
pub(crate) mod small;
pub(crate) mod users;

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use thywill_v1::{V1Database, V1Value};

use crate::clock::{Clock, LocalColumn, LocalTime};
use crate::decisions::Ledger;
use crate::findings::FindingsWriter;
use crate::keys::{KeyIndex, KeyKind};
use crate::model::{Decision, Policy, RuleId};
use crate::options::DetectOptions;
use crate::text::shown;
use crate::time::{self, ParsedTime};

/// The findings of one row, gathered before the row's fate is committed. At most one finding per
/// rule: a second push of the same rule joins the reasons and keeps the stronger decision.
#[derive(Clone, Debug)]
pub(crate) struct RowFindings {
    pub(crate) rowid: i64,
    pub(crate) key: String,
    pub(crate) items: Vec<(RuleId, Decision, String)>,
}

impl RowFindings {
    pub(crate) fn new(rowid: i64, key: String) -> Self {
        RowFindings {
            rowid,
            key,
            items: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, rule: RuleId, decision: Decision, reason: impl Into<String>) {
        let reason = reason.into();
        if let Some(it) = self.items.iter_mut().find(|it| it.0 == rule) {
            it.1 = it.1.max(decision);
            it.2.push_str("; ");
            it.2.push_str(&reason);
        } else {
            self.items.push((rule, decision, reason));
        }
    }

    /// The strongest decision, `None` when the row has no finding.
    pub(crate) fn disposition(&self) -> Option<Decision> {
        self.items.iter().map(|it| it.1).max()
    }

    /// True while the row is still written (no finding, or only repairs).
    pub(crate) fn written(&self) -> bool {
        match self.disposition() {
            Some(d) => d.is_written(),
            None => true,
        }
    }
}

/// Turns the quarantining finding of `entry`'s rule on the row into the operator's `decision`
/// (`repaired` or `merged`), its reason `operator: <note>; <done>`. Refused (with the words for
/// the error) when that rule did not quarantine the row, or another finding still does.
pub(crate) fn lift(
    rf: &mut RowFindings,
    entry: &crate::decisions::DecisionEntry,
    decision: Decision,
    done: &str,
) -> Result<(), String> {
    let quarantining: Vec<RuleId> = rf
        .items
        .iter()
        .filter(|it| it.1 == Decision::Quarantined)
        .map(|it| it.0)
        .collect();
    if !quarantining.contains(&entry.rule) {
        let by: Vec<&str> = quarantining.iter().map(|r| r.as_str()).collect();
        return Err(format!(
            "{} did not quarantine the row (quarantined by: {})",
            entry.rule,
            if by.is_empty() {
                "nothing".to_string()
            } else {
                by.join(", ")
            }
        ));
    }
    if let Some(other) = quarantining.iter().find(|r| **r != entry.rule) {
        return Err(format!(
            "the row is also quarantined by {other}: this entry alone cannot carry it"
        ));
    }
    for it in rf.items.iter_mut().filter(|it| it.0 == entry.rule) {
        it.1 = decision;
        it.2 = entry.reason(done);
    }
    Ok(())
}

/// The row's key text per `spec/interfaces.md` (`rowid:<n>` for NULL).
pub(crate) fn key_text(v: &V1Value, rowid: i64) -> String {
    v.key_text().unwrap_or_else(|| format!("rowid:{rowid}"))
}

/// A stored value shown in a reason: text quoted and shortened, NULL as `NULL`.
pub(crate) fn show(v: &V1Value) -> String {
    match v {
        V1Value::Null => "NULL".to_string(),
        V1Value::Text(_) => match v.as_str() {
            Some(s) => format!("'{}'", shown(s, 60)),
            None => v.key_text().unwrap_or_default(),
        },
        V1Value::Blob(_) => format!("BLOB {}", v.key_text().unwrap_or_default()),
        other => format!("{other:?}"),
    }
}

/// Where a reference ends.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Parent<T> {
    /// The parent is written; `T` identifies it.
    Found(T),
    /// No reference (NULL or empty).
    None,
    /// The reference names no row.
    Missing(String),
    /// The parent exists but is not written (quarantined or otherwise skipped).
    NotWritten(String),
}

/// The one reference resolver: normalise the stored value, look it up in the parent table's key
/// set, follow the parent's fate (`target`: `Some(id)` when the parent ends in a written row).
pub(crate) fn resolve_parent<T: Copy>(
    index: &KeyIndex,
    kind: KeyKind,
    value: &V1Value,
    target: impl Fn(u32) -> Option<T>,
) -> Parent<T> {
    parent_of(lookup(index, kind, value), value, target)
}

/// A reference looked up in its parent's key set: `None` when it holds no key (NULL or nothing
/// left after cleaning), else the entry it names, if any.
pub(crate) type Lookup = Option<Option<u32>>;

/// Looks a stored reference up (the first half of [`resolve_parent`], for callers that need the
/// entry before the parent's fate is known).
pub(crate) fn lookup(index: &KeyIndex, kind: KeyKind, value: &V1Value) -> Lookup {
    crate::keys::normalize(value, kind).map(|norm| index.get_ref(&norm, kind))
}

/// Records the `R-ORPHAN` repair of a member reference that names no member as stored but one as
/// v1's start-up rewrite of names left them (rules.md, "Names that v1 itself rewrote"); nothing
/// for any other reference. Costs no allocation for a name the rewrite leaves alone.
pub(crate) fn note_respelling(
    rf: &mut RowFindings,
    what: &str,
    index: &KeyIndex,
    kind: KeyKind,
    value: &V1Value,
) {
    let unchanged = || {
        value
            .as_str()
            .is_some_and(|s| crate::text::v1_rewritten_name(s).is_none())
    };
    if kind != KeyKind::Name || (!index.has_rewritten_names() && unchanged()) {
        return;
    }
    let Some(norm) = crate::keys::normalize(value, kind) else {
        return;
    };
    if index.get(&norm).is_some() {
        return;
    }
    if let Some((_, rewritten)) = index.get_respelled(&norm, kind) {
        rf.push(
            RuleId::Orphan,
            Decision::Repaired,
            format!(
                "{what} {} names no member as stored; v1 rewrote that member's name to '{}' at \
                 start-up without updating this reference: resolved to them",
                show(value),
                shown(&rewritten, 60)
            ),
        );
    }
}

/// [`lookup`] with a one-entry memo: consecutive rows often name the same parent (a prayer's
/// marks are mostly stored together), and equal stored values always look up the same.
#[derive(Default)]
pub(crate) struct LookupMemo {
    last: Option<(V1Value, Lookup)>,
}

impl LookupMemo {
    pub(crate) fn lookup(&mut self, index: &KeyIndex, kind: KeyKind, value: &V1Value) -> Lookup {
        if let Some((raw, looked)) = &self.last {
            if raw == value {
                return *looked;
            }
        }
        let looked = lookup(index, kind, value);
        match (&mut self.last, value) {
            // Keep the buffer: no allocation per new value.
            (Some((V1Value::Text(buf), slot)), V1Value::Text(b)) => {
                buf.clear();
                buf.extend_from_slice(b);
                *slot = looked;
            }
            (last, _) => *last = Some((value.clone(), looked)),
        }
        looked
    }
}

/// The second half of [`resolve_parent`]: where a looked-up reference ends.
pub(crate) fn parent_of<T: Copy>(
    looked: Lookup,
    value: &V1Value,
    target: impl Fn(u32) -> Option<T>,
) -> Parent<T> {
    match looked {
        None => Parent::None,
        Some(None) => Parent::Missing(show(value)),
        Some(Some(idx)) => match target(idx) {
            Some(t) => Parent::Found(t),
            None => Parent::NotWritten(show(value)),
        },
    }
}

/// The words of an `R-ORPHAN` reason for a row quarantined only because its parent is: such a
/// row follows its parent's decision (`crate::decisions`) and takes none of its own.
pub(crate) const DEPENDANT_OF_QUARANTINED: &str = "is itself quarantined";

/// Records an orphan finding for `what` (e.g. `author`) when the parent is not found; returns
/// the parent when it is.
pub(crate) fn require_parent<T>(rf: &mut RowFindings, what: &str, parent: Parent<T>) -> Option<T> {
    let reason = match parent {
        Parent::Found(t) => return Some(t),
        Parent::None => format!("{what} is empty; nothing to attach the row to; quarantined"),
        Parent::Missing(v) => format!("{what} {v} does not exist; quarantined"),
        Parent::NotWritten(v) => {
            format!("{what} {v} {DEPENDANT_OF_QUARANTINED} (see its finding); quarantined with it")
        }
    };
    rf.push(RuleId::Orphan, Decision::Quarantined, reason);
    None
}

/// How `R-TIME` treats a column whose value no shape fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NoShape {
    /// Quarantine the row (no evidence exists).
    Quarantine,
    /// Use this evidence under `repair` (quarantine when `None`).
    Evidence(Option<NaiveDateTime>),
    /// Decide later, once related activity is known (repair only).
    Pending,
    /// A nullable column: NULL it under `repair` (with a finding), quarantine under `strict`.
    SetNull,
}

impl NoShape {
    /// For a record's `created_at`: the date in its archive path is the evidence; without one
    /// the value waits for the record's activity.
    pub(crate) fn path_date_or_pending(text_file_path: &V1Value) -> NoShape {
        match text_file_path
            .to_text_lossy()
            .and_then(|p| time::date_in_archive_path(&p))
        {
            Some(d) => NoShape::Evidence(Some(d)),
            None => NoShape::Pending,
        }
    }
}

/// The outcome of `R-TIME` on one column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TimeOutcome {
    /// A value (canonical, parsed from another shape, or from evidence).
    At(NaiveDateTime),
    /// NULL in a nullable column.
    Null,
    /// Unparseable; waiting for related activity.
    Pending,
    /// Unparseable and no evidence: the row is quarantined.
    Quarantined,
}

/// Applies `R-TIME` to one timestamp column of a row.
pub(crate) fn check_time(
    rf: &mut RowFindings,
    policy: Policy,
    column: &str,
    value: &V1Value,
    nullable: bool,
    no_shape: NoShape,
) -> TimeOutcome {
    if nullable && value.is_null() {
        return TimeOutcome::Null;
    }
    check_time_parsed(
        rf,
        policy,
        column,
        value,
        time::parse_value(value),
        no_shape,
    )
}

/// [`check_time`] of a non-nullable column that v1 writes with its local clock
/// (`user.created_at`, `prayer.created_at`): the value is read through the server's clock
/// (rules.md "Clocks"), and a wall-clock time the zone skipped or repeated is recorded.
pub(crate) fn check_local_time(
    rf: &mut RowFindings,
    policy: Policy,
    clock: &Clock,
    column: &str,
    value: &V1Value,
    no_shape: NoShape,
) -> TimeOutcome {
    let local = clock.parse(value, LocalColumn::Local);
    note_shift(rf, clock, column, value, local);
    check_time_parsed(rf, policy, column, value, local.map(|l| l.parsed), no_shape)
}

/// Records the `R-TIME` repair of a local wall-clock time the zone skipped or repeated (the
/// earlier instant is taken).
pub(crate) fn note_shift(
    rf: &mut RowFindings,
    clock: &Clock,
    column: &str,
    value: &V1Value,
    local: Option<LocalTime>,
) {
    if let Some(LocalTime {
        parsed,
        shift: Some(shift),
    }) = local
    {
        rf.push(
            RuleId::Time,
            Decision::Repaired,
            format!(
                "{column} {} {} in {}; read as the earlier instant, {} UTC",
                show(value),
                shift.describe(),
                clock.zone().name(),
                time::canonical(parsed.at)
            ),
        );
    }
}

/// [`check_time`] of a non-nullable column whose value the caller has already parsed
/// (`parsed` must be `time::parse_value(value)`).
pub(crate) fn check_time_parsed(
    rf: &mut RowFindings,
    policy: Policy,
    column: &str,
    value: &V1Value,
    parsed: Option<ParsedTime>,
    no_shape: NoShape,
) -> TimeOutcome {
    match parsed {
        Some(ParsedTime {
            at,
            canonical: true,
            ..
        }) => TimeOutcome::At(at),
        Some(ParsedTime { at, .. }) => {
            rf.push(
                RuleId::Time,
                Decision::Repaired,
                format!(
                    "{column} {} is not YYYY-MM-DD HH:MM:SS[.ffffff]; read as {} UTC",
                    show(value),
                    time::canonical(at)
                ),
            );
            TimeOutcome::At(at)
        }
        None => {
            let evidence = match (policy, no_shape) {
                (Policy::Strict, _) | (_, NoShape::Quarantine) => None,
                (Policy::Repair, NoShape::Evidence(e)) => e,
                (Policy::Repair, NoShape::Pending) => return TimeOutcome::Pending,
                (Policy::Repair, NoShape::SetNull) => {
                    rf.push(
                        RuleId::Time,
                        Decision::Repaired,
                        format!(
                            "{column} {} fits no timestamp shape; set to NULL",
                            show(value)
                        ),
                    );
                    return TimeOutcome::Null;
                }
            };
            time_from_evidence(rf, column, value, evidence)
        }
    }
}

/// Settles an unparseable timestamp with evidence, or quarantines the row.
pub(crate) fn time_from_evidence(
    rf: &mut RowFindings,
    column: &str,
    value: &V1Value,
    evidence: Option<NaiveDateTime>,
) -> TimeOutcome {
    match evidence {
        Some(at) => {
            rf.push(
                RuleId::Time,
                Decision::Repaired,
                format!(
                    "{column} {} fits no timestamp shape; taken from evidence (archive path date or earliest related activity): {}",
                    show(value),
                    time::canonical(at)
                ),
            );
            TimeOutcome::At(at)
        }
        None => {
            rf.push(
                RuleId::Time,
                Decision::Quarantined,
                format!(
                    "{column} {} fits no timestamp shape and no evidence gives it; quarantined",
                    show(value)
                ),
            );
            TimeOutcome::Quarantined
        }
    }
}

/// Applies `R-UTF8` to text columns: returns the decoded text (U+FFFD for bad bytes and for NUL,
/// which no v2 text column can hold) and records
/// one finding naming every column that needed it.
pub(crate) fn check_utf8(
    rf: &mut RowFindings,
    columns: &[(&str, &V1Value)],
) -> Vec<Option<String>> {
    check_utf8_only(rf, columns);
    columns
        .iter()
        .map(|(_, v)| crate::text::storable_text(v))
        .collect()
}

/// [`check_utf8`] without the decoded texts (the finding only; nothing allocated for clean
/// columns).
pub(crate) fn check_utf8_only(rf: &mut RowFindings, columns: &[(&str, &V1Value)]) {
    let mut bad = Vec::new();
    for (name, v) in columns {
        if crate::text::needs_utf8_repair(v) {
            bad.push(format!("{name} (bytes x'{}')", hex_prefix(v)));
        }
    }
    if !bad.is_empty() {
        rf.push(
            RuleId::Utf8,
            Decision::Repaired,
            format!(
                "bytes that are not UTF-8 (or NUL bytes, which v2 cannot store) in {}; replaced with U+FFFD (original bytes in the finding)",
                bad.join(", ")
            ),
        );
    }
}

fn hex_prefix(v: &V1Value) -> String {
    match v {
        V1Value::Text(b) | V1Value::Blob(b) => {
            let mut h = hex::encode(&b[..b.len().min(32)]);
            if b.len() > 32 {
                h.push('…');
            }
            h
        }
        _ => String::new(),
    }
}

/// Findings and per-table tallies of a run.
#[derive(Default)]
pub(crate) struct Sink {
    pub(crate) findings: FindingsWriter,
    /// Rows read per table.
    pub(crate) read: BTreeMap<&'static str, u64>,
    /// Rows the plan writes per table, counted where the verdict is made (checked against the
    /// findings by the law).
    pub(crate) written: BTreeMap<&'static str, u64>,
    /// The operator's decisions (`--decisions`), as the rules meet their rows.
    pub(crate) decisions: Option<Ledger>,
}

impl Sink {
    /// Commits a row's findings; returns true when the row is written. A row the decisions
    /// file keeps quarantined gets the operator's note in its quarantining reasons.
    pub(crate) fn commit(&mut self, table: &'static str, rf: &RowFindings) -> bool {
        let written = rf.written();
        if written {
            *self.written.entry(table).or_insert(0) += 1;
        }
        let note = match &mut self.decisions {
            Some(l) => l.on_commit(table, &rf.key, rf.rowid, rf.disposition()),
            None => None,
        };
        for (rule, decision, reason) in &rf.items {
            match (&note, decision) {
                (Some(n), Decision::Quarantined) => self.findings.push(
                    table,
                    rf.rowid,
                    &rf.key,
                    *rule,
                    *decision,
                    &format!("{reason}; {n}"),
                ),
                _ => self
                    .findings
                    .push(table, rf.rowid, &rf.key, *rule, *decision, reason),
            }
        }
        written
    }

    /// Adds a `repaired` finding to a row already committed as written (a repair known only
    /// once a later table is read); the counts do not change.
    pub(crate) fn note_repair(
        &mut self,
        table: &'static str,
        rowid: i64,
        key: &str,
        rule: RuleId,
        reason: &str,
    ) {
        self.findings
            .push(table, rowid, key, rule, Decision::Repaired, reason);
    }

    /// Adds a finding that takes a row committed as written out of the written rows (a mark
    /// found to be a duplicate only once every mark was seen).
    pub(crate) fn demote(
        &mut self,
        table: &'static str,
        rowid: i64,
        key: &str,
        rule: RuleId,
        decision: Decision,
        reason: &str,
    ) {
        debug_assert!(!decision.is_written());
        if let Some(w) = self.written.get_mut(table) {
            *w = w.saturating_sub(1);
        }
        let note = match &mut self.decisions {
            Some(l) => l.on_commit(table, key, rowid, Some(decision)),
            None => None,
        };
        match note {
            Some(n) => {
                self.findings
                    .push(table, rowid, key, rule, decision, &format!("{reason}; {n}"))
            }
            None => self
                .findings
                .push(table, rowid, key, rule, decision, reason),
        }
    }

    pub(crate) fn count_read(&mut self, table: &'static str, n: u64) {
        *self.read.entry(table).or_insert(0) += n;
    }
}

/// The shared state of one detection run.
pub(crate) struct Ctx<'a> {
    pub(crate) db: &'a V1Database,
    pub(crate) opts: &'a DetectOptions<'a>,
    pub(crate) policy: Policy,
    pub(crate) sink: Sink,
}
