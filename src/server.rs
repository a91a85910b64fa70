//! The HTTP service: one axum router ([`create_app`]) shared by `serve`, AWS Lambda and tests.
//!
//! * `POST /webhooks/github` — verify, parse, write to the inbox, answer (202 queued, 200
//!   duplicate/ping/ignored, 401 signature, 400 unreadable, 413 too large). The durable write
//!   happens before the answer, so work is never lost after GitHub got its 202.
//! * `GET /healthz` — 200 with the version.
//! * `GET /metrics` — Prometheus text.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ids::DeliveryId;
use crate::inbox::{Delivery, Inbox, InboxError, PutOutcome};
use crate::webhook::{self, Event, Rejection, SignatureError};
use crate::worker::{EventHandler, Worker};
use crate::{metrics, telemetry};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a client may take to send a webhook body. GitHub sends at once; a client that
/// trickles bytes only holds a connection (and up to 25 MiB) before its signature can be checked.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Webhook requests handled at the same time; more wait for a slot. Bounds the memory that
/// unverified bodies can take (this many × 25 MiB at worst).
pub const MAX_CONCURRENT_WEBHOOKS: usize = 64;

/// How often `serve` runs the handler's sweep ([`EventHandler::sweep`]: the reconciliation of
/// requests whose webhook may have been lost), as often as the Lambda schedule does.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// What the router's handlers share. Cloning is cheap (reference counts).
#[derive(Clone)]
pub struct AppState {
    webhook_secret: Option<Arc<SecretString>>,
    inbox: Arc<dyn Inbox>,
    work_queue: Option<mpsc::UnboundedSender<DeliveryId>>,
    body_read_timeout: Duration,
}

impl AppState {
    /// `webhook_secret: None` refuses every delivery (401).
    pub fn new(webhook_secret: Option<SecretString>, inbox: Arc<dyn Inbox>) -> Self {
        metrics::handle();
        Self {
            webhook_secret: webhook_secret.map(Arc::new),
            inbox,
            work_queue: None,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }

    /// Another limit for reading a webhook body (default [`BODY_READ_TIMEOUT`]).
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Sends the id of each new inbox item to `queue` (the worker loop of `serve`). Without a
    /// queue (Lambda: the S3 event does it) items wait for the next drain.
    pub fn with_work_queue(mut self, queue: mpsc::UnboundedSender<DeliveryId>) -> Self {
        self.work_queue = Some(queue);
        self
    }

    pub fn inbox(&self) -> &Arc<dyn Inbox> {
        &self.inbox
    }
}

/// The router. Webhook bodies: at most [`webhook::MAX_BODY_BYTES`] (413), read within the state's
/// body-read timeout (408), at most [`MAX_CONCURRENT_WEBHOOKS`] at once.
pub fn create_app(state: AppState) -> Router {
    let webhook = post(receive_webhook).layer(
        tower::ServiceBuilder::new()
            .layer(tower::limit::ConcurrencyLimitLayer::new(
                MAX_CONCURRENT_WEBHOOKS,
            ))
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
                state.body_read_timeout,
            ))
            .layer(DefaultBodyLimit::max(webhook::MAX_BODY_BYTES)),
    );
    Router::new()
        .route("/webhooks/github", webhook)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok", "version": VERSION })).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    match state.inbox().depth().await {
        Ok(depth) => metrics::inbox_depth(depth),
        Err(e) => tracing::warn!(error = %e, "cannot count the inbox for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(),
    )
        .into_response()
}

/// Whether reading the body failed because the client was too slow.
fn body_timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn receive_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_refused(&state, &rejection),
    };
    let secret = state
        .webhook_secret
        .as_ref()
        .map(|s| s.expose_secret().as_bytes());
    let incoming = match webhook::accept(secret, &headers, &body) {
        Ok(incoming) => incoming,
        Err(rejection) => return delivery_refused(rejection),
    };
    let span = telemetry::delivery_span(
        &incoming.event_name,
        &incoming.delivery_id,
        incoming.event.repo(),
    );
    async move {
        match &incoming.event {
            Event::Ping(_) => {
                metrics::delivery("ping", "ping");
                tracing::info!("ping");
                return text(StatusCode::OK, "pong");
            }
            Event::Other(name) => {
                metrics::delivery(name, "ignored");
                tracing::debug!("event not handled by TfPilot; ignored");
                return text(
                    StatusCode::ACCEPTED,
                    format!("ignored: TfPilot does not handle `{name}` events"),
                );
            }
            _ => {}
        }
        // `accept` parsed the body as JSON, which implies UTF-8; checked again, never assumed.
        let Ok(body) = String::from_utf8(body.to_vec()) else {
            metrics::delivery(&incoming.event_name, "bad_request");
            return text(StatusCode::BAD_REQUEST, "the body is not UTF-8");
        };
        let delivery = Delivery::new(incoming.delivery_id.clone(), &incoming.event_name, body);
        let stored = store_and_queue(&state, delivery).await;
        stored_answer(&incoming.event_name, stored)
    }
    .instrument(span)
    .await
}

