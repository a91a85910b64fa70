//! The Checks API (check runs TfPilot creates on a commit, with their buttons) and team
//! membership, as GitHub's REST description has them:
//! `POST /repos/{owner}/{repo}/check-runs`, `PATCH /repos/{owner}/{repo}/check-runs/{id}`,
//! `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`,
//! `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`.

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{GitHubError, Result};
use super::transport::{Auth, Call};
use super::{RepoClient, encode_path, encode_query};

/// The longest `output.summary` and `output.text` GitHub accepts (characters).
pub const MAX_CHECK_OUTPUT_CHARS: usize = 65_535;
/// At most this many buttons (`actions`) on a check run.
pub const MAX_CHECK_ACTIONS: usize = 3;
/// The longest button label, description and identifier GitHub accepts.
pub const MAX_ACTION_LABEL: usize = 20;
pub const MAX_ACTION_DESCRIPTION: usize = 40;
pub const MAX_ACTION_IDENTIFIER: usize = 20;

/// How a completed check run ended (GitHub's `conclusion`, the values TfPilot uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckConclusion {
    Success,
    Failure,
    Neutral,
}

/// `in_progress`, or `completed` with its conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    InProgress,
    Completed(CheckConclusion),
}

/// A check run's `output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutput {
    pub title: String,
    /// Markdown, at most [`MAX_CHECK_OUTPUT_CHARS`].
    pub summary: String,
    /// Markdown, at most [`MAX_CHECK_OUTPUT_CHARS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A button on a check run: a click sends `check_run.requested_action` with `identifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckAction {
    pub label: String,
    pub description: String,
    pub identifier: String,
}

/// What TfPilot writes into a check run (created or updated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunWrite {
    pub name: String,
    pub state: CheckState,
    /// Where "Details" leads (the workflow run).
    pub details_url: Option<String>,
    /// TfPilot's own reference (the request id), echoed in every `check_run` webhook.
    pub external_id: String,
    pub output: Option<CheckOutput>,
    /// Replaces the buttons (at most [`MAX_CHECK_ACTIONS`]); `None` leaves them.
    pub actions: Option<Vec<CheckAction>>,
}

impl CheckRunWrite {
    fn body(&self, head_sha: Option<&str>) -> Value {
        let mut body = serde_json::json!({
            "name": self.name,
            "external_id": self.external_id,
        });
        let obj = body
            .as_object_mut()
            .unwrap_or_else(|| unreachable!("a JSON object literal"));
        if let Some(sha) = head_sha {
            obj.insert("head_sha".into(), sha.into());
        }
        match self.state {
            CheckState::InProgress => {
                obj.insert("status".into(), "in_progress".into());
            }
            CheckState::Completed(c) => {
                obj.insert("status".into(), "completed".into());
                obj.insert("conclusion".into(), serde_json::json!(c));
            }
        }
        if let Some(url) = &self.details_url {
            obj.insert("details_url".into(), url.clone().into());
        }
        if let Some(output) = &self.output {
            obj.insert("output".into(), serde_json::json!(output));
        }
        if let Some(actions) = &self.actions {
            obj.insert("actions".into(), serde_json::json!(actions));
        }
        body
    }
}

#[derive(Deserialize)]
struct CheckRunJson {
    id: u64,
    #[serde(default)]
    external_id: Option<String>,
}

impl RepoClient {
    fn checks_call(&self, op: &'static str, what: String, method: Method, rest: &str) -> Call {
        Call::new(
            op,
            what,
            method,
            format!("/repos/{}/{}{rest}", self.repo.owner(), self.repo.name()),
            self.repo_auth(),
        )
    }

