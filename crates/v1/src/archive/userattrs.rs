//! `users/user_attributes.txt` (written by `thywill export-all`, meant to be hand-edited):
//! a header `User Attributes` (optionally ` (exported <time>)`, and a `Format: …` line), a blank
//! line, then one block of `key: value` lines per member, each opened by `username: <name>` and
//! closed by a blank line.

use std::path::Path;

use super::{parse_error, text_of, Result};

/// One line of the file after its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V1AttributeLine {
    /// An empty line.
    Blank,
    /// `Format: …`.
    Format(String),
    /// `<key>: <value>`.
    Field(String, String),
    /// A line that is no `key: value` (`R-ARCHIVE-UNREADABLE`; the rest is read).
    Unreadable(String),
}

/// One member's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1UserAttributes {
    /// The `username:` value.
    pub username: String,
    /// 1-based line of the `username:` line.
    pub line: usize,
    /// The block's other fields in file order (`is_supporter`, `supporter_since`, …).
    pub fields: Vec<(String, String)>,
}

impl V1UserAttributes {
    /// The value of field `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed `users/user_attributes.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1UserAttributesFile {
    /// The header line as written.
    pub header: String,
    /// The lines after the header.
    pub lines: Vec<V1AttributeLine>,
    /// Whether the file ends with a newline.
    pub final_newline: bool,
}

impl V1UserAttributesFile {
    /// Parses the file; `path` names it in errors (only a header that is not `User Attributes…`
    /// or bytes that are not UTF-8 make the whole file unreadable).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let text = text_of(path, bytes)?;
        let final_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let mut lines = body.split('\n');
        let header = lines.next().unwrap_or("");
        if !header.starts_with("User Attributes") {
            return Err(parse_error(
                path,
                1,
                "expected the header `User Attributes`",
            ));
        }
        let lines = lines
            .map(|l| {
                if l.is_empty() {
                    V1AttributeLine::Blank
                } else if let Some(f) = l.strip_prefix("Format: ") {
                    V1AttributeLine::Format(f.into())
                } else if let Some((k, v)) = l.split_once(": ") {
                    V1AttributeLine::Field(k.into(), v.into())
                } else {
                    V1AttributeLine::Unreadable(l.into())
                }
            })
            .collect();
        Ok(V1UserAttributesFile {
            header: header.into(),
            lines,
            final_newline,
        })
    }

    /// The members' blocks, in file order (fields before any `username:` line are not in one).
    pub fn users(&self) -> Vec<V1UserAttributes> {
        let mut out: Vec<V1UserAttributes> = Vec::new();
        let mut open = false;
        for (i, line) in self.lines.iter().enumerate() {
            match line {
                V1AttributeLine::Field(k, v) if k == "username" => {
                    out.push(V1UserAttributes {
                        username: v.clone(),
                        line: i + 2,
                        fields: Vec::new(),
                    });
                    open = true;
                }
                V1AttributeLine::Field(k, v) if open => {
                    if let Some(u) = out.last_mut() {
                        u.fields.push((k.clone(), v.clone()));
                    }
                }
                V1AttributeLine::Blank => open = false,
                _ => {}
            }
        }
        out
    }

    /// The lines no shape fits, with their 1-based numbers (a field outside a block included).
    pub fn unreadable(&self) -> Vec<(usize, String)> {
        let mut open = false;
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            match line {
                V1AttributeLine::Unreadable(l) => out.push((i + 2, l.clone())),
                V1AttributeLine::Field(k, _) if k == "username" => open = true,
                V1AttributeLine::Field(k, v) if !open => out.push((i + 2, format!("{k}: {v}"))),
                V1AttributeLine::Blank => open = false,
                _ => {}
            }
        }
        out
    }

    /// Renders the file back, byte for byte as parsed.
    pub fn render(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        for line in &self.lines {
            out.push('\n');
            match line {
                V1AttributeLine::Blank => {}
                V1AttributeLine::Format(f) => {
                    out.push_str("Format: ");
                    out.push_str(f);
                }
                V1AttributeLine::Field(k, v) => {
                    out.push_str(k);
                    out.push_str(": ");
                    out.push_str(v);
                }
                V1AttributeLine::Unreadable(l) => out.push_str(l),
            }
        }
        if self.final_newline {
            out.push('\n');
        }
        out.into_bytes()
    }
}
