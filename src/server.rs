//! The HTTP service: one axum router ([`create_app`]) shared by `serve`, AWS Lambda and tests.
//!
//! * `POST /webhooks/github` — verify, parse, write to the inbox, answer (202 queued, 200
//!   duplicate/ping/ignored, 401 signature, 400 unreadable, 413 too large). The durable write
//!   happens before the answer, so work is never lost after GitHub got its 202.
//! * `GET /healthz` — 200 with the version.
//! * `GET /metrics` — Prometheus text, unless turned off (404) or protected by a bearer token
//!   (401 without it). Reads no storage: the inbox gauge is kept by the worker (`serve`: +1 per
//!   queued delivery, −1 per finished item, exact after each drain).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::config::MetricsAccess;
use crate::ids::DeliveryId;
use crate::inbox::{Delivery, Inbox, InboxError, PutOutcome};
use crate::webhook::{self, Event, Rejection, SignatureError};
use crate::worker::{EventHandler, Worker};
use crate::{metrics, telemetry};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a client may take to send a webhook body. GitHub sends at once; a client that
/// trickles bytes only holds a connection (and up to 25 MiB) before its signature can be checked.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The bytes of webhook bodies held at once before their signature is checked: what bounds the
/// memory unverified senders can take. A body takes budget as its bytes *arrive*, so clients that
/// trickle (or stall) hold only what they sent and never keep GitHub's deliveries waiting; a
/// sender of many large bodies waits for budget within the body-read timeout, then gets 408.
pub const MAX_UNVERIFIED_BODY_BYTES: usize = 256 * 1024 * 1024;

/// How long the inbox write may take before the webhook answers 503 (GitHub waits 10 s; a stalled
/// store must not hold the answer past that). The S3 client's own limits are shorter
/// (`store::s3::S3_OPERATION_TIMEOUT`); this bounds every backend.
pub const INBOX_WRITE_TIMEOUT: Duration = Duration::from_millis(4500);

/// How often `serve` runs the handler's sweep ([`EventHandler::sweep`]: the reconciliation of
/// requests whose webhook may have been lost), as often as the Lambda schedule does.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long a stop waits for the worker's item in hand (and a sweep under way). One waiting on
/// a GitHub or an assistant that does not answer is left unfinished: its lease is taken over at
/// once by the next start of this instance (and by any other worker once it expires), as after
/// a crash. Long enough for a slow assistant's answer, under the grace of common supervisors
/// (Kubernetes and ECS: 30 s; systemd: 90 s), so the process ends on its own, with a log line.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// What the router's handlers share. Cloning is cheap (reference counts).
#[derive(Clone)]
pub struct AppState {
    webhook_secret: Option<Arc<SecretString>>,
    inbox: Arc<dyn Inbox>,
    work_queue: Option<mpsc::UnboundedSender<DeliveryId>>,
    body_read_timeout: Duration,
    max_body_bytes: usize,
    body_budget: Arc<tokio::sync::Semaphore>,
    metrics: Arc<MetricsAccess>,
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
            max_body_bytes: webhook::MAX_BODY_BYTES,
            body_budget: Arc::new(tokio::sync::Semaphore::new(MAX_UNVERIFIED_BODY_BYTES)),
            metrics: Arc::new(MetricsAccess::Open),
        }
    }

    /// Who may read `GET /metrics` (default: anyone).
    pub fn with_metrics_access(mut self, access: MetricsAccess) -> Self {
        self.metrics = Arc::new(access);
        self
    }

    /// The largest webhook body accepted (default GitHub's 25 MiB; the host's own limit when it
    /// is lower, e.g. a Lambda Function URL's 6 MB), answered 413 above it.
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max.min(webhook::MAX_BODY_BYTES);
        self
    }

    /// The largest webhook body this router accepts.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
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
    // The body is read by the handler itself (`read_body`): within the body-read timeout, within
    // the size limit, and taking the unverified-bytes budget as bytes arrive.
    let webhook = post(receive_webhook).layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/webhooks/github", webhook)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok", "version": VERSION })).into_response()
}

