//! v1 prayer files: `prayers/YYYY/MM/YYYY_MM_DD_prayer_at_HHMM[_N].txt`.
//!
//! Layout read and re-rendered byte for byte:
//! ```text
//! Prayer <id> by <author>
//! Submitted <time>
//! <Key>: <value>            (0 or more metadata lines: Project, Audience, …)
//!
//! <request text, any number of lines>
//!
//! Generated Prayer:         (optional block)
//! <generated text>
//!
//! Activity:                 (optional section, always last)
//! <time> - <name> <action>
//! ```
//!
//! Every activity wording of `spec/v1-real.md` §2 is read: the live ones (`prayed this prayer`,
//! `marked this prayer as answered`, `added testimony: …` with its continuation lines,
//! `archived`/`restored this prayer`) and the ones only `thywill heal-archives` wrote
//! (`set … to '…'`, `set … from '…' to '…'`, `removed … (was '…')`, `flagged this prayer`,
//! and the generic `<name> <action>`). A `\r` is kept where v1 left it (in a testimony); a file
//! whose first line ends `\r\n` is read with `\r\n` as its line ending. A line of the
//! section that is no activity line and continues no testimony is kept as unreadable
//! ([`V1PrayerFile::unreadable`]); the rest of the file is still read.

use std::path::Path;

use super::time::V1Time;
use super::Result;
use super::{parse_error, text_of};

/// What an activity line of a prayer file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1Action {
    /// `prayed this prayer`.
    Prayed,
    /// `marked this prayer as answered`.
    MarkedAnswered,
    /// `added testimony: <text>` (continuation lines of a multi-line testimony included).
    Testimony(String),
    /// `archived this prayer`.
    Archived,
    /// `restored this prayer`.
    Restored,
    /// `flagged this prayer`.
    Flagged,
    /// `removed <attribute> (was '<old>')` (heal-archives).
    Removed {
        /// The attribute's name.
        name: String,
        /// The value it had.
        old: String,
    },
    /// Any other `<name> <action>` (heal-archives' generic line): the whole text after
    /// `<time> - `, as v1 does not delimit the name (the activity's `name` is then empty).
    Other(String),
    /// `set <attribute> to '<value>'` or `set <attribute> from '<old>' to '<value>'`.
    SetAttribute {
        /// The attribute's name.
        name: String,
        /// The previous value, when the line names one.
        old: Option<String>,
        /// The new value.
        value: String,
    },
}

/// One line of a prayer file's `Activity:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1PrayerActivity {
    /// 1-based line number in the file (the first line of a multi-line testimony).
    pub line: usize,
    /// When.
    pub at: V1Time,
    /// Who (display name as written).
    pub name: String,
    /// What.
    pub action: V1Action,
}

/// A parsed v1 prayer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1PrayerFile {
    /// The prayer id as written (not normalised).
    pub id: String,
    /// The author's display name.
    pub author: String,
    /// The `Submitted` time.
    pub submitted: V1Time,
    /// `Key: value` lines after `Submitted`, in file order (`Project`, `Audience`, …).
    pub metadata: Vec<(String, String)>,
    /// The request text (lines joined with `\n`, no final newline).
    pub text: String,
    /// The generated prayer block's text, when present.
    pub generated_prayer: Option<String>,
    /// The `Activity:` section, when present.
    pub activity: Option<Vec<V1PrayerActivity>>,
    /// Lines of the activity section no shape fits, with their 1-based numbers
    /// (`R-ARCHIVE-UNREADABLE`).
    pub unreadable: Vec<(usize, String)>,
    /// Whether the file's lines end `\r\n` (judged by its first line).
    pub crlf: bool,
}

const GENERATED: &str = "\n\nGenerated Prayer:\n";
const ACTIVITY: &str = "\n\nActivity:\n";

const FIXED_ACTIONS: [(&str, V1Action); 5] = [
    (" prayed this prayer", V1Action::Prayed),
    (" marked this prayer as answered", V1Action::MarkedAnswered),
    (" archived this prayer", V1Action::Archived),
    (" restored this prayer", V1Action::Restored),
    (" flagged this prayer", V1Action::Flagged),
];
const TESTIMONY: &str = " added testimony: ";

