//! A local Slack: an HTTP receiver standing in for an incoming webhook. It checks every message
//! against Slack's published Block Kit limits (https://api.slack.com/reference/block-kit) and
//! can be switched into an outage (503), to show that a Slack outage never costs a GitHub answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

#[derive(Default)]
struct Inner {
    /// Messages taken (200).
    messages: Mutex<Vec<Value>>,
    /// Every POST, taken or not.
    attempts: Mutex<usize>,
    /// Problems found in a payload (a test fails on any).
    problems: Mutex<Vec<String>>,
    down: AtomicBool,
}

pub struct SlackReceiver {
    inner: Arc<Inner>,
    pub url: String,
    _server: tokio::task::JoinHandle<()>,
}

impl SlackReceiver {
    pub async fn start() -> SlackReceiver {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/services/T000/B000/secret", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SlackReceiver {
            inner,
            url: format!("http://{addr}/services/T000/B000/secret"),
            _server: server,
        }
    }

    /// Slack answers 503 from now on (or again 200).
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<Value> {
        self.inner.messages.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> usize {
        *self.inner.attempts.lock().unwrap()
    }

    /// Every payload problem seen so far (empty when every message had Slack's shape).
    pub fn problems(&self) -> Vec<String> {
        self.inner.problems.lock().unwrap().clone()
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, &'static str) {
    *inner.attempts.lock().unwrap() += 1;
    if inner.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
    }
    // Slack's own answers to a bad request: 400 `invalid_payload`, `no_text`, `invalid_blocks`.
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        inner
            .problems
            .lock()
            .unwrap()
            .push("content-type is not application/json".into());
        return (StatusCode::BAD_REQUEST, "invalid_payload");
    }
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        inner
            .problems
            .lock()
            .unwrap()
            .push(format!("not JSON: {body}"));
        return (StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let problems = block_kit_problems(&message);
    if !problems.is_empty() {
        inner.problems.lock().unwrap().extend(problems);
        return (StatusCode::BAD_REQUEST, "invalid_blocks");
    }
    inner.messages.lock().unwrap().push(message);
    (StatusCode::OK, "ok")
}

/// What is wrong with `m` as an incoming-webhook message with Block Kit blocks: a `text`
/// fallback, at most 50 blocks of known types within their documented limits.
pub fn block_kit_problems(m: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            p.push(what);
        }
    };
    let text = m["text"].as_str().unwrap_or("");
    check(!text.is_empty(), "no `text` fallback".into());
    let Some(blocks) = m["blocks"].as_array() else {
        check(false, "no `blocks` array".into());
        return p;
    };
    check(
        (1..=50).contains(&blocks.len()),
        format!("{} blocks", blocks.len()),
    );
    let text_object = |t: &Value, kinds: &[&str], max: usize| -> bool {
        let kind = t["type"].as_str().unwrap_or("");
        let s = t["text"].as_str().unwrap_or("");
        kinds.contains(&kind) && !s.is_empty() && s.chars().count() <= max
    };
    let mut action_ids = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match b["type"].as_str().unwrap_or("") {
            "header" => check(
                text_object(&b["text"], &["plain_text"], 150),
                format!("block {i}: a header's text is plain_text of 1-150 characters"),
            ),
            "section" => {
                let has_text = !b["text"].is_null();
                let fields = b["fields"].as_array();
                check(
                    has_text || fields.is_some(),
                    format!("block {i}: a section needs text or fields"),
                );
                if has_text {
                    check(
                        text_object(&b["text"], &["plain_text", "mrkdwn"], 3000),
                        format!("block {i}: section text of 1-3000 characters"),
                    );
                }
                if let Some(fields) = fields {
                    check(
                        fields.len() <= 10,
                        format!("block {i}: more than 10 fields"),
                    );
                    for f in fields {
                        check(
                            text_object(f, &["plain_text", "mrkdwn"], 2000),
                            format!("block {i}: a field of 1-2000 characters"),
                        );
                    }
                }
            }
            "context" => {
                let elements = b["elements"].as_array().map(Vec::len).unwrap_or(0);
                check(
                    (1..=10).contains(&elements),
                    format!("block {i}: context with 1-10 elements"),
                );
            }
            "actions" => {
                let elements = b["elements"].as_array().cloned().unwrap_or_default();
                check(
                    (1..=25).contains(&elements.len()),
                    format!("block {i}: actions with 1-25 elements"),
                );
                for e in elements {
                    check(
                        e["type"] == "button",
                        format!("block {i}: an element that is not a button"),
                    );
                    check(
                        text_object(&e["text"], &["plain_text"], 75),
                        format!("block {i}: a button's text is plain_text of 1-75 characters"),
                    );
                    let url = e["url"].as_str().unwrap_or("");
                    check(
                        url.starts_with("http") && url.len() <= 3000,
                        format!("block {i}: a button url of at most 3000 characters"),
                    );
                    let id = e["action_id"].as_str().unwrap_or("").to_owned();
                    check(
                        !id.is_empty() && id.len() <= 255 && !action_ids.contains(&id),
                        format!("block {i}: action_id unique, 1-255 characters"),
                    );
                    action_ids.push(id);
                }
            }
            "divider" => {}
            other => check(false, format!("block {i}: unknown block type `{other}`")),
        }
    }
    p
}

#[test]
fn the_receiver_knows_a_bad_message() {
    let bad = serde_json::json!({
        "blocks": [
            {"type": "header", "text": {"type": "mrkdwn", "text": "x"}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "a"}, "url": "https://x", "action_id": "same"},
                {"type": "button", "text": {"type": "plain_text", "text": "b"}, "url": "https://y", "action_id": "same"}
            ]},
            {"type": "fancy"}
        ]
    });
    let problems = block_kit_problems(&bad);
    assert_eq!(problems.len(), 4, "{problems:#?}");
}

#[test]
fn every_notice_tfpilot_renders_has_slacks_shape() {
    use tfpilot::domain::{Notice, NoticeEvent};
    for event in NoticeEvent::ALL {
        let notice = Notice {
            event,
            request: "0b7c5b8e-7a0e-4a5e-9a4e-1f2f3a4b5c6d".parse().unwrap(),
            repo: "acme/core-terraform".parse().unwrap(),
            issue: 12,
            pull_request: Some(13),
            run_url: Some("https://github.com/acme/core-terraform/actions/runs/77".into()),
            module_type: "s3-bucket".into(),
            environment: "prod".into(),
            requester: "carol".into(),
            actor: "dave".into(),
            approvers: vec!["alice".into()],
            route: None,
        };
        let m = tfpilot::slack::message(&notice, "https://github.com");
        assert_eq!(
            block_kit_problems(&m),
            Vec::<String>::new(),
            "{event}: {m:#}"
        );
    }
}
