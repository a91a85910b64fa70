//! `tfpilot-sim`: a stateful GitHub simulator that speaks real HTTP, for TfPilot's tests and demo.
//!
//! [`Sim::start`] binds an axum server on `127.0.0.1:0` holding an in-memory GitHub (see
//! `model.rs`): App installations and tokens (JWTs are verified against the App's public key, the
//! installation token is checked on every call), the App itself (registered from a manifest
//! through GitHub's web form and `POST /app-manifests/{code}/conversions`; `GET /app`, its
//! installations and their repositories), users and permissions, repositories with branches
//! and commit history, issues, pull requests, comments, reactions, workflow runs and artifacts. It
//! answers the REST and GraphQL calls TfPilot makes with GitHub's status codes, headers and field
//! names, rejects what GitHub rejects, counts every call, can inject faults, and sends signed
//! webhooks to the target set with [`Sim::set_webhook_target`] — or loses chosen ones
//! ([`Sim::drop_webhooks`]), as GitHub does when a delivery fails, without redelivering.
//!
//! Dispatched workflows run on background tasks with a behaviour chosen per workflow file
//! ([`WorkflowBehavior`]); with `terraform` on PATH they run real `terraform init/plan/apply` on
//! the dispatched ref's files. [`Sim::wait_idle`] waits until every run has finished and every
//! webhook has been delivered, so tests never sleep.

mod apps;
mod auth;
mod checks;
mod graphql;
mod graphql_query;
mod http;
mod model;
mod payloads;
mod respond;
mod webhooks;
mod workflows;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::sync::{mpsc, oneshot, watch};

pub use model::MAX_COMMENT_CHARS;

pub use crate::checks::SimCheckRun;
use crate::model::{FaultRule, Model, Tree, WebhookTarget};

/// The App's private key (PKCS#1 PEM), for tests only: the simulator knows its public half.
pub const TEST_APP_PRIVATE_KEY_PEM: &str = include_str!("../fixtures/test-app-key.pem");
/// The public half of [`TEST_APP_PRIVATE_KEY_PEM`].
pub const TEST_APP_PUBLIC_KEY_PEM: &str = include_str!("../fixtures/test-app-key.pub.pem");
/// The call key of artifact blob downloads, which real GitHub serves from a storage host (not an
/// API call).
const BLOB_ROUTE: &str = "GET /_blobs/";

/// A valid RSA key the simulator does not know: a JWT signed with it must be refused.
pub const UNREGISTERED_PRIVATE_KEY_PEM: &str = include_str!("../fixtures/unregistered-key.pem");

/// How the simulator is set up; `Default` is what most tests want.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The GitHub App id (`iss` of the JWT).
    pub app_id: u64,
    /// The App's slug: its comments are written by `<slug>[bot]`.
    pub app_slug: String,
    /// The App's public key (PEM); JWTs must verify against it.
    pub app_public_key_pem: String,
    /// How long an installation token lives (GitHub: one hour).
    pub token_ttl: Duration,
    /// Whether `POST …/dispatches` with `return_run_details: true` answers 200 with the run id
    /// (GitHub.com today) or 204 without a body (older GitHub Enterprise Server).
    pub dispatch_returns_run_details: bool,
    /// The `terraform` binary for the Terraform behaviours; `None` looks it up on PATH.
    pub terraform_bin: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            app_id: 4242,
            app_slug: "tfpilot".into(),
            app_public_key_pem: TEST_APP_PUBLIC_KEY_PEM.into(),
            token_ttl: Duration::from_secs(3600),
            dispatch_returns_run_details: true,
            terraform_bin: None,
        }
    }
}

/// A user's role on a repository, as GitHub's collaborator permission API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// The legacy `permission` field (`admin`, `write`, `read`, `none`).
    pub fn legacy_name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Maintain | Self::Write => "write",
            Self::Triage | Self::Read => "read",
            Self::None => "none",
        }
    }

    /// The `role_name` field.
    pub fn role_name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Maintain => "maintain",
            Self::Write => "write",
            Self::Triage => "triage",
            Self::Read => "read",
            Self::None => "none",
        }
    }
}

