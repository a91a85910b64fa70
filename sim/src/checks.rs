//! Check runs (the Checks API) and team memberships, as GitHub's REST description has them:
//! `POST /repos/{owner}/{repo}/check-runs` (201), `PATCH /repos/{owner}/{repo}/check-runs/{id}`
//! (200), `GET /repos/{owner}/{repo}/commits/{ref}/check-runs` (`total_count`, `check_runs`),
//! `GET /orgs/{org}/teams/{team_slug}/memberships/{username}` (200 `{url, role, state}`, 404 for
//! a non-member), and the `check_run` webhook with action `requested_action` when a person
//! clicks one of a check run's buttons. Limits as documented: `output.summary` and
//! `output.text` at most 65,535 characters, at most 3 actions with a label of at most 20, a
//! description of at most 40 and an identifier of at most 20 characters; `completed` needs a
//! `conclusion`.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::model::{ApiError, CheckRun, Model, node_id};
use crate::respond::{api_error, github_json};
use crate::{Shared, Sim, payloads, webhooks};

const MAX_OUTPUT_CHARS: usize = 65_535;
const STATUSES: [&str; 6] = [
    "queued",
    "in_progress",
    "completed",
    "waiting",
    "requested",
    "pending",
];
const CONCLUSIONS: [&str; 8] = [
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];

/// A check run as a test reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCheckRun {
    pub id: u64,
    pub head_sha: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub external_id: Option<String>,
    pub details_url: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub text: Option<String>,
    /// The buttons' identifiers.
    pub actions: Vec<String>,
}

/// The body of a create or update (every field optional on update).
#[derive(Deserialize)]
pub(crate) struct CheckRunBody {
    name: Option<String>,
    head_sha: Option<String>,
    details_url: Option<String>,
    external_id: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    output: Option<Value>,
    actions: Option<Vec<Value>>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(422, format!("Validation Failed: {}", message.into()))
}

fn chars(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

/// Applies `body` to `run` as GitHub validates it.
fn apply(run: &mut CheckRun, body: CheckRunBody) -> Result<(), ApiError> {
    if let Some(name) = body.name {
        if name.is_empty() {
            return Err(invalid("name is empty"));
        }
        run.name = name;
    }
    if let Some(status) = &body.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(invalid(format!(
            "status `{status}` is not one of {STATUSES:?}"
        )));
    }
    if let Some(c) = &body.conclusion
        && !CONCLUSIONS.contains(&c.as_str())
    {
        return Err(invalid(format!(
            "conclusion `{c}` is not one of {CONCLUSIONS:?}"
        )));
    }
    // GitHub: a conclusion sets the status to `completed`; `completed` needs a conclusion.
    let status = match (&body.status, &body.conclusion) {
        (_, Some(_)) => Some("completed".to_owned()),
        (Some(s), None) if s == "completed" => {
            return Err(invalid("conclusion is required when status is completed"));
        }
        (s, None) => s.clone(),
    };
    if let Some(output) = &body.output {
        if !output.is_object()
            || output.get("title").and_then(Value::as_str).is_none()
            || output.get("summary").and_then(Value::as_str).is_none()
        {
            return Err(invalid("output needs a title and a summary"));
        }
        if chars(output.get("summary")) > MAX_OUTPUT_CHARS
            || chars(output.get("text")) > MAX_OUTPUT_CHARS
        {
            return Err(invalid(
                "Only 65535 characters are allowed in output.summary and output.text",
            ));
        }
    }
    if let Some(actions) = &body.actions {
        if actions.len() > 3 {
            return Err(invalid("Only 3 actions are allowed"));
        }
        for a in actions {
            let ok = |k: &str, max: usize| {
                a.get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty() && s.chars().count() <= max)
            };
            if !(ok("label", 20) && ok("description", 40) && ok("identifier", 20)) {
                return Err(invalid(
                    "an action needs a label (at most 20 characters), a description (40) and an identifier (20)",
                ));
            }
        }
    }
    if let Some(s) = status {
        if s == "completed" {
            run.completed_at = Some(crate::model::now());
        }
        run.status = s;
    }
    if body.conclusion.is_some() {
        run.conclusion = body.conclusion;
    }
    if body.details_url.is_some() {
        run.details_url = body.details_url;
    }
    if body.external_id.is_some() {
        run.external_id = body.external_id;
    }
    if body.output.is_some() {
        run.output = body.output;
    }
    if let Some(actions) = body.actions {
        run.actions = actions;
    }
    Ok(())
}

