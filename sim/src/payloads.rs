//! GitHub's JSON shapes for the objects the simulator serves and sends in webhooks, with GitHub's
//! field names (checked against `@octokit/webhooks-examples` by the integration tests).

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::model::{Artifact, Comment, Model, Repo, Run, node_id};

pub(crate) fn timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

pub(crate) fn user(model: &Model, login: &str) -> Value {
    let u = model.user(login);
    let api = &model.base_url;
    json!({
        "login": u.login,
        "id": u.id,
        "node_id": node_id(if u.is_bot { "BOT_kgDO" } else { "U_kgDO" }, u.id),
        "avatar_url": format!("{api}/avatars/{}", u.login),
        "gravatar_id": "",
        "url": format!("{api}/users/{}", u.login),
        "html_url": format!("{api}/{}", u.login),
        "followers_url": format!("{api}/users/{}/followers", u.login),
        "following_url": format!("{api}/users/{}/following{{/other_user}}", u.login),
        "gists_url": format!("{api}/users/{}/gists{{/gist_id}}", u.login),
        "starred_url": format!("{api}/users/{}/starred{{/owner}}{{/repo}}", u.login),
        "subscriptions_url": format!("{api}/users/{}/subscriptions", u.login),
        "organizations_url": format!("{api}/users/{}/orgs", u.login),
        "repos_url": format!("{api}/users/{}/repos", u.login),
        "events_url": format!("{api}/users/{}/events{{/privacy}}", u.login),
        "received_events_url": format!("{api}/users/{}/received_events", u.login),
        "type": if u.is_bot { "Bot" } else { "User" },
        "site_admin": false,
    })
}

pub(crate) fn repository(model: &Model, repo: &Repo) -> Value {
    let api = &model.base_url;
    let full = repo.full_name();
    json!({
        "id": repo.id,
        "node_id": crate::model::repo_node_id(repo),
        "name": repo.name,
        "full_name": full,
        "private": true,
        "owner": user_or_org(model, &repo.owner),
        "html_url": format!("{api}/{full}"),
        "description": null,
        "fork": false,
        "url": format!("{api}/repos/{full}"),
        "pulls_url": format!("{api}/repos/{full}/pulls{{/number}}"),
        "issues_url": format!("{api}/repos/{full}/issues{{/number}}"),
        "git_url": format!("git://sim/{full}.git"),
        "clone_url": format!("{api}/{full}.git"),
        "default_branch": repo.default_branch,
        "visibility": "private",
        "archived": false,
        "disabled": false,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "pushed_at": "2024-01-01T00:00:00Z",
    })
}

/// The short repository object GitHub nests in runs (`workflow_run.repository`).
fn minimal_repository(model: &Model, repo: &Repo) -> Value {
    let mut v = repository(model, repo);
    if let Some(o) = v.as_object_mut() {
        for k in [
            "archived",
            "clone_url",
            "created_at",
            "default_branch",
            "disabled",
            "git_url",
            "pushed_at",
            "updated_at",
            "visibility",
        ] {
            o.remove(k);
        }
    }
    v
}

fn user_or_org(model: &Model, login: &str) -> Value {
    let mut v = user(model, login);
    if !model.users.contains_key(login) {
        v["type"] = json!("Organization");
    }
    v
}

pub(crate) fn installation(id: u64) -> Value {
    json!({ "id": id, "node_id": node_id("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u", id) })
}

pub(crate) fn issue(model: &Model, repo: &Repo, number: u64) -> Value {
    let api = &model.base_url;
    let full = repo.full_name();
    let Some(issue) = repo.issues.get(&number) else {
        return Value::Null;
    };
    let mut v = json!({
        "url": format!("{api}/repos/{full}/issues/{number}"),
        "repository_url": format!("{api}/repos/{full}"),
        "comments_url": format!("{api}/repos/{full}/issues/{number}/comments"),
        "html_url": format!("{api}/{full}/{}/{number}", if issue.is_pull { "pull" } else { "issues" }),
        "id": repo.id * 100_000 + number,
        "node_id": node_id("I_kwDO", repo.id * 100_000 + number),
        "number": number,
        "title": issue.title,
        "user": user(model, &issue.author),
        "labels": [],
        "state": if issue.open { "open" } else { "closed" },
        "locked": false,
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "comments": issue.comments.len(),
        "created_at": timestamp(issue.created_at),
        "updated_at": timestamp(issue.updated_at),
        "closed_at": null,
        "author_association": association(model, repo, &issue.author),
        "body": issue.body,
    });
    if issue.is_pull {
        v["pull_request"] = json!({
            "url": format!("{api}/repos/{full}/pulls/{number}"),
            "html_url": format!("{api}/{full}/pull/{number}"),
        });
    }
    v
}

