//! AWS naming rules for the names TfPilot derives (`<project>-<environment>-<name>`), and the
//! shortening that keeps a too-long derived name unique.
//!
//! A derived name that is too long is cut and given a short hash of the full name, so two long
//! names that share a prefix never collapse into the same resource name.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which AWS resource's naming rules a derived name follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamingRule {
    /// S3 general purpose bucket: 3–63 characters, lowercase letters, digits, dots, hyphens.
    S3Bucket,
    /// SQS queue: 1–80 characters `[A-Za-z0-9_-]`, FIFO queues end in `.fifo` (counted).
    SqsQueue,
    /// IAM role: 1–64 characters `[\w+=,.@-]`.
    IamRole,
    /// ECS service: 1–255 characters `[A-Za-z0-9_-]`.
    EcsService,
}

/// The suffix every FIFO queue name carries.
pub const FIFO_SUFFIX: &str = ".fifo";

/// Hex digits of the hash added to a shortened name.
const HASH_LEN: usize = 8;

impl NamingRule {
    pub fn max_len(self) -> usize {
        match self {
            NamingRule::S3Bucket => 63,
            NamingRule::SqsQueue => 80,
            NamingRule::IamRole => 64,
            NamingRule::EcsService => 255,
        }
    }

    /// Checks a complete name against the rule; the error says which rule it breaks.
    pub fn check(self, name: &str, fifo: bool) -> Result<(), String> {
        let len = name.chars().count();
        if len == 0 {
            return Err("must not be empty".into());
        }
        if len > self.max_len() {
            return Err(format!(
                "is {len} characters long; the limit is {}",
                self.max_len()
            ));
        }
        match self {
            NamingRule::S3Bucket => check_s3(name),
            NamingRule::SqsQueue => {
                let base = match (fifo, name.strip_suffix(FIFO_SUFFIX)) {
                    (true, Some(base)) => base,
                    (true, None) => return Err("must end in `.fifo` for a FIFO queue".into()),
                    (false, Some(_)) => {
                        return Err("ends in `.fifo`, which only FIFO queues may".into());
                    }
                    (false, None) => name,
                };
                if base.is_empty() {
                    return Err("needs at least one character before `.fifo`".into());
                }
                only(
                    base,
                    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                    "letters, digits, `-` and `_`",
                )
            }
            NamingRule::IamRole => only(
                name,
                |c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c),
                "letters, digits and `_+=,.@-`",
            ),
            NamingRule::EcsService => only(
                name,
                |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                "letters, digits, `-` and `_`",
            ),
        }
    }

    /// Makes the final name from a derived one: adds `.fifo` when asked, shortens with a hash
    /// when too long, and checks the result.
    pub fn finish(self, derived: &str, fifo: bool) -> Result<String, String> {
        let suffix = if fifo && self == NamingRule::SqsQueue {
            FIFO_SUFFIX
        } else {
            ""
        };
        let limit = self.max_len() - suffix.len();
        let base = if derived.chars().count() <= limit {
            derived.to_owned()
        } else {
            shorten(derived, limit)
        };
        let name = format!("{base}{suffix}");
        self.check(&name, fifo && self == NamingRule::SqsQueue)?;
        Ok(name)
    }
}

/// Cuts `name` to `limit` characters, ending in `-<hash of the full name>`.
fn shorten(name: &str, limit: usize) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let hash = hex::encode(digest);
    let keep = limit.saturating_sub(HASH_LEN + 1);
    let mut prefix: String = name.chars().take(keep).collect();
    // A cut right after a separator would leave `--` or `.-`, which S3 refuses.
    while prefix.ends_with(['-', '.', '_']) {
        prefix.pop();
    }
    format!("{prefix}-{}", &hash[..HASH_LEN])
}

fn only(name: &str, allowed: impl Fn(char) -> bool, what: &str) -> Result<(), String> {
    match name.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(format!(
            "contains `{}`; only {what} are allowed",
            c.escape_default()
        )),
        None => Ok(()),
    }
}

