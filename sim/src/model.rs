//! The simulator's in-memory GitHub: installations and tokens, users, repositories with branches
//! (path → content maps) and commit history, issues, pull requests, comments, reactions,
//! workflow runs and artifacts. Plain data and synchronous operations; the HTTP layer and the
//! test-side API both go through these, holding the one lock only for the length of a call.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Fault, Permission, WorkflowBehavior};

/// GitHub refuses comment bodies longer than this many characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;

pub(crate) type Tree = BTreeMap<String, String>;

pub(crate) struct Model {
    pub app_id: u64,
    pub app_slug: String,
    pub base_url: String,
    pub token_ttl: Duration,
    pub dispatch_returns_run_details: bool,
    next_id: u64,
    /// installation id → owner login
    pub installations: BTreeMap<u64, String>,
    pub tokens: HashMap<String, IssuedToken>,
    pub tokens_issued: u64,
    /// Calls answered with an injected fault, by route.
    pub faults_answered: BTreeMap<String, u64>,
    pub users: BTreeMap<String, User>,
    pub repos: BTreeMap<String, Repo>,
    pub commits: HashMap<String, Commit>,
    pub comments: BTreeMap<u64, Comment>,
    pub runs: BTreeMap<u64, Run>,
    pub artifacts: BTreeMap<u64, Artifact>,
    pub calls: BTreeMap<String, u64>,
    /// Conditional calls answered `304 Not Modified`, by route (not in `calls`).
    pub not_modified: BTreeMap<String, u64>,
    pub faults: Vec<FaultRule>,
    pub deliveries: Vec<Delivery>,
    pub webhook: Option<WebhookTarget>,
    /// Webhooks to lose instead of sending ([`crate::Sim::drop_webhooks`]).
    pub drops: Vec<DropRule>,
    /// The App as registered (renamed by a manifest conversion).
    pub app: AppRegistration,
    /// Manifest codes not yet exchanged.
    pub pending_manifests: HashMap<String, PendingManifest>,
    pub check_runs: BTreeMap<u64, CheckRun>,
    /// Active members by team (`org/slug`, lowercase).
    pub teams: BTreeMap<String, std::collections::BTreeSet<String>>,
}

pub(crate) struct IssuedToken {
    pub installation_id: u64,
    pub expires_at: OffsetDateTime,
    /// The repositories (names, without the owner) the token was restricted to; `None`: all of
    /// the installation's.
    pub repositories: Option<Vec<String>>,
    /// The permissions it was restricted to (`contents` → `read`/`write`); `None`: the App's.
    pub permissions: Option<BTreeMap<String, String>>,
}

#[derive(Clone)]
pub(crate) struct User {
    pub id: u64,
    pub login: String,
    pub is_bot: bool,
    pub default_permission: Permission,
}

pub(crate) struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub branches: BTreeMap<String, String>,
    pub issues: BTreeMap<u64, Issue>,
    pub next_number: u64,
    pub pulls: BTreeMap<u64, Pull>,
    pub workflows: BTreeMap<String, WorkflowBehavior>,
    pub workflow_ids: BTreeMap<String, u64>,
    pub run_numbers: BTreeMap<String, u64>,
    pub permissions: BTreeMap<String, Permission>,
    /// Terraform state per environment, kept as the workflows' "remote" state.
    pub tf_states: BTreeMap<String, Vec<u8>>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

#[derive(Clone)]
pub(crate) struct Commit {
    pub sha: String,
    /// The repository it was made in (its `owner/name`): GitHub's objects belong to one.
    pub repo: String,
    pub parents: Vec<String>,
    pub tree: Tree,
    pub message: String,
    pub author: String,
    /// Who committed it (GitHub's `commit.committer`, linked to a user).
    pub committer: String,
    /// GitHub's `verification.verified`: a commit made through the API by an App is signed by
    /// GitHub and verified; a push from someone's machine is not (the simulator has no keys).
    pub verified: bool,
    pub created_at: OffsetDateTime,
}

