//! `migrate`: the whole migration, in one v2 transaction, idempotent, with archives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use thywill_archive::v2::prayer_path;
use thywill_archive::{ArchiveMark, V2ArchiveWriter, V2WriteOptions};
use thywill_detect::{ResolvedPrayer, ResolvedUser, Verdict};
use thywill_v1::{MarkRow, PrayerRow, V1Database, V1Row};
use thywill_v2::rows::{
    ContentFlag, Finding, IdMapEntry, Invite, Prayer, PrayerMark, Session, User, UserRole,
};
use thywill_v2::{Load, LoadOptions, RowSink, RunInfo, V2Row};
use thywill_v2::{Target, TargetState, V2Db};

use crate::archive_marks::ArchiveMarks;
use crate::error::PipelineError;
use crate::mapping;
use crate::pipelined::pipelined;
use crate::progress::Progress;
use crate::report::{ArchiveCounts, Report, TargetInfo};
use crate::source::{now_rfc3339, prepare, Source};
use crate::{MigrateOptions, TOOL_VERSION};

/// Migrates a v1 database (and archive tree) into v2: creates or upgrades the schema, writes
/// every row the detector's plan writes in one transaction (or nothing), records findings, the id
/// map and the run, writes the v2 archives, and returns the report. Migrating the same source
/// again is a no-op reported as `already_migrated`.
pub fn migrate(opts: &MigrateOptions) -> Result<Report, PipelineError> {
    let started = now_rfc3339();
    let mut progress = Progress::new(opts.common.progress);
    let target = Target::parse(&opts.v2_url)?;
    // Refusals knowable before reading v1 come first (a refused run must not wait for detection).
    if let Some(root) = &opts.archives_v2 {
        thywill_archive::check_target_folder(root, opts.common.archives_v1.as_deref())?;
    }
    let mut source = prepare(&opts.common, &mut progress)?;
    let mut report = source.report("thywill-migrate", &opts.common, &started, "migrated");
    report.dry_run = opts.dry_run;
    report.target = Some(TargetInfo {
        backend: target.backend().name().to_string(),
        url: target.redacted(),
    });
    if !report.ok {
        report.outcome = "failed".into();
        report.findings.keep_originals(source.db);
        return Ok(report);
    }
    // The guard rails: after detection, before the target is opened (a SQLite file would be
    // created) or an archive folder made.
    let breaches = opts.quarantine_limits.breaches(source.plan.counts());
    if !breaches.is_empty() {
        report.ok = false;
        report.outcome = "failed".into();
        report
            .feasibility
            .notes
            .insert(0, crate::limits::refusal(&breaches));
        report.stages = progress.timings().to_vec();
        report.finished_at = now_rfc3339();
        report.findings.keep_originals(source.db);
        return Err(PipelineError::QuarantineOverLimit {
            breaches,
            report: Box::new(report),
        });
    }

    crate::interrupt::check()?;
    let mut v2 = V2Db::open(&target)?;
    let dest = ArchiveDest::new(opts)?;
    let decisions = opts.common.decisions.as_ref().map(|d| d.sha256.as_str());
    let mut already = match v2.state_of_run(&source.sha256, decisions)? {
        alien @ TargetState::Alien { .. } => {
            return Err(thywill_v2::alien_error(target.redacted(), &alien).into())
        }
        TargetState::AlreadyMigrated { run_id } if !opts.replace => Some(run_id),
        _ => None,
    };
    let mut load = None;
    if already.is_none() {
        let mut info = RunInfo::new(
            opts.common.v1_db.display().to_string(),
            source.sha256.clone(),
            source.db.schema().generation.to_string(),
            TOOL_VERSION,
        );
        info.decisions_sha256 = decisions.map(str::to_string);
        let load_opts = LoadOptions {
            dry_run: opts.dry_run,
            replace: opts.replace,
        };
        match v2.begin_load(info, load_opts) {
            Ok(l) => load = Some(l),
            // A concurrent run of the same source committed while this one waited for the run
            // lock: the same outcome as finding it before.
            Err(thywill_v2::Error::AlreadyMigrated { run_id, .. }) => already = Some(run_id),
            Err(e) => return Err(e.into()),
        }
    }
    let archive_paths = opts.archives_v2.is_some();
    // The marks the archives need: collected while the rows are written, or in a pass of their
    // own when nothing is written.
    let mut archive_marks = None;
    if let Some(run_id) = already {
        tracing::info!(%run_id, "the target already holds this source's migration: nothing to write");
        report.outcome = "already_migrated".into();
        report.run_id = Some(run_id);
        if archive_paths {
            archive_marks = Some(ArchiveMarks::collect(&source)?);
        }
    } else if let Some(mut load) = load {
        archive_marks = archive_paths
            .then(|| ArchiveMarks::new(&source))
            .transpose()?;
        report.run_id = Some(load.run_id().to_string());
        // The rows that reach the writer: attribute and role rows become columns, not rows.
        let expected: u64 = [
            "user",
            "prayer",
            "prayermark",
            "user_roles",
            "invitetoken",
            "session",
        ]
        .iter()
        .map(|t| source.plan.v2_rows(t))
        .sum();
        let mut stage = progress.start("write", expected);
        write_rows(&mut source, &mut load, archive_marks.as_mut(), &mut stage)?;
        progress.finish(stage);
        if opts.dry_run {
            report.outcome = "dry_run".into();
        }
        // Archives before the commit: if they fail, the transaction rolls back with them.
        report.archives = archives(&source, opts, &dest, archive_marks.take(), &mut progress)?;
        let counts_json = serde_json::to_string(&report.tables).ok();
        crate::interrupt::check()?;
        let commit = progress.start("commit", 0);
        load.commit(counts_json)?;
        progress.finish(commit);
        dest.publish()?;
    }
    if report.archives.is_none() {
        report.archives = archives(&source, opts, &dest, archive_marks.take(), &mut progress)?;
        dest.publish()?;
    }
    report.stages = progress.timings().to_vec();
    report.finished_at = now_rfc3339();
    // The run is done with the snapshot: the report's walks fetch the findings' original rows.
    report.findings.keep_originals(source.db);
    Ok(report)
}

