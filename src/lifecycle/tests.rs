//! Guardrails and transitions, without any I/O: each test builds a request in a state, an
//! input, an actor and facts, and checks the decision or the denial's words.

use super::*;
use crate::assist::ExtractorKind;
use crate::domain::{RunOutcome, RunRecord, RunStatus};

const PREFIX: &str = "/tfpilot";

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-03-01 12:00 UTC)
}

fn policy() -> Policy {
    Policy {
        prod_environments: vec!["prod".into(), "production".into()],
        prod_allowed_users: vec!["alice".into(), "bob".into()],
        destroy_prod_allowed_users: vec!["alice".into()],
        approvers: Vec::new(),
        approvers_required: false,
    }
}

fn facts(registry: &Registry) -> Facts<'_> {
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

fn actor(login: &str, permission: Permission) -> Actor {
    Actor {
        login: login.into(),
        permission,
    }
}

fn writer(login: &str) -> Actor {
    actor(login, Permission::Write)
}

fn at(id: u64) -> CommentAt {
    CommentAt {
        comment_id: id,
        thread: 12,
        on_pull_request: false,
    }
}

fn cmd(c: Command) -> Input {
    Input::Command {
        at: at(100),
        command: c,
        extraction: None,
    }
}

fn new_cmd(env: &str, name: Option<&str>) -> Input {
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
fn request(env: &str, status: RequestStatus) -> Request {
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

fn merged(env: &str, status: RequestStatus) -> Request {
    let mut r = request(env, status);
    if let Some(pr) = r.pull_request.as_mut() {
        pr.merged = true;
        pr.merge_commit_sha = Some("merge1".into());
    }
    r
}

fn merged_facts(registry: &Registry) -> Facts<'_> {
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

fn run(
    r: Option<&Request>,
    input: &Input,
    a: &Actor,
    p: &Policy,
    f: &Facts<'_>,
) -> Result<Decision, Denial> {
    decide(r, input, a, p, f)
}

fn denied(r: &Request, input: &Input, a: &Actor, p: &Policy, f: &Facts<'_>) -> String {
    match decide(Some(r), input, a, p, f) {
        Ok(d) => panic!(
            "expected a denial, got status {:?}",
            d.request.map(|r| r.status)
        ),
        Err(d) => d.to_string(),
    }
}

/// The text of the `i`-th effect, which must be a plain-text comment.
fn comment_text(effects: &[PendingEffect], i: usize) -> &str {
    match &effects[i].effect {
        Effect::Comment {
            body: Body::Text { text },
            ..
        } => text,
        other => panic!("effect {i} is not a text comment: {other:?}"),
    }
}

fn kinds(d: &Decision) -> Vec<&'static str> {
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

// ---- write permission ---------------------------------------------------------------------------

#[test]
fn every_mutating_command_needs_write_permission() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let commands = [
        (Command::Submit, RequestStatus::Ready),
        (Command::Plan, RequestStatus::Planned),
        (Command::Approve, RequestStatus::Planned),
        (Command::Merge, RequestStatus::Approved),
        (Command::Apply, RequestStatus::Merged),
        (Command::Destroy, RequestStatus::Applied),
        (Command::Cleanup, RequestStatus::Destroyed),
        (Command::Cancel, RequestStatus::Ready),
        (
            Command::Set {
                values: BTreeMap::from([("versioning".into(), "on".into())]),
            },
            RequestStatus::Ready,
        ),
        (
            Command::Unset {
                keys: vec!["versioning".into()],
            },
            RequestStatus::Ready,
        ),
    ];
    for (command, status) in commands {
        for permission in [Permission::None, Permission::Read, Permission::Triage] {
            let r = request("dev", status);
            let name = command.name();
            let text = denied(
                &r,
                &cmd(command.clone()),
                &actor("mallory", permission),
                &policy(),
                &f,
            );
            assert!(
                text.contains(&format!("`{name}` needs write access")),
                "{name} as {permission:?}: {text}"
            );
            assert!(text.contains("Ask a maintainer for write access"), "{text}");
        }
    }
    // `new` too, and a conversation turn that changes inputs.
    let text = match run(
        None,
        &new_cmd("dev", None),
        &actor("mallory", Permission::Read),
        &policy(),
        &f,
    ) {
        Err(d) => d.to_string(),
        Ok(_) => panic!("a reader opened a request"),
    };
    assert!(
        text.contains("opening a request needs write access"),
        "{text}"
    );
    let r = request("dev", RequestStatus::Collecting);
    let turn = Input::Turn {
        at: at(5),
        extraction: Extraction::empty(ExtractorKind::Rules),
    };
    let text = denied(
        &r,
        &turn,
        &actor("mallory", Permission::Read),
        &policy(),
        &f,
    );
    assert!(
        text.contains("changing the inputs needs write access"),
        "{text}"
    );
}

#[test]
fn read_only_commands_need_no_permission() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let r = request("prod", RequestStatus::Planned);
    for c in [
        Command::Help,
        Command::Show,
        Command::Status {
            filters: Default::default(),
        },
    ] {
        let d = run(
            Some(&r),
            &cmd(c),
            &actor("guest", Permission::None),
            &policy(),
            &f,
        )
        .unwrap();
        assert_eq!(kinds(&d), ["comment"]);
        assert_eq!(d.request.as_ref(), Some(&r), "nothing changes");
    }
}

