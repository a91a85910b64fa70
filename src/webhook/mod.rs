//! The webhook front door's decisions: is this delivery GitHub's, which event is it, and what does
//! it say. Pure functions over headers and bytes; `server` does the I/O around them.

pub mod events;
pub mod verify;

use http::HeaderMap;

pub use events::{Event, EventParseError};
pub use verify::{SignatureError, sign, verify_signature};

use crate::ids::DeliveryId;

/// GitHub's largest payload (25 MB); bigger bodies are answered 413.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

pub const HEADER_EVENT: &str = "x-github-event";
pub const HEADER_DELIVERY: &str = "x-github-delivery";
pub const HEADER_SIGNATURE: &str = "x-hub-signature-256";

/// A delivery that passed every check.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub delivery_id: DeliveryId,
    /// The `X-GitHub-Event` header as sent.
    pub event_name: String,
    pub event: Event,
}

/// Why a delivery was refused; `Display` is the one-line reason sent back.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// 401: not signed with our secret (or we have none).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// 400: signed, but not a delivery we can read.
    #[error("{0}")]
    BadRequest(String),
}

/// Verifies the signature first (an unsigned caller learns nothing else), then reads the routing
/// headers and the payload.
pub fn accept(
    secret: Option<&[u8]>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Incoming, Rejection> {
    let signature = headers.get(HEADER_SIGNATURE).map(|v| v.as_bytes());
    verify_signature(secret, signature, body)?;

    let event_name = headers
        .get(HEADER_EVENT)
        .ok_or_else(|| Rejection::BadRequest("missing X-GitHub-Event header".into()))?
        .to_str()
        .ok()
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .ok_or_else(|| {
            Rejection::BadRequest(
                "X-GitHub-Event must be an event name such as issue_comment".into(),
            )
        })?
        .to_owned();
    let delivery_id = headers
        .get(HEADER_DELIVERY)
        .ok_or_else(|| Rejection::BadRequest("missing X-GitHub-Delivery header".into()))?
        .to_str()
        .ok()
        .and_then(|v| v.parse::<DeliveryId>().ok())
        .ok_or_else(|| Rejection::BadRequest("X-GitHub-Delivery must be a GUID".into()))?;

    // One pass over the body: parsing a handled event checks the whole body is JSON; an event
    // TfPilot does not handle is only checked. Which of the two failed is told apart afterwards.
    let not_json =
        |e: serde_json::Error| Rejection::BadRequest(format!("the body is not JSON: {e}"));
    let event = match Event::parse(&event_name, body) {
        Ok(Event::Other(name)) => {
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(not_json)?;
            Event::Other(name)
        }
        Ok(event) => event,
        Err(e) => {
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(not_json)?;
            return Err(Rejection::BadRequest(e.to_string()));
        }
    };
    Ok(Incoming {
        delivery_id,
        event_name,
        event,
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const SECRET: &[u8] = b"s3cret";

    fn headers(event: Option<&str>, delivery: Option<&str>, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(e) = event {
            h.insert(HEADER_EVENT, HeaderValue::from_str(e).unwrap());
        }
        if let Some(d) = delivery {
            h.insert(HEADER_DELIVERY, HeaderValue::from_str(d).unwrap());
        }
        h.insert(
            HEADER_SIGNATURE,
            HeaderValue::from_str(&sign(SECRET, body)).unwrap(),
        );
        h
    }

    #[test]
    fn the_signature_is_checked_before_anything_else() {
        let h = headers(None, None, b"x");
        assert!(matches!(
            accept(Some(b"other"), &h, b"x"),
            Err(Rejection::Signature(SignatureError::Mismatch))
        ));
    }

    #[test]
    fn signed_but_unreadable_deliveries_say_why() {
        let body = br#"{"zen":"hi"}"#;
        let cases = [
            (None, Some("abc-1"), "missing X-GitHub-Event header"),
            (Some("ping"), None, "missing X-GitHub-Delivery header"),
            (
                Some("ping"),
                Some("../etc"),
                "X-GitHub-Delivery must be a GUID",
            ),
            (
                Some("Ping Pong"),
                Some("abc-1"),
                "X-GitHub-Event must be an event name",
            ),
        ];
        for (event, delivery, reason) in cases {
            let err = accept(Some(SECRET), &headers(event, delivery, body), body).unwrap_err();
            assert!(err.to_string().starts_with(reason), "{err} vs {reason}");
        }
        let err = accept(Some(SECRET), &headers(Some("star"), Some("a1"), b"{"), b"{").unwrap_err();
        assert!(err.to_string().starts_with("the body is not JSON"), "{err}");
    }

    /// The body is parsed once; which check failed is still told apart: not JSON at all (a
    /// handled event or not), or JSON that is not the event it claims to be.
    #[test]
    fn a_body_that_is_not_json_is_told_apart_from_one_of_the_wrong_shape() {
        for (event, body) in [
            ("issue_comment", &b"{\"action\": "[..]),
            ("issue_comment", b"{} trailing"),
            ("watch", b"[1,"),
        ] {
            let err =
                accept(Some(SECRET), &headers(Some(event), Some("a1"), body), body).unwrap_err();
            assert!(
                err.to_string().starts_with("the body is not JSON"),
                "{event}: {err}"
            );
        }
        let body = br#"{"action": 5}"#;
        let err = accept(
            Some(SECRET),
            &headers(Some("issue_comment"), Some("a1"), body),
            body,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("not JSON"), "{err}");
        assert!(err.to_string().contains("issue_comment"), "{err}");
    }

    #[test]
    fn an_unhandled_event_is_accepted_as_other() {
        let body = br#"{"action":"started"}"#;
        let ok = accept(
            Some(SECRET),
            &headers(Some("watch"), Some("a1"), body),
            body,
        )
        .unwrap();
        assert_eq!(ok.event, Event::Other("watch".into()));
        assert_eq!(ok.delivery_id.as_str(), "a1");
    }
}
