//! Apply needs a merged pull request with the block and a fresh successful plan; cancel.

use super::*;

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
    let Effect::Dispatch {
        kind,
        git_ref,
        expected_sha,
        ..
    } = &d.effects[0].effect
    else {
        panic!()
    };
    assert_eq!((*kind, git_ref.as_str()), (RunKind::Apply, "main"));
    // The workflow applies exactly the approved merge commit.
    assert_eq!(expected_sha.as_deref(), Some("merge1"));
}

#[test]
fn apply_sends_the_merge_commit_and_refuses_when_none_is_known() {
    let registry = Registry::embedded();
    let expected = |r: &Request, f: &Facts<'_>| {
        let d = run(Some(r), &cmd(Command::Apply), &writer("dave"), &policy(), f).unwrap();
        match &d.effects[0].effect {
            Effect::Dispatch { expected_sha, .. } => expected_sha.clone(),
            other => panic!("{other:?}"),
        }
    };
    // GitHub's answer now wins over the one the merge event brought.
    let mut f = merged_facts(registry);
    f.pr.as_mut().unwrap().merge_sha = Some("merge-now".into());
    let r = merged("dev", RequestStatus::Merged);
    assert_eq!(expected(&r, &f).as_deref(), Some("merge-now"));
    // GitHub does not say: the merge event's commit.
    f.pr.as_mut().unwrap().merge_sha = None;
    assert_eq!(expected(&r, &f).as_deref(), Some("merge1"));
    // Neither: no apply without a commit to apply.
    let mut unknown = r.clone();
    unknown.pull_request.as_mut().unwrap().merge_commit_sha = None;
    let text = denied(
        &unknown,
        &cmd(Command::Apply),
        &writer("dave"),
        &policy(),
        &f,
    );
    assert!(
        text.contains("GitHub has not said which commit merged the pull request"),
        "{text}"
    );
    // A destroy carries no expected commit.
    let applied = merged("dev", RequestStatus::Applied);
    let d = run(
        Some(&applied),
        &cmd(Command::Destroy),
        &writer("dave"),
        &policy(),
        &merged_facts(registry),
    )
    .unwrap();
    let Effect::Dispatch {
        kind, expected_sha, ..
    } = &d.effects[0].effect
    else {
        panic!("{:?}", d.effects)
    };
    assert_eq!((*kind, expected_sha), (RunKind::Destroy, &None));
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