pub(crate) struct Issue {
    pub title: String,
    pub body: String,
    pub author: String,
    pub open: bool,
    pub is_pull: bool,
    pub created_at: OffsetDateTime,
    /// Moved by a new comment, a close, a reopen or a merge, as GitHub moves an issue's (and its
    /// pull request's) `updated_at`: a conditional read of the pull request then misses.
    pub updated_at: OffsetDateTime,
    pub comments: Vec<u64>,
}

pub(crate) struct Pull {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub open: bool,
    pub merged: bool,
    pub merged_by: Option<String>,
    pub merge_commit_sha: Option<String>,
    /// The head sha when the PR was closed (the branch may move on afterwards).
    pub closed_head_sha: Option<String>,
    pub mergeable_override: Option<bool>,
}

#[derive(Clone)]
pub(crate) struct Comment {
    pub id: u64,
    pub node_id: String,
    pub repo: String,
    pub issue: u64,
    pub author: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub minimized: Option<String>,
    pub reactions: Vec<(String, String)>,
}

#[derive(Clone)]
pub(crate) struct Run {
    pub id: u64,
    pub repo: String,
    pub workflow_file: String,
    pub workflow_id: u64,
    pub workflow_name: String,
    pub display_title: String,
    pub head_branch: String,
    pub head_sha: String,
    pub inputs: BTreeMap<String, String>,
    pub actor: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub run_number: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub log: String,
}

#[derive(Clone)]
pub(crate) struct Artifact {
    pub id: u64,
    pub run_id: u64,
    pub repo: String,
    pub name: String,
    pub zip: Vec<u8>,
    /// The secret part of the (unauthenticated) blob URL the download redirects to.
    pub blob_key: String,
    pub created_at: OffsetDateTime,
}

/// The next `remaining` webhooks of `event` (with `action`, when given) are lost: recorded as a
/// delivery GitHub failed to make, never sent.
pub(crate) struct DropRule {
    pub event: String,
    pub action: Option<String>,
    pub remaining: u32,
}

pub(crate) struct FaultRule {
    /// Matches a call key (`"POST /repos/{owner}/{repo}/pulls"`) exactly, or by prefix when it
    /// ends in `*`.
    pub route: String,
    pub fault: Fault,
    pub remaining: u32,
}

#[derive(Clone)]
pub(crate) struct Delivery {
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub payload: serde_json::Value,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Lost on the way (a [`DropRule`]): never sent.
    pub dropped: bool,
}

#[derive(Clone)]
pub(crate) struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

/// A refusal in GitHub's terms: an HTTP status and a message (and, for 422s, a field error).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn not_found() -> Self {
        Self::new(404, "Not Found")
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}

