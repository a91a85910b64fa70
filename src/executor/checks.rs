//! Carrying out [`Effect::Check`](crate::domain::Effect::Check) and completing the plan's check
//! run when the plan is posted: the fewest calls the Checks API allows (create the plan's check
//! already in progress, one update when it ends, one when merged, create the apply's completed),
//! the ids kept on the run's record and never read back. A check run that may have been created
//! before a crash is looked for by its `external_id` (`<request id>/<dispatch id>`) first.

use super::Executor;
use super::facts::Scope;
use super::perform::{Done, EffectError};
use crate::command::Command;
use crate::comments::check::{self as words, APPLY_CHECK, CheckText, PLAN_CHECK};
use crate::comments::plan::PlanComment;
use crate::domain::{
    CheckStep, Denial, EffectResult, Request, RunKind, RunOutcome, request_branch,
};
use crate::github::{
    CheckAction, CheckConclusion, CheckOutput, CheckRunWrite, CheckState, checks as limits,
};
use crate::ids::DeliveryId;
use crate::ids::RequestId;
use crate::lifecycle;
use crate::lifecycle::CommentAt;

/// The input id of a button click: GitHub's ids (comments included) stay below 2^53 (they are
/// JavaScript-safe integers), so a click's id, taken from its delivery id at 2^62 and above,
/// is never a comment's. A redelivery of the click has the same id, so it is decided once.
const CLICK_ID_BASE: u64 = 1 << 62;

