//! Where TfPilot keeps its data: `fs://<dir>` or `s3://<bucket>`, parsed once (from
//! `TFPILOT_STORE` or the `audit` command's argument) and shared by the store and the inbox.

use std::fmt;
use std::path::PathBuf;

/// Where TfPilot keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `fs://<dir>`: a local directory (the embedded default, `fs://./data`).
    Fs(PathBuf),
    /// `s3://<bucket>`: an S3 bucket (conditional writes; AWS_ENDPOINT_URL for moto/MinIO).
    S3 { bucket: String },
}

impl StoreLocation {
    /// The embedded default, `fs://./data`.
    pub fn default_dir() -> StoreLocation {
        StoreLocation::Fs(PathBuf::from("./data"))
    }

    /// Parses `fs://<dir>` or `s3://<bucket>`; the error is a sentence naming what is wrong.
    pub fn parse(v: &str) -> Result<StoreLocation, String> {
        if let Some(dir) = v.strip_prefix("fs://") {
            if dir.is_empty() {
                return Err(format!(
                    "`{v}` names no directory (expected fs://<dir>, e.g. fs://./data)"
                ));
            }
            Ok(StoreLocation::Fs(PathBuf::from(dir)))
        } else if let Some(bucket) = v.strip_prefix("s3://") {
            let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
            if bucket.is_empty() || bucket.contains('/') {
                return Err(format!(
                    "`{v}` is not a bucket location (expected s3://<bucket>)"
                ));
            }
            check_bucket_name(bucket)?;
            Ok(StoreLocation::S3 {
                bucket: bucket.to_owned(),
            })
        } else {
            Err(format!(
                "must be `fs://<dir>` or `s3://<bucket>`, got `{v}`, which is not a store location"
            ))
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Fs(dir) => write!(f, "fs://{}", dir.display()),
            StoreLocation::S3 { bucket } => write!(f, "s3://{bucket}"),
        }
    }
}

/// S3's bucket naming rules (the part a typo breaks).
pub fn check_bucket_name(b: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{b}` is not an S3 bucket name (3-63 lowercase letters, digits, `-` or `.`)"
        ))
    }
}