fn association(model: &Model, repo: &Repo, login: &str) -> &'static str {
    if login == repo.owner {
        return "OWNER";
    }
    match model.permission_of(&repo.full_name(), login) {
        crate::Permission::None => "NONE",
        crate::Permission::Read => "CONTRIBUTOR",
        _ => "MEMBER",
    }
}

pub(crate) fn comment(model: &Model, c: &Comment) -> Value {
    let api = &model.base_url;
    let Some(repo) = model.repos.get(&c.repo) else {
        return Value::Null;
    };
    let full = repo.full_name();
    let kind = match repo.issues.get(&c.issue) {
        Some(i) if i.is_pull => "pull",
        _ => "issues",
    };
    json!({
        "url": format!("{api}/repos/{full}/issues/comments/{}", c.id),
        "html_url": format!("{api}/{full}/{kind}/{}#issuecomment-{}", c.issue, c.id),
        "issue_url": format!("{api}/repos/{full}/issues/{}", c.issue),
        "id": c.id,
        "node_id": c.node_id,
        "user": user(model, &c.author),
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.updated_at),
        "author_association": association(model, repo, &c.author),
        "body": c.body,
    })
}

pub(crate) fn pull(model: &Model, repo: &Repo, number: u64) -> Value {
    let api = &model.base_url;
    let full = repo.full_name();
    let (Some(p), Some(i)) = (repo.pulls.get(&number), repo.issues.get(&number)) else {
        return Value::Null;
    };
    let head_sha = p
        .closed_head_sha
        .clone()
        .or_else(|| repo.branches.get(&p.head).cloned());
    let base_sha = repo.branches.get(&p.base).cloned();
    let mergeable = if p.open {
        json!(model.pull_mergeable(repo, p))
    } else {
        Value::Null
    };
    json!({
        "url": format!("{api}/repos/{full}/pulls/{number}"),
        "id": repo.id * 100_000 + number,
        "node_id": node_id("PR_kwDO", repo.id * 100_000 + number),
        "html_url": format!("{api}/{full}/pull/{number}"),
        "diff_url": format!("{api}/{full}/pull/{number}.diff"),
        "issue_url": format!("{api}/repos/{full}/issues/{number}"),
        "number": number,
        "state": if p.open { "open" } else { "closed" },
        "locked": false,
        "title": i.title,
        "user": user(model, &i.author),
        "body": i.body,
        "created_at": timestamp(i.created_at),
        "updated_at": timestamp(i.updated_at),
        "closed_at": if p.open { Value::Null } else { json!(timestamp(i.updated_at)) },
        "merged_at": if p.merged { json!(timestamp(i.updated_at)) } else { Value::Null },
        "merge_commit_sha": p.merge_commit_sha,
        "draft": false,
        "head": {
            "label": format!("{}:{}", repo.owner, p.head),
            "ref": p.head,
            "sha": head_sha,
            "user": user_or_org(model, &repo.owner),
            "repo": repository(model, repo),
        },
        "base": {
            "label": format!("{}:{}", repo.owner, p.base),
            "ref": p.base,
            "sha": base_sha,
            "user": user_or_org(model, &repo.owner),
            "repo": repository(model, repo),
        },
        "author_association": association(model, repo, &i.author),
        "merged": p.merged,
        "mergeable": mergeable,
        "mergeable_state": if p.open { if model.pull_mergeable(repo, p) { "clean" } else { "dirty" } } else { "unknown" },
        "merged_by": p.merged_by.as_deref().map(|l| user(model, l)),
        "comments": i.comments.len(),
        "commits": 1,
    })
}