// ---- prod allow-lists ---------------------------------------------------------------------------

/// actor × env × command → allowed, or the denial's words.
#[test]
fn prod_allow_lists_guard_approve_merge_apply_cleanup_and_destroy() {
    let registry = Registry::embedded();
    let cases: &[(&str, &str, Command, RequestStatus, Option<&str>)] = &[
        // (actor, env, command, status, expected denial or None = allowed)
        (
            "dave",
            "dev",
            Command::Approve,
            RequestStatus::Planned,
            None,
        ),
        (
            "dave",
            "prod",
            Command::Approve,
            RequestStatus::Planned,
            Some(
                "Only members of the prod allow-list can approve in `prod`. Ask one of @alice, @bob.",
            ),
        ),
        (
            "bob",
            "prod",
            Command::Approve,
            RequestStatus::Planned,
            None,
        ),
        (
            "dave",
            "production",
            Command::Approve,
            RequestStatus::Planned,
            Some("can approve in `production`"),
        ),
        ("dave", "dev", Command::Merge, RequestStatus::Approved, None),
        (
            "dave",
            "prod",
            Command::Merge,
            RequestStatus::Approved,
            Some("Only members of the prod allow-list can merge in `prod`."),
        ),
        (
            "alice",
            "prod",
            Command::Merge,
            RequestStatus::Approved,
            None,
        ),
        ("dave", "dev", Command::Apply, RequestStatus::Merged, None),
        (
            "dave",
            "prod",
            Command::Apply,
            RequestStatus::Merged,
            Some(
                "Only members of the prod allow-list can apply in `prod`. Ask one of @alice, @bob.",
            ),
        ),
        ("BOB", "prod", Command::Apply, RequestStatus::Merged, None),
        (
            "dave",
            "prod",
            Command::Cleanup,
            RequestStatus::Destroyed,
            Some("can clean up in `prod`"),
        ),
        (
            "bob",
            "prod",
            Command::Cleanup,
            RequestStatus::Destroyed,
            None,
        ),
        (
            "dave",
            "dev",
            Command::Destroy,
            RequestStatus::Applied,
            None,
        ),
        (
            "bob",
            "prod",
            Command::Destroy,
            RequestStatus::Applied,
            Some("Only members of the prod-destroy allow-list can destroy in `prod`. Ask @alice."),
        ),
        (
            "alice",
            "prod",
            Command::Destroy,
            RequestStatus::Applied,
            None,
        ),
    ];
    for (login, env, command, status, expected) in cases {
        let mut r = if *status == RequestStatus::Merged
            || *status == RequestStatus::Applied
            || *status == RequestStatus::Destroyed
        {
            merged(env, *status)
        } else {
            request(env, *status)
        };
        if matches!(command, Command::Merge | Command::Apply) {
            r.approvals.push(Approval {
                login: "alice".into(),
                at: now(),
                head_sha: "head1".into(),
            });
        }
        let f = if r.pull_request.as_ref().is_some_and(|p| p.merged) {
            merged_facts(registry)
        } else {
            facts(registry)
        };
        let result = decide(
            Some(&r),
            &cmd(command.clone()),
            &writer(login),
            &policy(),
            &f,
        );
        match (expected, result) {
            (None, Ok(_)) => {}
            (None, Err(d)) => panic!("{login} {env} {}: denied: {d}", command.name()),
            (Some(words), Ok(_)) => panic!(
                "{login} {env} {}: allowed, expected {words}",
                command.name()
            ),
            (Some(words), Err(d)) => assert!(
                d.to_string().contains(words),
                "{login} {env} {}: {d}",
                command.name()
            ),
        }
    }
}

#[test]
fn an_empty_prod_allow_list_denies_everyone_and_says_so() {
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let mut p = policy();
    p.prod_allowed_users.clear();
    let r = merged("prod", RequestStatus::Merged);
    let text = denied(&r, &cmd(Command::Apply), &writer("alice"), &p, &f);
    assert!(
        text.contains("The list is empty (TFPILOT_PROD_ALLOWED_USERS"),
        "{text}"
    );
    assert!(text.contains("nobody can"), "{text}");
}

#[test]
fn approvers_when_set_are_needed_in_every_environment() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut p = policy();
    p.approvers = vec!["erin".into()];
    p.approvers_required = true;
    let r = request("dev", RequestStatus::Planned);
    let text = denied(&r, &cmd(Command::Approve), &writer("dave"), &p, &f);
    assert!(
        text.contains("Only approvers can approve requests here. Ask @erin."),
        "{text}"
    );
    let d = run(Some(&r), &cmd(Command::Approve), &writer("erin"), &p, &f).unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Approved);
}

#[test]
fn the_requester_cannot_approve_their_own_prod_request() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut p = policy();
    p.prod_allowed_users.push("carol".into());
    let r = request("prod", RequestStatus::Planned);
    let text = denied(&r, &cmd(Command::Approve), &writer("carol"), &p, &f);
    assert!(
        text.contains(
            "You opened this request, and a `prod` request needs approval from someone else."
        ),
        "{text}"
    );
    assert!(text.contains("Ask one of @alice, @bob."), "{text}");
    // In dev, the requester may approve.
    let r = request("dev", RequestStatus::Planned);
    assert!(run(Some(&r), &cmd(Command::Approve), &writer("carol"), &p, &f).is_ok());
}

