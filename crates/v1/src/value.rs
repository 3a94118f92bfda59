//! Raw SQLite values exactly as v1 stored them.

use std::borrow::Cow;
use std::fmt;

/// One value as SQLite stored it: the storage class is kept and text bytes need not be UTF-8.
#[derive(Clone, PartialEq)]
pub enum V1Value {
    /// SQL NULL (also used for a column the file does not have).
    Null,
    /// INTEGER storage class.
    Integer(i64),
    /// REAL storage class.
    Real(f64),
    /// TEXT storage class; the bytes as stored, possibly not valid UTF-8.
    Text(Vec<u8>),
    /// BLOB storage class.
    Blob(Vec<u8>),
}

/// SQLite's storage classes, for reports and rule decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageClass {
    /// NULL.
    Null,
    /// INTEGER.
    Integer,
    /// REAL.
    Real,
    /// TEXT.
    Text,
    /// BLOB.
    Blob,
}

impl V1Value {
    /// Convenience constructor for a text value.
    pub fn text(s: &str) -> Self {
        V1Value::Text(s.as_bytes().to_vec())
    }

    /// The storage class SQLite recorded.
    pub fn storage_class(&self) -> StorageClass {
        match self {
            V1Value::Null => StorageClass::Null,
            V1Value::Integer(_) => StorageClass::Integer,
            V1Value::Real(_) => StorageClass::Real,
            V1Value::Text(_) => StorageClass::Text,
            V1Value::Blob(_) => StorageClass::Blob,
        }
    }

    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, V1Value::Null)
    }

    /// The text when the value is TEXT holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            V1Value::Text(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// True when the value is TEXT whose bytes are not valid UTF-8.
    pub fn is_invalid_utf8_text(&self) -> bool {
        matches!(self, V1Value::Text(b) if std::str::from_utf8(b).is_err())
    }

    /// The value as text, decoding invalid UTF-8 with U+FFFD; numbers are formatted, BLOB bytes
    /// are decoded the same way as text. `None` for NULL.
    pub fn to_text_lossy(&self) -> Option<Cow<'_, str>> {
        match self {
            V1Value::Null => None,
            V1Value::Integer(i) => Some(Cow::Owned(i.to_string())),
            V1Value::Real(r) => Some(Cow::Owned(r.to_string())),
            // Valid UTF-8 (nearly every value) takes `from_utf8`'s fast path; the lossy
            // decoder's chunk iterator only for the rest.
            V1Value::Text(b) | V1Value::Blob(b) => Some(match std::str::from_utf8(b) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(b),
            }),
        }
    }

    /// Interprets v1's 0/1 booleans (also `'true'`/`'false'` text written by hand).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            V1Value::Integer(i) => Some(*i != 0),
            V1Value::Real(r) => Some(*r != 0.0),
            V1Value::Text(_) => match self.as_str()?.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "t" | "yes" => Some(true),
                "0" | "false" | "f" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The value as an integer when it is INTEGER or integral text.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            V1Value::Integer(i) => Some(*i),
            V1Value::Text(_) => self.as_str()?.trim().parse().ok(),
            _ => None,
        }
    }

    /// The key as text per `spec/interfaces.md`: valid UTF-8 text as is, numbers formatted,
    /// a BLOB, non-UTF-8 text or text holding a NUL byte (which v2 cannot store, so a finding
    /// keyed by it could not be written) as `x'<hex>'`. `None` for NULL (callers write
    /// `rowid:<n>`).
    pub fn key_text(&self) -> Option<String> {
        match self {
            V1Value::Null => None,
            V1Value::Integer(i) => Some(i.to_string()),
            V1Value::Real(r) => Some(r.to_string()),
            V1Value::Text(b) => Some(match std::str::from_utf8(b) {
                Ok(s) if !s.contains('\0') => s.to_string(),
                _ => format!("x'{}'", hex::encode(b)),
            }),
            V1Value::Blob(b) => Some(format!("x'{}'", hex::encode(b))),
        }
    }

    /// JSON for `original_json`: text as a string; non-UTF-8 text and BLOBs as
    /// `{"hex": "…", "storage": "text"|"blob"}` so no byte is lost.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        match self {
            V1Value::Null => Value::Null,
            V1Value::Integer(i) => json!(i),
            V1Value::Real(r) => json!(r),
            V1Value::Text(b) => match std::str::from_utf8(b) {
                Ok(s) => json!(s),
                Err(_) => json!({ "hex": hex::encode(b), "storage": "text" }),
            },
            V1Value::Blob(b) => json!({ "hex": hex::encode(b), "storage": "blob" }),
        }
    }
}

impl fmt::Debug for V1Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V1Value::Null => write!(f, "NULL"),
            V1Value::Integer(i) => write!(f, "{i}"),
            V1Value::Real(r) => write!(f, "{r}"),
            V1Value::Text(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "text x'{}'", hex::encode(b)),
            },
            V1Value::Blob(b) => write!(f, "x'{}'", hex::encode(b)),
        }
    }
}

impl V1Value {
    /// Overwrites the value with `v`, keeping the byte buffer when both are TEXT or both BLOB.
    pub(crate) fn set_from_ref(&mut self, v: rusqlite::types::ValueRef<'_>) {
        use rusqlite::types::ValueRef;
        match (self, v) {
            (V1Value::Text(buf), ValueRef::Text(b)) | (V1Value::Blob(buf), ValueRef::Blob(b)) => {
                buf.clear();
                buf.extend_from_slice(b);
            }
            (slot, v) => *slot = V1Value::from(v),
        }
    }
}

impl From<rusqlite::types::ValueRef<'_>> for V1Value {
    fn from(v: rusqlite::types::ValueRef<'_>) -> Self {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => V1Value::Null,
            ValueRef::Integer(i) => V1Value::Integer(i),
            ValueRef::Real(r) => V1Value::Real(r),
            ValueRef::Text(b) => V1Value::Text(b.to_vec()),
            ValueRef::Blob(b) => V1Value::Blob(b.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_follows_the_interface() {
        assert_eq!(V1Value::text("abc").key_text().unwrap(), "abc");
        assert_eq!(
            V1Value::Blob(vec![0xab, 0x01]).key_text().unwrap(),
            "x'ab01'"
        );
        assert_eq!(
            V1Value::Text(vec![0xff, 0x41]).key_text().unwrap(),
            "x'ff41'"
        );
        assert_eq!(V1Value::Null.key_text(), None);
    }

    #[test]
    fn json_keeps_invalid_bytes_as_hex() {
        let j = V1Value::Text(vec![0x66, 0xff]).to_json();
        assert_eq!(j["hex"], "66ff");
        assert_eq!(V1Value::text("é").to_json(), serde_json::json!("é"));
    }

    #[test]
    fn refilling_a_value_gives_the_new_value_in_every_storage_class() {
        use rusqlite::types::ValueRef;
        let mut v = V1Value::text("a much longer first value");
        for next in [
            ValueRef::Text(b"short"),
            ValueRef::Blob(&[0xff, 0x00]),
            ValueRef::Null,
            ValueRef::Integer(7),
            ValueRef::Real(1.5),
            ValueRef::Text(&[0xff, 0x41]),
            ValueRef::Blob(b"xyz"),
        ] {
            v.set_from_ref(next);
            assert_eq!(v, V1Value::from(next));
        }
    }

    #[test]
    fn booleans_read_integers_and_text() {
        assert_eq!(V1Value::Integer(1).as_bool(), Some(true));
        assert_eq!(V1Value::text("false").as_bool(), Some(false));
        assert_eq!(V1Value::text("maybe").as_bool(), None);
    }
}
