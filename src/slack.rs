//! Slack incoming webhooks: a [`Notice`] rendered as a Block Kit message and delivered to the
//! webhook of its route.
//!
//! A webhook URL is a secret (whoever holds it can post to the channel): it is never logged,
//! never part of an error (`reqwest` errors are stripped of their URL) and never written in a
//! repository — `.tfpilot.yml` names a *route*, and the routes' URLs come from the environment
//! (`TFPILOT_SLACK_WEBHOOK_URL`, `TFPILOT_SLACK_WEBHOOK_ROUTES`).
//!
//! Delivery is bounded: a few quick attempts with a short timeout each, then a
//! [`SlackError`]. The executor carries notices out as best-effort outbox effects, after the
//! GitHub answers of the same decision, so a Slack outage never delays or loses an answer on
//! GitHub and never holds up the next command.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::domain::{Notice, NoticeEvent};

/// Attempts per notice (the first included).
pub const ATTEMPTS: u32 = 3;
/// The pause before the second and third attempt.
const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(1000)];
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where notices go, as configured (see `config`).
#[derive(Debug, Clone, Default)]
pub struct SlackConfig {
    /// `TFPILOT_SLACK_WEBHOOK_URL`: the default webhook.
    pub webhook_url: Option<SecretString>,
    /// `TFPILOT_SLACK_WEBHOOK_ROUTES`: named webhooks `.tfpilot.yml` may route an environment to.
    pub routes: BTreeMap<String, SecretString>,
    /// `TFPILOT_GITHUB_URL`: GitHub's web address, for the links (`https://github.com`).
    pub github_web_url: String,
}

impl SlackConfig {
    /// Whether any webhook is configured.
    pub fn is_enabled(&self) -> bool {
        self.webhook_url.is_some() || !self.routes.is_empty()
    }
}

/// The route word (in `.tfpilot.yml`) that turns notices off for an environment.
pub const SLACK_OFF: &str = "off";

/// A Slack route's name: 1–64 ASCII letters, digits, `-` and `_`.
pub fn is_route_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Why a notice was not delivered. Never holds the webhook URL.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error(
        "`.tfpilot.yml` routes this environment to `{0}`, which TFPILOT_SLACK_WEBHOOK_ROUTES does not name"
    )]
    UnknownRoute(String),
    /// Slack answered with a client error (a revoked webhook, a bad payload): retrying won't help.
    #[error("Slack refused the message: HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// No answer, or a server error / rate limit, after every attempt.
    #[error("Slack is unavailable after {ATTEMPTS} attempts: {0}")]
    Unavailable(String),
}

/// Sends notices to Slack.
#[derive(Debug, Clone)]
pub struct Slack {
    config: SlackConfig,
    http: reqwest::Client,
}

/// What became of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// Its route (or the default) has no webhook, or the environment's route is `off`.
    NotConfigured,
}

impl Slack {
    pub fn new(config: SlackConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .build()?;
        Ok(Self { config, http })
    }

    /// The webhook of `route` (`None`: the default).
    fn webhook(&self, route: Option<&str>) -> Result<Option<&SecretString>, SlackError> {
        match route {
            None => Ok(self.config.webhook_url.as_ref()),
            Some(SLACK_OFF) => Ok(None),
            Some(name) => self
                .config
                .routes
                .get(name)
                .map(Some)
                .ok_or_else(|| SlackError::UnknownRoute(name.to_owned())),
        }
    }

    /// Delivers `notice` to its route's webhook, retrying briefly.
    pub async fn send(&self, notice: &Notice) -> Result<Sent, SlackError> {
        let Some(url) = self.webhook(notice.route.as_deref())? else {
            return Ok(Sent::NotConfigured);
        };
        let body = message(notice, &self.config.github_web_url).to_string();
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF[(attempt - 1) as usize]).await;
            }
            let sent = self
                .http
                .post(url.expose_secret())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return Ok(Sent::Delivered),
                Ok(r) => {
                    let status = r.status();
                    let text: String = r
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect();
                    if status.is_client_error() && status != http::StatusCode::TOO_MANY_REQUESTS {
                        return Err(SlackError::Refused {
                            status: status.as_u16(),
                            body: text,
                        });
                    }
                    last = format!("HTTP {}: {text}", status.as_u16());
                }
                Err(e) => last = e.without_url().to_string(),
            }
            tracing::debug!(attempt, error = %last, "Slack did not take the notice");
        }
        Err(SlackError::Unavailable(last))
    }
}