impl Model {
    pub fn new(app_id: u64, app_slug: String, token_ttl: Duration, run_details: bool) -> Self {
        let mut model = Self {
            app_id,
            app_slug: app_slug.clone(),
            base_url: String::new(),
            token_ttl,
            dispatch_returns_run_details: run_details,
            next_id: 1000,
            installations: BTreeMap::new(),
            tokens: HashMap::new(),
            tokens_issued: 0,
            faults_answered: BTreeMap::new(),
            users: BTreeMap::new(),
            repos: BTreeMap::new(),
            commits: HashMap::new(),
            comments: BTreeMap::new(),
            runs: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            calls: BTreeMap::new(),
            not_modified: BTreeMap::new(),
            faults: Vec::new(),
            deliveries: Vec::new(),
            webhook: None,
            drops: Vec::new(),
            app: AppRegistration::initial(&app_slug),
            pending_manifests: HashMap::new(),
            check_runs: BTreeMap::new(),
            teams: BTreeMap::new(),
        };
        let bot = format!("{app_slug}[bot]");
        let id = model.next_id();
        model.users.insert(
            bot.clone(),
            User {
                id,
                login: bot,
                is_bot: true,
                default_permission: Permission::Write,
            },
        );
        model
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Gives the App a new slug: its bot user is renamed with it.
    pub fn rename_app(&mut self, slug: &str) {
        let old = self.bot_login();
        self.app_slug = slug.to_owned();
        if let Some(mut bot) = self.users.remove(&old) {
            bot.login = self.bot_login();
            self.users.insert(bot.login.clone(), bot);
        }
    }

    /// Records pull request `number` (its issue created) open from `head` into `base`.
    pub fn insert_pull(&mut self, repo: &str, number: u64, head: &str, base: &str) {
        if let Ok(r) = self.repo_mut(repo) {
            r.pulls.insert(
                number,
                Pull {
                    number,
                    head: head.to_owned(),
                    base: base.to_owned(),
                    open: true,
                    merged: false,
                    merged_by: None,
                    merge_commit_sha: None,
                    closed_head_sha: None,
                    mergeable_override: None,
                },
            );
        }
    }

    pub fn bot_login(&self) -> String {
        format!("{}[bot]", self.app_slug)
    }

    pub fn user(&self, login: &str) -> User {
        self.users.get(login).cloned().unwrap_or_else(|| User {
            id: 0,
            login: login.to_owned(),
            is_bot: false,
            default_permission: Permission::None,
        })
    }

    pub fn ensure_user(&mut self, login: &str, permission: Permission) {
        if let Some(user) = self.users.get_mut(login) {
            user.default_permission = permission;
            return;
        }
        let id = self.next_id();
        self.users.insert(
            login.to_owned(),
            User {
                id,
                login: login.to_owned(),
                is_bot: false,
                default_permission: permission,
            },
        );
    }

    pub fn installation_for_owner(&mut self, owner: &str) -> u64 {
        if let Some((id, _)) = self.installations.iter().find(|(_, o)| *o == owner) {
            return *id;
        }
        let id = self.next_id();
        self.installations.insert(id, owner.to_owned());
        id
    }

    pub fn repo(&self, full_name: &str) -> ApiResult<&Repo> {
        self.repos.get(full_name).ok_or_else(ApiError::not_found)
    }

    pub fn repo_mut(&mut self, full_name: &str) -> ApiResult<&mut Repo> {
        self.repos
            .get_mut(full_name)
            .ok_or_else(ApiError::not_found)
    }

    pub fn add_repo(&mut self, full_name: &str, default_branch: &str, files: Tree) -> u64 {
        let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
        let installation = self.installation_for_owner(owner);
        let id = self.next_id();
        let sha = self.store_commit(full_name, Vec::new(), files, "Initial commit".into(), owner);
        let mut branches = BTreeMap::new();
        branches.insert(default_branch.to_owned(), sha);
        self.repos.insert(
            full_name.to_owned(),
            Repo {
                id,
                owner: owner.to_owned(),
                name: name.to_owned(),
                default_branch: default_branch.to_owned(),
                branches,
                issues: BTreeMap::new(),
                next_number: 1,
                pulls: BTreeMap::new(),
                workflows: BTreeMap::new(),
                workflow_ids: BTreeMap::new(),
                run_numbers: BTreeMap::new(),
                permissions: BTreeMap::new(),
                tf_states: BTreeMap::new(),
            },
        );
        installation
    }

    /// Whether commit `sha` is an object of repository `repo` (`owner/name`): made there, whether
    /// a branch still reaches it or not (GitHub keeps unreachable commits for a while).
    pub(crate) fn in_repo(&self, repo: &str, sha: &str) -> bool {
        self.commits.get(sha).is_some_and(|c| c.repo == repo)
    }

    pub fn store_commit(
        &mut self,
        repo: &str,
        parents: Vec<String>,
        tree: Tree,
        message: String,
        author: &str,
    ) -> String {
        let mut hasher = Sha256::new();
        let salt = self.next_id();
        hasher.update(salt.to_be_bytes());
        for parent in &parents {
            hasher.update(parent.as_bytes());
        }
        for (path, content) in &tree {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(content.as_bytes());
            hasher.update([0]);
        }
        hasher.update(message.as_bytes());
        let sha = hex::encode(hasher.finalize())[..40].to_owned();
        // Made through the API: the App's own commits are signed by GitHub.
        let verified = author == self.bot_login();
        self.commits.insert(
            sha.clone(),
            Commit {
                sha: sha.clone(),
                repo: repo.to_owned(),
                parents,
                tree,
                message,
                author: author.to_owned(),
                committer: author.to_owned(),
                verified,
                created_at: now(),
            },
        );
        sha
    }

    pub fn permission_of(&self, repo: &str, login: &str) -> Permission {
        let Some(user) = self.users.get(login) else {
            return Permission::None;
        };
        self.repos
            .get(repo)
            .and_then(|r| r.permissions.get(login).copied())
            .unwrap_or(user.default_permission)
    }

    /// Resolves a branch name (or `refs/heads/<name>`, or a full commit sha) to a commit sha.
    pub fn resolve_ref(&self, repo: &str, git_ref: &str) -> ApiResult<String> {
        let repo = self.repo(repo)?;
        let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
        if let Some(sha) = repo.branches.get(branch) {
            return Ok(sha.clone());
        }
        if self.commits.contains_key(git_ref) {
            return Ok(git_ref.to_owned());
        }
        Err(ApiError::new(422, format!("No ref found for: {git_ref}")))
    }

    pub fn tree_at(&self, sha: &str) -> Tree {
        self.commits
            .get(sha)
            .map(|c| c.tree.clone())
            .unwrap_or_default()
    }

    pub fn create_issue(
        &mut self,
        repo: &str,
        author: &str,
        title: &str,
        body: &str,
        is_pull: bool,
    ) -> ApiResult<u64> {
        let repo = self.repo_mut(repo)?;
        let number = repo.next_number;
        repo.next_number += 1;
        repo.issues.insert(
            number,
            Issue {
                title: title.to_owned(),
                body: body.to_owned(),
                author: author.to_owned(),
                open: true,
                is_pull,
                created_at: now(),
                updated_at: now(),
                comments: Vec::new(),
            },
        );
        Ok(number)
    }

    /// Changes an issue's title, body and state; returns the `changes` of an `issues.edited`
    /// (`None` when neither title nor body changed) and the new state when it changed.
    pub fn edit_issue(
        &mut self,
        repo: &str,
        number: u64,
        title: Option<String>,
        body: Option<String>,
        open: Option<bool>,
    ) -> ApiResult<(Option<serde_json::Value>, Option<bool>)> {
        let issue = self
            .repo_mut(repo)?
            .issues
            .get_mut(&number)
            .ok_or_else(ApiError::not_found)?;
        let mut changes = serde_json::Map::new();
        if let Some(title) = title.filter(|t| *t != issue.title) {
            changes.insert(
                "title".into(),
                serde_json::json!({ "from": std::mem::replace(&mut issue.title, title) }),
            );
        }
        if let Some(body) = body.filter(|b| *b != issue.body) {
            changes.insert(
                "body".into(),
                serde_json::json!({ "from": std::mem::replace(&mut issue.body, body) }),
            );
        }
        let state_changed = open.filter(|o| *o != issue.open);
        if let Some(o) = state_changed {
            issue.open = o;
        }
        if !changes.is_empty() || state_changed.is_some() {
            issue.updated_at = now();
        }
        let changes = (!changes.is_empty()).then_some(serde_json::Value::Object(changes));
        Ok((changes, state_changed))
    }

    pub fn create_comment(
        &mut self,
        repo: &str,
        issue: u64,
        author: &str,
        body: &str,
    ) -> ApiResult<u64> {
        check_comment_body(body)?;
        if !self.repo(repo)?.issues.contains_key(&issue) {
            return Err(ApiError::not_found());
        }
        let id = self.next_id();
        let node_id = node_id("IC_kwDO", id);
        let created = now();
        self.comments.insert(
            id,
            Comment {
                id,
                node_id,
                repo: repo.to_owned(),
                issue,
                author: author.to_owned(),
                body: body.to_owned(),
                created_at: created,
                updated_at: created,
                minimized: None,
                reactions: Vec::new(),
            },
        );
        if let Some(issue) = self.repo_mut(repo)?.issues.get_mut(&issue) {
            issue.comments.push(id);
            issue.updated_at = created;
        }
        Ok(id)
    }

    /// The commit a merge of `head` into `base` would produce, as a tree; `Err` on a conflict.
    pub fn merged_tree(&self, base_sha: &str, head_sha: &str) -> Result<Tree, Vec<String>> {
        let merge_base = self.merge_base(base_sha, head_sha);
        let ancestor = merge_base.map(|s| self.tree_at(&s)).unwrap_or_default();
        let base = self.tree_at(base_sha);
        let head = self.tree_at(head_sha);
        let mut result = base.clone();
        let mut conflicts = Vec::new();
        let paths: BTreeSet<&String> = ancestor.keys().chain(head.keys()).collect();
        for path in paths {
            let (a, h, b) = (ancestor.get(path), head.get(path), base.get(path));
            if a == h {
                continue; // the head did not touch it
            }
            if a != b && b != h {
                conflicts.push(path.clone());
                continue;
            }
            match h {
                Some(content) => result.insert(path.clone(), content.clone()),
                None => result.remove(path),
            };
        }
        if conflicts.is_empty() {
            Ok(result)
        } else {
            Err(conflicts)
        }
    }

    fn merge_base(&self, a: &str, b: &str) -> Option<String> {
        let ancestors_of_a = self.ancestors(a);
        let mut queue = VecDeque::from([b.to_owned()]);
        let mut seen = BTreeSet::new();
        while let Some(sha) = queue.pop_front() {
            if ancestors_of_a.contains(&sha) {
                return Some(sha);
            }
            if seen.insert(sha.clone())
                && let Some(commit) = self.commits.get(&sha)
            {
                queue.extend(commit.parents.iter().cloned());
            }
        }
        None
    }

    /// `sha` and every commit it descends from.
    pub(crate) fn ancestors(&self, sha: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![sha.to_owned()];
        while let Some(sha) = stack.pop() {
            if seen.insert(sha.clone())
                && let Some(commit) = self.commits.get(&sha)
            {
                stack.extend(commit.parents.iter().cloned());
            }
        }
        seen
    }

    pub fn pull_mergeable(&self, repo: &Repo, pull: &Pull) -> bool {
        if let Some(forced) = pull.mergeable_override {
            return forced;
        }
        match (repo.branches.get(&pull.base), repo.branches.get(&pull.head)) {
            (Some(base), Some(head)) => self.merged_tree(base, head).is_ok(),
            _ => false,
        }
    }

    /// Merges an open pull request the way the merge button does; returns the new base sha.
    /// Closes (`open: false`) or reopens a pull request that is not merged, as `PATCH
    /// …/pulls/{number}` with `state` does. Returns whether its state changed (GitHub sends
    /// `pull_request.closed` / `reopened` only then). A merged pull request cannot be reopened.
    pub fn set_pull_open(&mut self, repo_name: &str, number: u64, open: bool) -> ApiResult<bool> {
        let repo = self.repo_mut(repo_name)?;
        let head_sha = repo
            .pulls
            .get(&number)
            .and_then(|p| repo.branches.get(&p.head).cloned());
        let pull = repo
            .pulls
            .get_mut(&number)
            .ok_or_else(ApiError::not_found)?;
        if pull.open == open {
            return Ok(false);
        }
        if open && pull.merged {
            return Err(ApiError::new(
                422,
                "Validation Failed: state cannot be changed. The pull request cannot be reopened because it has been merged.",
            ));
        }
        pull.open = open;
        pull.closed_head_sha = if open { None } else { head_sha };
        if let Some(issue) = repo.issues.get_mut(&number) {
            issue.open = open;
            issue.updated_at = now();
        }
        Ok(true)
    }

    pub fn merge_pull(
        &mut self,
        repo_name: &str,
        number: u64,
        actor: &str,
        method: &str,
        expected_head: Option<&str>,
    ) -> ApiResult<String> {
        let repo = self.repo(repo_name)?;
        let pull = repo.pulls.get(&number).ok_or_else(ApiError::not_found)?;
        if pull.merged {
            return Err(ApiError::new(405, "Pull Request is not mergeable"));
        }
        if !pull.open {
            return Err(ApiError::new(405, "Pull Request is not mergeable"));
        }
        let head_sha = repo
            .branches
            .get(&pull.head)
            .cloned()
            .ok_or_else(|| ApiError::new(405, "Pull Request is not mergeable"))?;
        if let Some(expected) = expected_head
            && expected != head_sha
        {
            return Err(ApiError::new(
                409,
                "Head branch was modified. Review and try the merge again.",
            ));
        }
        let base_sha = repo
            .branches
            .get(&pull.base)
            .cloned()
            .ok_or_else(|| ApiError::new(405, "Pull Request is not mergeable"))?;
        if pull.mergeable_override == Some(false) {
            return Err(ApiError::new(405, "Pull Request is not mergeable"));
        }
        let tree = self
            .merged_tree(&base_sha, &head_sha)
            .map_err(|_| ApiError::new(405, "Pull Request is not mergeable"))?;
        let title = repo
            .issues
            .get(&number)
            .map(|i| i.title.clone())
            .unwrap_or_default();
        let head_ref = pull.head.clone();
        let base_ref = pull.base.clone();
        let (parents, message) = match method {
            "merge" => (
                vec![base_sha, head_sha.clone()],
                format!(
                    "Merge pull request #{number} from {}/{head_ref}\n\n{title}",
                    repo.owner
                ),
            ),
            "squash" | "rebase" => (vec![base_sha], format!("{title} (#{number})")),
            other => {
                return Err(ApiError::new(
                    422,
                    format!(
                        "Invalid request.\n\n{other:?} is not a member of [\"merge\", \"squash\", \"rebase\"]."
                    ),
                ));
            }
        };
        let sha = self.store_commit(repo_name, parents, tree, message, actor);
        let repo = self.repo_mut(repo_name)?;
        repo.branches.insert(base_ref, sha.clone());
        if let Some(pull) = repo.pulls.get_mut(&number) {
            pull.open = false;
            pull.merged = true;
            pull.merged_by = Some(actor.to_owned());
            pull.merge_commit_sha = Some(sha.clone());
            pull.closed_head_sha = Some(head_sha);
        }
        if let Some(issue) = repo.issues.get_mut(&number) {
            issue.open = false;
            issue.updated_at = now();
        }
        Ok(sha)
    }

    /// Moves one call under `key` from the counted calls to the conditional ones answered
    /// `304 Not Modified` (which GitHub does not count against the rate limit).
    pub fn record_not_modified(&mut self, key: &str) {
        if let Some(n) = self.calls.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.calls.remove(key);
            }
        }
        *self.not_modified.entry(key.to_owned()).or_default() += 1;
    }

    /// Counts one call under `key` and returns the fault to answer with, if one is armed.
    pub fn record_call(&mut self, key: &str) -> Option<Fault> {
        *self.calls.entry(key.to_owned()).or_default() += 1;
        let rule = self.faults.iter_mut().find(|rule| {
            rule.remaining > 0
                && match rule.route.strip_suffix('*') {
                    Some(prefix) => key.starts_with(prefix),
                    None => rule.route == key,
                }
        })?;
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        *self.faults_answered.entry(key.to_owned()).or_default() += 1;
        self.faults.retain(|rule| rule.remaining > 0);
        Some(fault)
    }
}