async fn metrics_text(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.metrics.as_ref() {
        MetricsAccess::Open => {}
        MetricsAccess::Off => return text(StatusCode::NOT_FOUND, "metrics are turned off"),
        MetricsAccess::Token(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            // Compared as digests, so the time taken says nothing about the token.
            use sha2::Digest as _;
            let matches = sha2::Sha256::digest(given.as_bytes())
                == sha2::Sha256::digest(token.expose_secret().as_bytes());
            if !matches {
                return text(
                    StatusCode::UNAUTHORIZED,
                    "metrics need `Authorization: Bearer <TFPILOT_METRICS_TOKEN>`",
                );
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(),
    )
        .into_response()
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
    body: axum::body::Body,
) -> Response {
    // The budget this body took is given back when the answer is sent.
    let (body, _budget) = match read_body(&state, &headers, body).await {
        Ok(read) => read,
        Err(refusal) => return body_refused(&state, refusal),
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

/// Why a webhook body was not read.
#[derive(Debug)]
enum BodyRefusal {
    /// Not complete within the body-read timeout (or no budget freed up meanwhile).
    TimedOut,
    /// Over the size limit (announced or sent).
    TooLarge,
    /// The connection failed while sending it.
    Broken(String),
}

/// Reads a webhook body within the body-read timeout and the size limit, taking the
/// unverified-bytes budget as its bytes arrive (returned with the body, held until the answer).
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), BodyRefusal> {
    use http_body_util::BodyExt as _;
    let max = state.max_body_bytes;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(BodyRefusal::TooLarge);
    }
    let read = async {
        let mut body = body;
        let mut buffer = bytes::BytesMut::new();
        let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyRefusal::Broken(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            if buffer.len() + data.len() > max {
                return Err(BodyRefusal::TooLarge);
            }
            let n = u32::try_from(data.len()).map_err(|_| BodyRefusal::TooLarge)?;
            if n > 0 {
                let permit = Arc::clone(&state.body_budget)
                    .acquire_many_owned(n)
                    .await
                    .map_err(|_| BodyRefusal::TimedOut)?;
                match &mut held {
                    Some(h) => h.merge(permit),
                    None => held = Some(permit),
                }
            }
            buffer.extend_from_slice(&data);
        }
        Ok((buffer.freeze(), held))
    };
    match tokio::time::timeout(state.body_read_timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(BodyRefusal::TimedOut),
    }
}

/// The answer to a body that could not be read: 408 when it was too slow, 413 too large, 400.
fn body_refused(state: &AppState, refusal: BodyRefusal) -> Response {
    match refusal {
        BodyRefusal::TimedOut => {
            metrics::delivery("unknown", "body_timeout");
            text(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body was not received within {} s",
                    state.body_read_timeout.as_secs_f32()
                ),
            )
        }
        BodyRefusal::TooLarge => {
            metrics::delivery("unknown", "too_large");
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {} bytes, the most this host accepts",
                    state.max_body_bytes
                ),
            )
        }
        BodyRefusal::Broken(reason) => {
            metrics::delivery("unknown", "bad_request");
            text(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {reason}"),
            )
        }
    }
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
                metrics::inbox_depth_change(1.0);
                // A closed queue means the worker stopped; the item waits for the next start.
                let _ = queue.send(delivery.id);
            }
            Ok(outcome)
        }
        .in_current_span(),
    );
    // On timeout the write goes on in its task: a put is whole or absent (never half an item),
    // and one that lands late is found by GitHub's redelivery (a duplicate) and by the worker.
    match tokio::time::timeout(INBOX_WRITE_TIMEOUT, task).await {
        Ok(joined) => joined.map_err(|e| InboxError::Backend {
            operation: "store the delivery",
            source: Box::new(e),
        })?,
        Err(_) => Err(InboxError::Backend {
            operation: "store the delivery",
            source: format!(
                "the inbox did not answer within {} ms",
                INBOX_WRITE_TIMEOUT.as_millis()
            )
            .into(),
        }),
    }
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
    let stopped = async {
        if let Err(e) = worker_task.await {
            tracing::error!(error = %e, "the worker stopped abnormally");
        }
        if let Err(e) = sweep_task.await {
            tracing::error!(error = %e, "the sweep stopped abnormally");
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, stopped).await.is_err() {
        tracing::warn!(
            grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
            "the item in hand did not finish in time; the next start takes it over"
        );
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