/// Streams every table into the load, checks the rows pushed against the plan's law. Prayers and
/// marks are read and resolved on a second thread while this one writes them (`pipelined`).
fn write_rows(
    source: &mut Source,
    load: &mut Load<'_>,
    mut archive_marks: Option<&mut ArchiveMarks>,
    stage: &mut crate::progress::Stage,
) -> Result<(), PipelineError> {
    let users = write_users(source, load, archive_marks.is_some(), stage)?;
    let prayers = write_prayers(source, load, archive_marks.as_deref_mut(), stage)?;
    let marks = write_marks(source, load, archive_marks, stage)?;
    let [grants, invites, sessions, flags] = write_small_tables(&source.plan, load)?;
    stage.inc(grants + invites + sessions + flags);
    write_run_records(source, load)?;
    check_pushed(
        &source.plan,
        [
            ("user", users),
            ("prayer", prayers),
            ("prayermark", marks),
            ("user_roles", grants),
            ("invitetoken", invites),
            ("session", sessions),
        ],
    )
}

/// The `users` rows: the plan's members, then those the archive tree holds and the database lost.
fn write_users(
    source: &Source,
    load: &mut Load<'_>,
    archive_paths: bool,
    stage: &mut crate::progress::Stage,
) -> Result<u64, PipelineError> {
    load.write::<User, PipelineError>(|sink| {
        for u in source.members() {
            let u = u?;
            sink.push(&mapping::user(
                &u,
                archive_paths.then(|| thywill_archive::v2::user_path(&u.id)),
            ))?;
            stage.inc(1);
        }
        Ok(())
    })
}

/// The `prayers` rows, streamed from v1 and resolved by the plan, then the recovered ones; the
/// archive marks note each prayer's path.
fn write_prayers(
    source: &mut Source,
    load: &mut Load<'_>,
    mut archive_marks: Option<&mut ArchiveMarks>,
    stage: &mut crate::progress::Stage,
) -> Result<u64, PipelineError> {
    let archive_paths = archive_marks.is_some();
    let (plan, db) = (&source.plan, &mut source.db);
    load.write::<Prayer, PipelineError>(|sink| {
        let mut notes = archive_marks.as_deref_mut();
        stream_v1("prayer", db, sink, stage, move |row: &PrayerRow| {
            let Verdict::Write(p) = plan.resolve_prayer(row)? else {
                return Ok(None);
            };
            if let Some(a) = notes.as_deref_mut() {
                a.note_prayer(&p, row.rowid);
            }
            let path = archive_paths.then(|| prayer_path(&p.id));
            Ok(Some(mapping::prayer(p, path)))
        })?;
        // The prayers the archive tree holds and the database lost (`repair`).
        if let Some(a) = &mut archive_marks {
            a.note_recovered_prayers(plan);
        }
        for r in &plan.recovery().prayers {
            let path = archive_paths.then(|| prayer_path(&r.prayer.id));
            sink.push(&mapping::prayer(r.prayer.clone(), path))?;
            stage.inc(1);
        }
        Ok(())
    })
}