/// Four eyes in prod: whoever wrote the inputs (not only the requester) cannot approve them —
/// else anyone on the allow-list could `set` their own values on someone's request and approve
/// that revision themselves.
#[test]
fn whoever_changed_the_inputs_cannot_approve_a_prod_request() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("prod", RequestStatus::Planned);
    r.record(now(), "Alice", "revised", Some("revision 2".into()));
    let text = denied(&r, &cmd(Command::Approve), &writer("alice"), &policy(), &f);
    assert!(
        text.contains(
            "You changed the inputs of this request, and a `prod` request needs approval from someone who did not write it."
        ),
        "{text}"
    );
    assert!(text.contains("Ask @bob."), "{text}");
    let d = run(
        Some(&r),
        &cmd(Command::Approve),
        &writer("bob"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Approved);
    // A conversation turn before the submit counts too.
    let mut r = request("prod", RequestStatus::Planned);
    r.record(now(), "bob", "inputs_changed", None);
    let text = denied(&r, &cmd(Command::Approve), &writer("bob"), &policy(), &f);
    assert!(text.contains("You changed the inputs"), "{text}");
    assert!(text.contains("Ask @alice."), "{text}");
}

/// GitHub's merge button needs only write access: a prod change merged without a TfPilot
/// approval (or approved for another commit) is not applied until someone on the allow-list
/// who did not write it approves the merged change.
#[test]
fn a_prod_change_merged_without_an_approval_is_not_applied() {
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let mut p = policy();
    p.prod_allowed_users.push("carol".into());
    let r = merged("prod", RequestStatus::Merged);
    for login in ["bob", "carol"] {
        let text = denied(&r, &cmd(Command::Apply), &writer(login), &p, &f);
        assert!(
            text.contains("was merged without a TfPilot approval of the merged commit"),
            "{text}"
        );
        assert!(
            text.contains("Ask one of @alice, @bob to `/tfpilot approve` it, then apply."),
            "{text}"
        );
    }
    // An approval of another commit does not count.
    let mut stale = r.clone();
    stale.approvals.push(Approval {
        login: "alice".into(),
        at: now(),
        head_sha: "old".into(),
    });
    let text = denied(&stale, &cmd(Command::Apply), &writer("bob"), &p, &f);
    assert!(text.contains("without a TfPilot approval"), "{text}");
    // The requester cannot approve the merged change either…
    let text = denied(&r, &cmd(Command::Approve), &writer("carol"), &p, &f);
    assert!(text.contains("You opened this request"), "{text}");
    // …someone else on the list can, and then it is applied.
    let d = run(Some(&r), &cmd(Command::Approve), &writer("alice"), &p, &f).unwrap();
    assert_eq!(kinds(&d), ["comment"]);
    let approved = d.request.unwrap();
    assert_eq!(approved.status, RequestStatus::Merged);
    assert_eq!(approved.approvals.len(), 1);
    assert_eq!(approved.approvals[0].head_sha, "head1");
    let text = comment_text(&d.effects, 0);
    assert!(text.contains("Approved for `prod` by @alice"), "{text}");
    assert!(text.contains("Next: `/tfpilot apply`"), "{text}");
    let d = run(
        Some(&approved),
        &cmd(Command::Apply),
        &writer("carol"),
        &p,
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Applying);
    // With approvers configured, the same holds in every environment.
    let mut p = policy();
    p.approvers = vec!["erin".into()];
    p.approvers_required = true;
    let r = merged("dev", RequestStatus::Merged);
    let text = denied(&r, &cmd(Command::Apply), &writer("dave"), &p, &f);
    assert!(
        text.contains("Ask @erin to `/tfpilot approve` it"),
        "{text}"
    );
    let d = run(Some(&r), &cmd(Command::Approve), &writer("erin"), &p, &f).unwrap();
    let approved = d.request.unwrap();
    assert!(
        run(
            Some(&approved),
            &cmd(Command::Apply),
            &writer("dave"),
            &p,
            &f
        )
        .is_ok()
    );
    // Without approvers, a dev change merged with the button is applied as it is.
    assert!(
        run(
            Some(&r),
            &cmd(Command::Apply),
            &writer("dave"),
            &policy(),
            &f
        )
        .is_ok()
    );
}

// ---- apply needs a merged PR with the block and a fresh successful plan --------------------------

#[test]
fn apply_needs_a_merged_pull_request() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let r = request("dev", RequestStatus::Approved);
    let text = denied(&r, &cmd(Command::Apply), &writer("dave"), &policy(), &f);
    assert!(text.contains("#40 is not merged yet"), "{text}");
    assert!(text.contains("merge it"), "{text}");
}