pub(crate) fn payload(model: &Model, run: &CheckRun) -> Value {
    let api = &model.base_url;
    let (owner, _) = run.repo.split_once('/').unwrap_or_default();
    let pulls: Vec<Value> = model
        .repos
        .get(&run.repo)
        .map(|r| {
            r.pulls
                .iter()
                .filter(|(_, p)| {
                    let head = p
                        .closed_head_sha
                        .clone()
                        .or_else(|| r.branches.get(&p.head).cloned());
                    head.as_deref() == Some(run.head_sha.as_str())
                })
                .map(|(n, p)| {
                    let repo = json!({ "id": r.id, "url": format!("{api}/repos/{}", run.repo), "name": r.name });
                    let base_sha = r.branches.get(&p.base).cloned().unwrap_or_default();
                    json!({
                        "id": n, "number": n,
                        "url": format!("{api}/repos/{}/pulls/{n}", run.repo),
                        "head": { "ref": p.head, "sha": run.head_sha, "repo": repo },
                        "base": { "ref": p.base, "sha": base_sha, "repo": repo },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let output = run.output.clone().unwrap_or(json!({}));
    json!({
        "id": run.id,
        "node_id": node_id("CR_kwDO", run.id),
        "head_sha": run.head_sha,
        "name": run.name,
        "url": format!("{api}/repos/{}/check-runs/{}", run.repo, run.id),
        "html_url": format!("{api}/{}/runs/{}", run.repo, run.id),
        "details_url": run.details_url.clone().unwrap_or_default(),
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": payloads::timestamp(run.started_at),
        "completed_at": run.completed_at.map(payloads::timestamp),
        "external_id": run.external_id.clone().unwrap_or_default(),
        "check_suite": {
            "id": run.id,
            "node_id": node_id("CS_kwDO", run.id),
            "head_branch": null,
            "head_sha": run.head_sha,
            "status": run.status,
            "conclusion": run.conclusion,
            "url": format!("{api}/repos/{}/check-suites/{}", run.repo, run.id),
            "before": null,
            "after": null,
            "pull_requests": pulls,
            "app": app(model, owner),
            "created_at": payloads::timestamp(run.started_at),
            "updated_at": payloads::timestamp(run.started_at),
        },
        "output": {
            "title": output.get("title").cloned().unwrap_or(Value::Null),
            "summary": output.get("summary").cloned().unwrap_or(Value::Null),
            "text": output.get("text").cloned().unwrap_or(Value::Null),
            "annotations_count": 0,
            "annotations_url": format!("{api}/repos/{}/check-runs/{}/annotations", run.repo, run.id),
        },
        "app": app(model, owner),
        "pull_requests": pulls,
    })
}

fn app(model: &Model, owner: &str) -> Value {
    let api = &model.base_url;
    json!({
        "id": model.app_id,
        "slug": model.app_slug,
        "node_id": node_id("A_kwDO", model.app_id),
        "owner": payloads::user(model, owner),
        "name": model.app_slug,
        "description": "",
        "external_url": api,
        "html_url": format!("{api}/apps/{}", model.app_slug),
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "permissions": {},
        "events": [],
    })
}

type St = State<Arc<Shared>>;

pub(crate) async fn create_check_run(
    State(shared): St,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body: CheckRunBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api_error(ApiError::new(400, format!("Problems parsing JSON: {e}"))),
    };
    let mut model = shared.lock();
    let full = format!("{owner}/{repo}");
    let (Some(name), Some(head_sha)) = (body.name.clone(), body.head_sha.clone()) else {
        return api_error(invalid("name and head_sha are required"));
    };
    if !model.commits.contains_key(&head_sha) {
        return api_error(invalid(format!("No commit found for SHA: {head_sha}")));
    }
    let id = model.next_id();
    let mut run = CheckRun {
        id,
        repo: full,
        head_sha,
        name,
        status: "queued".into(),
        conclusion: None,
        external_id: None,
        details_url: None,
        output: None,
        actions: Vec::new(),
        started_at: crate::model::now(),
        completed_at: None,
    };
    if let Err(e) = apply(&mut run, body) {
        return api_error(e);
    }
    let v = payload(&model, &run);
    model.check_runs.insert(id, run);
    github_json(StatusCode::CREATED, v)
}

pub(crate) async fn update_check_run(
    State(shared): St,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    body: Bytes,
) -> Response {
    let body: CheckRunBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api_error(ApiError::new(400, format!("Problems parsing JSON: {e}"))),
    };
    let mut model = shared.lock();
    let full = format!("{owner}/{repo}");
    let Some(mut run) = model
        .check_runs
        .get(&id)
        .filter(|r| r.repo == full)
        .cloned()
    else {
        return api_error(ApiError::not_found());
    };
    if let Err(e) = apply(&mut run, body) {
        return api_error(e);
    }
    let v = payload(&model, &run);
    model.check_runs.insert(id, run);
    github_json(StatusCode::OK, v)
}

/// `check_name` from a query string (percent-decoded).
fn check_name(query: &str) -> Option<String> {
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("check_name="))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs` (reached through the commits route).
pub(crate) fn list_for_ref(model: &Model, full: &str, git_ref: &str, query: &str) -> Response {
    let name = check_name(query);
    let Ok(sha) = model.resolve_ref(full, git_ref) else {
        return api_error(invalid(format!("No commit found for SHA: {git_ref}")));
    };
    let runs: Vec<Value> = model
        .check_runs
        .values()
        .rev()
        .filter(|r| r.repo == full && r.head_sha == sha)
        .filter(|r| name.as_deref().is_none_or(|n| n == r.name))
        .map(|r| payload(model, r))
        .collect();
    github_json(
        StatusCode::OK,
        json!({ "total_count": runs.len(), "check_runs": runs }),
    )
}

pub(crate) async fn team_membership(
    State(shared): St,
    Path((org, team_slug, username)): Path<(String, String, String)>,
) -> Response {
    let model = shared.lock();
    let team = format!("{org}/{team_slug}").to_ascii_lowercase();
    let member = model
        .teams
        .get(&team)
        .is_some_and(|m| m.iter().any(|l| l.eq_ignore_ascii_case(&username)));
    if !member {
        return api_error(ApiError::not_found());
    }
    github_json(
        StatusCode::OK,
        json!({
            "url": format!("{}/organizations/1/team/1/memberships/{username}", model.base_url),
            "role": "member",
            "state": "active",
        }),
    )
}

/// `GET /orgs/{org}/teams/{team_slug}`: the team, or 404.
pub(crate) async fn get_team(
    State(shared): St,
    Path((org, team_slug)): Path<(String, String)>,
) -> Response {
    let model = shared.lock();
    let team = format!("{org}/{team_slug}").to_ascii_lowercase();
    if !model.teams.contains_key(&team) {
        return api_error(ApiError::not_found());
    }
    let api = &model.base_url;
    github_json(
        StatusCode::OK,
        json!({
            "id": 1, "node_id": node_id("T_kwDO", 1),
            "url": format!("{api}/orgs/{org}/teams/{team_slug}"),
            "html_url": format!("{api}/orgs/{org}/teams/{team_slug}"),
            "name": team_slug, "slug": team_slug, "description": null,
            "privacy": "closed", "notification_setting": "notifications_enabled",
            "permission": "pull", "members_url": format!("{api}/orgs/{org}/teams/{team_slug}/members{{/member}}"),
            "repositories_url": format!("{api}/orgs/{org}/teams/{team_slug}/repos"),
            "parent": null, "members_count": model.teams[&team].len(), "repos_count": 0,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "organization": payloads::user(&model, &org),
        }),
    )
}

/// `GET /users/{username}`: the account, or 404 for a login GitHub does not know.
pub(crate) async fn get_user(State(shared): St, Path(username): Path<String>) -> Response {
    let model = shared.lock();
    if !model.users.contains_key(&username) {
        return api_error(ApiError::not_found());
    }
    github_json(StatusCode::OK, payloads::user(&model, &username))
}

/// `check_run.requested_action` for a click on `identifier` by `sender`.
fn requested_action(
    shared: &Arc<Shared>,
    model: &mut Model,
    run: &CheckRun,
    identifier: &str,
    sender: &str,
) -> oneshot::Receiver<()> {
    let mut v = webhooks::envelope(model, &run.repo, sender, "requested_action");
    v["check_run"] = payload(model, run);
    v["requested_action"] = json!({ "identifier": identifier });
    webhooks::enqueue(shared, model, "check_run", v)
}

impl Sim {
    /// The check runs of `repo`, oldest first.
    pub fn check_runs(&self, repo: &str) -> Vec<SimCheckRun> {
        let model = self.shared.lock();
        model
            .check_runs
            .values()
            .filter(|r| r.repo == repo)
            .map(|r| {
                let out = |k: &str| {
                    r.output
                        .as_ref()
                        .and_then(|o| o.get(k))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                SimCheckRun {
                    id: r.id,
                    head_sha: r.head_sha.clone(),
                    name: r.name.clone(),
                    status: r.status.clone(),
                    conclusion: r.conclusion.clone(),
                    external_id: r.external_id.clone(),
                    details_url: r.details_url.clone(),
                    title: out("title"),
                    summary: out("summary"),
                    text: out("text"),
                    actions: r
                        .actions
                        .iter()
                        .filter_map(|a| a.get("identifier").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect(),
                }
            })
            .collect()
    }

    /// Opens a pull request from `head` into `base` as `login` (who needs write access) and sends
    /// `pull_request.opened`; returns its number once the webhook has been answered.
    pub async fn open_pr_as(
        &self,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        login: &str,
    ) -> anyhow::Result<u64> {
        let (number, done) = {
            let mut model = self.shared.lock();
            if model.permission_of(repo, login) < crate::Permission::Write {
                bail!("{login} may not open pull requests in {repo}: write access is needed");
            }
            let r = model.repo(repo).map_err(|e| anyhow!(e.message))?;
            if !r.branches.contains_key(head) || !r.branches.contains_key(base) {
                bail!("{repo} has no branch {head} or {base}");
            }
            let number = model
                .create_issue(repo, login, title, "", true)
                .map_err(|e| anyhow!(e.message))?;
            model.insert_pull(repo, number, head, base);
            let done = webhooks::pull_request_event(
                &self.shared,
                &mut model,
                repo,
                number,
                "opened",
                login,
            );
            (number, done)
        };
        let _ = done.await;
        Ok(number)
    }

    /// Makes `login` an active member of the team `org/slug`.
    pub fn add_team_member(&self, team: &str, login: &str) {
        self.shared
            .lock()
            .teams
            .entry(team.to_ascii_lowercase())
            .or_default()
            .insert(login.to_owned());
    }

    /// `login` clicks the button `identifier` of check run `id` (GitHub shows the buttons to
    /// people with write access); returns once the `check_run.requested_action` webhook has
    /// been answered.
    pub async fn click_check_run_button(
        &self,
        id: u64,
        identifier: &str,
        login: &str,
    ) -> anyhow::Result<()> {
        let done = {
            let mut model = self.shared.lock();
            let run = model
                .check_runs
                .get(&id)
                .cloned()
                .ok_or_else(|| anyhow!("no check run {id}"))?;
            if !run
                .actions
                .iter()
                .any(|a| a.get("identifier").and_then(Value::as_str) == Some(identifier))
            {
                bail!("check run {id} has no button `{identifier}`");
            }
            if model.permission_of(&run.repo, login) < crate::Permission::Write {
                bail!(
                    "{login} cannot click the buttons of {}: write access is needed",
                    run.repo
                );
            }
            requested_action(&self.shared, &mut model, &run, identifier, login)
        };
        let _ = done.await;
        Ok(())
    }
}
