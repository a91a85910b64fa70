//! `tfpilot setup`: creates TfPilot's GitHub App through GitHub's App manifest flow and saves its
//! credentials to a `.env` file that `serve` and `doctor` read.
//!
//! A local page (`GET /setup` on `PORT`) explains what will be created and asks for the App's
//! name, the webhook URL and the owner (the personal account or an organization). Submitting it
//! shows the review page, whose button posts `app-manifest.yml` (with that webhook URL and the
//! redirect back to `/setup`) to GitHub with a one-time `state`. GitHub redirects back with a
//! `code` and the `state`; the state must be one this process issued and not yet used (so another
//! site cannot make this page exchange a code of its choosing), the code is exchanged
//! (`POST /app-manifests/{code}/conversions`) and the credentials are written to the env file
//! (mode 0600, never over an existing file without `--force`). Then the page shows the install
//! link and the process ends.

mod env_file;
pub mod page;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use env_file::{EnvFileError, render_env_file, write_env_file};

use crate::github::manifest;

/// `app-manifest.yml`, compiled in: the App TfPilot needs, whatever directory setup runs in.
pub const APP_MANIFEST_YML: &str = include_str!("../../app-manifest.yml");

/// Where and how `tfpilot setup` runs.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Where the page listens (the port is `PORT`).
    pub addr: SocketAddr,
    /// GitHub's web side (`TFPILOT_GITHUB_URL`).
    pub github_url: String,
    /// GitHub's API (`TFPILOT_GITHUB_API_URL`).
    pub api_url: String,
    /// The env file to write.
    pub env_file: PathBuf,
    /// Replace an existing env file.
    pub force: bool,
}

/// What setup made.
#[derive(Debug, Clone)]
pub struct SetupOutcome {
    pub app_id: u64,
    pub slug: String,
    pub install_url: String,
}

/// `app-manifest.yml` as the JSON GitHub takes.
pub fn base_manifest() -> anyhow::Result<Value> {
    let yaml: serde_norway::Value =
        serde_norway::from_str(APP_MANIFEST_YML).context("app-manifest.yml does not parse")?;
    serde_json::to_value(yaml).context("app-manifest.yml is not plain data")
}

/// The manifest to post: `app-manifest.yml` with the App's name, the webhook URL and the
/// redirect back to this page.
pub fn manifest_for(base: &Value, name: &str, webhook_url: &str, redirect_url: &str) -> Value {
    let mut m = base.clone();
    m["name"] = json!(name);
    m["hook_attributes"]["url"] = json!(webhook_url);
    m["hook_attributes"]["active"] = json!(true);
    m["redirect_url"] = json!(redirect_url);
    m
}

struct SetupState {
    options: SetupOptions,
    manifest: Value,
    /// The page's own URL (the manifest's `redirect_url`).
    page_url: String,
    /// States issued and not yet used.
    states: Mutex<HashSet<String>>,
    done: watch::Sender<Option<SetupOutcome>>,
}

/// Runs the setup page until an App has been created and saved (or Ctrl-C).
pub async fn run(options: SetupOptions) -> anyhow::Result<SetupOutcome> {
    if options.env_file.exists() && !options.force {
        anyhow::bail!(
            "{} exists already; move it away, or run `tfpilot setup --force` to replace it",
            options.env_file.display()
        );
    }
    let listener = TcpListener::bind(options.addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (set PORT to another port): {e}",
            options.addr
        )
    })?;
    let local = listener.local_addr()?;
    let host = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let page_url = format!("http://{host}:{}/setup", local.port());
    let (done, mut finished) = watch::channel(None);
    let state = Arc::new(SetupState {
        manifest: base_manifest()?,
        options,
        page_url: page_url.clone(),
        states: Mutex::new(HashSet::new()),
        done,
    });
    println!("Open {page_url} to create TfPilot's GitHub App (Ctrl-C to stop).");
    let router = router(state);
    let mut stop = finished.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = stop.wait_for(Option::is_some) => {}
                _ = crate::server::shutdown_signal() => {}
            }
        })
        .await?;
    let outcome = finished
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|o| o.clone());
    outcome.ok_or_else(|| anyhow::anyhow!("stopped before an App was created"))
}

fn router(state: Arc<SetupState>) -> Router {
    Router::new()
        .route("/setup", get(page_or_callback).post(review))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/setup") }),
        )
        .with_state(state)
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
}

fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

async fn page_or_callback(
    State(state): State<Arc<SetupState>>,
    Query(q): Query<Callback>,
) -> Response {
    let env_file = state.options.env_file.display().to_string();
    let Some(code) = q.code else {
        return html(
            StatusCode::OK,
            page::form(&state.manifest, &state.options.github_url, &env_file, None),
        );
    };
    let issued = q.state.as_ref().is_some_and(|s| {
        state
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(s)
    });
    if !issued {
        return html(
            StatusCode::BAD_REQUEST,
            page::failed(
                "This link was not started from this setup page (its state is unknown or used \
                 already), so its code was not exchanged. Start again from this page.",
            ),
        );
    }
    let app = match manifest::convert(&state.options.api_url, &code).await {
        Ok(app) => app,
        Err(e) => {
            tracing::warn!(error = %e, "manifest conversion failed");
            return html(StatusCode::BAD_GATEWAY, page::failed(&e.to_string()));
        }
    };
    let text = render_env_file(&app, &state.options.api_url, &state.options.github_url);
    if let Err(e) = write_env_file(&state.options.env_file, &text, state.options.force) {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            page::failed(&format!(
                "The App {} was created, but its credentials could not be saved: {e}. Delete the \
                 App in GitHub's settings ({}) and run setup again.",
                app.slug, app.html_url
            )),
        );
    }
    let install_url = format!("{}/installations/new", app.html_url.trim_end_matches('/'));
    println!(
        "Created the GitHub App `{}` (id {}); its credentials are in {}.\nInstall it: {install_url}\nThen: tfpilot doctor, tfpilot serve",
        app.slug, app.id, env_file
    );
    let body = page::done(&app.name, &install_url, &env_file);
    state.done.send_replace(Some(SetupOutcome {
        app_id: app.id,
        slug: app.slug,
        install_url,
    }));
    html(StatusCode::OK, body)
}

#[derive(Deserialize)]
struct SetupForm {
    name: String,
    webhook_url: String,
    #[serde(default)]
    organization: String,
}

async fn review(State(state): State<Arc<SetupState>>, Form(form): Form<SetupForm>) -> Response {
    let env_file = state.options.env_file.display().to_string();
    let again = |message: &str| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            page::form(
                &state.manifest,
                &state.options.github_url,
                &env_file,
                Some(message),
            ),
        )
    };
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 34 {
        return again("The App name must be 1 to 34 characters.");
    }
    let webhook = form.webhook_url.trim();
    if !(webhook.starts_with("https://") || webhook.starts_with("http://"))
        || reqwest::Url::parse(webhook).is_err()
    {
        return again(
            "The webhook URL must be an http(s) URL, e.g. https://tfpilot.example.com/webhooks/github.",
        );
    }
    let org = form.organization.trim();
    if !org.is_empty() && !org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return again("An organization login holds only letters, digits and hyphens.");
    }
    let manifest = manifest_for(&state.manifest, name, webhook, &state.page_url);
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    state
        .states
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(nonce.clone());
    let github = state.options.github_url.trim_end_matches('/');
    let (action, owner) = if org.is_empty() {
        (
            format!("{github}/settings/apps/new?state={nonce}"),
            "your personal account".to_owned(),
        )
    } else {
        (
            format!("{github}/organizations/{org}/settings/apps/new?state={nonce}"),
            format!("the organization {org}"),
        )
    };
    html(StatusCode::OK, page::review(&manifest, &action, &owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_app_manifest_yml_with_the_users_answers() {
        let base = base_manifest().expect("app-manifest.yml parses");
        let m = manifest_for(
            &base,
            "TfPilot acme",
            "https://tfpilot.acme.dev/webhooks/github",
            "http://127.0.0.1:3000/setup",
        );
        assert_eq!(m["name"], "TfPilot acme");
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://tfpilot.acme.dev/webhooks/github"
        );
        assert_eq!(m["redirect_url"], "http://127.0.0.1:3000/setup");
        assert_eq!(m["default_permissions"]["contents"], "write");
        assert_eq!(m["public"], false);
        assert_eq!(
            m["default_events"],
            json!([
                "issue_comment",
                "issues",
                "pull_request",
                "workflow_run",
                "check_run"
            ])
        );
    }
}
