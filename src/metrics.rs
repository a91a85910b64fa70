//! Prometheus metrics through the `metrics` facade and `metrics-exporter-prometheus`.
//!
//! One process-wide recorder, installed on first use; `GET /metrics` renders it. Metric names
//! live here so dashboards have one place to look.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: webhook deliveries by `event` and `outcome`
/// (`queued`, `duplicate`, `ignored`, `ping`, `unauthorized`, `bad_request`, `too_large`, `error`).
pub const DELIVERIES: &str = "tfpilot_webhook_deliveries_total";
/// Counter: deliveries refused for their signature, by `reason`.
pub const SIGNATURE_FAILURES: &str = "tfpilot_webhook_signature_failures_total";
/// Gauge: pending inbox items (refreshed on every scrape and by the worker).
pub const INBOX_DEPTH: &str = "tfpilot_inbox_depth";
/// Histogram: event handler run time in seconds, by `event` and `outcome` (`ok`, `error`).
pub const HANDLER_DURATION: &str = "tfpilot_handler_duration_seconds";
/// Counter: inbox items the worker finished or retried, by `outcome`.
pub const WORKER_ITEMS: &str = "tfpilot_worker_items_total";

/// Counter: chat notices by `outcome` (`delivered`, `not_configured`, `refused`, `unavailable`,
/// `unknown_route`).
pub const SLACK_NOTICES: &str = "tfpilot_slack_notices_total";

/// Buckets for handler latency: handlers call GitHub, so from milliseconds to a minute.
const HANDLER_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first call.
pub fn handle() -> PrometheusHandle {
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    // Setting buckets for a fixed full name cannot fail; keep a working exporter regardless.
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HANDLER_DURATION.to_owned()), HANDLER_BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("a metrics recorder was already installed; /metrics will stay empty");
    }
    describe();
    handle
}

fn describe() {
    metrics::describe_counter!(DELIVERIES, "Webhook deliveries by event and outcome");
    metrics::describe_counter!(
        SIGNATURE_FAILURES,
        "Webhook deliveries refused for a missing or wrong signature"
    );
    metrics::describe_gauge!(INBOX_DEPTH, "Inbox items not yet processed");
    metrics::describe_histogram!(
        HANDLER_DURATION,
        metrics::Unit::Seconds,
        "Time the event handler took per inbox item"
    );
    metrics::describe_counter!(WORKER_ITEMS, "Inbox items processed, by outcome");
}

/// Counts one delivery.
pub fn delivery(event: &str, outcome: &'static str) {
    metrics::counter!(DELIVERIES, "event" => event.to_owned(), "outcome" => outcome).increment(1);
}

/// Counts one signature failure.
pub fn signature_failure(reason: &'static str) {
    metrics::counter!(SIGNATURE_FAILURES, "reason" => reason).increment(1);
}

pub fn inbox_depth(depth: usize) {
    metrics::gauge!(INBOX_DEPTH).set(depth as f64);
}

/// Moves the inbox gauge between two drains (`serve`: +1 per queued delivery, −1 per finished).
pub fn inbox_depth_change(delta: f64) {
    metrics::gauge!(INBOX_DEPTH).increment(delta);
}

pub fn handler_duration(event: &str, outcome: &'static str, seconds: f64) {
    metrics::histogram!(HANDLER_DURATION, "event" => event.to_owned(), "outcome" => outcome)
        .record(seconds);
}

pub fn worker_item(outcome: &'static str) {
    metrics::counter!(WORKER_ITEMS, "outcome" => outcome).increment(1);
}

/// The Prometheus text exposition.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}