/// The `prayer_marks` rows, streamed from v1 and resolved by the plan, then the recovered ones;
/// the archive marks collect each one.
fn write_marks(
    source: &mut Source,
    load: &mut Load<'_>,
    mut archive_marks: Option<&mut ArchiveMarks>,
    stage: &mut crate::progress::Stage,
) -> Result<u64, PipelineError> {
    let (plan, db) = (&source.plan, &mut source.db);
    load.write::<PrayerMark, PipelineError>(|sink| {
        if let Some(a) = archive_marks.as_deref_mut() {
            a.note_recovered_marks(plan)?;
        }
        let mut notes = archive_marks;
        stream_v1("prayermark", db, sink, stage, move |row: &MarkRow| {
            let Verdict::Write(m) = plan.resolve_mark(row) else {
                return Ok(None);
            };
            if let Some(a) = notes.as_deref_mut() {
                a.note_mark(&m)?;
            }
            Ok(Some(mapping::mark(m)))
        })?;
        for r in &plan.recovery().marks {
            sink.push(&mapping::mark(r.mark.clone()))?;
            stage.inc(1);
        }
        Ok(())
    })
}

/// The small tables' rows (`user_roles`, `invites`, `sessions`, `content_flags`), read back
/// from the plan one at a time; returns the rows written of each.
fn write_small_tables(
    plan: &thywill_detect::Plan,
    load: &mut Load<'_>,
) -> Result<[u64; 4], PipelineError> {
    let grants = load.write::<UserRole, PipelineError>(|sink| {
        for g in plan.role_grants().iter() {
            sink.push(&mapping::role_grant(&g?))?;
        }
        Ok(())
    })?;
    let invites = load.write::<Invite, PipelineError>(|sink| {
        for i in plan.invites().iter() {
            sink.push(&mapping::invite(&i?))?;
        }
        Ok(())
    })?;
    let sessions = load.write::<Session, PipelineError>(|sink| {
        for s in plan.sessions().iter() {
            sink.push(&mapping::session(&s?))?;
        }
        Ok(())
    })?;
    // The flags from the plan's state (not collected while the prayers stream: 15k on L).
    let flags = load.write::<ContentFlag, PipelineError>(|sink| {
        for f in plan.flags() {
            let (prayer_id, flag) = f?;
            sink.push(&mapping::content_flag(&prayer_id, &flag))?;
        }
        Ok(())
    })?;
    Ok([grants, invites, sessions, flags])
}

/// The run's own records: every finding (with its original row) and the id map.
fn write_run_records(source: &Source, load: &mut Load<'_>) -> Result<(), PipelineError> {
    let plan = &source.plan;
    let run_id = load.run_id().to_string();
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now().naive_utc(), 6);
    load.write::<Finding, PipelineError>(|sink| {
        let mut originals =
            thywill_detect::OriginalRows::new(&source.db).with_email(source.email_db.as_ref());
        let row = |f: crate::report::ReportFinding, original_json: String| Finding {
            run_id: run_id.clone(),
            v1_table: f.v1_table,
            v1_key: f.v1_key,
            rule: f.rule,
            decision: f.decision,
            reason: f.reason,
            original_json,
            created_at: now,
        };
        for f in plan.findings() {
            let f = f?;
            let original_json = originals.of(&f)?.to_string();
            sink.push(&row(crate::report::ReportFinding::from(f), original_json))?;
        }
        // The records recovered from the v1 tree: their original is the archive's record.
        for f in crate::source::recovered_findings(plan.recovery()) {
            let original_json = f.original.clone().unwrap_or_default().to_string();
            sink.push(&row(f, original_json))?;
        }
        Ok(())
    })?;
    load.write::<IdMapEntry, PipelineError>(|sink| {
        for e in plan.id_map() {
            let e = e?;
            sink.push(&IdMapEntry {
                run_id: run_id.clone(),
                entity: e.entity.to_string(),
                v1_key: e.v1_key.clone(),
                v2_id: e.v2_id.clone(),
            })?;
        }
        Ok(())
    })?;

    Ok(())
}

