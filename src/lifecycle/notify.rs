//! Chat notices: a decision that moves a request into a state the team wants to hear about
//! (a plan waiting for approval, approved, applied, destroyed, a failure) also decides one
//! [`Effect::Notify`], after its GitHub answers. Pure, like the rest of the lifecycle.

use super::decider::Decider;
use crate::domain::{Effect, EffectKey, Notice, NoticeEvent, RequestStatus, RunKind};
use crate::settings::SLACK_OFF;

/// The notice a request entering `status` brings, if any.
fn event_of(status: RequestStatus) -> Option<(NoticeEvent, Option<RunKind>)> {
    Some(match status {
        RequestStatus::Planned => (NoticeEvent::PlanReady, Some(RunKind::Plan)),
        RequestStatus::PlanFailed => (NoticeEvent::PlanFailed, Some(RunKind::Plan)),
        RequestStatus::Approved => (NoticeEvent::Approved, None),
        RequestStatus::Applied => (NoticeEvent::Applied, Some(RunKind::Apply)),
        RequestStatus::ApplyFailed => (NoticeEvent::ApplyFailed, Some(RunKind::Apply)),
        RequestStatus::Destroyed => (NoticeEvent::Destroyed, Some(RunKind::Destroy)),
        RequestStatus::DestroyFailed => (NoticeEvent::DestroyFailed, Some(RunKind::Destroy)),
        _ => return None,
    })
}

impl Decider<'_> {
    /// Decides the notice of the status change from `before` (the request as it was), if the
    /// request now stands somewhere the team wants to hear about. `run_url`: the run the input
    /// reported, if it was a run update.
    pub(super) fn notify_change(&mut self, before: Option<RequestStatus>, run_url: Option<&str>) {
        let Some(r) = &self.request else {
            return;
        };
        if before == Some(r.status) || r.notify_route.as_deref() == Some(SLACK_OFF) {
            return;
        }
        let Some((event, run)) = event_of(r.status) else {
            return;
        };
        let run_url = run_url.map(str::to_owned).or_else(|| {
            run.and_then(|k| r.runs.get(&k))
                .and_then(|record| record.url.clone())
        });
        self.notify(event, run_url);
    }

    /// Decides the chat notice `event` about the request (unless its environment is routed
    /// `off`), before any archive.
    pub(super) fn notify(&mut self, event: NoticeEvent, run_url: Option<String>) {
        let Some(r) = &self.request else {
            return;
        };
        if r.notify_route.as_deref() == Some(SLACK_OFF) {
            return;
        }
        let environment = r.environment.clone().unwrap_or_default();
        let approvers = if event == NoticeEvent::PlanReady {
            self.approvers(&environment)
        } else {
            Vec::new()
        };
        let notice = Notice {
            event,
            request: r.id,
            repo: r.repo.clone(),
            issue: r.issue_number,
            pull_request: r.pull_request.as_ref().map(|pr| pr.number),
            run_url,
            module_type: r.module_type.clone(),
            environment,
            requester: r.requester.clone(),
            actor: self.actor.login.clone(),
            approvers,
            route: r.notify_route.clone(),
        };
        let key = EffectKey::notify(event, &self.input_key);
        self.push(key, Effect::Notify { notice });
        // The archive stays last.
        if let Some(i) = self
            .effects
            .iter()
            .position(|e| e.effect == Effect::Archive)
        {
            let archive = self.effects.remove(i);
            self.effects.push(archive);
        }
    }

    /// Who may approve in `environment`: the approvers when the policy names them, else the
    /// production allow-list in production (empty: anyone who may write).
    fn approvers(&self, environment: &str) -> Vec<String> {
        if self.policy.approvers_required {
            self.policy.approvers.clone()
        } else if self.policy.is_prod(environment) {
            self.policy.prod_allowed_users.clone()
        } else {
            Vec::new()
        }
    }
}
