//! The v1 logs, read by one parser: a header `<Title> for <Month YYYY>` (the sessions files add
//! ` (exported <time>)`; an export-all file's is `<Title> (exported <time>)`), then lines that
//! are blank, a `Format: …` line, a day header `<Month DD YYYY>` (activity logs) or a record of
//! the file's kind; a file whose header ends `\r\n` is read with that line ending. Each kind
//! only says how one record line reads and renders ([`V1LogFormat`]): `users/` and `activity/`
//! here, the `|`-separated ones in `logs.rs`.

use std::io::BufRead;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::parse_error;
use super::time::{parse_day, parse_month_year, V1Time};
use super::{unreadable, Result};
use crate::V1Error;

/// How one kind of monthly log reads and renders its record lines.
pub trait V1LogFormat {
    /// The record of one line.
    type Record: Clone + std::fmt::Debug + PartialEq;
    /// What a record line looks like, for error messages.
    const EXPECTED: &'static str;
    /// Parses a record line; `day` is the last day header seen (activity logs). `None` when the
    /// line is not a record of this kind.
    fn parse(line: &str, day: Option<NaiveDate>) -> Option<Self::Record>;
    /// Renders a record line (without the newline).
    fn render(record: &Self::Record) -> String;
}

/// One line of a monthly log.
#[derive(Debug, Clone, PartialEq)]
pub enum V1LogLine<R> {
    /// An empty line.
    Blank,
    /// `Format: …` (the pipe-separated logs).
    Format(String),
    /// A day header `<Month DD YYYY>` as written, and its date.
    Day(String, NaiveDate),
    /// A record.
    Record(R),
    /// A line no shape of this log fits, as written (`R-ARCHIVE-UNREADABLE`: a finding of its
    /// own; the rest of the file is still read).
    Unreadable(String),
}

/// A parsed monthly log file.
#[derive(Debug, Clone, PartialEq)]
pub struct V1MonthlyLog<F: V1LogFormat> {
    /// The header line as written (without its line ending).
    pub header: String,
    /// The header's title (`User Registrations`, `Activity`, `Sessions` …).
    pub title: String,
    /// Year and month of the header (`None` for an export-all file, whose header names none).
    pub month: Option<(i32, u32)>,
    /// The lines after the header, in order.
    pub lines: Vec<V1LogLine<F::Record>>,
    /// Whether the file ends with a line ending (export-all files do not).
    pub final_newline: bool,
    /// Whether the header line ends `\r\n` (then every line's `\r` before `\n` is taken off,
    /// and put back on rendering).
    pub crlf: bool,
}

impl<F: V1LogFormat> V1MonthlyLog<F> {
    /// The records, in file order.
    pub fn records(&self) -> impl Iterator<Item = &F::Record> {
        self.lines.iter().filter_map(|l| match l {
            V1LogLine::Record(r) => Some(r),
            _ => None,
        })
    }

    /// The records with their 1-based line numbers.
    pub fn records_with_lines(&self) -> impl Iterator<Item = (usize, &F::Record)> {
        self.lines.iter().enumerate().filter_map(|(i, l)| match l {
            V1LogLine::Record(r) => Some((i + 2, r)),
            _ => None,
        })
    }

    /// Parses the file; `path` names it in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let mut lines = Vec::new();
        let header = read_log::<F>(path, bytes, |_, line| {
            lines.push(line);
            Ok(())
        })?;
        Ok(V1MonthlyLog {
            header: header.raw,
            title: header.title,
            month: header.month,
            lines,
            final_newline: header.final_newline,
            crlf: header.crlf,
        })
    }

    /// Renders the file back, byte for byte as parsed (a file that mixes `\n` and `\r\n`
    /// endings comes back with the header's ending on every line).
    pub fn render(&self) -> Vec<u8> {
        let end = if self.crlf { "\r\n" } else { "\n" };
        let mut out = self.header.clone();
        for line in &self.lines {
            out.push_str(end);
            match line {
                V1LogLine::Blank => {}
                V1LogLine::Format(f) => {
                    out.push_str("Format: ");
                    out.push_str(f);
                }
                V1LogLine::Day(raw, _) => out.push_str(raw),
                V1LogLine::Record(r) => out.push_str(&F::render(r)),
                V1LogLine::Unreadable(raw) => out.push_str(raw),
            }
        }
        if self.final_newline {
            out.push_str(end);
        }
        out.into_bytes()
    }
}

