//! The executor: webhook event → input → [`lifecycle::decide`] → effects on GitHub and in the
//! store. The imperative shell around the pure lifecycle.
//!
//! For each event it gathers what the decision needs (permission, `.tfpilot.yml`, the pull
//! request, the block on the base branch, what the assistant read), then decides *inside* the
//! store's compare-and-swap: the next state, the input's idempotency key and the effects to carry
//! out are written together (the outbox), so two deliveries about one request never lose an
//! update. Then it carries out the effects in order, recording each as done.
//!
//! Re-processing is safe: an input whose key is recorded is not decided again (a redelivery, or
//! the same comment under a new delivery id) — only its pending effects are resumed. Every
//! decided comment is also recorded by its id in the store, with its request or the answer given
//! without one, so a replay is never decided again even once that request is archived. A
//! mutating command from someone who cannot write is refused right after the permission check,
//! before anything else is read. A resumed
//! comment is first looked for by its marker; a resumed dispatch is first looked for by its
//! dispatch id; commits are compared by content; opening a pull request for an existing head
//! returns it. A denial or a user error is answered with a comment; any other error is logged
//! and returned so the inbox retries, and when the worker gives up, the thread gets one generic
//! answer naming the delivery.
//!
//! The parts: this file routes events; `facts` gathers what a decision needs; `outbox` decides
//! and carries out the outbox; `perform` carries out one effect on GitHub; `answers` answers
//! denials and given-up deliveries and keeps the chat log. GitHub is reached through the
//! [`Forge`] seam (`tests` puts an in-memory one behind it).

mod answers;
mod checks;
mod config_check;
mod dashboard;
mod drift;
mod facts;
mod notify;
mod outbox;
mod perform;
mod reconcile;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use time::OffsetDateTime;

use crate::assist::{Extraction, Extractor};
use crate::command::{self, Command};
use crate::comments;
use crate::domain::{EffectKey, Request, RequestStatus};
use crate::github::{Forge, GitHubApp, GitHubError, Permission, Reaction};
use crate::ids::{RepoName, RequestId};
use crate::inbox::Delivery;
use crate::lifecycle::{self, Actor, CommentAt, Conclusion, Input, Policy, RunPhase, RunUpdate};
use crate::registry::Registry;
use crate::slack::Slack;
use crate::store::{CommentRecord, RequestStore, StoreError, Versioned};
use crate::terraform::plan::Masker;
use crate::webhook::Event;
use crate::webhook::events::{
    CheckRunAction, CheckRunEvent, InstallationRef, IssueCommentAction, IssueCommentEvent,
    PullRequestAction, PullRequestEvent, Repository, User, WorkflowRunAction,
    WorkflowRunConclusion, WorkflowRunEvent,
};
use crate::worker::{EventHandler, Permanent};

use facts::Scope;

pub use dashboard::Refreshed;
pub use outbox::OUTBOX_LEASE;
pub use perform::{PlanToPost, plan_from_archive};
pub use reconcile::{RECONCILE_AFTER, ReconcileReport};

/// Whether a comment was decided before.
enum Replay {
    /// Never decided.
    New,
    /// Decided before; resumed or answered again as it was.
    Done,
    /// Decided (by a `new`) to open this request, which was never created: open it under this
    /// id.
    Reopen(RequestId),
}

/// The executor. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    store: Arc<dyn RequestStore>,
    forge: Arc<dyn Forge>,
    registry: Arc<Registry>,
    extractor: Arc<dyn Extractor>,
    policy: Policy,
    masker: Masker,
    prefix: String,
    bot_login: String,
    /// This process as a worker instance (`serve@host:port/<run>`), when it is one: names the
    /// outbox leases it takes, so a restarted instance takes over those of its killed run.
    instance_run: Option<String>,
    /// Where chat notices go (`None`: nowhere; they are recorded as done).
    slack: Option<Arc<Slack>>,
    /// The repositories whose requests dashboards wait for the next settle.
    touched: Arc<dashboard::Touched>,
    /// Whether requests dashboards are kept at all (`TFPILOT_DASHBOARD`).
    dashboards: bool,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("store", &self.store.location())
            .field("prefix", &self.prefix)
            .field("bot_login", &self.bot_login)
            .finish_non_exhaustive()
    }
}

