//! Events: a pull request closed, a workflow run changed state, an effect failed.

use super::RunUpdate;
use super::decider::{Decider, PR_STAGES};
use crate::comments::lifecycle::{self as say, short_sha};
use crate::domain::{
    BlockChange, CheckStep, Conclusion, Effect, EffectKey, PrPurpose, Request, RequestStatus,
    RunKind, RunOutcome, RunPhase, RunRecord, RunStatus, request_branch,
};

impl Decider<'_> {
    pub(super) fn pr_closed(
        &mut self,
        number: u64,
        merged: bool,
        head_sha: &str,
        merge_sha: Option<&str>,
    ) {
        let Some(r) = self.request.clone() else {
            return;
        };
        if r.pull_request.as_ref().map(|p| p.number) != Some(number) {
            return;
        }
        let p = self.prefix().to_owned();
        let issue = r.issue_number;
        // A pull request closed before can be reopened and merged on GitHub: then it is merged.
        if !(PR_STAGES.contains(&r.status) || (merged && r.status == RequestStatus::PrClosed)) {
            return;
        }
        if merged {
            let now = self.facts.now;
            let login = self.actor.login.clone();
            let req = self.req();
            if let Some(pr) = req.pull_request.as_mut() {
                pr.merged = true;
                pr.head_sha = head_sha.to_owned();
                pr.merge_commit_sha = merge_sha.map(str::to_owned);
            }
            req.status = RequestStatus::Merged;
            req.record(now, login, "merged", merge_sha.map(short_sha));
            let plan_ok = r.run(RunKind::Plan).is_some_and(|run| {
                run.succeeded()
                    && run.revision == r.revision
                    && run.head_sha.as_deref() == Some(head_sha)
            });
            let needed = self.policy.approvals_needed(&self.env());
            let approved = if needed == 0 {
                r.approvals.iter().any(|a| a.head_sha == head_sha)
            } else {
                self.counted_approvals(&r, &[head_sha]).len() >= needed as usize
            };
            // `merge` merged it and its answer said so: nothing to add then.
            if !r.effects.contains_key(&EffectKey::merge(number)) {
                self.comment(
                    EffectKey::merged(number),
                    issue,
                    say::merged(
                        &EffectKey::merged(number),
                        number,
                        plan_ok,
                        approved,
                        needed > 0,
                        &self.env(),
                        &p,
                    ),
                );
            }
            if plan_ok {
                self.push(
                    EffectKey::check_merged(number),
                    Effect::Check {
                        step: CheckStep::Merged,
                    },
                );
            }
        } else {
            self.set_status(RequestStatus::PrClosed, "pr_closed", None);
            self.comment(
                EffectKey::pr_closed(number, r.version),
                issue,
                say::pr_closed(&EffectKey::pr_closed(number, r.version), number, &p),
            );
        }
    }

    pub(super) fn run(&mut self, run: &RunUpdate) {
        let Some(r) = self.request.clone() else {
            return;
        };
        let Some((kind, mut record)) = awaited_run(&r, run) else {
            return;
        };
        record.run_id = Some(run.run_id);
        record.url = Some(run.url.clone());
        record.head_sha = Some(run.head_sha.clone());
        let conclusion = match run.phase {
            RunPhase::InProgress => {
                record.status = Some(RunStatus::InProgress);
                self.req().runs.insert(kind, record);
                return;
            }
            RunPhase::Completed(c) => c,
        };
        record.status = Some(RunStatus::Completed);
        record.conclusion = Some(RunOutcome::from(conclusion));
        self.req().runs.insert(kind, record);
        match kind {
            RunKind::Plan => self.plan_finished(&r, run, conclusion),
            RunKind::Apply => self.apply_finished(&r, run, conclusion),
            RunKind::Destroy => self.destroy_finished(&r, run, conclusion),
            RunKind::Cleanup => {}
        }
    }

    /// A successful plan is posted; a failed or cancelled one is said.
    fn plan_finished(&mut self, r: &Request, run: &RunUpdate, c: Conclusion) {
        if c == Conclusion::Success {
            if r.status == RequestStatus::Planning {
                self.set_status(
                    RequestStatus::Planned,
                    "plan_finished",
                    Some(run.url.clone()),
                );
            }
            self.push(
                EffectKey::post_plan(run.run_id),
                Effect::PostPlan {
                    run_id: run.run_id,
                    run_url: run.url.clone(),
                },
            );
            return;
        }
        if r.status == RequestStatus::Planning {
            let status = if c == Conclusion::Cancelled {
                RequestStatus::PrOpen
            } else {
                RequestStatus::PlanFailed
            };
            self.set_status(status, "plan_finished", Some(c.as_str().into()));
        }
        self.run_ended(r, run, RunKind::Plan, c);
        if run.head_branch == request_branch(r.id) {
            self.push(
                EffectKey::check_run(run.run_id),
                Effect::Check {
                    step: CheckStep::PlanEnded {
                        run_id: run.run_id,
                        run_url: run.url.clone(),
                        outcome: c.into(),
                    },
                },
            );
        }
    }

    fn apply_finished(&mut self, r: &Request, run: &RunUpdate, c: Conclusion) {
        if r.status == RequestStatus::Applying {
            let status = match c {
                Conclusion::Success => RequestStatus::Applied,
                Conclusion::Failure => RequestStatus::ApplyFailed,
                Conclusion::Cancelled => RequestStatus::Merged,
            };
            self.set_status(status, "apply_finished", Some(c.as_str().into()));
        }
        self.run_ended(r, run, RunKind::Apply, c);
        self.push(
            EffectKey::check_run(run.run_id),
            Effect::Check {
                step: CheckStep::Applied {
                    run_id: run.run_id,
                    run_url: run.url.clone(),
                    head_sha: run.head_sha.clone(),
                    outcome: c.into(),
                },
            },
        );
    }

    /// A successful destroy goes on with the cleanup pull request and the archive.
    fn destroy_finished(&mut self, r: &Request, run: &RunUpdate, c: Conclusion) {
        if r.status != RequestStatus::Destroying {
            return;
        }
        self.run_ended(r, run, RunKind::Destroy, c);
        if c != Conclusion::Success {
            self.set_status(
                RequestStatus::DestroyFailed,
                "destroy_finished",
                Some(c.as_str().into()),
            );
            return;
        }
        self.set_status(RequestStatus::Destroyed, "destroy_finished", None);
        if let Err(denial) = self.cleanup_effects() {
            let key = EffectKey::cleanup_failed(run.run_id);
            self.comment(key.clone(), r.issue_number, say::denial(&key, &denial));
        }
    }

    /// Says on the issue how a run ended.
    fn run_ended(&mut self, r: &Request, run: &RunUpdate, kind: RunKind, c: Conclusion) {
        let p = self.prefix().to_owned();
        let env = self.env();
        let key = EffectKey::run(run.run_id);
        let text = say::run_ended(&key, kind, c, &run.url, &env, &p);
        self.comment(key, r.issue_number, text);
    }

    pub(super) fn effect_failed(&mut self, key: &EffectKey, effect: &Effect, reason: &str) {
        let Some(r) = self.request.clone() else {
            return;
        };
        let Some((what, remedy)) = self.failure(&r, effect, reason) else {
            return;
        };
        let failed_key = EffectKey::failed(key);
        let text = say::effect_failed(&failed_key, what, reason, &remedy);
        // The archive (if any) stays last.
        let archive = self
            .effects
            .iter()
            .position(|e| e.effect == Effect::Archive);
        self.comment(failed_key, r.issue_number, text);
        if let Some(i) = archive {
            let a = self.effects.remove(i);
            self.effects.push(a);
        }
    }

    /// What a failed effect leaves the request in, and the words for it: what could not be
    /// done and what to do (`None`: a failed comment or minimize is not worth a comment).
    fn failure(
        &mut self,
        r: &Request,
        effect: &Effect,
        reason: &str,
    ) -> Option<(&'static str, String)> {
        let p = self.prefix().to_owned();
        Some(match effect {
            Effect::CommitBlock {
                change: BlockChange::Upsert { .. },
                ..
            }
            | Effect::OpenPr {
                purpose: PrPurpose::Request,
                ..
            } => self.request_change_failed(r, reason),
            Effect::CommitBlock {
                change: BlockChange::Remove,
                ..
            }
            | Effect::OpenPr {
                purpose: PrPurpose::Cleanup,
                ..
            } => (
                "open the cleanup pull request",
                format!(
                    "The resources are destroyed. Fix the problem, then `{p} cleanup` to try again."
                ),
            ),
            Effect::Dispatch { kind, .. } => self.dispatch_failed(r, *kind, reason),
            Effect::Merge { .. } => (
                "merge the pull request",
                "Look at the pull request on GitHub; once it can be merged, try again.".into(),
            ),
            Effect::ClosePr { .. } => {
                self.push(EffectKey::archive(), Effect::Archive);
                (
                    "close the pull request",
                    "Close it by hand; the request is cancelled.".into(),
                )
            }
            Effect::PostPlan { .. } => (
                "post the plan",
                "The plan itself succeeded: read it in the workflow run.".into(),
            ),
            Effect::Archive => ("archive the request", "Nothing to do.".into()),
            Effect::DriftCheck { .. } => (
                "start the drift check",
                format!(
                    "Check that `.github/workflows/drift.yml` is on the default branch, then `{p} drift` again."
                ),
            ),
            Effect::Comment { .. }
            | Effect::MinimizeComments { .. }
            | Effect::Check { .. }
            | Effect::Notify { .. } => {
                return None;
            }
        })
    }

    /// The request's commit or pull request failed: before the pull request exists the
    /// request is ready to submit again, after it the revision is not on the pull request.
    fn request_change_failed(&mut self, r: &Request, reason: &str) -> (&'static str, String) {
        let p = self.prefix().to_owned();
        if r.pull_request.is_none() {
            self.set_status(RequestStatus::Ready, "submit_failed", Some(reason.into()));
            (
                "open the pull request",
                format!("Fix the problem, then `{p} submit` again."),
            )
        } else {
            self.set_status(
                RequestStatus::PrOpen,
                "revision_failed",
                Some(reason.into()),
            );
            (
                "update the pull request",
                "Fix the problem, then change the value again.".to_owned(),
            )
        }
    }

    /// A workflow could not be started: its run is recorded as not started.
    fn dispatch_failed(
        &mut self,
        r: &Request,
        kind: RunKind,
        reason: &str,
    ) -> (&'static str, String) {
        let p = self.prefix().to_owned();
        if let Some(run) = self.req().runs.get_mut(&kind) {
            run.status = Some(RunStatus::NotStarted);
            run.conclusion = Some(RunOutcome::NotStarted);
        }
        let status = match (kind, r.status) {
            (RunKind::Plan, RequestStatus::Planning) => Some(RequestStatus::PrOpen),
            (RunKind::Apply, _) => Some(RequestStatus::ApplyFailed),
            (RunKind::Destroy, _) => Some(RequestStatus::DestroyFailed),
            _ => None,
        };
        if let Some(status) = status {
            self.set_status(status, "dispatch_failed", Some(reason.into()));
        }
        (
            "start the workflow",
            format!(
                "Check the workflow file on the branch, then `{p} {}` again.",
                kind.as_str()
            ),
        )
    }
}

