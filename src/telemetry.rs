//! Logging with `tracing`: JSON on AWS Lambda or with `TFPILOT_LOG_FORMAT=json`, human-readable
//! elsewhere; the filter comes from `RUST_LOG` (default `info`).
//!
//! Each delivery is handled inside a `delivery` span carrying `event`, `delivery` and `repo`,
//! so every line about it can be found by its delivery id.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::ids::{DeliveryId, RepoName};

/// True when running inside AWS Lambda.
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Installs the global subscriber. A second call (tests) does nothing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => on_lambda(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    // Already installed: keep the first one.
    drop(result);
}

/// The span every line about one delivery is logged in.
pub fn delivery_span(event: &str, delivery: &DeliveryId, repo: Option<&RepoName>) -> tracing::Span {
    let span = tracing::info_span!(
        "delivery",
        event = %event,
        delivery = %delivery,
        repo = tracing::field::Empty,
    );
    if let Some(repo) = repo {
        span.record("repo", tracing::field::display(repo));
    }
    span
}
