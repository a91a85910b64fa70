//! AWS Lambda: the same binary as two functions.
//!
//! * **webhook** — the router of [`crate::server::create_app`] under `lambda_http::run`, behind a
//!   Function URL. `lambda_http` decodes base64 bodies before the router sees them, so the HMAC
//!   check is the same code. The inbox write finishes before the answer (Lambda freezes work left
//!   running afterwards).
//! * **worker** — invoked by S3 `ObjectCreated` events on the bucket's `inbox/` prefix (keys
//!   `inbox/<delivery>.json`), and by a schedule that drains whatever is still pending (failed
//!   items wait for it), then runs the handler's sweep (the reconciliation of lost webhooks).

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde::Serialize;

use crate::ids::DeliveryId;
use crate::server::{AppState, create_app};
use crate::worker::{DrainReport, Outcome, Worker};

/// The largest request a Lambda Function URL passes to the function (6 MB, an AWS quota): the
/// webhook function's front door refuses bigger bodies itself (413), GitHub's 25 MiB never
/// reaches it.
pub const FUNCTION_URL_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Reports a failure to start to the Lambda runtime (`POST /2018-06-01/runtime/init/error` on
/// `AWS_LAMBDA_RUNTIME_API`), so the console shows what is wrong (`errorType`, `errorMessage`)
/// instead of only `Runtime.ExitError`. The process should exit afterwards.
pub async fn report_init_error(
    runtime_api: &str,
    error_type: &str,
    message: &str,
) -> Result<(), String> {
    use http_body_util::{BodyExt as _, Full};
    let body = serde_json::json!({
        "errorType": error_type,
        "errorMessage": message,
        "stackTrace": [],
    })
    .to_string();
    let connect = async {
        let stream = tokio::net::TcpStream::connect(runtime_api)
            .await
            .map_err(|e| format!("cannot reach the runtime API at {runtime_api}: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("runtime API handshake: {e}"))?;
        tokio::spawn(connection);
        let request = http::Request::post(format!(
            "http://{runtime_api}/2018-06-01/runtime/init/error"
        ))
        .header(http::header::HOST, runtime_api)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            "Lambda-Runtime-Function-Error-Type",
            format!("Runtime.{error_type}"),
        )
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("runtime API: {e}"))?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the runtime API answered {status}"))
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), connect)
        .await
        .map_err(|_| "the runtime API did not answer within 5 s".to_owned())?
}

/// Which of the two functions this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LambdaFunction {
    /// HTTP: GitHub's webhooks through a Function URL.
    Webhook,
    /// S3 inbox events and the scheduled sweep.
    Worker,
}

/// Runs the webhook function: `state`'s router under `lambda_http` until the runtime stops it.
pub async fn run_webhook(state: AppState) -> anyhow::Result<()> {
    lambda_http::run(create_app(state))
        .await
        .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}

/// Runs the worker function: each invocation (S3 events or the schedule) is handed to `worker`.
pub async fn run_worker(worker: Worker) -> anyhow::Result<()> {
    let worker = Arc::new(worker);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let worker = Arc::clone(&worker);
        async move { handle_worker_event(&worker, event.payload).await }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}

/// What one worker invocation did (the function's result, visible in the console).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerReport {
    pub done: usize,
    pub retry: usize,
    pub gave_up: usize,
    pub skipped: usize,
    /// Failed items whose next attempt is not due yet (backoff).
    pub waiting: usize,
    /// Items the inbox could not read or update; they stay pending.
    pub failed: usize,
    /// Items another worker (instance) was handling.
    pub busy: usize,
    /// Items waiting behind an older pending item of their thread.
    pub held_back: usize,
    /// Keys in the event that are not inbox items (ignored).
    pub ignored_keys: Vec<String>,
    /// What the scheduled sweep decided (requests reconciled with GitHub).
    pub swept: usize,
}

impl WorkerReport {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Done => self.done += 1,
            Outcome::Retry { .. } => self.retry += 1,
            Outcome::GaveUp { .. } => self.gave_up += 1,
            Outcome::NotDue { .. } => self.waiting += 1,
            Outcome::AlreadyFinished | Outcome::NotFound => self.skipped += 1,
            Outcome::Busy { .. } => self.busy += 1,
            Outcome::HeldBack { .. } => self.held_back += 1,
        }
    }
}

impl From<DrainReport> for WorkerReport {
    fn from(r: DrainReport) -> Self {
        Self {
            done: r.done,
            retry: r.retry,
            gave_up: r.gave_up,
            skipped: r.skipped,
            waiting: r.waiting,
            failed: r.failed,
            busy: r.busy,
            held_back: r.held_back,
            ignored_keys: Vec::new(),
            swept: 0,
        }
    }
}

