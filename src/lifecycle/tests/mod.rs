//! Guardrails and transitions, without any I/O: each test builds a request in a state, an
//! input, an actor and facts, and checks the decision or the denial's words.

mod conversation;
mod drift;
mod events;
mod guards;
mod matrix;
mod notify;
mod operate;
mod quorum;
mod reads;
mod review;
mod table;

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
        approvals_required: Default::default(),
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
            changes: None,
            check_run_id: None,
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

/// The chat notices a decision made.
pub(super) fn notices(d: &Decision) -> Vec<&crate::domain::Notice> {
    d.effects
        .iter()
        .filter_map(|e| match &e.effect {
            Effect::Notify { notice } => Some(notice),
            _ => None,
        })
        .collect()
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
            Effect::Check { .. } => "check",
            Effect::Notify { .. } => "notify",
            Effect::DriftCheck { .. } => "drift_check",
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

// ---- the grid the decision table and the reads check walk ---------------------------------------

/// Every command, as it would be typed in a thread of a request in `env`.
pub(super) fn every_command(env: &str) -> Vec<(&'static str, Command)> {
    let Input::Command { command: new, .. } = new_cmd(env, Some("invoices")) else {
        unreachable!("new_cmd is a command")
    };
    vec![
        ("new", new),
        (
            "set",
            Command::Set {
                values: BTreeMap::from([("versioning".into(), "on".into())]),
            },
        ),
        (
            "unset",
            Command::Unset {
                keys: vec!["versioning".into()],
            },
        ),
        ("show", Command::Show),
        ("submit", Command::Submit),
        ("plan", Command::Plan),
        ("approve", Command::Approve),
        ("merge", Command::Merge),
        ("apply", Command::Apply),
        ("destroy", Command::Destroy),
        ("cleanup", Command::Cleanup),
        ("cancel", Command::Cancel),
        (
            "status",
            Command::Status {
                filters: Default::default(),
            },
        ),
        ("help", Command::Help),
        ("modules", Command::Modules { module: None }),
        ("drift", Command::Drift { environment: None }),
    ]
}

/// Who acts, with the policy that makes them who they are.
pub(super) struct Role {
    pub name: &'static str,
    pub actor: Actor,
    pub policy: Policy,
}

/// The roles of the table: `policy()` lists alice (both prod lists) and bob (the prod
/// allow-list); the approver and the requester each get a policy that lists them.
pub(super) fn roles() -> Vec<Role> {
    let with = |f: &dyn Fn(&mut Policy)| {
        let mut p = policy();
        f(&mut p);
        p
    };
    vec![
        Role {
            name: "none",
            actor: actor("mallory", Permission::None),
            policy: policy(),
        },
        Role {
            name: "read",
            actor: actor("rita", Permission::Read),
            policy: policy(),
        },
        Role {
            name: "write",
            actor: writer("walter"),
            policy: policy(),
        },
        Role {
            name: "admin",
            actor: actor("ada", Permission::Admin),
            policy: policy(),
        },
        Role {
            name: "prod-listed",
            actor: writer("bob"),
            policy: policy(),
        },
        Role {
            name: "destroy-listed",
            actor: writer("alice"),
            policy: policy(),
        },
        // An approver where approvers are required, on the prod allow-list too.
        Role {
            name: "approver",
            actor: writer("erin"),
            policy: with(&|p| {
                p.approvers = vec!["erin".into()];
                p.approvers_required = true;
                p.prod_allowed_users.push("erin".into());
            }),
        },
        // The requester (carol opened every request here), on both prod lists.
        Role {
            name: "requester",
            actor: writer("carol"),
            policy: with(&|p| {
                p.prod_allowed_users.push("carol".into());
                p.destroy_prod_allowed_users.push("carol".into());
            }),
        },
    ]
}

/// Statuses after the merge: the pull request is merged.
pub(super) fn after_merge(status: RequestStatus) -> bool {
    matches!(
        status,
        RequestStatus::Merged
            | RequestStatus::Applying
            | RequestStatus::Applied
            | RequestStatus::ApplyFailed
            | RequestStatus::Destroying
            | RequestStatus::DestroyFailed
            | RequestStatus::Destroyed
    )
}

fn run_record(run_id: u64, revision: u64, outcome: Option<RunOutcome>) -> RunRecord {
    RunRecord {
        changes: None,
        check_run_id: None,
        run_id: Some(run_id),
        url: Some(format!(
            "https://github.com/acme/core-terraform/actions/runs/{run_id}"
        )),
        status: Some(if outcome.is_some() {
            RunStatus::Completed
        } else {
            RunStatus::InProgress
        }),
        conclusion: outcome,
        head_sha: Some("head1".into()),
        revision,
        dispatch_id: Some(format!("3f2a4c1e-run-{run_id:06}")),
        dispatched_at: Some(now()),
    }
}

/// A request in `status` as it would be after the usual way there: no pull request before
/// submit, a running plan while planning, a failed one after a failed plan, merged after the
/// merge, approved by bob from `approved` on, the apply or destroy run as the status says.
pub(super) fn representative(env: &str, status: RequestStatus) -> Request {
    let mut r = if after_merge(status) {
        merged(env, status)
    } else {
        request(env, status)
    };
    match status {
        RequestStatus::Collecting | RequestStatus::Ready | RequestStatus::Cancelled => {
            r.pull_request = None;
            r.branch_heads.clear();
            r.runs.clear();
            r.revision = 0;
        }
        RequestStatus::Planning => {
            r.runs.insert(RunKind::Plan, run_record(10, 1, None));
        }
        RequestStatus::PlanFailed => {
            r.runs
                .insert(RunKind::Plan, run_record(10, 1, Some(RunOutcome::Failure)));
        }
        RequestStatus::Applying => {
            r.runs.insert(RunKind::Apply, run_record(11, 1, None));
        }
        RequestStatus::Applied | RequestStatus::Destroying => {
            r.runs
                .insert(RunKind::Apply, run_record(11, 1, Some(RunOutcome::Success)));
        }
        RequestStatus::ApplyFailed => {
            r.runs
                .insert(RunKind::Apply, run_record(11, 1, Some(RunOutcome::Failure)));
        }
        _ => {}
    }
    if status == RequestStatus::Approved || after_merge(status) {
        // Approved by bob (on the prod allow-list, not the requester) at the planned head.
        r.approvals.push(Approval {
            plan: None,
            login: "bob".into(),
            at: now(),
            head_sha: "head1".into(),
        });
    }
    match status {
        RequestStatus::Destroying => {
            r.runs.insert(RunKind::Destroy, run_record(12, 1, None));
        }
        RequestStatus::Destroyed => {
            r.runs.insert(
                RunKind::Destroy,
                run_record(12, 1, Some(RunOutcome::Success)),
            );
        }
        RequestStatus::DestroyFailed => {
            r.runs.insert(
                RunKind::Destroy,
                run_record(12, 1, Some(RunOutcome::Failure)),
            );
        }
        _ => {}
    }
    r
}

/// Everything the executor could read, as it would read it for `r` (or no request).
pub(super) fn full_facts<'a>(registry: &'a Registry, r: Option<&Request>) -> Facts<'a> {
    let merged = r.is_some_and(|r| after_merge(r.status));
    let mut f = if merged {
        merged_facts(registry)
    } else {
        facts(registry)
    };
    if r.is_some_and(|r| r.status == RequestStatus::PrClosed)
        && let Some(pr) = f.pr.as_mut()
    {
        pr.open = false;
    }
    if merged {
        f.base_head = Some("merge1".into());
    }
    f.listing = Some(r.into_iter().cloned().collect());
    f
}