/// The rows that reached the writer must be exactly the rows the law says are written.
fn check_pushed(
    plan: &thywill_detect::Plan,
    pushed: [(&str, u64); 6],
) -> Result<(), PipelineError> {
    for (table, pushed) in pushed {
        // A grant row is not always a v1 row: see `Plan::grant_rows`.
        let planned = plan.v2_rows(table);
        if planned != pushed {
            return Err(PipelineError::Mapping {
                table: table.into(),
                key: "(all rows)".into(),
                reason: format!("the plan writes {planned} rows but {pushed} reached the writer; nothing was committed"),
            });
        }
    }
    Ok(())
}

/// Streams v1 table `table` into `sink`: a second thread owns the v1 connection (a connection
/// is not `Sync`), reads each row and turns it into the v2 row to write (`None`: not written)
/// while this thread writes and counts them ([`pipelined`]).
fn stream_v1<T: V1Row, R: V2Row + Send>(
    table: &str,
    db: &mut V1Database,
    sink: &mut dyn RowSink<R>,
    stage: &mut crate::progress::Stage,
    mut each: impl FnMut(&T) -> Result<Option<R>, PipelineError> + Send,
) -> Result<(), PipelineError> {
    pipelined(
        table,
        move |emit| {
            db.for_each_ref::<T, PipelineError, _>(|row| match each(row)? {
                Some(r) => emit(r),
                None => Ok(()),
            })
            .map(|_| ())
        },
        |r| {
            crate::interrupt::check()?;
            sink.push(&r)?;
            stage.inc(1);
            Ok(())
        },
    )
}

/// Writes the v2 archive tree (and carries the v1 tree) when asked; a dry run writes into a
/// temporary folder that is removed afterwards.
fn archives(
    source: &Source,
    opts: &MigrateOptions,
    dest: &ArchiveDest,
    marks: Option<ArchiveMarks>,
    progress: &mut Progress,
) -> Result<Option<ArchiveCounts>, PipelineError> {
    // Both are there exactly when `--archives-v2` is given.
    let (Some(root), Some(marks)) = (dest.path(), marks) else {
        return Ok(None);
    };
    let (plan, db) = (&source.plan, &source.db);
    // One file per written member and prayer as the bar's length; the carried v1 files are
    // counted when the copy ends.
    let mut stage = progress.start("archives", plan.v2_rows("user") + plan.v2_rows("prayer"));
    // The plan keeps its users in a temporary file; the archive stage needs every name at hand.
    let mut users: Vec<ResolvedUser> = plan.users().collect::<Result<_, _>>()?;
    users.extend(plan.recovery().users.iter().map(|r| r.user.clone()));
    let names: HashMap<&str, &str> = users
        .iter()
        .map(|u| (u.id.as_str(), u.display_name.as_str()))
        .collect();
    let mut writer = V2ArchiveWriter::new(root, V2WriteOptions::default())?;
    for u in &users {
        let inviter = u
            .invited_by_user_id
            .as_deref()
            .and_then(|id| names.get(id).copied());
        crate::interrupt::check()?;
        writer.add_user(&mapping::archive_user(u, inviter))?;
        stage.inc(1);
    }
    let mut marks = marks.into_by_prayer()?;
    let mut add_prayer = |p: &ResolvedPrayer, rowid: i64| -> Result<(), PipelineError> {
        let author = names.get(p.author_id.as_str()).copied().unwrap_or_default();
        let mut record = mapping::archive_prayer(p, author);
        marks.take(rowid, |m| {
            record.marks.push(ArchiveMark {
                marked_at: m.marked_at,
                marker_name: users[m.user as usize].display_name.clone(),
            });
        })?;
        writer.add_prayer(&record)?;
        stage.inc(1);
        Ok(())
    };
    db.for_each_ref::<PrayerRow, PipelineError, _>(|row| {
        crate::interrupt::check()?;
        match plan.resolve_prayer(row)? {
            Verdict::Write(p) => add_prayer(&p, row.rowid),
            Verdict::Skip => Ok(()),
        }
    })?;
    // The prayers recovered from the v1 tree, after every v1 rowid (`recovered_rowid`).
    for (k, r) in plan.recovery().prayers.iter().enumerate() {
        add_prayer(&r.prayer, crate::archive_marks::recovered_rowid(k))?;
    }
    let carried = match &opts.common.archives_v1 {
        Some(v1) => writer.carry_v1(v1)?.v1_files_copied,
        None => 0,
    };
    let done = writer.finish()?;
    stage.inc(carried);
    progress.finish(stage);
    Ok(Some(ArchiveCounts {
        v1_files_copied: carried,
        created: done.created,
        updated: done.updated,
        unchanged: done.unchanged,
        manifest_sha256: done.manifest_sha256,
    }))
}

