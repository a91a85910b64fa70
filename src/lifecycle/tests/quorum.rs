//! Approvals with a quorum: distinct people, never the authors, teams as their members found.

use super::*;
use crate::domain::Memberships;

/// Two approvals in prod; `acme/platform` on the prod list (dana and erin are members).
fn two_in_prod() -> Policy {
    let mut p = policy();
    p.prod_allowed_users.push("acme/platform".into());
    p.approvals_required.insert("prod".into(), 2);
    let mut m = Memberships::default();
    m.add("acme/platform", "dana");
    m.add("acme/platform", "erin");
    p.with_members(&m)
}

#[test]
fn prod_needs_two_distinct_approvals_before_a_merge() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let p = two_in_prod();
    let r = request("prod", RequestStatus::Planned);
    let d = run(Some(&r), &cmd(Command::Approve), &writer("dana"), &p, &f).unwrap();
    let once = d.request.unwrap();
    assert_eq!(once.status, RequestStatus::Planned, "one of two");
    let text = comment_text(&d.effects, 0);
    assert!(
        text.contains("`prod` needs 2 approvals by people who did not write the request, and this commit has 1 (@dana)."),
        "{text}"
    );
    assert!(
        text.contains("Ask one of @alice, @bob, @acme/platform, @erin to `/tfpilot approve` it."),
        "{text}"
    );
    // The same person again does not count twice.
    let again = run(Some(&once), &cmd(Command::Approve), &writer("dana"), &p, &f).unwrap();
    assert_eq!(again.request.unwrap().status, RequestStatus::Planned);
    let text = denied(&once, &cmd(Command::Merge), &writer("alice"), &p, &f);
    assert!(text.contains("this commit has 1 (@dana)"), "{text}");
    // A second person (a member of the team) makes the quorum.
    let d = run(Some(&once), &cmd(Command::Approve), &writer("erin"), &p, &f).unwrap();
    let twice = d.request.unwrap();
    assert_eq!(twice.status, RequestStatus::Approved);
    assert!(comment_text(&d.effects, 0).contains("Approved for `prod` by @dana, @erin"));
    let d = run(Some(&twice), &cmd(Command::Merge), &writer("alice"), &p, &f).unwrap();
    assert_eq!(kinds(&d), ["merge", "comment"]);
}

#[test]
fn authors_never_count_and_a_team_outsider_is_refused_with_the_list() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let p = two_in_prod();
    let mut r = request("prod", RequestStatus::Planned);
    // carol opened it; dana changed its inputs since.
    r.record(now(), "dana", "inputs_changed", None);
    let text = denied(&r, &cmd(Command::Approve), &writer("dana"), &p, &f);
    assert!(
        text.contains("You changed the inputs of this request"),
        "{text}"
    );
    let text = denied(&r, &cmd(Command::Approve), &writer("mallory"), &p, &f);
    assert!(
        text.contains("Only members of the prod allow-list can approve in `prod`."),
        "{text}"
    );
    assert!(text.contains("@acme/platform"), "{text}");
    // An approval dana gave before she changed the inputs no longer counts.
    let mut approved = r.clone();
    for login in ["dana", "erin"] {
        approved.approvals.push(Approval {
            plan: None,
            login: login.into(),
            at: now(),
            head_sha: "head1".into(),
        });
    }
    approved.status = RequestStatus::Approved;
    let text = denied(&approved, &cmd(Command::Merge), &writer("alice"), &p, &f);
    assert!(text.contains("this commit has 1 (@erin)"), "{text}");
}

#[test]
fn outside_prod_a_quorum_applies_where_configured_only() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut p = policy();
    let r = request("dev", RequestStatus::Planned);
    // No quorum in dev: the requester's own approval lets them merge.
    let d = run(Some(&r), &cmd(Command::Approve), &writer("carol"), &p, &f).unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Approved);
    p.approvals_required.insert("dev".into(), 1);
    let text = denied(&r, &cmd(Command::Approve), &writer("carol"), &p, &f);
    assert!(text.contains("You opened this request"), "{text}");
}
