//! App authentication as GitHub does it: an RS256 JWT (verified against the App's public key, with
//! GitHub's `iss`/`iat`/`exp` rules) buys an installation token, and every repository call must
//! carry a live installation token for an installation that covers the repository.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::model::{ApiError, ApiResult, IssuedToken, Model};

/// GitHub refuses JWTs that expire more than ten minutes after they are presented.
const MAX_JWT_LIFETIME_SECS: i64 = 600;
/// Clock drift GitHub tolerates (it recommends backdating `iat` by 60 s for exactly this).
const ALLOWED_DRIFT_SECS: i64 = 60;

#[derive(Deserialize)]
struct Claims {
    iss: serde_json::Value,
    iat: serde_json::Value,
    exp: serde_json::Value,
}

/// The bearer credential of a request, from `Authorization: Bearer …` or `token …`.
pub(crate) fn bearer(header: Option<&str>) -> Option<&str> {
    let header = header?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .or_else(|| header.strip_prefix("token "))
        .map(str::trim)
}

/// Checks an App JWT the way GitHub does; the error messages are GitHub's.
pub(crate) fn verify_app_jwt(key: &DecodingKey, app_id: u64, jwt: &str) -> ApiResult<()> {
    let mut validation = Validation::new(Algorithm::RS256);
    // Our own checks below follow GitHub's rules (and its messages) rather than the library's.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Claims>(jwt, key, &validation)
        .map_err(|_| ApiError::new(401, "A JSON web token could not be decoded"))?;
    let claims = data.claims;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let Some(iat) = claims.iat.as_i64() else {
        return Err(ApiError::new(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ));
    };
    let Some(exp) = claims.exp.as_i64() else {
        return Err(ApiError::new(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ));
    };
    if iat > now + ALLOWED_DRIFT_SECS {
        return Err(ApiError::new(
            401,
            "'Issued at' claim ('iat') must be an Integer representing a time in the past",
        ));
    }
    if exp <= now {
        return Err(ApiError::new(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ));
    }
    if exp - now > MAX_JWT_LIFETIME_SECS + ALLOWED_DRIFT_SECS
        || exp - iat > MAX_JWT_LIFETIME_SECS + ALLOWED_DRIFT_SECS
    {
        return Err(ApiError::new(
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ));
    }
    let iss_matches = match &claims.iss {
        serde_json::Value::Number(n) => n.as_u64() == Some(app_id),
        serde_json::Value::String(s) => s.parse::<u64>().ok() == Some(app_id),
        _ => false,
    };
    if !iss_matches {
        return Err(ApiError::new(401, "Integration not found"));
    }
    Ok(())
}

/// The body of `POST /app/installations/{id}/access_tokens` (every field optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenRequest {
    #[serde(default)]
    pub repositories: Option<Vec<String>>,
    #[serde(default)]
    pub permissions: Option<BTreeMap<String, String>>,
}

fn level_rank(level: &str) -> Option<u8> {
    match level {
        "read" => Some(1),
        "write" => Some(2),
        "admin" => Some(3),
        _ => None,
    }
}

/// Issues a fresh installation token (`ghs_…`) and its expiry, restricted as `request` asks
/// (GitHub refuses a repository outside the installation and a permission the App lacks).
pub(crate) fn issue_token(
    model: &mut Model,
    installation_id: u64,
    request: TokenRequest,
) -> ApiResult<(String, OffsetDateTime)> {
    let Some(owner) = model.installations.get(&installation_id).cloned() else {
        return Err(ApiError::not_found());
    };
    if let Some(repos) = &request.repositories {
        if repos.is_empty() || repos.len() > 500 {
            return Err(ApiError::new(422, "repositories must list 1 to 500 names"));
        }
        if repos
            .iter()
            .any(|r| !model.repos.contains_key(&format!("{owner}/{r}")))
        {
            return Err(ApiError::new(
                422,
                "There is at least one repository that does not exist or is not accessible to the parent installation.",
            ));
        }
    }
    if let Some(permissions) = &request.permissions {
        for (name, level) in permissions {
            let granted = crate::model::APP_PERMISSIONS
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, l)| level_rank(l));
            if level_rank(level).is_none() || granted < level_rank(level) {
                return Err(ApiError::new(
                    422,
                    "The permissions requested are not granted to this installation.",
                ));
            }
        }
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let ttl = time::Duration::try_from(model.token_ttl).unwrap_or(time::Duration::HOUR);
    let expires_at = crate::model::now() + ttl;
    model.tokens.insert(
        token.clone(),
        IssuedToken {
            installation_id,
            expires_at,
            repositories: request.repositories,
            permissions: request.permissions,
        },
    );
    model.tokens_issued += 1;
    Ok((token, expires_at))
}

/// What a live token may reach.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub installation: u64,
    repositories: Option<Vec<String>>,
    pub permissions: Option<BTreeMap<String, String>>,
}

impl Grant {
    /// Whether the token was restricted to some of the installation's repositories.
    pub fn restricted(&self) -> bool {
        self.repositories.is_some()
    }
}

