//! Carrying out one effect on GitHub (and what it changes in the request): comments, commits,
//! pull requests, dispatches, merges, minimized comments, plan comments. A resumed effect (one
//! that may have happened before a crash) is looked for before it is done again.

use std::collections::BTreeMap;

use super::Executor;
use super::facts::Scope;
use crate::comments::{self, lifecycle as say, marker_key};
use crate::domain::{EffectKey, EffectResult, PullRequestRef, Request, RunKind};
use crate::github::{
    ArtifactArchive, BranchStart, FileChange, GitHubError, MergeMethod, MinimizeReason,
};
use crate::lifecycle::{self, BlockChange, Body, Effect, PendingEffect, PrPurpose};
use crate::store::StoreError;
use crate::terraform::blocks;
use crate::terraform::plan::{Masker, PlanReport, PlanSummary, keep_end};

/// The largest plan artifact read.
const MAX_PLAN_ARTIFACT_BYTES: u64 = 20 * 1024 * 1024;

/// The longest comment body kept in the request's effect record (for the chat log).
const MAX_RECORDED_BODY: usize = 16 * 1024;

/// Why an effect did not happen.
pub(super) enum EffectError {
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

pub(super) struct Done {
    pub(super) result: EffectResult,
    pub(super) apply: Option<Apply>,
    /// Extra effect records (each plan comment under its own marker key).
    pub(super) records: Vec<(EffectKey, EffectResult)>,
}

impl Done {
    fn with_records(mut self, records: Vec<(EffectKey, EffectResult)>) -> Self {
        self.records = records;
        self
    }

    pub(super) fn with(result: EffectResult) -> Self {
        Done {
            result,
            apply: None,
            records: Vec::new(),
        }
    }

    pub(super) fn applying(
        result: EffectResult,
        apply: impl Fn(&mut Request) + Send + Sync + 'static,
    ) -> Self {
        Done {
            result,
            apply: Some(Box::new(apply)),
            records: Vec::new(),
        }
    }
}

/// Where a commit starts: how the branch is addressed, and the commit the change is made on.
struct Start {
    branch: BranchStart,
    parent: String,
}

impl Executor {
    pub(super) async fn perform(
        &self,
        scope: &Scope,
        r: &Request,
        entry: &PendingEffect,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        match &entry.effect {
            Effect::Comment { thread, body } => {
                self.perform_comment(scope, r, entry, *thread, body, resumed)
                    .await
            }
            Effect::CommitBlock {
                branch,
                base,
                file,
                change,
                message,
            } => {
                let at = BlockAt { branch, base, file };
                self.commit_block(scope, r, at, change, message, resumed)
                    .await
            }
            Effect::OpenPr {
                purpose,
                branch,
                base,
                title,
                body,
            } => {
                self.open_pr(scope, r, *purpose, branch, base, title, body)
                    .await
            }
            Effect::Dispatch { .. } => self.dispatch(scope, r, &entry.effect, resumed).await,
            Effect::Merge {
                number,
                expected_head,
            } => self.merge(scope, *number, expected_head).await,
            Effect::ClosePr { number } => {
                scope.gh.close_pull_request(*number).await?;
                Ok(Done::with(EffectResult::default()))
            }
            Effect::MinimizeComments { key_prefix } => self.minimize(scope, r, key_prefix).await,
            Effect::PostPlan { run_id, run_url } => {
                self.post_plan(scope, r, *run_id, run_url, resumed).await
            }
            Effect::Check { step } => self.perform_check(scope, r, step, resumed).await,
            Effect::Notify { notice } => self.notify(notice).await,
            Effect::DriftCheck {
                environments,
                dispatch_id,
            } => {
                self.start_drift_check(scope, environments, dispatch_id)
                    .await
                    .map_err(EffectError::Retry)?;
                Ok(Done::with(EffectResult::default()))
            }
            Effect::Archive => Ok(Done::with(EffectResult::default())),
        }
    }

