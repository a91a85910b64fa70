//! Approve and merge: a fresh plan, TfPilot's own head, an approval of the current head.

use super::*;

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
        plan: None,
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
        plan: None,
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
