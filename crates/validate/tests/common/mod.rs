//! Test harness: a v2 database (SQLite file or throw-away PostgreSQL database) populated from a
//! committed fixture through `thywill-v2`'s writer, with `migration_findings` built from the
//! fixture's `truth.json` (the generator's independent oracle), and a v2 archive tree.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};
use thywill_v1::{UserRefKind, UserRow, V1Database};
use thywill_v2::rows::*;
use thywill_v2::testing::TempPgDb;
use thywill_v2::{LoadOptions, RunInfo, Target, V2Db};
use thywill_validator::canon::{CanonTable, Cell};
use thywill_validator::expected::{derive, expected_marks, Actual, Ledger};
use thywill_validator::marks::MarkSide;
use thywill_validator::rules;
use thywill_validator::v2db::{FindingRow, V2Data};
use thywill_validator::{Options, Policy, Report};
use unicode_normalization::UnicodeNormalization;

/// The tests' own namespace for ids the spec leaves to the implementation.
const TEST_NS: uuid::Uuid = uuid::Uuid::from_u128(0x7465_7374_7468_7977_696c_6c5f_7465_7374);

/// A populated v2 target and its sources.
pub struct Built {
    /// Keeps the files alive.
    pub dir: tempfile::TempDir,
    /// Keeps the PostgreSQL database alive.
    pub pg: Option<TempPgDb>,
    /// The fixture's v1 file.
    pub v1: PathBuf,
    /// The v2 URL.
    pub url: String,
    /// The fixture's v1 archive tree, if it has one.
    pub archives_v1: Option<PathBuf>,
    /// The v2 archive tree written for the test.
    pub archives_v2: PathBuf,
    /// The policy.
    pub policy: Policy,
    /// The truth file.
    pub truth: serde_json::Value,
}

impl Built {
    /// Options validating this build (archives included).
    pub fn options(&self) -> Options {
        Options {
            archives_v1: self.archives_v1.clone(),
            archives_v2: Some(self.archives_v2.clone()),
            policy: self.policy,
            ..Options::new(&self.v1, &self.url)
        }
    }

    /// Runs the validation.
    pub fn validate(&self) -> Report {
        thywill_validator::validate(&self.options()).expect("validation runs")
    }

    /// Runs a statement on the v2 database (tampering).
    pub fn exec(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        match Target::parse(&self.url).unwrap() {
            Target::Postgres { url, .. } => diesel::PgConnection::establish(&url)
                .unwrap()
                .batch_execute(sql)
                .unwrap(),
            Target::SqliteFile(p) => diesel::SqliteConnection::establish(&p.to_string_lossy())
                .unwrap()
                .batch_execute(&format!(
                    "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON; {sql}"
                ))
                .unwrap(),
            Target::SqliteMemory => unreachable!(),
        }
    }
}

/// The committed fixture folder `fixtures/<gen>-s`.
pub fn fixture(gen: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(format!("{gen}-s"))
}

/// Names of the failed checks of a report.
pub fn failed(r: &Report) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.clone())
        .collect()
}

fn decision_of(f: &serde_json::Value, policy: Policy) -> Option<String> {
    let p = if policy == Policy::Repair {
        "repair"
    } else {
        "strict"
    };
    f[p].as_str().map(str::to_string)
}

fn fold(name: &str) -> String {
    rules::repair_name(name)
        .nfc()
        .collect::<String>()
        .to_lowercase()
}

/// Builds a SQLite v2 database (or PostgreSQL when `pg`; `None` when PostgreSQL is not set up).
pub fn build(gen: &str, policy: Policy, pg: bool) -> Option<Built> {
    build_from(&fixture(gen), policy, pg)
}

