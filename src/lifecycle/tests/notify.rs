//! Chat notices: decided with the status change they report, after its GitHub answers.

use super::*;
use crate::domain::NoticeEvent;

fn planned(env: &str, route: Option<&str>) -> Decision {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request(env, RequestStatus::Planning);
    r.notify_route = route.map(str::to_owned);
    r.runs.insert(
        RunKind::Plan,
        RunRecord {
            revision: 1,
            dispatch_id: Some("3f2a4c1e-plan-000007".into()),
            ..RunRecord::default()
        },
    );
    let title = format!("plan 3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b ({env}) 3f2a4c1e-plan-000007");
    let system = actor("github-actions", Permission::None);
    run(
        Some(&r),
        &run_update(77, &title, RunPhase::Completed(Conclusion::Success)),
        &system,
        &policy(),
        &f,
    )
    .unwrap()
}

#[test]
fn a_plan_ready_in_prod_names_the_prod_allow_list_and_links_the_run() {
    let d = planned("prod", Some("prod-alerts"));
    let n = notices(&d);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].event, NoticeEvent::PlanReady);
    assert_eq!(n[0].approvers, ["alice", "bob"]);
    assert_eq!(n[0].environment, "prod");
    assert_eq!(n[0].route.as_deref(), Some("prod-alerts"));
    assert!(n[0].run_url.as_deref().is_some_and(|u| u.contains("77")));
    let key = &d.effects.last().unwrap().key;
    assert_eq!(key.as_str(), "notify:plan-ready:input:run:77:completed");
}

#[test]
fn a_plan_ready_in_dev_names_nobody_in_particular() {
    let d = planned("dev", None);
    assert_eq!(notices(&d)[0].approvers, Vec::<String>::new());
}

#[test]
fn an_environment_routed_off_gets_no_notice() {
    assert!(notices(&planned("dev", Some("off"))).is_empty());
}

#[test]
fn approve_notifies_after_its_answer_and_a_second_look_changes_nothing() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let r = request("dev", RequestStatus::Planned);
    let d = run(
        Some(&r),
        &cmd(Command::Approve),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(kinds(&d), ["comment", "notify"]);
    let n = notices(&d);
    assert_eq!(
        (n[0].event, n[0].actor.as_str()),
        (NoticeEvent::Approved, "carol")
    );
    // `status` on the approved request changes nothing, so it tells nobody.
    let approved = d.request.unwrap();
    let d = run(
        Some(&approved),
        &cmd(Command::Status {
            filters: Default::default(),
        }),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap();
    assert!(notices(&d).is_empty());
}