impl Executor {
    pub fn new(
        store: Arc<dyn RequestStore>,
        github: GitHubApp,
        extractor: Arc<dyn Extractor>,
        policy: Policy,
    ) -> Self {
        Self::with_forge(store, Arc::new(github), extractor, policy)
    }

    /// As [`Executor::new`], reaching GitHub (or a stand-in for it) through `forge`.
    pub fn with_forge(
        store: Arc<dyn RequestStore>,
        forge: Arc<dyn Forge>,
        extractor: Arc<dyn Extractor>,
        policy: Policy,
    ) -> Self {
        Executor {
            store,
            forge,
            registry: Arc::new(Registry::embedded().clone()),
            extractor,
            policy,
            masker: Masker::new::<&str>(&[]).unwrap_or_else(|_| {
                unreachable!("the built-in mask patterns are valid regular expressions")
            }),
            prefix: command::DEFAULT_PREFIX.to_owned(),
            bot_login: "tfpilot[bot]".to_owned(),
            instance_run: None,
            slack: None,
            touched: Arc::default(),
            dashboards: true,
        }
    }

    /// Keeps (or, with `false`, never opens nor edits) the requests dashboard issues.
    pub fn with_dashboards(mut self, on: bool) -> Self {
        self.dashboards = on;
        self
    }

    /// Sends the lifecycle's chat notices through `slack`.
    pub fn with_slack(mut self, slack: Slack) -> Self {
        self.slack = Some(Arc::new(slack));
        self
    }

    /// This process's worker owner name, `<instance>/<run>` (see `inbox::Lease`): outbox leases
    /// are then taken as `<instance>/<run>#<call>`, and those of a dead earlier run of the same
    /// instance are taken over at once instead of after [`OUTBOX_LEASE`].
    pub fn with_instance_run(mut self, owner: impl Into<String>) -> Self {
        self.instance_run = Some(owner.into());
        self
    }

    /// The App's own login (`<slug>[bot]`), whose comments are never read as commands.
    pub fn with_bot_login(mut self, login: impl Into<String>) -> Self {
        self.bot_login = login.into();
        self
    }

    /// Masks applied to plan text on top of the plan's sensitive values.
    pub fn with_masker(mut self, masker: Masker) -> Self {
        self.masker = masker;
        self
    }

    pub fn store(&self) -> &Arc<dyn RequestStore> {
        &self.store
    }

    fn is_own(&self, user: &User) -> bool {
        user.is_bot() || user.login.eq_ignore_ascii_case(&self.bot_login)
    }

    // ---- issue_comment ----------------------------------------------------------------------

    async fn on_comment(&self, e: &IssueCommentEvent) -> anyhow::Result<()> {
        if e.action != IssueCommentAction::Created
            || e.comment.user.as_ref().is_some_and(|u| self.is_own(u))
        {
            return Ok(());
        }
        let Some(scope) = self.event_scope(&e.repository, e.installation.as_ref()) else {
            tracing::warn!("a comment without an installation: not TfPilot's to answer");
            return Ok(());
        };
        let at = CommentAt {
            comment_id: e.comment.id,
            thread: e.issue.number,
            on_pull_request: e.issue.is_pull_request(),
        };
        let login = e.comment.author_login().to_owned();
        let actor_id = e.comment.author_id();
        let parsed = command::parse_comment_with(&e.comment.body, &self.prefix, &self.registry);
        let existing = match self.store.find_by_thread(&scope.repo, at.thread).await {
            Ok(found) => found,
            // This very comment bound the thread to the request it recorded and stopped before
            // creating it (a crash): opened now under that id (`replayed_comment`), not once the
            // binding is old enough to count as abandoned, a minute or two later.
            Err(StoreError::Creating { id, .. }) if self.recorded_for(&scope, at, id).await? => {
                None
            }
            Err(e) => return Err(e.into()),
        };
        match parsed {
            None => {
                self.on_turn(&scope, at, (&login, actor_id), &e.comment.body, existing)
                    .await
            }
            Some(Err(err)) => {
                let key = lifecycle::reply_key(at);
                let body = comments::conversation::parse_error(&err, &self.prefix, &key);
                self.answer_once(&scope, at, &key, &body).await
            }
            Some(Ok(command)) => {
                self.on_command(&scope, at, (&login, actor_id), command, existing)
                    .await
            }
        }
    }

