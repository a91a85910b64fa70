//! The AWS Lambda paths: a Function URL request goes through `lambda_http`'s own request
//! conversion into the same router and signature check; an S3 inbox event reaches the worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use secrecy::SecretString;
use tfpilot::inbox::{Delivery, FsInbox, Inbox, ItemStatus};
use tfpilot::lambda::{WorkerReport, handle_worker_event};
use tfpilot::server::{AppState, create_app};
use tfpilot::worker::Worker;
use tower::ServiceExt;

use crate::support::{self, WEBHOOK_SECRET};
use crate::worker::RecordingHandler;

const DELIVERY: &str = "5b0e6f3a-9c1d-4e7b-8a2f-1d3c5e7a9b0c";

fn fixture(name: &str) -> String {
    let path = support::repo_root()
        .join("tests/fixtures/lambda")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The Function URL event → `lambda_http::Request` (exactly what `lambda_http::run` does) → the
/// router; returns the status and the inbox.
async fn through_lambda_http(
    event_json: &str,
    secret: &str,
) -> (StatusCode, Arc<FsInbox>, tempfile::TempDir) {
    let request = lambda_http::request::from_str(event_json).expect("a Function URL event");
    assert!(
        matches!(
            request.request_context_ref(),
            Some(RequestContext::ApiGatewayV2(_))
        ),
        "Function URLs use the API Gateway v2 payload"
    );
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let router = create_app(AppState::new(
        Some(SecretString::from(secret)),
        inbox.clone(),
    ));
    let response = router.oneshot(request).await.unwrap();
    (response.status(), inbox, dir)
}

#[tokio::test]
async fn a_function_url_delivery_reaches_the_router_and_the_inbox() {
    for file in [
        "function-url-webhook.json",
        "function-url-webhook-base64.json",
    ] {
        let (status, inbox, _dir) = through_lambda_http(&fixture(file), WEBHOOK_SECRET).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{file}");
        let item = inbox
            .get(&DELIVERY.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item.delivery.event, "issue_comment");
        // The stored body is the decoded JSON GitHub signed, not the base64 text.
        let body: serde_json::Value = serde_json::from_str(&item.delivery.body).unwrap();
        assert_eq!(body["installation"]["id"], 48290711, "{file}");
    }
}

#[tokio::test]
async fn a_function_url_delivery_gets_the_same_signature_check() {
    // Another secret: 401.
    let (status, inbox, _dir) =
        through_lambda_http(&fixture("function-url-webhook.json"), "another-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(inbox.depth().await.unwrap(), 0);

    // The body changed in transit: 401.
    let mut event: serde_json::Value =
        serde_json::from_str(&fixture("function-url-webhook.json")).unwrap();
    let body = event["body"]
        .as_str()
        .unwrap()
        .replace("/tfpilot new", "/tfpilot destroy");
    event["body"] = body.into();
    let (status, inbox, _dir) = through_lambda_http(&event.to_string(), WEBHOOK_SECRET).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(inbox.depth().await.unwrap(), 0);
}

fn stored_delivery() -> Delivery {
    let event: serde_json::Value =
        serde_json::from_str(&fixture("function-url-webhook.json")).unwrap();
    Delivery::new(
        DELIVERY.parse().unwrap(),
        "issue_comment",
        event["body"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn an_s3_inbox_event_reaches_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    inbox.put(&stored_delivery()).await.unwrap();
    let handler = Arc::new(RecordingHandler::default());
    let worker = Worker::new(inbox.clone(), handler.clone());

    let event: serde_json::Value = serde_json::from_str(&fixture("s3-inbox-event.json")).unwrap();
    let report = handle_worker_event(&worker, event.clone()).await.unwrap();
    assert_eq!(
        report,
        WorkerReport {
            done: 1,
            ignored_keys: vec!["requests%2F3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b.json".into()],
            ..WorkerReport::default()
        }
    );
    assert_eq!(handler.handled_ids(), vec![DELIVERY.to_owned()]);
    assert_eq!(
        *handler.settled.lock().unwrap(),
        [1],
        "the invocation settles once its items are done (the requests dashboard)"
    );
    let item = inbox
        .get(&DELIVERY.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.state.status, ItemStatus::Done);

    // S3 delivers events at least once: the same event again runs nothing.
    let again = handle_worker_event(&worker, event).await.unwrap();
    assert_eq!(again.skipped, 1);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_s3_item_fails_the_invocation_and_the_schedule_retries_it() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    inbox.put(&stored_delivery()).await.unwrap();

    let failing = Arc::new(RecordingHandler::failing(1));
    let worker = Worker::new(inbox.clone(), failing.clone());
    let event: serde_json::Value = serde_json::from_str(&fixture("s3-inbox-event.json")).unwrap();
    let err = handle_worker_event(&worker, event).await.unwrap_err();
    assert!(err.to_string().contains("stay pending"), "{err}");
    // The console names the failure, not a Rust type.
    let diagnostic = lambda_http::lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "TfPilot.ItemsPending");
    assert!(
        diagnostic.error_message.contains("1 inbox item(s) failed"),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(inbox.depth().await.unwrap(), 1);

    // The scheduled sweep (an EventBridge event, not S3) drains what is pending once its next
    // attempt is due: right after the failure it waits (backoff), and nothing fails meanwhile.
    let scheduled: serde_json::Value =
        serde_json::from_str(&fixture("scheduled-event.json")).unwrap();
    let report = handle_worker_event(&worker, scheduled.clone())
        .await
        .unwrap();
    assert_eq!((report.waiting, report.done), (1, 0), "{report:?}");
    let due = worker.with_backoff(std::time::Duration::ZERO, std::time::Duration::ZERO);
    let report = handle_worker_event(&due, scheduled).await.unwrap();
    assert_eq!(report.done, 1);
    assert_eq!(inbox.depth().await.unwrap(), 0);
    assert_eq!(failing.calls.load(Ordering::SeqCst), 2);
}

/// A bad setting on Lambda is reported through the runtime's init-error endpoint (the console
/// then names the variable, not only `Runtime.ExitError`) and logged as one JSON line.
#[tokio::test]
async fn a_bad_setting_on_lambda_reaches_the_runtimes_init_error_endpoint() {
    use axum::routing::post;
    let seen: Arc<std::sync::Mutex<Vec<(String, String, String)>>> = Arc::default();
    let record = seen.clone();
    let runtime = axum::Router::new().route(
        "/2018-06-01/runtime/init/error",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let kind = headers
                    .get("lambda-runtime-function-error-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                record
                    .lock()
                    .unwrap()
                    .push(("init/error".into(), kind, body));
                (StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, runtime).await });

    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tfpilot"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("TFPILOT_LAMBDA_FUNCTION", "webhook")
        .env("TFPILOT_STORE", format!("fs://{}", dir.path().display()))
        .env("TFPILOT_LOG_FORMAT", "fancy")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    server.abort();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one init error reported: {seen:?}\n{stderr}");
    let (_, kind, body) = &seen[0];
    assert_eq!(kind, "Runtime.ConfigError");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["errorType"], "ConfigError");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("TFPILOT_LOG_FORMAT: must be `json` or `pretty`, got `fancy`"),
        "{message}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(
        line["fields"]["problems"][0]["variable"],
        "TFPILOT_LOG_FORMAT"
    );
}

/// Counts sweeps; handles nothing else.
#[derive(Default)]
struct Sweeps(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl tfpilot::worker::EventHandler for Sweeps {
    async fn handle(
        &self,
        _delivery: &Delivery,
        _event: &tfpilot::webhook::Event,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    async fn sweep(&self) -> anyhow::Result<usize> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(2)
    }
}

#[tokio::test]
async fn the_schedule_runs_the_sweep_and_an_s3_event_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Arc::new(FsInbox::open(dir.path()).unwrap());
    let sweeps = Arc::new(Sweeps::default());
    let worker = Worker::new(inbox, sweeps.clone());
    let scheduled: serde_json::Value =
        serde_json::from_str(&fixture("scheduled-event.json")).unwrap();
    let report = handle_worker_event(&worker, scheduled).await.unwrap();
    assert_eq!(report.swept, 2, "{report:?}");
    assert_eq!(sweeps.0.load(Ordering::SeqCst), 1);
    let s3: serde_json::Value = serde_json::from_str(&fixture("s3-inbox-event.json")).unwrap();
    let report = handle_worker_event(&worker, s3).await.unwrap();
    assert_eq!(report.swept, 0);
    assert_eq!(
        sweeps.0.load(Ordering::SeqCst),
        1,
        "an inbox event sweeps nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn serve_sweeps_on_its_timer_until_stopped() {
    use std::time::Duration;
    let sweeps = Arc::new(Sweeps::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let every = tfpilot::server::SWEEP_INTERVAL;
    let task = tokio::spawn(tfpilot::server::sweep_every(sweeps.clone(), every, stopped));
    tokio::time::sleep(every - Duration::from_secs(1)).await;
    assert_eq!(sweeps.0.load(Ordering::SeqCst), 0, "not at start");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sweeps.0.load(Ordering::SeqCst), 1);
    tokio::time::sleep(every).await;
    assert_eq!(sweeps.0.load(Ordering::SeqCst), 2);
    stop.send(true).unwrap();
    task.await.unwrap();
    tokio::time::sleep(every * 2).await;
    assert_eq!(sweeps.0.load(Ordering::SeqCst), 2, "stopped");
}
