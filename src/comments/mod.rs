//! Every comment TfPilot writes is rendered here, so its voice and format stay in one place.
//!
//! Each comment starts with a hidden marker (`<!-- tfpilot:<key> -->`) naming the effect that posted
//! it. The executor looks for the marker before posting again, which makes re-processing a delivery
//! after a crash safe, and finds superseded comments (old plans) by it.

pub mod catalogue;
pub mod check;
pub mod conversation;
pub mod dashboard;
pub mod drift;
pub mod lifecycle;
pub mod plan;

/// The hidden first line of a comment posted for the effect `key`. Keys are built by TfPilot from
/// ids and numbers only, never from user text.
pub fn marker(key: &str) -> String {
    debug_assert!(
        key.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:./=".contains(c)),
        "marker keys hold ids and numbers only: {key}"
    );
    format!("<!-- tfpilot:{key} -->")
}

/// The effect key of a comment TfPilot posted, if `body` starts with a marker.
pub fn marker_key(body: &str) -> Option<&str> {
    let rest = body.strip_prefix("<!-- tfpilot:")?;
    let (key, _) = rest.split_once(" -->")?;
    (!key.is_empty() && !key.contains(char::is_whitespace)).then_some(key)
}

/// GitHub refuses comment bodies over this many characters.
pub const GITHUB_MAX_COMMENT_CHARS: usize = 65_536;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        let body = format!("{}\nhello", marker("plan:abc:r2:run9:1/3"));
        assert_eq!(marker_key(&body), Some("plan:abc:r2:run9:1/3"));
        assert_eq!(
            marker_key("hello <!-- tfpilot:x -->"),
            None,
            "only a leading marker counts"
        );
        assert_eq!(marker_key("<!-- tfpilot: -->"), None);
    }
}
