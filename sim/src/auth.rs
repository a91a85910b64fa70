//! App authentication as GitHub does it: an RS256 JWT (verified against the App's public key, with
//! GitHub's `iss`/`iat`/`exp` rules) buys an installation token, and every repository call must
//! carry a live installation token for an installation that covers the repository.

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

/// Issues a fresh installation token (`ghs_…`) and its expiry.
pub(crate) fn issue_token(
    model: &mut Model,
    installation_id: u64,
) -> ApiResult<(String, OffsetDateTime)> {
    if !model.installations.contains_key(&installation_id) {
        return Err(ApiError::not_found());
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let ttl = time::Duration::try_from(model.token_ttl).unwrap_or(time::Duration::HOUR);
    let expires_at = crate::model::now() + ttl;
    model.tokens.insert(
        token.clone(),
        IssuedToken {
            installation_id,
            expires_at,
        },
    );
    model.tokens_issued += 1;
    Ok((token, expires_at))
}

/// The installation a live token belongs to.
pub(crate) fn installation_of(model: &Model, token: Option<&str>) -> ApiResult<u64> {
    let bad = || ApiError::new(401, "Bad credentials");
    let issued = model.tokens.get(token.ok_or_else(bad)?).ok_or_else(bad)?;
    if issued.expires_at <= OffsetDateTime::now_utc() {
        return Err(bad());
    }
    Ok(issued.installation_id)
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