/// The grant of a live token.
pub(crate) fn grant_of(model: &Model, token: Option<&str>) -> ApiResult<Grant> {
    let bad = || ApiError::new(401, "Bad credentials");
    let issued = model.tokens.get(token.ok_or_else(bad)?).ok_or_else(bad)?;
    if issued.expires_at <= OffsetDateTime::now_utc() {
        return Err(bad());
    }
    Ok(Grant {
        installation: issued.installation_id,
        repositories: issued.repositories.clone(),
        permissions: issued.permissions.clone(),
    })
}

/// Whether `grant` reaches `owner/name` (GitHub answers 404 when it does not) and holds
/// `needs` (`("contents", write?)`; GitHub answers 403 "Resource not accessible by
/// integration" when it does not).
pub(crate) fn check_grant(
    model: &Model,
    grant: &Grant,
    full_name: &str,
    needs: Option<(&str, bool)>,
) -> ApiResult<()> {
    check_repo_access(model, grant.installation, full_name)?;
    let name = full_name.split('/').nth(1).unwrap_or_default();
    if let Some(repos) = &grant.repositories
        && !repos.iter().any(|r| r == name)
    {
        return Err(ApiError::not_found());
    }
    if let (Some(permissions), Some((permission, write))) = (&grant.permissions, needs) {
        let held = permissions.get(permission).and_then(|l| level_rank(l));
        let wanted = if write { 2 } else { 1 };
        if held.is_none_or(|h| h < wanted) {
            return Err(ApiError::new(403, "Resource not accessible by integration"));
        }
    }
    Ok(())
}

/// The permission a REST call needs, from its method and route template.
pub(crate) fn permission_for(method: &str, template: &str) -> Option<(&'static str, bool)> {
    let write = method != "GET" && method != "HEAD";
    let permission = if template.contains("/actions/") {
        "actions"
    } else if template.contains("/check-runs") {
        "checks"
    } else if template.contains("/pulls") {
        "pull_requests"
    } else if template.contains("/issues") {
        "issues"
    } else if template.contains("/collaborators/") || template == "/repos/{owner}/{repo}" {
        "metadata"
    } else {
        "contents"
    };
    Some((permission, write))
}

/// Whether the installation covers `owner/name` (GitHub answers 404 when it does not).
pub(crate) fn check_repo_access(
    model: &Model,
    installation_id: u64,
    full_name: &str,
) -> ApiResult<()> {
    let owner = full_name.split('/').next().unwrap_or_default();
    match model.installations.get(&installation_id) {
        Some(o) if o == owner && model.repos.contains_key(full_name) => Ok(()),
        _ => Err(ApiError::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn sign(claims: serde_json::Value, pem: &str) -> String {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    }

    fn public() -> DecodingKey {
        DecodingKey::from_rsa_pem(crate::TEST_APP_PUBLIC_KEY_PEM.as_bytes()).unwrap()
    }

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn a_well_formed_jwt_is_accepted_with_iss_as_number_or_string() {
        let pem = crate::TEST_APP_PRIVATE_KEY_PEM;
        let ok = sign(
            json!({"iss": 7, "iat": now() - 60, "exp": now() + 540}),
            pem,
        );
        assert!(verify_app_jwt(&public(), 7, &ok).is_ok());
        let ok = sign(
            json!({"iss": "7", "iat": now() - 60, "exp": now() + 540}),
            pem,
        );
        assert!(verify_app_jwt(&public(), 7, &ok).is_ok());
    }

    #[test]
    fn jwts_github_would_refuse_are_refused() {
        let pem = crate::TEST_APP_PRIVATE_KEY_PEM;
        let cases = [
            (
                sign(
                    json!({"iss": 7, "iat": now() - 60, "exp": now() + 540}),
                    crate::UNREGISTERED_PRIVATE_KEY_PEM,
                ),
                "could not be decoded",
            ),
            (
                sign(
                    json!({"iss": 8, "iat": now() - 60, "exp": now() + 540}),
                    pem,
                ),
                "Integration not found",
            ),
            (
                sign(
                    json!({"iss": 7, "iat": now() - 700, "exp": now() - 10}),
                    pem,
                ),
                "'exp'",
            ),
            (
                sign(json!({"iss": 7, "iat": now(), "exp": now() + 3600}), pem),
                "too far in the future",
            ),
            (
                sign(
                    json!({"iss": 7, "iat": now() + 600, "exp": now() + 660}),
                    pem,
                ),
                "'iat'",
            ),
            (
                sign(json!({"iss": 7, "exp": now() + 60}), pem),
                "could not be decoded",
            ),
            ("not.a.jwt".to_owned(), "could not be decoded"),
        ];
        for (jwt, expected) in cases {
            let err = verify_app_jwt(&public(), 7, &jwt).unwrap_err();
            assert_eq!(err.status, 401);
            assert!(
                err.message.contains(expected),
                "{} should mention {expected}",
                err.message
            );
        }
    }
}