/// Where a run writes its v2 archives. A folder that does not exist yet is built under a hidden
/// sibling name and renamed into place only after the data is committed, so a failed run never
/// leaves a half-made archive folder; an existing folder is updated in place (every file is
/// replaced atomically and the content is deterministic); a dry run writes to a temporary folder.
enum ArchiveDest {
    /// No archives asked for.
    None,
    /// Update an existing folder.
    InPlace(PathBuf),
    /// Build in `staging`, rename to `final_root` on publish (dropped: removed).
    Staged {
        staging: tempfile::TempDir,
        final_root: PathBuf,
    },
    /// A dry run's scratch folder.
    Scratch(tempfile::TempDir),
}

impl ArchiveDest {
    fn new(opts: &MigrateOptions) -> Result<Self, PipelineError> {
        let Some(root) = &opts.archives_v2 else {
            return Ok(ArchiveDest::None);
        };
        let unwritable =
            |path: &Path, e: std::io::Error| thywill_archive::ArchiveError::TargetUnwritable {
                path: path.to_path_buf(),
                source: e,
            };
        if opts.dry_run {
            return Ok(ArchiveDest::Scratch(
                tempfile::tempdir().map_err(|e| unwritable(&std::env::temp_dir(), e))?,
            ));
        }
        if root.exists() {
            return Ok(ArchiveDest::InPlace(root.clone()));
        }
        let parent = match root.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| unwritable(&parent, e))?;
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "archives".into());
        let prefix = format!(".{name}.partial-");
        remove_abandoned_staging(&parent, &prefix);
        let staging = tempfile::Builder::new()
            .prefix(&format!("{prefix}{}-", std::process::id()))
            .tempdir_in(&parent)
            .map_err(|e| unwritable(&parent, e))?;
        Ok(ArchiveDest::Staged {
            staging,
            final_root: root.clone(),
        })
    }

    fn path(&self) -> Option<&Path> {
        match self {
            ArchiveDest::None => None,
            ArchiveDest::InPlace(p) => Some(p),
            ArchiveDest::Staged { staging, .. } => Some(staging.path()),
            ArchiveDest::Scratch(t) => Some(t.path()),
        }
    }

    /// Moves a staged folder into place (after the commit); a no-op otherwise.
    fn publish(&self) -> Result<(), PipelineError> {
        if let ArchiveDest::Staged {
            staging,
            final_root,
        } = self
        {
            std::fs::rename(staging.path(), final_root).map_err(|e| {
                thywill_archive::ArchiveError::TargetUnwritable {
                    path: final_root.clone(),
                    source: e,
                }
            })?;
            // Make the new folder's entry durable.
            if let Some(parent) = final_root.parent() {
                let _ = std::fs::File::open(if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                })
                .and_then(|d| d.sync_all());
            }
        }
        Ok(())
    }
}

/// Removes the staging folders (`<prefix><pid>-<random>`) that runs killed before their publish
/// left beside the archive folder: those whose process no longer exists. A folder of a live run,
/// or one whose name carries no process id, is left alone.
fn remove_abandoned_staging(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid > 0 && !process_alive(pid) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed the staging folder of a run that was killed")
                }
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "could not remove an abandoned staging folder")
                }
            }
        }
    }
}

/// Whether process `pid` exists (signal 0 checks without sending anything).
fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
