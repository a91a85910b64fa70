//! A local OpenAI-compatible server (axum on 127.0.0.1, port 0): answers every chat completion
//! with one scripted answer and records what it was sent; lists one model at `GET /v1/models`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the stub answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A completion whose message content is this text.
    Content(String),
    /// A completion with a `propose_inputs` tool call carrying these arguments.
    ToolCall(String),
    /// An HTTP error with this status and body.
    Status(u16, String),
    /// No answer for this long.
    Slow(Duration),
}

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub authorization: Option<String>,
    pub body: Value,
    pub raw: String,
}

#[derive(Clone)]
struct StubState {
    answer: Answer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct Stub {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    pub async fn start(answer: Answer) -> Stub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = StubState {
            answer,
            seen: seen.clone(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .route("/v1/models", axum::routing::get(models))
            .with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stub server");
        });
        Stub {
            base_url: format!("http://{addr}/v1"),
            seen,
            task,
        }
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("stub lock").clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /models`: the stub serves one model, `stub-model` (an `Answer::Status` answers that
/// status instead, as an endpoint refusing the key would).
async fn models(State(state): State<StubState>) -> Response {
    if let Answer::Status(code, body) = state.answer {
        return (
            StatusCode::from_u16(code).expect("status code"),
            [("content-type", "application/json")],
            body,
        )
            .into_response();
    }
    axum::Json(json!({
        "object": "list",
        "data": [{"id": "stub-model", "object": "model", "created": 1_700_000_000, "owned_by": "stub"}]
    }))
    .into_response()
}

fn completion(message: Value) -> Value {
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "stub-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
}

async fn completions(State(state): State<StubState>, headers: HeaderMap, raw: String) -> Response {
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    state.seen.lock().expect("stub lock").push(Seen {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
        raw,
    });
    match state.answer {
        Answer::Content(text) => {
            axum::Json(completion(json!({"role": "assistant", "content": text}))).into_response()
        }
        Answer::ToolCall(arguments) => axum::Json(completion(json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": "call_1",
                "type": "function",
                "function": {"name": "propose_inputs", "arguments": arguments}
            }]
        })))
        .into_response(),
        Answer::Status(code, body) => (
            StatusCode::from_u16(code).expect("status code"),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            axum::Json(completion(json!({"role": "assistant", "content": "{}"}))).into_response()
        }
    }
}