/// A monthly log's header and ending, as [`read_log`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogHeader {
    /// The header line as written.
    pub(crate) raw: String,
    /// The header's title.
    pub(crate) title: String,
    /// Year and month of the header, when it names one.
    pub(crate) month: Option<(i32, u32)>,
    /// Whether the file ends with a newline.
    pub(crate) final_newline: bool,
    /// Whether the header ends `\r\n`.
    pub(crate) crlf: bool,
}

/// Where a line of an archive file lies: its 1-based number and the byte offset of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePos {
    /// 1-based line number (the header is line 1).
    pub line: usize,
    /// Byte offset of the line's first byte.
    pub offset: u64,
}

/// Reads a monthly log from `input` one line at a time (never the whole file at once), handing
/// every line after the header to `each`. The errors are those of parsing the whole file: a byte
/// that is not UTF-8 is reported (with its line) even when an earlier line has the wrong shape,
/// as the file's text is checked before its lines; `each` is not called after the first error,
/// and an error of `each` ends the reading. Only the header can make the file unreadable: a
/// later line no shape fits is handed over as [`V1LogLine::Unreadable`].
pub(crate) fn read_log<F: V1LogFormat>(
    path: &Path,
    mut input: impl BufRead,
    mut each: impl FnMut(LinePos, V1LogLine<F::Record>) -> Result<()>,
) -> Result<LogHeader> {
    let io_error = |e| unreadable(path, e);
    let mut buf = Vec::new();
    let mut pos = LinePos { line: 0, offset: 0 };
    let mut header: Option<LogHeader> = None;
    let mut shape_error: Option<V1Error> = None;
    let mut day = None;
    let mut final_newline = false;
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).map_err(io_error)?;
        if n == 0 && pos.line > 0 {
            break;
        }
        pos.line += 1;
        final_newline = buf.last() == Some(&b'\n');
        let mut line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let crlf = header.as_ref().map_or(line.ends_with(b"\r"), |h| h.crlf);
        if crlf {
            line = line.strip_suffix(b"\r").unwrap_or(line);
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| parse_error(path, pos.line, "bytes that are not UTF-8"))?;
        if shape_error.is_none() {
            let parsed = match header {
                None => parse_header(path, line, crlf).map(|h| {
                    header = Some(h);
                    None
                }),
                Some(_) => parse_line::<F>(path, pos.line, line, &mut day).map(Some),
            };
            match parsed {
                Ok(Some(l)) => each(pos, l)?,
                Ok(None) => {}
                Err(e) => shape_error = Some(e),
            }
        }
        pos.offset += n as u64;
        if n == 0 || !final_newline {
            break;
        }
    }
    if let Some(e) = shape_error {
        return Err(e);
    }
    let mut header = header.ok_or_else(|| parse_error(path, 1, HEADER))?;
    header.final_newline = final_newline;
    Ok(header)
}

const HEADER: &str =
    "expected the header `<Title> for <Month YYYY>` or `<Title> (exported <time>)`";

/// `<Title> for <Month YYYY>`, optionally followed by ` (exported <time>)` (the sessions files),
/// or `<Title> (exported <time>)` (the export-all files).
fn parse_header(path: &Path, line: &str, crlf: bool) -> Result<LogHeader> {
    let (body, exported) = match line.rfind(" (exported ") {
        Some(i) if line.ends_with(')') => (&line[..i], true),
        _ => (line, false),
    };
    let header = |title: &str, month| LogHeader {
        raw: line.to_string(),
        title: title.to_string(),
        month,
        final_newline: false,
        crlf,
    };
    if let Some((title, month_text)) = body.rsplit_once(" for ") {
        if let Some(month) = parse_month_year(month_text) {
            return Ok(header(title, Some(month)));
        }
    }
    if exported && !body.is_empty() {
        return Ok(header(body, None));
    }
    Err(parse_error(path, 1, HEADER))
}

