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
//! the same comment under a new delivery id) — only its pending effects are resumed. A resumed
//! comment is first looked for by its marker; a resumed dispatch is first looked for by its
//! dispatch id; commits are compared by content; opening a pull request for an existing head
//! returns it. A denial or a user error is answered with a comment; any other error is logged
//! and returned so the inbox retries, and when the worker gives up, the thread gets one generic
//! answer naming the delivery.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::assist::{ExtractRequest, Extractor, Turn};
use crate::command::{self, Command};
use crate::comments::{self, lifecycle as say, marker_key};
use crate::domain::{
    ChatRole, ChatTurn, EffectKey, EffectRecord, EffectResult, ListFilter, PullRequestRef, Request,
    RequestStatus, RunKind,
};
use crate::github::{
    BranchStart, FileChange, GitHubApp, GitHubError, MergeMethod, MinimizeReason, Permission,
    Reaction, RepoClient,
};
use crate::ids::{InstallationId, RepoName, RequestId};
use crate::inbox::Delivery;
use crate::lifecycle::{
    self, Actor, BaseBlock, BlockChange, Body, CommentAt, Conclusion, Decision, Denial, Effect,
    Facts, Input, PendingEffect, Policy, PrFacts, PrPurpose, RunPhase, RunUpdate,
};
use crate::registry::Registry;
use crate::settings::{SETTINGS_FILE, Settings};
use crate::store::{RequestStore, RequestStoreExt, StoreError, UpdateError, Versioned};
use crate::terraform::blocks::{self, find_block};
use crate::terraform::plan::{Masker, PlanSummary, sensitive_values};
use crate::webhook::Event;
use crate::webhook::events::{
    IssueCommentAction, IssueCommentEvent, PullRequestAction, PullRequestEvent, User,
    WorkflowRunAction, WorkflowRunConclusion, WorkflowRunEvent,
};
use crate::worker::EventHandler;

/// How long effects decided by another delivery are left to it before this one resumes them
/// (the other delivery crashed and was given up).
pub const OUTBOX_LEASE: Duration = Duration::from_secs(10 * 60);

/// The largest plan artifact read.
const MAX_PLAN_ARTIFACT_BYTES: u64 = 20 * 1024 * 1024;

/// The longest comment body kept in the request's effect record (for the chat log).
const MAX_RECORDED_BODY: usize = 16 * 1024;

/// The executor. Cheap to clone.
#[derive(Clone)]
pub struct Chatops {
    store: Arc<dyn RequestStore>,
    github: GitHubApp,
    registry: Arc<Registry>,
    extractor: Arc<dyn Extractor>,
    policy: Policy,
    masker: Masker,
    prefix: String,
    bot_login: String,
}

impl std::fmt::Debug for Chatops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chatops")
            .field("store", &self.store.location())
            .field("prefix", &self.prefix)
            .field("bot_login", &self.bot_login)
            .finish_non_exhaustive()
    }
}

/// Why an effect did not happen.
enum EffectError {
    /// Trying again later may work (GitHub unavailable, rate limit, store conflict…).
    Retry(anyhow::Error),
    /// It will not work as it is; the reason is for the person.
    Refused(String),
}

impl From<GitHubError> for EffectError {
    fn from(e: GitHubError) -> Self {
        match e {
            GitHubError::RateLimited { .. }
            | GitHubError::Transient { .. }
            | GitHubError::Unauthorized { .. }
            | GitHubError::InvalidPrivateKey(_)
            | GitHubError::InvalidBaseUrl(_) => EffectError::Retry(e.into()),
            other => EffectError::Refused(other.to_string()),
        }
    }
}

impl From<StoreError> for EffectError {
    fn from(e: StoreError) -> Self {
        EffectError::Retry(e.into())
    }
}

/// What a carried-out effect changes in the request, besides recording it as done.
type Apply = Box<dyn Fn(&mut Request) + Send + Sync>;

struct Done {
    result: EffectResult,
    apply: Option<Apply>,
    /// Extra effect records (each plan comment under its own marker key).
    records: Vec<(EffectKey, EffectResult)>,
}

impl Done {
    fn with(result: EffectResult) -> Self {
        Done {
            result,
            apply: None,
            records: Vec::new(),
        }
    }
}

/// Why the decision closure did not write.
enum Refusal {
    Denied(Denial),
    /// Another delivery's effects on this request are still being carried out.
    Busy,
}

enum Decided {
    /// Written with its effects.
    Written,
    /// Nothing to store: these comments (if any) are the whole answer.
    Stateless(Vec<PendingEffect>),
    /// The input was decided before (a redelivery): only resume.
    Already,
}

/// The repository an event is about, with its client.
struct Scope {
    gh: RepoClient,
    repo: RepoName,
    installation: InstallationId,
    default_branch: Option<String>,
}

impl Chatops {
    pub fn new(
        store: Arc<dyn RequestStore>,
        github: GitHubApp,
        extractor: Arc<dyn Extractor>,
        policy: Policy,
    ) -> Self {
        Chatops {
            store,
            github,
            registry: Arc::new(Registry::embedded().clone()),
            extractor,
            policy,
            masker: Masker::new::<&str>(&[]).unwrap_or_else(|_| {
                unreachable!("the built-in mask patterns are valid regular expressions")
            }),
            prefix: command::DEFAULT_PREFIX.to_owned(),
            bot_login: "tfpilot[bot]".to_owned(),
        }
    }