#[test]
fn apply_needs_the_block_on_the_base_branch_as_submitted() {
    let registry = Registry::embedded();
    let r = merged("dev", RequestStatus::Merged);
    for (block, words) in [
        (BaseBlock::Missing, "is not on `main`"),
        (
            BaseBlock::Different,
            "is not the one that was planned and approved",
        ),
        (
            BaseBlock::Unreadable("line 3: nested".into()),
            "cannot be read as TfPilot blocks: line 3",
        ),
    ] {
        let mut f = merged_facts(registry);
        f.base_block = Some(block);
        let text = denied(&r, &cmd(Command::Apply), &writer("dave"), &policy(), &f);
        assert!(text.contains(words), "{text}");
    }
    let f = merged_facts(registry);
    let d = run(
        Some(&r),
        &cmd(Command::Apply),
        &writer("dave"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(kinds(&d), ["dispatch", "comment"]);
    let next = d.request.unwrap();
    assert_eq!(next.status, RequestStatus::Applying);
    let Effect::Dispatch { kind, git_ref, .. } = &d.effects[0].effect else {
        panic!()
    };
    assert_eq!((*kind, git_ref.as_str()), (RunKind::Apply, "main"));
}

#[test]
fn apply_needs_a_successful_plan_of_the_merged_head() {
    let registry = Registry::embedded();
    let mut f = merged_facts(registry);
    let mut r = merged("dev", RequestStatus::Merged);
    // A plan older than the head is stale.
    f.pr = Some(PrFacts {
        open: false,
        merged: true,
        head_sha: "head2".into(),
        merge_sha: Some("merge2".into()),
        mergeable: None,
    });
    let text = denied(&r, &cmd(Command::Apply), &writer("dave"), &policy(), &f);
    assert!(text.contains("The plan is stale: it was made for commit `head1`, and the pull request is now at `head2`."), "{text}");
    assert!(text.contains("`/tfpilot plan`"), "{text}");
    // A plan made after the merge runs on the base branch, which may have moved on.
    let mut after = r.clone();
    after.runs.get_mut(&RunKind::Plan).unwrap().head_sha = Some("base2".into());
    let text = denied(&after, &cmd(Command::Apply), &writer("dave"), &policy(), &f);
    assert!(text.contains("The plan is stale"), "{text}");
    f.base_head = Some("base2".into());
    assert!(
        run(
            Some(&after),
            &cmd(Command::Apply),
            &writer("dave"),
            &policy(),
            &f
        )
        .is_ok()
    );
    // A failed plan.
    f = merged_facts(registry);
    r.runs.get_mut(&RunKind::Plan).unwrap().conclusion = Some(RunOutcome::Failure);
    let text = denied(&r, &cmd(Command::Apply), &writer("dave"), &policy(), &f);
    assert!(text.contains("did not succeed"), "{text}");
    // A plan of an older revision.
    let mut r = merged("dev", RequestStatus::Merged);
    r.revision = 2;
    let text = denied(&r, &cmd(Command::Apply), &writer("dave"), &policy(), &f);
    assert!(
        text.contains("is for revision 1, but the request is at revision 2"),
        "{text}"
    );
}

#[test]
fn a_running_apply_or_destroy_refuses_a_second() {
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let mut r = merged("dev", RequestStatus::Applying);
    r.runs.insert(
        RunKind::Apply,
        RunRecord {
            url: Some("https://x/runs/5".into()),
            ..RunRecord::default()
        },
    );
    for c in [Command::Apply, Command::Destroy] {
        let text = denied(&r, &cmd(c), &writer("dave"), &policy(), &f);
        assert!(
            text.contains(
                "An apply is already running for this request ([run](https://x/runs/5))."
            ),
            "{text}"
        );
        assert!(text.contains("Wait for it to finish"), "{text}");
    }
    let r = merged("dev", RequestStatus::Destroying);
    for c in [Command::Apply, Command::Destroy] {
        let text = denied(&r, &cmd(c), &writer("dave"), &policy(), &f);
        assert!(text.contains("A destroy is already running"), "{text}");
    }
}

// ---- transitions ---------------------------------------------------------------------------------

#[test]
fn new_without_a_name_collects_and_submit_is_refused_until_complete() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let d = run(None, &new_cmd("dev", None), &writer("carol"), &policy(), &f).unwrap();
    let r = d.request.unwrap();
    assert_eq!(r.status, RequestStatus::Collecting);
    assert_eq!(r.environment.as_deref(), Some("dev"));
    assert_eq!(r.project.as_deref(), Some("core-terraform"));
    assert_eq!(r.questions.first().map(|q| q.input.as_str()), Some("name"));
    let text = comment_text(&d.effects, 0);
    assert!(text.contains("**Still needed:** `name`"), "{text}");
    let text = denied(&r, &cmd(Command::Submit), &writer("carol"), &policy(), &f);
    assert!(text.contains("not complete yet"), "{text}");
}

#[test]
fn new_refuses_unknown_environments_and_pull_request_threads() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let err = run(
        None,
        &new_cmd("staging", Some("x")),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`staging` is not an environment of this repository. Use one of `dev`, `prod`, `production`"), "{err}");
    let on_pr = Input::Command {
        at: CommentAt {
            comment_id: 1,
            thread: 40,
            on_pull_request: true,
        },
        command: Command::New {
            module: "s3-bucket".into(),
            environment: Some("dev".into()),
            project: None,
            values: BTreeMap::new(),
            free_text: String::new(),
        },
        extraction: None,
    };
    let err = run(None, &on_pr, &writer("carol"), &policy(), &f).unwrap_err();
    assert!(err.to_string().contains("opened on issues"), "{err}");
    let r = request("dev", RequestStatus::Ready);
    let text = denied(
        &r,
        &new_cmd("dev", Some("y")),
        &writer("carol"),
        &policy(),
        &f,
    );
    assert!(text.contains("already has request `3f2a4c1e`"), "{text}");
}

#[test]
fn submit_commits_opens_the_pr_and_dispatches_the_plan_in_that_order() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("dev", RequestStatus::Ready);
    r.revision = 0;
    r.pull_request = None;
    r.runs.clear();
    let d = run(
        Some(&r),
        &cmd(Command::Submit),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(kinds(&d), ["commit", "open_pr", "dispatch", "comment"]);
    let next = d.request.unwrap();
    assert_eq!(next.status, RequestStatus::Planning);
    assert_eq!(next.revision, 1);
    let Effect::CommitBlock {
        branch,
        file,
        change,
        ..
    } = &d.effects[0].effect
    else {
        panic!()
    };
    assert_eq!(branch, "request/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b");
    assert_eq!(file, "envs/dev/tfpilot.s3.tf");
    assert_eq!(
        change,
        &BlockChange::Upsert {
            block: r.block.clone().unwrap()
        }
    );
    let Effect::Dispatch {
        git_ref,
        dispatch_id,
        ..
    } = &d.effects[2].effect
    else {
        panic!()
    };
    assert_eq!(git_ref, branch);
    assert_eq!(
        next.runs[&RunKind::Plan].dispatch_id.as_deref(),
        Some(dispatch_id.as_str())
    );
    assert!(d.effects.iter().all(|e| e.input == "input:comment:100"));
    // Submitting again is refused with where it stands.
    let text = denied(
        &next,
        &cmd(Command::Submit),
        &writer("carol"),
        &policy(),
        &f,
    );
    assert!(text.contains("already submitted"), "{text}");
}

#[test]
fn set_after_the_pr_is_open_makes_a_new_revision() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("dev", RequestStatus::Approved);
    r.approvals.push(Approval {
        login: "dave".into(),
        at: now(),
        head_sha: "head1".into(),
    });
    let set = cmd(Command::Set {
        values: BTreeMap::from([("versioning".into(), "on".into())]),
    });
    let d = run(Some(&r), &set, &writer("carol"), &policy(), &f).unwrap();
    assert_eq!(kinds(&d), ["minimize", "commit", "dispatch", "comment"]);
    let next = d.request.unwrap();
    assert_eq!(next.revision, 2);
    assert_eq!(next.status, RequestStatus::Planning);
    assert!(next.approvals.is_empty(), "approvals are cleared");
    assert_ne!(next.block, r.block);
    let Effect::MinimizeComments { key_prefix } = &d.effects[0].effect else {
        panic!()
    };
    assert_eq!(key_prefix, "plan:3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b:r1:");
    let text = comment_text(&d.effects, 3);
    assert!(text.contains("Revision 2"), "{text}");
    // The same value again changes no block: no new revision.
    let d = run(Some(&next), &set, &writer("carol"), &policy(), &f).unwrap();
    assert_eq!(kinds(&d), ["comment"]);
    assert_eq!(d.request.unwrap().revision, 2);
    // After the merge, inputs are fixed.
    let m = merged("dev", RequestStatus::Merged);
    let text = denied(&m, &set, &writer("carol"), &policy(), &f);
    assert!(text.contains("cannot change any more"), "{text}");
}

