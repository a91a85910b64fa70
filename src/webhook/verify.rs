//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the webhook secret, compared in
//! constant time (`Mac::verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. Each becomes a 401; the text is safe to show the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "this TfPilot has no webhook secret configured (TFPILOT_WEBHOOK_SECRET), so it accepts no delivery"
    )]
    NoSecretConfigured,
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 must be `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (the value of `X-Hub-Signature-256`) against `body`.
pub fn verify_signature(
    secret: Option<&[u8]>,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let secret = secret.ok_or(SignatureError::NoSecretConfigured)?;
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` (used by tests, the benchmark
/// and anything that replays deliveries).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_published_test_vector() {
        assert_eq!(sign(SECRET, BODY), SIGNATURE);
        assert_eq!(
            verify_signature(Some(SECRET), Some(SIGNATURE.as_bytes()), BODY),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_or_body_is_a_mismatch() {
        let sig = Some(SIGNATURE.as_bytes());
        assert_eq!(
            verify_signature(Some(b"It's a Secret to Somebody"), sig, BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(SECRET), sig, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(SECRET), sig, b""),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn empty_body_verifies_only_with_its_own_signature() {
        let sig = sign(SECRET, b"");
        assert_eq!(
            verify_signature(Some(SECRET), Some(sig.as_bytes()), b""),
            Ok(())
        );
        assert_eq!(
            verify_signature(Some(SECRET), Some(sig.as_bytes()), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let truncated = &SIGNATURE[..SIGNATURE.len() - 2];
        let sha1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";
        let uppercase_prefix = SIGNATURE.replace("sha256=", "SHA256=");
        for header in [
            truncated,
            sha1,
            "sha256=",
            "",
            "757107ea",
            &uppercase_prefix,
        ] {
            assert_eq!(
                verify_signature(Some(SECRET), Some(header.as_bytes()), BODY),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        // Odd-length hex, non-hex: still malformed, never a panic.
        for header in ["sha256=zz", "sha256=abc"] {
            assert_eq!(
                verify_signature(Some(SECRET), Some(header.as_bytes()), BODY),
                Err(SignatureError::Malformed)
            );
        }
        assert_eq!(
            verify_signature(Some(SECRET), None, BODY),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn without_a_secret_everything_is_refused() {
        assert_eq!(
            verify_signature(None, Some(SIGNATURE.as_bytes()), BODY),
            Err(SignatureError::NoSecretConfigured)
        );
    }
}