/// One line after the header; `day` is the last day header seen, updated by a day header.
fn parse_line<F: V1LogFormat>(
    path: &Path,
    number: usize,
    line: &str,
    day: &mut Option<NaiveDate>,
) -> Result<V1LogLine<F::Record>> {
    Ok(if line.is_empty() {
        V1LogLine::Blank
    } else if let Some(record) = F::parse(line, *day) {
        V1LogLine::Record(record)
    } else if let Some(format) = line.strip_prefix("Format: ") {
        V1LogLine::Format(format.to_string())
    } else if let Some(d) = parse_day(line) {
        *day = Some(d);
        V1LogLine::Day(line.to_string(), d)
    } else {
        tracing::debug!(
            path = %path.display(),
            line = number,
            "unreadable archive line (expected {})",
            F::EXPECTED
        );
        V1LogLine::Unreadable(line.to_string())
    })
}

/// `users/YYYY_MM_users.txt` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Registration {
    /// When.
    pub at: V1Time,
    /// The new member's display name.
    pub name: String,
    /// The inviter's name (`joined on invitation from <inviter>`), `None` for `joined directly`.
    pub inviter: Option<String>,
}

/// The format of `users/YYYY_MM_users.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Registrations;

const INVITED: &str = " joined on invitation from ";
const DIRECT: &str = " joined directly";

impl V1LogFormat for Registrations {
    type Record = V1Registration;
    const EXPECTED: &'static str =
        "`<time> - <name> joined on invitation from <inviter>` or `<time> - <name> joined directly`";

    fn parse(line: &str, _: Option<NaiveDate>) -> Option<V1Registration> {
        let (time, rest) = line.split_once(" - ")?;
        let at = V1Time::parse(time)?;
        if let Some((name, inviter)) = rest.split_once(INVITED) {
            return Some(V1Registration {
                at,
                name: name.into(),
                inviter: Some(inviter.into()),
            });
        }
        let name = rest.strip_suffix(DIRECT)?;
        Some(V1Registration {
            at,
            name: name.into(),
            inviter: None,
        })
    }

    fn render(r: &V1Registration) -> String {
        match &r.inviter {
            Some(inviter) => format!("{} - {}{INVITED}{inviter}", r.at.raw, r.name),
            None => format!("{} - {}{DIRECT}", r.at.raw, r.name),
        }
    }
}

/// `activity/activity_YYYY_MM.txt` lines: `HH:MM - <name> <action>` under a day header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1ActivityEntry {
    /// `HH:MM` as written.
    pub time: String,
    /// The day header's date joined with the time (`None` before any day header).
    pub at: Option<NaiveDateTime>,
    /// `<name> <action>` as written (v1 does not delimit the name).
    pub text: String,
}

/// The format of `activity/activity_YYYY_MM.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityLog;

impl V1LogFormat for ActivityLog {
    type Record = V1ActivityEntry;
    const EXPECTED: &'static str = "a day header `<Month DD YYYY>` or `HH:MM - <name> <action>`";

    fn parse(line: &str, day: Option<NaiveDate>) -> Option<V1ActivityEntry> {
        let (time, text) = line.split_once(" - ")?;
        let t = NaiveTime::parse_from_str(time, "%H:%M")
            .ok()
            .filter(|_| time.len() == 5)?;
        Some(V1ActivityEntry {
            time: time.into(),
            at: day.map(|d| d.and_time(t)),
            text: text.into(),
        })
    }

    fn render(r: &V1ActivityEntry) -> String {
        format!("{} - {}", r.time, r.text)
    }
}
