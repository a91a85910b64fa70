//! The object-level seam under every store: whole objects addressed by key, with conditional
//! writes, plus append-only logs.
//!
//! Two implementations: [`crate::store::fs::FsObjects`] (a directory; a lock file per key) and
//! [`crate::store::s3::S3Objects`] (a bucket; `If-None-Match` / `If-Match`). Everything above this
//! seam (the request layout, the thread index, archive, the inbox) is written once against it,
//! so both backends have the same semantics by construction.

use std::fmt;

use async_trait::async_trait;

/// An opaque token naming one stored version of an object (S3's ETag; a content hash on fs).
/// Two different contents never share one, so it is safe as a compare-and-swap token as long as
/// every write changes the content (the request store bumps `version` on every write).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    pub fn new(tag: impl Into<String>) -> Self {
        Self(tag.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({})", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object as read: its bytes and the tag of this version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Vec<u8>,
    pub etag: ETag,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A conditional write or delete was refused: the object exists (create-only), or it is no
    /// longer the version named by the ETag, or it is gone. S3 reports these as 412
    /// `PreconditionFailed`, 409 `ConditionalRequestConflict`, or 404 under `If-Match`.
    #[error("{object} was changed by someone else (conditional write refused)")]
    Conflict { object: String },
    /// Anything else: I/O, network, permissions, a missing bucket.
    #[error("{operation} {object}: {message}")]
    Backend {
        operation: &'static str,
        object: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl ObjectError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, ObjectError::Conflict { .. })
    }
}

/// Keys are `/`-separated relative paths made of `[A-Za-z0-9._-]` segments (no empty, `.` or
/// `..` segment); both backends refuse anything else, so a key can never escape its root.
pub fn check_key(key: &str) -> Result<(), ObjectError> {
    let valid = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    if valid {
        Ok(())
    } else {
        Err(ObjectError::Backend {
            operation: "address",
            object: format!("{key:?}"),
            message: "not a valid object key".into(),
            source: None,
        })
    }
}

/// Whole-object storage with conditional writes. Object-safe; held as a concrete type or a
/// `dyn Objects`.
#[async_trait]
pub trait Objects: Send + Sync + fmt::Debug {
    /// Where the objects live (`fs:///data`, `s3://bucket`), for messages.
    fn location(&self) -> String;

    /// How to name one object in a message (`/data/requests/<id>.json`, `s3://bucket/requests/…`).
    fn describe(&self, key: &str) -> String;

    /// The object and its tag, or `None` when there is no such object.
    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError>;

    /// Creates the object; [`ObjectError::Conflict`] if it exists.
    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<ETag, ObjectError>;

    /// Replaces the object if it is still the version `etag` names; [`ObjectError::Conflict`]
    /// if it changed or is gone.
    async fn put_if_match(
        &self,
        key: &str,
        body: Vec<u8>,
        etag: &ETag,
    ) -> Result<ETag, ObjectError>;

    /// Deletes the object if it is still the version `etag` names; [`ObjectError::Conflict`]
    /// if it changed or is gone.
    async fn delete_if_match(&self, key: &str, etag: &ETag) -> Result<(), ObjectError>;

    /// Every key that starts with `prefix` (a folder such as `requests/`), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError>;

    /// Appends one record (one line of JSON, no newline inside) to the log `log`. On fs that is a
    /// line of `<log>.jsonl`; on S3, which cannot append, one object `<log>/<time>-<random>.json`.
    async fn append(&self, log: &str, record: Vec<u8>) -> Result<(), ObjectError>;

    /// The records of `log` in the order they were appended (S3: key order, i.e. time order),
    /// each with the name of the object it came from, for error messages.
    async fn read_log(&self, log: &str) -> Result<Vec<LogRecord>, ObjectError>;
}

/// One record of a log as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// `/data/chat/<id>.jsonl:3` or `s3://bucket/chat/<id>/<time>-<random>.json`.
    pub origin: String,
    pub body: Vec<u8>,
}

/// A sortable, unique name for the next record of a log stored as one object per record:
/// UTC time to the nanosecond, then randomness so two writers in the same nanosecond differ.
pub fn log_record_name(now: time::OffsetDateTime) -> String {
    let t = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z-{:016x}.json",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond(),
        rand::random::<u64>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_their_root() {
        for good in [
            "requests/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b.json",
            "index/threads/acme/core-terraform/12.json",
            "inbox/72d3162e-cc78-11e3-81ab-4c9367dc0958.json",
        ] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            "a/./b",
            "a b",
            "a\\b",
            "a\nb",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn log_record_names_sort_by_time() {
        let a = log_record_name(time::macros::datetime!(2026-01-02 03:04:05.000000009 UTC));
        let b = log_record_name(time::macros::datetime!(2026-01-02 03:04:05.00000001 UTC));
        let c = log_record_name(time::macros::datetime!(2026-11-02 00:00:00 UTC));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(check_key(&a).is_ok());
        assert!(a.starts_with("20260102T030405.000000009Z-"));
    }
}