/// The run of `r` that `run` is, if the request is waiting for it. Anyone who can push a
/// workflow can give a run any title, so the title alone never maps a run: once GitHub said
/// which run a dispatch started, only that run id counts; before, the dispatch id must be a word
/// of the title, and the run must be what TfPilot dispatched (its workflow file,
/// `workflow_dispatch`, on the ref it dispatched). A run that already concluded is not awaited.
fn awaited_run(r: &Request, run: &RunUpdate) -> Option<(RunKind, RunRecord)> {
    let (&kind, record) = r.runs.iter().find(|(_, rec)| match rec.run_id {
        Some(id) => id == run.run_id,
        None => rec
            .dispatch_id
            .as_deref()
            .is_some_and(|d| run.title.split_whitespace().any(|w| w == d)),
    })?;
    // Not found: not a run this request is waiting for (an older revision's, or not TfPilot's).
    if !dispatched_by_tfpilot(r, kind, run) || record.conclusion.is_some() {
        return None;
    }
    Some((kind, record.clone()))
}

/// Whether `run` is a run TfPilot's dispatch of `kind` would start: `workflow_dispatch` of the
/// request's workflow file, on the request branch (a plan before the merge) or the base branch.
pub(super) fn dispatched_by_tfpilot(r: &Request, kind: RunKind, run: &RunUpdate) -> bool {
    let Some(file) = r.workflows.get(&kind) else {
        return false;
    };
    let base = r.base_branch.as_deref().unwrap_or("main");
    let on_its_ref = run.head_branch == base
        || (kind == RunKind::Plan && run.head_branch == request_branch(r.id));
    run.event == "workflow_dispatch"
        && run.workflow_path == format!(".github/workflows/{file}")
        && on_its_ref
}
