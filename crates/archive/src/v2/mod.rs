//! v2 text archives (`spec/v2.md`, "v2 text archives"): the input records, their rendering, the
//! streaming full writer ([`V2ArchiveWriter`]) and the incremental operations of the v2
//! application ([`V2Archive`]).
//!
//! Paths returned by this module are relative to the v2 archive root, `/`-separated:
//! `users/<id>.txt`, `prayers/<id>.txt`, `activity/<YYYY-MM>.txt`, `community/<YYYY-MM>.txt`.

mod logs;
mod ops;
mod stream;

use std::fmt;

use chrono::{Datelike, NaiveDateTime, Timelike};

use crate::error::Result;
use crate::safety::{check_one_line, validate_id, whole_seconds};

pub use logs::{activity_path, community_path};
pub use ops::V2Archive;
pub use stream::{V2ArchiveWriter, V2WriteOptions, V2WriteReport};

/// Who invited a user, as the `Invited By:` line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitedBy {
    /// The inviter's display name.
    User(String),
    /// The user signed up without an invitation (`direct signup`).
    DirectSignup,
    /// v1 recorded nothing (`migrated from v1`).
    MigratedFromV1,
}

/// A v2 user as its archive shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveUser {
    /// 32-hex id (also the file name).
    pub id: String,
    /// Display name (one line).
    pub display_name: String,
    /// `christian`, `unspecified` or `other` (one line).
    pub religious_preference: String,
    /// The member's address, if any. Never written: the tree is a public record of the
    /// community, so the file says `on file` when there is one and `not provided` otherwise
    /// (`spec/v2.md`).
    pub email: Option<String>,
    /// The inviter.
    pub invited_by: InvitedBy,
    /// Registration time, UTC.
    pub created_at: NaiveDateTime,
}

/// One act of prayer on a prayer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMark {
    /// When, UTC.
    pub marked_at: NaiveDateTime,
    /// The marker's display name (one line).
    pub marker_name: String,
}

/// The answer of an answered prayer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveAnswer {
    /// When it was answered, UTC.
    pub answered_at: NaiveDateTime,
    /// The testimony, if any (may span lines).
    pub testimony: Option<String>,
}

/// A v2 prayer with everything its archive file shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePrayer {
    /// 32-hex id (also the file name).
    pub id: String,
    /// The author's display name (one line); also named in the community timeline.
    pub author_name: String,
    /// `all` or `christians_only` (one line).
    pub target_audience: String,
    /// Submission time, UTC.
    pub created_at: NaiveDateTime,
    /// The request (may span lines).
    pub text: String,
    /// The generated community prayer, if any (may span lines).
    pub generated_prayer: Option<String>,
    /// Every mark, in any order (rendered in time order).
    pub marks: Vec<ArchiveMark>,
    /// The answer, when answered.
    pub answer: Option<ArchiveAnswer>,
}

struct Rec<'a>(&'static str, &'a str);

impl fmt::Display for Rec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.0, self.1)
    }
}

impl ArchiveUser {
    /// Checks the id and every one-line field.
    pub fn validate(&self) -> Result<()> {
        let rec = Rec("user", &self.id);
        validate_id(&rec, &self.id)?;
        check_one_line(&rec, "display_name", &self.display_name)?;
        check_one_line(&rec, "religious_preference", &self.religious_preference)?;
        if let Some(email) = &self.email {
            check_one_line(&rec, "email", email)?;
        }
        if let InvitedBy::User(name) = &self.invited_by {
            check_one_line(&rec, "invited_by", name)?;
        }
        Ok(())
    }
}

impl ArchivePrayer {
    /// Checks the id and every one-line field, including the marks' names.
    pub fn validate(&self) -> Result<()> {
        let rec = Rec("prayer", &self.id);
        validate_id(&rec, &self.id)?;
        check_one_line(&rec, "author_name", &self.author_name)?;
        check_one_line(&rec, "target_audience", &self.target_audience)?;
        for mark in &self.marks {
            check_one_line(&rec, "marks.marker_name", &mark.marker_name)?;
        }
        Ok(())
    }

    /// The marks in the order the file shows them: time (whole seconds), then name.
    pub fn sorted_marks(&self) -> Vec<&ArchiveMark> {
        let mut marks: Vec<&ArchiveMark> = self.marks.iter().collect();
        marks.sort_by(|a, b| {
            (whole_seconds(&a.marked_at), &a.marker_name)
                .cmp(&(whole_seconds(&b.marked_at), &b.marker_name))
        });
        marks
    }
}