/// The answer to a body that could not be read: 408 when it was too slow, 413 or 400 otherwise.
fn body_refused(state: &AppState, rejection: &BytesRejection) -> Response {
    if body_timed_out(rejection) {
        metrics::delivery("unknown", "body_timeout");
        return text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body was not received within {} s",
                state.body_read_timeout.as_secs()
            ),
        );
    }
    let status = rejection.status();
    let outcome = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "bad_request"
    };
    metrics::delivery("unknown", outcome);
    text(status, rejection.body_text())
}

/// The answer to a delivery that is not GitHub's (401) or not readable (400).
fn delivery_refused(rejection: Rejection) -> Response {
    match rejection {
        Rejection::Signature(e) => {
            let reason = match e {
                SignatureError::NoSecretConfigured => "no_secret",
                SignatureError::Missing => "missing",
                SignatureError::Malformed => "malformed",
                SignatureError::Mismatch => "mismatch",
            };
            metrics::signature_failure(reason);
            metrics::delivery("unknown", "unauthorized");
            tracing::warn!(reason, "webhook refused: {e}");
            text(StatusCode::UNAUTHORIZED, e.to_string())
        }
        Rejection::BadRequest(reason) => {
            metrics::delivery("unknown", "bad_request");
            tracing::warn!(%reason, "webhook refused");
            text(StatusCode::BAD_REQUEST, reason)
        }
    }
}

/// The answer once the inbox write is over: 202 stored, 200 a duplicate, 503 not stored.
fn stored_answer(event_name: &str, stored: Result<PutOutcome, InboxError>) -> Response {
    match stored {
        Ok(PutOutcome::Created) => {
            metrics::delivery(event_name, "queued");
            tracing::info!("queued");
            text(StatusCode::ACCEPTED, "queued")
        }
        Ok(PutOutcome::Duplicate) => {
            metrics::delivery(event_name, "duplicate");
            tracing::info!("duplicate delivery; already in the inbox");
            text(StatusCode::OK, "duplicate")
        }
        Err(e) => {
            // 5xx: GitHub shows the failure and the delivery can be redelivered.
            metrics::delivery(event_name, "error");
            tracing::error!(error = %e, "cannot write the delivery to the inbox");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the inbox is unavailable; redeliver later",
            )
        }
    }
}

/// Writes the delivery to the inbox and queues new items for the worker, in a task of its own:
/// hyper drops the handler when the client hangs up, and a write that completed must still reach
/// the worker.
async fn store_and_queue(state: &AppState, delivery: Delivery) -> Result<PutOutcome, InboxError> {
    let inbox = Arc::clone(&state.inbox);
    let queue = state.work_queue.clone();
    let task = tokio::spawn(
        async move {
            let outcome = inbox.put(&delivery).await?;
            if let (PutOutcome::Created, Some(queue)) = (outcome, queue) {
                // A closed queue means the worker stopped; the item waits for the next start.
                let _ = queue.send(delivery.id);
            }
            Ok(outcome)
        }
        .in_current_span(),
    );
    task.await.map_err(|e| InboxError::Backend {
        operation: "store the delivery",
        source: Box::new(e),
    })?
}

/// Serves `state`'s router on `listener` with `worker` in the background (fed by `queue`, the
/// receiving end of `state`'s work queue) until `shutdown` completes, then lets the worker
/// finish its item. Tests use it with a port-0 listener.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    worker: Worker,
    queue: mpsc::UnboundedReceiver<DeliveryId>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sweep_task = tokio::spawn(sweep_every(
        Arc::clone(worker.handler()),
        SWEEP_INTERVAL,
        stop_rx.clone(),
    ));
    let worker_task = tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        worker
            .run(queue, async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let app = create_app(state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    if let Err(e) = worker_task.await {
        tracing::error!(error = %e, "the worker stopped abnormally");
    }
    if let Err(e) = sweep_task.await {
        tracing::error!(error = %e, "the sweep stopped abnormally");
    }
    served.map_err(|e| anyhow::anyhow!("the HTTP server failed: {e}"))
}

/// Runs `handler`'s sweep every `every` (the first one `every` after start) until `stop` is set.
pub async fn sweep_every(
    handler: Arc<dyn EventHandler>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            _ = timer.tick() => {}
        }
        match handler.sweep().await {
            Ok(0) => {}
            Ok(decided) => tracing::info!(decided, "the sweep decided what webhooks did not"),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the sweep failed; it runs again at the next tick")
            }
        }
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