/// [`build`] from any fixture folder (`v1.db`, `truth.json`, optional `text_archives/`).
pub fn build_from(fx: &Path, policy: Policy, pg: bool) -> Option<Built> {
    let dir = tempfile::tempdir().unwrap();
    let v1_path = fx.join("v1.db");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("truth.json")).unwrap()).unwrap();
    let (pgdb, url) = if pg {
        let db = TempPgDb::create()?;
        let url = db.url.clone();
        (Some(db), url)
    } else {
        (
            None,
            format!("sqlite://{}", dir.path().join("v2.db").display()),
        )
    };

    let findings: Vec<FindingRow> = truth["expected"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            Some(FindingRow {
                v1_table: f["table"].as_str()?.into(),
                v1_key: f["key"].as_str()?.into(),
                rule: f["rule"].as_str()?.into(),
                decision: decision_of(f, policy)?,
            })
        })
        .collect();
    let v1 = V1Database::open(&v1_path).unwrap();
    let id_map = user_ids(&v1, &findings);
    let mut ledger = Ledger::new(&findings, &id_map);
    // Under `repair` the tree's archive-only records are recovered (decisions.md §47).
    ledger.recover_from =
        Some(fx.join("text_archives")).filter(|p| p.is_dir() && policy == Policy::Repair);
    let derived = derive(
        &v1,
        &ledger,
        &Actual::new(&V2Data::default(), MarkSide::default()),
    )
    .unwrap();
    let all_marks = expected_marks(&v1, &ledger, &derived, None).unwrap();

    let mut db = V2Db::open(&Target::parse(&url).unwrap()).unwrap();
    db.ensure_schema().unwrap();
    let sha = thywill_v1::source_sha256(&v1_path).unwrap();
    let info = RunInfo::new(
        v1_path.display().to_string(),
        sha,
        v1.schema().generation.to_string(),
        "test",
    );
    let mut load = db.begin_load(info, LoadOptions::default()).unwrap();
    let t = &derived.expected;
    let users: Vec<User> = rows(&t[0], |c| User {
        id: st(&c[0]),
        display_name: st(&c[1]),
        email: None,
        religious_preference: st(&c[3]),
        prayer_style: ost(&c[4]),
        invited_by_user_id: ost(&c[5]),
        created_at: ts(&c[6]),
        updated_at: ts(&c[7]),
        is_active: c[8] == Cell::Bool(true),
        is_supporter: c[9] == Cell::Bool(true),
        supporter_since: ots(&c[10]),
        text_archive_path: Some(format!("users/{}.txt", st(&c[0]))),
        supporter_type: ost(&c[11]),
        welcome_dismissed: c[12] == Cell::Bool(true),
        email_verified_at: ots(&c[13]),
    });
    let prayers: Vec<Prayer> = rows(&t[1], |c| Prayer {
        id: st(&c[0]),
        author_id: st(&c[1]),
        text: st(&c[2]),
        generated_prayer: ost(&c[3]),
        project_tag: ost(&c[4]),
        target_audience: st(&c[5]),
        created_at: ts(&c[6]),
        updated_at: ts(&c[7]),
        is_archived: c[8] == Cell::Bool(true),
        is_answered: c[9] == Cell::Bool(true),
        answered_at: ots(&c[10]),
        testimony: ost(&c[11]),
        text_archive_path: Some(format!("prayers/{}.txt", st(&c[0]))),
    });
    let marks: Vec<PrayerMark> = keyed(&all_marks, |k, c| PrayerMark {
        id: id_or(&c[0], &format!("mark:{k}")),
        prayer_id: st(&c[1]),
        user_id: st(&c[2]),
        marked_at: ts(&c[3]),
    });
    let roles: Vec<UserRole> = rows(&t[3], |c| UserRole {
        user_id: st(&c[0]),
        role: st(&c[1]),
        granted_at: ts(&c[2]),
        granted_by_user_id: ost(&c[3]),
    });
    let invites: Vec<Invite> = keyed(&t[4], |k, c| Invite {
        id: id_or(&c[0], &format!("invite:{k}")),
        token: st(&c[1]),
        created_by_user_id: ost(&c[2]),
        invited_display_name: None,
        created_at: ts(&c[4]),
        expires_at: ts(&c[5]),
        max_uses: match c[6] {
            Cell::Int(i) => Some(i as i32),
            _ => None,
        },
        use_count: match c[7] {
            Cell::Int(i) => i as i32,
            _ => 0,
        },
        used_at: ots(&c[8]),
        used_by_user_id: ost(&c[9]),
        is_admin_token: c[10] == Cell::Bool(true),
    });
    let sessions: Vec<Session> = rows(&t[5], |c| Session {
        id: st(&c[0]),
        user_id: st(&c[1]),
        created_at: ts(&c[2]),
        expires_at: ts(&c[3]),
        last_seen_at: ts(&c[4]),
        user_agent: ost(&c[5]),
        ip_address: ost(&c[6]),
    });
    let flags: Vec<ContentFlag> = keyed(&t[6], |k, c| ContentFlag {
        id: id_or(&c[0], &format!("flag:{k}")),
        prayer_id: st(&c[1]),
        flagged_by_user_id: ost(&c[2]),
        reason: ost(&c[3]),
        flagged_at: ts(&c[4]),
        resolved_at: None,
        resolved_by_user_id: None,
        resolution_action: None,
    });
    let run = load.run_id().to_string();
    let now = chrono::Utc::now().naive_utc();
    let finding_rows: Vec<Finding> = findings
        .iter()
        .map(|f| Finding {
            run_id: run.clone(),
            v1_table: f.v1_table.clone(),
            v1_key: f.v1_key.clone(),
            rule: f.rule.clone(),
            decision: f.decision.clone(),
            reason: "from truth.json".into(),
            original_json: "{}".into(),
            created_at: now.with_nanosecond_0(),
        })
        .chain(derived.recovered().map(|(table, key)| Finding {
            run_id: run.clone(),
            v1_table: table.into(),
            v1_key: key.into(),
            rule: "R-ARCHIVE-ONLY".into(),
            decision: "recovered".into(),
            reason: "recovered from the v1 archive tree".into(),
            original_json: "{}".into(),
            created_at: now.with_nanosecond_0(),
        }))
        .collect();
    let id_rows: Vec<IdMapEntry> = id_map
        .into_iter()
        .map(|e| IdMapEntry {
            run_id: run.clone(),
            ..e
        })
        .collect();
    load.write_all(&users).unwrap();
    load.write_all(&prayers).unwrap();
    load.write_all(&marks).unwrap();
    load.write_all(&roles).unwrap();
    load.write_all(&invites).unwrap();
    load.write_all(&sessions).unwrap();
    load.write_all(&flags).unwrap();
    load.write_all(&id_rows).unwrap();
    load.write_all(&finding_rows).unwrap();
    load.commit(None).unwrap();
    drop(db);

    let archives_v1 = Some(fx.join("text_archives")).filter(|p| p.is_dir());
    let archives_v2 = dir.path().join("text_archives_v2");
    write_archives(&archives_v2, archives_v1.as_deref(), &users, &prayers);
    Some(Built {
        dir,
        pg: pgdb,
        v1: v1_path,
        url,
        archives_v1,
        archives_v2,
        policy,
        truth,
    })
}