impl V1PrayerFile {
    /// The value of a metadata key (`Project`, `Audience`).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a prayer file; `path` names it in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let text = text_of(path, bytes)?;
        let crlf = text.split('\n').next().is_some_and(|l| l.ends_with('\r'));
        let lf;
        let text = if crlf {
            lf = text.replace("\r\n", "\n");
            lf.as_str()
        } else {
            text
        };
        let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
        let mut lines = text.split_inclusive('\n');
        let first = lines.next().unwrap_or("");
        let (id, author) = first
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("Prayer "))
            .and_then(|l| l.split_once(" by "))
            .ok_or_else(|| parse_error(path, 1, "expected `Prayer <id> by <author>`"))?;
        let second = lines.next().unwrap_or("");
        let submitted = second
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("Submitted "))
            .and_then(V1Time::parse)
            .ok_or_else(|| parse_error(path, 2, "expected `Submitted <Month DD YYYY at HH:MM>`"))?;
        let mut offset = first.len() + second.len();
        let mut metadata = Vec::new();
        loop {
            let Some(line) = lines.next() else {
                return Err(parse_error(
                    path,
                    line_at(offset),
                    "missing the blank line after the header",
                ));
            };
            offset += line.len();
            if line == "\n" {
                break;
            }
            let kv = line.strip_suffix('\n').and_then(|l| l.split_once(": "));
            let Some((k, v)) = kv else {
                return Err(parse_error(
                    path,
                    line_at(offset - line.len()),
                    "expected a `Key: value` header line",
                ));
            };
            metadata.push((k.to_string(), v.to_string()));
        }
        let body_start = offset;
        let body = &text[body_start..];
        // `text\n` + optional generated block, then the optional activity section (last).
        let (pre, activity) = match body.rfind(ACTIVITY) {
            Some(i) => (
                &body[..i + 1],
                Some((body_start + i + ACTIVITY.len(), &body[i + ACTIVITY.len()..])),
            ),
            None => (body, None),
        };
        let Some(pre) = pre.strip_suffix('\n') else {
            return Err(parse_error(
                path,
                line_at(text.len()),
                "the request text does not end with a newline",
            ));
        };
        let (request, generated_prayer) = match pre.find(GENERATED) {
            Some(i) => (&pre[..i], Some(pre[i + GENERATED.len()..].to_string())),
            None => (pre, None),
        };
        let mut unreadable = Vec::new();
        let activity = match activity {
            None => None,
            Some((start, section)) => Some(parse_activity(
                path,
                section,
                line_at(start),
                &mut unreadable,
            )?),
        };
        Ok(V1PrayerFile {
            id: id.to_string(),
            author: author.to_string(),
            submitted,
            metadata,
            text: request.to_string(),
            generated_prayer,
            activity,
            unreadable,
            crlf,
        })
    }

    /// The `prayed this prayer` lines (one per act of prayer), in file order.
    pub fn prayed(&self) -> impl Iterator<Item = &V1PrayerActivity> {
        self.activity
            .iter()
            .flatten()
            .filter(|a| a.action == V1Action::Prayed)
    }

    /// Renders the file back, byte for byte as parsed.
    pub fn render(&self) -> Vec<u8> {
        let mut out = format!(
            "Prayer {} by {}\nSubmitted {}\n",
            self.id, self.author, self.submitted.raw
        );
        for (k, v) in &self.metadata {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        out.push_str(&self.text);
        if let Some(generated) = &self.generated_prayer {
            out.push_str(GENERATED);
            out.push_str(generated);
        }
        out.push('\n');
        if let Some(activity) = &self.activity {
            out.push_str(&ACTIVITY[1..]);
            let mut lines: Vec<(usize, String)> = activity
                .iter()
                .map(|a| {
                    let text = match &a.action {
                        V1Action::Other(rest) => format!("{} - {rest}", a.at.raw),
                        action => format!("{} - {}{}", a.at.raw, a.name, render_action(action)),
                    };
                    (a.line, text)
                })
                .chain(self.unreadable.iter().cloned())
                .collect();
            lines.sort_by_key(|l| l.0);
            for (_, text) in lines {
                out.push_str(&text);
                out.push('\n');
            }
        }
        if self.crlf {
            out = out.replace('\n', "\r\n");
        }
        out.into_bytes()
    }
}