/// What a dispatched workflow does. Every run goes `queued` → `in_progress` → `completed` and sends
/// the matching `workflow_run` webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowBehavior {
    /// Completes with `success`.
    Succeed,
    /// Completes with `failure`.
    Fail,
    /// Checks out the ref's files, runs `terraform init` and `plan -out` in
    /// `envs/<inputs.environment>`, and publishes artifact `plan` with `plan.txt`
    /// (`show -no-color`) and `plan.json` (`show -json`).
    TerraformPlan,
    /// Like `TerraformPlan`, then `terraform apply` on the saved plan; the state is kept per
    /// repository + environment. Publishes artifact `apply` with `apply.txt`.
    TerraformApply,
    /// `terraform destroy -target=module.tfpilot_<inputs.request_id>` on the kept state.
    /// Publishes artifact `destroy` with `destroy.txt`.
    TerraformDestroy,
    /// A drift check: `terraform plan -detailed-exitcode` in `envs/<inputs.environment>` against
    /// the kept state (exit 0: no changes, 2: changes; both succeed), publishing artifact
    /// `drift-<environment>` with `plan.txt`, `plan.json` and `exitcode`. The state is not changed.
    TerraformDrift,
}

/// A fault the simulator answers with instead of doing the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP 5xx with GitHub's error body.
    ServerError(u16),
    /// The call is carried out, then answered with this HTTP 5xx, as when GitHub's edge times out
    /// on a request that still completes behind it: a client that repeats it blindly does it twice.
    ServerErrorAfterWrite(u16),
    /// A secondary rate limit: 403 with `retry-after: <secs>`.
    SecondaryRateLimit { retry_after_secs: u64 },
    /// A primary rate limit: 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` this
    /// many seconds from now.
    PrimaryRateLimit { reset_in_secs: u64 },
    /// 401 Bad credentials (as for a revoked token).
    Unauthorized,
    /// A timeout: the call is carried out, then no answer comes for `hold_ms` and the connection
    /// is cut mid-answer, as when GitHub's edge gives up on a request that completes behind it.
    Timeout { hold_ms: u64 },
    /// The connection is reset before the call is carried out: the answer's headers come, then
    /// the connection is cut mid-body.
    ConnectionReset,
    /// For `/graphql`: the document is not run, and HTTP 200 carries `data: null` and one error
    /// (with this `type`, if any), as GitHub answers a document it refuses or gives up on
    /// ("Something went wrong while executing your query…", `RATE_LIMITED`).
    GraphQlRefused {
        kind: Option<String>,
        message: String,
    },
}

/// A comment as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimComment {
    pub id: u64,
    pub node_id: String,
    pub author: String,
    pub body: String,
    /// The minimize classifier (`OUTDATED`, …) once minimized.
    pub minimized: Option<String>,
    /// `(content, login)` pairs, e.g. `("eyes", "tfpilot[bot]")`.
    pub reactions: Vec<(String, String)>,
}

/// A pull request as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPullRequest {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub author: String,
    pub head: String,
    pub base: String,
    pub head_sha: Option<String>,
    pub open: bool,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
}

/// A commit on a branch (newest first in [`Sim::commits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCommit {
    pub sha: String,
    pub parents: Vec<String>,
    pub message: String,
    pub author: String,
}

/// A workflow run, with the inputs it was dispatched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimWorkflowRun {
    pub id: u64,
    pub workflow: String,
    pub display_title: String,
    pub head_branch: String,
    pub head_sha: String,
    pub inputs: BTreeMap<String, String>,
    pub status: String,
    pub conclusion: Option<String>,
    /// What the run printed (Terraform's output for the Terraform behaviours).
    pub log: String,
    /// Names of the artifacts it published.
    pub artifacts: Vec<String>,
}