    async fn perform_comment(
        &self,
        scope: &Scope,
        r: &Request,
        entry: &PendingEffect,
        thread: u64,
        body: &Body,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        let text = match body {
            Body::Text { text } => text.clone(),
            Body::PrOpened { purpose } => {
                say::pr_opened(&entry.key, r, *purpose == PrPurpose::Cleanup, &self.prefix)
            }
        };
        let mut result = self.post(scope, thread, &entry.key, &text, resumed).await?;
        // Kept for the chat log (conversation replies); long bodies are not copied.
        if text.len() <= MAX_RECORDED_BODY
            && let EffectResult::Comment { body, .. } = &mut result
        {
            *body = Some(text);
        }
        Ok(Done::with(result))
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_pr(
        &self,
        scope: &Scope,
        r: &Request,
        purpose: PrPurpose,
        branch: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<Done, EffectError> {
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
        Ok(Done::applying(
            result,
            move |r: &mut Request| match purpose {
                PrPurpose::Request => r.pull_request = Some(pr_ref.clone()),
                PrPurpose::Cleanup => r.cleanup_pull_request = Some(pr_ref.clone()),
            },
        ))
    }

    async fn dispatch(
        &self,
        scope: &Scope,
        r: &Request,
        effect: &Effect,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        let Effect::Dispatch {
            kind,
            workflow,
            git_ref,
            environment,
            dispatch_id,
            expected_sha,
        } = effect
        else {
            unreachable!("dispatch is called with a dispatch effect");
        };
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
                let mut inputs: BTreeMap<String, String> = [
                    ("request_id".to_owned(), r.id.to_string()),
                    ("environment".to_owned(), environment.clone()),
                    ("dispatch_id".to_owned(), dispatch_id.clone()),
                ]
                .into_iter()
                .collect();
                if let Some(sha) = expected_sha {
                    inputs.insert("expected_sha".to_owned(), sha.clone());
                }
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
        Ok(Done::applying(result, move |r: &mut Request| {
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
        }))
    }

    async fn merge(
        &self,
        scope: &Scope,
        number: u64,
        expected_head: &str,
    ) -> Result<Done, EffectError> {
        match scope
            .gh
            .merge_pull_request(number, MergeMethod::Merge, Some(expected_head))
            .await
        {
            Ok(m) => Ok(Done::with(EffectResult::Merged { sha: Some(m.sha) })),
            Err(e) => {
                // Merged already (a retried merge): that is what was asked.
                let state = scope.gh.pull_request(number).await?;
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

    async fn minimize(
        &self,
        scope: &Scope,
        r: &Request,
        key_prefix: &EffectKey,
    ) -> Result<Done, EffectError> {
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

    /// Commits the block change on `at.branch`: on top of TfPilot's own last commit there, or on
    /// a new branch from `at.base`. A branch with commits TfPilot did not make (prepared under the
    /// request's name, or pushed to since) is refused, never built on: TfPilot's pull request
    /// holds TfPilot's lines only.
    async fn commit_block(
        &self,
        scope: &Scope,
        r: &Request,
        at: BlockAt<'_>,
        change: &BlockChange,
        message: &str,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        let BlockAt { branch, base, file } = at;
        // A first commit never tried before goes on a branch TfPilot creates: it is not read
        // first (creating it finds one that exists; GitHub then says where it is).
        let fresh = !resumed && lifecycle::tfpilot_head(r, branch).is_none();
        let (live, start, current) = if fresh {
            // The base's head and the file there, in one read.
            let read = scope.gh.read_at_head(base, file, None).await?;
            let from = read.head.ok_or_else(|| {
                EffectError::Refused(format!("the base branch `{base}` does not exist"))
            })?;
            let start = Start {
                branch: BranchStart::New {
                    from: from.clone(),
                    repository_id: read.repository_id,
                },
                parent: from,
            };
            (None, start, read.file)
        } else {
            let live = scope.gh.branch_head(branch).await?;
            let start = self
                .commit_start(scope, r, at, live.as_deref(), resumed)
                .await?;
            let current = scope.gh.get_file(&start.parent, file).await?;
            (live, start, current)
        };
        let text = current
            .as_ref()
            .map(|f| f.text.as_str())
            .unwrap_or_default();
        let next = match change {
            BlockChange::Upsert { block } => blocks::upsert_block(text, &r.id, block),
            BlockChange::Remove => blocks::remove_block(text, &r.id),
        }
        .map_err(|e| EffectError::Refused(format!("`{file}`: {e}")))?;
        let remove = matches!(change, BlockChange::Remove);
        // (A removal that deleted the file left nothing to remove either.)
        let unchanged = next == text && (current.is_some() || remove);
        if unchanged && let BranchStart::Existing { .. } = start.branch {
            // Done before (a retried cleanup or submit): nothing to commit.
            return match &live {
                Some(live) if *live != start.parent => Err(foreign_commits(branch, live)),
                _ => Ok(commit_done(branch, r, start.parent, false)),
            };
        }
        if unchanged && remove {
            return Err(EffectError::Refused(format!(
                "`{file}` on `{base}` has no block of this request, so there is nothing to remove"
            )));
        }
        let changes = if next.is_empty() && remove {
            vec![FileChange::delete(file)]
        } else {
            vec![FileChange::put(file, next)]
        };
        match scope
            .gh
            .commit_files(branch, start.branch, message, &changes)
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

    /// Where TfPilot commits on `at.branch`, which is at `live` (`None`: it does not exist).
    async fn commit_start(
        &self,
        scope: &Scope,
        r: &Request,
        at: BlockAt<'_>,
        live: Option<&str>,
        resumed: bool,
    ) -> Result<Start, EffectError> {
        let known = lifecycle::tfpilot_head(r, at.branch).cloned();
        let base_head = || async {
            scope.gh.branch_head(at.base).await?.ok_or_else(|| {
                EffectError::Refused(format!("the base branch `{}` does not exist", at.base))
            })
        };
        match (live, &known) {
            (None, _) => {
                let from = base_head().await?;
                Ok(Start {
                    branch: BranchStart::New {
                        from: from.clone(),
                        repository_id: None,
                    },
                    parent: from,
                })
            }
            (Some(live), Some(known)) if live == known => Ok(existing_start(live.to_owned())),
            // A commit TfPilot made before a crash was not recorded: committing from where
            // TfPilot last was finds it (the client compares the branch head with the commit it
            // was asked to make); anything else there is someone else's. Where TfPilot last was
            // is the recorded head; for the first commit, the base's head then: the parent of
            // the commit on the branch, if it has one parent (the base may have moved on since),
            // else the base's head now.
            (Some(live), _) if resumed => {
                let expected = match known {
                    Some(k) => k,
                    None => {
                        let base = base_head().await?;
                        if live == base {
                            base
                        } else {
                            match scope.gh.commit_parents(live).await?.as_slice() {
                                [parent] => parent.clone(),
                                _ => base,
                            }
                        }
                    }
                };
                Ok(existing_start(expected))
            }
            (Some(live), _) => Err(foreign_commits(at.branch, live)),
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
        let limits = comments::plan::PlanCommentLimits::default();
        let archive = read_plan(scope, run_id).await?;
        let PlanToPost {
            summary,
            digest,
            text: masked,
            lines_cut,
        } = plan_from_archive(archive, &self.masker, limits.text_budget())
            .map_err(EffectError::Refused)?;
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
            lines_cut,
        };
        let bodies = comments::plan::plan_comments(&plan, limits);
        let mut records = self
            .post_plan_comments(scope, r, &plan, &bodies, resumed)
            .await?;
        self.complete_plan_check(scope, r, &plan).await?;
        let head = r
            .run(RunKind::Plan)
            .filter(|p| p.run_id == Some(run_id))
            .and_then(|p| p.head_sha.clone());
        let merged = r.pull_request.as_ref().is_some_and(|pr| pr.merged);
        let carry = match head {
            Some(head) if !merged => Some(CarriedApprovals::of(r, &head, &digest)),
            _ => None,
        };
        if let Some(c) = carry.as_ref().filter(|c| c.worth_saying()) {
            let key = EffectKey::plan_approvals(run_id);
            let body = say::approvals_after_plan(&key, &c.kept, &c.cleared, &self.prefix);
            let posted = self.post(scope, thread_of(r), &key, &body, resumed).await?;
            records.push((key, posted));
        }
        Ok(Done::applying(
            EffectResult::Plan {
                summary: summary.line(),
                comments: bodies.len(),
            },
            move |r: &mut Request| {
                if let Some(p) = r.runs.get_mut(&RunKind::Plan)
                    && p.run_id == Some(run_id)
                {
                    p.changes = Some(digest.clone());
                }
                if let Some(c) = &carry {
                    c.apply(r);
                }
            },
        )
        .with_records(records))
    }

    /// Posts the plan's comments on the request's pull request (or issue), and a summary on the
    /// issue when the plan is on the pull request. Returns each comment's record.
    async fn post_plan_comments(
        &self,
        scope: &Scope,
        r: &Request,
        plan: &comments::plan::PlanComment<'_>,
        bodies: &[String],
        resumed: bool,
    ) -> Result<Vec<(EffectKey, EffectResult)>, EffectError> {
        let thread = thread_of(r);
        let mut records = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let key = plan.marker_key(i + 1);
            let posted = self.post(scope, thread, &key, body, resumed).await?;
            records.push((key, posted));
        }
        if thread != r.issue_number {
            let summary_body = comments::plan::plan_issue_summary(plan);
            let key = comments::plan::plan_summary_key(plan);
            let posted = self
                .post(scope, r.issue_number, &key, &summary_body, resumed)
                .await?;
            records.push((key, posted));
        }
        Ok(records)
    }

    /// Posts a comment; a resumed one only if its marker is not on the thread already.
    pub(super) async fn post(
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
    pub(super) async fn post_once(
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
}

/// Where the plan is discussed: the request's pull request, or its issue before there is one.
fn thread_of(r: &Request) -> u64 {
    r.pull_request
        .as_ref()
        .map(|p| p.number)
        .unwrap_or(r.issue_number)
}

/// What a new plan does to the approvals given before it: an approval of the same resource
/// changes (the same plan digest) moves to the new plan's head and still counts; any other is
/// cleared. An approval stored without a digest holds for its own head only.
struct CarriedApprovals {
    head: String,
    digest: String,
    /// Who approved before this plan: those it keeps, and those it clears.
    kept: Vec<String>,
    cleared: Vec<String>,
}

impl CarriedApprovals {
    fn of(r: &Request, head: &str, digest: &str) -> Self {
        let mut c = CarriedApprovals {
            head: head.to_owned(),
            digest: digest.to_owned(),
            kept: Vec::new(),
            cleared: Vec::new(),
        };
        // Every approval there was given before this plan (none is taken while a plan runs).
        for a in &r.approvals {
            if c.keeps(a) {
                c.kept.push(a.login.clone());
            } else {
                c.cleared.push(a.login.clone());
            }
        }
        c
    }

    fn keeps(&self, a: &crate::domain::Approval) -> bool {
        match &a.plan {
            Some(p) => *p == self.digest,
            None => a.head_sha == self.head,
        }
    }

    fn worth_saying(&self) -> bool {
        !self.kept.is_empty() || !self.cleared.is_empty()
    }

    fn apply(&self, r: &mut Request) {
        r.approvals.retain(|a| self.keeps(a));
        for a in &mut r.approvals {
            a.head_sha = self.head.clone();
            a.plan = Some(self.digest.clone());
        }
    }
}

/// Where a block is committed: the branch, its base and the file.
#[derive(Clone, Copy)]
struct BlockAt<'a> {
    branch: &'a str,
    base: &'a str,
    file: &'a str,
}

/// The run's `plan` artifact.
async fn read_plan(scope: &Scope, run_id: u64) -> Result<ArtifactArchive, EffectError> {
    let artifacts = scope.gh.list_artifacts(run_id).await?;
    let Some(artifact) = artifacts.iter().find(|a| a.name == "plan" && !a.expired) else {
        return Err(EffectError::Refused(format!(
            "run {run_id} published no `plan` artifact"
        )));
    };
    Ok(scope
        .gh
        .download_artifact(artifact.id, MAX_PLAN_ARTIFACT_BYTES)
        .await?)
}

/// A plan as TfPilot posts it.
#[derive(Debug)]
pub struct PlanToPost {
    pub summary: PlanSummary,
    /// [`PlanReport::digest`]: equal for plans that change the same resources the same way.
    pub digest: String,
    /// The end of `plan.txt` that can be shown (`budget` bytes and a margin), masked.
    pub text: String,
    /// Lines of `plan.txt` cut before `text`.
    pub lines_cut: usize,
}

/// Reads a `plan` artifact (`plan.json`, `plan.txt`) into what is posted, holding as little of
/// a large plan as it can: `plan.json` is parsed once (values stay borrowed raw JSON) and
/// dropped before `plan.txt` is read; the archive is dropped before `plan.txt` is cut to the
/// end the comments can show, and only that end is masked. The refusal says what is wrong.
pub fn plan_from_archive(
    archive: ArtifactArchive,
    masker: &Masker,
    budget: usize,
) -> Result<PlanToPost, String> {
    let read = |name: &str| {
        archive
            .file(name, MAX_PLAN_ARTIFACT_BYTES)
            .map_err(|e| format!("the plan artifact: {e}"))
    };
    let report = PlanReport::from_json(&read("plan.json")?).map_err(|e| e.to_string())?;
    let text = read("plan.txt")?;
    drop(archive);
    let text = String::from_utf8(text)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let (end, lines_cut) = keep_end(text, budget, &report.sensitive);
    Ok(PlanToPost {
        summary: report.summary,
        digest: report.digest,
        text: masker.mask_owned(end, &report.sensitive),
        lines_cut,
    })
}

fn existing_start(head: String) -> Start {
    Start {
        branch: BranchStart::Existing {
            expected_head: head.clone(),
        },
        parent: head,
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
    Done::applying(result, move |r: &mut Request| {
        r.branch_heads.insert(branch.clone(), oid.clone());
        if is_request_branch {
            r.branch = Some(branch.clone());
            if let Some(pr) = r.pull_request.as_mut()
                && !pr.merged
            {
                pr.head_sha = oid.clone();
            }
        }
    })
}

pub(super) fn comment_result(id: u64, node_id: String) -> EffectResult {
    EffectResult::Comment {
        id,
        node_id,
        body: None,
    }
}