/// The Block Kit message of `notice`, its links on `web_url` (`https://github.com`).
pub fn message(notice: &Notice, web_url: &str) -> Value {
    let web = web_url.trim_end_matches('/');
    let repo = notice.repo.to_string();
    let issue_url = format!("{web}/{repo}/issues/{}", notice.issue);
    let title = title(notice.event);
    let short: String = notice.request.to_string().chars().take(8).collect();
    let what = format!(
        "`{}` in `{}` — <{}|{}#{}>",
        escape(&notice.module_type),
        escape(&notice.environment),
        issue_url,
        escape(&repo),
        notice.issue
    );
    let mut fields = vec![
        field("Requested by", &notice.requester),
        field("Environment", &notice.environment),
    ];
    if notice.event == NoticeEvent::Approved {
        fields.push(field("Approved by", &notice.actor));
    }
    if let Some(pr) = notice.pull_request {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Pull request*\n<{web}/{repo}/pull/{pr}|#{pr}>")}));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": what}, "fields": fields}),
    ];
    if let Some(next) = next_step(notice) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": next}}));
    }
    let mut buttons = vec![button("Issue", &issue_url, "tfpilot-issue")];
    if let Some(pr) = notice.pull_request {
        buttons.push(button(
            "Pull request",
            &format!("{web}/{repo}/pull/{pr}"),
            "tfpilot-pr",
        ));
    }
    if let Some(run) = &notice.run_url {
        buttons.push(button("Workflow run", run, "tfpilot-run"));
    }
    blocks.push(json!({"type": "actions", "elements": buttons}));
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("TfPilot request `{short}`")}
    ]}));
    json!({
        "text": format!("{title}: {} in {} ({repo}#{})", notice.module_type, notice.environment, notice.issue),
        "blocks": blocks,
    })
}

fn title(event: NoticeEvent) -> &'static str {
    match event {
        NoticeEvent::PlanReady => "📋 Plan ready, waiting for approval",
        NoticeEvent::PlanFailed => "⚠️ Plan failed",
        NoticeEvent::Approved => "✅ Approved",
        NoticeEvent::Applied => "🚀 Applied",
        NoticeEvent::ApplyFailed => "⚠️ Apply failed",
        NoticeEvent::Destroyed => "🗑️ Destroyed",
        NoticeEvent::DestroyFailed => "⚠️ Destroy failed",
        NoticeEvent::DriftFound => "🌊 Drift found",
    }
}

/// What the reader is asked to do, if anything.
fn next_step(notice: &Notice) -> Option<String> {
    match notice.event {
        NoticeEvent::PlanReady if notice.approvers.is_empty() => Some(
            "Waiting for an approval from anyone with write access: `/tfpilot approve` on the issue."
                .to_owned(),
        ),
        NoticeEvent::PlanReady => {
            let who: Vec<String> = notice.approvers.iter().map(|a| format!("*{}*", escape(a))).collect();
            Some(format!(
                "Waiting for an approval from {}: `/tfpilot approve` on the issue.",
                who.join(", ")
            ))
        }
        NoticeEvent::DriftFound => Some(
            "Changed outside TfPilot: the issue says what changed and the last change TfPilot made."
                .to_owned(),
        ),
        e if e.is_failure() => {
            Some("See the workflow run, and the issue for what to do next.".to_owned())
        }
        _ => None,
    }
}

fn field(name: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", escape(value))})
}

fn button(text: &str, url: &str, action_id: &str) -> Value {
    json!({"type": "button", "text": {"type": "plain_text", "text": text}, "url": url, "action_id": action_id})
}

/// Text safe in Slack's mrkdwn: `&`, `<` and `>` are control characters there.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests;