/// A webhook the simulator sent (or recorded, when no target is set).
#[derive(Debug, Clone, PartialEq)]
pub struct SimDelivery {
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub payload: serde_json::Value,
    /// The HTTP status the target answered with; `None` when not sent (no target) or failed.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Lost on the way ([`Sim::drop_webhooks`]): never sent.
    pub dropped: bool,
}

pub(crate) struct Shared {
    model: Mutex<Model>,
    pending: watch::Sender<usize>,
    deliveries: mpsc::UnboundedSender<webhooks::Queued>,
    public_key: jsonwebtoken::DecodingKey,
    terraform: Option<PathBuf>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Model> {
        // A panic while holding the lock leaves a usable model; keep serving.
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks background work as under way until the guard is dropped (see [`Sim::wait_idle`]).
    pub(crate) fn track(self: &Arc<Self>) -> PendingGuard {
        self.pending.send_modify(|n| *n += 1);
        PendingGuard(self.clone())
    }
}

pub(crate) struct PendingGuard(Arc<Shared>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Sim {
    /// Starts the simulator on `127.0.0.1` on a free port.
    pub async fn start(config: SimConfig) -> anyhow::Result<Sim> {
        let public_key =
            jsonwebtoken::DecodingKey::from_rsa_pem(config.app_public_key_pem.as_bytes())
                .context("the simulator's app public key is not an RSA public key in PEM")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the simulator to 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut model = Model::new(
            config.app_id,
            config.app_slug.clone(),
            config.token_ttl,
            config.dispatch_returns_run_details,
        );
        model.base_url = format!("http://{addr}");
        let (pending, _) = watch::channel(0usize);
        let (tx, rx) = mpsc::unbounded_channel();
        let terraform = config
            .terraform_bin
            .clone()
            .or_else(|| find_on_path("terraform"));
        let shared = Arc::new(Shared {
            model: Mutex::new(model),
            pending,
            deliveries: tx,
            public_key,
            terraform,
        });
        tokio::spawn(webhooks::deliver_in_order(shared.clone(), rx));
        let router = http::router(shared.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stop.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        Ok(Sim {
            shared,
            addr,
            shutdown: Some(shutdown),
        })
    }

    /// The API base URL (`http://127.0.0.1:<port>`), for `TFPILOT_GITHUB_API_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn app_id(&self) -> u64 {
        self.shared.lock().app_id
    }

    /// The numeric account id of a user (`None` for a login the simulator does not know).
    pub fn user_id(&self, login: &str) -> Option<u64> {
        self.shared.lock().users.get(login).map(|u| u.id)
    }

    /// The App's slug (a manifest conversion renames the App).
    pub fn app_slug(&self) -> String {
        self.shared.lock().app_slug.clone()
    }

    /// The webhook URL the App was registered with from a manifest (`hook_attributes.url`).
    pub fn app_webhook_url(&self) -> Option<String> {
        self.shared.lock().app.hook_url.clone()
    }

    /// The login the App writes as (`tfpilot[bot]`).
    pub fn bot_login(&self) -> String {
        self.shared.lock().bot_login()
    }

    /// Adds a repository with one commit holding `files` on `default_branch`, and installs the
    /// App on its owner. Returns the installation id.
    pub fn add_repo(
        &self,
        full_name: &str,
        default_branch: &str,
        files: BTreeMap<String, String>,
    ) -> u64 {
        self.shared
            .lock()
            .add_repo(full_name, default_branch, files)
    }

    /// The installation that covers `owner/…` repositories, if the App is installed there.
    pub fn installation_id(&self, full_name: &str) -> Option<u64> {
        let owner = full_name.split('/').next()?;
        let model = self.shared.lock();
        model
            .installations
            .iter()
            .find(|(_, o)| *o == owner)
            .map(|(id, _)| *id)
    }

    /// Adds (or updates) a user with this permission on every repository.
    pub fn add_user(&self, login: &str, permission: Permission) {
        self.shared.lock().ensure_user(login, permission);
    }

    /// Gives a user a permission on one repository (overrides [`Sim::add_user`]'s default).
    pub fn set_permission(
        &self,
        repo: &str,
        login: &str,
        permission: Permission,
    ) -> anyhow::Result<()> {
        let mut model = self.shared.lock();
        model.ensure_user_exists(login);
        model
            .repo_mut(repo)
            .map_err(|_| anyhow!("no repository {repo}"))?
            .permissions
            .insert(login.to_owned(), permission);
        Ok(())
    }

    /// Sends signed webhooks to `url` from now on (HMAC-SHA256 with `secret`).
    pub fn set_webhook_target(&self, url: &str, secret: &str) {
        self.shared.lock().webhook = Some(WebhookTarget {
            url: url.to_owned(),
            secret: secret.to_owned(),
        });
    }

    /// Chooses what dispatching `.github/workflows/<file>` does in `repo` (default: `Succeed`).
    pub fn set_workflow(
        &self,
        repo: &str,
        file: &str,
        behavior: WorkflowBehavior,
    ) -> anyhow::Result<()> {
        self.shared
            .lock()
            .repo_mut(repo)
            .map_err(|_| anyhow!("no repository {repo}"))?
            .workflows
            .insert(file.to_owned(), behavior);
        Ok(())
    }

    /// Opens an issue as `login` (no webhook: TfPilot does not listen to `issues`).
    pub fn open_issue(
        &self,
        repo: &str,
        login: &str,
        title: &str,
        body: &str,
    ) -> anyhow::Result<u64> {
        let mut model = self.shared.lock();
        model.ensure_user_exists(login);
        model
            .create_issue(repo, login, title, body, false)
            .map_err(|e| anyhow!("opening an issue in {repo}: {}", e.message))
    }

    /// Edits an issue's body as `login` (a person, by hand) and sends `issues.edited`; returns
    /// once the webhook has been answered.
    pub async fn edit_issue_as(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        body: &str,
    ) -> anyhow::Result<()> {
        let done = {
            let mut model = self.shared.lock();
            model.ensure_user_exists(login);
            let (changes, _) = model
                .edit_issue(repo, number, None, Some(body.to_owned()), None)
                .map_err(|e| anyhow!("editing {repo}#{number}: {}", e.message))?;
            match changes {
                Some(changes) => webhooks::issues_event(
                    &self.shared,
                    &mut model,
                    repo,
                    number,
                    "edited",
                    login,
                    Some(changes),
                ),
                None => return Ok(()),
            }
        };
        let _ = done.await;
        Ok(())
    }

    /// Closes (or reopens) an issue as `login` and sends `issues.closed` (`issues.reopened`);
    /// returns once the webhook has been answered.
    pub async fn set_issue_open_as(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        open: bool,
    ) -> anyhow::Result<()> {
        let done = {
            let mut model = self.shared.lock();
            model.ensure_user_exists(login);
            let (_, changed) = model
                .edit_issue(repo, number, None, None, Some(open))
                .map_err(|e| anyhow!("closing or reopening {repo}#{number}: {}", e.message))?;
            if changed.is_none() {
                return Ok(());
            }
            let action = if open { "reopened" } else { "closed" };
            webhooks::issues_event(&self.shared, &mut model, repo, number, action, login, None)
        };
        let _ = done.await;
        Ok(())
    }

    /// An issue as GitHub shows it: (title, body, open, author); `None` when there is none.
    pub fn issue(&self, repo: &str, number: u64) -> Option<(String, String, bool, String)> {
        let model = self.shared.lock();
        let issue = model.repos.get(repo)?.issues.get(&number)?;
        Some((
            issue.title.clone(),
            issue.body.clone(),
            issue.open,
            issue.author.clone(),
        ))
    }

    /// The issues (not pull requests) of `repo` opened by `login`, by number.
    pub fn issues_by(&self, repo: &str, login: &str) -> Vec<u64> {
        let model = self.shared.lock();
        model.repos.get(repo).map_or_else(Vec::new, |r| {
            r.issues
                .iter()
                .filter(|(_, i)| !i.is_pull && i.author == login)
                .map(|(n, _)| *n)
                .collect()
        })
    }

    /// Writes a comment as `login` and sends `issue_comment.created`; returns once the webhook has
    /// been answered (or recorded, without a target). Returns the comment id.
    pub async fn user_comment(
        &self,
        repo: &str,
        issue: u64,
        login: &str,
        body: &str,
    ) -> anyhow::Result<u64> {
        let (id, done) = {
            let mut model = self.shared.lock();
            model.ensure_user_exists(login);
            let id = model
                .create_comment(repo, issue, login, body)
                .map_err(|e| anyhow!("commenting on {repo}#{issue}: {}", e.message))?;
            let done = webhooks::comment_created(&self.shared, &mut model, id);
            (id, done)
        };
        let _ = done.await;
        Ok(id)
    }

    /// Merges a pull request as `login` (who needs write access) and sends
    /// `pull_request.closed` with `merged: true`; returns the merge commit sha once the webhook
    /// has been answered.
    pub async fn merge_pr_as(
        &self,
        repo: &str,
        number: u64,
        login: &str,
    ) -> anyhow::Result<String> {
        let (sha, done) = {
            let mut model = self.shared.lock();
            if model.permission_of(repo, login) < Permission::Write {
                bail!("{login} may not merge in {repo}: write access is needed");
            }
            let sha = model
                .merge_pull(repo, number, login, "merge", None)
                .map_err(|e| anyhow!("merging {repo}#{number}: {}", e.message))?;
            let done = webhooks::pull_request_event(
                &self.shared,
                &mut model,
                repo,
                number,
                "closed",
                login,
            );
            (sha, done)
        };
        let _ = done.await;
        Ok(sha)
    }

    /// Closes a pull request without merging it as `login` (who needs write access) and sends
    /// `pull_request.closed` with `merged: false`; returns once the webhook has been answered.
    pub async fn close_pr_as(&self, repo: &str, number: u64, login: &str) -> anyhow::Result<()> {
        self.set_pr_open_as(repo, number, login, false).await
    }

    /// Reopens a closed, unmerged pull request as `login` (who needs write access) and sends
    /// `pull_request.reopened`; returns once the webhook has been answered.
    pub async fn reopen_pr_as(&self, repo: &str, number: u64, login: &str) -> anyhow::Result<()> {
        self.set_pr_open_as(repo, number, login, true).await
    }

    async fn set_pr_open_as(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        open: bool,
    ) -> anyhow::Result<()> {
        let done = {
            let mut model = self.shared.lock();
            if model.permission_of(repo, login) < Permission::Write {
                bail!("{login} may not close or reopen in {repo}: write access is needed");
            }
            let changed = model
                .set_pull_open(repo, number, open)
                .map_err(|e| anyhow!("changing the state of {repo}#{number}: {}", e.message))?;
            if !changed {
                return Ok(());
            }
            let action = if open { "reopened" } else { "closed" };
            webhooks::pull_request_event(&self.shared, &mut model, repo, number, action, login)
        };
        let _ = done.await;
        Ok(())
    }

    /// Loses the next `times` webhooks of `event` (`"workflow_run"`, `"pull_request"`, …) whose
    /// action is `action` (any action when `None`), as GitHub does when a delivery fails: they
    /// are recorded in [`Sim::deliveries`] with `dropped` set and never sent (GitHub does not
    /// redeliver on its own).
    pub fn drop_webhooks(&self, event: &str, action: Option<&str>, times: u32) {
        self.shared.lock().drops.push(model::DropRule {
            event: event.to_owned(),
            action: action.map(str::to_owned),
            remaining: times,
        });
    }

    /// Pushes a commit to a branch as `login` (creating the branch from the default branch when
    /// new), as a person working next to TfPilot would. Returns the new head.
    pub fn push(
        &self,
        repo: &str,
        branch: &str,
        login: &str,
        changes: &[(&str, Option<&str>)],
    ) -> anyhow::Result<String> {
        self.push_commit(repo, branch, login, &format!("Push by {login}"), changes)
    }

    /// Pushes a commit with `message` whose author is `author` (any name and email can be
    /// written into a git commit: `tfpilot[bot]` too) on top of `branch`, as a person pushing
    /// from their machine would: unsigned, so GitHub shows it as not verified. Returns the new
    /// head.
    pub fn push_commit(
        &self,
        repo: &str,
        branch: &str,
        author: &str,
        message: &str,
        changes: &[(&str, Option<&str>)],
    ) -> anyhow::Result<String> {
        let login = author;
        let mut model = self.shared.lock();
        let r = model
            .repo(repo)
            .map_err(|_| anyhow!("no repository {repo}"))?;
        let parent = match r.branches.get(branch) {
            Some(sha) => sha.clone(),
            None => r.branches[&r.default_branch].clone(),
        };
        let mut tree = model.tree_at(&parent);
        for (path, content) in changes {
            match content {
                Some(c) => tree.insert((*path).to_owned(), (*c).to_owned()),
                None => tree.remove(*path),
            };
        }
        let sha = model.store_commit(repo, vec![parent], tree, message.to_owned(), login);
        if let Some(c) = model.commits.get_mut(&sha) {
            c.verified = false;
        }
        model
            .repo_mut(repo)
            .map_err(|_| anyhow!("no repository {repo}"))?
            .branches
            .insert(branch.to_owned(), sha.clone());
        Ok(sha)
    }

    /// Makes a pull request unmergeable (as after a conflicting push), or lets GitHub decide.
    pub fn set_mergeable(
        &self,
        repo: &str,
        number: u64,
        mergeable: Option<bool>,
    ) -> anyhow::Result<()> {
        let mut model = self.shared.lock();
        let pull = model
            .repo_mut(repo)
            .ok()
            .and_then(|r| r.pulls.get_mut(&number))
            .ok_or_else(|| anyhow!("no pull request {repo}#{number}"))?;
        pull.mergeable_override = mergeable;
        Ok(())
    }

    /// The comments on an issue or pull request, oldest first.
    pub fn comments(&self, repo: &str, issue: u64) -> Vec<SimComment> {
        let model = self.shared.lock();
        let ids = model
            .repos
            .get(repo)
            .and_then(|r| r.issues.get(&issue))
            .map(|i| i.comments.clone())
            .unwrap_or_default();
        ids.iter()
            .filter_map(|id| model.comments.get(id))
            .map(|c| SimComment {
                id: c.id,
                node_id: c.node_id.clone(),
                author: c.author.clone(),
                body: c.body.clone(),
                minimized: c.minimized.clone(),
                reactions: c.reactions.clone(),
            })
            .collect()
    }

    /// One comment by id.
    pub fn comment(&self, id: u64) -> Option<SimComment> {
        let model = self.shared.lock();
        model.comments.get(&id).map(|c| SimComment {
            id: c.id,
            node_id: c.node_id.clone(),
            author: c.author.clone(),
            body: c.body.clone(),
            minimized: c.minimized.clone(),
            reactions: c.reactions.clone(),
        })
    }

    /// The pull requests of a repository, by number.
    pub fn pull_requests(&self, repo: &str) -> Vec<SimPullRequest> {
        let model = self.shared.lock();
        let Some(r) = model.repos.get(repo) else {
            return Vec::new();
        };
        r.pulls
            .values()
            .filter_map(|p| {
                let issue = r.issues.get(&p.number)?;
                Some(SimPullRequest {
                    number: p.number,
                    title: issue.title.clone(),
                    body: issue.body.clone(),
                    author: issue.author.clone(),
                    head: p.head.clone(),
                    base: p.base.clone(),
                    head_sha: p
                        .closed_head_sha
                        .clone()
                        .or_else(|| r.branches.get(&p.head).cloned()),
                    open: p.open,
                    merged: p.merged,
                    merge_commit_sha: p.merge_commit_sha.clone(),
                })
            })
            .collect()
    }

    /// The head commit of a branch.
    pub fn branch_head(&self, repo: &str, branch: &str) -> Option<String> {
        self.shared
            .lock()
            .repos
            .get(repo)?
            .branches
            .get(branch)
            .cloned()
    }

    /// All files on a branch, path → content.
    pub fn branch_files(&self, repo: &str, branch: &str) -> Option<BTreeMap<String, String>> {
        let model = self.shared.lock();
        let sha = model.repos.get(repo)?.branches.get(branch)?.clone();
        Some(model.tree_at(&sha))
    }

    /// One file on a branch.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        self.branch_files(repo, branch)?.remove(path)
    }

    /// The first-parent history of a branch, newest first.
    pub fn commits(&self, repo: &str, branch: &str) -> Vec<SimCommit> {
        let model = self.shared.lock();
        let mut out = Vec::new();
        let mut next = model
            .repos
            .get(repo)
            .and_then(|r| r.branches.get(branch))
            .cloned();
        while let Some(sha) = next {
            let Some(c) = model.commits.get(&sha) else {
                break;
            };
            out.push(SimCommit {
                sha: c.sha.clone(),
                parents: c.parents.clone(),
                message: c.message.clone(),
                author: c.author.clone(),
            });
            next = c.parents.first().cloned();
        }
        out
    }

    /// The workflow runs of a repository, oldest first.
    pub fn workflow_runs(&self, repo: &str) -> Vec<SimWorkflowRun> {
        let model = self.shared.lock();
        model
            .runs
            .values()
            .filter(|r| r.repo == repo)
            .map(|r| SimWorkflowRun {
                id: r.id,
                workflow: r.workflow_file.clone(),
                display_title: r.display_title.clone(),
                head_branch: r.head_branch.clone(),
                head_sha: r.head_sha.clone(),
                inputs: r.inputs.clone(),
                status: r.status.clone(),
                conclusion: r.conclusion.clone(),
                log: r.log.clone(),
                artifacts: model
                    .artifacts
                    .values()
                    .filter(|a| a.run_id == r.id)
                    .map(|a| a.name.clone())
                    .collect(),
            })
            .collect()
    }

    /// The Terraform state the Terraform behaviours keep for `repo` + `environment`.
    /// Starts `workflow` on `git_ref` with `inputs` as its schedule or a person would (not through
    /// TfPilot): the run goes through `requested` → `in_progress` → `completed` with webhooks, like
    /// a dispatched one. Returns the run id.
    pub fn start_workflow(
        &self,
        repo: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &[(&str, &str)],
    ) -> anyhow::Result<u64> {
        let inputs: BTreeMap<String, serde_json::Value> = inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect();
        let mut model = self.shared.lock();
        let (run_id, behavior) =
            workflows::create_run(&mut model, repo, workflow, git_ref, &inputs)
                .map_err(|e| anyhow!("starting {workflow} in {repo}: {}", e.message))?;
        drop(webhooks::workflow_run_event(
            &self.shared,
            &mut model,
            run_id,
            "requested",
        ));
        let guard = self.shared.track();
        tokio::spawn(workflows::execute(
            self.shared.clone(),
            run_id,
            behavior,
            guard,
        ));
        Ok(run_id)
    }

    /// Changes the kept Terraform state of `repo` + `environment` outside TfPilot (someone in the
    /// console): `change` edits the state JSON. Returns false when there is no state.
    pub fn change_terraform_state(
        &self,
        repo: &str,
        environment: &str,
        change: impl FnOnce(&mut serde_json::Value),
    ) -> bool {
        let mut model = self.shared.lock();
        let Some(bytes) = model
            .repos
            .get_mut(repo)
            .and_then(|r| r.tf_states.get_mut(environment))
        else {
            return false;
        };
        let Ok(mut state) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return false;
        };
        change(&mut state);
        // Terraform refuses a state whose serial did not move with its content.
        if let Some(serial) = state["serial"].as_u64() {
            state["serial"] = serde_json::json!(serial + 1);
        }
        match serde_json::to_vec_pretty(&state) {
            Ok(new) => {
                *bytes = new;
                true
            }
            Err(_) => false,
        }
    }