pub(crate) fn workflow(model: &Model, run: &Run) -> Value {
    let api = &model.base_url;
    json!({
        "id": run.workflow_id,
        "node_id": node_id("W_kwDO", run.workflow_id),
        "name": run.workflow_name,
        "path": format!(".github/workflows/{}", run.workflow_file),
        "state": "active",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "url": format!("{api}/repos/{}/actions/workflows/{}", run.repo, run.workflow_id),
        "html_url": format!("{api}/{}/blob/main/.github/workflows/{}", run.repo, run.workflow_file),
        "badge_url": format!("{api}/{}/workflows/{}/badge.svg", run.repo, run.workflow_file),
    })
}

pub(crate) fn workflow_run(model: &Model, run: &Run) -> Value {
    let api = &model.base_url;
    let Some(repo) = model.repos.get(&run.repo) else {
        return Value::Null;
    };
    let runs = format!("{api}/repos/{}/actions/runs/{}", run.repo, run.id);
    let head_commit = model.commits.get(&run.head_sha).map(|c| {
        json!({
            "id": c.sha,
            "tree_id": c.sha,
            "message": c.message,
            "timestamp": timestamp(c.created_at),
            "author": { "name": c.author, "email": format!("{}@users.noreply.sim", c.author) },
            "committer": { "name": c.author, "email": format!("{}@users.noreply.sim", c.author) },
        })
    });
    json!({
        "id": run.id,
        "name": run.workflow_name,
        "node_id": node_id("WFR_kwLO", run.id),
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "path": format!(".github/workflows/{}", run.workflow_file),
        "display_title": run.display_title,
        "run_number": run.run_number,
        "event": "workflow_dispatch",
        "status": run.status,
        "conclusion": run.conclusion,
        "workflow_id": run.workflow_id,
        "check_suite_id": run.id + 1,
        "check_suite_node_id": node_id("CS_kwDO", run.id + 1),
        "url": runs,
        "html_url": format!("{api}/{}/actions/runs/{}", run.repo, run.id),
        "pull_requests": [],
        "created_at": timestamp(run.created_at),
        "updated_at": timestamp(run.updated_at),
        "actor": user(model, &run.actor),
        "triggering_actor": user(model, &run.actor),
        "run_attempt": 1,
        "run_started_at": timestamp(run.created_at),
        "jobs_url": format!("{runs}/jobs"),
        "logs_url": format!("{runs}/logs"),
        "check_suite_url": format!("{api}/repos/{}/check-suites/{}", run.repo, run.id + 1),
        "artifacts_url": format!("{runs}/artifacts"),
        "cancel_url": format!("{runs}/cancel"),
        "rerun_url": format!("{runs}/rerun"),
        "previous_attempt_url": null,
        "workflow_url": format!("{api}/repos/{}/actions/workflows/{}", run.repo, run.workflow_id),
        "head_commit": head_commit,
        "repository": minimal_repository(model, repo),
        "head_repository": minimal_repository(model, repo),
    })
}

pub(crate) fn artifact(model: &Model, a: &Artifact) -> Value {
    let api = &model.base_url;
    let run = model.runs.get(&a.run_id);
    json!({
        "id": a.id,
        "node_id": node_id("MDg6QXJ0aWZhY3Q", a.id),
        "name": a.name,
        "size_in_bytes": a.zip.len(),
        "url": format!("{api}/repos/{}/actions/artifacts/{}", a.repo, a.id),
        "archive_download_url": format!("{api}/repos/{}/actions/artifacts/{}/zip", a.repo, a.id),
        "expired": false,
        "created_at": timestamp(a.created_at),
        "expires_at": timestamp(a.created_at + time::Duration::days(90)),
        "updated_at": timestamp(a.created_at),
        "workflow_run": run.map(|r| json!({
            "id": r.id,
            "repository_id": model.repos.get(&r.repo).map(|repo| repo.id),
            "head_repository_id": model.repos.get(&r.repo).map(|repo| repo.id),
            "head_branch": r.head_branch,
            "head_sha": r.head_sha,
        })),
    })
}