/// Where a click on a button of request `r`'s check run is answered: its pull request (or its
/// issue), under an id of its own.
pub(super) fn click_at(delivery: &DeliveryId, r: &Request) -> CommentAt {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(delivery.as_str().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    CommentAt {
        comment_id: CLICK_ID_BASE | (u64::from_be_bytes(first) >> 2),
        thread: r
            .pull_request
            .as_ref()
            .map(|p| p.number)
            .unwrap_or(r.issue_number),
        on_pull_request: r.pull_request.is_some(),
    }
}

/// Whether `at` is a button click rather than a comment.
pub(super) fn is_click(at: CommentAt) -> bool {
    at.comment_id >= CLICK_ID_BASE
}

/// The command a button stands for.
pub(super) fn button_command(identifier: &str) -> Option<Command> {
    match identifier {
        "approve" => Some(Command::Approve),
        "apply" => Some(Command::Apply),
        _ => None,
    }
}

/// The answer to a click on a check run TfPilot no longer reports on (an earlier plan's).
pub(super) fn stale_button(head_sha: &str, command: &Command, prefix: &str) -> Denial {
    Denial::new(
        format!(
            "That button is on the check run of an earlier plan (commit `{}`), so TfPilot does not act on it.",
            crate::comments::lifecycle::short_sha(head_sha)
        ),
        format!(
            "Use the buttons of the latest `{PLAN_CHECK}` check run, or comment `{prefix} {}`.",
            command.name()
        ),
    )
}

/// A click on a check run's button names the request by the check run's `external_id`.
pub(super) fn request_of_external_id(external_id: &str) -> Option<RequestId> {
    external_id.split('/').next()?.parse().ok()
}

fn external_id(r: &Request, dispatch_id: &str) -> String {
    format!("{}/{dispatch_id}", r.id)
}

fn output(t: CheckText) -> CheckOutput {
    CheckOutput {
        title: t.title,
        summary: t.summary,
        text: t.text,
    }
}

fn conclusion(outcome: RunOutcome) -> CheckConclusion {
    match outcome {
        RunOutcome::Success => CheckConclusion::Success,
        RunOutcome::Cancelled => CheckConclusion::Neutral,
        RunOutcome::Failure | RunOutcome::NotStarted => CheckConclusion::Failure,
    }
}

impl Executor {
    fn action(&self, command: &str) -> CheckAction {
        let (label, description, identifier) = words::button(command, &self.prefix);
        debug_assert!(
            label.len() <= limits::MAX_ACTION_LABEL
                && description.chars().count() <= limits::MAX_ACTION_DESCRIPTION
                && identifier.len() <= limits::MAX_ACTION_IDENTIFIER
        );
        CheckAction {
            label,
            description,
            identifier,
        }
    }

    pub(super) async fn perform_check(
        &self,
        scope: &Scope,
        r: &Request,
        step: &CheckStep,
        resumed: bool,
    ) -> Result<Done, EffectError> {
        let skipped = Ok(Done::with(EffectResult::default()));
        let plan = r.run(RunKind::Plan);
        let env = r.environment.clone().unwrap_or_default();
        match step {
            CheckStep::PlanStarted { dispatch_id } => {
                // Superseded by a newer dispatch, or no head of TfPilot's to put it on: nothing.
                let Some(run) = plan.filter(|p| p.dispatch_id.as_deref() == Some(dispatch_id))
                else {
                    return skipped;
                };
                let Some(head) = lifecycle::tfpilot_head(r, &request_branch(r.id)).cloned() else {
                    return skipped;
                };
                let write = CheckRunWrite {
                    name: PLAN_CHECK.to_owned(),
                    state: CheckState::InProgress,
                    details_url: run.url.clone(),
                    external_id: external_id(r, dispatch_id),
                    output: Some(output(words::plan_running(&env, run.revision))),
                    actions: None,
                };
                let found = if resumed {
                    scope
                        .gh
                        .find_check_run(&head, PLAN_CHECK, &write.external_id)
                        .await?
                } else {
                    None
                };
                let id = match found {
                    Some(id) => id,
                    None => scope.gh.create_check_run(&head, &write).await?,
                };
                Ok(record_check(RunKind::Plan, dispatch_id.clone(), id))
            }
            CheckStep::PlanEnded {
                run_id,
                run_url,
                outcome,
            } => {
                let Some((id, dispatch_id)) = plan_check(r, *run_id) else {
                    return skipped;
                };
                let write = CheckRunWrite {
                    name: PLAN_CHECK.to_owned(),
                    state: CheckState::Completed(conclusion(*outcome)),
                    details_url: Some(run_url.clone()),
                    external_id: external_id(r, &dispatch_id),
                    output: Some(output(words::plan_ended(*outcome, run_url, &self.prefix))),
                    actions: Some(Vec::new()),
                };
                scope.gh.update_check_run(id, &write).await?;
                skipped
            }
            CheckStep::Merged => {
                let Some(run) = plan.filter(|p| p.succeeded()) else {
                    return skipped;
                };
                let (Some(id), Some(dispatch_id)) = (run.check_run_id, run.dispatch_id.clone())
                else {
                    return skipped;
                };
                let write = CheckRunWrite {
                    name: PLAN_CHECK.to_owned(),
                    state: CheckState::Completed(CheckConclusion::Success),
                    details_url: run.url.clone(),
                    external_id: external_id(r, &dispatch_id),
                    output: None,
                    actions: Some(vec![self.action("apply")]),
                };
                scope.gh.update_check_run(id, &write).await?;
                skipped
            }
            CheckStep::Applied {
                run_id,
                run_url,
                head_sha,
                outcome,
            } => {
                let Some(dispatch_id) = r
                    .run(RunKind::Apply)
                    .filter(|a| a.run_id == Some(*run_id))
                    .and_then(|a| a.dispatch_id.clone())
                else {
                    return skipped;
                };
                let write = CheckRunWrite {
                    name: APPLY_CHECK.to_owned(),
                    state: CheckState::Completed(conclusion(*outcome)),
                    details_url: Some(run_url.clone()),
                    external_id: external_id(r, &dispatch_id),
                    output: Some(output(words::apply_ended(*outcome, run_url, &env))),
                    actions: None,
                };
                let found = if resumed {
                    scope
                        .gh
                        .find_check_run(head_sha, APPLY_CHECK, &write.external_id)
                        .await?
                } else {
                    None
                };
                let id = match found {
                    Some(id) => id,
                    None => scope.gh.create_check_run(head_sha, &write).await?,
                };
                Ok(record_check(RunKind::Apply, dispatch_id, id))
            }
        }
    }

    /// Completes the plan's check run with the plan posted (an update of the same content is
    /// harmless, so a resumed one is simply done again). Offers Approve until merged.
    pub(super) async fn complete_plan_check(
        &self,
        scope: &Scope,
        r: &Request,
        plan: &PlanComment<'_>,
    ) -> Result<(), EffectError> {
        let Some((id, dispatch_id)) = plan_check(r, plan.run_id) else {
            return Ok(());
        };
        let merged = r.pull_request.as_ref().is_some_and(|pr| pr.merged);
        let command = if merged { "apply" } else { "approve" };
        let write = CheckRunWrite {
            name: PLAN_CHECK.to_owned(),
            state: CheckState::Completed(CheckConclusion::Success),
            details_url: Some(plan.run_url.to_owned()),
            external_id: external_id(r, &dispatch_id),
            output: Some(output(words::plan_done(
                plan,
                &self.prefix,
                limits::MAX_CHECK_OUTPUT_CHARS,
            ))),
            actions: Some(vec![self.action(command)]),
        };
        scope.gh.update_check_run(id, &write).await?;
        Ok(())
    }
}

/// The plan's check run, when the plan run `run_id` has one: its id and dispatch id.
fn plan_check(r: &Request, run_id: u64) -> Option<(u64, String)> {
    let run = r.run(RunKind::Plan)?;
    if run.run_id != Some(run_id) {
        return None;
    }
    Some((run.check_run_id?, run.dispatch_id.clone()?))
}

/// Keeps the check run's id on the record of the run dispatched as `dispatch_id`.
fn record_check(kind: RunKind, dispatch_id: String, id: u64) -> Done {
    Done::applying(EffectResult::default(), move |r: &mut Request| {
        if let Some(run) = r.runs.get_mut(&kind)
            && run.dispatch_id.as_deref() == Some(dispatch_id.as_str())
        {
            run.check_run_id = Some(id);
        }
    })
}