/// When the commit of a new revision fails (e.g. the branch has someone else's commits), the
/// answer says "change the value again": that must make a new commit, and meanwhile the
/// revision that is not on the branch is neither planned nor approved — else a plan of the old
/// block is taken for the new revision, merged, and the apply refuses it for good.
#[test]
fn a_revision_whose_commit_failed_is_committed_again_and_not_planned_meanwhile() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let r = request("dev", RequestStatus::Planned);
    let set = cmd(Command::Set {
        values: BTreeMap::from([("versioning".into(), "on".into())]),
    });
    let revised = run(Some(&r), &set, &writer("carol"), &policy(), &f)
        .unwrap()
        .request
        .unwrap();
    assert_eq!(revised.revision, 2);
    let Some(commit) = run(Some(&r), &set, &writer("carol"), &policy(), &f)
        .unwrap()
        .effects
        .into_iter()
        .find(|e| matches!(e.effect, Effect::CommitBlock { .. }))
    else {
        panic!("no commit")
    };
    let failed = Input::EffectFailed {
        key: commit.key.clone(),
        effect: commit.effect,
        reason: "the branch has commits TfPilot did not make".into(),
    };
    let mut stuck = run(
        Some(&revised),
        &failed,
        &actor("tfpilot", Permission::None),
        &policy(),
        &f,
    )
    .unwrap()
    .request
    .unwrap();
    assert_eq!(stuck.status, RequestStatus::PrOpen);
    // The executor records the failed effect under its key.
    stuck.effects.insert(
        commit.key,
        crate::domain::EffectRecord {
            at: now(),
            result: crate::domain::EffectResult::Failed {
                error: "the branch has commits TfPilot did not make".into(),
            },
        },
    );
    let text = denied(&stuck, &cmd(Command::Plan), &writer("carol"), &policy(), &f);
    assert!(
        text.contains("Revision 2 of this request could not be committed"),
        "{text}"
    );
    let d = run(Some(&stuck), &set, &writer("carol"), &policy(), &f).unwrap();
    assert_eq!(kinds(&d), ["minimize", "commit", "dispatch", "comment"]);
    assert_eq!(d.request.unwrap().revision, 3);
}