trait NoNanos {
    fn with_nanosecond_0(self) -> NaiveDateTime;
}
impl NoNanos for NaiveDateTime {
    fn with_nanosecond_0(self) -> NaiveDateTime {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

/// The id map a migration would record: every written or merged user (merged ones point at the
/// written account of the same folded name).
fn user_ids(v1: &V1Database, findings: &[FindingRow]) -> Vec<IdMapEntry> {
    let by_id = v1.schema().user_key == UserRefKind::ById;
    let mut worst: HashMap<&str, &str> = HashMap::new();
    for f in findings
        .iter()
        .filter(|f| f.v1_table == "user" && f.decision != "repaired")
    {
        worst.insert(&f.v1_key, &f.decision);
    }
    let users: Vec<UserRow> = v1.read_all().unwrap();
    let key = |u: &UserRow| {
        let v = if by_id { &u.id } else { &u.display_name };
        v.key_text().unwrap_or_else(|| format!("rowid:{}", u.rowid))
    };
    let name = |u: &UserRow| rules::text(&u.display_name).unwrap_or_default();
    let mut survivors: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for u in &users {
        let k = key(u);
        if worst.contains_key(k.as_str()) {
            continue;
        }
        let id = if by_id {
            rules::hex_key(&u.id).unwrap()
        } else {
            rules::v5_id(&format!("user:{}", rules::repair_name(&name(u)))).unwrap()
        };
        survivors.insert(fold(&name(u)), id.clone());
        out.push(IdMapEntry {
            run_id: String::new(),
            entity: "user".into(),
            v1_key: k,
            v2_id: id,
        });
    }
    for u in &users {
        let k = key(u);
        if worst.get(k.as_str()) == Some(&"merged") {
            let to = survivors
                .get(&fold(&name(u)))
                .unwrap_or_else(|| panic!("no survivor for {k}"));
            out.push(IdMapEntry {
                run_id: String::new(),
                entity: "user".into(),
                v1_key: k,
                v2_id: to.clone(),
            });
        }
    }
    out
}

fn rows<T>(t: &CanonTable, f: impl Fn(&[Cell]) -> T) -> Vec<T> {
    t.rows.values().map(|c| f(c)).collect()
}

fn keyed<T>(t: &CanonTable, f: impl Fn(&str, &[Cell]) -> T) -> Vec<T> {
    t.rows.iter().map(|(k, c)| f(k, c)).collect()
}

fn st(c: &Cell) -> String {
    match c {
        Cell::Str(s) => s.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn ost(c: &Cell) -> Option<String> {
    match c {
        Cell::Null => None,
        other => Some(st(other)),
    }
}

fn ts(c: &Cell) -> NaiveDateTime {
    match c {
        Cell::Ts(t) => *t,
        // Evidence-based repairs the validator cannot derive: any plausible value.
        _ => NaiveDateTime::parse_from_str("2025-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap(),
    }
}

fn ots(c: &Cell) -> Option<NaiveDateTime> {
    match c {
        Cell::Null => None,
        other => Some(ts(other)),
    }
}

fn id_or(c: &Cell, name: &str) -> String {
    match c {
        Cell::Str(s) => s.clone(),
        _ => uuid::Uuid::new_v5(&TEST_NS, name.as_bytes())
            .simple()
            .to_string(),
    }
}

/// A v2 archive tree: the v1 tree carried verbatim, a file per user and prayer, the manifest.
fn write_archives(root: &Path, v1: Option<&Path>, users: &[User], prayers: &[Prayer]) {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if let Some(v1) = v1 {
        for e in walkdir::WalkDir::new(v1) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e
                    .path()
                    .strip_prefix(v1)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    for u in users {
        files.insert(
            format!("users/{}.txt", u.id),
            format!("User Registration\nDisplay Name: {}\n", u.display_name).into_bytes(),
        );
    }
    for p in prayers {
        files.insert(
            format!("prayers/{}.txt", p.id),
            format!("Prayer Request\nPrayer ID: {}\n", p.id).into_bytes(),
        );
    }
    let mut manifest = String::new();
    for (rel, bytes) in &files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        manifest.push_str(&format!("{}  {rel}\n", hex::encode(Sha256::digest(bytes))));
    }
    std::fs::write(root.join("MANIFEST.sha256"), manifest).unwrap();
}
