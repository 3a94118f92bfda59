//! Target URLs: parsing and redaction.

use std::fmt;

use crate::error::{Error, Result};

/// Which database system a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Backend {
    /// `postgresql` or `sqlite` (as in the report's `target.backend`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A parsed `--v2-db` value. Its `Display` and `Debug` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// `postgresql://…` or `postgres://…`, kept verbatim for libpq.
    Postgres {
        /// The URL as given (contains the password: never print it).
        url: String,
        /// The password as written in the URL and percent-decoded, to scrub from messages.
        secrets: Vec<String>,
    },
    /// `sqlite://PATH`.
    SqliteFile(std::path::PathBuf),
    /// `sqlite://:memory:`.
    SqliteMemory,
}

impl Target {
    /// Parses a target URL: `postgresql://…`, `postgres://…`, `sqlite://PATH`, `sqlite://:memory:`.
    pub fn parse(url: &str) -> Result<Target> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: redact_url(url),
            reason: reason.to_string(),
        };
        if let Some(rest) = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
        {
            if url.contains('\0') {
                return Err(bad("contains a NUL byte"));
            }
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let has_host_param = rest
                .split_once('?')
                .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("host=")));
            if host.is_empty() && !has_host_param {
                return Err(bad("no host"));
            }
            let target = Target::Postgres {
                url: url.to_string(),
                secrets: secrets_of(url),
            };
            match libpq_parse_error(url) {
                Some(reason) => Err(bad(&target.scrub(&reason))),
                None => Ok(target),
            }
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(bad("no file path after sqlite://"));
            }
            if path.contains('\0') {
                return Err(bad("contains a NUL byte"));
            }
            if path == ":memory:" {
                Ok(Target::SqliteMemory)
            } else {
                Ok(Target::SqliteFile(path.into()))
            }
        } else {
            Err(bad("unknown scheme"))
        }
    }

    /// The backend of this target.
    pub fn backend(&self) -> Backend {
        match self {
            Target::Postgres { .. } => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// The URL with the password replaced by `***` (what every message shows).
    pub fn redacted(&self) -> String {
        match self {
            Target::Postgres { url, .. } => redact_url(url),
            Target::SqliteFile(p) => format!("sqlite://{}", p.display()),
            Target::SqliteMemory => "sqlite://:memory:".into(),
        }
    }

    /// Replaces every occurrence of this target's password in `message` by `***` (for driver
    /// messages, which may echo the connection string).
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        if let Target::Postgres { url, secrets } = self {
            out = out.replace(url.as_str(), &redact_url(url));
            for s in secrets {
                if !s.is_empty() {
                    out = out.replace(s.as_str(), "***");
                }
            }
        }
        out
    }
}

/// What libpq says is wrong with the syntax of `url` (`PQconninfoParse`: no connection is made),
/// or `None` when libpq accepts it. A URL libpq cannot parse is a usage error (exit 2), not an
/// unreachable server.
fn libpq_parse_error(url: &str) -> Option<String> {
    let c_url = std::ffi::CString::new(url).ok()?;
    let mut message: *mut std::ffi::c_char = std::ptr::null_mut();
    // SAFETY: `c_url` is a valid NUL-terminated string for the call; libpq allocates the options
    // and the message, both freed here with libpq's own functions, and nothing is kept.
    unsafe {
        let options = pq_sys::PQconninfoParse(c_url.as_ptr(), &mut message);
        if !options.is_null() {
            pq_sys::PQconninfoFree(options);
        }
        if message.is_null() {
            return None;
        }
        let text = std::ffi::CStr::from_ptr(message)
            .to_string_lossy()
            .trim()
            .to_string();
        pq_sys::PQfreemem(message.cast());
        Some(text)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.redacted())
    }
}

/// The URL with its password (userinfo and `password=` parameter) replaced by `***`. Works on any
/// string shaped like a URL; used for every message that shows a target.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return url.to_string(),
    };
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.find('/') {
        Some(i) => (&main[..i], &main[i..]),
        None => (main, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let q: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
}

fn secrets_of(url: &str) -> Vec<String> {
    let mut raw = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let (main, query) = rest
            .split_once('?')
            .map_or((rest, None), |(m, q)| (m, Some(q)));
        let authority = main.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, pw)) = userinfo.split_once(':') {
                raw.push(pw.to_string());
            }
        }
        for kv in query.unwrap_or("").split('&') {
            if let Some((k, v)) = kv.split_once('=') {
                if k.eq_ignore_ascii_case("password") {
                    raw.push(v.to_string());
                }
            }
        }
    }
    let mut all = Vec::new();
    for s in raw {
        let decoded = percent_decode(&s);
        if decoded != s {
            all.push(decoded);
        }
        all.push(s);
    }
    // Longest first so that a secret containing another is scrubbed whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        let t = Target::parse("postgresql://thywill:s3cr%40t@127.0.0.1:5432/v2").unwrap();
        assert_eq!(t.backend(), Backend::Postgres);
        assert_eq!(t.to_string(), "postgresql://thywill:***@127.0.0.1:5432/v2");
        assert!(!format!("{t:?}").contains("s3cr"));
        assert_eq!(t.scrub("echo s3cr@t and s3cr%40t"), "echo *** and ***");
        let t = Target::parse("postgres://u@h/db?password=pw&sslmode=disable").unwrap();
        assert_eq!(
            t.to_string(),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            Target::parse("sqlite://:memory:").unwrap(),
            Target::SqliteMemory
        );
        assert_eq!(
            Target::parse("sqlite://a/b.db").unwrap(),
            Target::SqliteFile("a/b.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/x.db").unwrap(),
            Target::SqliteFile("/tmp/x.db".into())
        );
    }

    #[test]
    fn refuses_bad_urls_without_leaking() {
        for bad in [
            "mysql://u:pw@h/db",
            "sqlite://",
            "postgresql://u:pw@/db",
            "thywill.db",
            "",
            // Syntax only libpq knows to be wrong: usage (2), not an unreachable server (3).
            "postgresql://[::1",
            "postgresql://u:Pa55w0rd@[::1/db",
            "postgresql://u:pw@h/db?sslmode",
            "postgresql://u:pw@h/db?nonsense=1",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(!e.to_string().contains(":pw"), "{e}");
            assert!(!e.to_string().contains("Pa55w0rd"), "{e}");
        }
        for good in [
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql://u:p%40ss@[::1]:5432/db?sslmode=disable",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert!(Target::parse(good).is_ok(), "{good}");
        }
    }
}
