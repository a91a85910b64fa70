//! Identifier newtypes shared by every module: a request id, a repository name, an installation.
//!
//! They validate on construction so the rest of the code can rely on their shape (a request id can
//! be put in a file name, a branch name, a marker line and a Terraform identifier without escaping).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of one TfPilot request: a UUID, always in lowercase hyphenated form
/// (`3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(uuid::Uuid);

impl RequestId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a request id (expected a lowercase UUID such as 3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b)"
)]
pub struct InvalidRequestId(pub String);

impl FromStr for RequestId {
    type Err = InvalidRequestId;

    /// Accepts only the canonical form, so that one request has exactly one spelling in markers,
    /// branch names and object keys.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uuid = uuid::Uuid::try_parse(s).map_err(|_| InvalidRequestId(s.to_owned()))?;
        let id = Self(uuid);
        if id.to_string() == s {
            Ok(id)
        } else {
            Err(InvalidRequestId(s.to_owned()))
        }
    }
}

impl TryFrom<String> for RequestId {
    type Error = InvalidRequestId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> Self {
        id.to_string()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

/// A repository as `owner/name`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a repository name (expected owner/name)")]
pub struct InvalidRepoName(pub String);

impl RepoName {
    pub fn new(owner: &str, name: &str) -> Result<Self, InvalidRepoName> {
        format!("{owner}/{name}").parse()
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for RepoName {
    type Err = InvalidRepoName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // GitHub owners are [A-Za-z0-9-], plus `_` for Enterprise Managed Users
        // (`octocat_acme`); repository names also allow `.`.
        let valid_part = |p: &str, extra: &[char]| {
            !p.is_empty()
                && p.len() <= 100
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || extra.contains(&c))
        };
        match s.split_once('/') {
            Some((owner, name))
                if valid_part(owner, &['_'])
                    && valid_part(name, &['_', '.'])
                    && name != "."
                    && name != ".." =>
            {
                Ok(Self {
                    owner: owner.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(InvalidRepoName(s.to_owned())),
        }
    }
}

impl TryFrom<String> for RepoName {
    type Error = InvalidRepoName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> Self {
        r.to_string()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoName({self})")
    }
}

/// A GitHub App installation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstallationId(pub u64);

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The id GitHub gives one webhook delivery (the `X-GitHub-Delivery` header, a GUID).
///
/// It keys the inbox, so it becomes a file name and an object key: only ASCII letters, digits and
/// `-` are accepted (GitHub's GUIDs fit), at most 64 characters. Shared text: a clone (the
/// worker's queue, an inbox listing of a backlog) copies a pointer, not the id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeliveryId(std::sync::Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a delivery id (expected a GUID such as 72d3162e-cc78-11e3-81ab-4c9367dc0958)"
)]
pub struct InvalidDeliveryId(pub String);

impl DeliveryId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeliveryId {
    type Err = InvalidDeliveryId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if valid {
            Ok(Self(s.into()))
        } else {
            Err(InvalidDeliveryId(s.to_owned()))
        }
    }
}

impl TryFrom<String> for DeliveryId {
    type Error = InvalidDeliveryId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DeliveryId> for String {
    fn from(id: DeliveryId) -> Self {
        id.0.to_string()
    }
}

/// Looked up by its text (an inbox listing finds a file name among the ids it knows without
/// making an id of it first): hashes and compares as the `str` it holds.
impl std::borrow::Borrow<str> for DeliveryId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeliveryId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_accepts_only_the_canonical_form() {
        let id = RequestId::new_random();
        assert_eq!(id.to_string().parse::<RequestId>(), Ok(id));
        let upper = id.to_string().to_uppercase();
        assert!(upper.parse::<RequestId>().is_err());
        assert!(
            id.as_uuid()
                .simple()
                .to_string()
                .parse::<RequestId>()
                .is_err()
        );
        assert!("../../etc/passwd".parse::<RequestId>().is_err());
        assert!("".parse::<RequestId>().is_err());
    }

    #[test]
    fn request_id_round_trips_through_json() {
        let id = RequestId::new_random();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<RequestId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<RequestId>("\"nope\"").is_err());
    }

    #[test]
    fn repo_name_validates_owner_and_name() {
        let r: RepoName = "acme/core-terraform".parse().unwrap();
        assert_eq!((r.owner(), r.name()), ("acme", "core-terraform"));
        assert_eq!(r.to_string(), "acme/core-terraform");
        assert!("acme/infra.v2_x".parse::<RepoName>().is_ok());
        assert!(
            "octocat_acme/infra".parse::<RepoName>().is_ok(),
            "Enterprise Managed Users' owners carry an underscore"
        );
        for bad in [
            "acme", "acme/", "/x", "a/b/c", "ac me/x", "acme/..", "acme.x/y",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn delivery_id_is_safe_as_a_file_name() {
        let id: DeliveryId = "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap();
        assert_eq!(id.as_str(), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        for bad in ["", "../x", "a/b", "a b", "a.json", &"x".repeat(65)] {
            assert!(
                bad.parse::<DeliveryId>().is_err(),
                "{bad} should be refused"
            );
        }
        assert!(serde_json::from_str::<DeliveryId>("\"..\"").is_err());
    }
}