    /// The App's own login (`<slug>[bot]`), whose comments are never read as commands.
    pub fn with_bot_login(mut self, login: impl Into<String>) -> Self {
        self.bot_login = login.into();
        self
    }

    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = Arc::new(registry);
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

    fn scope(
        &self,
        repo: &RepoName,
        installation: Option<InstallationId>,
        default_branch: Option<&str>,
    ) -> Option<Scope> {
        let installation = installation?;
        Some(Scope {
            gh: self.github.repo(installation, repo),
            repo: repo.clone(),
            installation,
            default_branch: default_branch.map(str::to_owned),
        })
    }

    fn facts(&self, scope: &Scope) -> Facts<'_> {
        Facts {
            now: OffsetDateTime::now_utc(),
            registry: &self.registry,
            repo: scope.repo.clone(),
            installation: Some(scope.installation),
            prefix: self.prefix.clone(),
            settings: None,
            new_request_id: RequestId::new_random(),
            pr: None,
            base_block: None,
            base_head: None,
            listing: None,
        }
    }

    fn is_own(&self, user: &User) -> bool {
        user.is_bot() || user.login.eq_ignore_ascii_case(&self.bot_login)
    }

    // ---- issue_comment ----------------------------------------------------------------------

    async fn on_comment(&self, e: &IssueCommentEvent) -> anyhow::Result<()> {
        if e.action != IssueCommentAction::Created || self.is_own(&e.comment.user) {
            return Ok(());
        }
        let Some(scope) = self.scope(
            &e.repository.full_name,
            e.installation.as_ref().map(|i| i.id),
            e.repository.default_branch.as_deref(),
        ) else {
            tracing::warn!("a comment without an installation: not TfPilot's to answer");
            return Ok(());
        };
        let at = CommentAt {
            comment_id: e.comment.id,
            thread: e.issue.number,
            on_pull_request: e.issue.is_pull_request(),
        };
        let login = e.comment.user.login.clone();
        let parsed = command::parse_comment_with(&e.comment.body, &self.prefix, &self.registry);
        let existing = self.store.find_by_thread(&scope.repo, at.thread).await?;
        match parsed {
            None => {
                self.on_turn(&scope, at, &login, &e.comment.body, existing)
                    .await
            }
            Some(Err(err)) => {
                self.react(&scope, at).await;
                let key = lifecycle::reply_key(at);
                let body = comments::conversation::parse_error(&err, &self.prefix, &key);
                self.post_once(&scope, at.thread, &key, &body).await?;
                Ok(())
            }
            Some(Ok(command)) => self.on_command(&scope, at, &login, command, existing).await,
        }
    }

    async fn react(&self, scope: &Scope, at: CommentAt) {
        if let Err(e) = scope.gh.react(at.comment_id, Reaction::Eyes).await {
            tracing::warn!(error = %e, "cannot react to the comment");
        }
    }

    async fn on_command(
        &self,
        scope: &Scope,
        at: CommentAt,
        login: &str,
        command: Command,
        existing: Option<Versioned<Request>>,
    ) -> anyhow::Result<()> {
        let input_key = EffectKey::input_comment(at.comment_id);
        if let Some(r) = &existing
            && r.effects.contains_key(&input_key)
        {
            return self
                .run_outbox(r.id, &[input_key], OffsetDateTime::now_utc())
                .await;
        }
        self.react(scope, at).await;
        let mut facts = self.facts(scope);
        let mut policy = self.policy.clone();
        let needs_permission = command.is_mutating();
        let permission = if needs_permission {
            scope.gh.permission(login).await?
        } else {
            Permission::NotRead
        };
        let request = existing.as_ref().map(|v| v.value());
        let guarded = matches!(
            command,
            Command::Approve
                | Command::Merge
                | Command::Apply
                | Command::Destroy
                | Command::Cleanup
        );
        let in_prod = request
            .and_then(|r| r.environment.as_deref())
            .is_some_and(|env| policy.is_prod(env));
        // The repository's lists narrow the environment's: read them wherever they decide —
        // `.tfpilot.yml`'s approvers apply to approve (and to the apply of a change merged
        // without one) in every environment, not only in prod.
        if matches!(
            command,
            Command::New { .. } | Command::Approve | Command::Apply
        ) || (guarded && in_prod)
        {
            match self.read_settings(scope).await? {
                Ok(settings) => {
                    policy = settings.narrow(&policy);
                    facts.settings = Some(settings);
                }
                Err(denial) => {
                    return self.answer_denial(scope, at, &denial).await;
                }
            }
        }
        if let Some(r) = request {
            if matches!(command, Command::Approve | Command::Merge | Command::Apply)
                && let Some(pr) = &r.pull_request
            {
                let state = scope.gh.pull_request(pr.number).await?;
                if state.merged {
                    let base = r.base_branch.as_deref().unwrap_or("main");
                    facts.base_head = scope.gh.branch_head(base).await?;
                }
                facts.pr = Some(PrFacts {
                    open: state.open,
                    merged: state.merged,
                    head_sha: state.head_sha,
                    merge_sha: state.merge_commit_sha,
                    mergeable: state.mergeable,
                });
            }
            if matches!(command, Command::Apply) {
                facts.base_block = Some(self.base_block(scope, r).await?);
            }
        }
        if let Command::Status { filters } = &command
            && (request.is_none() || !filters.is_empty())
        {
            let mut filter: ListFilter = filters.to_list_filter();
            filter.repo = Some(scope.repo.clone());
            facts.listing = Some(self.store.list(&filter).await?);
        }
        let extraction = match &command {
            Command::New {
                module, free_text, ..
            } if !free_text.trim().is_empty() => match self.registry.get(module) {
                Some(spec) => Some(
                    self.extractor
                        .extract(&ExtractRequest {
                            spec,
                            collected: &Default::default(),
                            pending: &[],
                            message: free_text,
                            history: &[],
                        })
                        .await,
                ),
                None => None,
            },
            _ => None,
        };
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
        let actor = Actor {
            login: login.to_owned(),
            permission,
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
        login: &str,
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
        let input_key = EffectKey::input_comment(at.comment_id);
        if current.effects.contains_key(&input_key) {
            return self
                .run_outbox(current.id, &[input_key], OffsetDateTime::now_utc())
                .await;
        }
        let permission = scope.gh.permission(login).await?;
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
        self.react(scope, at).await;
        let text = command::strip_markdown(body);
        let history: Vec<Turn> = match self.store.chat(current.id).await {
            Ok(turns) => turns.iter().map(Turn::from).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the chat log; reading the turn alone");
                Vec::new()
            }
        };
        let conv = lifecycle::conversation_of(&current, spec);
        let extraction = self
            .extractor
            .extract(&ExtractRequest {
                spec,
                collected: &conv.values,
                pending: &conv.pending,
                message: &text,
                history: &history,
            })
            .await;
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
            &self.policy,
            &facts,
            Some(at),
        )
        .await?;
        self.chat(id, login, &text, Some(proposed), at).await;
        Ok(())
    }

    /// Appends a person's turn and TfPilot's answer to the chat log (best effort: the
    /// conversation state itself is in the request).
    async fn chat(
        &self,
        id: RequestId,
        login: &str,
        text: &str,
        extracted: Option<Value>,
        at: CommentAt,
    ) {
        let now = OffsetDateTime::now_utc();
        let user = ChatTurn {
            at: now,
            author: login.to_owned(),
            role: ChatRole::User,
            text: text.to_owned(),
            extracted,
            comment_id: Some(at.comment_id),
        };
        if let Err(e) = self.store.append_chat(id, &user).await {
            tracing::warn!(error = %e, "cannot append to the chat log");
        }
        let reply = match self.store.get(id).await {
            Ok(Some(r)) => r
                .effects
                .get(&lifecycle::reply_key(at))
                .and_then(|rec| rec.result.comment_body())
                .map(str::to_owned),
            _ => None,
        };
        if let Some(reply) = reply {
            let turn = ChatTurn {
                at: now,
                author: self.bot_login.clone(),
                role: ChatRole::Assistant,
                text: reply,
                extracted: None,
                comment_id: None,
            };
            if let Err(e) = self.store.append_chat(id, &turn).await {
                tracing::warn!(error = %e, "cannot append to the chat log");
            }
        }
    }

    /// `.tfpilot.yml` from the default branch; a broken file is a denial naming the problem.
    async fn read_settings(&self, scope: &Scope) -> anyhow::Result<Result<Settings, Denial>> {
        let default_branch = match &scope.default_branch {
            Some(b) => b.clone(),
            None => scope.gh.default_branch().await?,
        };
        let file = scope.gh.get_file(&default_branch, SETTINGS_FILE).await?;
        Ok(
            Settings::from_file(&scope.repo, &default_branch, file.as_ref().map(|f| f.text.as_str()))
                .map_err(|e| Denial {
                    reason: e.to_string(),
                    remedy: format!(
                        "Fix `{SETTINGS_FILE}` on `{default_branch}`; until then TfPilot refuses what the settings govern here."
                    ),
                }),
        )
    }

    async fn base_block(&self, scope: &Scope, r: &Request) -> anyhow::Result<BaseBlock> {
        let Some(spec) = self.registry.get(&r.module_type) else {
            return Ok(BaseBlock::Missing);
        };
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        let path = format!(
            "envs/{}/{}",
            r.environment.as_deref().unwrap_or_default(),
            spec.target_file
        );
        let Some(file) = scope.gh.get_file(&base, &path).await? else {
            return Ok(BaseBlock::Missing);
        };
        Ok(match find_block(&file.text, &r.id) {
            Err(e) => BaseBlock::Unreadable(e.to_string()),
            Ok(None) => BaseBlock::Missing,
            Ok(Some(found)) => {
                let text = file.text[found.range.clone()].replace("\r\n", "\n");
                if r.block.as_deref() == Some(text.as_str())
                    || r.block.as_deref().map(|b| b.trim_end()) == Some(text.trim_end())
                {
                    BaseBlock::Same
                } else {
                    BaseBlock::Different
                }
            }
        })
    }

    async fn answer_denial(
        &self,
        scope: &Scope,
        at: CommentAt,
        denial: &Denial,
    ) -> anyhow::Result<()> {
        let key = lifecycle::reply_key(at);
        self.post_once(scope, at.thread, &key, &say::denial(&key, denial))
            .await?;
        Ok(())
    }

    // ---- pull_request -----------------------------------------------------------------------

    async fn on_pull_request(&self, e: &PullRequestEvent) -> anyhow::Result<()> {
        if e.action != PullRequestAction::Closed {
            return Ok(());
        }
        let Some(scope) = self.scope(
            &e.repository.full_name,
            e.installation.as_ref().map(|i| i.id),
            e.repository.default_branch.as_deref(),
        ) else {
            return Ok(());
        };
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
        let input = Input::PrClosed {
            number: e.number,
            merged: e.pull_request.merged,
            head_sha: e.pull_request.head.sha.clone(),
            merge_sha: e.pull_request.merge_commit_sha.clone(),
        };
        let actor = Actor {
            login: e.sender.login.clone(),
            permission: Permission::NotRead,
        };
        let facts = self.facts(&scope);
        self.process(
            &scope,
            Some(current),
            &input,
            &actor,
            &self.policy,
            &facts,
            None,
        )
        .await?;
        Ok(())
    }

    // ---- workflow_run -----------------------------------------------------------------------

    async fn on_workflow_run(&self, e: &WorkflowRunEvent) -> anyhow::Result<()> {
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
        let Some(scope) = self.scope(
            &e.repository.full_name,
            e.installation.as_ref().map(|i| i.id),
            e.repository.default_branch.as_deref(),
        ) else {
            return Ok(());
        };
        let Some(current) = self.store.get(id).await? else {
            return Ok(());
        };
        if !current
            .repo
            .to_string()
            .eq_ignore_ascii_case(&scope.repo.to_string())
        {
            tracing::warn!(request = %id, "a run in another repository names this request; ignored");
            return Ok(());
        }
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
        let actor = Actor {
            login: e.sender.login.clone(),
            permission: Permission::NotRead,
        };
        let facts = self.facts(&scope);
        self.process(
            &scope,
            Some(current),
            &input,
            &actor,
            &self.policy,
            &facts,
            None,
        )
        .await?;
        Ok(())
    }

    // ---- deciding ---------------------------------------------------------------------------

    /// Decides `input` (inside the compare-and-swap) and carries out what was decided. Returns
    /// the request's id when one is involved.
    #[allow(clippy::too_many_arguments)]
    async fn process(
        &self,
        scope: &Scope,
        existing: Option<Versioned<Request>>,
        input: &Input,
        actor: &Actor,
        policy: &Policy,
        facts: &Facts<'_>,
        answer_at: Option<CommentAt>,
    ) -> anyhow::Result<Option<RequestId>> {
        let key = lifecycle::input_key(input);
        let Some(current) = existing else {
            let decision = match lifecycle::decide(None, input, actor, policy, facts) {
                Ok(d) => d,
                Err(denial) => {
                    if let Some(at) = answer_at {
                        self.answer_denial(scope, at, &denial).await?;
                    }
                    return Ok(None);
                }
            };
            let Decision { request, effects } = decision;
            let Some(mut request) = request else {
                self.post_stateless(scope, &effects).await?;
                return Ok(None);
            };
            request.outbox = effects;
            request
                .effects
                .insert(key.clone(), record(facts.now, EffectResult::default()));
            let id = request.id;
            match self.store.create(request).await {
                Ok(_) => {}
                Err(StoreError::ThreadTaken { .. }) => {
                    anyhow::bail!("another request took this thread meanwhile; deciding again")
                }
                Err(e) => return Err(e.into()),
            }
            self.run_outbox(id, &[key], OffsetDateTime::now_utc())
                .await?;
            return Ok(Some(id));
        };
        let id = current.id;
        if current.effects.contains_key(&key) {
            self.run_outbox(id, &[key], OffsetDateTime::now_utc())
                .await?;
            return Ok(Some(id));
        }
        // Effects another delivery left behind long ago (it crashed and was given up).
        self.run_outbox(id, &[], facts.now).await?;
        let now = facts.now;
        let updated = self
            .store
            .update(id, |r| {
                if r.effects.contains_key(&key) {
                    return Ok(Decided::Already);
                }
                if busy(r, now) {
                    return Err(Refusal::Busy);
                }
                let d = lifecycle::decide(Some(r), input, actor, policy, facts)
                    .map_err(Refusal::Denied)?;
                let Some(next) = d.request else {
                    return Ok(Decided::Stateless(d.effects));
                };
                if next == *r
                    && d.effects
                        .iter()
                        .all(|e| matches!(e.effect, Effect::Comment { .. }))
                {
                    return Ok(Decided::Stateless(d.effects));
                }
                *r = next;
                r.outbox.extend(d.effects);
                r.effects
                    .insert(key.clone(), record(now, EffectResult::default()));
                Ok(Decided::Written)
            })
            .await;
        match updated {
            Ok(u) => match u.output {
                Decided::Written => self.run_outbox(id, &[key], facts.now).await?,
                Decided::Already => {
                    self.run_outbox(id, &[key], OffsetDateTime::now_utc())
                        .await?
                }
                Decided::Stateless(effects) => self.post_stateless(scope, &effects).await?,
            },
            Err(UpdateError::Refused(Refusal::Denied(denial))) => {
                if let Some(at) = answer_at {
                    self.answer_denial(scope, at, &denial).await?;
                }
            }
            Err(UpdateError::Refused(Refusal::Busy)) => {
                anyhow::bail!(
                    "request {id} is still carrying out an earlier command; retrying later"
                )
            }
            Err(UpdateError::Store(e)) => return Err(e.into()),
        }
        Ok(Some(id))
    }

    /// Posts the comments of a decision that stores nothing (help, show, status, denials).
    async fn post_stateless(&self, scope: &Scope, effects: &[PendingEffect]) -> anyhow::Result<()> {
        for e in effects {
            if let Effect::Comment {
                thread,
                body: Body::Text { text },
            } = &e.effect
            {
                self.post_once(scope, *thread, &e.key, text).await?;
            }
        }
        Ok(())
    }

    /// Posts a comment; a resumed one only if its marker is not on the thread already.
    async fn post(
        &self,
        scope: &Scope,
        thread: u64,
        key: &EffectKey,
        body: &str,
        resumed: bool,
    ) -> Result<EffectResult, GitHubError> {
        if resumed {
            return self.post_once(scope, thread, key, body).await;
        }
        let c = scope.gh.comment(thread, body).await?;
        Ok(comment_result(c.id, c.node_id))
    }

    /// Posts a comment unless one with its marker is on the thread already.
    async fn post_once(
        &self,
        scope: &Scope,
        thread: u64,
        key: &EffectKey,
        body: &str,
    ) -> Result<EffectResult, GitHubError> {
        if let Some(found) = self.find_marker(scope, thread, key).await? {
            return Ok(found);
        }
        let c = scope.gh.comment(thread, body).await?;
        Ok(comment_result(c.id, c.node_id))
    }

    async fn find_marker(
        &self,
        scope: &Scope,
        thread: u64,
        key: &EffectKey,
    ) -> Result<Option<EffectResult>, GitHubError> {
        let found = scope.gh.comments(thread).await?.into_iter().find(|c| {
            c.author.eq_ignore_ascii_case(&self.bot_login)
                && marker_key(&c.body) == Some(key.as_str())
        });
        Ok(found.map(|c| comment_result(c.id, c.node_id)))
    }

    // ---- carrying out -----------------------------------------------------------------------

    /// Carries out the request's pending effects that belong to `owned` inputs (or that were
    /// left by another delivery longer than [`OUTBOX_LEASE`] ago), in order.
    async fn run_outbox(
        &self,
        id: RequestId,
        owned: &[EffectKey],
        since: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let mut owned: Vec<EffectKey> = owned.to_vec();
        let mut attempted: BTreeSet<EffectKey> = BTreeSet::new();
        loop {
            let Some(current) = self.store.get(id).await? else {
                return Ok(());
            };
            let now = OffsetDateTime::now_utc();
            let Some(entry) = current
                .outbox
                .iter()
                .find(|e| {
                    !attempted.contains(&e.key) && (owned.contains(&e.input) || stale(e, now))
                })
                .cloned()
            else {
                return Ok(());
            };
            attempted.insert(entry.key.clone());
            let Some(installation) = current.installation_id else {
                anyhow::bail!("request {id} has no installation to act with");
            };
            let scope = Scope {
                gh: self.github.repo(installation, &current.repo),
                repo: current.repo.clone(),
                installation,
                default_branch: current.base_branch.clone(),
            };
            if entry.effect == Effect::Archive {
                self.archive(id, &entry).await?;
                return Ok(());
            }
            // Effects decided by this very invocation were never tried; older ones may have
            // happened before a crash and are looked for first.
            let resumed = entry.decided_at < since;
            match self.perform(&scope, &current, &entry, resumed).await {
                Ok(done) => self.mark_done(id, &entry, done).await?,
                Err(EffectError::Retry(e)) => {
                    return Err(e.context(format!("cannot {} yet", entry.effect.describe())));
                }
                Err(EffectError::Refused(reason)) if entry.effect.is_best_effort() => {
                    tracing::warn!(effect = %entry.effect.describe(), %reason, "effect failed; going on");
                    self.mark_done(
                        id,
                        &entry,
                        Done::with(EffectResult::Failed {
                            error: reason.clone(),
                        }),
                    )
                    .await?;
                }
                Err(EffectError::Refused(reason)) => {
                    tracing::warn!(effect = %entry.effect.describe(), %reason, "effect refused");
                    let failed_input = self.fail(id, &entry, &reason).await?;
                    owned.push(failed_input);
                }
            }
        }
    }

    async fn mark_done(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        done: Done,
    ) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        self.store
            .update(id, |r| {
                let Some(i) = r.outbox.iter().position(|e| e.key == entry.key) else {
                    return Ok::<_, std::convert::Infallible>(());
                };
                r.outbox.remove(i);
                r.effects
                    .insert(entry.key.clone(), record(now, done.result.clone()));
                for (k, v) in &done.records {
                    r.effects.insert(k.clone(), record(now, v.clone()));
                }
                if let Some(apply) = &done.apply {
                    apply(r);
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// Replaces the rest of a failed input's effects with what the lifecycle decides for the
    /// failure. Returns the failure's input key (whose effects the caller then carries out).
    async fn fail(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        reason: &str,
    ) -> anyhow::Result<EffectKey> {
        let input = Input::EffectFailed {
            key: entry.key.clone(),
            effect: entry.effect.clone(),
            reason: reason.to_owned(),
        };
        let failed_key = lifecycle::input_key(&input);
        let registry = &self.registry;
        let policy = &self.policy;
        self.store
            .update(id, |r| {
                let facts = Facts {
                    now: OffsetDateTime::now_utc(),
                    registry,
                    repo: r.repo.clone(),
                    installation: r.installation_id,
                    prefix: self.prefix.clone(),
                    settings: None,
                    new_request_id: r.id,
                    pr: None,
                    base_block: None,
                    base_head: None,
                    listing: None,
                };
                r.outbox.retain(|e| e.input != entry.input);
                r.effects.insert(
                    entry.key.clone(),
                    record(
                        facts.now,
                        EffectResult::Failed {
                            error: reason.to_owned(),
                        },
                    ),
                );
                let actor = Actor {
                    login: "tfpilot".into(),
                    permission: Permission::NotRead,
                };
                if let Ok(d) = lifecycle::decide(Some(r), &input, &actor, policy, &facts) {
                    if let Some(next) = d.request {
                        *r = next;
                    }
                    r.outbox.extend(d.effects);
                }
                r.effects.insert(
                    failed_key.clone(),
                    record(facts.now, EffectResult::default()),
                );
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(failed_key)
    }

    async fn archive(&self, id: RequestId, entry: &PendingEffect) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        let updated = self
            .store
            .update(id, |r| {
                r.outbox.retain(|e| e.key != entry.key);
                r.effects
                    .insert(entry.key.clone(), record(now, EffectResult::default()));
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !updated.request.outbox.is_empty() {
            // Something was decided after the archive (should not happen): keep the request.
            tracing::warn!(request = %id, "effects pending after the archive; not archiving yet");
            return Ok(());
        }
        match self.store.archive(&updated.request).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => {
                anyhow::bail!("request {id} changed while it was being archived; retrying")
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn perform(
        &self,
        scope: &Scope,
        r: &Request,
        entry: &PendingEffect,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        match &entry.effect {
            Effect::Comment { thread, body } => {
                let text = match body {
                    Body::Text { text } => text.clone(),
                    Body::PrOpened { purpose } => {
                        say::pr_opened(&entry.key, r, *purpose == PrPurpose::Cleanup, &self.prefix)
                    }
                };
                let mut result = self
                    .post(scope, *thread, &entry.key, &text, resumed)
                    .await?;
                // Kept for the chat log (conversation replies); long bodies are not copied.
                if text.len() <= MAX_RECORDED_BODY
                    && let EffectResult::Comment { body, .. } = &mut result
                {
                    *body = Some(text);
                }
                Ok(Done::with(result))
            }
            Effect::CommitBlock {
                branch,
                base,
                file,
                change,
                message,
            } => {
                self.commit_block(scope, r, branch, base, file, change, message, resumed)
                    .await
            }
            Effect::OpenPr {
                purpose,
                branch,
                base,
                title,
                body,
            } => {
                let pr = scope
                    .gh
                    .open_pull_request(branch, base, title, body)
                    .await?;
                let pr_ref = PullRequestRef {
                    number: pr.number,
                    url: pr.url.clone(),
                    head_sha: pr.head_sha.clone(),
                    merged: false,
                    merge_commit_sha: None,
                };
                let purpose = *purpose;
                if purpose == PrPurpose::Request {
                    match self.store.bind_thread(&scope.repo, pr.number, r.id).await {
                        Ok(()) => {}
                        Err(StoreError::ThreadTaken { existing, .. }) => {
                            return Err(EffectError::Refused(format!(
                                "pull request #{} already belongs to request {existing}",
                                pr.number
                            )));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                let result = EffectResult::PullRequest {
                    number: pr.number,
                    url: pr.url.clone(),
                    created: pr.created,
                };
                Ok(Done {
                    result,
                    apply: Some(Box::new(move |r: &mut Request| match purpose {
                        PrPurpose::Request => r.pull_request = Some(pr_ref.clone()),
                        PrPurpose::Cleanup => r.cleanup_pull_request = Some(pr_ref.clone()),
                    })),
                    records: Vec::new(),
                })
            }
            Effect::Dispatch {
                kind,
                workflow,
                git_ref,
                environment,
                dispatch_id,
            } => {
                // A dispatch that may have happened before a crash is looked for first.
                let found = if resumed {
                    scope
                        .gh
                        .find_workflow_run(workflow, git_ref, dispatch_id)
                        .await?
                } else {
                    None
                };
                let (run_id, url) = match found {
                    Some(run) => (Some(run.id), Some(run.html_url)),
                    None => {
                        let inputs = [
                            ("request_id".to_owned(), r.id.to_string()),
                            ("environment".to_owned(), environment.clone()),
                            ("dispatch_id".to_owned(), dispatch_id.clone()),
                        ]
                        .into_iter()
                        .collect();
                        let d = scope
                            .gh
                            .dispatch_workflow(workflow, git_ref, &inputs, dispatch_id)
                            .await?;
                        (d.run_id, d.html_url)
                    }
                };
                let (kind, dispatch_id) = (*kind, dispatch_id.clone());
                let result = EffectResult::Dispatched {
                    run_id,
                    url: url.clone(),
                };
                Ok(Done {
                    result,
                    apply: Some(Box::new(move |r: &mut Request| {
                        if let Some(run) = r.runs.get_mut(&kind)
                            && run.dispatch_id.as_deref() == Some(dispatch_id.as_str())
                        {
                            if run.run_id.is_none() {
                                run.run_id = run_id;
                            }
                            if run.url.is_none() {
                                run.url = url.clone();
                            }
                        }
                    })),
                    records: Vec::new(),
                })
            }
            Effect::Merge {
                number,
                expected_head,
            } => {
                match scope
                    .gh
                    .merge_pull_request(*number, MergeMethod::Merge, Some(expected_head))
                    .await
                {
                    Ok(m) => Ok(Done::with(EffectResult::Merged { sha: Some(m.sha) })),
                    Err(e) => {
                        // Merged already (a retried merge): that is what was asked.
                        let state = scope.gh.pull_request(*number).await?;
                        if state.merged {
                            Ok(Done::with(EffectResult::Merged {
                                sha: state.merge_commit_sha,
                            }))
                        } else {
                            Err(e.into())
                        }
                    }
                }
            }
            Effect::ClosePr { number } => {
                scope.gh.close_pull_request(*number).await?;
                Ok(Done::with(EffectResult::default()))
            }
            Effect::MinimizeComments { key_prefix } => {
                let mut n = 0;
                for (key, rec) in &r.effects {
                    if !key.starts_with(key_prefix) {
                        continue;
                    }
                    if let Some(node) = rec.result.comment_node() {
                        scope
                            .gh
                            .minimize_comment(node, MinimizeReason::Outdated)
                            .await?;
                        n += 1;
                    }
                }
                Ok(Done::with(EffectResult::Minimized { minimized: n }))
            }
            Effect::PostPlan { run_id, run_url } => {
                self.post_plan(scope, r, *run_id, run_url, resumed).await
            }
            Effect::Archive => Ok(Done::with(EffectResult::default())),
        }
    }

    /// Commits the block change on `branch`: on top of TfPilot's own last commit there, or on a
    /// new branch from `base`. A branch with commits TfPilot did not make (prepared under the
    /// request's name, or pushed to since) is refused, never built on: TfPilot's pull request
    /// holds TfPilot's lines only.
    #[allow(clippy::too_many_arguments)]
    async fn commit_block(
        &self,
        scope: &Scope,
        r: &Request,
        branch: &str,
        base: &str,
        file: &str,
        change: &BlockChange,
        message: &str,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        let known = lifecycle::tfpilot_head(r, branch).cloned();
        let live = scope.gh.branch_head(branch).await?;
        let base_head = || async {
            scope.gh.branch_head(base).await?.ok_or_else(|| {
                EffectError::Refused(format!("the base branch `{base}` does not exist"))
            })
        };
        let (start, parent) = match (&live, &known) {
            (None, _) => {
                let from = base_head().await?;
                (BranchStart::New { from: from.clone() }, from)
            }
            (Some(live), Some(known)) if live == known => (
                BranchStart::Existing {
                    expected_head: live.clone(),
                },
                live.clone(),
            ),
            // A commit TfPilot made before a crash was not recorded: committing from where
            // TfPilot last was finds it (the client compares the branch head with the commit it
            // was asked to make); anything else there is someone else's.
            (Some(_), _) if resumed => {
                let expected = match &known {
                    Some(k) => k.clone(),
                    None => base_head().await?,
                };
                (
                    BranchStart::Existing {
                        expected_head: expected.clone(),
                    },
                    expected,
                )
            }
            (Some(live), _) => return Err(foreign_commits(branch, live)),
        };
        let current = scope.gh.get_file(&parent, file).await?;
        let text = current
            .as_ref()
            .map(|f| f.text.as_str())
            .unwrap_or_default();
        let next = match change {
            BlockChange::Upsert { block } => blocks::upsert_block(text, &r.id, block),
            BlockChange::Remove => blocks::remove_block(text, &r.id),
        }
        .map_err(|e| EffectError::Refused(format!("`{file}`: {e}")))?;
        // (A removal that deleted the file left nothing to remove either.)
        let unchanged =
            next == text && (current.is_some() || matches!(change, BlockChange::Remove));
        if unchanged && let BranchStart::Existing { .. } = start {
            // Done before (a retried cleanup or submit): nothing to commit.
            return match &live {
                Some(live) if *live != parent => Err(foreign_commits(branch, live)),
                _ => Ok(commit_done(branch, r, parent, false)),
            };
        }
        if unchanged && matches!(change, BlockChange::Remove) {
            return Err(EffectError::Refused(format!(
                "`{file}` on `{base}` has no block of this request, so there is nothing to remove"
            )));
        }
        let changes = if next.is_empty() && matches!(change, BlockChange::Remove) {
            vec![FileChange::delete(file)]
        } else {
            vec![FileChange::put(file, next)]
        };
        match scope
            .gh
            .commit_files(branch, start, message, &changes)
            .await
        {
            Ok(c) => Ok(commit_done(branch, r, c.oid, true)),
            // The branch is not where TfPilot left it (nor one TfPilot commit past it).
            Err(GitHubError::StaleHead { .. }) => {
                let head = scope.gh.branch_head(branch).await?.unwrap_or_default();
                Err(foreign_commits(branch, &head))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn post_plan(
        &self,
        scope: &Scope,
        r: &Request,
        run_id: u64,
        run_url: &str,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        let artifacts = scope.gh.list_artifacts(run_id).await?;
        let Some(artifact) = artifacts.iter().find(|a| a.name == "plan" && !a.expired) else {
            return Err(EffectError::Refused(format!(
                "run {run_id} published no `plan` artifact"
            )));
        };
        let archive = scope
            .gh
            .download_artifact(artifact.id, MAX_PLAN_ARTIFACT_BYTES)
            .await?;
        let read = |name: &str| {
            archive
                .file(name, MAX_PLAN_ARTIFACT_BYTES)
                .map_err(|e| EffectError::Refused(format!("the plan artifact: {e}")))
        };
        let json = read("plan.json")?;
        let text = String::from_utf8_lossy(&read("plan.txt")?).into_owned();
        let summary =
            PlanSummary::from_json(&json).map_err(|e| EffectError::Refused(e.to_string()))?;
        let sensitive = sensitive_values(&json).map_err(|e| EffectError::Refused(e.to_string()))?;
        let masked = self.masker.mask(&text, &sensitive);
        let revision = r
            .run(RunKind::Plan)
            .map(|p| p.revision)
            .unwrap_or(r.revision);
        let env = r.environment.clone().unwrap_or_default();
        let pr_url = r.pull_request.as_ref().map(|p| p.url.clone());
        let plan = comments::plan::PlanComment {
            request_id: r.id,
            revision: u32::try_from(revision).unwrap_or(u32::MAX),
            environment: &env,
            run_id,
            run_url,
            pr_url: pr_url.as_deref(),
            summary: &summary,
            plan_text: &masked,
        };
        let bodies = comments::plan::plan_comments(&plan, Default::default());
        let thread = r
            .pull_request
            .as_ref()
            .map(|p| p.number)
            .unwrap_or(r.issue_number);
        let mut records = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let key = plan.marker_key(i + 1);
            let posted = self.post(scope, thread, &key, body, resumed).await?;
            records.push((key, posted));
        }
        if thread != r.issue_number {
            let summary_body = comments::plan::plan_issue_summary(&plan);
            let key = comments::plan::plan_summary_key(&plan);
            let posted = self
                .post_once(scope, r.issue_number, &key, &summary_body)
                .await?;
            records.push((key, posted));
        }
        Ok(Done {
            result: EffectResult::Plan {
                summary: summary.line(),
                comments: bodies.len(),
            },
            apply: None,
            records,
        })
    }

    /// The generic answer once a delivery is given up.
    async fn answer_given_up(&self, delivery: &Delivery, event: &Event) -> anyhow::Result<()> {
        let (repo, installation, thread) = match event {
            Event::IssueComment(e) => (
                &e.repository.full_name,
                e.installation.as_ref().map(|i| i.id),
                Some(e.issue.number),
            ),
            Event::PullRequest(e) => (
                &e.repository.full_name,
                e.installation.as_ref().map(|i| i.id),
                self.store
                    .find_by_thread(&e.repository.full_name, e.number)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.issue_number),
            ),
            Event::WorkflowRun(e) => {
                let id = e
                    .workflow_run
                    .display_title
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .find_map(|w| w.parse::<RequestId>().ok());
                let thread = match id {
                    Some(id) => self
                        .store
                        .get(id)
                        .await
                        .ok()
                        .flatten()
                        .map(|r| r.issue_number),
                    None => None,
                };
                (
                    &e.repository.full_name,
                    e.installation.as_ref().map(|i| i.id),
                    thread,
                )
            }
            _ => return Ok(()),
        };
        if let Event::IssueComment(e) = event
            && (self.is_own(&e.comment.user) || e.action != IssueCommentAction::Created)
        {
            return Ok(());
        }
        let (Some(scope), Some(thread)) = (self.scope(repo, installation, None), thread) else {
            return Ok(());
        };
        let key = EffectKey::given_up(&delivery.id);
        self.post_once(
            &scope,
            thread,
            &key,
            &say::internal_error(&key, delivery.id.as_str()),
        )
        .await?;
        Ok(())
    }
}

/// Why TfPilot does not commit on `branch`, for the person.
fn foreign_commits(branch: &str, head: &str) -> EffectError {
    EffectError::Refused(format!(
        "the branch `{branch}` has commits TfPilot did not make (it is at `{}`); TfPilot only \
         commits on its own. Delete the branch (or reset it to TfPilot's last commit) and try again",
        say::short_sha(head)
    ))
}

fn commit_done(branch: &str, r: &Request, oid: String, made: bool) -> Done {
    let is_request_branch = branch == lifecycle::request_branch(r.id);
    let branch = branch.to_owned();
    let result = EffectResult::Commit {
        oid: oid.clone(),
        made,
    };
    Done {
        result,
        apply: Some(Box::new(move |r: &mut Request| {
            r.branch_heads.insert(branch.clone(), oid.clone());
            if is_request_branch {
                r.branch = Some(branch.clone());
                if let Some(pr) = r.pull_request.as_mut()
                    && !pr.merged
                {
                    pr.head_sha = oid.clone();
                }
            }
        })),
        records: Vec::new(),
    }
}

fn comment_result(id: u64, node_id: String) -> EffectResult {
    EffectResult::Comment {
        id,
        node_id,
        body: None,
    }
}

fn record(at: OffsetDateTime, result: EffectResult) -> EffectRecord {
    EffectRecord { at, result }
}

fn stale(e: &PendingEffect, now: OffsetDateTime) -> bool {
    (now - e.decided_at) > OUTBOX_LEASE
}

/// Whether another delivery's effects (other than comments) are still being carried out.
fn busy(r: &Request, now: OffsetDateTime) -> bool {
    r.outbox
        .iter()
        .any(|e| !matches!(e.effect, Effect::Comment { .. }) && !stale(e, now))
}

#[async_trait]
impl EventHandler for Chatops {
    async fn handle(&self, _delivery: &Delivery, event: &Event) -> anyhow::Result<()> {
        match event {
            Event::IssueComment(e) => self.on_comment(e).await,
            Event::PullRequest(e) => self.on_pull_request(e).await,
            Event::WorkflowRun(e) => self.on_workflow_run(e).await,
            _ => Ok(()),
        }
    }

    async fn gave_up(&self, delivery: &Delivery, event: &Event, _reason: &str) {
        if let Err(e) = self.answer_given_up(delivery, event).await {
            tracing::error!(error = %format!("{e:#}"), "cannot tell the thread that the delivery was given up");
        }
    }
}
