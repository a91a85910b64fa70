//! Workflow runs, pull requests closed, failed effects.

use super::*;

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
    assert_eq!(kinds(&d), ["post_plan", "notify"]);
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
        [
            "comment", "commit", "open_pr", "comment", "notify", "archive"
        ]
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
    // The answer, and the plan's check run offers Apply.
    assert_eq!(kinds(&d), ["comment", "check"]);
    assert_eq!(d.request.unwrap().status, RequestStatus::Merged);
    // The close recorded before does not make the merge a redelivery.
    let closed = Input::PrClosed {
        number: 40,
        merged: false,
        head_sha: "head1".into(),
        merge_sha: None,
    };
    assert_ne!(
        crate::lifecycle::input_key(&merged_input),
        crate::lifecycle::input_key(&closed)
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