fn render_action(action: &V1Action) -> String {
    match action {
        V1Action::Testimony(t) => format!("{TESTIMONY}{t}"),
        V1Action::SetAttribute {
            name,
            old: None,
            value,
        } => format!(" set {name} to '{value}'"),
        V1Action::SetAttribute {
            name,
            old: Some(old),
            value,
        } => {
            format!(" set {name} from '{old}' to '{value}'")
        }
        V1Action::Removed { name, old } => format!(" removed {name} (was '{old}')"),
        V1Action::Other(rest) => format!(" {rest}"),
        fixed => FIXED_ACTIONS
            .iter()
            .find(|(_, a)| a == fixed)
            .map(|(s, _)| s.to_string())
            .unwrap_or_default(),
    }
}

fn parse_set(rest: &str) -> Option<(String, V1Action)> {
    let inner = rest.strip_suffix('\'')?;
    for (pos, _) in rest.match_indices(" set ") {
        let after = &inner[pos + 5..];
        let Some((attr, tail)) = after.split_once(' ') else {
            continue;
        };
        if attr.is_empty() {
            continue;
        }
        let (old, value) = if let Some(v) = tail.strip_prefix("to '") {
            (None, v)
        } else if let Some((o, v)) = tail
            .strip_prefix("from '")
            .and_then(|t| t.split_once("' to '"))
        {
            (Some(o.to_string()), v)
        } else {
            continue;
        };
        let action = V1Action::SetAttribute {
            name: attr.to_string(),
            old,
            value: value.to_string(),
        };
        return Some((rest[..pos].to_string(), action));
    }
    None
}

/// `removed <attribute> (was '<old>')` at the end of `rest`: (name, action).
fn parse_removed(rest: &str) -> Option<(String, V1Action)> {
    let inner = rest.strip_suffix("')")?;
    for (pos, _) in rest.match_indices(" removed ") {
        let Some((attr, old)) = inner[pos + 9..].split_once(" (was '") else {
            continue;
        };
        if attr.is_empty() || attr.contains(' ') {
            continue;
        }
        let action = V1Action::Removed {
            name: attr.to_string(),
            old: old.to_string(),
        };
        return Some((rest[..pos].to_string(), action));
    }
    None
}

fn parse_action_line(line: &str, number: usize) -> Option<V1PrayerActivity> {
    let (time, rest) = line.split_once(" - ")?;
    let at = V1Time::parse(time)?;
    // the member is all of the text before the wording, never its first word
    let (name, action) = if let Some((name, t)) = rest.split_once(TESTIMONY) {
        (name.to_string(), V1Action::Testimony(t.to_string()))
    } else if let Some((suffix, action)) = FIXED_ACTIONS.iter().find(|(s, _)| rest.ends_with(s)) {
        (
            rest[..rest.len() - suffix.len()].to_string(),
            action.clone(),
        )
    } else if let Some(parsed) = parse_set(rest).or_else(|| parse_removed(rest)) {
        parsed
    } else if !rest.is_empty() {
        (String::new(), V1Action::Other(rest.to_string()))
    } else {
        return None;
    };
    Some(V1PrayerActivity {
        line: number,
        at,
        name,
        action,
    })
}

fn parse_activity(
    path: &Path,
    section: &str,
    first_line: usize,
    unreadable: &mut Vec<(usize, String)>,
) -> Result<Vec<V1PrayerActivity>> {
    let mut out: Vec<V1PrayerActivity> = Vec::new();
    if section.is_empty() {
        return Ok(out);
    }
    let Some(section) = section.strip_suffix('\n') else {
        return Err(parse_error(
            path,
            first_line + section.matches('\n').count(),
            "the activity section does not end with a newline",
        ));
    };
    // whether the last line read belongs to a testimony (its continuation lines follow it)
    let mut in_testimony = false;
    for (i, line) in section.split('\n').enumerate() {
        if let Some(a) = parse_action_line(line, first_line + i) {
            in_testimony = matches!(a.action, V1Action::Testimony(_));
            out.push(a);
            continue;
        }
        match out.last_mut().map(|a| &mut a.action) {
            Some(V1Action::Testimony(t)) if in_testimony => {
                t.push('\n');
                t.push_str(line);
            }
            _ => {
                tracing::debug!(
                    path = %path.display(),
                    line = first_line + i,
                    "unreadable activity line (expected `<Month DD YYYY at HH:MM> - <name> <action>`)"
                );
                unreadable.push((first_line + i, line.to_string()));
            }
        }
    }
    Ok(out)
}