/// The worker function's body: an S3 event processes the items it names; any other event (the
/// schedule) drains every pending item. An error (some item failed and stays pending, or waits
/// behind an older item of its thread) makes Lambda retry the invocation; the sweep picks up
/// whatever is left after that. Items held by another instance's lease are not an error.
/// Why a worker invocation failed, named for the Lambda console (`errorType`) instead of the
/// Rust type behind it; Lambda retries the invocation.
#[derive(Debug, thiserror::Error)]
pub enum WorkerFailure {
    /// The invocation's event is not an S3 notification or a schedule TfPilot can read.
    #[error("the invocation's event is not readable: {0}")]
    UnreadableEvent(#[from] serde_json::Error),
    /// The inbox (the requests bucket) could not be read or written.
    #[error("the inbox is unavailable: {0}")]
    InboxUnavailable(#[from] crate::inbox::InboxError),
    /// Some items failed or wait behind an older item of their thread: retried later.
    #[error(
        "{failed} inbox item(s) failed and {held_back} wait behind an older delivery of their thread; they stay pending for a retry"
    )]
    ItemsPending { failed: usize, held_back: usize },
}

impl WorkerFailure {
    /// The `errorType` the Lambda console shows.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnreadableEvent(_) => "TfPilot.UnreadableEvent",
            Self::InboxUnavailable(_) => "TfPilot.InboxUnavailable",
            Self::ItemsPending { .. } => "TfPilot.ItemsPending",
        }
    }
}

impl From<WorkerFailure> for lambda_runtime::Diagnostic {
    fn from(failure: WorkerFailure) -> Self {
        // The whole chain: "the inbox is unavailable: <the store's error>: <S3's answer>".
        let mut message = failure.to_string();
        let mut source = std::error::Error::source(&failure);
        while let Some(e) = source {
            let text = e.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = e.source();
        }
        lambda_runtime::Diagnostic {
            error_type: failure.error_type().to_owned(),
            error_message: message,
        }
    }
}

pub async fn handle_worker_event(
    worker: &Worker,
    payload: serde_json::Value,
) -> Result<WorkerReport, WorkerFailure> {
    let is_s3 = payload
        .get("Records")
        .and_then(|r| r.as_array())
        .is_some_and(|records| {
            records
                .iter()
                .any(|r| r.get("eventSource").and_then(|s| s.as_str()) == Some("aws:s3"))
        });
    let report = if is_s3 {
        let event: S3Event = serde_json::from_value(payload)?;
        let report = process_s3_event(worker, &event).await?;
        // The items this invocation was given are done: the work a burst defers (the
        // requests dashboard) is done once for them.
        worker.handler().settle().await;
        report
    } else {
        tracing::info!("scheduled sweep of the inbox");
        let mut report = WorkerReport::from(worker.drain().await?);
        // Then what GitHub may have failed to tell (lost webhooks); its failure is logged and
        // does not make Lambda retry the drain.
        match worker.handler().sweep().await {
            Ok(decided) => report.swept = decided,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the sweep failed; it runs again on the next schedule")
            }
        }
        report
    };
    tracing::info!(?report, "worker invocation finished");
    if report.retry + report.failed + report.held_back > 0 {
        return Err(WorkerFailure::ItemsPending {
            failed: report.retry + report.failed,
            held_back: report.held_back,
        });
    }
    Ok(report)
}

/// Processes the inbox items an S3 event names, in the event's order, each once.
pub async fn process_s3_event(
    worker: &Worker,
    event: &S3Event,
) -> Result<WorkerReport, crate::inbox::InboxError> {
    let mut report = WorkerReport::default();
    let mut seen = BTreeSet::new();
    for record in &event.records {
        let key = record.s3.object.key.as_deref().unwrap_or_default();
        let Some(id) = delivery_id_from_key(key) else {
            tracing::warn!(key, "S3 event for a key that is not an inbox item; ignored");
            report.ignored_keys.push(key.to_owned());
            continue;
        };
        if !seen.insert(id.clone()) {
            continue;
        }
        // Like a drain: one item the inbox fails on does not stop the others.
        match worker.process_one(&id).await {
            Ok(outcome) => report.add(&outcome),
            Err(e) => {
                report.failed += 1;
                tracing::error!(delivery = %id, error = %e, "cannot process the inbox item; it stays pending");
            }
        }
    }
    Ok(report)
}

/// `inbox/<delivery>.json` (URL-encoded as S3 events send keys) → the delivery id.
pub fn delivery_id_from_key(key: &str) -> Option<DeliveryId> {
    // S3 event keys are form-encoded: `+` is a space, the rest percent-encoded.
    let plus_decoded = key.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8()
        .ok()?;
    decoded
        .strip_prefix("inbox/")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_keys_are_url_decoded() {
        let id = delivery_id_from_key("inbox/72d3162e-cc78-11e3-81ab-4c9367dc0958.json").unwrap();
        assert_eq!(id.as_str(), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(
            delivery_id_from_key("inbox%2Fabc-1.json").map(|i| i.to_string()),
            Some("abc-1".into())
        );
        for other in [
            "requests/abc.json",
            "inbox/abc.txt",
            "inbox/a+b.json",
            "inbox/..%2Fx.json",
            "inbox/.json",
            "inbox/%ff.json",
        ] {
            assert_eq!(delivery_id_from_key(other), None, "{other}");
        }
    }
}