pub(crate) fn check_comment_body(body: &str) -> ApiResult<()> {
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::new(
            422,
            format!(
                "Validation Failed: body is too long (maximum is {MAX_COMMENT_CHARS} characters)"
            ),
        ));
    }
    if body.trim().is_empty() {
        return Err(ApiError::new(
            422,
            "Validation Failed: body cannot be blank",
        ));
    }
    Ok(())
}

/// Whether `branch` (the part after `refs/heads/`) is a name git accepts for a ref
/// (`git check-ref-format`): no empty, `.`-leading or `.lock`-ending component, no `..`, `@{`,
/// control characters, space or any of `~^:?*[\`, and not `@` alone or ending in `/` or `.`.
pub(crate) fn valid_branch_name(branch: &str) -> bool {
    !branch.is_empty()
        && branch != "@"
        && !branch.ends_with('/')
        && !branch.ends_with('.')
        && !branch.contains("..")
        && !branch.contains("@{")
        && !branch
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c))
        && branch
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

/// A repository's GraphQL node id (its REST `node_id`).
pub(crate) fn repo_node_id(repo: &Repo) -> String {
    node_id("R_kgDO", repo.id)
}

pub(crate) fn node_id(prefix: &str, id: u64) -> String {
    use base64::Engine;
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_be_bytes())
    )
}