    async fn react(&self, scope: &Scope, at: CommentAt) {
        if checks::is_click(at) {
            // A button click has no comment to react to.
            return;
        }
        if let Err(e) = scope.gh.react(at.comment_id, Reaction::Eyes).await {
            tracing::warn!(error = %e, "cannot react to the comment");
        }
    }

    /// Whether the comment at `at` is recorded as opening request `id`.
    async fn recorded_for(
        &self,
        scope: &Scope,
        at: CommentAt,
        id: RequestId,
    ) -> anyhow::Result<bool> {
        let record = self
            .store
            .comment_record(&scope.repo, at.comment_id)
            .await?;
        Ok(record.is_some_and(|r| r.request == Some(id) && r.answer.is_none()))
    }

    /// Resumes the effects of a comment decided before (a redelivery); `false` when it is new.
    async fn resumed_comment(
        &self,
        existing: Option<&Versioned<Request>>,
        at: CommentAt,
    ) -> anyhow::Result<bool> {
        let input_key = EffectKey::input_comment(at.comment_id);
        match existing {
            Some(r) if r.effects.contains_key(&input_key) => {
                let record = CommentRecord {
                    request: Some(r.id),
                    answer: None,
                    at: OffsetDateTime::now_utc(),
                };
                self.store
                    .record_comment(&r.repo, at.comment_id, &record)
                    .await?;
                self.run_outbox(r.id, OffsetDateTime::now_utc()).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A comment recorded as decided before (see
    /// [`RequestStore::record_comment`](crate::store::RequestStore::record_comment)): the same
    /// signed comment under a new delivery id is never decided again, nor for another request
    /// than the one it was decided for. `current`: the thread's request now.
    async fn replayed_comment(
        &self,
        scope: &Scope,
        at: CommentAt,
        current: Option<RequestId>,
    ) -> anyhow::Result<Replay> {
        let Some(record) = self
            .store
            .comment_record(&scope.repo, at.comment_id)
            .await?
        else {
            return Ok(Replay::New);
        };
        if let Some(body) = &record.answer {
            // Answered without a request: the answer again, only if it is missing.
            self.post_once(scope, at.thread, &lifecycle::reply_key(at), body)
                .await?;
            return Ok(Replay::Done);
        }
        let Some(id) = record.request else {
            return Ok(Replay::New);
        };
        if current == Some(id) {
            // Its own request (whose key is not recorded: resumed_comment ran first).
            return Ok(Replay::New);
        }
        if self.store.get(id).await?.is_some() {
            self.run_outbox(id, OffsetDateTime::now_utc()).await?;
            return Ok(Replay::Done);
        }
        if self.store.get_archived(id).await?.is_some() {
            tracing::warn!(
                comment = at.comment_id,
                request = %id,
                "a comment replayed after the request it was decided for was archived; not decided again"
            );
            return Ok(Replay::Done);
        }
        // Recorded by a `new`, and the request never created (a crash between the two): open
        // it now, under the id recorded.
        Ok(Replay::Reopen(id))
    }

    async fn on_command(
        &self,
        scope: &Scope,
        at: CommentAt,
        (login, actor_id): (&str, Option<u64>),
        command: Command,
        existing: Option<Versioned<Request>>,
    ) -> anyhow::Result<()> {
        if self.resumed_comment(existing.as_ref(), at).await? {
            return Ok(());
        }
        let mut facts = self.facts(scope);
        match self
            .replayed_comment(scope, at, existing.as_ref().map(|r| r.id))
            .await?
        {
            Replay::Done => return Ok(()),
            Replay::Reopen(id) => facts.new_request_id = id,
            Replay::New => {}
        }
        if matches!(command, Command::New { .. }) {
            // 👀 says at once that a request is being opened (the assistant may take a while);
            // every other command is answered by its reply alone, which costs one call less.
            self.react(scope, at).await;
        }
        let request = existing.as_ref().map(|v| v.value());
        let permission = if lifecycle::command_reads(&command, request).permission {
            permission_of(scope, login).await?
        } else {
            Permission::NotRead
        };
        let actor = Actor {
            login: login.to_owned(),
            permission,
        };
        if command.is_mutating() && !permission.can_write() {
            // Refused before anything that costs (`.tfpilot.yml`, the pull request, the
            // assistant): the lifecycle refuses a mutating command from someone who cannot write
            // before it reads any fact (`lifecycle::tests::matrix` checks that).
            let input = Input::Command {
                at,
                command,
                extraction: None,
            };
            self.process(
                scope,
                existing,
                &input,
                &actor,
                &self.policy.for_actor(login, actor_id),
                &facts,
                Some(at),
            )
            .await?;
            return Ok(());
        }
        let (policy, facts) = match self
            .command_facts(scope, &command, request, (login, actor_id), facts)
            .await?
        {
            Ok(gathered) => gathered,
            Err(denial) => return self.answer_denial(scope, at, &denial).await,
        };
        let extraction = self.extract_new(&command).await;
        let chat = match &command {
            Command::New { free_text, .. } if !free_text.trim().is_empty() => {
                Some(free_text.clone())
            }
            _ => None,
        };
        let input = Input::Command {
            at,
            command,
            extraction: extraction.clone(),
        };
        let outcome = self
            .process(scope, existing, &input, &actor, &policy, &facts, Some(at))
            .await?;
        if let (Some(text), Some(id)) = (chat, outcome) {
            self.chat(id, login, &text, extraction.map(|e| json!(e.proposed)), at)
                .await;
        }
        Ok(())
    }

    async fn on_turn(
        &self,
        scope: &Scope,
        at: CommentAt,
        (login, actor_id): (&str, Option<u64>),
        body: &str,
        existing: Option<Versioned<Request>>,
    ) -> anyhow::Result<()> {
        let Some(current) = existing else {
            return Ok(());
        };
        if !matches!(
            current.status,
            RequestStatus::Collecting | RequestStatus::Ready
        ) {
            return Ok(());
        }
        if self.resumed_comment(Some(&current), at).await? {
            return Ok(());
        }
        if !matches!(
            self.replayed_comment(scope, at, Some(current.id)).await?,
            Replay::New
        ) {
            return Ok(());
        }
        let permission = permission_of(scope, login).await?;
        if !permission.can_write() {
            // Discussion from people who cannot change the request is not addressed to TfPilot.
            tracing::info!(
                login,
                "a plain comment from a reader; not a conversation turn"
            );
            return Ok(());
        }
        let Some(spec) = self.registry.get(&current.module_type) else {
            return Ok(());
        };
        let text = command::strip_markdown(body);
        let extraction: Extraction = self.extract_turn(&current, spec, &text).await;
        let proposed = json!(extraction.proposed);
        let input = Input::Turn { at, extraction };
        let actor = Actor {
            login: login.to_owned(),
            permission,
        };
        let facts = self.facts(scope);
        let id = current.id;
        self.process(
            scope,
            Some(current),
            &input,
            &actor,
            &self.policy.for_actor(login, actor_id),
            &facts,
            Some(at),
        )
        .await?;
        self.chat(id, login, &text, Some(proposed), at).await;
        Ok(())
    }

    // ---- pull_request -----------------------------------------------------------------------

    async fn on_pull_request(&self, e: &PullRequestEvent) -> anyhow::Result<()> {
        let changed = matches!(
            e.action,
            PullRequestAction::Opened
                | PullRequestAction::Synchronize
                | PullRequestAction::Reopened
        );
        if e.action != PullRequestAction::Closed && !changed {
            return Ok(());
        }
        let Some(scope) = self.event_scope(&e.repository, e.installation.as_ref()) else {
            return Ok(());
        };
        if changed {
            return self.check_settings_change(&scope, e).await;
        }
        let mut existing = self.store.find_by_thread(&scope.repo, e.number).await?;
        if existing.is_none()
            && let Some(id) = e
                .pull_request
                .head
                .ref_name
                .strip_prefix("request/")
                .and_then(|id| id.parse::<RequestId>().ok())
        {
            existing = self.store.get(id).await?;
        }
        let Some(current) = existing else {
            return Ok(());
        };
        if !same_repo(&current.repo, &scope.repo) {
            // A pull request of another repository with the same number or a `request/<id>`
            // branch: not this request's.
            tracing::warn!(request = %current.id, "a pull request in another repository names this request; ignored");
            return Ok(());
        }
        let input = Input::PrClosed {
            number: e.number,
            merged: e.pull_request.merged,
            head_sha: e.pull_request.head.sha.clone(),
            merge_sha: e.pull_request.merge_commit_sha.clone(),
        };
        self.process_event(
            &scope,
            current,
            &input,
            e.sender.as_ref().map_or(User::GHOST, |u| u.login.as_str()),
        )
        .await
    }

    /// Decides an event no person typed (a closed pull request, a run) with the default policy.
    async fn process_event(
        &self,
        scope: &Scope,
        current: Versioned<Request>,
        input: &Input,
        sender: &str,
    ) -> anyhow::Result<()> {
        let actor = Actor {
            login: sender.to_owned(),
            permission: Permission::NotRead,
        };
        let facts = self.facts(scope);
        self.process(
            scope,
            Some(current),
            input,
            &actor,
            &self.policy,
            &facts,
            None,
        )
        .await?;
        Ok(())
    }

    /// The request `id` that a `what` (a run, a check run) of `repository` names, with its
    /// scope; `None` when there is no such request, or it is another repository's.
    async fn named_request(
        &self,
        repository: &Repository,
        installation: Option<&InstallationRef>,
        id: RequestId,
        what: &str,
    ) -> anyhow::Result<Option<(Scope, Versioned<Request>)>> {
        let Some(scope) = self.event_scope(repository, installation) else {
            return Ok(None);
        };
        let Some(current) = self.store.get(id).await? else {
            return Ok(None);
        };
        if !same_repo(&current.repo, &scope.repo) {
            tracing::warn!(request = %id, "a {what} in another repository names this request; ignored");
            return Ok(None);
        }
        Ok(Some((scope, current)))
    }

    // ---- check_run (a button) ---------------------------------------------------------------

    /// A click on a button of TfPilot's check run is decided exactly as the same command
    /// commented by the same person on the request's pull request: the same permission read,
    /// guardrails, answer and outbox (`on_command`). Only the input's id differs (see
    /// [`checks::click_at`]).
    async fn on_check_run(&self, delivery: &Delivery, e: &CheckRunEvent) -> anyhow::Result<()> {
        if e.action != CheckRunAction::RequestedAction {
            return Ok(());
        }
        let Some(id) = e
            .check_run
            .external_id
            .as_deref()
            .and_then(checks::request_of_external_id)
        else {
            return Ok(());
        };
        let Some((scope, current)) = self
            .named_request(&e.repository, e.installation.as_ref(), id, "check run")
            .await?
        else {
            return Ok(());
        };
        let at = checks::click_at(&delivery.id, &current);
        let identifier = e
            .requested_action
            .as_ref()
            .and_then(|a| a.identifier.as_deref())
            .unwrap_or_default();
        let command = match checks::button_command(identifier) {
            Some(c) => c,
            None => {
                let denial = crate::domain::Denial::new(
                    format!("TfPilot has no button `{identifier}`."),
                    format!("Comment the command instead (`{} help`).", self.prefix),
                );
                return self.answer_denial(&scope, at, &denial).await;
            }
        };
        if !current
            .runs
            .values()
            .any(|run| run.check_run_id == Some(e.check_run.id))
        {
            let denial = checks::stale_button(&e.check_run.head_sha, &command, &self.prefix);
            return self.answer_denial(&scope, at, &denial).await;
        }
        self.on_command(
            &scope,
            at,
            (&e.sender.login, e.sender.id),
            command,
            Some(current),
        )
        .await
    }

    // ---- workflow_run -----------------------------------------------------------------------

    async fn on_workflow_run(&self, e: &WorkflowRunEvent) -> anyhow::Result<()> {
        if drift::is_drift_run(e) {
            return self.on_drift_run(e).await;
        }
        let phase = match e.action {
            WorkflowRunAction::InProgress => RunPhase::InProgress,
            WorkflowRunAction::Completed => RunPhase::Completed(match e.workflow_run.conclusion {
                Some(WorkflowRunConclusion::Success) => Conclusion::Success,
                Some(WorkflowRunConclusion::Cancelled) => Conclusion::Cancelled,
                _ => Conclusion::Failure,
            }),
            _ => return Ok(()),
        };
        let title = e
            .workflow_run
            .display_title
            .clone()
            .or_else(|| e.workflow_run.name.clone())
            .unwrap_or_default();
        let Some(id) = title
            .split_whitespace()
            .find_map(|w| w.parse::<RequestId>().ok())
        else {
            return Ok(());
        };
        let Some((scope, current)) = self
            .named_request(&e.repository, e.installation.as_ref(), id, "run")
            .await?
        else {
            return Ok(());
        };
        let input = Input::Run(RunUpdate {
            run_id: e.workflow_run.id,
            title,
            phase,
            head_sha: e.workflow_run.head_sha.clone(),
            url: e.workflow_run.html_url.clone(),
            workflow_path: e.workflow_run.path.clone().unwrap_or_default(),
            event: e.workflow_run.event.clone(),
            head_branch: e.workflow_run.head_branch.clone().unwrap_or_default(),
        });
        self.process_event(&scope, current, &input, &e.sender.login)
            .await
    }
}

#[async_trait]
impl EventHandler for Executor {
    async fn handle(&self, delivery: &Delivery, event: &Event) -> anyhow::Result<()> {
        let handled = match event {
            Event::IssueComment(e) => self.on_comment(e).await,
            Event::PullRequest(e) => self.on_pull_request(e).await,
            Event::WorkflowRun(e) => self.on_workflow_run(e).await,
            Event::CheckRun(e) => self.on_check_run(delivery, e).await,
            Event::Issues(e) => self.on_issues(e).await,
            _ => Ok(()),
        };
        handled.map_err(classify)
    }

    async fn gave_up(&self, delivery: &Delivery, event: &Event, _reason: &str) {
        if let Err(e) = self.answer_given_up(delivery, event).await {
            tracing::error!(error = %format!("{e:#}"), "cannot tell the thread that the delivery was given up");
        }
    }

    async fn sweep(&self) -> anyhow::Result<usize> {
        let decided = self.reconcile(OffsetDateTime::now_utc()).await?.decided;
        if let Err(e) = self.sweep_dashboards().await {
            tracing::warn!(error = %format!("{e:#}"), "cannot list the requests for the dashboards; trying again at the next sweep");
        }
        Ok(decided)
    }

    async fn settle(&self) {
        self.settle_dashboards().await;
    }
}

/// Marks a failure retrying cannot fix as [`Permanent`], keeping its chain: GitHub refusing the
/// App's key or credentials, the App's installation gone (no token for it), the repository not
/// (any more) in the installation. The worker then gives up at once and the person is answered,
/// instead of hours of retries.
pub fn classify(error: anyhow::Error) -> anyhow::Error {
    let github = error.chain().find_map(|e| e.downcast_ref::<GitHubError>());
    let what = match github {
        Some(GitHubError::InvalidPrivateKey(_)) => {
            "the GitHub App's private key cannot sign (TFPILOT_GITHUB_PRIVATE_KEY): set the App's key and restart"
        }
        Some(GitHubError::InvalidBaseUrl(_)) => {
            "TFPILOT_GITHUB_API_URL is not a usable URL: fix it and restart"
        }
        Some(GitHubError::Unauthorized { .. }) => {
            "GitHub refuses the App's credentials (wrong App id or key, or the key was revoked): check TFPILOT_GITHUB_APP_ID and TFPILOT_GITHUB_PRIVATE_KEY"
        }
        Some(GitHubError::NotFound { operation, .. }) if operation == "installation_token" => {
            "the App is not installed there any more (GitHub has no installation for it)"
        }
        Some(GitHubError::Validation { operation, .. }) if operation == "installation_token" => {
            "the repository is gone or no longer part of the App's installation"
        }
        _ => return error,
    };
    error.context(Permanent::new(what))
}

/// Whether two names are the same repository (GitHub compares owners and names without case).
pub(crate) fn same_repo(a: &RepoName, b: &RepoName) -> bool {
    a.owner().eq_ignore_ascii_case(b.owner()) && a.name().eq_ignore_ascii_case(b.name())
}

/// The author's role on the repository. The unknown author of a comment GitHub sends with
/// `user: null` ([`User::GHOST`]) has no access and is not looked up.
async fn permission_of(scope: &Scope, login: &str) -> anyhow::Result<Permission> {
    if User::is_ghost(login) {
        return Ok(Permission::None);
    }
    Ok(scope.gh.permission(login).await?)
}