fn check_s3(name: &str) -> Result<(), String> {
    let len = name.len();
    if len < 3 {
        return Err(format!(
            "is {len} characters long; S3 bucket names need at least 3"
        ));
    }
    only(
        name,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-',
        "lowercase letters, digits, `.` and `-`",
    )?;
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err("must start and end with a lowercase letter or a digit".into());
    }
    if name.contains("..") {
        return Err("must not contain two adjacent dots".into());
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Err("must not be formatted as an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!("must not start with `{prefix}` (reserved by AWS)"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(format!("must not end with `{suffix}` (reserved by AWS)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_rules() {
        let ok = ["abc", "core-dev-invoices", "a.b-c", "123", "my.bucket.2"];
        for n in ok {
            assert_eq!(NamingRule::S3Bucket.check(n, false), Ok(()), "{n}");
        }
        let bad = [
            ("ab", "at least 3"),
            ("Abc", "lowercase"),
            ("a_b", "`_`"),
            ("-ab", "start and end"),
            ("ab-", "start and end"),
            ("a..b", "adjacent dots"),
            ("192.168.5.4", "IP address"),
            ("xn--abc", "xn--"),
            ("sthree-abc", "sthree-"),
            ("abc-s3alias", "-s3alias"),
            ("abc--ol-s3", "--ol-s3"),
        ];
        for (n, want) in bad {
            let err = NamingRule::S3Bucket.check(n, false).unwrap_err();
            assert!(err.contains(want), "{n}: {err}");
        }
        assert!(NamingRule::S3Bucket.check(&"a".repeat(64), false).is_err());
        assert!(NamingRule::S3Bucket.check(&"a".repeat(63), false).is_ok());
    }

    #[test]
    fn sqs_fifo_suffix_rules() {
        assert!(NamingRule::SqsQueue.check("orders", false).is_ok());
        assert!(NamingRule::SqsQueue.check("orders.fifo", true).is_ok());
        assert!(
            NamingRule::SqsQueue
                .check("orders", true)
                .unwrap_err()
                .contains("must end in `.fifo`")
        );
        assert!(
            NamingRule::SqsQueue
                .check("orders.fifo", false)
                .unwrap_err()
                .contains("only FIFO")
        );
        assert!(NamingRule::SqsQueue.check(".fifo", true).is_err());
        assert!(NamingRule::SqsQueue.check("a.b", false).is_err());
        assert!(NamingRule::SqsQueue.check(&"q".repeat(80), false).is_ok());
        assert!(NamingRule::SqsQueue.check(&"q".repeat(81), false).is_err());
        assert_eq!(
            NamingRule::SqsQueue
                .finish("core-dev-orders", true)
                .unwrap(),
            "core-dev-orders.fifo"
        );
    }

    #[test]
    fn iam_and_ecs_rules() {
        assert!(
            NamingRule::IamRole
                .check("core-dev_app+x=y,z.w@q", false)
                .is_ok()
        );
        assert!(NamingRule::IamRole.check("a b", false).is_err());
        assert!(NamingRule::IamRole.check(&"r".repeat(65), false).is_err());
        assert!(NamingRule::EcsService.check("svc-1_a", false).is_ok());
        assert!(NamingRule::EcsService.check("svc.1", false).is_err());
        assert!(
            NamingRule::EcsService
                .check(&"s".repeat(256), false)
                .is_err()
        );
    }

    #[test]
    fn long_names_are_shortened_uniquely_never_truncated() {
        let a = format!("core-prod-{}-a", "x".repeat(60));
        let b = format!("core-prod-{}-b", "x".repeat(60));
        let na = NamingRule::S3Bucket.finish(&a, false).unwrap();
        let nb = NamingRule::S3Bucket.finish(&b, false).unwrap();
        assert_eq!(na.len(), 63);
        assert_eq!(nb.len(), 63);
        assert_ne!(na, nb, "same prefix, different names must stay different");
        assert_eq!(
            na,
            NamingRule::S3Bucket.finish(&a, false).unwrap(),
            "deterministic"
        );
        let q = NamingRule::SqsQueue
            .finish(&format!("core-dev-{}", "q".repeat(90)), true)
            .unwrap();
        assert_eq!(q.len(), 80);
        assert!(q.ends_with(".fifo"));
        // A cut landing on a separator does not leave `--`.
        let c = NamingRule::S3Bucket
            .finish(&format!("{}-{}", "a".repeat(53), "b".repeat(20)), false)
            .unwrap();
        assert!(!c.contains("--"), "{c}");
        assert!(NamingRule::S3Bucket.check(&c, false).is_ok());
    }
}