#[test]
fn approve_needs_a_fresh_successful_plan() {
    let registry = Registry::embedded();
    let mut f = facts(registry);
    let mut r = request("dev", RequestStatus::Planned);
    // TfPilot committed again after the plan (its branch head moved on).
    r.branch_heads
        .insert(request_branch(r.id), "pushed".to_owned());
    f.pr = Some(PrFacts {
        open: true,
        merged: false,
        head_sha: "pushed".into(),
        merge_sha: None,
        mergeable: Some(true),
    });
    let text = denied(&r, &cmd(Command::Approve), &writer("dave"), &policy(), &f);
    assert!(text.contains("The plan is stale"), "{text}");
    let planning = request("dev", RequestStatus::Planning);
    let text = denied(
        &planning,
        &cmd(Command::Approve),
        &writer("dave"),
        &policy(),
        &facts(registry),
    );
    assert!(text.contains("A plan is already running"), "{text}");
}

/// Commits someone else pushed to the request branch (or a branch prepared under the
/// request's name) are never approved or merged under TfPilot's name, even with a fresh plan.
#[test]
fn a_pull_request_with_commits_tfpilot_did_not_make_is_not_approved_or_merged() {
    let registry = Registry::embedded();
    let mut f = facts(registry);
    f.pr = Some(PrFacts {
        open: true,
        merged: false,
        head_sha: "pushed".into(),
        mergeable: Some(true),
        merge_sha: None,
    });
    let mut r = request("dev", RequestStatus::Planned);
    // A fresh, successful plan of the pushed head.
    r.runs.get_mut(&RunKind::Plan).unwrap().head_sha = Some("pushed".into());
    let text = denied(&r, &cmd(Command::Approve), &writer("dave"), &policy(), &f);
    assert!(
        text.contains("The pull request has commits TfPilot did not make: it is at `pushed`, and TfPilot's last commit on `request/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b` is `head1`."),
        "{text}"
    );
    assert!(text.contains("reset it to TfPilot's commit"), "{text}");
    let mut approved = r.clone();
    approved.status = RequestStatus::Approved;
    approved.approvals.push(Approval {
        login: "dave".into(),
        at: now(),
        head_sha: "pushed".into(),
    });
    let text = denied(
        &approved,
        &cmd(Command::Merge),
        &writer("dave"),
        &policy(),
        &f,
    );
    assert!(text.contains("commits TfPilot did not make"), "{text}");
    // Merged with the button: a prod approval of it is refused too.
    let mut m = merged("prod", RequestStatus::Merged);
    m.runs.get_mut(&RunKind::Plan).unwrap().head_sha = Some("pushed".into());
    let mut mf = merged_facts(registry);
    mf.pr.as_mut().unwrap().head_sha = "pushed".into();
    let text = denied(&m, &cmd(Command::Approve), &writer("alice"), &policy(), &mf);
    assert!(text.contains("commits TfPilot did not make"), "{text}");
}

#[test]
fn a_request_stored_before_branch_heads_were_kept_still_knows_its_own_head() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("dev", RequestStatus::Planned);
    r.branch_heads.clear();
    assert!(
        run(
            Some(&r),
            &cmd(Command::Approve),
            &writer("dave"),
            &policy(),
            &f
        )
        .is_ok()
    );
    r.pull_request.as_mut().unwrap().head_sha = "other".into();
    let text = denied(&r, &cmd(Command::Approve), &writer("dave"), &policy(), &f);
    assert!(text.contains("commits TfPilot did not make"), "{text}");
}