/// The permissions the simulated App holds (as `app-manifest.yml` asks for them).
pub(crate) const APP_PERMISSIONS: [(&str, &str); 7] = [
    ("actions", "write"),
    ("checks", "write"),
    ("contents", "write"),
    ("members", "read"),
    ("issues", "write"),
    ("pull_requests", "write"),
    ("metadata", "read"),
];

/// The App as registered: what the manifest said, plus what GitHub made for it.
#[derive(Debug, Clone)]
pub(crate) struct AppRegistration {
    pub name: String,
    pub description: String,
    pub owner: String,
    /// The manifest's `url` (GitHub calls it `external_url`).
    pub external_url: String,
    pub hook_url: Option<String>,
    pub permissions: BTreeMap<String, String>,
    pub events: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_secret: Option<String>,
    pub created_at: OffsetDateTime,
}

impl AppRegistration {
    /// The App the simulator starts with, before any manifest: named after its slug, owned by
    /// `octo-org`, with the permissions `app-manifest.yml` asks for.
    pub fn initial(slug: &str) -> Self {
        Self {
            name: slug.to_owned(),
            description: String::new(),
            owner: "octo-org".into(),
            external_url: "https://tfpilot.example.com".into(),
            hook_url: None,
            permissions: APP_PERMISSIONS
                .iter()
                .map(|(n, l)| ((*n).to_owned(), (*l).to_owned()))
                .collect(),
            events: ["issue_comment", "issues", "pull_request", "workflow_run"]
                .map(String::from)
                .to_vec(),
            client_id: "Iv1.0000000000000000".into(),
            client_secret: "0".repeat(40),
            webhook_secret: None,
            created_at: now(),
        }
    }
}