/// `users/<id>.txt` (the id must be valid: see [`ArchiveUser::validate`]).
pub fn user_path(id: &str) -> String {
    format!("users/{id}.txt")
}

/// `prayers/<id>.txt`.
pub fn prayer_path(id: &str) -> String {
    format!("prayers/{id}.txt")
}

/// Appends `2025-06-29T19:33:00` (sub-seconds dropped).
pub(crate) fn push_iso(out: &mut Vec<u8>, at: &NaiveDateTime) {
    let mut buf = [0u8; 19];
    let put = |buf: &mut [u8], v: u32, digits: usize| {
        let mut v = v;
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf[0..4], at.year().clamp(0, 9999) as u32, 4);
    buf[4] = b'-';
    put(&mut buf[5..7], at.month(), 2);
    buf[7] = b'-';
    put(&mut buf[8..10], at.day(), 2);
    buf[10] = b'T';
    put(&mut buf[11..13], at.hour(), 2);
    buf[13] = b':';
    put(&mut buf[14..16], at.minute(), 2);
    buf[16] = b':';
    put(&mut buf[17..19], at.second().min(59), 2);
    out.extend_from_slice(&buf);
}

/// Parses `2025-06-29T19:33:00`.
pub(crate) fn parse_iso(s: &str) -> Option<NaiveDateTime> {
    if s.len() != 19 {
        return None;
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()
}

fn line(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
    out.push(b'\n');
}

fn date_line(out: &mut Vec<u8>, label: &str, at: &NaiveDateTime) {
    out.extend_from_slice(label.as_bytes());
    push_iso(out, at);
    out.push(b'\n');
}

/// Renders `users/<id>.txt` (validates first).
pub fn render_user(user: &ArchiveUser) -> Result<Vec<u8>> {
    user.validate()?;
    let mut out = Vec::with_capacity(256);
    line(&mut out, &["User Registration"]);
    date_line(&mut out, "Date: ", &user.created_at);
    line(&mut out, &["User ID: ", &user.id]);
    line(&mut out, &["Display Name: ", &user.display_name]);
    line(
        &mut out,
        &["Religious Preference: ", &user.religious_preference],
    );
    line(
        &mut out,
        &[
            "Email: ",
            if user.email.is_some() {
                "on file"
            } else {
                "not provided"
            },
        ],
    );
    let inviter = match &user.invited_by {
        InvitedBy::User(name) => name.as_str(),
        InvitedBy::DirectSignup => "direct signup",
        InvitedBy::MigratedFromV1 => "migrated from v1",
    };
    line(&mut out, &["Invited By: ", inviter]);
    line(&mut out, &[]);
    line(&mut out, &["Registration completed successfully."]);
    Ok(out)
}

/// Renders `prayers/<id>.txt` (validates first). Marks appear in time order (ties by name).
pub fn render_prayer(prayer: &ArchivePrayer) -> Result<Vec<u8>> {
    prayer.validate()?;
    let mut out = Vec::with_capacity(512 + prayer.text.len() + prayer.marks.len() * 64);
    line(&mut out, &["Prayer Request"]);
    date_line(&mut out, "Date: ", &prayer.created_at);
    line(&mut out, &["Prayer ID: ", &prayer.id]);
    line(&mut out, &["Author: ", &prayer.author_name]);
    line(&mut out, &["Target Audience: ", &prayer.target_audience]);
    line(&mut out, &[]);
    line(&mut out, &["Request:"]);
    line(&mut out, &[&prayer.text]);
    line(&mut out, &[]);
    if let Some(generated) = &prayer.generated_prayer {
        line(&mut out, &["Generated Community Prayer:"]);
        line(&mut out, &[generated]);
        line(&mut out, &[]);
    }
    line(&mut out, &["Prayer request submitted successfully."]);
    if !prayer.marks.is_empty() {
        line(&mut out, &[]);
        for mark in prayer.sorted_marks() {
            out.extend_from_slice(b"Prayer Mark - ");
            push_iso(&mut out, &mark.marked_at);
            line(&mut out, &[": Prayed by ", &mark.marker_name]);
        }
    }
    if let Some(answer) = &prayer.answer {
        line(&mut out, &[]);
        date_line(&mut out, "PRAYER ANSWERED - ", &answer.answered_at);
        if let Some(testimony) = &answer.testimony {
            line(&mut out, &["Testimony: ", testimony]);
        }
        line(&mut out, &["Praise God for answered prayer!"]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