#[test]
fn merge_requires_an_approval_of_the_current_head() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("dev", RequestStatus::Approved);
    r.approvals.push(Approval {
        login: "dave".into(),
        at: now(),
        head_sha: "old".into(),
    });
    let text = denied(&r, &cmd(Command::Merge), &writer("dave"), &policy(), &f);
    assert!(
        text.contains("The approval is for another commit"),
        "{text}"
    );
    r.approvals[0].head_sha = "head1".into();
    let d = run(
        Some(&r),
        &cmd(Command::Merge),
        &writer("dave"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(kinds(&d), ["merge", "comment"]);
    let Effect::Merge {
        number,
        expected_head,
    } = &d.effects[0].effect
    else {
        panic!()
    };
    assert_eq!((*number, expected_head.as_str()), (40, "head1"));
}

fn run_update(run_id: u64, title: &str, phase: RunPhase) -> Input {
    run_of(RunKind::Plan, run_id, title, phase)
}

/// A run as TfPilot's own dispatch of `kind` starts it: `workflow_dispatch` of the request's
/// workflow file, on the request branch (plan) or the base branch (apply, destroy).
fn run_of(kind: RunKind, run_id: u64, title: &str, phase: RunPhase) -> Input {
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

#[test]
fn workflow_runs_move_the_request_and_stale_runs_are_ignored() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("dev", RequestStatus::Planning);
    r.runs.insert(
        RunKind::Plan,
        RunRecord {
            revision: 1,
            dispatch_id: Some("3f2a4c1e-plan-000007".into()),
            ..RunRecord::default()
        },
    );
    let title = "plan 3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b (dev) 3f2a4c1e-plan-000007";
    let system = actor("github-actions", Permission::None);
    let d = run(
        Some(&r),
        &run_update(77, title, RunPhase::InProgress),
        &system,
        &policy(),
        &f,
    )
    .unwrap();
    let next = d.request.unwrap();
    assert_eq!(next.runs[&RunKind::Plan].run_id, Some(77));
    assert_eq!(next.status, RequestStatus::Planning);
    let d = run(
        Some(&next),
        &run_update(77, title, RunPhase::Completed(Conclusion::Success)),
        &system,
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(kinds(&d), ["post_plan"]);
    assert_eq!(d.request.as_ref().unwrap().status, RequestStatus::Planned);
    // A run of another dispatch (an older revision) changes nothing.
    let other = "plan 3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b (dev) 3f2a4c1e-plan-000005";
    let d = run(
        Some(&next),
        &run_update(70, other, RunPhase::Completed(Conclusion::Success)),
        &system,
        &policy(),
        &f,
    )
    .unwrap();
    assert!(d.effects.is_empty());
    assert_eq!(d.request.as_ref(), Some(&next));
}

/// A run that only *looks* like TfPilot's (a user's own workflow with a `run-name` copying the
/// title, started by a push, or dispatched on another branch, or a second run under a known
/// dispatch) never moves the request: it could otherwise fake a plan (and its artifact) or an
/// apply.
#[test]
fn a_run_that_only_looks_like_ours_changes_nothing() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let system = actor("mallory", Permission::None);
    let title = "plan 3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b (dev) 3f2a4c1e-plan-000007";
    let success = RunPhase::Completed(Conclusion::Success);
    let mut r = request("dev", RequestStatus::Planning);
    r.runs.insert(
        RunKind::Plan,
        RunRecord {
            revision: 1,
            dispatch_id: Some("3f2a4c1e-plan-000007".into()),
            ..RunRecord::default()
        },
    );
    let unchanged = |input: &Input, r: &Request, why: &str| {
        let d = run(Some(r), input, &system, &policy(), &f).unwrap();
        assert!(d.effects.is_empty(), "{why}: {:?}", kinds(&d));
        assert_eq!(d.request.as_ref(), Some(r), "{why}");
    };
    let forged = |edit: &dyn Fn(&mut RunUpdate)| {
        let Input::Run(mut u) = run_update(99, title, success) else {
            unreachable!()
        };
        edit(&mut u);
        Input::Run(u)
    };
    unchanged(
        &forged(&|u| u.event = "push".into()),
        &r,
        "started by a push",
    );
    unchanged(
        &forged(&|u| u.workflow_path = ".github/workflows/evil.yml".into()),
        &r,
        "another workflow file",
    );
    unchanged(
        &forged(&|u| u.head_branch = "mallory/fake".into()),
        &r,
        "dispatched on another branch",
    );
    unchanged(
        &forged(&|u| {
            u.title = "plan 3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b x3f2a4c1e-plan-0000071".into()
        }),
        &r,
        "the dispatch id only inside another word",
    );
    // Once the dispatch's run is known, only that run speaks for it, whatever its title.
    r.runs.get_mut(&RunKind::Plan).unwrap().run_id = Some(77);
    unchanged(&forged(&|_| {}), &r, "a second run under the same title");
    let d = run(
        Some(&r),
        &run_update(77, title, success),
        &system,
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Planned);
    // The same for an apply: a look-alike cannot mark it applied.
    let mut a = merged("dev", RequestStatus::Applying);
    a.runs.insert(
        RunKind::Apply,
        RunRecord {
            run_id: Some(12),
            ..RunRecord::default()
        },
    );
    unchanged(
        &run_of(
            RunKind::Apply,
            13,
            "apply 3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b (dev)",
            success,
        ),
        &a,
        "another apply run",
    );
    let Input::Run(mut u) = run_of(RunKind::Apply, 12, "", success) else {
        unreachable!()
    };
    u.head_branch = "request/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".into();
    unchanged(&Input::Run(u), &a, "an apply on the request branch");
}

#[test]
fn a_cancelled_run_does_not_strand_the_request() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let system = actor("github-actions", Permission::None);
    let mut r = request("dev", RequestStatus::Planning);
    r.runs.insert(
        RunKind::Plan,
        RunRecord {
            run_id: Some(8),
            revision: 1,
            ..RunRecord::default()
        },
    );
    let d = run(
        Some(&r),
        &run_update(8, "", RunPhase::Completed(Conclusion::Cancelled)),
        &system,
        &policy(),
        &f,
    )
    .unwrap();
    let next = d.request.unwrap();
    assert_eq!(next.status, RequestStatus::PrOpen);
    let text = comment_text(&d.effects, 0);
    assert!(text.contains("was cancelled"), "{text}");
    assert!(text.contains("`/tfpilot plan` starts it again"), "{text}");
    // …and plan may be dispatched again.
    let d = run(
        Some(&next),
        &cmd(Command::Plan),
        &writer("dave"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Planning);
    // A cancelled apply goes back to merged, where apply is allowed again.
    let mut a = merged("dev", RequestStatus::Applying);
    a.runs.insert(
        RunKind::Apply,
        RunRecord {
            run_id: Some(9),
            ..RunRecord::default()
        },
    );
    // (run 9 is also the plan's id in the fixture; give the plan another.)
    a.runs.get_mut(&RunKind::Plan).unwrap().run_id = Some(1);
    let d = run(
        Some(&a),
        &run_of(
            RunKind::Apply,
            9,
            "",
            RunPhase::Completed(Conclusion::Cancelled),
        ),
        &system,
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Merged);
}

#[test]
fn destroy_success_opens_the_cleanup_pr_then_archives() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let system = actor("github-actions", Permission::None);
    let mut r = merged("dev", RequestStatus::Destroying);
    r.runs.insert(
        RunKind::Destroy,
        RunRecord {
            run_id: Some(31),
            ..RunRecord::default()
        },
    );
    let d = run(
        Some(&r),
        &run_of(
            RunKind::Destroy,
            31,
            "",
            RunPhase::Completed(Conclusion::Success),
        ),
        &system,
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(
        kinds(&d),
        ["comment", "commit", "open_pr", "comment", "archive"]
    );
    assert_eq!(d.request.unwrap().status, RequestStatus::Destroyed);
    let Effect::CommitBlock { branch, change, .. } = &d.effects[1].effect else {
        panic!()
    };
    assert_eq!(branch, "cleanup/3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b");
    assert_eq!(change, &BlockChange::Remove);
}

#[test]
fn pull_request_closed_merged_or_not() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let system = actor("octocat", Permission::None);
    let r = request("dev", RequestStatus::Approved);
    let merged_input = Input::PrClosed {
        number: 40,
        merged: true,
        head_sha: "head1".into(),
        merge_sha: Some("m1".into()),
    };
    let d = run(Some(&r), &merged_input, &system, &policy(), &f).unwrap();
    let next = d.request.unwrap();
    assert_eq!(next.status, RequestStatus::Merged);
    assert_eq!(
        next.pull_request
            .as_ref()
            .unwrap()
            .merge_commit_sha
            .as_deref(),
        Some("m1")
    );
    let closed = Input::PrClosed {
        number: 40,
        merged: false,
        head_sha: "head1".into(),
        merge_sha: None,
    };
    let d = run(Some(&r), &closed, &system, &policy(), &f).unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::PrClosed);
    // Another pull request (e.g. a cleanup PR) is not this request's.
    let other = Input::PrClosed {
        number: 41,
        merged: true,
        head_sha: "x".into(),
        merge_sha: None,
    };
    let d = run(Some(&r), &other, &system, &policy(), &f).unwrap();
    assert!(d.effects.is_empty());
}

