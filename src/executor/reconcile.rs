//! Reconciliation: GitHub does not redeliver a webhook it failed to deliver, so a request waiting
//! on GitHub (a run to finish, a pull request to be merged or closed) could wait forever and
//! refuse every later command. [`Executor::reconcile`] finds the requests that have been waiting
//! longer than [`RECONCILE_AFTER`], reads the run or the pull request from the API and feeds the
//! very input the webhook would have produced through the same decision path: the same
//! idempotency key, so a late real webhook is a redelivery, not a second decision.
//!
//! It runs on the `serve` timer and on the Lambda worker's schedule (through
//! [`EventHandler::sweep`](crate::worker::EventHandler::sweep)).

use time::{Duration, OffsetDateTime};

use super::Executor;
use super::facts::Scope;
use crate::domain::{ListFilter, Request, RequestStatus, RunKind, RunRecord, request_branch};
use crate::github::{RunConclusion, RunStatus, WorkflowRun};
use crate::ids::RequestId;
use crate::lifecycle::{self, Conclusion, Input, RunPhase, RunUpdate};

/// How long a request waits on GitHub before the sweep reads the run or the pull request
/// itself: long enough for a webhook in flight (and the inbox's retries) to arrive first.
pub const RECONCILE_AFTER: Duration = Duration::minutes(10);

/// The statuses in which a request waits for a run of this kind.
const RUN_WAITS: [(RequestStatus, RunKind); 3] = [
    (RequestStatus::Planning, RunKind::Plan),
    (RequestStatus::Applying, RunKind::Apply),
    (RequestStatus::Destroying, RunKind::Destroy),
];

/// The statuses in which the request's pull request can be merged or closed on GitHub (the
/// lifecycle's pull request stages, and `pr_closed`: a closed pull request can be reopened and
/// merged).
const PR_WAITS: [RequestStatus; 6] = [
    RequestStatus::PrOpen,
    RequestStatus::Planning,
    RequestStatus::Planned,
    RequestStatus::PlanFailed,
    RequestStatus::Approved,
    RequestStatus::PrClosed,
];

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Requests waiting longer than [`RECONCILE_AFTER`], whose run or pull request was read.
    pub looked_at: usize,
    /// Inputs decided that no webhook had brought (a lost webhook, made good).
    pub decided: usize,
    /// Requests that could not be read or decided (logged; tried again next time).
    pub failed: usize,
}

