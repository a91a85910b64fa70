//! App authentication: an RS256 JWT signed with the App's private key (`iss` = app id, `iat` 60 s
//! in the past to allow for clock drift, `exp` ten minutes after `iat` as GitHub's maximum) buys an
//! installation token, cached per installation until five minutes before it expires.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde::Serialize;

use super::error::{GitHubError, Result};
use crate::ids::InstallationId;

/// A cached token is replaced when less than this much of its life is left, so a token never
/// expires in the middle of a lifecycle step.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Claims {
    pub iat: u64,
    pub exp: u64,
    pub iss: u64,
}

/// GitHub's rules: issued 60 s in the past (clock drift), expiring at most 10 minutes after.
pub(crate) fn claims(app_id: u64, now: SystemTime) -> Claims {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let iat = now.saturating_sub(60);
    Claims {
        iat,
        exp: iat + 600,
        iss: app_id,
    }
}

/// The App's signing key. Its `Debug` shows the app id only.
pub(crate) struct AppKey {
    app_id: u64,
    key: EncodingKey,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AppKey {
    pub fn new(app_id: u64, private_key_pem: &[u8]) -> Result<Self> {
        let key = EncodingKey::from_rsa_pem(private_key_pem)
            .map_err(|e| GitHubError::InvalidPrivateKey(e.to_string()))?;
        let me = Self { app_id, key };
        // Sign once now so a key that parses but cannot sign fails at startup, not mid-request.
        me.jwt()?;
        Ok(me)
    }

    pub fn jwt(&self) -> Result<SecretString> {
        let claims = claims(self.app_id, SystemTime::now());
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(SecretString::from)
            .map_err(|e| GitHubError::InvalidPrivateKey(e.to_string()))
    }
}

#[derive(Clone)]
pub(crate) struct CachedToken {
    pub token: SecretString,
    pub expires_at: SystemTime,
}

/// Whether a token expiring at `expires_at` must be replaced at `now`.
pub(crate) fn needs_refresh(expires_at: SystemTime, now: SystemTime) -> bool {
    expires_at <= now + TOKEN_REFRESH_MARGIN
}

/// What a token may do: read, or also write. Every token TfPilot asks for names one repository
/// and only the permissions of its access, so a token that leaks (or a call that goes wrong)
/// reaches no other repository, and a read cannot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    /// Read an organization's team memberships (`members: read`, an organization permission
    /// asked for only when a list names a team).
    Members,
}

impl Access {
    /// The access a REST or GraphQL call needs: reads (`GET`) read; everything else writes.
    /// GraphQL goes as a `POST`, so its queries (`read_at_head`) carry the write token too.
    pub fn of(method: &http::Method) -> Access {
        if method == http::Method::GET || method == http::Method::HEAD {
            Access::Read
        } else {
            Access::Write
        }
    }

    /// The permissions asked for (within what `app-manifest.yml` grants).
    pub fn permissions(self) -> serde_json::Value {
        let level = match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Members => return serde_json::json!({ "members": "read" }),
        };
        serde_json::json!({
            "actions": level,
            "checks": level,
            "contents": level,
            "issues": level,
            "pull_requests": level,
            "metadata": "read",
        })
    }
}

/// What a cached token is for: one repository of one installation, with one access.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenScope {
    pub installation: InstallationId,
    /// The repository's name (without the owner, as GitHub's token API takes it).
    pub repo: String,
    pub access: Access,
}

/// Installation tokens by scope. One lock for all: callers that need a token while another
/// caller is fetching one wait for it instead of fetching a second.
#[derive(Default)]
pub(crate) struct TokenCache {
    pub tokens: tokio::sync::Mutex<HashMap<TokenScope, CachedToken>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_githubs_rules() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = claims(42, now);
        assert_eq!(
            c,
            Claims {
                iat: 1_700_000_000 - 60,
                exp: 1_700_000_000 + 540,
                iss: 42
            }
        );
        assert!(
            c.exp - c.iat <= 600,
            "GitHub refuses JWTs living longer than 10 minutes"
        );
    }

    #[test]
    fn tokens_are_refreshed_five_minutes_before_they_expire() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(!needs_refresh(now + Duration::from_secs(3600), now));
        assert!(!needs_refresh(now + Duration::from_secs(301), now));
        assert!(needs_refresh(now + Duration::from_secs(300), now));
        assert!(needs_refresh(now - Duration::from_secs(1), now));
    }

    #[test]
    fn a_bad_key_is_a_clear_error_that_does_not_echo_the_key() {
        let err = AppKey::new(
            1,
            b"-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("not a usable RSA private key"), "{text}");
        assert!(!text.contains("c2VjcmV0"));
    }
}