    /// Creates a check run on `head_sha`; returns its id.
    pub async fn create_check_run(&self, head_sha: &str, run: &CheckRunWrite) -> Result<u64> {
        let what = format!("create check run {} in {}", run.name, self.repo);
        let call = self
            .checks_call(
                "create_check_run",
                what.clone(),
                Method::POST,
                "/check-runs",
            )
            .json(run.body(Some(head_sha)));
        let created: CheckRunJson = self.transport.send(call).await?.json(&what)?;
        Ok(created.id)
    }

    /// Updates check run `id` (status, conclusion, output, buttons).
    pub async fn update_check_run(&self, id: u64, run: &CheckRunWrite) -> Result<()> {
        let what = format!("update check run {id} in {}", self.repo);
        let call = self
            .checks_call(
                "update_check_run",
                what,
                Method::PATCH,
                &format!("/check-runs/{id}"),
            )
            .json(run.body(None));
        self.transport.send(call).await.map(drop)
    }

    /// The check run named `name` on `head_sha` whose `external_id` is `external_id` (one page
    /// of the newest): how a check run created before a crash is found instead of created twice.
    pub async fn find_check_run(
        &self,
        head_sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<u64>> {
        #[derive(Deserialize)]
        struct ListJson {
            check_runs: Vec<CheckRunJson>,
        }
        let what = format!("list check runs {name} of {head_sha} in {}", self.repo);
        let rest = format!(
            "/commits/{}/check-runs?check_name={}&filter=all&per_page=100",
            encode_path(head_sha),
            encode_query(name)
        );
        let call = self.checks_call("list_check_runs", what.clone(), Method::GET, &rest);
        let list: ListJson = self.transport.send(call).await?.json(&what)?;
        Ok(list
            .check_runs
            .into_iter()
            .find(|c| c.external_id.as_deref() == Some(external_id))
            .map(|c| c.id))
    }

    /// Whether GitHub knows the account `login` (`GET /users/{username}`: 404 when it does not).
    pub async fn user_exists(&self, login: &str) -> Result<bool> {
        let call = Call::new(
            "get_user",
            format!("look up the user {login}"),
            Method::GET,
            format!("/users/{}", encode_query(login)),
            self.repo_auth(),
        );
        self.found(call).await
    }

    /// Whether the team `org/slug` exists and the App can see it
    /// (`GET /orgs/{org}/teams/{team_slug}`).
    pub async fn team_exists(&self, team: &str) -> Result<bool> {
        let Some((org, slug)) = team.split_once('/') else {
            return Ok(false);
        };
        let call = Call::new(
            "get_team",
            format!("look up the team {team}"),
            Method::GET,
            format!("/orgs/{}/teams/{}", encode_query(org), encode_query(slug)),
            self.members_auth(),
        );
        self.found(call).await
    }

    fn repo_auth(&self) -> Auth {
        Auth::Repo {
            installation: self.installation,
            repo: self.repo.clone(),
        }
    }

    fn members_auth(&self) -> Auth {
        Auth::Members {
            installation: self.installation,
            repo: self.repo.clone(),
        }
    }

    /// Whether GitHub has what `call` reads (404: it has not).
    async fn found(&self, call: Call) -> Result<bool> {
        match self.transport.send(call).await {
            Ok(_) => Ok(true),
            Err(GitHubError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `login` is an active member of the team `org/slug` (a pending invitation is not;
    /// GitHub answers 404 for a non-member, and for a team the App cannot see).
    pub async fn team_member(&self, team: &str, login: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct MembershipJson {
            state: String,
        }
        let Some((org, slug)) = team.split_once('/') else {
            return Ok(false);
        };
        let what = format!("read {login}'s membership of {team}");
        let call = Call::new(
            "team_membership",
            what.clone(),
            Method::GET,
            format!(
                "/orgs/{}/teams/{}/memberships/{}",
                encode_query(org),
                encode_query(slug),
                encode_query(login)
            ),
            self.members_auth(),
        );
        match self.transport.send(call).await {
            Ok(resp) => Ok(resp.json::<MembershipJson>(&what)?.state == "active"),
            Err(GitHubError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