    pub fn terraform_state(&self, repo: &str, environment: &str) -> Option<String> {
        let model = self.shared.lock();
        let bytes = model.repos.get(repo)?.tf_states.get(environment)?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Every webhook sent so far, in order.
    pub fn deliveries(&self) -> Vec<SimDelivery> {
        self.shared
            .lock()
            .deliveries
            .iter()
            .map(|d| SimDelivery {
                guid: d.guid.clone(),
                event: d.event.clone(),
                action: d.action.clone(),
                payload: d.payload.clone(),
                status: d.status,
                error: d.error.clone(),
                dropped: d.dropped,
            })
            .collect()
    }

    /// Calls answered so far, by route (`"POST /repos/{owner}/{repo}/pulls"`,
    /// `"POST /graphql createCommitOnBranch"`), faults included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.lock().calls.clone()
    }

    /// Calls answered under one route key.
    pub fn call_count(&self, route: &str) -> u64 {
        self.shared.lock().calls.get(route).copied().unwrap_or(0)
    }

    /// All API calls answered so far that count against GitHub's rate limit: conditional calls
    /// answered `304 Not Modified` are counted apart ([`Sim::not_modified`]), and artifact blob
    /// downloads are not API calls (GitHub redirects them to its storage hosts).
    pub fn total_calls(&self) -> u64 {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|(route, _)| !route.starts_with(BLOB_ROUTE))
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls answered under one route key, conditional ones answered `304 Not Modified`
    /// included.
    pub fn answered(&self, route: &str) -> u64 {
        let model = self.shared.lock();
        model.calls.get(route).copied().unwrap_or(0)
            + model.not_modified.get(route).copied().unwrap_or(0)
    }