/// A manifest posted on the web side, waiting for its code to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct PendingManifest {
    pub manifest: Manifest,
    pub owner: String,
    pub created_at: OffsetDateTime,
}

/// The fields of a manifest GitHub reads (docs: "Registering a GitHub App from a manifest").
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Manifest {
    pub name: Option<String>,
    pub url: Option<String>,
    pub hook_attributes: Option<HookAttributes>,
    pub redirect_url: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub default_events: Vec<String>,
    #[serde(default)]
    pub default_permissions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct HookAttributes {
    pub url: Option<String>,
    pub active: Option<bool>,
}

/// A check run as the simulator keeps it.
#[derive(Debug, Clone)]
pub(crate) struct CheckRun {
    pub id: u64,
    pub repo: String,
    pub head_sha: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub external_id: Option<String>,
    pub details_url: Option<String>,
    pub output: Option<serde_json::Value>,
    pub actions: Vec<serde_json::Value>,
    pub started_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
}

/// A blob's sha as the contents API shows it (40 hex digits; here of a SHA-256 of the content).
pub(crate) fn blob_sha(content: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(content.as_bytes()))[..40].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_with_repo() -> Model {
        let mut m = Model::new(1, "tfpilot".into(), Duration::from_secs(3600), true);
        let files = Tree::from([
            ("a.tf".to_owned(), "a".to_owned()),
            ("b.tf".to_owned(), "b".to_owned()),
        ]);
        m.add_repo("acme/infra", "main", files);
        m
    }

    fn commit_on(m: &mut Model, branch: &str, changes: &[(&str, Option<&str>)]) -> String {
        let parent = m.repos["acme/infra"].branches[branch].clone();
        let mut tree = m.tree_at(&parent);
        for (path, content) in changes {
            match content {
                Some(c) => tree.insert((*path).to_owned(), (*c).to_owned()),
                None => tree.remove(*path),
            };
        }
        let sha = m.store_commit("acme/infra", vec![parent], tree, "change".into(), "x");
        m.repos
            .get_mut("acme/infra")
            .unwrap()
            .branches
            .insert(branch.to_owned(), sha.clone());
        sha
    }

    #[test]
    fn branch_names_follow_git_check_ref_format() {
        for ok in ["main", "tfpilot/request-3f2a4c1e", "a.b/c-d_e"] {
            assert!(valid_branch_name(ok), "{ok}");
        }
        for bad in [
            "",
            "@",
            "a/",
            "a.",
            "a..b",
            "a@{1}",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            ".a",
            "a/.b",
            "a//b",
            "a.lock",
            "a/b.lock/c",
        ] {
            assert!(!valid_branch_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_commit_belongs_to_the_repository_it_was_made_in() {
        let mut m = model_with_repo();
        let first = m.repos["acme/infra"].branches["main"].clone();
        let second = commit_on(&mut m, "main", &[("c.tf", Some("c"))]);
        let loose = m.store_commit("acme/infra", vec![], Tree::new(), "loose".into(), "x");
        let elsewhere = m.store_commit("globex/infra", vec![], Tree::new(), "x".into(), "x");
        for sha in [&first, &second, &loose] {
            assert!(m.in_repo("acme/infra", sha), "{sha}");
        }
        assert!(!m.in_repo("acme/infra", &elsewhere));
        assert!(!m.in_repo("acme/infra", "0000"));
    }

    #[test]
    fn merging_applies_head_changes_onto_a_moved_base() {
        let mut m = model_with_repo();
        let main = m.repos["acme/infra"].branches["main"].clone();
        m.repos
            .get_mut("acme/infra")
            .unwrap()
            .branches
            .insert("feature".into(), main);
        let head = commit_on(&mut m, "feature", &[("c.tf", Some("c")), ("a.tf", None)]);
        let base = commit_on(&mut m, "main", &[("b.tf", Some("b2"))]);
        let tree = m.merged_tree(&base, &head).unwrap();
        assert_eq!(
            tree,
            Tree::from([
                ("b.tf".to_owned(), "b2".to_owned()),
                ("c.tf".to_owned(), "c".to_owned())
            ])
        );
    }

    #[test]
    fn both_sides_changing_one_file_is_a_conflict() {
        let mut m = model_with_repo();
        let main = m.repos["acme/infra"].branches["main"].clone();
        m.repos
            .get_mut("acme/infra")
            .unwrap()
            .branches
            .insert("feature".into(), main);
        let head = commit_on(&mut m, "feature", &[("a.tf", Some("from feature"))]);
        let base = commit_on(&mut m, "main", &[("a.tf", Some("from main"))]);
        assert_eq!(m.merged_tree(&base, &head), Err(vec!["a.tf".to_owned()]));
    }

    #[test]
    fn faults_fire_the_requested_number_of_times_and_match_prefixes() {
        let mut m = model_with_repo();
        m.faults.push(FaultRule {
            route: "POST /repos/*".into(),
            fault: Fault::ServerError(502),
            remaining: 2,
        });
        assert!(m.record_call("GET /app").is_none());
        assert!(m.record_call("POST /repos/{owner}/{repo}/pulls").is_some());
        assert!(m.record_call("POST /repos/{owner}/{repo}/pulls").is_some());
        assert!(m.record_call("POST /repos/{owner}/{repo}/pulls").is_none());
        assert_eq!(m.calls["POST /repos/{owner}/{repo}/pulls"], 3);
    }

    #[test]
    fn comment_bodies_over_the_limit_are_refused() {
        let mut m = model_with_repo();
        let issue = m
            .create_issue("acme/infra", "alice", "t", "b", false)
            .unwrap();
        let long = "é".repeat(MAX_COMMENT_CHARS + 1);
        assert_eq!(
            m.create_comment("acme/infra", issue, "alice", &long)
                .unwrap_err()
                .status,
            422
        );
        let exact = "é".repeat(MAX_COMMENT_CHARS);
        assert!(
            m.create_comment("acme/infra", issue, "alice", &exact)
                .is_ok()
        );
    }
}
