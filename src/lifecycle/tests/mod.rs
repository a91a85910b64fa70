//! Guardrails and transitions, without any I/O: each test builds a request in a state, an
//! input, an actor and facts, and checks the decision or the denial's words.

mod conversation;
mod events;
mod guards;
mod operate;
mod review;

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::*;
use crate::assist::ExtractorKind;
use crate::domain::{Approval, RequestStatus, RunKind, RunOutcome, RunRecord, RunStatus};
use crate::ids::InstallationId;
use crate::settings::Settings;

pub(super) const PREFIX: &str = "/tfpilot";

pub(super) fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-03-01 12:00 UTC)
}

pub(super) fn policy() -> Policy {
    Policy {
        prod_environments: vec!["prod".into(), "production".into()],
        prod_allowed_users: vec!["alice".into(), "bob".into()],
        destroy_prod_allowed_users: vec!["alice".into()],
        approvers: Vec::new(),
        approvers_required: false,
    }
}

pub(super) fn facts(registry: &Registry) -> Facts<'_> {
    Facts {
        now: now(),
        registry,
        repo: "acme/core-terraform".parse().unwrap(),
        installation: Some(InstallationId(7)),
        prefix: PREFIX.into(),
        settings: Some({
            let mut s = Settings::defaults(&"acme/core-terraform".parse().unwrap(), "main");
            s.environments.push("production".into());
            s
        }),
        new_request_id: "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".parse().unwrap(),
        pr: Some(PrFacts {
            open: true,
            merged: false,
            head_sha: "head1".into(),
            merge_sha: None,
            mergeable: Some(true),
        }),
        base_block: Some(BaseBlock::Same),
        base_head: None,
        listing: None,
    }
}

pub(super) fn actor(login: &str, permission: Permission) -> Actor {
    Actor {
        login: login.into(),
        permission,
    }
}

pub(super) fn writer(login: &str) -> Actor {
    actor(login, Permission::Write)
}

pub(super) fn at(id: u64) -> CommentAt {
    CommentAt {
        comment_id: id,
        thread: 12,
        on_pull_request: false,
    }
}

pub(super) fn cmd(c: Command) -> Input {
    Input::Command {
        at: at(100),
        command: c,
        extraction: None,
    }
}

pub(super) fn new_cmd(env: &str, name: Option<&str>) -> Input {
    let mut values = BTreeMap::new();
    if let Some(n) = name {
        values.insert("name".to_owned(), n.to_owned());
    }
    cmd(Command::New {
        module: "s3-bucket".into(),
        environment: Some(env.into()),
        project: None,
        values,
        free_text: String::new(),
    })
}

/// A request opened by `carol` in `env`, complete (name=invoices), in `status`, with a
/// successful plan of revision 1 at `head1` and an open PR #40.
pub(super) fn request(env: &str, status: RequestStatus) -> Request {
    let registry = Registry::embedded();
    let f = facts(registry);
    let d = decide(
        None,
        &new_cmd(env, Some("invoices")),
        &writer("carol"),
        &policy(),
        &f,
    )
    .expect("new is allowed");
    let mut r = d.request.expect("a request");
    assert_eq!(r.status, RequestStatus::Ready);
    r.version = 3;
    r.status = status;
    r.revision = 1;
    r.branch_heads
        .insert(request_branch(r.id), "head1".to_owned());
    r.pull_request = Some(crate::domain::PullRequestRef {
        number: 40,
        url: "https://github.com/acme/core-terraform/pull/40".into(),
        head_sha: "head1".into(),
        merged: false,
        merge_commit_sha: None,
    });
    r.runs.insert(
        RunKind::Plan,
        RunRecord {
            run_id: Some(9),
            url: Some("https://github.com/acme/core-terraform/actions/runs/9".into()),
            status: Some(RunStatus::Completed),
            conclusion: Some(RunOutcome::Success),
            head_sha: Some("head1".into()),
            revision: 1,
            dispatch_id: Some("3f2a4c1e-plan-000002".into()),
            dispatched_at: Some(now()),
        },
    );
    r
}

pub(super) fn merged(env: &str, status: RequestStatus) -> Request {
    let mut r = request(env, status);
    if let Some(pr) = r.pull_request.as_mut() {
        pr.merged = true;
        pr.merge_commit_sha = Some("merge1".into());
    }
    r
}

pub(super) fn merged_facts(registry: &Registry) -> Facts<'_> {
    let mut f = facts(registry);
    f.pr = Some(PrFacts {
        open: false,
        merged: true,
        head_sha: "head1".into(),
        merge_sha: Some("merge1".into()),
        mergeable: None,
    });
    f
}

pub(super) fn run(
    r: Option<&Request>,
    input: &Input,
    a: &Actor,
    p: &Policy,
    f: &Facts<'_>,
) -> Result<Decision, Denial> {
    decide(r, input, a, p, f)
}

pub(super) fn denied(r: &Request, input: &Input, a: &Actor, p: &Policy, f: &Facts<'_>) -> String {
    match decide(Some(r), input, a, p, f) {
        Ok(d) => panic!(
            "expected a denial, got status {:?}",
            d.request.map(|r| r.status)
        ),
        Err(d) => d.to_string(),
    }
}

/// The text of the `i`-th effect, which must be a plain-text comment.
pub(super) fn comment_text(effects: &[PendingEffect], i: usize) -> &str {
    match &effects[i].effect {
        Effect::Comment {
            body: Body::Text { text },
            ..
        } => text,
        other => panic!("effect {i} is not a text comment: {other:?}"),
    }
}

pub(super) fn kinds(d: &Decision) -> Vec<&'static str> {
    d.effects
        .iter()
        .map(|e| match &e.effect {
            Effect::Comment { .. } => "comment",
            Effect::CommitBlock { .. } => "commit",
            Effect::OpenPr { .. } => "open_pr",
            Effect::Dispatch { .. } => "dispatch",
            Effect::Merge { .. } => "merge",
            Effect::ClosePr { .. } => "close_pr",
            Effect::MinimizeComments { .. } => "minimize",
            Effect::PostPlan { .. } => "post_plan",
            Effect::Archive => "archive",
        })
        .collect()
}

pub(super) fn run_update(run_id: u64, title: &str, phase: RunPhase) -> Input {
    run_of(RunKind::Plan, run_id, title, phase)
}

/// A run as TfPilot's own dispatch of `kind` starts it: `workflow_dispatch` of the request's
/// workflow file, on the request branch (plan) or the base branch (apply, destroy).
pub(super) fn run_of(kind: RunKind, run_id: u64, title: &str, phase: RunPhase) -> Input {
    let (file, branch) = match kind {
        RunKind::Plan => (
            "plan.yml",
            "request/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".to_owned(),
        ),
        RunKind::Apply => ("apply.yml", "main".to_owned()),
        RunKind::Destroy => ("destroy.yml", "main".to_owned()),
        RunKind::Cleanup => ("cleanup.yml", "main".to_owned()),
    };
    Input::Run(RunUpdate {
        run_id,
        title: title.into(),
        phase,
        head_sha: "head1".into(),
        url: format!("https://github.com/acme/core-terraform/actions/runs/{run_id}"),
        workflow_path: format!(".github/workflows/{file}"),
        event: "workflow_dispatch".into(),
        head_branch: branch,
    })
}