/// A pull request closed without merging can be reopened and merged on GitHub: the request
/// must follow, else it stays `pr_closed` with its block on the base branch and nothing can
/// apply (or destroy) it.
#[test]
fn a_closed_pull_request_reopened_and_merged_is_merged() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let system = actor("octocat", Permission::None);
    let r = request("dev", RequestStatus::PrClosed);
    let merged_input = Input::PrClosed {
        number: 40,
        merged: true,
        head_sha: "head1".into(),
        merge_sha: Some("m1".into()),
    };
    let d = run(Some(&r), &merged_input, &system, &policy(), &f).unwrap();
    assert_eq!(kinds(&d), ["comment"]);
    assert_eq!(d.request.unwrap().status, RequestStatus::Merged);
}

#[test]
fn cancel_closes_the_pr_and_archives_but_not_after_the_merge() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let r = request("dev", RequestStatus::Planned);
    let d = run(
        Some(&r),
        &cmd(Command::Cancel),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(kinds(&d), ["close_pr", "comment", "archive"]);
    assert_eq!(d.request.unwrap().status, RequestStatus::Cancelled);
    let m = merged("dev", RequestStatus::Applied);
    let text = denied(&m, &cmd(Command::Cancel), &writer("carol"), &policy(), &f);
    assert!(
        text.contains("`/tfpilot destroy` removes its resources"),
        "{text}"
    );
}

#[test]
fn failed_effects_are_decided_too() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("dev", RequestStatus::Planning);
    r.pull_request = None;
    let failed = Input::EffectFailed {
        key: EffectKey::commit(1),
        effect: Effect::CommitBlock {
            branch: "b".into(),
            base: "main".into(),
            file: "f".into(),
            change: BlockChange::Upsert { block: "x".into() },
            message: "m".into(),
        },
        reason: "line 3: nested markers".into(),
    };
    let d = run(
        Some(&r),
        &failed,
        &actor("tfpilot", Permission::None),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Ready);
    let text = comment_text(&d.effects, 0);
    assert!(
        text.contains("could not open the pull request: line 3: nested markers"),
        "{text}"
    );
    assert!(text.contains("`/tfpilot submit` again"), "{text}");
}

#[test]
fn commands_without_a_request_say_how_to_open_one() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let err = run(None, &cmd(Command::Apply), &writer("carol"), &policy(), &f).unwrap_err();
    assert!(
        err.to_string()
            .contains("There is no TfPilot request on this issue"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("`/tfpilot new <module> env=<env>`"),
        "{err}"
    );
}

#[test]
fn every_denial_has_a_reason_and_a_remedy() {
    // Every status × every command: allowed, or denied with two non-empty sentences.
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let commands = [
        Command::Submit,
        Command::Plan,
        Command::Approve,
        Command::Merge,
        Command::Apply,
        Command::Destroy,
        Command::Cleanup,
        Command::Cancel,
        Command::Show,
    ];
    for status in RequestStatus::ALL {
        for c in &commands {
            let r = merged("dev", status);
            if let Err(d) = decide(Some(&r), &cmd(c.clone()), &writer("alice"), &policy(), &f) {
                assert!(
                    !d.reason.trim().is_empty() && !d.remedy.trim().is_empty(),
                    "{status} {}: {d:?}",
                    c.name()
                );
                assert!(
                    d.reason.ends_with(['.', ')']),
                    "{status} {}: {}",
                    c.name(),
                    d.reason
                );
            }
        }
    }
}
