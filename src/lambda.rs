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
            ignored_keys: Vec::new(),
            swept: 0,
        }
    }
}

/// The worker function's body: an S3 event processes the items it names; any other event (the
/// schedule) drains every pending item. An error (some item failed and stays pending) makes
/// Lambda retry the invocation.
pub async fn handle_worker_event(
    worker: &Worker,
    payload: serde_json::Value,
) -> Result<WorkerReport, lambda_runtime::Error> {
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
        process_s3_event(worker, &event).await?
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
    if report.retry + report.failed > 0 {
        return Err(format!(
            "{} inbox item(s) failed and stay pending for a retry",
            report.retry + report.failed
        )
        .into());
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
