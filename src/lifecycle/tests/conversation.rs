//! New requests, submit, and changing the inputs before and after the pull request opens.

use super::*;

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
    assert_eq!(
        kinds(&d),
        ["commit", "open_pr", "dispatch", "check", "comment"]
    );
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
        plan: None,
        login: "dave".into(),
        at: now(),
        head_sha: "head1".into(),
    });
    let set = cmd(Command::Set {
        values: BTreeMap::from([("versioning".into(), "on".into())]),
    });
    let d = run(Some(&r), &set, &writer("carol"), &policy(), &f).unwrap();
    assert_eq!(
        kinds(&d),
        ["minimize", "commit", "dispatch", "check", "comment"]
    );
    let next = d.request.unwrap();
    assert_eq!(next.revision, 2);
    assert_eq!(next.status, RequestStatus::Planning);
    // Kept with the commit they were given on (so they do not count for the new one) until
    // the new plan says whether it makes the same changes.
    assert_eq!(next.approvals.len(), 1);
    assert_eq!(next.approvals[0].head_sha, "head1");
    assert_ne!(next.block, r.block);
    let Effect::MinimizeComments { key_prefix } = &d.effects[0].effect else {
        panic!()
    };
    assert_eq!(key_prefix, "plan:3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b:r1:");
    let text = comment_text(&d.effects, 4);
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
    assert_eq!(
        kinds(&d),
        ["minimize", "commit", "dispatch", "check", "comment"]
    );
    assert_eq!(d.request.unwrap().revision, 3);
}
