//! The App manifest flow's one API call: `POST /app-manifests/{code}/conversions` exchanges the
//! code GitHub hands back after the user created the App for its id, slug, private key and
//! webhook secret. It is the only call TfPilot makes without credentials (there are none yet),
//! so it does not go through the App's transport.

use secrecy::SecretString;
use serde::Deserialize;

use super::error::{GitHubError, Result};

/// What GitHub hands over once for a new App (the `pem` and secrets are never shown again).
#[derive(Debug, Clone)]
pub struct NewApp {
    pub id: u64,
    pub slug: String,
    pub name: String,
    /// The App's page; installing is at `<html_url>/installations/new`.
    pub html_url: String,
    pub owner: Option<String>,
    pub pem: SecretString,
    pub webhook_secret: Option<SecretString>,
    pub client_id: String,
}

/// How long the exchange may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Exchanges `code` at the API `api_url` (`https://api.github.com`, GHES `…/api/v3`).
pub async fn convert(api_url: &str, code: &str) -> Result<NewApp> {
    #[derive(Deserialize)]
    struct Owner {
        login: Option<String>,
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(flatten)]
        app: super::app::AppJson,
        owner: Option<Owner>,
        pem: String,
        webhook_secret: Option<String>,
        client_id: String,
    }
    let operation = "exchange the App manifest code".to_owned();
    // The code comes back in a URL from the browser: only a plain token may go into the path.
    if code.is_empty()
        || code.len() > 200
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(GitHubError::Validation {
            operation,
            message: "the code GitHub handed back is not a code".into(),
        });
    }
    let url = format!(
        "{}/app-manifests/{code}/conversions",
        api_url.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent("tfpilot")
        .build()
        .map_err(|e| GitHubError::Unexpected {
            operation: operation.clone(),
            message: e.to_string(),
        })?;
    let response = client
        .post(&url)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .send()
        .await
        .map_err(|e| GitHubError::Transient {
            operation: operation.clone(),
            attempts: 1,
            message: format!("network error: {e}"),
        })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| GitHubError::Transient {
        operation: operation.clone(),
        attempts: 1,
        message: format!("network error: {e}"),
    })?;
    if status.as_u16() == 404 {
        return Err(GitHubError::NotFound {
            operation,
            message:
                "the code is unknown, used already, or older than an hour: create the App again"
                    .into(),
        });
    }
    if !status.is_success() {
        return Err(GitHubError::Validation {
            operation,
            message: format!(
                "HTTP {}: {}",
                status.as_u16(),
                super::transport::github_message(&body)
            ),
        });
    }
    let a: Answer = serde_json::from_slice(&body).map_err(|e| GitHubError::Unexpected {
        operation: operation.clone(),
        message: format!("cannot read the answer: {e}"),
    })?;
    let app = super::AppInfo::from(a.app);
    Ok(NewApp {
        id: app.id,
        slug: app.slug,
        name: app.name,
        html_url: app.html_url,
        owner: a.owner.and_then(|o| o.login),
        pem: SecretString::from(a.pem),
        webhook_secret: a.webhook_secret.map(SecretString::from),
        client_id: a.client_id,
    })
}