impl Executor {
    /// Reads from GitHub what every request waiting on it for longer than [`RECONCILE_AFTER`]
    /// at `now` is waiting for, and decides what a lost webhook would have made it decide. One
    /// request failing does not stop the others.
    pub async fn reconcile(&self, now: OffsetDateTime) -> anyhow::Result<ReconcileReport> {
        let mut statuses: Vec<RequestStatus> = RUN_WAITS.iter().map(|(s, _)| *s).collect();
        statuses.extend(PR_WAITS);
        statuses.sort_by_key(|s| s.as_str());
        statuses.dedup();
        let filter = ListFilter {
            statuses,
            ..ListFilter::default()
        };
        let mut report = ReconcileReport::default();
        for r in self.store.list(&filter).await? {
            if now - waiting_since(&r) < RECONCILE_AFTER {
                continue;
            }
            report.looked_at += 1;
            match self.reconcile_one(&r).await {
                Ok(decided) => report.decided += decided,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(request = %r.id, error = %format!("{e:#}"), "cannot reconcile the request with GitHub; trying again next time");
                }
            }
        }
        if report.decided > 0 {
            tracing::info!(?report, "reconciled requests whose webhooks did not arrive");
        }
        Ok(report)
    }

    /// The run first (a plan may end while its pull request is merged), then the pull request.
    async fn reconcile_one(&self, r: &Request) -> anyhow::Result<usize> {
        let scope = self.request_scope(r)?;
        let mut decided = 0;
        if let Some((_, kind)) = RUN_WAITS.iter().find(|(s, _)| *s == r.status)
            && let Some(record) = r.runs.get(kind).filter(|run| run.is_active())
            && let Some(run) = self.awaited_run_on_github(&scope, r, *kind, record).await?
            && let Some(update) = run_update(&run)
        {
            decided += self.decide_lost(&scope, r.id, Input::Run(update)).await?;
        }
        let Some(current) = self.store.get(r.id).await? else {
            return Ok(decided);
        };
        if PR_WAITS.contains(&current.status)
            && let Some(number) = current.pull_request.as_ref().map(|p| p.number)
        {
            let pr = scope.gh.pull_request(number).await?;
            let closed_again = !pr.merged && current.status == RequestStatus::PrClosed;
            if !pr.open && !closed_again {
                let input = Input::PrClosed {
                    number,
                    merged: pr.merged,
                    head_sha: pr.head_sha,
                    merge_sha: pr.merge_commit_sha,
                };
                decided += self.decide_lost(&scope, r.id, input).await?;
            }
        }
        Ok(decided)
    }

    /// The run `record` is on GitHub: by its id once known, else by its dispatch id on the refs
    /// a dispatch of `kind` uses.
    async fn awaited_run_on_github(
        &self,
        scope: &Scope,
        r: &Request,
        kind: RunKind,
        record: &RunRecord,
    ) -> anyhow::Result<Option<WorkflowRun>> {
        if let Some(id) = record.run_id {
            return Ok(Some(scope.gh.workflow_run(id).await?));
        }
        let (Some(dispatch_id), Some(workflow)) = (&record.dispatch_id, r.workflows.get(&kind))
        else {
            return Ok(None);
        };
        let base = r.base_branch.clone().unwrap_or_else(|| "main".to_owned());
        let refs = match kind {
            RunKind::Plan => vec![request_branch(r.id), base],
            _ => vec![base],
        };
        for git_ref in refs {
            if let Some(run) = scope
                .gh
                .find_workflow_run(workflow, &git_ref, dispatch_id)
                .await?
            {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// Decides `input` about request `id` as its webhook would have; `0` when it was decided
    /// before (the webhook did arrive meanwhile: only its effects are resumed).
    async fn decide_lost(
        &self,
        scope: &Scope,
        id: RequestId,
        input: Input,
    ) -> anyhow::Result<usize> {
        let Some(current) = self.store.get(id).await? else {
            return Ok(0);
        };
        let already = current.effects.contains_key(&lifecycle::input_key(&input));
        if !already {
            tracing::info!(request = %id, key = %lifecycle::input_key(&input), "deciding what a lost webhook would have");
        }
        let sender = self.bot_login.clone();
        self.process_event(scope, current, &input, &sender).await?;
        Ok(usize::from(!already))
    }
}

/// Since when `r` has been waiting: its run's dispatch while a run is awaited, else its last
/// change.
fn waiting_since(r: &Request) -> OffsetDateTime {
    RUN_WAITS
        .iter()
        .find(|(s, _)| *s == r.status)
        .and_then(|(_, kind)| r.runs.get(kind))
        .and_then(|run| run.dispatched_at)
        .unwrap_or(r.updated_at)
}

/// The `workflow_run` webhook GitHub would have sent for `run` as it is now (`None` while it is
/// queued: nothing to decide yet).
fn run_update(run: &WorkflowRun) -> Option<RunUpdate> {
    let phase = match &run.status {
        RunStatus::InProgress => RunPhase::InProgress,
        RunStatus::Completed => RunPhase::Completed(match run.conclusion {
            Some(RunConclusion::Success) => Conclusion::Success,
            Some(RunConclusion::Cancelled) => Conclusion::Cancelled,
            _ => Conclusion::Failure,
        }),
        RunStatus::Queued | RunStatus::Other(_) => return None,
    };
    let title = if run.display_title.is_empty() {
        run.name.clone()
    } else {
        run.display_title.clone()
    };
    Some(RunUpdate {
        run_id: run.id,
        title,
        phase,
        head_sha: run.head_sha.clone(),
        url: run.html_url.clone(),
        workflow_path: run.path.clone(),
        event: run.event.clone(),
        head_branch: run.head_branch.clone(),
    })
}