    /// Conditional calls answered `304 Not Modified` so far, by route.
    pub fn not_modified(&self) -> BTreeMap<String, u64> {
        self.shared.lock().not_modified.clone()
    }

    /// Forgets the call counters (e.g. after a test's setup).
    pub fn reset_calls(&self) {
        let mut model = self.shared.lock();
        model.calls.clear();
        model.not_modified.clear();
    }

    /// Installation tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.lock().tokens_issued
    }

    /// Answers the next `times` calls to `route` with `fault` instead of doing them. `route` is a
    /// call key as in [`Sim::calls`], or a prefix ending in `*`.
    pub fn inject_fault(&self, route: &str, fault: Fault, times: u32) {
        self.shared.lock().faults.push(FaultRule {
            route: route.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Calls answered with an injected fault so far, by route key.
    pub fn faults_answered(&self) -> BTreeMap<String, u64> {
        self.shared.lock().faults_answered.clone()
    }

    /// Forgets the faults not answered yet.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Revokes every installation token issued so far (the next call with one gets 401).
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Waits until every workflow run has finished and every queued webhook has been delivered.
    pub async fn wait_idle(&self) {
        let mut rx = self.shared.pending.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl Model {
    pub(crate) fn ensure_user_exists(&mut self, login: &str) {
        if !self.users.contains_key(login) {
            self.ensure_user(login, Permission::Read);
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Builds the file map for [`Sim::add_repo`] from `(path, content)` pairs.
pub fn files<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(p, c)| (p.to_owned(), c.to_owned()))
        .collect()
}

/// Reads a directory into a file map for [`Sim::add_repo`] (paths relative to `dir`, `/`-separated).
pub fn files_from_dir(dir: &std::path::Path) -> anyhow::Result<BTreeMap<String, String>> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Tree) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            if name == ".terraform" || name == ".git" || name == "node_modules" {
                continue;
            }
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root)?;
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.ends_with(".tfstate") || key.ends_with(".terraform.lock.hcl") {
                    continue;
                }
                let content = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                out.insert(key, content);
            }
        }
        Ok(())
    }
    let mut out = Tree::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}
